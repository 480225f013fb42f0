"""The configs shipped with the package (python/dareu/configs, package data).

    dareu config list                   # name, file, what it is for
    dareu config path fsdp              # absolute path, for `accelerate launch --config_file`
    accelerate launch --config_file "$(dareu config path single)" -m dareu.cli unlearn

Accelerate: single (one process; no launch warnings), ddp, fsdp (FSDP2), deepspeed_zero3
(alias zero3). DareU: paper (`dareu unlearn --config "$(dareu config path paper)"`: the
paper's hyperparameters). configs/ at the repo root holds the same files (a test keeps
them byte-identical).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS: dict[str, str] = {
    "single": "accelerate_single.yaml",
    "ddp": "accelerate_ddp.yaml",
    "fsdp": "accelerate_fsdp.yaml",
    "deepspeed_zero3": "accelerate_deepspeed_zero3.yaml",
    "paper": "dareu_paper.yaml",
}
ALIASES = {"zero3": "deepspeed_zero3", "deepspeed": "deepspeed_zero3"}
PURPOSE = {
    "single": "Accelerate: one process (no launch warnings)",
    "ddp": "Accelerate: data parallel (DDP)",
    "fsdp": "Accelerate: FSDP2, parameters/gradients/optimizer sharded",
    "deepspeed_zero3": "Accelerate: DeepSpeed ZeRO-3 (alias zero3; deepspeed extra)",
    "paper": "dareu unlearn --config: the paper's hyperparameters",
}


def config_path(name: str) -> Path:
    """The shipped file of `name` (a name above, an alias, or a file name); ValueError if none."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    by_file = {file: n for n, file in CONFIGS.items()}
    key = by_file.get(key, key)
    if key not in CONFIGS:
        known = ", ".join([*CONFIGS, *ALIASES])
        raise ValueError(f"unknown config {name!r}; choose from {known}")
    return CONFIG_DIR / CONFIGS[key]


def build_parser(prog: str = "dareu config") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", help="list | path NAME")
    sub.add_parser("list", help="every shipped config: name, path, purpose")
    path = sub.add_parser("path", help="the absolute path of one shipped config")
    path.add_argument("name", help=f"one of {', '.join([*CONFIGS, *ALIASES])}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action is None:
        print("dareu config: error: expected an action: list | path NAME", file=sys.stderr)
        return 2
    if args.action == "path":
        try:
            print(config_path(args.name))
        except ValueError as err:
            print(f"dareu config: error: {err}", file=sys.stderr)
            return 2
        return 0
    width, purpose_width = max(map(len, CONFIGS)), max(map(len, PURPOSE.values()))
    for name, file in CONFIGS.items():
        print(f"{name:<{width}}  {PURPOSE[name]:<{purpose_width}}  {CONFIG_DIR / file}")
    return 0
