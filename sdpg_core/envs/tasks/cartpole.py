"""Cart-pole swing-up: push the cart so the pole, hanging down at reset, balances upright."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.registry import register_task
from sdpg_core.envs.task import ASSETS, Task, tolerance


@register_task("cartpole_swingup", "cart-pole swing-up from hanging down (dm_control-like)")
class CartpoleSwingup(Task):
    """Reward = product of ``upright``, ``centered``, ``small_control``, ``small_velocity``."""

    camera = "cart"
    episode_steps = 1000
    frame_skip = 1
    reward_terms = ("upright", "centered", "small_control", "small_velocity")
    init_noise = 0.01

    def build_spec(self) -> mujoco.MjSpec:
        """Rail, cart, pole, floor, light, side camera, one cart motor (gear 10 N)."""
        return mujoco.MjSpec.from_file(str(ASSETS / "cartpole.xml"))

    def initial_state(self, rng, n):
        """Cart near 0, pole pointing down (angle pi), small velocities."""
        qpos = self.init_noise * rng.standard_normal((n, 2))
        qpos[:, 1] += np.pi
        qvel = self.init_noise * rng.standard_normal((n, 2))
        return qpos, qvel, np.zeros((n, 0))

    def observation(self, qpos, qvel, extras):
        """[cart position, cos angle, sin angle, cart velocity, angular velocity] (5)."""
        angle = qpos[:, 1]
        return np.stack([qpos[:, 0], np.cos(angle), np.sin(angle), qvel[:, 0], qvel[:, 1]], axis=1)

    def terms(self, qpos, qvel, extras, action):
        """dm_control smooth factors, each in [0, 1] (mostly [0.5, 1] except ``upright``)."""
        control = np.clip(np.asarray(action, dtype=np.float64)[:, 0], -1.0, 1.0)
        small_control = tolerance(control, 0.0, 0.0, 1.0, value_at_margin=0.0, sigmoid="quadratic")
        return {
            "upright": (np.cos(qpos[:, 1]) + 1.0) / 2.0,
            "centered": (1.0 + tolerance(qpos[:, 0], 0.0, 0.0, 2.0)) / 2.0,
            "small_control": (4.0 + small_control) / 5.0,
            "small_velocity": (1.0 + tolerance(qvel[:, 1], 0.0, 0.0, 5.0)) / 2.0,
        }

    def combine(self, terms):
        """The product of the terms (so the reward lies in [0, 1])."""
        return np.prod(np.stack(list(terms.values())), axis=0)
