"""Planar biped walker: walk forward at >= 1 m/s with the torso high and upright."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.registry import register_task
from sdpg_core.envs.task import ASSETS, tolerance
from sdpg_core.envs.tasks.planar import PlanarLocomotion


@register_task("walker", "planar biped walker, walk forward at >= 1 m/s (dm_control walk)")
class Walker(PlanarLocomotion):
    """Reward = ``stand`` ((3 standing + upright) / 4) * ``move`` ((5 speed term + 1) / 6)."""

    frame_skip = 10  # 0.0025 s physics -> 0.025 s control
    reward_terms = ("stand", "move")
    stand_height = 1.2
    walk_speed = 1.0

    def build_spec(self) -> mujoco.MjSpec:
        """Torso and two thigh/leg/foot legs; 6 torque motors; checker floor, tracking camera."""
        return mujoco.MjSpec.from_file(str(ASSETS / "walker.xml"))

    def terms(self, qpos, qvel, extras, action):
        """dm_control walk factors; their product is the reward."""
        height = self.frames(qpos)[0][:, self.torso, 1]
        standing = tolerance(height, self.stand_height, np.inf, self.stand_height / 2)
        upright = (1.0 + np.cos(qpos[:, self.root[2]])) / 2.0
        speed = tolerance(
            self.forward_velocity(qvel),
            self.walk_speed,
            np.inf,
            self.walk_speed / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return {"stand": (3.0 * standing + upright) / 4.0, "move": (5.0 * speed + 1.0) / 6.0}
