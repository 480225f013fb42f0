"""Write a trained model as a folder `load_model` reads, from a gathered state dict.

Under FSDP and ZeRO-3 each process holds shards, so the module itself cannot be saved;
`accelerator.get_state_dict` gathers the full weights (on the main process), and every
save here goes through that dict. Two details a gathered dict brings with it:
  * tied weights (LM head = input embeddings) come back as two separate tensors, so the
    duplicate keys are dropped or `from_pretrained` would see an untied checkpoint;
  * a LoRA merge needs whole base weights, so under sharding the adapter is written
    first and merged on a fresh, unsharded load of base + adapter.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dareu.cache import share_files


def tied_duplicates(module: nn.Module) -> list[str]:
    """State-dict keys that name a tensor an earlier key already names (tied weights)."""
    seen: set[int] = set()
    dupes = []
    for key, value in module.state_dict(keep_vars=True).items():
        if id(value) in seen:
            dupes.append(key)
        seen.add(id(value))
    return dupes


def save_hf_model(
    model: Any,
    tokenizer: Any,
    out: Path,
    state: dict[str, torch.Tensor],
    *,
    merge: bool,
    sharded: bool = False,
) -> dict[str, bool]:
    """Save the unwrapped `model` into `out` using `state` (its full state dict).

    PEFT models are merged into a full checkpoint when `merge`, else saved as an adapter
    whose adapter_config.json names the base. `sharded` (FSDP/DeepSpeed, from
    `dareu.train.common.is_sharded`): the module holds shards, so a merge goes through disk.
    Returns what was written.
    """
    from peft import PeftModel

    out = Path(out)
    info = {"merged": False, "adapter_only": False}
    cpu = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if isinstance(model, PeftModel):
        if merge and not sharded:
            model.merge_and_unload().save_pretrained(str(out), safe_serialization=True)
            info["merged"] = True
        elif merge:
            staging = out / "_adapter"
            model.save_pretrained(str(staging), state_dict=cpu, safe_serialization=True)
            _merge_from_disk(staging, model, out)
            shutil.rmtree(staging)
            info["merged"] = True
        else:
            model.save_pretrained(str(out), state_dict=cpu, safe_serialization=True)
            info["adapter_only"] = True
    else:
        for key in tied_duplicates(model):
            cpu.pop(key, None)
        model.save_pretrained(out, state_dict=cpu, safe_serialization=True)
    tokenizer.save_pretrained(out)
    share_files(out)  # safetensors writes 0600 files; the folders are shared (0755)
    return info


def _merge_from_disk(adapter: Path, model: Any, out: Path) -> None:
    """Merge a saved adapter into a fresh CPU copy of its base and save the result."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_path = model.peft_config[model.active_adapter].base_model_name_or_path
    dtype = next(iter(model.parameters())).dtype
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, use_safetensors=True)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
