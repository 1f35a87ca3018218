"""Deploy a trained policy: ``ros2 launch sdpg_ros deploy.launch.py backend:=sim|real ...``.

Policy and bridge nodes are identical for both backends; ``backend:=sim`` adds the MuJoCo
sim_backend (same topics as a robot with ros2_control and a camera driver), ``backend:=real``
includes the vendor driver launch (``driver_launch:=...``) and remaps the camera and joint
state topics. ``dry_run:=true`` sends the bridge's commands to a harmless topic.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription

ARGUMENTS = {
    "backend": ("sim", "sim (MuJoCo sim_backend) or real (vendor driver + camera)"),
    "robot": ("reacher", "robot YAML in config/robots (joint order, scaling, command topic)"),
    "checkpoint": ("", "policy checkpoint (.pt) written by sdpg train"),
    "dry_run": ("false", "true: commands go to ~/dry_run/commands, not to the robot"),
    "use_sim_time": ("false", "use /clock from the sim backend"),
    "camera_topic": ("/camera/image_raw", "real backend: the camera driver's image topic"),
    "joint_states_topic": ("/joint_states", "real backend: the driver's joint states"),
    "driver_launch": ("", "real backend: a launch file starting the robot and camera drivers"),
    "autostart": ("true", "configure and activate hardware_bridge on start"),
}


def nodes(context):
    """The deploy session's actions, resolved from the launch arguments."""
    from sdpg_core.robot import load_robot, robot_urdf_path

    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    share = Path(get_package_share_directory("sdpg_ros"))
    robot = load_robot(arg["robot"])
    sim_time = arg["use_sim_time"] == "true"
    remaps = []
    if arg["backend"] == "real":
        remaps = [
            ("camera/image_raw", arg["camera_topic"]),
            ("joint_states", arg["joint_states_topic"]),
        ]
    actions = [
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": robot_urdf_path(robot).read_text(),
                         "use_sim_time": sim_time}],
            remappings=remaps[1:],
        ),
        Node(
            package="sdpg_ros",
            executable="policy_node",
            name="policy_node",
            parameters=[share / "config" / "policy_node.yaml",
                        {"checkpoint": arg["checkpoint"], "use_sim_time": sim_time}],
            remappings=remaps,
            output="screen",
        ),
        LifecycleNode(
            package="sdpg_ros",
            executable="hardware_bridge",
            name="hardware_bridge",
            namespace="",
            parameters=[share / "config" / "hardware_bridge.yaml",
                        {"robot": arg["robot"], "dry_run": arg["dry_run"] == "true",
                         "autostart": arg["autostart"] == "true", "use_sim_time": sim_time}],
            remappings=remaps,
            output="screen",
        ),
    ]
    if arg["backend"] == "sim":
        sim_params = {"task": robot.sim_task, "use_sim_time": sim_time}
        if arg["checkpoint"]:
            from sdpg_core.policy import Policy

            policy = Policy.load(arg["checkpoint"])
            sim_params["image_size"] = int(policy.spec.pixel_shape[1])
            sim_params["action_repeat"] = policy.cfg.env.action_repeat
        actions.append(
            Node(
                package="sdpg_ros",
                executable="sim_backend",
                name="sim_backend",
                parameters=[share / "config" / "sim_backend.yaml", sim_params],
                output="screen",
            )
        )
    elif arg["driver_launch"]:
        actions.append(IncludeLaunchDescription(PythonLaunchDescriptionSource(arg["driver_launch"])))
    elif arg["backend"] != "real":
        raise ValueError(f"backend must be sim or real, got {arg['backend']!r}")
    return actions


def generate_launch_description():
    """Launch arguments, then the nodes (resolved at launch time)."""
    declared = [DeclareLaunchArgument(k, default_value=v, description=d)
                for k, (v, d) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
