"""Batched forward kinematics in numpy for the tasks' reward and observation hooks."""

from __future__ import annotations

import mujoco
import numpy as np


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of unit quaternions (w, x, y, z) [..., 4]."""
    w, x, y, z = np.moveaxis(quat, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices [n, 3, 3] about the unit ``axis`` [3] by ``angle`` [n] (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def projected_gravity(quat: np.ndarray) -> np.ndarray:
    """The unit gravity direction in the body frame [n, 3] of base orientations (w, x, y, z)."""
    return -quat_to_mat(quat)[:, 2, :]  # R^T (0, 0, -1): minus the world z row of R


class Chain:
    """The hinge chain from a body's root (world or a free-floating base) to ``body``."""

    def __init__(self, model: mujoco.MjModel, body: str, root: int = 0) -> None:
        chain, current = [], model.body(body).id
        while current != root:
            chain.append(current)
            current = int(model.body_parentid[current])
        self.bodies = chain[::-1]  # root's child first
        self.pos, self.rot = model.body_pos.copy(), quat_to_mat(model.body_quat)
        self.joint_of = {int(model.jnt_bodyid[j]): j for j in range(model.njnt)}
        self.axis, self.qposadr = model.jnt_axis.copy(), model.jnt_qposadr.copy()

    def position(
        self,
        qpos: np.ndarray,
        base_pos: np.ndarray | None = None,
        base_rot: np.ndarray | None = None,
    ) -> np.ndarray:
        """Positions [n, 3] of the chain's end in the root frame, or in the world given the
        root's pose (``base_pos`` [n, 3], ``base_rot`` [n, 3, 3])."""
        n = len(qpos)
        rot = np.broadcast_to(np.eye(3), (n, 3, 3)) if base_rot is None else base_rot
        pos = np.zeros((n, 3)) if base_pos is None else base_pos
        for body in self.bodies:
            pos = pos + rot @ self.pos[body]
            rot = rot @ self.rot[body]
            joint = self.joint_of.get(body)
            if joint is not None:
                rot = rot @ axis_angle(self.axis[joint], qpos[:, self.qposadr[joint]])
        return pos
