"""A probe node and bridge factory for the hardware_bridge tests (real rclpy graph)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from sdpg_ros.common import RELIABLE_QOS, SENSOR_QOS
from sdpg_ros.hardware_bridge import E_STOP_QOS, HardwareBridge

JOINTS = ["shoulder", "elbow"]
COMMANDS = "/effort_controller/commands"
DRY_RUN = "/hardware_bridge/dry_run/commands"
RATE_HZ = 50.0
# Tests not about the watchdog use a long timeout: a loaded 2-core machine stalls the test's
# executor for tens of ms at times, which would (correctly) trip a 100 ms watchdog.
SLOW_TIMEOUT_MS = 1000.0
# The reacher with a tight per-command step, so that rate limiting is exercised.
STRICT_ROBOT = str(Path(__file__).parent / "data" / "reacher_strict.yaml")
LIMIT, MAX_RATE = 0.05, 1.0  # URDF effort limit, STRICT_ROBOT max_rate (N·m/s)
MAX_STEP = MAX_RATE / RATE_HZ  # the largest change of one command (one period of rate)


class Probe:
    """A test node: publishes actions / joint_states / e_stop, records commands, calls reset."""

    def __init__(self, graph, topics=(COMMANDS,), msg_type=Float64MultiArray) -> None:
        self.graph = graph
        self.node = graph.add(rclpy.create_node("probe", context=graph.context))
        self.actions = self.node.create_publisher(JointState, "/policy/action", RELIABLE_QOS)
        self.states = self.node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        self.e_stop = self.node.create_publisher(Bool, "/e_stop", E_STOP_QOS)
        self.reset = self.node.create_client(Trigger, "/hardware_bridge/reset")
        self.received: dict[str, list] = {topic: [] for topic in topics}
        for topic in topics:
            self.node.create_subscription(msg_type, topic, self.received[topic].append, 10)

    def commands(self, topic=COMMANDS) -> np.ndarray:
        """[N, J] of the Float64MultiArray commands received on ``topic``."""
        return np.array([m.data for m in self.received[topic]]).reshape(-1, len(JOINTS))

    def send(self, action, names=JOINTS, age_s: float = 0.0) -> int:
        """Publish one action stamped ``age_s`` ago (wall clock); returns the stamp in ns."""
        msg = JointState(name=list(names), position=[float(a) for a in action])
        stamp = time.time_ns() - int(age_s * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        self.actions.publish(msg)
        return stamp

    def stream(self, action, seconds: float) -> None:
        """Send ``action`` every 20 ms while spinning, for ``seconds``."""
        self.drive(action, lambda: False, seconds)

    def drive(self, action, until, timeout: float = 3.0) -> bool:
        """Send ``action`` every 20 ms while spinning until ``until()``; returns it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not until():
            self.send(action)
            self.graph.spin_until(until, 0.02)
        return until()

    def measure(self, position, velocity, until, timeout: float = 3.0) -> bool:
        """Publish joint states every 20 ms while spinning until ``until()``; returns it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not until():
            self.joint_state(position, velocity)
            self.graph.spin_until(until, 0.02)
        return until()

    def reached(self, command, topic=COMMANDS):
        """A predicate: the latest command received on ``topic`` equals ``command``."""
        return lambda: (
            len(self.received[topic]) > 0
            and np.allclose(self.received[topic][-1].data, command, atol=1e-9)
        )

    def joint_state(self, position, velocity) -> None:
        """Publish measured joint positions / velocities."""
        self.states.publish(JointState(name=JOINTS, position=position, velocity=velocity))

    def call_reset(self) -> Trigger.Response:
        """Call ~/reset and wait for the answer."""
        assert self.graph.spin_until(self.reset.service_is_ready, 5.0)
        future = self.reset.call_async(Trigger.Request())
        assert self.graph.spin_until(future.done, 5.0)
        return future.result()


def make_bridge(graph, **params) -> HardwareBridge:
    """A bridge in ``graph`` with parameter overrides (fast ramp by default)."""
    params = {
        "robot": STRICT_ROBOT,
        "rate_hz": RATE_HZ,
        "timeout_ms": SLOW_TIMEOUT_MS,
        "ramp_s": 0.1,
        "wait_for_e_stop": False,
        **params,
    }
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return graph.add(HardwareBridge(context=graph.context, parameter_overrides=overrides))


def activate(graph, bridge, probe) -> None:
    """Configure + activate by hand, then wait until the probe is connected both ways."""
    assert bridge.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert bridge.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert graph.spin_until(lambda: probe.actions.get_subscription_count() > 0, 5.0)
    assert graph.spin_until(lambda: any(probe.received.values()), 5.0)


def state_id(bridge) -> int:
    """The lifecycle state id of ``bridge``."""
    return bridge._state_machine.current_state[0]


def stop_bridge(graph, bridge: HardwareBridge) -> None:
    """Close and destroy ``bridge`` as a process exit would (the safe command goes out)."""
    graph.nodes.remove(bridge)
    graph.executor.remove_node(bridge)
    bridge.close()
    bridge.destroy_node()


def spy_ticks(bridge: HardwareBridge) -> list:
    """Record (guard time, Tick) of every command the bridge makes."""
    ticks: list = []
    step = bridge.guard.step
    bridge.guard.step = lambda now, vel: ticks.append((now, step(now, vel))) or ticks[-1][1]
    return ticks


def rate_violations(ticks: list, max_rate: float, period_s: float) -> int:
    """Commands that changed faster than ``max_rate`` over the time since the last change
    (at most one period), as the guard promises."""
    count, changed = 0, None
    for k in range(1, len(ticks)):
        (now, tick), (_, before) = ticks[k], ticks[k - 1]
        credit = period_s if changed is None else min(now - changed, period_s)
        step = np.abs(tick.command - before.command)
        count += int(np.any(step > max_rate * max(credit, 0.0) + 1e-9))
        if np.any(step > 0):
            changed = now
    return count


def window_change(ticks: list, window_s: float) -> float:
    """The largest |command change| between two commands at most ``window_s`` apart."""
    times = np.array([now for now, _ in ticks])
    commands = np.array([tick.command for _, tick in ticks])
    largest = 0.0
    for k in range(len(ticks)):
        inside = commands[k : np.searchsorted(times, times[k] + window_s, side="right")]
        largest = max(largest, float(np.max(np.abs(inside - commands[k]))))
    return largest
