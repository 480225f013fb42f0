"""The Rust reward core agrees with the numpy reference (and torch_impl with both).

Property tests draw random ragged batches; edge cases are spelled out below them.
Outputs are float32, so the comparison is to 1e-6 absolute plus 1e-6 relative (a
float32 return of magnitude 100 cannot be closer than ~4e-6 absolutely).
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dareu.reward as rc
from dareu import _reward_core
from dareu.reward import reference as ref
from dareu.reward import torch_impl as ti


def close(got: Any, want: Any, tol: float = 1e-6) -> None:
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want), rtol=tol, atol=tol)


@dataclass
class Batch:
    scores: np.ndarray
    kl: np.ndarray
    values: np.ndarray
    lengths: np.ndarray
    seg: dict[str, int | None]
    params: dict[str, Any]


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    b = draw(st.integers(0, 7))
    t = draw(st.integers(0, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # mix of random lengths and the interesting ones (0, 1, T)
    lengths = np.array(
        [draw(st.sampled_from([0, 1, t, int(rng.integers(0, t + 1))])) for _ in range(b)],
        dtype=np.int64,
    ).clip(0, t)
    if draw(st.booleans()):
        seg: dict[str, int | None] = {"k": draw(st.integers(1, 20)), "kappa": None}
    else:
        seg = {"k": None, "kappa": draw(st.integers(1, 60))}
    width = ref.max_segments(t, seg["k"], seg["kappa"]) + draw(st.integers(0, 2))
    scores = rng.random((b, width)).astype(np.float32)
    if b and width:  # exact 0 and 1 are legal probabilities
        scores.flat[rng.integers(0, scores.size, 2)] = rng.choice([0.0, 1.0], 2)
    kl = rng.normal(0, 0.5, (b, t)).astype(np.float32)
    values = rng.normal(0, 1, (b, t)).astype(np.float32)
    params = {
        "c_seg": draw(st.sampled_from([1.05, 0.5, 2.0])),
        "eps": draw(st.sampled_from([1e-6, 1e-3])),
        "kl_coef": draw(st.sampled_from([0.1, 0.0, 1.0])),
        "gamma": draw(st.sampled_from([1.0, 0.99, 0.5])),
        "lam": draw(st.sampled_from([0.95, 1.0, 0.0])),
        "shift_mean": draw(st.booleans()),
    }
    return Batch(scores, kl, values, lengths, seg, params)


@settings(max_examples=150, deadline=None)
@given(batches())
def test_schedule_matches_reference(batch: Batch) -> None:
    t = batch.kl.shape[1]
    got = rc.segment_schedule(batch.lengths, t, **batch.seg)
    want = ref.segment_schedule(batch.lengths, t, **batch.seg)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w)
    prefix_ends, n_seg, _ = got
    for i, length in enumerate(batch.lengths):
        ends = prefix_ends[i, : n_seg[i]]
        assert (np.diff(ends) > 0).all() and (prefix_ends[i, n_seg[i] :] == 0).all()
        assert (ends[-1] == length) if length else n_seg[i] == 0
        if batch.seg["k"] is not None:
            assert n_seg[i] <= batch.seg["k"]


@settings(max_examples=150, deadline=None)
@given(batches())
def test_pipeline_matches_reference_and_torch(batch: Batch) -> None:
    p, seg = batch.params, batch.seg
    rkw: dict[str, Any] = {"c_seg": p["c_seg"], "eps": p["eps"], "kl_coef": p["kl_coef"], **seg}
    gkw: dict[str, Any] = {"gamma": p["gamma"], "lam": p["lam"]}
    args = (batch.scores, batch.kl, batch.values, batch.lengths)

    fused = rc.ppo_advantages(
        batch.scores,
        batch.kl,
        batch.values,
        batch.lengths,
        **rkw,
        **gkw,
        shift_mean=p["shift_mean"],
    )
    want = ref.ppo_advantages(
        batch.scores,
        batch.kl,
        batch.values,
        batch.lengths,
        **rkw,
        **gkw,
        shift_mean=p["shift_mean"],
    )
    ts, tk, tv, tl = (torch.from_numpy(a) for a in args)
    torch_out = ti.ppo_advantages(ts, tk, tv, tl, **rkw, **gkw, shift_mean=p["shift_mean"])
    for got, w, tt in zip(fused, want, torch_out, strict=True):
        assert got.dtype == np.float32 and got.shape == batch.kl.shape
        close(got, w)
        close(tt.numpy(), w, tol=1e-9)

    # the separate calls agree with the reference too
    rewards = rc.assemble_rewards(batch.scores, batch.kl, batch.lengths, **rkw)
    close(rewards, want[0])
    adv, ret = rc.gae(want[0].astype(np.float32), batch.values, batch.lengths, **gkw)
    ref_adv, ref_ret = ref.gae(want[0].astype(np.float32), batch.values, batch.lengths, **gkw)
    close(adv, ref_adv)
    close(ret, ref_ret)
    white = rc.whiten(ref_adv.astype(np.float32), batch.lengths, shift_mean=p["shift_mean"])
    close(white, ref.whiten(ref_adv.astype(np.float32), batch.lengths, shift_mean=p["shift_mean"]))
    unwhitened = rc.ppo_advantages(
        batch.scores, batch.kl, batch.values, batch.lengths, **rkw, **gkw, whiten=False
    )[1]
    close(unwhitened, ref.gae(want[0], batch.values, batch.lengths, **gkw)[0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1, width=32), max_size=30), st.sampled_from([1e-6, 0.1]))
def test_chi_matches_reference(xs: list[float], eps: float) -> None:
    x = np.array(xs, dtype=np.float32)
    got = rc.chi(x, eps=eps)
    close(got, ref.chi(x, eps=eps))
    assert ((got <= 0) & (got >= -1)).all()
    np.testing.assert_allclose(ti.chi(torch.from_numpy(x).double(), eps=eps), ref.chi(x, eps=eps))


def test_chi_values_and_shape() -> None:
    x = np.array([[0.0, 0.5], [0.9, 1.0]], dtype=np.float32)
    got = rc.chi(x)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got[0, 1], np.log(0.5) / 1.05, rtol=1e-6)
    assert got[1, 0] == -1.0 and got[1, 1] == -1.0  # ln(0.1) / 1.05 < -1 is clipped
    assert -2e-6 < got[0, 0] <= 0.0


def test_constants_match_the_paper_and_the_reference() -> None:
    assert (rc.C_SEG, rc.K_SLICES, rc.CHI_EPS, rc.KL_COEF) == (1.05, 15, 1e-6, 0.1)
    assert (rc.GAMMA, rc.GAE_LAMBDA, rc.WHITEN_EPS) == (ref.GAMMA, ref.GAE_LAMBDA, 1e-8)
    assert (ref.C_SEG, ref.K_SLICES, ref.CHI_EPS, ref.KL_COEF) == (1.05, 15, 1e-6, 0.1)


# ---- edge cases, spelled out ---------------------------------------------------------


def _run_all(scores: np.ndarray, kl: np.ndarray, lengths: np.ndarray, **seg: Any) -> None:
    values = np.linspace(-1, 1, kl.size, dtype=np.float32).reshape(kl.shape)
    got = rc.ppo_advantages(scores, kl, values, lengths, **seg)
    want = ref.ppo_advantages(scores, kl, values, lengths, **seg)
    for g, w in zip(got, want, strict=True):
        assert g.shape == kl.shape
        close(g, w)


def test_length_zero_one_and_full_rows() -> None:
    lengths = np.array([0, 1, 6], dtype=np.int64)
    scores = np.full((3, 15), 0.5, dtype=np.float32)
    kl = np.ones((3, 6), dtype=np.float32)
    rewards, adv, ret = rc.ppo_advantages(scores, kl, np.zeros_like(kl), lengths)
    assert (rewards[0] == 0).all() and (adv[0] == 0).all() and (ret[0] == 0).all()
    np.testing.assert_allclose(rewards[1, 0], np.log(0.5) / 1.05 - 0.1, rtol=1e-6)
    assert (rewards[1, 1:] == 0).all()
    _run_all(scores, kl, lengths)
    _, n_seg, tok = rc.segment_schedule(lengths, 6)
    assert list(n_seg) == [0, 1, 6] and (tok[0] == -1).all()


def test_kappa_at_least_length_is_one_segment() -> None:
    lengths = np.array([3, 5], dtype=np.int64)
    prefix_ends, n_seg, tok = rc.segment_schedule(lengths, 5, kappa=5)
    assert prefix_ends.tolist() == [[3], [5]] and n_seg.tolist() == [1, 1]
    assert tok.tolist() == [[0, 0, 0, -1, -1], [0] * 5]
    _, n_seg, _ = rc.segment_schedule(lengths, 5, kappa=1000)
    assert n_seg.tolist() == [1, 1]
    _run_all(np.full((2, 1), 0.3, np.float32), np.zeros((2, 5), np.float32), lengths, kappa=9)


def test_fewer_segments_than_k() -> None:
    # L = 16, k = 15 -> kappa = 2 -> 8 segments, not 15
    prefix_ends, n_seg, _ = rc.segment_schedule(np.array([16]), 16, k=15)
    assert n_seg.tolist() == [8]
    assert prefix_ends[0].tolist() == [2, 4, 6, 8, 10, 12, 14, 16] + [0] * 7


def test_all_padding_batch_and_single_row_and_empty_batch() -> None:
    lengths = np.zeros(3, dtype=np.int64)
    ones = np.ones((3, 4), np.float32)
    out = rc.ppo_advantages(np.zeros((3, 0), np.float32), ones, ones, lengths)
    assert all((o == 0).all() for o in out)
    _run_all(np.full((1, 15), 0.9, np.float32), np.ones((1, 40), np.float32), np.array([37]))
    empty = np.zeros((0, 8), np.float32)
    out = rc.ppo_advantages(np.zeros((0, 15), np.float32), empty, empty, np.zeros(0, np.int64))
    assert all(o.shape == (0, 8) for o in out)
    prefix_ends, n_seg, tok = rc.segment_schedule(np.zeros(0, np.int64), 0)
    assert prefix_ends.shape == (0, 0) and n_seg.shape == (0,) and tok.shape == (0, 0)


def test_whiten_with_one_valid_token() -> None:
    x = np.array([[3.0, 9.0]], dtype=np.float32)
    assert rc.whiten(x, np.array([1])).tolist() == [[0.0, 0.0]]
    np.testing.assert_allclose(rc.whiten(x, np.array([1]), shift_mean=False), [[3.0, 0.0]])


def test_padding_is_never_read() -> None:
    """NaN in padded positions (and unused score columns) does not leak into outputs."""
    lengths = np.array([2, 4], dtype=np.int64)
    kl = np.zeros((2, 4), np.float32)
    values = np.zeros((2, 4), np.float32)
    kl[0, 2:] = np.nan
    values[0, 2:] = np.inf
    scores = np.full((2, 15), 0.2, np.float32)
    scores[0, 2:] = np.nan  # row 0 has 2 segments
    out = rc.ppo_advantages(scores, kl, values, lengths)
    assert all(np.isfinite(o).all() for o in out)
    assert (out[1][0, 2:] == 0).all()


def test_returns_use_unwhitened_advantages() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((4, 15)).astype(np.float32)
    kl = rng.random((4, 30)).astype(np.float32)
    values = rng.random((4, 30)).astype(np.float32)
    lengths = np.array([30, 12, 0, 7])
    _, white, ret = rc.ppo_advantages(scores, kl, values, lengths)
    _, raw, ret2 = rc.ppo_advantages(scores, kl, values, lengths, whiten=False)
    np.testing.assert_array_equal(ret, ret2)
    mask = np.arange(30)[None] < lengths[:, None]
    np.testing.assert_allclose(ret[mask], raw[mask] + values[mask], rtol=1e-6, atol=1e-6)
    assert abs(white[mask].mean()) < 1e-5 and abs(white[mask].std(ddof=1) - 1) < 1e-4


def test_float64_and_int32_inputs_are_accepted() -> None:
    rng = np.random.default_rng(2)
    scores, kl, values = rng.random((3, 15)), rng.random((3, 9)), rng.random((3, 9))
    lengths = np.array([9, 3, 0], dtype=np.int32)
    got = rc.ppo_advantages(scores, kl, values, lengths)
    f32 = np.float32
    want = rc.ppo_advantages(
        scores.astype(f32), kl.astype(f32), values.astype(f32), lengths.astype(np.int64)
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_non_contiguous_inputs_give_the_same_result() -> None:
    rng = np.random.default_rng(3)
    big = rng.random((6, 40)).astype(np.float32)
    kl, values = big[::2, :20], big[1::2, ::2]
    scores = np.asfortranarray(rng.random((3, 15)).astype(np.float32))
    lengths = np.array([20, 5, 11])
    got = rc.ppo_advantages(scores, kl, values, lengths)
    c = np.ascontiguousarray
    want = rc.ppo_advantages(c(scores), c(kl), c(values), lengths)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_no_copy_for_c_contiguous_float32() -> None:
    x = np.zeros((4, 8), dtype=np.float32)
    assert _reward_core._input_address(x) == x.ctypes.data
    assert _reward_core._input_address(x[:, ::2]) != x.ctypes.data  # strided: copied
    assert _reward_core._input_address(x.astype(np.float64)) != x.ctypes.data
    out = rc.whiten(x, np.full(4, 8))
    # the output buffer is the Rust Vec itself, owned by a Rust container, not numpy
    assert not out.flags.owndata and out.base is not None and out.flags.c_contiguous


def test_rust_panic_surfaces_as_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="internal error"):
        _reward_core._panic_for_test()
    # and the module still works afterwards
    assert rc.chi(np.array([0.5], np.float32)).shape == (1,)


def test_gil_is_released_during_work() -> None:
    ticks: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    th = threading.Thread(target=tick)
    th.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    _reward_core._sleep_without_gil(0.3)
    t1 = time.perf_counter()
    stop.set()
    th.join()
    during = [t for t in ticks if t0 + 0.05 < t < t1 - 0.05]
    assert len(during) > 10, f"only {len(during)} ticks while the core ran"


def test_missing_extension_is_an_import_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dareu_reward_core", None)  # import of it fails
    monkeypatch.delitem(sys.modules, "dareu.reward")
    with pytest.raises(ImportError, match=r"pip install \./rust/reward_core_py"):
        importlib.import_module("dareu.reward")


@pytest.mark.parametrize("whitened", [True, False])
def test_fused_length_norm_equals_the_chain_bit_for_bit(whitened: bool) -> None:
    """`ppo_advantages(length_norm=True)` is exactly assemble -> / length -> gae ->
    whiten, the chain the PPO trainer ran in Python before the division moved into Rust."""
    import dareu.reward as rc

    rng = np.random.default_rng(3)
    lengths = np.array([0, 1, 40, 7, 23, 15], dtype=np.int64)
    T = int(lengths.max())
    k = rc.segment_schedule(lengths, T)[0].shape[1]
    scores = rng.uniform(0, 1, (len(lengths), k)).astype(np.float32)
    mask = np.arange(T)[None, :] < lengths[:, None]
    kl = (rng.normal(0, 0.1, (len(lengths), T)) * mask).astype(np.float32)
    values = (rng.normal(0, 1, (len(lengths), T)) * mask).astype(np.float32)
    r, a, ret = rc.ppo_advantages(scores, kl, values, lengths, length_norm=True, whiten=whitened)
    chain = rc.assemble_rewards(scores, kl, lengths)
    chain = np.ascontiguousarray(chain / np.maximum(lengths, 1)[:, None], dtype=np.float32)
    adv, want_ret = rc.gae(chain, values, lengths)
    want_adv = rc.whiten(adv, lengths) if whitened else adv
    np.testing.assert_array_equal(r, chain)
    np.testing.assert_array_equal(ret, want_ret)
    np.testing.assert_array_equal(a, want_adv)
