"""Compare saved evaluations in one markdown table (mean ± sd over seeds of a config).

    python scripts/compare_runs.py runs/eval/a runs/eval/b ... [--metrics a,b] [--out t.md]

Same as `dareu compare ...` and `dareu evaluate compare ...` (code: dareu.eval.compare).
"""

from __future__ import annotations

import sys

from dareu.eval.compare import main

if __name__ == "__main__":
    sys.exit(main())
