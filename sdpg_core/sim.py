"""One simulated robot of a registered task, commanded in physical units (ROS-free sim core).

The robot is env 0 of the training ``MujocoBatchEnv`` (same model, same reset distribution,
same reward and success), driven the way ros2_control drives hardware: a held command per
actuated joint, efforts in N·m (or N) for motors, positions for position servos.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field

import mujoco
import numpy as np

from sdpg_core.config import EnvConfig, RandomizeConfig
from sdpg_core.envs.base import episode_seed
from sdpg_core.envs.registry import make_env
from sdpg_core.envs.render import PixelRenderer

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
EFFORT, POSITION = "effort", "position"


class CommandError(ValueError):
    """A malformed robot command; ``reason`` is a short key (``length``, ``nonfinite``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class JointStateSample:
    """Actuated joints in action order: positions, velocities and actuator efforts."""

    names: tuple[str, ...]
    position: np.ndarray  # float64 [A]
    velocity: np.ndarray  # float64 [A]
    effort: np.ndarray  # float64 [A], generalised actuator force on each joint


@dataclass(frozen=True)
class ImuSample:
    """What the base IMU measures (MuJoCo's gyro, accelerometer and frame orientation)."""

    orientation: np.ndarray  # float64 [4], (w, x, y, z) in the world frame
    angular_velocity: np.ndarray  # float64 [3], rad/s in the IMU frame
    linear_acceleration: np.ndarray  # float64 [3], m/s^2 in the IMU frame (gravity included)


@dataclass(frozen=True)
class Episode:
    """A finished episode."""

    index: int
    episode_return: float
    success: bool | None  # None for tasks without a success criterion
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)  # the task's episode metrics

    def as_dict(self) -> dict:
        """Plain dict for reports and status messages."""
        return {
            "episode": self.index,
            "return": self.episode_return,
            "success": self.success,
            "steps": self.steps,
            "metrics": dict(self.metrics),
        }


def actuator_kind(model: mujoco.MjModel, i: int) -> str:
    """``effort`` for a joint motor, ``position`` for a joint position servo; else ValueError."""
    name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i)
    if model.actuator_trntype[i] != int(mujoco.mjtTrn.mjTRN_JOINT):
        raise ValueError(f"actuator {name!r} does not drive a joint")
    fixed_gain = model.actuator_gaintype[i] == int(mujoco.mjtGain.mjGAIN_FIXED)
    bias, kp = model.actuator_biastype[i], model.actuator_gainprm[i, 0]
    plain = model.actuator_dyntype[i] == int(mujoco.mjtDyn.mjDYN_NONE)
    if fixed_gain and plain and bias == int(mujoco.mjtBias.mjBIAS_NONE):
        return EFFORT
    servo = model.actuator_biasprm[i, 0] == 0 and model.actuator_biasprm[i, 1] == -kp
    if fixed_gain and bias == int(mujoco.mjtBias.mjBIAS_AFFINE) and servo:
        return POSITION
    raise ValueError(f"actuator {name!r} is neither a motor nor a position servo")


def actuator_interface(model: mujoco.MjModel) -> str:
    """The command interface shared by all actuators; ValueError when they differ."""
    kinds = {actuator_kind(model, i) for i in range(model.nu)}
    if len(kinds) != 1:
        raise ValueError(f"actuators must share one command interface, found {sorted(kinds)}")
    return kinds.pop()


def command_scale(model: mujoco.MjModel, interface: str) -> np.ndarray:
    """Per actuator: ctrl = command * scale (1 / (gear * gain) for efforts, gear for positions)."""
    gear = model.actuator_gear[:, 0]
    if interface == EFFORT:
        return 1.0 / (gear * model.actuator_gainprm[:, 0])
    return gear.copy()


def pinhole(fovy_deg: float, width: int, height: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) in pixels of a MuJoCo camera (square pixels, centred, OpenCV origin)."""
    fy = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    return fy, fy, (width - 1) / 2.0, (height - 1) / 2.0


def release_gl_context() -> None:
    """Detach this thread's EGL context so the next render may run on another thread."""
    if os.environ.get("MUJOCO_GL") != "egl":
        return
    from mujoco import egl
    from OpenGL import EGL

    if egl.EGL_DISPLAY is not None:
        none = EGL.EGL_NO_SURFACE
        EGL.eglMakeCurrent(egl.EGL_DISPLAY, none, none, EGL.EGL_NO_CONTEXT)


def imu_sensors(model: mujoco.MjModel) -> list[slice] | None:
    """``sensordata`` slices of the IMU's orientation, gyro and accelerometer, or None."""
    try:
        sensors = [model.sensor(f"imu_{kind}") for kind in ("framequat", "gyro", "accelerometer")]
    except KeyError:
        return None
    return [slice(s.adr[0], s.adr[0] + s.dim[0]) for s in sensors]


def camera_timing(randomize: RandomizeConfig | None) -> list[str]:
    """The camera delay / drop ranges ``randomize`` turns on: the sim simulates neither (its
    camera publishes on its own timer)."""
    if randomize is None or not randomize.enabled:
        return []
    return [key for key in ("camera_delay", "camera_drop") if getattr(randomize.latency, key)]


class SimRobot:
    """Env 0 of a registered task with a held joint command, episodes and a camera.

    Episode k starts from the initial state of ``evaluate(policy, n, seed)``'s episode k
    (``episode_seed(seed, k)``), so a deployment over ROS replays the in-process evaluation;
    with a perturbation set (``randomize``, e.g. one of ``load_perturbations``) the episode
    also draws what ``evaluate(..., randomize=set)``'s episode k draws: physics, looks, image
    noise, action and joint-state delays (camera delays and drops are the camera timer's, not
    simulated here).
    """

    def __init__(
        self,
        task: str,
        seed: int = 0,
        episode_steps: int = 0,
        action_repeat: int = 1,
        camera: str = "",
        image: str = "",
        randomize: RandomizeConfig | None = None,
    ) -> None:
        timed = camera_timing(randomize)
        if timed:
            raise ValueError(
                f"randomize: {', '.join(timed)} are not simulated by the sim's camera (it "
                "publishes on its own timer): leave them [] in a set for the sim"
            )
        cfg = EnvConfig(
            task=task,
            episode_steps=episode_steps,
            action_repeat=action_repeat,
            camera=camera,
            image=image,
            physics_threads=1,
            randomize=randomize or RandomizeConfig(enabled=False),
        )
        self.env = make_env(task, cfg, 1, render=False, seed=seed)
        self.spec = self.env.spec
        self.model = model = self.env.model
        self.interface = actuator_interface(model)
        self._scale = command_scale(model, self.interface)
        self._low, self._high = model.actuator_ctrlrange.T.copy()
        camera = model.camera(self.spec.camera).id
        self.fovy = float(model.cam_fovy[camera])
        body = int(model.cam_bodyid[camera])  # a URDF camera link (e.g. an optical frame)
        self.camera_frame = model.body(body).name if body else "camera"
        self._data = mujoco.MjData(model)
        self._forwarded: tuple | None = None  # (state, ctrl, model) forwarded in _data
        self._imu_sensors = imu_sensors(model)
        self._renderers: dict[tuple[int, int], PixelRenderer] = {}
        self.total_steps = 0
        self.seed = seed
        self.episode = 0
        task = self.env.task
        # a command task (legged velocity) follows the operator's command, zero until one comes
        self.task_command = np.zeros(task.command_dim) if task.command_dim else None
        self._reset_episode()

    @property
    def sim_time(self) -> float:
        """Seconds of simulated time since construction (monotonic across episodes)."""
        return self.total_steps * self.spec.control_dt

    @property
    def max_image_size(self) -> tuple[int, int]:
        """Largest (height, width) the offscreen buffer can render."""
        return int(self.model.vis.global_.offheight), int(self.model.vis.global_.offwidth)

    def check_command(self, command: np.ndarray) -> np.ndarray:
        """Command in physical units [A] -> actuator ctrl [A]; CommandError if malformed."""
        values = np.asarray(command, dtype=np.float64).reshape(-1)
        if values.shape != (self.model.nu,):
            raise CommandError(
                "length", f"expected {self.model.nu} {self.interface} values, got {values.size}"
            )
        if not np.isfinite(values).all():
            raise CommandError("nonfinite", f"command contains NaN or inf: {values.tolist()}")
        return np.clip(values * self._scale, self._low, self._high)

    def set_command(self, command: np.ndarray) -> None:
        """Hold ``command`` (efforts or positions in joint order) until the next one."""
        self._ctrl = self.check_command(command)

    @property
    def action(self) -> np.ndarray:
        """The env action that follows the held command from the current state (before any
        command: zero effort, or the task's hold position)."""
        ctrl, extras = self._ctrl, self.env.extras[:1]
        if ctrl is None and self.interface == EFFORT:
            ctrl = np.zeros(self.model.nu)
        elif ctrl is None:
            ctrl = self.env.task.hold_ctrl(self.env.physics[:1, 1 : 1 + self.model.nq], extras)[0]
        return self.env.task.action_for(ctrl[None], extras)[0].astype(np.float32)

    def step(self) -> Episode | None:
        """Advance one control step with the held command; returns the episode it ended."""
        result = self.env.step(self.action[None])
        self.total_steps += 1
        self._return += float(result.reward[0])
        if not (result.terminated[0] or result.truncated[0]):
            return None
        success = bool(result.info["success"][0]) if self.spec.has_success else None
        metrics = {k: float(v[0]) for k, v in result.info.get("metrics", {}).items()}
        episode = Episode(self.episode, self._return, success, int(self.env.steps[0]), metrics)
        self.reset()
        return episode

    def _reset_episode(self) -> None:
        """Initial state of episode ``self.episode``; zero return; the command is released."""
        self.env.reset(np.zeros(1, dtype=np.int64), seeds=[episode_seed(self.seed, self.episode)])
        if self.task_command is not None:
            self.set_task_command(self.task_command)
        self._return = 0.0
        self._ctrl: np.ndarray | None = None

    def reset(self) -> None:
        """Start the next episode from its seeded initial state; the command is released."""
        self.episode += 1
        self._reset_episode()

    def _forward(self) -> mujoco.MjData:
        """The scratch MjData at the current state and held command, forward-computed (sensors
        included); once per state and command (joint states and the IMU read the same one)."""
        env, d = self.env, self._data
        m = self.episode_model
        state = env.latency.sensed[0] if env.latency.sensed.shape[1] else env.physics[0]
        ctrl = env.task.control(self.action[None], env.extras[:1])[0][0]
        done = self._forwarded
        if (
            done is None
            or done[2] is not m
            or not (np.array_equal(done[0], state) and np.array_equal(done[1], ctrl))
        ):
            mujoco.mj_setState(m, d, state, FULLPHYSICS)
            d.ctrl[:] = ctrl
            mujoco.mj_forward(m, d)
            self._forwarded = (state.copy(), np.array(ctrl, dtype=np.float64), m)
        return d

    @property
    def episode_model(self) -> mujoco.MjModel:
        """The model of this episode's physics draws (the base model when not randomised)."""
        models = self.env.variants.models(self.env.params)
        return models[0] if isinstance(models, list) else models

    def joint_state(self) -> JointStateSample:
        """Positions, velocities and actuator efforts of the actuated joints."""
        d = self._forward()
        return JointStateSample(
            self.spec.joint_names,
            d.qpos[self.env.joint_qpos].copy(),
            d.qvel[self.env.joint_dof].copy(),
            d.qfrc_actuator[self.env.joint_dof].copy(),
        )

    def set_task_command(self, command: np.ndarray) -> None:
        """The command a command task follows from now on, across episodes (e.g. cmd_vel's
        (vx, vy, yaw rate)); ValueError for a task without one or a malformed command."""
        task = self.env.task
        values = np.asarray(command, dtype=np.float64).reshape(-1)
        if values.shape != (task.command_dim,) or not np.isfinite(values).all():
            raise ValueError(f"{self.spec.task} takes {task.command_dim} finite command values")
        self.task_command = values
        self.env.extras[:1] = task.set_command(self.env.extras[:1], values[None])

    @property
    def has_imu(self) -> bool:
        """Whether the model has the IMU sensors (``imu_framequat``, ``imu_gyro``,
        ``imu_accelerometer``)."""
        return self._imu_sensors is not None

    def imu(self) -> ImuSample:
        """The IMU's reading now (``has_imu`` models only)."""
        if self._imu_sensors is None:
            raise ValueError(f"{self.spec.task} has no IMU")
        d = self._forward()
        return ImuSample(*(d.sensordata[s].copy() for s in self._imu_sensors))

    def image(self, height: int, width: int = 0) -> np.ndarray:
        """The task camera's image, rendered exactly like training (with the episode's looks
        and image noise when randomised): RGB uint8 [H, W, 3], or depth float32 metres [H, W]
        for a depth camera (what its driver publishes); width 0: square."""
        size, env = (height, width or height), self.env
        draws = env.randomizer if env.randomizer.dim else None
        try:
            if size not in self._renderers:
                self._renderers[size] = PixelRenderer(
                    copy.copy(self.model) if draws else self.model,
                    env.task,
                    1,
                    size,
                    1,
                    self.spec.camera,
                    depth_range=self.spec.depth_range,
                    randomizer=draws,
                )
            renderer, params = self._renderers[size], env.params[:1]
            images = renderer.camera_images(env.physics[:1], env.extras[:1], params)
            if draws is not None:
                noise = draws.postprocess_depth if self.spec.depth_range else draws.postprocess_rgb
                noise(images, params, env.steps[:1])
            return images[0]
        finally:
            release_gl_context()

    def close(self) -> None:
        """Free the renderers and the env."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.env.close()
