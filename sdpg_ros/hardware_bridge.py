"""Hardware bridge (lifecycle node): normalised policy actions -> safe ros2_control commands.

Subscribes ``policy/action`` (sensor_msgs/JointState: ``name`` = joints, ``position`` = action
in [-1, 1], ``header.stamp`` = camera image stamp), ``joint_states`` and ``e_stop``
(std_msgs/Bool, latching; transient-local, so a restarted bridge gets the current state);
service ``~/reset`` (std_srvs/Trigger) clears the latch. With ``wait_for_e_stop`` the bridge
starts latched until it has seen the e-stop state (false) or an operator reset. Publishes
while ACTIVE, on every accepted action (no wait for a tick: camera-to-command latency) and at
``rate_hz`` in between (ramp, watchdog hold), std_msgs/Float64MultiArray
(``command_type: forward``) or trajectory_msgs/JointTrajectory (``trajectory``) on the
robot's ``command_topic`` (or ``dry_run_topic``). The safety logic (limits, rate limit, ramp,
watchdog, e-stop, hold) is ``sdpg_core.safety``; the robot (joints, interface, gains) is
``config/robots/<robot>.yaml``.
QoS: actions reliable (depth 10), e_stop reliable + transient local (depth 1: an e-stop
publisher must be transient local too, e.g. ``ros2 topic pub --qos-durability transient_local``;
a volatile one cannot connect and is logged), joint_states sensor-data, commands reliable.

Inputs are checked before use: actions (names, finite, in [-1, 1], stamp not older than
``max_action_age_ms`` nor ahead by more than ``max_action_lead_ms``), joint states (finite,
within the URDF limits plus ``position_margin`` / ``velocity_margin``); rejects are counted.
The bridge refuses to activate while another publisher exists on its command topic and, once
active, latches the e-stop hold when one appears. ``autostart`` (off by default: a bridge on
hardware waits for a lifecycle transition) configures and activates by itself.

Delta actions (``action_mode: delta``) integrate on the last command; an ``episode_start``
Header (the sim backend's resets) makes them restart from the first joint state measured in
the new episode, as the task's joint targets do at a reset (counted as ``rebased``).

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
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, Header
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
from sdpg_core.safety import (
    CommandGuard,
    MeasuredBounds,
    make_guard,
    measured_bounds,
    measured_by_name,
    measurement_error,
    reorder,
)
from sdpg_ros.common import (
    DRY_RUN_TOPIC,
    RELIABLE_QOS,
    SENSOR_QOS,
    Counters,
    Diagnostics,
    ParameterError,
    declare,
    destroy_on_error,
    now_ns,
    require,
    require_topic,
    run_nodes,
    stamp_to_ns,
)

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
POINT_FIELD = {"position": "positions", "velocity": "velocities", "effort": "effort"}
COUNTER_KEYS = ("actions", "commands", "rejected", "watchdog", "e_stop", "conflict")
# Reliable + transient local: a (re)started bridge receives the e-stop publisher's history; depth
# 10 so a quick press-and-release is not overwritten before it is delivered.
E_STOP_QOS = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
DISCOVERY_S = 1.0  # autostart activates no earlier: time to discover another command publisher
CONFLICT_CHECK_S = 0.5  # while active, how often the command topic's publishers are counted


class HardwareBridge(LifecycleNode):
    """Managed node turning policy actions into clamped, rate-limited, watched commands."""

    @destroy_on_error
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("hardware_bridge", **kwargs)
        self._declare_parameters()
        self.robot, self.guard, self.bounds = self._load_robot()
        joints = self.robot.joints
        self.position = np.full(len(joints), np.nan)  # measured, robot joint order
        self.velocity = np.full(len(joints), np.nan)
        self.velocity_s = -float("inf")  # monotonic time of the last measured velocity
        self.counters = Counters(self)
        for key in COUNTER_KEYS:
            self.counters.add(key, 0)
        self.latencies_ms: deque[float] = deque(maxlen=10_000)
        self.mode = "unconfigured"
        self.e_stop_input: bool | None = None  # None: state not seen yet
        self.latch_reason = ""
        if self.wait_for_e_stop:
            self._latch("e_stop_unknown")
        self.action_stamp_ns = 0
        self.publisher = self.timer = None
        self.last_command_s = self.conflict_check_s = -float("inf")
        self.configured_s = float("inf")
        self.inputs: list = []
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_e_stop_incompatible)
        self.create_subscription(
            Bool, "e_stop", self._on_e_stop, E_STOP_QOS, event_callbacks=events
        )
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.rebase_after_ns: int | None = None  # episode start awaiting its first joint state
        if self.episode_topic:
            self.create_subscription(Header, self.episode_topic, self._on_episode, RELIABLE_QOS)
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
            self, "dry_run_topic", DRY_RUN_TOPIC, "command topic when dry_run is true"
        )
        self.autostart = declare(
            self, "autostart", False, "configure and activate by itself (false: lifecycle)"
        )
        self.wait_for_e_stop = declare(
            self, "wait_for_e_stop", True, "hold until the e_stop state or ~/reset is seen"
        )
        self.max_action_age_ms = declare(
            self, "max_action_age_ms", 300.0, "reject actions whose stamp is older (0 = off)"
        )
        self.max_action_lead_ms = declare(
            self, "max_action_lead_ms", 100.0, "reject actions stamped further ahead (0 = off)"
        )
        self.position_margin = declare(
            self, "position_margin", 0.1, "joint_states beyond the URDF limits by more: rejected"
        )
        self.velocity_margin = declare(
            self, "velocity_margin", 0.1, "joint_states faster than (1 + this) x limit: rejected"
        )
        self.continuous_position_limit = declare(
            self,
            "continuous_position_limit",
            100.0,
            "position interface: |continuous joint position| above this is rejected, rad",
        )
        positive = ("rate_hz", "timeout_ms")
        non_negative = (
            "ramp_s", "max_action_age_ms", "max_action_lead_ms", "position_margin",
            "velocity_margin", "continuous_position_limit",
        )  # fmt: skip
        for name in positive + non_negative:
            value = getattr(self, name)
            ok = math.isfinite(value) and (value > 0 if name in positive else value >= 0)
            require(ok, name, "must be > 0" if name in positive else "must be >= 0")
        require_topic("dry_run_topic", self.dry_run_topic)
        self.episode_topic = declare(
            self, "episode_topic", "episode_start", "Header: delta commands restart ('' = off)"
        )
        if self.episode_topic:
            require_topic("episode_topic", self.episode_topic)

    def _load_robot(self) -> tuple[RobotConfig, CommandGuard, MeasuredBounds]:
        """The robot YAML, its CommandGuard and measured-state bounds (URDF limits); errors
        name the parameter."""
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
            period = 1.0 / self.rate_hz
            guard = make_guard(robot, joints, self.ramp_s, self.timeout_ms / 1000.0, period)
        except (ConfigError, ValueError) as err:
            raise ParameterError(f"parameter '{source}': {err}") from err
        continuous = self.continuous_position_limit
        if robot.command_interface != "position":  # measured positions are not used then
            continuous = math.inf
        bounds = measured_bounds(joints, self.position_margin, self.velocity_margin, continuous)
        return robot, guard, bounds

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
        self.configured_s = time.monotonic()
        self.get_logger().info(
            f"configured robot {self.robot.name}: {self.robot.command_interface} commands "
            f"({self.robot.command_type}) on {self.publisher.topic_name}"
            + (" [DRY RUN]" if self.dry_run else "")
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the command timer, ramping from the measured state (refused while another
        node publishes on the command topic)."""
        others = self._other_publishers()
        if others:
            self.counters.add("conflict")
            self.get_logger().error(
                f"REFUSING TO ACTIVATE: {others} other publisher(s) on "
                f"{self.publisher.topic_name}: is another bridge or controller commanding "
                "this robot?",
                throttle_duration_sec=5.0,
            )
            return FAILURE
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
        """Configure and activate; retried by the timer until active (e.g. joint_states late).
        Activation waits DISCOVERY_S after configuring, to see another command publisher."""
        if self.publisher is None and self.trigger_configure() != SUCCESS:
            return
        if time.monotonic() - self.configured_s < DISCOVERY_S:
            return
        if self.trigger_activate() == SUCCESS:
            self.autostart_timer.cancel()

    def _other_publishers(self) -> int:
        """Publishers on the command topic other than this bridge's own."""
        return self.count_publishers(self.publisher.topic_name) - 1

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
        self.configured_s = float("inf")

    # Inputs -----------------------------------------------------------------------------------

    def _on_action(self, msg: JointState) -> None:
        """Validate, reorder and store a policy action (rejected ones are counted)."""
        now = now_ns(self)
        action, reason = reorder(msg.name, msg.position, self.robot.joints)
        if action is not None:
            reason = self._stamp_error(now - stamp_to_ns(msg.header.stamp))
        if action is not None and not reason:
            reason = self.guard.accept(action, now * 1e-9)
        if reason:
            self.counters.reject(reason, f"names {list(msg.name)} values {list(msg.position)}")
            return
        self.counters.add("actions")
        self.action_stamp_ns = stamp_to_ns(msg.header.stamp)
        if self.timer is not None:  # active: command now, not at the next timer tick
            self._command()

    def _stamp_error(self, age_ns: int) -> str | None:
        """Why an action of this stamp age is rejected (None: fresh enough, not from ahead)."""
        age_ms = age_ns / 1e6
        if self.max_action_age_ms and age_ms > self.max_action_age_ms:
            return "stale"
        if self.max_action_lead_ms and -age_ms > self.max_action_lead_ms:
            return "future"
        return None

    def _on_joint_states(self, msg: JointState) -> None:
        """Measured positions / velocities of the robot's joints; implausible ones rejected."""
        joints = self.robot.joints
        position, has_position = measured_by_name(msg.name, msg.position, joints)
        velocity, has_velocity = measured_by_name(msg.name, msg.velocity, joints)
        reason = measurement_error(position, has_position, velocity, has_velocity, self.bounds)
        if reason:
            detail = f"names {list(msg.name)} position {list(msg.position)}"
            self.counters.reject(reason, f"{detail} velocity {list(msg.velocity)}")
            return
        self.position = np.where(has_position, position, self.position)
        self.velocity = np.where(has_velocity, velocity, self.velocity)
        if has_velocity.any():
            self.velocity_s = time.monotonic()
        after = self.rebase_after_ns
        if after is not None and stamp_to_ns(msg.header.stamp) >= after:
            self.rebase_after_ns = None
            if self.guard.rebase(self.position):
                self.counters.add("rebased")

    def _on_episode(self, msg: Header) -> None:
        """A new episode: delta commands restart from its first measured pose."""
        self.rebase_after_ns = stamp_to_ns(msg.stamp)

    def _on_e_stop(self, msg: Bool) -> None:
        """True latches the e-stop until ~/reset; the first state seen releases the start-up
        latch when it is false."""
        first, self.e_stop_input = self.e_stop_input is None, bool(msg.data)
        if self.e_stop_input and self.latch_reason != "e_stop":
            self._latch("e_stop")
            self.counters.add("e_stop")
            self.get_logger().error("E-STOP latched: holding; call ~/reset to resume")
        elif first and self.latch_reason == "e_stop_unknown":
            self._unlatch("e-stop state received (false)")

    def _on_e_stop_incompatible(self, event: Any) -> None:
        """A volatile e-stop publisher cannot reach this transient-local subscription: say so."""
        self.counters.add("e_stop_incompatible_qos")
        self.get_logger().error(
            f"an e_stop publisher has incompatible QoS ({event.last_policy_kind}); e-stop "
            "publishers must be reliable and transient local",
            throttle_duration_sec=5.0,
        )

    def _latch(self, reason: str) -> None:
        """Latch the hold for ``reason`` (the latest reason is the one reported)."""
        self.guard.trip()
        self.latch_reason = reason

    def _unlatch(self, why: str) -> str | None:
        """Clear the latch (ramping from the measured state); the error, if it cannot."""
        try:
            self.guard.release(self.position)
        except ValueError as err:
            return str(err)
        self.latch_reason = ""
        self.get_logger().warning(f"{why}: latch cleared; ramping to the policy")
        return None

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response):
        """Clear the e-stop latch (refused while e_stop is still true)."""
        if self.e_stop_input:
            response.success, response.message = False, "e_stop input is still true"
            return response
        if not self.guard.latched:
            response.success, response.message = True, "e-stop was not latched"
            return response
        error = self._unlatch("~/reset")
        response.success = error is None
        response.message = error or "e-stop cleared; ramping to the policy"
        return response

    # Output -----------------------------------------------------------------------------------

    def _tick(self) -> None:
        """Timer: check for a conflicting publisher; command unless an action already did
        within the last half period."""
        now = time.monotonic()
        if now - self.conflict_check_s >= CONFLICT_CHECK_S:
            self.conflict_check_s = now
            self._check_conflict()
        if now - self.last_command_s >= 0.5 / self.rate_hz:
            self._command()

    def _check_conflict(self) -> None:
        """Another publisher on the command topic while active: latch the hold, loudly."""
        others = self._other_publishers()
        if others and self.latch_reason != "conflict":
            self._latch("conflict")
            self.counters.add("conflict")
            self.get_logger().error(
                f"E-STOP latched: {others} other publisher(s) appeared on "
                f"{self.publisher.topic_name}; holding; stop them, then call ~/reset"
            )

    def _command(self) -> None:
        """One command from the guard; count watchdog events and latencies."""
        self.last_command_s = time.monotonic()
        velocity = self.velocity  # damping trusts a fresh measurement only
        if self.last_command_s - self.velocity_s > self.timeout_ms / 1000.0:
            velocity = np.full_like(self.velocity, np.nan)
        tick = self.guard.step(now_ns(self) * 1e-9, velocity)
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
        e_stop = {None: "unknown", True: "true", False: "false"}[self.e_stop_input]
        values: dict[str, Any] = {
            "mode": self.mode,
            "e_stop_latched": self.guard.latched,
            "latch_reason": self.latch_reason,
            "e_stop_input": e_stop,
            "dry_run": self.dry_run,
        }
        if self.latencies_ms:
            lat = np.array(self.latencies_ms)
            values["latency_ms_mean"] = round(float(lat.mean()), 2)
            values["latency_ms_p95"] = round(float(np.percentile(lat, 95)), 2)
        return values


def main(args: list[str] | None = None) -> int:
    """Entry point (``ros2 run sdpg_ros hardware_bridge``)."""
    return run_nodes([HardwareBridge], args, executable=True)


if __name__ == "__main__":
    raise SystemExit(main())
