"""The synthetic owners benchmark: the knowledge world's owners as files, no download.

Owners, phrasings and the value grammar come from `dareu.data.world`; this module draws a
seeded set of owners, holds one question phrasing of every fact out of training, and
writes the same file layout as TOFU (plus `benchmark.json`, `world.json` for the exact
grader and `docs.jsonl` with two biographies per owner), so every later stage reads one
format.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from dareu.cache import atomic_dir, atomic_write_json, content_hash, is_complete, output_root
from dareu.data.errors import DataError
from dareu.data.io import qa_to_row, write_json_array, write_jsonl
from dareu.data.schema import QASample
from dareu.data.synthetic_text import GENERAL_TYPES, IDK_ANSWERS
from dareu.data.world import FACTS, WORLD_VERSION, FactSpec, Person, fill, invent_word, make_owners

# Bump when the generated text changes, so cached folders are regenerated.
GENERATOR_VERSION = 4  # 4: holdout_docs.jsonl
MANIFEST = "benchmark.json"
WORLD_FILE = "world.json"
N_PERTURBED = 3
N_PHRASINGS = len(FACTS[0].questions)


def _tokens(text: str) -> set[str]:
    return set("".join(c.lower() if c.isalnum() else " " for c in text).split())


def _wrong_values(spec: FactSpec, true: dict[str, str], rng: random.Random) -> list[str]:
    """Perturbed values that share no word with the true one, so truth ratio and ROUGE
    compare facts, not lucky word picks."""
    value, wrong = spec.render(true), []
    for _ in range(1000):
        cand = spec.render(spec.draw(rng))
        if not _tokens(cand) & (_tokens(value) - _tokens(spec.value)) and cand not in wrong:
            wrong.append(cand)
            if len(wrong) == N_PERTURBED:
                return wrong
    raise RuntimeError(f"cannot draw {N_PERTURBED} disjoint wrong values for {spec.key}")


def _owner_rows(
    owner: str,
    person: Person,
    heldout: dict[str, int],
    specs: list[FactSpec],
    rng: random.Random,
) -> tuple[list[QASample], list[QASample]]:
    """(training rows, eval rows) of one owner.

    Training: every question phrasing but the held-out one, answers cycling through the
    answer phrasings. Eval: one row per fact, asked in the first trained phrasing, with the
    held-out phrasing as `paraphrased_question` and perturbed answers for truth ratio.
    """
    train, evals = [], []
    name = person.name
    for spec in specs:
        key, value = spec.key, person.value(spec.key)
        trained = [q for q in range(N_PHRASINGS) if q != heldout[key]]
        base = QASample(id=f"{owner}-{key}", owner=owner, question="", answer="",
                        fact_value=value, owner_name=name, fact_type=key)  # fmt: skip
        for j, q in enumerate(trained):
            answer = fill(spec.answers[(q + j) % len(spec.answers)], name, value)
            question = fill(spec.questions[q], name)
            train.append(replace(base, id=f"{owner}-{key}-q{q}", question=question, answer=answer))
        a = rng.randrange(len(spec.answers))
        wrong = _wrong_values(spec, person.facts[key], rng)
        evals.append(
            replace(
                base,
                question=fill(spec.questions[trained[0]], name),
                answer=fill(spec.answers[a], name, value),
                paraphrased_answer=fill(spec.answers[(a + 1) % len(spec.answers)], name, value),
                perturbed_answers=tuple(fill(spec.answers[a], name, w) for w in wrong),
                paraphrased_question=fill(spec.questions[heldout[key]], name),
            )
        )
    return train, evals


def _general_qas(n: int, rng: random.Random) -> list[QASample]:
    """Facts about invented countries: world knowledge every model is trained on."""
    out: list[QASample] = []
    country = ""

    def word() -> str:
        return invent_word(rng)

    for i in range(n):
        key, question, templates, draw = GENERAL_TYPES[i % len(GENERAL_TYPES)]
        if i % len(GENERAL_TYPES) == 0:
            country = word() + rng.choice(["ia", "land", "mark", "or", "ene"])
        value = draw(rng, word)
        wrong: list[str] = []
        while len(wrong) < N_PERTURBED:
            cand = draw(rng, word)
            if cand != value and cand not in wrong:
                wrong.append(cand)
        t = rng.randrange(2)
        out.append(
            QASample(
                id=f"general-{i:03d}",
                owner="general",
                question=_fill(question, c=country),
                answer=_fill(templates[t], c=country, v=value),
                paraphrased_answer=_fill(templates[1 - t], c=country, v=value),
                perturbed_answers=tuple(_fill(templates[t], c=country, v=x) for x in wrong),
                paraphrased_question=_fill(
                    "Tell me, " + question[0].lower() + question[1:], c=country
                ),
                fact_value=value,
                owner_name=country,
                fact_type=key,
            )
        )
    return out


def _fill(template: str, **kw: str) -> str:
    text = template.format(**kw)
    return text[0].upper() + text[1:]


def _check_args(
    owners: int, facts: int, forget_owners: int, holdout_owners: int, general: int
) -> None:
    if owners < 2:
        raise DataError(f"owners must be >= 2 (some to forget, some to retain), got {owners}")
    if not 1 <= facts <= len(FACTS):
        raise DataError(f"facts must be between 1 and {len(FACTS)}, got {facts}")
    if not 1 <= forget_owners < owners:
        raise DataError(
            f"forget_owners must be between 1 and owners-1={owners - 1}, got {forget_owners}"
        )
    if holdout_owners < 0:
        raise DataError(f"holdout_owners must be >= 0, got {holdout_owners}")
    if general < 0:
        raise DataError(f"general must be >= 0, got {general}")


DEFAULTS: dict[str, int] = {
    "owners": 40, "facts": len(FACTS), "forget_owners": 8, "holdout_owners": 8, "general": 48,
}  # fmt: skip


def build_synthetic(
    *,
    owners: int = DEFAULTS["owners"],
    facts: int = DEFAULTS["facts"],
    forget_owners: int = DEFAULTS["forget_owners"],
    holdout_owners: int = DEFAULTS["holdout_owners"],
    general: int = DEFAULTS["general"],
    seed: int = 0,
) -> dict[str, Any]:
    """Generate the benchmark in memory (deterministic in all arguments)."""
    _check_args(owners, facts, forget_owners, holdout_owners, general)
    rng = random.Random(f"dareu-synthetic-{GENERATOR_VERSION}-{seed}")
    specs = list(FACTS[:facts])
    ids = [f"owner-{i:03d}" for i in range(owners)]
    hold_ids = [f"holdout-{i:03d}" for i in range(holdout_owners)]
    people = dict(zip(ids + hold_ids, make_owners(len(ids) + len(hold_ids), rng), strict=True))
    # The held-out phrasing of each fact: drawn per fact, so every phrasing is trained for
    # most owners (the model can learn what it asks) and held out for some.
    heldout = {o: {f.key: rng.randrange(N_PHRASINGS) for f in specs} for o in people}
    train: dict[str, list[QASample]] = {}
    evals: dict[str, list[QASample]] = {}
    docs: dict[str, list[dict[str, str]]] = {}
    for o, person in people.items():
        train[o], evals[o] = _owner_rows(o, person, heldout[o], specs, rng)
        docs[o] = [
            {"id": f"{o}-bio{k}", "owner": o, "text": person.biography(k, rng, specs)}
            for k in range(2)
        ]
    forget = ids[owners - forget_owners :]
    retain = ids[: owners - forget_owners]
    # Like TOFU's retain_perturbed (400 of 3600 rows): a fixed slice of retain owners.
    retain_eval = retain[: max(forget_owners, min(8, len(retain)))]
    world = {
        "version": WORLD_VERSION,
        "fact_types": [f.key for f in specs],
        "owners": {
            o: {"name": p.name, "facts": {f.key: p.facts[f.key] for f in specs},
                "heldout_question": heldout[o]}
            for o, p in people.items()
        },
    }  # fmt: skip
    return {
        "owners": ids,
        "holdout_owners": hold_ids,
        "forget_owners": forget,
        "retain_eval_owners": retain_eval,
        "owner_names": {o: p.name for o, p in people.items()},
        "fact_types": [f.key for f in specs],
        "train": train,
        "evals": evals,
        "docs": docs,
        "world": world,
        "general": _general_qas(general, rng),
    }


def generate_synthetic(
    out_dir: Path,
    *,
    owners: int = DEFAULTS["owners"],
    facts: int = DEFAULTS["facts"],
    forget_owners: int = DEFAULTS["forget_owners"],
    holdout_owners: int = DEFAULTS["holdout_owners"],
    general: int = DEFAULTS["general"],
    seed: int = 0,
) -> Path:
    """Write the benchmark to `out_dir` atomically (TOFU file names + our extras)."""
    params = {
        "owners": owners,
        "facts": facts,
        "forget_owners": forget_owners,
        "holdout_owners": holdout_owners,
        "general": general,
        "seed": seed,
    }
    data = build_synthetic(**params)
    retained = [o for o in data["owners"] if o not in data["forget_owners"]]

    def rows(part: str, owner_ids: list[str]) -> list[dict[str, Any]]:
        return [qa_to_row(q) for o in owner_ids for q in data[part][o]]

    files = {
        "full.json": rows("train", data["owners"]),
        "forget.json": rows("train", data["forget_owners"]),
        "retain.json": rows("train", retained),
        "eval.json": rows("evals", data["owners"]),
        "forget_perturbed.json": rows("evals", data["forget_owners"]),
        "retain_perturbed.json": rows("evals", data["retain_eval_owners"]),
        "general.json": [qa_to_row(q) for q in data["general"]],
        "general_perturbed.json": [qa_to_row(q) for q in data["general"]],
        "docs.jsonl": [d for o in data["owners"] for d in data["docs"][o]],
        # Biographies of the holdout people (never trained on): non-members for MIA on texts.
        "holdout_docs.jsonl": [d for o in data["holdout_owners"] for d in data["docs"][o]],
    }
    holdout = rows("train", data["holdout_owners"])
    manifest = {
        "format": "dareu-benchmark",
        "version": 2,
        "kind": "synthetic",
        "name": f"world-o{owners}-f{facts}-k{forget_owners}-s{seed}",
        "generator": {"version": GENERATOR_VERSION, "world_version": WORLD_VERSION, **params},
        "owners": data["owners"],
        "forget_owners": data["forget_owners"],
        "holdout_owners": data["holdout_owners"],
        "retain_eval_owners": data["retain_eval_owners"],
        "owner_names": data["owner_names"],
        "fact_types": data["fact_types"],
        "files": {
            "full": "full.json",
            "forget": "forget.json",
            "retain": "retain.json",
            "eval": "eval.json",
            "forget_eval": "forget_perturbed.json",
            "retain_eval": "retain_perturbed.json",
            "holdout": "holdout.json",
            "general_train": "general.json",
            "test_sets": {"general": "general_perturbed.json"},
            "idk": "idontknow.jsonl",
            "docs": "docs.jsonl",
            "holdout_docs": "holdout_docs.jsonl",
            "world": WORLD_FILE,
        },
        "counts": {
            **{k: len(v) for k, v in files.items()},
            "holdout.json": len(holdout),
            "idontknow.jsonl": len(IDK_ANSWERS),
        },
    }
    out_dir = Path(out_dir)
    # atomic_dir replaces the target; never let that delete a folder we did not write.
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise DataError(f"{out_dir}: exists and is not a benchmark folder; refusing to overwrite")
    with atomic_dir(out_dir) as tmp:
        for fname, file_rows in files.items():
            write_jsonl(tmp / fname, file_rows)
        write_json_array(tmp / "holdout.json", holdout)
        (tmp / "idontknow.jsonl").write_text("\n".join(IDK_ANSWERS) + "\n")
        atomic_write_json(tmp / WORLD_FILE, data["world"])
        atomic_write_json(tmp / MANIFEST, manifest)
    return out_dir


def synthetic_dir(
    owners: int = DEFAULTS["owners"],
    facts: int = DEFAULTS["facts"],
    forget_owners: int = DEFAULTS["forget_owners"],
    seed: int = 0,
) -> Path:
    """The cached benchmark folder for these sizes, generated on first use."""
    params = {"owners": owners, "facts": facts, "forget_owners": forget_owners, "seed": seed}
    key = content_hash(params, GENERATOR_VERSION, WORLD_VERSION)
    folder = output_root() / "data" / f"synthetic-{key}"
    if not is_complete(folder):
        generate_synthetic(
            folder, owners=owners, facts=facts, forget_owners=forget_owners, seed=seed
        )
    return folder
