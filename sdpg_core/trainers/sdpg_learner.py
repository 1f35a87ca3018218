"""SDPG learner: networks, optimisers and one update from a stored rollout (``SDPGTrainer``)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable

import torch
from torch import nn

from sdpg_core.action import clamp_log_sigma, clamp_mean
from sdpg_core.algorithm import sdpg
from sdpg_core.algorithm.returns import compute_returns, td_lambda
from sdpg_core.config import Config
from sdpg_core.distributed import World, all_moments, average_gradients
from sdpg_core.envs.base import EnvSpec
from sdpg_core.models import Actor, Critic
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer
from sdpg_core.storage import RolloutStorage


def actor_lr(cfg: Config, iteration: int, progress: float) -> float:
    """Linear warm-up over ``warmup_iterations``, then cosine from actor_lr to actor_lr_min."""
    hp = cfg.sdpg
    if iteration < hp.warmup_iterations:
        return hp.actor_lr * (iteration + 1) / hp.warmup_iterations
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return hp.actor_lr_min + (hp.actor_lr - hp.actor_lr_min) * cosine


def critic_lr(cfg: Config, progress: float) -> float:
    """Constant, or linear decay to 0.1x when ``critic_lr_decay``."""
    if not cfg.sdpg.critic_lr_decay:
        return cfg.sdpg.critic_lr
    return cfg.sdpg.critic_lr * (1.0 - 0.9 * min(max(progress, 0.0), 1.0))


class SDPGLearner(nn.Module):
    """Owns actor, critic, target critic, state normaliser, temperature and optimisers."""

    def __init__(
        self, cfg: Config, spec: EnvSpec, device: torch.device, world: World | None = None
    ) -> None:
        super().__init__()
        self.cfg, self.spec, self.device = cfg, spec, device
        self.world = world or World()
        self.num_nominal = cfg.sdpg.num_nominal // self.world.size  # this rank's B
        self.comm_s = 0.0  # seconds spent in collectives since ``take_comm_time``
        self.actor = Actor(spec, cfg.model)
        self.critic = Critic(spec.state_dim, cfg.model)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.normalizer = RunningNormalizer(spec.state_dim)
        hp = cfg.sdpg
        self.active = (  # [T, G] perturbed group members per step (CPU); None: all auxiliaries
            sdpg.one_step_mask(hp.num_perturbations + 1, hp.horizon, hp.antithetic)
            if hp.perturbation == "one_step"
            else None
        )
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.sdpg.alpha_init)))
        self.fix_sigma()
        self.to(device)
        actor_params = [p for p in self.actor.parameters() if p.requires_grad]
        self.actor_opt = torch.optim.Adam(actor_params, lr=cfg.sdpg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.sdpg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.sdpg.alpha_lr)

    def fix_sigma(self) -> None:
        """With ``sdpg.fixed_sigma`` > 0: the exploration std set to it and frozen."""
        if self.cfg.sdpg.fixed_sigma > 0:
            self.actor.log_sigma.data.fill_(math.log(self.cfg.sdpg.fixed_sigma))
            self.actor.log_sigma.requires_grad_(False)

    @torch.no_grad()
    def policy(self, actor_obs: ActorObs) -> tuple[torch.Tensor, torch.Tensor]:
        """Clamped (mu, log_sigma), each [n, A], without gradients."""
        mu, log_sigma = self.actor(actor_obs)
        return clamp_mean(mu, self.cfg.action), clamp_log_sigma(log_sigma, self.cfg.action)

    def update_normalizer(self, states: torch.Tensor) -> None:
        """Fold raw states [n, Ds] into the live normaliser (every rank's, merged)."""
        moments = self.normalizer.moments(states)
        start = time.perf_counter()
        every = all_moments(*moments, self.world)
        self.comm_s += time.perf_counter() - start
        for batch in every:  # parallel Welford: folding them in turn = folding their union
            self.normalizer.fold(*batch)

    def _average(self, params: Iterable[nn.Parameter]) -> None:
        """Gradients averaged over the ranks (timed)."""
        start = time.perf_counter()
        average_gradients(params, self.world)
        self.comm_s += time.perf_counter() - start

    def take_comm_time(self) -> float:
        """Seconds spent in collectives since the last call."""
        spent, self.comm_s = self.comm_s, 0.0
        return spent

    @torch.no_grad()
    def next_values(self, state: torch.Tensor, frozen: RunningNormalizer) -> torch.Tensor:
        """Target-critic values [n] of raw states [n, Ds] under the frozen normaliser."""
        return self.target_critic(frozen(state).float())

    def update(
        self, batch: RolloutStorage, frozen: RunningNormalizer, iteration: int, progress: float
    ) -> dict[str, float]:
        """One SDPG iteration's learning step; returns scalar metrics."""
        hp = self.cfg.sdpg
        returns = self.returns(batch)
        critic_targets = (
            returns
            if hp.returns == "td_lambda"
            else td_lambda(
                batch.rewards * hp.reward_scale,
                batch.next_values,
                batch.dones,
                hp.gamma,
                hp.lam,
            )
        )
        mu_star, log_sigma_star, stats = self.targets(batch, returns)
        metrics = self.update_actor(batch.actor_obs, mu_star, log_sigma_star, iteration, progress)
        metrics |= self.update_alpha()
        critic_obs = batch.critic_obs
        if hp.critic_data == "nominal":
            critic_obs = sdpg.group(critic_obs, self.num_nominal)[:, :, 0]
            critic_targets = sdpg.group(critic_targets, self.num_nominal)[:, :, 0]
        metrics |= self.update_critic(critic_obs, critic_targets, frozen, progress)
        sdpg.soft_update(self.target_critic, self.critic, hp.target_coef)
        stats["value_mean"] = batch.next_values.mean().item()
        stats["return_mean"] = critic_targets.mean().item()
        return metrics | stats

    def returns(self, batch: RolloutStorage) -> torch.Tensor:
        """J [T, N] of a stored rollout (``sdpg.returns`` mode, rewards scaled)."""
        hp = self.cfg.sdpg
        return compute_returns(
            hp.returns,
            batch.rewards * hp.reward_scale,
            batch.next_values,
            batch.dones,
            hp.gamma,
            hp.lam,
        )

    def directions(
        self, batch: RolloutStorage, returns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Ascent directions (d_mu, d_log_sigma), each [T, B, A], and the raw delta-J std."""
        hp = self.cfg.sdpg
        delta = sdpg.delta_j(sdpg.group(returns, self.num_nominal))
        active = None if self.active is None else self.active.to(delta.device)
        raw_std = sdpg.delta_j_std(delta, active).mean().item()
        if hp.normalize_delta_j:
            delta = sdpg.normalize_delta_j(delta, active)
        noise = sdpg.group(batch.noise, self.num_nominal)
        d_mu, d_log_sigma = sdpg.ascent_directions(
            delta, noise, batch.log_sigma.exp(), hp.top_k, active
        )
        return d_mu, d_log_sigma, raw_std

    def targets(
        self, batch: RolloutStorage, returns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Improved actions (mu*, log_sigma*), each [T, B, A], from grouped returns."""
        d_mu, d_log_sigma, raw_std = self.directions(batch, returns)
        nominal_action = sdpg.group(batch.actions, self.num_nominal)[:, :, 0]
        mu_star, log_sigma_star = sdpg.improved_targets(
            nominal_action,
            batch.log_sigma,
            d_mu,
            d_log_sigma,
            self.cfg.action.mu_bound,
            self.cfg.action.log_sigma_min,
            self.cfg.action.log_sigma_max,
        )
        stats = {"delta_j_std": raw_std, "d_mu_norm": d_mu.norm(dim=-1).mean().item()}
        return mu_star, log_sigma_star, stats

    def update_actor(
        self,
        actor_obs: ActorObs,
        mu_star: torch.Tensor,
        log_sigma_star: torch.Tensor,
        iteration: int,
        progress: float,
    ) -> dict[str, float]:
        """Regress the actor onto the fixed targets (epochs x minibatches of Adam steps)."""
        hp = self.cfg.sdpg
        for group in self.actor_opt.param_groups:
            group["lr"] = actor_lr(self.cfg, iteration, progress)
        obs = actor_obs.flatten(0, 1)
        mu_t, ls_t = mu_star.flatten(0, 1), log_sigma_star.flatten(0, 1)
        alpha = self.log_alpha.exp().item() if hp.fixed_sigma <= 0 else 0.0
        size = len(obs)
        chunk = math.ceil(size / hp.actor_minibatches)
        for _ in range(hp.actor_epochs):
            order = torch.randperm(size, device=self.device)
            for start in range(0, size, chunk):
                idx = order[start : start + chunk]
                mu, log_sigma = self.actor(obs[idx])
                if hp.fixed_sigma > 0:
                    log_sigma = ls_t[idx]
                loss, parts = sdpg.actor_loss(mu, log_sigma, mu_t[idx], ls_t[idx], alpha)
                self.actor_opt.zero_grad(set_to_none=True)
                loss.backward()
                self._average(self.actor.parameters())
                nn.utils.clip_grad_norm_(self.actor.parameters(), hp.grad_clip)
                self.actor_opt.step()
        return {
            "actor_loss": loss.item(),
            **parts,
            "actor_lr": self.actor_opt.param_groups[0]["lr"],
        }

    def update_alpha(self) -> dict[str, float]:
        """Tune the entropy temperature toward the target std."""
        hp = self.cfg.sdpg
        sigma = clamp_log_sigma(self.actor.log_sigma, self.cfg.action).exp()
        if hp.auto_alpha and hp.fixed_sigma <= 0:
            loss = sdpg.alpha_loss(self.log_alpha, sigma.mean(), hp.sigma_target)
            self.alpha_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.alpha_opt.step()
        return {"alpha": self.log_alpha.exp().item(), "policy_std": sigma.mean().item()}

    def update_critic(
        self,
        critic_obs: torch.Tensor,
        targets: torch.Tensor,
        frozen: RunningNormalizer,
        progress: float,
    ) -> dict[str, float]:
        """Minibatch MSE regression of V(s_t) onto TD(lambda) targets over all N envs."""
        hp = self.cfg.sdpg
        for group in self.critic_opt.param_groups:
            group["lr"] = critic_lr(self.cfg, progress)
        states = frozen(critic_obs.flatten(0, 1)).float()
        flat_targets = targets.flatten()
        size = states.shape[0]
        losses = []
        for _ in range(hp.critic_epochs):
            order = torch.randperm(size, device=self.device)
            for start in range(0, size, hp.critic_minibatch):
                idx = order[start : start + hp.critic_minibatch]
                loss = sdpg.critic_loss(self.critic(states[idx]), flat_targets[idx])
                self.critic_opt.zero_grad(set_to_none=True)
                loss.backward()
                self._average(self.critic.parameters())
                nn.utils.clip_grad_norm_(self.critic.parameters(), hp.grad_clip)
                self.critic_opt.step()
                losses.append(loss.item())
        return {"critic_loss": sum(losses) / len(losses)}
