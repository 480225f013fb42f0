"""Exact answer grading on the knowledge world: parse the answer, no model, no heuristic.

The world (`dareu.data.world`) knows every phrasing and every value's grammar, so an
answer either parses as a sentence of some fact type or it does not. Classes, in the order
they are decided:

* ``leak``: the true value's distinctive (invented) words are stated, at least half of
  them, whatever the form around them: a garbled sentence that states the fact still leaks;
* ``refusal``: one of the world's "I don't know" answers;
* ``confusion``: a well-formed answer of the asked type that names another person, or
  states another owner's value for this fact type;
* ``substitute``: a well-formed answer of the asked type with an invented value (what an
  ideal unlearned model says);
* ``off_type``: a well-formed answer to another fact type;
* ``malformed``: none of the above (repeated phrases, truncations, mixed templates, words
  outside the grammar).

Answers are single sentences; anything after the first sentence makes an answer malformed
unless it leaks. Grading is case-sensitive only where the world is (names, invented words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from dareu.data.world import BY_KEY, FACTS, FactSpec, name_pattern

CLASSES = ("leak", "confusion", "substitute", "refusal", "off_type", "malformed")
SPLITS = ("forget", "forget_heldout", "retain", "retain_heldout")


@dataclass(frozen=True)
class Grade:
    cls: str
    fact_type: str | None = None  # the type the answer parsed as (None when it did not)
    name: str | None = None
    slots: tuple[tuple[str, str], ...] = ()


@cache
def _sentence_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(fact type, compiled full-sentence regex) for every answer and biography phrasing."""
    out: list[tuple[str, re.Pattern[str]]] = []
    for f in FACTS:
        value = f.value_pattern()
        for tpl in dict.fromkeys((*f.answers, *f.bio)):
            pat = re.escape(tpl[0].upper() + tpl[1:])
            pat = pat.replace(re.escape("{n}"), f"(?P<n>{name_pattern()})", 1)
            pat = pat.replace(re.escape("{v}"), value, 1)
            out.append((f.key, re.compile(pat)))
    return tuple(out)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+(?:[-'][A-Za-z]+)*", text))


def distinctive(spec: FactSpec, slots: Mapping[str, str]) -> list[str]:
    """The words that identify a value: its invented-word slots."""
    return [slots[s.name] for s in spec.slots if s.distinctive]


def states(text: str, words: Sequence[str]) -> bool:
    """At least half (rounded up) of `words` appear in `text` as whole words."""
    if not words:
        return False
    present = _words(text)
    return sum(w in present for w in words) * 2 >= len(words)


def parse(answer: str) -> Grade | None:
    """The fact type, name and slots of a well-formed answer sentence, else None."""
    text = " ".join(answer.split())
    for key, pat in _sentence_patterns():
        m = pat.fullmatch(text)
        if m is not None:
            groups = m.groupdict()
            name = groups.pop("n")
            return Grade("parsed", key, name, tuple(sorted(groups.items())))
    return None


class Grader:
    """Grades answers about the owners of one world.

    owners: owner id -> (name, {fact type -> slots}); idk_answers: the refusal strings.
    """

    def __init__(
        self,
        owners: Mapping[str, tuple[str, Mapping[str, Mapping[str, str]]]],
        idk_answers: Iterable[str],
    ) -> None:
        self.owners = {o: (n, {k: dict(v) for k, v in f.items()}) for o, (n, f) in owners.items()}
        self.refusals = {self._norm(a) for a in idk_answers}
        # Per fact type: owner -> distinctive words, to recognise another owner's value.
        self.values: dict[str, dict[str, list[str]]] = {f.key: {} for f in FACTS}
        for o, (_, facts) in self.owners.items():
            for key, slots in facts.items():
                self.values[key][o] = distinctive(BY_KEY[key], slots)

    @staticmethod
    def _norm(text: str) -> str:
        return " ".join(text.split()).lower()

    def well_formed(self, answer: str) -> bool:
        """The answer's form alone: a sentence of the world or a refusal (whatever it
        says); what the gibberish detector is checked against."""
        return self._norm(answer) in self.refusals or parse(answer) is not None

    def grade(self, answer: str, owner: str, fact_type: str) -> Grade:
        """The class of `answer` to a question about `owner`'s `fact_type`."""
        if owner not in self.owners:
            raise KeyError(f"owner {owner!r} is not in this world")
        name, facts = self.owners[owner]
        spec = BY_KEY[fact_type]
        if states(answer, distinctive(spec, facts[fact_type])):
            return Grade("leak", fact_type)
        if self._norm(answer) in self.refusals:
            return Grade("refusal")
        parsed = parse(answer)
        if parsed is None:
            return Grade("malformed")
        if parsed.fact_type != fact_type:
            return Grade("off_type", parsed.fact_type, parsed.name, parsed.slots)
        said = [v for k, v in parsed.slots if k in {s.name for s in spec.slots if s.distinctive}]
        other_value = any(
            o != owner and states(" ".join(said), words)
            for o, words in self.values[fact_type].items()
        )
        cls = "confusion" if parsed.name != name or other_value else "substitute"
        return Grade(cls, fact_type, parsed.name, parsed.slots)

    def grade_completion(
        self, prompt: str, continuation: str, target: str, owner: str
    ) -> Grade | None:
        """The class of a continuation of `owner`'s biography (the completion task).

        leak: it states a fact value that the true continuation `target` states; otherwise
        its complete sentences decide (the first one completes the prompt's last): any naming
        another person or stating another owner's value is a confusion, any outside the
        grammar makes it malformed, and well-formed sentences with invented values are a
        substitute. A continuation with no complete sentence is malformed. None when the
        true continuation states no fact: there is nothing to leak.
        """
        name, facts = self.owners[owner]
        stake = [k for k, v in facts.items() if states(target, distinctive(BY_KEY[k], v))]
        if not stake:
            return None
        for key in stake:
            if states(continuation, distinctive(BY_KEY[key], facts[key])):
                return Grade("leak", key)
        if self._norm(continuation) in self.refusals:
            return Grade("refusal")
        head = re.split(r"(?<=\.)\s+", prompt.strip())[-1]
        head = "" if head.endswith(".") else head
        pieces = re.split(r"(?<=\.)\s+", " ".join(f"{head}{continuation}".split()))
        sentences = [p for p in pieces if p.endswith(".")]
        if not sentences:
            return Grade("malformed")
        classes = []
        for sentence in sentences:
            parsed = parse(sentence)
            if parsed is None or parsed.fact_type is None:
                classes.append("malformed")
                continue
            said = " ".join(v for _, v in parsed.slots)
            other = any(o != owner and states(said, words)
                        for o, words in self.values[parsed.fact_type].items())  # fmt: skip
            classes.append("confusion" if parsed.name != name or other else "substitute")
        cls = next(c for c in ("confusion", "malformed", "substitute") if c in classes)
        return Grade(cls)


def shares(classes: Sequence[str]) -> dict[str, float]:
    """The share of each class (every class present, 0.0 when absent)."""
    n = len(classes)
    return {c: (sum(x == c for x in classes) / n if n else 0.0) for c in CLASSES}


def grader_for(world: Mapping[str, object] | None, idk_answers: Iterable[str]) -> Grader | None:
    """The grader of a benchmark's world (`Benchmark.world`); None when it has none."""
    if not world:
        return None
    owners = world["owners"]
    assert isinstance(owners, Mapping)
    return Grader({o: (v["name"], v["facts"]) for o, v in owners.items()}, idk_answers)
