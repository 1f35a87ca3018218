"""The ROS 2 sessions (deploy, train) as plain node specs, for ``ros2 launch`` and ``sdpg-ros``.

``deploy(...)`` and ``train(...)`` check every argument before any node starts (an
ArgumentError names the bad one) and return the session's specs in start order, the hardware
bridge last. The launch files map their argument strings onto them (``launch_arguments``) and
turn the specs into launch_ros actions (``launch_support``); ``sdpg-ros`` maps its flags onto
them and builds each spec's node class in its own process (``cli``). Every node loads the same
parameter sources in the same order: the package defaults (``config/<node>.yaml``), the params
file, then the session's values. Nothing here imports torch (the launch files run it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sdpg_core.robot import RobotConfig, robot_urdf_path
from sdpg_core.share import PACKAGE, find_share_file
from sdpg_ros.common import DRY_RUN_TOPIC
from sdpg_ros.session_checks import (
    check_cmd_vel,
    check_count,
    check_file,
    check_live_task,
    check_namespace,
    check_out,
    check_params_file,
    check_perturb,
    check_policy_source,
    check_publish_tf,
    check_record,
    check_robot,
    check_topic,
    require,
    resolve_config,
    task_image,
)

CHECKPOINT_TOPIC = "trainer/checkpoint"  # trainer_node announces every checkpoint here
DEFAULT_CAMERA = "camera/image_raw"  # the topic the sim publishes and the policy reads
BACKENDS = ("sim", "real")


@dataclass(frozen=True)
class NodeSpec:
    """One node of a session, as ``ros2 launch`` starts it and ``sdpg-ros`` builds it."""

    executable: str
    name: str
    parameters: dict[str, Any]  # the session's values: they win over the files
    files: tuple[str, ...] = ()  # parameter files, loaded in this order
    remaps: tuple[tuple[str, str], ...] = ()
    namespace: str = ""  # absolute ('' = none)
    package: str = PACKAGE
    lifecycle: bool = False  # a managed node (the hardware bridge)
    ends_session: bool = False  # the session ends with this node (the trainer)


@dataclass(frozen=True)
class IncludeSpec:
    """A launch file included as it is (the real robot's drivers; ``ros2 launch`` only)."""

    path: str
    namespace: str = ""


Spec = NodeSpec | IncludeSpec


def node(
    executable: str,
    values: dict[str, Any],
    params_file: str,
    namespace: str,
    remaps: tuple[tuple[str, str], ...] = (),
    package: str = PACKAGE,
    **flags: bool,
) -> NodeSpec:
    """A node loading the package defaults (this package's nodes), ``params_file``, then
    ``values``; remaps to '' are left out."""
    default = find_share_file("config", f"{executable}.yaml") if package == PACKAGE else None
    files = tuple(str(path) for path in (default, params_file) if path)
    kept = tuple((src, dst) for src, dst in remaps if dst)
    return NodeSpec(executable, executable, values, files, kept, namespace, package, **flags)


def sim_values(
    checkpoint: str, robot: RobotConfig, perturb: str = "", perturb_set: str = ""
) -> dict[str, Any]:
    """sim_backend takes task, image size and action repeat from the checkpoint, or without one
    from the first checkpoint the trainer announces; it listens where the robot's driver
    would (the robot YAML's command topic and type); ``perturb``: a perturbation file and the
    set of it the episodes draw from."""
    source = {"checkpoint": checkpoint} if checkpoint else {"checkpoint_topic": CHECKPOINT_TOPIC}
    kind = "command_topic" if robot.command_type == "forward" else "trajectory_topic"
    perturbed = {"perturb": str(Path(perturb).absolute()), "perturb_set": perturb_set}
    return source | {kind: robot.command_topic} | (perturbed if perturb else {})


def camera_remaps(topic: str, info: bool = False) -> tuple[tuple[str, str], ...]:
    """Remaps of the nodes' ``camera/image_raw`` (and with ``info`` the sim's
    ``camera/camera_info``, beside it) onto ``topic`` (none for the default topic)."""
    if topic == DEFAULT_CAMERA:
        return ()
    parent = topic.rsplit("/", 1)[0] if "/" in topic.strip("/") else ""
    sibling = f"{parent}/camera_info" if parent else "camera_info"
    return (("camera/image_raw", topic),) + ((("camera/camera_info", sibling),) if info else ())


def policy_values(robot: str, checkpoint: str, device: str, hot_reload: bool) -> dict[str, Any]:
    """policy_node's session values."""
    return {"checkpoint": checkpoint, "device": device, "robot": robot, "hot_reload": hot_reload}


def recorder_values(record: str, robot: RobotConfig, dry_run: bool) -> dict[str, Any]:
    """bag_recorder's session values: the bag and the topic the bridge commands on."""
    topic = DRY_RUN_TOPIC if dry_run else robot.command_topic
    bag = str(Path(record).absolute())
    return {"bag": bag, "command_topic": topic, "command_type": robot.command_type}


def bridge_values(robot: str, dry_run: bool, autostart: bool, sim: bool) -> dict[str, Any]:
    """hardware_bridge's session values; the sim has no e-stop publisher to wait for."""
    values = {"robot": robot, "dry_run": dry_run, "autostart": autostart}
    return values | ({"wait_for_e_stop": False} if sim else {})


def deploy(
    backend: str,
    robot: str,
    checkpoint: str = "",
    *,
    dry_run: bool | None = None,
    autostart: bool | None = None,
    hot_reload: bool | None = None,
    use_sim_time: bool = False,
    publish_tf: bool | None = False,
    camera_topic: str = "",
    joint_states_topic: str = "",
    driver_launch: str = "",
    params_file: str = "",
    namespace: str = "",
    device: str = "cpu",
    seed: int | None = None,
    cmd_vel: tuple[float, float, float] | None = None,
    record: str = "",
    perturb: str = "",
    perturb_set: str = "",
) -> list[Spec]:
    """The deploy session: with ``record`` first a bag_recorder writing that bag, then
    sim_backend (sim) or the driver launch (real), robot_state_publisher (``publish_tf``),
    policy_node, hardware_bridge, and with ``cmd_vel`` a cmd_vel_source publishing that velocity
    command. None = auto: autostart and hot_reload on in the sim only, dry_run on the real robot
    only (commanding it is asked for explicitly), publish_tf when robot_state_publisher is
    installed."""
    require(backend in BACKENDS, "backend", f"sim or real, got {backend!r}")
    sim, namespace = backend == "sim", check_namespace(namespace)
    robot_config = check_robot(robot)
    autostart = sim if autostart is None else autostart
    dry_run = not sim if dry_run is None else dry_run
    hot_reload = sim if hot_reload is None else hot_reload
    image = check_policy_source(checkpoint, robot_config, hot_reload)
    check_params_file(params_file)
    check_file("driver_launch", driver_launch)
    check_topic("camera_topic", camera_topic)
    check_topic("joint_states_topic", joint_states_topic)
    check_count("seed", seed)
    publish_tf = check_publish_tf(publish_tf)
    check_cmd_vel(cmd_vel, robot_config)
    check_record(record)
    check_perturb(perturb, perturb_set, sim)
    at = partial(node, params_file=params_file, namespace=namespace)
    camera = camera_topic if camera_topic and not sim else robot_config.image_topic(image)
    remaps = camera_remaps(camera) + (() if sim else (("joint_states", joint_states_topic),))
    common = {"use_sim_time": use_sim_time}
    specs: list[Spec] = []
    if record:  # first: it hears every node from its first message
        values = recorder_values(record, robot_config, dry_run) | common
        specs.append(at("bag_recorder", values, remaps=remaps))
    if sim:
        seeded = {} if seed is None else {"seed": seed}
        values = sim_values(checkpoint, robot_config, perturb, perturb_set) | seeded | common
        specs.append(at("sim_backend", values, remaps=camera_remaps(camera, info=True)))
    elif driver_launch:
        specs.append(IncludeSpec(driver_launch, namespace))
    if publish_tf:  # TF from the URDF MuJoCo loads; joint_states remapped as for the bridge
        description = {"robot_description": robot_urdf_path(robot_config).read_text()}
        tf_remaps = tuple(r for r in remaps if r[0] == "joint_states")
        tf = partial(at, remaps=tf_remaps, package="robot_state_publisher")
        specs.append(tf("robot_state_publisher", description | common))
    policy = policy_values(robot, checkpoint, device, hot_reload) | common
    bridge = bridge_values(robot, dry_run, autostart, sim) | common
    if cmd_vel is not None:
        names = ("linear_x", "linear_y", "angular_z")
        velocity = dict(zip(names, map(float, cmd_vel), strict=True))
        specs.append(at("cmd_vel_source", velocity | common))
    return [
        *specs,
        at("policy_node", policy, remaps=remaps),
        at("hardware_bridge", bridge, remaps=remaps, lifecycle=True),
    ]


def train(
    task: str,
    *,
    config: str = "",
    overrides: list[str] | tuple[str, ...] = (),
    algo: str = "",
    out: str = "",
    device: str = "",
    seed: int | None = None,
    iterations: int | None = None,
    minutes: float | None = None,
    overwrite: bool = False,
    eval_in_sim: bool = False,
    robot: str = "reacher",
    params_file: str = "",
    namespace: str = "",
) -> list[Spec]:
    """The training session: trainer_node (the session ends with it), and with ``eval_in_sim``
    sim_backend, policy_node (hot-reloading every checkpoint) and hardware_bridge. '', None
    and 0 leave a setting to the training config."""
    namespace = check_namespace(namespace)
    check_params_file(params_file)
    for name, value in (("seed", seed), ("iterations", iterations), ("minutes", minutes)):
        check_count(name, value)
    flags = {"algo": algo, "device": device, "iterations": iterations, "minutes": minutes}
    flags = {name: value or None for name, value in flags.items()} | {"seed": seed}
    cfg = resolve_config(task, config, list(overrides), flags)
    check_out(out, overwrite)
    at = partial(node, params_file=params_file, namespace=namespace)
    given = {
        "config": config,
        "overrides": [*overrides, *([f"run.algo={algo}"] if algo else [])],
        "out": out,
        "device": device,
        "iterations": iterations,
        "minutes": float(minutes or 0),
        "overwrite": overwrite,
    }
    trainer = {"task": task} | {k: v for k, v in given.items() if v}
    trainer |= {} if seed is None else {"seed": seed}
    specs: list[Spec] = [at("trainer_node", trainer, ends_session=True)]
    if eval_in_sim:
        robot_config = check_robot(robot)
        check_live_task(cfg.env.task, robot_config)
        camera = robot_config.image_topic(task_image(cfg.env.task, cfg.env.image))
        specs += [
            at("sim_backend", sim_values("", robot_config), remaps=camera_remaps(camera, True)),
            at("policy_node", policy_values(robot, "", "cpu", True), remaps=camera_remaps(camera)),
            at("hardware_bridge", bridge_values(robot, False, True, sim=True), lifecycle=True),
        ]
    return specs
