"""Command safety between a policy and a robot: pure numpy, no ROS.

Every vector is [J] (one entry per joint, in the robot's joint order) in the units of the command
interface (position: rad or m, velocity: per s, effort: N·m or N). Per tick:

    action a in [-1, 1]^J -> policy = action_offset + action_scale * a
    -> target = blend(anchor, policy, ramp weight)   (ramp over ramp_s when control starts)
    -> clamp to the interface bounds -> change limited to max_delta -> command

Without a fresh action (none yet, or the watchdog timed out) or while the e-stop is latched, the
hold target replaces the policy: position keeps the last command, velocity goes to zero, effort
damps (-kd * measured velocity), through the same clamp and rate limit, so commands never jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sdpg_core.robot import JointLimits, RobotConfig

Vector = np.ndarray  # float64 [J]


@dataclass(frozen=True)
class Limits:
    """Per-joint command bounds and largest change per tick, each [J]."""

    low: Vector
    high: Vector
    max_delta: Vector


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
    names: Sequence[str], values: Sequence[float], joints: Sequence[str], previous: Vector
) -> Vector:
    """[J] in ``joints`` order from a partial named message (``previous`` where absent)."""
    out = previous.copy()
    if len(values) != len(names):  # e.g. a JointState without velocities
        return out
    index = {name: i for i, name in enumerate(joints)}
    for name, value in zip(names, values, strict=True):
        if name in index:
            out[index[name]] = value
    return out


def action_to_command(action: Vector, scale: Vector, offset: Vector) -> Vector:
    """Policy command [J] = offset + scale * action."""
    return offset + scale * action


def blend(start: Vector, target: Vector, weight: float) -> Vector:
    """Linear blend [J]: ``start`` at weight 0, ``target`` at weight 1."""
    return start + weight * (target - start)


def ramp_weight(elapsed_s: float, ramp_s: float) -> float:
    """Ramp progress in [0, 1] after ``elapsed_s`` (1 at once when ``ramp_s`` <= 0)."""
    return 1.0 if ramp_s <= 0 else float(np.clip(elapsed_s / ramp_s, 0.0, 1.0))


def rate_limit(command: Vector, previous: Vector, max_delta: Vector) -> Vector:
    """Move from ``previous`` toward ``command`` by at most ``max_delta`` per joint."""
    return previous + np.clip(command - previous, -max_delta, max_delta)


def limit(target: Vector, previous: Vector, limits: Limits) -> Vector:
    """Clamp ``target`` to the bounds, then rate-limit from ``previous`` (itself in bounds)."""
    step = rate_limit(np.clip(target, limits.low, limits.high), previous, limits.max_delta)
    return np.clip(step, limits.low, limits.high)  # previous + (t - previous) may round past t


def ramp_start(interface: str, measured_position: Vector) -> Vector:
    """Where a ramp begins: the measured position (position interface), else zero."""
    if interface != "position":
        return np.zeros_like(measured_position, dtype=np.float64)
    if not np.all(np.isfinite(measured_position)):
        raise ValueError("the position interface needs a measured position for every joint")
    return np.asarray(measured_position, dtype=np.float64).copy()


def hold_target(interface: str, last: Vector, measured_velocity: Vector, kd: Vector) -> Vector:
    """Hold: last command (position), zero (velocity), damping -kd * velocity (effort)."""
    if interface == "position":
        return last.copy()
    if interface == "velocity":
        return np.zeros_like(last)
    return -kd * np.nan_to_num(measured_velocity, nan=0.0, posinf=0.0, neginf=0.0)


def final_command(interface: str, last: Vector) -> Vector:
    """Command left in the controller once commands stop: last position, else zero motion/torque."""
    return last.copy() if interface == "position" else np.zeros_like(last)


@dataclass(frozen=True)
class Tick:
    """One command and what produced it."""

    command: Vector
    mode: str  # waiting | ramp | policy | watchdog | e_stop
    new_action: bool  # first command made from the latest accepted action
    watchdog: bool  # the watchdog fired on this tick (fresh action -> stale)


class CommandGuard:
    """Per-tick safety state machine: ramp, watchdog, latched e-stop, hold, limits."""

    def __init__(
        self,
        interface: str,
        limits: Limits,
        scale: Vector,
        offset: Vector,
        kd: Vector,
        ramp_s: float,
        timeout_s: float,
    ) -> None:
        self.interface, self.limits = interface, limits
        self.scale, self.offset, self.kd = scale, offset, kd
        self.ramp_s, self.timeout_s = ramp_s, timeout_s
        self.num_joints = len(scale)
        self.latched = False
        self.last: Vector | None = None  # last command, always within the bounds
        self.action: Vector | None = None
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
        self.ramp_t0, self.was_fresh = None, False
        return begin.copy()

    def accept(self, action: Vector, now_s: float) -> str | None:
        """Store a policy action; returns why it is rejected (then nothing changes)."""
        action = np.asarray(action, dtype=np.float64)
        reason = validate_action(action, self.num_joints)
        if reason is None:
            self.action, self.action_time, self.unused = action.copy(), now_s, True
        return reason

    def trip(self) -> bool:
        """Latch the e-stop; True when it was not latched before."""
        newly, self.latched = not self.latched, True
        return newly

    def reset(self, measured_position: Vector) -> None:
        """Clear the e-stop latch; the next policy command ramps from the measured state."""
        anchor = ramp_start(self.interface, measured_position)
        self.pending_anchor = np.clip(anchor, self.limits.low, self.limits.high)
        self.latched, self.ramp_t0 = False, None

    def step(self, now_s: float, measured_velocity: Vector) -> Tick:
        """The command for this tick (``start`` must have been called)."""
        if self.last is None:
            raise RuntimeError("CommandGuard.step before start")
        age = now_s - self.action_time
        fresh = 0.0 <= age <= self.timeout_s  # a clock that jumped back (sim reset) is stale
        fired, self.was_fresh = self.was_fresh and not fresh, fresh
        if self.latched or not fresh:
            self.ramp_t0, new = None, False
            target = hold_target(self.interface, self.last, measured_velocity, self.kd)
            mode = (
                "e_stop" if self.latched else "watchdog" if self.action is not None else "waiting"
            )
        else:
            if self.ramp_t0 is None:  # policy (re)takes control: ramp from the anchor
                self.ramp_t0 = now_s
                self.anchor = self.last if self.pending_anchor is None else self.pending_anchor
                self.pending_anchor = None
            weight = ramp_weight(now_s - self.ramp_t0, self.ramp_s)
            policy = action_to_command(self.action, self.scale, self.offset)
            target = blend(self.anchor, policy, weight)
            mode, new, self.unused = ("ramp" if weight < 1 else "policy"), self.unused, False
        self.last = limit(target, self.last, self.limits)
        return Tick(self.last.copy(), mode, new, fired)

    def final(self) -> Vector:
        """The safe command to leave in the controller when commands stop."""
        if self.last is None:
            raise RuntimeError("CommandGuard.final before start")
        return final_command(self.interface, self.last)


def make_guard(
    robot: RobotConfig, joints: Sequence[JointLimits], ramp_s: float, timeout_s: float
) -> CommandGuard:
    """A CommandGuard for ``robot`` with its URDF ``joints`` limits (robot joint order)."""
    low, high = command_bounds(robot.command_interface, joints)
    limits = Limits(low, high, np.array(robot.max_delta, dtype=np.float64))
    return CommandGuard(
        robot.command_interface,
        limits,
        np.array(robot.action_scale, dtype=np.float64),
        np.array(robot.action_offset, dtype=np.float64),
        np.array(robot.damping_kd, dtype=np.float64),
        ramp_s,
        timeout_s,
    )
