"""Put several evaluations in one table; runs that differ only in their seed are averaged.

Runs are grouped by the `config_key` of their summary (a hash of the evaluation settings
and the run config without its seed), and a group of n > 1 runs shows mean ± sd (sample
standard deviation, ddof=1) of each metric.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dareu.cache import atomic_write_text
from dareu.eval.results import EvalInputError, EvalResult, cell

DEFAULT_METRICS = (
    "forget_quality",
    "model_utility",
    "tow",
    "forget_rougeL",
    "retain_rougeL",
    "test_rougeL",
    "forget_rougeL_paraphrased_q",
    "mia_min_k_auc",
    "privleak",
    "extraction_strength",
    "gibberish_rate",
    "leak_fact_rate",
)


def load_runs(paths: Sequence[str | Path]) -> list[tuple[str, EvalResult]]:
    """(name, result) per run folder; the name is the summary's label or the folder name."""
    runs = []
    for p in paths:
        res = EvalResult.load(p, what="run")
        folder = Path(p) if Path(p).is_dir() else Path(p).parent
        runs.append((str(res.summary.get("label") or folder.name), res))
    return runs


def group_runs(runs: list[tuple[str, EvalResult]]) -> list[tuple[str, list[EvalResult]]]:
    """Groups by config_key, in the order first seen; named after their first run."""
    groups: dict[str, tuple[str, list[EvalResult]]] = {}
    for name, res in runs:
        key = str(res.summary.get("config_key") or name)
        groups.setdefault(key, (name, []))[1].append(res)
    return list(groups.values())


def compare_table(
    runs: list[tuple[str, EvalResult]], metrics: Sequence[str] = DEFAULT_METRICS
) -> str:
    """Markdown table: one row per configuration, `n` = number of seeds behind it."""
    header = ["run", "n", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, results in group_runs(runs):
        seeds = [r.summary.get("seed") for r in results]
        label = name if len(results) == 1 else f"{name} (seeds {', '.join(map(str, seeds))})"
        row = [label, str(len(results))]
        row += [cell([r.summary.get(m) for r in results]) for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Compare saved evaluations in one markdown table.")
    p.add_argument("runs", nargs="+", help="evaluation folders (or their summary.json)")
    p.add_argument(
        "--metrics", help=f"comma-separated summary keys (default: {','.join(DEFAULT_METRICS)})"
    )
    p.add_argument("--out", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    metrics = (
        [m.strip() for m in args.metrics.split(",") if m.strip()]
        if args.metrics
        else list(DEFAULT_METRICS)
    )
    try:
        runs = load_runs(args.runs)
    except EvalInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    known = set().union(*(r.summary for _, r in runs))
    unknown = [m for m in metrics if m not in known]
    if unknown:
        print(f"error: --metrics {','.join(unknown)}: not in any summary", file=sys.stderr)
        return 2
    table = compare_table(runs, metrics)
    if args.out is not None:
        atomic_write_text(args.out, table)
    print(table, end="")
    return 0
