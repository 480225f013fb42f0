"""The `dareu` command: one subcommand per user command, from an installed package.

    dareu unlearn [...]                 # = python -m dareu.cli unlearn = scripts/unlearn.py
    accelerate launch --config_file "$(dareu config path single)" -m dareu.cli unlearn [...]
    dareu config path fsdp              # the shipped Accelerate config, for --config_file

Each subcommand is a module with `main(argv) -> int`, imported only when it runs (so
`dareu config` and `dareu --help` do not import torch). Exit codes are the commands' own:
0 done, 2 bad input (one line, no traceback), 3 stopped; `dareu` itself exits 2 on an
unknown command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module with main(argv) -> int, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "unlearn": ("dareu.cli.unlearn", "unlearn a forget request (DareU or a baseline), evaluate"),
    "finetune": ("dareu.cli.finetune", "fine-tune the original and/or retain model"),
    "evaluate": ("dareu.cli.evaluate", "evaluate a model on a benchmark"),
    "train-attributor": ("dareu.cli.train_attributor", "train the attribution classifier DA"),
    "benchmark": ("dareu.cli.benchmark", "compare methods x seeds x forget requests"),
    "report": ("dareu.report", "mean ± sd table over several unlearning run folders"),
    "compare": ("dareu.eval.compare", "saved evaluations in one table (= evaluate compare)"),
    "make-data": ("dareu.cli.make_data", "generate the synthetic benchmark, validate user data"),
    "config": ("dareu.cli.config", "paths of the shipped Accelerate and DareU configs"),
}


def tofu_authors(text: str) -> int:
    """`--tofu-authors`: a count >= 1, or 'all' (0: every author)."""
    if text.strip().lower() == "all":
        return 0
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count >= 1 or 'all', got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a count >= 1 or 'all', got {text!r}")
    return n


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: dareu COMMAND [ARGS...]   (dareu COMMAND --help: its options)",
        "",
        "DareU: LLM unlearning by de-attribution. Commands:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()),
        "",
        'Multi-process: accelerate launch --config_file "$(dareu config path ddp)" '
        "--num_processes N -m dareu.cli COMMAND ...",
    ]
    return "\n".join(lines)


def run(name: str, argv: Sequence[str]) -> int:
    """Run one subcommand; its usage line reads `dareu NAME` however it was started."""
    module = importlib.import_module(COMMANDS[name][0])
    prog, sys.argv[0] = sys.argv[0], f"dareu {name}"  # argparse's default prog
    try:
        code = module.main(list(argv))
    finally:
        sys.argv[0] = prog
    return int(code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if args[:1] == ["--version"]:
        from dareu import __version__

        print(f"dareu {__version__}")
        return 0
    if not args or args[0] not in COMMANDS:
        what = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"dareu: error: {what}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return run(args[0], args[1:])
