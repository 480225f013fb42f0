"""`load_attributor(spec)`: pick an attribution function from one command-line string.

Grammar (whitespace ignored):
    spec    := member | ("max" | "mean") "(" spec ("," spec)* ")"
    member  := "classifier" [":" PATH] | "ngram" [":" N] | "embedding" ":" PATH | PATH
A bare PATH is a folder with attribution.json (any kind). `classifier` without a path
trains (or reuses from the cache) the default classifier on `benchmark`; `ngram` and an
`embedding` encoder path (a folder without attribution.json) also need `benchmark`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dareu.attribution.base import AttributionError, Attributor
from dareu.data.schema import Benchmark

COMBINERS = ("max", "mean")


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise AttributionError(f"attributor spec has an unmatched ')': {s!r}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise AttributionError(f"attributor spec has an unmatched '(': {s!r}")
    parts.append(cur)
    return parts


def parse_spec(spec: str) -> tuple[str | None, list[str]]:
    """("max" | "mean", member specs) for a combined spec, (None, [spec]) for one attributor;
    whitespace removed, parentheses checked. Members may themselves be combined."""
    s = "".join(str(spec).split())
    if not s:
        raise AttributionError("attributor spec is empty; e.g. 'classifier:PATH' or 'ngram'")
    for how in COMBINERS:
        if s.startswith(how + "("):
            if not s.endswith(")"):
                raise AttributionError(
                    f"attributor spec {spec!r} has an unmatched '(': {how}(...) must end with ')'"
                )
            inner = _split_top(s[len(how) + 1 : -1])
            if any(not p for p in inner):
                raise AttributionError(f"attributor spec {spec!r} has an empty member")
            return how, inner
    return None, [s]


def _bench(benchmark: Benchmark | str | Path | None, what: str) -> Benchmark:
    if benchmark is None:
        raise AttributionError(f"attributor {what!r} needs the benchmark (pass benchmark=...)")
    if isinstance(benchmark, Benchmark):
        return benchmark
    from dareu.data import load_benchmark

    return load_benchmark(benchmark)


def load_attributor(
    spec: str,
    *,
    benchmark: Benchmark | str | Path | None = None,
    tokenizer: Any | None = None,
    device: str | torch.device | None = None,
    dtype: str = "fp32",
    batch_size: int = 32,
    progress: bool = True,
) -> Attributor:
    """Build the attributor named by `spec` (see the module docstring).

    tokenizer: the policy's tokenizer; needed to decode token-id responses for attributors
        with another vocabulary (a classifier on another tokenizer, ngram, embedding).
    device/dtype: where model-based attributors run.
    progress: show the progress bar of a classifier trained on first use.
    """
    from dareu.attribution.classifier import ClassifierAttributor, read_meta
    from dareu.attribution.combine import CombinedAttributor

    how, members = parse_spec(spec)
    kw: dict[str, Any] = {
        "benchmark": benchmark,
        "tokenizer": tokenizer,
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
        "progress": progress,
    }
    if how is not None:
        return CombinedAttributor([load_attributor(p, **kw) for p in members], how=how)
    s = members[0]
    name, _, arg = s.partition(":")
    if name == "classifier":
        if arg:
            return ClassifierAttributor.from_pretrained(
                arg, device=device, dtype=dtype, policy_tokenizer=tokenizer, batch_size=batch_size
            )
        from dareu.attribution.training import AttributorConfig, ensure_attributor

        path = ensure_attributor(
            _bench(benchmark, "classifier"), AttributorConfig(), progress=progress
        )
        return ClassifierAttributor.from_pretrained(
            path, device=device, dtype=dtype, policy_tokenizer=tokenizer, batch_size=batch_size
        )
    if name == "ngram":
        from dareu.attribution.ngram import NgramAttributor

        n = 2
        if arg:
            if not arg.isdigit() or int(arg) < 1:
                raise AttributionError(
                    f"attributor spec {spec!r}: ngram:N needs a positive integer N"
                )
            n = int(arg)
        return NgramAttributor.from_benchmark(
            _bench(benchmark, "ngram"), n=n, policy_tokenizer=tokenizer
        )
    if name == "embedding":
        from dareu.attribution.embedding import EmbeddingAttributor, ensure_embedding_attributor

        if not arg:
            raise AttributionError("attributor spec 'embedding' needs a path: embedding:PATH")
        p = Path(arg).expanduser()
        if not p.exists():
            raise AttributionError(f"embedding path {p} does not exist")
        if not (p / "attribution.json").is_file():
            p = ensure_embedding_attributor(_bench(benchmark, "embedding"), p)
        return EmbeddingAttributor.from_pretrained(
            p, device=device, policy_tokenizer=tokenizer, batch_size=batch_size
        )
    if ":" not in s and ("/" in s or Path(s).expanduser().exists()):
        p = Path(s).expanduser()
        kind = read_meta(p).get("kind", "classifier")
        return load_attributor(f"{kind}:{p}", **kw)
    raise AttributionError(
        f"unknown attributor spec {spec!r}; use classifier[:PATH], ngram[:N], embedding:PATH, "
        "a trained attributor folder, or max(...)/mean(...) of those"
    )
