"""Planar one-legged hopper: hop forward fast while staying up (dm_control ``hop``)."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.registry import register_task
from sdpg_core.envs.task import ASSETS, tolerance
from sdpg_core.envs.tasks.planar import PlanarLocomotion


@register_task("hopper", "planar one-legged hopper, hop forward at >= 2 m/s (dm_control hop)")
class Hopper(PlanarLocomotion):
    """Reward = ``standing`` (torso >= 0.6 m above the foot) * ``hopping`` (speed, linear)."""

    frame_skip = 4  # 0.005 s physics -> 0.02 s control
    reward_terms = ("standing", "hopping")
    stand_height = 0.6
    hop_speed = 2.0

    def build_spec(self) -> mujoco.MjSpec:
        """Torso, pelvis, thigh, calf, foot; 4 torque motors; checker floor, tracking camera."""
        return mujoco.MjSpec.from_file(str(ASSETS / "hopper.xml"))

    def bind(self, model: mujoco.MjModel) -> None:
        """Also cache the foot id."""
        super().bind(model)
        self.foot = model.body("foot").id

    def height(self, qpos: np.ndarray) -> np.ndarray:
        """Torso centre of mass above the foot's (dm_control's hopper height), [n]."""
        com_z = self.coms(qpos, [self.torso, self.foot])[..., 1]
        return com_z[:, 0] - com_z[:, 1]

    def terms(self, qpos, qvel, extras, action):
        """Indicator of standing tall and a linear ramp to the hop speed (0.5 at 1 m/s)."""
        speed = self.forward_velocity(qvel)
        return {
            "standing": tolerance(self.height(qpos), self.stand_height, 2.0, 0.0),
            "hopping": tolerance(
                speed,
                self.hop_speed,
                np.inf,
                self.hop_speed / 2,
                value_at_margin=0.5,
                sigmoid="linear",
            ),
        }
