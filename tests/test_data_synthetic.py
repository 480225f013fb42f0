"""The synthetic owners benchmark (the knowledge world's owners as files): determinism,
layout, content rules, held-out phrasings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dareu.data import Benchmark, DataError, generate_synthetic, load_benchmark, synthetic_dir
from dareu.data import synthetic as synthetic_mod
from dareu.data.quality import rouge_discrimination
from dareu.data.synthetic_text import IDK_ANSWERS
from dareu.data.world import BY_KEY, FACTS

FILES = [
    "full.json", "forget.json", "retain.json", "eval.json", "forget_perturbed.json",
    "retain_perturbed.json", "holdout.json", "general.json", "general_perturbed.json",
    "idontknow.jsonl", "docs.jsonl", "world.json", "benchmark.json",
]  # fmt: skip
N_TRAINED = len(FACTS[0].questions) - 1  # every phrasing but the held-out one


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("syn") / "bench")


@pytest.fixture(scope="module")
def bench(folder: Path) -> Benchmark:
    return load_benchmark(folder)


def test_layout_and_manifest(folder: Path) -> None:
    for name in FILES:
        assert (folder / name).is_file(), name
    m = json.loads((folder / "benchmark.json").read_text())
    assert m["format"] == "dareu-benchmark" and m["kind"] == "synthetic"
    assert len(m["owners"]) == 40 and m["forget_owners"] == m["owners"][-8:]
    assert m["counts"]["full.json"] == 40 * len(FACTS) * N_TRAINED
    # TOFU layout: holdout is a single JSON array, the rest JSONL with TOFU's field names.
    assert (folder / "holdout.json").read_text().startswith("[")
    row = json.loads((folder / "forget_perturbed.json").read_text().splitlines()[0])
    for key in (
        "id",
        "owner",
        "owner_name",
        "fact_value",
        "question",
        "answer",
        "paraphrased_answer",
        "perturbed_answer",
        "paraphrased_question",
    ):
        assert key in row


def test_deterministic_and_seeded(tmp_path: Path, folder: Path) -> None:
    again = generate_synthetic(tmp_path / "again")
    for name in FILES:
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name
    other = generate_synthetic(tmp_path / "other", seed=1)
    assert (other / "full.json").read_bytes() != (folder / "full.json").read_bytes()


def test_splits(bench: Benchmark) -> None:
    n_facts = len(FACTS)
    assert len(bench.forget) == 8 * n_facts * N_TRAINED
    assert len(bench.retain) == 32 * n_facts * N_TRAINED
    assert {q.owner for q in bench.forget} == set(bench.forget_owners)
    assert not {q.owner for q in bench.retain} & set(bench.forget_owners)
    assert len(bench.forget_eval) == 8 * n_facts
    assert {q.owner for q in bench.forget_eval} == set(bench.forget_owners)
    assert {q.owner for q in bench.retain_eval} <= set(bench.retain_owners)
    assert len(bench.holdout) == 8 * n_facts * N_TRAINED
    assert not {q.owner for q in bench.holdout} & set(bench.owners)
    trained_questions = {q.question for q in bench.forget + bench.retain}
    assert not any(q.question in trained_questions for q in bench.holdout)
    assert bench.general_train and bench.test_sets["general"] == bench.general_train
    assert len(bench.idk_answers) >= 20 and len(set(IDK_ANSWERS)) == len(IDK_ANSWERS)
    # Two biographies per owner, each stating every fact value of its owner.
    assert len(bench.forget_docs) == 16 and len(bench.retain_docs) == 64
    assert bench.world is not None
    for d in bench.forget_docs + bench.retain_docs:
        facts = bench.world["owners"][d.owner]["facts"]
        assert all(BY_KEY[k].render(v) in d.text for k, v in facts.items()), d.id


def test_heldout_phrasing_never_trained(bench: Benchmark) -> None:
    """For every owner fact, the held-out question phrasing appears in no training row
    of that fact, and every phrasing is trained for some other owner's fact."""
    train = bench.forget + bench.retain
    asked = {(q.owner, q.fact_type, q.question) for q in train}
    for q in bench.forget_eval + bench.retain_eval:
        assert q.paraphrased_question and q.paraphrased_question != q.question
        assert (q.owner, q.fact_type, q.paraphrased_question) not in asked, q.id
        assert (q.owner, q.fact_type, q.question) in asked, q.id
        assert q.paraphrased_question not in {t.question for t in train}, q.id
        # Nor does the held-out wording appear inside any training text of the owner.
        texts = [t.answer for t in train if t.owner == q.owner]
        texts += [d.text for d in bench.forget_docs + bench.retain_docs if d.owner == q.owner]
        assert not any(q.paraphrased_question in t for t in texts)
    for spec in FACTS:
        for template in spec.questions:
            stem = template.split("{n}")[0]
            assert any(q.fact_type == spec.key and q.question.startswith(stem) for q in train)


def test_content_rules(bench: Benchmark) -> None:
    owner_qas = bench.forget + bench.retain + bench.holdout
    for q in owner_qas + bench.forget_eval + bench.retain_eval:
        assert q.fact_value and q.owner_name and q.fact_type
        assert q.fact_value in q.answer, q.id
        assert q.owner_name in q.answer and q.owner_name in q.question, q.id
    for q in bench.forget_eval + bench.retain_eval:
        assert q.paraphrased_answer and q.paraphrased_answer != q.answer
        assert q.fact_value and q.fact_value in q.paraphrased_answer
        assert len(q.perturbed_answers) >= 3
        assert all(q.fact_value not in p for p in q.perturbed_answers)
    # Values are owner-specific: no two owners share a value for the same fact type.
    for ft in {q.fact_type for q in owner_qas}:
        values = {q.owner: q.fact_value for q in owner_qas if q.fact_type == ft}
        assert len(set(values.values())) == len(values), ft
    names = {q.owner_name for q in owner_qas if q.owner_name}
    assert len(names) == len(bench.owners) + 8
    # No two owners share a first or a last name (a shared surname pulls answers).
    parts = [p for n in names for p in n.split()]
    assert len(set(parts)) == len(parts)


def test_fewer_fact_types(tmp_path: Path) -> None:
    folder = generate_synthetic(
        tmp_path / "b", owners=4, facts=2, forget_owners=1, holdout_owners=1, general=6
    )
    b = load_benchmark(folder)
    assert {q.fact_type for q in b.forget + b.retain} == {f.key for f in FACTS[:2]}


def test_rouge_is_not_enough(bench: Benchmark) -> None:
    """ROUGE-L gives a model that never saw an owner (template copy, wrong value) a large
    share of the score: the reason answers are graded exactly (dareu.eval.grading)."""
    r = rouge_discrimination(bench)
    assert r["n"] == 8 * len(FACTS)
    assert r["perturbed"] >= 0.5, r


def test_forget_override(folder: Path) -> None:
    b = load_benchmark(folder, forget=["owner-000", "owner-001-pet"])
    assert b.forget_owners == ["owner-000", "owner-001"]
    per_owner = len(FACTS) * N_TRAINED
    assert len(b.forget) == per_owner + N_TRAINED
    assert len(b.retain) == 40 * per_owner - len(b.forget)
    assert not any(q.id.startswith("owner-001-pet") for q in b.retain)
    assert [q.id for q in b.forget_eval][-1] == "owner-001-pet"
    assert len(b.forget_eval) == len(FACTS) + 1
    assert not {q.id for q in b.retain_eval} & {q.id for q in b.forget_eval}
    with pytest.raises(DataError, match="unknown owner or sample id"):
        load_benchmark(folder, forget=["owner-999"])


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [({"owners": 1}, "owners"), ({"facts": 0}, "facts"), ({"facts": 99}, "facts"),
     ({"forget_owners": 40}, "forget_owners"), ({"holdout_owners": -1}, "holdout_owners"),
     ({"general": -1}, "general")],
)  # fmt: skip
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, int], arg: str) -> None:
    with pytest.raises(DataError, match=arg):
        generate_synthetic(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(synthetic_mod, "write_json_array", boom)
    with pytest.raises(OSError, match="disk full"):
        generate_synthetic(tmp_path / "x", owners=3, facts=2, forget_owners=1)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="refusing to overwrite"):
        generate_synthetic(tmp_path, owners=3, facts=2, forget_owners=1)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_synthetic_dir_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAREU_HOME", str(tmp_path))
    d = synthetic_dir(owners=4, facts=3, forget_owners=1)
    assert d.parent == tmp_path / "data" and (d / ".complete").is_file()
    stamp = (d / "full.json").stat().st_mtime_ns
    assert synthetic_dir(owners=4, facts=3, forget_owners=1) == d
    assert (d / "full.json").stat().st_mtime_ns == stamp
    assert synthetic_dir(owners=4, facts=3, forget_owners=1, seed=1) != d


def test_truncated_file_is_detected(tmp_path: Path) -> None:
    d = generate_synthetic(tmp_path / "b", owners=3, facts=2, forget_owners=1)
    lines = (d / "retain.json").read_text().splitlines()
    (d / "retain.json").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"retain\.json.*manifest"):
        load_benchmark(d)
