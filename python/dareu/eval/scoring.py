"""Teacher-forced answer scoring: one forward pass gives every likelihood-based metric.

Probability, truth ratio, the four MIA scores, extraction strength and exact memorisation
all read the same per-token statistics of the answer given the question, so we compute
them once per (question, answer) and keep only answer-length arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from dareu.eval import metrics as M
from dareu.eval.batching import run_batched
from dareu.eval.generation import _model_device


@dataclass(frozen=True)
class AnswerStats:
    """Per-token statistics of one answer (all labelled tokens: the answer and its EOS).

    `mu`/`var` are the mean and variance of log p(v) under the model's next-token
    distribution at each position (what Min-K%++ standardises with).
    """

    logprobs: np.ndarray
    preds: np.ndarray
    labels: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    text: str

    @property
    def n_tokens(self) -> int:
        return int(self.labels.size)

    @property
    def avg_nll(self) -> float:
        """Mean NLL over all labelled tokens (EOS included), as open-unlearning's loss."""
        if self.labels.size == 0:
            return float("nan")
        return float(-np.mean(self.logprobs))

    def body(self) -> AnswerStats:
        """Without the last labelled position (the EOS), as open-unlearning's token-wise
        metrics (Min-K, Min-K++, extraction strength, exact memorisation) use."""
        s = slice(0, max(self.labels.size - 1, 0))
        return AnswerStats(
            self.logprobs[s], self.preds[s], self.labels[s], self.mu[s], self.var[s], self.text
        )


@torch.inference_mode()
def score_answers(
    model: PreTrainedModel,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    fmt: Any,
    *,
    batch_size: int = 32,
    max_length: int = 512,
    progress: bool = True,
    desc: str = "score",
) -> list[AnswerStats]:
    """Statistics of each `answer` given its `question`, in the training prompt format."""
    from dareu.data.formatting import IGNORE_INDEX, collate_train, encode_qa

    if not pairs:
        return []
    feats = [encode_qa(tokenizer, q, a, fmt, max_length=max_length) for q, a in pairs]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = _model_device(model)
    was_training = model.training
    model.eval()

    def one_batch(batch: list[dict[str, list[int]]]) -> list[AnswerStats]:
        enc = collate_train(batch, pad_id)
        logits = model(
            input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)
        ).logits[:, :-1]
        labels = enc["labels"][:, 1:].to(device)
        mask = labels != IGNORE_INDEX
        # Only the answer positions, all samples at once: (n_answer_tokens, vocab).
        sel = logits[mask].float()
        y = labels[mask]
        logp = torch.log_softmax(sel, dim=-1)
        p = logp.exp()
        lp = logp.clamp(min=-1e4)  # p underflows to 0 long before; avoids 0 * -inf
        mu = (p * lp).sum(-1)
        var = (p * lp * lp).sum(-1) - mu**2
        cols = [
            logp.gather(-1, y[:, None]).squeeze(-1).double(),
            sel.argmax(-1),
            y,
            mu.double(),
            var.double(),
        ]
        cuts = np.cumsum(mask.sum(1).tolist())[:-1]
        tok_lp, preds, ys, mus, vs = (np.split(c.cpu().numpy(), cuts) for c in cols)
        return [
            AnswerStats(
                logprobs=tok_lp[i],
                preds=preds[i],
                labels=ys[i],
                mu=mus[i],
                var=vs[i],
                text=tokenizer.decode(ys[i].tolist(), skip_special_tokens=True),
            )
            for i in range(len(batch))
        ]

    try:
        return run_batched(one_batch, feats, batch_size, desc=desc, progress=progress)
    finally:
        if was_training:
            model.train()


class AnswerScorer:
    """`score_answers` with a memo, so a (question, answer) pair used by several metrics
    or splits (TOFU's forget10 and forget10_perturbed share theirs) costs one pass."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        fmt: Any,
        *,
        batch_size: int = 32,
        max_length: int = 512,
        progress: bool = True,
    ) -> None:
        self.model, self.tokenizer, self.fmt = model, tokenizer, fmt
        self.batch_size, self.max_length, self.progress = batch_size, max_length, progress
        self._memo: dict[tuple[str, str], AnswerStats] = {}

    def __call__(self, pairs: Sequence[tuple[str, str]], desc: str = "score") -> list[AnswerStats]:
        todo = list(dict.fromkeys(p for p in pairs if p not in self._memo))
        stats = score_answers(
            self.model,
            self.tokenizer,
            todo,
            self.fmt,
            batch_size=self.batch_size,
            max_length=self.max_length,
            progress=self.progress,
            desc=desc,
        )
        self._memo.update(zip(todo, stats, strict=True))
        return [self._memo[p] for p in pairs]


def mia_scores(stats: AnswerStats, k: float) -> dict[str, float]:
    """The four MIA scores of one sample (higher = looks less like training data)."""
    body = stats.body()
    return {
        "loss": stats.avg_nll,
        "zlib": M.zlib_score(stats.avg_nll, stats.text),
        "min_k": M.min_k_score(body.logprobs, k),
        "min_k_plus_plus": M.min_k_plus_plus_score(body.logprobs, body.mu, body.var, k),
    }


def memorisation_scores(stats: AnswerStats) -> dict[str, float]:
    body = stats.body()
    return {
        "extraction_strength": M.extraction_strength(body.preds.tolist(), body.labels.tolist()),
        "exact_memorization": M.exact_memorization(body.preds.tolist(), body.labels.tolist()),
    }
