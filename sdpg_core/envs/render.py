"""Pixels for the rendered (nominal) envs: mujoco.Renderer on EGL plus a frame stack."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.task import Task
from sdpg_core.obs import FrameStack

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


class PixelRenderer:
    """Renders envs from their physics state; keeps one frame stack per rendered env."""

    def __init__(
        self,
        model: mujoco.MjModel,
        task: Task,
        count: int,
        size: int,
        stack: int,
        camera: str,
        shadows: bool = False,
        msaa: bool = False,
    ) -> None:
        if not shadows:
            model.vis.quality.shadowsize = 0
        if not msaa:
            model.vis.quality.offsamples = 0
        self.task = task
        self.camera = camera
        self._data = mujoco.MjData(model)
        self._model = model
        self._renderer = mujoco.Renderer(model, size, size)
        self.stack = FrameStack(count, stack, size, size)

    def render(self, physics: np.ndarray, extras: np.ndarray) -> np.ndarray:
        """Images uint8 [n, H, W, 3] of n envs given their physics state and task extras."""
        out = np.empty((len(physics), *self.stack.frames.shape[2:], 3), dtype=np.uint8)
        for i, (state, extra) in enumerate(zip(physics, extras, strict=True)):
            mujoco.mj_setState(self._model, self._data, state, FULLPHYSICS)
            self.task.prepare_render(self._data, extra)
            mujoco.mj_forward(self._model, self._data)
            self._renderer.update_scene(self._data, self.camera)
            out[i] = self._renderer.render()
        return out

    def close(self) -> None:
        """Free the GL context."""
        self._renderer.close()
