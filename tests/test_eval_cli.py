"""scripts/evaluate.py: bad input fails before any compute, with status 2 and a clear message."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_cli", ROOT / "scripts/evaluate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_cli"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cli() -> ModuleType:
    return _script()


def _fails(cli: ModuleType, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_bad_arguments_exit_2_naming_the_argument(
    cli: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    assert "does not exist" in _fails(cli, ["--model", str(tmp_path / "nope")], capsys)
    assert "not a Hugging Face checkpoint" in _fails(cli, ["--model", str(model)], capsys)
    (model / "config.json").write_text("{}")
    (model / "pytorch_model.bin").write_bytes(b"x")
    assert "pickle" in _fails(cli, ["--model", str(model)], capsys)
    (model / "model.safetensors").write_bytes(b"x")
    assert "too short to be a safetensors file" in _fails(cli, ["--model", str(model)], capsys)
    (model / "pytorch_model.bin").unlink()
    save_file({"w": torch.zeros(1)}, str(model / "model.safetensors"))  # well-formed weights
    assert "--format" in _fails(cli, ["--model", str(model), "--format", "alpaca"], capsys)
    assert "--batch-size" in _fails(cli, ["--model", str(model), "--batch-size", "0"], capsys)
    assert "--max-new-tokens" in _fails(
        cli, ["--model", str(model), "--max-new-tokens", "0"], capsys
    )
    assert "--mia-k" in _fails(cli, ["--model", str(model), "--mia-k", "1.5"], capsys)
    err = _fails(cli, ["--model", str(model), "--retain-eval", str(tmp_path / "none")], capsys)
    assert "--retain-eval" in err and "no such" in err
    bad = tmp_path / "bad_eval"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    assert "not valid JSON" in _fails(
        cli, ["--model", str(model), "--retain-eval", str(bad)], capsys
    )
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    assert "--out" in _fails(cli, ["--model", str(model), "--out", str(foreign)], capsys)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert "--gibberish-model" in _fails(
        cli, ["--model", str(model), "--gibberish-model", str(tmp_path)], capsys
    )
    cfg = tmp_path / "run.json"
    cfg.write_text("[1, 2]")
    assert "--run-config" in _fails(cli, ["--model", str(model), "--run-config", str(cfg)], capsys)


def test_cli_end_to_end_on_synthetic_folder(
    cli: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dareu.data import generate_synthetic, load_benchmark
    from dareu.eval.evaluator import EvalResult
    from dareu.models.tiny import benchmark_corpus, build_tiny

    data = generate_synthetic(
        tmp_path / "data", owners=4, facts=2, forget_owners=1, holdout_owners=1, general=4
    )
    model = build_tiny(benchmark_corpus(load_benchmark(data)), tmp_path / "m", size="micro")
    common = ["--model", str(model), "--benchmark", str(data), "--max-new-tokens", "6",
              "--batch-size", "4", "--no-progress"]  # fmt: skip
    run_cfg = tmp_path / "run.json"
    run_cfg.write_text('{"method": "none", "lr": 1e-5}')
    first = tmp_path / "ev" / "a"
    assert (
        cli.main([*common, "--out", str(first), "--seed", "0", "--run-config", str(run_cfg)]) == 0
    )
    assert {"summary.json", "per_sample.json", "results.md", ".complete"} <= {
        p.name for p in first.iterdir()
    }
    a = EvalResult.load(first)
    assert a.summary["seed"] == 0 and a.summary["config"]["run"]["method"] == "none"
    assert a.summary["n_forget"] == 2 and a.summary["leak_fact_rate"] is not None
    second = tmp_path / "ev" / "b"
    argv = [*common, "--out", str(second), "--seed", "1", "--run-config", str(run_cfg),
            "--retain-eval", str(first)]  # fmt: skip
    assert cli.main(argv) == 0
    b = EvalResult.load(second)
    assert b.summary["forget_quality"] == pytest.approx(1.0) and b.summary["tow"] == 1.0
    assert b.summary["config_key"] == a.summary["config_key"]
    capsys.readouterr()
    assert cli.main(["compare", str(first), str(second), "--metrics", "tow,forget_rougeL"]) == 0
    table = capsys.readouterr().out
    assert "(seeds 0, 1) | 2 |" in table
    # Re-running into an existing evaluation folder replaces it atomically.
    assert cli.main([*common, "--out", str(first)]) == 0
    assert EvalResult.load(first).summary["seed"] is None
    # A forget request naming an unknown owner is bad input, not a crash.
    assert "--benchmark" in _fails(cli, [*common, "--forget", "nobody"], capsys)
