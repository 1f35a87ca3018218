"""Latency of a batch of envs (``env.randomize.latency``): controls on their way to the motors,
joint / IMU readings from substeps ago, camera frames from steps ago or dropped. The buffers are
env state (``EnvState.ctrl_queue``, ``sensed``, ``pending``); the delays come from each env's
draws (``Randomizer``), a hash of its seed and step for the jitter and the drops."""

from __future__ import annotations

import numpy as np

from sdpg_core.envs.randomize import Randomizer


class Latency:
    """Delay buffers of ``num_envs`` envs: ``ctrl_queue`` [N, L, nu] (the last L substep
    controls commanded), ``sensed`` [N, nstate] (the physics as the sensors saw it; width 0
    without joint delay), ``pending`` [R, D + 1, H, W, c] (the last frames of each rendered env;
    None without camera delay or drops)."""

    def __init__(self, randomizer: Randomizer, num_envs: int, nu: int, nstate: int) -> None:
        self.randomizer = randomizer
        self.ctrl_queue = np.zeros((num_envs, randomizer.max_action_delay, nu))
        self.sensed = np.zeros((num_envs, nstate if randomizer.has("joint_delay") else 0))
        self.pending: np.ndarray | None = None

    def watch_camera(self, rendered: int, frame_shape: tuple[int, ...]) -> None:
        """Hold frames of ``rendered`` envs (shape [H, W, c] each) when frames are delayed or
        dropped."""
        r = self.randomizer
        if r.max_camera_delay or r.has("camera_drop"):
            self.pending = np.zeros((rendered, r.max_camera_delay + 1, *frame_shape), np.uint8)

    def reset(self, ids: np.ndarray, held: np.ndarray | None, physics: np.ndarray) -> None:
        """Fresh episodes for ``ids``: ``held`` [n, nu] (the zero action's control) fills the
        control queue until the first command lands; the sensors read ``physics`` [n, nstate]."""
        if self.ctrl_queue.shape[1]:
            self.ctrl_queue[ids] = held[:, None]
        self.sensed[ids] = physics[:, : self.sensed.shape[1]]

    def delayed(
        self, ctrl: np.ndarray, params: np.ndarray, steps: np.ndarray, frame_skip: int
    ) -> np.ndarray:
        """Controls per substep [N, frame_skip, nu]: an env's new ``ctrl`` [N, nu] reaches its
        motors after its action delay (plus jitter) in substeps; until then the older ones. A
        motor never goes back to a command older than one it already applied (a longer delay
        this step than the last one holds the last applied command)."""
        queue = self.ctrl_queue
        if queue.shape[1] == 0:
            return ctrl[:, None, :]
        span, r = queue.shape[1], self.randomizer
        timeline = np.concatenate([queue, np.repeat(ctrl[:, None], frame_skip, axis=1)], axis=1)
        delay = r.action_delays(params, steps)
        last = span - 1 - r.action_delays(params, steps - 1)
        index = np.maximum(span + np.arange(frame_skip)[None] - delay[:, None], last[:, None])
        self.ctrl_queue = timeline[:, -span:].copy()
        return np.take_along_axis(timeline, index[:, :, None], axis=1)

    def sense(self, before: np.ndarray, substeps: np.ndarray, params: np.ndarray) -> None:
        """Joint states and IMU as the sensors report them: each env's physics its joint delay
        ago, from ``before`` [N, nstate] and the step's ``substeps`` [N, frame_skip, nstate]."""
        if self.sensed.shape[1] == 0:
            return
        delay = self.randomizer.column(params, "joint_delay")[:, 0].astype(np.int64)
        history = np.concatenate([before[:, None], substeps], axis=1)
        self.sensed[:] = history[np.arange(len(history)), substeps.shape[1] - delay]

    def restart_frames(self, rows: np.ndarray, images: np.ndarray) -> None:
        """Render rows ``rows`` start their episodes on ``images``."""
        if self.pending is not None:
            self.pending[rows] = images[:, None]

    def frames(
        self, rows: np.ndarray, images: np.ndarray, params: np.ndarray, steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, frames) that reach the stacks: each env's frame from its camera delay ago,
        except where this frame is dropped (``params``, ``steps``: those of the rows' envs)."""
        if self.pending is None:
            return rows, images
        pending = self.pending[rows]
        pending[:, :-1] = pending[:, 1:]
        pending[:, -1] = images
        self.pending[rows] = pending
        delay = self.randomizer.column(params, "camera_delay")[:, 0].astype(np.int64)
        frames = pending[np.arange(len(rows)), pending.shape[1] - 1 - delay]
        keep = ~self.randomizer.dropped(params, steps)
        return rows[keep], frames[keep]
