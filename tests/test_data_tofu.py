"""TOFU loader on the local copy of the original files (read-only, never copied into the repo)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dareu.data import Benchmark, DataError, load_benchmark
from dareu.data.tofu import load_tofu, summarize_tofu

TOFU_DIR = Path(
    os.environ.get("DAREU_TOFU_DIR", Path(__file__).resolve().parents[2] / "shared/data/tofu")
)
pytestmark = pytest.mark.skipif(not (TOFU_DIR / "full.json").is_file(), reason="no TOFU copy")


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    return load_benchmark(TOFU_DIR)


def test_forget10_counts_and_owners(bench: Benchmark) -> None:
    assert bench.name == "tofu-forget10"
    assert len(bench.forget) == 400 and len(bench.retain) == 3600
    assert len(bench.owners) == 200
    assert bench.owners[0] == "author-0" and bench.owners[-1] == "author-199"
    assert bench.forget_owners == [f"author-{i}" for i in range(180, 200)]
    assert not {q.owner for q in bench.retain} & set(bench.forget_owners)
    # full rows 0..19 are author 0 (retain90 = full[:3600], in order).
    assert [q.id for q in bench.retain[:21]] == [f"tofu-{i}" for i in range(21)]
    assert {q.owner for q in bench.retain[:20]} == {"author-0"}
    assert bench.retain[20].owner == "author-1"


def test_eval_sets(bench: Benchmark) -> None:
    assert len(bench.forget_eval) == 400 and len(bench.retain_eval) == 400
    assert [q.id for q in bench.forget_eval] == [q.id for q in bench.forget]
    assert all(len(q.perturbed_answers) == 5 and q.paraphrased_answer for q in bench.forget_eval)
    assert {q.owner for q in bench.retain_eval} == {f"author-{i}" for i in range(20)}
    assert len(bench.test_sets["real_authors"]) == 100
    assert len(bench.test_sets["world_facts"]) == 117
    assert all(len(q.perturbed_answers) == 3 for q in bench.test_sets["world_facts"])
    assert {q.owner for q in bench.test_sets["real_authors"]} == {"real_authors"}
    assert len(bench.idk_answers) == 100


def test_holdout_owners(bench: Benchmark) -> None:
    assert len(bench.holdout) == 400
    assert bench.holdout[0].owner == "holdout-author-0"
    assert bench.holdout[399].owner == "holdout-author-19"
    assert not {q.owner for q in bench.holdout} & set(bench.owners)


@pytest.mark.parametrize(("split", "n", "first"), [("forget01", 40, 198), ("forget05", 200, 190)])
def test_other_splits(split: str, n: int, first: int) -> None:
    b = load_benchmark("tofu", tofu_dir=TOFU_DIR, forget=split)
    assert len(b.forget) == n and len(b.retain) == 4000 - n and len(b.holdout) == n
    assert b.forget_owners[0] == f"author-{first}"


def test_group_authors() -> None:
    b = load_tofu(TOFU_DIR, forget="forget10", group_authors=4)
    assert len(b.owners) == 50 and b.owners[0] == "authors-0-3"
    assert b.forget_owners[0] == "authors-180-183" and len(b.forget_owners) == 5
    assert b.holdout[0].owner == "holdout-authors-0-3"
    # Authors 175..181 would be one owner, split between retain90 and forget10.
    with pytest.raises(DataError, match="group_authors=7"):
        load_tofu(TOFU_DIR, forget="forget10", group_authors=7)
    with pytest.raises(DataError, match="group_authors"):
        load_tofu(TOFU_DIR, group_authors=0)


def test_bad_requests() -> None:
    with pytest.raises(DataError, match="forget20"):
        load_benchmark(TOFU_DIR, forget="forget20")
    with pytest.raises(DataError, match="split name"):
        load_benchmark(TOFU_DIR, forget=["author-3"])
    with pytest.raises(DataError, match="group_authors"):
        load_benchmark("synthetic", group_authors=2)


def _copy(tmp_path: Path, names: list[str]) -> Path:
    d = tmp_path / "tofu"
    d.mkdir()
    for n in names:
        shutil.copy(TOFU_DIR / n, d / n)
        (d / n).chmod(0o644)
    return d


def test_unmatched_row_is_an_error(tmp_path: Path) -> None:
    d = _copy(tmp_path, ["full.json", "forget10.json"])
    lines = (d / "forget10.json").read_text().splitlines()
    row = json.loads(lines[5])
    row["answer"] += " (edited)"
    lines[5] = json.dumps(row)
    (d / "forget10.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="forget10 row 5"):
        load_tofu(d)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    d = _copy(tmp_path, ["full.json", "forget10.json"])
    with pytest.raises(DataError, match=r"retain90\.json"):
        load_tofu(d)


def test_summary_covers_all_configs() -> None:
    counts = summarize_tofu(TOFU_DIR)
    assert counts["full"] == 4000 and counts["holdout10"] == 400
    assert counts["real_authors"] == 100 and counts["world_facts_perturbed"] == 117
    assert counts["retain99"] == 3960 and counts["forget05_perturbed"] == 200


def test_tofu_subset_keeps_the_request_and_n_retain_authors() -> None:
    from dareu.data.loader import load_request

    sub = load_request(str(TOFU_DIR), "forget01", tofu_authors=12, seed=3)
    assert sub.name == "tofu-forget01-a12-s3"
    assert sub.forget_owners == ["author-198", "author-199"] and len(sub.forget) == 40
    retained = sorted({q.owner for q in sub.retain})
    assert len(retained) == 12 and len(sub.retain) == 12 * 20
    assert set(sub.owners) == set(retained) | set(sub.forget_owners)
    # retain_perturbed's authors come first, so the retain evaluation keeps rows
    assert len(sub.retain_eval) == 12 * 20
    again = load_request(str(TOFU_DIR), "forget01", tofu_authors=12, seed=3)
    assert sorted({q.owner for q in again.retain}) == retained
    other = load_request(str(TOFU_DIR), "forget01", tofu_authors=12, seed=4)
    assert sorted({q.owner for q in other.retain}) != retained
    with pytest.raises(DataError, match="--tofu-authors: must be between 1 and 198"):
        load_request(str(TOFU_DIR), "forget01", tofu_authors=500)


def test_tofu_subset_default_is_20_authors_for_the_tiny_model_only() -> None:
    """The job's default: 20 retain authors with the tiny model on TOFU, every author with
    --model or with 'all'; the CLI parses 'all' and refuses 0."""
    import argparse

    from dareu.cli import tofu_authors
    from dareu.pipeline import TINY_TOFU_AUTHORS, JobConfig

    assert TINY_TOFU_AUTHORS == 20
    assert JobConfig(benchmark="tofu").resolved_tofu_authors == 20
    assert (
        JobConfig(benchmark="tofu", tofu_authors=tofu_authors("all")).resolved_tofu_authors is None
    )
    assert JobConfig(benchmark="tofu", tofu_authors=7).resolved_tofu_authors == 7
    assert JobConfig(benchmark="tofu", model="/m").resolved_tofu_authors is None
    assert JobConfig().resolved_tofu_authors is None  # the knowledge world
    with pytest.raises(argparse.ArgumentTypeError, match="'all'"):
        tofu_authors("0")
