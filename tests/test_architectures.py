"""Any Hugging Face causal LM without an architecture flag: LoRA targets resolved by PEFT,
and the main job on tiny random-init GPT-2, Qwen2 and Mistral checkpoints built here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from dareu.train.lora import LLAMA_TARGETS, wrap_lora

REPO = Path(__file__).resolve().parents[1]


def adapted(model: Any) -> set[str]:
    """The module names (last part) that carry a LoRA adapter."""
    return {n.split(".")[-4] for n, _ in model.named_parameters() if "lora_A" in n}


def small(arch: str, vocab: int, special: dict[str, int]) -> Any:
    dims: dict[str, Any] = {"vocab_size": vocab, **special}
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=512, **dims))
    common = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1,
              "max_position_embeddings": 512, **dims}  # fmt: skip
    cls = {"llama": (LlamaForCausalLM, LlamaConfig), "qwen2": (Qwen2ForCausalLM, Qwen2Config),
           "mistral": (MistralForCausalLM, MistralConfig)}[arch]  # fmt: skip
    return cls[0](cls[1](**common))


def test_default_targets_are_peft_all_linear() -> None:
    torch.manual_seed(0)
    llama = wrap_lora(small("llama", 64, {}), r=2)
    assert adapted(llama) == set(LLAMA_TARGETS)  # the seven projections, as before
    gpt2 = wrap_lora(small("gpt2", 64, {}), r=2)
    assert adapted(gpt2) == {"c_attn", "c_proj", "c_fc"}  # Conv1D layers, not lm_head
    with pytest.raises(ValueError, match=r"\['q_proj'\] are not in this model \(GPT2LMHead"):
        wrap_lora(small("gpt2", 64, {}), r=2, target_modules=("q_proj",))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "mistral"])
def test_main_job_runs_on_any_causal_lm_without_flags(tmp_path: Path, arch: str) -> None:
    from dareu.data import generate_synthetic, load_benchmark
    from dareu.models.tiny import benchmark_corpus, train_tokenizer

    folder = generate_synthetic(tmp_path / "bench", owners=6, facts=3, forget_owners=2,
                                holdout_owners=2, general=8)  # fmt: skip
    tok = train_tokenizer(benchmark_corpus(load_benchmark(folder)), 400)
    special = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
               "pad_token_id": tok.pad_token_id}  # fmt: skip
    torch.manual_seed(0)
    model = small(arch, len(tok), special)
    model.save_pretrained(tmp_path / arch, safe_serialization=True)
    tok.save_pretrained(tmp_path / arch)
    env = {**os.environ, "DAREU_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(REPO / "scripts" / "unlearn.py"), "--benchmark", str(folder),
            "--model", str(tmp_path / arch), "--batch-size", "4", "--ppo-steps", "1",
            "--epochs", "1", "--samples-per-query", "1", "--max-new-tokens", "8",
            "--eval-max-new-tokens", "8", "--eval-max-samples", "4", "--no-audit",
            "--no-progress"]  # fmt: skip
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "it/s" not in run.stderr, run.stderr[-3000:]  # --no-progress: no bar, not one
    out = Path(run.stdout.splitlines()[0].split(": ", 1)[1])
    unlearned = json.loads((out / "summary.json").read_text())["rounds"][0]["unlearned"]
    assert unlearned["forget_rougeL"] is not None
    adapter = json.loads((out / "round-0" / "model" / "adapter_config.json").read_text())
    expected = {"gpt2": {"c_attn", "c_proj", "c_fc"}}.get(arch, set(LLAMA_TARGETS))
    assert {t.rsplit(".", 1)[-1] for t in adapter["target_modules"]} == expected
