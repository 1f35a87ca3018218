"""Planar locomotion base: numpy kinematics from qpos, resets, observations, product reward."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.task import Task

SLIDE, HINGE = int(mujoco.mjtJoint.mjJNT_SLIDE), int(mujoco.mjtJoint.mjJNT_HINGE)
CAPSULE, SPHERE = int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_SPHERE)


def rotate(angle: np.ndarray, xz: np.ndarray) -> np.ndarray:
    """Rotate planar (x, z) vectors [..., 2] by a pitch about +y (MuJoCo's convention)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * xz[..., 0] + s * xz[..., 1], c * xz[..., 1] - s * xz[..., 0]], -1)


class PlanarLocomotion(Task):
    """Shared base of planar walkers: root joints rootx, rootz, rooty on a "torso" body.

    Kinematics are computed in numpy from qpos: every body frame is axis-aligned at qpos0,
    every hinge sits at its body origin and turns about +-y, slides move along x or z.
    """

    camera = "side"
    episode_steps = 1000
    root_pitch_range = np.pi  # reset pitch ~ U(-r, r); dm_control uses the full circle
    drop_clearance = 0.005  # lowest geom point at reset, metres above the floor (if lifted)
    velocity_clip = 50.0  # observation clip of qvel

    def bind(self, model: mujoco.MjModel) -> None:
        """Check the model is planar; cache root/hinge indices and collision geoms."""
        super().bind(model)
        if not np.allclose(model.body_quat[1:], [1, 0, 0, 0]):
            raise ValueError("planar kinematics need axis-aligned bodies")
        hinge = model.jnt_type == HINGE
        planar = np.where(hinge, np.abs(np.abs(model.jnt_axis[:, 1]) - 1), model.jnt_axis[:, 1])
        if np.abs(model.jnt_pos).max() > 0 or np.abs(planar).max() > 1e-9:
            raise ValueError("planar kinematics need +-y hinges at body origins, xz slides")
        self.xz = np.array([0, 2])
        self.root = [model.joint(j).qposadr[0] for j in ("rootx", "rootz", "rooty")]
        hinges = [
            j for j in range(model.njnt) if model.jnt_type[j] == HINGE and model.jnt_limited[j]
        ]
        self.hinge_qpos = model.jnt_qposadr[hinges]
        self.hinge_range = model.jnt_range[hinges]
        self.torso = model.body("torso").id
        self.geoms = np.array(
            [
                g
                for g in range(model.ngeom)
                if model.geom_bodyid[g] > 0 and model.geom_type[g] in (CAPSULE, SPHERE)
            ]
        )
        axes = np.zeros((len(self.geoms), 3))
        for i, g in enumerate(self.geoms):
            mat = np.zeros(9)
            mujoco.mju_quat2Mat(mat, model.geom_quat[g])
            axes[i] = mat.reshape(3, 3)[:, 2]
        self.geom_axis = axes[:, self.xz]
        capsule = model.geom_type[self.geoms] == CAPSULE
        self.geom_half = np.where(capsule, model.geom_size[self.geoms, 1], 0.0)
        self.geom_radius = model.geom_size[self.geoms, 0]

    def frames(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (x, z) origins [n, nbody, 2] and pitches [n, nbody] of all bodies."""
        m = self.model
        pos = np.zeros((len(qpos), m.nbody, 2))
        pitch = np.zeros((len(qpos), m.nbody))
        for b in range(1, m.nbody):
            parent = m.body_parentid[b]
            pitch[:, b] = pitch[:, parent]
            pos[:, b] = pos[:, parent] + rotate(pitch[:, parent], m.body_pos[b, self.xz])
            for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b]):
                q = qpos[:, m.jnt_qposadr[j]]
                if m.jnt_type[j] == SLIDE:
                    axis = m.jnt_axis[j, self.xz]
                    pos[:, b] += rotate(pitch[:, b], axis) * q[:, None]
                else:
                    pitch[:, b] += m.jnt_axis[j, 1] * q
        return pos, pitch

    def coms(self, qpos: np.ndarray, bodies: list[int]) -> np.ndarray:
        """World (x, z) of the bodies' centres of mass, [n, len(bodies), 2]."""
        pos, pitch = self.frames(qpos)
        ipos = self.model.body_ipos[bodies][:, self.xz]
        return pos[:, bodies] + rotate(pitch[:, bodies], ipos)

    def lowest_point(self, qpos: np.ndarray) -> np.ndarray:
        """Height of the lowest point of any robot capsule/sphere, [n]."""
        pos, pitch = self.frames(qpos)
        body = self.model.geom_bodyid[self.geoms]
        centre = pos[:, body] + rotate(pitch[:, body], self.model.geom_pos[self.geoms][:, self.xz])
        axis_z = rotate(pitch[:, body], self.geom_axis)[..., 1]
        bottom = centre[..., 1] - np.abs(axis_z) * self.geom_half - self.geom_radius
        return bottom.min(axis=1)

    def initial_state(self, rng, n):
        """Limited hinges uniform in range, random pitch, lifted clear of the floor, at rest."""
        qpos = np.tile(self.model.qpos0, (n, 1))
        qpos[:, self.hinge_qpos] = rng.uniform(*self.hinge_range.T, (n, len(self.hinge_qpos)))
        qpos[:, self.root[2]] = rng.uniform(-self.root_pitch_range, self.root_pitch_range, n)
        lift = np.maximum(self.drop_clearance - self.lowest_point(qpos), 0.0)
        qpos[:, self.root[1]] += lift
        return qpos, np.zeros((n, self.model.nv)), np.zeros((n, 0))

    def observation(self, qpos, qvel, extras):
        """[rootz, cos rooty, sin rooty, hinge angles, clipped qvel] (qpos minus rootx, qvel)."""
        pitch = qpos[:, self.root[2], None]
        rest = np.delete(qpos, self.root, axis=1)
        vel = np.clip(qvel, -self.velocity_clip, self.velocity_clip)
        return np.concatenate(
            [qpos[:, self.root[1], None], np.cos(pitch), np.sin(pitch), rest, vel], axis=1
        )

    def forward_velocity(self, qvel: np.ndarray) -> np.ndarray:
        """Horizontal velocity of the torso origin, [n]."""
        return qvel[:, self.model.joint("rootx").dofadr[0]]

    def combine(self, terms):
        """The product of the terms."""
        return np.prod(np.stack(list(terms.values())), axis=0)
