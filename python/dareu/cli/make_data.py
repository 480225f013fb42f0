"""Generate the synthetic owners benchmark, validate user JSONL, or summarise a TOFU folder.

    dareu make-data --out runs/data/syn --owners 32 --facts 5 --forget-owners 4
    dareu make-data --validate my_data.jsonl --forget alice bob
    dareu make-data --tofu-dir ../shared/data/tofu --forget forget10

`scripts/make_data.py` is the same command. Bad input prints `error: ...` naming the
file/line or argument and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dareu.data import DataError, generate_synthetic, load_benchmark
from dareu.data.quality import rouge_discrimination
from dareu.data.schema import Benchmark
from dareu.data.synthetic import DEFAULTS
from dareu.data.tofu import load_tofu, summarize_tofu
from dareu.data.user import read_user_rows


def _summary(bench: Benchmark) -> dict[str, object]:
    return {
        "name": bench.name,
        "owners": len(bench.owners),
        "forget_owners": len(bench.forget_owners),
        "forget": len(bench.forget),
        "retain": len(bench.retain),
        "forget_eval": len(bench.forget_eval),
        "retain_eval": len(bench.retain_eval),
        "holdout": len(bench.holdout),
        "test_sets": {k: len(v) for k, v in bench.test_sets.items()},
        "general_train": len(bench.general_train),
        "idk_answers": len(bench.idk_answers),
        "pending_docs": len(bench.forget_docs) + len(bench.retain_docs),
    }


SIZE_HELP = {
    "owners": "data owners in the world",
    "facts": "typed facts per owner",
    "forget_owners": "owners in the default forget request",
    "holdout_owners": "extra owners no model is trained on (the holdout split)",
    "general": "general-knowledge QA rows",
}


def build_parser(prog: str = "dareu make-data") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the synthetic benchmark to this folder")
    mode.add_argument("--validate", type=Path, help="validate a user JSONL file or folder")
    mode.add_argument("--tofu-dir", type=Path, help="summarise a local folder of TOFU files")
    for key, value in DEFAULTS.items():  # the embedded default's sizes
        what = SIZE_HELP.get(key, key)
        ap.add_argument(f"--{key.replace('_', '-')}", type=int, default=value,
                        help=f"--out: {what} (default: %(default)s)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="--out: world seed (default: 0)")
    ap.add_argument("--forget", nargs="+", help="user data: owners/ids; TOFU: split name")
    ap.add_argument("--group-authors", type=int, default=1,
                    help="TOFU: authors per owner (default: 1)")  # fmt: skip
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.out is not None:
            out = generate_synthetic(
                args.out,
                owners=args.owners,
                facts=args.facts,
                forget_owners=args.forget_owners,
                holdout_owners=args.holdout_owners,
                general=args.general,
                seed=args.seed,
            )
            bench = load_benchmark(out)
            report = {
                "out": str(out),
                **_summary(bench),
                "rouge_l_recall": rouge_discrimination(bench),
            }
        elif args.validate is not None:
            qas, docs = read_user_rows(args.validate)
            report = {
                "file": str(args.validate),
                "qa_rows": len(qas),
                "doc_rows": len(docs),
                "owners": len({q.owner for q in qas} | {d.owner for d in docs}),
            }
            if args.forget:
                report.update(_summary(load_benchmark(args.validate, forget=args.forget)))
        else:
            if args.forget and len(args.forget) != 1:
                raise DataError(f"--forget for TOFU is one split name, got {args.forget}")
            split = args.forget[0] if args.forget else "forget10"
            bench = load_tofu(args.tofu_dir, forget=split, group_authors=args.group_authors)
            report = {**_summary(bench), "configs": summarize_tofu(args.tofu_dir)}
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0
