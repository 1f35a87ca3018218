"""Helpers the launch files share (``launch`` / ``launch_ros`` are imported only when called,
so this module loads on machines without them)."""

from __future__ import annotations

from collections.abc import Callable

from sdpg_ros.cli import check_namespace


def in_namespace(namespace: str, actions: list, fail: Callable[[str, str], None]) -> list:
    """``actions`` pushed into ``namespace`` ('' = as they are); ``fail`` names a bad one."""
    from launch.actions import GroupAction
    from launch_ros.actions import PushRosNamespace

    try:
        namespace = check_namespace(namespace)
    except ValueError as err:
        fail("namespace", str(err))
    return [GroupAction([PushRosNamespace(namespace), *actions])] if namespace else actions
