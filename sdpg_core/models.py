"""Networks: DrQ-v2 style pixel encoder, actor (mean + state-independent log-std), critic."""

from __future__ import annotations

import torch
from torch import nn

from sdpg_core.config import ModelConfig
from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs_tensors import ActorObs


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda[:i]``; asking for CUDA without one is a clear error."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {name!r} requested but CUDA is not available (use --device cpu)"
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}: use cpu or cuda")
    return device


def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights, zero biases for linear and conv layers."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        gain = nn.init.calculate_gain("relu") if isinstance(module, nn.Conv2d) else 1.0
        nn.init.orthogonal_(module.weight, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    """Linear -> LayerNorm -> ELU per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.LayerNorm(width), nn.ELU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


LOGIT_FLOOR = 30.0


class SpatialSoftmax(nn.Module):
    """Feature maps [n, K, h, w] -> expected image coordinates [n, 2K] in [-1, 1] (keypoints).

    Logits more than ``LOGIT_FLOOR`` below their map's maximum are held there: their weights
    (< e^-30) move no keypoint, but unclamped they reach the float32 denormal range, whose
    gradients slow CPU backprop (docs/experiments/cpu-budget.md).
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Softmax over each map's pixels, then the mean (x, y) under it."""
        h, w = maps.shape[-2:]
        logits = maps.flatten(2) / self.log_temperature.exp()
        floor = logits.amax(dim=-1, keepdim=True).detach() - LOGIT_FLOOR
        attention = torch.softmax(logits.clamp(min=floor), dim=-1)
        ys = torch.linspace(-1.0, 1.0, h, device=maps.device)
        xs = torch.linspace(-1.0, 1.0, w, device=maps.device)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        x = (attention * grid_x.flatten()).sum(-1)
        y = (attention * grid_y.flatten()).sum(-1)
        return torch.cat([x, y], dim=-1)


class PixelEncoder(nn.Module):
    """uint8 [n, C, H, W] -> features [n, F]: conv 3x3 stack (ReLU), then flatten (DrQ-v2) or
    spatial-softmax keypoints, then Linear, LayerNorm, Tanh."""

    def __init__(self, shape: tuple[int, int, int], cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = shape[0]
        for i, stride in enumerate(cfg.encoder_strides):
            layers.append(nn.Conv2d(channels, cfg.encoder_channels, 3, stride=stride))
            last = i == len(cfg.encoder_strides) - 1
            if not (last and cfg.encoder == "spatial_softmax"):  # keypoints see raw logits
                layers.append(nn.ReLU())
            channels = cfg.encoder_channels
        head = SpatialSoftmax() if cfg.encoder == "spatial_softmax" else nn.Flatten()
        self.convs = nn.Sequential(*layers, head)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *shape)).shape[1]
        self.project = nn.Sequential(
            nn.Linear(flat, cfg.encoder_features), nn.LayerNorm(cfg.encoder_features), nn.Tanh()
        )
        self.out_dim = cfg.encoder_features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Scale to x / 255 - 0.5 and encode."""
        return self.project(self.convs(pixels.float() / 255.0 - 0.5))


class Actor(nn.Module):
    """Pre-tanh Gaussian policy: mean head on pixels (fused with an MLP on the proprio group
    when the task has one), on the proprio group alone, or on normalised state; a learned
    log-std vector."""

    def __init__(self, spec: EnvSpec, cfg: ModelConfig) -> None:
        super().__init__()
        self.proprio: nn.Module | None = None
        if spec.obs_mode == "pixels":
            self.encoder: nn.Module = PixelEncoder(spec.pixel_shape, cfg)
            features = self.encoder.out_dim
            if spec.proprio_dim:
                width = cfg.proprio_features
                self.proprio = nn.Sequential(
                    nn.Linear(spec.proprio_dim, width), nn.LayerNorm(width), nn.ELU()
                )
                features += width
        else:
            self.encoder = nn.Identity()
            features = spec.proprio_dim if spec.obs_mode == "proprio" else spec.state_dim
        self.head = mlp(features, cfg.actor_hidden, spec.action_dim)
        self.log_sigma = nn.Parameter(torch.zeros(spec.action_dim))
        self.apply(orthogonal_init)
        nn.init.orthogonal_(self.head[-1].weight, 0.01)  # initial mean ~ 0: explore around it

    def forward(self, obs: ActorObs) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [n, ...] -> (mu [n, A], log_sigma [n, A]), unclamped."""
        features = self.encoder(obs.main)
        if self.proprio is not None:
            features = torch.cat([features, self.proprio(obs.proprio)], dim=-1)
        mu = self.head(features)
        return mu, self.log_sigma.expand_as(mu)


class Critic(nn.Module):
    """V(s) on normalised privileged state: [n, Ds] -> [n]."""

    def __init__(self, state_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = mlp(state_dim, cfg.critic_hidden, 1)
        self.apply(orthogonal_init)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """Values [n]."""
        return self.net(state).squeeze(-1)
