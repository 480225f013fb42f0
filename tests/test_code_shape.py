"""The code stays readable: no function in python/dareu or scripts is longer than 100
lines (docs/architecture.md: one job per function, phases a reader follows)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 100


def test_no_function_longer_than_100_lines() -> None:
    long = []
    for root in ("python/dareu", "scripts"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    n = (node.end_lineno or node.lineno) - node.lineno + 1
                    if n > MAX_LINES:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n})")
    assert not long, "functions over 100 lines:\n" + "\n".join(long)


def test_one_training_stopped_class_caught_by_type() -> None:
    defs = [
        path.relative_to(REPO)
        for path in (REPO / "python/dareu").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name == "TrainingStopped"
    ]
    assert defs == [Path("python/dareu/train/common.py")]
    assert "__name__ ==" not in (REPO / "scripts/unlearn.py").read_text().replace(
        '__name__ == "__main__"', ""
    )
