"""Task = physics model + reward hooks; all hooks are vectorised over a batch of n envs."""

from __future__ import annotations

import abc
from pathlib import Path

import mujoco
import numpy as np

ASSETS = Path(__file__).resolve().parent / "assets"


def tolerance(
    x: np.ndarray,
    lower: float,
    upper: float,
    margin: float,
    value_at_margin: float = 0.1,
    sigmoid: str = "gaussian",
) -> np.ndarray:
    """1 inside [lower, upper], else ``value_at_margin`` at ``margin`` outside (dm_control-like).

    ``sigmoid``: "gaussian" (default), "linear" or "quadratic" (both reach 0 beyond the margin).
    """
    below = np.maximum(lower - x, 0.0)
    above = np.maximum(x - upper, 0.0)
    distance = (below + above) / max(margin, 1e-9)
    if margin <= 0:
        return ((below + above) == 0).astype(np.float64)
    if sigmoid == "gaussian":
        scale = np.sqrt(-2.0 * np.log(value_at_margin))
        return np.exp(-0.5 * (distance * scale) ** 2)
    if sigmoid == "linear":
        return np.maximum(1.0 - distance * (1.0 - value_at_margin), 0.0)
    if sigmoid == "quadratic":
        scaled = distance * np.sqrt(1.0 - value_at_margin)
        return np.where(scaled < 1.0, 1.0 - scaled**2, 0.0)
    raise ValueError(f"unknown sigmoid {sigmoid!r}")


class Task(abc.ABC):
    """A registered task: builds its MuJoCo model and scores states.

    Shapes: qpos float64 [n, nq], qvel float64 [n, nv], extras float64 [n, extras_dim],
    action float32 [n, A] in (-1, 1). Hooks must be pure functions of their inputs.
    """

    name: str = ""  # set by ``register_task``
    camera: str = "track"
    image: str = "rgb"  # what the camera gives the actor: "rgb" or "depth"
    depth_camera: str = ""  # the camera of depth images ('' = ``camera``)
    camera_every: int = 1  # a new camera frame every this many control steps (a slower camera)
    depth_range: tuple[float, float] = (0.1, 3.0)  # metres a depth image is clipped to
    episode_steps: int = 1000
    frame_skip: int = 1
    extras_dim: int = 0
    has_success: bool = False
    success_window: int = 1  # control steps at the episode's end over which success is judged
    reward_terms: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()  # named per-episode figures (``episode_metrics``)
    proprio: bool = False  # the actor also sees joint positions, velocities and its last action
    default_pose: tuple[float, ...] = ()  # actuated joints; proprio positions are relative to it
    velocity_scale: float = 0.1  # proprio joint velocities are scaled by it
    imu: bool = False  # the proprio group starts with the base IMU (``imu_state``)
    command_dim: int = 0  # then a command the robot is given (``command``), e.g. a velocity
    # registered variants: (name suffix, what the actor sees: pixels | proprio | state)
    variants: tuple[tuple[str, str], ...] = (("", "pixels"), ("_state", "state"))

    @abc.abstractmethod
    def build_spec(self) -> mujoco.MjSpec:
        """The model as an editable MjSpec (actuators with ctrlrange [-1, 1], cameras)."""

    def bind(self, model: mujoco.MjModel) -> None:
        """Cache indices/geometry read from the compiled model."""
        self.model = model

    @abc.abstractmethod
    def initial_state(
        self, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample (qpos [n, nq], qvel [n, nv], extras [n, extras_dim]) for a reset."""

    @abc.abstractmethod
    def observation(self, qpos: np.ndarray, qvel: np.ndarray, extras: np.ndarray) -> np.ndarray:
        """Privileged low-dim state, float [n, Ds]."""

    @abc.abstractmethod
    def terms(
        self, qpos: np.ndarray, qvel: np.ndarray, extras: np.ndarray, action: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Named reward terms, each float [n]."""

    def control(self, action: np.ndarray, extras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ctrl [n, nu], extras) for actions in [-1, 1] (default: the actuator's ctrlrange
        spanned linearly; extras unchanged). Tasks with stateful commands (position deltas)
        keep their command in ``extras`` and return the updated copy."""
        low, high = self.model.actuator_ctrlrange.T
        return low + (action.astype(np.float64) + 1.0) * 0.5 * (high - low), extras

    def action_for(self, ctrl: np.ndarray, extras: np.ndarray) -> np.ndarray:
        """The action in [-1, 1] that ``control`` turns into ``ctrl`` [n, nu] (clipped where
        one step cannot reach it): how a simulated robot follows a held joint command."""
        low, high = self.model.actuator_ctrlrange.T
        return np.clip(2.0 * (ctrl - low) / (high - low) - 1.0, -1.0, 1.0)

    def action_mapping(self) -> tuple[str, np.ndarray, np.ndarray]:
        """(mode, scale [A], offset [A]): what an action means in the robot's command units,
        an absolute command = offset + scale * a (joint targets in rad, or efforts for motors)
        or a "delta" = held command + scale * a (default: ``control``'s linear map of the
        ctrlrange, through the gear and gain of a motor)."""
        from sdpg_core.envs.actuators import is_position_servo

        m = self.model
        low, high = m.actuator_ctrlrange.T
        servo = np.array([is_position_servo(m, i) for i in range(m.nu)], dtype=bool)
        gain = np.where(servo, 1.0, m.actuator_gear[:, 0] * m.actuator_gainprm[:, 0])
        return "absolute", gain * (high - low) / 2.0, gain * (high + low) / 2.0

    def hold_ctrl(self, qpos: np.ndarray, extras: np.ndarray) -> np.ndarray:
        """Position-servo ctrl [n, nu] that holds the arm still before any command (default: the
        actuated joints' current positions)."""
        return qpos[:, self.model.jnt_qposadr[self.model.actuator_trnid[:, 0]]]

    def advance(
        self, qpos: np.ndarray, qvel: np.ndarray, extras: np.ndarray, action: np.ndarray
    ) -> np.ndarray:
        """Task extras after a control step, given its outcome (default: unchanged): state
        that rewards need across steps, e.g. how long a foot has been in the air."""
        return extras

    def imu_state(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(orientation (w, x, y, z) [n, 4], angular velocity in the body frame [n, 3]) of the
        IMU, for tasks with ``imu``."""
        raise NotImplementedError(f"{type(self).__name__} has no IMU")

    def command(self, extras: np.ndarray) -> np.ndarray:
        """The command [n, command_dim] each env is given, for tasks with ``command_dim``."""
        raise NotImplementedError(f"{type(self).__name__} takes no command")

    def set_command(self, extras: np.ndarray, command: np.ndarray) -> np.ndarray:
        """Extras with the command [n, command_dim] replaced (an operator's command)."""
        raise NotImplementedError(f"{type(self).__name__} takes no command")

    def combine(self, terms: dict[str, np.ndarray]) -> np.ndarray:
        """Reward from its terms (default: the sum)."""
        return np.sum(np.stack(list(terms.values())), axis=0)

    def terminated(self, qpos: np.ndarray, qvel: np.ndarray, extras: np.ndarray) -> np.ndarray:
        """Termination flags, bool [n] (default: never)."""
        return np.zeros(len(qpos), dtype=bool)

    def success(self, qpos: np.ndarray, qvel: np.ndarray, extras: np.ndarray) -> np.ndarray:
        """Success flags, bool [n], for tasks with ``has_success``."""
        return np.zeros(len(qpos), dtype=bool)

    def episode_metrics(
        self, qpos: np.ndarray, qvel: np.ndarray, extras: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The ``metrics`` of each env's episode so far, {name: float [n]} (read at its end)."""
        return {}

    def prepare_render(self, data: mujoco.MjData, extras: np.ndarray) -> None:
        """Show task extras (e.g. a target) in ``data`` before rendering one env."""

    def joint_names(self) -> tuple[str, ...]:
        """Names of the joints driven by the actuators, in action order."""
        model = self.model
        return tuple(
            mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, int(model.actuator_trnid[i, 0]))
            for i in range(model.nu)
        )
