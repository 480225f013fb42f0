"""Content-addressed stage outputs and atomic writes.

Every stage (data, base model, fine-tuned models, attributor, unlearning, evaluation)
writes into a folder named by a hash of its inputs, so a re-run reuses it and a killed
run never leaves a half-written folder that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DONE_MARKER = ".complete"


def output_root() -> Path:
    """Where runs and caches live: $DAREU_HOME, else ./runs."""
    return Path(os.environ.get("DAREU_HOME", "runs")).resolve()


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return repr(obj)


def content_hash(*parts: Any, length: int = 12) -> str:
    """Stable short hash of JSON-able parts (dicts are key-sorted)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(_canonical(p), sort_keys=True).encode())
        h.update(b"\x00")
    return h.hexdigest()[:length]


def hash_files(paths: list[Path]) -> str:
    """Hash of file contents, for cache keys that depend on data or weights on disk."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (POSIX flock); the file is removed afterwards,
    so lock files do not pile up beside every output.

    Removing a lock file others may be waiting on is safe with one check: the holder
    unlinks it before unlocking, and a waiter that then gets the lock sees that `path` no
    longer names the file it locked, and starts over on a fresh file.
    """
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                current = False
            if not current:
                continue  # the previous holder removed it; lock the new one
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            return
        finally:
            os.close(fd)  # releases the lock, after the unlink


def share_files(folder: Path) -> None:
    """Make every file under `folder` readable by group and others (0644 for 0600).

    Some writers go through a private temp file (safetensors' `save_file`, and so
    `save_pretrained`, leaves 0600 files) while the folders are 0755 on purpose:
    cached outputs are meant to be shared.
    """
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            mode = os.lstat(p).st_mode
            if stat.S_ISREG(mode) and mode & 0o044 != 0o044:
                os.chmod(p, stat.S_IMODE(mode) | 0o044)


def is_complete(folder: Path) -> bool:
    return (folder / DONE_MARKER).exists()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success rename it into place, marked complete.

    On an exception the temp folder is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; cached outputs are meant to be shared
    try:
        yield tmp
        share_files(tmp)
        (tmp / DONE_MARKER).write_text("ok\n")
        # Two processes may finish the same stage: the first complete folder wins.
        with _lock(target.parent / f".{target.name}.lock"):
            if is_complete(target):
                shutil.rmtree(tmp, ignore_errors=True)
                return
            if target.exists():
                shutil.rmtree(target)  # an incomplete leftover of a killed run
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file via a temp file and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
