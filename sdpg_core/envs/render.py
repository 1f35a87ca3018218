"""Frames for the rendered (nominal) envs: mujoco.Renderer on EGL plus a frame stack."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from sdpg_core.envs.randomize import Randomizer
from sdpg_core.envs.task import Task
from sdpg_core.obs import FrameStack, depth_frame

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


class PixelRenderer:
    """Renders envs from their physics state at ``size`` = (height, width); keeps one frame
    stack per rendered env. With a
    ``depth_range`` the camera is a depth camera (metres along the optical axis, as a RealSense
    depth stream) and frames are ``obs.depth_frame``s; without, RGB. With a ``randomizer``
    whose vision draws are on, ``model`` must be the renderer's own copy: each env's lights,
    colours and camera are set from its draws before it is drawn."""

    def __init__(
        self,
        model: mujoco.MjModel,
        task: Task,
        count: int,
        size: tuple[int, int],
        stack: int,
        camera: str,
        shadows: bool = False,
        msaa: bool = False,
        depth_range: Sequence[float] = (),
        randomizer: Randomizer | None = None,
    ) -> None:
        if not shadows:
            model.vis.quality.shadowsize = 0
        if not msaa:
            model.vis.quality.offsamples = 0
        self.task = task
        self.camera = camera
        self.depth_range = tuple(depth_range)
        self.randomizer = randomizer
        self._camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        self._data = mujoco.MjData(model)
        self._model = model
        height, width = size
        self._renderer = mujoco.Renderer(model, height, width)
        if self.depth_range:
            self._renderer.enable_depth_rendering()
        self.stack = FrameStack(count, stack, height, width, 1 if self.depth_range else 3)

    def camera_images(
        self, physics: np.ndarray, extras: np.ndarray, params: np.ndarray | None = None
    ) -> np.ndarray:
        """What the camera sees of n envs given their physics state, task extras and (with a
        randomizer) vision draws: RGB uint8 [n, H, W, 3], or depth float32 metres [n, H, W]."""
        size = self.stack.frames.shape[2:]
        shape, dtype = (size, np.float32) if self.depth_range else ((*size, 3), np.uint8)
        out = np.empty((len(physics), *shape), dtype=dtype)
        for i, (state, extra) in enumerate(zip(physics, extras, strict=True)):
            if params is not None and self.randomizer is not None and self.randomizer.dim:
                self.randomizer.apply_vision(self._model, params[i])
                if self._camera_id >= 0:
                    self.randomizer.apply_camera(self._model, self._camera_id, params[i])
            mujoco.mj_setState(self._model, self._data, state, FULLPHYSICS)
            self.task.prepare_render(self._data, extra)
            mujoco.mj_forward(self._model, self._data)
            self._renderer.update_scene(self._data, self.camera)
            out[i] = self._renderer.render()
        return out

    def render(
        self,
        physics: np.ndarray,
        extras: np.ndarray,
        params: np.ndarray | None = None,
        steps: np.ndarray | None = None,
    ) -> np.ndarray:
        """Policy frames uint8 [n, H, W, c] of n envs (c = 3 RGB, 1 depth); with draws
        ``params`` [n, K] at episode ``steps`` [n], randomised looks and image noise."""
        images = self.camera_images(physics, extras, params)
        randomized = params is not None and self.randomizer is not None and self.randomizer.dim
        if self.depth_range:
            if randomized:
                self.randomizer.postprocess_depth(images, params, steps)
            return depth_frame(images, self.depth_range)
        if randomized:
            self.randomizer.postprocess_rgb(images, params, steps)
        return images

    def close(self) -> None:
        """Free the GL context."""
        self._renderer.close()
