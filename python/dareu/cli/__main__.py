"""`python -m dareu.cli COMMAND ...` and `accelerate launch ... -m dareu.cli COMMAND ...`."""

import sys

from dareu.cli import main

if __name__ == "__main__":
    sys.exit(main())
