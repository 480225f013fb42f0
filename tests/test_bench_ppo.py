"""scripts/bench_ppo.py: the phase timers and the table (the measurement itself needs the
default job's cached models and is run by hand; docs/dareu.md has its figures)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_ppo.py"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("bench_ppo", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_timers_accumulate_and_the_table_accounts_for_every_second() -> None:
    bp = _script()
    t: dict[str, float] = {}
    slow = bp._timed(t, "generation", lambda x: time.sleep(0.01) or x)
    assert slow(3) == 3 and slow(4) == 4 and t["generation"] >= 0.02
    run = {"batches": 2, "iteration_s": 1.0, "total_s": 2.0, "tokens": 100, "peak_rss_mb": 10.0,
           "phases": {"generation": 0.5, "backward": 1.0, "update_rest": 0.25}}  # fmt: skip
    md = bp.table("x", [run])
    assert "| generation | 0.250 | 25.0% |" in md and "| backward | 0.500 | 50.0% |" in md
    assert "| other (decode, gathers, logging) | 0.125 | 12.5% |" in md
    assert "50 rollout tokens/s" in md


def test_scale_runs_fix_the_response_length() -> None:
    """The scale sweep's model wrapper asks generate for exactly the requested length."""
    bp = _script()
    seen: dict[str, Any] = {}

    class Model:
        def generate(self, **kwargs: Any) -> str:
            seen.update(kwargs)
            return "ids"

    assert bp._FixedLength(Model(), 64).generate(max_new_tokens=64) == "ids"
    assert seen == {"max_new_tokens": 64, "min_new_tokens": 64}
    assert {length for _, length in bp.SCALE} == {None, 32, 64, 128}
    assert {n for n, _ in bp.SCALE} == {16, 32, 64}
