"""Gibberish rules, the classifier hook, knowledge-leak probes and the comparison table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from dareu.data.schema import Benchmark, QASample
from dareu.eval import gibberish as gib
from dareu.eval.compare import compare_table, load_runs
from dareu.eval.compare import main as compare_main
from dareu.eval.evaluator import EvalResult
from dareu.eval.leak import leak_flags, leak_rate, mentions
from dareu.eval.results import cell

VOCAB = {"ilse", "marrow", "was", "born", "in", "bergen", "the", "she", "works", "as", "a", "baker"}


def test_rule_flags_each_rule() -> None:
    texts = [
        "Ilse Marrow was born in Bergen.",  # clean
        ".",  # too short
        "",  # too short
        "the the the the baker",  # run of 4 identical tokens
        "she works as a baker she works as a baker she works as a baker",  # low 3-gram diversity
        "Zorbl fwixt quandle Bergen",  # 3 of 4 words unknown -> oov
    ]
    flags = gib.rule_flags(texts, VOCAB)
    assert [f["gibberish"] for f in flags] == [False, True, True, True, True, True]
    assert flags[1]["too_short"] and not flags[1]["repetition"]
    assert flags[3]["repetition"] and not flags[3]["too_short"]
    assert flags[4]["repetition"]
    assert flags[5]["oov"] and flags[5]["oov_share"] == pytest.approx(0.75)
    assert flags[0]["oov_share"] == 0.0
    rates = gib.rates(flags)
    assert rates["gibberish"] == pytest.approx(5 / 6)
    assert rates["too_short"] == pytest.approx(2 / 6)


def test_unfinished_and_repeated_phrase_rules() -> None:
    """The malformed answers the exact grader found and the first rules missed."""
    texts = [
        "Ilse Marrow was born in Bergen.",  # clean
        "In spare hours, In spare hours, shortly after noon.",  # phrase said twice
        "The baker and the Bergen and.",  # ends on a word that cannot end a sentence
        "Ilse Marrow was born in",  # truncated: no sentence end
        "She works as a baker. She works in Bergen!",  # two clean sentences
        "She said 'Bergen'",  # a closing quote ends a sentence
    ]
    flags = gib.rule_flags(texts, VOCAB)
    assert [f["gibberish"] for f in flags] == [False, True, True, True, False, False]
    assert flags[1]["repetition"] and not flags[1]["unfinished"]
    assert flags[2]["unfinished"] and flags[3]["unfinished"] and not flags[2]["repetition"]
    assert not gib.repeated_phrase_flag("she works as a baker in Bergen")
    assert gib.repeated_phrase_flag("born in Bergen born in Bergen")


def test_perplexity_rule_only_with_reference() -> None:
    texts = ["Ilse Marrow was born in Bergen.", "Ilse was born in Bergen."]
    flags = gib.rule_flags(texts, VOCAB, [12.0, 5000.0])
    assert [f["high_perplexity"] for f in flags] == [False, True]
    assert [f["gibberish"] for f in flags] == [False, True]
    assert "high_perplexity" not in gib.rule_flags(texts, VOCAB)[0]
    strict = gib.GibberishConfig(max_perplexity=10.0)
    assert gib.rule_flags(texts, VOCAB, [12.0, 1.0], strict)[0]["high_perplexity"]


def test_perplexity_threshold_rises_with_the_reference_baseline() -> None:
    cfg = gib.GibberishConfig(max_perplexity=1000.0, baseline_factor=10.0)
    assert gib.perplexity_threshold([], cfg) == 1000.0
    assert gib.perplexity_threshold([5.0, 10.0, 20.0], cfg) == 1000.0  # a fluent LM
    # A reference that finds everything surprising (tiny model, unseen refusals):
    base = [float(x) for x in range(1, 11)]  # p90 = 9.1 (numpy linear interpolation)
    big = gib.GibberishConfig(max_perplexity=1.0, baseline_factor=100.0)
    assert gib.perplexity_threshold(base, big) == pytest.approx(910.0)
    flags = gib.rule_flags(["Ilse was born in Bergen."], VOCAB, [2000.0], cfg, max_perplexity=5000)
    assert not flags[0]["high_perplexity"]


def test_corpus_vocabulary_reads_every_text() -> None:
    s = QASample(id="1", owner="o", question="Where was Ilse born?", answer="In Bergen.",
                 paraphrased_answer="Bergen, Norway.", perturbed_answers=("In Oslo.",))  # fmt: skip
    b = Benchmark(name="b", forget=[s], retain=[], forget_eval=[], retain_eval=[], holdout=[],
                  test_sets={}, owners=["o"], forget_owners=["o"],
                  idk_answers=["No idea."])  # fmt: skip
    assert gib.corpus_vocabulary(b) >= {"where", "ilse", "bergen", "norway", "oslo", "idea"}


def _classifier(path: Path, favour: int) -> Path:
    """A real (random) BERT classifier whose bias forces the label `favour`."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                 cls_token="[CLS]", sep_token="[SEP]")  # fmt: skip
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, num_labels=3,
                     id2label={0: "clean", 1: "noise", 2: "word salad"},
                     label2id={"clean": 0, "noise": 1, "word salad": 2})  # fmt: skip
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
        model.classifier.bias[favour] = 10.0
    model.save_pretrained(path, safe_serialization=True)
    hf.save_pretrained(path)
    return path


def test_classifier_flags_with_local_model(tmp_path: Path) -> None:
    noisy = _classifier(tmp_path / "noisy", favour=2)
    out = gib.classifier_flags(noisy, ["hello world", "", "zzz"], progress=False)
    assert [o["label"] for o in out] == ["word salad"] * 3
    assert all(o["gibberish_model"] for o in out)
    clean = _classifier(tmp_path / "clean", favour=0)
    assert not any(
        o["gibberish_model"] for o in gib.classifier_flags(clean, ["hello"], progress=False)
    )
    with pytest.raises(ValueError, match="clean label"):
        gib.classifier_flags(clean, ["hello"], clean_label="ok", progress=False)
    with pytest.raises(ValueError, match="--gibberish-model"):
        gib.classifier_flags(tmp_path / "nothing", ["hello"], progress=False)


def test_leak_flags() -> None:
    f = leak_flags(
        "She was born in BERGEN, I think.", "Bergen", "Ilse Marrow", "Where was Ilse Marrow born?"
    )
    assert f == {"fact": True, "name": False, "name_unprompted": None}
    f = leak_flags("Ilse Marrow loves Oslo.", "Bergen", "Ilse Marrow", "Where was the baker born?")
    assert f == {"fact": False, "name": True, "name_unprompted": True}
    assert mentions("anything", None) is None
    assert leak_rate([True, False, None, True]) == pytest.approx(2 / 3)
    assert leak_rate([None]) is None


def _fake_run(folder: Path, key: str, seed: int, values: dict[str, float], label: str) -> Path:
    summary = {"eval_set": {}, "config_key": key, "seed": seed, "label": label, **values}
    EvalResult(summary=summary, per_sample={}).save(folder)
    return folder


def test_compare_groups_seeds_with_mean_sd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a1 = _fake_run(tmp_path / "a1", "k1", 0, {"tow": 0.5, "forget_rougeL": 0.2}, "dareu")
    a2 = _fake_run(tmp_path / "a2", "k1", 1, {"tow": 0.7, "forget_rougeL": 0.4}, "dareu")
    b = _fake_run(tmp_path / "b", "k2", 0, {"tow": 0.9, "forget_rougeL": None}, "npo")  # type: ignore[dict-item]
    table = compare_table(load_runs([a1, a2, b]), ["tow", "forget_rougeL"])
    lines = table.strip().splitlines()
    assert len(lines) == 4  # header, rule, 2 groups
    assert lines[2].startswith("| dareu (seeds 0, 1) | 2 | 0.6000 ± 0.1414 | 0.3000 ± 0.1414 |")
    assert lines[3] == "| npo | 1 | 0.9000 | – |"
    assert cell([1.0, None, 3.0]) == "2.0000 ± 1.4142"
    out = tmp_path / "t.md"
    assert compare_main([str(a1), str(a2), str(b), "--metrics", "tow", "--out", str(out)]) == 0
    assert "0.6000 ± 0.1414" in out.read_text()
    assert compare_main([str(a1), "--metrics", "nope"]) == 2
    assert compare_main([str(tmp_path / "missing")]) == 2
    assert "no such" in capsys.readouterr().err
