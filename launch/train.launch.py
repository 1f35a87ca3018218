"""Train with SDPG: ``ros2 launch sdpg_ros train.launch.py task:=reacher [eval_in_sim:=true]``.

trainer_node runs sdpg_core training with the same config files and overrides as ``sdpg train``
and publishes progress, a camera preview and each new checkpoint's path. With
``eval_in_sim:=true`` the deploy nodes (sim_backend, policy_node, hardware_bridge) run beside
it and the policy node hot-reloads every new checkpoint, so the robot visibly improves.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription

ARGUMENTS = {
    "task": ("reacher", "registered task (sdpg tasks)"),
    "config": ("", "YAML applied after the task's defaults"),
    "overrides": ("", "space-separated KEY=VALUE overrides, e.g. 'algo.horizon=16'"),
    "out": ("", "run directory ('' = runs/<task>-<time>)"),
    "device": ("", "cpu or cuda ('' = the config's)"),
    "iterations": ("0", "iteration budget (0 = the config's)"),
    "minutes": ("0.0", "wall-clock budget (0 = the config's)"),
    "eval_in_sim": ("false", "also run sim_backend + policy_node + hardware_bridge"),
    "robot": ("reacher", "robot YAML for eval_in_sim"),
}


def nodes(context):
    """The training session's actions, resolved from the launch arguments."""
    from sdpg_core.robot import load_robot

    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    share = Path(get_package_share_directory("sdpg_ros"))
    trainer = {
        "task": arg["task"],
        "config": arg["config"],
        "out": arg["out"],
        "device": arg["device"],
        "iterations": int(arg["iterations"]),
        "minutes": float(arg["minutes"]),
    }
    if arg["overrides"].split():
        trainer["overrides"] = arg["overrides"].split()
    actions = [
        Node(
            package="sdpg_ros",
            executable="trainer_node",
            name="trainer_node",
            parameters=[trainer],
            output="screen",
        ),
    ]
    if arg["eval_in_sim"] == "true":
        robot = load_robot(arg["robot"])
        actions += [
            Node(
                package="sdpg_ros",
                executable="sim_backend",
                name="sim_backend",
                parameters=[share / "config" / "sim_backend.yaml", {"task": robot.sim_task}],
            ),
            Node(
                package="sdpg_ros",
                executable="policy_node",
                name="policy_node",
                parameters=[
                    share / "config" / "policy_node.yaml",
                    {"checkpoint": "", "checkpoint_topic": "trainer/checkpoint"},
                ],
            ),
            LifecycleNode(
                package="sdpg_ros",
                executable="hardware_bridge",
                name="hardware_bridge",
                namespace="",
                parameters=[share / "config" / "hardware_bridge.yaml", {"robot": arg["robot"]}],
            ),
        ]
    return actions


def generate_launch_description():
    """Launch arguments, then the nodes (resolved at launch time)."""
    declared = [
        DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
