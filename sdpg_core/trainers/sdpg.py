"""SDPG trainer: B nominal envs render and run the visual actor, each with P auxiliary
physics-only envs that replay its actions plus Gaussian noise (You et al., 2026)."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdpg_core.action import clamp_mean, env_action
from sdpg_core.algorithm import sdpg
from sdpg_core.config import Config, ConfigError
from sdpg_core.distributed import World
from sdpg_core.envs.base import StepResult
from sdpg_core.envs.registry import make_env
from sdpg_core.obs_tensors import RunningNormalizer
from sdpg_core.policy import actor_input
from sdpg_core.storage import RolloutStorage
from sdpg_core.trainers.base import EpisodeTracker, TrainerBase
from sdpg_core.trainers.sdpg_learner import SDPGLearner


class SDPGTrainer(TrainerBase):
    """One SDPG iteration (``train_iteration``), top to bottom:

    1. env.copy_state(nominals -> auxiliaries)       reset every auxiliary to its nominal's state
    2. frozen = copy of learner.normalizer           one normaliser for the whole rollout
    3. for t in 0..T-1 (``collect``):
    4.   mu, log_sigma = learner.policy(obs_t)       visual actor on the B nominal frames only
    5.   a, eps = _perturb(mu, log_sigma, t)         a = clamp(mu + sigma * eps), eps = 0 nominal
    6.   result = env.step(env_action(a))            tanh into the env, all B(P+1) envs
    7.   V' = learner.next_values(s_t+1)             target critic on privileged state
    8.   _handle_resets(done)                        reset nominals, re-sync their auxiliaries
    9. mu*, log_sigma* = learner.targets(J)          J = learner.returns: delta-J -> ascent
    10. learner.update_actor, update_alpha, update_critic, soft_update   (all in learner.update)
    """

    def __init__(self, cfg: Config, run_dir: str | Path, world: World | None = None) -> None:
        super().__init__(cfg, run_dir, world)
        hp, world = cfg.sdpg, self.world
        if hp.num_nominal % world.size:
            raise ConfigError(
                f"sdpg.num_nominal={hp.num_nominal} does not split over {world.size} processes "
                "(each owns num_nominal / processes nominal groups)"
            )
        self.num_nominal = hp.num_nominal // world.size  # this rank's B
        self.group_size = hp.num_perturbations + 1
        self.num_envs = self.num_nominal * self.group_size
        self.nominal_ids = np.arange(self.num_nominal) * self.group_size
        self.aux_ids = np.setdiff1d(np.arange(self.num_envs), self.nominal_ids)
        seed = cfg.run.seed if world.main else [cfg.run.seed, world.rank]
        self.env = make_env(cfg.env.task, cfg.env, self.num_envs, self.nominal_ids, seed=seed)
        self.spec = self.env.spec
        self.learner = SDPGLearner(cfg, self.spec, self.device, world)
        self.actor, self.normalizer = self.learner.actor, self.learner.normalizer
        self.storage = self._allocate()
        self.episodes = EpisodeTracker(
            self.num_nominal, max(self.num_nominal, 20), self.spec.has_success
        )
        self.steps_per_iteration = self.num_envs * hp.horizon * world.size  # all ranks
        self.frames_per_iteration = hp.num_nominal * hp.horizon

    def init_weights(self, path: str | Path) -> None:
        """The checkpoint's networks, with this run's ``sdpg.fixed_sigma`` if set."""
        super().init_weights(path)
        self.learner.fix_sigma()

    def stateful(self) -> dict[str, Any]:
        """Networks, normaliser, temperature and optimisers."""
        learner = self.learner
        return {
            "actor": learner.actor,
            "critic": learner.critic,
            "target_critic": learner.target_critic,
            "normalizer": learner.normalizer,
            "log_alpha": learner.log_alpha,
            "actor_opt": learner.actor_opt,
            "critic_opt": learner.critic_opt,
            "alpha_opt": learner.alpha_opt,
        }

    def _allocate(self) -> RolloutStorage:
        """Storage sized for this config and spec."""
        hp = self.cfg.sdpg
        return RolloutStorage.allocate(
            hp.horizon, self.num_nominal, self.num_envs, self.spec, self.device
        )

    def collect(self) -> RunningNormalizer:
        """Steps 1-8: sync auxiliaries to nominals and fill the storage; returns the frozen
        normaliser."""
        hp, env, st = self.cfg.sdpg, self.env, self.storage
        env.copy_state(np.repeat(self.nominal_ids, hp.num_perturbations), self.aux_ids)
        frozen = copy.deepcopy(self.learner.normalizer)
        obs = env.observe()
        for t in range(hp.horizon):
            start = time.perf_counter()
            nominal_obs = {k: v[self.nominal_ids] for k, v in obs.items() if k != "pixels"}
            nominal_obs["pixels"] = obs.get("pixels")  # rendered for the nominal envs only
            st.actor_obs[t] = actor_input(self.spec, nominal_obs, frozen, self.device)
            mu, log_sigma = self.learner.policy(st.actor_obs[t])
            start = self._timed("actor_forward", start)
            action, noise = self._perturb(mu, log_sigma, t)
            st.critic_obs[t] = torch.from_numpy(obs["state"])
            result = env.step(env_action(action, self.cfg.action).cpu().numpy())
            start = self._timed("env_step", start)
            self._store_values(t, result, frozen)
            self._timed("critic", start)
            self._track(result, self.nominal_ids)
            done = self._handle_resets(result.terminated | result.truncated)
            if t == hp.horizon - 1:
                done[:] = True
            st.actions[t], st.noise[t], st.log_sigma[t] = action, noise, log_sigma
            st.rewards[t], st.dones[t] = torch.from_numpy(result.reward), torch.from_numpy(done)
            obs = env.observe()
        return frozen

    def _store_values(self, t: int, result: StepResult, frozen: RunningNormalizer) -> None:
        """Step 7: V'(s_t+1) into the storage (0 where terminated); update the live normaliser."""
        next_state = torch.from_numpy(result.obs["state"]).to(self.device)
        values = self.learner.next_values(next_state, frozen)
        values[torch.from_numpy(result.terminated).to(self.device)] = 0.0
        self.storage.next_values[t] = values
        finite = ~torch.from_numpy(result.info["nonfinite"]).to(self.device)
        self.learner.update_normalizer(next_state[finite])

    def _perturb(
        self, mu: torch.Tensor, log_sigma: torch.Tensor, t: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Group-broadcast (mu, sigma); a = clamp(mu + sigma eps), eps = 0 for nominal envs."""
        hp, g = self.cfg.sdpg, self.group_size
        mu_n = mu.repeat_interleave(g, dim=0)
        sigma_n = log_sigma.exp().repeat_interleave(g, dim=0)
        mask = self.learner.active
        active = None if mask is None else mask[t]
        noise = sdpg.perturbation_noise(
            self.num_nominal, g, mu.shape[-1], self.generator, hp.antithetic, active
        ).to(self.device)
        return clamp_mean(mu_n + sigma_n * noise, self.cfg.action), noise

    def _handle_resets(self, done: np.ndarray) -> np.ndarray:
        """Reset done nominals (copied into their group); overwrite done auxiliaries."""
        done = done.copy()
        groups = done.reshape(-1, self.group_size)
        reset_groups = np.flatnonzero(groups[:, 0])
        if len(reset_groups):
            self.env.reset(self.nominal_ids[reset_groups])
            groups[reset_groups] = True
        stale = np.flatnonzero(done)
        stale = stale[stale % self.group_size != 0]
        if len(stale):
            self.env.copy_state(stale - stale % self.group_size, stale)
        return done

    def _iterate(self) -> dict[str, float]:
        """Steps 1-10: sync, perturbed rollout and one SDPG update."""
        frozen = self.collect()
        start = time.perf_counter()
        metrics = self.learner.update(self.storage, frozen, self.iteration, self.progress())
        self._timed("update", start)
        if self.world.active:
            self.timers["allreduce"] = self.learner.take_comm_time()  # in update and critic
        return metrics
