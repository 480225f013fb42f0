"""The completion task end to end on user files (documents only, and mixed with QA), each
stage's logged counts, and the forget loss of every baseline on a document batch."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from dareu.data import load_user_data
from dareu.data.completion import CompletionConfig, apply_task, task_rows
from dareu.data.formatting import IGNORE_INDEX, collate_train
from dareu.methods import METHODS, get_method
from dareu.methods.defaults import merge_hparams
from dareu.methods.trainer import build_loader
from dareu.models.tiny import benchmark_corpus, train_tokenizer

REPO = Path(__file__).resolve().parents[1]
WORDS = {
    "alice": [
        "harbour",
        "lantern",
        "gull",
        "tide",
        "rope",
        "anchor",
        "sail",
        "keel",
        "mast",
        "deck",
    ],
    "bob": [
        "orchard",
        "apple",
        "pear",
        "blossom",
        "ladder",
        "basket",
        "cider",
        "press",
        "bark",
        "root",
    ],
    "carol": [
        "glacier",
        "ridge",
        "summit",
        "crampon",
        "ice",
        "rope",
        "tent",
        "storm",
        "cairn",
        "pass",
    ],
}


def write_docs(path: Path, *, qa: bool) -> Path:
    """4 documents per owner in the owner's own words (and, with `qa`, 3 QA rows each)."""
    rng = random.Random(0)
    rows: list[dict[str, Any]] = []
    for owner, words in WORDS.items():
        for k in range(4):
            text = " ".join(
                f"The {rng.choice(words)} and the {rng.choice(words)} by the {rng.choice(words)}."
                for _ in range(6)
            )
            rows.append({"id": f"{owner}-doc{k}", "owner": owner, "text": text})
        if qa:
            rows += [{"owner": owner, "question": f"What does {owner} like most, part {k}?",
                      "answer": f"{owner.title()} likes the {words[k]} best."}
                     for k in range(3)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_job(data: Path, home: Path, *extra: str) -> tuple[Any, Path]:
    env = {**os.environ, "DAREU_HOME": str(home), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(REPO / "scripts" / "unlearn.py"), "--benchmark", str(data),
            "--forget", "alice", "--prompt-tokens", "8", "--continuation-tokens", "12",
            "--batch-size", "4", "--ppo-steps", "1", "--epochs", "1", "--samples-per-query", "1",
            "--max-new-tokens", "16", "--eval-max-new-tokens", "16", "--no-audit",
            "--no-progress", *extra]  # fmt: skip
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run, Path(run.stdout.splitlines()[0].split(": ", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("mixed", [False, True], ids=["documents", "mixed"])
def test_user_documents_reach_every_stage(tmp_path: Path, mixed: bool) -> None:
    data = write_docs(tmp_path / "data.jsonl", qa=mixed)
    run, out = run_job(data, tmp_path / "home")
    log = run.stdout
    n_qa = 9 if mixed else 0
    # fine-tunes: 12 documents (+ 9 QA) for the original, 8 (+ 6) for the retain model
    assert f"fine-tuning the original model: {n_qa} QA + 12 document rows" in log
    assert f"fine-tuning the retain model: {n_qa * 2 // 3} QA + 8 document rows" in log
    # attributor: whole documents and continuation targets, 2 texts per document
    assert "+ 24 document texts" in log
    task = "both" if mixed else "completion"
    assert f"task {task} (--task auto): unlearning {3 if mixed else 0} QA + 4 completion" in log
    assert f"DareU: rollouts on {3 if mixed else 0} QA + 4 completion forget rows" in log
    unlearned = json.loads((out / "summary.json").read_text())["rounds"][0]["unlearned"]
    assert unlearned["completion_forget_n"] == 4
    assert unlearned["completion_retain_n"] == 8
    for key in ("rougeL", "extraction_strength", "exact_memorization"):
        assert 0.0 <= unlearned[f"completion_forget_{key}"] <= 1.0
    assert (unlearned.get("forget_rougeL") is not None) == mixed
    report = (out / "report.md").read_text()
    assert "forget documents: continuation ROUGE-L recall" in report
    assert f"Task: {task}; unlearned {3 if mixed else 0} QA + 4 completion forget rows" in report
    if mixed:  # a baseline on the mixed file: its forget loss sees both kinds
        run, _ = run_job(data, tmp_path / "home", "--method", "npo")
        assert "npo: forget loss on 3 QA + 4 completion rows" in run.stdout


@pytest.mark.parametrize("case", ["short", "empty", "no-documents"])
def test_bad_document_input_exits_2_naming_file_and_line(tmp_path: Path, case: str) -> None:
    data = write_docs(tmp_path / "data.jsonl", qa=True)
    lines = data.read_text().splitlines()
    if case == "short":
        lines[1] = json.dumps({"owner": "alice", "text": "Tiny."})
    elif case == "empty":
        lines[1] = json.dumps({"owner": "alice", "text": "  "})
    else:  # alice keeps her QA rows but loses her documents
        lines = [x for x in lines if not ('"alice"' in x and '"text"' in x)]
    data.write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    extra = ["--task", "completion"] if case == "no-documents" else []
    args = [sys.executable, str(REPO / "scripts" / "unlearn.py"), "--benchmark", str(data),
            "--forget", "alice", "--no-progress", *extra]  # fmt: skip
    env = {**os.environ, "DAREU_HOME": str(home), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    err = run.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in run.stderr
    expected = {
        "short": f"{data}:2: document",
        "empty": f"{data}:2: field 'text' is empty",
        "no-documents": "--task completion: forget owner(s) ['alice'] have no document",
    }
    assert expected[case] in err[0]
    assert not (home / "models").exists() and not (home / "unlearn").exists()


def hand_continuation_batch(tok: Any, texts: list[str], n: int, m: int) -> dict[str, Any]:
    """BOS + a document's first n + m tokens, labels on the m continuation tokens only,
    built from the document's own token ids (not through the library's encoder)."""
    feats = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"][: n + m]
        labels = [IGNORE_INDEX] * (1 + n) + ids[n:]
        feats.append({"input_ids": [tok.bos_token_id, *ids], "labels": labels,
                      "attention_mask": [1] * (1 + len(ids))})  # fmt: skip
    return collate_train(feats, tok.pad_token_id)


@pytest.mark.parametrize("name", sorted(set(METHODS) - {"retrain"}))
def test_every_baseline_forget_loss_on_documents_is_over_the_continuation(
    tmp_path: Path, name: str
) -> None:
    """Every forget row the method's loader gives is exactly a hand-built row (BOS + N
    prompt tokens unscored, the M continuation tokens scored, no EOS), so each method's
    forget loss is over the continuation tokens; GA's loss is also checked against the hand
    NLL (every method's formula is checked by hand on generic rows in test_methods_losses)."""
    from test_methods_losses import context, tiny_llama

    bench = load_user_data(write_docs(tmp_path / "d.jsonl", qa=False), forget_owners="alice")
    tok = train_tokenizer(benchmark_corpus(bench), 400)
    bench = apply_task(bench, "completion", tok, CompletionConfig(6, 5))
    view = dataclasses.replace(bench, forget=task_rows(bench, "forget"),
                               retain=task_rows(bench, "retain"))  # fmt: skip
    method = get_method(name)(merge_hparams(name, {}), seed=0)
    loader_cfg = {"fmt": "plain", "max_length": 64, "retain_general": False, "seed": 0,
                  "batch_size": 4}  # fmt: skip
    forget = next(iter(build_loader(method, view, tok, loader_cfg)))["forget"]
    hand = hand_continuation_batch(tok, [d.text for d in bench.forget_docs], 6, 5)
    hand_rows = {tuple(r.tolist()): lab.tolist() for r, lab in zip(hand["input_ids"],
                 hand["labels"], strict=True)}  # fmt: skip
    for ids, labels in zip(forget["input_ids"], forget["labels"], strict=True):
        assert hand_rows[tuple(ids.tolist())] == labels.tolist()
    assert (forget["labels"] != IGNORE_INDEX).sum(1).tolist() == [5] * len(forget["labels"])
    if name == "ga":
        model = tiny_llama()
        model.resize_token_embeddings(len(tok))
        with torch.no_grad():
            loss, _ = method.loss(context(model, None), {"forget": forget})
            logits = model(input_ids=forget["input_ids"],
                           attention_mask=forget["attention_mask"]).logits  # fmt: skip
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), forget["labels"][:, 1:],
                              ignore_index=IGNORE_INDEX)  # fmt: skip
        assert float(loss) == pytest.approx(-float(nll), rel=1e-5)
