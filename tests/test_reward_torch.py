"""`dareu.reward.torch` against the numpy API of the core: every function, every float
dtype (computed in fp32), lengths or a right-padded mask, detached and zero-copy inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dareu.reward as core
from dareu.reward import torch as rt

B, T = 5, 23
LENGTHS = np.array([23, 0, 9, 1, 15], dtype=np.int64)
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _inputs(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    k = core.segment_schedule(LENGTHS, T)[0].shape[1]
    mask = torch.from_numpy(np.arange(T)[None, :] < LENGTHS[:, None])
    return {
        "scores": torch.rand(B, k, generator=g).to(dtype),
        "kl": (0.1 * torch.randn(B, T, generator=g) * mask).to(dtype),
        "values": (torch.randn(B, T, generator=g) * mask).to(dtype),
        "mask": mask.long(),
    }


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).numpy()  # what "computed in fp32" means


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths_as", ["lengths", "mask"])
def test_ppo_advantages_matches_the_numpy_api(dtype: torch.dtype, lengths_as: str) -> None:
    x = _inputs(dtype)
    lens = torch.from_numpy(LENGTHS) if lengths_as == "lengths" else x["mask"]
    got = rt.ppo_advantages(x["scores"], x["kl"], x["values"], lens, kl_coef=0.2)
    want = core.ppo_advantages(_np(x["scores"]), _np(x["kl"]), _np(x["values"]), LENGTHS,
                               kl_coef=0.2)  # fmt: skip
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32 and g.device == x["values"].device
        np.testing.assert_array_equal(g.numpy(), w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_stage_matches_the_numpy_api(dtype: torch.dtype) -> None:
    x = _inputs(dtype)
    m = x["mask"]
    rewards = rt.assemble_rewards(x["scores"], x["kl"], m)
    np.testing.assert_array_equal(
        rewards.numpy(), core.assemble_rewards(_np(x["scores"]), _np(x["kl"]), LENGTHS)
    )
    adv, ret = rt.gae(rewards, x["values"], m, lam=0.9)
    want_adv, want_ret = core.gae(rewards.numpy(), _np(x["values"]), LENGTHS, lam=0.9)
    np.testing.assert_array_equal(adv.numpy(), want_adv)
    np.testing.assert_array_equal(ret.numpy(), want_ret)
    np.testing.assert_array_equal(rt.whiten(adv, m).numpy(), core.whiten(want_adv, LENGTHS))
    np.testing.assert_array_equal(rt.chi(x["scores"]).numpy(), core.chi(_np(x["scores"])))


def test_inputs_that_require_grad_are_detached_and_fp32_cpu_is_not_copied() -> None:
    x = _inputs(torch.float32)
    values = x["values"].clone().requires_grad_(True)
    _, adv, _ = rt.ppo_advantages(x["scores"], x["kl"], values, x["mask"])
    assert not adv.requires_grad
    t = torch.randn(3, 4)
    assert rt._np_f32("x", t).ctypes.data == t.data_ptr()  # a view, no copy
    assert rt._np_f32("x", t.t()).ctypes.data != t.data_ptr()  # non-contiguous: copied


def test_masks_and_bad_inputs_are_checked() -> None:
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    assert rt.lengths_of(mask).tolist() == [2, 0, 3]
    assert rt.lengths_of(torch.tensor([3, 0])).tolist() == [3, 0]
    with pytest.raises(ValueError, match="right-padded"):
        rt.lengths_of(torch.tensor([[0, 1, 1]]))  # left padding
    with pytest.raises(ValueError, match="right-padded"):
        rt.lengths_of(torch.tensor([[1, 0, 1]]))  # a hole
    with pytest.raises(ValueError, match="integer"):
        rt.lengths_of(torch.tensor([2.0]))
    with pytest.raises(TypeError, match="floating-point"):
        rt.chi(torch.tensor([1, 2]))
    x = _inputs(torch.float32)
    with pytest.raises(ValueError, match="lengths"):  # the core's own check, named
        rt.ppo_advantages(x["scores"], x["kl"], x["values"], torch.tensor([99, 0, 0, 0, 0]))


def test_custom_ppo_loop_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "custom_ppo_loop.py"
    assert len(example.read_text().splitlines()) < 60
    run = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "grad ok: True" in run.stdout and "torch.float32" in run.stdout
