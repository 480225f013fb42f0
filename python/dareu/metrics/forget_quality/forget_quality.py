"""TOFU's forget quality: the KS-test p-value between the unlearned model's forget truth
ratios (`predictions`) and the retain model's (`references`)."""

import datasets

import evaluate
from dareu.eval import metrics as M


class ForgetQuality(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Maini et al. 2024, TOFU",
            inputs_description="predictions / references: per-row truth ratios of the "
            "unlearned / retain model on the forget set",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions: list[float], references: list[float]) -> dict[str, float]:
        return {"forget_quality": M.forget_quality(list(predictions), list(references))}
