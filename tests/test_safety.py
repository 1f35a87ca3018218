"""Command safety: hand-worked numbers and property tests (limits, rate, ramp, e-stop, hold)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdpg_core.robot import JointLimits, load_robot
from sdpg_core.safety import (
    CommandGuard,
    Limits,
    StandUp,
    action_to_command,
    command_bounds,
    final_command,
    hold_target,
    limit,
    make_guard,
    measured_bounds,
    measured_by_name,
    measurement_error,
    ramp_weight,
    rate_limit,
    reorder,
    validate_action,
)

INF = math.inf
EPS = 1e-9


def vec(*values):
    return np.array(values, dtype=np.float64)


PERIOD = 0.1  # guard_1d's period: ticks 0.1 s apart may move delta each


def guard_1d(interface="position", ramp_s=1.0, timeout_s=10.0, kd=0.01, bound=1.0, delta=0.1):
    """One joint, bounds +-bound, scale 1, offset 0, rate ``delta`` per PERIOD."""
    limits = Limits(vec(-bound), vec(bound), vec(delta / PERIOD))
    return CommandGuard(interface, limits, vec(1.0), vec(0.0), vec(kd), ramp_s, timeout_s, PERIOD)


# Pure functions, hand-worked -------------------------------------------------------------------


def test_command_bounds_per_interface():
    joints = [JointLimits(-INF, INF, 0.05, 20.0), JointLimits(-2.8, 2.8, 0.05, 20.0)]
    low, high = command_bounds("position", joints)
    assert low.tolist() == [-INF, -2.8] and high.tolist() == [INF, 2.8]
    low, high = command_bounds("velocity", joints)
    assert low.tolist() == [-20.0, -20.0] and high.tolist() == [20.0, 20.0]
    low, high = command_bounds("effort", joints)
    assert low.tolist() == [-0.05, -0.05] and high.tolist() == [0.05, 0.05]


def test_command_bounds_need_finite_effort_limit():
    with pytest.raises(ValueError, match="finite URDF effort limit"):
        command_bounds("effort", [JointLimits(-1.0, 1.0, INF, 1.0)])


def test_action_to_command():
    np.testing.assert_allclose(
        action_to_command(vec(0.5, -1.0), vec(2.0, 1.0), vec(0.1, -0.2)), [1.1, -1.2]
    )


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (vec(1.0, -1.0), None),
        (vec(0.0), "shape"),
        (vec(0.0, np.nan), "non_finite"),
        (vec(np.inf, 0.0), "non_finite"),
        (vec(1.5, 0.0), "out_of_range"),
    ],
)
def test_validate_action(action, reason):
    assert validate_action(action, 2) == reason


def test_reorder_by_name():
    values, reason = reorder(["elbow", "shoulder"], [0.2, -0.1], ("shoulder", "elbow"))
    assert reason == "" and values.tolist() == [-0.1, 0.2]


@pytest.mark.parametrize(
    ("names", "values", "reason"),
    [
        (["shoulder"], [0.1], "names"),  # missing
        (["shoulder", "wrist"], [0.1, 0.2], "names"),  # unknown
        (["shoulder", "shoulder"], [0.1, 0.2], "names"),  # duplicate
        (["shoulder", "elbow", "wrist"], [0.1, 0.2, 0.3], "names"),  # extra
        (["shoulder", "elbow"], [0.1], "length"),
    ],
)
def test_reorder_rejects(names, values, reason):
    assert reorder(names, values, ("shoulder", "elbow")) == (None, reason)


def test_measured_by_name_partial():
    out, present = measured_by_name(["gripper", "elbow"], [9.0, 0.3], ("shoulder", "elbow"))
    assert np.isnan(out[0]) and out[1] == 0.3
    assert present.tolist() == [False, True]
    # a JointState without velocities has none present
    out, present = measured_by_name(["elbow"], [], ("elbow",))
    assert np.isnan(out[0]) and not present.any()


REACHER = [JointLimits(-INF, INF, 0.05, 20.0), JointLimits(-2.8, 2.8, 0.05, 20.0)]


@pytest.mark.parametrize(
    ("position", "velocity", "reason"),
    [
        ((1e6, 2.85), (-21.9, 21.9), None),  # continuous joint; elbow within the 0.1 margin
        ((1e30, 0.0), (0.0, 0.0), None),  # a continuous joint has no position bound ...
        ((np.inf, 0.0), (0.0, 0.0), "joint_state_non_finite"),  # ... but must be finite
        ((0.0, np.nan), (0.0, 0.0), "joint_state_non_finite"),
        ((0.0, 0.0), (0.0, 1e30), "joint_state_velocity"),
        ((0.0, 0.0), (25.0, 0.0), "joint_state_velocity"),  # 25 rad/s against a 20 limit
        ((0.0, 2.95), (0.0, 0.0), "joint_state_position"),  # 2.8 + 0.1 margin exceeded
        ((0.0, -3.0), (0.0, 0.0), "joint_state_position"),
    ],
)
def test_measurement_error(position, velocity, reason):
    bounds = measured_bounds(REACHER, position_margin=0.1, velocity_margin=0.1)
    both = np.ones(2, dtype=bool)
    assert measurement_error(vec(*position), both, vec(*velocity), both, bounds) == reason


def test_measurement_error_checks_present_values_only():
    bounds = measured_bounds(REACHER, position_margin=0.1, velocity_margin=0.1)
    present, absent = np.array([False, True]), np.zeros(2, dtype=bool)
    position, velocity = vec(np.nan, 0.5), vec(np.nan, np.nan)
    assert measurement_error(position, present, velocity, absent, bounds) is None


def test_rate_limit_and_limit():
    np.testing.assert_allclose(
        rate_limit(vec(1.0, -1.0, 0.05), vec(0, 0, 0), vec(0.3, 0.5, 0.1)), [0.3, -0.5, 0.05]
    )
    limits = Limits(vec(-1.0), vec(0.5), vec(2.0))  # 2 per second
    np.testing.assert_allclose(limit(vec(3.0), vec(0.4), limits, 0.1), [0.5])  # clamp wins
    np.testing.assert_allclose(limit(vec(-3.0), vec(0.4), limits, 0.1), [0.2])  # then rate
    np.testing.assert_allclose(limit(vec(-3.0), vec(0.4), limits, 0.001), [0.398])


def test_ramp_weight():
    assert ramp_weight(0.0, 2.0) == 0.0
    assert ramp_weight(0.5, 2.0) == 0.25
    assert ramp_weight(3.0, 2.0) == 1.0
    assert ramp_weight(-1.0, 2.0) == 0.0
    assert ramp_weight(0.0, 0.0) == 1.0


def test_hold_targets():
    last, velocity, kd = vec(0.3, -0.2), vec(2.0, np.nan), vec(0.01, 0.01)
    np.testing.assert_array_equal(hold_target("position", last, velocity, kd), [0.3, -0.2])
    np.testing.assert_array_equal(hold_target("velocity", last, velocity, kd), [0.0, 0.0])
    np.testing.assert_allclose(hold_target("effort", last, velocity, kd), [-0.02, 0.0])
    fast = vec(1e30, -25.0)  # a garbage reading cannot demand more than kd * the URDF speed
    np.testing.assert_allclose(hold_target("effort", last, fast, kd, vec(20.0, 20.0)), [-0.2, 0.2])
    np.testing.assert_array_equal(final_command("position", last), [0.3, -0.2])
    np.testing.assert_array_equal(final_command("effort", last), [0.0, 0.0])


# CommandGuard, hand-worked ---------------------------------------------------------------------


def test_position_ramp_from_measured_to_policy():
    guard = guard_1d()  # ramp 1 s, 1.0 per s, 10 Hz ticks: 0.1 per tick is never throttled
    assert guard.start(vec(0.5)).tolist() == [0.5]
    assert guard.accept(vec(-0.5), 0.0) is None
    commands, modes = [], []
    for k in range(12):
        tick = guard.step(0.1 * k, vec(0.0))
        commands.append(tick.command[0])
        modes.append(tick.mode)
    expected = [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4, -0.5, -0.5]
    np.testing.assert_allclose(commands, expected, atol=1e-12)
    assert modes[:10] == ["ramp"] * 10 and modes[10:] == ["policy"] * 2


def test_rate_limit_throttles_a_fast_ramp():
    guard = guard_1d(ramp_s=0.0, delta=0.25)
    guard.start(vec(0.0))
    guard.accept(vec(1.0), 0.0)
    commands = [guard.step(0.1 * k, vec(0.0)).command[0] for k in range(5)]
    np.testing.assert_allclose(commands, [0.25, 0.5, 0.75, 1.0, 1.0])


@pytest.mark.parametrize("rate_hz", [10.0, 50.0, 200.0, 1000.0])
def test_rate_limit_is_per_second_at_any_action_rate(rate_hz):
    guard = guard_1d(ramp_s=0.0, delta=0.25)  # 2.5 per second
    guard.start(vec(-1.0))
    times = np.arange(0.0, 0.4, 1.0 / rate_hz)
    commands = []
    for k, t in enumerate(times):  # bang-bang actions as fast as they come
        guard.accept(vec(1.0 if k % 2 == 0 or t > 0.2 else -1.0), t)
        commands.append(guard.step(t, vec(0.0)).command[0])
    allowed = 2.5 * (times[-1] + PERIOD)  # the first command may use one period
    assert abs(commands[-1] - (-1.0)) <= allowed + EPS
    gaps = np.diff(np.concatenate([[-PERIOD], times]))
    assert np.all(np.abs(np.diff(np.concatenate([[-1.0], commands]))) <= 2.5 * gaps + EPS)


def test_a_repeated_command_does_not_use_up_the_next_change():
    guard = guard_1d(ramp_s=0.0, delta=0.2)  # 2 per second, period 0.1
    guard.start(vec(0.0))
    guard.accept(vec(0.0), 0.0)
    assert guard.step(0.0, vec(0.0)).command[0] == 0.0
    assert guard.step(0.095, vec(0.0)).command[0] == 0.0  # a tick repeating the command
    guard.accept(vec(1.0), 0.1)  # 0.1 s after the last change: 0.2 may move at once
    assert guard.step(0.1, vec(0.0)).command[0] == pytest.approx(0.2)
    guard.accept(vec(-1.0), 0.101)  # 1 ms later: 2 mm of travel
    assert guard.step(0.101, vec(0.0)).command[0] == pytest.approx(0.198)


def test_waiting_before_first_action_holds():
    guard = guard_1d()
    guard.start(vec(0.3))
    tick = guard.step(0.0, vec(0.0))
    assert (tick.mode, tick.command.tolist(), tick.watchdog) == ("waiting", [0.3], False)


def test_watchdog_fires_once_and_holds_last_target():
    guard = guard_1d(ramp_s=0.0, timeout_s=0.25)
    guard.start(vec(0.0))
    guard.accept(vec(0.05), 0.0)
    ticks = [guard.step(t, vec(0.0)) for t in (0.1, 0.2, 0.3, 0.4)]
    assert [t.mode for t in ticks] == ["policy", "policy", "watchdog", "watchdog"]
    assert [t.watchdog for t in ticks] == [False, False, True, False]
    assert [t.command[0] for t in ticks] == pytest.approx([0.05] * 4)
    assert [t.new_action for t in ticks] == [True, False, False, False]


def test_recovery_after_watchdog_ramps_from_the_held_command():
    guard = guard_1d(ramp_s=1.0, timeout_s=0.15, delta=1.0)
    guard.start(vec(0.0))
    for t in (0.0, 0.1):
        guard.accept(vec(0.8), t)
        guard.step(t, vec(0.0))  # ramp: 0.0, then 0.08
    held = guard.step(1.0, vec(0.0))
    assert (held.mode, held.watchdog, held.command[0]) == ("watchdog", True, pytest.approx(0.08))
    resumed = []
    for t in (1.0, 1.5, 2.0):
        guard.accept(vec(-0.8), t)
        resumed.append(guard.step(t, vec(0.0)))
    assert [t.mode for t in resumed] == ["ramp", "ramp", "policy"]
    assert [t.command[0] for t in resumed] == pytest.approx([0.08, 0.08 + 0.5 * -0.88, -0.8])


def test_clock_jumping_back_is_stale():
    guard = guard_1d(ramp_s=0.0, timeout_s=0.25)
    guard.start(vec(0.0))
    guard.accept(vec(0.05), 100.0)
    assert guard.step(100.0, vec(0.0)).mode == "policy"
    assert guard.step(3.0, vec(0.0)).mode == "watchdog"  # e.g. the simulation was reset


def test_velocity_hold_decays_to_zero_at_max_rate():
    guard = guard_1d("velocity", ramp_s=0.0, timeout_s=0.5, delta=0.2)
    guard.start(vec(np.nan))  # velocity/effort interfaces start from zero, no measurement needed
    guard.accept(vec(0.5), 0.0)
    commands = [guard.step(0.1 * k, vec(0.0)).command[0] for k in range(3)]
    assert commands == pytest.approx([0.2, 0.4, 0.5])
    held = [guard.step(1.0 + 0.1 * k, vec(0.0)).command[0] for k in range(4)]
    assert held == pytest.approx([0.3, 0.1, 0.0, 0.0])


def test_effort_hold_damps_measured_velocity():
    guard = guard_1d("effort", kd=0.01, bound=0.05, delta=0.05)
    guard.start(vec(np.nan))
    assert guard.step(0.0, vec(2.0)).command.tolist() == pytest.approx([-0.02])
    assert guard.step(0.1, vec(-10.0)).command.tolist() == pytest.approx([0.03])  # rate-limited
    assert guard.step(0.2, vec(-10.0)).command.tolist() == pytest.approx([0.05])  # clamped
    assert guard.step(0.3, vec(np.nan)).command.tolist() == pytest.approx([0.0])  # unknown: 0


def test_e_stop_latches_until_reset_then_ramps_from_measured():
    guard = guard_1d(ramp_s=1.0, timeout_s=0.5, delta=1.0)
    guard.start(vec(0.0))
    for t in (0.0, 0.5):
        guard.accept(vec(0.4), t)
        before = guard.step(t, vec(0.0)).command[0]
    assert before == pytest.approx(0.2)  # half-way through the ramp
    assert guard.trip() is True
    assert guard.trip() is False  # already latched
    for t in (1.0, 2.0, 3.0):  # fresh actions do not matter while latched
        guard.accept(vec(-1.0), t)
        tick = guard.step(t, vec(0.0))
        assert (tick.mode, tick.command[0]) == ("e_stop", pytest.approx(before))
    guard.reset(vec(-0.3))  # the arm drooped to -0.3: the next ramp starts there
    stale = guard.step(9.0, vec(0.0))
    assert (stale.mode, stale.command[0]) == ("watchdog", pytest.approx(before))
    ramp = []
    for t in (10.0, 10.5, 11.0):
        guard.accept(vec(-1.0), t)
        ramp.append(guard.step(t, vec(0.0)).command[0])
    assert ramp == pytest.approx([-0.3, -0.65, -1.0])


def test_position_needs_measurement():
    guard = guard_1d()
    with pytest.raises(ValueError, match="measured position"):
        guard.start(vec(np.nan))
    guard.start(vec(0.0))
    guard.trip()
    with pytest.raises(ValueError, match="measured position"):
        guard.reset(vec(np.inf))
    assert guard.latched


def test_start_clamps_measured_outside_limits():
    guard = guard_1d(bound=1.0)
    assert guard.start(vec(1.3)).tolist() == [1.0]


def test_rejected_action_changes_nothing():
    guard = guard_1d(ramp_s=0.0)
    guard.start(vec(0.0))
    guard.accept(vec(0.05), 0.0)
    assert guard.accept(vec(np.nan), 0.05) == "non_finite"
    assert guard.accept(vec(2.0), 0.05) == "out_of_range"
    tick = guard.step(0.05, vec(0.0))
    assert tick.command.tolist() == pytest.approx([0.05])


def test_make_guard_for_reacher():
    robot = load_robot("reacher")
    joints = [JointLimits(-INF, INF, 0.05, 20.0), JointLimits(-2.8, 2.8, 0.05, 20.0)]
    guard = make_guard(robot, joints, ramp_s=0.0, timeout_s=0.1, period_s=0.02)
    guard.start(vec(0.0, 0.0))
    guard.accept(vec(0.5, -1.0), 0.0)
    assert guard.step(0.0, vec(0.0, 0.0)).command == pytest.approx([0.025, -0.05])


# Properties ------------------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False)
anything = st.one_of(st.floats(-1, 1), st.floats(-5, 5), st.sampled_from([np.nan, np.inf, -np.inf]))


@st.composite
def guards(draw, standing=False):
    """A random guard (interface, limits, gains; with ``standing`` maybe a staged start) and its
    joint count."""
    n = draw(st.integers(1, 3))
    interface = draw(st.sampled_from(["position", "velocity", "effort"]))
    joints = []
    for _ in range(n):
        lower = draw(st.one_of(st.just(-INF), st.floats(-3, 1)))
        upper = INF if lower == -INF else lower + draw(st.floats(0.01, 3))
        joints.append(JointLimits(lower, upper, draw(st.floats(0.01, 5)), draw(st.floats(0.01, 5))))
    low, high = command_bounds(interface, joints)

    def floats(lo, hi):
        return np.array(draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n)))

    limits = Limits(low, high, floats(0.1, 10.0), floats(0.01, 5))
    stand = None  # a staged start (position robots), the pose maybe outside the limits
    if standing and interface == "position" and draw(st.booleans()):
        stand = StandUp(floats(-4, 4), draw(st.floats(0, 1)), draw(st.floats(0, 0.5)))
    guard = CommandGuard(
        interface, limits, floats(-3, 3), floats(-3, 3), floats(0, 2),
        draw(st.floats(0, 1)), draw(st.floats(0.01, 0.5)), draw(st.floats(0.001, 0.1)),
        False, stand,
    )  # fmt: skip
    return guard, n


def events(n):
    """Actions (incl. NaN/inf/out of range), ticks, e-stop trips and resets."""
    vector = st.lists(anything, min_size=n, max_size=n).map(np.array)
    return st.lists(
        st.one_of(
            st.tuples(st.just("action"), vector),
            st.tuples(st.just("tick"), st.floats(0, 0.3), vector),
            st.tuples(st.just("trip")),
            st.tuples(st.just("reset"), vector),
        ),
        max_size=60,
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_commands_stay_within_limits_and_rate(data):
    guard, n = data.draw(guards(standing=True))
    previous = guard.start(np.array(data.draw(st.lists(finite, min_size=n, max_size=n))))
    assert np.all(previous >= guard.limits.low) and np.all(previous <= guard.limits.high)
    now, changed = 0.0, -guard.period_s  # the first command may use one period
    for event in data.draw(events(n)):
        if event[0] == "action":
            reason = guard.accept(event[1], now)
            assert (reason is None) == bool(np.all(np.abs(event[1]) <= 1))
        elif event[0] == "trip":
            guard.trip()
        elif event[0] == "reset":
            try:
                guard.reset(event[1])
            except ValueError:
                assert guard.interface == "position" and not np.all(np.isfinite(event[1]))
        else:
            now += event[1]
            command = guard.step(now, event[2]).command
            assert np.all(np.isfinite(command))
            assert np.all(command >= guard.limits.low) and np.all(command <= guard.limits.high)
            credit = min(now - changed, guard.period_s)  # time since the last change
            assert np.all(np.abs(command - previous) <= guard.limits.max_rate * credit + EPS)
            if np.any(command != previous):
                changed = now
            previous = command
    final = guard.final()
    assert np.all(final >= guard.limits.low) and np.all(final <= guard.limits.high)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_ramp_reaches_the_policy(data):
    guard, n = data.draw(guards())
    measured = np.array(data.draw(st.lists(finite, min_size=n, max_size=n)))
    action = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
    start = guard.start(measured)
    policy = np.clip(guard.offset + guard.scale * action, guard.limits.low, guard.limits.high)
    dt = 0.02
    distance = np.max(np.abs(policy - start) / (guard.limits.max_rate * min(dt, guard.period_s)))
    ticks = math.ceil(guard.ramp_s / dt) + math.ceil(distance) + 2
    for k in range(ticks):
        guard.accept(action, k * dt)
        tick = guard.step(k * dt, np.zeros(n))
    assert tick.mode == "policy"
    np.testing.assert_allclose(tick.command, policy, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_e_stop_ignores_actions_until_reset(data):
    guard, n = data.draw(guards())
    measured = np.array(data.draw(st.lists(finite, min_size=n, max_size=n)))
    quiet = CommandGuard(
        guard.interface, guard.limits, guard.scale, guard.offset, guard.kd, guard.ramp_s,
        guard.timeout_s, guard.period_s,
    )  # fmt: skip
    for g in (guard, quiet):
        g.start(measured)
        g.trip()
    now = 0.0
    for event in data.draw(events(n)):
        if event[0] == "action":
            guard.accept(event[1], now)  # only one of the two sees actions
        elif event[0] == "tick":
            now += event[1]
            a, b = guard.step(now, event[2]), quiet.step(now, event[2])
            assert a.mode == b.mode == "e_stop"
            np.testing.assert_array_equal(a.command, b.command)


def delta_guard_1d(timeout_s=0.25):
    """One position joint in +-1, delta actions of 0.1 per action, no ramp, fast rate limit."""
    limits = Limits(vec(-1.0), vec(1.0), vec(100.0))
    return CommandGuard(
        "position", limits, vec(0.1), vec(0.0), vec(0.0), 0.0, timeout_s, PERIOD, delta=True
    )


def test_delta_actions_integrate_once_per_action_from_the_measured_start():
    guard = delta_guard_1d()
    guard.start(vec(0.5))
    assert guard.step(0.0, vec(0.0)).command[0] == pytest.approx(0.5)  # waiting: hold
    commands = []
    for t, action in ((0.1, 1.0), (0.2, 1.0), (0.3, -0.5)):
        guard.accept(vec(action), t)
        commands += [guard.step(t, vec(0.0)).command[0], guard.step(t + 0.05, vec(0.0)).command[0]]
    # each action moves the command once (two ticks per action: the second repeats it)
    assert commands == pytest.approx([0.6, 0.6, 0.7, 0.7, 0.65, 0.65])


def test_delta_actions_clamp_at_the_limits_and_restart_from_the_hold():
    guard = delta_guard_1d(timeout_s=0.15)
    guard.start(vec(0.95))
    for t in (0.0, 0.1):
        guard.accept(vec(1.0), t)
        top = guard.step(t, vec(0.0))
    assert top.command[0] == pytest.approx(1.0)  # 0.95 + 0.1 clamped, then held at the bound
    guard.accept(vec(-1.0), 0.2)
    assert guard.step(0.2, vec(0.0)).command[0] == pytest.approx(0.9)  # no wind-up past 1.0
    held = guard.step(1.0, vec(0.0))
    assert (held.mode, held.command[0]) == ("watchdog", pytest.approx(0.9))
    guard.accept(vec(-1.0), 1.1)
    assert guard.step(1.1, vec(0.0)).command[0] == pytest.approx(0.8)  # from the held 0.9


def test_a_new_episode_rebases_delta_commands_on_the_measured_pose():
    guard = delta_guard_1d()
    assert not guard.rebase(vec(0.0))  # not started
    guard.start(vec(0.5))
    guard.accept(vec(1.0), 0.0)
    assert guard.step(0.0, vec(0.0)).command[0] == pytest.approx(0.6)
    assert not guard.rebase(vec(np.nan))
    assert guard.rebase(vec(-0.3))  # the sim teleported the joint: commands restart there
    guard.accept(vec(1.0), 0.1)
    assert guard.step(0.1, vec(0.0)).command[0] == pytest.approx(-0.2)
    absolute = guard_1d()
    absolute.start(vec(0.5))
    assert not absolute.rebase(vec(0.0))  # absolute actions carry no state to rebase


# Staged start (legged robots) ------------------------------------------------------------------


def standing_guard(duration_s=0.5, hold_s=0.2, delta=0.5, timeout_s=10.0):
    """One joint, stand pose 0.8 reached in ``duration_s`` from the measured pose, then held."""
    limits = Limits(vec(-2.0), vec(2.0), vec(delta / PERIOD))
    stand = StandUp(vec(0.8), duration_s, hold_s)
    return CommandGuard(
        "position", limits, vec(0.5), vec(0.8), vec(0.0), 0.3, timeout_s, PERIOD, False, stand
    )


def test_stand_up_from_lying_then_hold_then_the_policy():
    """Measured 0.0 (lying): 0.0 -> 0.8 in 0.5 s (5 ticks), held 0.2 s from reaching it, then
    the policy ramps over 0.3 s from the stand pose to offset + scale * action = 0.8 + 0.5 *
    0.6 = 1.1. Actions arriving during the stand-up are not commanded."""
    guard = standing_guard()
    assert guard.start(vec(0.0)).tolist() == [0.0]
    commands, modes = [], []
    for k in range(12):
        guard.accept(vec(0.6), 0.1 * k)
        tick = guard.step(0.1 * k, vec(0.0))
        commands.append(tick.command[0])
        modes.append(tick.mode)
    expected = [0.0, 0.16, 0.32, 0.48, 0.64, 0.8, 0.8, 0.8, 0.8, 0.9, 1.0, 1.1]
    np.testing.assert_allclose(commands, expected, atol=1e-9)
    assert modes == ["stand"] * 8 + ["ramp"] * 3 + ["policy"]


def test_stand_up_waits_without_actions_and_is_rate_limited():
    """No action after standing: the stand pose is held (waiting). A stand-up faster than the
    rate limit moves at the rate limit (0.1 per 0.1 s tick), never more."""
    guard = standing_guard(duration_s=0.1, hold_s=0.0, delta=0.1)
    guard.start(vec(0.3))
    commands = [guard.step(0.1 * k, vec(0.0)) for k in range(8)]
    np.testing.assert_allclose(
        [t.command[0] for t in commands], [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.8]
    )
    assert np.all(np.abs(np.diff([t.command[0] for t in commands])) <= 0.1 + EPS)
    assert commands[-1].mode == "waiting"


def test_e_stop_during_stand_up_holds_and_reset_stands_up_again_from_measured():
    guard = standing_guard()
    guard.start(vec(0.0))
    guard.step(0.0, vec(0.0))
    guard.step(0.1, vec(0.0))  # 0.16
    guard.trip()
    for t in (0.2, 0.3, 1.0):
        tick = guard.step(t, vec(0.0))
        assert (tick.mode, tick.command[0]) == ("e_stop", pytest.approx(0.16))
    guard.reset(vec(0.1))  # the legs sagged to 0.1 meanwhile
    again = [guard.step(2.0 + 0.1 * k, vec(0.0)) for k in range(3)]
    assert [t.mode for t in again] == ["stand"] * 3
    np.testing.assert_allclose([t.command[0] for t in again], [0.1, 0.24, 0.38])


def test_make_guard_stands_up_robots_with_stand_s():
    robot = load_robot("go2")
    assert robot.stand_s > 0 and robot.command_interface == "position"
    joints = [JointLimits(-3.0, 4.0, 40.0, 30.0)] * len(robot.joints)
    guard = make_guard(robot, joints, 0.5, 0.2, 0.02)
    np.testing.assert_allclose(guard.stand_up.pose, robot.default_pose)
    guard.start(np.zeros(len(robot.joints)))
    assert guard.step(0.0, np.zeros(len(robot.joints))).mode == "stand"
