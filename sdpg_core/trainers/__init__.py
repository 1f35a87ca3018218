"""Trainers by algorithm name (``run.algo``): SDPG and the PPO and DAgger baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdpg_core.config import Config, ConfigError
from sdpg_core.distributed import World
from sdpg_core.trainers.base import TrainerBase
from sdpg_core.trainers.distill import DistillTrainer
from sdpg_core.trainers.ppo import PPOTrainer
from sdpg_core.trainers.sdpg import SDPGTrainer

TRAINERS: dict[str, type[TrainerBase]] = {
    "sdpg": SDPGTrainer,
    "ppo": PPOTrainer,
    "distill": DistillTrainer,
}


def make_trainer(
    cfg: Config,
    run_dir: str | Path,
    state: dict[str, Any] | None = None,
    world: World | None = None,
) -> TrainerBase:
    """The trainer of ``cfg.run.algo`` (this rank's part of it under torchrun), restored from
    checkpoint ``state`` if given, else started from ``run.init``'s weights if set."""
    world = world or World()
    if world.active and cfg.run.algo != "sdpg":
        raise ConfigError(
            f"run.algo={cfg.run.algo} trains in one process; several processes (--nproc, "
            "torchrun) are for SDPG"
        )
    trainer = TRAINERS[cfg.run.algo](cfg, run_dir, world)
    if state is not None:
        trainer.load_state_dict(state)
    elif cfg.run.init:
        trainer.init_weights(cfg.run.init)
    return trainer
