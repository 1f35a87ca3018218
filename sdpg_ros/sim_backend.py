"""``sim_backend``: the MuJoCo task behind the topics of a real robot with ros2_control + camera.

Publishes ``/clock`` (sim time), ``joint_states``, ``camera/image_raw`` + ``camera/camera_info``
(rgb8, or 32FC1 metres for a depth policy; none for a proprio-only one), ``imu/data``
(sensor_msgs/Imu, frame ``imu``, for a robot with an IMU), ``task_status``
(one DiagnosticStatus per finished episode; ``success`` is "false" for
tasks without a success criterion) and ``episode_start`` (a Header stamped like the first
camera frame of each episode, published before that frame, so a policy restarts its frame
history exactly where training did); takes ros2_control-style
commands on ``<controller>/commands`` (Float64MultiArray, held until the next one) and
optionally ``<controller>/joint_trajectory``; a command task (legged velocity tracking)
follows ``cmd_vel`` (geometry_msgs/Twist: linear x, y and angular z; zero until the first);
``~/reset`` starts a new episode.

Each timer tick applies the latest command, steps the physics one control step and publishes
the new state (the first tick, and the first after ``~/reset``, publish the initial state), so
a policy that answers within one tick acts on the frame of the step it controls, as in
training.

Task, camera size and action repeat are those the policy was trained with: the ``checkpoint``
parameter's (read without torch; they take precedence over ``task``, ``image_size`` and
``action_repeat``), or, with ``checkpoint_topic`` and no ``checkpoint`` (a training session),
those of the first checkpoint announced there: the sim and its topics appear only then. A later
checkpoint with other settings is refused with a warning (``checkpoints_refused``): the
running policy node refuses such a swap as well, so the sim keeps what it runs.
"""

from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.time import Time
from rclpy.timer import Timer
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState
from std_msgs.msg import Float64MultiArray, Header, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from sdpg_core.config import RandomizeConfig
from sdpg_core.envs.registry import get_task
from sdpg_core.fit import read_metadata
from sdpg_core.sim import POSITION, CommandError, Episode, SimRobot, pinhole
from sdpg_ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    Counters,
    Diagnostics,
    ParameterError,
    declare,
    destroy_on_error,
    require,
    require_topic,
    run_nodes,
)
from sdpg_ros.image_conversion import to_msg
from sdpg_ros.session_checks import ArgumentError, check_perturb

NODE_NAME = "sim_backend"


def camera_info(fovy_deg: float, height: int, width: int, frame_id: str) -> CameraInfo:
    """Pinhole CameraInfo (no distortion) of a MuJoCo camera image."""
    fx, fy, cx, cy = pinhole(fovy_deg, width, height)
    msg = CameraInfo(height=height, width=width, distortion_model="plumb_bob")
    msg.header.frame_id = frame_id
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def task_status(task: str, episode: Episode) -> DiagnosticStatus:
    """The ``task_status`` message of a finished episode."""
    values = {
        "task": task,
        "episode": str(episode.index),
        "return": f"{episode.episode_return:.6g}",
        "success": "true" if episode.success else "false",
        "steps": str(episode.steps),
        **{name: f"{value:.6g}" for name, value in episode.metrics.items()},
    }
    return DiagnosticStatus(
        level=DiagnosticStatus.OK,
        name="task_status",
        message=f"episode {episode.index} ended",
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )


class Settings(NamedTuple):
    """What the sim runs: the policy's training task, camera size and action repeat, and its
    camera and image kind ("": the task's)."""

    task: str
    image_size: int
    action_repeat: int
    camera: str = ""
    image: str = ""
    image_width: int = 0  # 0: square frames

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the camera frames."""
        return self.image_size, self.image_width or self.image_size


def checkpoint_settings(path: str) -> Settings:
    """The settings a checkpoint was trained with (its header, no torch)."""
    env = read_metadata(path)[0].env
    return Settings(
        env.task, env.image_size, env.action_repeat, env.camera, env.image, env.image_width
    )


class SimBackend(Node):
    """Steps one ``SimRobot`` on a timer and exposes it like ros2_control hardware + camera."""

    @destroy_on_error
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._declare_parameters()
        self.counters = Counters(self)
        self.episodes: list[dict[str, Any]] = []
        self.robot: SimRobot | None = None  # built from the settings (maybe on a checkpoint)
        self.settings: Settings | None = None
        self.timer: Timer | None = None
        self._last_frame = -1
        self._fresh = True  # the robot holds an episode's initial state, not yet published
        self._closing, self._closed = threading.Lock(), False  # close() vs a running tick
        self._group = MutuallyExclusiveCallbackGroup()
        try:
            if self.checkpoint:
                self._start(checkpoint_settings(self.checkpoint))
            elif not self.checkpoint_topic:
                self._start(Settings(self.task, self.image_size, self.action_repeat))
        except (OSError, ValueError) as err:
            name = "checkpoint" if self.checkpoint else "image_size"
            raise ParameterError(f"parameter '{name}': {err}") from err
        if self.checkpoint_topic:
            self.create_subscription(
                String,
                self.checkpoint_topic,
                self._on_checkpoint,
                LATCHED_QOS,
                callback_group=self._group,
            )
        self.diagnostics = Diagnostics(self, self.counters, self._diagnostic_values)

    def _start(self, settings: Settings) -> None:
        """Build the robot for ``settings``, its topics and its timer (ValueError for an unknown
        task or a camera size the model cannot render)."""
        try:
            robot = SimRobot(
                settings.task,
                self.seed,
                self.episode_steps,
                settings.action_repeat,
                settings.camera,
                settings.image,
                self.perturbation,
            )
        except KeyError as err:
            raise ValueError(f"unknown task {settings.task!r}") from err
        (height, width), (max_height, max_width) = settings.image_shape, robot.max_image_size
        if height > max_height or width > max_width:
            robot.close()
            limit = f"{max_height} x {max_width}"
            raise ValueError(f"image size {height} x {width} > {limit}, this model's limit")
        self.robot, self.settings = robot, settings
        self.task, self.image_shape = settings.task, settings.image_shape
        self._info = camera_info(robot.fovy, height, width, robot.camera_frame)
        self._make_interfaces()
        period = robot.spec.control_dt / self.real_time_factor
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = self.create_timer(period, self._tick, self._group, clock=steady)

    def _on_checkpoint(self, msg: String) -> None:
        """A checkpoint announced: the first starts the sim, a later one must match it (both
        counted as ``checkpoints``)."""
        try:
            settings = checkpoint_settings(msg.data)
        except (OSError, ValueError) as err:
            self._refuse(msg.data, str(err))
            return
        with self._closing:
            if self._closed:
                return
            if self.settings is None:
                try:
                    self._start(settings)
                except ValueError as err:
                    self._refuse(msg.data, str(err))
                    return
                self.get_logger().info(f"sim started for {msg.data}: {settings}")
            elif settings != self.settings:
                self._refuse(msg.data, f"{settings} differs from the running {self.settings}")
                return
            self.counters.add("checkpoints")

    def _refuse(self, path: str, why: str) -> None:
        """Count and log a checkpoint the sim does not follow."""
        self.counters.add("checkpoints_refused")
        self.get_logger().warning(f"checkpoint {path} refused: {why}")

    def _declare_parameters(self) -> None:
        """Declare, read and validate the parameters (ParameterError names the bad one)."""
        self.task = declare(self, "task", "reacher", "registered task (pixel or _state variant)")
        self.seed = declare(self, "seed", 0, "seed of the episodes' initial states")
        self.image_size = declare(self, "image_size", 64, "camera image height = width, px")
        self.camera_rate_hz = declare(
            self, "camera_rate_hz", 0.0, "camera frame rate in sim time; 0 = every control step"
        )
        self.real_time_factor = declare(
            self, "real_time_factor", 1.0, "sim seconds per wall second (> 0)"
        )
        self.publish_clock = declare(self, "publish_clock", True, "publish sim time on /clock")
        self.command_topic = declare(
            self, "command_topic", "effort_controller/commands", "Float64MultiArray commands"
        )
        self.trajectory_topic = declare(
            self, "trajectory_topic", "", "JointTrajectory commands ('' = off)"
        )
        self.episode_steps = declare(self, "episode_steps", 0, "episode length; 0 = task default")
        self.action_repeat = declare(
            self, "action_repeat", 1, "control steps per command (training env.action_repeat)"
        )
        self.checkpoint = declare(
            self, "checkpoint", "", "run the task, image size, action repeat it trained with"
        )
        self.checkpoint_topic = declare(
            self, "checkpoint_topic", "", "without checkpoint: start on the first one announced"
        )
        self.perturb = declare(self, "perturb", "", "YAML of perturbation sets ('' = nominal)")
        self.perturb_set = declare(self, "perturb_set", "", "the set of `perturb` to simulate")
        self.perturbation = self._perturbation()
        try:
            get_task(self.task)
        except KeyError as err:
            raise ParameterError(f"parameter 'task': {err.args[0]}") from err
        require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        require(self.image_size > 0, "image_size", f"must be > 0, got {self.image_size}")
        require(self.camera_rate_hz >= 0.0, "camera_rate_hz", "must be >= 0 (0 = every step)")
        require(self.real_time_factor > 0.0, "real_time_factor", "must be > 0")
        require_topic("command_topic", self.command_topic)
        if self.trajectory_topic:
            require_topic("trajectory_topic", self.trajectory_topic)
        require(self.episode_steps >= 0, "episode_steps", "must be >= 0 (0 = task default)")
        require(self.action_repeat >= 1, "action_repeat", "must be >= 1")
        if self.checkpoint_topic:
            require_topic("checkpoint_topic", self.checkpoint_topic)

    def _perturbation(self) -> RandomizeConfig | None:
        """The perturbation set the episodes draw from (None: the nominal simulator)."""
        try:
            return check_perturb(self.perturb, self.perturb_set, sim=True)
        except ArgumentError as err:
            raise ParameterError(f"parameter '{err.argument}': {err}") from err

    def _make_interfaces(self) -> None:
        """Publishers, command subscriptions and the reset service (one exclusive group)."""
        group = self._group
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", RELIABLE_QOS)
        self.joint_pub = self.create_publisher(JointState, "joint_states", RELIABLE_QOS)
        self.image_pub = self.create_publisher(Image, "camera/image_raw", RELIABLE_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", RELIABLE_QOS)
        self.status_pub = self.create_publisher(DiagnosticStatus, "task_status", RELIABLE_QOS)
        self.episode_pub = self.create_publisher(Header, "episode_start", RELIABLE_QOS)
        self.create_subscription(
            Float64MultiArray,
            self.command_topic,
            self._on_command,
            RELIABLE_QOS,
            callback_group=group,
        )
        if self.trajectory_topic:
            self.create_subscription(
                JointTrajectory,
                self.trajectory_topic,
                self._on_trajectory,
                RELIABLE_QOS,
                callback_group=group,
            )
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=group)
        self.imu_pub = None
        if self.robot.has_imu:
            self.imu_pub = self.create_publisher(Imu, "imu/data", RELIABLE_QOS)
        if self.robot.task_command is not None:
            self.create_subscription(
                Twist, "cmd_vel", self._on_cmd_vel, RELIABLE_QOS, callback_group=group
            )
        # a proprio-only policy looks at no camera: render nothing for it
        self.camera_on = get_task(self.robot.spec.task).obs_mode == "pixels"

    def _on_cmd_vel(self, msg: Twist) -> None:
        """The velocity command (vx, vy, yaw rate) the robot is to follow (a bad one counted)."""
        try:
            self.robot.set_task_command([msg.linear.x, msg.linear.y, msg.angular.z])
        except ValueError as err:
            self.counters.reject("cmd_vel", str(err))
            return
        self.counters.add("cmd_vel")

    def _command(self, values: Any) -> None:
        """Hold a command in joint order, or count it as rejected (the last good one stays)."""
        try:
            self.robot.set_command(values)
        except CommandError as err:
            self.counters.reject(err.reason, str(err))
            return
        self.counters.add("commands")

    def _on_command(self, msg: Float64MultiArray) -> None:
        """forward_command_controller semantics: one value per joint, held."""
        self._command(list(msg.data))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        """Target the first point: its positions (position servos) or efforts (motors)."""
        names = list(self.robot.spec.joint_names)
        if not msg.points or sorted(msg.joint_names) != sorted(names):
            detail = f"joints {list(msg.joint_names)} with {len(msg.points)} points"
            self.counters.reject("trajectory", f"need one point for joints {names}, got {detail}")
            return
        point = msg.points[0]
        values = point.positions if self.robot.interface == POSITION else point.effort
        if len(values) != len(names):
            self._command(list(values))  # counted as a length error
            return
        order = [list(msg.joint_names).index(name) for name in names]
        self._command([values[i] for i in order])

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Abandon the running episode and start the next one (command released)."""
        self.robot.reset()
        self._fresh = True
        self.counters.add("resets")
        response.success = True
        response.message = f"episode {self.robot.episode} started"
        return response

    def _tick(self) -> None:
        """Step once with the held command (not on the first tick), then publish the state."""
        with self._closing:
            if not self._closed:
                self._advance()

    def _advance(self) -> None:
        """One tick's work: step (unless the initial state is unpublished) and publish."""
        new_episode = self._fresh
        if not self._fresh:
            episode = self.robot.step()
            if episode is not None:
                self._end_episode(episode)
                new_episode = True
        self._fresh = False
        self._publish_state(new_episode)

    def _end_episode(self, episode: Episode) -> None:
        """Record a finished episode and publish its ``task_status``."""
        self.episodes.append(episode.as_dict())
        self.counters.add("episodes")
        if episode.success:
            self.counters.add("successes")
        self.status_pub.publish(task_status(self.task, episode))

    def _stamp(self, sim_ns: int) -> Any:
        """Stamp for this state: sim time under use_sim_time, else the node clock."""
        if self.get_parameter("use_sim_time").value:
            return Time(nanoseconds=sim_ns).to_msg()
        return self.get_clock().now().to_msg()

    def _publish_state(self, new_episode: bool) -> None:
        """Publish /clock, joint_states, episode_start (first state of an episode) and (when
        due) the camera image + info."""
        sim_ns = round(self.robot.sim_time * 1e9)
        if self.publish_clock:
            self.clock_pub.publish(ClockMsg(clock=Time(nanoseconds=sim_ns).to_msg()))
        stamp = self._stamp(sim_ns)
        state = self.robot.joint_state()
        joints = JointState(name=list(state.names))
        joints.header.stamp = stamp
        joints.position, joints.velocity = state.position.tolist(), state.velocity.tolist()
        joints.effort = state.effort.tolist()
        # the policy's trigger comes last: the frame of a camera at the control rate, else the
        # joint states (a policy without a camera, or with a slower one, acts on those)
        if new_episode:
            self.episode_pub.publish(Header(stamp=stamp, frame_id=self.robot.camera_frame))
        self._publish_imu(stamp)
        every = self.robot.spec.camera_every
        frame_due = self.camera_on and self._camera_due(sim_ns)
        if frame_due and every > 1 and self.robot.env.steps[0] % every == 0:
            self._publish_frame(stamp)
        self.joint_pub.publish(joints)
        if frame_due and every == 1:
            self._publish_frame(stamp)

    def _publish_frame(self, stamp: Any) -> None:
        """The camera image (in the URDF's optical frame when the model has one) + info."""
        frame = self.robot.camera_frame
        image = to_msg(self.robot.image(*self.image_shape), frame_id=frame)
        image.header.stamp = self._info.header.stamp = stamp
        self.image_pub.publish(image)
        self.info_pub.publish(self._info)
        self.counters.add("frames")

    def _publish_imu(self, stamp: Any) -> None:
        """``imu/data`` (frame ``imu``) with the joint states' stamp, for a robot with an IMU."""
        if self.imu_pub is None:
            return
        sample = self.robot.imu()
        msg = Imu()
        msg.header.stamp, msg.header.frame_id = stamp, "imu"
        w, x, y, z = sample.orientation.tolist()
        q, rate, accel = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        q.w, q.x, q.y, q.z = w, x, y, z
        rate.x, rate.y, rate.z = sample.angular_velocity.tolist()
        accel.x, accel.y, accel.z = sample.linear_acceleration.tolist()
        self.imu_pub.publish(msg)

    def _camera_due(self, sim_ns: int) -> bool:
        """Whether a camera frame is due at ``sim_ns`` (every step when camera_rate_hz is 0)."""
        if self.camera_rate_hz <= 0.0:
            return True
        frame = math.floor(sim_ns * 1e-9 * self.camera_rate_hz + 1e-9)
        due, self._last_frame = frame > self._last_frame, max(frame, self._last_frame)
        return due

    def _diagnostic_values(self) -> dict[str, Any]:
        """Extra values for /diagnostics (none before the sim starts)."""
        if self.robot is None:
            return {}
        robot = self.robot
        return {
            "task": self.task,
            "episode": robot.episode,
            "sim_time": robot.sim_time,
            "perturbation": self.perturb_set or "nominal",
        }

    def close(self) -> None:
        """Stop stepping (waiting for a running tick) and free the renderer and physics."""
        if self.timer is not None:
            self.timer.cancel()
        with self._closing:
            if not self._closed:
                self._closed = True
                if self.robot is not None:
                    self.robot.close()


def main(args: list[str] | None = None) -> int:
    """Entry point ``sim_backend``."""
    return run_nodes([SimBackend], args, executable=True)


if __name__ == "__main__":
    raise SystemExit(main())
