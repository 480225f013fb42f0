"""ROUGE recall of generated answers against the ground truth, as TOFU computes it
(rouge_score with the stemmer; recall, not F1): `rougeL` and `rouge1`, means over rows."""

import datasets
import numpy as np

import evaluate
from dareu.eval.rouge import rouge_recall
from dareu.metrics import metric_info


class RougeRecall(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            __doc__,
            "Maini et al. 2024, TOFU",
            "predictions: generated answers; references: true answers",
            datasets.Value("string"),
            datasets.Value("string"),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        r = rouge_recall(list(references), list(predictions))
        return {"rougeL": float(np.mean(r["rougeL"])), "rouge1": float(np.mean(r["rouge1"]))}
