"""hardware_bridge on a real rclpy graph: limits, watchdog, e-stop, rejects, dry run, lifecycle."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import State
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from sdpg_core.robot import load_robot
from sdpg_ros.common import ParameterError
from tests.ros.bridge_probe import (
    COMMANDS,
    DRY_RUN,
    JOINTS,
    LIMIT,
    MAX_STEP,
    RATE_HZ,
    Probe,
    activate,
    make_bridge,
    state_id,
)


def test_commands_within_limits_and_latency_recorded(graph):
    bridge = make_bridge(graph, autostart=True)
    probe = Probe(graph)
    assert graph.spin_until(lambda: state_id(bridge) == State.PRIMARY_STATE_ACTIVE, 5.0)
    assert graph.spin_until(lambda: probe.actions.get_subscription_count() > 0, 5.0)
    rng = np.random.default_rng(0)
    for _ in range(60):  # bang-bang and random actions, faster than the bridge rate
        probe.send(rng.choice([-1.0, 1.0], 2) if rng.random() < 0.5 else rng.uniform(-1, 1, 2))
        graph.spin_for(0.01)
    assert graph.spin_until(lambda: bridge.counters.as_dict()["actions"] == 60, 3.0)
    commands = probe.commands()
    assert len(commands) >= 10
    assert np.all(np.abs(commands) <= LIMIT + 1e-12)
    assert np.all(np.abs(np.diff(commands, axis=0)) <= MAX_STEP + 1e-12)
    assert np.abs(commands).max() > 0.04  # the policy does reach the robot
    counts = bridge.counters.as_dict()
    assert counts["rejected"] == 0 and counts["commands"] >= len(commands)
    assert len(bridge.latencies_ms) >= 10
    assert min(bridge.latencies_ms) >= 0.0 and max(bridge.latencies_ms) < 1000.0


def test_watchdog_fires_within_timeout_plus_one_tick(graph):
    timeout_s = 0.1
    bridge = make_bridge(graph, autostart=False, timeout_ms=timeout_s * 1e3)
    probe = Probe(graph)
    ticks: list = []  # (node time of the tick, Tick), spied from the guard
    step = bridge.guard.step
    bridge.guard.step = lambda now, vel: ticks.append((now, step(now, vel))) or ticks[-1][1]
    activate(graph, bridge, probe)
    probe.joint_state([0.0, 0.0], [2.0, -4.0])  # damping hold: -0.005 * v = [-0.01, 0.02]
    probe.stream([0.8, 0.8], 0.3)
    assert probe.commands()[-1] == pytest.approx([0.04, 0.04])
    assert graph.spin_until(lambda: bridge.counters.as_dict()["watchdog"] >= 1, 2.0)
    deadline = bridge.guard.action_time + timeout_s
    k = next(i for i, (_, tick) in enumerate(ticks) if tick.watchdog)
    # fires on the first tick after the deadline, so within timeout + one tick period ...
    assert ticks[k - 1][0] <= deadline < ticks[k][0]
    assert graph.spin_until(lambda: len(ticks) > k + 10, 2.0)
    # after the last action only the timer commands: its period is the tick
    intervals = np.diff([now for now, _ in ticks if now > bridge.guard.action_time])
    assert np.median(intervals) == pytest.approx(1 / RATE_HZ, rel=0.15)
    # ... and, allowing for executor stalls on a loaded machine, well under 2 timeouts
    assert ticks[k][0] - deadline <= 1 / RATE_HZ + 0.08
    # damping of the measured velocity (fresh: published now), via the rate limit
    assert probe.measure([0.0, 0.0], [2.0, -4.0], probe.reached([-0.01, 0.02]))
    # a stale velocity (none for longer than the timeout) damps nothing
    assert graph.spin_until(probe.reached([0.0, 0.0]), 2.0)
    assert bridge.counters.as_dict()["watchdog"] == 1  # one event per timeout, not per tick
    assert bridge.mode == "watchdog"


def test_e_stop_latches_and_reset_clears(graph):
    bridge = make_bridge(graph, autostart=False)
    probe = Probe(graph)
    activate(graph, bridge, probe)
    probe.joint_state([0.0, 0.0], [0.0, 0.0])  # at rest: the effort hold is zero torque
    assert probe.drive([1.0, -1.0], probe.reached([0.05, -0.05]))
    probe.e_stop.publish(Bool(data=True))
    assert graph.spin_until(lambda: bridge.counters.as_dict()["e_stop"] == 1, 2.0)
    probe.e_stop.publish(Bool(data=False))  # releasing the button does not unlatch
    assert probe.drive([1.0, -1.0], probe.reached([0.0, 0.0]))  # fresh actions keep coming
    probe.stream([1.0, -1.0], 0.2)
    assert bridge.mode == "e_stop" and bridge.guard.latched
    assert probe.commands()[-1] == pytest.approx([0.0, 0.0])
    probe.e_stop.publish(Bool(data=True))
    assert graph.spin_until(lambda: bridge.e_stop_input, 2.0)
    assert not probe.call_reset().success  # refused while e_stop is still true
    probe.e_stop.publish(Bool(data=False))
    assert graph.spin_until(lambda: not bridge.e_stop_input, 2.0)
    assert probe.call_reset().success
    assert probe.drive([1.0, -1.0], probe.reached([0.05, -0.05]))
    assert not bridge.guard.latched and bridge.mode == "policy"
    assert bridge.counters.as_dict()["e_stop"] == 1  # the second true found it latched
    response = probe.call_reset()  # nothing latched: a no-op
    assert response.success and response.message == "e-stop was not latched"


def test_nan_and_bad_names_rejected_and_counted(graph):
    bridge = make_bridge(graph, autostart=False)
    probe = Probe(graph)
    activate(graph, bridge, probe)
    assert probe.drive([0.4, -0.4], probe.reached([0.02, -0.02]))
    for _ in range(3):
        probe.send([float("nan"), 0.0])
        probe.send([float("inf"), 0.0])
        probe.send([0.1, 0.1], names=["shoulder", "wrist"])
        probe.send([0.1], names=["shoulder"])
        probe.send([0.1, 0.2], names=["elbow", "shoulder"])  # valid, reordered
        graph.spin_for(0.02)
    graph.spin_until(lambda: bridge.counters.as_dict()["rejected"] == 12, 2.0)
    counts = bridge.counters.as_dict()
    assert counts["rejected"] == 12, counts
    assert counts["rejected/non_finite"] == 6 and counts["rejected/names"] == 6
    assert graph.spin_until(probe.reached([0.2 * 0.05, 0.1 * 0.05]), 2.0)  # shoulder 0.2
    assert np.all(np.isfinite(probe.commands()))


def test_dry_run_publishes_on_the_dry_run_topic_only(graph):
    bridge = make_bridge(graph, dry_run=True, autostart=False)
    probe = Probe(graph, topics=(COMMANDS, DRY_RUN))
    activate(graph, bridge, probe)
    assert probe.drive([0.5, 0.5], probe.reached([0.025, 0.025], DRY_RUN))
    assert probe.received[COMMANDS] == []
    assert probe.node.count_publishers(COMMANDS) == 0
    assert probe.node.count_publishers(DRY_RUN) == 1


def test_lifecycle_no_commands_before_activation_and_safe_state_after(graph):
    bridge = make_bridge(graph, autostart=False)
    probe = Probe(graph)
    probe.stream([0.6, 0.6], 0.3)  # unconfigured: nobody listens, nothing is commanded
    assert probe.node.count_publishers(COMMANDS) == 0
    assert bridge.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert graph.spin_until(lambda: probe.actions.get_subscription_count() > 0, 5.0)
    assert graph.spin_until(lambda: probe.node.count_publishers(COMMANDS) == 1, 5.0)
    probe.stream([0.6, 0.6], 0.3)  # inactive: actions are received but not commanded
    assert bridge.counters.as_dict()["actions"] > 0
    assert probe.received[COMMANDS] == [] and bridge.counters.as_dict()["commands"] == 0
    assert bridge.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert probe.drive([0.6, 0.6], probe.reached([0.03, 0.03]))
    assert bridge.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert graph.spin_until(probe.reached([0.0, 0.0]), 2.0)  # the safe state, published once
    count = len(probe.received[COMMANDS])
    probe.stream([0.6, 0.6], 0.3)
    assert len(probe.received[COMMANDS]) == count  # stopped
    assert bridge.counters.as_dict()["commands"] == count


def test_position_trajectory_needs_joint_states_and_stamps_the_image(graph, tmp_path):
    robot = tmp_path / "arm.yaml"
    robot.write_text(
        "name: arm\nurdf: reacher.urdf\njoints: [shoulder, elbow]\ndefault_pose: [0.0, 0.0]\n"
        "command_interface: position\ncommand_type: trajectory\n"
        "command_topic: arm_controller/joint_trajectory\naction_scale: [1.0, 4.0]\n"
        "action_offset: [0.0, 0.0]\nmax_rate: [2.5, 2.5]\ndamping_kd: [0.0, 0.0]\n"
    )
    bridge = make_bridge(graph, robot=str(robot), autostart=False, ramp_s=0.0, timeout_ms=400.0)
    topic = "/arm_controller/joint_trajectory"
    probe = Probe(graph, topics=(topic,), msg_type=JointTrajectory)
    received = probe.received[topic]
    assert bridge.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert bridge.trigger_activate() == TransitionCallbackReturn.FAILURE  # no joint_states yet
    assert state_id(bridge) == State.PRIMARY_STATE_INACTIVE
    assert graph.spin_until(lambda: probe.states.get_subscription_count() > 0, 5.0)
    probe.joint_state([0.5, 2.7], [0.0, 0.0])
    assert graph.spin_until(lambda: not np.isnan(bridge.position).any(), 5.0)
    assert bridge.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert graph.spin_until(lambda: len(received) > 0, 5.0)
    assert received[0].joint_names == JOINTS
    assert received[0].points[0].positions == pytest.approx([0.5, 2.7])  # from the measured pose
    assert graph.spin_until(lambda: probe.actions.get_subscription_count() > 0, 5.0)
    stamp = probe.send([0.6, 0.9])  # elbow 3.6 is beyond the URDF limit 2.8

    def stamp_ns(msg):
        return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

    def settled():
        return (
            np.allclose(received[-1].points[0].positions, [0.6, 2.8])
            and stamp_ns(received[-1]) == stamp
        )  # 0.5 -> 0.6 at 0.05 per tick; elbow clamped

    assert graph.spin_until(settled, 2.0)
    ahead = received[-1].points[0].time_from_start
    assert ahead.sec * 10**9 + ahead.nanosec >= 10**9 / RATE_HZ  # due one tick after publish
    assert graph.spin_until(lambda: bridge.counters.as_dict()["watchdog"] == 1, 2.0)
    graph.spin_for(0.1)
    assert {stamp_ns(m) for m in received} == {0, stamp}  # holds start "now"
    assert stamp_ns(received[-1]) == 0  # watchdog: keep the last position target
    assert received[-1].points[0].positions == pytest.approx([0.6, 2.8])
    steps = np.diff([m.points[0].positions for m in received], axis=0)
    assert np.all(np.abs(steps) <= 0.05 + 1e-12)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"rate_hz": 0.0}, "rate_hz"),
        ({"rate_hz": 50}, "rate_hz"),  # an integer for a double parameter
        ({"timeout_ms": -1.0}, "timeout_ms"),
        ({"ramp_s": float("nan")}, "ramp_s"),
        ({"robot": "no_such_robot"}, "robot"),
        ({"urdf": "/nonexistent.urdf"}, "urdf"),
        ({"robot_description": "<robot name='x'/>"}, "robot_description"),
        ({"dry_run_topic": "bad topic"}, "dry_run_topic"),
    ],
)
def test_invalid_parameters_are_named(graph, params, name):
    with pytest.raises(ParameterError, match=rf"parameter '{name}'"):
        make_bridge(graph, **params)


def test_each_action_is_commanded_without_waiting_for_a_tick(graph):
    bridge = make_bridge(graph, autostart=False, rate_hz=0.5, ramp_s=0.0)
    probe = Probe(graph)
    activate(graph, bridge, probe)
    before = bridge.counters.as_dict()["commands"]
    for value in (0.2, -0.2, 0.4):  # each change (<= 0.001) within 20 ms of rate (0.02)
        time.sleep(0.02)
        probe.send([value / 20, value / 20])
        expected = [value / 20 * 0.05, value / 20 * 0.05]
        assert graph.spin_until(probe.reached(expected), 1.0)  # the timer period is 2 s
    assert bridge.counters.as_dict()["commands"] - before == 3
    assert len(bridge.latencies_ms) == 3


def test_a_legged_robot_stands_up_before_the_policy_and_holds_on_e_stop(graph, tmp_path):
    """go2.yaml (stand-up shortened to 0.5 s + 0.2 s hold): no command before joint states,
    then from the measured lying pose to the standing pose at most max_rate per tick, held,
    and only then the policy's targets; an e-stop holds the last target (position interface)."""
    text = (Path(__file__).parents[2] / "config" / "robots" / "go2.yaml").read_text()
    robot = tmp_path / "go2_fast.yaml"
    robot.write_text(
        text.replace("name: go2", "name: go2_fast")
        .replace("stand_s: 3.0", "stand_s: 0.5")
        .replace("stand_hold_s: 1.0", "stand_hold_s: 0.2")
    )
    config = load_robot(str(robot))
    joints, stand = list(config.joints), np.array(config.default_pose)
    topic = "/forward_position_controller/commands"
    bridge = make_bridge(graph, robot=str(robot), autostart=True, ramp_s=0.0)
    probe = Probe(graph, topics=(topic,))
    received = probe.received[topic]
    graph.spin_for(1.5)  # autostart retries: nothing is commanded without joint states
    assert received == [] and state_id(bridge) != State.PRIMARY_STATE_ACTIVE
    lying = np.tile([0.0, 1.36, -2.65], 4)  # SDPG's hardware rest pose

    def measure() -> None:
        probe.states.publish(JointState(name=joints, position=lying.tolist(), velocity=[0.0] * 12))

    def stood() -> bool:
        measure()
        return len(received) > 0 and np.allclose(received[-1].data, stand, atol=1e-9)

    assert graph.spin_until(stood, 5.0)
    commands = np.array([m.data for m in received])
    np.testing.assert_allclose(commands[0], lying)  # from the measured pose
    step = max(config.max_rate) / RATE_HZ
    assert np.all(np.abs(np.diff(commands, axis=0)) <= step + 1e-9)
    action = np.full(12, 0.2)
    probe.send(action, names=joints)
    graph.spin_for(0.05)
    assert np.allclose(received[-1].data, stand, atol=1e-9)  # still holding the stand pose
    target = stand + 0.5 * action
    assert _drive(probe, graph, joints, action, received, target)
    probe.e_stop.publish(Bool(data=True))
    assert graph.spin_until(lambda: bridge.mode == "e_stop", 2.0)
    held = list(received[-1].data)
    for _ in range(5):
        probe.send(-action, names=joints)
        graph.spin_for(0.02)
    assert np.allclose(received[-1].data, held)


def _drive(probe, graph, joints, action, received, target) -> bool:
    """Send ``action`` every 20 ms until the last command equals ``target`` (5 s at most)."""
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        probe.send(action, names=joints)
        graph.spin_for(0.02)
        if received and np.allclose(received[-1].data, target, atol=1e-9):
            return True
    return False
