"""Fine-tuning: it learns, LoRA + checkpointing trains every adapter, resume is exact,
the cache is reused, bad arguments fail before any compute, and the TOFU path runs."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dareu.data import generate_synthetic, load_benchmark
from dareu.data.formatting import collate_train, encode_qa
from dareu.data.schema import Benchmark
from dareu.models import load_model
from dareu.train.common import TrainingStopped
from dareu.train.finetune import (
    FinetuneConfig,
    ensure_finetuned,
    finetune,
    training_rows,
    training_samples,
)
from dareu.train.lora import enable_checkpointing, wrap_lora

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
TOFU_DIR = Path(
    os.environ.get("DAREU_TOFU_DIR", Path(__file__).resolve().parents[2] / "shared/data/tofu")
)
MICRO = FinetuneConfig(tiny_size="micro", batch_size=4, max_length=96, lr=1e-2, epochs=2)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Benchmark:
    folder = tmp_path_factory.mktemp("data") / "synthetic-small"
    generate_synthetic(folder, owners=6, facts=3, forget_owners=2, holdout_owners=1, general=6)
    return load_benchmark(folder)


def mean_answer_loss(model_dir: Path, bench: Benchmark, which: str) -> float:
    """Loss on the training answers, computed independently of the training loop."""
    model, tok = load_model(model_dir)
    rows = [
        encode_qa(tok, s.question, s.answer, "plain", 96) for s in training_samples(bench, which)
    ]  # type: ignore[arg-type]
    batch = collate_train(rows, tok.pad_token_id)
    with torch.no_grad():
        return float(model(**batch).loss)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    files = sorted(model_dir.glob("*.safetensors"))
    assert files, f"no safetensors in {model_dir}"
    return {k: v for f in files for k, v in load_file(str(f)).items()}


def test_training_sets(bench: Benchmark) -> None:
    original = training_samples(bench, "original")
    retain = training_samples(bench, "retain")
    forget_owners = set(bench.forget_owners)
    assert {s.owner for s in original} >= forget_owners
    assert not {s.owner for s in retain} & forget_owners
    assert len(original) == len(bench.forget) + len(bench.retain) + len(bench.general_train)
    assert len(retain) == len(bench.retain) + len(bench.general_train)


def test_finetune_lowers_loss_and_writes_a_loadable_checkpoint(
    bench: Benchmark, tmp_path: Path
) -> None:
    cfg = replace(MICRO, epochs=4)
    out = finetune(bench, "original", cfg, root=tmp_path, progress=False)
    meta = json.loads((out / "dareu_model.json").read_text())
    base = Path(meta["base"])
    before, after = (
        mean_answer_loss(base, bench, "original"),
        mean_answer_loss(out, bench, "original"),
    )
    assert after < 0.8 * before, (before, after)
    assert meta["format"] == "plain" and meta["which"] == "original"
    assert (out / "train_log.jsonl").is_file() and (out / ".complete").is_file()
    assert not list(out.glob("*.bin"))
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_cache_hit_skips_training(
    bench: Benchmark, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = replace(MICRO, max_steps=2)
    first = ensure_finetuned(bench, "retain", cfg, root=tmp_path, progress=False)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    again = ensure_finetuned(bench, "retain", cfg, root=tmp_path, progress=False)
    assert again == first
    assert f"cached: {first}" in capsys.readouterr().out
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    # A different setting is a different model; --force retrains in place.
    assert (
        ensure_finetuned(bench, "retain", replace(cfg, lr=1e-3), root=tmp_path, progress=False)
        != first
    )
    forced = ensure_finetuned(bench, "retain", cfg, root=tmp_path, progress=False, force=True)
    assert forced == first and (first / "model.safetensors").stat().st_mtime_ns != stamp


@pytest.mark.parametrize(
    "cfg",
    [
        replace(MICRO, epochs=3, grad_accum=2),
        replace(MICRO, epochs=3, lora=True, lora_r=4, lora_dropout=0.2, merge="no"),
    ],
    ids=["full-grad-accum", "lora-dropout"],
)
def test_kill_and_resume_matches_uninterrupted(
    bench: Benchmark, tmp_path: Path, cfg: FinetuneConfig
) -> None:
    straight = finetune(bench, "original", cfg, root=tmp_path / "a", save_every=2, progress=False)
    total = json.loads((straight / "dareu_model.json").read_text())["summary"]["steps"]
    stop = total // 4 * 2 + 1  # odd, so one step past the last checkpoint (every 2)
    with pytest.raises(TrainingStopped) as info:
        finetune(
            bench,
            "original",
            cfg,
            root=tmp_path / "b",
            save_every=2,
            stop_after_steps=stop,
            progress=False,
        )
    assert info.value.checkpoint is not None and info.value.checkpoint.name.startswith("step-")
    assert not list((tmp_path / "b" / "models").glob("original-*"))  # nothing half-written
    resumed = finetune(
        bench, "original", cfg, root=tmp_path / "b", save_every=2, resume=True, progress=False
    )
    summary = json.loads((resumed / "dareu_model.json").read_text())["summary"]
    assert 0 < summary["resumed_from_step"] < stop
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_lora_with_gradient_checkpointing_trains_every_adapter(
    bench: Benchmark, tmp_path: Path
) -> None:
    cfg = replace(
        MICRO,
        tiny_size="tiny",
        pretrain_people=50,  # the tiny base's domain pretraining is not what is tested
        lora=True,
        lora_r=4,
        gradient_checkpointing=True,
        merge="no",
        max_steps=3,
    )
    out = finetune(bench, "retain", cfg, root=tmp_path, progress=False)
    adapter = load_file(str(out / "adapter_model.safetensors"))
    lora_b = {k: v for k, v in adapter.items() if "lora_B" in k}
    assert len(lora_b) == 2 * 7  # 2 layers x 7 projections
    assert all(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero: all got gradients
    model, _ = load_model(out)  # adapter folder -> base from adapter_config.json
    assert type(model).__name__.startswith("Peft")


@pytest.mark.parametrize("reentrant", [True, False])
def test_input_require_grads_is_what_makes_reentrant_checkpointing_train(
    bench: Benchmark, tmp_path: Path, reentrant: bool
) -> None:
    """Negative control: with the embedding-output hook removed, reentrant checkpointing
    gives the adapters of a frozen model no gradient, so the test above can fail."""
    from dareu.models.tiny import tiny_base_dir

    base = tiny_base_dir(bench, size="tiny", root=tmp_path)
    for with_fix in (True, False):
        model, tok = load_model(base)
        rows = [encode_qa(tok, s.question, s.answer, "plain", 96) for s in bench.retain[:4]]
        peft = wrap_lora(model, r=4)
        enable_checkpointing(peft, reentrant=reentrant)
        if not with_fix:
            peft.get_base_model().disable_input_require_grads()
        peft.train()
        loss = peft(**collate_train(rows, tok.pad_token_id)).loss
        if not loss.requires_grad:
            grads = 0
        else:
            loss.backward()
            grads = sum(
                1
                for n, p in peft.named_parameters()
                if "lora_B" in n and p.grad is not None and p.grad.abs().sum() > 0
            )
        if with_fix or not reentrant:
            assert grads == 14
        else:
            assert grads < 14


def test_bad_arguments_fail_before_compute(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prompt format 'alpaca'"):
        FinetuneConfig(fmt="alpaca").validate()
    with pytest.raises(ValueError, match=r"no-such-base.*does not exist"):
        FinetuneConfig(base=str(tmp_path / "no-such-base")).validate()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        FinetuneConfig(batch_size=0).validate()
    with pytest.raises(ValueError, match="tiny_size 'huge'"):
        FinetuneConfig(tiny_size="huge").validate()


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DAREU_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO / "python"),
    }
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "finetune.py"), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def finetune_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("finetune_cli", REPO / "scripts" / "finetune.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_rejects_bad_input_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    proc = run_cli("--base", str(missing), home=tmp_path)  # a real process: the exit code
    assert proc.returncode == 2 and str(missing) in proc.stderr and "does not exist" in proc.stderr
    cli = finetune_script()
    bin_only = tmp_path / "legacy"
    bin_only.mkdir()
    (bin_only / "config.json").write_text("{}")
    (bin_only / "pytorch_model.bin").write_bytes(b"not read")
    assert cli.main(["--base", str(bin_only), "--out", str(tmp_path)]) == 2
    assert "pytorch_model.bin" in capsys.readouterr().err
    assert cli.main(["--batch-size", "0", "--out", str(tmp_path)]) == 2
    assert "batch_size must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--format", "alpaca"])
    assert exit_info.value.code == 2 and "alpaca" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()  # validated before any compute


@pytest.mark.slow
def test_cli_stop_resume_and_cache(bench: Benchmark, tmp_path: Path) -> None:
    assert bench.root is not None
    common = ["--benchmark", bench.root, "--which", "retain", "--tiny-size", "micro",
              "--epochs", "2", "--batch-size", "4", "--save-every", "2",
              "--no-progress"]  # fmt: skip
    proc = run_cli(*common, "--stop-after-steps", "3", home=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "--resume" in proc.stderr
    proc = run_cli(*common, "--resume", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resumed from" in proc.stdout and "saved:" in proc.stdout
    proc = run_cli(*common, home=tmp_path)
    assert proc.returncode == 0 and "cached:" in proc.stdout


@pytest.mark.slow
def test_ddp_two_cpu_processes_shard_the_data(bench: Benchmark, tmp_path: Path) -> None:
    """Real DDP (gloo, 2 processes): each rank sees half the batches, one model is saved."""
    assert bench.root is not None
    env = {**os.environ, "DAREU_HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "python")}  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "scripts" / "finetune.py"), "--benchmark", bench.root, "--which", "retain",
           "--tiny-size", "micro", "--epochs", "1", "--batch-size", "4",
           "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (out,) = (tmp_path / "models").glob("retain-*")
    summary = json.loads((out / "dareu_model.json").read_text())["summary"]
    cfg = FinetuneConfig(tiny_size="micro", epochs=1, batch_size=4)
    n = len(training_rows(bench, "retain", cfg)[0])  # QA, biographies, background replay
    assert n > len(training_samples(bench, "retain"))
    assert summary["steps"] == math.ceil(math.ceil(n / 2) / 4)  # 2 ranks, batch 4
    assert proc.stdout.count("saved:") == 1
    load_model(out)


@pytest.mark.skipif(
    not (TOFU_DIR / "forget10.json").is_file(), reason=f"TOFU data not at {TOFU_DIR}"
)
def test_tofu_forget10_tiny_few_steps(tmp_path: Path) -> None:
    bench = load_benchmark(TOFU_DIR, forget="forget10")
    assert len(bench.forget) == 400
    cfg = replace(MICRO, max_steps=3, max_length=256, batch_size=4)
    paths: dict[str, Path] = {}
    for which in ("original", "retain"):
        out = ensure_finetuned(bench, which, cfg, root=tmp_path, progress=False)  # type: ignore[arg-type]
        model, _ = load_model(out)
        assert model.config.model_type == "llama"
        summary = json.loads((out / "dareu_model.json").read_text())["summary"]
        assert summary["steps"] == 3 and torch.isfinite(torch.tensor(summary["final_loss"]))
        assert summary["n_samples"] == (4000 if which == "original" else 3600)
        paths[which] = out
    # With a given base checkpoint, the original model does not depend on the forget split
    # (forget05 reuses forget10's). The tiny base itself is per split: its tokenizer also
    # covers the split's holdout and perturbed answers.
    base = json.loads((paths["original"] / "dareu_model.json").read_text())["base"]
    with_base = replace(cfg, base=base)
    first = ensure_finetuned(bench, "original", with_base, root=tmp_path, progress=False)
    forget05 = load_benchmark(TOFU_DIR, forget="forget05")
    assert ensure_finetuned(forget05, "original", with_base, root=tmp_path) == first
    assert ensure_finetuned(forget05, "retain", with_base, root=tmp_path, progress=False) != (
        ensure_finetuned(bench, "retain", with_base, root=tmp_path, progress=False)
    )


@pytest.mark.slow
def test_main_job_kill_during_original_finetune_then_resume(tmp_path: Path) -> None:
    """--save-every reaches the fine-tune inside the job: a SIGKILL after its first
    checkpoint, then --resume, continues that fine-tune from the checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_completion_task import write_docs

    data = write_docs(tmp_path / "data.jsonl", qa=True)
    home = tmp_path / "home"
    env = {**os.environ, "DAREU_HOME": str(home), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "unlearn.py"),
            "--benchmark", str(data), "--forget", "alice", "--save-every", "3", "--no-evaluate",
            "--batch-size", "4", "--ppo-steps", "1", "--epochs", "1", "--samples-per-query", "1",
            "--max-new-tokens", "8", "--prompt-tokens", "8", "--continuation-tokens", "8",
            "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 600
    while not list(home.glob("work/original-*/checkpoints/step-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no fine-tune checkpoint appeared"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(home.glob("models/original-*"))  # killed before the model was saved
    run = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "resumed from" in run.stdout and "finetune original: " in run.stdout
    assert ", resuming at step " in run.stdout
    assert list(home.glob("models/original-*"))


def test_base_kind_auto_tells_random_weights_from_a_trained_model(
    bench: Benchmark, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's random-init base gets the from-scratch defaults (lr, epochs), a trained one
    the pretrained defaults, and the run says which it assumed; --base-kind overrides."""
    from dareu.models.tiny import tiny_base_dir
    from dareu.train.finetune import HF_EPOCHS, HF_FULL_LR, TINY_EPOCHS, TINY_LR

    random_init = tiny_base_dir(bench, size="micro", root=tmp_path)
    trained = finetune(bench, "original", replace(MICRO, epochs=8), root=tmp_path,
                       progress=False)  # fmt: skip
    cases = [
        (random_init, "auto", TINY_LR, TINY_EPOCHS, "from scratch (auto"),
        (trained, "auto", HF_FULL_LR, HF_EPOCHS, "pretrained (auto"),
        (random_init, "pretrained", HF_FULL_LR, HF_EPOCHS, "pretrained (--base-kind"),
    ]
    for base, kind, lr, epochs, said in cases:
        cfg = replace(MICRO, base=str(base), base_kind=kind, lr=None, epochs=None, max_steps=1)
        capsys.readouterr()
        out = finetune(bench, "retain", cfg, root=tmp_path, progress=False)
        assert said in capsys.readouterr().out, (base, kind)
        meta = json.loads((out / "dareu_model.json").read_text())
        used = replace(cfg, base_kind=meta["config"]["base_kind"])
        assert meta["summary"]["lr"] == lr, (base, kind)
        assert (used.resolved_lr(), used.resolved_epochs()) == (lr, epochs), (base, kind)
