"""Fine-tune the original and/or retain model for a benchmark (cached by content hash).

    python scripts/finetune.py                                   # synthetic, tiny, both
    accelerate launch --config_file configs/accelerate_ddp.yaml scripts/finetune.py \\
        --benchmark tofu --tofu-dir ../shared/data/tofu --forget forget10 \\
        --base /models/llama2-7b-chat --format llama2 --lora --which original

Prints "cached: <path>" when the model already exists and "saved: <path>" after training.
Exit codes: 0 done, 2 bad arguments or input, 3 stopped early by --stop-after-steps.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from dareu.cache import check_output_dir, output_root
from dareu.data.formatting import PROMPT_FORMATS
from dareu.models.loading import DTYPE_NAMES
from dareu.models.tiny import TINY_SIZES
from dareu.train.common import TrainingStopped, partial_state
from dareu.train.finetune import (
    SCHEDULES,
    TINY_EPOCHS,
    TINY_LR,
    FinetuneConfig,
    ensure_finetuned,
)
from dareu.train.lora import LLAMA_TARGETS

DEFAULTS = FinetuneConfig()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--which", choices=["original", "retain", "both"], default="both")
    p.add_argument(
        "--benchmark",
        default="synthetic",
        help="'synthetic' (default), 'tofu', or a benchmark folder / user JSONL path",
    )
    p.add_argument("--tofu-dir", type=Path, help="local folder with the TOFU json files")
    p.add_argument(
        "--forget",
        default=None,
        help="TOFU split (forget01|forget05|forget10) or, for user data, comma-separated "
        "owners / sample ids; synthetic default: the manifest's forget owners",
    )
    p.add_argument("--base", default="tiny", help="'tiny' or a local Hugging Face model folder")
    p.add_argument("--tiny-size", default=DEFAULTS.tiny_size, choices=sorted(TINY_SIZES))
    p.add_argument("--format", dest="fmt", default=DEFAULTS.fmt, choices=PROMPT_FORMATS)
    p.add_argument(
        "--epochs", type=int, help=f"default {TINY_EPOCHS} for tiny, 5 for a pretrained base"
    )
    p.add_argument("--lr", type=float, help=f"default {TINY_LR} tiny, 1e-5 full, 1e-4 LoRA")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="per device")
    p.add_argument("--grad-accum", type=int, default=DEFAULTS.grad_accum)
    p.add_argument("--max-length", type=int, default=DEFAULTS.max_length)
    p.add_argument("--max-steps", type=int, help="cap on optimizer steps (overrides --epochs)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    p.add_argument("--warmup-ratio", type=float, default=DEFAULTS.warmup_ratio)
    p.add_argument("--schedule", default=DEFAULTS.schedule, choices=SCHEDULES)
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    p.add_argument("--lora-r", type=int, default=DEFAULTS.lora_r)
    p.add_argument("--lora-alpha", type=int, default=DEFAULTS.lora_alpha)
    p.add_argument("--lora-dropout", type=float, default=DEFAULTS.lora_dropout)
    p.add_argument(
        "--lora-targets",
        default=",".join(LLAMA_TARGETS),
        help="comma-separated module names to adapt",
    )
    p.add_argument(
        "--merge",
        default=DEFAULTS.merge,
        choices=["auto", "yes", "no"],
        help="merge LoRA into the saved model (auto: only for the tiny base)",
    )
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--dtype", default=DEFAULTS.dtype, choices=DTYPE_NAMES)
    p.add_argument("--out", type=Path, help="output root (default $DAREU_HOME or ./runs)")
    p.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (0: off)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--force", action="store_true", help="retrain even if cached")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)  # test hook: a "kill"
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    names = {f.name for f in fields(FinetuneConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["lora_targets"] = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
    return FinetuneConfig(**values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
        cfg.validate()  # before loading any data or model
        if args.save_every < 0:
            raise ValueError(f"--save-every must be >= 0, got {args.save_every}")
        if args.tofu_dir is not None and not args.tofu_dir.is_dir():
            raise ValueError(f"--tofu-dir {args.tofu_dir} is not a folder")
        check_output_dir(args.out or output_root(), "--out" if args.out else "DAREU_HOME")
        from dareu.train.common import set_threads

        set_threads(args.threads)
        # User data: several owners / sample ids to forget, comma-separated.
        forget = args.forget.split(",") if args.forget and "," in args.forget else args.forget
        whiches = ["original", "retain"] if args.which == "both" else [args.which]
        for which in whiches:
            path = ensure_finetuned(
                args.benchmark,
                which,  # type: ignore[arg-type]
                cfg,
                forget=forget,
                tofu_dir=args.tofu_dir,
                root=args.out,
                force=args.force,
                resume=args.resume,
                save_every=args.save_every,
                stop_after_steps=args.stop_after_steps,
                progress=not args.no_progress,
            )
            partial_state().print(f"{which}: {path}")
    except TrainingStopped as err:
        print(f"finetune: {err}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
