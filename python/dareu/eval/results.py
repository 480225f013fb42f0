"""A saved evaluation: `EvalResult` (summary + per-sample records), its folder I/O, and
the number formatting every table shares (`fmt_value`, `cell`)."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dareu.cache import DONE_MARKER, atomic_dir

SUMMARY_FILE = "summary.json"
PER_SAMPLE_FILE = "per_sample.json"
MARKDOWN_FILE = "results.md"


class EvalInputError(ValueError):
    """A bad argument or file given to the evaluation (names it and what is wrong)."""


@dataclass
class EvalResult:
    """Summary (flat dict with stable keys, see docs/evaluation.md) and per-sample records."""

    summary: dict[str, Any]
    per_sample: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def markdown(self) -> str:
        from dareu.eval.markdown import summary_markdown

        return summary_markdown(self.summary)

    def forget_truth_ratios(self) -> list[float]:
        return [
            r["truth_ratio"]
            for r in self.per_sample.get("forget", [])
            if r.get("truth_ratio") is not None
        ]

    def save(self, out: str | Path) -> Path:
        """Write summary.json, per_sample.json and results.md atomically into `out`."""
        out = Path(out)
        if out.exists() and (not out.is_dir() or is_foreign_dir(out)):
            raise EvalInputError(
                f"--out {out}: exists and is not an evaluation folder; refusing to overwrite it"
            )
        # atomic_dir keeps an existing complete folder (first writer wins, for caches); a
        # re-evaluation must replace it, so build beside it and swap with two renames.
        staging = out.parent / f".{out.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with atomic_dir(staging) as tmp:
            (tmp / SUMMARY_FILE).write_text(dumps_json(self.summary))
            (tmp / PER_SAMPLE_FILE).write_text(dumps_json(self.per_sample))
            (tmp / MARKDOWN_FILE).write_text(self.markdown())
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
        return out

    @classmethod
    def load(cls, path: str | Path, *, what: str = "evaluation") -> EvalResult:
        """Read a saved evaluation: its folder, its summary.json or its per_sample.json."""
        p = Path(path)
        folder = p if p.is_dir() else p.parent
        summary_path, per_sample_path = folder / SUMMARY_FILE, folder / PER_SAMPLE_FILE
        if not p.exists():
            raise EvalInputError(f"{what} {p}: no such file or folder")
        if not summary_path.is_file():
            raise EvalInputError(f"{what} {p}: no {SUMMARY_FILE} in {folder}")
        try:
            summary = json.loads(summary_path.read_text())
            per_sample = (
                json.loads(per_sample_path.read_text()) if per_sample_path.is_file() else {}
            )
        except json.JSONDecodeError as err:
            raise EvalInputError(f"{what} {p}: not valid JSON ({err})") from err
        if not isinstance(summary, dict) or "eval_set" not in summary:
            raise EvalInputError(f"{what} {summary_path}: not a DareU evaluation summary")
        return cls(summary=summary, per_sample=per_sample)


def is_foreign_dir(path: Path) -> bool:
    """A non-empty folder that no evaluation wrote: never rmtree it."""
    entries = {e.name for e in path.iterdir()}
    return bool(entries) and not ({SUMMARY_FILE, DONE_MARKER} & entries)


def json_safe(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_json(obj: Any) -> str:
    return json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n"


def fmt_value(v: Any) -> str:
    """Numbers for tables: 4 decimals, small ones in 4 significant digits, None as a dash."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}"
    return str(v)


def cell(values: Any) -> str:
    """The one table cell of several runs: one value as is, several as mean ± sd (ddof=1);
    missing values are skipped."""
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        return "–"
    if len(nums) == 1:
        return fmt_value(nums[0])
    sd = 0.0 if max(nums) == min(nums) else float(np.std(nums, ddof=1))
    return f"{fmt_value(float(np.mean(nums)))} ± {fmt_value(sd)}"
