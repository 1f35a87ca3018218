"""Whether a checkpoint fits a robot or a running policy, judged on its stored config and spec.

No torch: the launch files, ``sdpg-ros`` and the sim backend read what a checkpoint was trained
for (``read_metadata``, over ``checkpoint.read_header``) without building its network.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sdpg_core import checkpoint
from sdpg_core.config import Config, from_dict
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import get_task
from sdpg_core.onnx_policy import is_onnx, open_session, read_contract
from sdpg_core.robot import RobotConfig


class Misfit(NamedTuple):
    """Why a checkpoint cannot run here: a short ``reason`` (a counter key) and a message."""

    reason: str
    message: str


def checkpoint_spec(data: dict[str, Any], source: str | Path) -> EnvSpec:
    """The env spec stored in checkpoint ``data`` (ValueError naming ``source`` if malformed)."""
    try:
        return with_action_mapping(EnvSpec.from_dict(data["spec"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: no valid env spec in the checkpoint ({err!r})") from err


def with_action_mapping(spec: EnvSpec) -> EnvSpec:
    """``spec``, or for a spec saved before actions carried their meaning, ``spec`` with its
    registered task's ``action_mapping`` (unregistered tasks: unchanged)."""
    if spec.action_mode:
        return spec
    mapping = _task_action_mapping(base_task(spec.task))
    return spec if mapping is None else dataclasses.replace(spec, **mapping)


@functools.cache
def _task_action_mapping(task: str) -> dict[str, Any] | None:
    """The action mode, scale and offset of registered task ``task`` (None if unknown)."""
    try:
        entry = get_task(task)
    except KeyError:
        return None
    instance = entry.factory()
    instance.bind(instance.build_spec().compile())
    mode, scale, offset = instance.action_mapping()
    return {
        "action_mode": mode,
        "action_scale": tuple(float(v) for v in scale),
        "action_offset": tuple(float(v) for v in offset),
    }


def read_metadata(path: str | Path) -> tuple[Config, EnvSpec]:
    """The config and env spec of a checkpoint file or an exported ``.onnx`` policy (no tensor
    read, no torch)."""
    if is_onnx(path):
        data = read_contract(open_session(path), path)
        return from_dict(data["config"], f"{path}: config"), checkpoint_spec(data, path)
    data = checkpoint.read_header(path)
    checkpoint.require_keys(data, ("config", "spec"), path, "a policy checkpoint")
    return from_dict(data["config"], f"{path}: config"), checkpoint_spec(data, path)


def base_task(name: str) -> str:
    """A registered task's name without its variant suffix (unregistered names unchanged)."""
    try:
        return get_task(name).base
    except KeyError:
        return name


def robot_misfit(spec: EnvSpec, robot: RobotConfig) -> Misfit | None:
    """Why a policy for ``spec`` cannot drive ``robot`` (its tasks and joints), or None."""
    if not runs_task(robot, spec.task):
        trained = f"policy trained on task {spec.task!r}"
        return Misfit("task", f"{trained}, robot {robot.name!r} runs {robot_tasks(robot)}")
    if tuple(spec.joint_names) != tuple(robot.joints):
        return Misfit(
            "joints",
            f"policy joints {list(spec.joint_names)}, robot {robot.name!r} has "
            f"{list(robot.joints)} (same names, same order)",
        )
    return action_misfit(spec, robot)


def runs_task(robot: RobotConfig, task: str) -> bool:
    """Whether policies of ``task`` (any variant) drive ``robot`` (one without a sim task:
    any)."""
    return not robot.task_names or base_task(task) in {base_task(t) for t in robot.task_names}


def robot_tasks(robot: RobotConfig) -> str:
    """The tasks ``robot`` runs, for messages: 'go2_walk' / 'go2_terrain'."""
    return " / ".join(repr(task) for task in robot.task_names)


def action_misfit(spec: EnvSpec, robot: RobotConfig) -> Misfit | None:
    """Why ``robot``'s YAML would turn the policy's actions into other commands than in
    training (mode, scale, offset), or None (also for specs from before the action mapping)."""
    if not spec.action_mode:
        return None
    trained = (spec.action_mode, spec.action_scale, spec.action_offset)
    mapped = (robot.action_mode, robot.action_scale, robot.action_offset)
    same = trained[0] == mapped[0] and _close(trained[1], mapped[1])
    if same and (trained[0] == "delta" or _close(trained[2], mapped[2])):
        return None
    return Misfit(
        "action",
        f"policy actions mean {trained[0]} commands, scale {list(trained[1])}, offset "
        f"{list(trained[2])} (its training task); robot {robot.name!r} maps them {mapped[0]}, "
        f"scale {list(mapped[1])}, offset {list(mapped[2])} (action_mode / action_scale / "
        "action_offset of its YAML)",
    )


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Same length and equal within 1e-6 per value."""
    return len(a) == len(b) and np.allclose(a, b, rtol=1e-6, atol=1e-6)


def swap_misfit(new: EnvSpec, running: EnvSpec) -> Misfit | None:
    """Why a policy for ``new`` cannot replace a running one for ``running``, or None."""
    checks = (
        ("obs_mode", new.obs_mode, running.obs_mode),
        ("task", new.task, running.task),
        ("joints", list(new.joint_names), list(running.joint_names)),
        ("action_size", new.action_dim, running.action_dim),
        ("image", new.image, running.image),
        ("image_size", list(new.pixel_shape or ()), list(running.pixel_shape or ())),
    )
    for reason, got, want in checks:
        if got != want:
            return Misfit(reason, f"{reason} {got} differs from the running policy's {want}")
    return None
