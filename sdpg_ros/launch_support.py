"""What the launch files share: declare the session's arguments, then turn its specs into
launch_ros actions (``launch`` / ``launch_ros`` are imported only when called, so this module
loads on machines without them)."""

from __future__ import annotations

from typing import Any

from sdpg_ros.launch_arguments import ARGUMENTS, from_launch
from sdpg_ros.sessions import IncludeSpec, Spec


def action(spec: Spec) -> Any:
    """The launch action of one spec, pushed into its namespace."""
    from launch.actions import GroupAction, IncludeLaunchDescription, Shutdown
    from launch.launch_description_sources import AnyLaunchDescriptionSource
    from launch_ros.actions import LifecycleNode, Node, PushRosNamespace

    if isinstance(spec, IncludeSpec):  # .py, .xml or .yaml
        made = IncludeLaunchDescription(AnyLaunchDescriptionSource(spec.path))
    else:
        options: dict[str, Any] = {"namespace": ""} if spec.lifecycle else {}
        if spec.ends_session:
            options["on_exit"] = Shutdown(reason=f"{spec.name} ended")
        made = (LifecycleNode if spec.lifecycle else Node)(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            parameters=[*spec.files, dict(spec.parameters)],
            remappings=list(spec.remaps),
            output="screen",
            **options,
        )
    return GroupAction([PushRosNamespace(spec.namespace), made]) if spec.namespace else made


def actions(kind: str, context: Any) -> list:
    """The ``kind`` session's actions from the launch arguments (every one checked first)."""
    from launch.substitutions import LaunchConfiguration

    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS[kind]}
    return [action(spec) for spec in from_launch(kind, values)]


def launch_description(kind: str) -> Any:
    """The ``kind`` launch file's description: its arguments, then its nodes (at launch time)."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    declared = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in ARGUMENTS[kind].items()
    ]
    function = OpaqueFunction(function=lambda context: actions(kind, context))
    return LaunchDescription([*declared, function])
