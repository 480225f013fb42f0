"""TOFU through `datasets`: from the hub, or from a local folder of the original files.

Owners are authors: `full` is 200 blocks of 20 consecutive QA pairs, one block per
fictitious author. Rows of the other splits get their owner by matching (question, answer)
to `full`, never by position, so a reordered or edited file fails loudly instead of
silently mislabelling owners.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dareu.data.errors import DataError
from dareu.data.schema import Benchmark, QASample
from dareu.data.synthetic_text import IDK_ANSWERS

HUB_NAME = "locuslab/TOFU"
ROWS_PER_AUTHOR = 20
# forget split -> (matching retain split, matching holdout split)
FORGET_SPLITS = {
    "forget01": ("retain99", "holdout01"),
    "forget05": ("retain95", "holdout05"),
    "forget10": ("retain90", "holdout10"),
}
TOFU_CONFIGS = (
    "full",
    "forget01", "forget05", "forget10",
    "retain90", "retain95", "retain99",
    "holdout01", "holdout05", "holdout10",
    "forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain_perturbed",
    "real_authors", "real_authors_perturbed", "world_facts", "world_facts_perturbed",
)  # fmt: skip
IDK_FILE = "idontknow.jsonl"


def is_tofu_dir(path: Path) -> bool:
    """A folder that looks like the original TOFU files (and not our own layout)."""
    path = Path(path)
    return (path / "full.json").is_file() and (path / "forget10.json").is_file()


def read_tofu_config(name: str, tofu_dir: Path | None = None) -> list[dict[str, Any]]:
    """Rows of one TOFU config, via `datasets` (local JSON/JSONL, or the hub if no folder)."""
    if name not in TOFU_CONFIGS:
        raise DataError(f"unknown TOFU config {name!r}; known: {', '.join(TOFU_CONFIGS)}")
    import datasets  # heavy import, only when TOFU is used
    from datasets.utils import logging as ds_logging

    # Quiet "Generating train split" bars for these small files, restoring the caller's setting.
    bars_were_on = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        return _read_config(datasets, name, tofu_dir)
    finally:
        if bars_were_on:
            ds_logging.enable_progress_bar()


def _read_config(datasets: Any, name: str, tofu_dir: Path | None) -> list[dict[str, Any]]:
    if tofu_dir is None:
        try:
            ds = datasets.load_dataset(HUB_NAME, name, split="train")
        except Exception as e:
            raise DataError(
                f"could not load {HUB_NAME} config {name!r} from the Hugging Face hub "
                f"({type(e).__name__}: {str(e)[:200]}); pass a local folder of the original "
                "TOFU files with tofu_dir= / --tofu-dir"
            ) from None
    else:
        path = Path(tofu_dir) / f"{name}.json"
        if not path.is_file():
            raise DataError(f"{path}: TOFU file for config {name!r} not found in tofu_dir")
        try:
            # The `json` builder reads both JSONL and the holdout files' single JSON array.
            ds = datasets.load_dataset("json", data_files=str(path), split="train")
        except Exception as e:
            raise DataError(f"{path}: could not be read as JSON/JSONL ({e})") from None
    rows = ds.to_list()
    for i, r in enumerate(rows):
        for key in ("question", "answer"):
            if not isinstance(r.get(key), str) or not r[key].strip():
                raise DataError(f"TOFU {name} row {i}: field {key!r} missing or empty")
    return rows


def author_owner(author: int, n_authors: int, group: int, prefix: str = "author") -> str:
    """Owner id of an author; with group > 1, `group` consecutive authors are one owner."""
    if group == 1:
        return f"{prefix}-{author}"
    start = (author // group) * group
    end = min(start + group, n_authors) - 1
    return f"{prefix}s-{start}-{end}"


def _opt(row: dict[str, Any], key: str) -> str | None:
    v = row.get(key)
    return v if isinstance(v, str) and v.strip() else None


def _perturbed(row: dict[str, Any]) -> tuple[str, ...]:
    v = row.get("perturbed_answer")
    if isinstance(v, str):
        return (v,)
    return tuple(x for x in (v or []) if isinstance(x, str))


def read_idk(path: Path) -> list[str]:
    """One refusal per line (TOFU's idontknow.jsonl is plain text despite its name)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: IdK answers file not found")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    out = [ln for ln in lines if ln]
    if not out:
        raise DataError(f"{path}: IdK answers file is empty")
    return out


def load_tofu(
    tofu_dir: Path | None = None,
    *,
    forget: str = "forget10",
    group_authors: int = 1,
    idk_path: Path | None = None,
) -> Benchmark:
    """TOFU resolved into a Benchmark; `tofu_dir=None` reads the hub (needs network)."""
    if forget not in FORGET_SPLITS:
        raise DataError(f"TOFU forget split {forget!r} is not one of {', '.join(FORGET_SPLITS)}")
    retain_name, holdout_name = FORGET_SPLITS[forget]
    full = read_tofu_config("full", tofu_dir)
    if len(full) % ROWS_PER_AUTHOR:
        raise DataError(f"TOFU full has {len(full)} rows, not a multiple of {ROWS_PER_AUTHOR}")
    n_authors = len(full) // ROWS_PER_AUTHOR
    if not 1 <= group_authors <= n_authors:
        raise DataError(f"group_authors must be between 1 and {n_authors}, got {group_authors}")

    def owner(row_idx: int) -> str:
        return author_owner(row_idx // ROWS_PER_AUTHOR, n_authors, group_authors)

    index: dict[tuple[str, str], int] = {}
    for i, r in enumerate(full):
        key = (r["question"], r["answer"])
        if key in index:
            raise DataError(f"TOFU full rows {index[key]} and {i} are identical; owners ambiguous")
        index[key] = i

    def matched(name: str) -> list[QASample]:
        out = []
        for j, r in enumerate(read_tofu_config(name, tofu_dir)):
            i = index.get((r["question"], r["answer"]))
            if i is None:
                raise DataError(
                    f"TOFU {name} row {j}: its question/answer is not in full, so it has no owner"
                )
            out.append(
                QASample(
                    id=f"tofu-{i}",
                    owner=owner(i),
                    question=r["question"],
                    answer=r["answer"],
                    paraphrased_answer=_opt(r, "paraphrased_answer"),
                    perturbed_answers=_perturbed(r),
                    paraphrased_question=_opt(r, "paraphrased_question"),
                )
            )
        return out

    forget_rows = matched(forget)
    retain_rows = matched(retain_name)
    forget_owners = list(dict.fromkeys(q.owner for q in forget_rows))
    cut = sorted({q.owner for q in retain_rows} & set(forget_owners))
    if cut:
        raise DataError(
            f"group_authors={group_authors} puts authors of {forget} and of {retain_name} in the "
            f"same owner ({', '.join(cut[:5])}); choose a group size that divides the forget split"
        )
    suffix = f"-g{group_authors}" if group_authors > 1 else ""
    return Benchmark(
        name=f"tofu-{forget}{suffix}",
        forget=forget_rows,
        retain=retain_rows,
        forget_eval=matched(f"{forget}_perturbed"),
        retain_eval=matched("retain_perturbed"),
        holdout=_holdout(holdout_name, tofu_dir, group_authors),
        test_sets=_test_sets(tofu_dir),
        owners=list(dict.fromkeys(owner(i) for i in range(len(full)))),
        forget_owners=forget_owners,
        idk_answers=_idk(tofu_dir, idk_path),
        root=str(Path(tofu_dir).resolve()) if tofu_dir is not None else f"hub:{HUB_NAME}",
    )


def _holdout(name: str, tofu_dir: Path | None, group_authors: int) -> list[QASample]:
    """Holdout authors are not in `full`: they get their own owner ids, 20 rows each."""
    rows = read_tofu_config(name, tofu_dir)
    n_hold = -(-len(rows) // ROWS_PER_AUTHOR)
    return [
        QASample(
            id=f"tofu-holdout-{j}",
            owner=author_owner(j // ROWS_PER_AUTHOR, n_hold, group_authors, "holdout-author"),
            question=r["question"],
            answer=r["answer"],
        )
        for j, r in enumerate(rows)
    ]


def _test_sets(tofu_dir: Path | None) -> dict[str, list[QASample]]:
    """real_authors and world_facts with their perturbed answers (model utility)."""
    return {
        name: [
            QASample(id=f"{name}-{j}", owner=name, question=r["question"], answer=r["answer"],
                     perturbed_answers=_perturbed(r))
            for j, r in enumerate(read_tofu_config(f"{name}_perturbed", tofu_dir))
        ]
        for name in ("real_authors", "world_facts")
    }  # fmt: skip


def _idk(tofu_dir: Path | None, idk_path: Path | None) -> list[str]:
    if idk_path is not None:
        return read_idk(idk_path)
    if tofu_dir is not None and (Path(tofu_dir) / IDK_FILE).is_file():
        return read_idk(Path(tofu_dir) / IDK_FILE)
    return list(IDK_ANSWERS)


def summarize_tofu(tofu_dir: Path | None = None) -> dict[str, int]:
    """Row count of every TOFU config (a quick integrity check of a folder)."""
    return {name: len(read_tofu_config(name, tofu_dir)) for name in TOFU_CONFIGS}


def tofu_subset(bench: Benchmark, retain_authors: int, seed: int = 0) -> Benchmark:
    """The forget request's authors plus `retain_authors` retain authors drawn with `seed`
    (retain_perturbed's authors first, so the retain evaluation keeps its rows): a TOFU job
    a small CPU finishes. The kept authors are listed in the benchmark's name and owners."""
    import random

    retain_owners = list(dict.fromkeys(q.owner for q in bench.retain))
    if not 1 <= retain_authors <= len(retain_owners):
        raise DataError(
            f"--tofu-authors: must be between 1 and {len(retain_owners)} (the retain authors "
            f"of {bench.name}), got {retain_authors}"
        )
    rng = random.Random(f"tofu-subset-{seed}")
    evaluated = list(dict.fromkeys(q.owner for q in bench.retain_eval if q.owner in retain_owners))
    rest = [o for o in retain_owners if o not in set(evaluated)]
    rng.shuffle(evaluated)
    rng.shuffle(rest)
    kept = set((evaluated + rest)[:retain_authors])
    keep = set(bench.forget_owners) | kept
    return dataclasses.replace(
        bench,
        name=f"{bench.name}-a{retain_authors}-s{seed}",
        retain=[q for q in bench.retain if q.owner in kept],
        retain_eval=[q for q in bench.retain_eval if q.owner in kept],
        owners=[o for o in bench.owners if o in keep],
    )
