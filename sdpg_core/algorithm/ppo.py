"""PPO maths (Schulman et al., 2017): GAE, the clipped surrogate, diagonal Gaussian densities.

Shapes: T horizon, B envs, A actions; per-step tensors are [T, B] (or [n] once flattened).
PPO runs in pre-tanh space: the policy is the Gaussian over the pre-tanh sample
u = mu + sigma * eps, and the env receives tanh(clamp(u, -mu_bound, mu_bound)), a fixed
transform of u. Probability ratios of u equal those of the squashed action (the tanh
Jacobian is the same for both policies and cancels), so no tanh correction is needed;
the entropy bonus is the pre-tanh Gaussian's.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016); every input is [T, B].

    delta_t = r_t + gamma V(s_{t+1}) - V(s_t) and A_t = delta_t + gamma lam (1 - d_t) A_{t+1},
    with ``values[t]`` = V(s_t), ``next_values[t]`` = V(s_{t+1}) of the state step t reached
    (0 where it terminated; a truncated episode is bootstrapped) and ``dones[t]`` = 1 where the
    env was reset after step t (termination or truncation: the recursion stops there).
    Returns (advantages A, value targets R = A + V), each [T, B].
    """
    advantages = torch.zeros_like(rewards)
    following = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_values[t] - values[t]
        following = delta + gamma * lam * (1.0 - dones[t].to(rewards.dtype)) * following
        advantages[t] = following
    return advantages, advantages + values


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """L^CLIP = mean(min(r A, clip(r, 1 - eps, 1 + eps) A)) over [n] samples (to maximise)."""
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip)
    return torch.minimum(ratio * advantages, clipped * advantages).mean()


def gaussian_log_prob(u: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(u; mu, diag sigma^2) of pre-tanh samples: [n, A] each -> [n]."""
    z = (u - mu) * torch.exp(-log_sigma)
    return (-0.5 * z.square() - log_sigma - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(log_sigma: torch.Tensor) -> torch.Tensor:
    """Entropy of diag N(., sigma^2): [n, A] -> [n]."""
    return (log_sigma + 0.5 * (1.0 + LOG_2PI)).sum(-1)


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """KL(old || new) estimate from log r = log(pi_new / pi_old) on old samples: r - 1 - log r."""
    return (log_ratio.exp() - 1.0 - log_ratio).mean()
