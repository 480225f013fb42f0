"""Extreme sizes and extreme finite values: the reward core returns a result or raises
ValueError, never crashes the interpreter and never returns inf or NaN."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import dareu.reward as rc

MAX_LEN = 2**32 - 1  # the core's bound on max_len
I64 = 2**63 - 1

# Sizes at and around every power-of-two boundary that matters: numpy's byte limit
# (2^60 int64 = 2^63 bytes), usize/isize, and the core's MAX_LEN.
BOUNDARIES = [2**p + d for p in (31, 32, 59, 60, 61, 62) for d in (-1, 0, 1)] + [I64, MAX_LEN]
huge = st.one_of(st.sampled_from(BOUNDARIES), st.integers(MAX_LEN + 1, I64))
segment = st.one_of(st.none(), st.sampled_from([1, 2, 15, 2**32, 2**62, I64]), st.integers(-3, I64))


def schedule(lengths: np.ndarray, max_len: int, k: int | None, kappa: int | None) -> None:
    """Call the core; a result must be consistent, anything else a ValueError."""
    try:
        ends, n_seg, tok = rc.segment_schedule(lengths, max_len, k=k, kappa=kappa)
    except ValueError:
        return
    b = len(lengths)
    assert 0 <= max_len <= MAX_LEN
    assert ends.shape[0] == b and n_seg.shape == (b,) and tok.shape == (b, max_len)
    assert ends.shape[1] <= max_len


@settings(max_examples=150, deadline=None)
@given(max_len=st.one_of(huge, st.integers(-(2**63), 64)), k=segment, kappa=segment)
@example(max_len=2**60, k=15, kappa=None)  # the crash from the issue
@example(max_len=2**60, k=None, kappa=1)
@example(max_len=I64, k=1, kappa=None)
def test_empty_batch_any_max_len(max_len: int, k: int | None, kappa: int | None) -> None:
    schedule(np.zeros(0, np.int64), max_len, k, kappa)


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    # Only sizes that fit in memory, or sizes over the bound (which must be refused
    # before allocating): a non-empty batch of width 2^31 would ask for 16 GiB.
    max_len=st.one_of(st.integers(40, 64), huge),
    k=segment,
    kappa=segment,
)
@example(lengths=[0], max_len=2**60, k=15, kappa=None)
def test_non_empty_batch(
    lengths: list[int], max_len: int, k: int | None, kappa: int | None
) -> None:
    schedule(np.array(lengths, np.int64), max_len, k, kappa)
    if max_len > MAX_LEN:
        with pytest.raises(ValueError, match=r"^max_len: "):
            rc.segment_schedule(np.array(lengths, np.int64), max_len, k=15)


def test_huge_max_len_message_is_readable() -> None:
    with pytest.raises(ValueError, match=r"^max_len: is too large: at most 4294967295"):
        rc.segment_schedule(np.zeros(0, np.int64), 2**60, k=15)


def test_huge_k_and_kappa_on_real_rows() -> None:
    lengths = np.array([5, 0, 3], np.int64)
    for kw in ({"k": I64}, {"kappa": I64}, {"k": 2**62}, {"kappa": 2**32}):
        ends, n_seg, _ = rc.segment_schedule(lengths, 5, **kw)
        for i, n in enumerate(n_seg):
            if n:
                assert ends[i, n - 1] == lengths[i]


# ----------------------------------------------------------------- extreme finite values
B, T = 2, 4
LENGTHS = np.array([4, 2], np.int64)


def test_gae_overflow_is_an_error_naming_the_output() -> None:
    r = np.full((B, T), 3e38, np.float32)
    v = np.full((B, T), -3e38, np.float32)
    with pytest.raises(ValueError, match=r"^(advantages|returns): .* is not finite"):
        rc.gae(r, v, LENGTHS)
    # Every reward (chi + 3e38) is finite; their discounted sums are not.
    kl = np.full((B, T), -3e38, np.float32)
    with pytest.raises(ValueError, match=r"^(advantages|returns): "):
        rc.ppo_advantages(np.full((B, 15), 0.5, np.float32), kl, np.zeros((B, T), np.float32),
                          LENGTHS, kl_coef=1.0)  # fmt: skip


def test_kl_times_huge_kl_coef_is_an_error_naming_the_output() -> None:
    scores = np.full((B, 15), 0.5, np.float32)
    kl = np.full((B, T), 3e38, np.float32)
    zeros = np.zeros((B, T), np.float32)
    with pytest.raises(ValueError, match=r"^rewards: rewards\[0, 0\] = -inf is not finite"):
        rc.ppo_advantages(scores, kl, zeros, LENGTHS, kl_coef=1e300)
    with pytest.raises(ValueError, match=r"^rewards: "):
        rc.assemble_rewards(scores, kl, LENGTHS, kl_coef=1e300)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e300])
def test_kl_coef_message_is_short(bad: float) -> None:
    args = (np.full((B, 15), 0.5, np.float32), np.zeros((B, T), np.float32),
            np.zeros((B, T), np.float32), LENGTHS)  # fmt: skip
    with pytest.raises(ValueError, match=r"^kl_coef: must be a finite number >= 0, got ") as e:
        rc.ppo_advantages(*args, kl_coef=bad)
    assert len(str(e.value)) < 80, str(e.value)  # was f64::MAX printed as 309 digits


@settings(max_examples=50, deadline=None)
@given(
    scale=st.sampled_from([1.0, 1e10, 1e30, 3e38, -3e38, 3.4e38]),
    kl_coef=st.sampled_from([0.0, 0.1, 1e10, 1e300]),
    whiten=st.booleans(),
)
def test_outputs_are_finite_or_an_error(scale: float, kl_coef: float, whiten: bool) -> None:
    scores = np.full((B, 15), 0.9, np.float32)
    x = np.full((B, T), scale, np.float32)
    try:
        outs = rc.ppo_advantages(scores, x, x, LENGTHS, kl_coef=kl_coef, whiten=whiten)
    except ValueError as e:
        assert str(e).split(":")[0] in {"rewards", "advantages", "returns"}
    else:
        assert all(np.isfinite(o).all() for o in outs)
    for fn in (lambda: rc.gae(x, x, LENGTHS), lambda: (rc.whiten(x, LENGTHS),)):
        try:
            outs = fn()
        except ValueError as e:
            assert str(e).split(":")[0] in {"advantages", "returns", "whitened"}
        else:
            assert all(np.isfinite(o).all() for o in outs)


def test_concurrent_writer_cannot_slip_a_nan_through() -> None:
    """Inputs are read in place without the GIL; another thread flipping a value to NaN
    while the core runs must give an error or a finite result, never a NaN output."""
    b, t = 64, 512
    scores = np.full((b, 15), 0.5, np.float32)
    kl = np.zeros((b, t), np.float32)
    values = np.zeros((b, t), np.float32)
    lengths = np.full(b, t, np.int64)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            values[b // 2, t // 2] = np.nan
            values[b // 2, t // 2] = 0.0

    writer = threading.Thread(target=flip, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                outs = rc.ppo_advantages(scores, kl, values, lengths)
            except ValueError as e:
                # Caught by the input check, or by the output check if the NaN came and
                # went between the check and the computation.
                assert str(e).split(":")[0] in {"values", "advantages", "returns"}, str(e)
                assert "not finite" in str(e)
            else:
                assert all(np.isfinite(o).all() for o in outs)
    finally:
        stop.set()
        writer.join()
