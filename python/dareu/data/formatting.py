"""How a question becomes tokens: prompt formats, answer-only labels, padding.

Training and generation must see the same prompt text, so both go through
`format_prompt`. Labels cover only the answer and EOS, because unlearning and
evaluation are about what the model says, not about re-predicting the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from transformers import BatchEncoding

from dareu.data.schema import QASample

PromptFormat = Literal["llama2", "chat", "plain"]
PROMPT_FORMATS: tuple[str, ...] = get_args(PromptFormat)
IGNORE_INDEX = -100
# The format of a completion row (a document prefix and its continuation): no template,
# BOS then the raw text, the target follows without a separator and without EOS (it is
# cut from running text). Internal: the run's --format names a QA format.
TEXT = "text"


def row_format(sample: QASample, fmt: str) -> str:
    """The format one row is encoded in: the run's QA format, or TEXT for completions."""
    return TEXT if sample.kind == "completion" else fmt


def row_formats(samples: Sequence[QASample], fmt: str) -> list[str]:
    return [row_format(s, fmt) for s in samples]


def check_format(fmt: str) -> PromptFormat:
    """Validate a prompt-format name coming from a CLI or config."""
    if fmt not in PROMPT_FORMATS:
        raise ValueError(f"prompt format {fmt!r} is not one of {', '.join(PROMPT_FORMATS)}")
    return fmt  # type: ignore[return-value]


def format_prompt(
    question: str,
    tokenizer: Any,
    fmt: str,
    context: Sequence[tuple[str, str]] = (),
) -> str:
    """The text the model sees before the answer.

    `context`: earlier (question, answer) turns in the same format, before `question`
    (the audit's in-context probe); empty for training and ordinary evaluation.
    `fmt` TEXT: `question` is a document prefix and is the prompt as it is.
    """
    if fmt == TEXT:
        if context:
            raise ValueError("a completion prompt takes no context turns")
        return question
    fmt = check_format(fmt)
    if fmt == "llama2":
        turns = [f"[INST] {q} [/INST] {a}" for q, a in context]
        return " ".join([*turns, f"[INST] {question} [/INST]"])
    if fmt == "plain":
        turns = [f"Question: {q}\nAnswer: {a}\n" for q, a in context]
        return "".join(turns) + f"Question: {question}\nAnswer:"
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            "prompt format 'chat' needs a tokenizer with a chat template, but this tokenizer "
            "has none (tokenizer.chat_template is None); use 'llama2' or 'plain'"
        )
    messages = [
        m
        for q, a in context
        for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
    ]
    text = tokenizer.apply_chat_template(
        [*messages, {"role": "user", "content": question}],
        tokenize=False,
        add_generation_prompt=True,
    )
    return str(text)


def _answer_text(answer: str, fmt: str) -> str:
    # Chat templates end with the assistant header (often a newline); the QA formats end
    # with a word, so the answer needs its separating space; a continuation carries its own.
    return answer if fmt in ("chat", TEXT) else " " + answer


def _add_special(fmt: str) -> bool:
    # Chat templates write BOS as text themselves; letting the tokenizer add it again
    # would double it.
    return fmt != "chat"


def _ids(tokenizer: Any, text: str, add_special_tokens: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def encode_sample(
    tokenizer: Any, sample: QASample, fmt: str, max_length: int = 256
) -> dict[str, list[int]]:
    """`encode_qa` of a row in its own format (`row_format`)."""
    return encode_qa(tokenizer, sample.question, sample.answer, row_format(sample, fmt), max_length)


def encode_qa(
    tokenizer: Any, question: str, answer: str, fmt: str, max_length: int = 256
) -> dict[str, list[int]]:
    """Token ids for one QA pair; labels are -100 except on the answer tokens and EOS
    (a TEXT row: on the continuation tokens, no EOS)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos_token_id; set tokenizer.eos_token before training")
    prompt = format_prompt(question, tokenizer, fmt)
    special = _add_special(fmt)
    prompt_ids = _ids(tokenizer, prompt, special)
    full_ids = _ids(tokenizer, prompt + _answer_text(answer, fmt), special)
    # Tokenising prompt+answer together gives the ids the model would produce when it
    # continues the prompt; fall back to concatenation when a merge crosses the boundary.
    if full_ids[: len(prompt_ids)] != prompt_ids:
        full_ids = prompt_ids + _ids(tokenizer, _answer_text(answer, fmt), False)
    # A tokenizer with add_eos_token would already end with EOS.
    if fmt == TEXT:
        if len(full_ids) > len(prompt_ids) and full_ids[-1] == tokenizer.eos_token_id:
            full_ids = full_ids[:-1]
    elif full_ids[-1] != tokenizer.eos_token_id or len(full_ids) == len(prompt_ids):
        full_ids = [*full_ids, tokenizer.eos_token_id]
    if len(prompt_ids) >= max_length:
        raise ValueError(
            f"max_length={max_length} leaves no room for the answer: the prompt alone is "
            f"{len(prompt_ids)} tokens ({question[:60]!r})"
        )
    full_ids = full_ids[:max_length]
    labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


def encode_doc(tokenizer: Any, text: str, max_length: int = 256) -> dict[str, list[int]]:
    """Token ids for a document row: language modelling on every token (BOS not scored)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos_token_id; set tokenizer.eos_token before training")
    ids = _ids(tokenizer, text, True)
    if ids[-1] != tokenizer.eos_token_id:
        ids.append(tokenizer.eos_token_id)
    ids = ids[:max_length]
    has_bos = tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
    labels = [IGNORE_INDEX, *ids[1:]] if has_bos else list(ids)
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def collate_train(
    features: Sequence[dict[str, list[int]]], pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad a batch from `encode_qa`; padded labels are -100 so they carry no loss."""
    if not features:
        raise ValueError("collate_train got an empty batch")
    width = max(len(f["input_ids"]) for f in features)
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for f in features:
        pad = width - len(f["input_ids"])
        out["input_ids"].append(list(f["input_ids"]) + [pad_token_id] * pad)
        out["attention_mask"].append(list(f["attention_mask"]) + [0] * pad)
        out["labels"].append(list(f["labels"]) + [IGNORE_INDEX] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


def encode_prompts(
    tokenizer: Any,
    questions: list[str],
    fmt: str | Sequence[str],
    contexts: Sequence[Sequence[tuple[str, str]]] | None = None,
) -> BatchEncoding:
    """Left-padded prompts for `generate()`, so every row's continuation starts at the end.

    Pads by hand instead of flipping `tokenizer.padding_side`, so a shared tokenizer is
    never left in a changed state. `fmt`: one format, or one per row (`row_formats`).
    `contexts[i]`: earlier turns of prompt i (see `format_prompt`).
    """
    fmts = [fmt] * len(questions) if isinstance(fmt, str) else list(fmt)
    if len(fmts) != len(questions):
        raise ValueError(f"{len(fmts)} formats for {len(questions)} questions")
    if contexts is not None and len(contexts) != len(questions):
        raise ValueError(f"{len(contexts)} contexts for {len(questions)} questions")
    if not questions:
        raise ValueError("encode_prompts got no questions")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else None
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("tokenizer has neither pad_token_id nor eos_token_id to pad with")
    ctx = contexts if contexts is not None else [()] * len(questions)
    rows = [
        _ids(tokenizer, format_prompt(q, tokenizer, f, c), _add_special(f))
        for q, c, f in zip(questions, ctx, fmts, strict=True)
    ]
    width = max(len(r) for r in rows)
    input_ids = [[pad_id] * (width - len(r)) + r for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return BatchEncoding(
        {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }
    )
