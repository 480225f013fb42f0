"""The shared unlearning loop end to end on a micro model: every method runs and writes a
loadable checkpoint, resume is exact, LoRA's reference is the adapter-free policy, the cache
is reused, and bad configurations fail before any compute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dareu.data import generate_synthetic, load_benchmark
from dareu.data.schema import Benchmark
from dareu.methods import METHOD_NAMES, TrainingStopped, UnlearnConfig, run_method
from dareu.methods.common import Reference
from dareu.methods.trainer import build_loader, pick_idk
from dareu.models import load_model
from dareu.train.finetune import FinetuneConfig, finetune

torch.set_num_threads(1)
MICRO = FinetuneConfig(tiny_size="micro", batch_size=4, max_length=96, lr=3e-3, epochs=3)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Benchmark:
    folder = tmp_path_factory.mktemp("data") / "synthetic-small"
    generate_synthetic(folder, owners=6, facts=3, forget_owners=2, holdout_owners=1, general=6)
    return load_benchmark(folder)


@pytest.fixture(scope="module")
def models(bench: Benchmark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        which: finetune(bench, which, MICRO, root=root, progress=False)  # type: ignore[arg-type]
        for which in ("original", "retain")
    }


def cfg(models: dict[str, Path], method: str, **kw: object) -> UnlearnConfig:
    base = {"model": str(models["original"]), "retain_model": str(models["retain"]),
            "profile": "tiny", "batch_size": 4, "max_length": 96, "lr": 1e-3}  # fmt: skip
    return UnlearnConfig(method=method, **{**base, **kw})  # type: ignore[arg-type]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return {
        k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(str(f)).items()
    }


@pytest.mark.parametrize("method", sorted(set(METHOD_NAMES) - {"retrain"}))
def test_every_method_trains_and_saves_a_loadable_model(
    method: str, bench: Benchmark, models: dict[str, Path], tmp_path: Path
) -> None:
    out = run_method(method, cfg(models, method, max_steps=2), benchmark=bench, root=tmp_path,
                     progress=False)  # fmt: skip
    meta = json.loads((out / "dareu_model.json").read_text())
    assert meta["method"] == method and meta["summary"]["steps"] == 2
    assert meta["hparam_sources"] and (meta["config"]["hparams"] or method in ("ga", "finetune"))
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(
        torch.isfinite(torch.tensor(r["loss"])) for r in log
    )
    load_model(out)  # a complete HF checkpoint
    before = weights(models["original"])
    after = weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before), "nothing changed"
    if method == "atwu":
        scores = json.loads((out / "token_scores.json").read_text())["samples"]
        assert len(scores) == len(bench.forget) and all(
            len(r["g"]) == len(r["tokens"]) for r in scores
        )


def test_retrain_is_the_retain_model(
    bench: Benchmark, models: dict[str, Path], tmp_path: Path
) -> None:
    out = run_method(
        "retrain", cfg(models, "retrain"), benchmark=bench, root=tmp_path, progress=False
    )
    assert out == models["retain"]


def test_resume_reaches_the_same_weights_and_scorer(
    bench: Benchmark, models: dict[str, Path], tmp_path: Path
) -> None:
    c = cfg(models, "atwu", epochs=3.0, batch_size=2, grad_accum=2,
            hparams={"scorer_update_every": 2})  # fmt: skip
    straight = run_method(
        None, c, benchmark=bench, root=tmp_path / "a", save_every=2, progress=False
    )
    total = json.loads((straight / "dareu_model.json").read_text())["summary"]["steps"]
    assert total >= 4
    with pytest.raises(TrainingStopped):
        run_method(None, c, benchmark=bench, root=tmp_path / "b", save_every=2,
                   stop_after_steps=total // 2 + 1, progress=False)  # fmt: skip
    assert not list((tmp_path / "b" / "unlearn").glob("atwu-*"))  # nothing half-written
    resumed = run_method(None, c, benchmark=bench, root=tmp_path / "b", save_every=2, resume=True,
                         progress=False)  # fmt: skip
    meta = json.loads((resumed / "dareu_model.json").read_text())
    assert 0 < meta["summary"]["resumed_from_step"] < total
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ga = json.loads((straight / "token_scores.json").read_text())["samples"]
    gb = json.loads((resumed / "token_scores.json").read_text())["samples"]
    assert [r["g"] for r in ga] == [r["g"] for r in gb]
    assert any(g != 0.5 for r in ga for g in r["g"]), "the scorer never updated"


def test_lora_reference_is_the_policy_without_adapters(
    bench: Benchmark, models: dict[str, Path], tmp_path: Path
) -> None:
    from dareu.methods import get_method
    from dareu.methods.defaults import merge_hparams
    from dareu.methods.trainer import build_model

    c = cfg(models, "npo", lora=True, lora_r=4, lr=1e-2)
    r = {**c.resolved(), "model": str(models["original"])}
    method = get_method("npo")(merge_hparams("npo", {}), seed=0)
    policy, tok = build_model(method, models["original"], r)
    with torch.no_grad():
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)  # make the adapters matter
    batch = next(iter(build_loader(method, bench, tok, r)))["forget"]
    original, _ = load_model(models["original"])
    ref = Reference(policy=policy).logits(batch)
    with torch.no_grad():
        want = original(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        got = policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(ref, want, atol=1e-5) and not torch.allclose(got, want, atol=1e-3)
    # End to end: a LoRA run is merged into a full checkpoint for the tiny profile.
    out = run_method(None, cfg(models, "npo", lora=True, lora_r=4, max_steps=2), benchmark=bench,
                     root=tmp_path, progress=False)  # fmt: skip
    assert json.loads((out / "dareu_model.json").read_text())["merged"] is True
    assert (out / "config.json").is_file()


def test_cache_is_reused(
    bench: Benchmark, models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = cfg(models, "ga", max_steps=1)
    first = run_method(None, c, benchmark=bench, root=tmp_path, progress=False)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    again = run_method(None, c, benchmark=bench, root=tmp_path, progress=False)
    assert again == first and "cached:" in capsys.readouterr().out
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    forced = run_method(None, c, benchmark=bench, root=tmp_path, force=True, progress=False)
    assert forced == first and (first / "model.safetensors").stat().st_mtime_ns != stamp
    other = run_method(None, cfg(models, "ga", max_steps=1, seed=1), benchmark=bench, root=tmp_path,
                       progress=False)  # fmt: skip
    assert other != first


def test_pairs_and_idk_are_deterministic(bench: Benchmark, models: dict[str, Path]) -> None:
    from dareu.methods import get_method

    method = get_method("idkdpo")({}, seed=0)
    _, tok = load_model(models["original"])
    r = {**cfg(models, "idkdpo").resolved()}
    a = [b["retain"]["input_ids"].tolist() for b in build_loader(method, bench, tok, r)]
    b = [b["retain"]["input_ids"].tolist() for b in build_loader(method, bench, tok, r)]
    assert a == b
    assert pick_idk(bench.idk_answers, 0, 3) == pick_idk(bench.idk_answers, 0, 3)
    batch = next(iter(build_loader(method, bench, tok, r)))
    assert batch["idk"]["input_ids"].shape[0] == batch["forget"]["input_ids"].shape[0]


def test_bad_configurations_fail_before_compute(
    bench: Benchmark, models: dict[str, Path], tmp_path: Path
) -> None:
    bad = [
        (cfg(models, "nope"), "unknown method 'nope'"),
        (cfg(models, "npo", profile="huge"), "profile must be one of"),
        (cfg(models, "npo", lr=0.0), "lr must be > 0"),
        (cfg(models, "npo", hparams={"beta2": 1}), "no hyperparameter 'beta2'"),
        (cfg(models, "npo", model=str(tmp_path / "missing")), "does not exist"),
        (cfg(models, "npo", batch_size=0), "batch_size must be >= 1"),
        (cfg(models, "npo", fmt="alpaca"), "prompt format 'alpaca'"),
    ]
    for c, msg in bad:
        with pytest.raises(ValueError, match=msg):
            run_method(None, c, benchmark=bench, root=tmp_path, progress=False)
    import dataclasses

    no_idk = dataclasses.replace(bench, idk_answers=[])
    with pytest.raises(ValueError, match="needs refusal answers"):
        run_method("idknll", cfg(models, "idknll", max_steps=1), benchmark=no_idk, root=tmp_path,
                   progress=False)  # fmt: skip
    assert not list((tmp_path / "unlearn").glob("*")) if (tmp_path / "unlearn").exists() else True
