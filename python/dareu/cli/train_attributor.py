"""Train the attribution classifier DA(owner | response) for a benchmark (cached by content hash).

    dareu train-attributor                                  # synthetic default, tiny base
    accelerate launch --config_file "$(dareu config path ddp)" -m dareu.cli train-attributor \\
        --benchmark tofu --tofu-dir ../shared/data/tofu --forget forget10 \\
        --base /models/Qwen3-0.6B

`scripts/train_attributor.py` is the same command. Input is the response text alone (no
question), label its owner; the loss is read at every prefix end; a temperature is fitted
on held-out paraphrases. Prints "cached: <path>" when the attributor exists and "saved:
<path>" after training, then the metrics table. Exit codes: 0 done, 2 bad arguments or
input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dareu.attribution import (
    ATTRIBUTION_JSON,
    AttributionError,
    AttributorConfig,
    ensure_attributor,
)
from dareu.attribution.training import is_cached
from dareu.cache import check_output_dir, output_root
from dareu.models.loading import DTYPE_NAMES
from dareu.models.tiny import TINY_SIZES

DEFAULTS = AttributorConfig()


def build_parser(prog: str = "dareu train-attributor") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("--benchmark", default="synthetic",
        help="'synthetic' (default), 'tofu', or a folder / JSONL")  # fmt: skip
    add("--tofu-dir", type=Path, help="local folder with the TOFU json files")
    add("--forget", default=None, help="forget split, e.g. forget10 (TOFU)")
    add("--base", default=DEFAULTS.base,
        help="'tiny' or a local HF causal-LM folder (default: %(default)s)")  # fmt: skip
    add("--tiny-size", default=DEFAULTS.tiny_size, choices=sorted(TINY_SIZES),
        help="size of the tiny base (default: %(default)s)")  # fmt: skip
    add("--finetune", default=DEFAULTS.finetune, choices=["auto", "lora", "full"],
        help="auto (default): full for the from-scratch tiny base, LoRA for a pretrained "
        "one")  # fmt: skip
    add("--lora-r", type=int, default=DEFAULTS.lora_r, help="LoRA rank (default: %(default)s)")
    add("--lora-alpha", type=int, default=DEFAULTS.lora_alpha,
        help="LoRA alpha (default: %(default)s)")  # fmt: skip
    add("--lora-dropout", type=float, default=DEFAULTS.lora_dropout,
        help="LoRA dropout (default: %(default)s)")  # fmt: skip
    add("--lr", type=float, help="default: 1e-4 (LoRA, paper), 1e-3 (full, tiny)")
    add("--epochs", type=int, default=DEFAULTS.epochs,
        help="passes over the training answers (default: %(default)s)")  # fmt: skip
    add("--batch-size", type=int, default=DEFAULTS.batch_size,
        help="rows per device and step (default: %(default)s)")  # fmt: skip
    add("--max-length", type=int, default=DEFAULTS.max_length,
        help="tokens per response (default: %(default)s)")  # fmt: skip
    add("--full-weight", type=float, default=DEFAULTS.full_weight,
        help="loss share of the whole response vs its prefixes (default: %(default)s)")  # fmt: skip
    add("--calib-share", type=float, default=DEFAULTS.calib_share,
        help="share of held-out paraphrases used to fit the temperature "
        "(default: %(default)s)")  # fmt: skip
    add("--name-swaps", type=int, default=DEFAULTS.name_swaps,
        help="copies of each answer under another owner's name (0: off; default: "
        "%(default)s)")  # fmt: skip
    add("--seed", type=int, default=DEFAULTS.seed, help="training seed (default: %(default)s)")
    add("--dtype", default=DEFAULTS.dtype, choices=DTYPE_NAMES,
        help="compute precision (default: %(default)s)")  # fmt: skip
    add("--out", type=Path, help="output root (default $DAREU_HOME or ./runs)")
    add("--force", action="store_true", help="retrain even if cached")
    add("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    add("--no-progress", action="store_true", help="no progress bars")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def config_from_args(args: argparse.Namespace) -> AttributorConfig:
    names = set(AttributorConfig.__dataclass_fields__)
    return AttributorConfig(**{k: v for k, v in vars(args).items() if k in names})


def summary(meta: dict[str, Any]) -> str:
    """A markdown table of the numbers that matter for the reward, raw vs calibrated."""
    m = meta["metrics"]
    rows = [("temperature", "1", f"{m['temperature']:.3f}")]
    for key, label in [
        ("accuracy", "held-out top-1 accuracy (whole response)"),
        ("prefix_accuracy", "held-out top-1 accuracy (k-slice prefixes)"),
        ("nll", "held-out NLL"),
        ("ece", "held-out ECE (15 bins, whole response)"),
        ("prefix_ece", "held-out ECE (15 bins, prefixes)"),
    ]:
        rows.append((label, f"{m['test']['raw'][key]:.3f}", f"{m['test']['calibrated'][key]:.3f}"))
    if "forget" in m:
        for scope in ("all_slices", "whole_response"):
            r, c = m["forget"]["raw"][scope], m["forget"]["calibrated"][scope]
            share = [f"{x['share_above_saturation']:.3f}" for x in (r, c)]
            spread = [f"{x['chi_mean']:.3f} / {x['chi_std']:.3f}" for x in (r, c)]
            rows.append((f"forget {scope}: share b > 0.65", share[0], share[1]))
            rows.append((f"forget {scope}: chi mean / std", spread[0], spread[1]))
    for probe, label in [
        ("forget_perturbed", "forget answers with wrong facts, true name"),
        ("forget_name_swapped", "forget facts under another owner's name"),
    ]:
        if probe in m:
            r, c = m[probe]["raw"]["whole_response"], m[probe]["calibrated"]["whole_response"]
            rows.append((f"{label}: mean b", f"{r['mean_score']:.3f}", f"{c['mean_score']:.3f}"))
    lines = ["| metric | raw (T=1) | calibrated |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    d = meta["data"]
    lines.append(
        f"\n{d['train']} training answers, {d['calib']} calibration / {d['test']} test texts "
        f"({d['heldout_source']}), {d['forget_responses']} forget responses, "
        f"{len(meta['owners'])} owners, {meta['finetune']} fine-tuning at lr {meta['lr']:g}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
        cfg.validate()  # before loading any data or model
        if args.tofu_dir is not None and not args.tofu_dir.is_dir():
            raise ValueError(f"--tofu-dir {args.tofu_dir} is not a folder")
        check_output_dir(args.out or output_root(), "--out" if args.out else "DAREU_HOME")
        if cfg.base != "tiny":
            from dareu.models.loading import check_model_path

            check_model_path(cfg.base)
        from dareu.train.common import set_threads

        set_threads(args.threads)
        from dareu.data import load_benchmark
        from dareu.train.common import partial_state

        with partial_state().main_process_first():
            bench = load_benchmark(args.benchmark, forget=args.forget, tofu_dir=args.tofu_dir)
        with partial_state().main_process_first():  # the main process builds the tiny base
            cached = not args.force and is_cached(bench, cfg, args.out)
        path = ensure_attributor(
            bench,
            cfg,
            force=args.force,
            progress=not args.no_progress,
            root=args.out,
            distributed=True,
        )
    except (AttributionError, ValueError, FileNotFoundError) as err:
        print(f"train_attributor: error: {err}", file=sys.stderr)
        return 2
    if partial_state().is_main_process:
        print(f"{'cached' if cached else 'saved'}: {path}")
        print(summary(json.loads((path / ATTRIBUTION_JSON).read_text())))
    return 0
