"""Test helpers for the ROS nodes: tiny untrained checkpoints and a message collector."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from rclpy.node import Node

from sdpg_core import checkpoint
from sdpg_core.config import resolve
from sdpg_core.envs.registry import make_env
from sdpg_core.models import Actor
from sdpg_core.obs import RunningNormalizer

TINY_MODEL = [
    "model.encoder_channels=4",
    "model.encoder_features=16",
    "model.actor_hidden=[16]",
]


def make_checkpoint(
    path: str | Path, seed: int = 0, image_size: int = 32, task: str = "reacher", nan: bool = False
) -> Path:
    """Write a loadable checkpoint of a randomly initialised pixel actor (no training).

    ``seed`` picks the weights (different seeds act differently); ``nan`` poisons the mean
    head so every action is NaN.
    """
    cfg = resolve(task, overrides=[f"env.image_size={image_size}", *TINY_MODEL])
    env = make_env(task, cfg.env, 1, render=False)
    pixels = (3 * cfg.env.frame_stack, image_size, image_size)
    spec = dataclasses.replace(env.spec, obs_mode="pixels", pixel_shape=pixels)
    env.close()
    torch.manual_seed(seed)
    actor = Actor(spec, cfg.model)
    if nan:
        with torch.no_grad():
            actor.head[-1].bias.fill_(float("nan"))
    payload = {
        "config": cfg.to_dict(),
        "spec": spec.to_dict(),
        "actor": actor.state_dict(),
        "normalizer": RunningNormalizer(spec.state_dim).state_dict(),
    }
    return checkpoint.save(payload, path)


class Collector:
    """Subscribes a test node to a topic and keeps every message received."""

    def __init__(self, node: Node, msg_type: type, topic: str, qos) -> None:
        self.messages: list = []
        node.create_subscription(msg_type, topic, self.messages.append, qos)

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def last(self):
        """The latest message."""
        return self.messages[-1]
