"""The torch side of observations: the actor's input container and the running normaliser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class ActorObs:
    """What the actor sees, with the same leading dims on every part: ``main`` (uint8 pixels
    [..., C, H, W], the proprio group [..., P] of a proprio-only actor, or normalised state
    [..., Ds]) and ``proprio`` ([..., P] float32 beside pixels, or None)."""

    main: torch.Tensor
    proprio: torch.Tensor | None = None

    @classmethod
    def zeros(cls, lead: tuple[int, ...], spec: Any, device: torch.device | str) -> ActorObs:
        """Zero-filled parts for an env spec: pixels (with proprio if the task has a group) or
        state, each with leading dims ``lead``."""
        if spec.obs_mode == "pixels":
            main = torch.zeros((*lead, *spec.pixel_shape), dtype=torch.uint8, device=device)
            width = spec.proprio_dim
            return cls(main, torch.zeros((*lead, width), device=device) if width else None)
        width = spec.proprio_dim if spec.obs_mode == "proprio" else spec.state_dim
        return cls(torch.zeros((*lead, width), device=device))

    def _map(self, fn: Any) -> ActorObs:
        """Apply ``fn`` to every part."""
        return ActorObs(fn(self.main), None if self.proprio is None else fn(self.proprio))

    def __getitem__(self, index: Any) -> ActorObs:
        """Rows ``index`` of every part."""
        return self._map(lambda x: x[index])

    def __setitem__(self, index: Any, value: ActorObs) -> None:
        """Write ``value``'s parts into rows ``index``."""
        self.main[index] = value.main
        if self.proprio is not None:
            self.proprio[index] = value.proprio

    def __len__(self) -> int:
        """Size of the first leading dim."""
        return len(self.main)

    def flatten(self, start: int, end: int) -> ActorObs:
        """Leading dims ``start..end`` merged (e.g. [T, B, ...] -> [T * B, ...])."""
        return self._map(lambda x: x.flatten(start, end))

    def to(self, device: torch.device | str) -> ActorObs:
        """Every part on ``device``."""
        return self._map(lambda x: x.to(device))


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
        self.fold(*self.moments(x))

    def moments(self, x: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(n, mean [dim], population var [dim]) of a batch [n, dim], in float64."""
        x = x.reshape(-1, self.mean.numel()).to(torch.float64)
        if len(x) == 0:
            return 0, torch.zeros_like(self.mean), torch.zeros_like(self.var)
        return len(x), x.mean(0), x.var(0, unbiased=False)

    @torch.no_grad()
    def fold(self, n: float, batch_mean: torch.Tensor, batch_var: torch.Tensor) -> None:
        """Fold a batch given by its moments into the statistics (parallel Welford)."""
        if n == 0:
            return
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
