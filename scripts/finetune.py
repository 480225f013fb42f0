"""`python scripts/finetune.py ...` = `dareu finetune ...`.

The command lives in dareu/cli/finetune.py. Multi-process: `accelerate launch
--config_file "$(dareu config path ddp)" scripts/finetune.py ...`. The module's names are
re-exported here for code that loads this file by path (tests).
"""

import sys

from dareu.cli.finetune import *  # noqa: F403
from dareu.cli.finetune import main

if __name__ == "__main__":
    sys.exit(main())
