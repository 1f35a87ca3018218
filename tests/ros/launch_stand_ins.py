"""Stand-ins for the ROS 2 ``launch`` / ``launch_ros`` packages (not on the registries): each
action keeps its arguments. No torch here (a subprocess runs the launch files with them)."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path


class LaunchAction:
    """Stand-in for a ROS 2 launch action or description: keeps its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchNode(LaunchAction):
    """Stand-in for ``launch_ros.actions.Node``."""


class LaunchLifecycleNode(LaunchNode):
    """Stand-in for ``launch_ros.actions.LifecycleNode``."""


class LaunchConfiguration:
    """Stand-in for ``launch.substitutions.LaunchConfiguration``: reads a dict context."""

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        """The argument's value in ``context``."""
        return context[self.name]


def launch_stand_ins() -> dict[str, types.ModuleType]:
    """Modules standing in for ``launch`` / ``launch_ros`` (by their import names)."""
    members = {
        "launch": {"LaunchDescription": LaunchAction},
        "launch.actions": {
            "DeclareLaunchArgument": LaunchAction,
            "IncludeLaunchDescription": LaunchAction,
            "OpaqueFunction": LaunchAction,
            "Shutdown": LaunchAction,
            "GroupAction": LaunchAction,
        },
        "launch.launch_description_sources": {"AnyLaunchDescriptionSource": LaunchAction},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {
            "Node": LaunchNode,
            "LifecycleNode": LaunchLifecycleNode,
            "PushRosNamespace": LaunchAction,
        },
    }
    modules = {}
    for name, attributes in members.items():
        modules[name] = types.ModuleType(name)
        modules[name].__dict__.update(attributes)
    return modules


def load_launch_file(path: Path) -> types.ModuleType:
    """Import a launch file (as ``ros2 launch`` does, by path); install the stand-ins first."""
    spec = importlib.util.spec_from_file_location(path.name.split(".")[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_launch(module: types.ModuleType, **arguments: str) -> list:
    """The actions the launch file's OpaqueFunction returns for ``arguments`` (the declared
    defaults for the others)."""
    *declared, opaque = module.generate_launch_description().args[0]
    context = {d.args[0]: d.kwargs["default_value"] for d in declared} | arguments
    return opaque.kwargs["function"](context)


def unwrap(action: LaunchAction) -> tuple[str, LaunchAction]:
    """(namespace, action) of an action, maybe pushed into a namespace by a group."""
    if action.args and isinstance(action.args[0], list):  # GroupAction([PushRosNamespace, x])
        push, inner = action.args[0]
        return push.args[0], inner
    return "", action
