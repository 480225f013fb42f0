"""scripts/benchmark.py: argument checks, resumability, atomic run folders, the table and plot.

The runs themselves are replaced by a stub here (each one is a full unlearning job); the
real end-to-end figures are in docs/methods.md.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dareu.cache import atomic_dir, atomic_write_json, is_complete

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def bm() -> Any:
    spec = importlib.util.spec_from_file_location("benchmark_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_result(method: str, seed: int, forget_rouge: float) -> dict[str, Any]:
    metrics = {"forget_rougeL": forget_rouge, "retain_rougeL": 0.9, "model_utility": 0.5,
               "tow": 0.7, "gibberish_rate": 0.25, "leak_fact_rate": 0.5}  # fmt: skip
    return {"method": method, "seed": seed, "forget": None, "forget_tag": "default",
            "metrics": metrics, "original": {"forget_rougeL": 0.99}, "retain": None,
            "train_s": 10.0 + seed, "wall_s": 20.0, "peak_memory_mb": 900.0,
            "run_dir": "x"}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "msg"),
    [
        (["--methods", "nope"], "unknown ['nope']"),
        (["--seeds", "a,b"], "--seeds"),
        (["--hparam", "npo:betaa=1"], "no hyperparameter 'betaa'"),
        (["--hparam", "beta=1"], "METHOD:KEY=VALUE"),
        (["--forget", "forget01", "--retain-model", "forget05=/x"], "not one of the --forget"),
        (["--format", "alpaca"], "prompt format"),
    ],
)
def test_bad_arguments_exit_2(
    bm: Any, argv: list[str], msg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bm.main([*argv, "--out", str(tmp_path)]) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_model_without_retain_model_is_refused(
    bm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\x02" + b"\x00" * 7 + b"{}")  # empty, valid
    assert bm.main(["--model", str(model), "--out", str(tmp_path / "b")]) == 2
    assert "--retain-model is required" in capsys.readouterr().err


def test_resumes_skipping_finished_runs_and_keeps_failures_out(
    bm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = tmp_path / "runs" / "default" / "ga" / "seed-0"
    with atomic_dir(done) as tmp:
        atomic_write_json(tmp / "result.json", fake_result("ga", 0, 0.4))
    calls: list[tuple[str, int]] = []

    def fake_run(spec: dict[str, Any], isolate: bool) -> dict[str, Any]:
        calls.append((spec["method"], spec["seed"]))
        if spec["method"] == "npo" and spec["seed"] == 1:
            raise RuntimeError("boom")
        return fake_result(spec["method"], spec["seed"], 0.3 + spec["seed"] / 10)

    monkeypatch.setattr(bm, "run_isolated", fake_run)
    code = bm.main(["--methods", "ga,npo,original", "--seeds", "0,1", "--out", str(tmp_path)])
    assert code == 1  # one run failed; the others were still run and recorded
    assert calls == [("ga", 1), ("npo", 0), ("npo", 1)]
    assert is_complete(tmp_path / "runs" / "default" / "npo" / "seed-0")
    assert not (tmp_path / "runs" / "default" / "npo" / "seed-1").exists()
    # "original" is read from a finished run of the request, one row per seed (the embedded
    # world draws a new original model per seed), from a run of that seed when there is one.
    for seed in (0, 1):
        orig = json.loads((tmp_path / f"runs/default/original/seed-{seed}/result.json").read_text())
        assert orig["metrics"] == {"forget_rougeL": 0.99}
    calls.clear()
    monkeypatch.setattr(bm, "run_isolated", lambda spec, isolate: fake_result("npo", 1, 0.5))
    assert bm.main(["--methods", "ga,npo", "--seeds", "0,1", "--out", str(tmp_path)]) == 0
    # --force redoes finished runs and replaces their folders.
    monkeypatch.setattr(bm, "run_isolated", lambda spec, isolate: fake_result("ga", 0, 0.05))
    assert bm.main(["--methods", "ga", "--seeds", "0", "--out", str(tmp_path), "--force"]) == 0
    redone = json.loads((done / "result.json").read_text())
    assert redone["metrics"]["forget_rougeL"] == 0.05 and is_complete(done)


def test_table_is_mean_sd_over_seeds_and_plot_is_written(bm: Any, tmp_path: Path) -> None:
    for method, seed, rouge in [("npo", 0, 0.2), ("npo", 1, 0.4), ("ga", 0, 0.1)]:
        with atomic_dir(tmp_path / "runs" / "default" / method / f"seed-{seed}") as tmp:
            atomic_write_json(tmp / "result.json", fake_result(method, seed, rouge))
    out = bm.write_outputs(tmp_path, ["ga", "npo"], {"x": 1})
    md = out.read_text()
    row = next(line for line in md.splitlines() if line.startswith("| npo |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2"
    sd = float(np.std([0.2, 0.4], ddof=1))
    assert cells[2] == f"{0.3:.4f} ± {sd:.4f}"  # D_F ROUGE-L
    assert "25.0000" in row  # gibberish in percent
    ga = next(line for line in md.splitlines() if line.startswith("| ga |"))
    assert "±" not in ga.split("|")[3]
    assert md.index("| ga |") < md.index("| npo |")  # the requested method order
    assert (tmp_path / "forget_vs_utility.png").stat().st_size > 1000
    data = json.loads((tmp_path / "results.json").read_text())
    assert {e["method"] for e in data["aggregate"]} == {"ga", "npo"}


def test_direction_check_and_audit_gains(bm: Any) -> None:
    """The audit's direction check fails when the retain model leaks in context (the probe
    would read the context) or out-relearns the original; gains are after - before."""

    def row(method: str, seed: int, **m: float) -> dict[str, Any]:
        return {"method": method, "seed": seed, "metrics": m}

    keys = dict.fromkeys(bm.DIRECTION_KEYS, 0.0)
    good = [row("original", 0, **{**keys, "audit_relearn_leak": 0.4}), row("retrain", 0, **keys)]
    md, ok = bm.direction_check(good)
    assert ok and "| 0 | 0.40 vs 0.00" in md
    leaky = [good[0], row("retrain", 0, **{**keys, "audit_incontext_leak_k2": 0.3})]
    assert bm.direction_check(leaky)[1] is False
    stronger = [good[0], row("retrain", 0, **{**keys, "audit_relearn_all_leak": 0.5})]
    assert bm.direction_check(stronger)[1] is False
    r = row("npo", 0, audit_relearn_leak=0.5, audit_relearn_before_leak=0.1)
    assert bm.value(r, "gain:audit_relearn_leak:audit_relearn_before_leak") == pytest.approx(0.4)
    assert bm.value(row("npo", 0), "gain:audit_relearn_leak:audit_relearn_before_leak") is None
