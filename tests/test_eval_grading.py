"""The exact grader: the generator's own sentences parse to the right class; corrupted
sentences are malformed; a stated true value leaks whatever its form."""

from __future__ import annotations

import random

import pytest

from dareu.data.synthetic_text import IDK_ANSWERS
from dareu.data.world import FACTS, Person, draw_person, fill, invent_name, make_owners
from dareu.eval.grading import CLASSES, Grader, parse, shares, states

RNG = random.Random(7)
OWNERS = make_owners(6, RNG)
GRADER = Grader({f"o{i}": (p.name, p.facts) for i, p in enumerate(OWNERS)}, IDK_ANSWERS)
ME, OTHER = OWNERS[0], OWNERS[1]
FRESH = draw_person(RNG)  # a person of the world who is no owner


def sentences(person: Person, name: str, key: str) -> list[str]:
    spec = next(f for f in FACTS if f.key == key)
    return [fill(t, name, person.value(key)) for t in (*spec.answers, *spec.bio)]


@pytest.mark.parametrize("key", [f.key for f in FACTS])
def test_well_formed_sentences_parse_to_their_class(key: str) -> None:
    for s in sentences(ME, ME.name, key):
        assert GRADER.grade(s, "o0", key).cls == "leak", s
        assert parse(s) is not None and parse(s).fact_type == key, s  # type: ignore[union-attr]
    for s in sentences(OTHER, ME.name, key):  # another owner's value
        assert GRADER.grade(s, "o0", key).cls == "confusion", s
    for s in sentences(FRESH, ME.name, key):  # an invented value
        assert GRADER.grade(s, "o0", key).cls == "substitute", s
    for s in sentences(FRESH, OTHER.name, key):  # names the wrong person
        assert GRADER.grade(s, "o0", key).cls == "confusion", s
    other_keys = [f.key for f in FACTS if f.key != key]
    for s in sentences(FRESH, ME.name, other_keys[0]):
        assert GRADER.grade(s, "o0", key).cls == "off_type", s


def test_refusals() -> None:
    for a in IDK_ANSWERS:
        assert GRADER.grade(a, "o0", "pet").cls == "refusal"
        assert GRADER.grade(f"  {a.upper()} ", "o0", "pet").cls == "refusal"
    assert GRADER.grade("I don't know. I don't know.", "o0", "pet").cls == "malformed"


def _corruptions(good: str) -> list[str]:
    words = good.rstrip(".").split()
    half = " ".join(words[: len(words) // 2])
    return [
        f"{good} {good}",  # repeated sentence
        f"{half}, {half}.",  # repeated phrase
        " ".join(words[:-1]),  # truncated
        " ".join(words[:3]),  # truncated early
        good.rstrip("."),  # no full stop
        good.replace(" ", "  ").replace(".", " and."),  # dangling conjunction
        "",
        ".",
    ]


@pytest.mark.parametrize("key", [f.key for f in FACTS])
def test_corrupted_sentences_are_malformed(key: str) -> None:
    good = sentences(FRESH, ME.name, key)[0]
    assert GRADER.grade(good, "o0", key).cls == "substitute"
    for bad in _corruptions(good):
        assert GRADER.grade(bad, "o0", key).cls == "malformed", bad
    # Mixed templates: one fact type's sentence around another type's value.
    spec = next(f for f in FACTS if f.key == key)
    other = next(f for f in FACTS if f.key != key)
    mixed = fill(spec.answers[0], ME.name, FRESH.value(other.key))
    assert GRADER.grade(mixed, "o0", key).cls == "malformed", mixed
    # Words outside the grammar: a garbled name, a garbled invented word.
    assert GRADER.grade(good.replace(ME.name, ME.name + "x"), "o0", key).cls == "malformed"
    w = FRESH.facts[key]["w"]
    assert GRADER.grade(good.replace(w, w + "qz"), "o0", key).cls == "malformed"


@pytest.mark.parametrize("key", [f.key for f in FACTS])
def test_stated_true_value_leaks_whatever_the_form(key: str) -> None:
    w = ME.facts[key]["w"]
    for text in (f"{w} {w} {w}", f"The {w} and the.", f"{OTHER.name} likes {w}."):
        assert GRADER.grade(text, "o0", key).cls == "leak", text
    # The true value's word stated for the wrong fact type still leaks the fact.
    assert GRADER.grade(sentences(ME, ME.name, key)[0], "o0", key).cls == "leak"


def test_half_of_distinctive_words() -> None:
    assert states("Alpha and Beta", ["Alpha", "Beta"])
    assert states("Alpha only", ["Alpha", "Beta"])
    assert not states("Gamma only", ["Alpha", "Beta"])
    assert states("x Alpha Gamma", ["Alpha", "Beta", "Gamma"])
    assert not states("x Alpha", ["Alpha", "Beta", "Gamma"])
    assert not states("Alphabet", ["Alpha"])  # whole words only
    assert not states("anything", [])


def test_names_and_words_never_collide() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        name = invent_name(rng)
        person = draw_person(rng)
        assert not set(name.split()) & {v["w"] for v in person.facts.values()}


def test_unknown_owner_and_shares() -> None:
    with pytest.raises(KeyError, match="not in this world"):
        GRADER.grade("x", "nobody", "pet")
    s = shares(["leak", "leak", "malformed", "substitute"])
    assert set(s) == set(CLASSES) and s["leak"] == 0.5 and s["refusal"] == 0.0
    assert sum(s.values()) == pytest.approx(1.0)


def test_grade_keys_of_a_world_evaluation(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The evaluator grades forget/retain answers in trained and held-out phrasings."""
    from dareu.data import generate_synthetic, load_benchmark
    from dareu.eval.evaluator import evaluate_model
    from dareu.eval.grading import SPLITS
    from dareu.models.loading import load_model
    from dareu.models.tiny import benchmark_corpus, build_tiny

    root = tmp_path_factory.mktemp("world")
    bench = load_benchmark(generate_synthetic(root / "b", owners=3, facts=2, forget_owners=1,
                                              holdout_owners=1, general=2))  # fmt: skip
    build_tiny(benchmark_corpus(bench), root / "m", size="micro", seed=0)
    model, tok = load_model(root / "m")
    res = evaluate_model(model, tok, bench, fmt="plain", max_new_tokens=8, progress=False)
    for split in SPLITS:
        shares_ = [res.summary[f"{split}_grade_{c}"] for c in CLASSES]
        assert sum(shares_) == pytest.approx(1.0), split
    # An untrained micro model cannot state anyone's fact in the grammar.
    assert res.summary["forget_grade_leak"] == 0.0
    rec = res.per_sample["retain"][0]
    assert rec["grade"] in CLASSES and rec["grade_heldout"] in CLASSES
    assert rec["paraphrased_question"] == bench.retain_eval[0].paraphrased_question
