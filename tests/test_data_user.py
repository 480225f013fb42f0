"""User JSONL: every validation error names the file and line (or the bad request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dareu.data import DataError, load_benchmark, load_user_data

ROWS: list[dict[str, Any]] = [
    {"owner": "alice", "question": "Where was Alice born?", "answer": "In Brenholm."},
    {"owner": "alice", "question": "What does Alice do?", "answer": "She bakes.", "id": "a2",
     "perturbed_answer": ["She sings.", "She rows."], "paraphrased_answer": "Baking."},
    {"owner": "bob", "question": "Where was Bob born?", "answer": "In Tarn.", "id": "b1",
     "fact_value": "Tarn", "owner_name": "Bob"},
    {"owner": "carol", "text": "Carol wrote a long letter about the river and the mill."},
]  # fmt: skip


def write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write(tmp_path / "data.jsonl", ROWS)


def test_load_by_owner(data: Path) -> None:
    b = load_user_data(data, forget_owners=["alice"])
    assert [q.id for q in b.forget] == ["data-1", "a2"]
    assert [q.owner for q in b.retain] == ["bob"]
    assert b.owners == ["alice", "bob", "carol"] and b.forget_owners == ["alice"]
    assert b.forget[1].perturbed_answers == ("She sings.", "She rows.")
    assert b.retain[0].fact_value == "Tarn"
    assert len(b.retain_docs) == 1 and b.retain_docs[0].owner == "carol"
    assert b.forget_eval == b.forget and b.idk_answers


def test_load_by_id_and_through_load_benchmark(data: Path) -> None:
    b = load_user_data(data, forget_ids=["b1"])
    assert [q.id for q in b.forget] == ["b1"] and b.forget_owners == ["bob"]
    b2 = load_benchmark(data, forget=["alice", "b1"])
    assert {q.id for q in b2.forget} == {"data-1", "a2", "b1"}
    b3 = load_benchmark(data, forget="carol")
    assert b3.forget == [] and len(b3.forget_docs) == 1


def test_folder_of_files(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", ROWS[:2])
    write(tmp_path / "b.jsonl", ROWS[2:])
    b = load_user_data(tmp_path, forget_owners=["bob"])
    assert len(b.forget) == 1 and len(b.retain) == 2


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"question": "Q?", "answer": "A."}, r"data\.jsonl:2: missing field 'owner'"),
        ({"owner": "x", "answer": "A."}, r":2: missing field 'question'"),
        ({"owner": "x", "question": "Q?"}, r":2: missing field 'answer'"),
        ({"owner": "x", "question": "Q?", "answer": "  "}, r":2: field 'answer' is empty"),
        ({"owner": "", "text": "Some text."}, r":2: field 'owner' is empty"),
        ({"owner": "x", "text": ""}, r":2: field 'text' is empty"),
        ({"owner": "x", "question": "Q?", "answer": 3}, r":2: field 'answer' must be a string"),
        ({"owner": "x", "question": "Q?", "answer": "A.", "anwser": "typo"}, r"unknown field"),
        ({"owner": "x", "question": "Q?", "answer": "A.", "text": "t"}, r"not both"),
        ({"owner": "x"}, r":2: missing field 'question' \(QA row\) or 'text'"),
        ({"owner": "x", "question": "Q?", "answer": "A.", "perturbed_answer": [1]},
         r"perturbed_answer"),
        ({"owner": "x", "question": "Q?", "answer": "A.", "fact_value": "Z"},
         r"fact_value 'Z' does not occur"),
        ("{not json", r":2: not valid JSON"),
        ("[1, 2]", r":2: expected a JSON object"),
    ],
)  # fmt: skip
def test_row_errors_name_file_and_line(tmp_path: Path, row: Any, match: str) -> None:
    f = write(tmp_path / "data.jsonl", [ROWS[0], row])
    with pytest.raises(DataError, match=match):
        load_user_data(f, forget_owners=["alice"])


def test_duplicate_ids(tmp_path: Path) -> None:
    f = write(tmp_path / "data.jsonl", [ROWS[1], ROWS[0], ROWS[1]])
    with pytest.raises(DataError, match=r":3: duplicate id 'a2' \(first at .*:1\)"):
        load_user_data(f, forget_owners=["alice"])


def test_duplicate_default_and_explicit_id(tmp_path: Path) -> None:
    f = write(tmp_path / "data.jsonl", [ROWS[0], {**ROWS[2], "id": "data-1"}])
    with pytest.raises(DataError, match="duplicate id 'data-1'"):
        load_user_data(f, forget_owners=["alice"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "a forget request is needed"),
        ({"forget_owners": []}, "forget request is empty"),
        ({"forget_owners": ["mallory"]}, r"unknown owner\(s\) \['mallory'\]"),
        ({"forget_ids": ["zz"]}, r"unknown owner or sample id\(s\) \['zz'\]"),
        ({"forget_owners": ["alice", "bob", "carol"]}, "covers all 4 samples"),
    ],
)  # fmt: skip
def test_forget_request_errors(data: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_user_data(data, **kwargs)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_user_data(tmp_path / "missing.jsonl", forget_owners=["a"])
    with pytest.raises(DataError, match=r"no \*\.jsonl"):
        load_user_data(tmp_path, forget_owners=["a"])
    with pytest.raises(DataError, match="no rows"):
        load_user_data(write(tmp_path / "empty.jsonl", []), forget_owners=["a"])
    with pytest.raises(DataError, match="needs a forget request"):
        load_benchmark(write(tmp_path / "d.jsonl", ROWS))
    with pytest.raises(DataError, match="not 'synthetic', 'tofu'"):
        load_benchmark(tmp_path / "nowhere")
