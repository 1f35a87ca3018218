"""Teacher-student distillation with DAgger (Ross et al., 2011), a trainer like SDPG's.

The teacher is a trained state policy of ``<task>_state`` (an SDPG or PPO checkpoint); it reads
the privileged state through its own normaliser from that checkpoint. The student is the visual
``models.Actor`` on the task camera. Each iteration B rendered envs run T steps; at every step
and env the teacher acts with probability beta_i = beta * beta_decay ** i, else the student's
deterministic action. Every visited state is labelled with the teacher's deterministic pre-tanh
action clamp(mu_teacher, -mu_bound, mu_bound) and joins a bounded FIFO buffer (the aggregated
data set). The student's pre-tanh mean regresses onto the labels: MSE in pre-tanh space, so at
zero loss its deployed action tanh(clamp(mu)) is the teacher's. Its log-std is not trained.
Checkpoints leave the buffer out: a resumed run starts collecting it afresh.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sdpg_core.action import clamp_mean, env_action
from sdpg_core.config import Config
from sdpg_core.distributed import World
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import get_task, make_env
from sdpg_core.models import Actor
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer
from sdpg_core.policy import Policy, actor_input
from sdpg_core.trainers.base import EpisodeTracker, TrainerBase


class Teacher:
    """Deterministic pre-tanh actions clamp(mu) of a trained state policy on raw state."""

    def __init__(self, path: str, task: str, device: torch.device) -> None:
        base = task.removesuffix("_state")
        if get_task(task).obs_mode != "pixels":
            raise ValueError(f"distill trains a pixel student: use task {base!r}, not {task!r}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"distill.teacher: checkpoint not found: {path}")
        self.policy = Policy.load(path, str(device))
        spec = self.policy.spec
        if spec.obs_mode != "state":
            raise ValueError(
                f"distill.teacher {path}: a {spec.obs_mode} policy of {spec.task!r}; "
                f"the teacher must be a state policy trained on {base}_state"
            )
        if spec.task.removesuffix("_state") != base:
            raise ValueError(
                f"distill.teacher {path}: trained on {spec.task!r}, the student's task is "
                f"{task!r}; the teacher must be trained on {base}_state"
            )

    def check(self, student: EnvSpec) -> None:
        """The student's env has the teacher's state and action sizes."""
        spec = self.policy.spec
        if (spec.state_dim, spec.action_dim) != (student.state_dim, student.action_dim):
            raise ValueError(
                f"distill.teacher: state/action dims {spec.state_dim}/{spec.action_dim} "
                f"differ from the student's {student.state_dim}/{student.action_dim}"
            )

    @torch.no_grad()
    def __call__(self, state: np.ndarray) -> torch.Tensor:
        """Raw privileged state float32 [n, Ds] -> pre-tanh actions [n, A]."""
        p = self.policy
        mu, _ = p.actor(actor_input(p.spec, {"state": state}, p.normalizer, p.device))
        return clamp_mean(mu, p.cfg.action)


class ReplayBuffer:
    """Bounded FIFO of (actor input, teacher action) pairs: DAgger's aggregated data set."""

    def __init__(self, capacity: int, spec: EnvSpec) -> None:
        self.obs = ActorObs.zeros((capacity,), spec, "cpu")
        self.labels = torch.zeros((capacity, spec.action_dim))
        self.capacity, self.size, self.cursor = capacity, 0, 0

    def __len__(self) -> int:
        """Pairs held."""
        return self.size

    def add(self, obs: ActorObs, labels: torch.Tensor) -> None:
        """Append rows obs [n, ...] and labels [n, A] (n <= capacity), dropping the oldest."""
        rows = (self.cursor + torch.arange(len(obs))) % self.capacity
        self.obs[rows] = obs.to("cpu")
        self.labels[rows] = labels.cpu()
        self.cursor = (self.cursor + len(obs)) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[ActorObs, torch.Tensor]:
        """``batch`` pairs drawn uniformly with replacement."""
        rows = torch.randint(self.size, (batch,), generator=generator)
        return self.obs[rows], self.labels[rows]


class DistillTrainer(TrainerBase):
    """Runs DAgger iterations: mixed rollout, teacher labels, aggregation, regression."""

    def __init__(self, cfg: Config, run_dir: str | Path, world: World | None = None) -> None:
        super().__init__(cfg, run_dir, world)
        hp = cfg.distill
        self.teacher = Teacher(hp.teacher, cfg.env.task, self.device)
        self.env = make_env(cfg.env.task, cfg.env, hp.num_envs, seed=cfg.run.seed)
        self.spec = spec = self.env.spec
        self.teacher.check(spec)
        self.actor = Actor(spec, cfg.model).to(self.device)
        self.normalizer = RunningNormalizer(spec.state_dim).to(self.device)
        self.optimizer = torch.optim.Adam(self.actor.parameters(), lr=hp.lr)
        self.buffer = ReplayBuffer(hp.buffer_size, spec)
        self.episodes = EpisodeTracker(hp.num_envs, max(hp.num_envs, 20), spec.has_success)
        self.steps_per_iteration = self.frames_per_iteration = hp.num_envs * hp.horizon

    def stateful(self) -> dict[str, Any]:
        """Student, normaliser and optimiser (not the buffer: a resumed run refills it)."""
        return {"actor": self.actor, "normalizer": self.normalizer, "optimizer": self.optimizer}

    def beta(self) -> float:
        """Probability that the teacher acts in this iteration: beta * beta_decay ** i."""
        return self.cfg.distill.beta * self.cfg.distill.beta_decay**self.iteration

    @torch.no_grad()
    def _act(self, obs: dict[str, np.ndarray], beta: float) -> tuple[torch.Tensor, ...]:
        """(actor input, student action, teacher label, executed action), pre-tanh [n, ...]."""
        pixels = actor_input(self.spec, obs, self.normalizer, self.device)
        mu, _ = self.actor(pixels)
        student = clamp_mean(mu, self.cfg.action)
        label = self.teacher(obs["state"])
        teacher_acts = torch.rand(len(mu), generator=self.generator).to(self.device) < beta
        return pixels, student, label, torch.where(teacher_acts[:, None], label, student)

    def collect(self) -> dict[str, float]:
        """Roll out B envs for T steps, labelling and storing every visited state."""
        env, beta = self.env, self.beta()
        errors = []
        obs = env.observe()
        for _ in range(self.cfg.distill.horizon):
            start = time.perf_counter()
            pixels, student, label, action = self._act(obs, beta)
            start = self._timed("actor_forward", start)
            result = env.step(env_action(action, self.cfg.action).cpu().numpy())
            self._timed("env_step", start)
            self.buffer.add(pixels, label)
            errors.append((student - label).square().mean().item())
            self._track(result)
            env.reset(np.flatnonzero(result.terminated | result.truncated))
            obs = env.observe()
        return {"beta": beta, "imitation_mse": float(np.mean(errors))}

    def update(self) -> dict[str, float]:
        """``distill.updates`` Adam steps of MSE(mu_student, teacher label) on buffer samples."""
        hp = self.cfg.distill
        losses = []
        for _ in range(hp.updates):
            obs, labels = self.buffer.sample(hp.batch_size, self.generator)
            mu, _ = self.actor(obs.to(self.device))
            loss = (mu - labels.to(self.device)).square().mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.actor.parameters(), hp.grad_clip)
            self.optimizer.step()
            losses.append(loss.item())
        return {"actor_loss": float(np.mean(losses)), "buffer_size": len(self.buffer)}

    def _iterate(self) -> dict[str, float]:
        """Mixed rollout with labels, then the regression."""
        metrics = self.collect()
        start = time.perf_counter()
        metrics |= self.update()
        self._timed("update", start)
        return metrics
