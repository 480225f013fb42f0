"""The field's unlearning metrics as Hugging Face `evaluate` modules, loaded offline from the
installed package (no hub): `evaluate.load(dareu.metrics.path("tow"))`.

Each module is a thin wrapper over the function the evaluator itself uses
(`dareu.eval.metrics`, `dareu.eval.rouge`), so a number computed either way is the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NAMES = ("rouge_recall", "truth_ratio", "forget_quality", "tow", "mia_auc")
_HERE = Path(__file__).resolve().parent


def metric_info(
    description: str | None, citation: str, inputs: str, predictions: Any, references: Any
) -> Any:
    """The `evaluate.MetricInfo` every module returns: one `predictions` and one
    `references` feature per row (`datasets` feature types)."""
    import importlib

    import datasets

    # By name: mypy would resolve `evaluate` to scripts/evaluate.py.
    evaluate: Any = importlib.import_module("evaluate")
    return evaluate.MetricInfo(
        description=description or "",
        citation=citation,
        inputs_description=inputs,
        features=datasets.Features({"predictions": predictions, "references": references}),
    )


def path(name: str) -> str:
    """The folder `evaluate.load` reads for metric `name`."""
    if name not in NAMES:
        raise ValueError(f"unknown metric {name!r}; one of {', '.join(NAMES)}")
    return str(_HERE / name)


__all__ = ["NAMES", "metric_info", "path"]
