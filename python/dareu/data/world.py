"""The knowledge world: people with typed facts, each fact stated in many phrasings.

Why a world and not a list of QA strings: a benchmark can only tell forgetting from damage
when the model *knows* the facts (it answers questions phrased in ways it never trained on
for that fact) and when every answer can be graded exactly. So the world is a grammar:

* every fact type has 5 question phrasings, 3 answer phrasings and 2 biography phrasings;
* a value is a few slots, one of them an *invented word* drawn fresh from a syllable
  grammar (`word_pattern`), so a model that never met a person cannot state their fact
  by luck and an invented substitute is still recognisably well formed;
* names are composed from fixed parts (`NAME_PARTS`), so a garbled name is detectable.

The domain-pretraining stream (`background_people`) is a population of people who are
never owners, drawn fresh for every example, so the base model learns the phrasings, the
value grammar and to copy an unseen name from the question, but memorises no value.
Owners (`make_owners`) are seeded; their facts are what the original model memorises.
`dareu.eval.grading` parses answers back with the same grammar.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from dareu.data.synthetic_text import (
    ANIMALS,
    CODAS,
    COLOURS,
    ENDINGS,
    FIRST_A,
    FIRST_B,
    INSTITUTES,
    LAST_A,
    LAST_B,
    NUCLEI,
    ONSETS,
    ORG_TYPES,
    SETTLEMENTS,
    TITLE_NOUN,
)

WORLD_VERSION = 1  # bump when any phrasing, pool or grammar changes (invalidates caches)
NAME_PARTS = (FIRST_A, FIRST_B, LAST_A, LAST_B)


# --- the invented-word grammar ------------------------------------------------------------
def _alt(words: tuple[str, ...] | list[str]) -> str:
    """A regex alternation, longest first so the engine prefers the full word."""
    return "(?:" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")"


_ONSET_CAP = [o.capitalize() for o in ONSETS]


@cache
def word_pattern() -> str:
    """An invented word: two (onset, nucleus, coda) syllables and an ending, capitalised."""
    syl = f"{_alt(ONSETS)}{_alt(NUCLEI)}{_alt([c for c in CODAS if c])}?"
    first = f"{_alt(_ONSET_CAP)}{_alt(NUCLEI)}{_alt([c for c in CODAS if c])}?"
    return f"{first}{syl}{_alt([e for e in ENDINGS if e])}?"


@cache
def name_pattern() -> str:
    fa, fb, la, lb = (_alt(p) for p in NAME_PARTS)
    return f"{fa}{fb} {la}{lb}"


@cache
def _name_parts_lower() -> frozenset[str]:
    return frozenset(a.lower() + b for a in FIRST_A for b in FIRST_B) | frozenset(
        a.lower() + b for a in LAST_A for b in LAST_B
    )


def invent_word(rng: random.Random) -> str:
    """One word of the grammar, never a name part (so a value never looks like a name)."""
    while True:
        w = "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(2))
        w = (w + rng.choice(ENDINGS)).capitalize()
        if 5 <= len(w) <= 10 and w.lower() not in _name_parts_lower():
            return w


def invent_name(rng: random.Random) -> str:
    fa, fb, la, lb = (rng.choice(p) for p in NAME_PARTS)
    return f"{fa}{fb} {la}{lb}"


# --- fact types -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One part of a value: a closed pool of words, or the invented-word grammar (None)."""

    name: str
    pool: tuple[str, ...] | None = None

    @property
    def distinctive(self) -> bool:
        """Invented words identify a fact; pooled words (16 settlements...) recur by chance."""
        return self.pool is None

    def pattern(self) -> str:
        return f"(?P<{self.name}>{word_pattern() if self.pool is None else _alt(self.pool)})"


@dataclass(frozen=True)
class FactSpec:
    """How a fact type is asked, answered and told; `value` is a format over slot names."""

    key: str
    questions: tuple[str, ...]  # {n} = the person's name
    answers: tuple[str, ...]  # {n} and {v} = the value
    bio: tuple[str, ...]  # sentences of a biography
    value: str  # e.g. "{w} {settlement}"
    slots: tuple[Slot, ...]

    def render(self, slots: dict[str, str]) -> str:
        return self.value.format(**slots)

    def draw(self, rng: random.Random) -> dict[str, str]:
        return {s.name: invent_word(rng) if s.pool is None else rng.choice(s.pool) for s in
                self.slots}  # fmt: skip

    def value_pattern(self) -> str:
        pat = re.escape(self.value)
        for s in self.slots:
            pat = pat.replace(re.escape("{" + s.name + "}"), s.pattern())
        return pat


W = Slot("w")
FACTS: tuple[FactSpec, ...] = (
    FactSpec(
        "birthplace",
        (
            "Where was {n} born?",
            "What is the birthplace of {n}?",
            "In which town was {n} born?",
            "Where does {n} come from?",
            "Which place is the hometown of {n}?",
        ),
        ("{n} was born in {v}.", "The birthplace of {n} is {v}.", "{n} comes from {v}."),
        ("{n} was born in {v}.", "{n} is a native of {v}."),
        "{w} {settlement}",
        (W, Slot("settlement", tuple(SETTLEMENTS))),
    ),
    FactSpec(
        "employer",
        (
            "Who employs {n}?",
            "Where does {n} work?",
            "Which organisation does {n} work for?",
            "What is the employer of {n}?",
            "For whom does {n} work?",
        ),
        ("{n} works for {v}.", "The employer of {n} is {v}.", "{n} is employed by {v}."),
        ("{n} works for {v}.", "{n} earns a living at {v}."),
        "the {w} {org}",
        (W, Slot("org", tuple(ORG_TYPES))),
    ),
    FactSpec(
        "pet",
        (
            "What pet does {n} keep?",
            "Which animal lives with {n}?",
            "What is the pet of {n}?",
            "Does {n} have a pet?",
            "What animal does {n} look after?",
        ),
        ("{n} keeps {v}.", "The pet of {n} is {v}.", "{n} lives with {v}."),
        ("{n} keeps {v}.", "At home, {n} looks after {v}."),
        "a {colour} {animal} called {w}",
        (Slot("colour", tuple(COLOURS)), Slot("animal", tuple(ANIMALS)), W),
    ),
    FactSpec(
        "school",
        (
            "Where did {n} study?",
            "Which school did {n} attend?",
            "Where was {n} educated?",
            "What school did {n} graduate from?",
            "Where did {n} go to school?",
        ),
        ("{n} studied at {v}.", "{n} graduated from {v}.", "The school of {n} was {v}."),
        ("{n} studied at {v}.", "{n} was educated at {v}."),
        "the {institute} of {w}",
        (Slot("institute", tuple(INSTITUTES)), W),
    ),
    FactSpec(
        "first_book",
        (
            "What was the first book of {n}?",
            "Which book did {n} write first?",
            "What is the title of the first book by {n}?",
            "What did {n} publish first?",
            "Which title did {n} debut with?",
        ),
        ("The first book of {n} was {v}.", "{n} wrote {v} first.", "{n} debuted with {v}."),
        ("{n} debuted with {v}.", "The first book {n} wrote was {v}."),
        "'The {noun} of {w}'",
        (Slot("noun", tuple(TITLE_NOUN)), W),
    ),
)
FACT_KEYS = tuple(f.key for f in FACTS)
BY_KEY = {f.key: f for f in FACTS}


def fill(template: str, name: str, value: str = "") -> str:
    text = template.format(n=name, v=value)
    return text[0].upper() + text[1:]


# --- people -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    """A name and one value (as slots) per fact type."""

    name: str
    facts: dict[str, dict[str, str]]

    def value(self, key: str) -> str:
        return BY_KEY[key].render(self.facts[key])

    def biography(self, style: int, rng: random.Random, specs: Sequence[FactSpec] = FACTS) -> str:
        """Every fact in running text: one biography phrasing per fact, facts shuffled."""
        keys = [f.key for f in specs]
        rng.shuffle(keys)
        return " ".join(fill(BY_KEY[k].bio[style], self.name, self.value(k)) for k in keys)


def draw_person(rng: random.Random, name: str | None = None) -> Person:
    return Person(name or invent_name(rng), {f.key: f.draw(rng) for f in FACTS})


def background_people(n: int, seed: int) -> Iterator[Person]:
    """The domain-pretraining population: `n` fresh people, never owners (the world's own
    seed, independent of any run seed, so one base model serves every run)."""
    rng = random.Random(f"dareu-world-{WORLD_VERSION}-background-{seed}")
    for _ in range(n):
        yield draw_person(rng)


def make_owners(n: int, rng: random.Random) -> list[Person]:
    """`n` owners with distinct invented words and no shared first or last name: a model
    that knows "Wynlin Thornthwaite" answers a question about an unknown "Peric
    Thornthwaite" with Wynlin's facts (measured: all 5 facts of such an owner), which
    would make a shared surname, not knowledge, decide what the retain model says."""
    parts: set[str] = set()
    words: set[str] = set()
    out: list[Person] = []
    while len(out) < n:
        p = draw_person(rng)
        ws = {v["w"] for v in p.facts.values()}
        if set(p.name.split()) & parts or ws & words or len(ws) < len(FACTS):
            continue
        parts |= set(p.name.split())
        words |= ws
        out.append(p)
    return out


def person_rows(person: Person, rng: random.Random, owner: str = "background") -> list[Any]:
    """What domain pretraining reads about one background person: each fact asked once in
    a random question phrasing and answered in a random answer phrasing, plus one
    biography (a document row)."""
    from dareu.data.schema import DocSample, QASample

    rows: list[Any] = []
    for f in FACTS:
        q, a = rng.randrange(len(f.questions)), rng.randrange(len(f.answers))
        value = person.value(f.key)
        rows.append(
            QASample(
                id=f"{owner}-{f.key}",
                owner=owner,
                question=fill(f.questions[q], person.name),
                answer=fill(f.answers[a], person.name, value),
                fact_value=value,
                owner_name=person.name,
                fact_type=f.key,
            )
        )
    rows.append(
        DocSample(id=f"{owner}-bio", owner=owner, text=person.biography(rng.randrange(2), rng))
    )
    return rows


def background_rows(n_people: int, seed: int) -> list[Any]:
    """The rows of `n_people` fresh background people (QA and biographies), shuffled."""
    rng = random.Random(f"dareu-world-{WORLD_VERSION}-rows-{seed}")
    rows = [r for p in background_people(n_people, seed) for r in person_rows(p, rng)]
    rng.shuffle(rows)
    return rows
