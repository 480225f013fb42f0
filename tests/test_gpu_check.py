"""scripts/gpu_check.py: `--smoke` runs the GPU check's code path at toy shapes on the CPU
(parts a and b must be "ok", the CUDA-only parts skipped with a reason); the parent's
bookkeeping (a failing or hanging part does not stop the others, skip reasons, launcher
commands, memory figures) is checked without a GPU. The real shapes need a GPU and are run
by hand (docs/dareu.md, "GPU check")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"
TOP_KEYS = {"weights", "note", "smoke", "device", "cuda_devices", "versions", "python",
            "paper_reference", "parts", "total_wall_s"}  # fmt: skip
FIGURES = {"iteration_s", "iteration_s_warm", "generation_tokens_per_s", "iterations",
           "peak_memory_allocated_bytes", "peak_rss_gib", "projected_run_s", "config",
           "shapes", "policy_params", "trainable_params", "attributor_params"}  # fmt: skip


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_smoke_runs_parts_a_and_b_and_skips_the_cuda_parts(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "gpu.json"
    t = time.perf_counter()
    run = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc) >= TOP_KEYS, set(doc) ^ TOP_KEYS
    assert doc["weights"] == "random" and doc["smoke"] is True and doc["device"] == "cpu"
    assert doc["paper_reference"]["run_s"] == 471 and doc["paper_reference"]["peak_memory_gb"] == 69
    assert {"torch", "transformers"} <= set(doc["versions"])
    parts = doc["parts"]
    assert list(parts) == ["a", "b", "b_fsdp2", "c_zero3"]
    for key in ("a", "b"):
        part = parts[key]
        assert part["status"] == "ok", part.get("log_tail")
        assert set(part) >= FIGURES, FIGURES - set(part)
        assert len(part["iteration_s"]) == 2 and part["iteration_s_warm"] > 0
        assert part["generation_tokens_per_s"] > 0
        assert part["peak_memory_allocated_bytes"] is None  # no CUDA: no GPU figure
        assert part["processes"] == 1 and part["trainable_params"] > 0
        assert all(r["ppo_steps_done"] == part["config"]["ppo_steps"] for r in part["iterations"])
    for key in ("b_fsdp2", "c_zero3"):
        assert parts[key]["status"].startswith("skipped: no CUDA"), parts[key]
    assert time.perf_counter() - t < 240


def _args(gc: ModuleType, *extra: str) -> object:
    return gc.parse_args(["--smoke", *extra])


def test_a_failing_and_a_hanging_part_do_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc = _script()
    behaviour = {
        "a": "raise ValueError('boom\\nsecond line')",
        "b": "import json, sys; open(sys.argv[1], 'w').write(json.dumps({'status': 'ok'}))",
    }

    def command(key: str, env: object, a: object, out: Path) -> list[str]:
        return [sys.executable, "-c", behaviour[key], str(out)]

    monkeypatch.setattr(gc, "child_command", command)
    out = tmp_path / "g.json"
    doc = gc.check(_args(gc, "--out", str(out)))
    assert json.loads(out.read_text()) == doc
    a, b = doc["parts"]["a"], doc["parts"]["b"]
    assert a["status"] == "failed: ValueError: boom" and "Traceback" in a["log_tail"]
    assert b["status"] == "ok" and "log_tail" not in b
    # a hanging child is killed at its limit; its status says so
    behaviour["a"] = "import time; time.sleep(60)"
    part = gc.Part("a", "t", {}, {}, 2, "NO")
    t = time.perf_counter()
    res = gc.run_part("a", part, {}, _args(gc), tmp_path, time.monotonic() + 100)
    assert res["status"] == "failed: timed out after 2 s (per-part limit)"
    assert time.perf_counter() - t < 30
    # the overall budget: no time left means the part is not started
    res = gc.run_part("a", part, {}, _args(gc), tmp_path, time.monotonic() + 5)
    assert res["status"] == "skipped: time budget spent (--budget-s)"


def test_skip_reasons_and_launch_commands(tmp_path: Path) -> None:
    gc = _script()
    real = gc.parse_args(["--out", "x.json"])
    two = {"cuda_devices": 2, "deepspeed_import_error": None}
    assert gc.skip_reason("a", {"cuda_devices": 0}, real).startswith("no CUDA")
    assert gc.skip_reason("a", two, real) is None
    assert gc.skip_reason("b_fsdp2", {"cuda_devices": 1}, real) == (
        "FSDP2 needs more than one GPU, 1 present"
    )
    broken = {"cuda_devices": 1, "deepspeed_import_error": "ImportError: no libcudart"}
    if importlib.util.find_spec("deepspeed") is not None:
        assert gc.skip_reason("c_zero3", broken, real) == (
            "deepspeed is not importable: ImportError: no libcudart"
        )
    assert gc.skip_reason("b", two, gc.parse_args(["--parts", "a"])) == "not selected (--parts)"
    fsdp = gc.child_command("b_fsdp2", two, real, tmp_path / "o.json")
    assert fsdp[1:3] == ["-m", "accelerate.commands.launch"]
    assert fsdp[fsdp.index("--config_file") + 1] == str(REPO / "configs/accelerate_fsdp.yaml")
    assert fsdp[fsdp.index("--num_processes") + 1] == "2" and "--worker" in fsdp
    zero3 = gc.child_command("c_zero3", two, real, tmp_path / "o.json")
    assert zero3[zero3.index("--config_file") + 1].endswith("accelerate_deepspeed_zero3.yaml")
    assert zero3[zero3.index("--num_processes") + 1] == "1"
    single = gc.child_command("a", two, real, tmp_path / "o.json")
    assert single[0] == sys.executable and single[single.index("--worker") + 1] == "a"
    assert gc.error_line("x\n[rank1]: torch.OutOfMemoryError: CUDA out of memory.\n") == (
        "torch.OutOfMemoryError: CUDA out of memory."
    )
    with pytest.raises(SystemExit):
        gc.parse_args(["--parts", "a,zz"])


def test_memory_figures_take_the_largest_process() -> None:
    gc = _script()
    m = gc.memory_figures([[2.0 * 2**30, 3.0 * 2**30, 2**30], [4.0 * 2**30, 5.0 * 2**30, 0]])
    assert m["peak_memory_allocated_bytes"] == 4 * 2**30 and m["peak_memory_gib"] == 4.0
    assert m["peak_memory_reserved_gib"] == 5.0
    assert m["peak_memory_allocated_gib_per_process"] == [2.0, 4.0]


def test_tokenizer_is_padded_to_the_real_vocabulary_with_silent_fillers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAREU_HOME", str(tmp_path))
    from dareu.data import load_benchmark

    gc = _script()
    bench = load_benchmark("synthetic")
    tok = gc.make_tokenizer(bench, 32000)
    plain = gc.make_tokenizer(bench, 0)
    assert len(tok) == 32000 and len(plain) < 32000
    text = bench.forget[0].question
    assert tok(text)["input_ids"] == plain(text)["input_ids"]  # fillers are never produced
    ids = plain(text, add_special_tokens=False)["input_ids"]
    assert tok.decode([31999, *ids, len(plain)], skip_special_tokens=True) == text
