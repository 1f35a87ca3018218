"""Observation processing shared by training and deployment (one source of truth); numpy and
OpenCV only, so a deployment without torch (an exported ONNX policy) runs the same code. The
torch side (the actor's input, the state normaliser) is in ``sdpg_core.obs_tensors``."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sdpg_core.envs.kinematics import projected_gravity

ANGULAR_VELOCITY_SCALE = 0.25  # IMU angular velocity in the proprio group (legged_gym's)
COMMAND_SCALE = (2.0, 2.0, 0.25)  # a velocity command (vx, vy, yaw rate) in the proprio group


def proprio(
    position: np.ndarray,
    velocity: np.ndarray,
    prev_action: np.ndarray,
    default_pose: Sequence[float],
    velocity_scale: float,
    imu: tuple[np.ndarray, np.ndarray] | None = None,
    command: np.ndarray | None = None,
) -> np.ndarray:
    """The ``proprio`` group float32 [n, P]: with ``imu`` = (orientation (w, x, y, z) [n, 4],
    angular velocity in the body frame [n, 3]) first 0.25 x the angular velocity and the
    gravity direction in the body frame (6); then ``command`` [n, 3] x ``COMMAND_SCALE``; then
    joint positions relative to the default pose, scaled joint velocities and the previous
    action, each [n, A] in the policy's joint order (a joint state message is put in that order
    by ``safety.measured_by_name``). Training, evaluation and the ROS policy node all call
    this function."""
    parts = []
    if imu is not None:
        orientation, angular = (np.asarray(v, dtype=np.float64) for v in imu)
        parts += [ANGULAR_VELOCITY_SCALE * angular, projected_gravity(orientation)]
    if command is not None:
        parts.append(np.asarray(command, dtype=np.float64) * COMMAND_SCALE)
    parts += [
        np.asarray(position, dtype=np.float64) - np.asarray(default_pose),
        velocity_scale * np.asarray(velocity, dtype=np.float64),
        np.asarray(prev_action, dtype=np.float64),
    ]
    return np.concatenate(parts, axis=-1).astype(np.float32)


class FrameStack:
    """Last ``k`` frames per env as uint8 [n, c * k, H, W], oldest first (c = 3 for RGB, 1 for
    depth)."""

    def __init__(self, n: int, k: int, height: int, width: int, channels: int = 3) -> None:
        self.k, self.channels = k, channels
        self.frames = np.zeros((n, channels * k, height, width), dtype=np.uint8)

    @staticmethod
    def to_chw(images: np.ndarray) -> np.ndarray:
        """[n, H, W, c] uint8 -> [n, c, H, W]."""
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def reset(self, rows: np.ndarray, images: np.ndarray) -> None:
        """Fill every slot of ``rows`` with ``images`` [n, H, W, c]."""
        chw = self.to_chw(images)
        self.frames[rows] = np.tile(chw, (1, self.k, 1, 1))

    def push(self, rows: np.ndarray, images: np.ndarray) -> None:
        """Drop the oldest frame of ``rows`` and append ``images`` [n, H, W, c]."""
        chw, c = self.to_chw(images), self.channels
        stacked = self.frames[rows]
        stacked[:, :-c] = stacked[:, c:]
        stacked[:, -c:] = chw
        self.frames[rows] = stacked

    def latest_rgb(self, row: int) -> np.ndarray:
        """The newest frame of ``row`` as RGB uint8 [H, W, 3] (depth shown as grey)."""
        frame = self.frames[row, -self.channels :].transpose(1, 2, 0)
        return np.repeat(frame, 3 // self.channels, axis=2).copy()


def centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest centred region of ``image`` [H', W', ...] with the aspect ratio width:height."""
    rows, cols = image.shape[:2]
    if rows * width > cols * height:  # taller than the target: crop rows
        keep = max(1, round(cols * height / width))
        top = (rows - keep) // 2
        return image[top : top + keep]
    keep = max(1, round(rows * width / height))
    left = (cols - keep) // 2
    return image[:, left : left + keep]


def prepare_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Camera image [H', W', 3] uint8 RGB of any size -> [height, width, 3], the training size.

    A frame of another aspect ratio is centre-cropped to width:height first (no stretching),
    then resized with ``cv2.INTER_AREA`` (pixel-area averaging: no aliasing when shrinking).
    A frame of the training size passes unchanged."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
    if image.shape[:2] == (height, width):
        return image
    cropped = np.ascontiguousarray(centre_crop(image, height, width))
    return cv2.resize(cropped, (width, height), interpolation=cv2.INTER_AREA)


def depth_frame(depth: np.ndarray, depth_range: Sequence[float]) -> np.ndarray:
    """Depth in metres [..., H, W] -> the policy's depth frame uint8 [..., H, W, 1]: clipped to
    ``depth_range`` (near, far) and quantised to 256 levels over it. No return (0, NaN, inf: a
    RealSense hole) reads as ``far``, like a rendered surface beyond the range."""
    near, far = depth_range
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    metres = np.clip(np.where(valid, depth, far), near, far)
    return np.rint((metres - near) * (255.0 / (far - near))).astype(np.uint8)[..., None]


def prepare_depth(
    depth: np.ndarray, height: int, width: int, depth_range: Sequence[float]
) -> np.ndarray:
    """Depth image [H', W'] float metres of any size -> the depth frame [height, width, 1]:
    centre crop to width:height, nearest-neighbour resize (no blending across edges), then
    ``depth_frame``."""
    if depth.ndim != 2 or depth.dtype.kind != "f" or 0 in depth.shape:
        raise ValueError(
            f"expected a depth image [H, W] in metres, got {depth.dtype} {depth.shape}"
        )
    if depth.shape != (height, width):
        cropped = np.ascontiguousarray(centre_crop(depth, height, width), dtype=np.float32)
        depth = cv2.resize(cropped, (width, height), interpolation=cv2.INTER_NEAREST)
    return depth_frame(depth, depth_range)
