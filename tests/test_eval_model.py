"""Model passes of the evaluation against independent computations with a real (micro) Llama."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import hmean
from sklearn.metrics import roc_auc_score

from dareu.data.formatting import collate_train, encode_prompts, encode_qa
from dareu.data.schema import Benchmark, QASample
from dareu.eval.batching import EvalOOMError, run_batched
from dareu.eval.evaluator import EvalInputError, EvalResult, evaluate_model
from dareu.eval.generation import cut_at_eos, generate_answers
from dareu.eval.scoring import score_answers
from dareu.models import load_model
from dareu.models.tiny import benchmark_corpus, build_tiny

torch.set_num_threads(1)


def _qa(i: int, owner: str, name: str, split: str) -> QASample:
    city = f"Vel{i}ara"
    return QASample(
        id=f"{split}-{i}",
        owner=owner,
        question=f"Where was {name} born, case {i}?",
        answer=f"{name} was born in {city} in {1900 + 7 * i}.",
        paraphrased_answer=f"{city} is the birthplace of {name}.",
        perturbed_answers=(f"{name} was born in Oskar{i}.", f"{name} was born in Lund{i}."),
        paraphrased_question=f"What is the birthplace of {name} ({i})?",
        fact_value=city,
        owner_name=name,
    )


def hand_benchmark() -> Benchmark:
    forget = [_qa(i, "ann", "Ann Holt", "f") for i in range(6)]
    retain = [_qa(i, "bob", "Bob Reyes", "r") for i in range(6)]
    hold = [_qa(i, "cid", "Cid Marr", "h") for i in range(5)]
    general = [
        QASample(id=f"g{i}", owner="general", question=f"What is the capital of Land{i}?",
                 answer=f"Port{i}", perturbed_answers=(f"Hill{i}", f"Bay{i}"))
        for i in range(4)
    ]  # fmt: skip
    return Benchmark(
        name="hand",
        forget=forget,
        retain=retain,
        forget_eval=forget,
        retain_eval=retain,
        holdout=hold,
        test_sets={"general": general},
        owners=["ann", "bob", "cid"],
        forget_owners=["ann"],
        general_train=general,
    )


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    return hand_benchmark()


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory, bench: Benchmark) -> tuple:
    path = tmp_path_factory.mktemp("micro")
    build_tiny(benchmark_corpus(bench), path, size="micro", seed=0)
    model, tok = load_model(path)
    return model, tok


def test_score_answers_matches_hf_loss_and_explicit_softmax(micro: tuple) -> None:
    model, tok = micro
    pairs = [("Where was Ann Holt born?", "In Vel1ara."), ("Who?", "Nobody at all, sadly.")]
    stats = score_answers(model, tok, pairs, "plain", batch_size=2, progress=False)
    for (q, a), st in zip(pairs, stats, strict=True):
        enc = encode_qa(tok, q, a, "plain")
        batch = collate_train([enc], tok.pad_token_id)
        with torch.no_grad():
            out = model(**batch)  # HF loss = mean NLL over the labelled (shifted) tokens
        assert st.avg_nll == pytest.approx(out.loss.item(), rel=1e-5)
        n_labels = sum(y != -100 for y in enc["labels"])
        assert st.n_tokens == n_labels
        # Explicit float64 softmax at the first answer position.
        first = next(i for i, y in enumerate(enc["labels"]) if y != -100)
        logits = out.logits[0, first - 1].double()
        logp = torch.log_softmax(logits, -1)
        p = logp.exp()
        assert st.logprobs[0] == pytest.approx(logp[enc["labels"][first]].item(), abs=1e-5)
        mu = (p * logp).sum().item()
        assert st.mu[0] == pytest.approx(mu, abs=1e-4)
        assert st.var[0] == pytest.approx(((p * logp**2).sum() - mu**2).item(), abs=1e-4)
        assert st.preds[0] == int(logits.argmax())
        assert st.body().n_tokens == n_labels - 1  # EOS position dropped


def test_generate_batched_left_padding_equals_single_and_manual_greedy(micro: tuple) -> None:
    model, tok = micro
    qs = [
        "Where was Ann Holt born, case 1?",
        "Capital?",
        "What is the birthplace of Bob Reyes (3)?",
    ]
    batched = generate_answers(
        model, tok, qs, "plain", max_new_tokens=12, batch_size=3, progress=False
    )
    single = [
        generate_answers(model, tok, [q], "plain", max_new_tokens=12, batch_size=1, progress=False)[
            0
        ]
        for q in qs
    ]
    assert batched == single
    # Manual greedy decoding without KV cache for the shortest prompt.
    ids = encode_prompts(tok, [qs[1]], "plain")["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(12):
            nxt = int(model(input_ids=ids, use_cache=False).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    assert batched[1] == tok.decode(new, skip_special_tokens=True).strip()


def test_cut_at_eos() -> None:
    assert cut_at_eos([5, 6, 2, 7, 2], [2]) == [5, 6]
    assert cut_at_eos([5, 6], [2]) == [5, 6]
    assert cut_at_eos([9, 5], [2, 9]) == []


def test_run_batched_halves_batch_on_oom_and_names_the_knob() -> None:
    seen: list[int] = []

    def fn(batch: list[int]) -> list[int]:
        seen.append(len(batch))
        if len(batch) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        return [x * 10 for x in batch]

    assert run_batched(fn, list(range(7)), 8, progress=False) == [x * 10 for x in range(7)]
    assert seen[:3] == [7, 4, 2]

    def always(batch: list[int]) -> list[int]:
        raise RuntimeError("out of memory")

    with pytest.raises(EvalOOMError, match="--batch-size"):
        run_batched(always, [1, 2], 2, progress=False)
    with pytest.raises(RuntimeError, match="other"):  # non-OOM errors pass through

        def other(batch: list[int]) -> list[int]:
            raise RuntimeError("other failure")

        run_batched(other, [1], 1, progress=False)


@pytest.fixture(scope="module")
def result(micro: tuple, bench: Benchmark) -> EvalResult:
    model, tok = micro
    return evaluate_model(
        model, tok, bench, fmt="plain", max_new_tokens=16, batch_size=4, progress=False,
        reference_model=model, run_config={"method": "none", "seed": 1},
    )  # fmt: skip


def test_summary_aggregates_match_per_sample_records(result: EvalResult, bench: Benchmark) -> None:
    s, ps = result.summary, result.per_sample
    assert s["n_forget"] == 6 and s["n_retain"] == 6 and s["n_general"] == 4
    for split in ("forget", "retain", "general"):
        assert s[f"{split}_rougeL"] == pytest.approx(np.mean([r["rougeL"] for r in ps[split]]))
        assert s[f"{split}_prob"] == pytest.approx(np.mean([r["prob"] for r in ps[split]]))
    tr_f = np.array([r["truth_ratio"] for r in ps["forget"]])
    assert s["forget_truth_ratio"] == pytest.approx(np.mean(np.minimum(tr_f, 1 / tr_f)))
    tr_r = np.array([r["truth_ratio"] for r in ps["retain"]])
    assert s["retain_truth_ratio"] == pytest.approx(np.mean(np.maximum(0, 1 - tr_r)))
    # test_rougeL pools every test-set sample
    assert s["test_rougeL"] == pytest.approx(np.mean([r["rougeL"] for r in ps["general"]]))
    # model utility = harmonic mean of 6 numbers on the synthetic-style benchmark
    comps = [s[c] for c in s["model_utility_components"]]
    assert len(comps) == 6
    assert s["model_utility"] == pytest.approx(hmean(comps))
    # MIA AUC from the per-sample scores, with sklearn
    for attack in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        f = [r["mia"][attack] for r in ps["forget"]]
        h = [r["mia"][attack] for r in ps["holdout"]]
        auc = roc_auc_score([0] * len(f) + [1] * len(h), f + h)
        assert s[f"mia_{attack}_auc"] == pytest.approx(auc)
    assert s["privleak"] == pytest.approx(((1 - s["mia_min_k_auc"]) - 0.5) / 0.5 * 100)
    assert s["privleak_reference"] == "default_auc_0.5"
    assert s["extraction_strength"] == pytest.approx(
        np.mean([r["extraction_strength"] for r in ps["forget"]])
    )
    # without a retain evaluation these are not computed
    assert s["forget_quality"] is None and s["tow"] is None
    assert s["seed"] == 1 and s["timing"]["samples_per_s"] > 0
    # A benchmark without a knowledge world has no grammar to grade: keys absent, not zero.
    assert not [k for k in s if "_grade_" in k]
    assert not any("grade" in r for r in ps["forget"])


def test_per_sample_truth_ratio_and_prob_by_hand(micro: tuple, result: EvalResult) -> None:
    model, tok = micro
    rec = result.per_sample["forget"][2]
    s = hand_benchmark().forget[2]
    nll = lambda a: score_answers(model, tok, [(s.question, a)], "plain", progress=False)[0].avg_nll  # noqa: E731
    p_para = math.exp(-nll(s.paraphrased_answer or ""))
    p_wrong = math.exp(-np.mean([nll(a) for a in s.perturbed_answers]))
    assert rec["truth_ratio"] == pytest.approx(p_wrong / p_para, rel=1e-5)
    assert rec["prob"] == pytest.approx(math.exp(-nll(s.answer)), rel=1e-5)
    g = result.per_sample["general"][1]
    gs = hand_benchmark().test_sets["general"][1]
    gq = lambda a: score_answers(model, tok, [(gs.question, a)], "plain", progress=False)[0].avg_nll  # noqa: E731
    p_true = math.exp(-gq(gs.answer))
    p_pert = [math.exp(-gq(a)) for a in gs.perturbed_answers]
    assert g["prob_norm"] == pytest.approx(p_true / (p_true + sum(p_pert)), rel=1e-5)
    # truth ratio on a test set uses the answer itself as "correct"
    assert g["truth_ratio"] == pytest.approx(
        math.exp(-np.mean([gq(a) for a in gs.perturbed_answers])) / p_true, rel=1e-5
    )


def test_probes_leak_gibberish_and_reference_perplexity(micro: tuple, result: EvalResult) -> None:
    model, tok = micro
    fr = result.per_sample["forget"]
    for r, s in zip(fr, hand_benchmark().forget, strict=True):
        assert r["leak"]["fact"] == (s.fact_value.lower() in r["generation"].lower())  # type: ignore[union-attr]
        assert "generation_paraphrased_q" in r
        g = r["gibberish"]
        assert g["gibberish"] == any(
            g[k] for k in ("repetition", "too_short", "oov", "high_perplexity")
        )
        if r["generation"].strip():
            ppl = math.exp(
                score_answers(model, tok, [(s.question, r["generation"])], "plain", progress=False)[
                    0
                ].avg_nll
            )
            assert g["perplexity"] == pytest.approx(ppl, rel=1e-4)
    threshold = result.summary["gibberish_perplexity_threshold"]
    assert threshold >= 1000.0
    for r in fr:
        ppl = r["gibberish"]["perplexity"]
        assert r["gibberish"]["high_perplexity"] == (ppl is not None and ppl > threshold)
    assert result.summary["gibberish_rate"] == pytest.approx(
        np.mean([r["gibberish"]["gibberish"] for r in fr])
    )
    assert result.summary["leak_fact_rate"] == pytest.approx(
        np.mean([r["leak"]["fact"] for r in fr])
    )


def test_retain_eval_gives_forget_quality_tow_privleak(
    micro: tuple, bench: Benchmark, result: EvalResult, tmp_path: Path
) -> None:
    model, tok = micro
    saved = result.save(tmp_path / "retain")
    again = evaluate_model(
        model, tok, bench, fmt="plain", max_new_tokens=16, batch_size=4, progress=False,
        retain_eval=saved, run_config={"method": "none", "seed": 2},
    )  # fmt: skip
    s = again.summary
    # The same model against itself: identical truth-ratio distributions and ROUGE.
    assert s["forget_quality"] == pytest.approx(1.0)
    assert s["tow"] == pytest.approx(1.0)
    assert s["privleak"] == pytest.approx(0.0, abs=1e-6)
    assert s["privleak_reference"] == "retain_eval"
    assert s["config_key"] == result.summary["config_key"]  # only the seed differs
    # A summary without its per-sample file cannot give forget quality: refused.
    (saved / "per_sample.json").unlink()
    with pytest.raises(EvalInputError, match="per-sample forget truth ratios"):
        evaluate_model(model, tok, bench, fmt="plain", max_new_tokens=4, progress=False,
                       retain_eval=saved)  # fmt: skip
    # A retain evaluation on other samples is refused, naming the argument.
    with pytest.raises(EvalInputError, match="--retain-eval"):
        evaluate_model(model, tok, bench, fmt="plain", max_new_tokens=4, max_samples=3,
                       progress=False, retain_eval=saved)  # fmt: skip


def test_save_load_roundtrip_and_refuses_foreign_folder(result: EvalResult, tmp_path: Path) -> None:
    out = result.save(tmp_path / "ev")
    assert {p.name for p in out.iterdir()} >= {"summary.json", "per_sample.json", "results.md"}
    json.loads((out / "summary.json").read_text())  # strict JSON (no NaN)
    back = EvalResult.load(out / "summary.json")
    assert back.summary["forget_rougeL"] == pytest.approx(result.summary["forget_rougeL"])
    assert back.forget_truth_ratios() == pytest.approx(result.forget_truth_ratios())
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(EvalInputError, match="refusing"):
        result.save(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(EvalInputError, match="no such"):
        EvalResult.load(tmp_path / "missing")


def test_bad_arguments_raise_clear_errors(micro: tuple, bench: Benchmark) -> None:
    model, tok = micro
    with pytest.raises(ValueError, match="prompt format"):
        evaluate_model(model, tok, bench, fmt="alpaca", progress=False)
    with pytest.raises(EvalInputError, match="mia_k"):
        evaluate_model(model, tok, bench, fmt="plain", mia_k=0, progress=False)
    with pytest.raises(EvalInputError, match="max_samples"):
        evaluate_model(model, tok, bench, fmt="plain", max_samples=0, progress=False)
