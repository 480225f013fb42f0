"""A from-scratch tiny Llama and a BPE tokenizer trained on the benchmark itself.

The default pipeline must run end to end on a laptop CPU with no hub access, so the
"base model" is a small `LlamaForCausalLM` with a byte-level BPE tokenizer fitted to the
benchmark text. It is a real Hugging Face checkpoint (safetensors, tokenizer.json, chat
template), so every later stage treats it exactly like a user's Llama-2-7b folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from dareu.cache import atomic_dir, atomic_write_json, content_hash, is_complete, output_root
from dareu.data.schema import Benchmark

# Bump when the architecture or tokenizer recipe changes, so old caches are not reused.
TINY_RECIPE_VERSION = 1

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# BOS is written by the template (chat prompts are tokenised without special tokens);
# EOS closes each assistant turn so a trained model stops after its answer.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinySize:
    """Architecture knobs; vocab_size is an upper bound (BPE stops when merges run out)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int
    max_position_embeddings: int = 1024


# "tiny" is sized so the synthetic acceptance run (original + retain model) trains in
# well under 3 minutes on 2 CPU cores; "micro" is for unit tests; "small" for a GPU or
# for data sets larger than the synthetic default.
TINY_SIZES: dict[str, TinySize] = {
    "micro": TinySize(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        vocab_size=512,
    ),
    "tiny": TinySize(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=2048,
    ),
    "small": TinySize(
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        vocab_size=4096,
    ),
}


def check_size(size: str) -> TinySize:
    if size not in TINY_SIZES:
        raise ValueError(f"tiny model size {size!r} is not one of {', '.join(TINY_SIZES)}")
    return TINY_SIZES[size]


def benchmark_corpus(benchmark: Benchmark) -> list[str]:
    """All text a model of this benchmark will read or write.

    Questions are also written in the plain and Llama-2 prompt layouts so the scaffolding
    ("Question:", "[INST]") gets its own merges instead of costing many tokens per row.
    """
    rows = [*benchmark.forget, *benchmark.retain, *benchmark.general_train]
    rows += [*benchmark.forget_eval, *benchmark.retain_eval, *benchmark.holdout]
    for name in sorted(benchmark.test_sets):
        rows += benchmark.test_sets[name]
    texts: list[str] = []
    for s in rows:
        texts.append(f"Question: {s.question}\nAnswer: {s.answer}")
        texts.append(f"[INST] {s.question} [/INST] {s.answer}")
        texts += [t for t in (s.paraphrased_question, s.paraphrased_answer) if t]
        texts += list(s.perturbed_answers)
    texts += list(benchmark.idk_answers)
    texts += [d.text for d in [*benchmark.forget_docs, *benchmark.retain_docs,
                                *benchmark.holdout_docs]]  # fmt: skip
    # Sorted and de-duplicated so row order does not matter. Holdout and perturbed rows are
    # included so that never-trained text (MIA's holdout) is tokenised like the forget set.
    return sorted(set(texts))


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (no unknown characters ever), with BOS added like Llama's tokenizer."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [PAD, BOS, EOS, UNK, *CHAT_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(CHAT_TOKENS),
        model_max_length=1024,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def init_tiny_model(
    tokenizer: PreTrainedTokenizerFast, *, size: str = "tiny", seed: int = 0
) -> LlamaForCausalLM:
    """A randomly initialised Llama sized by `size`, the same for the same seed."""
    spec = check_size(size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # A private generator state makes initialisation independent of whatever the caller
    # did with the global RNG before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def build_tiny(texts: list[str], out_dir: Path, *, size: str = "tiny", seed: int = 0) -> Path:
    """Train the tokenizer, initialise the Llama from `seed`, save both into `out_dir`."""
    spec = check_size(size)
    if not texts:
        raise ValueError("cannot build a tiny model from an empty corpus")
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = init_tiny_model(tokenizer, size=size, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    atomic_write_json(
        out_dir / "dareu_model.json",
        {
            "kind": "tiny-base",
            "size": size,
            "seed": seed,
            "recipe_version": TINY_RECIPE_VERSION,
            "architecture": asdict(spec),
            "vocab_size": len(tokenizer),
            "n_params": sum(p.numel() for p in model.parameters()),
        },
    )
    return out_dir


def tiny_base_dir(
    benchmark: Benchmark, *, size: str = "tiny", seed: int = 0, root: Path | None = None
) -> Path:
    """The cached tiny base model for this benchmark's text, building it if absent."""
    spec = check_size(size)
    texts = benchmark_corpus(benchmark)
    corpus_hash = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
    key = content_hash(corpus_hash, asdict(spec), size, seed, TINY_RECIPE_VERSION)
    target = (root or output_root()) / "models" / f"tiny-base-{key}"
    if is_complete(target):
        return target
    with atomic_dir(target) as tmp:
        build_tiny(texts, tmp, size=size, seed=seed)
    return target
