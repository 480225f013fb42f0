"""FSDP2 (configs/accelerate_fsdp.yaml) on 2 CPU processes (gloo) reproduces 1 process.

Accelerate will not enter FSDP on a CPU, so `sharded_cpu.fsdp_accelerator` marks its state as
FSDP after start-up; `Accelerator.prepare` then really shards the model (torch
`fully_shard`, DTensor parameters, checked below) and `get_state_dict` gathers it. The
references are a single process (DareU PPO, whose losses are normalised by global
counts) and 2 DDP processes (fine-tuning and NPO, whose losses are per-process means).
Run as a script under torchrun, this file is the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from sharded_cpu import fsdp_env  # noqa: E402


def test_config_maps_to_fsdp2_like_accelerate_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin

    env = fsdp_env()
    assert env["FSDP_VERSION"] == "2"
    assert "FSDP_TRANSFORMER_CLS_TO_WRAP" not in env  # no architecture in the file
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    # The wrapped blocks come from each model's own _no_split_modules (Accelerate's rule).
    for model, block in (
        (LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, vocab_size=32)), "LlamaDecoderLayer"),
        (GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=32)), "GPT2Block"),
    ):  # fmt: skip
        plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
        assert plugin.transformer_cls_names_to_wrap is None
        plugin.set_auto_wrap_policy(model)
        assert plugin.transformer_cls_names_to_wrap == [block]


# name -> PPO config overrides. "uneven": 1 rollout per batch, so one process has none
# and must still join every collective (sampling, no-grad passes, the teacher pass).
PPO_RUNS: dict[str, dict[str, Any]] = {
    "lora": {"lora": True},
    "full": {"lora": False},
    "uneven": {"lora": True, "batch_size": 1, "forward_batch_size": 1, "distill_batch_size": 1},
}


def ppo_config(name: str) -> Any:
    import test_ppo as T

    return T.two_proc_config(lr=1e-3, **PPO_RUNS[name])


def launch(*args: str, **extra_env: str) -> None:
    path = os.pathsep.join(p for p in (str(REPO / "python"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra_env}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", __file__, *map(str, args)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        torch.testing.assert_close(a[k].float(), b[k].float(), rtol=0, atol=atol, msg=k)


@pytest.mark.slow
def test_dareu_ppo_under_fsdp_matches_one_process(tmp_path: Path) -> None:
    """LoRA and full-parameter PPO: rollouts, rewards, logs and final weights."""
    import test_ppo as T

    torch.set_num_threads(1)
    T.build_base(tmp_path)
    launch("ppo", tmp_path)
    sharded = json.loads((tmp_path / "sharded.json").read_text())
    assert sharded == dict.fromkeys(PPO_RUNS, True), "the policy was not sharded (no DTensor)"
    for name, over in PPO_RUNS.items():
        one = T.run_trainer(tmp_path, f"one-{name}", ppo_config(name))
        two = tmp_path / f"fsdp-{name}" / "model"
        assert_same(T.trainable(one), T.trainable(two), atol=1e-5)
        weights = "adapter_model.safetensors" if over["lora"] else "model.safetensors"
        assert_same(load_file(str(one / weights)), load_file(str(two / weights)), atol=1e-5)
        log1 = (one.parent / "log.jsonl").read_text().splitlines()
        log2 = (two.parent / "log.jsonl").read_text().splitlines()
        for x, y in zip(log1, log2, strict=True):
            rx, ry = json.loads(x), json.loads(y)
            for key in ("attr_score", "reward_mean", "kl", "resp_len", "pg_loss", "dis_loss"):
                assert rx[key] == pytest.approx(ry[key], abs=1e-5), key


@pytest.mark.slow
def test_finetune_npo_and_atwu_under_fsdp_match_ddp(tmp_path: Path) -> None:
    """NPO uses a frozen full-parameter reference; ATWU all-reduces its scorer and exports
    token scores with forward passes that every rank must join under FSDP."""
    from dareu.data import generate_synthetic

    generate_synthetic(tmp_path / "data", owners=6, facts=3, forget_owners=2, holdout_owners=1,
                       general=6)  # fmt: skip
    launch("train", tmp_path, "fsdp", "npo,atwu")
    launch("train", tmp_path, "ddp", "npo,atwu")
    out = {m: json.loads((tmp_path / f"{m}.json").read_text()) for m in ("fsdp", "ddp")}
    assert out["fsdp"]["sharded"] == [True] * 3, "a stage was not sharded"
    assert out["ddp"]["sharded"] == [False] * 3
    ga = json.loads((Path(out["fsdp"]["atwu"]) / "token_scores.json").read_text())["samples"]
    gb = json.loads((Path(out["ddp"]["atwu"]) / "token_scores.json").read_text())["samples"]
    np.testing.assert_allclose([x for r in ga for x in r["g"]], [x for r in gb for x in r["g"]],
                               atol=1e-5)  # fmt: skip
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for stage in ("original", "npo", "atwu"):
        a = load_file(str(Path(out["fsdp"][stage]) / "model.safetensors"))
        b = load_file(str(Path(out["ddp"][stage]) / "model.safetensors"))
        # The gathered state dict lists the tied LM head separately; saving drops it.
        assert "lm_head.weight" not in a and "lm_head.weight" not in b
        assert_same(a, b, atol=1e-5)
        weights[stage] = a
    for name in ("npo", "atwu"):
        moved = [k for k in weights[name] if not torch.equal(weights[name][k],
                                                           weights["original"][k])]  # fmt: skip
        assert moved, f"{name} did not change the fine-tuned weights"


# ------------------------------------------------------------------------------ workers
def is_sharded(model: torch.nn.Module) -> bool:
    """FSDP2 parameters are DTensors; ZeRO-3 ones carry DeepSpeed's partition id."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) or hasattr(p, "ds_id") for p in model.parameters())


def ppo_worker(root: Path, mode: str = "fsdp") -> None:
    import test_ppo as T
    from sharded_cpu import fsdp_accelerator, zero3_accelerator

    acc = fsdp_accelerator() if mode == "fsdp" else zero3_accelerator()
    seen: dict[str, bool] = {}
    runs = list(PPO_RUNS) if mode == "fsdp" else ["lora", "uneven"]
    for name in runs:

        def hook(policy: Any, name: str = name) -> None:
            seen[name] = is_sharded(policy)

        T.run_trainer(root, f"{mode}-{name}", ppo_config(name), accelerator=acc, on_update=hook)
    if mode == "zero3":
        try:
            T.run_trainer(root, "zero3-full", T.two_proc_config(lora=False), accelerator=acc)
        except ValueError as err:
            seen["full_refused"] = "ZeRO-3" in str(err)
    if acc.is_main_process:
        (root / "sharded.json").write_text(json.dumps(seen))


def train_worker(root: Path, mode: str, method: str) -> None:
    from accelerate import Accelerator

    from dareu.data import load_benchmark
    from dareu.methods import UnlearnConfig, run_method
    from dareu.train.finetune import FinetuneConfig, finetune
    from sharded_cpu import fsdp_accelerator, zero3_accelerator

    make = {"fsdp": fsdp_accelerator, "zero3": zero3_accelerator}
    acc = make[mode]() if mode in make else Accelerator(cpu=True)
    assert acc.num_processes == 2
    sharded: list[bool] = []
    prepare = acc.prepare

    def recording_prepare(*objs: Any, **kw: Any) -> Any:
        out = prepare(*objs, **kw)
        sharded.extend(is_sharded(o) for o in (out if isinstance(out, tuple | list) else (out,))
                       if isinstance(o, torch.nn.Module))  # fmt: skip
        return out

    acc.prepare = recording_prepare  # type: ignore[method-assign]
    bench = load_benchmark(root / "data")
    ft = FinetuneConfig(tiny_size="micro", batch_size=2, max_length=96, lr=3e-3, epochs=1)
    original = finetune(bench, "original", ft, root=root / mode, progress=False, accelerator=acc)

    out: dict[str, Any] = {"original": str(original), "sharded": sharded}
    for name in method.split(","):
        cfg = UnlearnConfig(method=name, model=str(original), profile="tiny", batch_size=1,
                            max_length=96, lr=1e-3, epochs=1.0)  # fmt: skip
        out[name] = str(run_method(None, cfg, benchmark=bench, root=root / mode,
                                   progress=False, accelerator=acc))  # fmt: skip
    if acc.is_main_process:
        (root / f"{mode}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "ppo":
        ppo_worker(Path(sys.argv[2]), *sys.argv[3:])
    else:
        train_worker(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
