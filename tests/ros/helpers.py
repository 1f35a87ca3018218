"""Test helpers for the ROS nodes: tiny untrained checkpoints and message collectors."""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import torch
from rclpy.node import Node

from sdpg_core import checkpoint
from sdpg_core.config import resolve
from sdpg_core.envs.registry import make_env
from sdpg_core.models import Actor
from sdpg_core.obs_tensors import RunningNormalizer

TINY_MODEL = [
    "model.encoder_channels=4",
    "model.encoder_features=16",
    "model.actor_hidden=[16]",
]


def make_checkpoint(
    path: str | Path,
    seed: int = 0,
    image_size: int = 32,
    task: str = "reacher",
    nan: bool = False,
    overflow: bool = False,
    overrides: tuple[str, ...] = (),
) -> Path:
    """Write a loadable checkpoint of a randomly initialised pixel (or, for a proprio-only
    task, proprio) actor (no training).

    ``seed`` picks the weights (different seeds act differently); ``nan`` poisons the mean
    head's bias with NaN; ``overflow`` keeps every weight finite but makes the mean head sum
    +inf and -inf, so every action is NaN. ``overrides`` change its training config.
    """
    cfg = resolve(task, overrides=[f"env.image_size={image_size}", *TINY_MODEL, *overrides])
    env = make_env(task, cfg.env, 1, render=False)
    pixels = (env.spec.image_channels * cfg.env.frame_stack, *cfg.env.image_shape)
    spec = dataclasses.replace(env.spec, obs_mode="pixels", pixel_shape=pixels)
    if env.spec.obs_mode == "proprio":  # a proprio-only actor (go2_walk): no camera
        spec = env.spec
    env.close()
    torch.manual_seed(seed)
    actor = Actor(spec, cfg.model)
    with torch.no_grad():
        if nan:
            actor.head[-1].bias.fill_(float("nan"))
        if overflow:  # hidden units all 10 (LayerNorm weight 0, bias 10), then 3e38 * 10 = inf
            actor.head[1].weight.zero_()
            actor.head[1].bias.fill_(10.0)
            actor.head[-1].weight.zero_()
            actor.head[-1].weight[:, 0], actor.head[-1].weight[:, 1] = 3e38, -3e38
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


def with_image_size(src: str | Path, dst: str | Path, size: int) -> Path:
    """Copy checkpoint ``src`` to ``dst`` declaring a ``size`` x ``size`` camera (the keypoint
    encoder's weights do not depend on the image size, so the copy still loads)."""
    data = checkpoint.load(src)
    data["spec"]["pixel_shape"] = [data["spec"]["pixel_shape"][0], size, size]
    data["config"]["env"]["image_size"] = size
    return checkpoint.save(data, dst)


class Arrivals:
    """Subscribes a test node to a topic and keeps the monotonic arrival time of each message."""

    def __init__(self, node: Node, msg_type: type, topic: str, qos) -> None:
        self.times: list[float] = []
        node.create_subscription(msg_type, topic, self._arrived, qos)

    def _arrived(self, _msg) -> None:
        self.times.append(time.monotonic())

    def __len__(self) -> int:
        return len(self.times)

    def max_gap_ms(self, start: float, end: float) -> float:
        """The longest interval between consecutive arrivals in [start, end], ms (also counting
        the time from ``start`` to the first arrival and from the last arrival to ``end``)."""
        inside = [start, *(t for t in self.times if start <= t <= end), end]
        return 1e3 * max(b - a for a, b in itertools.pairwise(inside))
