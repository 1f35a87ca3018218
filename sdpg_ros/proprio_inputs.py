"""The policy node's proprioceptive inputs: ``joint_states``, ``imu/data`` and ``cmd_vel``.

Joint states and IMU readings are kept with their stamps (``sdpg_core.joint_history``); a
policy's proprio group takes the reading stamped closest to the frame (or control tick), and
none within the allowed offset rejects it like a stale image (counted, no action). The
velocity command (geometry_msgs/Twist, no stamp) is the newest one received within
``cmd_vel_timeout_ms``; none, or an older one, commands standing still (zero), counted as
``cmd_vel_stale``: a teleoperator who stops publishing stops the robot. A policy with no camera,
or one slower than its control rate (``spec.camera_every`` > 1), acts on joint states instead
of frames: once per control period of joint-state stamps (``TickSchedule``: phase-locked, so a
jittery 50 Hz stream ticks on every message), ``on_tick(stamp_ns)`` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState

from sdpg_core.envs.base import EnvSpec
from sdpg_core.joint_history import ImuHistory, JointHistory, TickSchedule
from sdpg_ros.common import RELIABLE_QOS, SENSOR_QOS, Counters, now_ns, stamp_to_ns


class ProprioInputs:
    """Subscriptions and histories behind ``readings(spec, stamp_ns)``."""

    def __init__(
        self,
        node: Node,
        counters: Counters,
        max_offset_ms: tuple[float, float],
        cmd_vel_timeout_ms: float,
        on_tick: Callable[[int], None],
    ) -> None:
        self.node, self.counters, self.on_tick = node, counters, on_tick
        self.max_joint_offset_ns, self.max_imu_offset_ns = (int(ms * 1e6) for ms in max_offset_ms)
        self.cmd_vel_timeout_ns = int(cmd_vel_timeout_ms * 1e6)
        self.joints: JointHistory | None = None
        self.imu = ImuHistory()
        self.command: np.ndarray | None = None  # newest (vx, vy, wz)
        self.command_ns = 0  # when it arrived (node clock)
        self.ticks: TickSchedule | None = None  # the policy acts on ticks of joint states
        node.create_subscription(JointState, "joint_states", self._on_joint_state, SENSOR_QOS)
        node.create_subscription(Imu, "imu/data", self._on_imu, SENSOR_QOS)
        node.create_subscription(Twist, "cmd_vel", self._on_cmd_vel, RELIABLE_QOS)

    def use(self, spec: EnvSpec | None) -> None:
        """Serve the policy of ``spec`` (joint history kept across a policy of the same joints)."""
        if spec is None or not spec.proprio_dim:
            self.joints = None
        elif self.joints is None or self.joints.joints != spec.joint_names:
            self.joints = JointHistory(spec.joint_names)
        ticking = spec is not None and (spec.obs_mode == "proprio" or spec.camera_every > 1)
        self.ticks = TickSchedule(round(spec.control_dt * 1e9)) if ticking else None

    def _on_joint_state(self, msg: JointState) -> None:
        """Keep the joint state; a proprio-only policy acts once per control period."""
        history = self.joints
        if history is None:
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        problem = history.add(stamp_ns, msg.name, msg.position, msg.velocity)
        if problem:
            self.counters.reject(*problem)
            return
        if self.ticks is not None and self.ticks.due(stamp_ns):
            self.on_tick(stamp_ns)

    def _on_imu(self, msg: Imu) -> None:
        """Keep the IMU reading (orientation, angular velocity)."""
        q, w = msg.orientation, msg.angular_velocity
        problem = self.imu.add(stamp_to_ns(msg.header.stamp), (q.x, q.y, q.z, q.w), (w.x, w.y, w.z))
        if problem:
            self.counters.reject(*problem)

    def _on_cmd_vel(self, msg: Twist) -> None:
        """Keep the newest finite velocity command."""
        command = np.array([msg.linear.x, msg.linear.y, msg.angular.z])
        if not np.isfinite(command).all():
            self.counters.reject("cmd_vel_non_finite", f"cmd_vel {command.tolist()}")
            return
        self.command, self.command_ns = command, now_ns(self.node)

    def readings(self, spec: EnvSpec, stamp_ns: int) -> dict[str, Any] | None:
        """The keyword readings of ``Policy.act_image`` / ``act_proprio`` for a frame or tick at
        ``stamp_ns``: {} without a proprio group, None when one is missing or stale (counted)."""
        if not spec.proprio_dim:
            return {}
        if self.joints is None:
            self.counters.reject("joint_state_missing", "no joint state received yet")
            return None
        joints, problem = self.joints.closest(stamp_ns, self.max_joint_offset_ns)
        out: dict[str, Any] = {"joints": joints}
        if spec.imu and not problem:
            out["imu"], problem = self.imu.closest(stamp_ns, self.max_imu_offset_ns)
        if problem:
            self.counters.reject(*problem)
            return None
        if spec.command_dim:
            out["command"] = self._command()
        return out

    def _command(self) -> np.ndarray:
        """The newest velocity command, or zero when none is fresh (counted)."""
        if self.command is None or now_ns(self.node) - self.command_ns > self.cmd_vel_timeout_ns:
            self.counters.add("cmd_vel_stale")
            return np.zeros(3)
        return self.command.copy()
