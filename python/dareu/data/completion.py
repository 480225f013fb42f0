"""The completion task: a document's first N tokens as the prompt, its next M as the target.

The DareU paper's second task (arXiv abstracts, categories as owners) prompts the model with
the beginning of an owner's document and asks whether the continuation still reveals the
owner. Prompt and target are counted in the policy's tokens, so documents stay text until a
run knows its tokenizer; `apply_task` then cuts them and fixes what the run unlearns.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dareu.data.errors import DataError
from dareu.data.schema import Benchmark, DocSample, QASample

TASKS = ("auto", "qa", "completion", "both")


@dataclass(frozen=True)
class CompletionConfig:
    """How documents become completion rows, and how much of the retain data they are.

    prompt_tokens: N, the prompt (a biography's first sentence is about 12 tokens of the
      tiny tokenizer, so 16 carries the owner's name and part of a fact);
    continuation_tokens: M, the target and the most a rollout or an evaluation generates;
    retain_doc_share: the documents' share of the retain rows when a task has both kinds
      (None: as many as there are).
    """

    prompt_tokens: int = 16
    continuation_tokens: int = 32
    retain_doc_share: float | None = None

    def validate(self) -> None:
        if self.prompt_tokens < 1:
            raise ValueError(f"--prompt-tokens: must be >= 1, got {self.prompt_tokens}")
        if self.continuation_tokens < 1:
            raise ValueError(f"--continuation-tokens: must be >= 1, got {self.continuation_tokens}")
        share = self.retain_doc_share
        if share is not None and not (math.isfinite(share) and 0 <= share <= 1):
            raise ValueError(f"--retain-doc-share: must be in [0, 1], got {share}")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"--task: {task!r} is not one of {', '.join(TASKS)}")
    return task


def resolve_task(bench: Benchmark, task: str) -> str:
    """`auto`: the knowledge world and TOFU unlearn QA; user data unlearns every kind of
    row its forget request holds."""
    if check_task(task) != "auto":
        return task
    if bench.world is not None or not bench.forget_docs:
        return "qa"
    return "both" if bench.forget else "completion"


def cut_document(doc: DocSample, tokenizer: Any, cfg: CompletionConfig) -> QASample:
    """A completion row: prompt = the first N tokens' text, answer = the next M tokens'."""
    n, m = cfg.prompt_tokens, cfg.continuation_tokens
    ids = list(tokenizer(doc.text, add_special_tokens=False)["input_ids"])
    if len(ids) < n + 1:
        where = doc.source or f"document {doc.id!r}"
        raise DataError(
            f"{where}: document {doc.id!r} (owner {doc.owner!r}) has {len(ids)} tokens; the "
            f"completion task needs at least --prompt-tokens + 1 = {n + 1}"
        )
    prompt = str(tokenizer.decode(ids[:n], skip_special_tokens=True))
    full = str(tokenizer.decode(ids[: n + m], skip_special_tokens=True))
    # Decoding the longer span keeps the target's leading space, which decoding the
    # target's ids alone drops on sentencepiece tokenizers.
    target = full[len(prompt) :] if full.startswith(prompt) else " " + full[len(prompt) :]
    return QASample(id=doc.id, owner=doc.owner, question=prompt, answer=target,
                    kind="completion")  # fmt: skip


def _require(bench: Benchmark, task: str) -> None:
    """Every forget owner must have rows of the task's kind; a clear error otherwise."""
    src = bench.root or bench.name
    qa_owners = {s.owner for s in bench.forget}
    doc_owners = {d.owner for d in bench.forget_docs}
    need = {"qa": qa_owners, "completion": doc_owners, "both": qa_owners | doc_owners}[task]
    missing = [o for o in bench.forget_owners if o not in need]
    if missing:
        kind = {"qa": "QA", "completion": "document", "both": "QA or document"}[task]
        raise DataError(
            f"{src}: --task {task}: forget owner(s) {missing[:5]} have no {kind} rows "
            f"({len(bench.forget)} forget QA rows, {len(bench.forget_docs)} forget documents)"
        )
    if task != "qa" and not bench.retain_docs and not bench.retain:
        raise DataError(f"{src}: --task {task}: nothing to retain")


def apply_task(bench: Benchmark, task: str, tokenizer: Any, cfg: CompletionConfig) -> Benchmark:
    """The benchmark with its documents cut (`forget_completion`, `retain_completion`) and
    the task it unlearns resolved; raises DataError naming the file and line of a bad row."""
    cfg.validate()
    task = resolve_task(bench, task)
    _require(bench, task)
    return dataclasses.replace(
        bench,
        task=task,
        forget_completion=[cut_document(d, tokenizer, cfg) for d in bench.forget_docs],
        retain_completion=[cut_document(d, tokenizer, cfg) for d in bench.retain_docs],
    )


def task_rows(
    bench: Benchmark, which: str, share: float | None = None, seed: int = 0
) -> list[QASample]:
    """The rows a run unlearns ("forget") or keeps ("retain") under `bench.task`.

    With both kinds and `share` set, the retain rows keep their number and are redrawn
    (seeded, cycling each kind) so that documents are `share` of them.
    """
    qa, docs = (
        (bench.forget, bench.forget_completion)
        if which == "forget"
        else (bench.retain, bench.retain_completion)
    )
    if bench.task == "qa":
        return list(qa)
    if bench.task == "completion" and (which == "forget" or share is None or not qa):
        return list(docs)
    if share is None or which == "forget" or not qa or not docs:
        return [*qa, *docs]
    total = len(qa) + len(docs)
    n_docs = round(share * total)
    return _cycle(qa, total - n_docs, seed) + _cycle(docs, n_docs, seed + 1)


def _cycle(rows: Sequence[QASample], n: int, seed: int) -> list[QASample]:
    """`n` rows: whole seeded permutations of `rows`, the last one cut."""
    out: list[QASample] = []
    rng = random.Random(f"retain-share-{seed}")
    while len(out) < n:
        perm = list(rows)
        rng.shuffle(perm)
        out += perm[: n - len(out)]
    return out


def count_rows(rows: Sequence[QASample]) -> str:
    """ "12 QA + 4 completion": what a stage is about to see, for its log line."""
    n_comp = sum(s.kind == "completion" for s in rows)
    return f"{len(rows) - n_comp} QA + {n_comp} completion"
