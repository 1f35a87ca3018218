"""Train with SDPG: ``ros2 launch sdpg_ros train.launch.py task:=reacher [eval_in_sim:=true]``.

trainer_node runs sdpg_core training with the same config files and overrides as ``sdpg train``
and publishes progress, a camera preview and each new checkpoint's path. With
``eval_in_sim:=true`` the deploy nodes (sim_backend, policy_node, hardware_bridge) run beside
it and the policy node hot-reloads every new checkpoint, so the robot visibly improves.

Every argument is checked (and the training config resolved) before any node is returned, and
the bridge is the last node to start; the sim has no e-stop publisher, so the bridge does not
wait for one.
"""

import math
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription
from sdpg_ros.launch_support import in_namespace

ARGUMENTS = {
    "task": ("reacher", "registered task (sdpg tasks)"),
    "config": ("", "YAML applied after the task's defaults"),
    "overrides": ("", "space-separated KEY=VALUE overrides, e.g. 'sdpg.horizon=16'"),
    "out": ("", "run directory ('' = runs/<task>-<time>)"),
    "device": ("", "cpu or cuda ('' = the config's)"),
    "iterations": ("0", "iteration budget (0 = the config's)"),
    "minutes": ("0.0", "wall-clock cap (0 = the config's); never changes the schedule"),
    "overwrite": ("false", "true: start afresh in an out that already holds a run"),
    "eval_in_sim": ("false", "also run sim_backend + policy_node + hardware_bridge"),
    "robot": ("reacher", "robot YAML for eval_in_sim"),
    "params_file": ("", "extra ROS parameters YAML for every node (launch arguments win)"),
    "namespace": ("", "ROS namespace of every node ('' = none), e.g. one per robot"),
}


def fail(name: str, message: str) -> None:
    """Stop the launch before any node starts, naming the argument."""
    raise ValueError(f"train.launch.py: argument '{name}': {message}")


def number(arg: dict, name: str, kind: type) -> int | float:
    """A finite, non-negative int / float argument."""
    try:
        value = kind(arg[name])
    except ValueError:
        fail(name, f"expected a {kind.__name__}, got {arg[name]!r}")
    if not math.isfinite(value) or value < 0:
        fail(name, f"must be a finite number >= 0, got {value}")
    return value


def check(arg: dict):
    """Validate the arguments; returns the resolved training config."""
    from sdpg_core.session import check_run_dir, resolve_train_config
    from sdpg_ros.cli import check_params_file, check_task

    for flag in ("eval_in_sim", "overwrite"):
        if arg[flag] not in ("true", "false"):
            fail(flag, f"true or false, got {arg[flag]!r}")
    try:
        check_params_file(arg["params_file"])
    except (FileNotFoundError, ValueError) as err:
        fail("params_file", str(err))
    try:
        cfg = resolve_train_config(arg["task"], arg["config"] or None, arg["overrides"].split())
    except (FileNotFoundError, KeyError, ValueError) as err:  # ConfigError is a ValueError
        raise ValueError(f"train.launch.py: task, config, overrides: {err}") from err
    # the device and budgets as trainer_node applies them (it refuses after the others started)
    budgets = (number(arg, "iterations", int) or None, number(arg, "minutes", float) or None)
    try:
        flags = (arg["device"] or None, None, *budgets)
        resolve_train_config(arg["task"], arg["config"] or None, arg["overrides"].split(), *flags)
    except ValueError as err:
        fail("device", str(err))
    if arg["out"]:
        try:
            check_run_dir(Path(arg["out"]), arg["overwrite"] == "true")
        except FileExistsError as err:
            fail("out", str(err))
    if arg["eval_in_sim"] == "true":
        try:
            check_task(arg["task"], arg["robot"])
        except (KeyError, ValueError) as err:
            fail("robot", str(err))
    return cfg


def parameters(arg: dict, values: dict, defaults: Path | None = None) -> list:
    """The package defaults (if any), then the params file, then the launch arguments' values."""
    files = [defaults] if defaults else []
    if arg["params_file"]:
        files.append(arg["params_file"])
    return [*files, values]


def live_evaluation(arg: dict, share: Path, env) -> list:
    """sim_backend, policy_node (hot reload from the trainer), then hardware_bridge."""
    from sdpg_core.robot import load_robot
    from sdpg_ros.cli import bridge_parameters, policy_parameters

    sim = {
        "task": load_robot(arg["robot"]).sim_task,
        "image_size": env.image_size,
        "action_repeat": env.action_repeat,
    }
    policy = policy_parameters("", arg["robot"], "cpu", hot_reload=True)
    bridge = bridge_parameters(arg["robot"], dry_run=False, activate=True, sim=True)
    return [
        Node(
            package="sdpg_ros",
            executable="sim_backend",
            name="sim_backend",
            parameters=parameters(arg, sim, share / "config" / "sim_backend.yaml"),
        ),
        Node(
            package="sdpg_ros",
            executable="policy_node",
            name="policy_node",
            parameters=parameters(arg, policy, share / "config" / "policy_node.yaml"),
        ),
        LifecycleNode(
            package="sdpg_ros",
            executable="hardware_bridge",
            name="hardware_bridge",
            namespace="",
            parameters=parameters(arg, bridge, share / "config" / "hardware_bridge.yaml"),
        ),
    ]


def trainer_parameters(arg: dict) -> dict:
    """trainer_node's parameters (budgets checked)."""
    trainer = {
        "task": arg["task"],
        "config": arg["config"],
        "out": arg["out"],
        "device": arg["device"],
        "iterations": number(arg, "iterations", int),
        "minutes": float(number(arg, "minutes", float)),
        "overwrite": arg["overwrite"] == "true",
    }
    if arg["overrides"].split():
        trainer["overrides"] = arg["overrides"].split()
    return trainer


def nodes(context):
    """The training session's actions, resolved and checked from the launch arguments."""
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    cfg = check(arg)
    trainer = trainer_parameters(arg)
    share = Path(get_package_share_directory("sdpg_ros"))
    actions = [
        Node(
            package="sdpg_ros",
            executable="trainer_node",
            name="trainer_node",
            parameters=parameters(arg, trainer),
            output="screen",
            on_exit=Shutdown(reason="training ended"),  # the session ends with its training
        ),
    ]
    if arg["eval_in_sim"] == "true":
        actions += live_evaluation(arg, share, cfg.env)
    return in_namespace(arg["namespace"], actions, fail)


def generate_launch_description():
    """Launch arguments, then the nodes (resolved at launch time)."""
    declared = [
        DeclareLaunchArgument(k, default_value=v, description=d) for k, (v, d) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
