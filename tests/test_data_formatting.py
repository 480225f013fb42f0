"""Prompt formats, answer-only labels and padding, with a tokenizer built here (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from dareu.data import DataError, load_user_data
from dareu.data.completion import CompletionConfig, apply_task, cut_document, task_rows
from dareu.data.formatting import (
    IGNORE_INDEX,
    collate_train,
    encode_prompts,
    encode_qa,
    encode_sample,
    format_prompt,
    row_format,
)
from dareu.data.schema import Benchmark, DocSample, QASample

CORPUS = [
    "Question: Where was Ilse Marrow born?\nAnswer: Ilse Marrow was born in Vellmoor Crossing.",
    "[INST] Who employs Ilse Marrow? [/INST] The Kettle Glassworks of Brenholm employs her.",
    "The quick brown fox jumps over the lazy dog near the river bank at dawn.",
    "user assistant system hello world answer question owner fact value",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def make_tokenizer(bos: bool = True) -> PreTrainedTokenizerFast:
    """A tiny byte-level BPE trained in milliseconds; wraps like any local HF tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 3, trainer)
    if bos:
        from tokenizers.processors import TemplateProcessing

        tok.post_processor = TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return make_tokenizer()


def test_prompt_formats(tok: PreTrainedTokenizerFast) -> None:
    assert format_prompt("Who?", tok, "llama2") == "[INST] Who? [/INST]"
    assert format_prompt("Who?", tok, "plain") == "Question: Who?\nAnswer:"
    with pytest.raises(ValueError, match="chat template"):
        format_prompt("Who?", tok, "chat")
    with pytest.raises(ValueError, match="prompt format"):
        format_prompt("Who?", tok, "alpaca")  # type: ignore[arg-type]


def test_chat_format_uses_template() -> None:
    t = make_tokenizer(bos=False)
    t.chat_template = CHAT_TEMPLATE
    assert format_prompt("Who?", t, "chat") == "<s><|user|>\nWho?\n<|assistant|>\n"
    enc = encode_qa(t, "Who?", "Ilse.", "chat")
    # BOS comes from the template text only: exactly one.
    assert enc["input_ids"].count(t.bos_token_id) == 1


@pytest.mark.parametrize("fmt", ["llama2", "plain"])
def test_labels_cover_answer_and_eos_only(tok: PreTrainedTokenizerFast, fmt: str) -> None:
    q, a = "Where was Ilse Marrow born?", "Ilse Marrow was born in Vellmoor Crossing."
    enc = encode_qa(tok, q, a, fmt)  # type: ignore[arg-type]
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) == len(labels) == len(enc["attention_mask"])
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    n_prompt = labels.index(next(x for x in labels if x != IGNORE_INDEX))
    assert all(x == IGNORE_INDEX for x in labels[:n_prompt])
    assert labels[n_prompt:] == ids[n_prompt:]
    # The prompt part is exactly what generation sees, the rest decodes to the answer.
    prompt_ids = encode_prompts(tok, [q], fmt)["input_ids"][0].tolist()  # type: ignore[arg-type]
    assert ids[:n_prompt] == prompt_ids
    assert str(tok.decode(ids[n_prompt:-1])).strip() == a


def test_truncation_and_too_short_max_length(tok: PreTrainedTokenizerFast) -> None:
    enc = encode_qa(tok, "Who?", "The quick brown fox jumps over the lazy dog.", "plain", 12)
    assert len(enc["input_ids"]) == 12
    assert any(x != IGNORE_INDEX for x in enc["labels"])
    with pytest.raises(ValueError, match="max_length"):
        encode_qa(tok, "Where was Ilse Marrow born?", "x", "plain", max_length=3)


def test_collate_right_pads(tok: PreTrainedTokenizerFast) -> None:
    a = encode_qa(tok, "Who?", "Ilse.", "plain")
    b = encode_qa(tok, "Where was Ilse Marrow born?", "Vellmoor Crossing, far away.", "plain")
    batch = collate_train([a, b], pad_token_id=tok.pad_token_id)
    n = len(a["input_ids"])
    assert batch["input_ids"].shape == (2, len(b["input_ids"]))
    assert batch["input_ids"][0, :n].tolist() == a["input_ids"]
    assert (batch["input_ids"][0, n:] == tok.pad_token_id).all()
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)
    assert batch["labels"].dtype == torch.long


def test_encode_prompts_left_pads_and_leaves_tokenizer_alone(tok: PreTrainedTokenizerFast) -> None:
    side = tok.padding_side
    enc = encode_prompts(tok, ["Who?", "Where was Ilse Marrow born?"], "llama2")
    assert tok.padding_side == side
    short = enc["input_ids"][0]
    n_pad = int((enc["attention_mask"][0] == 0).sum())
    assert n_pad > 0
    assert (short[:n_pad] == tok.pad_token_id).all()
    assert enc["attention_mask"][1].all()
    assert short[-1].item() == enc["input_ids"][1][-1].item()  # both end with "]"


def test_cut_document_is_the_first_n_tokens_then_the_next_m(
    tok: PreTrainedTokenizerFast,
) -> None:
    doc = DocSample("d1", "alice", "The quick brown fox jumps over the lazy dog near the river.")
    row = cut_document(doc, tok, CompletionConfig(prompt_tokens=4, continuation_tokens=3))
    ids = tok(doc.text, add_special_tokens=False)["input_ids"]
    assert (row.owner, row.id, row.kind) == ("alice", "d1", "completion")
    assert row.question == tok.decode(ids[:4])
    assert row.question + row.answer == tok.decode(ids[:7])
    # Encoded as a training row: BOS + the N prompt tokens unscored, the M target tokens
    # scored, and no EOS (the target is cut from running text).
    enc = encode_sample(tok, row, "plain", 64)
    assert enc["input_ids"] == [tok.bos_token_id, *ids[:7]]
    assert enc["labels"] == [IGNORE_INDEX] * 5 + ids[4:7]
    # The prompt of a completion row is the raw prefix, whatever the run's QA format.
    prompts = encode_prompts(tok, [row.question], [row_format(row, "llama2")])
    assert prompts["input_ids"][0].tolist() == [tok.bos_token_id, *ids[:4]]


def test_short_document_error_names_file_and_line(
    tok: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    f = tmp_path / "docs.jsonl"
    f.write_text(
        '{"owner": "alice", "text": "The quick brown fox jumps over the lazy dog."}\n'
        '{"owner": "bob", "text": "fox"}\n'
        '{"owner": "bob", "question": "Who?", "answer": "Ilse."}\n'
    )
    bench = load_user_data(f, forget_owners=["alice"])
    assert len(bench.forget_docs) == 1 and len(bench.retain_docs) == 1 and bench.forget == []
    done = apply_task(bench, "auto", tok, CompletionConfig(prompt_tokens=1, continuation_tokens=2))
    assert done.task == "completion"
    assert [q.owner for q in task_rows(done, "forget")] == ["alice"]
    assert [q.kind for q in task_rows(done, "retain")] == ["completion"]
    with pytest.raises(DataError, match=rf"{f}:2: .*needs at least --prompt-tokens \+ 1 = 3"):
        apply_task(bench, "auto", tok, CompletionConfig(prompt_tokens=2))
    with pytest.raises(DataError, match=r"--task qa: forget owner\(s\) \['alice'\] have no QA"):
        apply_task(bench, "qa", tok, CompletionConfig(prompt_tokens=1))


def test_retain_doc_share_redraws_the_retain_rows() -> None:
    qa = [QASample(f"q{i}", "bob", "Q?", "A.") for i in range(6)]
    comp = [QASample(f"d{i}", "bob", "T", " x", kind="completion") for i in range(2)]
    bench = Benchmark("b", [], qa, [], [], [], {}, ["a", "bob"], ["a"], task="both",
                      retain_completion=comp)  # fmt: skip
    assert len(task_rows(bench, "retain")) == 8
    rows = task_rows(bench, "retain", share=0.5, seed=0)
    assert len(rows) == 8 and sum(r.kind == "completion" for r in rows) == 4
    assert task_rows(bench, "retain", share=0.5, seed=0) == rows  # seeded
