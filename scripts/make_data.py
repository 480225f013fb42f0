"""Generate the synthetic owners benchmark, validate user JSONL, or summarise a TOFU folder.

    python scripts/make_data.py --out runs/data/syn --owners 32 --facts 12 --forget-owners 4
    python scripts/make_data.py --validate my_data.jsonl --forget alice bob
    python scripts/make_data.py --tofu-dir ../shared/data/tofu --forget forget10

Bad input prints `error: ...` naming the file/line or argument and exits with status 2.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the synthetic benchmark to this folder")
    mode.add_argument("--validate", type=Path, help="validate a user JSONL file or folder")
    mode.add_argument("--tofu-dir", type=Path, help="summarise a local folder of TOFU files")
    for key, value in DEFAULTS.items():  # the embedded default's sizes
        ap.add_argument(f"--{key.replace('_', '-')}", type=int, default=value)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forget", nargs="+", help="user data: owners/ids; TOFU: split name")
    ap.add_argument("--group-authors", type=int, default=1, help="TOFU: authors per owner")
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
