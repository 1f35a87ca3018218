"""PPO baseline from pixels (Schulman et al., 2017), a trainer like SDPG's (``trainers.base``).

Every env renders and runs the visual actor (``models.Actor``, shared with SDPG). The critic is
asymmetric: it sees the privileged low-dim state through the running normaliser (the
``models.Critic`` of SDPG), as is standard in robot learning; the deployed policy needs pixels
only. Actions follow the shared convention (sdpg_core/action.py): the pre-tanh sample
u = mu + sigma * eps is clamped to ``action.mu_bound`` and the env receives its tanh; PPO's
ratios are taken in pre-tanh space (``algorithm.ppo``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sdpg_core.action import clamp_log_sigma, env_action
from sdpg_core.algorithm import ppo
from sdpg_core.config import Config
from sdpg_core.distributed import World
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import make_env
from sdpg_core.models import Actor, Critic
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer
from sdpg_core.policy import actor_input
from sdpg_core.trainers.base import EpisodeTracker, TrainerBase


@dataclass
class PPOBatch:
    """One rollout of B envs over T steps, [T, B] leading dims."""

    actor_obs: ActorObs  # [T, B, ...] uint8 pixels (+ proprio) or float32 normalised state
    states: torch.Tensor  # [T, B, Ds] raw privileged state s_t
    next_states: torch.Tensor  # [T, B, Ds] raw state reached by step t (before any reset)
    actions: torch.Tensor  # [T, B, A] pre-tanh samples u (unclamped)
    log_probs: torch.Tensor  # [T, B] log pi_old(u | o_t)
    rewards: torch.Tensor  # [T, B]
    terminated: torch.Tensor  # [T, B] bool: no bootstrap after step t
    dones: torch.Tensor  # [T, B] env reset after step t (terminated or truncated)

    @classmethod
    def allocate(cls, horizon: int, envs: int, spec: EnvSpec, device: torch.device) -> PPOBatch:
        """Zero-filled batch on ``device``."""
        t, b = horizon, envs
        f32 = {"dtype": torch.float32, "device": device}
        return cls(
            actor_obs=ActorObs.zeros((t, b), spec, device),
            states=torch.zeros((t, b, spec.state_dim), **f32),
            next_states=torch.zeros((t, b, spec.state_dim), **f32),
            actions=torch.zeros((t, b, spec.action_dim), **f32),
            log_probs=torch.zeros((t, b), **f32),
            rewards=torch.zeros((t, b), **f32),
            terminated=torch.zeros((t, b), dtype=torch.bool, device=device),
            dones=torch.zeros((t, b), **f32),
        )


class PPOTrainer(TrainerBase):
    """Runs PPO iterations: rollout of every env, GAE, K epochs of clipped-surrogate minibatches."""

    def __init__(self, cfg: Config, run_dir: str | Path, world: World | None = None) -> None:
        super().__init__(cfg, run_dir, world)
        hp = cfg.ppo
        self.env = make_env(cfg.env.task, cfg.env, hp.num_envs, seed=cfg.run.seed)
        self.spec = spec = self.env.spec
        self.actor = Actor(spec, cfg.model).to(self.device)
        self.actor.log_sigma.data.fill_(hp.init_log_std)
        self.critic = Critic(spec.state_dim, cfg.model).to(self.device)
        self.normalizer = RunningNormalizer(spec.state_dim).to(self.device)
        params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = torch.optim.Adam(params, lr=hp.lr, eps=1e-5)
        self.batch = PPOBatch.allocate(hp.horizon, hp.num_envs, spec, self.device)
        self.episodes = EpisodeTracker(hp.num_envs, max(hp.num_envs, 20), spec.has_success)
        self.steps_per_iteration = self.frames_per_iteration = hp.num_envs * hp.horizon

    def stateful(self) -> dict[str, Any]:
        """Networks, normaliser and the one optimiser."""
        return {
            "actor": self.actor,
            "critic": self.critic,
            "normalizer": self.normalizer,
            "optimizer": self.optimizer,
        }

    def _distribution(self, obs: ActorObs) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_sigma) [n, A] of the actor, log_sigma clamped to the action bounds."""
        mu, log_sigma = self.actor(obs)
        return mu, clamp_log_sigma(log_sigma, self.cfg.action)

    @torch.no_grad()
    def _act(self, t: int, obs: dict[str, np.ndarray], frozen: RunningNormalizer) -> np.ndarray:
        """Sample u for every env at step t, store it; returns the env actions tanh(clamp(u))."""
        b = self.batch
        b.actor_obs[t] = actor_input(self.spec, obs, frozen, self.device)
        b.states[t] = torch.from_numpy(obs["state"])
        mu, log_sigma = self._distribution(b.actor_obs[t])
        noise = torch.randn(mu.shape, generator=self.generator).to(self.device)
        b.actions[t] = mu + log_sigma.exp() * noise
        b.log_probs[t] = ppo.gaussian_log_prob(b.actions[t], mu, log_sigma)
        return env_action(b.actions[t], self.cfg.action).cpu().numpy()

    def collect(self) -> RunningNormalizer:
        """Roll out every env for T steps; returns the normaliser frozen for this rollout."""
        b, env = self.batch, self.env
        frozen = copy.deepcopy(self.normalizer)
        obs = env.observe()
        for t in range(self.cfg.ppo.horizon):
            start = time.perf_counter()
            actions = self._act(t, obs, frozen)
            start = self._timed("actor_forward", start)
            result = env.step(actions)
            self._timed("env_step", start)
            next_state = torch.from_numpy(result.obs["state"]).to(self.device)
            finite = ~torch.from_numpy(result.info["nonfinite"]).to(self.device)
            self.normalizer.update(next_state[finite])
            done = result.terminated | result.truncated
            b.next_states[t], b.rewards[t] = next_state, torch.from_numpy(result.reward)
            b.terminated[t] = torch.from_numpy(result.terminated)
            b.dones[t] = torch.from_numpy(done)
            self._track(result)
            env.reset(np.flatnonzero(done))
            obs = env.observe()
        return frozen

    @torch.no_grad()
    def advantages(self, frozen: RunningNormalizer) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE advantages and value targets [T, B] from the critic on privileged state."""
        b, hp = self.batch, self.cfg.ppo
        values = self.critic(frozen(b.states).float())
        next_values = self.critic(frozen(b.next_states).float())
        next_values[b.terminated] = 0.0
        return ppo.gae(b.rewards * hp.reward_scale, values, next_values, b.dones, hp.gamma, hp.lam)

    def _iterate(self) -> dict[str, float]:
        """Rollout, GAE, then the PPO update."""
        frozen = self.collect()
        start = time.perf_counter()
        advantages, returns = self.advantages(frozen)
        metrics = self.update(frozen, advantages, returns)
        self._timed("update", start)
        return metrics

    def _learning_rate(self) -> float:
        """``ppo.lr``, linearly annealed to 0 over run progress when ``ppo.anneal_lr``."""
        hp = self.cfg.ppo
        return hp.lr * (1.0 - self.progress()) if hp.anneal_lr else hp.lr

    def _flat(
        self, frozen: RunningNormalizer, advantages: torch.Tensor, returns: torch.Tensor
    ) -> tuple[ActorObs | torch.Tensor, ...]:
        """The rollout as [T * B, ...] tensors: obs, normalised states, u, log pi_old, A, R."""
        b = self.batch
        if self.cfg.ppo.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return (
            b.actor_obs.flatten(0, 1),
            frozen(b.states.flatten(0, 1)).float(),
            b.actions.flatten(0, 1),
            b.log_probs.flatten(),
            advantages.flatten(),
            returns.flatten(),
        )

    def update(
        self, frozen: RunningNormalizer, advantages: torch.Tensor, returns: torch.Tensor
    ) -> dict[str, float]:
        """K epochs of minibatch Adam steps on the clipped surrogate, value loss and entropy."""
        hp = self.cfg.ppo
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        data = self._flat(frozen, advantages, returns)
        size = len(data[0])
        chunk = math.ceil(size / hp.minibatches)
        totals: dict[str, float] = {}
        for _ in range(hp.epochs):
            order = torch.randperm(size, device=self.device)
            for start in range(0, size, chunk):
                parts = self._step(*(x[order[start : start + chunk]] for x in data))
                totals = {k: totals.get(k, 0.0) + v for k, v in parts.items()}
        steps = hp.epochs * math.ceil(size / chunk)
        log_sigma = clamp_log_sigma(self.actor.log_sigma.detach(), self.cfg.action)
        return {k: v / steps for k, v in totals.items()} | {
            "policy_std": log_sigma.exp().mean().item(),
            "lr": self.optimizer.param_groups[0]["lr"],
        }

    def _step(
        self,
        obs: ActorObs,
        states: torch.Tensor,
        actions: torch.Tensor,
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
    ) -> dict[str, float]:
        """One Adam step on -L^CLIP + c1 (V - R)^2 - c2 H over a minibatch [n, ...].

        Actor and critic gradients are clipped separately: the value loss (in return units)
        must not shrink the policy gradient."""
        hp = self.cfg.ppo
        mu, log_sigma = self._distribution(obs)
        log_ratio = ppo.gaussian_log_prob(actions, mu, log_sigma) - old_log_probs
        ratio = log_ratio.exp()
        surrogate = ppo.clipped_surrogate(ratio, advantages, hp.clip)
        value_loss = (self.critic(states) - returns).square().mean()
        entropy = ppo.gaussian_entropy(log_sigma).mean()
        loss = -surrogate + hp.value_coef * value_loss - hp.entropy_coef * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), hp.grad_clip)
        nn.utils.clip_grad_norm_(self.critic.parameters(), hp.grad_clip)
        self.optimizer.step()
        return {
            "actor_loss": -surrogate.item(),
            "critic_loss": value_loss.item(),
            "entropy": entropy.item(),
            "approx_kl": ppo.approx_kl(log_ratio.detach()).item(),
            "clip_fraction": ((ratio - 1.0).abs() > hp.clip).float().mean().item(),
        }
