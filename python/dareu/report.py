"""The run report: a markdown page plus PNG plots (matplotlib, Agg backend).

`write_report(run_dir, summary)` is called by the main job. `python -m dareu.report
RUN_DIR...` puts several runs (e.g. three seeds) in one mean ± sd table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dareu.cache import atomic_write_text
from dareu.eval.audit import PROBES, audit_key, before_probe
from dareu.eval.results import cell

# (summary key, label, higher is "more forgotten" / better?) rows of the results table.
ROWS: tuple[tuple[str, str], ...] = (
    ("forget_attr_score", "forget attribution score DA(owner, answer)"),
    ("forget_rougeL", "forget ROUGE-L recall"),
    ("forget_rougeL_paraphrased_q", "forget ROUGE-L (paraphrased q)"),
    ("retain_rougeL", "retain ROUGE-L recall"),
    ("test_rougeL", "test ROUGE-L recall"),
    ("tow", "ToW"),
    ("forget_quality", "forget quality (KS p)"),
    ("model_utility", "model utility"),
    ("forget_truth_ratio", "forget truth ratio"),
    ("mia_min_k_auc", "MIA min-k AUC"),
    # Exact grades (knowledge world only; rows with no value anywhere are left out).
    ("forget_grade_leak", "forget: states the true fact (exact grade)"),
    ("forget_heldout_grade_leak", "forget, held-out phrasing: states the true fact"),
    ("forget_grade_substitute", "forget: well-formed invented answer"),
    ("forget_grade_refusal", "forget: refusal"),
    ("forget_grade_confusion", "forget: another person's fact"),
    ("forget_grade_off_type", "forget: answers another fact type"),
    ("forget_grade_malformed", "forget: malformed"),
    ("forget_heldout_grade_malformed", "forget, held-out phrasing: malformed"),
    ("retain_grade_leak", "retain: states the true fact"),
    ("retain_heldout_grade_leak", "retain, held-out phrasing: states the true fact"),
    ("leak_fact_rate", "fact-leak share"),
    ("leak_name_rate", "names-owner share"),
    ("gibberish_rate", "gibberish share"),
    ("forget_resp_len", "mean forget answer length (tokens)"),
    ("forget_empty_share", "empty-answer share"),
    ("completion_forget_rougeL", "forget documents: continuation ROUGE-L recall"),
    ("completion_forget_extraction_strength", "forget documents: extraction strength"),
    ("completion_forget_exact_memorization", "forget documents: exact memorisation"),
    ("completion_grade_leak", "forget documents: continuation states a true fact"),
    ("completion_grade_malformed", "forget documents: continuation malformed"),
    ("completion_retain_rougeL", "retain documents: continuation ROUGE-L recall"),
    ("completion_retain_grade_leak", "retain documents: continuation states a true fact"),
    ("completion_mia_min_k_auc", "documents: MIA min-k AUC (forget vs holdout)"),
)
CURVES: tuple[tuple[str, str], ...] = (
    ("attr_score", "attribution score of rollouts"),
    ("reward_mean", "sequence reward (sum of r_t)"),
    ("reward_std", "reward std across rollouts"),
    ("chi_saturation", "share of chi = -1"),
    ("resp_len", "rollout length (tokens)"),
    ("leak_fact", "rollouts containing the fact"),
    ("kl", "KL to original (per sequence)"),
    ("dis_loss", "distillation loss"),
    ("pg_loss", "policy loss"),
    ("vf_loss", "value loss"),
)


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
            return f"{v:.2e}"
        return f"{v:.3f}"
    return str(v)


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_relearn(rows: list[dict[str, Any]], out: Path, name: str = "DareU") -> Path | None:
    """The audit's relearning curve (paper Fig. 7): leak and ROUGE-L on the forget facts
    over fine-tuning steps on all of D_F, for the original, retain and unlearned models."""
    last = rows[-1] if rows else {}
    models = [("original", last.get("original"), "tab:red"),
              ("retain", last.get("retain"), "tab:green"),
              (name, last.get("unlearned"), "tab:blue")]  # fmt: skip
    curves = [(n, s["audit_relearn_curve"], c) for n, s, c in models
              if s and s.get("audit_relearn_curve")]  # fmt: skip
    if not curves:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric, title in ((axes[0], "leak", "forget facts stated (exact grade)"),
                              (axes[1], "rougeL", "forget ROUGE-L recall")):  # fmt: skip
        for label, curve, color in curves:
            pts = [(p["step"], p[metric]) for p in curve if p.get(metric) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=color, label=label)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("relearning steps on all forget QA", fontsize=8)
        _integer_ticks(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def audit_section(row: dict[str, Any], name: str = "DareU") -> list[str]:
    """Each attack's recovered leak: the unlearned model after the attack next to the
    original (ceiling) and the retain model (floor) after the same attack, and its gain
    over the same questions unattacked. Knowledge that is only hidden comes back: a gain
    above the retain model's (which cannot recover what it never saw)."""
    o, r, d = row["original"], row.get("retain") or {}, row["unlearned"]
    if d.get("audit_config") is None:
        return []
    metric = "leak" if d.get("audit_graded") else "rougeL"
    what = "stated (exact grade)" if metric == "leak" else "recalled (ROUGE-L recall)"
    md = ["\n## Forgetting audit: gone, or only hidden?\n",
          f"Share of forget facts {what} after each attack on a copy of the model "
          "(docs/evaluation.md, \"Audit\"). The retain model never saw the forget owners: "
          "its figure is the floor, the original's the ceiling. Gain = after the attack "
          "minus the same questions unattacked.\n",
          f"| attack | original (ceiling) | retain (floor) | {name} | {name} gain | "
          "retain gain |", "|---|---|---|---|---|---|"]  # fmt: skip
    for probe, label in PROBES:
        key, base = audit_key(probe, metric), audit_key(before_probe(probe), metric)
        vals = [o.get(key), r.get(key), d.get(key)]
        if all(v is None for v in vals):
            continue
        gains = (
            [_gain(d, key, base), _gain(r, key, base)] if probe != "incontext_k0" else [None] * 2
        )
        md.append(f"| {label} | " + " | ".join(map(fmt, [*vals, *gains])) + " |")
    md.append(f"\nAudit time for {name}: {fmt(d.get('audit_seconds'))} s.\n")
    return md


def _gain(summary: dict[str, Any], key: str, base: str) -> float | None:
    after, before = summary.get(key), summary.get(base)
    return None if after is None or before is None else after - before


def plot_curves(logs: dict[int, list[dict[str, Any]]], out: Path) -> Path | None:
    """Per-batch training curves (x = rollout batch, rounds concatenated)."""
    if not any(logs.values()):
        return None
    plt = _plt()
    # A curve with no value (e.g. the fact leak on TOFU, which has no fact spans) is hidden.
    keys = [
        (k, t)
        for k, t in CURVES
        if any(rec.get(k) is not None for lg in logs.values() for rec in lg)
    ]
    ncol = 2
    nrow = (len(keys) + 1) // 2
    fig, axes = plt.subplots(nrow, ncol, figsize=(10, 2.4 * nrow), squeeze=False)
    for ax, (key, title) in zip(axes.flat, keys, strict=False):
        offset = 0
        for r, lg in sorted(logs.items()):
            xs = [offset + rec["batch"] for rec in lg if rec.get(key) is not None]
            ys = [rec[key] for rec in lg if rec.get(key) is not None]
            ax.plot(xs, ys, marker="o", ms=3, label=f"round {r}" if len(logs) > 1 else None)
            offset += max((rec["batch"] for rec in lg), default=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("rollout batch", fontsize=8)
        _integer_ticks(ax)
        ax.tick_params(labelsize=7)
        if len(logs) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_tradeoff(rows: list[dict[str, Any]], out: Path, name: str = "DareU") -> Path | None:
    """Forget (ROUGE-L and attribution) vs utility (retain ROUGE-L) for every model."""
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, xkey, xlabel in (
        (axes[0], "forget_rougeL", "forget ROUGE-L recall (lower = forgotten)"),
        (axes[1], "forget_attr_score", "forget attribution score (lower = de-attributed)"),
    ):
        pts: list[tuple[str, dict[str, Any] | None, str]] = [
            ("original", rows[0]["original"], "tab:red"),
            ("retain", rows[0]["retain"], "tab:green"),
        ]
        pts += [
            (f"{name} r{row['round']}" if len(rows) > 1 else name, row["unlearned"], "tab:blue")
            for row in rows
        ]
        for i, (label, s, color) in enumerate(pts):
            if not s or s.get(xkey) is None or s.get("retain_rougeL") is None:
                continue
            ax.scatter(s[xkey], s["retain_rougeL"], color=color, s=50)
            # Stagger labels so that points at the same place stay readable.
            ax.annotate(label, (s[xkey], s["retain_rougeL"]), fontsize=8,
                        xytext=(4, 4 - 11 * i), textcoords="offset points")  # fmt: skip
        # Shares and ROUGE live in [0, 1]: fixed axes, so a 0.015 gap looks like one.
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("retain ROUGE-L recall", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("forget vs utility", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def method_label(method: str) -> str:
    return "DareU" if method.lower() == "dareu" else method


def acceptance_checks(row: dict[str, Any], name: str = "DareU") -> list[str]:
    """The job's own success criteria, stated as measured (never assumed)."""
    o, r, d = row["original"], row.get("retain"), row["unlearned"]
    lines = []

    def moved(key: str) -> str:
        if r is None or None in (o.get(key), r.get(key), d.get(key)):
            return f"- {key}: not measurable (no retain model evaluation)"
        gap = o[key] - r[key]
        frac = (o[key] - d[key]) / gap if gap else float("nan")
        ok = "yes" if frac > 0 else "NO"
        return (
            f"- {key}: original {fmt(o[key])} -> {name} {fmt(d[key])} (retain {fmt(r[key])}); "
            f"moved {fmt(frac)} of the way to the retain model: {ok}"
        )

    lines.append(moved("forget_attr_score"))
    lines.append(moved("forget_rougeL"))
    if o.get("retain_rougeL") and d.get("retain_rougeL") is not None:
        ratio = d["retain_rougeL"] / o["retain_rougeL"]
        lines.append(
            f"- retain ROUGE-L {fmt(d['retain_rougeL'])} = {fmt(ratio)} x original: "
            f"{'yes' if ratio >= 0.9 else 'NO'} (target >= 0.9x)"
        )
    if d.get("tow") is not None and o.get("tow") is not None:
        lines.append(
            f"- ToW {fmt(d['tow'])} vs original {fmt(o['tow'])}: "
            f"{'yes' if d['tow'] > o['tow'] else 'NO'} (target: above the original)"
        )
    return lines


def write_report(run_dir: Path, summary: dict[str, Any]) -> Path:
    """report.md + curves.png + tradeoff.png in `run_dir`."""
    run_dir = Path(run_dir)
    rows = summary.get("rounds", [])
    logs = {
        int(p.parent.name.split("-")[1]): read_log(p)
        for p in sorted(run_dir.glob("round-*/log.jsonl"))
    }
    name = method_label(summary.get("method", "dareu"))
    curves = plot_curves(logs, run_dir / "curves.png")
    tradeoff = plot_tradeoff(rows, run_dir / "tradeoff.png", name)
    md = [f"# {name} run report\n", f"Run folder: `{run_dir}`  "]
    md.append(f"Original model: `{summary.get('original')}`  ")
    md.append(f"Retain model: `{summary.get('retain_model')}`  ")
    md.append(
        f"Processes: {summary.get('processes')}, {name} training {summary.get('train_s')} s, "
        f"whole job {summary.get('wall_s')} s\n"
    )
    data = summary.get("data")
    if data:
        f, r = data["forget"], data["retain"]
        md.append(
            f"Task: {data['task']}; unlearned {f['qa']} QA + {f['completion']} completion "
            f"forget rows, kept {r['qa']} QA + {r['completion']} completion retain rows\n"
        )
    if rows:
        header = ["metric", "original", "retain"] + [
            f"{name} r{row['round']}" if len(rows) > 1 else name for row in rows
        ]
        md.append("## Results (greedy answers)\n")
        md.append("| " + " | ".join(header) + " |")
        md.append("|" + "---|" * len(header))
        last = rows[-1]
        for key, label in ROWS:
            values = [last["original"].get(key), (last.get("retain") or {}).get(key)]
            values += [row["unlearned"].get(key) for row in rows]
            if all(v is None for v in values) and "_grade_" in key:
                continue
            md.append("| " + " | ".join([label, *map(fmt, values)]) + " |")
        if len(rows) > 1:
            md.append(
                "\nOriginal and retain columns are evaluated on the owners forgotten after the "
                "last round; each DareU column on the owners forgotten up to that round.\n"
            )
        md.append("\n## Checks\n")
        md += acceptance_checks(rows[-1], name)
        md += audit_section(rows[-1], name)
        relearn_png = plot_relearn(rows, run_dir / "relearn.png", name)
        if relearn_png:
            md.append(f"![relearning curve]({relearn_png.name})\n")
    else:
        md.append("(evaluation was skipped: --no-evaluate)\n")
    md.append("\n## Training curves\n")
    for r, lg in sorted(logs.items()):
        if not lg:
            continue
        first, last_rec = lg[0], lg[-1]
        md.append(
            f"- round {r}: {len(lg)} batches; attribution {fmt(first.get('attr_score'))} -> "
            f"{fmt(last_rec.get('attr_score'))}, reward {fmt(first.get('reward_mean'))} -> "
            f"{fmt(last_rec.get('reward_mean'))} (std {fmt(first.get('reward_std'))} -> "
            f"{fmt(last_rec.get('reward_std'))}), chi saturation "
            f"{fmt(first.get('chi_saturation'))} -> {fmt(last_rec.get('chi_saturation'))}, "
            f"length {fmt(first.get('resp_len'))} -> {fmt(last_rec.get('resp_len'))}, fact leak "
            f"{fmt(first.get('leak_fact'))} -> {fmt(last_rec.get('leak_fact'))}"
        )
    if curves:
        md.append(f"\n![training curves]({curves.name})\n")
    if tradeoff:
        md.append(f"![forget vs utility]({tradeoff.name})\n")
    md.append("\n## Configuration\n")
    md.append("```json\n" + json.dumps(summary.get("method_config", {}), indent=1) + "\n```\n")
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path


# ----------------------------------------------------------------------------------------
# several runs (seeds) in one table
# ----------------------------------------------------------------------------------------
def aggregate(run_dirs: Sequence[Path]) -> str:
    """Markdown table of original / retain / DareU (last round) as mean ± sd over runs."""
    sums = []
    for d in run_dirs:
        p = Path(d) / "summary.json"
        if not p.is_file():
            raise ValueError(f"{d}: no summary.json (is it a finished unlearn run folder?)")
        s = json.loads(p.read_text())
        if not s.get("rounds"):
            raise ValueError(f"{d}: the run has no evaluation (it ran with --no-evaluate)")
        sums.append(s)
    lasts = [s["rounds"][-1] for s in sums]
    seeds = [s["job"]["seed"] for s in sums]
    names = sorted({method_label(s.get("method", "dareu")) for s in sums})
    if len(names) > 1:
        raise ValueError(f"the runs use different methods ({names}); aggregate one at a time")
    md = [f"{names[0]} over {len(sums)} runs (seeds {seeds}); mean ± sd (ddof=1)\n"]
    setups = {(s["job"].get("model"), s["job"].get("benchmark")) for s in sums}
    if len(setups) > 1:  # averaging different models or data is rarely what was meant
        warning = (
            f"WARNING: these runs use different models or benchmarks: {sorted(map(str, setups))}"
        )
        print(warning, file=sys.stderr)
        md.append(f"**{warning}**\n")
    md.append(f"| metric | original | retain | {names[0]} |")
    md.append("|---|---|---|---|")
    for key, label in ROWS:
        if "_grade_" in key and all(r["original"].get(key) is None for r in lasts):
            continue
        md.append(
            f"| {label} | {cell([r['original'].get(key) for r in lasts])} | "
            f"{cell([(r.get('retain') or {}).get(key) for r in lasts])} | "
            f"{cell([r['unlearned'].get(key) for r in lasts])} |"
        )
    md.append(f"| {names[0]} training (s) | | | {cell([s['train_s'] for s in sums])} |")
    md.append(f"| whole job (s) | | | {cell([s['wall_s'] for s in sums])} |")
    return "\n".join(md) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="mean ± sd table over several DareU run folders")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    args = ap.parse_args(argv)
    try:
        md = aggregate(args.runs)
    except (ValueError, OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(md)
    if args.out is not None:
        atomic_write_text(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
