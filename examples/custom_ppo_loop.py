"""DareU's reward inside your own PPO step: per-prefix attribution scores -> per-token
rewards, advantages and returns from the Rust core, with torch tensors in and out.

Run: python examples/custom_ppo_loop.py   (needs only torch and the dareu package)
"""

import torch

from dareu.reward import K_SLICES, segment_schedule
from dareu.reward.torch import ppo_advantages

torch.manual_seed(0)
B, T = 4, 20  # 4 sampled responses, padded to 20 tokens
mask = torch.zeros(B, T, dtype=torch.long)  # right-padded attention mask of the responses
for i, n in enumerate([20, 13, 7, 1]):
    mask[i, :n] = 1

# Where to score: the core's k-slice schedule (prefix ends, 1-based token counts).
ends, n_seg, _ = segment_schedule(mask.sum(1).numpy(), T, k=K_SLICES)

# Your attribution model: P(forget owner | response prefix) at each prefix end, [B, K].
scores = torch.rand(B, ends.shape[1]) * torch.from_numpy(ends > 0)

# Your policy and reference log-probs and value head (any float dtype, grad allowed).
logp = torch.randn(B, T, requires_grad=True).to(torch.bfloat16)
ref_logp = logp.detach() + 0.01 * torch.randn(B, T)
values = torch.randn(B, T, requires_grad=True)
kl = (logp.float() - ref_logp.float()) * mask  # per-token KL estimate (k1)

rewards, advantages, returns = ppo_advantages(scores, kl, values, mask)

# A clipped policy loss with the advantages (constants: no gradient flows into them).
ratio = torch.exp(logp.float() - logp.float().detach())
pg = -(torch.min(ratio * advantages, ratio.clamp(0.8, 1.2) * advantages) * mask).sum()
vf = (((values - returns) ** 2) * mask).sum() / 2
(pg + 0.2 * vf).backward()
print("sequence rewards:", rewards.sum(1).tolist())
print(
    "advantages dtype/device:",
    advantages.dtype,
    advantages.device,
    "grad ok:",
    values.grad is not None,
)
