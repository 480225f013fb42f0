"""Evaluation on the real TOFU files (subsampled) and the direction checks on trained models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from dareu.data import generate_synthetic, load_benchmark
from dareu.eval.evaluator import EvalResult, evaluate_model
from dareu.models import load_model
from dareu.models.tiny import benchmark_corpus, build_tiny

torch.set_num_threads(1)

TOFU = Path(
    os.environ.get("DAREU_TOFU_DIR", Path(__file__).resolve().parents[2] / "shared/data/tofu")
)


def _rows(name: str) -> list[dict]:
    text = (TOFU / name).read_text()
    if text.lstrip().startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.skipif(not TOFU.is_dir(), reason=f"TOFU data not found at {TOFU}")
def test_tofu_forget10_subsampled(tmp_path: Path) -> None:
    bench = load_benchmark(TOFU, forget="forget10")
    # A tokenizer fitted on part of the text is enough: byte-level BPE covers any string.
    build_tiny(benchmark_corpus(bench)[:3000], tmp_path / "m", size="micro")
    model, tok = load_model(tmp_path / "m")
    res = evaluate_model(
        model, tok, bench, fmt="llama2", max_new_tokens=6, max_samples=5, batch_size=8,
        progress=False,
    )  # fmt: skip
    s, ps = res.summary, res.per_sample
    assert s["splits"] == ["forget", "retain", "real_authors", "world_facts"]
    assert [s[f"n_{k}"] for k in s["splits"]] == [5, 5, 5, 5]
    assert len(ps["holdout"]) == 5
    # The ground truths are the TOFU files' answers: forget10_perturbed, holdout10, ...
    forget_answers = {r["answer"] for r in _rows("forget10_perturbed.json")}
    assert all(r["ground_truth"] in forget_answers for r in ps["forget"])
    holdout_answers = {r["answer"] for r in _rows("holdout10.json")}
    assert all(r["ground_truth"] in holdout_answers for r in ps["holdout"])
    ra_answers = {r["answer"] for r in _rows("real_authors_perturbed.json")}
    assert all(r["ground_truth"] in ra_answers for r in ps["real_authors"])
    # Nine utility components (retain, real authors, world facts x prob/ROUGE/TR).
    assert len(s["model_utility_components"]) == 9
    assert s["model_utility"] is not None
    keys = ["forget_truth_ratio", "retain_truth_ratio", "real_authors_prob_norm",
            "world_facts_truth_ratio", "mia_min_k_auc", "forget_rougeL_paraphrased_q"]  # fmt: skip
    for k in keys:
        assert s[k] is not None and 0.0 <= s[k] <= 1.0, k
    # TOFU has 5 perturbed answers for forget/retain and 3 for real authors / world facts.
    assert all(r["truth_ratio"] is not None for r in ps["forget"] + ps["world_facts"])
    assert "leak_fact_rate" not in s  # TOFU has no fact values
    out = res.save(tmp_path / "eval")
    assert EvalResult.load(out).summary["eval_set"] == s["eval_set"]


@pytest.mark.slow
def test_direction_model_that_saw_forget_set_scores_higher(tmp_path: Path) -> None:
    """Original (trained on forget) vs retain (never saw it): forget ROUGE, MIA AUC, leaks."""
    from dareu.train.finetune import FinetuneConfig, finetune

    data = generate_synthetic(
        tmp_path / "data", owners=8, facts=4, forget_owners=2, holdout_owners=2, general=8
    )
    bench = load_benchmark(data)
    cfg = FinetuneConfig(tiny_size="tiny", batch_size=16, epochs=14, pretrain_people=500)
    kw = {"root": tmp_path / "runs", "progress": False}
    original = finetune(bench, "original", cfg, **kw)  # type: ignore[arg-type]
    retain = finetune(bench, "retain", cfg, **kw)  # type: ignore[arg-type]
    ev = {"fmt": "plain", "max_new_tokens": 32, "batch_size": 16, "progress": False}
    rm, rt = load_model(retain)
    ref = evaluate_model(rm, rt, bench, **ev)  # type: ignore[arg-type]
    om, ot = load_model(original)
    res = evaluate_model(om, ot, bench, retain_eval=ref, **ev)  # type: ignore[arg-type]
    o, r = res.summary, ref.summary
    assert o["forget_rougeL"] > r["forget_rougeL"] + 0.3
    # Both know the retain facts (exactly graded; ROUGE-L of a correct answer in another
    # of the world's answer phrasings is well below 1).
    assert o["retain_grade_leak"] > 0.8 and r["retain_grade_leak"] > 0.8
    assert o["mia_loss_auc"] > r["mia_loss_auc"]
    assert o["mia_min_k_auc"] > r["mia_min_k_auc"]
    assert o["leak_fact_rate"] > r["leak_fact_rate"]
    assert o["forget_grade_leak"] > r["forget_grade_leak"] + 0.3
    assert r["retain_grade_leak"] > r["forget_grade_leak"] + 0.3
    assert o["extraction_strength"] > r["extraction_strength"]
    assert o["tow"] < 1.0 and o["forget_quality"] is not None
