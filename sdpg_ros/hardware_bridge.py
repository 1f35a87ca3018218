"""Hardware bridge (lifecycle node): normalised policy actions -> safe ros2_control commands.

Subscribes ``policy/action`` (sensor_msgs/JointState: ``name`` = joints, ``position`` = action
in [-1, 1], ``header.stamp`` = camera image stamp), ``joint_states`` and ``e_stop``
(std_msgs/Bool, latching); service ``~/reset`` (std_srvs/Trigger) clears the latch. Publishes
while ACTIVE, on every accepted action (no wait for a tick: camera-to-command latency) and at
``rate_hz`` in between (ramp, watchdog hold), std_msgs/Float64MultiArray
(``command_type: forward``) or trajectory_msgs/JointTrajectory (``trajectory``) on the
robot's ``command_topic`` (or ``dry_run_topic``). The safety logic (limits, rate limit, ramp,
watchdog, e-stop, hold) is ``sdpg_core.safety``; the robot (joints, interface, gains) is
``config/robots/<robot>.yaml``.
QoS: actions and e_stop reliable (depth 10), joint_states sensor-data, commands reliable.

The e-stop subscription and ``~/reset`` exist in every lifecycle state, so a trip is never
missed. When commands stop (deactivate, shutdown, close) the bridge publishes once the command
that is safe to persist in a controller without timeout: the last position target (position
interface) or zero velocity / zero effort.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sdpg_core.config import ConfigError
from sdpg_core.robot import (
    RobotConfig,
    joint_limits,
    load_robot,
    parse_urdf_limits,
    robot_urdf_path,
)
from sdpg_core.safety import CommandGuard, make_guard, measured_by_name, reorder
from sdpg_ros.common import (
    RELIABLE_QOS,
    SENSOR_QOS,
    Counters,
    Diagnostics,
    ParameterError,
    declare,
    now_ns,
    require,
    require_topic,
    run_nodes,
    stamp_to_ns,
)

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
POINT_FIELD = {"position": "positions", "velocity": "velocities", "effort": "effort"}
COUNTER_KEYS = ("actions", "commands", "rejected", "watchdog", "e_stop")


class HardwareBridge(LifecycleNode):
    """Managed node turning policy actions into clamped, rate-limited, watched commands."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("hardware_bridge", **kwargs)
        self._declare_parameters()
        self.robot, self.guard = self._load_robot()
        joints = self.robot.joints
        self.position = np.full(len(joints), np.nan)  # measured, robot joint order
        self.velocity = np.full(len(joints), np.nan)
        self.counters = Counters(self)
        for key in COUNTER_KEYS:
            self.counters.add(key, 0)
        self.latencies_ms: deque[float] = deque(maxlen=10_000)
        self.mode = "unconfigured"
        self.e_stop_input = False
        self.action_stamp_ns = 0
        self.publisher = self.timer = None
        self.last_command_s = -float("inf")
        self.inputs: list = []
        self.create_subscription(Bool, "e_stop", self._on_e_stop, RELIABLE_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.diagnostics = Diagnostics(self, self.counters, self._diagnostic_values)
        if self.autostart:
            self.autostart_timer = self.create_timer(0.2, self._autostart)

    def _declare_parameters(self) -> None:
        """Declare and validate the parameters (ParameterError names the bad one)."""
        self.robot_name = declare(
            self, "robot", "reacher", "robot name (config/robots/<name>.yaml) or a YAML path"
        )
        self.urdf = declare(self, "urdf", "", "URDF file for joint limits ('' = the robot's)")
        self.robot_description = declare(
            self, "robot_description", "", "URDF XML string; takes precedence ('' = unused)"
        )
        self.rate_hz = declare(self, "rate_hz", 50.0, "command rate, Hz")
        self.timeout_ms = declare(self, "timeout_ms", 100.0, "hold when no action for this, ms")
        self.ramp_s = declare(self, "ramp_s", 1.0, "blend from measured state to policy, s")
        self.dry_run = declare(self, "dry_run", False, "publish on dry_run_topic, not the robot")
        self.dry_run_topic = declare(
            self, "dry_run_topic", "~/dry_run/commands", "command topic when dry_run is true"
        )
        self.autostart = declare(
            self, "autostart", True, "configure and activate by itself (false: lifecycle services)"
        )
        require(math.isfinite(self.rate_hz) and self.rate_hz > 0, "rate_hz", "must be > 0")
        require(math.isfinite(self.timeout_ms) and self.timeout_ms > 0, "timeout_ms", "must be > 0")
        require(math.isfinite(self.ramp_s) and self.ramp_s >= 0, "ramp_s", "must be >= 0")
        require_topic("dry_run_topic", self.dry_run_topic)

    def _load_robot(self) -> tuple[RobotConfig, CommandGuard]:
        """The robot YAML and its CommandGuard (URDF limits); errors name the parameter."""
        try:
            robot = load_robot(self.robot_name)
        except ConfigError as err:
            raise ParameterError(f"parameter 'robot': {err}") from err
        require_topic("robot", robot.command_topic)
        source = "robot"  # the parameter that chose the URDF
        if self.robot_description or self.urdf:
            source = "robot_description" if self.robot_description else "urdf"
        try:
            urdf = self.robot_description or self.urdf or robot_urdf_path(robot)
            joints = joint_limits(robot, parse_urdf_limits(urdf))
            guard = make_guard(robot, joints, self.ramp_s, self.timeout_ms / 1000.0)
        except (ConfigError, ValueError) as err:
            raise ParameterError(f"parameter '{source}': {err}") from err
        return robot, guard

    # Lifecycle transitions --------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Create the command publisher and the action / joint_states subscriptions."""
        forward = self.robot.command_type == "forward"
        topic = self.dry_run_topic if self.dry_run else self.robot.command_topic
        msg_type = Float64MultiArray if forward else JointTrajectory
        self.publisher = self.create_lifecycle_publisher(msg_type, topic, RELIABLE_QOS)
        self.inputs = [
            self.create_subscription(JointState, "policy/action", self._on_action, RELIABLE_QOS),
            self.create_subscription(JointState, "joint_states", self._on_joint_states, SENSOR_QOS),
        ]
        self.mode = "inactive"
        self.get_logger().info(
            f"configured robot {self.robot.name}: {self.robot.command_interface} commands "
            f"({self.robot.command_type}) on {self.publisher.topic_name}"
            + (" [DRY RUN]" if self.dry_run else "")
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the command timer, ramping from the measured state."""
        try:
            self.guard.start(self.position)
        except ValueError as err:
            self.get_logger().error(
                f"cannot activate: {err} (no joint_states received yet?)",
                throttle_duration_sec=5.0,  # autostart retries every 0.2 s
            )
            return FAILURE
        self.timer = self.create_timer(1.0 / self.rate_hz, self._tick)
        self.mode = "waiting"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publish the safe command once and stop commanding."""
        self._stop("deactivate")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the publisher and subscriptions."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Safe command once (if commanding), then release everything."""
        self._stop("shutdown")
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Safe command once (if commanding), release, and return to unconfigured."""
        self._stop("error")
        self._release()
        return super().on_error(state)

    def close(self) -> None:
        """Leave the robot in the safe state (used on exit)."""
        self._stop("close")

    def _autostart(self) -> None:
        """Configure and activate; retried by the timer until active (e.g. joint_states late)."""
        if self.publisher is None and self.trigger_configure() != SUCCESS:
            return
        if self.trigger_activate() == SUCCESS:
            self.autostart_timer.cancel()

    def _stop(self, why: str) -> None:
        """If commanding: stop the timer and publish the final safe command once."""
        if self.timer is None:
            return
        self.destroy_timer(self.timer)
        self.timer = None
        command = self.guard.final()
        if not self.context.ok():  # e.g. rclpy's own SIGINT handler shut it down first
            self.get_logger().error(f"{why}: context shut down, safe command NOT published")
            return
        self.publisher.publish(self._message(command, 0))
        self.counters.add("commands")
        self.mode = "inactive"
        self.get_logger().info(f"{why}: published the safe command {command.tolist()}")

    def _release(self) -> None:
        """Destroy the publisher and the action / joint_states subscriptions."""
        for sub in self.inputs:
            self.destroy_subscription(sub)
        if self.publisher is not None:
            self.destroy_lifecycle_publisher(self.publisher)
        self.inputs, self.publisher, self.mode = [], None, "unconfigured"

    # Inputs -----------------------------------------------------------------------------------

    def _on_action(self, msg: JointState) -> None:
        """Validate, reorder and store a policy action (rejected ones are counted)."""
        action, reason = reorder(msg.name, msg.position, self.robot.joints)
        if action is not None:
            reason = self.guard.accept(action, now_ns(self) * 1e-9)
        if reason:
            self.counters.reject(reason, f"names {list(msg.name)} values {list(msg.position)}")
            return
        self.counters.add("actions")
        self.action_stamp_ns = stamp_to_ns(msg.header.stamp)
        if self.timer is not None:  # active: command now, not at the next timer tick
            self._command()

    def _on_joint_states(self, msg: JointState) -> None:
        """Measured positions / velocities of the robot's joints (NaN when absent)."""
        self.position = measured_by_name(msg.name, msg.position, self.robot.joints, self.position)
        self.velocity = measured_by_name(msg.name, msg.velocity, self.robot.joints, self.velocity)

    def _on_e_stop(self, msg: Bool) -> None:
        """True latches the e-stop until ~/reset."""
        self.e_stop_input = bool(msg.data)
        if self.e_stop_input and self.guard.trip():
            self.counters.add("e_stop")
            self.get_logger().error("E-STOP latched: holding; call ~/reset to resume")

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response):
        """Clear the e-stop latch (refused while e_stop is still true)."""
        if self.e_stop_input:
            response.success, response.message = False, "e_stop input is still true"
            return response
        if not self.guard.latched:
            response.success, response.message = True, "e-stop was not latched"
            return response
        try:
            self.guard.reset(self.position)
        except ValueError as err:
            response.success, response.message = False, str(err)
            return response
        response.success, response.message = True, "e-stop cleared; ramping to the policy"
        self.get_logger().warning(response.message)
        return response

    # Output -----------------------------------------------------------------------------------

    def _tick(self) -> None:
        """Timer: command unless an action already did within the last half period."""
        if time.monotonic() - self.last_command_s >= 0.5 / self.rate_hz:
            self._command()

    def _command(self) -> None:
        """One command from the guard; count watchdog events and latencies."""
        self.last_command_s = time.monotonic()
        tick = self.guard.step(now_ns(self) * 1e-9, self.velocity)
        if tick.watchdog:
            self.counters.add("watchdog")
            self.get_logger().warning(
                f"watchdog: no action for {self.timeout_ms:.0f} ms, holding",
                throttle_duration_sec=2.0,
            )
        stamp_ns = self.action_stamp_ns if tick.mode in ("ramp", "policy") else 0
        self.publisher.publish(self._message(tick.command, stamp_ns))
        self.counters.add("commands")
        if tick.new_action and self.action_stamp_ns > 0:
            # wall clock unless use_sim_time: the same time base as the image stamp
            now = now_ns(self) if self.get_clock().ros_time_is_active else time.time_ns()
            self.latencies_ms.append((now - self.action_stamp_ns) / 1e6)
        self.mode = tick.mode

    def _message(self, command: np.ndarray, stamp_ns: int):
        """Float64MultiArray, or a one-point JointTrajectory reached one tick from now."""
        if self.robot.command_type == "forward":
            return Float64MultiArray(data=command.tolist())
        tick_ns = int(1e9 / self.rate_hz)
        # header.stamp = the image stamp; time_from_start compensates, so the point is due
        # one tick after publishing (a past-due point would be rejected by the controller).
        ahead = tick_ns + (max(0, now_ns(self) - stamp_ns) if stamp_ns else 0)
        point = JointTrajectoryPoint(time_from_start=Duration(nanoseconds=ahead).to_msg())
        setattr(point, POINT_FIELD[self.robot.command_interface], command.tolist())
        msg = JointTrajectory(joint_names=list(self.robot.joints), points=[point])
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        return msg

    def _diagnostic_values(self) -> dict[str, Any]:
        """Mode, e-stop latch, dry-run flag and latency statistics for /diagnostics."""
        values: dict[str, Any] = {
            "mode": self.mode,
            "e_stop_latched": self.guard.latched,
            "dry_run": self.dry_run,
        }
        if self.latencies_ms:
            lat = np.array(self.latencies_ms)
            values["latency_ms_mean"] = round(float(lat.mean()), 2)
            values["latency_ms_p95"] = round(float(np.percentile(lat, 95)), 2)
        return values


def main(args: list[str] | None = None) -> int:
    """Entry point (``ros2 run sdpg_ros hardware_bridge``)."""
    return run_nodes([HardwareBridge], args)


if __name__ == "__main__":
    raise SystemExit(main())
