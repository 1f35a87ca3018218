"""Command safety between a policy and a robot: pure numpy, no ROS.

Every vector is [J] (one entry per joint, in the robot's joint order) in the units of the command
interface (position: rad or m, velocity: per s, effort: N·m or N). Per tick:

    action a in [-1, 1]^J -> policy = action_offset + action_scale * a        (absolute)
                          or policy = clamp(previous policy + action_scale * a)  (delta)
    -> target = blend(anchor, policy, ramp weight)   (ramp over ramp_s when control starts)
    -> clamp to the interface bounds
    -> change limited to max_rate * dt (dt: time since the command last changed, at most
       period_s) -> command

Delta actions (``action_mode: delta``, position arms trained on joint deltas) integrate once
per accepted action, from the held command whenever the policy (re)takes control, exactly as
the task's ``control`` moves its joint targets in training.
The rate limit is per unit time: however fast actions arrive, the command moves at most
max_rate * (W + period_s) within any window of W seconds (max_rate * W over a window that begins
at a change). A command that merely repeats its value does not use up the next change's time.
Without a fresh action (none yet, or the watchdog timed out) or while the e-stop is latched, the
hold target replaces the policy: position keeps the last command, velocity goes to zero, effort
damps (-kd * measured velocity, the velocity bounded by the URDF limit), through the same clamp
and rate limit, so commands never jump. Measured joint states that are non-finite or outside the
URDF limits (plus a margin) are rejected before they can become a ramp start or a damping input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sdpg_core.robot import JointLimits, RobotConfig

Vector = np.ndarray  # float64 [J]


@dataclass(frozen=True)
class Limits:
    """Per-joint command bounds, largest change per second and measured-speed bound, each [J]."""

    low: Vector
    high: Vector
    max_rate: Vector  # command units per second
    max_velocity: Vector | float = np.inf  # |measured velocity| used for damping is capped here


def command_bounds(interface: str, joints: Sequence[JointLimits]) -> tuple[Vector, Vector]:
    """Bounds [J] of the command: position [lower, upper]; velocity/effort +- the URDF limit."""
    if interface == "position":
        return np.array([j.lower for j in joints]), np.array([j.upper for j in joints])
    if interface not in ("velocity", "effort"):
        raise ValueError(f"unknown command interface {interface!r}")
    bound = np.array([getattr(j, interface) for j in joints], dtype=np.float64)
    if not np.all(np.isfinite(bound)):
        raise ValueError(f"the {interface} interface needs a finite URDF {interface} limit")
    return -bound, bound


def validate_action(action: Vector, num_joints: int) -> str | None:
    """None when ``action`` is a finite [J] vector in [-1, 1], else why it is rejected."""
    if action.shape != (num_joints,):
        return "shape"
    if not np.all(np.isfinite(action)):
        return "non_finite"
    if np.any(np.abs(action) > 1.0):
        return "out_of_range"
    return None


def reorder(
    names: Sequence[str], values: Sequence[float], joints: Sequence[str]
) -> tuple[Vector | None, str]:
    """Named values -> [J] in ``joints`` order, or (None, reason) unless names match exactly."""
    if len(names) != len(values):
        return None, "length"
    if len(set(names)) != len(names) or set(names) != set(joints):
        return None, "names"
    index = {name: i for i, name in enumerate(names)}
    return np.array([values[index[j]] for j in joints], dtype=np.float64), ""


def measured_by_name(
    names: Sequence[str], values: Sequence[float], joints: Sequence[str]
) -> tuple[Vector, np.ndarray]:
    """([J] values in ``joints`` order, [J] bool: present in the message) of a named message."""
    out, present = np.full(len(joints), np.nan), np.zeros(len(joints), dtype=bool)
    if len(values) != len(names):  # e.g. a JointState without velocities
        return out, present
    index = {name: i for i, name in enumerate(joints)}
    for name, value in zip(names, values, strict=True):
        if name in index:
            out[index[name]], present[index[name]] = value, True
    return out, present


@dataclass(frozen=True)
class MeasuredBounds:
    """Plausible measured joint states, each [J]: URDF limits widened by a margin."""

    position_low: Vector
    position_high: Vector
    max_velocity: Vector


def measured_bounds(
    joints: Sequence[JointLimits],
    position_margin: float,
    velocity_margin: float,
    continuous_limit: float = np.inf,
) -> MeasuredBounds:
    """Positions in [lower, upper] +- ``position_margin`` (a continuous joint: within
    +-``continuous_limit``), |velocity| <= limit * (1 + ``velocity_margin``)."""
    lower = np.array([j.lower for j in joints], dtype=np.float64)
    upper = np.array([j.upper for j in joints], dtype=np.float64)
    return MeasuredBounds(
        np.where(np.isinf(lower), -continuous_limit, lower - position_margin),
        np.where(np.isinf(upper), continuous_limit, upper + position_margin),
        np.array([j.velocity for j in joints]) * (1.0 + velocity_margin),
    )


def measurement_error(
    position: Vector,
    has_position: np.ndarray,
    velocity: Vector,
    has_velocity: np.ndarray,
    bounds: MeasuredBounds,
) -> str | None:
    """None when every present value is finite and plausible, else why the state is rejected."""
    low, high = bounds.position_low[has_position], bounds.position_high[has_position]
    position, velocity = position[has_position], velocity[has_velocity]
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(velocity))):
        return "joint_state_non_finite"
    if np.any(position < low) or np.any(position > high):
        return "joint_state_position"
    if np.any(np.abs(velocity) > bounds.max_velocity[has_velocity]):
        return "joint_state_velocity"
    return None


def action_to_command(action: Vector, scale: Vector, offset: Vector) -> Vector:
    """Policy command [J] = offset + scale * action."""
    return offset + scale * action


def blend(start: Vector, target: Vector, weight: float) -> Vector:
    """Linear blend [J]: ``start`` at weight 0, ``target`` at weight 1."""
    return start + weight * (target - start)


def ramp_weight(elapsed_s: float, ramp_s: float) -> float:
    """Ramp progress in [0, 1] after ``elapsed_s`` (1 at once when ``ramp_s`` <= 0)."""
    return 1.0 if ramp_s <= 0 else float(np.clip(elapsed_s / ramp_s, 0.0, 1.0))


def rate_limit(command: Vector, previous: Vector, max_step: Vector) -> Vector:
    """Move from ``previous`` toward ``command`` by at most ``max_step`` per joint."""
    return previous + np.clip(command - previous, -max_step, max_step)


def limit(target: Vector, previous: Vector, limits: Limits, dt: float) -> Vector:
    """Clamp ``target`` to the bounds, then move from ``previous`` (in bounds) at most
    ``max_rate * dt``."""
    step = rate_limit(np.clip(target, limits.low, limits.high), previous, limits.max_rate * dt)
    return np.clip(step, limits.low, limits.high)  # previous + (t - previous) may round past t


def ramp_start(interface: str, measured_position: Vector) -> Vector:
    """Where a ramp begins: the measured position (position interface), else zero."""
    if interface != "position":
        return np.zeros_like(measured_position, dtype=np.float64)
    if not np.all(np.isfinite(measured_position)):
        raise ValueError("the position interface needs a measured position for every joint")
    return np.asarray(measured_position, dtype=np.float64).copy()


def hold_target(
    interface: str, last: Vector, measured_velocity: Vector, kd: Vector, max_velocity=np.inf
) -> Vector:
    """Hold: last command (position), zero (velocity), damping -kd * velocity (effort; the
    velocity NaN/inf -> 0 and capped at +-``max_velocity``)."""
    if interface == "position":
        return last.copy()
    if interface == "velocity":
        return np.zeros_like(last)
    velocity = np.nan_to_num(measured_velocity, nan=0.0, posinf=0.0, neginf=0.0)
    return -kd * np.clip(velocity, -max_velocity, max_velocity)


def final_command(interface: str, last: Vector) -> Vector:
    """Command left in the controller once commands stop: last position, else zero motion/torque."""
    return last.copy() if interface == "position" else np.zeros_like(last)


@dataclass(frozen=True)
class Tick:
    """One command and what produced it."""

    command: Vector
    mode: str  # stand | waiting | ramp | policy | watchdog | e_stop
    new_action: bool  # first command made from the latest accepted action
    watchdog: bool  # the watchdog fired on this tick (fresh action -> stale)


@dataclass(frozen=True)
class StandUp:
    """A legged robot's staged start: from the measured (lying) pose to ``pose`` over
    ``duration_s``, held ``hold_s`` more; only then the policy."""

    pose: Vector
    duration_s: float
    hold_s: float


class CommandGuard:
    """Per-tick safety state machine: stand-up, ramp, watchdog, latched e-stop, hold, limits."""

    def __init__(
        self,
        interface: str,
        limits: Limits,
        scale: Vector,
        offset: Vector,
        kd: Vector,
        ramp_s: float,
        timeout_s: float,
        period_s: float,
        delta: bool = False,
        stand_up: StandUp | None = None,
    ) -> None:
        self.interface, self.limits, self.delta = interface, limits, delta
        self.stand_up = stand_up
        self.stand_from: Vector | None = None  # a stand-up in progress starts here
        self.stand_t0: float | None = None
        self.stand_reached: float | None = None  # when the command reached the stand pose
        self.scale, self.offset, self.kd = scale, offset, kd
        self.ramp_s, self.timeout_s, self.period_s = ramp_s, timeout_s, period_s
        self.num_joints = len(scale)
        self.latched = False
        self.last: Vector | None = None  # last command, always within the bounds
        self.last_time: float | None = None  # when ``last`` was commanded
        self.action: Vector | None = None
        self.policy: Vector | None = None  # delta mode: the integrated policy command
        self.action_time = -np.inf
        self.unused = False  # the stored action has not made a command yet
        self.was_fresh = False
        self.pending_anchor: Vector | None = None  # ramp start chosen by start()/reset()
        self.anchor: Vector | None = None
        self.ramp_t0: float | None = None

    def start(self, measured_position: Vector) -> Vector:
        """Begin control (activation); returns the initial command, the ramp's start."""
        begin = np.clip(
            ramp_start(self.interface, measured_position), self.limits.low, self.limits.high
        )
        self.last, self.pending_anchor = begin, begin.copy()
        self.ramp_t0, self.was_fresh, self.last_time, self.policy = None, False, None, None
        self._begin_stand_up(begin)
        return begin.copy()

    def _begin_stand_up(self, measured: Vector) -> None:
        """With a staged start: stand up from ``measured`` before the policy may command."""
        if self.stand_up is not None:
            self.stand_from, self.stand_t0, self.stand_reached = measured.copy(), None, None

    def accept(self, action: Vector, now_s: float) -> str | None:
        """Store a policy action; returns why it is rejected (then nothing changes)."""
        action = np.asarray(action, dtype=np.float64)
        reason = validate_action(action, self.num_joints)
        if reason is None:
            self.action, self.action_time, self.unused = action.copy(), now_s, True
            base = self.last if self.policy is None else self.policy
            if self.delta and base is not None:  # integrate (before start: nothing to add to)
                self.policy = np.clip(base + self.scale * action, self.limits.low, self.limits.high)
        return reason

    def trip(self) -> bool:
        """Latch the e-stop; True when it was not latched before."""
        newly, self.latched = not self.latched, True
        return newly

    def reset(self, measured_position: Vector) -> None:
        """Clear the e-stop latch; the next policy command ramps from the measured state."""
        anchor = ramp_start(self.interface, measured_position)
        self.pending_anchor = np.clip(anchor, self.limits.low, self.limits.high)
        self.latched, self.ramp_t0, self.policy = False, None, None
        self._begin_stand_up(self.pending_anchor)

    def rebase(self, measured_position: Vector) -> bool:
        """A new episode (the sim teleported the robot): delta commands restart from the
        measured pose, as the task's joint targets do at a reset. True when applied (delta
        mode, started, every joint measured); other modes need no rebase."""
        measured = np.asarray(measured_position, dtype=np.float64)
        if not self.delta or self.last is None or not np.all(np.isfinite(measured)):
            return False
        self.last = np.clip(measured, self.limits.low, self.limits.high)
        self.policy, self.pending_anchor, self.anchor = None, None, self.last.copy()
        return True

    def release(self, measured_position: Vector) -> None:
        """Clear the latch: before ``start`` at once, after it as ``reset`` (ramp from measured)."""
        if self.last is None:
            self.latched = False
        else:
            self.reset(measured_position)

    def step(self, now_s: float, measured_velocity: Vector) -> Tick:
        """The command for this tick (``start`` must have been called)."""
        if self.last is None:
            raise RuntimeError("CommandGuard.step before start")
        age = now_s - self.action_time
        fresh = 0.0 <= age <= self.timeout_s  # a clock that jumped back (sim reset) is stale
        fired, self.was_fresh = self.was_fresh and not fresh, fresh
        standing = not self.latched and self.stand_from is not None
        if standing:
            target, mode, new = self._stand_target(now_s), "stand", False
        elif self.latched or not fresh:
            self.ramp_t0, new, self.policy = None, False, None  # deltas restart from the hold
            target = hold_target(
                self.interface, self.last, measured_velocity, self.kd, self.limits.max_velocity
            )
            mode = (
                "e_stop" if self.latched else "watchdog" if self.action is not None else "waiting"
            )
        else:
            if self.ramp_t0 is None:  # policy (re)takes control: ramp from the anchor
                self.ramp_t0 = now_s
                self.anchor = self.last if self.pending_anchor is None else self.pending_anchor
                self.pending_anchor = None
            weight = ramp_weight(now_s - self.ramp_t0, self.ramp_s)
            policy = self._policy_command()
            target = blend(self.anchor, policy, weight)
            mode, new, self.unused = ("ramp" if weight < 1 else "policy"), self.unused, False
        self._move(target, now_s)
        if standing and self.stand_reached is None and self._at_stand_pose():
            self.stand_reached = now_s
        return Tick(self.last.copy(), mode, new, fired)

    def _stand_target(self, now_s: float) -> Vector:
        """The stand-up's target: blend from the start pose to the stand pose (rate-limited
        like every command), then held ``hold_s`` from when the command reached it; after
        that the policy ramps from the stand pose."""
        stand = self.stand_up
        if self.stand_t0 is None:
            self.stand_t0 = now_s
        target = blend(
            self.stand_from, stand.pose, ramp_weight(now_s - self.stand_t0, stand.duration_s)
        )
        if self.stand_reached is not None and now_s - self.stand_reached >= stand.hold_s:
            self.stand_from, self.pending_anchor, self.ramp_t0 = None, None, None
        return target

    def _at_stand_pose(self) -> bool:
        """The last command is the stand pose (within the bounds)."""
        pose = np.clip(self.stand_up.pose, self.limits.low, self.limits.high)
        return bool(np.allclose(self.last, pose, rtol=0.0, atol=1e-9))

    def _policy_command(self) -> Vector:
        """The command the latest action asks for (delta: the integrated one, the held command
        until an action arrives after ``start``)."""
        if not self.delta:
            return action_to_command(self.action, self.scale, self.offset)
        return self.last if self.policy is None else self.policy

    def _move(self, target: Vector, now_s: float) -> None:
        """Limit ``target`` by the rate over the time since the command last changed (at most
        one period: a pause never banks a jump), and remember when it changes."""
        if self.last_time is not None and now_s < self.last_time:  # the clock jumped back
            self.last_time = now_s
        since = self.period_s if self.last_time is None else now_s - self.last_time
        command = limit(target, self.last, self.limits, min(since, self.period_s))
        if self.last_time is None or np.any(command != self.last):
            self.last_time = now_s
        self.last = command

    def final(self) -> Vector:
        """The safe command to leave in the controller when commands stop."""
        if self.last is None:
            raise RuntimeError("CommandGuard.final before start")
        return final_command(self.interface, self.last)


def make_guard(
    robot: RobotConfig,
    joints: Sequence[JointLimits],
    ramp_s: float,
    timeout_s: float,
    period_s: float,
) -> CommandGuard:
    """A CommandGuard for ``robot`` with its URDF ``joints`` limits (robot joint order); a
    robot with ``stand_s`` > 0 stands up to its default pose first."""
    low, high = command_bounds(robot.command_interface, joints)
    max_velocity = np.array([j.velocity for j in joints], dtype=np.float64)
    limits = Limits(low, high, np.array(robot.max_rate, dtype=np.float64), max_velocity)
    return CommandGuard(
        robot.command_interface,
        limits,
        np.array(robot.action_scale, dtype=np.float64),
        np.array(robot.action_offset, dtype=np.float64),
        np.array(robot.damping_kd, dtype=np.float64),
        ramp_s,
        timeout_s,
        period_s,
        robot.action_mode == "delta",
        StandUp(np.array(robot.default_pose), robot.stand_s, robot.stand_hold_s)
        if robot.stand_s > 0
        else None,
    )
