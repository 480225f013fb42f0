"""Membership-inference AUC as open-unlearning computes it: ROC AUC of a loss-like attack
score (`predictions`; higher = looks less like training data) with forget rows labelled 0
and holdout rows 1 (`references`). 1.0 = the forget set is still remembered, 0.5 = not."""

import datasets

import evaluate
from dareu.eval import metrics as M
from dareu.metrics import metric_info


class MiaAuc(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            __doc__,
            "open-unlearning (Dorna et al. 2025)",
            "predictions: attack scores; references: 0 forget, 1 holdout",
            datasets.Value("float64"),
            datasets.Value("int32"),
        )

    def _compute(self, predictions: list[float], references: list[int]) -> dict[str, float]:
        if set(references) - {0, 1}:
            raise ValueError("references must be 0 (forget) or 1 (holdout)")
        forget = [p for p, r in zip(predictions, references, strict=True) if r == 0]
        holdout = [p for p, r in zip(predictions, references, strict=True) if r == 1]
        return {"mia_auc": M.mia_auc(forget, holdout)}
