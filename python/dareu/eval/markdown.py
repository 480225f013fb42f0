"""`results.md`: one evaluation summary as markdown (headline, splits, grades, audit, MIA,
probes, timing and config)."""

from __future__ import annotations

import json
from typing import Any

from dareu.eval.audit import PROBES, audit_key
from dareu.eval.grading import CLASSES as GRADE_CLASSES
from dareu.eval.grading import SPLITS as GRADE_SPLITS
from dareu.eval.results import fmt_value, json_safe

MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


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
        json.dumps(json_safe(g("config", {})), indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)
