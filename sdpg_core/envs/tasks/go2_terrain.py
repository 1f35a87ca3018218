"""Go2-class quadruped walking over an obstacle that only its head depth camera reveals."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.registry import register_task
from sdpg_core.envs.tasks.go2 import Go2Walk

HALF_HEIGHT, HALF_WIDTH = 0.25, 0.75  # every obstacle: 0.5 m tall (mostly under the floor)
# kind: (half length along x (m), top height range (m))
OBSTACLES = {
    "box": (0.5, (0.05, 0.15)),  # climb on, walk 1 m, step down
    "step": (3.0, (0.05, 0.15)),  # climb on and stay up
    "hurdle": (0.05, (0.05, 0.12)),  # a bar to step over
}
PARKED_X = -30.0  # obstacles not in this episode wait here, below the floor
START, KIND = slice(25, 26), slice(26, 27)  # extras: the obstacle's near edge x, its kind index


@register_task("go2_terrain", "Go2-class quadruped: walk over a box, step or hurdle (depth camera)")
class Go2Terrain(Go2Walk):
    """go2_walk's rewards with the robot heading +x and one obstacle of random kind and height
    ahead (1-1.8 m), seen only by the depth camera. Obstacles are heavy free bodies without
    gravity, so each env has its own (state: the SDPG auxiliaries share their nominal's).
    Success: no fall, and the base 1.2 m past the obstacle's near edge at the end."""

    variants = (("", "pixels"), ("_state", "state"))
    extras_dim = 27
    command_range = ((0.3, 0.8), (0.0, 0.0), (-0.2, 0.2))  # ahead, over the obstacle

    def build_spec(self) -> mujoco.MjSpec:
        """go2_walk's model and one body per obstacle kind (touching the robot only)."""
        spec = super().build_spec()
        for kind, (half_length, _) in OBSTACLES.items():
            body = spec.worldbody.add_body(name=f"obstacle_{kind}", pos=[PARKED_X, 0, -1])
            body.add_freejoint(name=f"obstacle_{kind}")
            body.gravcomp = 1.0
            geom = body.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[half_length, HALF_WIDTH, HALF_HEIGHT],
                mass=500.0,
                rgba=[0.55, 0.45, 0.35, 1],
            )
            geom.contype, geom.conaffinity = 2, 0
        for joint in spec.joints:
            if joint.name.startswith("obstacle_"):
                joint.damping = [2000.0, 0, 0]  # a push from the robot barely moves them
        return spec

    def bind(self, model: mujoco.MjModel) -> None:
        """go2_walk's caches and each obstacle's qpos columns."""
        super().bind(model)
        self.obstacle_qpos = [
            int(model.jnt_qposadr[model.joint(f"obstacle_{kind}").id]) for kind in OBSTACLES
        ]

    def initial_state(self, rng, n):
        """Heading +x; one obstacle of a random kind and height ahead, the others parked."""
        qpos, qvel, extras = super().initial_state(rng, n)
        qpos[:, 3:7] = [1.0, 0.0, 0.0, 0.0]
        kinds = rng.integers(len(OBSTACLES), size=n)
        start = rng.uniform(1.0, 1.8, n)
        for k, ((half_length, (low, high)), column) in enumerate(
            zip(OBSTACLES.values(), self.obstacle_qpos, strict=True)
        ):
            here = kinds == k
            top = rng.uniform(low, high, n)
            qpos[:, column : column + 3] = [PARKED_X - 10 * k, 0.0, -1.0]
            qpos[here, column] = start[here] + half_length
            qpos[here, column + 2] = top[here] - HALF_HEIGHT
            qpos[:, column + 3] = 1.0
        extras[:, START], extras[:, KIND] = start[:, None], kinds[:, None]
        return qpos, qvel, extras

    def ground(self, qpos: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """The floor, or an obstacle's top where a point is above it."""
        height = np.zeros(xy.shape[:-1])
        for (half_length, _), column in zip(OBSTACLES.values(), self.obstacle_qpos, strict=True):
            centre = qpos[:, None, column : column + 3]
            inside = (np.abs(xy[..., 0] - centre[..., 0]) <= half_length) & (
                np.abs(xy[..., 1] - centre[..., 1]) <= HALF_WIDTH
            )
            height = np.where(inside, np.maximum(height, centre[..., 2] + HALF_HEIGHT), height)
        return height

    def observation(self, qpos, qvel, extras):
        """go2_walk's privileged state, then the obstacle's near edge ahead of the base and its
        top height (what the depth camera shows)."""
        rows = np.arange(len(qpos))
        columns = np.asarray(self.obstacle_qpos)[extras[:, KIND][:, 0].astype(int)]
        top = qpos[rows, columns + 2] + HALF_HEIGHT
        ahead = extras[:, START][:, 0] - qpos[:, 0]
        return np.concatenate(
            [super().observation(qpos, qvel, extras), ahead[:, None], top[:, None]], 1
        )

    def success(self, qpos, qvel, extras):
        """The base 1.2 m past the obstacle's near edge (the episode ended without a fall)."""
        return qpos[:, 0] >= extras[:, START][:, 0] + 1.2
