"""TOFU's truth ratio: per row P_wrong / P_correct from the correct answer's mean token NLL
(`predictions`) and the perturbed answers' (`references`, one list per row). `aggregate`:
"forget" = mean of min(tr, 1/tr) (TOFU's forget-set view), "retain" = mean of max(0, 1 - tr)."""

import datasets

import evaluate
from dareu.eval import metrics as M
from dareu.metrics import metric_info


class TruthRatio(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            __doc__,
            "Maini et al. 2024, TOFU",
            "predictions: NLL of the correct answer; references: NLLs of the perturbed answers",
            datasets.Value("float64"),
            datasets.Sequence(datasets.Value("float64")),
        )

    def _compute(
        self, predictions: list[float], references: list[list[float]], aggregate: str = "forget"
    ) -> dict[str, object]:
        trs = [M.truth_ratio(c, p) for c, p in zip(predictions, references, strict=True)]
        if aggregate not in ("forget", "retain"):
            raise ValueError(f"aggregate must be 'forget' or 'retain', got {aggregate!r}")
        agg = M.tr_closer_to_1(trs) if aggregate == "forget" else M.tr_true_better(trs)
        return {"truth_ratio": agg, "per_row": trs}
