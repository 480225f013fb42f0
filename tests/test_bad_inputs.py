"""Bad input fails early and plainly: exit 2 (or the documented exception), one message
naming the flag or file, no traceback, and nothing new under the output root.

The CLI cases run in one interpreter per test session (tests/cli_runner.py calls each
script's `main(argv)`), so torch is imported once; none of them trains a model.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from dareu.data import generate_synthetic

REPO = Path(__file__).resolve().parents[1]
READ_ONLY = "/sys/dareu-bad-inputs"  # read-only even for root (sysfs)


# ---------------------------------------------------------------------------- fixtures
def _model_folder(folder: Path, **files: bytes | str) -> Path:
    """A checkpoint-looking folder: config.json plus the given files."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    for name, content in files.items():
        name = name.replace("__", ".")
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def _safetensors_bytes(tmp: Path) -> bytes:
    save_file({"w": torch.zeros(4, 4)}, str(tmp))
    return tmp.read_bytes()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Bad files and folders, all outside the output root."""
    d = tmp_path_factory.mktemp("inputs")
    good = _safetensors_bytes(d / "good.safetensors")
    pkl = pickle.dumps({"w": [0.0]})
    bench = d / "bench"
    generate_synthetic(bench, owners=4, facts=2, forget_owners=1, holdout_owners=1, general=2)
    adapter = d / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(d / "shell")})
    )
    (adapter / "adapter_model.bin").write_bytes(pkl)
    (adapter / "dummy.safetensors").write_bytes(good)
    a_file = d / "a_file.txt"
    a_file.write_text("not a folder\n")
    yamls = {
        "yaml_method": "method: 5\n",
        "yaml_samples": 'eval_max_samples: "x"\n',
        "yaml_targets": "lora_targets: 5\n",
        "yaml_unknown": "bogus_setting: 1\n",
        "yaml_list": "- 1\n- 2\n",
        "yaml_broken": "a: [1, 2\n",
        "yaml_lr": "lr: 1e-6\n",
    }
    for name, text in yamls.items():
        (d / f"{name}.yaml").write_text(text)
    (d / "bad.json").write_text("{nope")
    return {
        "dir": str(d),
        "bench": str(bench),
        "file": str(a_file),
        "shell": str(_model_folder(d / "shell", model__safetensors=good)),
        "header": str(_model_folder(d / "header", model__safetensors=b"\xff" * 64)),
        "truncated": str(_model_folder(d / "truncated", model__safetensors=good[:-8])),
        "pickle": str(_model_folder(d / "pickle", pytorch_model__bin=pkl, x__safetensors=good)),
        "tokenizer": str(
            _model_folder(d / "tokenizer", model__safetensors=good, tokenizer__json="{oops")
        ),
        "index": str(
            _model_folder(
                d / "index",
                model__safetensors__index__json=json.dumps({"weight_map": {"w": "w.bin"}}),
            )
        ),
        "adapter": str(adapter),
        "missing": str(d / "does-not-exist"),
        "bad_json": str(d / "bad.json"),
        **{name: str(d / f"{name}.yaml") for name in yamls},
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


# ---------------------------------------------------------------------------- CLI cases
# (id, script, argv with {placeholders} from `inputs`, text the message must contain)
CASES: list[tuple[str, str, list[str], str]] = [
    # scripts/unlearn.py: flags, YAML config, models, data, output
    ("u-method", "unlearn", ["--method", "bogus"], "bogus"),
    ("u-hparam-key", "unlearn", ["--method", "npo", "--hparam", "nonsense=1"], "nonsense"),
    ("u-hparam-value", "unlearn", ["--method", "npo", "--hparam", "beta=abc"], "beta"),
    ("u-hparam-form", "unlearn", ["--method", "npo", "--hparam", "beta"], "--hparam"),
    ("u-lr-0", "unlearn", ["--method", "npo", "--lr", "0"], "lr"),
    ("u-epochs-neg", "unlearn", ["--method", "npo", "--epochs", "-1"], "epochs"),
    ("u-lr-nan", "unlearn", ["--lr", "nan"], "lr"),
    ("u-lr-inf", "unlearn", ["--lr", "inf"], "lr"),
    ("u-epochs-text", "unlearn", ["--epochs", "abc"], "--epochs"),
    ("u-rounds-0", "unlearn", ["--rounds", "0"], "--rounds"),
    ("u-rounds-many", "unlearn", ["--benchmark", "{bench}", "--rounds", "5"], "--rounds"),
    ("u-dtype", "unlearn", ["--dtype", "fp8"], "--dtype"),
    ("u-format", "unlearn", ["--format", "xml"], "xml"),
    ("u-report-to", "unlearn", ["--report-to", "wandb"], "--report-to"),
    ("u-eval-samples", "unlearn", ["--eval-max-samples", "0"], "--eval-max-samples"),
    ("u-save-every", "unlearn", ["--save-every", "-1"], "--save-every"),
    ("u-output-file", "unlearn", ["--output", "{file}"], "--output"),
    ("u-output-ro", "unlearn", ["--output", READ_ONLY], "--output"),
    ("u-base-output-ro", "unlearn", ["--method", "npo", "--output", READ_ONLY], "--output"),
    ("u-yaml-method", "unlearn", ["--config", "{yaml_method}"], "method"),
    ("u-yaml-samples", "unlearn", ["--config", "{yaml_samples}"], "eval_max_samples"),
    ("u-yaml-targets", "unlearn", ["--config", "{yaml_targets}"], "lora_targets"),
    ("u-yaml-unknown", "unlearn", ["--config", "{yaml_unknown}"], "bogus_setting"),
    ("u-yaml-list", "unlearn", ["--config", "{yaml_list}"], "--config"),
    ("u-yaml-broken", "unlearn", ["--config", "{yaml_broken}"], "--config"),
    ("u-yaml-lr-text", "unlearn", ["--config", "{yaml_lr}"], "lr"),
    ("u-yaml-missing", "unlearn", ["--config", "{missing}"], "--config"),
    ("u-model-header", "unlearn", ["--model", "{header}"], "model.safetensors"),
    ("u-model-truncated", "unlearn", ["--model", "{truncated}"], "model.safetensors"),
    ("u-model-pickle", "unlearn", ["--model", "{pickle}"], "pytorch_model.bin"),
    ("u-model-tokenizer", "unlearn", ["--model", "{tokenizer}"], "tokenizer.json"),
    ("u-model-index", "unlearn", ["--model", "{index}"], "model.safetensors.index.json"),
    ("u-model-adapter", "unlearn", ["--model", "{adapter}"], "adapter_model.bin"),
    ("u-model-missing", "unlearn", ["--model", "{missing}"], "does-not-exist"),
    ("u-retain-model", "unlearn", ["--retain-model", "{file}"], "a_file.txt"),
    ("u-benchmark", "unlearn", ["--benchmark", "{missing}"], "does-not-exist"),
    ("u-forget", "unlearn", ["--benchmark", "{bench}", "--forget", "nobody,x"], "nobody"),
    ("u-tofu-dir", "unlearn", ["--tofu-dir", "{missing}"], "--tofu-dir"),
    ("u-attributor", "unlearn", ["--attributor", "classifier:{missing}"], "does-not-exist"),
    ("u-clip-nan", "unlearn", ["--kl-coef", "nan"], "kl"),
    # scripts/finetune.py
    ("f-tiny-size", "finetune", ["--tiny-size", "huge"], "--tiny-size"),
    ("f-lr-neg", "finetune", ["--lr", "-1"], "lr"),
    ("f-epochs-0", "finetune", ["--epochs", "0"], "epochs"),
    ("f-batch-0", "finetune", ["--batch-size", "0"], "batch_size"),
    ("f-warmup-nan", "finetune", ["--warmup-ratio", "nan"], "warmup_ratio"),
    ("f-dropout", "finetune", ["--lora-dropout", "1.5"], "lora_dropout"),
    ("f-save-every", "finetune", ["--save-every", "-1"], "--save-every"),
    ("f-threads", "finetune", ["--threads", "0"], "--threads"),
    ("f-base-pickle", "finetune", ["--base", "{pickle}"], "pytorch_model.bin"),
    ("f-base-header", "finetune", ["--base", "{header}"], "model.safetensors"),
    ("f-base-missing", "finetune", ["--base", "{missing}"], "does-not-exist"),
    ("f-out-file", "finetune", ["--out", "{file}"], "--out"),
    ("f-out-ro", "finetune", ["--out", READ_ONLY], "--out"),
    ("f-benchmark", "finetune", ["--benchmark", "{missing}"], "does-not-exist"),
    ("f-forget", "finetune", ["--benchmark", "{bench}", "--forget", "nobody,x"], "nobody"),
    ("f-tofu-dir", "finetune", ["--tofu-dir", "{missing}"], "--tofu-dir"),
    # scripts/evaluate.py
    ("e-no-model", "evaluate", [], "--model"),
    ("e-model-header", "evaluate", ["--model", "{header}"], "model.safetensors"),
    ("e-model-tokenizer", "evaluate", ["--model", "{tokenizer}"], "tokenizer.json"),
    ("e-adapter-pickle", "evaluate", ["--model", "{adapter}"], "adapter_model.bin"),
    ("e-max-new-0", "evaluate", ["--model", "{missing}", "--max-new-tokens", "0"], "--max-new"),
    ("e-mia-k", "evaluate", ["--model", "{missing}", "--mia-k", "2"], "--mia-k"),
    ("e-device", "evaluate", ["--model", "{missing}", "--device", "tpu"], "--device"),
    ("e-format", "evaluate", ["--model", "{missing}", "--format", "xml"], "--format"),
    (
        "e-run-config",
        "evaluate",
        ["--model", "{truncated}", "--run-config", "{bad_json}"],
        "model.safetensors",
    ),
    ("e-out-file", "evaluate", ["--model", "{missing}", "--out", "{file}"], "does-not-exist"),
    (
        "e-retain-eval",
        "evaluate",
        ["--model", "{shell}", "--retain-eval", "{missing}"],
        "--retain-eval",
    ),
    ("e-out-file-2", "evaluate", ["--model", "{shell}", "--out", "{file}"], "--out"),
    ("e-out-ro", "evaluate", ["--model", "{shell}", "--out", READ_ONLY], "--out"),
    # scripts/train_attributor.py
    ("a-epochs-0", "train_attributor", ["--epochs", "0"], "epochs"),
    ("a-lr-nan", "train_attributor", ["--lr", "nan"], "lr"),
    ("a-calib", "train_attributor", ["--calib-share", "2"], "calib_share"),
    ("a-swaps", "train_attributor", ["--name-swaps", "-1"], "name_swaps"),
    ("a-base-pickle", "train_attributor", ["--base", "{pickle}"], "pytorch_model.bin"),
    ("a-out-file", "train_attributor", ["--out", "{file}"], "--out"),
    ("a-benchmark", "train_attributor", ["--benchmark", "{missing}"], "does-not-exist"),
    # scripts/benchmark.py
    ("b-train-key", "benchmark", ["--train", "bogus=1"], "bogus"),
    ("b-train-form", "benchmark", ["--train", "bogus"], "--train"),
    ("b-methods", "benchmark", ["--methods", "nope"], "--methods"),
    ("b-seeds", "benchmark", ["--seeds", "a,b"], "--seeds"),
    ("b-hparam-form", "benchmark", ["--hparam", "beta=1"], "--hparam"),
    ("b-hparam-value", "benchmark", ["--methods", "npo", "--hparam", "npo:beta=abc"], "beta"),
    ("b-train-lr", "benchmark", ["--methods", "npo", "--train", "lr=0"], "lr"),
    ("b-model-pickle", "benchmark", ["--model", "{pickle}"], "pytorch_model.bin"),
    ("b-out-file", "benchmark", ["--out", "{file}"], "--out"),
    ("b-out-ro", "benchmark", ["--out", READ_ONLY], "--out"),
    ("b-eval-samples", "benchmark", ["--eval-max-samples", "0"], "--eval-max-samples"),
]


@pytest.fixture(scope="module")
def cli_results(inputs: dict[str, str], home: Path) -> dict[str, dict[str, Any]]:
    """Every CLI case, run in one child interpreter with DAREU_HOME = `home`."""
    cases = [
        {"script": script, "argv": [a.format(**inputs) for a in argv]}
        for _, script, argv, _ in CASES
    ]
    env = {**os.environ, "DAREU_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "cli_runner.py")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    return {case[0]: r for case, r in zip(CASES, results, strict=True)}


def test_case_count() -> None:
    assert len(CASES) + len(API_CASES) >= 40


@pytest.mark.parametrize(("name", "script", "argv", "needle"), CASES, ids=[c[0] for c in CASES])
def test_cli_bad_input(
    cli_results: dict[str, dict[str, Any]],
    inputs: dict[str, str],
    name: str,
    script: str,
    argv: list[str],
    needle: str,
) -> None:
    r = cli_results[name]
    shown = f"{script} {argv}: exit {r['code']}\nstderr: {r['stderr'][-2000:]}"
    assert r["code"] == 2, shown
    assert "Traceback" not in r["stderr"], shown
    assert needle.lower() in r["stderr"].lower(), shown
    assert r["new"] == [], f"{shown}\nleft behind: {r['new']}"


def test_one_real_process(inputs: dict[str, str], home: Path) -> None:
    """The same as a user sees it: `python scripts/benchmark.py --train bogus=1`."""
    before = sorted(home.rglob("*"))
    proc = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--train", "bogus=1"],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env={**os.environ, "DAREU_HOME": str(home), "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "bogus" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(home.rglob("*")) == before


# ---------------------------------------------------------------------------- API cases
def _load_model(path: str) -> Any:
    from dareu.models.loading import load_model

    return load_model(path)


def _load_tokenizer(path: str) -> Any:
    from dareu.models.loading import load_tokenizer

    return load_tokenizer(path)


def _check(path: str) -> Any:
    from dareu.models.loading import check_model_path

    return check_model_path(path)


def _finetune_cfg(**kw: Any) -> Any:
    from dareu.train.finetune import FinetuneConfig

    return FinetuneConfig(**kw).validate()


def _job(**kw: Any) -> Any:
    from dareu.pipeline import JobConfig

    return JobConfig(**kw).validate()


def _benchmark(path: str, **kw: Any) -> Any:
    from dareu.data import load_benchmark

    return load_benchmark(path, **kw)


def _output(path: str) -> Any:
    from dareu.cache import check_output_dir

    return check_output_dir(path, "--output")


def _run_method(**kw: Any) -> Any:
    from dareu.methods.trainer import UnlearnConfig

    return UnlearnConfig(**kw).validate()


# (id, call(inputs) , exception type name, text the message must contain)
API_CASES: list[tuple[str, Callable[[dict[str, str]], Any], str, str]] = [
    ("load-header", lambda i: _load_model(i["header"]), "ModelLoadError", "model.safetensors"),
    ("load-trunc", lambda i: _load_model(i["truncated"]), "ModelLoadError", "truncated"),
    ("load-pickle", lambda i: _load_model(i["pickle"]), "ModelLoadError", "pytorch_model.bin"),
    ("load-adapter", lambda i: _load_model(i["adapter"]), "ModelLoadError", "adapter_model.bin"),
    ("check-index", lambda i: _check(i["index"]), "ModelLoadError", "w.bin"),
    ("tokenizer", lambda i: _load_tokenizer(i["tokenizer"]), "ModelLoadError", "tokenizer"),
    ("ft-lr-nan", lambda i: _finetune_cfg(lr=float("nan")), "ValueError", "lr"),
    ("ft-base", lambda i: _finetune_cfg(base=i["pickle"]), "ModelLoadError", "pytorch_model"),
    ("job-output", lambda i: _job(output=i["file"]), "ValueError", "--output"),
    ("job-rounds", lambda i: _job(rounds=0), "ValueError", "--rounds"),
    ("bench-missing", lambda i: _benchmark(i["missing"]), "DataError", "does-not-exist"),
    ("bench-forget", lambda i: _benchmark(i["bench"], forget=["nobody"]), "DataError", "nobody"),
    ("output-file", lambda i: _output(i["file"]), "ValueError", "a_file.txt"),
    ("output-ro", lambda i: _output(READ_ONLY), "ValueError", "--output"),
    ("method", lambda i: _run_method(method="bogus"), "ValueError", "bogus"),
]


@pytest.mark.parametrize(
    ("name", "call", "exc", "needle"), API_CASES, ids=[c[0] for c in API_CASES]
)
def test_api_bad_input(
    inputs: dict[str, str],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    call: Callable[[dict[str, str]], Any],
    exc: str,
    needle: str,
) -> None:
    monkeypatch.setenv("DAREU_HOME", str(home))
    before = sorted(home.rglob("*"))
    with pytest.raises(Exception) as info:  # the type is checked by name below
        call(inputs)
    names = [c.__name__ for c in type(info.value).__mro__]
    assert exc in names, f"{name}: {type(info.value).__name__}: {info.value}"
    assert needle.lower() in str(info.value).lower(), str(info.value)
    assert sorted(home.rglob("*")) == before


# ---------------------------------------------------------------------------- checkpoints
class _NotAllowed:
    """Pickled by torch.save; torch.load(weights_only=True) must refuse it."""


def _checkpoints(root: Path, steps: tuple[int, ...] = (1, 2)) -> tuple[Any, Any, Any]:
    from dareu.train.checkpoint import save_checkpoint

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    for step in steps:
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        save_checkpoint(root, step, model, opt, sched, keep=len(steps))
    return model, opt, sched


@pytest.mark.parametrize("damage", ["truncated-weights", "pickle-optimizer", "no-state"])
def test_resume_falls_back_to_newest_valid_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    from dareu.train.checkpoint import latest_checkpoint, load_checkpoint

    model, opt, sched = _checkpoints(tmp_path)
    newest = tmp_path / "step-00000002"
    if damage == "truncated-weights":
        f = newest / "trainable.safetensors"
        f.write_bytes(f.read_bytes()[:-4])
    elif damage == "pickle-optimizer":
        (newest / "optimizer.pt").write_bytes(pickle.dumps({"state": {}}))
    else:
        (newest / "state.json").unlink()
    capsys.readouterr()
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt == tmp_path / "step-00000001"
    err = capsys.readouterr().err
    assert "skipping checkpoint step-00000002" in err, err
    assert load_checkpoint(ckpt, model, opt, sched) == 1


def test_tampered_checkpoint_is_refused_without_changing_the_model(tmp_path: Path) -> None:
    """A torch.save archive holding a non-tensor pickle passes the cheap check; loading it
    raises CheckpointError naming the file, before any weight is restored."""
    from dareu.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint

    model, opt, sched = _checkpoints(tmp_path, steps=(1,))
    ckpt = tmp_path / "step-00000001"
    torch.save({"evil": _NotAllowed()}, ckpt / "optimizer.pt")
    assert latest_checkpoint(tmp_path) == ckpt
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    changed = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="step-00000001"):
        load_checkpoint(ckpt, model, opt, sched)
    assert all(torch.equal(changed[k], v) for k, v in model.state_dict().items())
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())
