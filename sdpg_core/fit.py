"""Whether a checkpoint fits a robot or a running policy, judged on its stored config and spec.

No torch: the launch files, ``sdpg-ros`` and the sim backend read what a checkpoint was trained
for (``read_metadata``, over ``checkpoint.read_header``) without building its network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

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
        return EnvSpec.from_dict(data["spec"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: no valid env spec in the checkpoint ({err!r})") from err


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
    """Why a policy for ``spec`` cannot drive ``robot`` (its sim task and joints), or None."""
    if robot.sim_task and base_task(spec.task) != base_task(robot.sim_task):
        return Misfit(
            "task",
            f"policy trained on task {spec.task!r}, robot {robot.name!r} runs {robot.sim_task!r}",
        )
    if tuple(spec.joint_names) != tuple(robot.joints):
        return Misfit(
            "joints",
            f"policy joints {list(spec.joint_names)}, robot {robot.name!r} has "
            f"{list(robot.joints)} (same names, same order)",
        )
    return None


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
