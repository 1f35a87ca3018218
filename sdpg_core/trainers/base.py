"""What every algorithm's trainer shares: episode statistics, counters, clocks, RNGs, the
deployable policy and the checkpoint state built from one mapping of stateful parts."""

from __future__ import annotations

import abc
import json
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdpg_core import checkpoint
from sdpg_core.config import Config
from sdpg_core.distributed import World, gather, total
from sdpg_core.envs.base import StepResult
from sdpg_core.fit import checkpoint_spec
from sdpg_core.models import resolve_device
from sdpg_core.policy import Policy, load_problem


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


INIT_SPEC_FIELDS = ("task", "obs_mode", "state_dim", "action_dim", "pixel_shape", "proprio_dim")


def _load_part(part: Any, saved: Any) -> None:
    """Copy saved weights into a module or a tensor (shapes must agree)."""
    if isinstance(part, torch.Tensor):
        if part.shape != saved.shape:
            raise RuntimeError(f"shape {tuple(saved.shape)} for {tuple(part.shape)}")
        part.data.copy_(saved)
    else:
        part.load_state_dict(saved)


class TrainerBase(abc.ABC):
    """Seeding, device, counters, clocks, RNGs, episode tracking, policy and checkpoint state.

    Subclasses build ``env``, ``spec``, ``actor``, ``normalizer``, ``episodes``,
    ``steps_per_iteration`` (env steps) and ``frames_per_iteration`` (steps of the envs the
    actor drives), name their learned state in ``stateful`` and implement ``_iterate``.
    """

    def __init__(self, cfg: Config, run_dir: str | Path, world: World | None = None) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.world = world or World()
        torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank
        if cfg.run.torch_threads:
            torch.set_num_threads(cfg.run.torch_threads)
        self.device = resolve_device(cfg.run.device)
        noise_seed = cfg.run.seed + 1 + 1_000_003 * self.world.rank  # each rank its own noise
        self.generator = torch.Generator().manual_seed(noise_seed)  # the algorithm's noise
        self.iteration, self.env_steps = 0, 0
        self.wall_time, self.cpu_time = 0.0, 0.0
        self.best_score = -float("inf")
        self.timers: dict[str, float] = defaultdict(float)

    @abc.abstractmethod
    def _iterate(self) -> dict[str, float]:
        """Collect and learn once; returns the algorithm's scalar metrics."""

    @abc.abstractmethod
    def stateful(self) -> dict[str, Any]:
        """Name -> module, optimiser or tensor: the learned state a checkpoint holds."""

    def _timed(self, name: str, start: float) -> float:
        """Add the time since ``start`` to timer ``name``; return now."""
        now = time.perf_counter()
        self.timers[name] += now - start
        return now

    def _track(self, result: StepResult, ids: np.ndarray | slice = slice(None)) -> None:
        """Episode statistics of the envs ``ids`` (forced horizon ends are not episode ends);
        call it before resetting the envs that ended."""
        ended = (result.terminated | result.truncated)[ids]
        success = result.info["success"][ids] if self.spec.has_success else None
        if self.env.randomizer.dim and ended.any():
            self._log_draws(np.arange(self.env.num_envs)[ids], ended, result, success)
        terms = {k: v[ids] for k, v in result.info["reward_terms"].items()}
        self.episodes.add(result.reward[ids], terms, ended, success)

    def _log_draws(
        self, ids: np.ndarray, ended: np.ndarray, result: StepResult, success: np.ndarray | None
    ) -> None:
        """Append each ended episode's randomised values and outcome to randomization.jsonl
        (what reproduces a failure: ``env.randomize`` fixed to these values; one line, one
        write, so ranks of a distributed run append safely)."""
        returns = self.episodes.running + result.reward[ids]
        lines = []
        for k in np.flatnonzero(ended):
            record = {"iteration": self.iteration, "env": int(ids[k]), "return": float(returns[k])}
            if self.world.active:  # every rank appends its own episodes (whole lines)
                record["rank"] = self.world.rank
            if success is not None:
                record["success"] = bool(success[k])
            record["randomization"] = self.env.randomizer.values(self.env.params[ids[k]])
            lines.append(json.dumps(record) + "\n")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "randomization.jsonl").open("a") as handle:
            for line in lines:
                handle.write(line)
                handle.flush()

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
        self.cpu_time += total(time.process_time() - cpu, self.world)  # every rank's CPU
        return self._record(metrics, elapsed)

    def _record(self, metrics: dict[str, float], elapsed: float) -> dict[str, Any]:
        """The metrics.jsonl record of the iteration just finished."""
        timers = {f"time/{k}": v for k, v in self.timers.items()}
        timers |= {f"time/{k}": v for k, v in self.env.timers.items()}
        return {
            "iteration": self.iteration,
            "task": self.spec.task,
            "algo": self.cfg.run.algo,
            "world_size": self.world.size,
            "env_steps": self.env_steps,
            "nominal_frames": self.iteration * self.frames_per_iteration,
            "wall_time_s": self.wall_time,
            "cpu_time_s": self.cpu_time,
            "fps": self.steps_per_iteration / elapsed,
            **self.episodes.summary(),
            **metrics,
            **timers,
        }

    def progress(self) -> float:
        """Fraction of the iteration budget done: schedules never depend on the machine's speed
        (a ``run.minutes`` cap may end the run early, it does not change the schedule)."""
        return min(self.iteration / self.cfg.run.iterations, 1.0)

    def policy(self) -> Policy:
        """The current actor as a deployable policy (shares weights, no copy)."""
        return Policy(self.cfg, self.spec, self.actor, self.normalizer, self.device)

    def policy_state_dict(self) -> dict[str, Any]:
        """What deploying needs: config, spec, actor, normaliser and the counters."""
        return {
            "config": self.cfg.to_dict(),
            "spec": self.spec.to_dict(),
            "actor": self.actor.state_dict(),
            "normalizer": self.normalizer.state_dict(),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to deploy or resume (weights_only-loadable)."""
        parts = {
            name: part.detach().clone() if isinstance(part, torch.Tensor) else part.state_dict()
            for name, part in self.stateful().items()
        }
        own = self._rank_state()
        state = {
            **self.policy_state_dict(),
            **parts,
            "wall_time_s": self.wall_time,
            "cpu_time_s": self.cpu_time,
            "best_score": self.best_score,
            **own,
        }
        if self.world.active:  # every rank's envs and RNGs (a collective: all ranks call it)
            state |= {"world_size": self.world.size, "ranks": gather(own, self.world, "state")}
        return state

    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: RNGs, envs and episode statistics."""
        return {
            "torch_rng": torch.get_rng_state(),
            "noise_rng": self.generator.get_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "env": self.env.state_dict(),
            "episodes": self.episodes.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of ``state_dict`` (checkpoints without ``cpu_time_s`` restart that clock); a
        checkpoint of K processes resumes in K processes only (each rank takes its part)."""
        saved = int(state.get("world_size", 1))
        if saved != self.world.size:
            raise ValueError(
                f"the checkpoint holds a run of {saved} process(es), this is {self.world.size}: "
                f"resume it with --nproc {saved} (its envs and RNG streams are per process)"
            )
        for name, part in self.stateful().items():
            _load_part(part, state[name])
        self.iteration, self.env_steps = int(state["iteration"]), int(state["env_steps"])
        self.wall_time, self.best_score = float(state["wall_time_s"]), float(state["best_score"])
        self.cpu_time = float(state.get("cpu_time_s", 0.0))
        own = state["ranks"][self.world.rank] if self.world.active else state
        torch.set_rng_state(own["torch_rng"])
        self.generator.set_state(own["noise_rng"])
        if self.device.type == "cuda" and own["cuda_rng"]:
            torch.cuda.set_rng_state_all(own["cuda_rng"])
        self.env.load_state_dict(own["env"])
        self.episodes.load_state_dict(own["episodes"])

    def init_weights(self, path: str | Path) -> None:
        """Start from the networks and normaliser of checkpoint ``path`` (those it holds; a
        policy file has no critic): same observations and actions, same model, sound weights."""
        data = checkpoint.load(path)
        Policy.from_checkpoint(data, path)  # config, spec and weights are sound
        theirs = checkpoint_spec(data, path)
        for field in INIT_SPEC_FIELDS:
            if getattr(theirs, field) != getattr(self.spec, field):
                raise ValueError(
                    f"{path}: cannot start run.init from it: its {field} is "
                    f"{getattr(theirs, field)!r}, this run's {getattr(self.spec, field)!r}"
                )
        for name, part in self.stateful().items():
            if name in data and not isinstance(part, torch.optim.Optimizer):
                try:
                    _load_part(part, data[name])
                except (RuntimeError, TypeError, AttributeError, KeyError) as err:
                    raise ValueError(
                        f"{path}: cannot start run.init from it: its {name} does not fit this "
                        f"run's model: {load_problem(err)}"
                    ) from err

    def preview(self) -> np.ndarray | None:
        """Latest camera frame of rendered env 0 as RGB uint8 [H, W, 3] (None without pixels)."""
        renderer = self.env.renderer
        if renderer is None:
            return None
        return renderer.stack.latest_rgb(0)

    def close(self) -> None:
        """Release the envs."""
        self.env.close()
