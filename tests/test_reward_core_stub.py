"""The hand-written `_reward_core.pyi` matches the compiled module: the same public names,
and for every function the same parameters, in order, of the same kind, with the same
literal defaults (a constant default is `...` on both sides)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import dareu._reward_core as core

STUB = Path(core.__file__).with_name("_reward_core.pyi")
# Built only into the development install (cargo feature test-hooks), never into a wheel,
# so the stub leaves them out.
TEST_HOOKS = {"_input_address", "_panic_for_test", "_sleep_without_gil"}


def _stub() -> tuple[dict[str, ast.FunctionDef], set[str]]:
    tree = ast.parse(STUB.read_text())
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    consts = {
        n.target.id
        for n in tree.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    return funcs, consts


def _literal(node: ast.expr | None) -> Any:
    value = ast.literal_eval(node) if node is not None else inspect.Parameter.empty
    return Ellipsis if value is ... else value


def test_stub_names_are_the_module_names() -> None:
    funcs, consts = _stub()
    runtime = {n for n in dir(core) if not n.startswith("__")} - TEST_HOOKS
    runtime_funcs = {n for n in runtime if callable(getattr(core, n))}
    assert set(funcs) == runtime_funcs
    assert consts == runtime - runtime_funcs


@pytest.mark.parametrize("name", sorted(_stub()[0]))
def test_stub_signature_is_the_module_signature(name: str) -> None:
    node = _stub()[0][name]
    sig = inspect.signature(getattr(core, name))
    a = node.args
    positional = a.posonlyargs + a.args
    pos_defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    stub = [(p.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, d) for p, d in
            zip(positional, pos_defaults, strict=True)]  # fmt: skip
    stub += [(p.arg, inspect.Parameter.KEYWORD_ONLY, d) for p, d in
             zip(a.kwonlyargs, a.kw_defaults, strict=True)]  # fmt: skip
    params = list(sig.parameters.values())
    assert [p.name for p in params] == [s[0] for s in stub], name
    for p, (arg, kind, default) in zip(params, stub, strict=True):
        want_kind = (
            inspect.Parameter.POSITIONAL_OR_KEYWORD
            if p.kind is inspect.Parameter.POSITIONAL_ONLY
            else p.kind
        )
        assert want_kind == kind, (name, arg)
        assert p.default == _literal(default), (name, arg, p.default)
