"""Rollout storage for one SDPG iteration (preallocated, [T, ...] leading dims)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs_tensors import ActorObs


@dataclass
class RolloutStorage:
    """Tensors of one horizon. N = B * G envs; actor inputs for the B nominal envs only."""

    actor_obs: ActorObs  # [T, B, ...] uint8 pixels (+ proprio [T, B, P]) or normalised state
    critic_obs: torch.Tensor  # [T, N, Ds] raw privileged state before each step
    actions: torch.Tensor  # [T, N, A] pre-tanh actions a = clamp(mu + sigma * eps)
    noise: torch.Tensor  # [T, N, A] eps (0 for nominal envs)
    log_sigma: torch.Tensor  # [T, B, A] clamped log-std used for the rollout
    rewards: torch.Tensor  # [T, N]
    next_values: torch.Tensor  # [T, N] target-critic V'(s_{t+1}), 0 if terminated
    dones: torch.Tensor  # [T, N] segment ends (1 forced at t = T-1)

    @classmethod
    def allocate(
        cls,
        horizon: int,
        num_nominal: int,
        num_envs: int,
        spec: EnvSpec,
        device: torch.device,
    ) -> RolloutStorage:
        """Zero-filled storage on ``device`` for an env of ``spec``."""
        t, b, n, a, state_dim = horizon, num_nominal, num_envs, spec.action_dim, spec.state_dim
        f32 = {"dtype": torch.float32, "device": device}
        return cls(
            actor_obs=ActorObs.zeros((t, b), spec, device),
            critic_obs=torch.zeros((t, n, state_dim), **f32),
            actions=torch.zeros((t, n, a), **f32),
            noise=torch.zeros((t, n, a), **f32),
            log_sigma=torch.zeros((t, b, a), **f32),
            rewards=torch.zeros((t, n), **f32),
            next_values=torch.zeros((t, n), **f32),
            dones=torch.zeros((t, n), **f32),
        )
