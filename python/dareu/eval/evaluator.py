"""`evaluate_model`: one model, one benchmark -> every metric, per sample and summarised.

One function per probe, called in this order by `evaluate_model` over one `_Eval` state:
the QA splits (generate + score: ROUGE, probability, truth ratio), the forget-only probes
(paraphrased questions, knowledge leaks, exact grades, the forgetting audit, gibberish),
membership inference on forget vs holdout, model utility, and the metrics that need the
retain model's evaluation (forget quality, privleak, ToW). Saving and markdown live in
`results.py` and `markdown.py`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedModel

from dareu.cache import content_hash
from dareu.data.formatting import TEXT
from dareu.data.schema import Benchmark, QASample
from dareu.eval import gibberish as gib
from dareu.eval import metrics as M
from dareu.eval.audit import AuditConfig
from dareu.eval.completion import completion_sets, evaluate_completions
from dareu.eval.generation import generate_answers
from dareu.eval.grading import Grader, grader_for, shares
from dareu.eval.leak import leak_flags, leak_rate, mentions
from dareu.eval.markdown import MIA_ATTACKS, summary_markdown
from dareu.eval.results import (
    PER_SAMPLE_FILE,
    EvalInputError,
    EvalResult,
    fmt_value,
)
from dareu.eval.rouge import rouge_recall
from dareu.eval.scoring import AnswerScorer, AnswerStats, memorisation_scores, mia_scores

__all__ = [
    "EVAL_VERSION",
    "EvalInputError",
    "EvalResult",
    "evaluate_model",
    "fmt_value",
    "summary_markdown",
]

# Bump when the evaluation of a given model and benchmark changes (cached evaluations of
# the original and retain models are keyed by it). 2: the forgetting audit.
EVAL_VERSION = 3  # 3: completion metrics (dareu.eval.completion)
RESERVED_SPLITS = {"forget", "retain", "holdout", "mia_forget", "test"}


def subsample(samples: Sequence[QASample], n: int | None) -> list[QASample]:
    """At most `n` samples spread evenly over the split (so every owner keeps some)."""
    if n is None or len(samples) <= n:
        return list(samples)
    idx = np.unique(np.linspace(0, len(samples) - 1, n).round().astype(int))
    return [samples[i] for i in idx]


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.mean(vals)) if vals else None


def eval_set_fingerprint(
    benchmark: Benchmark, splits: Mapping[str, Sequence[QASample]]
) -> dict[str, Any]:
    """What a retain-model evaluation must share with this one to be comparable."""
    return {
        "benchmark": benchmark.name,
        "forget_owners": sorted(benchmark.forget_owners),
        "ids": content_hash({k: [s.id for s in v] for k, v in splits.items()}),
        "sizes": {k: len(v) for k, v in splits.items()},
    }


def check_retain_eval(ref: EvalResult, fingerprint: dict[str, Any], source: str) -> None:
    theirs = ref.summary.get("eval_set", {})
    for key in ("benchmark", "forget_owners", "ids"):
        if theirs.get(key) != fingerprint[key]:
            raise EvalInputError(
                f"--retain-eval {source}: evaluated on a different {key} "
                f"({theirs.get(key)!r} vs {fingerprint[key]!r}); evaluate the retain model on "
                "the same benchmark, forget split and --max-samples"
            )


@dataclass
class _Eval:
    """What every probe reads and writes: the model, the samples, the growing summary."""

    model: Any
    tokenizer: Any
    benchmark: Benchmark
    fmt: Any
    forget: list[QASample]
    retain: list[QASample]
    tests: dict[str, list[QASample]]
    mia_forget: list[QASample]
    holdout: list[QASample]
    max_new_tokens: int
    batch_size: int
    max_length: int
    mia_k: float
    progress: bool
    scorer: AnswerScorer
    summary: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timing: dict[str, float] = field(
        default_factory=lambda: {
            "generate_s": 0.0,
            "score_s": 0.0,
            "n_generated": 0,
            "n_scored_pairs": 0,
        }
    )

    def generate_with(
        self, model: Any, questions: list[str], desc: str, contexts: Any = None
    ) -> list[str]:
        t = time.perf_counter()
        out = generate_answers(
            model,
            self.tokenizer,
            questions,
            self.fmt,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            progress=self.progress,
            desc=desc,
            contexts=contexts,
        )
        self.timing["generate_s"] += time.perf_counter() - t
        self.timing["n_generated"] += len(questions)
        return out

    def generate(self, questions: list[str], desc: str) -> list[str]:
        return self.generate_with(self.model, questions, desc)

    def score(self, pairs: list[tuple[str, str]], desc: str) -> list[AnswerStats]:
        t = time.perf_counter()
        out = self.scorer(pairs, desc=desc)
        self.timing["score_s"] += time.perf_counter() - t
        self.timing["n_scored_pairs"] += len(pairs)
        return out


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: Any,
    benchmark: Benchmark,
    *,
    fmt: str,
    retain_eval: EvalResult | str | Path | None = None,
    reference_model: PreTrainedModel | None = None,
    reference_tokenizer: Any | None = None,
    gibberish_model: str | Path | None = None,
    gibberish_clean_label: str = "clean",
    gibberish_config: gib.GibberishConfig | None = None,
    max_new_tokens: int = 200,
    batch_size: int = 32,
    max_length: int = 512,
    max_samples: int | None = None,
    mia_k: float = 0.4,
    run_config: dict[str, Any] | None = None,
    progress: bool = True,
    audit: AuditConfig | None = None,
) -> EvalResult:
    """Evaluate `model` on `benchmark`; see docs/evaluation.md for every key.

    retain_eval: the retain model's saved evaluation (or its EvalResult); enables forget
      quality, privleak against the retain AUC, and ToW.
    reference_model: the original model, for the perplexity rule of the gibberish detector.
    gibberish_model: a local HF text-classification folder that replaces the rule detector.
    run_config: the configuration of the run that produced `model` (method, seed, ...);
      runs whose run_config differs only in "seed" share a `config_key`.
    audit: run the forgetting audit (relearn, quantize, in-context; dareu.eval.audit).
    """
    from dareu.data.formatting import check_format

    fmt = check_format(fmt)
    _check_arguments(max_new_tokens, batch_size, max_samples, mia_k)
    t_start = time.perf_counter()
    ev = _select(
        model,
        tokenizer,
        benchmark,
        fmt,
        max_samples,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        max_length=max_length,
        mia_k=mia_k,
        progress=progress,
    )
    completions = completion_sets(benchmark, lambda rows: subsample(rows, max_samples))
    splits = {"forget": ev.forget, "retain": ev.retain, **ev.tests, "holdout": ev.holdout,
              **{f"completion_{k}": v for k, v in completions.items() if v}}  # fmt: skip
    fingerprint = eval_set_fingerprint(benchmark, splits)
    ref = _load_retain_eval(retain_eval, fingerprint, ev.forget)
    grader = grader_for(benchmark.world, benchmark.idk_answers)
    detector = None
    if ev.forget:  # the QA probes; a benchmark of documents only has none
        _qa_splits(ev)
        _paraphrase_probe(ev)
        _leak_probe(ev)
        if grader is not None:
            ev.summary.update(_grade_probe(ev, grader))
        if audit is not None:
            _audit_probe(ev, grader, audit)
        detector = _gibberish_probe(
            ev,
            reference_model,
            reference_tokenizer,
            gibberish_model,
            gibberish_clean_label,
            gibberish_config or gib.GibberishConfig(),
        )
        _mia_probe(ev, ref)
        _model_utility(ev)
        _against_retain(ev, ref, retain_eval)
    _completion_probe(ev, completions, grader)

    eval_cfg = {
        "benchmark": benchmark.name,
        "forget_owners": sorted(benchmark.forget_owners),
        "fmt": fmt,
        "max_new_tokens": max_new_tokens,
        "max_samples": max_samples,
        "mia_k": mia_k,
        "gibberish_detector": detector,
        **({"audit": audit.to_dict()} if audit is not None else {}),
    }
    _bookkeeping(ev, splits, fingerprint, eval_cfg, run_config, time.perf_counter() - t_start)
    return EvalResult(summary=_order(ev.summary), per_sample=ev.per_sample)


def _check_arguments(
    max_new_tokens: int, batch_size: int, max_samples: int | None, mia_k: float
) -> None:
    if max_new_tokens < 1 or batch_size < 1:
        raise EvalInputError("max_new_tokens and batch_size must be >= 1")
    if max_samples is not None and max_samples < 1:
        raise EvalInputError(f"max_samples must be >= 1, got {max_samples}")
    if not 0 < mia_k <= 1:
        raise EvalInputError(f"mia_k must be in (0, 1], got {mia_k}")


def _select(
    model: Any,
    tokenizer: Any,
    benchmark: Benchmark,
    fmt: Any,
    max_samples: int | None,
    **settings: Any,
) -> _Eval:
    """Which samples each probe sees (at most `max_samples` per split, spread evenly)."""
    forget = subsample(benchmark.forget_eval or benchmark.forget, max_samples)
    if not forget and not benchmark.forget_completion:
        raise EvalInputError(f"benchmark {benchmark.name!r} has no forget samples")
    tests = {
        (f"test_{n}" if n in RESERVED_SPLITS else n): subsample(v, max_samples)
        for n, v in benchmark.test_sets.items()
        if v
    }
    scorer = AnswerScorer(
        model,
        tokenizer,
        fmt,
        batch_size=settings["batch_size"],
        max_length=settings["max_length"],
        progress=settings["progress"],
    )
    return _Eval(
        model=model,
        tokenizer=tokenizer,
        benchmark=benchmark,
        fmt=fmt,
        forget=forget,
        retain=subsample(benchmark.retain_eval or benchmark.retain, max_samples),
        tests=tests,
        mia_forget=subsample(benchmark.forget, max_samples),
        holdout=subsample(benchmark.holdout, max_samples),
        scorer=scorer,
        **settings,
    )


def _load_retain_eval(
    retain_eval: EvalResult | str | Path | None,
    fingerprint: dict[str, Any],
    forget: list[QASample],
) -> EvalResult | None:
    """The retain model's evaluation, checked to be on the same samples."""
    if retain_eval is None:
        return None
    source = "EvalResult" if isinstance(retain_eval, EvalResult) else str(retain_eval)
    ref = (
        retain_eval
        if isinstance(retain_eval, EvalResult)
        else EvalResult.load(retain_eval, what="--retain-eval")
    )
    check_retain_eval(ref, fingerprint, source)
    if not ref.forget_truth_ratios() and any(s.perturbed_answers for s in forget):
        raise EvalInputError(
            f"--retain-eval {source}: no per-sample forget truth ratios "
            f"({PER_SAMPLE_FILE} missing or empty), so forget quality cannot be computed"
        )
    return ref


def _qa_splits(ev: _Eval) -> None:
    """ROUGE, probability and truth ratio on forget, retain and every test set."""
    split_plan: list[tuple[str, list[QASample], bool]] = [
        ("forget", ev.forget, True),
        ("retain", ev.retain, True),
        *[(n, v, False) for n, v in ev.tests.items()],
    ]
    for name, samples, correct_is_paraphrase in split_plan:
        if not samples:
            continue
        records, agg = _eval_qa_split(
            name, samples, correct_is_paraphrase, ev.generate, ev.score, mia_k=ev.mia_k
        )
        ev.per_sample[name] = records
        ev.summary.update(agg)
    ev.summary["splits"] = list(ev.per_sample)
    test_rouge = [r["rougeL"] for n in ev.tests for r in ev.per_sample[n]]
    ev.summary["test_rougeL"] = _mean(test_rouge)


def _paraphrase_probe(ev: _Eval) -> None:
    """The forget questions asked in their paraphrased (held-out) wording."""
    forget, fr = ev.forget, ev.per_sample["forget"]
    has_pq = [i for i, s in enumerate(forget) if s.paraphrased_question]
    if not has_pq:
        ev.summary["forget_rougeL_paraphrased_q"] = None
        ev.summary["forget_rouge1_paraphrased_q"] = None
        return
    pq = [forget[i].paraphrased_question or "" for i in has_pq]
    gens_pq = ev.generate(pq, "generate forget (paraphrased q)")
    rouge_pq = rouge_recall([forget[i].answer for i in has_pq], gens_pq)
    for j, i in enumerate(has_pq):
        fr[i]["paraphrased_question"] = pq[j]
        fr[i]["generation_paraphrased_q"] = gens_pq[j]
        fr[i]["rougeL_paraphrased_q"] = rouge_pq["rougeL"][j]
        fr[i]["rouge1_paraphrased_q"] = rouge_pq["rouge1"][j]
    ev.summary["forget_rougeL_paraphrased_q"] = _mean(rouge_pq["rougeL"])
    ev.summary["forget_rouge1_paraphrased_q"] = _mean(rouge_pq["rouge1"])


def _leak_probe(ev: _Eval) -> None:
    """Does a forget answer state the fact value or name the owner (string match)?"""
    forget, fr = ev.forget, ev.per_sample["forget"]
    if not any(s.fact_value or s.owner_name for s in forget):
        return
    for r, s in zip(fr, forget, strict=True):
        r["leak"] = leak_flags(r["generation"], s.fact_value, s.owner_name, s.question)
        if "generation_paraphrased_q" in r:
            r["leak_paraphrased_q"] = leak_flags(
                r["generation_paraphrased_q"],
                s.fact_value,
                s.owner_name,
                r["paraphrased_question"],
            )
    for key in ("fact", "name", "name_unprompted"):
        ev.summary[f"leak_{key}_rate"] = leak_rate([r["leak"][key] for r in fr])
        ev.summary[f"leak_{key}_rate_paraphrased_q"] = leak_rate(
            [r["leak_paraphrased_q"][key] for r in fr if "leak_paraphrased_q" in r]
        )
    # Control: the same probe on retain answers shows what "knows the fact" looks like.
    ev.summary["retain_fact_recall"] = leak_rate(
        [
            mentions(r["generation"], s.fact_value)
            for r, s in zip(ev.per_sample.get("retain", []), ev.retain, strict=True)
        ]
    )


def _grade_probe(ev: _Eval, grader: Grader) -> dict[str, float]:
    """Exact grades of the greedy answers, in trained and held-out phrasings
    (`{split}_grade_{class}`, split in dareu.eval.grading.SPLITS)."""
    out: dict[str, float] = {}
    for name, samples in {"forget": ev.forget, "retain": ev.retain}.items():
        records = ev.per_sample.get(name, [])
        if not records or not all(s.fact_type and s.paraphrased_question for s in samples):
            continue
        if any("generation_paraphrased_q" not in r for r in records):
            gens = ev.generate(
                [s.paraphrased_question or "" for s in samples], f"generate {name} (held-out q)"
            )
            for r, s, g in zip(records, samples, gens, strict=True):
                r["paraphrased_question"], r["generation_paraphrased_q"] = s.paraphrased_question, g
        for suffix, key in (("", "generation"), ("_heldout", "generation_paraphrased_q")):
            classes = []
            for r, s in zip(records, samples, strict=True):
                r[f"grade{suffix}"] = grader.grade(r[key], s.owner, s.fact_type or "").cls
                r[f"well_formed{suffix}"] = grader.well_formed(r[key])
                classes.append(r[f"grade{suffix}"])
            out.update({f"{name}{suffix}_grade_{c}": v for c, v in shares(classes).items()})
    return out


def _audit_probe(ev: _Eval, grader: Grader | None, cfg: AuditConfig) -> None:
    """The forgetting audit on copies of the model (dareu.eval.audit)."""
    from dareu.eval.audit import run_audit

    t = time.perf_counter()
    keys, ev.per_sample["audit"] = run_audit(
        ev.model,
        ev.tokenizer,
        ev.benchmark.forget,
        ev.forget,
        grader=grader,
        generate=ev.generate_with,
        fmt=ev.fmt,
        cfg=cfg,
        max_length=ev.max_length,
    )
    ev.summary.update(keys)
    ev.summary["audit_seconds"] = time.perf_counter() - t


def _completion_probe(ev: _Eval, sets: dict[str, list[QASample]], grader: Grader | None) -> None:
    """Continuations of the forget and retain documents (`dareu.eval.completion`)."""
    if not any(sets.values()):
        return

    def generate(prompts: list[str], desc: str, budget: int) -> list[str]:
        t = time.perf_counter()
        out = generate_answers(ev.model, ev.tokenizer, prompts, TEXT, max_new_tokens=budget,
                               batch_size=ev.batch_size, progress=ev.progress, desc=desc,
                               strip=False)  # fmt: skip
        ev.timing["generate_s"] += time.perf_counter() - t
        ev.timing["n_generated"] += len(prompts)
        return out

    keys, records = evaluate_completions(
        ev.model, ev.tokenizer, ev.benchmark, sets, generate, grader=grader,
        batch_size=ev.batch_size, max_length=ev.max_length, mia_k=ev.mia_k, progress=ev.progress,
    )  # fmt: skip
    ev.summary.update(keys)
    ev.per_sample.update(records)


def _reference_perplexity(
    ev: _Eval, reference_model: Any, reference_tokenizer: Any, gcfg: gib.GibberishConfig
) -> tuple[list[float | None], float]:
    """Perplexity of each forget answer under the reference, and the threshold above which
    it counts as gibberish (from fluent text the reference was not trained to say)."""
    forget, gens = ev.forget, [r["generation"] for r in ev.per_sample["forget"]]
    ref_scorer = AnswerScorer(
        reference_model,
        reference_tokenizer or ev.tokenizer,
        ev.fmt,
        batch_size=ev.batch_size,
        max_length=ev.max_length,
        progress=ev.progress,
    )
    nonempty = [i for i, g in enumerate(gens) if g.strip()]
    st = ref_scorer([(forget[i].question, gens[i]) for i in nonempty], desc="reference ppl")
    ppls: list[float | None] = [None] * len(gens)
    for i, s_ in zip(nonempty, st, strict=True):
        ppls[i] = _ppl(s_)
    # Fluent text the reference was not trained to say: IdK answers, perturbed answers.
    idk = ev.benchmark.idk_answers
    base_pairs = [(s.question, idk[i % len(idk)]) for i, s in enumerate(forget)] if idk else []
    base_pairs += [(s.question, s.perturbed_answers[0]) for s in forget if s.perturbed_answers]
    base = [_ppl(s_) for s_ in ref_scorer(base_pairs, desc="reference ppl baseline")]
    return ppls, gib.perplexity_threshold(base, gcfg)


def _gibberish_probe(
    ev: _Eval,
    reference_model: Any,
    reference_tokenizer: Any,
    gibberish_model: str | Path | None,
    clean_label: str,
    gcfg: gib.GibberishConfig,
) -> str:
    """Flag malformed forget answers (rules, or a local classifier); returns the detector."""
    fr = ev.per_sample["forget"]
    gens = [r["generation"] for r in fr]
    ppls: list[float | None] | None = None
    ppl_max: float | None = None
    if reference_model is not None:
        ppls, ppl_max = _reference_perplexity(ev, reference_model, reference_tokenizer, gcfg)
        ev.summary["gibberish_perplexity_threshold"] = ppl_max
    flags = gib.rule_flags(gens, gib.corpus_vocabulary(ev.benchmark), ppls, gcfg, ppl_max)
    detector = "rules"
    if gibberish_model is not None:
        clf = gib.classifier_flags(
            gibberish_model,
            gens,
            clean_label=clean_label,
            batch_size=ev.batch_size,
            progress=ev.progress,
        )
        for f, c in zip(flags, clf, strict=True):
            f.update({"classifier_label": c["label"], "gibberish_model": c["gibberish_model"]})
            f["gibberish"] = c["gibberish_model"]
        detector = f"classifier:{gibberish_model}"
    for r, f in zip(fr, flags, strict=True):
        r["gibberish"] = f
    g_rates = gib.rates(flags)
    ev.summary["gibberish_rate"] = g_rates.get("gibberish")
    ev.summary["gibberish_detector"] = detector
    for key in (
        "repetition",
        "unfinished",
        "too_short",
        "oov",
        "high_perplexity",
        "gibberish_model",
    ):
        if key in g_rates:
            ev.summary[f"gibberish_{key}_rate"] = g_rates[key]
    if "oov" in g_rates:
        rule_keys = ("repetition", "unfinished", "too_short", "oov")
        ev.summary["gibberish_rules_rate"] = _mean(
            [float(any(f[k] for k in rule_keys) or f.get("high_perplexity", False)) for f in flags]
        )
    return detector


def _mia_probe(ev: _Eval, ref: EvalResult | None) -> None:
    """Membership inference (forget vs holdout answers), privleak and memorisation."""
    mia_forget, holdout, summary = ev.mia_forget, ev.holdout, ev.summary
    if mia_forget:
        f_stats = ev.score([(s.question, s.answer) for s in mia_forget], "score mia forget")
        f_mia = [mia_scores(st, ev.mia_k) for st in f_stats]
        f_mem = [memorisation_scores(st) for st in f_stats]
        summary["extraction_strength"] = _mean([m["extraction_strength"] for m in f_mem])
        summary["exact_memorization"] = _mean([m["exact_memorization"] for m in f_mem])
        if [(s.question, s.answer) for s in mia_forget] != [
            (s.question, s.answer) for s in ev.forget
        ]:
            ev.per_sample["mia_forget"] = [
                {
                    "id": s.id,
                    "owner": s.owner,
                    "question": s.question,
                    "ground_truth": s.answer,
                    "mia": m,
                    **mem,
                }
                for s, m, mem in zip(mia_forget, f_mia, f_mem, strict=True)
            ]
    if not (mia_forget and holdout):
        for a in MIA_ATTACKS:
            summary[f"mia_{a}_auc"] = None
        summary["privleak"] = None
        return
    h_stats = ev.score([(s.question, s.answer) for s in holdout], "score holdout")
    h_mia = [mia_scores(st, ev.mia_k) for st in h_stats]
    ev.per_sample["holdout"] = [
        {"id": s.id, "owner": s.owner, "question": s.question, "ground_truth": s.answer, "mia": m}
        for s, m in zip(holdout, h_mia, strict=True)
    ]
    for a in MIA_ATTACKS:
        summary[f"mia_{a}_auc"] = M.mia_auc([m[a] for m in f_mia], [m[a] for m in h_mia])
    for a in MIA_ATTACKS:
        ref_auc = ref.summary.get(f"mia_{a}_auc") if ref is not None else None
        summary[f"privleak_{a}"] = M.privleak(
            summary[f"mia_{a}_auc"], ref_auc if ref_auc is not None else 0.5
        )
    summary["privleak"] = summary["privleak_min_k"]
    summary["privleak_reference"] = "retain_eval" if ref is not None else "default_auc_0.5"


def _model_utility(ev: _Eval) -> None:
    """Harmonic mean of retain and every test set's (probability, ROUGE, truth ratio)."""
    components = ["retain_prob", "retain_rougeL", "retain_truth_ratio"]
    for n in ev.tests:
        components += [f"{n}_prob_norm", f"{n}_rougeL", f"{n}_truth_ratio"]
    values = [ev.summary.get(c) for c in components]
    ev.summary["model_utility"] = (
        M.harmonic_mean([float(v) for v in values if v is not None])
        if all(v is not None for v in values)
        else None
    )
    ev.summary["model_utility_components"] = components


def _against_retain(
    ev: _Eval, ref: EvalResult | None, retain_eval: EvalResult | str | Path | None
) -> None:
    """Forget quality (KS test of truth ratios) and ToW, against the retain model."""
    summary = ev.summary
    summary["forget_quality"] = None
    summary["tow"] = None
    if ref is None:
        return
    mine, theirs = _forget_trs(ev.per_sample["forget"]), ref.forget_truth_ratios()
    if mine and theirs:
        summary["forget_quality"] = M.forget_quality(mine, theirs)
    tow_splits = [s for s in ("forget", "retain", "test") if summary.get(f"{s}_rougeL") is not None]
    if all(ref.summary.get(f"{s}_rougeL") is not None for s in tow_splits):
        summary["tow"] = M.tow(
            {s: summary[f"{s}_rougeL"] for s in tow_splits},
            {s: ref.summary[f"{s}_rougeL"] for s in tow_splits},
        )
    summary["tow_splits"] = tow_splits
    summary["retain_eval"] = str(retain_eval) if not isinstance(retain_eval, EvalResult) else None


def _bookkeeping(
    ev: _Eval,
    splits: Mapping[str, Sequence[QASample]],
    fingerprint: dict[str, Any],
    eval_cfg: dict[str, Any],
    run_config: dict[str, Any] | None,
    seconds: float,
) -> None:
    """Sizes, timing and the configuration (with the key that groups seeds of one run)."""
    timing = ev.timing
    n_samples = sum(len(v) for v in splits.values())
    ev.summary["timing"] = {
        "seconds": seconds,
        "generate_seconds": timing["generate_s"],
        "score_seconds": timing["score_s"],
        "n_samples": n_samples,
        "n_generated": timing["n_generated"],
        "samples_per_s": n_samples / seconds if seconds > 0 else None,
        "generated_per_s": timing["n_generated"] / timing["generate_s"]
        if timing["generate_s"] > 0
        else None,
    }
    ev.summary["eval_set"] = fingerprint
    run = dict(run_config) if run_config else {"model": _model_name(ev.model)}
    ev.summary["config"] = {"eval": eval_cfg, "run": run}
    ev.summary["seed"] = run.get("seed")
    ev.summary["config_key"] = content_hash(eval_cfg, {k: v for k, v in run.items() if k != "seed"})


def _ppl(stats: AnswerStats) -> float:
    return float(math.exp(min(stats.avg_nll, 700.0)))


def _forget_trs(records: list[dict[str, Any]]) -> list[float]:
    return [r["truth_ratio"] for r in records if r.get("truth_ratio") is not None]


def _model_name(model: Any) -> str | None:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "_name_or_path", None) or getattr(model, "name_or_path", None)


def _eval_qa_split(
    name: str,
    samples: list[QASample],
    correct_is_paraphrase: bool,
    generate: Callable[[list[str], str], list[str]],
    score: Callable[[list[tuple[str, str]], str], list[AnswerStats]],
    *,
    mia_k: float,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Generation + ROUGE, P(answer), truth ratio (and normalised P for test sets).

    Truth ratio's "correct" answer is the paraphrase on forget/retain (TOFU), the answer
    itself on test sets; samples without perturbed answers get no truth ratio.
    """
    gens = generate([s.question for s in samples], f"generate {name}")
    rouge = rouge_recall([s.answer for s in samples], gens)
    ans = score([(s.question, s.answer) for s in samples], f"score {name}")
    if correct_is_paraphrase:
        correct = score(
            [(s.question, s.paraphrased_answer or s.answer) for s in samples], f"score {name} para"
        )
    else:
        correct = ans
    pert_pairs = [(s.question, p) for s in samples for p in s.perturbed_answers]
    pert_flat = score(pert_pairs, f"score {name} perturbed")
    records: list[dict[str, Any]] = []
    offset = 0
    for i, s in enumerate(samples):
        pert = pert_flat[offset : offset + len(s.perturbed_answers)]
        offset += len(s.perturbed_answers)
        prob = M.prob_from_nll(ans[i].avg_nll)
        rec: dict[str, Any] = {
            "id": s.id,
            "owner": s.owner,
            "question": s.question,
            "ground_truth": s.answer,
            "generation": gens[i],
            "rougeL": rouge["rougeL"][i],
            "rouge1": rouge["rouge1"][i],
            "prob": prob,
            "truth_ratio": M.truth_ratio(correct[i].avg_nll, [p.avg_nll for p in pert])
            if pert
            else None,
        }
        if not correct_is_paraphrase and pert:
            rec["prob_norm"] = M.normalised_prob(prob, [M.prob_from_nll(p.avg_nll) for p in pert])
        if name == "forget":
            rec["mia"] = mia_scores(ans[i], mia_k)
            rec.update(memorisation_scores(ans[i]))
        records.append(rec)
    trs = [r["truth_ratio"] for r in records if r["truth_ratio"] is not None]
    tr_agg = M.tr_closer_to_1 if name == "forget" else M.tr_true_better
    agg: dict[str, Any] = {
        f"{name}_rougeL": _mean(rouge["rougeL"]),
        f"{name}_rouge1": _mean(rouge["rouge1"]),
        f"{name}_prob": _mean([r["prob"] for r in records]),
        f"{name}_truth_ratio": tr_agg(trs) if trs else None,
        f"n_{name}": len(samples),
    }
    if not correct_is_paraphrase:
        agg[f"{name}_prob_norm"] = _mean([r.get("prob_norm") for r in records])
    return records, agg


# Headline keys first, in this order; everything else follows in insertion order.
HEADLINE = (
    "forget_quality",
    "model_utility",
    "tow",
    "forget_rougeL",
    "forget_rougeL_paraphrased_q",
    "forget_prob",
    "forget_truth_ratio",
    "retain_rougeL",
    "retain_prob",
    "retain_truth_ratio",
    "test_rougeL",
    "mia_loss_auc",
    "mia_zlib_auc",
    "mia_min_k_auc",
    "mia_min_k_plus_plus_auc",
    "privleak",
    "extraction_strength",
    "exact_memorization",
    "gibberish_rate",
    "forget_grade_leak",
    "forget_heldout_grade_leak",
    "retain_grade_leak",
    "retain_heldout_grade_leak",
    "leak_fact_rate",
    "leak_name_rate",
    "leak_fact_rate_paraphrased_q",
    "leak_name_rate_paraphrased_q",
)


def _order(summary: dict[str, Any]) -> dict[str, Any]:
    head = {k: summary[k] for k in HEADLINE if k in summary}
    return {**head, **{k: v for k, v in summary.items() if k not in head}}
