"""Evaluate a model on a benchmark and write per-sample JSON, a summary and a markdown table.

    dareu evaluate --model PATH [--adapter PATH] --benchmark synthetic --out DIR
    dareu evaluate --finetuned retain --out runs/eval/retain
    dareu evaluate --finetuned original --retain-eval runs/eval/retain --out ...
    dareu evaluate compare RUN_DIR... [--metrics a,b] [--out table.md]   # = dareu compare

`scripts/evaluate.py` is the same command. Everything is validated before any model is
loaded; bad input exits with status 2 and a message naming the argument. See
docs/evaluation.md for the metrics and summary keys.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from dareu.cache import check_output_dir, content_hash, output_root

EXIT_BAD_INPUT = 2


def build_parser(prog: str = "dareu evaluate") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local Hugging Face checkpoint folder (or adapter folder)")
    src.add_argument(
        "--finetuned",
        choices=["original", "retain"],
        help="the cached fine-tuned tiny model of the benchmark (trained if missing)",
    )
    p.add_argument("--adapter", help="PEFT adapter folder to load on top of --model")
    p.add_argument("--benchmark", default="synthetic", help="synthetic | tofu | a folder | JSONL")
    p.add_argument("--tofu-dir", type=Path, help="local folder with the TOFU files")
    p.add_argument("--forget", help="TOFU forget split (forget01|forget05|forget10) or owners")
    p.add_argument("--format", default="plain", help="plain (default) | llama2 | chat")
    p.add_argument("--out", type=Path, help="output folder (default: runs/eval/<name>-<hash>)")
    p.add_argument("--retain-eval", type=Path, help="saved evaluation of the retain model")
    p.add_argument("--reference-model", help="original model folder, for the perplexity rule")
    p.add_argument("--gibberish-model", help="local HF text-classification folder")
    p.add_argument("--gibberish-clean-label", default="clean",
                   help="the label of clean text (default: %(default)s)")  # fmt: skip
    p.add_argument("--max-new-tokens", type=int, default=200,
                   help="tokens generated per answer (default: %(default)s)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32,
                   help="generation batch (default: %(default)s)")  # fmt: skip
    p.add_argument(
        "--max-length",
        type=int,
        default=512,
        help="token cap for scoring QA pairs (default: %(default)s)",
    )
    p.add_argument("--max-samples", type=int, help="evaluate at most N samples per split")
    p.add_argument(
        "--mia-k", type=float, default=0.4, help="k of Min-K%% and Min-K%%++ (default: %(default)s)"
    )
    p.add_argument("--dtype", default="auto", help="auto | bf16 | fp16 | fp32")
    p.add_argument("--device", help="cpu | cuda | auto (default: cuda if available)")
    p.add_argument("--run-config", type=Path, help="JSON config of the run that made the model")
    p.add_argument("--seed", type=int, help="seed of that run (runs differing only in it group)")
    p.add_argument("--label", help="name of this run in comparison tables")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    return p


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def validate_values(args: argparse.Namespace) -> None:
    """The plain values: names from their lists, numbers in range."""
    from dareu.data.formatting import PROMPT_FORMATS
    from dareu.models.loading import DTYPE_NAMES

    if args.threads is not None and args.threads < 1:
        fail(f"--threads must be >= 1, got {args.threads}")
    if args.format not in PROMPT_FORMATS:
        fail(f"--format {args.format!r} is not one of {', '.join(PROMPT_FORMATS)}")
    if args.dtype not in DTYPE_NAMES:
        fail(f"--dtype {args.dtype!r} is not one of {', '.join(DTYPE_NAMES)}")
    for name in ("max_new_tokens", "batch_size", "max_length"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_samples is not None and args.max_samples < 1:
        fail(f"--max-samples must be >= 1, got {args.max_samples}")
    if not 0 < args.mia_k <= 1:
        fail(f"--mia-k must be in (0, 1], got {args.mia_k}")
    if args.device not in (None, "cpu", "cuda", "auto") and not str(args.device).startswith(
        "cuda:"
    ):
        fail(f"--device {args.device!r} is not one of cpu, cuda, cuda:N, auto")


def validate(args: argparse.Namespace) -> dict[str, Any]:
    """Check every argument and file before loading anything; return the run config."""
    from dareu.eval.results import EvalInputError, EvalResult, is_foreign_dir
    from dareu.models.loading import ModelLoadError, check_model_path

    validate_values(args)
    if args.tofu_dir is not None and not args.tofu_dir.is_dir():
        fail(f"--tofu-dir {args.tofu_dir}: not a folder")
    try:
        if args.model is not None:
            check_model_path(args.model)
        if args.adapter is not None:
            check_model_path(args.adapter)
        if args.reference_model is not None:
            check_model_path(args.reference_model)
    except ModelLoadError as err:
        fail(str(err))
    if (
        args.gibberish_model is not None
        and not (Path(args.gibberish_model) / "config.json").is_file()
    ):
        fail(f"--gibberish-model {args.gibberish_model}: not a local checkpoint (no config.json)")
    if args.retain_eval is not None:
        try:
            EvalResult.load(args.retain_eval, what="--retain-eval")
        except EvalInputError as err:
            fail(str(err))
    if (
        args.out is not None
        and args.out.exists()
        and (not args.out.is_dir() or is_foreign_dir(args.out))
    ):
        fail(f"--out {args.out}: exists and is not an evaluation folder; pick another")
    try:
        check_output_dir(args.out or output_root(), "--out" if args.out else "DAREU_HOME")
    except ValueError as err:
        fail(str(err))
    run: dict[str, Any] = {}
    if args.run_config is not None:
        try:
            run = json.loads(args.run_config.read_text())
        except (OSError, json.JSONDecodeError) as err:
            fail(f"--run-config {args.run_config}: cannot read JSON ({err})")
        if not isinstance(run, dict):
            fail(f"--run-config {args.run_config}: expected a JSON object")
    if args.seed is not None:
        run["seed"] = args.seed
    return run


def load_inputs(args: argparse.Namespace) -> tuple[Any, str, Any, Any, Any, Any]:
    """The benchmark, the model path, model, tokenizer and the optional reference model and
    tokenizer; bad input exits 2 naming the argument."""
    import torch

    from dareu.data import DataError, load_benchmark
    from dareu.models.loading import ModelLoadError, load_model

    try:
        benchmark = load_benchmark(args.benchmark, forget=args.forget, tofu_dir=args.tofu_dir)
    except (DataError, ValueError, FileNotFoundError) as err:
        fail(f"--benchmark {args.benchmark}: {err}")
    model_path = args.model
    if args.finetuned is not None:
        from dareu.train.finetune import default_config, ensure_finetuned

        model_path = str(
            ensure_finetuned(benchmark, args.finetuned, default_config(benchmark, fmt=args.format))
        )
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, tokenizer = load_model(
            model_path, adapter=args.adapter, dtype=args.dtype, device=device
        )
        reference = None
        ref_tok = None
        if args.reference_model is not None:
            reference, ref_tok = load_model(args.reference_model, dtype=args.dtype, device=device)
    except ModelLoadError as err:
        fail(str(err))
    return benchmark, model_path, model, tokenizer, reference, ref_tok


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from dareu.eval.compare import main as compare_main

        return compare_main(argv[1:])
    args = build_parser().parse_args(argv)
    run_config = validate(args)

    from dareu.train.common import set_threads

    set_threads(args.threads)

    from dareu.eval.batching import EvalOOMError
    from dareu.eval.evaluator import EvalInputError, evaluate_model

    t0 = time.perf_counter()
    benchmark, model_path, model, tokenizer, reference, ref_tok = load_inputs(args)
    if args.run_config is None:
        # Without the run's own config only the model identifies it, so runs never group.
        run_config.update(model=model_path, adapter=args.adapter)

    try:
        result = evaluate_model(
            model,
            tokenizer,
            benchmark,
            fmt=args.format,
            retain_eval=args.retain_eval,
            reference_model=reference,
            reference_tokenizer=ref_tok,
            gibberish_model=args.gibberish_model,
            gibberish_clean_label=args.gibberish_clean_label,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            max_length=args.max_length,
            max_samples=args.max_samples,
            mia_k=args.mia_k,
            run_config=run_config,
            progress=not args.no_progress,
        )
    except EvalOOMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except EvalInputError as err:
        fail(str(err))
    result.summary["label"] = args.label or Path(model_path).name
    result.summary["model_path"] = model_path
    result.summary["adapter"] = args.adapter
    out = args.out or output_root() / "eval" / (
        f"{Path(model_path).name}-"
        + content_hash(model_path, args.adapter, result.summary["config_key"])
    )
    result.save(out)
    print(result.markdown())
    print(f"wrote {out} ({time.perf_counter() - t0:.1f} s)")
    return 0
