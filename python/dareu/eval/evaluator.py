"""`evaluate_model`: one model, one benchmark -> every metric, per sample and summarised.

Read top to bottom: generate + score each QA split (forget, retain, test sets), then the
forget-only probes (paraphrased questions, knowledge leaks, gibberish), then membership
inference on forget vs holdout, then the metrics that need the retain model's evaluation
(forget quality, privleak, ToW) and the model-utility harmonic mean.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedModel

from dareu.cache import DONE_MARKER, atomic_dir, atomic_write_text, content_hash
from dareu.data.schema import Benchmark, QASample
from dareu.eval import gibberish as gib
from dareu.eval import metrics as M
from dareu.eval.audit import PROBES, AuditConfig, audit_key
from dareu.eval.generation import generate_answers
from dareu.eval.grading import CLASSES as GRADE_CLASSES
from dareu.eval.grading import SPLITS as GRADE_SPLITS
from dareu.eval.grading import Grader, grader_for, shares
from dareu.eval.leak import leak_flags, leak_rate, mentions
from dareu.eval.rouge import rouge_recall
from dareu.eval.scoring import AnswerScorer, AnswerStats

# Bump when the evaluation of a given model and benchmark changes (cached evaluations of
# the original and retain models are keyed by it). 2: the forgetting audit.
EVAL_VERSION = 2
SUMMARY_FILE = "summary.json"
PER_SAMPLE_FILE = "per_sample.json"
MARKDOWN_FILE = "results.md"
MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")
RESERVED_SPLITS = {"forget", "retain", "holdout", "mia_forget", "test"}


class EvalInputError(ValueError):
    """A bad argument or file given to the evaluation (names it and what is wrong)."""


@dataclass
class EvalResult:
    """Summary (flat dict with stable keys, see docs/evaluation.md) and per-sample records."""

    summary: dict[str, Any]
    per_sample: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def markdown(self) -> str:
        return summary_markdown(self.summary)

    def forget_truth_ratios(self) -> list[float]:
        return [
            r["truth_ratio"]
            for r in self.per_sample.get("forget", [])
            if r.get("truth_ratio") is not None
        ]

    def save(self, out: str | Path) -> Path:
        """Write summary.json, per_sample.json and results.md atomically into `out`."""
        out = Path(out)
        if out.exists() and (not out.is_dir() or _is_foreign_dir(out)):
            raise EvalInputError(
                f"--out {out}: exists and is not an evaluation folder; refusing to overwrite it"
            )
        # atomic_dir keeps an existing complete folder (first writer wins, for caches); a
        # re-evaluation must replace it, so build beside it and swap with two renames.
        staging = out.parent / f".{out.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with atomic_dir(staging) as tmp:
            (tmp / SUMMARY_FILE).write_text(_dumps(self.summary))
            (tmp / PER_SAMPLE_FILE).write_text(_dumps(self.per_sample))
            (tmp / MARKDOWN_FILE).write_text(self.markdown())
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
        return out

    @classmethod
    def load(cls, path: str | Path, *, what: str = "evaluation") -> EvalResult:
        """Read a saved evaluation: its folder, its summary.json or its per_sample.json."""
        p = Path(path)
        folder = p if p.is_dir() else p.parent
        summary_path, per_sample_path = folder / SUMMARY_FILE, folder / PER_SAMPLE_FILE
        if not p.exists():
            raise EvalInputError(f"{what} {p}: no such file or folder")
        if not summary_path.is_file():
            raise EvalInputError(f"{what} {p}: no {SUMMARY_FILE} in {folder}")
        try:
            summary = json.loads(summary_path.read_text())
            per_sample = (
                json.loads(per_sample_path.read_text()) if per_sample_path.is_file() else {}
            )
        except json.JSONDecodeError as err:
            raise EvalInputError(f"{what} {p}: not valid JSON ({err})") from err
        if not isinstance(summary, dict) or "eval_set" not in summary:
            raise EvalInputError(f"{what} {summary_path}: not a DareU evaluation summary")
        return cls(summary=summary, per_sample=per_sample)


def _is_foreign_dir(path: Path) -> bool:
    """A non-empty folder that no evaluation wrote: never rmtree it."""
    entries = {e.name for e in path.iterdir()}
    return bool(entries) and not ({SUMMARY_FILE, DONE_MARKER} & entries)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n"


def subsample(samples: Sequence[QASample], n: int | None) -> list[QASample]:
    """At most `n` samples spread evenly over the split (so every owner keeps some)."""
    if n is None or len(samples) <= n:
        return list(samples)
    idx = np.unique(np.linspace(0, len(samples) - 1, n).round().astype(int))
    return [samples[i] for i in idx]


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(np.mean(vals)) if vals else None


def mia_scores(stats: AnswerStats, k: float) -> dict[str, float]:
    """The four MIA scores of one sample (higher = looks less like training data)."""
    body = stats.body()
    return {
        "loss": stats.avg_nll,
        "zlib": M.zlib_score(stats.avg_nll, stats.text),
        "min_k": M.min_k_score(body.logprobs, k),
        "min_k_plus_plus": M.min_k_plus_plus_score(body.logprobs, body.mu, body.var, k),
    }


def memorisation_scores(stats: AnswerStats) -> dict[str, float]:
    body = stats.body()
    return {
        "extraction_strength": M.extraction_strength(body.preds.tolist(), body.labels.tolist()),
        "exact_memorization": M.exact_memorization(body.preds.tolist(), body.labels.tolist()),
    }


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
    if max_new_tokens < 1 or batch_size < 1:
        raise EvalInputError("max_new_tokens and batch_size must be >= 1")
    if max_samples is not None and max_samples < 1:
        raise EvalInputError(f"max_samples must be >= 1, got {max_samples}")
    if not 0 < mia_k <= 1:
        raise EvalInputError(f"mia_k must be in (0, 1], got {mia_k}")
    gcfg = gibberish_config or gib.GibberishConfig()
    t_start = time.perf_counter()

    # ---- which samples
    forget = subsample(benchmark.forget_eval or benchmark.forget, max_samples)
    retain = subsample(benchmark.retain_eval or benchmark.retain, max_samples)
    tests = {
        (f"test_{n}" if n in RESERVED_SPLITS else n): subsample(v, max_samples)
        for n, v in benchmark.test_sets.items()
        if v
    }
    mia_forget = subsample(benchmark.forget, max_samples)
    holdout = subsample(benchmark.holdout, max_samples)
    if not forget:
        raise EvalInputError(f"benchmark {benchmark.name!r} has no forget samples")
    splits = {"forget": forget, "retain": retain, **tests, "holdout": holdout}
    fingerprint = eval_set_fingerprint(benchmark, splits)

    ref: EvalResult | None = None
    if retain_eval is not None:
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

    # ---- model passes, timed
    timing = {"generate_s": 0.0, "score_s": 0.0, "n_generated": 0, "n_scored_pairs": 0}
    scorer = AnswerScorer(
        model, tokenizer, fmt, batch_size=batch_size, max_length=max_length, progress=progress
    )

    def generate_with(m: Any, questions: list[str], desc: str, contexts: Any = None) -> list[str]:
        t = time.perf_counter()
        out = generate_answers(
            m,
            tokenizer,
            questions,
            fmt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=progress,
            desc=desc,
            contexts=contexts,
        )
        timing["generate_s"] += time.perf_counter() - t
        timing["n_generated"] += len(questions)
        return out

    def generate(questions: list[str], desc: str) -> list[str]:
        return generate_with(model, questions, desc)

    def score(pairs: list[tuple[str, str]], desc: str) -> list[AnswerStats]:
        t = time.perf_counter()
        out = scorer(pairs, desc=desc)
        timing["score_s"] += time.perf_counter() - t
        timing["n_scored_pairs"] += len(pairs)
        return out

    summary: dict[str, Any] = {}
    per_sample: dict[str, list[dict[str, Any]]] = {}

    # ---- QA splits: ROUGE, probability, truth ratio
    split_plan: list[tuple[str, list[QASample], bool]] = [
        ("forget", forget, True),
        ("retain", retain, True),
        *[(n, v, False) for n, v in tests.items()],
    ]
    for name, samples, correct_is_paraphrase in split_plan:
        if not samples:
            continue
        records, agg = _eval_qa_split(
            name, samples, correct_is_paraphrase, generate, score, mia_k=mia_k
        )
        per_sample[name] = records
        summary.update(agg)
    summary["splits"] = list(per_sample)
    test_rouge = [r["rougeL"] for n in tests for r in per_sample[n]]
    summary["test_rougeL"] = _mean(test_rouge)

    # ---- forget probes: paraphrased questions, knowledge leaks, gibberish
    fr = per_sample["forget"]
    has_pq = [i for i, s in enumerate(forget) if s.paraphrased_question]
    if has_pq:
        pq = [forget[i].paraphrased_question or "" for i in has_pq]
        gens_pq = generate(pq, "generate forget (paraphrased q)")
        rouge_pq = rouge_recall([forget[i].answer for i in has_pq], gens_pq)
        for j, i in enumerate(has_pq):
            fr[i]["paraphrased_question"] = pq[j]
            fr[i]["generation_paraphrased_q"] = gens_pq[j]
            fr[i]["rougeL_paraphrased_q"] = rouge_pq["rougeL"][j]
            fr[i]["rouge1_paraphrased_q"] = rouge_pq["rouge1"][j]
    summary["forget_rougeL_paraphrased_q"] = _mean(rouge_pq["rougeL"]) if has_pq else None
    summary["forget_rouge1_paraphrased_q"] = _mean(rouge_pq["rouge1"]) if has_pq else None

    if any(s.fact_value or s.owner_name for s in forget):
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
            summary[f"leak_{key}_rate"] = leak_rate([r["leak"][key] for r in fr])
            summary[f"leak_{key}_rate_paraphrased_q"] = leak_rate(
                [r["leak_paraphrased_q"][key] for r in fr if "leak_paraphrased_q" in r]
            )
        # Control: the same probe on retain answers shows what "knows the fact" looks like.
        summary["retain_fact_recall"] = leak_rate(
            [
                mentions(r["generation"], s.fact_value)
                for r, s in zip(per_sample.get("retain", []), retain, strict=True)
            ]
        )

    grader = grader_for(benchmark.world, benchmark.idk_answers)
    if grader is not None:
        summary.update(_grade_probe(per_sample, {"forget": forget, "retain": retain}, grader,
                                    generate))  # fmt: skip

    if audit is not None:
        from dareu.eval.audit import run_audit

        t_audit = time.perf_counter()
        keys, per_sample["audit"] = run_audit(
            model, tokenizer, benchmark.forget, forget, grader=grader, generate=generate_with,
            fmt=fmt, cfg=audit, max_length=max_length,
        )  # fmt: skip
        summary.update(keys)
        summary["audit_seconds"] = time.perf_counter() - t_audit

    gens = [r["generation"] for r in fr]
    ppls: list[float | None] | None = None
    ppl_max: float | None = None
    if reference_model is not None:
        ref_scorer = AnswerScorer(
            reference_model,
            reference_tokenizer or tokenizer,
            fmt,
            batch_size=batch_size,
            max_length=max_length,
            progress=progress,
        )
        nonempty = [i for i, g in enumerate(gens) if g.strip()]
        st = ref_scorer([(forget[i].question, gens[i]) for i in nonempty], desc="reference ppl")
        ppls = [None] * len(gens)
        for i, s_ in zip(nonempty, st, strict=True):
            ppls[i] = _ppl(s_)
        # Fluent text the reference was not trained to say: IdK answers, perturbed answers.
        idk = benchmark.idk_answers
        base_pairs = [(s.question, idk[i % len(idk)]) for i, s in enumerate(forget)] if idk else []
        base_pairs += [(s.question, s.perturbed_answers[0]) for s in forget if s.perturbed_answers]
        base = [_ppl(s_) for s_ in ref_scorer(base_pairs, desc="reference ppl baseline")]
        ppl_max = gib.perplexity_threshold(base, gcfg)
        summary["gibberish_perplexity_threshold"] = ppl_max
    flags = gib.rule_flags(gens, gib.corpus_vocabulary(benchmark), ppls, gcfg, ppl_max)
    detector = "rules"
    if gibberish_model is not None:
        clf = gib.classifier_flags(
            gibberish_model,
            gens,
            clean_label=gibberish_clean_label,
            batch_size=batch_size,
            progress=progress,
        )
        for f, c in zip(flags, clf, strict=True):
            f.update({"classifier_label": c["label"], "gibberish_model": c["gibberish_model"]})
            f["gibberish"] = c["gibberish_model"]
        detector = f"classifier:{gibberish_model}"
    for r, f in zip(fr, flags, strict=True):
        r["gibberish"] = f
    g_rates = gib.rates(flags)
    summary["gibberish_rate"] = g_rates.get("gibberish")
    summary["gibberish_detector"] = detector
    for key in ("repetition", "unfinished", "too_short", "oov", "high_perplexity",
                "gibberish_model"):  # fmt: skip
        if key in g_rates:
            summary[f"gibberish_{key}_rate"] = g_rates[key]
    if "oov" in g_rates:
        summary["gibberish_rules_rate"] = _mean(
            [
                float(
                    f["repetition"]
                    or f["unfinished"]
                    or f["too_short"]
                    or f["oov"]
                    or f.get("high_perplexity", False)
                )
                for f in flags
            ]
        )

    # ---- membership inference (forget vs holdout) and memorisation
    if mia_forget:
        f_stats = score([(s.question, s.answer) for s in mia_forget], "score mia forget")
        f_mia = [mia_scores(st, mia_k) for st in f_stats]
        f_mem = [memorisation_scores(st) for st in f_stats]
        summary["extraction_strength"] = _mean([m["extraction_strength"] for m in f_mem])
        summary["exact_memorization"] = _mean([m["exact_memorization"] for m in f_mem])
        same = [(s.question, s.answer) for s in mia_forget] == [
            (s.question, s.answer) for s in forget
        ]
        if not same:
            per_sample["mia_forget"] = [
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
    if mia_forget and holdout:
        h_stats = score([(s.question, s.answer) for s in holdout], "score holdout")
        h_mia = [mia_scores(st, mia_k) for st in h_stats]
        per_sample["holdout"] = [
            {
                "id": s.id,
                "owner": s.owner,
                "question": s.question,
                "ground_truth": s.answer,
                "mia": m,
            }
            for s, m in zip(holdout, h_mia, strict=True)
        ]
        for a in MIA_ATTACKS:
            auc = M.mia_auc([m[a] for m in f_mia], [m[a] for m in h_mia])
            summary[f"mia_{a}_auc"] = auc
        for a in MIA_ATTACKS:
            ref_auc = ref.summary.get(f"mia_{a}_auc") if ref is not None else None
            summary[f"privleak_{a}"] = M.privleak(
                summary[f"mia_{a}_auc"], ref_auc if ref_auc is not None else 0.5
            )
        summary["privleak"] = summary["privleak_min_k"]
        summary["privleak_reference"] = "retain_eval" if ref is not None else "default_auc_0.5"
    else:
        for a in MIA_ATTACKS:
            summary[f"mia_{a}_auc"] = None
        summary["privleak"] = None

    # ---- model utility: harmonic mean of retain + every test set's (prob, ROUGE, TR)
    components = ["retain_prob", "retain_rougeL", "retain_truth_ratio"]
    for n in tests:
        components += [f"{n}_prob_norm", f"{n}_rougeL", f"{n}_truth_ratio"]
    values = [summary.get(c) for c in components]
    summary["model_utility"] = (
        M.harmonic_mean([float(v) for v in values if v is not None])
        if all(v is not None for v in values)
        else None
    )
    summary["model_utility_components"] = components

    # ---- metrics against the retain model
    summary["forget_quality"] = None
    summary["tow"] = None
    if ref is not None:
        mine, theirs = _forget_trs(per_sample["forget"]), ref.forget_truth_ratios()
        if mine and theirs:
            summary["forget_quality"] = M.forget_quality(mine, theirs)
        tow_splits = [
            s for s in ("forget", "retain", "test") if summary.get(f"{s}_rougeL") is not None
        ]
        if all(ref.summary.get(f"{s}_rougeL") is not None for s in tow_splits):
            summary["tow"] = M.tow(
                {s: summary[f"{s}_rougeL"] for s in tow_splits},
                {s: ref.summary[f"{s}_rougeL"] for s in tow_splits},
            )
        summary["tow_splits"] = tow_splits
        summary["retain_eval"] = (
            str(retain_eval) if not isinstance(retain_eval, EvalResult) else None
        )

    # ---- bookkeeping: sizes, timing, config
    seconds = time.perf_counter() - t_start
    n_samples = sum(len(v) for v in splits.values())
    summary["timing"] = {
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
    summary["eval_set"] = fingerprint
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
    run = dict(run_config) if run_config else {"model": _model_name(model)}
    summary["config"] = {"eval": eval_cfg, "run": run}
    summary["seed"] = run.get("seed")
    summary["config_key"] = content_hash(eval_cfg, {k: v for k, v in run.items() if k != "seed"})
    return EvalResult(summary=_order(summary), per_sample=per_sample)


def _grade_probe(
    per_sample: dict[str, list[dict[str, Any]]],
    splits: Mapping[str, Sequence[QASample]],
    grader: Grader,
    generate: Callable[[list[str], str], list[str]],
) -> dict[str, float]:
    """Exact grades of the greedy answers, in trained and held-out phrasings
    (`{split}_grade_{class}`, split in dareu.eval.grading.SPLITS)."""
    out: dict[str, float] = {}
    for name, samples in splits.items():
        records = per_sample.get(name, [])
        if not records or not all(s.fact_type and s.paraphrased_question for s in samples):
            continue
        if any("generation_paraphrased_q" not in r for r in records):
            gens = generate([s.paraphrased_question or "" for s in samples],
                            f"generate {name} (held-out q)")  # fmt: skip
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


def fmt_value(v: Any) -> str:
    """Numbers for tables: 4 decimals, small ones in 4 significant digits, None as a dash."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt_value(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def summary_markdown(summary: dict[str, Any]) -> str:
    """Headline metrics, a per-split table, MIA, probes, then timing and config."""
    g = summary.get
    lines = ["## Evaluation", ""]
    head = ["forget_quality", "model_utility", "tow", "privleak", "extraction_strength",
            "exact_memorization", "gibberish_rate"]  # fmt: skip
    lines += _table(["metric", "value"], [[k, g(k)] for k in head])
    cols = ["rougeL", "rouge1", "prob", "prob_norm", "truth_ratio"]
    rows = [[s, *[g(f"{s}_{c}") for c in cols], g(f"n_{s}")] for s in g("splits", [])]
    rows.append(["test (all)", g("test_rougeL"), None, None, None, None, None])
    lines += [
        "### Splits",
        "",
        "truth_ratio: forget = mean min(tr, 1/tr); others = mean max(0, 1 - tr).",
        "",
    ]
    lines += _table(["split", *cols, "n"], rows)
    graded = [sp for sp in GRADE_SPLITS if g(f"{sp}_grade_leak") is not None]
    if graded:
        lines += ["### Exact grades (share of answers; knowledge world)", ""]
        lines += _table(
            ["split", *GRADE_CLASSES], [[sp, *[g(f"{sp}_grade_{c}") for c in GRADE_CLASSES]]
                                        for sp in graded]
        )  # fmt: skip
    if g("audit_config") is not None:
        lines += ["### Forgetting audit (forget facts; dareu.eval.audit)", ""]
        lines += _table(
            ["probe", "leak", "ROUGE-L"],
            [[label, g(audit_key(p, "leak")), g(audit_key(p, "rougeL"))] for p, label in PROBES],
        )
    lines += ["### Membership inference (forget vs holdout)", ""]
    lines += _table(
        ["attack", "AUC", "privleak"],
        [[a, g(f"mia_{a}_auc"), g(f"privleak_{a}")] for a in MIA_ATTACKS],
    )
    probes = [
        k
        for k in summary
        if (
            k.startswith(("leak_", "gibberish_", "forget_rouge"))
            and k.endswith(("_rate", "_q", "_recall"))
        )
        or k == "retain_fact_recall"
    ]
    if probes:
        lines += ["### Forget probes", ""]
        lines += _table(["probe", "value"], [[k, g(k)] for k in probes])
    t = g("timing", {})
    lines += [
        f"config_key `{g('config_key')}`, seed {g('seed')}, gibberish detector "
        f"`{g('gibberish_detector')}`, privleak reference `{g('privleak_reference')}`.",
        f"{t.get('n_samples')} samples in {fmt_value(t.get('seconds'))} s "
        f"({fmt_value(t.get('samples_per_s'))} samples/s; generation "
        f"{fmt_value(t.get('generate_seconds'))} s, "
        f"scoring {fmt_value(t.get('score_seconds'))} s).",
        "",
        "```json",
        json.dumps(_clean(g("config", {})), indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write with NaN mapped to null."""
    atomic_write_text(path, _dumps(obj))
