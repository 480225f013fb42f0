"""DeepSpeed ZeRO-3 (configs/accelerate_deepspeed_zero3.yaml) on 2 CPU processes (gloo).

Skipped unless DeepSpeed is installed (`pip install -e ".[deepspeed]"`); DeepSpeed also
JIT-builds its CPU communication op, which needs ninja and a C++ compiler. The workers are
those of tests/test_fsdp.py, with `sharded_cpu.zero3_accelerator`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_fsdp import assert_same, launch, ppo_config

pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (extra: deepspeed)")
# pip puts ninja next to this interpreter, which need not be on PATH.
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
if shutil.which("ninja", path=PATH) is None or shutil.which("c++", path=PATH) is None:
    pytest.skip("DeepSpeed's CPU op build needs ninja and c++", allow_module_level=True)

DS = {"DS_ACCELERATOR": "cpu", "PATH": PATH}


@pytest.mark.slow
def test_dareu_ppo_lora_under_zero3_matches_one_process(tmp_path: Path) -> None:
    import test_ppo as T

    torch.set_num_threads(1)
    T.build_base(tmp_path)
    launch("ppo", tmp_path, "zero3", **DS)
    seen = json.loads((tmp_path / "sharded.json").read_text())
    assert seen == {"lora": True, "uneven": True, "full_refused": True}
    for name in ("lora", "uneven"):
        one = T.run_trainer(tmp_path, f"one-{name}", ppo_config(name))
        two = tmp_path / f"zero3-{name}" / "model"
        assert_same(T.trainable(one), T.trainable(two), atol=1e-5)
        weights = "adapter_model.safetensors"
        assert_same(load_file(str(one / weights)), load_file(str(two / weights)), atol=1e-5)


@pytest.mark.slow
def test_finetune_and_ga_under_zero3_match_ddp(tmp_path: Path) -> None:
    from dareu.data import generate_synthetic

    generate_synthetic(tmp_path / "data", owners=6, facts=3, forget_owners=2, holdout_owners=1,
                       general=6)  # fmt: skip
    launch("train", tmp_path, "zero3", "ga", **DS)
    launch("train", tmp_path, "ddp", "ga")
    out = {m: json.loads((tmp_path / f"{m}.json").read_text()) for m in ("zero3", "ddp")}
    assert out["zero3"]["sharded"] == [True, True] and out["ddp"]["sharded"] == [False, False]
    for stage in ("original", "ga"):
        a = load_file(str(Path(out["zero3"][stage]) / "model.safetensors"))
        b = load_file(str(Path(out["ddp"][stage]) / "model.safetensors"))
        assert_same(a, b, atol=1e-5)
