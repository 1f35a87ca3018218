"""Observation processing shared by training and deployment (one source of truth)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn


class FrameStack:
    """Last ``k`` RGB frames per env as uint8 [n, 3k, H, W], oldest first."""

    def __init__(self, n: int, k: int, height: int, width: int) -> None:
        self.k = k
        self.frames = np.zeros((n, 3 * k, height, width), dtype=np.uint8)

    @staticmethod
    def to_chw(images: np.ndarray) -> np.ndarray:
        """[n, H, W, 3] uint8 -> [n, 3, H, W]."""
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def reset(self, rows: np.ndarray, images: np.ndarray) -> None:
        """Fill every slot of ``rows`` with ``images`` [n, H, W, 3]."""
        chw = self.to_chw(images)
        self.frames[rows] = np.tile(chw, (1, self.k, 1, 1))

    def push(self, rows: np.ndarray, images: np.ndarray) -> None:
        """Drop the oldest frame of ``rows`` and append ``images`` [n, H, W, 3]."""
        chw = self.to_chw(images)
        stacked = self.frames[rows]
        stacked[:, :-3] = stacked[:, 3:]
        stacked[:, -3:] = chw
        self.frames[rows] = stacked


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


class RunningNormalizer(nn.Module):
    """Running mean/std of a feature vector (parallel Welford); buffers travel in checkpoints."""

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch [n, dim] into the statistics."""
        x = x.reshape(-1, self.mean.numel()).to(torch.float64)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = x.shape[0]
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise and clip ``x`` [..., dim]."""
        std = torch.sqrt(self.var + self.eps).to(x.dtype)
        y = (x - self.mean.to(x.dtype)) / std
        return y.clamp(-self.clip, self.clip)
