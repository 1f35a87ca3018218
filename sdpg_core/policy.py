"""Deployable policy: actor + normaliser + frame stack + metadata, from a checkpoint.

The same observation code runs in training, evaluation and the ROS policy node. The checks
that say whether a checkpoint fits a robot or a running deployment, made on its stored spec
before any network is built, are in ``sdpg_core.fit`` (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdpg_core import checkpoint
from sdpg_core.action import env_action
from sdpg_core.config import Config, from_dict
from sdpg_core.envs.base import EnvSpec
from sdpg_core.fit import Misfit, checkpoint_spec
from sdpg_core.models import Actor, resolve_device
from sdpg_core.obs import FrameStack, prepare_depth, prepare_image, proprio
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer

POLICY_PARTS = ("config", "spec", "actor", "normalizer")


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
) -> ActorObs:
    """Actor input from an observation dict: pixels as uint8 (with the proprio group when the
    spec has one), the proprio group alone, or normalised state."""
    if spec.obs_mode == "proprio":
        return ActorObs(torch.from_numpy(obs["proprio"]).to(device))
    if spec.obs_mode == "pixels":
        pixels = torch.from_numpy(obs["pixels"]).to(device)
        if not spec.proprio_dim:
            return ActorObs(pixels)
        return ActorObs(pixels, torch.from_numpy(obs["proprio"]).to(device))
    state = torch.from_numpy(obs["state"]).to(device)
    return ActorObs(normalizer(state).float())


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
        self.reset_stream()

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
        """Forget the frame history (next image fills the whole stack) and the last action."""
        self.stream: FrameStack | None = None
        self.prev_action = np.zeros(self.spec.action_dim, dtype=np.float32)

    def act_image(
        self,
        image: np.ndarray,
        joints: tuple[np.ndarray, np.ndarray] | None = None,
        imu: tuple[np.ndarray, np.ndarray] | None = None,
        command: np.ndarray | None = None,
    ) -> np.ndarray:
        """Action [A] for one camera image of any size: RGB uint8 [H, W, 3], or depth float32
        metres [H, W] for a depth policy; frames are stacked as in training (``prepare_image`` /
        ``prepare_depth``: centre crop to the training aspect ratio, then resize). For specs
        with a proprio group, the readings of ``_proprio_now`` come with it."""
        self.push_frame(image)
        return self.act_frames(joints, imu, command)

    def push_frame(self, image: np.ndarray) -> None:
        """Add one camera image (as ``act_image`` takes it) to the frame stack without acting:
        a camera slower than the control rate (``spec.camera_every``) between actions."""
        spec = self.spec
        if spec.obs_mode != "pixels":
            raise ValueError(f"policy for {spec.task!r} acts on {spec.obs_mode}, not images")
        channels, height, width = spec.pixel_shape
        if spec.image == "depth":
            frame = prepare_depth(image, height, width, spec.depth_range)[None]
        else:
            frame = prepare_image(image, height, width)[None]
        if self.stream is None:
            per_frame = spec.image_channels
            self.stream = FrameStack(1, channels // per_frame, height, width, per_frame)
            self.stream.reset(np.zeros(1, dtype=np.int64), frame)
        else:
            self.stream.push(np.zeros(1, dtype=np.int64), frame)

    def act_frames(
        self,
        joints: tuple[np.ndarray, np.ndarray] | None = None,
        imu: tuple[np.ndarray, np.ndarray] | None = None,
        command: np.ndarray | None = None,
    ) -> np.ndarray:
        """Action [A] on the frames pushed so far and this step's readings."""
        if self.stream is None:
            raise ValueError(f"policy for {self.spec.task!r} has no camera frame yet")
        obs = {"pixels": self.stream.frames}
        if self.spec.proprio_dim:
            obs["proprio"] = self._proprio_now(joints, imu, command)
        self.prev_action = self.act(obs)[0]
        return self.prev_action

    def act_proprio(
        self,
        joints: tuple[np.ndarray, np.ndarray],
        imu: tuple[np.ndarray, np.ndarray] | None = None,
        command: np.ndarray | None = None,
    ) -> np.ndarray:
        """Action [A] of a proprio-only policy (no camera) from one set of readings."""
        if self.spec.obs_mode != "proprio":
            raise ValueError(f"policy for {self.spec.task!r} is not proprio-only")
        self.prev_action = self.act({"proprio": self._proprio_now(joints, imu, command)})[0]
        return self.prev_action

    def _proprio_now(
        self,
        joints: tuple[np.ndarray, np.ndarray] | None,
        imu: tuple[np.ndarray, np.ndarray] | None,
        command: np.ndarray | None,
    ) -> np.ndarray:
        """The proprio group [1, P] (``obs.proprio``) with this policy's previous action, from
        ``joints`` = (positions, velocities) [A] in the policy's joint order, and for specs that
        use them ``imu`` = (orientation (w, x, y, z) [4], angular velocity [3]) and ``command``."""
        spec = self.spec
        missing = [
            name
            for name, value, needed in (
                ("joint positions and velocities", joints, True),
                ("the IMU", imu, spec.imu),
                ("a command", command, spec.command_dim > 0),
            )
            if needed and value is None
        ]
        if missing:
            raise ValueError(f"policy for {spec.task!r} needs {' and '.join(missing)}")
        position, velocity = (np.asarray(v, dtype=np.float64)[None] for v in joints)
        return proprio(
            position,
            velocity,
            self.prev_action[None],
            spec.default_pose,
            spec.velocity_scale,
            tuple(np.asarray(v, dtype=np.float64)[None] for v in imu) if spec.imu else None,
            np.asarray(command, dtype=np.float64)[None] if spec.command_dim else None,
        )

    def warm_up(self) -> None:
        """One action on blank inputs of this policy's kind (first-call costs paid), then a
        fresh stream."""
        spec, zeros = self.spec, np.zeros(self.spec.action_dim)
        readings: dict[str, Any] = {}
        if spec.proprio_dim:
            readings["joints"] = (zeros, zeros)
            if spec.imu:
                readings["imu"] = (np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3))
            if spec.command_dim:
                readings["command"] = np.zeros(spec.command_dim)
        if spec.obs_mode == "proprio":
            self.act_proprio(**readings)
        else:
            self.act_image(self.blank_image(), **readings)
        self.reset_stream()

    def blank_image(self) -> np.ndarray:
        """An all-zero camera image of this policy's kind and training size (a warm-up frame)."""
        _, height, width = self.spec.pixel_shape
        if self.spec.image == "depth":
            return np.zeros((height, width), dtype=np.float32)
        return np.zeros((height, width, 3), dtype=np.uint8)
