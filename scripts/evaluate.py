"""`python scripts/evaluate.py ...` = `dareu evaluate ...`.

The command lives in dareu/cli/evaluate.py. Multi-process: `accelerate launch
--config_file "$(dareu config path ddp)" scripts/evaluate.py ...`. The module's names are
re-exported here for code that loads this file by path (tests).
"""

import sys

from dareu.cli.evaluate import *  # noqa: F403
from dareu.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
