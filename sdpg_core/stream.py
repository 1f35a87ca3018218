"""The streaming side of a deployed policy, without torch: the frame stack, the proprio group
from one set of readings, the previous action. ``Policy`` (torch) and ``OnnxPolicy``
(onnxruntime) put a network behind ``act``; the ROS policy node and the deploy loops call the
methods here, which run the training's observation code (``sdpg_core.obs``)."""

from __future__ import annotations

import abc
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs import (
    ANGULAR_VELOCITY_SCALE,
    COMMAND_SCALE,
    FrameStack,
    prepare_depth,
    prepare_image,
    proprio,
)


def proprio_layout(spec: EnvSpec) -> list[dict[str, Any]]:
    """Segments of the proprio group in order (``sdpg_core.obs.proprio``): name, size, scale
    and the label of each entry."""
    joints, layout = spec.joint_names, []
    if spec.imu:
        axes = ("x", "y", "z")
        layout.append(_segment("angular_velocity", ANGULAR_VELOCITY_SCALE, axes))
        layout.append(_segment("gravity_in_body_frame", 1.0, axes))
    if spec.command_dim:
        parts = ("vx", "vy", "wz") if spec.command_dim == 3 else map(str, range(spec.command_dim))
        layout.append(_segment("command", list(COMMAND_SCALE), tuple(parts)))
    layout.append(_segment("joint_position_minus_default_pose", 1.0, joints, "/position"))
    layout.append(_segment("joint_velocity", spec.velocity_scale, joints, "/velocity"))
    layout.append(_segment("previous_action", 1.0, joints, "/previous_action"))
    return layout


def _segment(name: str, scale: Any, parts: Sequence[str], suffix: str = "") -> dict[str, Any]:
    """One segment of ``proprio_layout``; entries labelled ``name/part`` or ``part + suffix``."""
    labels = [f"{p}{suffix}" if suffix else f"{name}/{p}" for p in parts]
    return {"name": name, "size": len(parts), "scale": scale, "labels": labels}


@functools.cache
def proprio_labels(spec: EnvSpec) -> list[str]:
    """A label per entry of the proprio group, in order."""
    return [label for segment in proprio_layout(spec) for label in segment["labels"]]


class StreamingPolicy(abc.ABC):
    """One robot's stream of observations turned into actions, for a policy of ``spec``."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        self.last_proprio: np.ndarray | None = None  # [1, P], the last action's proprio group
        self.reset_stream()

    @abc.abstractmethod
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batched deterministic actions float32 [n, A] in (-1, 1) from the actor's inputs
        (``pixels`` uint8 [n, C, H, W] with ``proprio`` [n, P], ``proprio`` alone, or
        ``state`` [n, Ds])."""

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
        group = self._proprio_now(joints, imu, command) if self.spec.proprio_dim else None
        return self._act_on(group)

    def act_recorded(self, proprio_group: np.ndarray | None) -> np.ndarray:
        """Action [A] on the frames pushed so far (camera policies) and a recorded proprio
        group [P] (``last_proprio`` of a deployment) whose previous action is replaced by this
        policy's own: what this policy would have done on those observations."""
        if not self.spec.proprio_dim:
            return self._act_on(None)
        group = np.asarray(proprio_group, dtype=np.float32).reshape(-1).copy()
        if group.shape != (self.spec.proprio_dim,):
            raise ValueError(f"a proprio group of {self.spec.proprio_dim}, got {group.shape}")
        group[-self.spec.action_dim :] = self.prev_action
        self.last_proprio = group[None]
        return self._act_on(self.last_proprio)

    def act_proprio(
        self,
        joints: tuple[np.ndarray, np.ndarray],
        imu: tuple[np.ndarray, np.ndarray] | None = None,
        command: np.ndarray | None = None,
    ) -> np.ndarray:
        """Action [A] of a proprio-only policy (no camera) from one set of readings."""
        if self.spec.obs_mode != "proprio":
            raise ValueError(f"policy for {self.spec.task!r} is not proprio-only")
        return self._act_on(self._proprio_now(joints, imu, command))

    def _act_on(self, group: np.ndarray | None) -> np.ndarray:
        """Action [A] on the frames pushed so far (camera policies) and the proprio group
        [1, P] (or None); it becomes the previous action."""
        obs = {} if group is None else {"proprio": group}
        if self.spec.obs_mode == "pixels":
            if self.stream is None:
                raise ValueError(f"policy for {self.spec.task!r} has no camera frame yet")
            obs["pixels"] = self.stream.frames
        self.prev_action = self.act(obs)[0]
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
        self.last_proprio = proprio(
            position,
            velocity,
            self.prev_action[None],
            spec.default_pose,
            spec.velocity_scale,
            tuple(np.asarray(v, dtype=np.float64)[None] for v in imu) if spec.imu else None,
            np.asarray(command, dtype=np.float64)[None] if spec.command_dim else None,
        )
        return self.last_proprio

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
