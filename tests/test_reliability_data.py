"""User data edge cases: a str forget request, texts under both a forget and a retain
owner, an unknown name in --forget, and a file that is not UTF-8."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from dareu.data import DataError, load_benchmark, load_user_data
from dareu.data.io import read_jsonl, read_rows

ROWS: list[dict[str, Any]] = [
    {"owner": "alice", "question": "Where was Alice born?", "answer": "In Brenholm."},
    {"owner": "alice", "question": "What does Alice do?", "answer": "She bakes.", "id": "a2"},
    {"owner": "bob", "question": "Where was Bob born?", "answer": "In Tarn.", "id": "b1"},
    {"owner": "carol", "text": "Carol wrote a long letter about the river and the mill."},
]  # fmt: skip


def write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write(tmp_path / "data.jsonl", ROWS)


def test_a_str_owner_is_one_owner_not_its_letters(data: Path) -> None:
    b = load_user_data(data, forget_owners="alice")
    assert b.forget_owners == ["alice"] and [q.id for q in b.forget] == ["data-1", "a2"]
    assert load_user_data(data, forget_ids="b1").forget_owners == ["bob"]
    assert load_user_data(data, forget_owners=("bob",)).forget_owners == ["bob"]


def test_text_under_a_forget_and_a_retain_owner_warns_naming_the_rows(tmp_path: Path) -> None:
    dup = {"owner": "bob", "question": "Where was Alice  born?", "answer": "In Brenholm."}
    doc = {"owner": "alice", "text": ROWS[3]["text"]}
    f = write(tmp_path / "data.jsonl", [*ROWS, dup, doc])
    with pytest.warns(UserWarning, match=r"2 text\(s\) appear under both") as rec:
        b = load_user_data(f, forget_owners=["alice"])
    msg = str(rec[0].message)
    assert f"{f}:1 (forget owner 'alice') = {f}:5 (retain owner 'bob')" in msg
    assert f"{f}:6 (forget owner 'alice') = {f}:4 (retain owner 'carol')" in msg
    assert len(b.retain) == 2  # still accepted: a warning, not an error


def test_no_warning_without_shared_text(data: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_user_data(data, forget_owners=["alice"])


def test_unknown_name_in_forget_says_owner_or_id_and_lists_owners(data: Path) -> None:
    # --forget "alise,b1": "alise" is no owner, so the loader takes it for a sample id.
    with pytest.raises(DataError) as e:
        load_benchmark(data, forget=["alise", "b1"])
    msg = str(e.value)
    assert "unknown owner or sample id(s) ['alise']" in msg
    assert "known owners: alice, bob, carol" in msg
    assert "unknown sample id" not in msg


def test_latin1_file_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "data.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in ROWS[:2]]
    lines.append(json.dumps({"owner": "zoé", "question": "Q?", "answer": "A."}, ensure_ascii=False))
    f.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    for read in (read_jsonl, read_rows, lambda p: load_user_data(p, forget_owners="alice")):
        with pytest.raises(DataError, match=rf"^{f}:3: not valid UTF-8 \(byte\(s\) e9 at column"):
            read(f)


def test_latin1_json_array_names_file_and_row(tmp_path: Path) -> None:
    f = tmp_path / "holdout.json"
    f.write_bytes(json.dumps([{"owner": "zoé"}], ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DataError, match=rf"^{f}:1: not valid UTF-8"):
        read_rows(f)
