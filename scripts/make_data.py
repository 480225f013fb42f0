"""`python scripts/make_data.py ...` = `dareu make-data ...`.

The command lives in dareu/cli/make_data.py. Multi-process: `accelerate launch
--config_file "$(dareu config path ddp)" scripts/make_data.py ...`. The module's names are
re-exported here for code that loads this file by path (tests).
"""

import sys

from dareu.cli.make_data import *  # noqa: F403
from dareu.cli.make_data import main

if __name__ == "__main__":
    sys.exit(main())
