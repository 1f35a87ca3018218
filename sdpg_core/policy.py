"""Deployable policy: actor + normaliser + frame stack + metadata, from a checkpoint (torch).

The same observation code runs in training, evaluation and the ROS policy node. The checks
that say whether a checkpoint fits a robot or a running deployment, made on its stored spec
before any network is built, are in ``sdpg_core.fit`` (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdpg_core import checkpoint
from sdpg_core.action import env_action
from sdpg_core.config import Config, from_dict
from sdpg_core.envs.base import EnvSpec
from sdpg_core.fit import Misfit, checkpoint_spec
from sdpg_core.models import Actor, resolve_device
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer
from sdpg_core.onnx_policy import OnnxPolicy, is_onnx
from sdpg_core.stream import StreamingPolicy

POLICY_PARTS = ("config", "spec", "actor", "normalizer")


def nonfinite_weights(data: dict[str, Any]) -> Misfit | None:
    """A Misfit naming the actor / normaliser tensors holding NaN or inf, or None."""
    bad = [
        f"{part}.{name}"
        for part in ("actor", "normalizer")
        for name, value in data.get(part, {}).items()
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all()
    ]
    if bad:
        return Misfit("nonfinite", f"non-finite weights in {', '.join(bad)}")
    return None


def load_problem(err: Exception) -> str:
    """The first concrete problem of a failed ``load_state_dict`` (torch lists them all)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    details = [line for line in lines if not line.startswith("Error(s) in loading")]
    return (details or lines or [repr(err)])[0]


def actor_input(
    spec: EnvSpec, obs: dict[str, np.ndarray], normalizer: RunningNormalizer, device: torch.device
) -> ActorObs:
    """Actor input from an observation dict: pixels as uint8 (with the proprio group when the
    spec has one), the proprio group alone, or normalised state."""
    if spec.obs_mode == "proprio":
        return ActorObs(torch.from_numpy(obs["proprio"]).to(device))
    if spec.obs_mode == "pixels":
        pixels = torch.from_numpy(obs["pixels"]).to(device)
        if not spec.proprio_dim:
            return ActorObs(pixels)
        return ActorObs(pixels, torch.from_numpy(obs["proprio"]).to(device))
    state = torch.from_numpy(obs["state"]).to(device)
    return ActorObs(normalizer(state).float())


def load_policy(path: str | Path, device: str = "cpu") -> StreamingPolicy:
    """A checkpoint's ``Policy`` (torch on ``device``) or an exported ``.onnx`` file's
    ``OnnxPolicy`` (onnxruntime on the CPU)."""
    return OnnxPolicy.load(path) if is_onnx(path) else Policy.load(path, device)


class Policy(StreamingPolicy):
    """A trained policy ready for inference with torch (batched ``act``; streaming in
    ``StreamingPolicy``)."""

    def __init__(
        self,
        cfg: Config,
        spec: EnvSpec,
        actor: Actor,
        normalizer: RunningNormalizer,
        device: torch.device,
    ) -> None:
        self.cfg, self.device = cfg, device
        self.actor = actor.to(device).eval()
        self.normalizer = normalizer.to(device).eval()
        super().__init__(spec)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Policy:
        """Build a policy from a checkpoint file."""
        return cls.from_checkpoint(checkpoint.load(path), path, device)

    @classmethod
    def from_checkpoint(
        cls, data: dict[str, Any], source: str | Path, device: str = "cpu"
    ) -> Policy:
        """Build a policy from loaded checkpoint ``data``; a one-line ValueError naming
        ``source`` for missing parts, weights that do not fit the spec, or NaN / inf weights."""
        checkpoint.require_keys(data, POLICY_PARTS, source, "a policy checkpoint")
        cfg = from_dict(data["config"], f"{source}: config")
        spec = checkpoint_spec(data, source)
        found = nonfinite_weights(data)
        if found:
            raise ValueError(f"{source}: {found.message}")
        actor, normalizer = Actor(spec, cfg.model), RunningNormalizer(spec.state_dim)
        for name, module in (("actor", actor), ("normalizer", normalizer)):
            try:
                module.load_state_dict(data[name])
            except (RuntimeError, TypeError, AttributeError) as err:
                raise ValueError(
                    f"{source}: {name} weights do not fit its spec: {load_problem(err)}"
                ) from err
        return cls(cfg, spec, actor, normalizer, resolve_device(device))

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batched deterministic actions float32 [n, A] in (-1, 1)."""
        mu, _ = self.actor(actor_input(self.spec, obs, self.normalizer, self.device))
        return env_action(mu, self.cfg.action).cpu().numpy()  # deterministic: tanh(clamp(mu))
