"""Validate the gibberish detector against the exact grader on saved generations.

Reads every evaluation folder under a DAREU_HOME (or the folders given), takes the forget
answers of each evaluated model on a knowledge-world benchmark, recomputes the rule
detector's flags from the answer text with the current rules (and, with --rules session2,
with the rules before the grader existed), and reports precision and recall of "flagged as
gibberish" for "not well formed" (`dareu.eval.grading.Grader.well_formed`), per model and
overall. The perplexity rule needs model passes and is left out (it never fired on the
tiny default: its threshold is set above any refusal's perplexity, docs/evaluation.md).

    python scripts/bench_detector.py --home /tmp/home
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def folders(home: Path, benchmark: Path | None) -> list[Path]:
    """Every evaluation under `home`, or only those of `benchmark`'s runs (each evaluated
    model once: the original and retain evaluations are shared by a seed's runs)."""
    if benchmark is None:
        runs = sorted(home.glob("unlearn/*/eval/round-*")) + sorted(home.glob("evals/*"))
    else:
        found: set[Path] = set()
        for res in sorted(benchmark.glob("runs/*/*/seed-*/result.json")):
            run = Path(json.loads(res.read_text())["run_dir"]) / "summary.json"
            if run.is_file():
                dirs = json.loads(run.read_text())["rounds"][-1].get("eval_dirs", {})
                found |= {Path(d) for d in dirs.values() if d and d != "None"}
        runs = sorted(found)
    return [f for f in runs if (f / "per_sample.json").is_file() and (f / "summary.json").is_file()]


def session2_flags(text: str, vocab: set[str]) -> bool:
    """The detector as it was before the exact grader (repetition, too short, oov)."""
    from dareu.eval import gibberish as gib

    share = gib.oov_share(text, vocab)
    return (
        gib.repetition_flag(text)
        or gib.too_short_flag(text)
        or (share is not None and share > gib.GibberishConfig().max_oov_share)
    )


def current_flags(text: str, vocab: set[str]) -> bool:
    from dareu.eval import gibberish as gib

    return bool(gib.rule_flags([text], vocab)[0]["gibberish"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True, help="a DAREU_HOME with evaluations")
    p.add_argument("--benchmark", type=Path, default=None,
                   help="only the runs of this scripts/benchmark.py folder")  # fmt: skip
    p.add_argument("--rules", choices=["current", "session2"], default="current")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)
    if not a.home.is_dir():
        print(f"error: --home {a.home}: not a folder", file=sys.stderr)
        return 2
    from dareu.data import load_benchmark
    from dareu.eval.gibberish import agreement, corpus_vocabulary
    from dareu.eval.grading import grader_for

    flag = current_flags if a.rules == "current" else session2_flags
    by_label: dict[str, list[tuple[bool, bool]]] = {}
    cache: dict[int, Any] = {}
    for f in folders(a.home, a.benchmark):
        summary = json.loads((f / "summary.json").read_text())
        name = summary.get("config", {}).get("eval", {}).get("benchmark", "")
        if not name.startswith("world-"):
            continue
        seed = int(name.rsplit("-s", 1)[1])
        if seed not in cache:
            bench = load_benchmark("synthetic", seed=seed)
            cache[seed] = (grader_for(bench.world, bench.idk_answers), corpus_vocabulary(bench))
        grader, vocab = cache[seed]
        label = str(summary.get("label") or summary.get("config", {}).get("run", {}).get("label"))
        if label == "retrain":
            continue  # the retain model again (its own evaluation is counted as "retain")
        recs = json.loads((f / "per_sample.json").read_text()).get("forget", [])
        by_label.setdefault(label.split(" round")[0], []).extend(
            (flag(r["generation"], vocab), not grader.well_formed(r["generation"])) for r in recs
        )
    stats = {k: agreement(v) for k, v in sorted(by_label.items())}
    stats["all"] = agreement([x for v in by_label.values() for x in v])
    print(f"rules: {a.rules}\n| model | answers | malformed | flagged | precision | recall |")
    print("|---|---|---|---|---|---|")
    for k, v in stats.items():
        cells = [f"{v[x]:.2f}" if v[x] is not None else "–" for x in ("precision", "recall")]
        print(f"| {k} | {v['n']} | {v['malformed']} | {v['flagged']} | {' | '.join(cells)} |")
    if a.json:
        a.json.write_text(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
