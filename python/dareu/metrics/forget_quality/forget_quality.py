"""TOFU's forget quality: the KS-test p-value between the unlearned model's forget truth
ratios (`predictions`) and the retain model's (`references`)."""

import datasets

import evaluate
from dareu.eval import metrics as M
from dareu.metrics import metric_info


class ForgetQuality(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            __doc__,
            "Maini et al. 2024, TOFU",
            "predictions / references: per-row truth ratios of the "
            "unlearned / retain model on the forget set",
            datasets.Value("float64"),
            datasets.Value("float64"),
        )

    def _compute(self, predictions: list[float], references: list[float]) -> dict[str, float]:
        return {"forget_quality": M.forget_quality(list(predictions), list(references))}
