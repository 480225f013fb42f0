"""DareU's PPO trainer on a micro Llama: updates, reference, processes, resume, Rust core.

The setup is real but small: a from-scratch micro Llama (dareu.models.tiny) with a BPE
tokenizer trained on four owners' QA text, LoRA adapters, and the training-free n-gram
attributor. Run as a script, this file is the worker of the 2-process test:
    torchrun --nproc_per_node 2 tests/test_ppo.py OUT_DIR
(`accelerate launch --cpu --num_processes 2` starts ONE process in the Accelerate we pin,
which would make that test compare a run with itself.)
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dareu.data.schema import QASample
from dareu.ppo.config import PPOConfig

OWNERS = {"ann": "Ann Vell", "bo": "Bo Krane", "cy": "Cy Dorr", "di": "Di Fenn"}
FACTS = [
    ("Where was {n} born?", "{n} was born in {v}.", ["Oslo", "Lima", "Kyiv", "Rome"]),
    ("What does {n} do?", "{n} works as a {v}.", ["baker", "pilot", "judge", "nurse"]),
    ("What pet does {n} keep?", "{n} keeps a {v}.", ["cat", "ferret", "parrot", "goat"]),
]


def micro_samples() -> list[QASample]:
    out = []
    for i, (o, name) in enumerate(OWNERS.items()):
        for j, (q, a, vals) in enumerate(FACTS):
            out.append(
                QASample(
                    id=f"{o}-{j}",
                    owner=o,
                    question=q.format(n=name),
                    answer=a.format(n=name, v=vals[i]),
                    fact_value=vals[i],
                    owner_name=name,
                )
            )
    return out


def build_base(root: Path) -> Path:
    """The micro base model (built once per folder)."""
    from dareu.models.tiny import build_tiny

    base = root / "base"
    if not (base / "config.json").is_file():
        texts = [f"Question: {s.question}\nAnswer: {s.answer}" for s in micro_samples()]
        build_tiny(texts, base, size="micro", seed=0)
    return base


def make_attributor(base: Path) -> Any:
    from dareu.attribution import NgramAttributor
    from dareu.models.loading import load_tokenizer

    texts: dict[str, list[str]] = {o: [] for o in OWNERS}
    for s in micro_samples():
        texts[s.owner] += [s.question, s.answer]
    return NgramAttributor(texts, n=2, policy_tokenizer=load_tokenizer(base))


def small_config(**kw: Any) -> PPOConfig:
    base: dict[str, Any] = {
        "samples_per_query": 2,
        "max_new_tokens": 10,
        "ppo_steps": 2,
        "batch_size": 2,
        "lr": 5e-3,
        "distill_batch_size": 4,
        "lora_r": 4,
        "lora_alpha": 8,
    }
    return PPOConfig(**{**base, **kw})


def run_trainer(
    root: Path,
    name: str,
    cfg: PPOConfig,
    *,
    accelerator: Any = None,
    **settings: Any,
) -> Path:
    from accelerate import Accelerator

    from dareu.ppo.trainer import RunSettings, train_dareu

    base = build_base(root)
    samples = micro_samples()
    forget = [s for s in samples if s.owner in ("ann", "bo")]
    retain = [s for s in samples if s.owner not in ("ann", "bo")]
    hooks = {k: settings.pop(k) for k in ("on_batch", "on_update") if k in settings}
    run = RunSettings(out_dir=root / name, progress=False, **settings)
    acc = accelerator or Accelerator(cpu=True)
    return train_dareu(base, forget, retain, make_attributor(base), cfg, run, acc, **hooks)


def trainable(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "trainable.safetensors"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return tmp_path_factory.mktemp("ppo")


# ----------------------------------------------------------------------------- the update
@pytest.mark.parametrize("checkpointing", [False, True])
def test_ppo_step_changes_lora_and_leaves_reference(root: Path, checkpointing: bool) -> None:
    """LoRA weights move; every base weight and the adapters-off logits stay the original's."""
    from dareu.models.loading import load_model

    original, tok = load_model(build_base(root))
    original_state = {k: v.clone() for k, v in original.state_dict().items()}
    probe = tok(["Question: Where was Ann Vell born?\nAnswer:"], return_tensors="pt")
    with torch.no_grad():
        original_logits = original(**probe).logits
    seen: list[dict[str, Any]] = []

    def check(policy: Any) -> None:
        lora = {n: p.detach().clone() for n, p in policy.named_parameters() if "lora_" in n}
        base = {
            n.replace("lm.base_model.model.", "").replace(".base_layer", ""): p.detach()
            for n, p in policy.named_parameters()
            if "lora_" not in n and n.startswith("lm.")
        }
        with torch.no_grad(), policy.reference_mode():
            ref_logits = policy.lm(**probe).logits
            seen.append({"lora": lora, "base": base, "ref_logits": ref_logits.clone()})

    out = run_trainer(
        root,
        f"update-{checkpointing}",
        small_config(gradient_checkpointing=checkpointing, epochs=1),
        on_update=check,
    )
    assert (out / "adapter_config.json").is_file() and (out / "trainable.safetensors").is_file()
    assert len(seen) == 3  # 6 forget queries, 2 per batch
    for snap in seen:
        for name, w in snap["base"].items():
            assert torch.equal(w, original_state[name]), f"base weight {name} changed"
        assert torch.equal(snap["ref_logits"], original_logits)
    lora_b = [w for n, w in seen[-1]["lora"].items() if "lora_B" in n]
    assert lora_b and all(w.abs().max() > 0 for w in lora_b), "lora_B stayed at its zero init"
    changed = [
        n for n in seen[0]["lora"] if not torch.equal(seen[0]["lora"][n], seen[1]["lora"][n])
    ]
    assert changed, "the second batch did not move the adapters"
    # The saved adapter is what the last batch left.
    saved = trainable(out)
    for n, w in seen[-1]["lora"].items():
        assert torch.equal(saved[n], w)
    # And it loads as a normal checkpoint (base resolved from adapter_config.json).
    model, _ = load_model(out)
    with torch.no_grad():
        assert not torch.allclose(model(**probe).logits, original_logits)


def test_bf16_run_trains_fp32_adapters(root: Path) -> None:
    """bf16 base weights (mixed precision on CPU here); adapters and value head stay fp32."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # other tests made an fp32 one
    try:
        out = run_trainer(
            root, "bf16", small_config(epochs=1), dtype="bf16",
            accelerator=Accelerator(cpu=True, mixed_precision="bf16"),
        )  # fmt: skip
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    w = trainable(out)
    assert all(t.dtype == torch.float32 for t in w.values())
    assert any(t.abs().max() > 0 for n, t in w.items() if "lora_B" in n)


def test_full_parameter_run_keeps_a_frozen_reference(root: Path) -> None:
    from dareu.models.loading import load_model

    original, _ = load_model(build_base(root))
    out = run_trainer(root, "full", small_config(lora=False, epochs=1, lr=1e-3))
    tuned, _ = load_model(out)
    diffs = [
        (a - b).abs().max().item()
        for a, b in zip(original.parameters(), tuned.parameters(), strict=True)
    ]
    assert max(diffs) > 0


# ----------------------------------------------------------------------------- the reward path
def test_rewards_go_through_the_rust_core(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dareu.reward as core

    calls: list[tuple[int, ...]] = []
    real = core.ppo_advantages

    def spy(scores: np.ndarray, *a: Any, **kw: Any) -> Any:
        calls.append(scores.shape)
        return real(scores, *a, **kw)

    monkeypatch.setattr(core, "ppo_advantages", spy)
    run_trainer(root, "spy", small_config(epochs=1, ppo_steps=1))
    assert len(calls) == 3  # once per rollout batch

    def broken(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("rust core unavailable")

    monkeypatch.setattr(core, "ppo_advantages", broken)
    with pytest.raises(RuntimeError, match="rust core unavailable"):
        run_trainer(root, "broken", small_config(epochs=1, ppo_steps=1))
    # The length-neutral variant chains the core's own functions.
    monkeypatch.setattr(core, "gae", broken)
    with pytest.raises(RuntimeError, match="rust core unavailable"):
        run_trainer(root, "broken-len", small_config(epochs=1, ppo_steps=1, length_norm=True))
    assert not (root / "broken" / "model").exists()


def test_epoch_refresh_samples_from_the_epoch_start_policy(root: Path) -> None:
    """'epoch': every batch of the first epoch is sampled by the original policy, so the
    rollout-time KL to the original is exactly 0; 'batch' samples from the updated policy."""
    logs: dict[str, list[dict[str, Any]]] = {"batch": [], "epoch": []}
    for mode in logs:
        run_trainer(
            root,
            f"refresh-{mode}",
            small_config(epochs=1, rollout_refresh=mode),
            on_batch=logs[mode].append,
        )
    assert all(rec["kl"] == 0.0 for rec in logs["epoch"])
    assert logs["batch"][0]["kl"] == 0.0 and logs["batch"][1]["kl"] != 0.0


# ----------------------------------------------------------------------------- resume
def test_kill_and_resume_reaches_the_same_weights(root: Path) -> None:
    from dareu.ppo.trainer import TrainingStopped

    cfg = small_config(epochs=2, rollout_refresh="epoch")  # 6 batches, snapshot restored too
    full = run_trainer(root, "uninterrupted", cfg, save_every=1)
    with pytest.raises(TrainingStopped):
        run_trainer(root, "killed", cfg, save_every=2, stop_after_batches=5)
    # Killed after batch 5 with the last checkpoint at batch 4 (stop_after also saves):
    # pretend batch 5 was logged but not checkpointed, as after a real kill.
    ckpts = sorted((root / "killed" / "checkpoints").iterdir())
    import shutil

    shutil.rmtree(ckpts[-1])  # drop the step-5 checkpoint the hook wrote
    assert len((root / "killed" / "log.jsonl").read_text().splitlines()) == 5
    assert not (root / "killed" / "model").exists()
    resumed = run_trainer(root, "killed", cfg, save_every=2, resume=True)
    a, b = trainable(full), trainable(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = [json.loads(x) for x in (root / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["batch"] for r in log] == [1, 2, 3, 4, 5, 6]


# ----------------------------------------------------------------------------- processes
def two_proc_config(**kw: Any) -> PPOConfig:
    # 3 rollouts per batch split 2/1 over 2 processes, 2-row minibatches: a process can
    # hold no row of a minibatch and must still join the backward pass.
    base = {"epochs": 1, "batch_size": 3, "samples_per_query": 1, "minibatch_size": 2}
    return small_config(**{**base, "ppo_steps": 3, **kw})


# 1 rollout per batch: the second process samples none and must still train in step.
UNEVEN = {"batch_size": 1, "forward_batch_size": 1, "distill_batch_size": 1}


def worker(out: str) -> None:
    """Entry point under torchrun: the same runs as `test_two_processes...`, on 2 ranks."""
    from accelerate import Accelerator

    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    assert acc.num_processes == 2, f"expected 2 processes, got {acc.num_processes}"
    run_trainer(Path(out), "two", two_proc_config(), accelerator=acc)
    run_trainer(Path(out), "two-uneven", two_proc_config(**UNEVEN), accelerator=acc)


@pytest.mark.slow
def test_two_processes_match_one(root: Path) -> None:
    """gloo, 2 CPU processes, same global batch: the same rollouts, rewards and weights."""
    one = run_trainer(root, "one", two_proc_config())
    one_uneven = run_trainer(root, "one-uneven", two_proc_config(**UNEVEN))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).parents[1] / "python"),
    }
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", __file__, str(root)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for first, name in ((one, "two"), (one_uneven, "two-uneven")):
        a, b = trainable(first), trainable(root / name / "model")
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
        log1 = (first.parent / "log.jsonl").read_text().splitlines()
        log2 = (root / name / "log.jsonl").read_text().splitlines()
        for x, y in zip(log1, log2, strict=True):
            rx, ry = json.loads(x), json.loads(y)
            for key in ("attr_score", "reward_mean", "kl", "resp_len", "leak_fact"):
                assert rx[key] == pytest.approx(ry[key], abs=1e-6), key


# ----------------------------------------------------------------------------- rollouts
def test_sampling_is_per_row_seeded_and_matches_the_forward_pass(root: Path) -> None:
    from dareu.models.loading import load_model
    from dareu.ppo.rollout import (
        encode_prompt_batch,
        eos_ids,
        flat_logprobs,
        response_keep,
        sample_responses,
        sequence_inputs,
    )

    model, tok = load_model(build_base(root))
    qs = [s.question for s in micro_samples()[:3]]
    ids, mask = encode_prompt_batch(tok, qs, "plain", width=24)
    eos = eos_ids(model, tok)
    kw: dict[str, Any] = {"temperature": 0.8, "max_new_tokens": 8, "eos": eos, "pad_id": 0}
    resp, lens = sample_responses(model, ids, mask, [1, 2, 3], **kw)
    # The same row alone, or next to other rows, samples the same tokens.
    alone, alone_len = sample_responses(model, ids[1:2], mask[1:2], [2], **kw)
    assert torch.equal(alone[0, : alone_len[0]], resp[1, : lens[1]])
    other, _ = sample_responses(model, ids, mask, [1, 2, 4], **kw)
    assert torch.equal(other[:2], resp[:2])
    # Tokens are draws from softmax(logits / T) of a plain forward pass (KV cache agrees).
    inputs = sequence_inputs(ids, mask, resp, lens)
    with torch.no_grad():
        logits = model(**inputs).logits
    keep = response_keep(ids.shape[1], lens, inputs["input_ids"].shape[1])
    valid = torch.arange(resp.shape[1])[None] < lens[:, None]
    logp = flat_logprobs(logits[keep], resp[valid], 0.8)
    assert torch.isfinite(logp).all() and (logp > -30).all()
    # The input leaves out the last response column; with it, the kept logits agree.
    assert inputs["input_ids"].shape[1] == ids.shape[1] + resp.shape[1] - 1
    full_mask = torch.cat([mask, valid.to(mask.dtype)], dim=1)
    with torch.no_grad():
        full = model(input_ids=torch.cat([ids, resp], dim=1), attention_mask=full_mask,
                     position_ids=(full_mask.long().cumsum(1) - 1).clamp(min=0)).logits  # fmt: skip
    assert torch.allclose(full[:, :-1][keep], logits[keep], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- losses
def test_loss_terms_against_hand_computation() -> None:
    from dareu.ppo.losses import distill_from_teacher, kl_estimate, policy_loss, value_loss

    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    old = torch.tensor([[-1.2, -1.0, -0.5]])
    adv = torch.tensor([[1.0, -1.0, 2.0]])
    w = torch.tensor([[1.0, 1.0, 0.0]])
    loss, _ = policy_loss(logp, old, adv, w, 2.0, 0.2)
    r = torch.exp(logp - old)
    per = torch.maximum(-adv * r, -adv * r.clamp(0.8, 1.2))
    assert loss.item() == pytest.approx(((per * w).sum() / 2).item())
    v, v_old, ret = (
        torch.tensor([[0.5, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[1.0, -1.0]]),
    )
    vl = value_loss(v, v_old, ret, torch.ones(1, 2), 2.0, 0.2)
    assert vl.item() == pytest.approx(0.5 * (max(0.25, 0.64) + 1.0) / 2)
    d = logp - old
    assert torch.allclose(kl_estimate(logp, old, "k1"), d)
    assert torch.allclose(kl_estimate(logp, old, "k3"), torch.exp(-d) - 1 + d)
    assert (kl_estimate(logp, old, "k3") >= 0).all()
    student, teacher = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    m = torch.tensor([[1, 1, 0], [0, 1, 0]], dtype=torch.bool)
    p, q = teacher.softmax(-1), student.softmax(-1)
    want = ((p * (p.log() - q.log())).sum(-1) * m).sum() / 3
    got = distill_from_teacher(student[m], teacher[m].log_softmax(-1), 3.0)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"kappa": 99, "max_new_tokens": 10}, "--kappa"),
        ({"temperature": 0.0}, "--temperature"),
        ({"clip_range": 1.5}, "--clip-range"),
        ({"kl_estimator": "k9"}, "--kl-estimator"),
        ({"ppo_steps": 0}, "--ppo-steps"),
        ({"rollout_refresh": "never"}, "--rollout-refresh"),
    ],
)
def test_invalid_config_names_the_flag(kw: dict[str, Any], flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        PPOConfig(**kw).validate()


def test_unknown_forget_owner_fails_before_training(root: Path) -> None:
    from dareu.ppo.trainer import check_request

    attr = make_attributor(build_base(root))
    stranger = QASample(id="x", owner="zed", question="q?", answer="a.")
    with pytest.raises(ValueError, match="unknown to the attributor"):
        check_request([stranger], attr)
    with pytest.raises(ValueError, match="empty"):
        check_request([], attr)


if __name__ == "__main__":
    worker(sys.argv[1])


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_cached_teacher_gives_the_recomputed_distillation(root: Path, lora: bool) -> None:
    """The original model's log-probs on a retain row, cached after first use, give the
    distillation loss of recomputing them at every PPO step: the logged losses and the
    final weights match within 1e-6 (not bitwise: the cached rows were computed in a batch
    of other rows and width, which changes the float summation order)."""
    logs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    outs = {}
    for name, mb in (("on", 2048), ("off", 0)):
        cfg = small_config(lora=lora, epochs=2, ppo_steps=3, distill_batch_size=3,
                           teacher_cache_mb=mb, lr=1e-3)  # fmt: skip
        outs[name] = run_trainer(root, f"teacher-{name}-{lora}", cfg, on_batch=logs[name].append)
    assert len(logs["on"]) == len(logs["off"]) >= 2
    for a, b in zip(logs["on"], logs["off"], strict=True):
        assert a["dis_loss"] > 0
        assert a["dis_loss"] == pytest.approx(b["dis_loss"], abs=1e-6, rel=1e-6)
    if lora:
        wa, wb = trainable(outs["on"]), trainable(outs["off"])
        assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6


def test_topk_teacher_kl_is_the_coarsened_kl_and_a_lower_bound() -> None:
    """The top-k form's distillation loss is, by hand, the KL between teacher and student
    coarsened to the teacher's k tokens plus one rest bucket; it never exceeds the full KL
    and equals it when the rest bucket holds one token (k = V - 1)."""
    from dareu.ppo.losses import distill_from_teacher
    from dareu.ppo.teacher import compress

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 40, generator=g) * 3
    t_logp = torch.log_softmax(torch.randn(5, 40, generator=g) * 3, dim=-1)
    full = distill_from_teacher(logits, t_logp, 1.0)
    logq = torch.log_softmax(logits, dim=-1)
    for k in (3, 16, 39):
        tk = compress(t_logp, k)
        hand = 0.0
        for r in range(5):
            top = set(tk.ids[r].tolist())
            p = [t_logp[r, i].exp().item() for i in sorted(top)]
            q = [logq[r, i].exp().item() for i in sorted(top)]
            p.append(1 - sum(p))
            q.append(sum(logq[r, i].exp().item() for i in range(40) if i not in top))
            hand += sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)
        got = distill_from_teacher(logits, tk, 1.0)
        assert got.item() == pytest.approx(hand, rel=1e-4, abs=1e-5), k
        assert got.item() <= full.item() + 1e-5
    assert distill_from_teacher(logits, compress(t_logp, 39), 1.0).item() == pytest.approx(
        full.item(), rel=1e-5
    )
    # A teacher with all its mass on its top k: the rest term is 0, not NaN.
    peaked = torch.full((1, 40), -1e4).index_fill_(1, torch.tensor([2]), 0.0)
    x = logits[:1].clone().requires_grad_()
    loss = distill_from_teacher(x, compress(torch.log_softmax(peaked, -1), 3), 1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_teacher_cache_plan_takes_the_largest_form_that_fits() -> None:
    from dareu.ppo.teacher import MIN_TOPK, plan

    assert plan(1000, 2048, 100, 0) == ("full", 2048)  # 7.8 MB
    assert plan(1000, 32000, 100, 0) == ("topk", 100 * 2**20 // 8000)  # 122 MB full
    assert plan(10**6, 32000, 100, 0) is None  # 13 per token < MIN_TOPK
    assert plan(1000, 2048, 100, 64) == ("topk", 64)
    assert plan(1000, 2048, 100, 4096) == ("full", 2048)
    assert plan(1000, 2048, 0, 0) is None and MIN_TOPK == 16


def test_topk_teacher_cache_runs_and_matches_the_full_one_at_k_v_minus_1(root: Path) -> None:
    """A run whose cache keeps V - 1 tokens per position (one-token rest bucket) logs the
    distillation losses of the full cache within 1e-6; k = 16 runs with a smaller loss."""
    from transformers import AutoConfig

    vocab = int(AutoConfig.from_pretrained(build_base(root)).vocab_size)
    logs: dict[int, list[dict[str, Any]]] = {0: [], vocab - 1: [], 16: []}
    for k in logs:
        cfg = small_config(epochs=2, ppo_steps=3, distill_batch_size=3, lr=1e-3, teacher_topk=k)
        run_trainer(root, f"topk-{k}", cfg, on_batch=logs[k].append)
    for a, b, c in zip(logs[0], logs[vocab - 1], logs[16], strict=True):
        assert a["dis_loss"] > 0
        assert b["dis_loss"] == pytest.approx(a["dis_loss"], abs=1e-6, rel=1e-6)
        assert math.isfinite(c["dis_loss"]) and c["dis_loss"] <= a["dis_loss"] * 1.5


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_head_on_the_loss_positions_gives_the_full_grid_numbers(
    root: Path, lora: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LM head run on the response and answer positions only (the probe accepts the
    tiny Llama) gives the losses and weights of the head over the whole padded grid, within
    1e-6 (a matmul over fewer rows may sum in another order)."""
    import dareu.ppo.trainer as tr

    probed: list[bool] = []
    real = tr.enable_head_gathering

    def probe(core: Any) -> bool:
        probed.append(real(core))
        return probed[-1]

    def never(core: Any) -> bool:
        return False

    logs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    outs = {}
    for name in ("on", "off"):
        monkeypatch.setattr(
            tr, "enable_head_gathering", probe if name == "on" else (lambda core: False)
        )
        cfg = small_config(lora=lora, epochs=2, ppo_steps=3, distill_batch_size=3, lr=1e-3)
        outs[name] = run_trainer(root, f"head-{name}-{lora}", cfg, on_batch=logs[name].append)
    assert probed == [True]
    assert len(logs["on"]) == len(logs["off"]) >= 2
    for a, b in zip(logs["on"], logs["off"], strict=True):
        for key in ("pg_loss", "vf_loss", "dis_loss", "kl", "reward_mean"):
            assert a[key] == pytest.approx(b[key], abs=1e-6, rel=1e-6), key
    if lora:
        wa, wb = trainable(outs["on"]), trainable(outs["off"])
        assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6


def test_length_chunked_update_gives_the_one_forward_update(root: Path) -> None:
    """On one process a PPO step runs its rollout and retain rows in length-sorted chunks
    (each padded to its own longest row) and sums the gradients: the logged losses and the
    final weights match one joint forward over all rows within 1e-6 (float summation order
    differs), and the chunks do split the rows."""
    import dareu.ppo.trainer as tr

    assert tr.length_chunks([0, 1, 2, 3, 4], [5, 1, 4, 2, 3], 2) == [[1, 3], [4, 2], [0]]
    logs: dict[str, list[dict[str, Any]]] = {"2": [], "0": []}
    outs = {}
    for chunk in ("2", "0"):
        cfg = small_config(epochs=2, ppo_steps=3, distill_batch_size=3, lr=1e-3,
                           update_chunk=int(chunk))  # fmt: skip
        outs[chunk] = run_trainer(root, f"chunk-{chunk}", cfg, on_batch=logs[chunk].append)
    assert len(logs["2"]) == len(logs["0"]) >= 2
    for a, b in zip(logs["2"], logs["0"], strict=True):
        for key in ("pg_loss", "vf_loss", "dis_loss", "approx_kl", "clipfrac", "reward_mean"):
            assert a[key] == pytest.approx(b[key], abs=1e-6, rel=1e-6), key
    wa, wb = trainable(outs["2"]), trainable(outs["0"])
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6
