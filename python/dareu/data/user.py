"""User data: JSONL rows of QA pairs ({owner, question, answer, ...}) or documents
({owner, text}), plus a forget request naming owners or sample ids."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from dareu.data.errors import DataError
from dareu.data.io import read_jsonl, row_to_doc, row_to_qa
from dareu.data.schema import Benchmark, DocSample, QASample
from dareu.data.synthetic_text import IDK_ANSWERS


class _Owned(Protocol):
    @property
    def owner(self) -> str: ...
    @property
    def id(self) -> str: ...


S = TypeVar("S", bound=_Owned)


def user_files(path: Path) -> list[Path]:
    """The JSONL file itself, or every *.jsonl in a folder (sorted, so ids are stable)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataError(f"{path}: folder has no *.jsonl files")
        return files
    raise DataError(f"{path}: no such file or folder")


def read_user_rows(
    path: Path, locations: dict[str, str] | None = None
) -> tuple[list[QASample], list[DocSample]]:
    """Validate every row of a user file/folder: fields, empty strings, duplicate ids.

    If `locations` is given, it is filled with sample id -> "file:line", for later messages.
    """
    qas: list[QASample] = []
    docs: list[DocSample] = []
    seen: dict[str, str] = {} if locations is None else locations
    for f in user_files(path):
        for lineno, row in read_jsonl(f):
            where = f"{f}:{lineno}"
            default_id = f"{f.stem}-{lineno}"
            if "question" in row and "text" in row:
                raise DataError(
                    f"{where}: a row is either QA (question/answer) or a document (text), not both"
                )
            sample: QASample | DocSample
            if "text" in row:
                sample = row_to_doc(row, where, default_id)
                docs.append(sample)
            elif "question" in row or "answer" in row:
                sample = row_to_qa(row, where, default_id)
                qas.append(sample)
            else:
                raise DataError(
                    f"{where}: missing field 'question' (QA row) or 'text' (document row)"
                )
            if sample.id in seen:
                raise DataError(f"{where}: duplicate id {sample.id!r} (first at {seen[sample.id]})")
            seen[sample.id] = where
    if not qas and not docs:
        raise DataError(f"{path}: no rows")
    return qas, docs


def _shown(names: Sequence[str], n: int = 8) -> str:
    return ", ".join(list(names)[:n]) + (" ..." if len(names) > n else "")


def _names(x: str | Sequence[str] | None) -> list[str]:
    """A request as a list: one str is one name (not its characters)."""
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def split_forget(
    samples: list[S],
    *,
    forget_owners: str | Sequence[str] | None,
    forget_ids: str | Sequence[str] | None,
    source: str,
) -> tuple[list[S], list[S]]:
    """(forget, retain) for a request naming owners and/or sample ids; errors name `source`.

    A single str is one owner (or id), not a sequence of one-letter names.
    """
    if forget_owners is None and forget_ids is None:
        raise DataError(f"{source}: a forget request is needed (forget owners or sample ids)")
    owners, ids = _names(forget_owners), _names(forget_ids)
    if not owners and not ids:
        raise DataError(f"{source}: the forget request is empty")
    known_owners = list(dict.fromkeys(s.owner for s in samples))
    unknown = [x for x in owners if x not in set(known_owners)]
    if unknown:
        raise DataError(
            f"forget request names unknown owner(s) {unknown} in {source}; "
            f"known owners: {_shown(known_owners)}"
        )
    # A CLI request ("alice,b1") is split into owners and ids by what the data holds, so
    # a misspelt owner arrives here as an id: say it could be either, and list owners.
    known_ids = {s.id for s in samples}
    unknown = [x for x in ids if x not in known_ids]
    if unknown:
        raise DataError(
            f"forget request names unknown owner or sample id(s) {unknown} in {source}: "
            f"no owner and no sample has that name; known owners: {_shown(known_owners)} "
            f"(sample ids look like {_shown([s.id for s in samples], 3)})"
        )
    forget = [s for s in samples if s.owner in set(owners) or s.id in set(ids)]
    retain = [s for s in samples if not (s.owner in set(owners) or s.id in set(ids))]
    if not forget:
        raise DataError(f"{source}: the forget request selects no samples")
    if not retain:
        raise DataError(
            f"{source}: the forget request covers all {len(samples)} samples; "
            "nothing would be retained"
        )
    return forget, retain


def _text_key(s: QASample | DocSample) -> str:
    text = s.text if isinstance(s, DocSample) else f"{s.question}\n{s.answer}"
    return " ".join(text.split()).casefold()


def warn_shared_texts(
    forget: Sequence[QASample | DocSample],
    retain: Sequence[QASample | DocSample],
    where: dict[str, str],
) -> None:
    """Warn when the same text (a document, or a question with its answer) is both
    forgotten and retained: the model is then asked to forget and to keep the same
    words, and evaluation cannot tell the two apart. Names up to 5 pairs of rows."""
    forgotten: dict[str, QASample | DocSample] = {}
    for s in forget:
        forgotten.setdefault(_text_key(s), s)
    pairs = [(forgotten[k], r) for r in retain if (k := _text_key(r)) in forgotten]
    if not pairs:
        return
    shown = "; ".join(
        f"{where.get(f.id, f.id)} (forget owner {f.owner!r}) = "
        f"{where.get(r.id, r.id)} (retain owner {r.owner!r})"
        for f, r in pairs[:5]
    )
    more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    warnings.warn(
        f"{len(pairs)} text(s) appear under both a forget owner and a retain owner: {shown}{more}",
        UserWarning,
        stacklevel=3,
    )


def load_user_data(
    path: Path,
    *,
    forget_owners: str | Sequence[str] | None = None,
    forget_ids: str | Sequence[str] | None = None,
) -> Benchmark:
    """A user JSONL file/folder resolved against a forget request.

    A str `forget_owners` / `forget_ids` is one name. Document rows stay in
    `forget_docs`/`retain_docs` until `dareu.data.completion.apply_task` cuts them with the
    run's tokenizer.
    """
    path = Path(path)
    where: dict[str, str] = {}
    qas, docs = read_user_rows(path, where)
    both: list[QASample | DocSample] = [*qas, *docs]
    forget, retain = split_forget(
        both, forget_owners=forget_owners, forget_ids=forget_ids, source=str(path)
    )
    warn_shared_texts(forget, retain, where)
    f_qa = [s for s in forget if isinstance(s, QASample)]
    r_qa = [s for s in retain if isinstance(s, QASample)]
    return Benchmark(
        name=f"user-{path.stem}",
        forget=f_qa,
        retain=r_qa,
        forget_eval=list(f_qa),
        retain_eval=list(r_qa),
        holdout=[],
        test_sets={},
        owners=list(dict.fromkeys(s.owner for s in both)),
        forget_owners=list(dict.fromkeys(s.owner for s in forget)),
        idk_answers=list(IDK_ANSWERS),
        root=str(path.resolve()),
        forget_docs=[s for s in forget if isinstance(s, DocSample)],
        retain_docs=[s for s in retain if isinstance(s, DocSample)],
    )
