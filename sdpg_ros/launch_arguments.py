"""The launch files' arguments and their mapping onto ``sdpg_ros.sessions`` (no ``launch``
needed: ``from_launch`` is what each launch file's OpaqueFunction runs, minus the actions)."""

from __future__ import annotations

from sdpg_core.envs.base import EVAL_SEED
from sdpg_ros import sessions
from sdpg_ros.session_checks import ArgumentError, parse_cmd_vel, require

Arguments = dict[str, tuple[str, str]]  # name: (default, description)

DEPLOY: Arguments = {
    "backend": ("sim", "sim (MuJoCo sim_backend) or real (vendor driver + camera)"),
    "robot": ("reacher", "robot YAML in config/robots (joint order, scaling, command topic)"),
    "checkpoint": ("", "policy checkpoint (.pt) or sdpg export's .onnx"),
    "dry_run": ("auto", "commands to ~/dry_run/commands, not the robot (auto: real yes, sim no)"),
    "use_sim_time": ("false", "use /clock from the sim backend"),
    "camera_topic": ("", "real backend: the camera's image topic ('' = the robot YAML's)"),
    "joint_states_topic": ("", "real backend: the driver's joint states ('' = joint_states)"),
    "driver_launch": ("", "real backend: a launch file starting the robot and camera drivers"),
    "autostart": ("auto", "bridge configures and activates itself (auto: sim yes, real no)"),
    "hot_reload": ("auto", "policy_node accepts new checkpoints (auto: sim yes, real no)"),
    "publish_tf": ("auto", "robot_state_publisher on the URDF (auto: when installed)"),
    "params_file": ("", "extra ROS parameters YAML for every node (launch arguments win)"),
    "namespace": ("", "ROS namespace of every node ('' = none), e.g. one per robot"),
    "device": ("cpu", "policy inference device: cpu or cuda[:i]"),
    "seed": (str(EVAL_SEED), "sim: seed of the episodes (default: sdpg eval's)"),
    "cmd_vel": ("", "vx,vy,wz: publish this velocity command on cmd_vel (legged; '' = none)"),
    "record": ("", "rosbag2 directory (MCAP) recording the session's topics ('' = none)"),
    "perturb": ("", "sim: perturbation sets YAML (e.g. config/perturb/ur5e.yaml; '' = nominal)"),
    "perturb_set": ("", "sim: the set of perturb the episodes draw from"),
}
TRAIN: Arguments = {
    "task": ("reacher", "registered task (sdpg tasks)"),
    "config": ("", "YAML applied after the task's defaults"),
    "overrides": ("", "space-separated KEY=VALUE overrides, e.g. 'sdpg.horizon=16'"),
    "algo": ("", "learning algorithm, sets run.algo ('' = the config's)"),
    "out": ("", "run directory ('' = runs/<task>-<time>)"),
    "device": ("", "cpu or cuda ('' = the config's)"),
    "seed": ("", "random seed ('' = the config's)"),
    "iterations": ("0", "iteration budget (0 = the config's)"),
    "minutes": ("0.0", "wall-clock cap (0 = the config's); never changes the schedule"),
    "overwrite": ("false", "true: start afresh in an out that already holds a run"),
    "eval_in_sim": ("false", "also run sim_backend + policy_node + hardware_bridge"),
    "robot": ("reacher", "robot YAML for eval_in_sim"),
    "params_file": ("", "extra ROS parameters YAML for every node (launch arguments win)"),
    "namespace": ("", "ROS namespace of every node ('' = none), e.g. one per robot"),
}
ARGUMENTS: dict[str, Arguments] = {"deploy": DEPLOY, "train": TRAIN}


def flag(values: dict[str, str], name: str) -> bool:
    """A true/false argument."""
    require(values[name] in ("true", "false"), name, f"true or false, got {values[name]!r}")
    return values[name] == "true"


def switch(values: dict[str, str], name: str) -> bool | None:
    """An auto/true/false argument (None = auto)."""
    choices = ("auto", "true", "false")
    require(values[name] in choices, name, f"auto, true or false, got {values[name]!r}")
    return None if values[name] == "auto" else values[name] == "true"


def number(values: dict[str, str], name: str, kind: type[int] | type[float]) -> int | float | None:
    """An int or float argument ('' = not given)."""
    if not values[name]:
        return None
    try:
        return kind(values[name])
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ArgumentError(name, f"expected {what}, got {values[name]!r}") from None


def deploy(values: dict[str, str]) -> list[sessions.Spec]:
    """The deploy session from deploy.launch.py's argument strings."""
    return sessions.deploy(
        values["backend"],
        values["robot"],
        values["checkpoint"],
        dry_run=switch(values, "dry_run"),
        autostart=switch(values, "autostart"),
        hot_reload=switch(values, "hot_reload"),
        use_sim_time=flag(values, "use_sim_time"),
        publish_tf=switch(values, "publish_tf"),
        camera_topic=values["camera_topic"],
        joint_states_topic=values["joint_states_topic"],
        driver_launch=values["driver_launch"],
        params_file=values["params_file"],
        namespace=values["namespace"],
        device=values["device"],
        seed=number(values, "seed", int),
        cmd_vel=parse_cmd_vel(values["cmd_vel"]),
        record=values["record"],
        perturb=values["perturb"],
        perturb_set=values["perturb_set"],
    )


def train(values: dict[str, str]) -> list[sessions.Spec]:
    """The training session from train.launch.py's argument strings."""
    return sessions.train(
        values["task"],
        config=values["config"],
        overrides=values["overrides"].split(),
        algo=values["algo"],
        out=values["out"],
        device=values["device"],
        seed=number(values, "seed", int),
        iterations=number(values, "iterations", int),
        minutes=number(values, "minutes", float),
        overwrite=flag(values, "overwrite"),
        eval_in_sim=flag(values, "eval_in_sim"),
        robot=values["robot"],
        params_file=values["params_file"],
        namespace=values["namespace"],
    )


def from_launch(kind: str, values: dict[str, str]) -> list[sessions.Spec]:
    """The ``kind`` session ('deploy' or 'train') from launch argument strings (defaults for
    those not given); a bad value is a ValueError naming the launch file and the argument."""
    given = {name: default for name, (default, _) in ARGUMENTS[kind].items()} | values
    try:
        return {"deploy": deploy, "train": train}[kind](given)
    except ArgumentError as err:
        raise ValueError(f"{kind}.launch.py: argument '{err.argument}': {err}") from err
