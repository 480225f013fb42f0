"""Run many CLI invocations in one interpreter, so torch is imported once.

tests/test_bad_inputs.py sends a JSON list of {"script", "argv"} on stdin; for each case
this calls the script's `main(argv)` with stdout/stderr captured, exactly as
`sys.exit(main())` would run it (an uncaught exception is printed as a traceback, exit 1),
and lists the output root ($DAREU_HOME) before and after. Results go to stdout as JSON.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
_modules: dict[str, ModuleType] = {}


def listing(root: Path) -> list[str]:
    """Every path under `root`, so a case that leaves anything behind is caught."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def script(name: str) -> ModuleType:
    if name not in _modules:
        spec = importlib.util.spec_from_file_location(f"cli_{name}", SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name]


def run_case(case: dict[str, Any], home: Path) -> dict[str, Any]:
    before = listing(home)
    t0 = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: Any = script(case["script"]).main(case["argv"])
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            traceback.print_exc()
            code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        err.write(f"{code}\n")
        code = 1
    after = listing(home)
    return {
        "code": code,
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "new": sorted(set(after) - set(before)),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    cases = json.load(sys.stdin)
    home = Path(os.environ["DAREU_HOME"])
    results = [run_case(c, home) for c in cases]
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
