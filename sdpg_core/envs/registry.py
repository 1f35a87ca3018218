"""Tasks registered by name, one entry per variant (by default ``NAME`` from pixels and
``NAME_state`` from privileged state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sdpg_core.config import EnvConfig
from sdpg_core.envs.task import Task


@dataclass(frozen=True)
class TaskEntry:
    """A registered task variant."""

    name: str  # registered name, e.g. "reacher" or "reacher_state"
    base: str  # task name without the variant suffix
    factory: Callable[[], Task]
    obs_mode: str  # "pixels" (actor: frames (+ proprio)), "proprio" or "state"; critic: state
    description: str


TASKS: dict[str, TaskEntry] = {}


def register_task(name: str, description: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator registering ``name + suffix`` for each of the task's ``variants``
    (default: ``name`` pixels, ``name_state`` state)."""

    def wrap(cls: type[Task]) -> type[Task]:
        for suffix, mode in cls.variants:
            if name + suffix in TASKS:
                raise ValueError(f"task {name + suffix!r} registered twice")
            TASKS[name + suffix] = TaskEntry(name + suffix, name, cls, mode, description)
        cls.name = name
        return cls

    return wrap


def get_task(name: str) -> TaskEntry:
    """The entry for ``name``; an unknown name lists the valid ones."""
    _load_builtin()
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; registered: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_names() -> list[str]:
    """All registered task names, sorted."""
    _load_builtin()
    return sorted(TASKS)


def make_env(
    name: str,
    cfg: EnvConfig,
    num_envs: int,
    render_ids: np.ndarray | None = None,
    render: bool | None = None,
    seed: int = 0,
):
    """A ``MujocoBatchEnv`` of task ``name``; renders ``render_ids`` (default: as the variant)."""
    from sdpg_core.envs.mujoco_env import MujocoBatchEnv

    entry = get_task(name)
    pixels = entry.obs_mode == "pixels" if render is None else render
    return MujocoBatchEnv(entry, cfg, num_envs, render_ids, pixels, seed)


def _load_builtin() -> None:
    """Import the built-in task modules (they register themselves)."""
    import sdpg_core.envs.tasks  # noqa: F401
