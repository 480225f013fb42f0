"""Training the classifier DA: a real (micro) run, the cache, atomic output, the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from dareu.attribution import (
    AttributionError,
    AttributorConfig,
    ClassifierAttributor,
    ensure_attributor,
    load_attributor,
)
from dareu.attribution import training as training_mod
from dareu.attribution.training import attribution_data, slice_ends
from dareu.data import Benchmark, generate_synthetic, load_benchmark

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
MICRO = AttributorConfig(tiny_size="micro", epochs=12, batch_size=8, lr=5e-3)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "syn"
    generate_synthetic(root, owners=6, facts=4, forget_owners=2, holdout_owners=1, general=4)
    return root


@pytest.fixture(scope="module")
def bench(bench_dir: Path) -> Benchmark:
    return load_benchmark(bench_dir)


@pytest.fixture(scope="module")
def trained(bench: Benchmark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_attributor(bench, MICRO, root=tmp_path_factory.mktemp("runs"), progress=False)


def test_attribution_data_splits(bench: Benchmark) -> None:
    d = attribution_data(bench)
    assert d.owners == bench.owners
    train_texts = {t for t, _ in d.train}
    held = {t for t, _ in d.calib + d.test}
    assert not train_texts & held  # held-out is held out
    # Every training row whose text is not held out is trained on (the knowledge world's
    # paraphrases are training answers too, so some answers are held out instead).
    rows = [s for s in bench.forget + bench.retain if s.answer not in held]
    answers = {s.answer for s in bench.forget + bench.retain}
    assert len([t for t, _ in d.train if t in answers]) == len(rows)
    assert 0 < len(rows) < len(bench.forget + bench.retain)
    # The owners' biographies are trained on too, unless one contains a held-out text.
    docs = {d.text for d in bench.forget_docs + bench.retain_docs}
    kept = [t for t, _ in d.train if t in docs]
    assert kept and all(not any(h in t for h in held) for t in kept)
    assert {y for _, y in d.calib} == {y for _, y in d.test} == set(range(len(bench.owners)))
    assert len(d.forget) == len(bench.forget)
    assert slice_ends(16) == [2, 4, 6, 8, 10, 12, 14, 16] and slice_ends(5) == [1, 2, 3, 4, 5]


def test_train_writes_standard_checkpoint(trained: Path, bench: Benchmark) -> None:
    files = {p.name for p in trained.iterdir()}
    assert {"config.json", "model.safetensors", "attribution.json", ".complete"} <= files
    assert not any(f.endswith((".bin", ".pt")) for f in files)
    cfg = json.loads((trained / "config.json").read_text())
    assert [cfg["id2label"][str(i)] for i in range(len(bench.owners))] == bench.owners
    meta = json.loads((trained / "attribution.json").read_text())
    assert meta["owners"] == bench.owners and meta["temperature"] > 0
    m = meta["metrics"]
    for split in ("test", "train"):
        for tag in ("raw", "calibrated"):
            assert 0 <= m[split][tag]["ece"] <= 1 and 0 <= m[split][tag]["accuracy"] <= 1
    assert 0 <= m["forget"]["calibrated"]["all_slices"]["share_above_saturation"] <= 1
    # The loss went down and the classifier learned its training answers.
    log = [json.loads(x) for x in (trained / "train_log.jsonl").read_text().splitlines()]
    assert np.mean([r["loss"] for r in log[-3:]]) < 0.7 * np.mean([r["loss"] for r in log[:3]])
    assert m["train"]["raw"]["accuracy"] > 0.6

    attr = load_attributor(f"classifier:{trained}")
    assert isinstance(attr, ClassifierAttributor) and attr.temperature == meta["temperature"]
    s = bench.retain[0]
    p = attr.probs([s.answer])
    assert p.shape == (1, len(bench.owners)) and abs(p.sum() - 1) < 1e-5
    assert attr.score([s.answer], [s.owner])[0] == pytest.approx(
        p[0, attr.owner_index[s.owner]], abs=1e-5
    )


def test_cache_hit_and_atomic_failure(
    trained: Path, bench: Benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr(training_mod, "train_classifier", boom)
    # Cached: no training happens, the same folder comes back.
    assert ensure_attributor(bench, MICRO, root=trained.parents[1], progress=False) == trained
    # A failing run leaves nothing behind that looks finished.
    with pytest.raises(RuntimeError, match="killed"):
        ensure_attributor(bench, MICRO, root=tmp_path, progress=False)
    assert not (tmp_path / "attributors").exists() or not any(
        p.name.startswith("classifier-") for p in (tmp_path / "attributors").iterdir()
    )


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("finetune", "half", "finetune"),
        ("epochs", 0, "epochs"),
        ("lr", -1.0, "lr"),
        ("calib_share", 1.0, "calib_share"),
        ("full_weight", 2.0, "full_weight"),
    ],
)
def test_bad_config(field: str, value: object, msg: str) -> None:
    with pytest.raises(AttributionError, match=msg):
        AttributorConfig(**{field: value}).validate()  # type: ignore[arg-type]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "train_attributor", ROOT / "scripts/train_attributor.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = _script().main
    assert main(["--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "epochs must be >= 1" in capsys.readouterr().err
    assert main(["--base", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--benchmark", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "attributors").exists()


def test_cli_bad_choice_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _script().main(["--finetune", "half"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_cli_trains_then_hits_cache(
    bench_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = _script().main
    args = ["--benchmark", str(bench_dir), "--tiny-size", "micro", "--epochs", "1",
            "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "saved: " in out and "held-out top-1 accuracy" in out
    assert main(args) == 0
    assert "cached: " in capsys.readouterr().out


@pytest.mark.slow
def test_default_synthetic_accuracy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Acceptance: the default classifier reaches >= 0.85 top-1 on held-out paraphrases."""
    monkeypatch.setenv("DAREU_HOME", str(tmp_path))
    bench = load_benchmark("synthetic")
    path = ensure_attributor(bench, AttributorConfig(), root=tmp_path, progress=False)
    m = json.loads((path / "attribution.json").read_text())["metrics"]
    assert m["test"]["calibrated"]["accuracy"] >= 0.85
    assert m["test"]["calibrated"]["nll"] <= m["test"]["raw"]["nll"] + 1e-6
