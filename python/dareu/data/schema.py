"""Owner-aware records shared by every stage.

Every sample knows its data owner, because DareU's reward, the forget request and the
knowledge-leak probes are all defined per owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QASample:
    """One question/answer pair written by (or about) one data owner."""

    id: str
    owner: str
    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    paraphrased_question: str | None = None
    # Answer span that carries the fact (synthetic benchmark only), e.g. "Bergen".
    fact_value: str | None = None
    # Display name of the owner as it appears in text, e.g. "Ilse Marrow".
    owner_name: str | None = None
    # Kind of fact (synthetic benchmark only), e.g. "birthplace"; lets evaluation group by type.
    fact_type: str | None = None
    # "qa": question/answer in the run's prompt format; "completion": a document's first
    # N tokens as the prompt (raw text) and its next M tokens as the target
    # (`dareu.data.completion`).
    kind: str = "qa"


@dataclass(frozen=True)
class DocSample:
    """A free-text document row (a biography, an abstract): the original and retain models
    are trained on all of it; the completion task (`dareu.data.completion`) prompts with
    its first N tokens and targets the next M."""

    id: str
    owner: str
    text: str
    # "file:line" it was read from, for error messages (None when built in memory).
    source: str | None = field(default=None, compare=False)


@dataclass
class Benchmark:
    """A forget request resolved against a data set, in the one layout every stage reads.

    `forget`/`retain` are the training splits. `forget_eval`/`retain_eval` carry the
    paraphrased and perturbed answers used by truth ratio (TOFU: the *_perturbed files).
    `test_sets` plays the D_test role (TOFU: real_authors, world_facts; synthetic: general).
    """

    name: str
    forget: list[QASample]
    retain: list[QASample]
    forget_eval: list[QASample]
    retain_eval: list[QASample]
    holdout: list[QASample]
    test_sets: dict[str, list[QASample]]
    owners: list[str]
    forget_owners: list[str]
    idk_answers: list[str] = field(default_factory=list)
    # Knowledge both the original and the retain model learn but nobody can ask to forget
    # (synthetic only; TOFU's base model already knows its real authors and world facts).
    general_train: list[QASample] = field(default_factory=list)
    root: str | None = None
    # Document rows ({owner, text}): language-modelled by the fine-tunes, and, once a
    # tokenizer cuts them (`dareu.data.completion.apply_task`), the completion rows below.
    forget_docs: list[DocSample] = field(default_factory=list)
    retain_docs: list[DocSample] = field(default_factory=list)
    # Documents of owners nobody trained on (the world's holdout people): non-members for
    # membership inference on document texts; empty for user data.
    holdout_docs: list[DocSample] = field(default_factory=list)
    # What a run unlearns: "qa", "completion" or "both" (set by `apply_task`).
    task: str = "qa"
    # Completion rows (QASample, kind "completion") of forget and retain documents, once
    # `apply_task` has cut them; evaluation reads them whatever the task.
    forget_completion: list[QASample] = field(default_factory=list)
    retain_completion: list[QASample] = field(default_factory=list)
    # The knowledge world behind a synthetic benchmark (`world.json`: owner names, fact
    # slots, held-out phrasings), for the exact grader and domain pretraining; None for
    # TOFU and user data, which have no grammar to grade against.
    world: dict[str, Any] | None = None

    @property
    def retain_owners(self) -> list[str]:
        forget = set(self.forget_owners)
        return [o for o in self.owners if o not in forget]
