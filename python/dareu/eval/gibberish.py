"""Is an unlearned model's answer still language? A transparent default detector.

Unlearning methods that push likelihood down (gradient ascent and friends) often "forget"
by emitting junk. The default detector is a handful of readable rules, each reported on
its own so a reader can see *why* an answer counts as gibberish:

- repetition: the same token 4+ times in a row, fewer than half of the word 3-grams
  distinct (needs at least 6 words), or a phrase of 2+ words said twice in a row
  ("In spare hours, In spare hours");
- unfinished: the answer does not end a sentence (no final . ! ? or closing quote), or
  ends on a word that cannot end one ("... and.", "... of the."): truncations and
  run-ons;
- too_short: fewer than `min_words` words (a lone "." or an empty answer);
- oov: more than `max_oov_share` of the alphabetic words are not in the benchmark's own
  vocabulary (its questions and answers): made-up tokens and byte soup;
- perplexity: perplexity of the answer given the question under a reference model (the
  original model) above a threshold (only with a reference model). The threshold is
  `max_perplexity` or, if higher, `baseline_factor` x the 90th percentile of the reference
  model's perplexity on fluent text it was not trained to say (the benchmark's IdK
  answers and perturbed answers to the same questions): a model fine-tuned from scratch
  on the benchmark finds any unseen sentence, a polite refusal included, very surprising,
  and a refusal is not gibberish.

A user can swap in a Hugging Face text-classification checkpoint from a local folder
(`classifier_flags`); everything outside its `clean_label` counts as gibberish.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dareu.data.schema import Benchmark
from dareu.eval.batching import run_batched

_WORD = re.compile(r"\w+")
_ALPHA = re.compile(r"[A-Za-z]+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class GibberishConfig:
    """Thresholds of the default detector (documented in docs/evaluation.md)."""

    min_words: int = 2
    max_run: int = 4
    min_distinct_trigram_share: float = 0.5
    max_oov_share: float = 0.5
    max_perplexity: float = 1000.0
    baseline_factor: float = 10.0


def perplexity_threshold(
    baseline_ppls: Sequence[float], cfg: GibberishConfig = GibberishConfig()
) -> float:
    """max(max_perplexity, baseline_factor * p90 of the reference's fluent-text perplexity)."""
    if len(baseline_ppls) == 0:
        return cfg.max_perplexity
    return float(max(cfg.max_perplexity, cfg.baseline_factor * np.percentile(baseline_ppls, 90)))


def corpus_vocabulary(benchmark: Benchmark) -> set[str]:
    """Lower-cased alphabetic words of every text in the benchmark."""
    vocab: set[str] = set()
    samples = [
        *benchmark.forget,
        *benchmark.retain,
        *benchmark.forget_eval,
        *benchmark.retain_eval,
        *benchmark.holdout,
        *benchmark.general_train,
        *(s for split in benchmark.test_sets.values() for s in split),
    ]
    texts: list[str] = list(benchmark.idk_answers)
    for s in samples:
        texts += [s.question, s.answer, *s.perturbed_answers]
        texts += [t for t in (s.paraphrased_answer, s.paraphrased_question) if t]
    for t in texts:
        vocab.update(w.lower() for w in _ALPHA.findall(t))
    return vocab


def repetition_flag(text: str, cfg: GibberishConfig = GibberishConfig()) -> bool:
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    run = 1
    for a, b in itertools.pairwise(tokens):
        run = run + 1 if a == b else 1
        if run >= cfg.max_run:
            return True
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= 6:
        grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
        if len(set(grams)) / len(grams) < cfg.min_distinct_trigram_share:
            return True
    return False


_DANGLING = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "with",
        "from", "by", "as", "is", "was", "were", "are", "be", "that", "which", "who",
        "whose", "his", "her", "their", "its", "my", "your", "our",
    }
)  # fmt: skip
_END = re.compile(r"""[.!?]["')\]]*$|["')\]]$""")


def repeated_phrase_flag(text: str) -> bool:
    """A run of 2+ words immediately said again (case and punctuation ignored)."""
    words = [w.lower() for w in _WORD.findall(text)]
    for n in range(2, len(words) // 2 + 1):
        for i in range(len(words) - 2 * n + 1):
            if words[i : i + n] == words[i + n : i + 2 * n]:
                return True
    return False


def unfinished_flag(text: str) -> bool:
    """No sentence end, or a last word that cannot end a sentence."""
    t = text.strip()
    if not t:
        return False  # too_short's case
    words = _WORD.findall(t)
    return not _END.search(t) or (bool(words) and words[-1].lower() in _DANGLING)


def too_short_flag(text: str, cfg: GibberishConfig = GibberishConfig()) -> bool:
    return len(_WORD.findall(text)) < cfg.min_words


def oov_share(text: str, vocab: set[str]) -> float | None:
    """Share of alphabetic words outside `vocab`; None when there are no such words."""
    words = [w.lower() for w in _ALPHA.findall(text)]
    if not words:
        return None
    return sum(w not in vocab for w in words) / len(words)


def rule_flags(
    texts: Sequence[str],
    vocab: set[str],
    perplexities: Sequence[float | None] | None = None,
    cfg: GibberishConfig = GibberishConfig(),
    max_perplexity: float | None = None,
) -> list[dict[str, Any]]:
    """Per-text flags of the default detector plus `gibberish` = any flag raised.

    `max_perplexity` overrides `cfg.max_perplexity` (see `perplexity_threshold`).
    """
    ppl_max = cfg.max_perplexity if max_perplexity is None else max_perplexity
    out = []
    for i, text in enumerate(texts):
        share = oov_share(text, vocab)
        ppl = perplexities[i] if perplexities is not None else None
        flags: dict[str, Any] = {
            "repetition": repetition_flag(text, cfg) or repeated_phrase_flag(text),
            "unfinished": unfinished_flag(text),
            "too_short": too_short_flag(text, cfg),
            "oov": share is not None and share > cfg.max_oov_share,
            "oov_share": share,
        }
        if perplexities is not None:
            flags["perplexity"] = ppl
            flags["high_perplexity"] = ppl is not None and ppl > ppl_max
        flags["gibberish"] = any(v is True for k, v in flags.items())
        out.append(flags)
    return out


def agreement(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    """Precision and recall of (flagged, truly malformed) pairs: the detector checked
    against a reference such as the knowledge world's exact grader."""
    tp = sum(f and m for f, m in pairs)
    flagged, bad = sum(f for f, _ in pairs), sum(m for _, m in pairs)
    return {"n": len(pairs), "malformed": bad, "flagged": flagged, "true_pos": tp,
            "precision": tp / flagged if flagged else None,
            "recall": tp / bad if bad else None}  # fmt: skip


def rates(flags: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Mean of each boolean flag over the answers."""
    rows = list(flags)
    if not rows:
        return {}
    keys = [k for k, v in rows[0].items() if isinstance(v, bool)]
    return {k: sum(bool(r.get(k)) for r in rows) / len(rows) for k in keys}


def classifier_flags(
    model_path: str | Path,
    texts: Sequence[str],
    *,
    clean_label: str = "clean",
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Label each text with a local HF sequence-classification model.

    `gibberish_model` is True when the predicted label is not `clean_label`
    (case-insensitive), e.g. for a detector with labels clean / mild gibberish / noise /
    word salad.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise ValueError(
            f"--gibberish-model {path}: not a local Hugging Face checkpoint (no config.json)"
        )
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    clf = AutoModelForSequenceClassification.from_pretrained(
        path, use_safetensors=True, local_files_only=True, trust_remote_code=False
    )
    labels = {int(k): str(v) for k, v in clf.config.id2label.items()}
    if clean_label.lower() not in {v.lower() for v in labels.values()}:
        raise ValueError(
            f"--gibberish-model {path}: its labels {sorted(labels.values())} do not include "
            f"the clean label {clean_label!r} (set --gibberish-clean-label)"
        )
    clf.eval()
    if device is not None:
        clf.to(device)
    dev = next(clf.parameters()).device
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token

    @torch.inference_mode()
    def one_batch(batch: list[str]) -> list[dict[str, Any]]:
        enc = tok(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
        logits = clf(**{k: v.to(dev) for k, v in enc.items()}).logits
        probs = torch.softmax(logits.float(), dim=-1)
        out = []
        for row in probs:
            label = labels[int(row.argmax())]
            out.append(
                {
                    "label": label,
                    "score": float(row.max()),
                    "gibberish_model": label.lower() != clean_label.lower(),
                }
            )
        return out

    # An empty answer would be an empty input for tokenizers without special tokens;
    # "." stands in for it (the too_short rule flags it separately anyway).
    inputs = [t if t.strip() else "." for t in texts]
    return run_batched(one_batch, inputs, batch_size, desc="gibberish", progress=progress)
