"""The environment contract every batched env implements (shapes and dtypes written down once).

Notation: N = number of envs in the batch, R = number of rendered envs (``render_ids``),
A = action dim, Ds = privileged state dim, C = c * frame_stack (c = 3 per RGB frame, 1 per
depth frame: ``EnvSpec.image``), H = W = image size.

- ``reset(ids, seeds=None)``: re-initialise envs ``ids`` (int64 [n]) from the task's initial
  distribution; with ``seeds`` (one per id) each initial state depends on its seed alone.
- ``step(actions)``: actions float32 [N, A] in (-1, 1) (already squashed) ->
  ``StepResult(obs, reward float32 [N], terminated bool [N], truncated bool [N], info)``;
  no auto-reset: the caller resets done envs. A non-finite physics state is a termination
  with zero reward and finite (zeroed) observations.
- ``observe()``: ``{"state": float32 [N, Ds], "pixels": uint8 [R, C, H, W], "proprio":
  float32 [N, P]}``; pixels exist only for ``render_ids`` (the nominal envs) and only when the
  env renders; proprio only for tasks with a proprioception group (``obs.proprio``).
- ``get_state(ids)`` / ``set_state(state, ids)``: exact round trip of everything that affects
  future observations, rewards and success (physics, task extras such as targets, step
  counter, previous action, success-window count, frame stacks of rendered envs, and the
  domain-randomisation draws with the controls, sensor readings and frames they delay:
  ``copy_state`` gives an auxiliary env its nominal's draws).
- ``info``: ``"reward_terms"`` {name: float32 [N]} (their sum is the reward) and, for tasks
  that define it, ``"success"`` bool [N], the episode's verdict (read it when the episode
  ends): the task's success condition held on at least half of the episode's last
  ``Task.success_window`` control steps (a settled reach, not a one-step snapshot); for tasks
  with ``Task.metrics``, ``"metrics"`` {name: float [N]}, each episode's figures so far (read
  them when it ends; e.g. a walker's mean velocity along its command).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

EVAL_SEED = 12345  # default seed of evaluation episodes (sdpg eval, the ROS sim deploy)


def episode_seed(seed: int, episode: int) -> list[int]:
    """Seed of evaluation episode ``episode`` (``reset(ids, seeds)``): shared by in-process
    evaluation and the ROS sim backend, so both play the same episodes."""
    return [seed, episode]


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a batched env's observations and actions."""

    task: str  # registered name
    obs_mode: str  # "pixels" or "state": what the actor sees
    state_dim: int  # Ds, privileged low-dim state (critic input; actor input in state mode)
    action_dim: int  # A, actions in (-1, 1)
    pixel_shape: tuple[int, int, int] | None  # (C, H, W) uint8, or None without rendering
    episode_steps: int
    control_dt: float  # seconds per env step
    reward_terms: tuple[str, ...]
    has_success: bool
    joint_names: tuple[str, ...]  # actuated joints, in action order
    camera: str
    proprio_dim: int = 0  # P of the actor's proprio group (0: the actor sees pixels only)
    default_pose: tuple[float, ...] = ()  # proprio positions are relative to it, per joint
    velocity_scale: float = 0.0  # proprio velocities are scaled by it
    imu: bool = False  # the proprio group starts with the IMU: 0.25 gyro (3), gravity (3)
    command_dim: int = 0  # then the command (scaled by obs.COMMAND_SCALE)
    image: str = "rgb"  # camera frames: "rgb" (3 channels each) or "depth" (1, metres quantised)
    depth_range: tuple[float, ...] = ()  # (near, far) metres of a depth image, else ()
    camera_every: int = 1  # control steps per camera frame (the frames in between are held)
    action_mode: str = ""  # "absolute" | "delta": ``Task.action_mapping`` ("" in old specs)
    action_scale: tuple[float, ...] = ()  # per joint, the robot's command units
    action_offset: tuple[float, ...] = ()

    @property
    def image_channels(self) -> int:
        """Channels per camera frame: 3 (RGB) or 1 (depth)."""
        return 1 if self.image == "depth" else 3

    def to_dict(self) -> dict:
        """Plain dict for checkpoints and policy metadata."""
        return {
            "task": self.task,
            "obs_mode": self.obs_mode,
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "pixel_shape": list(self.pixel_shape) if self.pixel_shape else None,
            "episode_steps": self.episode_steps,
            "control_dt": self.control_dt,
            "reward_terms": list(self.reward_terms),
            "has_success": self.has_success,
            "joint_names": list(self.joint_names),
            "camera": self.camera,
            "proprio_dim": self.proprio_dim,
            "default_pose": list(self.default_pose),
            "velocity_scale": self.velocity_scale,
            "imu": self.imu,
            "command_dim": self.command_dim,
            "image": self.image,
            "depth_range": list(self.depth_range),
            "camera_every": self.camera_every,
            "action_mode": self.action_mode,
            "action_scale": list(self.action_scale),
            "action_offset": list(self.action_offset),
        }

    @classmethod
    def from_dict(cls, data: dict) -> EnvSpec:
        """Inverse of ``to_dict`` (older specs have no proprio group and RGB images)."""
        shape = data["pixel_shape"]
        return cls(
            task=data["task"],
            obs_mode=data["obs_mode"],
            state_dim=int(data["state_dim"]),
            action_dim=int(data["action_dim"]),
            pixel_shape=tuple(shape) if shape else None,
            episode_steps=int(data["episode_steps"]),
            control_dt=float(data["control_dt"]),
            reward_terms=tuple(data["reward_terms"]),
            has_success=bool(data["has_success"]),
            joint_names=tuple(data["joint_names"]),
            camera=data["camera"],
            proprio_dim=int(data.get("proprio_dim", 0)),
            default_pose=tuple(float(v) for v in data.get("default_pose", ())),
            velocity_scale=float(data.get("velocity_scale", 0.0)),
            imu=bool(data.get("imu", False)),
            command_dim=int(data.get("command_dim", 0)),
            image=data.get("image", "rgb"),
            depth_range=tuple(float(v) for v in data.get("depth_range", ())),
            camera_every=int(data.get("camera_every", 1)),
            action_mode=str(data.get("action_mode", "")),
            action_scale=tuple(float(v) for v in data.get("action_scale", ())),
            action_offset=tuple(float(v) for v in data.get("action_offset", ())),
        )


@dataclass
class EnvState:
    """A batch of env states, leading dim n (one row per env id)."""

    physics: np.ndarray  # float64 [n, nstate], MuJoCo mjSTATE_FULLPHYSICS
    extras: np.ndarray  # float64 [n, k], task state outside physics (targets, commands)
    steps: np.ndarray  # int64 [n], steps since reset
    prev_action: np.ndarray  # float32 [n, A]
    on_target: np.ndarray  # int64 [n], steps of the final success window with success held
    frames: np.ndarray | None = field(default=None)  # uint8 [n, C, H, W] for rendered envs
    params: np.ndarray | None = None  # float64 [n, K] domain-randomisation draws
    ctrl_queue: np.ndarray | None = None  # float64 [n, L, nu] controls still on their way
    sensed: np.ndarray | None = None  # float64 [n, nstate] physics as the (delayed) sensors saw it
    pending: np.ndarray | None = None  # uint8 [n, D, H, W, c] camera frames still on their way


@dataclass
class StepResult:
    """What ``BatchedEnv.step`` returns."""

    obs: dict[str, np.ndarray]
    reward: np.ndarray  # float32 [N]
    terminated: np.ndarray  # bool [N]
    truncated: np.ndarray  # bool [N]
    info: dict


class BatchedEnv(abc.ABC):
    """Abstract batched env; see the module docstring for the contract."""

    spec: EnvSpec
    num_envs: int
    render_ids: np.ndarray  # int64 [R]

    @abc.abstractmethod
    def reset(self, ids: np.ndarray, seeds: list | None = None) -> None:
        """Re-initialise envs ``ids`` (from ``seeds``, one per id, when given)."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every env by one control step."""

    @abc.abstractmethod
    def observe(self) -> dict[str, np.ndarray]:
        """Current observations of all envs (pixels for ``render_ids`` only)."""

    @abc.abstractmethod
    def get_state(self, ids: np.ndarray, frames: bool = True) -> EnvState:
        """Full state of envs ``ids`` (frames only if asked and every id is rendered)."""

    @abc.abstractmethod
    def set_state(self, state: EnvState, ids: np.ndarray) -> None:
        """Restore envs ``ids`` from ``state`` (row i -> ids[i])."""

    def copy_state(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Copy the state of envs ``src`` onto envs ``dst`` (same length; frames excluded)."""
        self.set_state(self.get_state(src, frames=False), dst)

    def close(self) -> None:
        """Release renderers and thread pools."""
