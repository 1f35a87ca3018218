"""Deployable policy: actor + normaliser + frame stack + metadata, from a checkpoint.

The same observation code runs in training, evaluation and the ROS policy node. Also the
checks that say whether a checkpoint fits a robot or a running deployment, made on its stored
spec before any network is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from sdpg_core import checkpoint
from sdpg_core.action import env_action
from sdpg_core.config import Config, from_dict
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import get_task
from sdpg_core.models import Actor, resolve_device
from sdpg_core.obs import FrameStack, RunningNormalizer, prepare_image
from sdpg_core.robot import RobotConfig

POLICY_PARTS = ("config", "spec", "actor", "normalizer")


class Misfit(NamedTuple):
    """Why a checkpoint cannot run here: a short ``reason`` (a counter key) and a message."""

    reason: str
    message: str


def checkpoint_spec(data: dict[str, Any], source: str | Path) -> EnvSpec:
    """The env spec stored in checkpoint ``data`` (ValueError naming ``source`` if malformed)."""
    try:
        return EnvSpec.from_dict(data["spec"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: no valid env spec in the checkpoint ({err!r})") from err


def read_metadata(path: str | Path) -> tuple[Config, EnvSpec]:
    """The config and env spec of a checkpoint file, without building its network."""
    data = checkpoint.load(path)
    return from_dict(data["config"], f"{path}: config"), checkpoint_spec(data, path)


def base_task(name: str) -> str:
    """A registered task's name without its variant suffix (unregistered names unchanged)."""
    try:
        return get_task(name).base
    except KeyError:
        return name


def robot_misfit(spec: EnvSpec, robot: RobotConfig) -> Misfit | None:
    """Why a policy for ``spec`` cannot drive ``robot`` (its sim task and joints), or None."""
    if robot.sim_task and base_task(spec.task) != base_task(robot.sim_task):
        return Misfit(
            "task",
            f"policy trained on task {spec.task!r}, robot {robot.name!r} runs {robot.sim_task!r}",
        )
    if tuple(spec.joint_names) != tuple(robot.joints):
        return Misfit(
            "joints",
            f"policy joints {list(spec.joint_names)}, robot {robot.name!r} has "
            f"{list(robot.joints)} (same names, same order)",
        )
    return None


def swap_misfit(new: EnvSpec, running: EnvSpec) -> Misfit | None:
    """Why a policy for ``new`` cannot replace a running one for ``running``, or None."""
    checks = (
        ("obs_mode", new.obs_mode, running.obs_mode),
        ("task", new.task, running.task),
        ("joints", list(new.joint_names), list(running.joint_names)),
        ("action_size", new.action_dim, running.action_dim),
        ("image_size", list(new.pixel_shape or ()), list(running.pixel_shape or ())),
    )
    for reason, got, want in checks:
        if got != want:
            return Misfit(reason, f"{reason} {got} differs from the running policy's {want}")
    return None


def nonfinite_weights(data: dict[str, Any]) -> Misfit | None:
    """A Misfit naming the actor / normaliser tensors holding NaN or inf, or None."""
    bad = [
        f"{part}.{name}"
        for part in ("actor", "normalizer")
        for name, value in data.get(part, {}).items()
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all()
    ]
    if bad:
        return Misfit("nonfinite", f"non-finite weights in {', '.join(bad)}")
    return None


def load_problem(err: Exception) -> str:
    """The first concrete problem of a failed ``load_state_dict`` (torch lists them all)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    details = [line for line in lines if not line.startswith("Error(s) in loading")]
    return (details or lines or [repr(err)])[0]


def actor_input(
    spec: EnvSpec, obs: dict[str, np.ndarray], normalizer: RunningNormalizer, device: torch.device
) -> torch.Tensor:
    """Actor input tensor from an observation dict (pixels as uint8, or normalised state)."""
    if spec.obs_mode == "pixels":
        return torch.from_numpy(obs["pixels"]).to(device)
    state = torch.from_numpy(obs["state"]).to(device)
    return normalizer(state).float()


class Policy:
    """A trained policy ready for inference (batched ``act`` and streaming ``act_image``)."""

    def __init__(
        self,
        cfg: Config,
        spec: EnvSpec,
        actor: Actor,
        normalizer: RunningNormalizer,
        device: torch.device,
    ) -> None:
        self.cfg, self.spec, self.device = cfg, spec, device
        self.actor = actor.to(device).eval()
        self.normalizer = normalizer.to(device).eval()
        self.stream: FrameStack | None = None

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Policy:
        """Build a policy from a checkpoint file."""
        return cls.from_checkpoint(checkpoint.load(path), path, device)

    @classmethod
    def from_checkpoint(
        cls, data: dict[str, Any], source: str | Path, device: str = "cpu"
    ) -> Policy:
        """Build a policy from loaded checkpoint ``data``; a one-line ValueError naming
        ``source`` for missing parts, weights that do not fit the spec, or NaN / inf weights."""
        checkpoint.require_keys(data, POLICY_PARTS, source, "a policy checkpoint")
        cfg = from_dict(data["config"], f"{source}: config")
        spec = checkpoint_spec(data, source)
        found = nonfinite_weights(data)
        if found:
            raise ValueError(f"{source}: {found.message}")
        actor, normalizer = Actor(spec, cfg.model), RunningNormalizer(spec.state_dim)
        for name, module in (("actor", actor), ("normalizer", normalizer)):
            try:
                module.load_state_dict(data[name])
            except (RuntimeError, TypeError, AttributeError) as err:
                raise ValueError(
                    f"{source}: {name} weights do not fit its spec: {load_problem(err)}"
                ) from err
        return cls(cfg, spec, actor, normalizer, resolve_device(device))

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batched deterministic actions float32 [n, A] in (-1, 1)."""
        mu, _ = self.actor(actor_input(self.spec, obs, self.normalizer, self.device))
        return env_action(mu, self.cfg.action).cpu().numpy()  # deterministic: tanh(clamp(mu))

    def reset_stream(self) -> None:
        """Forget the frame history (next image fills the whole stack)."""
        self.stream = None

    def act_image(self, image: np.ndarray) -> np.ndarray:
        """Action [A] for one RGB camera image [H, W, 3] uint8 of any size, stacking frames as
        in training (``prepare_image``: centre crop to the training aspect ratio, area resize)."""
        if self.spec.obs_mode != "pixels":
            raise ValueError(f"policy for {self.spec.task!r} acts on state, not images")
        channels, height, width = self.spec.pixel_shape
        frame = prepare_image(image, height, width)[None]
        if self.stream is None:
            self.stream = FrameStack(1, channels // 3, height, width)
            self.stream.reset(np.zeros(1, dtype=np.int64), frame)
        else:
            self.stream.push(np.zeros(1, dtype=np.int64), frame)
        return self.act({"pixels": self.stream.frames})[0]
