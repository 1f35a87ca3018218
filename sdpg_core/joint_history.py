"""Recent joint states, to pair each camera frame with the one measured closest to it (the
proprio group of a deployed policy). Pure numpy, no ROS; safe to fill from one thread and
read from another."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import numpy as np

from sdpg_core.safety import measured_by_name

Problem = tuple[str, str]  # (reason: a counter key, detail)


class JointHistory:
    """The last ``size`` joint states, positions and velocities in the policy's joint order."""

    def __init__(self, joints: Sequence[str], size: int = 64) -> None:
        self.joints = tuple(joints)
        self._states: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=size)
        self._lock = threading.Lock()

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
        with self._lock:
            self._states.append((stamp_ns, position, velocity))
        return None

    def closest(
        self, stamp_ns: int, max_offset_ns: int
    ) -> tuple[tuple[np.ndarray, np.ndarray] | None, Problem | None]:
        """((positions, velocities) measured closest to ``stamp_ns``, None), or (None, why not):
        none yet, or the closest more than ``max_offset_ns`` away (stale for this frame)."""
        with self._lock:
            states = list(self._states)
        if not states:
            return None, ("joint_state_missing", "no joint state received yet")
        stamp, position, velocity = min(states, key=lambda s: abs(s[0] - stamp_ns))
        offset_ms = (stamp_ns - stamp) * 1e-6
        if abs(stamp - stamp_ns) > max_offset_ns:
            return None, ("joint_state_stale", f"closest joint state {offset_ms:.0f} ms from frame")
        return (position.copy(), velocity.copy()), None

    def __len__(self) -> int:
        """Joint states held."""
        return len(self._states)

    def clear(self) -> None:
        """Forget every state (another policy's joints, or a restarted sim clock)."""
        with self._lock:
            self._states.clear()
