"""What every algorithm's trainer shares: episode statistics, counters, clocks and budget."""

from __future__ import annotations

import abc
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdpg_core.config import Config
from sdpg_core.models import resolve_device
from sdpg_core.policy import Policy


class EpisodeTracker:
    """Returns, reward terms and success of the finished episodes of the envs the actor drives."""

    def __init__(self, count: int, window: int, has_success: bool) -> None:
        self.has_success = has_success
        self.running = np.zeros(count)
        self.terms: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(count))
        self.returns: deque[float] = deque(maxlen=window)
        self.successes: deque[float] = deque(maxlen=window)
        self.term_means: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def add(
        self,
        reward: np.ndarray,
        terms: dict[str, np.ndarray],
        ended: np.ndarray,
        success: np.ndarray | None,
    ) -> None:
        """Accumulate one step of the tracked envs; close the episodes that ``ended``."""
        self.running += reward
        for name, value in terms.items():
            self.terms[name] += value
        for i in np.flatnonzero(ended):
            self.returns.append(float(self.running[i]))
            if success is not None:
                self.successes.append(float(success[i]))
            for name in terms:
                self.term_means[name].append(float(self.terms[name][i]))
        self.running[ended] = 0.0
        for name in terms:
            self.terms[name][ended] = 0.0

    def state_dict(self) -> dict[str, Any]:
        """Running sums and windows (plain lists/tensors, weights_only-loadable)."""
        return {
            "running": torch.from_numpy(self.running.copy()),
            "terms": {k: torch.from_numpy(v.copy()) for k, v in self.terms.items()},
            "returns": list(self.returns),
            "successes": list(self.successes),
            "term_means": {k: list(v) for k, v in self.term_means.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of ``state_dict``."""
        self.running[:] = state["running"].numpy()
        for name, value in state["terms"].items():
            self.terms[name][:] = value.numpy()
        self.returns.extend(state["returns"])
        self.successes.extend(state["successes"])
        for name, values in state["term_means"].items():
            self.term_means[name].extend(values)

    def summary(self) -> dict[str, Any]:
        """Window means (None before the first finished episode)."""
        out: dict[str, Any] = {
            "episode_return": float(np.mean(self.returns)) if self.returns else None,
            "episodes": len(self.returns),
        }
        if self.has_success:
            out["success_rate"] = float(np.mean(self.successes)) if self.successes else None
        for name, values in self.term_means.items():
            out[f"reward/{name}"] = float(np.mean(values))
        return out


class TrainerBase(abc.ABC):
    """Seeding, device, counters, wall and process CPU clocks, budget, record and preview.

    Subclasses set ``env``, ``spec``, ``episodes``, ``steps_per_iteration`` (env steps) and
    ``frames_per_iteration`` (steps of the envs the actor drives) and implement ``_iterate``.
    """

    def __init__(self, cfg: Config, run_dir: str | Path) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        torch.manual_seed(cfg.run.seed)
        if cfg.run.torch_threads:
            torch.set_num_threads(cfg.run.torch_threads)
        self.device = resolve_device(cfg.run.device)
        self.iteration, self.env_steps = 0, 0
        self.wall_time, self.cpu_time = 0.0, 0.0
        self.best_score = -float("inf")
        self.timers: dict[str, float] = defaultdict(float)

    @abc.abstractmethod
    def _iterate(self) -> dict[str, float]:
        """Collect and learn once; returns the algorithm's scalar metrics."""

    @abc.abstractmethod
    def policy(self) -> Policy:
        """The current actor as a deployable policy (shares weights, no copy)."""

    @abc.abstractmethod
    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to deploy or resume (weights_only-loadable)."""

    def _timed(self, name: str, start: float) -> float:
        """Add the time since ``start`` to timer ``name``; return now."""
        now = time.perf_counter()
        self.timers[name] += now - start
        return now

    def train_iteration(self) -> dict[str, Any]:
        """One iteration; returns its metrics record (wall and process CPU time accumulated)."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.timers.clear()
        self.env.timers.clear()
        metrics = self._iterate()
        elapsed = time.perf_counter() - wall
        self.iteration += 1
        self.env_steps += self.steps_per_iteration
        self.wall_time += elapsed
        self.cpu_time += time.process_time() - cpu
        return self._record(metrics, elapsed)

    def _record(self, metrics: dict[str, float], elapsed: float) -> dict[str, Any]:
        """The metrics.jsonl record of the iteration just finished."""
        timers = {f"time/{k}": v for k, v in self.timers.items()}
        timers |= {f"time/{k}": v for k, v in self.env.timers.items()}
        return {
            "iteration": self.iteration,
            "task": self.spec.task,
            "algo": self.cfg.run.algo,
            "env_steps": self.env_steps,
            "nominal_frames": self.iteration * self.frames_per_iteration,
            "wall_time_s": self.wall_time,
            "cpu_time_s": self.cpu_time,
            "fps": self.steps_per_iteration / elapsed,
            **self.episodes.summary(),
            **metrics,
            **timers,
        }

    def counters(self) -> dict[str, Any]:
        """Iteration, env steps, clocks and best score, for checkpoints."""
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "wall_time_s": self.wall_time,
            "cpu_time_s": self.cpu_time,
            "best_score": self.best_score,
        }

    def restore_counters(self, state: dict[str, Any]) -> None:
        """Inverse of ``counters`` (checkpoints without ``cpu_time_s`` restart that clock)."""
        self.iteration, self.env_steps = int(state["iteration"]), int(state["env_steps"])
        self.wall_time, self.best_score = float(state["wall_time_s"]), float(state["best_score"])
        self.cpu_time = float(state.get("cpu_time_s", 0.0))

    def rng_state(self, generator: torch.Generator) -> dict[str, Any]:
        """Global torch, ``generator`` and CUDA RNG states, for checkpoints."""
        return {
            "torch_rng": torch.get_rng_state(),
            "noise_rng": generator.get_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def restore_rng(self, state: dict[str, Any], generator: torch.Generator) -> None:
        """Inverse of ``rng_state``."""
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["noise_rng"])
        if self.device.type == "cuda" and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def progress(self) -> float:
        """Fraction of the iteration budget done: schedules never depend on the machine's speed
        (a ``run.minutes`` cap may end the run early, it does not change the schedule)."""
        return min(self.iteration / self.cfg.run.iterations, 1.0)

    def preview(self) -> np.ndarray | None:
        """Latest camera frame of rendered env 0 as RGB uint8 [H, W, 3] (None without pixels)."""
        renderer = self.env.renderer
        if renderer is None:
            return None
        return renderer.stack.frames[0, -3:].transpose(1, 2, 0).copy()

    def close(self) -> None:
        """Release the envs."""
        self.env.close()
