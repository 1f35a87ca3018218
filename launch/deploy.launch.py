"""Deploy a trained policy: ``ros2 launch sdpg_ros deploy.launch.py backend:=sim|real ...``.

Policy and bridge nodes are identical for both backends; ``backend:=sim`` adds the MuJoCo
sim_backend (same topics as a robot with ros2_control and a camera driver), ``backend:=real``
includes the vendor driver launch (``driver_launch:=...``) and remaps the camera and joint
state topics. ``dry_run:=true`` sends the bridge's commands to a harmless topic.

Every argument and dependency is checked before any node is returned (launch does not stop
nodes it already started when a later action fails), and the bridge is the last node to start.
On ``backend:=real`` the bridge waits for the lifecycle services (``autostart:=true`` to
activate it at once) and hot reload is off (``hot_reload:=true``); the sim has no e-stop
publisher, so its bridge does not wait for one.
"""

from pathlib import Path

from ament_index_python.packages import (
    PackageNotFoundError,
    get_package_prefix,
    get_package_share_directory,
)
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.launch_description_sources import AnyLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription
from sdpg_ros.launch_support import in_namespace

ARGUMENTS = {
    "backend": ("sim", "sim (MuJoCo sim_backend) or real (vendor driver + camera)"),
    "robot": ("reacher", "robot YAML in config/robots (joint order, scaling, command topic)"),
    "checkpoint": ("", "policy checkpoint (.pt) written by sdpg train"),
    "dry_run": ("false", "true: commands go to ~/dry_run/commands, not to the robot"),
    "use_sim_time": ("false", "use /clock from the sim backend"),
    "camera_topic": ("/camera/image_raw", "real backend: the camera driver's image topic"),
    "joint_states_topic": ("/joint_states", "real backend: the driver's joint states"),
    "driver_launch": ("", "real backend: a launch file starting the robot and camera drivers"),
    "autostart": ("auto", "bridge configures and activates itself (auto: sim yes, real no)"),
    "hot_reload": ("auto", "policy_node accepts new checkpoints (auto: sim yes, real no)"),
    "publish_tf": ("auto", "robot_state_publisher on the URDF (auto: when installed)"),
    "params_file": ("", "extra ROS parameters YAML for every node (launch arguments win)"),
    "namespace": ("", "ROS namespace of every node ('' = none), e.g. one per robot"),
}
SWITCHES = ("autostart", "hot_reload", "publish_tf")


def fail(name: str, message: str) -> None:
    """Stop the launch before any node starts, naming the argument."""
    raise ValueError(f"deploy.launch.py: argument '{name}': {message}")


def installed(package: str) -> bool:
    """Whether the ament index knows ``package``."""
    try:
        get_package_prefix(package)
    except (PackageNotFoundError, OSError):  # OSError: no ament index (AMENT_PREFIX_PATH)
        return False
    return True


def check_values(arg: dict) -> None:
    """Every argument with a fixed set of values has one of them."""
    if arg["backend"] not in ("sim", "real"):
        fail("backend", f"sim or real, got {arg['backend']!r}")
    for name in ("dry_run", "use_sim_time"):
        if arg[name] not in ("true", "false"):
            fail(name, f"true or false, got {arg[name]!r}")
    for name in SWITCHES:
        if arg[name] not in ("auto", "true", "false"):
            fail(name, f"auto, true or false, got {arg[name]!r}")


def resolve_switches(arg: dict) -> dict[str, bool]:
    """autostart / hot_reload / publish_tf as booleans ('auto' resolved)."""
    sim, tf_installed = arg["backend"] == "sim", installed("robot_state_publisher")
    auto = {"autostart": sim, "hot_reload": sim, "publish_tf": tf_installed}
    on = {k: auto[k] if arg[k] == "auto" else arg[k] == "true" for k in SWITCHES}
    if on["publish_tf"] and not tf_installed:
        fail("publish_tf", "true, but robot_state_publisher is not installed")
    if not arg["checkpoint"] and not on["hot_reload"]:
        fail("checkpoint", "required (without hot_reload nothing else can load a policy)")
    return on


def check_files(arg: dict) -> None:
    """The robot, the checkpoint (trained for that robot), the params file, the driver launch."""
    from sdpg_core.robot import load_robot
    from sdpg_ros.cli import check_checkpoint, check_params_file

    try:
        load_robot(arg["robot"])
    except ValueError as err:  # ConfigError
        fail("robot", str(err))
    if arg["checkpoint"]:
        try:
            check_checkpoint(arg["checkpoint"], arg["robot"])
        except (FileNotFoundError, KeyError, ValueError) as err:
            fail("checkpoint", str(err))
    try:
        check_params_file(arg["params_file"])
    except (FileNotFoundError, ValueError) as err:
        fail("params_file", str(err))
    if arg["driver_launch"] and not Path(arg["driver_launch"]).is_file():
        fail("driver_launch", f"{arg['driver_launch']} does not exist")


def check(arg: dict) -> dict:
    """Validate the arguments; returns the settings with every 'auto' resolved."""
    check_values(arg)
    on = resolve_switches(arg)
    check_files(arg)
    sim = arg["backend"] == "sim"
    return {**arg, **on, "sim": sim, "sim_time": arg["use_sim_time"] == "true"}


def node_parameters(share: Path, node: str, settings: dict, values: dict) -> list:
    """The package defaults, then the params file, then the launch arguments' values."""
    files = [share / "config" / f"{node}.yaml"]
    if settings["params_file"]:
        files.append(settings["params_file"])
    return [*files, {**values, "use_sim_time": settings["sim_time"]}]


def robot_state_publisher(robot, settings: dict, remaps: list) -> Node:
    """TF of the robot from the same URDF MuJoCo loads (joint_states remapped like the bridge)."""
    from sdpg_core.robot import robot_urdf_path

    description = robot_urdf_path(robot).read_text()
    parameters = [{"robot_description": description, "use_sim_time": settings["sim_time"]}]
    if settings["params_file"]:
        parameters.insert(0, settings["params_file"])
    return Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        parameters=parameters,
        remappings=[r for r in remaps if r[0] == "joint_states"],
    )


def policy_and_bridge(settings: dict, share: Path, remaps: list) -> list:
    """policy_node, then the hardware_bridge lifecycle node: identical for both backends."""
    from sdpg_ros.cli import bridge_parameters

    policy = {
        "checkpoint": settings["checkpoint"],
        "robot": settings["robot"],
        "hot_reload": settings["hot_reload"],
    }
    bridge = bridge_parameters(
        settings["robot"], settings["dry_run"] == "true", settings["autostart"], settings["sim"]
    )
    return [
        Node(
            package="sdpg_ros",
            executable="policy_node",
            name="policy_node",
            parameters=node_parameters(share, "policy_node", settings, policy),
            remappings=remaps,
            output="screen",
        ),
        LifecycleNode(
            package="sdpg_ros",
            executable="hardware_bridge",
            name="hardware_bridge",
            namespace="",
            parameters=node_parameters(share, "hardware_bridge", settings, bridge),
            remappings=remaps,
            output="screen",
        ),
    ]


def sim_backend(settings: dict, share: Path, robot) -> Node:
    """The MuJoCo robot, with the camera size and action repeat the checkpoint trained with."""
    from sdpg_core.policy import read_metadata

    params = {"task": robot.sim_task}
    if settings["checkpoint"]:
        env = read_metadata(settings["checkpoint"])[0].env
        params |= {"image_size": env.image_size, "action_repeat": env.action_repeat}
    return Node(
        package="sdpg_ros",
        executable="sim_backend",
        name="sim_backend",
        parameters=node_parameters(share, "sim_backend", settings, params),
        output="screen",
    )


def nodes(context):
    """The deploy session's actions, resolved and checked from the launch arguments."""
    from sdpg_core.robot import load_robot

    settings = check({name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS})
    share = Path(get_package_share_directory("sdpg_ros"))
    robot = load_robot(settings["robot"])
    remaps = []
    if not settings["sim"]:
        remaps = [
            ("camera/image_raw", settings["camera_topic"]),
            ("joint_states", settings["joint_states_topic"]),
        ]
    actions = []
    if settings["sim"]:
        actions.append(sim_backend(settings, share, robot))
    elif settings["driver_launch"]:
        source = AnyLaunchDescriptionSource(settings["driver_launch"])  # .py, .xml or .yaml
        actions.append(IncludeLaunchDescription(source))
    if settings["publish_tf"]:
        actions.append(robot_state_publisher(robot, settings, remaps))
    return in_namespace(
        settings["namespace"], actions + policy_and_bridge(settings, share, remaps), fail
    )


def generate_launch_description():
    """Launch arguments, then the nodes (resolved at launch time)."""
    declared = [
        DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
