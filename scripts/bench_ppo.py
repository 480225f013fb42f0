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
    DAREU_HOME=/tmp/home python scripts/bench_ppo.py --logprob-check
    DAREU_HOME=/tmp/home python scripts/bench_ppo.py --topk-check --batches 20 --threads 1
    DAREU_HOME=/tmp/home python scripts/bench_ppo.py --scale --batches 3 --reps 1 --threads 1
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


class _FixedLength:
    """A model whose `generate` never stops before `max_new_tokens` (min_new_tokens), so a
    scale run measures responses of exactly the length it asks for."""

    def __init__(self, model: Any, length: int) -> None:
        self.model, self.length = model, length

    def generate(self, **kwargs: Any) -> Any:
        return self.model.generate(**kwargs, min_new_tokens=self.length)


def worker(
    batches: int, threads: int | None, rollouts: int | None = None, length: int | None = None,
    topk: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One measurement in this process (imports whatever `dareu` PYTHONPATH points at).
    `rollouts`/`length`: the scale runs' batch (queries x 2 samples) and fixed response
    length; None: the default job's. `topk`: also `topk_probe` before the last update."""
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
    overrides: dict[str, int] = {}
    if rollouts:
        overrides["batch_size"] = rollouts // tiny_config().samples_per_query
    if length:
        overrides["max_new_tokens"] = length
        sample = tr.sample_responses
        setattr(tr, "sample_responses",  # noqa: B010
                lambda model, *a, **k: sample(_FixedLength(model, length), *a, **k))  # fmt: skip
    records: list[dict[str, Any]] = []
    probe: dict[str, Any] = {}
    if topk:
        update = tr.update

        def probed(st: Any, *args: Any) -> Any:
            if len(records) == batches - 1:
                probe.update(topk_probe(st))
            return update(st, *args)

        setattr(tr, "update", probed)  # noqa: B010

    def on_batch(rec: dict[str, Any]) -> None:
        records.append(rec)
        if len(records) >= batches:
            raise _Stop

    with tempfile.TemporaryDirectory() as out:
        settings = tr.RunSettings(out_dir=Path(out), progress=False)
        with contextlib.suppress(_Stop):
            tr.train_dareu(original, bench.forget, [*bench.retain, *bench.general_train],
                           attributor, tiny_config(**overrides), settings, Accelerator(cpu=True),
                           on_batch=on_batch)  # fmt: skip
    total = sum(r["batch_s"] for r in records)
    tokens = sum(r["resp_len"] * r["n_rollouts"] for r in records)
    inner = sum(t.get(k, 0.0) for k in ("teacher", "backward", "optimizer"))
    t["update_rest"] = t.get("update", 0.0) - inner
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batches": len(records), "iteration_s": total / len(records), "phases": t,
            "total_s": total, "tokens": tokens, "peak_rss_mb": rss, **probe}  # fmt: skip


def topk_probe(st: Any, ks: tuple[int, ...] = (16, 64, 256)) -> dict[str, Any]:
    """The top-k teacher's error on the policy as it stands: over every retain answer token,
    the distillation KL and its gradient w.r.t. the logits, top-k form against full."""
    import torch

    import dareu.ppo.trainer as tr
    from dareu.ppo.losses import distill_from_teacher
    from dareu.ppo.teacher import compress

    rows = list(range(len(st.retain_rows)))
    full = tr.cached_teacher(st, rows)
    assert isinstance(full, torch.Tensor), "the probe wants the full cache"
    with torch.no_grad():
        parts = [rows[i : i + 64] for i in range(0, len(rows), 64)]
        x = torch.cat([st.policy(**r_in, keep=keep)[0].float()
                       for r_in, keep in (tr.retain_inputs(st, p) for p in parts)])  # fmt: skip

    def loss_and_grad(teacher: Any) -> tuple[float, Any]:
        y = x.clone().requires_grad_()
        loss = distill_from_teacher(y, teacher, float(len(x)))
        loss.backward()
        return float(loss), y.grad

    kl, grad = loss_and_grad(full)
    out: dict[str, Any] = {"answer_tokens": len(x), "kl_full": kl}
    for k in ks:
        tk = compress(full, k)
        kl_k, grad_k = loss_and_grad(tk)
        rest = 1 - tk.logp.exp().sum(-1)
        out[f"top{k}"] = {"kl_rel_gap": kl_k / kl - 1,
                          "grad_rel_err": float((grad_k - grad).norm() / grad.norm()),
                          "rest_mass_mean": float(rest.mean()),
                          "rest_mass_max": float(rest.max())}  # fmt: skip
    return out


def logprob_check(rows: int) -> dict[str, Any]:
    """Can the old log-probs come from the sampling pass? The raw logits `generate` returns
    (KV cache, one position at a time) against the no-grad forward pass over the whole
    sequence that the loop runs: max |difference| of the response tokens' log-probs."""
    import torch

    from dareu.data import load_benchmark
    from dareu.data.formatting import row_formats
    from dareu.models.loading import load_model
    from dareu.ppo.config import tiny_config
    from dareu.ppo.rollout import (
        SeededSampler,
        encode_prompt_batch,
        eos_ids,
        flat_logprobs,
        pad_id_of,
        response_keep,
        response_lengths,
        sequence_inputs,
    )
    from dareu.train.finetune import default_config, ensure_finetuned

    bench = load_benchmark("synthetic")
    model: Any
    model, tok = load_model(ensure_finetuned(bench, "original", default_config(bench),
                                             progress=False))  # fmt: skip
    model.eval()
    cfg, forget = tiny_config(), bench.forget[:rows]
    ids, mask = encode_prompt_batch(tok, [s.question for s in forget], row_formats(forget, "plain"))
    eos = eos_ids(model, tok)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                             max_new_tokens=cfg.max_new_tokens, eos_token_id=eos,
                             pad_token_id=pad_id_of(tok, eos), output_logits=True,
                             return_dict_in_generate=True,
                             logits_processor=[SeededSampler(range(len(forget)),
                                                             cfg.temperature)])  # fmt: skip
        resp = out.sequences[:, ids.shape[1] :]
        lens = response_lengths(resp, eos)
        valid = torch.arange(resp.shape[1])[None] < lens[:, None]
        from_sampling = flat_logprobs(torch.stack(out.logits, 1)[valid], resp[valid],
                                      cfg.temperature)  # fmt: skip
        inputs = sequence_inputs(ids, mask, resp, lens)
        keep = response_keep(ids.shape[1], lens, inputs["input_ids"].shape[1])
        forward = flat_logprobs(model(**inputs).logits[keep], resp[valid], cfg.temperature)
    diff = (from_sampling - forward).abs()
    return {"tokens": int(valid.sum()), "bitwise_equal": bool(torch.equal(from_sampling, forward)),
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}  # fmt: skip


def measure(
    code: Path, batches: int, threads: int | None, rollouts: int | None = None,
    length: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code / "python"), "TRANSFORMERS_VERBOSITY": "error"}
    cmd = [sys.executable, str(REPO / "scripts" / "bench_ppo.py"), "--worker", "--batches",
           str(batches), *(["--threads", str(threads)] if threads else []),
           *(["--rollouts", str(rollouts)] if rollouts else []),
           *(["--response-len", str(length)] if length else [])]  # fmt: skip
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"error: the measurement of {code} failed:\n{run.stderr[-3000:]}")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


# (rollouts, fixed response length or None = responses end at EOS as in the default job)
SCALE = ((16, None), (32, None), (64, None), (32, 32), (32, 64), (32, 128))


def scale(batches: int, reps: int, threads: int | None) -> str:
    """How the iteration grows with the batch and with the response length, and which
    phases dominate at each point (this tree only)."""
    lines = ["| rollouts | response length | iteration s | rollout tokens/s | peak RSS MB | "
             "largest phases |", "|---|---|---|---|---|---|"]  # fmt: skip
    for rollouts, length in SCALE:
        print(f"scale: {rollouts} rollouts, length {length or 'EOS'} ...", file=sys.stderr)
        runs = [measure(REPO, batches, threads, rollouts, length) for _ in range(reps)]
        total = sum(r["total_s"] for r in runs)
        shares = {p: sum(r["phases"].get(p, 0.0) for r in runs) / total for p in PHASES}
        top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
        mean_len = sum(r["tokens"] for r in runs) / (sum(r["batches"] for r in runs) * rollouts)
        lines.append(
            f"| {rollouts} | {length or f'EOS (mean {mean_len:.0f})'} | "
            f"{statistics.mean(r['iteration_s'] for r in runs):.2f} | "
            f"{sum(r['tokens'] for r in runs) / total:.0f} | "
            f"{max(r['peak_rss_mb'] for r in runs):.0f} | "
            + ", ".join(f"{p} {100 * v:.0f}%" for p, v in top)
            + " |"
        )
    return "\n".join(lines)


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
    p.add_argument("--logprob-check", action="store_true",
                   help="sampling pass's log-probs vs the forward pass's")  # fmt: skip
    p.add_argument("--topk-check", action="store_true",
                   help="top-k teacher's distillation error after --batches batches")  # fmt: skip
    p.add_argument("--scale", action="store_true",
                   help="time at 16/32/64 rollouts, response length 32/64/128")  # fmt: skip
    p.add_argument("--rollouts", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--response-len", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.batches < 1 or a.reps < 1 or (a.threads is not None and a.threads < 1):
        p.error("--batches, --reps and --threads must be >= 1")
    if a.worker:
        print(json.dumps(worker(a.batches, a.threads, a.rollouts, a.response_len)))
        return 0
    if a.scale:
        print(scale(a.batches, a.reps, a.threads))
        return 0
    if a.logprob_check:
        print(json.dumps(logprob_check(32)))
        return 0
    if a.topk_check:
        r = worker(a.batches, a.threads, topk=True)
        keys = [k for k in r if k in ("answer_tokens", "kl_full") or k.startswith("top")]
        print(json.dumps({k: r[k] for k in keys}))
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
