"""Trainers by algorithm name (``run.algo``): SDPG and the PPO and DAgger baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdpg_core.config import Config
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
    cfg: Config, run_dir: str | Path, state: dict[str, Any] | None = None
) -> TrainerBase:
    """The trainer of ``cfg.run.algo``, restored from checkpoint ``state`` if given."""
    trainer = TRAINERS[cfg.run.algo](cfg, run_dir)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer
