"""The two distributions and their wheels (README, "Installation").

`dareu-reward-core` (rust/reward_core_py) is the compiled reward core with its numpy API and
numpy as its only dependency; `dareu` is pure Python and pins it. The slow tests build the
core's wheels as `make wheel` / `make wheel-aarch64` do (maturin with zig, same flags and
cargo target folder, so a previous `make wheel` makes them quick) and check with auditwheel
that they are abi3 manylinux2014 (glibc 2.17) wheels without the test hooks, and that the
wheel works next to numpy with torch unimportable.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import dareu_reward_core
import pytest

import dareu
import dareu.reward

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "rust" / "reward_core_py"
BIN = Path(sys.executable).parent
TEST_HOOKS = (b"_input_address", b"_panic_for_test", b"_sleep_without_gil")
# numpy only; the import of torch fails (it is None in sys.modules).
SMOKE = """
import sys
sys.modules["torch"] = None
import numpy as np
import dareu_reward_core as rc
assert rc.__file__.startswith(sys.argv[1]), rc.__file__
lengths = np.array([5, 3, 0])
ends = rc.segment_schedule(lengths, 6)[0]
scores = np.full((3, ends.shape[1]), 0.9, np.float32)
kl = np.zeros((3, 6), np.float32)
rewards, advantages, returns = rc.ppo_advantages(scores, kl, kl, lengths)
assert rewards.shape == (3, 6) and rewards[0, 0] == -1.0, rewards
if sys.argv[2] == "wheel":  # the test hooks are in the development build only
    assert not hasattr(rc._reward_core, "_panic_for_test")
print("ok")
"""


def _cargo_version() -> str:
    manifest = (ROOT / "Cargo.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', manifest, re.MULTILINE)
    assert match, "no workspace version in Cargo.toml"
    return match.group(1)


def test_dareu_pins_the_reward_core_of_its_own_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = re.findall(r'"dareu-reward-core==([^"]+)"', pyproject)
    assert pins == [_cargo_version()] == [dareu.__version__]
    assert 'build-backend = "maturin"' not in pyproject  # pure Python now
    core = (CORE / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*)\]$", core, re.MULTILINE)
    assert deps and re.findall(r'"([a-z_-]+)', deps.group(1)) == ["numpy"]


def test_one_compiled_module_under_two_names() -> None:
    assert dareu_reward_core.__version__ == _cargo_version()
    assert dareu._reward_core is dareu_reward_core._reward_core
    for name in dareu_reward_core.__all__:
        if name != "__version__":
            assert getattr(dareu.reward, name) is getattr(dareu_reward_core, name), name


def test_reward_core_package_does_not_import_torch() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SMOKE, str(Path(dareu_reward_core.__file__).parent), "dev"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def _wheel_tools() -> None:
    missing = [
        what
        for what, ok in (
            ("cargo", shutil.which("cargo") is not None),
            ("maturin", (BIN / "maturin").exists() or shutil.which("maturin") is not None),
            ("ziglang", importlib.util.find_spec("ziglang") is not None or shutil.which("zig")),
            ("auditwheel", importlib.util.find_spec("auditwheel") is not None),
        )
        if not ok
    ]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make wheel installs them)")


def _build_core_wheel(out: Path, target: str | None = None) -> Path:
    """The core's wheel as `make wheel` builds it (the Makefile's MATURIN_WHEEL)."""
    maturin = str(BIN / "maturin") if (BIN / "maturin").exists() else "maturin"
    cmd = [maturin, "build", "--release", "--zig", "--compatibility", "manylinux2014"]
    cmd += ["-m", str(CORE / "Cargo.toml"), "--out", str(out)]
    if target:
        cmd += ["--target", target]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("CARGO_BUILD_JOBS", "1")
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert run.returncode == 0, run.stderr[-4000:]
    (wheel,) = out.glob("dareu_reward_core-*.whl")
    return wheel


def _check_core_wheel(wheel: Path, arch: str) -> None:
    assert wheel.name.startswith(f"dareu_reward_core-{_cargo_version()}-cp310-abi3-")
    assert f"manylinux2014_{arch}" in wheel.name and f"manylinux_2_17_{arch}" in wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = f"dareu_reward_core-{_cargo_version()}.dist-info"
        tags = [t for t in z.read(f"{info}/WHEEL").decode().splitlines() if t.startswith("Tag:")]
        meta = z.read(f"{info}/METADATA").decode().splitlines()
        (so,) = [n for n in names if n.endswith(".so")]
        binary = z.read(so)
    assert so == "dareu_reward_core/_reward_core.abi3.so"
    assert {"dareu_reward_core/__init__.py", "dareu_reward_core/py.typed"} <= set(names)
    assert "dareu_reward_core/_reward_core.pyi" in names
    assert not any(n.startswith("dareu/") for n in names), names  # the core only
    assert f"Tag: cp310-abi3-manylinux2014_{arch}" in tags, tags
    assert [m for m in meta if m.startswith("Requires-Dist:")] == ["Requires-Dist: numpy>=1.24"]
    for hook in TEST_HOOKS:
        assert hook not in binary, f"test hook {hook!r} in a wheel"
    show = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert show.returncode == 0, show.stderr
    text = " ".join(show.stdout.split())
    assert f'consistent with the following platform tag: "manylinux_2_17_{arch}"' in text, text


@pytest.mark.slow
def test_core_wheel_is_abi3_manylinux2014_and_runs_with_numpy_only(tmp_path: Path) -> None:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("builds the x86_64 Linux wheel")
    _wheel_tools()
    wheel = _build_core_wheel(tmp_path / "dist")
    _check_core_wheel(wheel, "x86_64")
    # A fresh venv (no system packages): pip resolves the wheel to itself and numpy.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    vpy = str(venv / "bin" / "python")
    install = subprocess.run([vpy, "-m", "pip", "install", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
    assert install.returncode == 0, install.stderr
    listed = subprocess.run([vpy, "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    names = sorted(line.split("==")[0].lower() for line in listed.split())
    assert [n for n in names if n not in ("pip", "setuptools")] == ["dareu-reward-core", "numpy"]
    site = subprocess.run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, timeout=60).stdout.strip()  # fmt: skip
    run = subprocess.run([vpy, "-c", SMOKE, site, "wheel"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def _has_rust_target(target: str) -> bool:
    if shutil.which("rustc") is None:
        return False
    run = subprocess.run(
        ["rustc", "--print", "target-libdir", "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return run.returncode == 0 and Path(run.stdout.strip()).is_dir()


@pytest.mark.slow
def test_core_wheel_cross_builds_for_aarch64_manylinux2014(tmp_path: Path) -> None:
    _wheel_tools()
    if not _has_rust_target("aarch64-unknown-linux-gnu"):
        pytest.skip(
            "no Rust standard library for aarch64-unknown-linux-gnu: "
            "`rustup target add aarch64-unknown-linux-gnu` (needs static.rust-lang.org)"
        )
    wheel = _build_core_wheel(tmp_path / "dist", "aarch64-unknown-linux-gnu")
    _check_core_wheel(wheel, "aarch64")


@pytest.mark.slow
def test_dareu_wheel_is_pure_python_and_pins_the_core(tmp_path: Path) -> None:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling not installed (make wheel installs it)")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("dareu-*.whl")
    assert wheel.name == f"dareu-{dareu.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(f"dareu-{dareu.__version__}.dist-info/METADATA").decode().splitlines()
    assert {"dareu/__init__.py", "dareu/py.typed", "dareu/_reward_core.py"} <= set(names)
    assert "dareu/reward/__init__.py" in names
    assert not any(n.endswith((".so", ".pyd")) for n in names), names
    assert not any(n.startswith("dareu_reward_core/") for n in names), names
    assert f"Requires-Dist: dareu-reward-core=={_cargo_version()}" in meta
    # the console command and the shipped Accelerate configs, read from the wheel file
    with zipfile.ZipFile(wheel) as z:
        entry = z.read(f"dareu-{dareu.__version__}.dist-info/entry_points.txt").decode()
    assert "dareu = dareu.cli:main" in entry
    for name in ("single", "ddp", "fsdp", "deepspeed_zero3"):
        assert f"dareu/configs/accelerate_{name}.yaml" in names
    assert "dareu/configs/dareu_paper.yaml" in names
