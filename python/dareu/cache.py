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
import sys
import tempfile
from collections.abc import Callable, Iterator
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


def lock_file(path: Path) -> Path:
    """The lock file of a stage folder or output: a hidden file beside it."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def _lock_holder(path: Path) -> str:
    """The PID written into a held lock file, for the waiting message."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def _lock(path: Path, *, announce: str | None = None) -> Iterator[None]:
    """An exclusive advisory lock on `path` (POSIX flock) holding this process's PID; the
    file is removed afterwards, so lock files do not pile up beside every output.

    Removing a lock file others may be waiting on is safe with one check: the holder
    unlinks it before unlocking, and a waiter that then gets the lock sees that `path` no
    longer names the file it locked, and starts over on a fresh file. A file left by a
    killed holder is harmless: the kernel released its flock when the process died.
    With `announce`, a wait is reported on stderr once, naming the holder's PID.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if announce is not None:
                    print(
                        f"[dareu] waiting for {announce}: PID {_lock_holder(path)} is running "
                        f"the same stage (lock {path})",
                        file=sys.stderr,
                        flush=True,
                    )
                    announce = None
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                current = False
            if not current:
                continue  # the previous holder removed it; lock the new one
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            return
        finally:
            os.close(fd)  # releases the lock, after the unlink


@contextlib.contextmanager
def stage_lock(folder: Path, *, enabled: bool = True) -> Iterator[None]:
    """Hold the exclusive lock of a stage folder while computing it, so a second run of the
    same stage (same DAREU_HOME) waits for the first and then finds its finished output
    instead of deleting or appending to the folder under it.

    `enabled=False` (non-main ranks of a distributed run: the main rank holds the lock for
    the group) makes it a no-op; callers re-check their cache after entering.
    """
    if not enabled:
        yield
        return
    with _lock(lock_file(folder), announce=str(folder)):
        yield


def build_once(
    out: Path, lock_dir: Path, build: Callable[[], Path], *, force: bool, state: Any
) -> Path:
    """A cached stage: reuse `out` when it is complete, else `build()` it under the lock of
    `lock_dir`, looking again once the lock is held (a concurrent run may have built it
    meanwhile). `state`: the process group (only its main process takes the lock)."""
    if is_complete(out) and not force:
        state.print(f"cached: {out}")
        return out
    with stage_lock(lock_dir, enabled=state.is_main_process):
        state.wait_for_everyone()
        if is_complete(out) and not force:
            state.print(f"cached: {out}")
            return out
        return build()


def check_output_dir(path: str | Path, flag: str) -> Path:
    """Refuse an output folder that cannot be created or written, before any compute and
    without creating anything; ValueError names `flag`."""
    p = Path(path).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise ValueError(f"{flag} {p}: is a file, expected a folder")
    anc = p
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise ValueError(f"{flag} {p}: {anc} is a file, so the folder cannot be created")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {p}: {anc} is not writable")
    try:  # os.access says yes to root even on a read-only file system
        fd, probe = tempfile.mkstemp(prefix=".dareu-write-test-", dir=anc)
    except OSError as err:
        raise ValueError(f"{flag} {p}: {anc} cannot be written ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return p


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
        with _lock(lock_file(target)):
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
