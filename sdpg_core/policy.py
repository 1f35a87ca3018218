"""Deployable policy: actor + normaliser + frame stack + metadata, from a checkpoint.

The same observation code runs in training, evaluation and the ROS policy node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sdpg_core import checkpoint
from sdpg_core.config import Config, from_dict
from sdpg_core.envs.base import EnvSpec
from sdpg_core.models import Actor, resolve_device
from sdpg_core.obs import FrameStack, RunningNormalizer, prepare_image


def actor_input(
    spec: EnvSpec, obs: dict[str, np.ndarray], normalizer: RunningNormalizer, device: torch.device
) -> torch.Tensor:
    """Actor input tensor from an observation dict (pixels as uint8, or normalised state)."""
    if spec.obs_mode == "pixels":
        return torch.from_numpy(obs["pixels"]).to(device)
    state = torch.from_numpy(obs["state"]).to(device)
    return normalizer(state).float()


def deterministic_action(mu: torch.Tensor, bound: float) -> torch.Tensor:
    """Evaluation/deployment action in (-1, 1): tanh(clamp(mu))."""
    return torch.tanh(mu.clamp(-bound, bound))


class Policy:
    """A trained policy ready for inference (batched ``act`` and streaming ``act_image``)."""

    def __init__(
        self,
        cfg: Config,
        spec: EnvSpec,
        actor: Actor,
        normalizer: RunningNormalizer,
        device: torch.device,
    ) -> None:
        self.cfg, self.spec, self.device = cfg, spec, device
        self.actor = actor.to(device).eval()
        self.normalizer = normalizer.to(device).eval()
        self.stream: FrameStack | None = None

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Policy:
        """Build a policy from a checkpoint file."""
        data = checkpoint.load(path)
        cfg = from_dict(data["config"], f"{path}: config")
        spec = EnvSpec.from_dict(data["spec"])
        actor = Actor(spec, cfg.model)
        actor.load_state_dict(data["actor"])
        normalizer = RunningNormalizer(spec.state_dim)
        normalizer.load_state_dict(data["normalizer"])
        return cls(cfg, spec, actor, normalizer, resolve_device(device))

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batched deterministic actions float32 [n, A] in (-1, 1)."""
        mu, _ = self.actor(actor_input(self.spec, obs, self.normalizer, self.device))
        return deterministic_action(mu, self.cfg.algo.mu_bound).cpu().numpy()

    def reset_stream(self) -> None:
        """Forget the frame history (next image fills the whole stack)."""
        self.stream = None

    def act_image(self, image: np.ndarray) -> np.ndarray:
        """Action [A] for one RGB camera image [H, W, 3] uint8, stacking frames as in training."""
        if self.spec.obs_mode != "pixels":
            raise ValueError(f"policy for {self.spec.task!r} acts on state, not images")
        channels, height, width = self.spec.pixel_shape
        frame = prepare_image(image, height, width)[None]
        if self.stream is None:
            self.stream = FrameStack(1, channels // 3, height, width)
            self.stream.reset(np.zeros(1, dtype=np.int64), frame)
        else:
            self.stream.push(np.zeros(1, dtype=np.int64), frame)
        return self.act({"pixels": self.stream.frames})[0]
