"""`python scripts/benchmark.py ...` = `dareu benchmark ...` (code: dareu/cli/benchmark.py).

The module's names are re-exported here for code that loads this file by path (tests);
`main` looks `run_isolated` up here, so replacing it on this module takes effect.
"""

import sys

from dareu.cli import benchmark as _benchmark
from dareu.cli.benchmark import *  # noqa: F403
from dareu.cli.benchmark import run_isolated


def main(argv: list[str] | None = None) -> int:  # type: ignore[no-redef]
    return _benchmark.main(argv, run=run_isolated)


if __name__ == "__main__":
    sys.exit(main())
