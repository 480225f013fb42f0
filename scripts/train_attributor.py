"""`python scripts/train_attributor.py ...` = `dareu train-attributor ...`.

The command lives in dareu/cli/train_attributor.py. Multi-process: `accelerate launch
--config_file "$(dareu config path ddp)" scripts/train_attributor.py ...`. The module's names are
re-exported here for code that loads this file by path (tests).
"""

import sys

from dareu.cli.train_attributor import *  # noqa: F403
from dareu.cli.train_attributor import main

if __name__ == "__main__":
    sys.exit(main())
