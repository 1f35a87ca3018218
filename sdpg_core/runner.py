"""SDPG runner: owns envs, rollouts, resets, logging, evaluation and checkpoints."""

from __future__ import annotations

import copy
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sdpg_core import checkpoint
from sdpg_core.config import Config, from_dict
from sdpg_core.envs.registry import make_env
from sdpg_core.evaluate import evaluate
from sdpg_core.learner import SDPGLearner
from sdpg_core.logger import MetricsLogger
from sdpg_core.models import resolve_device
from sdpg_core.policy import Policy, actor_input
from sdpg_core.storage import RolloutStorage


class EpisodeTracker:
    """Returns, reward terms and success of the nominal envs' finished episodes."""

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
        """Accumulate one step of the nominal envs; close the episodes that ``ended``."""
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


class Trainer:
    """Runs SDPG iterations: sync, perturbed rollout, update, log."""

    def __init__(self, cfg: Config, run_dir: str | Path, state: dict[str, Any] | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        algo = cfg.algo
        torch.manual_seed(cfg.run.seed)
        if cfg.run.torch_threads:
            torch.set_num_threads(cfg.run.torch_threads)
        self.device = resolve_device(cfg.run.device)
        self.group_size = algo.num_perturbations + 1
        self.num_envs = algo.num_nominal * self.group_size
        self.nominal_ids = np.arange(algo.num_nominal) * self.group_size
        self.aux_ids = np.setdiff1d(np.arange(self.num_envs), self.nominal_ids)
        self.env = make_env(
            cfg.env.task, cfg.env, self.num_envs, self.nominal_ids, seed=cfg.run.seed
        )
        self.spec = self.env.spec
        self.learner = SDPGLearner(cfg, self.spec, self.device)
        self.noise_gen = torch.Generator().manual_seed(cfg.run.seed + 1)
        self.storage = self._allocate()
        self.episodes = EpisodeTracker(
            algo.num_nominal, max(algo.num_nominal, 20), self.spec.has_success
        )
        self.iteration, self.env_steps, self.wall_time = 0, 0, 0.0
        self.best_score = -float("inf")
        self.timers: dict[str, float] = defaultdict(float)
        if state is not None:
            self._restore(state)

    def _allocate(self) -> RolloutStorage:
        """Storage sized for this config and spec."""
        algo, spec = self.cfg.algo, self.spec
        pixels = spec.obs_mode == "pixels"
        return RolloutStorage.allocate(
            algo.horizon,
            algo.num_nominal,
            self.num_envs,
            tuple(spec.pixel_shape) if pixels else (spec.state_dim,),
            torch.uint8 if pixels else torch.float32,
            spec.state_dim,
            spec.action_dim,
            self.device,
        )

    def _timed(self, name: str, start: float) -> float:
        """Add the time since ``start`` to timer ``name``; return now."""
        now = time.perf_counter()
        self.timers[name] += now - start
        return now

    def collect(self) -> torch.nn.Module:
        """Sync auxiliaries to nominals and fill the storage; returns the frozen normaliser."""
        algo, env, st = self.cfg.algo, self.env, self.storage
        env.copy_state(np.repeat(self.nominal_ids, algo.num_perturbations), self.aux_ids)
        frozen = copy.deepcopy(self.learner.normalizer)
        obs = env.observe()
        for t in range(algo.horizon):
            start = time.perf_counter()
            nominal_obs = {"state": obs["state"][self.nominal_ids], "pixels": obs.get("pixels")}
            st.actor_obs[t] = actor_input(self.spec, nominal_obs, frozen, self.device)
            mu, log_sigma = self.learner.policy(st.actor_obs[t])
            start = self._timed("actor_forward", start)
            action, noise = self._perturb(mu, log_sigma)
            st.critic_obs[t] = torch.from_numpy(obs["state"])
            result = env.step(torch.tanh(action).cpu().numpy())
            start = self._timed("env_step", start)
            next_state = torch.from_numpy(result.obs["state"]).to(self.device)
            values = self.learner.next_values(next_state, frozen)
            values[torch.from_numpy(result.terminated).to(self.device)] = 0.0
            finite = ~torch.from_numpy(result.info["nonfinite"]).to(self.device)
            self.learner.normalizer.update(next_state[finite])
            self._timed("critic", start)
            done = self._handle_resets(result.terminated | result.truncated)
            if t == algo.horizon - 1:
                done[:] = True
            st.actions[t], st.noise[t], st.log_sigma[t] = action, noise, log_sigma
            st.rewards[t] = torch.from_numpy(result.reward)
            st.next_values[t], st.dones[t] = values, torch.from_numpy(done)
            self._track(result)
            obs = env.observe()
        return frozen

    def _perturb(
        self, mu: torch.Tensor, log_sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Group-broadcast (mu, sigma); a = clamp(mu + sigma eps), eps = 0 for nominal envs."""
        g, bound = self.group_size, self.cfg.algo.mu_bound
        mu_n = mu.repeat_interleave(g, dim=0)
        sigma_n = log_sigma.exp().repeat_interleave(g, dim=0)
        noise = torch.randn(mu_n.shape, generator=self.noise_gen).to(self.device)
        noise[torch.from_numpy(self.nominal_ids)] = 0.0
        return (mu_n + sigma_n * noise).clamp(-bound, bound), noise

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

    def _track(self, result) -> None:
        """Episode statistics of the nominal envs (forced horizon ends are not episode ends)."""
        ids = self.nominal_ids
        ended = (result.terminated | result.truncated)[ids]
        success = result.info["success"][ids] if self.spec.has_success else None
        terms = {k: v[ids] for k, v in result.info["reward_terms"].items()}
        self.episodes.add(result.reward[ids], terms, ended, success)

    def progress(self) -> float:
        """Fraction of the run done (iterations or wall-clock budget, whichever is further)."""
        run = self.cfg.run
        frac = self.iteration / max(run.iterations, 1)
        if run.minutes > 0:
            frac = max(frac, self.wall_time / (run.minutes * 60.0))
        return min(frac, 1.0)

    def train_iteration(self) -> dict[str, Any]:
        """One SDPG iteration; returns its metrics record."""
        start = time.perf_counter()
        self.timers.clear()
        self.env.timers.clear()
        frozen = self.collect()
        update_start = time.perf_counter()
        metrics = self.learner.update(self.storage, frozen, self.iteration, self.progress())
        self._timed("update", update_start)
        elapsed = time.perf_counter() - start
        self.iteration += 1
        steps = self.num_envs * self.cfg.algo.horizon
        self.env_steps += steps
        self.wall_time += elapsed
        return self._record(metrics, elapsed, steps)

    def _record(self, metrics: dict[str, float], elapsed: float, steps: int) -> dict[str, Any]:
        """The metrics.jsonl record of the iteration just finished."""
        timers = {f"time/{k}": v for k, v in self.timers.items()}
        timers |= {f"time/{k}": v for k, v in self.env.timers.items()}
        return {
            "iteration": self.iteration,
            "task": self.spec.task,
            "env_steps": self.env_steps,
            "nominal_frames": self.iteration * self.cfg.algo.num_nominal * self.cfg.algo.horizon,
            "wall_time_s": self.wall_time,
            "fps": steps / elapsed,
            **self.episodes.summary(),
            **metrics,
            **timers,
        }

    def preview(self) -> np.ndarray | None:
        """Latest camera frame of nominal env 0 as RGB uint8 [H, W, 3] (None without pixels)."""
        renderer = self.env.renderer
        if renderer is None:
            return None
        return renderer.stack.frames[0, -3:].transpose(1, 2, 0).copy()

    def policy(self) -> Policy:
        """The current actor as a deployable policy (shares weights, no copy)."""
        return Policy(self.cfg, self.spec, self.learner.actor, self.learner.normalizer, self.device)

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to deploy or resume (weights_only-loadable)."""
        learner = self.learner
        return {
            "config": self.cfg.to_dict(),
            "spec": self.spec.to_dict(),
            "actor": learner.actor.state_dict(),
            "critic": learner.critic.state_dict(),
            "target_critic": learner.target_critic.state_dict(),
            "normalizer": learner.normalizer.state_dict(),
            "log_alpha": learner.log_alpha.detach(),
            "actor_opt": learner.actor_opt.state_dict(),
            "critic_opt": learner.critic_opt.state_dict(),
            "alpha_opt": learner.alpha_opt.state_dict(),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "wall_time_s": self.wall_time,
            "best_score": self.best_score,
            "torch_rng": torch.get_rng_state(),
            "noise_rng": self.noise_gen.get_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "env": self.env.state_dict(),
            "episodes": self.episodes.state_dict(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Load learner, optimiser and counters from a checkpoint dict."""
        learner = self.learner
        for name in ("actor", "critic", "target_critic", "normalizer"):
            getattr(learner, name).load_state_dict(state[name])
        learner.log_alpha.data.copy_(state["log_alpha"])
        learner.actor_opt.load_state_dict(state["actor_opt"])
        learner.critic_opt.load_state_dict(state["critic_opt"])
        learner.alpha_opt.load_state_dict(state["alpha_opt"])
        self.iteration, self.env_steps = int(state["iteration"]), int(state["env_steps"])
        self.wall_time, self.best_score = float(state["wall_time_s"]), float(state["best_score"])
        torch.set_rng_state(state["torch_rng"])
        self.noise_gen.set_state(state["noise_rng"])
        if self.device.type == "cuda" and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.env.load_state_dict(state["env"])
        self.episodes.load_state_dict(state["episodes"])

    def close(self) -> None:
        """Release the envs."""
        self.env.close()


def evaluation_score(result: dict[str, float]) -> float:
    """Success rate when defined (ties broken by return), else mean return."""
    if "success_rate" in result:
        return result["success_rate"] * 1e6 + result["return_mean"]
    return result["return_mean"]


class TrainingSession:
    """A run directory around a Trainer: budget, progress bar, logging, evaluation, checkpoints."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.cfg = trainer.cfg
        self.run_dir = trainer.run_dir
        self.logger = MetricsLogger(self.run_dir, resume_after=trainer.iteration)
        self.last_eval: dict[str, float] | None = None
        self.stop_requested = False
        self.skip_final_evaluation = False  # a supervisor is shutting us down: save and go
        self.checkpoint_listeners: list[Callable[[Path], None]] = []

    @classmethod
    def start(cls, cfg: Config, run_dir: str | Path) -> TrainingSession:
        """A fresh run (writes the resolved config)."""
        import yaml

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return cls(Trainer(cfg, run_dir))

    @classmethod
    def resume(cls, run_dir: str | Path, device: str | None = None) -> TrainingSession:
        """Continue a run from its ``checkpoints/latest.pt``."""
        run_dir = Path(run_dir)
        state = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
        cfg = from_dict(state["config"], f"{run_dir}/checkpoints/latest.pt: config")
        if device:
            cfg.run.device = device
        return cls(Trainer(cfg, run_dir, state))

    def done(self) -> bool:
        """Budget exhausted, success target met or stop requested."""
        run, trainer = self.cfg.run, self.trainer
        if self.stop_requested or trainer.iteration >= run.iterations:
            return True
        if run.minutes > 0 and trainer.wall_time >= run.minutes * 60.0:
            return True
        rate = (self.last_eval or {}).get("success_rate", -1.0)
        return run.stop_success_rate > 0 and rate >= run.stop_success_rate

    def step(self) -> dict[str, Any]:
        """One iteration with logging, periodic evaluation and checkpointing."""
        trainer, run = self.trainer, self.cfg.run
        record = trainer.train_iteration()
        if run.eval_interval and trainer.iteration % run.eval_interval == 0:
            self.last_eval = self.evaluate()
            record |= {f"eval/{k}": v for k, v in self.last_eval.items()}
            self._maybe_best(evaluation_score(self.last_eval))
        elif not run.eval_interval and record.get("episode_return") is not None:
            self._maybe_best(record["episode_return"])
        if trainer.iteration % run.checkpoint_interval == 0:
            self.save("latest.pt")
        self.logger.log(record)
        return record

    def evaluate(self, video: Path | None = None) -> dict[str, float]:
        """Deterministic evaluation of the current policy."""
        return evaluate(self.trainer.policy(), self.cfg.run.eval_episodes, video=video)

    def _maybe_best(self, score: float) -> None:
        """Write best.pt when ``score`` improves."""
        if score > self.trainer.best_score:
            self.trainer.best_score = score
            self.save("best.pt")

    def save(self, name: str) -> Path:
        """Atomically write checkpoints/<name> and tell the listeners its path."""
        path = checkpoint.save(
            self.trainer.checkpoint_payload(), self.run_dir / "checkpoints" / name
        )
        for listener in self.checkpoint_listeners:
            listener(path)
        return path

    def run(
        self,
        show_progress: bool = True,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Train until done (``on_record`` sees each iteration), then evaluate and summarise."""
        run = self.cfg.run
        bar = tqdm(
            total=None if run.minutes > 0 else run.iterations,
            initial=self.trainer.iteration,
            disable=not show_progress,
            dynamic_ncols=True,
            unit="it",
        )
        try:
            while not self.done():
                record = self.step()
                if on_record is not None:
                    on_record(record)
                bar.update(1)
                bar.set_postfix(
                    ret=record.get("episode_return"),
                    fps=int(record["fps"]),
                    succ=record.get("success_rate"),
                )
        finally:
            bar.close()
        self.save("latest.pt")  # only after a completed iteration: never a half-updated state
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Final evaluation, video, plots; closes the logger and envs."""
        trainer = self.trainer
        if trainer.best_score == -float("inf"):
            self.save("best.pt")
        video = self.run_dir / "eval.mp4" if self.cfg.run.video else None
        final = {} if self.skip_final_evaluation else self.evaluate(video)
        self.logger.close()
        trainer.close()
        return {
            "task": trainer.spec.task,
            "iterations": trainer.iteration,
            "minutes": trainer.wall_time / 60.0,
            "run_dir": str(self.run_dir),
            **final,
        }
