"""Reading and writing QA rows, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dareu.data.errors import DataError
from dareu.data.schema import DocSample, QASample

# Optional QA fields, in TOFU's spelling where TOFU has them.
QA_OPTIONAL = (
    "id",
    "owner_name",
    "fact_type",
    "fact_value",
    "paraphrased_answer",
    "perturbed_answer",
    "paraphrased_question",
)
QA_FIELDS = ("owner", "question", "answer", *QA_OPTIONAL)
DOC_FIELDS = ("owner", "text", "id")


def qa_to_row(q: QASample) -> dict[str, Any]:
    """The on-disk row of a QA sample: TOFU's field names plus ours; None fields are left out."""
    row: dict[str, Any] = {
        "id": q.id,
        "owner": q.owner,
        "owner_name": q.owner_name,
        "fact_type": q.fact_type,
        "fact_value": q.fact_value,
        "question": q.question,
        "answer": q.answer,
        "paraphrased_answer": q.paraphrased_answer,
        "perturbed_answer": list(q.perturbed_answers) if q.perturbed_answers else None,
        "paraphrased_question": q.paraphrased_question,
    }
    return {k: v for k, v in row.items() if v is not None}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_json_array(path: Path, rows: list[dict[str, Any]]) -> None:
    """One JSON array on one line, the layout of TOFU's holdout files."""
    Path(path).write_text(json.dumps(rows, ensure_ascii=False) + "\n", encoding="utf-8")


def _not_utf8(path: Path, e: UnicodeDecodeError) -> DataError:
    """A decode error as a DataError naming the file and line: the codec's own message
    gives only a byte offset into some internal chunk of the file."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as le:
                bad = raw[le.start : le.end].hex(" ")
                return DataError(
                    f"{path}:{lineno}: not valid UTF-8 (byte(s) {bad} at column {le.start + 1}; "
                    "is the file latin-1 / cp1252? re-save it as UTF-8)"
                )
    return DataError(f"{path}: not valid UTF-8 ({e.reason}); re-save it as UTF-8")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return _read_jsonl(path)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from None


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            out.append((lineno, obj))
    return out


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL file or of a one-line JSON array (TOFU's holdout layout).

    For an array the "line number" is the 1-based row index.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    text = _read_text(path)
    if text.lstrip()[:1] != "[":
        return read_jsonl(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not a valid JSON array ({e.msg})") from None
    out = []
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise DataError(f"{path}: row {i} is not a JSON object")
        out.append((i, obj))
    return out


def _text(row: dict[str, Any], key: str, where: str, required: bool) -> str | None:
    if key not in row or row[key] is None:
        if required:
            raise DataError(f"{where}: missing field {key!r}")
        return None
    v = row[key]
    if not isinstance(v, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(v).__name__}")
    if not v.strip():
        raise DataError(f"{where}: field {key!r} is empty")
    return v


def row_to_qa(row: dict[str, Any], where: str, default_id: str) -> QASample:
    """Validate one QA row and build the sample; `where` is "file:line" for messages."""
    unknown = sorted(set(row) - set(QA_FIELDS))
    if unknown:
        raise DataError(f"{where}: unknown field(s) {unknown}; a QA row has {list(QA_FIELDS)}")
    owner = _text(row, "owner", where, True)
    question = _text(row, "question", where, True)
    answer = _text(row, "answer", where, True)
    assert owner is not None and question is not None and answer is not None
    perturbed = row.get("perturbed_answer")
    if perturbed is None:
        perturbed_t: tuple[str, ...] = ()
    elif isinstance(perturbed, str):
        perturbed_t = (_text(row, "perturbed_answer", where, True) or "",)
    elif isinstance(perturbed, list) and all(isinstance(p, str) and p.strip() for p in perturbed):
        perturbed_t = tuple(perturbed)
    else:
        raise DataError(
            f"{where}: field 'perturbed_answer' must be a string or a list of non-empty strings"
        )
    fact_value = _text(row, "fact_value", where, False)
    if fact_value is not None and fact_value.lower() not in answer.lower():
        raise DataError(f"{where}: fact_value {fact_value!r} does not occur in the answer")
    return QASample(
        id=_text(row, "id", where, False) or default_id,
        owner=owner,
        question=question,
        answer=answer,
        paraphrased_answer=_text(row, "paraphrased_answer", where, False),
        perturbed_answers=perturbed_t,
        paraphrased_question=_text(row, "paraphrased_question", where, False),
        fact_value=fact_value,
        owner_name=_text(row, "owner_name", where, False),
        fact_type=_text(row, "fact_type", where, False),
    )


def row_to_doc(row: dict[str, Any], where: str, default_id: str) -> DocSample:
    """Validate one document row ({owner, text}, optional id)."""
    unknown = sorted(set(row) - set(DOC_FIELDS))
    if unknown:
        raise DataError(
            f"{where}: unknown field(s) {unknown}; a document row has {list(DOC_FIELDS)}"
        )
    owner = _text(row, "owner", where, True)
    text = _text(row, "text", where, True)
    assert owner is not None and text is not None
    doc_id = _text(row, "id", where, False) or default_id
    return DocSample(id=doc_id, owner=owner, text=text, source=where)


def read_qa_file(path: Path, id_prefix: str) -> list[QASample]:
    """Every row of a QA file (JSONL or JSON array) as validated samples."""
    return [
        row_to_qa(row, f"{path}:{lineno}", f"{id_prefix}-{lineno}")
        for lineno, row in read_rows(path)
    ]


def read_doc_file(path: Path) -> list[DocSample]:
    """Every row of a document JSONL file ({owner, text, id}) as validated samples."""
    return [
        row_to_doc(row, f"{path}:{lineno}", f"{Path(path).stem}-{lineno}")
        for lineno, row in read_jsonl(path)
    ]
