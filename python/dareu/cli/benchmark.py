"""Compare unlearning methods: methods x seeds x forget requests, each run evaluated.

    dareu benchmark                                              # every method, seed 0, synthetic
    dareu benchmark --methods npo,simnpo,atwu,dareu --seeds 0,1,2
    dareu benchmark --benchmark tofu --tofu-dir ../shared/data/tofu \\
        --forget forget01,forget05 --model /models/tofu_llama2_7b --format llama2 \\
        --retain-model forget01=/models/retain99,forget05=/models/retain95 --methods npo,atwu

`scripts/benchmark.py` is the same command. Each run goes through the same job as `dareu
unlearn` (`dareu.pipeline.run_job`: the unlearning, then `dareu.eval` against the retain
model), by default in a fresh child process so its wall time and peak memory are its own. A
finished run is a folder `<out>/runs/<forget>/<method>/seed-<s>/` (written atomically, with
`result.json`); a re-run skips it, so a killed benchmark resumes where it stopped. At the
end: `results.md` (one table, mean ± sd over seeds), `results.json`, and
`forget_vs_utility.png`. Exit codes: 0 done, 2 invalid arguments, 1 a run failed (the
others still ran).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from dareu.cli import tofu_authors

# The table: (column title, summary key, scale). The paper's columns first, then ours.
COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("D_F ROUGE-L", "forget_rougeL", 1.0),
    ("D_R ROUGE-L", "retain_rougeL", 1.0),
    ("D_test ROUGE-L", "test_rougeL", 1.0),
    ("ToW", "tow", 1.0),
    ("TR forget", "forget_truth_ratio", 1.0),
    ("MIA AUC (min-k)", "mia_min_k_auc", 1.0),
    ("privleak", "privleak", 1.0),
    ("FQ", "forget_quality", 1.0),
    ("MU", "model_utility", 1.0),
    ("gibberish %", "gibberish_rate", 100.0),
    # Exact grades on the knowledge world (dareu.eval.grading); absent elsewhere.
    ("F leak %", "forget_grade_leak", 100.0),
    ("F held-out leak %", "forget_heldout_grade_leak", 100.0),
    ("F substitute %", "forget_grade_substitute", 100.0),
    ("F refusal %", "forget_grade_refusal", 100.0),
    ("F confusion %", "forget_grade_confusion", 100.0),
    ("F malformed %", "forget_grade_malformed", 100.0),
    ("R correct %", "retain_grade_leak", 100.0),
    ("R held-out correct %", "retain_heldout_grade_leak", 100.0),
    ("R malformed %", "retain_grade_malformed", 100.0),
    ("name leak %", "leak_name_rate", 100.0),
    ("attr score", "forget_attr_score", 1.0),
    ("resp len", "forget_resp_len", 1.0),
    ("train s", "train_s", 1.0),
    ("wall s", "wall_s", 1.0),
    ("peak MB", "peak_memory_mb", 1.0),
)
# The forgetting audit (dareu.eval.audit): leak recovered by each attack, a second table.
AUDIT_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("no attack %", "audit_incontext_leak_k0", 100.0),
    ("relearn %", "audit_relearn_leak", 100.0),
    ("relearn held-out %", "audit_relearn_heldout_leak", 100.0),
    ("relearn all D_F %", "audit_relearn_all_leak", 100.0),
    ("8-bit %", "audit_quant8_leak", 100.0),
    ("4-bit %", "audit_quant4_leak", 100.0),
    ("in-context k=2 %", "audit_incontext_leak_k2", 100.0),
    ("in-context k=4 %", "audit_incontext_leak_k4", 100.0),
    # Gains: after the attack minus the same questions asked of the unattacked model.
    ("relearn gain", "gain:audit_relearn_leak:audit_relearn_before_leak", 100.0),
    ("relearn all gain", "gain:audit_relearn_all_leak:audit_relearn_all_before_leak", 100.0),
    ("4-bit gain", "gain:audit_quant4_leak:audit_incontext_leak_k0", 100.0),
    ("in-context k=2 gain", "gain:audit_incontext_leak_k2:audit_incontext_leak_k0", 100.0),
    ("audit s", "audit_seconds", 1.0),
)
# The completion task (dareu.eval.completion): continuations of the forget / retain
# documents, a third table (with the QA grades beside it: what unlearning one kind of row
# does to the other).
COMPLETION_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("F cont. ROUGE-L", "completion_forget_rougeL", 1.0),
    ("F ES", "completion_forget_extraction_strength", 1.0),
    ("F EM", "completion_forget_exact_memorization", 1.0),
    ("F cont. leak %", "completion_grade_leak", 100.0),
    ("F cont. substitute %", "completion_grade_substitute", 100.0),
    ("F cont. confusion %", "completion_grade_confusion", 100.0),
    ("F cont. malformed %", "completion_grade_malformed", 100.0),
    ("R cont. ROUGE-L", "completion_retain_rougeL", 1.0),
    ("R cont. correct %", "completion_retain_grade_leak", 100.0),
    ("doc MIA AUC", "completion_mia_min_k_auc", 1.0),
    ("QA F leak %", "forget_grade_leak", 100.0),
    ("QA R correct %", "retain_grade_leak", 100.0),
    ("train s", "train_s", 1.0),
)
RESULT_FILE = "result.json"
DEFAULT_METHODS = (
    "original", "retrain", "finetune", "ga", "graddiff", "kl", "npo", "simnpo", "idknll",
    "idkdpo", "rmu", "undial", "wga", "satimp", "scrub", "atwu", "dareu",
)  # fmt: skip


# --------------------------------------------------------------------------- arguments
def build_parser(prog: str = "dareu benchmark") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("--methods", default="all",
        help="comma-separated; 'all' (default) = " + ",".join(DEFAULT_METHODS))  # fmt: skip
    add("--seeds", default="0", help="comma-separated unlearning seeds (default: 0)")
    add("--forget", default=None,
        help="comma-separated forget requests (TOFU: forget01,forget05); an owner "
        "list is joined with '+' (a+b); default: the benchmark's own")  # fmt: skip
    add("--benchmark", default="synthetic",
        help="synthetic (default) | tofu | folder | JSONL")  # fmt: skip
    add("--tofu-dir", default=None, help="local TOFU folder")
    add("--tofu-authors", type=tofu_authors, default=None,
        help="TOFU only: the forget authors and this many retain authors; 'all' keeps every "
        "author (default: 20 with the tiny model, all with --model)")  # fmt: skip
    add("--model", default=None, help="original model folder (default: tiny)")
    add("--retain-model", default=None,
        help="retain model folder, or per request: forget05=PATH,forget10=PATH")  # fmt: skip
    add("--format", dest="fmt", default="plain", help="plain (default) | llama2 | chat")
    add("--dtype", default="auto", help="auto (default) | bf16 | fp16 | fp32")
    add("--out", default=None, help="benchmark folder (default: runs/benchmark/NAME)")
    add("--name", default=None, help="benchmark name (default: from the arguments)")
    add("--eval-max-new-tokens", type=int, default=None,
        help="tokens per evaluated answer (default: 64 tiny, 200 with --model)")  # fmt: skip
    add("--eval-max-samples", type=int, default=None, help="cap per evaluated split")
    add("--eval-batch-size", type=int, default=32, help="generation batch (default: 32)")
    add("--hparam", action="append", default=[], metavar="METHOD:KEY=VALUE",
        help="a method hyperparameter, e.g. npo:beta=0.2 (repeatable)")  # fmt: skip
    add("--train", action="append", default=[], metavar="[METHOD:]KEY=VALUE",
        help="an optimisation setting (lr, epochs, batch_size, lora, ...), for every "
        "method or one (repeatable)")  # fmt: skip
    add("--force", action="store_true", help="redo finished runs")
    add("--no-isolate", dest="isolate", action="store_false",
        help="run in this process (peak memory is then the process high-water mark)")  # fmt: skip
    add("--threads", type=int, default=None, help="torch threads per run")
    add("--task", choices=["auto", "qa", "completion", "both"], default="auto",
        help="what each run unlearns (dareu unlearn --task; default: auto)")  # fmt: skip
    add("--no-audit", dest="audit", action="store_false",
        help="skip the forgetting audit of every evaluated model")  # fmt: skip
    add("--report-only", action="store_true", help="only rebuild the table and plot")
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def split_list(s: str | None) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def parse_kv(items: list[str], *, need_method: bool, flag: str) -> dict[str, dict[str, Any]]:
    """["npo:beta=0.2", "lr=1e-4"] -> {"npo": {"beta": 0.2}, "*": {"lr": 1e-4}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        head, sep, value = item.partition("=")
        method, colon, key = head.rpartition(":")
        if not sep or not key or (need_method and not colon):
            form = "METHOD:KEY=VALUE" if need_method else "[METHOD:]KEY=VALUE"
            raise ValueError(f"{flag} {item!r}: expected {form}")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(method.lower() or "*", {})[key] = parsed
    return out


def plan(a: argparse.Namespace) -> dict[str, Any]:
    """Validate every argument before any compute (ValueError names the flag)."""
    import dataclasses

    from dareu.cache import check_output_dir
    from dareu.data.formatting import check_format
    from dareu.methods import METHOD_NAMES, UnlearnConfig
    from dareu.models.loading import check_model_path
    from dareu.unlearners import UNLEARNERS

    methods = list(DEFAULT_METHODS) if a.methods == "all" else split_list(a.methods)
    known = {"original", *UNLEARNERS, *METHOD_NAMES}
    bad = [m for m in methods if m.lower() not in known]
    if not methods or bad:
        raise ValueError(f"--methods: unknown {bad}; choose from {', '.join(sorted(known))}")
    try:
        seeds = [int(s) for s in split_list(a.seeds)]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers, got {a.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds: no seed given")
    forgets: list[str | None] = [f.replace("+", ",") for f in split_list(a.forget)] or [None]
    check_format(a.fmt)
    if a.model is not None:
        check_model_path(a.model)
    if a.tofu_dir is not None and not Path(a.tofu_dir).is_dir():
        raise ValueError(f"--tofu-dir {a.tofu_dir}: not a folder")
    retain = retain_models(a.retain_model, forgets)
    if a.model is not None and any(v is None for v in retain.values()):
        raise ValueError(
            "--retain-model is required with --model: ToW, forget quality and 'retrain' are "
            "measured against the model fine-tuned without the forget set"
        )
    hparams = parse_kv(a.hparam, need_method=True, flag="--hparam")
    train = parse_kv(a.train, need_method=False, flag="--train")
    settings = {f.name for f in dataclasses.fields(UnlearnConfig)}
    for m, values in train.items():
        unknown = sorted(set(values) - settings)
        if unknown:
            raise ValueError(f"--train: unknown setting(s) {unknown} for {m}")
    for m in methods:  # unknown hyperparameter or setting names fail now, not mid-run
        if m.lower() in METHOD_NAMES:
            cfg = UnlearnConfig(method=m, model=a.model, hparams=hparams.get(m.lower(), {}),
                                **{**train.get("*", {}), **train.get(m.lower(), {})})  # fmt: skip
            try:
                cfg.validate()
            except TypeError as err:  # e.g. lr="abc" compared with a number
                raise ValueError(f"--train/--hparam for {m}: {err}") from None
    check_output_dir(bench_dir(a), "--out")
    if a.eval_max_samples is not None and a.eval_max_samples < 1:
        raise ValueError("--eval-max-samples must be >= 1")
    return {"methods": [m.lower() for m in methods], "seeds": seeds, "forgets": forgets,
            "retain": retain, "hparams": hparams, "train": train}  # fmt: skip


def retain_models(spec: str | None, forgets: list[str | None]) -> dict[str | None, str | None]:
    """--retain-model: one folder for every request, or per request forget05=PATH,...;
    every folder checked now."""
    from dareu.models.loading import check_model_path

    retain: dict[str | None, str | None] = {f: None for f in forgets}
    if spec:
        if "=" in spec:
            for pair in split_list(spec):
                k, _, v = pair.partition("=")
                if k.replace("+", ",") not in retain:
                    raise ValueError(f"--retain-model: {k!r} is not one of the --forget requests")
                retain[k.replace("+", ",")] = v or None
        else:
            retain = {f: spec for f in forgets}
        for path in retain.values():
            if path is not None:
                check_model_path(path)
    return retain


def bench_dir(a: argparse.Namespace) -> Path:
    from dareu.cache import content_hash, output_root

    if a.out:
        return Path(a.out).expanduser().resolve()
    subset = [a.tofu_authors] if a.tofu_authors is not None else []
    name = a.name or content_hash(a.benchmark, a.model, a.fmt, a.forget, a.tofu_dir, *subset)
    return output_root() / "benchmark" / f"{Path(str(a.benchmark)).name}-{name}"


def tag(forget: str | None) -> str:
    return "default" if forget is None else forget.replace(",", "+").replace("/", "_")


# --------------------------------------------------------------------------- one run
def job_config(spec: dict[str, Any]) -> Any:
    """The shared job's settings for one run of the benchmark."""
    from dareu.pipeline import JobConfig

    method = spec["method"]
    return JobConfig(
        method="dareu" if method == "original" else method,
        benchmark=spec["benchmark"],
        forget=spec["forget"],
        tofu_dir=spec["tofu_dir"],
        tofu_authors=spec.get("tofu_authors"),
        model=spec["model"],
        retain_model=spec["retain_model"],
        fmt=spec["fmt"],
        seed=spec["seed"],
        dtype=spec["dtype"],
        # Always a fresh run: the benchmark's own folders are its cache, and a cache hit
        # here would report the time and memory of reading a summary, not of unlearning.
        force=True,
        eval_max_new_tokens=spec["eval_max_new_tokens"],
        eval_batch_size=spec["eval_batch_size"],
        eval_max_samples=spec["eval_max_samples"],
        audit=spec.get("audit", True),
        task=spec.get("task", "auto"),
        progress=False,
    )


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Unlearn + evaluate one (method, seed, forget) through the shared job; in a child."""
    import resource

    import torch

    from dareu.pipeline import run_job
    from dareu.ppo.config import paper_config, tiny_config
    from dareu.unlearners import UNLEARNERS

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    method = spec["method"]
    job = job_config(spec)
    tiny = spec["model"] is None
    t0 = time.perf_counter()
    if method == "original":
        # The original model's row: read from any finished run of this request.
        return {"from": spec["original_from"]}
    baseline = None
    if method not in UNLEARNERS:  # a loss on the shared trainer: spell out its settings
        baseline = resolved_baseline(spec)
        ppo = tiny_config() if tiny else paper_config()
    else:
        ppo = tiny_config(**spec["train"]) if tiny else paper_config(**spec["train"])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run = run_job(job, ppo, baseline=baseline)
    summary = json.loads((run / "summary.json").read_text())
    row = summary["rounds"][-1]
    if torch.cuda.is_available():
        peak, kind = torch.cuda.max_memory_allocated() / 2**20, "cuda_allocated"
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
        kind = "process_max_rss"
    return {
        "metrics": row["unlearned"],
        "original": row["original"],
        "retain": row["retain"],
        "train_s": summary["train_s"],
        "wall_s": round(time.perf_counter() - t0, 1),
        "job_wall_s": summary["wall_s"],
        "peak_memory_mb": round(peak, 1),
        "peak_memory_kind": kind,
        "run_dir": str(run),
    }


TRAIN_KEYS = ("lr", "epochs", "batch_size", "grad_accum", "warmup_epochs", "weight_decay",
              "max_length", "lora")  # fmt: skip


def resolved_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """Every hyperparameter and budget setting spelled out, defaults included.

    The job caches a run by the settings it is given; passing the resolved ones means a
    change of a default in `dareu.methods.defaults` is a new run, not a stale cache hit.
    """
    from dareu.methods import UnlearnConfig

    cfg = UnlearnConfig(method=spec["method"], model=spec["model"], hparams=spec["hparams"],
                        profile="tiny" if spec["model"] is None else "paper",
                        **spec["train"])  # fmt: skip
    r = cfg.resolved()
    train = {**{k: r[k] for k in TRAIN_KEYS}, **spec["train"]}
    return {"hparams": r["hparams"], "train": train}


def run_isolated(spec: dict[str, Any], isolate: bool) -> dict[str, Any]:
    if not isolate:
        return run_one(spec)
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_one, spec).result()


# --------------------------------------------------------------------------- table + plot
def load_results(root: Path) -> list[dict[str, Any]]:
    from dareu.cache import is_complete

    rows = []
    for f in sorted(root.glob(f"runs/*/*/seed-*/{RESULT_FILE}")):
        if is_complete(f.parent):
            rows.append(json.loads(f.read_text()))
    return rows


def value(r: dict[str, Any], key: str) -> Any:
    """A summary value of a run; "gain:A:B" is A - B (None when either is missing)."""
    if key.startswith("gain:"):
        after, before = (value(r, k) for k in key.split(":")[1:])
        return None if after is None or before is None else after - before
    return r.get(key) if key in ("train_s", "wall_s", "peak_memory_mb") else r["metrics"].get(key)


DIRECTION_KEYS = ("audit_relearn_leak", "audit_relearn_heldout_leak", "audit_relearn_all_leak",
                  "audit_incontext_leak_k2", "audit_incontext_leak_k4")  # fmt: skip


def direction_check(rows: list[dict[str, Any]], near_zero: float = 0.05) -> tuple[str, bool]:
    """Per seed: is every attack's leak on the original >= on the retain model, and does
    the retain model's in-context leak stay near 0? (If not, the in-context probe reads
    the context, not the weights.) Returns (markdown, all passed)."""
    orig = {r["seed"]: r["metrics"] for r in rows if r["method"] == "original"}
    ret = {r["seed"]: r["metrics"] for r in rows if r["method"] == "retrain"}
    lines, ok_all = ["| seed | " + " | ".join(k[6:] for k in DIRECTION_KEYS)
                     + " | retain in-context max | passed |", "|" + "---|" * 8], True  # fmt: skip
    for seed in sorted(set(orig) & set(ret)):
        o, t = orig[seed], ret[seed]
        cells, ok = [], True
        for k in DIRECTION_KEYS:
            if o.get(k) is None or t.get(k) is None:
                cells.append("–")
                continue
            ok &= o[k] >= t[k]
            cells.append(f"{o[k]:.2f} vs {t[k]:.2f}")
        ctx = max((t.get(k) or 0.0) for k in DIRECTION_KEYS[3:])
        ok &= ctx <= near_zero
        ok_all &= ok
        lines.append(
            f"| {seed} | " + " | ".join(cells) + f" | {ctx:.2f} | {'yes' if ok else 'NO'} |"
        )
    if len(lines) == 2:
        return "", True
    head = ["Direction check (original vs retain model, per seed; the retain model's in-context "
            f"leak must stay <= {near_zero}):", ""]  # fmt: skip
    return "\n".join([*head, *lines, ""]), ok_all


def relearn_curves(rows: list[dict[str, Any]], methods: list[str]) -> str:
    """Mean leak (%) over seeds at each step of relearning on all of D_F (paper Fig. 7)."""
    order = [m for m in methods if any(r["method"] == m for r in rows)]
    curves = {m: [r["metrics"]["audit_relearn_curve"] for r in rows
                  if r["method"] == m and r["metrics"].get("audit_relearn_curve")]
              for m in order}  # fmt: skip
    curves = {m: c for m, c in curves.items() if c}
    if not curves:
        return ""
    steps = [p["step"] for p in next(iter(curves.values()))[0]]
    lines = ["| method | " + " | ".join(f"step {x}" for x in steps) + " |",
             "|" + "---|" * (len(steps) + 1)]  # fmt: skip
    for m, cs in curves.items():
        means = [100 * sum(c[i]["leak"] or 0 for c in cs) / len(cs) for i in range(len(steps))]
        lines.append(f"| {m} | " + " | ".join(f"{v:.0f}" for v in means) + " |")
    return "\n".join(["Leak (%) while relearning on all of D_F (mean over seeds):", "", *lines, ""])


def table(
    rows: list[dict[str, Any]],
    methods: list[str],
    columns: tuple[tuple[str, str, float], ...] = COLUMNS,
) -> tuple[str, list[dict[str, Any]]]:
    """One markdown table per forget request; cells are mean ± sd over seeds."""
    from dareu.eval.results import cell

    lines: list[str] = []
    agg: list[dict[str, Any]] = []
    for forget in sorted({r["forget_tag"] for r in rows}):
        sub = [r for r in rows if r["forget_tag"] == forget]
        lines += [f"### forget request: {forget}", ""]
        head = ["method", "n", *[c[0] for c in columns]]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        order = [m for m in methods if any(r["method"] == m for r in sub)]
        order += sorted({r["method"] for r in sub} - set(order))
        for m in order:
            runs = [r for r in sub if r["method"] == m]
            cells, entry = [], {"forget": forget, "method": m, "seeds": [r["seed"] for r in runs]}
            for _title, key, scale in columns:
                vals = [value(r, key) for r in runs]
                nums = [v * scale for v in vals if isinstance(v, int | float)]
                cells.append(cell(nums) if nums else "–")
                entry[key] = nums
            lines.append("| " + " | ".join([m, str(len(runs)), *cells]) + " |")
            agg.append(entry)
        lines.append("")
    return "\n".join(lines), agg


def plot(agg: list[dict[str, Any]], out: Path) -> Path | None:
    """Forget (D_F ROUGE-L, lower = forgotten) vs utility (MU and D_R ROUGE-L), mean ± sd."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not agg:
        return None
    forgets = sorted({e["forget"] for e in agg})
    fig, axes = plt.subplots(len(forgets), 2, figsize=(12, 4.2 * len(forgets)), squeeze=False)
    cmap = plt.get_cmap("tab20")
    methods = list(dict.fromkeys(e["method"] for e in agg))
    markers = "osD^v<>pP*Xh"

    def sd(xs: list[float]) -> float | None:
        return float(np.std(xs, ddof=1)) if len(xs) > 1 else None

    for row, forget in enumerate(forgets):
        for col, ykey, ylabel in ((0, "model_utility", "model utility (MU)"),
                                  (1, "retain_rougeL", "D_R ROUGE-L recall")):  # fmt: skip
            ax = axes[row][col]
            for e in (e for e in agg if e["forget"] == forget):
                xs, ys = e["forget_rougeL"], e[ykey]
                if not xs or not ys:
                    continue
                i = methods.index(e["method"])
                ax.errorbar(np.mean(xs), np.mean(ys), xerr=sd(xs), yerr=sd(ys), capsize=3,
                            marker=markers[i % len(markers)], color=cmap(i % 20),
                            linestyle="none", label=e["method"])  # fmt: skip
            ax.set_xlabel("D_F ROUGE-L recall (lower = more forgotten)", fontsize=9)
            ax.set_ylabel(ylabel, fontsize=9)
            ax.set_title(f"{forget}: forget vs utility", fontsize=10)
            ax.grid(alpha=0.3)
        axes[row][1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def detector_agreement(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The gibberish detector against the exact grader's form check (knowledge world):
    precision and recall of `gibberish` for `not well_formed` on every run's forget answers
    (the original and retain models' answers counted once)."""
    pairs: dict[str, list[tuple[bool, bool]]] = {}
    seen: set[str] = set()
    for r in rows:
        summary = Path(r["run_dir"]) / "summary.json"
        if not summary.is_file():
            continue
        dirs = json.loads(summary.read_text())["rounds"][-1].get("eval_dirs", {})
        for who, d in dirs.items():
            label = r["method"] if who == "unlearned" else who
            if not d or d in seen or not (Path(d) / "per_sample.json").is_file():
                continue
            seen.add(d)
            recs = json.loads((Path(d) / "per_sample.json").read_text()).get("forget", [])
            pairs.setdefault(label, []).extend(
                (bool(x["gibberish"]["gibberish"]), not x["well_formed"])
                for x in recs
                if "well_formed" in x and "gibberish" in x
            )
    if not pairs:
        return "", {}

    from dareu.eval.gibberish import agreement

    stats = {k: agreement(v) for k, v in sorted(pairs.items())}
    stats["all"] = agreement([p for v in pairs.values() for p in v])
    lines = [
        "### Gibberish detector vs the exact grader (forget answers)",
        "",
        "| model | answers | malformed | flagged | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for k, v in stats.items():
        fmt = [f"{v[x]:.2f}" if v[x] is not None else "–" for x in ("precision", "recall")]
        lines.append(f"| {k} | {v['n']} | {v['malformed']} | {v['flagged']} | {' | '.join(fmt)} |")
    return "\n".join([*lines, ""]), stats


# The notes under each table of results.md.
TABLE_NOTES = (
    "D_F/D_R/D_test ROUGE-L = ROUGE-L recall of greedy answers on forget / retain / test "
    "(synthetic: general knowledge); ToW = prod(1 - |ROUGE - ROUGE_retrain|); TR forget = "
    "mean min(tr, 1/tr); MIA AUC = min-k (k=0.4) forget vs holdout; FQ = KS-test p-value "
    "of forget truth ratios vs the retain model; MU = harmonic mean of retain and test "
    "prob/ROUGE/TR; F/R grades = exact grades of the greedy answers to the forget / retain "
    "questions in trained and held-out phrasings (R correct = the retain facts stated); "
    "name leak = share of forget answers naming the owner; attr score = the attributor's "
    "probability of the true owner for the greedy answer; train s = unlearning only; "
    "wall s = the whole run (model loading, unlearning and evaluation, child process); "
    "peak MB = the run's peak RSS (CPU) or peak CUDA memory. 'original' and 'retrain' "
    "are the starting and gold-standard models."
)
AUDIT_NOTES = (
    "Share of forget facts stated after the attack, on a copy of each model: relearn = "
    "20 steps on half of the forget facts, asked on the other half; relearn all D_F = "
    "the paper's Fig. 7 variant; 8/4-bit = round-to-nearest, group 128; in-context = "
    "k of the owner's other facts in the prompt. 'retrain' is the floor, 'original' "
    "the ceiling; gains are measured from the same questions unattacked."
)
COMPLETION_NOTES = (
    "Prompt = a document's first N tokens, continuation = the next M (greedy). "
    "cont. ROUGE-L = ROUGE-L recall against the true continuation; ES / EM = "
    "extraction strength / exact memorisation, teacher-forced; cont. grades = the "
    "exact grader on the continuation (leak = states a fact the true continuation "
    "states); doc MIA AUC = min-k on whole documents, forget vs holdout people; "
    "QA F leak / R correct = the QA grades of the same models."
)


def write_outputs(root: Path, methods: list[str], meta: dict[str, Any]) -> Path:
    from dareu.cache import atomic_write_json, atomic_write_text

    rows = load_results(root)
    md, agg = table(rows, methods)
    audit_md, audit_agg = table(rows, methods, AUDIT_COLUMNS)
    completion_md, completion_agg = table(rows, methods, COMPLETION_COLUMNS)
    completed = any(value(r, "completion_forget_rougeL") is not None for r in rows)
    audited = any(value(r, "audit_seconds") is not None for r in rows)
    det_md, det = detector_agreement(rows)
    notes = [
        "# Unlearning benchmark",
        "",
        f"{len(rows)} runs; cells are mean ± sd over seeds (sample sd, n in column `n`).",
        TABLE_NOTES,
        "",
        md,
        *(
            [
                "## Forgetting audit: leak recovered by each attack (dareu.eval.audit)",
                "",
                AUDIT_NOTES,
                "",
                audit_md,
                relearn_curves(rows, methods),
                direction_check(rows)[0],
            ]
            if audited
            else []
        ),
        *(
            [
                "## Completion task: continuations of the owners' documents "
                "(dareu.eval.completion)",
                "",
                COMPLETION_NOTES,
                "",
                completion_md,
            ]
            if completed
            else []
        ),
        det_md,
        f"Settings: `{json.dumps(meta)}`",
        "",
    ]
    atomic_write_text(root / "results.md", "\n".join(notes))
    atomic_write_json(root / "results.json",
                      {"meta": meta, "rows": rows, "aggregate": agg, "audit": audit_agg,
                       "completion": completion_agg,
                       "detector": det})  # fmt: skip
    plot(agg, root / "forget_vs_utility.png")
    return root / "results.md"


# --------------------------------------------------------------------------- main
def run_spec(a: argparse.Namespace, p: dict[str, Any], forget: str | None, method: str,
             seed: int) -> dict[str, Any]:  # fmt: skip
    """Everything one run needs, picklable (it goes to a child process)."""
    return {
        "method": method, "seed": seed, "forget": forget, "benchmark": a.benchmark,
        "tofu_dir": a.tofu_dir, "tofu_authors": a.tofu_authors, "model": a.model,
        "retain_model": p["retain"][forget],
        "fmt": a.fmt, "dtype": a.dtype, "threads": a.threads,
        "eval_max_new_tokens": a.eval_max_new_tokens or (64 if a.model is None else 200),
        "eval_batch_size": a.eval_batch_size, "eval_max_samples": a.eval_max_samples,
        "audit": a.audit, "task": a.task, "hparams": p["hparams"].get(method, {}),
        "train": {**p["train"].get("*", {}), **p["train"].get(method, {})},
    }  # fmt: skip


def original_row(root: Path, forget: str | None, seed: int) -> dict[str, Any]:
    """The original model's row, read from a finished run of the request.

    The embedded world draws its owners (and so its original model) per seed: read the row
    from a run of the same seed when there is one.
    """
    done = [r for r in load_results(root) if r["forget_tag"] == tag(forget)]
    done.sort(key=lambda r: r["seed"] != seed)
    if not done:
        raise RuntimeError("no finished run of this request to read it from")
    return {"metrics": done[0]["original"], "original": done[0]["original"],
            "retain": done[0]["retain"], "train_s": 0.0, "wall_s": None,
            "peak_memory_mb": None, "run_dir": done[0]["run_dir"]}  # fmt: skip


def run_all(a: argparse.Namespace, p: dict[str, Any], root: Path, run: Any) -> int:
    """Every (forget, method, seed) not finished yet; returns the number that failed."""
    from dareu.cache import atomic_dir, atomic_write_json, is_complete

    failed = 0
    todo = [(f, m, s) for f in p["forgets"] for m in p["methods"] for s in p["seeds"]]
    # "original" needs one finished run of the request to read its row from.
    todo.sort(key=lambda t: t[1] == "original")
    for i, (forget, method, seed) in enumerate(todo, 1):
        folder = root / "runs" / tag(forget) / method / f"seed-{seed}"
        if is_complete(folder) and not a.force:
            print(f"[{i}/{len(todo)}] done already: {folder}", flush=True)
            continue
        print(f"[{i}/{len(todo)}] {method} seed {seed} forget {tag(forget)} ...", flush=True)
        t0 = time.perf_counter()
        try:
            if method == "original":
                res = original_row(root, forget, seed)
            else:
                res = run(run_spec(a, p, forget, method, seed), a.isolate)
        except Exception as err:  # one failed run must not lose the others
            failed += 1
            print(f"    FAILED: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            traceback.print_exc()
            continue
        if folder.exists():  # --force: atomic_dir keeps a complete folder, so clear it
            shutil.rmtree(folder)
        with atomic_dir(folder) as tmp:
            atomic_write_json(
                tmp / RESULT_FILE,
                {"method": method, "seed": seed, "forget": forget, "forget_tag": tag(forget),
                 **res},
            )  # fmt: skip
        m = res["metrics"]
        print(f"    {time.perf_counter() - t0:.0f} s: forget ROUGE-L "
              f"{m.get('forget_rougeL')}, retain {m.get('retain_rougeL')}, "
              f"ToW {m.get('tow')}", flush=True)  # fmt: skip
    return failed


def main(argv: list[str] | None = None, *, run: Any = None) -> int:
    """`run(spec, isolate)` does one run (default: run_isolated; tests pass a fake)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    a = parse(argv)
    try:
        p = plan(a)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    root = bench_dir(a)
    print(f"benchmark folder: {root}", flush=True)
    meta = {k: v for k, v in vars(a).items() if k not in ("force", "report_only")}
    failed = 0 if a.report_only else run_all(a, p, root, run or run_isolated)
    out = write_outputs(root, p["methods"], meta)
    print(f"table: {out}", flush=True)
    return 1 if failed else 0
