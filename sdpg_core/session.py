"""A training run on disk: the config resolution every front end uses (``sdpg train``,
``trainer_node``, the launch files), the run directory, and the session around a trainer
(budget, progress bar, logging, evaluation, checkpoints).

Resolving a config and checking a run directory need neither torch nor a renderer (the launch
files check them before any node starts): the session's own imports are made on first use."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sdpg_core.config import Config, from_dict, resolve
from sdpg_core.envs.registry import get_task

if TYPE_CHECKING:
    from sdpg_core.distributed import World
    from sdpg_core.trainers import TrainerBase


def resolve_train_config(
    task: str,
    config_file: str | None = None,
    overrides: list[str] | None = None,
    device: str | None = None,
    seed: int | None = None,
    iterations: int | None = None,
    minutes: float | None = None,
    algo: str | None = None,
) -> Config:
    """Task YAML, then ``config_file``, then ``overrides``, then the explicit flags (frozen)."""
    get_task(task)
    overrides = list(overrides or [])
    if algo:
        overrides.append(f"run.algo={algo}")
    if device:
        overrides.append(f"run.device={device}")
    if seed is not None:
        overrides.append(f"run.seed={seed}")
    if iterations is not None:
        overrides.append(f"run.iterations={iterations}")
    if minutes is not None:
        overrides.append(f"run.minutes={minutes}")
    return resolve(task, config_file, overrides)


def default_run_dir(cfg: Config) -> Path:
    """runs/<task>-<local time> (runs/<task>-<algo>-<local time> for the baselines)."""
    task, algo = cfg.env.task, cfg.run.algo
    name = task if algo == "sdpg" else f"{task}-{algo}"
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


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
        from sdpg_core.logger import MetricsLogger

        self.trainer = trainer
        self.cfg = trainer.cfg
        self.run_dir = trainer.run_dir
        self.world = trainer.world  # rank 0 alone logs, evaluates and writes checkpoints
        main = self.world.main
        self.logger = MetricsLogger(self.run_dir, resume_after=trainer.iteration) if main else None
        self.last_eval: dict[str, float] | None = None
        self.best: dict[str, Any] = {}  # what best.pt holds, when this session wrote it
        self.stop_requested = False
        self.skip_final_evaluation = False  # a supervisor is shutting us down: save and go, no eval
        self.checkpoint_listeners: list[Callable[[Path], None]] = []

    @classmethod
    def start(
        cls, cfg: Config, run_dir: str | Path, overwrite: bool = False, world: World | None = None
    ) -> TrainingSession:
        """A fresh run (writes the resolved config); a directory holding a run is refused
        unless ``overwrite`` (then its run files are removed first). Under torchrun rank 0
        prepares the directory while the others wait."""
        from sdpg_core.distributed import World, barrier, broadcast
        from sdpg_core.trainers import make_trainer

        world = world or World()
        problem = None
        if world.main:
            try:
                run_dir = prepare_run_dir(Path(run_dir), overwrite)
                (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            except OSError as err:
                problem = err
        problem = broadcast(problem, world, "the run directory check")
        if problem is not None:
            raise problem
        barrier(world, "the run directory")
        return cls(make_trainer(cfg, Path(run_dir), world=world))

    @classmethod
    def resume(
        cls, run_dir: str | Path, device: str | None = None, world: World | None = None
    ) -> TrainingSession:
        """Continue a run from its ``checkpoints/latest.pt`` (stray temp files removed)."""
        from sdpg_core import checkpoint
        from sdpg_core.distributed import World, barrier
        from sdpg_core.policy import Policy
        from sdpg_core.trainers import make_trainer

        world = world or World()
        run_dir = Path(run_dir)
        latest = run_dir / "checkpoints" / "latest.pt"
        if not latest.is_file():
            raise FileNotFoundError(f"{run_dir}: no checkpoints/latest.pt to resume from")
        if world.main:
            checkpoint.remove_temporaries(latest.parent)
        barrier(world, "the checkpoint directory")
        state = checkpoint.load_training(latest)
        Policy.from_checkpoint(state, latest)  # its config, spec and weights are sound
        config = state["config"]
        if device:
            config = {**config, "run": {**config.get("run", {}), "device": device}}
        cfg = from_dict(config, f"{latest}: config")
        try:
            trainer = make_trainer(cfg, run_dir, state, world)
        except (KeyError, RuntimeError, ValueError) as err:  # a state that does not fit
            detail = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise ValueError(f"{latest}: cannot resume: {detail}") from err
        return cls(trainer)

    def done(self) -> bool:
        """Budget exhausted, success target met or stop requested (on any rank: all agree)."""
        from sdpg_core.distributed import any_rank

        run, trainer = self.cfg.run, self.trainer
        over = trainer.iteration >= run.iterations
        late = run.minutes > 0 and trainer.wall_time >= run.minutes * 60.0
        rate = (self.last_eval or {}).get("success_rate", -1.0)
        reached = run.stop_success_rate > 0 and rate >= run.stop_success_rate
        budget = self.world.main and (over or late or reached)  # rank 0's clock decides
        return any_rank(self.stop_requested or budget, self.world)

    def step(self) -> dict[str, Any]:
        """One iteration with logging, periodic evaluation and checkpointing."""
        trainer, run = self.trainer, self.cfg.run
        record = trainer.train_iteration()
        due = run.eval_interval and trainer.iteration % run.eval_interval == 0
        if due and not self.skip_final_evaluation:  # a supervisor's stop does not wait for it
            self.last_eval = self.evaluate()
            record |= {f"eval/{k}": v for k, v in self.last_eval.items()}
            self._maybe_best(evaluation_score(self.last_eval))
        elif not run.eval_interval:
            self._maybe_best(record.get("episode_return"))
        if self.logger is not None:  # the row first: a checkpoint never runs ahead of it
            self.logger.log(record)
        if trainer.iteration % run.checkpoint_interval == 0:
            self.save("latest.pt")
        return record

    def evaluate(self, video: Path | None = None) -> dict[str, float]:
        """Deterministic evaluation of the current policy (on rank 0; every rank gets it)."""
        from sdpg_core.distributed import broadcast
        from sdpg_core.evaluate import evaluate

        result = None
        if self.world.main:
            result = evaluate(self.trainer.policy(), self.cfg.run.eval_episodes, video=video)
        return broadcast(result, self.world, "the evaluation")

    def _maybe_best(self, score: float | None) -> None:
        """Write best.pt when rank 0's ``score`` improves (and remember its iteration)."""
        from sdpg_core.distributed import broadcast

        score = broadcast(score, self.world, "the best score")
        if score is not None and score > self.trainer.best_score:
            self.trainer.best_score = score
            self.best = {"best_iteration": self.trainer.iteration}
            if "success_rate" in (self.last_eval or {}):
                self.best["best_eval_success_rate"] = self.last_eval["success_rate"]
            self.save("best.pt")

    def save(self, name: str) -> Path:
        """Atomically write checkpoints/<name> and tell the listeners its path (every rank
        takes part: rank 0 writes every rank's state)."""
        from sdpg_core import checkpoint

        state, path = self.trainer.state_dict(), self.run_dir / "checkpoints" / name
        if not self.world.main:
            return path
        checkpoint.save(state, path)
        for listener in self.checkpoint_listeners:
            listener(path)
        return path

    def run(
        self,
        show_progress: bool = True,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Train until done (``on_record`` sees each iteration), then evaluate and summarise."""
        from tqdm import tqdm

        run = self.cfg.run
        bar = tqdm(
            total=run.iterations,
            initial=self.trainer.iteration,
            disable=not show_progress or not self.world.main,
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
        if self.logger is not None:
            self.logger.close()
        trainer.close()
        checkpoints = self.run_dir / "checkpoints"
        return {
            "task": trainer.spec.task,
            "iterations": trainer.iteration,
            "minutes": trainer.wall_time / 60.0,
            "processes": self.world.size,
            "run_dir": str(self.run_dir),
            "evaluated": str(checkpoints / "latest.pt"),  # the final policy, saved by run()
            **final,
            "best_checkpoint": str(checkpoints / "best.pt"),
            **self.best,
        }
