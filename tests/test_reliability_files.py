"""Output files: readable by everyone the 0755 folders are shared with (safetensors wrote
0600), and no lock files left behind (`.step-N.lock`, `..name.staging-PID.lock` piled up)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dareu.cache import _lock, atomic_dir, share_files
from dareu.train.checkpoint import list_checkpoints, save_checkpoint


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_safetensors_in_an_atomic_dir_are_0644_and_no_lock_is_left(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
        (tmp / "sub").mkdir()
        save_file({"w": torch.zeros(2)}, str(tmp / "sub" / "adapter.safetensors"))
    assert mode(target) == 0o755
    assert mode(target / "model.safetensors") == 0o644
    assert mode(target / "sub" / "adapter.safetensors") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "lock or temp file left"


def test_share_files_keeps_exec_bits_and_only_adds_read(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").write_text("x")
    os.chmod(tmp_path / "a", 0o600)
    os.chmod(tmp_path / "b", 0o700)
    share_files(tmp_path)
    assert (mode(tmp_path / "a"), mode(tmp_path / "b")) == (0o644, 0o744)


def test_checkpoints_are_0644_and_leave_no_lock_files(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, opt, sched, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002", "step-00000003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002", "step-00000003"]
    for f in (tmp_path / "step-00000003").iterdir():
        assert mode(f) == 0o644, f


def test_staging_folders_leave_no_lock_files(tmp_path: Path) -> None:
    # The evaluator's pattern: atomic_dir on ".NAME.staging-PID", then renamed.
    staging = tmp_path / f".eval.staging-{os.getpid()}"
    with atomic_dir(staging) as tmp:
        (tmp / "x.json").write_text("{}")
    os.replace(staging, tmp_path / "eval")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]


def test_lock_is_exclusive_and_removed_under_contention(tmp_path: Path) -> None:
    """Threads open the file separately, so they contend like processes do; a waiter on
    a lock file that the holder removed must not get in alongside a newcomer."""
    path = tmp_path / ".x.lock"
    inside, most, count = [0], [0], [0]
    guard = threading.Lock()

    def work() -> None:
        for _ in range(15):
            with _lock(path):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                value = count[0]
                time.sleep(0.0005)
                count[0] = value + 1
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1, "two holders at once"
    assert count[0] == 6 * 15
    assert not path.exists()


def test_lock_file_is_removed_after_an_error(tmp_path: Path) -> None:
    path = tmp_path / ".y.lock"
    with pytest.raises(RuntimeError), _lock(path):
        raise RuntimeError("boom")
    assert not path.exists()
    with _lock(path):  # and can be taken again
        assert path.exists()
