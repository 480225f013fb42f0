"""The pure-Rust crate rust/reward_core packages for crates.io without the Python binding:
`cargo package --list` names its README and sources, and nothing of the PyO3 layer."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")
def test_crate_package_lists_readme_and_sources_but_no_binding() -> None:
    run = subprocess.run(
        ["cargo", "package", "--list", "-p", "reward_core", "--allow-dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    files = set(run.stdout.split())
    assert {"README.md", "Cargo.toml", "src/lib.rs", "examples/full_chain.rs"} <= files
    assert not any(f.endswith("python.rs") for f in files), sorted(files)
    assert not any("reward_core_py" in f for f in files), sorted(files)
    manifest = (ROOT / "rust" / "reward_core" / "Cargo.toml").read_text()
    for dependency in ("pyo3", "numpy"):
        assert not re.search(rf"^{dependency}\s*=", manifest, re.MULTILINE), dependency


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")
def test_rust_example_of_the_full_chain_runs() -> None:
    """examples/full_chain.rs runs the whole chain and checks it against ppo_advantages
    itself (its asserts); a non-zero exit is a failure here."""
    run = subprocess.run(
        ["cargo", "run", "-q", "--example", "full_chain", "-p", "reward_core"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip()
