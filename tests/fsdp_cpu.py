"""Run Accelerate's FSDP path on CPU processes (gloo), for tests.

Accelerate only enters FSDP on GPU-type backends (its state picks MULTI_CPU on a CPU),
while torch's FSDP2 (`fully_shard`) runs on CPU with gloo. `fsdp_accelerator` builds the
plugin from `configs/accelerate_fsdp.yaml` exactly as `accelerate launch` would (through
the FSDP_* environment variables), then marks the shared state as FSDP, so
`Accelerator.prepare`, `get_state_dict` and our trainers take their real FSDP branches.
Call it under `torchrun --nproc_per_node 2`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "accelerate_fsdp.yaml"
# accelerate/utils/launch.py names this one differently from the config key
ENV_NAMES = {"fsdp_transformer_layer_cls_to_wrap": "FSDP_TRANSFORMER_CLS_TO_WRAP"}


def fsdp_env(config: Path = CONFIG) -> dict[str, str]:
    """The environment `accelerate launch --config_file config` sets for FSDP."""
    cfg = yaml.safe_load(config.read_text())
    assert cfg["distributed_type"] == "FSDP", config
    env = {"ACCELERATE_USE_FSDP": "true"}
    for key, value in cfg["fsdp_config"].items():
        name = ENV_NAMES.get(key, "FSDP_" + key.removeprefix("fsdp_").upper())
        env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def fsdp_accelerator(**kwargs: Any) -> Any:
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    os.environ.update(fsdp_env())
    plugin = FullyShardedDataParallelPlugin()
    acc = Accelerator(cpu=True, **kwargs)
    assert acc.num_processes == 2, f"expected 2 processes, got {acc.num_processes}"
    # AcceleratorState re-reads PartialState's shared dict, so both are marked.
    PartialState().distributed_type = DistributedType.FSDP
    acc.state.distributed_type = DistributedType.FSDP
    acc.state.fsdp_plugin = plugin
    assert acc.is_fsdp2, "configs/accelerate_fsdp.yaml should select FSDP2"
    return acc
