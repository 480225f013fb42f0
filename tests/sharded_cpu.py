"""Run Accelerate's FSDP and DeepSpeed ZeRO-3 paths on CPU processes (gloo), for tests.

Accelerate only enters FSDP or DeepSpeed on GPU-type backends (its state says MULTI_CPU on
a CPU), while torch's FSDP2 (`fully_shard`) and DeepSpeed's CPU accelerator both run with
gloo. The functions here build the plugin from our `configs/*.yaml` exactly as
`accelerate launch --config_file` would (through the same environment variables), then mark
the shared state, so `Accelerator.prepare`, `get_state_dict` and our trainers take their
real FSDP / DeepSpeed branches. Call them under `torchrun --nproc_per_node 2`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
FSDP_CONFIG = REPO / "configs" / "accelerate_fsdp.yaml"
ZERO3_CONFIG = REPO / "configs" / "accelerate_deepspeed_zero3.yaml"
# accelerate/utils/launch.py's names where they differ from "FSDP_" + the key
FSDP_NAMES = {"fsdp_transformer_layer_cls_to_wrap": "FSDP_TRANSFORMER_CLS_TO_WRAP"}
DS_NAMES = {"zero3_init_flag": "ZERO3_INIT"}


def fsdp_env(config: Path = FSDP_CONFIG) -> dict[str, str]:
    """The environment `accelerate launch --config_file config` sets for FSDP."""
    cfg = yaml.safe_load(config.read_text())
    assert cfg["distributed_type"] == "FSDP", config
    env = {"ACCELERATE_USE_FSDP": "true"}
    for key, value in cfg["fsdp_config"].items():
        name = FSDP_NAMES.get(key, "FSDP_" + key.removeprefix("fsdp_").upper())
        env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def zero3_env(config: Path = ZERO3_CONFIG) -> dict[str, str]:
    """The environment `accelerate launch --config_file config` sets for DeepSpeed."""
    cfg = yaml.safe_load(config.read_text())
    assert cfg["distributed_type"] == "DEEPSPEED", config
    env = {"ACCELERATE_USE_DEEPSPEED": "true"}
    for key, value in cfg["deepspeed_config"].items():
        name = "ACCELERATE_DEEPSPEED_" + DS_NAMES.get(key, key.upper())
        env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _mark(acc: Any, kind: Any) -> None:
    from accelerate import PartialState

    assert acc.num_processes == 2, f"expected 2 processes, got {acc.num_processes}"
    # AcceleratorState re-reads PartialState's shared dict, so both are marked.
    PartialState().distributed_type = kind
    acc.state.distributed_type = kind


def fsdp_accelerator(**kwargs: Any) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    os.environ.update(fsdp_env())
    plugin = FullyShardedDataParallelPlugin()
    acc = Accelerator(cpu=True, **kwargs)
    _mark(acc, DistributedType.FSDP)
    acc.state.fsdp_plugin = plugin
    assert acc.is_fsdp2, "configs/accelerate_fsdp.yaml should select FSDP2"
    return acc


def zero3_accelerator(**kwargs: Any) -> Any:
    """Needs `pip install deepspeed` (+ ninja and a C++ compiler: DeepSpeed JIT-builds its
    CPU communication op) and DS_ACCELERATOR=cpu in the environment."""
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin, DistributedType

    os.environ.update(zero3_env())
    os.environ.pop("ACCELERATE_MIXED_PRECISION", None)
    plugin = DeepSpeedPlugin()
    acc = Accelerator(cpu=True, **kwargs)
    _mark(acc, DistributedType.DEEPSPEED)
    plugin.set_mixed_precision("no")
    plugin.select(_from_accelerator_state=True)
    acc.state.deepspeed_plugins = {"default": plugin}
    assert acc.state.deepspeed_plugin.zero_stage == 3
    return acc
