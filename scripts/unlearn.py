"""`python scripts/unlearn.py ...` = `dareu unlearn ...`.

The command lives in dareu/cli/unlearn.py. Multi-process: `accelerate launch
--config_file "$(dareu config path ddp)" scripts/unlearn.py ...`. The module's names are
re-exported here for code that loads this file by path (tests).
"""

import sys

from dareu.cli.unlearn import *  # noqa: F403
from dareu.cli.unlearn import main

if __name__ == "__main__":
    sys.exit(main())
