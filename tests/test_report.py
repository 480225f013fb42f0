"""The run report: labels, the audit section against original and retain, and the
several-runs table that warns when it averages different models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dareu.report import aggregate, audit_section, write_report


def _summary(leak: float, **audit: float) -> dict[str, Any]:
    keys = {"forget_rougeL": 0.5, "retain_rougeL": 0.8, "forget_attr_score": 0.4,
            "forget_grade_leak": leak, "audit_config": {"relearn_steps": 20},
            "audit_graded": True, "audit_incontext_leak_k0": leak, **audit}  # fmt: skip
    return keys


def _row() -> dict[str, Any]:
    return {
        "round": 0,
        "original": _summary(
            1.0, audit_relearn_leak=0.9, audit_relearn_before_leak=1.0, audit_quant4_leak=1.0
        ),
        "retain": _summary(
            0.0, audit_relearn_leak=0.0, audit_relearn_before_leak=0.0, audit_quant4_leak=0.0
        ),
        "unlearned": _summary(
            0.1,
            audit_relearn_leak=0.6,
            audit_relearn_before_leak=0.1,
            audit_quant4_leak=0.3,
            audit_seconds=2.0,
        ),
    }


def test_audit_section_puts_the_unlearned_model_between_floor_and_ceiling() -> None:
    md = "\n".join(audit_section(_row(), "NPO"))
    assert "| attack | original (ceiling) | retain (floor) | NPO | NPO gain | retain gain |" in md
    # relearn: after 0.6, before 0.1 -> gain 0.5; the retain model gains 0.
    assert "| relearn half, ask the other half | 1.000 | 0.000 | 0.600 | 0.500 | 0.000 |" not in md
    assert "| relearn half, ask the other half | 0.900 | 0.000 | 0.600 | 0.500 | 0.000 |" in md
    # quantization gains are measured from the unattacked answers (k = 0).
    assert "| 4-bit round-to-nearest | 1.000 | 0.000 | 0.300 | 0.200 | 0.000 |" in md
    assert audit_section({**_row(), "unlearned": {"forget_rougeL": 0.1}}, "NPO") == []


def test_report_labels_each_model_once(tmp_path: Path) -> None:
    summary = {"method": "dareu", "rounds": [_row()], "method_config": {}}
    text = write_report(tmp_path, summary).read_text()
    assert "| metric | original | retain | DareU |" in text
    assert "DareU r0" not in text
    assert "## Forgetting audit" in text and (tmp_path / "tradeoff.png").is_file()


def _run(folder: Path, seed: int, model: str | None) -> Path:
    folder.mkdir(parents=True)
    summary = {"method": "npo", "job": {"seed": seed, "model": model, "benchmark": "synthetic"},
               "rounds": [_row()], "train_s": 1.0, "wall_s": 2.0}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_aggregate_warns_when_runs_use_different_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = [_run(tmp_path / f"s{i}", i, None) for i in range(2)]
    assert "WARNING" not in aggregate(same)
    mixed = [*same, _run(tmp_path / "gpt2", 2, "/models/gpt2")]
    assert "WARNING: these runs use different models" in aggregate(mixed)
    assert "different models" in capsys.readouterr().err
