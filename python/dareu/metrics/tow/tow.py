"""DareU's tug-of-war: prod over splits of (1 - |ROUGE_unlearned - ROUGE_retain|), one row
per split (forget, retain, test): `predictions` the unlearned model's ROUGE-L, `references`
the retain model's."""

import datasets

import evaluate
from dareu.eval import metrics as M
from dareu.metrics import metric_info


class Tow(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            __doc__,
            "DareU, arXiv 2605.30919",
            "one row per split: ROUGE-L of the unlearned / retain model",
            datasets.Value("float64"),
            datasets.Value("float64"),
        )

    def _compute(self, predictions: list[float], references: list[float]) -> dict[str, float]:
        return {"tow": M.tow(dict(enumerate(predictions)), dict(enumerate(references)))}
