"""Two runs of the same stage on one DAREU_HOME: the second waits for the first (stage
lock) and then reuses its output; neither crashes, and no lock file is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from dareu.cache import lock_file, stage_lock
from dareu.data import generate_synthetic

REPO = Path(__file__).resolve().parents[1]


def test_stage_lock_serialises_and_cleans_up(tmp_path: Path) -> None:
    folder = tmp_path / "stage"
    order: list[str] = []

    def second() -> None:
        with stage_lock(folder):
            order.append("second")

    with stage_lock(folder):
        assert lock_file(folder).read_text().strip() == str(os.getpid())
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first")
    t.join(10)
    assert order == ["first", "second"]
    assert not lock_file(folder).exists()


def test_stale_lock_file_is_harmless(tmp_path: Path) -> None:
    """A file left by a killed holder (flock died with it) neither blocks nor piles up."""
    folder = tmp_path / "stage"
    lock_file(folder).write_text("999999\n")
    with stage_lock(folder):
        pass
    assert not lock_file(folder).exists()


def test_two_concurrent_finetunes_one_result(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_synthetic(data, owners=4, facts=2, forget_owners=1, holdout_owners=1, general=2)
    home = tmp_path / "home"
    env = {**os.environ, "DAREU_HOME": str(home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "python")}  # fmt: skip
    cmd = [sys.executable, str(REPO / "scripts" / "finetune.py"), "--benchmark", str(data),
           "--which", "retain", "--tiny-size", "micro", "--max-steps", "6", "--batch-size", "4",
           "--threads", "1", "--no-progress"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=500) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    text = "".join(out for out, _ in outs)
    assert text.count("saved: ") == 1, text  # trained once
    assert text.count("cached: ") >= 1, text  # the other reused it
    (model,) = (home / "models").glob("retain-*")
    assert (model / ".complete").is_file() and (model / "train_log.jsonl").is_file()
    lines = (model / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == 6, lines  # one line per step, not two runs' worth
    assert not list(home.rglob("*.lock")), list(home.rglob("*.lock"))
