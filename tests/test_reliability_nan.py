"""NaN and inf settings are refused before any compute, naming the flag or field; a
non-finite loss stops every training loop at its step, before anything is saved complete.

NaN passes `x < 0` checks (`--lambda-dis nan` turned distillation off, `--max-grad-norm nan`
turned clipping off) and `--method npo --hparam beta=nan` trained an all-NaN model that was
cached as complete."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from dareu.guards import NonFiniteLossError, check_finite_loss
from dareu.methods import METHOD_NAMES, UnlearnConfig
from dareu.methods.defaults import merge_hparams, method_defaults
from dareu.ppo.config import PPOConfig
from dareu.train.finetune import FinetuneConfig

REPO = Path(__file__).resolve().parents[1]
BAD = [math.nan, math.inf, -math.inf]
BAD_TEXT = ["nan", "NaN", "inf", "-inf", "Infinity"]


def float_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if "float" in str(f.type)]


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", BAD, ids=str)
@pytest.mark.parametrize("name", float_fields(PPOConfig))
def test_ppo_config_rejects_non_finite(name: str, bad: float) -> None:
    flag = "--" + name.replace("_", "-")
    with pytest.raises(ValueError, match=rf"^{flag}: must be a finite number, got"):
        PPOConfig(**{name: bad}).validate()


def test_every_ppo_float_field_is_covered() -> None:
    # The flags, so a refactor that drops one from the table is noticed.
    assert {"kl_coef", "vf_coef", "lambda_dis", "max_grad_norm", "lr"} <= set(
        float_fields(PPOConfig)
    )


@pytest.mark.parametrize("bad", BAD, ids=str)
@pytest.mark.parametrize("name", float_fields(UnlearnConfig))
def test_unlearn_config_rejects_non_finite(name: str, bad: float) -> None:
    cfg = UnlearnConfig(method="graddiff", **{name: bad})
    with pytest.raises(
        ValueError, match=rf"^{name} \(--{name.replace('_', '-')}\) must be a finite"
    ):
        cfg.validate()


@pytest.mark.parametrize("bad", BAD, ids=str)
@pytest.mark.parametrize("name", float_fields(FinetuneConfig))
def test_finetune_config_rejects_non_finite(name: str, bad: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name} .*must be a finite number"):
        FinetuneConfig(**{name: bad}).validate()


def numeric_hparams() -> list[tuple[str, str]]:
    return [
        (m, k)
        for m in sorted(METHOD_NAMES)
        for k, v in method_defaults(m).hparams.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]


@pytest.mark.parametrize("bad", [*BAD, *BAD_TEXT], ids=str)
@pytest.mark.parametrize(("method", "key"), numeric_hparams())
def test_method_hparams_reject_non_finite(method: str, key: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=rf"hyperparameter '{key}' \(--hparam {key}=\.\.\.\)"):
        merge_hparams(method, {key: bad})


def test_npo_beta_nan_is_refused_by_the_config() -> None:
    assert merge_hparams("npo", {"beta": "0.5"})["beta"] == 0.5  # finite still works
    with pytest.raises(ValueError, match=r"'beta'.*must be a finite number, got 'nan'"):
        UnlearnConfig(method="npo", hparams={"beta": "nan"}).validate()


@pytest.fixture(scope="module")
def script() -> Any:
    spec = importlib.util.spec_from_file_location("unlearn_script", REPO / "scripts" / "unlearn.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "npo", "--hparam", "beta=nan"], "'beta'"),
        (["--method", "npo", "--hparam", "beta=NaN"], "'beta'"),
        (["--method", "graddiff", "--lr", "nan"], "--lr"),
        (["--kl-coef", "nan"], "--kl-coef"),
        (["--vf-coef", "nan"], "--vf-coef"),
        (["--lambda-dis", "nan"], "--lambda-dis"),
        (["--max-grad-norm", "nan"], "--max-grad-norm"),
        (["--kl-coef", "inf"], "--kl-coef"),
    ],
)
def test_cli_refuses_non_finite_before_compute(
    script: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("DAREU_HOME", str(home))
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "finite" in err, err
    assert not home.exists() or not any(home.rglob("*.safetensors")), "computed before failing"


# ----------------------------------------------------------------------------- loss guard
def test_guard_message_names_the_step() -> None:
    check_finite_loss("step 3", loss=1.5, other=0.0)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 7 \(vf=nan\)"):
        check_finite_loss("step 7", pg=0.1, vf=math.nan)
    assert issubclass(NonFiniteLossError, FloatingPointError)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dareu.data import generate_synthetic, load_benchmark

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("data") / "synthetic-small"
    generate_synthetic(folder, owners=4, facts=2, forget_owners=1, holdout_owners=1, general=4)
    return load_benchmark(folder)


MICRO = FinetuneConfig(tiny_size="micro", batch_size=4, max_length=96, lr=3e-3, max_steps=3)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def original(bench: Any, root: Path) -> Path:
    """A one-step fine-tune: builds (and caches in `root`) the base the tests start from,
    before any loss is made NaN."""
    from dareu.train.finetune import finetune

    return finetune(bench, "original", dataclasses.replace(MICRO, max_steps=1), root=root,
                    progress=False)  # fmt: skip


def nan_cross_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cross-entropy (so every LM loss) becomes NaN from now on."""
    real = torch.nn.functional.cross_entropy

    def nan_ce(*a: Any, **kw: Any) -> torch.Tensor:
        return real(*a, **kw) * float("nan")

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", nan_ce)


def completed(root: Path, pattern: str) -> list[Path]:
    return [p for p in root.glob(pattern) if (p / ".complete").exists()]


def test_finetune_stops_at_the_first_nan_loss(
    bench: Any, root: Path, original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dareu.train.finetune import finetune

    nan_cross_entropy(monkeypatch)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 1 \(loss=nan\)"):
        finetune(bench, "retain", MICRO, root=root, save_every=1, progress=False)
    assert not list((root / "models").glob("retain-*")), "a NaN model was saved"
    assert not completed(root, "work/retain-*/checkpoints/step-*"), "a NaN checkpoint was saved"


def test_unlearning_stops_at_the_first_nan_loss(
    bench: Any, root: Path, original: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dareu.methods import run_method
    from dareu.methods.base import get_method

    cls = get_method("graddiff")
    real = cls.loss

    def nan_loss(self: Any, ctx: Any, batch: Any) -> Any:
        loss, logs = real(self, ctx, batch)
        return loss * float("nan"), logs

    monkeypatch.setattr(cls, "loss", nan_loss)
    cfg = UnlearnConfig(method="graddiff", model=str(original), profile="tiny", batch_size=4,
                        max_length=96, lr=1e-3, max_steps=3)  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 1 \(loss=nan\)"):
        run_method("graddiff", cfg, benchmark=bench, root=root, save_every=1, progress=False)
    assert not list((root / "unlearn").glob("graddiff-*")), "a NaN model was saved"
    assert not completed(root, "work/unlearn-*/checkpoints/step-*"), "a NaN checkpoint was saved"


def test_ppo_stops_at_the_first_nan_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dareu.ppo.trainer as trainer
    from test_ppo import run_trainer, small_config

    real = trainer.value_loss

    def nan_value_loss(*a: Any, **kw: Any) -> torch.Tensor:
        return real(*a, **kw) * float("nan")

    monkeypatch.setattr(trainer, "value_loss", nan_value_loss)
    torch.set_num_threads(1)
    with pytest.raises(NonFiniteLossError, match=r"at PPO step 1 of batch \d+ \(vf_loss=nan"):
        run_trainer(tmp_path, "nan", small_config(epochs=1, ppo_steps=2), save_every=1)
    assert not (tmp_path / "nan" / "model").exists(), "a NaN model was saved"
    assert not completed(tmp_path, "nan/**/step-*"), "a NaN checkpoint was saved"
