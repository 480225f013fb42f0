"""scripts/make_data.py: generate, validate, summarise; clear errors and non-zero exit."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_data.py"
TOFU_DIR = Path(os.environ.get("DAREU_TOFU_DIR", ROOT.parent / "shared/data/tofu"))


@pytest.fixture(scope="module")
def cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_data", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generate(cli: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "syn"
    args = ["--out", str(out), "--owners", "6", "--facts", "4", "--forget-owners", "2"]
    assert cli.main([*args, "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    # 4 question phrasings trained per fact (the fifth is held out).
    assert report["owners"] == 6 and report["forget"] == 2 * 4 * 4 and report["retain"] == 4 * 4 * 4
    assert 0 < report["rouge_l_recall"]["mean"] < 1
    assert (out / "benchmark.json").is_file()


def test_generate_bad_args(
    cli: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--out", str(tmp_path / "x"), "--owners", "4", "--forget-owners", "4"]) == 2
    assert "forget_owners must be between 1 and owners-1=3" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_validate(cli: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(
        '{"owner": "a", "question": "Q?", "answer": "A."}\n'
        '{"owner": "b", "text": "Some document."}\n'
    )
    assert cli.main(["--validate", str(f), "--forget", "a"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["qa_rows"] == 1 and report["doc_rows"] == 1 and report["forget"] == 1
    f.write_text('{"owner": "a", "question": "Q?"}\n')
    assert cli.main(["--validate", str(f)]) == 2
    assert f"{f}:1: missing field 'answer'" in capsys.readouterr().err


@pytest.mark.skipif(not (TOFU_DIR / "full.json").is_file(), reason="no TOFU copy")
def test_tofu_summary(cli: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--tofu-dir", str(TOFU_DIR), "--forget", "forget05"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["forget"] == 200 and report["configs"]["full"] == 4000
    assert cli.main(["--tofu-dir", str(TOFU_DIR), "--forget", "forget7"]) == 2


def test_runs_as_a_script(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--validate", str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "no such file" in bad.stderr
