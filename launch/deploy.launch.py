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
    "publish_tf": ("true", "start robot_state_publisher on the robot's URDF"),
}


def robot_state_publisher(robot, sim_time: bool, remaps: list) -> Node:
    """TF of the robot from the same URDF MuJoCo loads (joint_states remapped like the bridge)."""
    from sdpg_core.robot import robot_urdf_path

    description = robot_urdf_path(robot).read_text()
    return Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        parameters=[{"robot_description": description, "use_sim_time": sim_time}],
        remappings=[r for r in remaps if r[0] == "joint_states"],
    )


def policy_and_bridge(arg: dict, share: Path, sim_time: bool, remaps: list) -> list:
    """policy_node and the hardware_bridge lifecycle node: identical for both backends."""
    bridge = {
        "robot": arg["robot"],
        "dry_run": arg["dry_run"] == "true",
        "autostart": arg["autostart"] == "true",
        "use_sim_time": sim_time,
    }
    policy = {"checkpoint": arg["checkpoint"], "use_sim_time": sim_time}
    return [
        Node(
            package="sdpg_ros",
            executable="policy_node",
            name="policy_node",
            parameters=[share / "config" / "policy_node.yaml", policy],
            remappings=remaps,
            output="screen",
        ),
        LifecycleNode(
            package="sdpg_ros",
            executable="hardware_bridge",
            name="hardware_bridge",
            namespace="",
            parameters=[share / "config" / "hardware_bridge.yaml", bridge],
            remappings=remaps,
            output="screen",
        ),
    ]


def sim_backend(arg: dict, share: Path, robot, sim_time: bool) -> Node:
    """The MuJoCo robot, with the camera size and action repeat the checkpoint trained with."""
    params = {"task": robot.sim_task, "use_sim_time": sim_time}
    if arg["checkpoint"]:
        from sdpg_core.policy import Policy

        policy = Policy.load(arg["checkpoint"])
        params["image_size"] = int(policy.spec.pixel_shape[1])
        params["action_repeat"] = policy.cfg.env.action_repeat
    return Node(
        package="sdpg_ros",
        executable="sim_backend",
        name="sim_backend",
        parameters=[share / "config" / "sim_backend.yaml", params],
        output="screen",
    )


def nodes(context):
    """The deploy session's actions, resolved from the launch arguments."""
    from sdpg_core.robot import load_robot

    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    if arg["backend"] not in ("sim", "real"):
        raise ValueError(f"backend must be sim or real, got {arg['backend']!r}")
    share = Path(get_package_share_directory("sdpg_ros"))
    robot = load_robot(arg["robot"])
    sim_time = arg["use_sim_time"] == "true"
    remaps = []
    if arg["backend"] == "real":
        remaps = [
            ("camera/image_raw", arg["camera_topic"]),
            ("joint_states", arg["joint_states_topic"]),
        ]
    actions = policy_and_bridge(arg, share, sim_time, remaps)
    if arg["publish_tf"] == "true":
        actions.append(robot_state_publisher(robot, sim_time, remaps))
    if arg["backend"] == "sim":
        actions.append(sim_backend(arg, share, robot, sim_time))
    elif arg["driver_launch"]:
        actions.append(
            IncludeLaunchDescription(PythonLaunchDescriptionSource(arg["driver_launch"]))
        )
    return actions


def generate_launch_description():
    """Launch arguments, then the nodes (resolved at launch time)."""
    declared = [
        DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
