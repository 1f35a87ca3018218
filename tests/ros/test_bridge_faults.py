"""hardware_bridge under provoked faults (issue #13): e-stop across restarts, lifecycle cycling,
garbage joint states, rate per second, a second bridge, stale or future stamps, and a fuzz."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from lifecycle_msgs.msg import State
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from sdpg_ros.hardware_bridge import HardwareBridge
from tests.ros.bridge_probe import (
    COMMANDS,
    LIMIT,
    MAX_RATE,
    RATE_HZ,
    Probe,
    activate,
    make_bridge,
    rate_violations,
    spy_ticks,
    state_id,
    stop_bridge,
    window_change,
)

ACTIVE, INACTIVE = State.PRIMARY_STATE_ACTIVE, State.PRIMARY_STATE_INACTIVE
UNCONFIGURED = State.PRIMARY_STATE_UNCONFIGURED
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
PERIOD = 1.0 / RATE_HZ
FUZZ_ACTIONS = int(os.environ.get("SDPG_FUZZ_ACTIONS", "600"))  # per run; 2 runs


def policy_commands(probe: Probe) -> int:
    """Commands that are not the effort hold at rest (zero): the policy reached the robot."""
    return int(np.sum(np.any(np.abs(probe.commands()) > 1e-12, axis=1)))


# 1. E-stop across restarts, no self-activation ------------------------------------------------


def test_e_stop_survives_a_bridge_restart(graph):
    probe = Probe(graph)
    probe.e_stop.publish(Bool(data=True))  # the operator's e-stop says stop, and keeps saying it
    first = make_bridge(graph, autostart=True, wait_for_e_stop=True)
    assert graph.spin_until(lambda: first.latch_reason == "e_stop", 5.0)
    assert graph.spin_until(lambda: state_id(first) == ACTIVE, 5.0)
    stop_bridge(graph, first)  # the bridge process restarts; the e-stop still says true
    probe.received[COMMANDS].clear()
    second = make_bridge(graph, autostart=True, wait_for_e_stop=True)
    assert graph.spin_until(lambda: state_id(second) == ACTIVE, 5.0)
    probe.joint_state([0.0, 0.0], [0.0, 0.0])
    probe.stream([1.0, -1.0], 0.6)
    assert len(probe.commands()) >= 10 and second.counters.as_dict()["actions"] >= 10
    assert policy_commands(probe) == 0, "the restarted bridge followed the policy"
    assert second.guard.latched and second.latch_reason == "e_stop"
    assert not probe.call_reset().success  # refused while the e-stop says true
    probe.e_stop.publish(Bool(data=False))
    assert graph.spin_until(lambda: second.e_stop_input is False, 2.0)
    assert second.guard.latched  # releasing the button does not unlatch
    assert probe.call_reset().success
    assert probe.drive([1.0, -1.0], probe.reached([LIMIT, -LIMIT]))


def test_without_an_e_stop_state_the_bridge_holds_until_an_operator_reset(graph):
    probe = Probe(graph)
    bridge = make_bridge(graph, wait_for_e_stop=True)
    activate(graph, bridge, probe)
    probe.stream([1.0, -1.0], 0.5)
    assert policy_commands(probe) == 0 and bridge.latch_reason == "e_stop_unknown"
    assert probe.call_reset().success
    assert probe.drive([1.0, -1.0], probe.reached([LIMIT, -LIMIT]))


def test_a_false_e_stop_state_releases_the_start_up_hold(graph):
    probe = Probe(graph)
    probe.e_stop.publish(Bool(data=False))  # published before the bridge exists (latched)
    bridge = make_bridge(graph, wait_for_e_stop=True)
    assert graph.spin_until(lambda: bridge.e_stop_input is False, 5.0)
    assert not bridge.guard.latched
    activate(graph, bridge, probe)
    assert probe.drive([1.0, -1.0], probe.reached([LIMIT, -LIMIT]))


def test_a_volatile_e_stop_publisher_is_reported_and_the_bridge_stays_held(graph):
    probe = Probe(graph)
    volatile = probe.node.create_publisher(Bool, "/e_stop", QoSProfile(depth=10))
    bridge = make_bridge(graph, wait_for_e_stop=True)
    counts = bridge.counters.as_dict
    assert graph.spin_until(lambda: counts().get("e_stop_incompatible_qos", 0) > 0, 5.0)
    volatile.publish(Bool(data=False))
    graph.spin_for(0.3)
    assert bridge.e_stop_input is None and bridge.guard.latched


def test_no_self_activation_and_repeated_lifecycle_cycles(graph):
    probe = Probe(graph)
    bridge = make_bridge(graph)  # autostart is off by default
    graph.spin_for(1.5)
    assert state_id(bridge) == UNCONFIGURED and probe.node.count_publishers(COMMANDS) == 0
    for cycle in range(3):
        assert bridge.trigger_configure() == SUCCESS, cycle
        assert graph.spin_until(lambda: probe.actions.get_subscription_count() > 0, 5.0)
        probe.stream([0.6, 0.6], 0.1)  # inactive: received, not commanded
        assert probe.received[COMMANDS] == []
        assert bridge.trigger_activate() == SUCCESS, cycle
        assert probe.drive([0.6, 0.6], probe.reached([0.03, 0.03]))
        assert bridge.trigger_deactivate() == SUCCESS, cycle
        assert graph.spin_until(probe.reached([0.0, 0.0]), 2.0)  # the safe command, once
        count = len(probe.received[COMMANDS])
        probe.stream([0.6, 0.6], 0.1)
        assert len(probe.received[COMMANDS]) == count
        assert bridge.trigger_cleanup() == SUCCESS, cycle
        assert state_id(bridge) == UNCONFIGURED
        assert graph.spin_until(lambda: probe.node.count_publishers(COMMANDS) == 0, 5.0)
        probe.received[COMMANDS].clear()
    assert bridge.counters.as_dict()["rejected"] == 0


# 4. Garbage joint states ------------------------------------------------------------------------


def position_robot(tmp_path) -> str:
    """The reacher commanded by position (continuous shoulder, elbow within +-2.8)."""
    robot = tmp_path / "arm.yaml"
    robot.write_text(
        "name: arm\nurdf: reacher.urdf\njoints: [shoulder, elbow]\ndefault_pose: [0.0, 0.0]\n"
        "command_interface: position\ncommand_type: forward\n"
        "command_topic: effort_controller/commands\naction_scale: [1.0, 1.0]\n"
        "action_offset: [0.0, 0.0]\nmax_rate: [2.5, 2.5]\ndamping_kd: [0.0, 0.0]\n"
    )
    return str(robot)


def test_garbage_joint_states_never_become_the_ramp_start(graph, tmp_path):
    probe = Probe(graph)
    bridge = make_bridge(graph, robot=position_robot(tmp_path), ramp_s=0.0)
    assert bridge.trigger_configure() == SUCCESS
    assert graph.spin_until(lambda: probe.states.get_subscription_count() > 0, 5.0)
    garbage = [
        ([1e30, 0.3], [0.0, 0.0], "joint_state_position"),  # continuous joint, absurd
        ([0.1, 3.5], [0.0, 0.0], "joint_state_position"),  # elbow beyond 2.8 + margin
        ([float("nan"), 0.3], [0.0, 0.0], "joint_state_non_finite"),
        ([0.1, 0.3], [float("inf"), 0.0], "joint_state_non_finite"),
        ([0.1, 0.3], [60.0, 0.0], "joint_state_velocity"),  # 60 rad/s against 50 (+10%)
    ]
    for position, velocity, _ in garbage:
        probe.joint_state(position, velocity)
    counts = bridge.counters.as_dict
    assert graph.spin_until(lambda: counts()["rejected"] == len(garbage), 3.0)
    for _, _, reason in garbage:
        assert counts()[f"rejected/{reason}"] >= 1
    assert np.isnan(bridge.position).all()
    assert bridge.trigger_activate() == FAILURE  # no plausible measurement: no ramp start
    probe.joint_state([0.5, 0.3], [0.0, 0.0])
    assert graph.spin_until(lambda: not np.isnan(bridge.position).any(), 3.0)
    assert bridge.trigger_activate() == SUCCESS
    assert graph.spin_until(probe.reached([0.5, 0.3]), 3.0)  # starts where the arm is
    commands = probe.commands()
    assert np.all(np.isfinite(commands)) and np.all(np.abs(commands) < 3.0)


def test_hold_damping_ignores_implausible_velocities(graph):
    probe = Probe(graph)
    bridge = make_bridge(graph)
    activate(graph, bridge, probe)
    probe.e_stop.publish(Bool(data=True))
    assert graph.spin_until(lambda: bridge.guard.latched, 2.0)
    hold = [-0.01, 0.02]  # -0.005 * [2, -4]
    assert probe.measure([0.0, 0.0], [2.0, -4.0], probe.reached(hold))
    start = len(probe.received[COMMANDS])
    for velocity in ([1e30, 0.0], [60.0, -60.0], [float("-inf"), 0.0]):
        probe.joint_state([0.0, 0.0], velocity)
        graph.spin_for(0.05)
    assert bridge.counters.as_dict()["rejected"] == 3
    after = probe.commands()[start:]
    assert len(after) > 0 and np.all(np.abs(after) <= 0.02 + 1e-12), after


# 5. Rate limit per second -----------------------------------------------------------------------


@pytest.mark.parametrize("action_hz", [50.0, 200.0, 1000.0])
def test_rate_limit_holds_per_second_at_any_action_rate(graph, action_hz):
    probe = Probe(graph)
    bridge = make_bridge(graph, ramp_s=0.0)
    ticks = spy_ticks(bridge)
    activate(graph, bridge, probe)
    end, k = time.monotonic() + 0.4, 0
    while time.monotonic() < end:  # bang-bang actions at action_hz
        probe.send([1.0, -1.0] if k % 2 else [-1.0, 1.0])
        k += 1
        graph.spin_until(lambda: False, 1.0 / action_hz)
    assert len(ticks) >= 10
    assert rate_violations(ticks, MAX_RATE, PERIOD) == 0
    # within one 20 ms period the command moves at most two periods' worth (0.04 N·m), not the
    # full range 0.1 that per-message limiting allowed at 1 kHz
    assert window_change(ticks, PERIOD) <= 2 * MAX_RATE * PERIOD + 1e-9


# 6. Two bridges on one robot --------------------------------------------------------------------


def test_a_second_bridge_refuses_to_activate_and_the_first_holds(graph):
    probe = Probe(graph)
    first = make_bridge(graph)
    activate(graph, first, probe)
    assert probe.drive([1.0, -1.0], probe.reached([LIMIT, -LIMIT]))
    overrides = [
        Parameter(k, value=v)
        for k, v in {"robot": first.robot_name, "wait_for_e_stop": False}.items()
    ]
    second = graph.add(
        HardwareBridge(
            context=graph.context,
            parameter_overrides=overrides,
            cli_args=["--ros-args", "-r", "__node:=second_bridge"],
        )
    )
    assert second.trigger_configure() == SUCCESS
    assert graph.spin_until(lambda: probe.node.count_publishers(COMMANDS) == 2, 5.0)
    assert second.trigger_activate() == FAILURE  # loudly: the first one commands this robot
    assert state_id(second) == INACTIVE and second.counters.as_dict()["conflict"] == 1
    # the first sees the newcomer and holds (effort hold at rest: zero) until reset
    assert graph.spin_until(lambda: first.latch_reason == "conflict", 2.0)
    probe.joint_state([0.0, 0.0], [0.0, 0.0])
    assert probe.drive([1.0, -1.0], probe.reached([0.0, 0.0]))
    assert second.trigger_cleanup() == SUCCESS
    assert graph.spin_until(lambda: probe.node.count_publishers(COMMANDS) == 1, 5.0)
    assert probe.call_reset().success
    assert probe.drive([1.0, -1.0], probe.reached([LIMIT, -LIMIT]))


# 7. Stamps --------------------------------------------------------------------------------------


def test_actions_too_old_or_from_the_future_are_rejected(graph):
    probe = Probe(graph)
    bridge = make_bridge(graph)
    activate(graph, bridge, probe)
    assert probe.drive([0.2, 0.2], probe.reached([0.01, 0.01]))
    for age_s in (10.0, -3600.0, 0.5, -0.2):
        probe.send([1.0, -1.0], age_s=age_s)
    counts = bridge.counters.as_dict
    assert graph.spin_until(lambda: counts()["rejected"] == 4, 2.0)
    assert counts()["rejected/stale"] == 2 and counts()["rejected/future"] == 2
    probe.send([0.2, 0.2], age_s=0.05)  # 50 ms of camera + inference latency is fine
    graph.spin_for(0.2)
    assert counts()["rejected"] == 4
    assert np.allclose(probe.commands()[-1], [0.01, 0.01])


# The fuzz: every kind of input at once ---------------------------------------------------------


def fuzz_event(rng: np.random.Generator, probe: Probe) -> None:
    """One random input: mostly actions (some invalid), joint states (some garbage), e-stop."""
    roll = rng.random()
    if roll < 0.80:
        action = rng.uniform(-1.0, 1.0, 2)
        if rng.random() < 0.2:
            action[rng.integers(2)] = rng.choice([np.nan, np.inf, -np.inf, 1.5, -7.0, 1e300])
        probe.send(action, age_s=float(rng.choice([0.0, 0.0, 0.0, 20.0, -20.0])))
    elif roll < 0.95:
        garbage = rng.random() < 0.3
        velocity = rng.choice([np.nan, 1e30, 60.0]) if garbage else rng.uniform(-10, 10)
        probe.joint_state([float(rng.uniform(-3, 3)), 0.0], [float(velocity), 0.0])
    elif roll < 0.975:
        probe.e_stop.publish(Bool(data=bool(rng.random() < 0.5)))
    else:  # an operator reset, answered or refused, never awaited
        probe.reset.call_async(Trigger.Request())


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzzed_inputs_never_give_an_unsafe_command(graph, seed):
    probe = Probe(graph)
    bridge = make_bridge(graph, ramp_s=0.05)
    ticks = spy_ticks(bridge)
    activate(graph, bridge, probe)
    rng = np.random.default_rng(seed)
    for _ in range(FUZZ_ACTIONS):
        fuzz_event(rng, probe)
        graph.spin_until(lambda: False, float(rng.choice([0.0, 0.001, 0.005, 0.02])))
    graph.spin_for(0.2)
    commands = np.array([tick.command for _, tick in ticks])
    non_finite = int(np.sum(~np.isfinite(commands).all(axis=1)))
    outside = int(np.sum(np.any(np.abs(commands) > LIMIT + 1e-12, axis=1)))
    too_fast = rate_violations(ticks, MAX_RATE, PERIOD)
    counts = bridge.counters.as_dict()
    print(
        f"fuzz seed {seed}: {FUZZ_ACTIONS} inputs, {len(commands)} commands, non-finite "
        f"{non_finite}, outside limits {outside}, above max rate {too_fast}; counters {counts}"
    )
    assert len(commands) > 50 and counts["rejected"] > 0
    assert non_finite == outside == too_fast == 0
    assert len(probe.commands()) > 0 and np.all(np.isfinite(probe.commands()))
