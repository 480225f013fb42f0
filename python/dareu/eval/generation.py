"""Batched greedy generation: the answers every ROUGE, leak and gibberish metric reads.

Greedy so that evaluation is deterministic; left padding so that every prompt ends at the
same position and the KV cache can be used for the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from dareu.eval.batching import run_batched
from dareu.models.loading import eos_ids as find_eos_ids


def _model_device(model: PreTrainedModel) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def cut_at_eos(token_ids: list[int], eos_ids: list[int]) -> list[int]:
    """Keep tokens before the first EOS (the rest is padding or run-on)."""
    eos = set(eos_ids)
    for j, t in enumerate(token_ids):
        if t in eos:
            return token_ids[:j]
    return token_ids


@torch.inference_mode()
def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: list[str],
    fmt: Any,
    *,
    max_new_tokens: int = 200,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "generate",
    contexts: Sequence[Sequence[tuple[str, str]]] | None = None,
    strip: bool = True,
) -> list[str]:
    """Greedy answers to `questions`, one string each, cut at EOS and stripped.

    `fmt` is a `dareu.data.formatting.PromptFormat` ("plain", "llama2", "chat") or TEXT
    (a document prefix); `contexts[i]` are earlier (question, answer) turns put before
    question i. `strip=False` keeps a continuation's leading space (it may start a word).
    Batch size halves on out-of-memory.
    """
    from dareu.data.formatting import encode_prompts

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not questions:
        return []
    was_training = model.training
    model.eval()
    device = _model_device(model)
    eos_ids = find_eos_ids(model, tokenizer, required=False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    gen_cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        use_cache=True,
        pad_token_id=pad_id,
        eos_token_id=eos_ids or None,
    )

    if contexts is not None and len(contexts) != len(questions):
        raise ValueError(f"{len(contexts)} contexts for {len(questions)} questions")

    def one_batch(rows: list[int]) -> list[str]:
        batch = [questions[i] for i in rows]
        ctx = [contexts[i] for i in rows] if contexts is not None else None
        enc = encode_prompts(tokenizer, batch, fmt, ctx)
        input_ids = enc["input_ids"].to(device)
        attention_mask = enc["attention_mask"].to(device)
        generate: Any = model.generate  # typed loosely by transformers
        out = generate(
            input_ids=input_ids, attention_mask=attention_mask, generation_config=gen_cfg
        )
        new_tokens = out[:, input_ids.shape[1] :].tolist()
        texts = [
            str(tokenizer.decode(cut_at_eos(row, eos_ids), skip_special_tokens=True))
            for row in new_tokens
        ]
        return [t.strip() if strip else t.rstrip() for t in texts]

    try:
        return run_batched(
            one_batch,
            list(range(len(questions))),
            batch_size,
            desc=desc,
            progress=progress,
            hint="--batch-size or --max-new-tokens",
        )
    finally:
        if was_training:
            model.train()
