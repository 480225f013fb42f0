"""Completion metrics: does the model still continue an owner's documents?

The DareU paper's text-completion task (its Table 2) and MUSE's VerbMem/KnowMem ask the
same question of a document: given its first N tokens, what does the model write next?
For the forget and retain documents (`Benchmark.forget_completion`/`retain_completion`):

* ``completion_{split}_rougeL``: ROUGE-L recall of the greedy continuation (at most as many
  tokens as the true one) against the true continuation (MUSE VerbMem);
* ``completion_{split}_extraction_strength`` and ``_exact_memorization``: teacher-forced on
  the true continuation (the paper's ES, open-unlearning's definitions);
* ``completion_mia_{attack}_auc``: membership inference on whole document texts, forget
  documents against documents nobody trained on (the world's holdout people);
* on the knowledge world, ``completion_grade_{class}`` (forget) and
  ``completion_retain_grade_{class}``: the exact grader applied to the continuation
  (`Grader.grade_completion`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dareu.data.formatting import TEXT
from dareu.data.schema import Benchmark, QASample
from dareu.eval import metrics as M
from dareu.eval.grading import Grader, shares
from dareu.eval.markdown import MIA_ATTACKS
from dareu.eval.rouge import rouge_recall
from dareu.eval.scoring import AnswerScorer, memorisation_scores, mia_scores

Generate = Callable[..., list[str]]


def completion_sets(
    bench: Benchmark, subsample: Callable[[list[QASample]], list[QASample]]
) -> dict[str, list[QASample]]:
    """Forget completions, and the retain ones of the retain-eval owners (all retain
    owners when none of those has documents), each cut to the evaluation's sample cap."""
    eval_owners = {s.owner for s in bench.retain_eval}
    retain = [s for s in bench.retain_completion if s.owner in eval_owners]
    return {
        "forget": subsample(bench.forget_completion),
        "retain": subsample(retain or bench.retain_completion),
    }


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def evaluate_completions(
    model: Any,
    tokenizer: Any,
    bench: Benchmark,
    sets: dict[str, list[QASample]],
    generate: Generate,
    *,
    grader: Grader | None,
    batch_size: int,
    max_length: int,
    mia_k: float,
    progress: bool,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(summary keys, per-sample records) of every completion metric above."""
    scorer = AnswerScorer(model, tokenizer, TEXT, batch_size=batch_size, max_length=max_length,
                          progress=progress)  # fmt: skip
    summary: dict[str, Any] = {}
    per_sample: dict[str, list[dict[str, Any]]] = {}
    for split, rows in sets.items():
        if not rows:
            continue
        budget = max(len(tokenizer(s.answer, add_special_tokens=False)["input_ids"]) for s in rows)
        gens = generate([s.question for s in rows], f"generate {split} completions", budget)
        rouge = rouge_recall([s.answer.strip() for s in rows], [g.strip() for g in gens])
        mem = [memorisation_scores(st) for st in scorer([(s.question, s.answer) for s in rows])]
        grades = [
            grader.grade_completion(s.question, g, s.answer, s.owner) if grader else None
            for s, g in zip(rows, gens, strict=True)
        ]
        per_sample[f"completion_{split}"] = [
            {"id": s.id, "owner": s.owner, "prompt": s.question, "ground_truth": s.answer,
             "generation": g, "rougeL": r, **m, "grade": gr.cls if gr else None}
            for s, g, r, m, gr in zip(rows, gens, rouge["rougeL"], mem, grades, strict=True)
        ]  # fmt: skip
        summary[f"completion_{split}_n"] = len(rows)
        summary[f"completion_{split}_rougeL"] = _mean(rouge["rougeL"])
        for key in ("extraction_strength", "exact_memorization"):
            summary[f"completion_{split}_{key}"] = _mean([m[key] for m in mem])
        if grader is not None:
            prefix = "completion" if split == "forget" else f"completion_{split}"
            graded = [g.cls for g in grades if g is not None]
            summary.update({f"{prefix}_grade_{c}": v for c, v in shares(graded).items()})
            summary[f"{prefix}_graded_n"] = len(graded)
    summary.update(_document_mia(bench, scorer, mia_k))
    return summary, per_sample


def _document_mia(bench: Benchmark, scorer: AnswerScorer, mia_k: float) -> dict[str, Any]:
    """MIA AUC on whole document texts: forget documents vs never-trained documents."""
    members, others = bench.forget_docs, bench.holdout_docs
    if not (members and others):
        return {f"completion_mia_{a}_auc": None for a in MIA_ATTACKS}
    m = [mia_scores(st, mia_k) for st in scorer([("", d.text) for d in members], "score docs")]
    h = [mia_scores(st, mia_k) for st in scorer([("", d.text) for d in others], "score docs")]
    return {
        f"completion_mia_{a}_auc": M.mia_auc([x[a] for x in m], [x[a] for x in h])
        for a in MIA_ATTACKS
    }
