"""Per-phase time of DareU's PPO iteration on the embedded default job.

Runs `--batches` rollout batches of the default DareU job (the cached original model and
attributor under DAREU_HOME, built on first use) in a child process and prints each
phase's share of the iteration: generation, the no-grad log-prob / value / reference
passes, attribution, the Rust reward core, and the update split into teacher (the
original's logits for distillation), backward, optimizer and the rest (policy forward and
losses). Also rollout tokens per second and the child's peak RSS. With `--compare REV` a
second git revision (a temporary worktree, the same compiled core) is measured the same
way, interleaved A B A B ..., and the ratio of mean iteration times is printed: the
machine is shared and noisy, so only interleaved ratios mean anything.

    DAREU_HOME=/tmp/home python scripts/bench_ppo.py --batches 6 --reps 2 --threads 1
    DAREU_HOME=/tmp/home python scripts/bench_ppo.py --compare HEAD~5 --reps 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PHASES = ("generation", "logprob_value_ref", "attribution", "reward_core", "teacher",
          "backward", "optimizer", "update_rest")  # fmt: skip


class _Stop(Exception):
    """Raised from the batch callback once enough batches ran."""


def _timed(table: dict[str, float], key: str, fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            table[key] = table.get(key, 0.0) + time.perf_counter() - t

    return wrapper


def worker(batches: int, threads: int | None) -> dict[str, Any]:
    """One measurement in this process (imports whatever `dareu` PYTHONPATH points at)."""
    import resource

    import torch
    from accelerate import Accelerator

    import dareu.ppo.trainer as tr
    from dareu.attribution import load_attributor
    from dareu.data import load_benchmark
    from dareu.ppo.config import tiny_config
    from dareu.train.finetune import default_config, ensure_finetuned

    if threads:
        torch.set_num_threads(threads)
    bench = load_benchmark("synthetic")
    original = ensure_finetuned(bench, "original", default_config(bench), progress=False)
    attributor = load_attributor("classifier", benchmark=bench)
    t: dict[str, float] = {}
    for name, key in (("sample_responses", "generation"), ("forward_rollouts", "logprob_value_ref"),
                      ("score_rollouts", "attribution"), ("advantages_from_core", "reward_core"),
                      ("teacher_logits", "teacher"), ("ppo_step", "update"),
                      ("ppo_updates", "update")):  # fmt: skip
        if hasattr(tr, name):  # older revisions name some phases differently
            setattr(tr, name, _timed(t, key, getattr(tr, name)))
    setattr(Accelerator, "backward", _timed(t, "backward", Accelerator.backward))  # noqa: B010
    setattr(torch.optim.AdamW, "step", _timed(t, "optimizer", torch.optim.AdamW.step))  # noqa: B010
    records: list[dict[str, Any]] = []

    def on_batch(rec: dict[str, Any]) -> None:
        records.append(rec)
        if len(records) >= batches:
            raise _Stop

    with tempfile.TemporaryDirectory() as out:
        settings = tr.RunSettings(out_dir=Path(out), progress=False)
        with contextlib.suppress(_Stop):
            tr.train_dareu(original, bench.forget, [*bench.retain, *bench.general_train],
                           attributor, tiny_config(), settings, Accelerator(cpu=True),
                           on_batch=on_batch)  # fmt: skip
    total = sum(r["batch_s"] for r in records)
    tokens = sum(r["resp_len"] * r["n_rollouts"] for r in records)
    inner = sum(t.get(k, 0.0) for k in ("teacher", "backward", "optimizer"))
    t["update_rest"] = t.get("update", 0.0) - inner
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batches": len(records), "iteration_s": total / len(records), "phases": t,
            "total_s": total, "tokens": tokens, "peak_rss_mb": rss}  # fmt: skip


def measure(code: Path, batches: int, threads: int | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code / "python"), "TRANSFORMERS_VERBOSITY": "error"}
    cmd = [sys.executable, str(REPO / "scripts" / "bench_ppo.py"), "--worker", "--batches",
           str(batches), *(["--threads", str(threads)] if threads else [])]  # fmt: skip
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"error: the measurement of {code} failed:\n{run.stderr[-3000:]}")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def table(name: str, runs: list[dict[str, Any]]) -> str:
    total = sum(r["total_s"] for r in runs)
    lines = [f"### {name}: {len(runs)} runs x {runs[0]['batches']} batches, iteration "
             f"{statistics.mean(r['iteration_s'] for r in runs):.2f} s "
             f"(sd {statistics.pstdev([r['iteration_s'] for r in runs]):.2f}), "
             f"{sum(r['tokens'] for r in runs) / total:.0f} rollout tokens/s, peak RSS "
             f"{max(r['peak_rss_mb'] for r in runs):.0f} MB", "",
             "| phase | s per batch | share |", "|---|---|---|"]  # fmt: skip
    n = sum(r["batches"] for r in runs)
    for phase in PHASES:
        secs = sum(r["phases"].get(phase, 0.0) for r in runs)
        lines.append(f"| {phase} | {secs / n:.3f} | {100 * secs / total:.1f}% |")
    other = total - sum(sum(r["phases"].get(p, 0.0) for r in runs) for p in PHASES)
    lines.append(
        f"| other (decode, gathers, logging) | {other / n:.3f} | {100 * other / total:.1f}% |"
    )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=6, help="rollout batches per measurement")
    p.add_argument("--reps", type=int, default=2, help="measurements per revision")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--compare", default=None, metavar="REV", help="another git revision")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.batches < 1 or a.reps < 1 or (a.threads is not None and a.threads < 1):
        p.error("--batches, --reps and --threads must be >= 1")
    if a.worker:
        print(json.dumps(worker(a.batches, a.threads)))
        return 0
    codes = {"this tree": REPO}
    tmp = None
    if a.compare:
        tmp = Path(tempfile.mkdtemp(prefix="bench_ppo_"))
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tmp / "rev"),
                        a.compare], check=True, capture_output=True)  # fmt: skip
        rev_pkg = tmp / "rev" / "python" / "dareu"
        if not (rev_pkg / "_reward_core.py").is_file():
            # A revision from before the core became its own wheel loads the compiled
            # module from its package folder: give it the installed one.
            import dareu_reward_core._reward_core as core

            shutil.copy(str(core.__file__), rev_pkg / Path(str(core.__file__)).name)
        codes[a.compare] = tmp / "rev"
    try:
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in codes}
        for i in range(a.reps):  # interleaved: A B A B ...
            for name, code in codes.items():
                print(f"[{i + 1}/{a.reps}] {name} ...", file=sys.stderr, flush=True)
                runs[name].append(measure(code, a.batches, a.threads))
        for name, rs in runs.items():
            print(table(name, rs))
        if a.compare:
            mine = statistics.mean(r["iteration_s"] for r in runs["this tree"])
            theirs = statistics.mean(r["iteration_s"] for r in runs[a.compare])
            print(f"iteration time ratio {a.compare} / this tree: {theirs / mine:.3f}")
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(tmp / "rev")], check=False, capture_output=True)  # fmt: skip
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
