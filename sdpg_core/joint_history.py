"""Recent joint states and IMU readings, to pair each camera frame (or control tick) with the
reading measured closest to it (the proprio group of a deployed policy). Pure numpy, no ROS;
safe to fill from one thread and read from another."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import numpy as np

from sdpg_core.safety import measured_by_name

Problem = tuple[str, str]  # (reason: a counter key, detail)
Reading = tuple[np.ndarray, np.ndarray]


class StampedHistory:
    """The last ``size`` readings (two arrays each) with their stamps; ``kind`` names the
    reading in problems (``<kind>_missing``, ``<kind>_stale``)."""

    kind = "reading"

    def __init__(self, size: int = 64) -> None:
        self._readings: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def _keep(self, stamp_ns: int, first: np.ndarray, second: np.ndarray) -> None:
        """Store one validated reading."""
        with self._lock:
            self._readings.append((stamp_ns, first, second))

    def closest(self, stamp_ns: int, max_offset_ns: int) -> tuple[Reading | None, Problem | None]:
        """(the reading measured closest to ``stamp_ns``, None), or (None, why not): none yet,
        or the closest more than ``max_offset_ns`` away (stale for this frame)."""
        with self._lock:
            readings = list(self._readings)
        label = self.kind.replace("_", " ")
        if not readings:
            return None, (f"{self.kind}_missing", f"no {label} received yet")
        stamp, first, second = min(readings, key=lambda r: abs(r[0] - stamp_ns))
        if abs(stamp - stamp_ns) > max_offset_ns:
            offset_ms = (stamp_ns - stamp) * 1e-6
            return None, (f"{self.kind}_stale", f"closest {label} {offset_ms:.0f} ms from frame")
        return (first.copy(), second.copy()), None

    def __len__(self) -> int:
        """Readings held."""
        return len(self._readings)

    def clear(self) -> None:
        """Forget every reading (another policy's joints, or a restarted sim clock)."""
        with self._lock:
            self._readings.clear()


class JointHistory(StampedHistory):
    """Joint states: (positions, velocities) in the policy's joint order."""

    kind = "joint_state"

    def __init__(self, joints: Sequence[str], size: int = 64) -> None:
        super().__init__(size)
        self.joints = tuple(joints)

    def add(
        self,
        stamp_ns: int,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
    ) -> Problem | None:
        """Keep one joint state message; why it is refused (then nothing is kept), or None."""
        position, has_position = measured_by_name(names, positions, self.joints)
        velocity, has_velocity = measured_by_name(names, velocities, self.joints)
        if not (has_position.all() and has_velocity.all()):
            found = has_position & has_velocity
            missing = [j for j, ok in zip(self.joints, found, strict=True) if not ok]
            return "joint_state_names", f"no position and velocity for {missing}"
        if not (np.isfinite(position).all() and np.isfinite(velocity).all()):
            return "joint_state_non_finite", f"positions {position}, velocities {velocity}"
        self._keep(stamp_ns, position, velocity)
        return None


class ImuHistory(StampedHistory):
    """IMU readings: (orientation (w, x, y, z), angular velocity in the body frame)."""

    kind = "imu"

    def add(
        self, stamp_ns: int, orientation_xyzw: Sequence[float], angular: Sequence[float]
    ) -> Problem | None:
        """Keep one reading (orientation as sensor_msgs/Imu orders it: x, y, z, w); why it is
        refused (non-finite, or not a unit quaternion), or None."""
        x, y, z, w = np.asarray(orientation_xyzw, dtype=np.float64)
        quat, rate = np.array([w, x, y, z]), np.asarray(angular, dtype=np.float64)
        if not (np.isfinite(quat).all() and np.isfinite(rate).all()):
            return "imu_non_finite", f"orientation {quat}, angular velocity {rate}"
        if abs(np.linalg.norm(quat) - 1.0) > 0.01:
            return "imu_orientation", f"orientation {quat} is not a unit quaternion"
        self._keep(stamp_ns, quat, rate)
        return None


class TickSchedule:
    """Control ticks from a stream of joint-state stamps, one per ``period_ns`` on average.

    Phase-locked: a tick is due from half a period before the next scheduled one, which then
    moves on by one period, so a 50 Hz stream whose messages jitter by up to half a period
    ticks on every message, and a faster stream (a robot's 500 Hz) ticks every ``period_ns``.
    A stamp that goes back (a restarted clock) or a gap of more than a period (a pause)
    starts the schedule afresh at that stamp."""

    def __init__(self, period_ns: int) -> None:
        self.period_ns = period_ns
        self.last_ns: int | None = None  # the last tick's stamp
        self.next_ns = 0  # when the next tick is scheduled

    def due(self, stamp_ns: int) -> bool:
        """Whether a message stamped ``stamp_ns`` is a tick (then it is counted as one)."""
        period, last = self.period_ns, self.last_ns
        if last is None or stamp_ns < last or stamp_ns > self.next_ns + period:
            self.next_ns = stamp_ns + period
        elif stamp_ns >= self.next_ns - period // 2:
            self.next_ns += period
        else:
            return False
        self.last_ns = stamp_ns
        return True
