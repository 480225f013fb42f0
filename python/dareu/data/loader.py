"""One entry point from a data source and a forget request to a `Benchmark`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dareu.data.errors import DataError
from dareu.data.io import read_doc_file, read_qa_file
from dareu.data.schema import Benchmark, QASample
from dareu.data.synthetic import MANIFEST, synthetic_dir
from dareu.data.tofu import FORGET_SPLITS, is_tofu_dir, load_tofu, read_idk, tofu_subset
from dareu.data.user import load_user_data, read_user_rows, split_forget


def parse_forget(spec: str | None) -> str | list[str] | None:
    """A CLI forget request: a split name ("forget10") stays as is; "a,b" becomes a list of
    owners / sample ids."""
    if spec is None or "," not in spec:
        return spec
    return [s.strip() for s in spec.split(",") if s.strip()]


def load_request(
    source: str,
    forget: str | None,
    *,
    tofu_dir: str | None = None,
    idk_path: str | None = None,
    seed: int = 0,
    tofu_authors: int | None = None,
) -> Benchmark:
    """The benchmark of a job or a method run, from its CLI-level settings (one place).
    `tofu_authors`: keep the forget authors and this many retain authors (TOFU only)."""
    bench = load_benchmark(
        source,
        forget=parse_forget(forget),
        tofu_dir=Path(tofu_dir) if tofu_dir else None,
        idk_path=Path(idk_path) if idk_path else None,
        seed=seed,  # the embedded world draws its owners with the run's seed
    )
    if tofu_authors is None:
        return bench
    if not bench.name.startswith("tofu-"):
        raise DataError(f"--tofu-authors applies to TOFU only, not to {source!r}")
    return tofu_subset(bench, tofu_authors, seed)


def _as_list(forget: str | list[str] | None) -> list[str] | None:
    return [forget] if isinstance(forget, str) else forget


def _read_json(path: Path, what: str) -> Any:
    """A JSON file of a benchmark folder; errors name the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg})") from None


def read_manifest(folder: Path) -> dict[str, Any]:
    """The `benchmark.json` of a folder in our layout, checked against the files beside it."""
    path = Path(folder) / MANIFEST
    manifest = _read_json(path, "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != "dareu-benchmark":
        raise DataError(f"{path}: not a DareU benchmark manifest (format != 'dareu-benchmark')")
    for key in ("owners", "forget_owners", "files", "counts"):
        if key not in manifest:
            raise DataError(f"{path}: manifest lacks {key!r}")
    return manifest


def load_folder(
    folder: Path, *, forget: list[str] | None = None, idk_path: Path | None = None
) -> Benchmark:
    """A folder written by `generate_synthetic` (our layout + manifest).

    `forget=None` uses the manifest's forget owners; a list of owners and/or sample ids
    re-splits `full.json` instead.
    """
    folder = Path(folder)
    m = read_manifest(folder)
    files = m["files"]

    def read(fname: str) -> list[QASample]:
        rows = read_qa_file(folder / fname, Path(fname).stem)
        expected = m["counts"].get(fname)
        if expected is not None and expected != len(rows):
            raise DataError(f"{folder / fname}: {len(rows)} rows, manifest says {expected}")
        return rows

    if forget is None:
        forget_rows, retain_rows = read(files["forget"]), read(files["retain"])
        forget_eval, retain_eval = read(files["forget_eval"]), read(files["retain_eval"])
        forget_owners = list(m["forget_owners"])
    else:
        full = read(files["full"])
        owners = set(m["owners"])
        asked_owners = [x for x in forget if x in owners]
        asked_ids = _expand_fact_ids([x for x in forget if x not in owners], full)
        forget_rows, retain_rows = split_forget(
            full, forget_owners=asked_owners, forget_ids=asked_ids, source=str(folder)
        )
        forget_owners = list(dict.fromkeys(q.owner for q in forget_rows))
        # Keep the retain-eval size of the manifest, taken from the owners still retained.
        n_eval = len(m.get("retain_eval_owners", [])) or 4
        eval_owners = set(list(dict.fromkeys(q.owner for q in retain_rows))[:n_eval])
        all_eval = read(files["eval"]) if files.get("eval") else []
        facts = {_fact_id(q) for q in forget_rows}
        forget_eval = [q for q in all_eval if q.id in facts] or list(forget_rows)
        retain_eval = [q for q in all_eval if q.owner in eval_owners and q.id not in facts] or [
            q for q in retain_rows if q.owner in eval_owners
        ]
    test_sets = {name: read(f) for name, f in files.get("test_sets", {}).items()}
    docs = read_doc_file(folder / files["docs"]) if files.get("docs") else []
    forgotten = set(forget_owners)
    idk_file = Path(idk_path) if idk_path is not None else folder / files.get("idk", "")
    return Benchmark(
        name=str(m.get("name", folder.name)),
        forget=forget_rows,
        retain=retain_rows,
        forget_eval=forget_eval,
        retain_eval=retain_eval,
        holdout=read(files["holdout"]) if files.get("holdout") else [],
        test_sets=test_sets,
        owners=list(m["owners"]),
        forget_owners=forget_owners,
        idk_answers=read_idk(idk_file) if files.get("idk") or idk_path else [],
        general_train=read(files["general_train"]) if files.get("general_train") else [],
        root=str(folder.resolve()),
        forget_docs=[d for d in docs if d.owner in forgotten],
        retain_docs=[d for d in docs if d.owner not in forgotten],
        holdout_docs=(
            read_doc_file(folder / files["holdout_docs"]) if files.get("holdout_docs") else []
        ),
        world=_read_world(folder / files["world"]) if files.get("world") else None,
    )


def _fact_id(q: QASample) -> str:
    """A world training row's fact ("owner-003-pet" for "owner-003-pet-q2")."""
    return q.id.rsplit("-q", 1)[0] if q.fact_type and "-q" in q.id else q.id


def _expand_fact_ids(ids: list[str], rows: list[QASample]) -> list[str]:
    """A fact id names every phrasing of that fact; a row id names one row."""
    by_fact: dict[str, list[str]] = {}
    for q in rows:
        by_fact.setdefault(_fact_id(q), []).append(q.id)
    return [r for x in ids for r in by_fact.get(x, [x])]


def _read_world(path: Path) -> dict[str, Any]:
    world = _read_json(path, "world file")
    if not isinstance(world, dict) or not isinstance(world.get("owners"), dict):
        raise DataError(f"{path}: not a world file (no 'owners' object)")
    return world


def load_benchmark(
    source: str | Path,
    *,
    forget: str | list[str] | None = None,
    tofu_dir: Path | None = None,
    group_authors: int = 1,
    idk_path: Path | None = None,
    seed: int = 0,
) -> Benchmark:
    """Resolve a data source and a forget request into a Benchmark.

    source: "synthetic" (default sizes, cached; its owners drawn with `seed`, or N for
    "synthetic:N"), a folder written by `generate_synthetic`,
    "tofu" (the hub, or `tofu_dir` if given), a local TOFU folder, or a user JSONL file or
    folder. forget: a TOFU split name ("forget01|05|10", default forget10), or for other
    sources a list of owners and/or sample ids (synthetic default: the manifest's owners).
    """
    src = str(source)
    path = Path(source)
    is_tofu = src == "tofu" or (path.is_dir() and is_tofu_dir(path))
    if group_authors != 1 and not is_tofu:
        raise DataError(f"group_authors={group_authors} applies to TOFU only, not to {src!r}")
    if is_tofu:
        if forget is not None and not isinstance(forget, str):
            raise DataError(
                f"forget for TOFU is a split name ({', '.join(FORGET_SPLITS)}), got {forget!r}"
            )
        folder = tofu_dir if src == "tofu" else path
        return load_tofu(
            folder, forget=forget or "forget10", group_authors=group_authors, idk_path=idk_path
        )
    if src == "synthetic" or src.startswith("synthetic:"):
        world_seed = _synthetic_seed(src, seed)
        return load_folder(synthetic_dir(seed=world_seed), forget=_as_list(forget),
                           idk_path=idk_path)  # fmt: skip
    if path.is_dir() and (path / MANIFEST).is_file():
        return load_folder(path, forget=_as_list(forget), idk_path=idk_path)
    if path.exists():
        items = _as_list(forget)
        if items is None:
            raise DataError(f"{path}: user data needs a forget request (owners or sample ids)")
        bench = _load_user(path, items)
        if idk_path is not None:
            bench.idk_answers = read_idk(idk_path)
        return bench
    raise DataError(f"data source {src!r} is not 'synthetic', 'tofu' or an existing file/folder")


def _synthetic_seed(src: str, seed: int) -> int:
    """ "synthetic" draws the world's owners with `seed`; "synthetic:N" with N."""
    if src == "synthetic":
        return seed
    text = src.partition(":")[2]
    if not text.isdigit():
        raise DataError(f"data source {src!r}: expected 'synthetic' or 'synthetic:SEED'")
    return int(text)


def _load_user(path: Path, items: list[str]) -> Benchmark:
    """Split a forget list into owners and sample ids by what the data contains."""
    qas, docs = read_user_rows(path)
    owners = {q.owner for q in qas} | {d.owner for d in docs}
    return load_user_data(
        path,
        forget_owners=[x for x in items if x in owners],
        forget_ids=[x for x in items if x not in owners],
    )
