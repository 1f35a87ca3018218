"""The action convention every learner shares (SDPG, PPO, DAgger), written once.

Policies are Gaussians over a pre-tanh action u [n, A]: mean mu, log-std log_sigma. Means and
samples are clamped to [-mu_bound, mu_bound], log-stds to [log_sigma_min, log_sigma_max]
(section ``action:`` of the config), and the env receives tanh(clamp(u)) in (-1, 1). Evaluation
and deployment act with tanh(clamp(mu)).
"""

from __future__ import annotations

import torch

from sdpg_core.config import ActionConfig


def clamp_mean(u: torch.Tensor, action: ActionConfig) -> torch.Tensor:
    """Pre-tanh means or samples clamped to [-mu_bound, mu_bound]."""
    return u.clamp(-action.mu_bound, action.mu_bound)


def clamp_log_sigma(log_sigma: torch.Tensor, action: ActionConfig) -> torch.Tensor:
    """Log-stds clamped to [log_sigma_min, log_sigma_max]."""
    return log_sigma.clamp(action.log_sigma_min, action.log_sigma_max)


def env_action(u: torch.Tensor, action: ActionConfig) -> torch.Tensor:
    """What the env receives for a pre-tanh action: tanh(clamp(u)) in (-1, 1)."""
    return torch.tanh(clamp_mean(u, action))
