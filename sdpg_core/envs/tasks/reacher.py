"""Planar two-link reacher: bring the fingertip onto a randomly placed visible target."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.registry import register_task
from sdpg_core.envs.task import Task
from sdpg_core.share import urdf_file


@register_task(
    "reacher", "2-link planar arm reaching a visible target (success: tip settled on target)"
)
class Reacher(Task):
    """Reward terms: ``distance`` (-tip/target distance / 0.2 m) and ``reached`` (1 on target)."""

    camera = "top"
    episode_steps = 50
    frame_skip = 4
    extras_dim = 2  # target (x, y)
    has_success = True
    success_window = 10  # 0.4 s: tip on target for most of the final window (settled reach)
    reward_terms = ("distance", "reached")
    success_radius = 0.04
    target_radius = (0.06, 0.21)

    def build_spec(self) -> mujoco.MjSpec:
        """URDF arm + floor, light, mocap target, top camera, torque motors."""
        spec = mujoco.MjSpec.from_file(str(urdf_file("reacher.urdf")))
        spec.compiler.discardvisual = False  # our geoms are non-colliding but must render
        spec.option.timestep = 0.01
        spec.option.gravity = [0, 0, -9.81]
        world = spec.worldbody
        world.add_light(pos=[0, 0, 1.5], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
        world.add_geom(
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[0.6, 0.6, 0.01],  # half-widths: past a moved camera's view (nominal +-0.27 m)
            rgba=[0.85, 0.85, 0.8, 1],
            contype=0,
            conaffinity=0,
        )
        target = world.add_body(name="target", mocap=True, pos=[0.1, 0.1, 0.02])
        target.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[0.025, 0, 0],
            rgba=[0.9, 0.15, 0.15, 1],
            contype=0,
            conaffinity=0,
        )
        world.add_camera(name="top", pos=[0, 0, 0.75], fovy=40.0)
        for geom in spec.geoms:
            if geom.type != mujoco.mjtGeom.mjGEOM_PLANE:
                geom.contype, geom.conaffinity = 0, 0
        for joint in ("shoulder", "elbow"):
            spec.add_actuator(
                name=joint,
                target=joint,
                trntype=mujoco.mjtTrn.mjTRN_JOINT,
                ctrlrange=[-1, 1],
                ctrllimited=True,
                gear=[0.05, 0, 0, 0, 0, 0],
            )
        return spec

    def bind(self, model: mujoco.MjModel) -> None:
        """Read link lengths from the model (no geometry duplicated here)."""
        super().bind(model)
        forearm = model.body("forearm")
        self.upper = float(np.linalg.norm(forearm.pos[:2]))
        tip = [
            g
            for g in range(model.ngeom)
            if model.geom_bodyid[g] == forearm.id
            and model.geom_type[g] == int(mujoco.mjtGeom.mjGEOM_SPHERE)
        ]
        self.lower = float(np.linalg.norm(model.geom_pos[tip[0]][:2]))
        self.target_mocap = int(model.body("target").mocapid[0])
        self.elbow_range = model.joint("elbow").range.copy()

    def fingertip(self, qpos: np.ndarray) -> np.ndarray:
        """Planar forward kinematics, [n, 2]."""
        q1, q12 = qpos[:, 0], qpos[:, 0] + qpos[:, 1]
        x = self.upper * np.cos(q1) + self.lower * np.cos(q12)
        y = self.upper * np.sin(q1) + self.lower * np.sin(q12)
        return np.stack([x, y], axis=1)

    def initial_state(self, rng, n):
        """Random arm pose at rest and a target in the reachable annulus."""
        qpos = np.stack(
            [rng.uniform(-np.pi, np.pi, n), rng.uniform(*(0.9 * self.elbow_range), n)], axis=1
        )
        radius = rng.uniform(*self.target_radius, n)
        angle = rng.uniform(-np.pi, np.pi, n)
        target = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return qpos, np.zeros((n, 2)), target

    def observation(self, qpos, qvel, extras):
        """[cos q, sin q, qdot, target, tip - target] (10)."""
        tip = self.fingertip(qpos)
        return np.concatenate([np.cos(qpos), np.sin(qpos), qvel, extras, tip - extras], axis=1)

    def _distance(self, qpos, extras):
        return np.linalg.norm(self.fingertip(qpos) - extras, axis=1)

    def terms(self, qpos, qvel, extras, action):
        """Dense distance shaping plus an on-target bonus."""
        dist = self._distance(qpos, extras)
        return {"distance": -dist / 0.2, "reached": (dist < self.success_radius).astype(np.float64)}

    def success(self, qpos, qvel, extras):
        """Fingertip within ``success_radius`` of the target."""
        return self._distance(qpos, extras) < self.success_radius

    def prepare_render(self, data, extras):
        """Move the mocap target to this env's target."""
        data.mocap_pos[self.target_mocap, :2] = extras
