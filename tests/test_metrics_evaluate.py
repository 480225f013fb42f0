"""The `evaluate` metric modules load offline from the package and give the evaluator's own
numbers (dareu.eval.metrics / dareu.eval.rouge)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub: everything loads from the package
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
evaluate = pytest.importorskip("evaluate")

import dareu.metrics as dm  # noqa: E402
from dareu.eval import metrics as M  # noqa: E402
from dareu.eval.rouge import rouge_recall  # noqa: E402


def load(name: str):  # type: ignore[no-untyped-def]
    return evaluate.load(dm.path(name))


def test_every_named_module_loads_offline() -> None:
    for name in dm.NAMES:
        assert load(name) is not None
    with pytest.raises(ValueError, match="unknown metric"):
        dm.path("bleu")


def test_rouge_recall_matches_tofu_rouge() -> None:
    preds = ["The cat sat on the mat.", "Paris is in France", ""]
    refs = ["A cat sat on a mat.", "Paris is the capital of France.", "Nothing."]
    got = load("rouge_recall").compute(predictions=preds, references=refs)
    want = rouge_recall(refs, preds)
    assert got["rougeL"] == pytest.approx(float(np.mean(want["rougeL"])))
    assert got["rouge1"] == pytest.approx(float(np.mean(want["rouge1"])))


def test_truth_ratio_and_forget_quality_match_the_native_functions() -> None:
    rng = np.random.default_rng(0)
    correct = rng.uniform(0.5, 3.0, 12).tolist()
    perturbed = rng.uniform(0.5, 3.0, (12, 5)).tolist()
    trs = [M.truth_ratio(c, p) for c, p in zip(correct, perturbed, strict=True)]
    tr = load("truth_ratio")
    got = tr.compute(predictions=correct, references=perturbed)
    assert got["truth_ratio"] == pytest.approx(M.tr_closer_to_1(trs))
    assert got["per_row"] == pytest.approx(trs)
    retain = tr.compute(predictions=correct, references=perturbed, aggregate="retain")
    assert retain["truth_ratio"] == pytest.approx(M.tr_true_better(trs))
    other = rng.uniform(0.0, 1.0, 12).tolist()
    fq = load("forget_quality").compute(predictions=trs, references=other)
    assert fq["forget_quality"] == pytest.approx(M.forget_quality(trs, other))


def test_tow_and_mia_auc_match_the_native_functions() -> None:
    got = load("tow").compute(predictions=[0.3, 0.8, 0.7], references=[0.4, 0.75, 0.7])
    want = M.tow({"f": 0.3, "r": 0.8, "t": 0.7}, {"f": 0.4, "r": 0.75, "t": 0.7})
    assert got["tow"] == pytest.approx(want)
    scores, labels = [0.1, 0.4, 0.35, 0.8, 0.9, 0.2], [0, 0, 0, 1, 1, 1]
    auc = load("mia_auc").compute(predictions=scores, references=labels)
    assert auc["mia_auc"] == pytest.approx(M.mia_auc([0.1, 0.4, 0.35], [0.8, 0.9, 0.2]))
    with pytest.raises(ValueError, match="references"):
        load("mia_auc").compute(predictions=[0.1], references=[2])
