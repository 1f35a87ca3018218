"""SDPG runner (envs, rollouts, resets, checkpoints) and the training session of every algorithm."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sdpg_core import checkpoint
from sdpg_core.action import clamp_mean, env_action
from sdpg_core.algorithm import sdpg
from sdpg_core.config import Config, from_dict
from sdpg_core.distill_runner import DistillTrainer
from sdpg_core.envs.registry import make_env
from sdpg_core.evaluate import evaluate
from sdpg_core.learner import SDPGLearner
from sdpg_core.logger import MetricsLogger
from sdpg_core.policy import Policy, actor_input
from sdpg_core.ppo_runner import PPOTrainer
from sdpg_core.storage import RolloutStorage
from sdpg_core.training import EpisodeTracker, TrainerBase


class Trainer(TrainerBase):
    """Runs SDPG iterations: sync, perturbed rollout, update, log."""

    def __init__(self, cfg: Config, run_dir: str | Path, state: dict[str, Any] | None = None):
        super().__init__(cfg, run_dir)
        hp = cfg.sdpg
        self.group_size = hp.num_perturbations + 1
        self.num_envs = hp.num_nominal * self.group_size
        self.nominal_ids = np.arange(hp.num_nominal) * self.group_size
        self.aux_ids = np.setdiff1d(np.arange(self.num_envs), self.nominal_ids)
        self.env = make_env(
            cfg.env.task, cfg.env, self.num_envs, self.nominal_ids, seed=cfg.run.seed
        )
        self.spec = self.env.spec
        self.learner = SDPGLearner(cfg, self.spec, self.device)
        self.noise_gen = torch.Generator().manual_seed(cfg.run.seed + 1)
        self.storage = self._allocate()
        self.episodes = EpisodeTracker(
            hp.num_nominal, max(hp.num_nominal, 20), self.spec.has_success
        )
        self.steps_per_iteration = self.num_envs * hp.horizon
        self.frames_per_iteration = hp.num_nominal * hp.horizon
        if state is not None:
            self._restore(state)

    def _allocate(self) -> RolloutStorage:
        """Storage sized for this config and spec."""
        hp, spec = self.cfg.sdpg, self.spec
        pixels = spec.obs_mode == "pixels"
        return RolloutStorage.allocate(
            hp.horizon,
            hp.num_nominal,
            self.num_envs,
            tuple(spec.pixel_shape) if pixels else (spec.state_dim,),
            torch.uint8 if pixels else torch.float32,
            spec.state_dim,
            spec.action_dim,
            self.device,
        )

    def collect(self) -> torch.nn.Module:
        """Sync auxiliaries to nominals and fill the storage; returns the frozen normaliser."""
        hp, env, st = self.cfg.sdpg, self.env, self.storage
        env.copy_state(np.repeat(self.nominal_ids, hp.num_perturbations), self.aux_ids)
        frozen = copy.deepcopy(self.learner.normalizer)
        obs = env.observe()
        for t in range(hp.horizon):
            start = time.perf_counter()
            nominal_obs = {"state": obs["state"][self.nominal_ids], "pixels": obs.get("pixels")}
            st.actor_obs[t] = actor_input(self.spec, nominal_obs, frozen, self.device)
            mu, log_sigma = self.learner.policy(st.actor_obs[t])
            start = self._timed("actor_forward", start)
            action, noise = self._perturb(mu, log_sigma, t)
            st.critic_obs[t] = torch.from_numpy(obs["state"])
            result = env.step(env_action(action, self.cfg.action).cpu().numpy())
            start = self._timed("env_step", start)
            next_state = torch.from_numpy(result.obs["state"]).to(self.device)
            values = self.learner.next_values(next_state, frozen)
            values[torch.from_numpy(result.terminated).to(self.device)] = 0.0
            finite = ~torch.from_numpy(result.info["nonfinite"]).to(self.device)
            self.learner.normalizer.update(next_state[finite])
            self._timed("critic", start)
            done = self._handle_resets(result.terminated | result.truncated)
            if t == hp.horizon - 1:
                done[:] = True
            st.actions[t], st.noise[t], st.log_sigma[t] = action, noise, log_sigma
            st.rewards[t] = torch.from_numpy(result.reward)
            st.next_values[t], st.dones[t] = values, torch.from_numpy(done)
            self._track(result)
            obs = env.observe()
        return frozen

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
            hp.num_nominal, g, mu.shape[-1], self.noise_gen, hp.antithetic, active
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

    def _track(self, result) -> None:
        """Episode statistics of the nominal envs (forced horizon ends are not episode ends)."""
        ids = self.nominal_ids
        ended = (result.terminated | result.truncated)[ids]
        success = result.info["success"][ids] if self.spec.has_success else None
        terms = {k: v[ids] for k, v in result.info["reward_terms"].items()}
        self.episodes.add(result.reward[ids], terms, ended, success)

    def _iterate(self) -> dict[str, float]:
        """Sync, perturbed rollout and one SDPG update."""
        frozen = self.collect()
        start = time.perf_counter()
        metrics = self.learner.update(self.storage, frozen, self.iteration, self.progress())
        self._timed("update", start)
        return metrics

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
            **self.counters(),
            **self.rng_state(self.noise_gen),
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
        self.restore_counters(state)
        self.restore_rng(state, self.noise_gen)
        self.env.load_state_dict(state["env"])
        self.episodes.load_state_dict(state["episodes"])


TRAINERS: dict[str, type[TrainerBase]] = {
    "sdpg": Trainer,
    "ppo": PPOTrainer,
    "distill": DistillTrainer,
}


def make_trainer(
    cfg: Config, run_dir: str | Path, state: dict[str, Any] | None = None
) -> TrainerBase:
    """The trainer of ``cfg.run.algo`` (sdpg | ppo | distill), restored from ``state`` if given."""
    return TRAINERS[cfg.run.algo](cfg, run_dir, state)


RUN_FILES = ("metrics.jsonl", "checkpoints", "tensorboard", "summary.json", "config.yaml")


def check_run_dir(run_dir: Path, overwrite: bool) -> list[str]:
    """The run files in ``run_dir``; FileExistsError if it is a file or, unless ``overwrite``,
    already holds a run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"--out {run_dir} is a file, not a run directory")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found and not overwrite:
        raise FileExistsError(
            f"{run_dir} already holds a run ({', '.join(found)}): continue it with "
            f"`sdpg resume {run_dir}`, choose another --out, or start over with --overwrite"
        )
    return found


def prepare_run_dir(run_dir: Path, overwrite: bool) -> Path:
    """Create ``run_dir`` for a fresh run (``check_run_dir``; with ``overwrite`` its run files
    are removed first)."""
    for name in check_run_dir(run_dir, overwrite):
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def evaluation_score(result: dict[str, float]) -> float:
    """Success rate when defined (ties broken by return), else mean return."""
    if "success_rate" in result:
        return result["success_rate"] * 1e6 + result["return_mean"]
    return result["return_mean"]


class TrainingSession:
    """A run directory around a Trainer: budget, progress bar, logging, evaluation, checkpoints."""

    def __init__(self, trainer: TrainerBase) -> None:
        self.trainer = trainer
        self.cfg = trainer.cfg
        self.run_dir = trainer.run_dir
        self.logger = MetricsLogger(self.run_dir, resume_after=trainer.iteration)
        self.last_eval: dict[str, float] | None = None
        self.best: dict[str, Any] = {}  # what best.pt holds, when this session wrote it
        self.stop_requested = False
        self.skip_final_evaluation = False  # a supervisor is shutting us down: save and go, no eval
        self.checkpoint_listeners: list[Callable[[Path], None]] = []

    @classmethod
    def start(cls, cfg: Config, run_dir: str | Path, overwrite: bool = False) -> TrainingSession:
        """A fresh run (writes the resolved config); a directory holding a run is refused
        unless ``overwrite`` (then its run files are removed first)."""
        import yaml

        run_dir = prepare_run_dir(Path(run_dir), overwrite)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return cls(make_trainer(cfg, run_dir))

    @classmethod
    def resume(cls, run_dir: str | Path, device: str | None = None) -> TrainingSession:
        """Continue a run from its ``checkpoints/latest.pt`` (stray temp files removed)."""
        run_dir = Path(run_dir)
        latest = run_dir / "checkpoints" / "latest.pt"
        if not latest.is_file():
            raise FileNotFoundError(f"{run_dir}: no checkpoints/latest.pt to resume from")
        checkpoint.remove_temporaries(latest.parent)
        state = checkpoint.load_training(latest)
        Policy.from_checkpoint(state, latest)  # its config, spec and weights are sound
        config = state["config"]
        if device:
            config = {**config, "run": {**config.get("run", {}), "device": device}}
        cfg = from_dict(config, f"{latest}: config")
        try:
            trainer = make_trainer(cfg, run_dir, state)
        except (KeyError, RuntimeError, ValueError) as err:  # a state that does not fit
            detail = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise ValueError(f"{latest}: cannot resume: {detail}") from err
        return cls(trainer)

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
        due = run.eval_interval and trainer.iteration % run.eval_interval == 0
        if due and not self.skip_final_evaluation:  # a supervisor's stop does not wait for it
            self.last_eval = self.evaluate()
            record |= {f"eval/{k}": v for k, v in self.last_eval.items()}
            self._maybe_best(evaluation_score(self.last_eval))
        elif not run.eval_interval and record.get("episode_return") is not None:
            self._maybe_best(record["episode_return"])
        self.logger.log(record)  # the row first: a checkpoint never runs ahead of its metrics
        if trainer.iteration % run.checkpoint_interval == 0:
            self.save("latest.pt")
        return record

    def evaluate(self, video: Path | None = None) -> dict[str, float]:
        """Deterministic evaluation of the current policy."""
        return evaluate(self.trainer.policy(), self.cfg.run.eval_episodes, video=video)

    def _maybe_best(self, score: float) -> None:
        """Write best.pt when ``score`` improves (and remember which iteration it holds)."""
        if score > self.trainer.best_score:
            self.trainer.best_score = score
            self.best = {"best_iteration": self.trainer.iteration}
            if "success_rate" in (self.last_eval or {}):
                self.best["best_eval_success_rate"] = self.last_eval["success_rate"]
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
            total=run.iterations,
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
        episodes = self.cfg.run.eval_episodes
        final = {} if self.skip_final_evaluation else {"episodes": episodes, **self.evaluate(video)}
        self.logger.close()
        trainer.close()
        checkpoints = self.run_dir / "checkpoints"
        return {
            "task": trainer.spec.task,
            "iterations": trainer.iteration,
            "minutes": trainer.wall_time / 60.0,
            "run_dir": str(self.run_dir),
            "evaluated": str(checkpoints / "latest.pt"),  # the final policy, saved by run()
            **final,
            "best_checkpoint": str(checkpoints / "best.pt"),
            **self.best,
        }
