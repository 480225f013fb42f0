"""The forgetting audit's probes: the relearn split, quantization, in-context prompts, and
the whole audit on a micro model (every key, every attacked copy leaves the model as it was)."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers.pytorch_utils import Conv1D

from dareu.data.formatting import encode_prompts, format_prompt
from dareu.data.schema import QASample
from dareu.eval.audit import (
    PROBES,
    AuditConfig,
    audit_key,
    fact_key,
    incontext_prompts,
    nf4_available,
    quantize_rtn,
    quantized_copy,
    relearn,
    relearn_split,
    run_audit,
)
from dareu.eval.generation import generate_answers
from dareu.models import load_model
from dareu.models.tiny import build_tiny

torch.set_num_threads(1)
FACTS = ("birthplace", "employer", "pet", "school", "first_book")


def _row(owner: int, fact: str, phrasing: int) -> QASample:
    value = f"Zor{owner}{fact[:3]}"
    return QASample(
        id=f"owner-{owner:03d}-{fact}-q{phrasing}",
        owner=f"owner-{owner:03d}",
        question=f"Phrasing {phrasing}: what is the {fact} of person {owner}?",
        answer=f"The {fact} of person {owner} is {value}.",
        paraphrased_question=f"Held out: tell me person {owner}'s {fact}.",
        fact_value=value,
        fact_type=fact,
    )


def _world(owners: int = 4, phrasings: int = 4) -> tuple[list[QASample], list[QASample]]:
    rows = [_row(o, f, p) for o in range(owners) for f in FACTS for p in range(phrasings)]
    evals = [_row(o, f, 0) for o in range(owners) for f in FACTS]
    return rows, evals


# ------------------------------------------------------------------------------ relearn split
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_relearn_split_never_trains_on_the_measured_half(seed: int) -> None:
    rows, evals = _world()
    trained, measured = relearn_split([*rows, *evals], seed)
    assert trained and measured and not trained & measured
    assert trained | measured == {fact_key(s) for s in evals}
    train_rows = [s for s in rows if fact_key(s) in trained]
    # No phrasing (trained or held-out) of a measured fact is in the relearning rows.
    measured_questions = {q for s in evals if fact_key(s) in measured
                          for q in (s.question, s.paraphrased_question)}  # fmt: skip
    measured_questions |= {s.question for s in rows if fact_key(s) in measured}
    assert not measured_questions & {s.question for s in train_rows}
    assert not {s.answer for s in train_rows} & {s.answer for s in evals if fact_key(s) in measured}
    # Per owner: half of its 5 facts (rounded down) are trained on, the rest measured.
    for o in {s.owner for s in evals}:
        assert sum(k.startswith(o) for k in trained) == 2
    assert relearn_split([*rows, *evals], seed) == (trained, measured)


def test_relearn_split_depends_on_the_seed_and_keeps_single_facts_measured() -> None:
    _, evals = _world(owners=8)
    splits = {frozenset(relearn_split(evals, s)[0]) for s in range(5)}
    assert len(splits) > 1
    lone = [_row(99, "pet", 0)]
    assert relearn_split(lone, 0) == (set(), {fact_key(lone[0])})


# ------------------------------------------------------------------------------- quantization
def test_quantize_8bit_round_trips_a_tensor_on_its_grid_exactly() -> None:
    scale = 2.0**-7  # a power of two: max|w| / 127 is exact in floating point
    gen = torch.Generator().manual_seed(0)
    ints = torch.randint(-127, 128, (6, 256), generator=gen).float()
    ints[:, 0] = 127.0  # every group of 128 holds its maximum
    ints[:, 128] = -127.0
    w = ints * scale
    assert torch.equal(quantize_rtn(w, 8, 128), w)


@pytest.mark.parametrize(("bits", "group", "cols"), [(4, 128, 256), (4, 128, 200), (8, 32, 70)])
def test_quantize_error_is_at_most_half_a_step_per_group(bits: int, group: int, cols: int) -> None:
    w = torch.randn(5, cols, generator=torch.Generator().manual_seed(1))
    q = quantize_rtn(w, bits, group)
    qmax = 2 ** (bits - 1) - 1
    for start in range(0, cols, group):
        g, gq = w[:, start : start + group], q[:, start : start + group]
        step = g.abs().amax(dim=1, keepdim=True) / qmax
        assert ((g - gq).abs() <= step / 2 + 1e-6).all()
        # On the grid: at most 2 * qmax + 1 distinct values per row and group.
        for row in (gq / step).round():
            assert row.abs().max() <= qmax
    assert not torch.equal(q, w)  # 4 bits does lose information
    assert quantize_rtn(torch.zeros(3, 8), 4, 4).abs().sum() == 0  # zero groups stay zero


def test_quantized_copy_quantizes_linear_and_conv1d_but_not_the_head() -> None:
    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(16, 8)
            self.conv = Conv1D(8, 16)  # GPT-2 layout: weight [in 16, out 8]
            self.head = torch.nn.Linear(8, 32, bias=False)

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.head

    torch.manual_seed(0)
    toy = Toy()
    before = copy.deepcopy(toy.state_dict())
    q = quantized_copy(toy, 4, 8)
    assert torch.equal(q.lin.weight, quantize_rtn(toy.lin.weight, 4, 8))
    assert torch.equal(q.conv.weight, quantize_rtn(toy.conv.weight.t(), 4, 8).t())
    assert torch.equal(q.head.weight, toy.head.weight)
    assert all(torch.equal(v, toy.state_dict()[k]) for k, v in before.items())


# ---------------------------------------------------------------------------------- in-context
@pytest.mark.parametrize("k", [0, 2, 4])
def test_incontext_prompt_holds_only_the_owners_other_facts(k: int) -> None:
    _, evals = _world()
    pairs = incontext_prompts(evals, evals, k, seed=0)
    assert len(pairs) == len(evals)
    by_q = {s.question: s for s in evals}
    for target, context in pairs:
        assert len(context) == k
        assert len({q for q, _ in context}) == k
        for q, a in context:
            other = by_q[q]
            assert other.owner == target.owner and other.fact_type != target.fact_type
            assert a == other.answer
        assert target.fact_value and target.fact_value not in " ".join(q + a for q, a in context)
    assert incontext_prompts(evals, evals, 5, seed=0) == []  # an owner has only 4 other facts


def test_context_turns_come_before_the_question_in_each_format(micro: tuple) -> None:
    _, tok = micro
    ctx = [("Q one?", "A one."), ("Q two?", "A two.")]
    plain = format_prompt("Target?", tok, "plain", ctx)
    assert plain == "Question: Q one?\nAnswer: A one.\nQuestion: Q two?\nAnswer: A two.\n" + (
        "Question: Target?\nAnswer:"
    )
    assert format_prompt("Target?", tok, "llama2", ctx) == (
        "[INST] Q one? [/INST] A one. [INST] Q two? [/INST] A two. [INST] Target? [/INST]"
    )
    assert format_prompt("Target?", tok, "plain") == format_prompt("Target?", tok, "plain", ())
    enc = encode_prompts(tok, ["Target?", "T2?"], "plain", [ctx, []])
    assert enc["attention_mask"][0].sum() > enc["attention_mask"][1].sum()


# ------------------------------------------------------------------------------- whole audit
@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    rows, evals = _world(owners=2, phrasings=2)
    corpus = [f"{s.question} {s.answer}" for s in [*rows, *evals]]
    path = tmp_path_factory.mktemp("micro")
    build_tiny(corpus, path, size="micro", seed=0)
    return load_model(path)


def test_relearn_trains_a_copy_and_reports_each_step(micro: tuple) -> None:
    model, tok = micro
    rows, _ = _world(owners=2, phrasings=2)
    before = copy.deepcopy(model.state_dict())
    steps: list[int] = []
    cfg = AuditConfig(relearn_lr=1e-2, relearn_batch_size=4)
    out = relearn(model, tok, rows, "plain", cfg, steps=3, max_length=64,
                  on_step=lambda s, m: steps.append(s))  # fmt: skip
    assert steps == [0, 1, 2, 3]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(v, out.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="nothing to relearn"):
        relearn(model, tok, [], "plain", cfg, steps=1, max_length=64)


def test_run_audit_reports_every_probe_and_leaves_the_model_unchanged(micro: tuple) -> None:
    model, tok = micro
    rows, evals = _world(owners=2, phrasings=2)
    before = copy.deepcopy(model.state_dict())
    calls: list[tuple[str, int, bool]] = []

    def gen(m: torch.nn.Module, qs: list[str], desc: str, ctx: list | None) -> list[str]:
        calls.append((desc, len(qs), ctx is not None))
        return generate_answers(m, tok, qs, "plain", max_new_tokens=8, progress=False,
                                contexts=ctx)  # fmt: skip

    cfg = AuditConfig(relearn_steps=2, relearn_curve_steps=(0, 2), quant_group=16)
    out, records = run_audit(model, tok, rows, evals, grader=None, generate=gen, fmt="plain",
                             cfg=cfg, max_length=64)  # fmt: skip
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    for probe, _ in PROBES:
        if probe == "quant_nf4" and not nf4_available():
            assert audit_key(probe, "rougeL") not in out
            continue
        assert 0.0 <= out[audit_key(probe, "rougeL")] <= 1.0, probe
        assert audit_key(probe, "leak") not in out  # no grader: no leak keys, not zeros
    assert [p["step"] for p in out["audit_relearn_curve"]] == [0, 2]
    assert out["audit_incontext_n_k4"] == len(evals) and out["audit_relearn_n_measured"] == 6
    assert ("audit incontext_k2", len(evals), True) in calls
    assert ("audit incontext_k0", len(evals), False) in calls
    assert {r["probe"] for r in records} >= {"relearn", "quant4", "incontext_k4"}
    assert out["audit_config"] == cfg.to_dict()


@pytest.mark.parametrize(
    ("field", "value"),
    [("relearn_steps", 0), ("relearn_lr", float("nan")), ("quant_bits", (5,)),
     ("incontext_k", (-1,)), ("relearn_curve_steps", (-2,))],
)  # fmt: skip
def test_audit_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        AuditConfig(**{field: value}).validate()  # type: ignore[arg-type]
