"""Per-env returns over a rollout horizon. Shapes: rewards, next_values, dones are [T, N].

``next_values[t]`` is V'(s_{t+1}) from the target critic (0 where the step terminated);
``dones[t]`` = 1 ends a segment after step t (termination, truncation, reset or t = T-1).
"""

from __future__ import annotations

import torch


def td_lambda(
    rewards: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """Causal TD(lambda) returns J [T, N], computed backwards within each segment.

    J_t = r_t + gamma * ((1 - lam) V'_t + lam J_{t+1}) inside a segment and
    J_t = r_t + gamma V'_t at its last step: the lambda-weighted mix of the n-step returns
    G(n)_t = sum_{i<n} gamma^i r_{t+i} + gamma^n V'_{t+n-1}.
    """
    returns = torch.zeros_like(rewards)
    following = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        cont = 1.0 - dones[t].to(rewards.dtype)
        bootstrap = (1.0 - lam * cont) * next_values[t] + lam * cont * following
        following = rewards[t] + gamma * bootstrap
        returns[t] = following
    return returns


def monte_carlo(
    rewards: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Causal reward-to-go within each segment, bootstrapped with V' at its end (no trace)."""
    return td_lambda(rewards, next_values, dones, gamma, 1.0)


def non_causal(
    rewards: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Every step of a segment gets the whole (bootstrapped) segment return from its start."""
    to_go = monte_carlo(rewards, next_values, dones, gamma)
    returns = torch.empty_like(to_go)
    current = to_go[0]
    for t in range(to_go.shape[0]):
        if t > 0:
            starts = dones[t - 1].bool()
            current = torch.where(starts, to_go[t], current)
        returns[t] = current
    return returns


def compute_returns(
    mode: str,
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Dispatch on ``mode``: td_lambda | monte_carlo | non_causal."""
    if mode == "td_lambda":
        return td_lambda(rewards, next_values, dones, gamma, lam)
    if mode == "monte_carlo":
        return monte_carlo(rewards, next_values, dones, gamma)
    if mode == "non_causal":
        return non_causal(rewards, next_values, dones, gamma)
    raise ValueError(f"unknown returns mode {mode!r}")
