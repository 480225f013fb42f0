"""`scripts/unlearn.py`: bad configurations fail before any compute with exit code 2, and
the main job runs end to end on a small synthetic benchmark (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unlearn_script", REPO / "scripts" / "unlearn.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAREU_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nonexistent/llama"], "/nonexistent/llama"),
        (["--kappa", "99", "--max-new-tokens", "16"], "--kappa"),
        (["--temperature", "0"], "--temperature"),
        (["--rounds", "0"], "--rounds"),
        (["--report-to", "wandb"], "--report-to"),
        (["--format", "alpaca"], "alpaca"),
        (["--dtype", "int3"], "--dtype"),
        (["--hparam", "beta", "--method", "npo"], "KEY=VALUE"),
        (["--audit-relearn-lr", "0"], "--audit-relearn-lr"),
        (["--audit-relearn-lr", "nan"], "--audit-relearn-lr"),
        (["--audit-relearn-steps", "0"], "--audit-relearn-steps"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_bad_configuration_exits_2_before_compute(
    script: ModuleType,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not home.exists() or not any(home.rglob("*.safetensors")), "computed before failing"


def test_config_file_and_flag_precedence(script: ModuleType, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 0.5\nppo_steps: 7\nseed: 3\n")
    a = script.parse(["--config", str(cfg), "--ppo-steps", "9"])
    job, ppo = script.build_configs(a)
    assert (ppo.lr, ppo.ppo_steps, job.seed) == (0.5, 9, 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown settings"):
        script.build_configs(script.parse(["--config", str(bad)]))
    bad.write_text("chi_eps: 1e-6\n")  # YAML 1.1 reads this as a string
    with pytest.raises(ValueError, match="chi_eps must be a float"):
        script.build_configs(script.parse(["--config", str(bad)]))


@pytest.mark.parametrize("method", ["dareu", "npo", "ga"])
def test_profile_flag_reaches_every_method(
    script: ModuleType, method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile is resolved once (JobConfig) and used by DareU and every baseline: before,
    a baseline recomputed it from --model and silently ignored the flag."""
    import dareu.methods.trainer as trainer
    from dareu.unlearners import Baseline, Round

    job, ppo = script.build_configs(script.parse(["--method", method, "--profile", "paper"]))
    assert job.resolved_profile == "paper" and ppo.lr == script.paper_config().lr
    assert job.audit_config() is not None and job.audit_config().relearn_lr == 1e-5
    seen: dict[str, str | None] = {}
    monkeypatch.setattr(
        trainer, "run_method", lambda name, cfg, **kw: seen.setdefault("profile", cfg.profile)
    )
    bench = _tiny_bench()
    rnd = Round(index=0, request=bench.forget, distill=[], original=tmp_path, prev=None,
                retain_model=None, out_dir=tmp_path, attributor=None, stop_after=None)  # fmt: skip
    Baseline(job, script.paper_config(), {"hparams": {}, "train": {}}).train_round(bench, rnd)
    assert seen["profile"] == "paper"
    tiny, _ = script.build_configs(script.parse(["--method", method]))
    assert tiny.resolved_profile == "tiny" and tiny.audit_config().relearn_lr == pytest.approx(1e-4)
    assert script.build_configs(script.parse(["--no-audit"]))[0].audit_config() is None


def _tiny_bench() -> Any:
    from dareu.data.schema import Benchmark, QASample

    rows = [QASample(id=f"q{i}", owner="a" if i < 2 else "b", question=f"Q{i}?", answer="A.")
            for i in range(4)]  # fmt: skip
    return Benchmark(name="t", forget=rows[:2], retain=rows[2:], forget_eval=rows[:2],
                     retain_eval=rows[2:], holdout=[], test_sets={}, owners=["a", "b"],
                     forget_owners=["a"])  # fmt: skip


def test_sequential_rounds_are_cumulative_unless_asked(script: ModuleType) -> None:
    """Later requests must not undo earlier ones (docs/dareu.md); the literal rounds are opt-in."""
    assert script.build_configs(script.parse(["--rounds", "2"]))[0].cumulative_rounds is True
    literal = script.parse(["--rounds", "2", "--no-cumulative-rounds"])
    assert script.build_configs(literal)[0].cumulative_rounds is False


def test_paper_config_file_is_the_paper_config(script: ModuleType) -> None:
    from dareu.ppo.config import PPOConfig

    _, ppo = script.build_configs(
        script.parse(["--config", str(REPO / "configs" / "dareu_paper.yaml")])
    )
    assert ppo == PPOConfig()


def test_every_dareu_constant_is_a_flag(script: ModuleType) -> None:
    import dataclasses

    from dareu.ppo.config import PPOConfig

    a = script.parse([])
    for f in dataclasses.fields(PPOConfig):
        assert hasattr(a, f.name), f"PPOConfig.{f.name} has no command-line flag"


def test_paper_profile_keeps_the_paper_values(script: ModuleType, tmp_path: Path) -> None:
    _, ppo = script.build_configs(script.parse(["--profile", "paper"]))
    assert (ppo.k_slices, ppo.c_seg, ppo.kl_coef, ppo.gamma, ppo.gae_lambda) == (
        15, 1.05, 0.1, 1.0, 0.95,
    )  # fmt: skip
    assert (ppo.clip_range, ppo.vf_coef, ppo.ppo_steps, ppo.batch_size) == (0.2, 0.2, 20, 32)
    assert (ppo.lr, ppo.epochs, ppo.lambda_dis, ppo.temperature) == (1.5e-4, 1, 2.0, 0.8)


def test_unknown_forget_owner_of_a_saved_attributor_exits_2(
    script: ModuleType, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An attributor folder whose owners do not include the forget owners is rejected
    from its attribution.json, before any model is trained or loaded."""
    from dareu.data import generate_synthetic

    bench = generate_synthetic(tmp_path / "bench", owners=6, facts=4, forget_owners=2,
                               holdout_owners=1, general=4)  # fmt: skip
    attr = tmp_path / "attr"
    attr.mkdir()
    (attr / "attribution.json").write_text(json.dumps({"owners": ["somebody", "else"]}))
    code = script.main(["--benchmark", str(bench), "--attributor", f"classifier:{attr}"])
    assert code == 2
    assert "unknown to it" in capsys.readouterr().err
    assert not (home / "models").exists()


def test_too_many_rounds_exits_2(
    script: ModuleType, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dareu.data import generate_synthetic

    bench = generate_synthetic(tmp_path / "bench", owners=6, facts=4, forget_owners=2,
                               holdout_owners=1, general=4)  # fmt: skip
    assert script.main(["--benchmark", str(bench), "--rounds", "3"]) == 2
    assert "at most 2 rounds" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_main_job_end_to_end_and_cached(tmp_path: Path) -> None:
    """The real job (fine-tune, attributor, DareU in 2 rounds, evaluation, report) on a small
    synthetic benchmark, as a subprocess; a second run reuses everything."""
    from dareu.data import generate_synthetic

    bench = generate_synthetic(tmp_path / "bench", owners=6, facts=4, forget_owners=2,
                               holdout_owners=2, general=8)  # fmt: skip
    env = {**os.environ, "DAREU_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(REPO / "scripts" / "unlearn.py"), "--benchmark", str(bench),
            "--rounds", "2", "--batch-size", "4", "--ppo-steps", "2", "--epochs", "1",
            "--samples-per-query", "2", "--max-new-tokens", "16", "--eval-max-new-tokens", "24",
            "--pretrain-people", "300", "--no-progress"]  # fmt: skip
    run: Any = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    first = run.stdout.splitlines()[0]
    assert first.startswith("DareU run folder: ")
    out = Path(first.split(": ", 1)[1])
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["rounds"]) == 2
    for row in summary["rounds"]:
        for who in ("original", "retain", "unlearned"):
            assert row[who]["forget_attr_score"] is not None
            assert row[who]["forget_rougeL"] is not None
            # The forgetting audit runs by default on every evaluated model; 4 facts per
            # owner leave 3 others, so k=4 has no fact to ask (None, not absent or 0).
            for key in ("audit_relearn_leak", "audit_relearn_heldout_leak", "audit_quant8_leak",
                        "audit_quant4_leak", "audit_incontext_leak_k2"):  # fmt: skip
                assert 0.0 <= row[who][key] <= 1.0, (who, key)
            assert row[who]["audit_incontext_leak_k4"] is None
        # Direction: the original recovers at least what the retain model does, and the
        # retain model, which never saw the forget owners, does not leak from the context.
        o, t = row["original"], row["retain"]
        for key in ("audit_relearn_leak", "audit_relearn_all_leak", "audit_incontext_leak_k2"):
            assert o[key] >= t[key], key
        assert t["audit_incontext_leak_k2"] <= 0.05
    assert "Forgetting audit" in (out / "report.md").read_text()
    assert (out / "report.md").is_file() and (out / "curves.png").is_file()
    log = [json.loads(x) for x in (out / "round-0" / "log.jsonl").read_text().splitlines()]
    for key in ("reward_mean", "attr_score", "kl", "pg_loss", "vf_loss", "dis_loss",
                "resp_len", "chi_saturation", "leak_fact", "reward_std"):  # fmt: skip
        assert key in log[0], key
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert again.stdout.splitlines()[0] == first
    assert "cached" in again.stdout

    # The same job on 2 gloo processes (torchrun: Accelerate's launcher starts one process
    # on a CPU), reusing the cached models and attributor: one process group, one log line
    # per batch, and the first batch's rollouts (before any update) as in 1 process.
    torchrun = Path(sys.executable).with_name("torchrun")
    two_args = [str(torchrun), "--standalone", "--nproc_per_node", "2", *args[1:],
                "--output", str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(two_args, env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-4000:]
    assert two.stdout.count("DareU run folder: ") == 1, "both processes acted as the main one"
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["processes"] == 2
    log2 = [json.loads(x) for x in (tmp_path / "two" / "round-0" / "log.jsonl").read_text()
            .splitlines()]  # fmt: skip
    assert [r["batch"] for r in log2] == [r["batch"] for r in log]
    for key in ("attr_score", "reward_mean", "resp_len"):
        assert log2[0][key] == pytest.approx(log[0][key], abs=1e-6), key
