"""The checks a session's arguments pass before any node starts (``ros2 launch`` and ``sdpg-ros``
alike); each failure is an ArgumentError naming the argument. No torch here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from rclpy.exceptions import InvalidNamespaceException, InvalidTopicNameException
from rclpy.validate_namespace import validate_namespace
from rclpy.validate_topic_name import validate_topic_name

from sdpg_core.config import Config, ConfigError, RandomizeConfig, load_perturbations, parse_command
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import get_task
from sdpg_core.fit import read_metadata, robot_misfit, robot_tasks, runs_task
from sdpg_core.robot import RobotConfig, load_robot
from sdpg_core.session import check_run_dir, resolve_train_config
from sdpg_core.sim import camera_timing


class ArgumentError(ValueError):
    """A session argument has a bad value; ``argument`` names it as the launch files do."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def require(condition: bool, argument: str, message: str) -> None:
    """Raise ArgumentError naming ``argument`` unless ``condition`` holds."""
    if not condition:
        raise ArgumentError(argument, message)


def check_count(argument: str, value: float | None) -> None:
    """A budget or seed is a finite number >= 0 (None: not given)."""
    if value is not None:
        require(math.isfinite(value) and value >= 0, argument, f"must be >= 0, got {value}")


def check_namespace(namespace: str) -> str:
    """The absolute ROS namespace for ``namespace`` ('' = none)."""
    if not namespace:
        return ""
    absolute = namespace if namespace.startswith("/") else f"/{namespace}"
    try:
        validate_namespace(absolute)
    except InvalidNamespaceException as err:
        reason = str(err).splitlines()[0].removeprefix("Invalid namespace: ").rstrip(":")
        message = f"{namespace!r} is not a valid ROS namespace: {reason}"
        raise ArgumentError("namespace", message) from err
    return absolute


def check_topic(argument: str, topic: str) -> None:
    """A topic name to remap to ('' = no remap) is a valid ROS topic name."""
    if topic:
        try:
            validate_topic_name(topic)
        except InvalidTopicNameException as err:
            reason = str(err).splitlines()[0].removeprefix("Invalid topic name: ").rstrip(":")
            raise ArgumentError(argument, f"invalid topic name {topic!r}: {reason}") from err


def check_params_file(path: str) -> None:
    """A params file ('' = none) exists and is ROS parameters YAML (``<node or /**>:
    ros__parameters: {...}``)."""
    if not path:
        return
    require(Path(path).is_file(), "params_file", f"params file {path} does not exist")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or "cannot parse"
        message = f"params file {path}: not valid YAML{where}: {problem}"
        raise ArgumentError("params_file", message) from err
    shape = f"params file {path}: expected '<node name>: ros__parameters: {{...}}'"
    require(isinstance(data, dict) and bool(data), "params_file", shape)
    for node, section in data.items():
        params = section.get("ros__parameters") if isinstance(section, dict) else None
        message = f"params file {path}: '{node}' needs a 'ros__parameters:' mapping"
        require(isinstance(params, dict), "params_file", message)


def check_robot(robot: str) -> RobotConfig:
    """The robot's configuration (config/robots/<name>.yaml or a path)."""
    try:
        return load_robot(robot)
    except (OSError, ValueError) as err:  # ConfigError is a ValueError
        raise ArgumentError("robot", str(err)) from err


def check_checkpoint(path: str, robot: RobotConfig) -> EnvSpec:
    """The spec of a checkpoint trained for ``robot`` (its header read without torch)."""
    try:
        spec = read_metadata(path)[1]
    except (OSError, ValueError) as err:
        raise ArgumentError("checkpoint", str(err)) from err
    misfit = robot_misfit(spec, robot)
    if misfit:
        message = f"checkpoint {path} does not fit robot {robot.name!r}: {misfit.message}"
        raise ArgumentError("checkpoint", message)
    return spec


def check_policy_source(checkpoint: str, robot: RobotConfig, hot_reload: bool) -> str:
    """A checkpoint that fits ``robot``, or none while hot reload can bring one; returns the
    policy's image kind (rgb or depth; a hot-reloaded policy: its sim task's)."""
    message = "required (without hot_reload nothing else can load a policy)"
    require(bool(checkpoint) or hot_reload, "checkpoint", message)
    if checkpoint:
        return check_checkpoint(checkpoint, robot).image
    return task_image(robot.sim_task) if robot.sim_task else "rgb"


def task_image(task: str, image: str = "") -> str:
    """The image kind a policy of ``task`` sees (``image``: the config's env.image, '' = the
    task's)."""
    return image or get_task(task).factory.image


def check_perturb(perturb: str, perturb_set: str, sim: bool) -> RandomizeConfig | None:
    """The sim's perturbation set (file and set name, both or neither; sim only)."""
    require(bool(perturb) == bool(perturb_set), "perturb_set", "give both perturb and the set")
    if not perturb:
        return None
    require(sim, "perturb", "perturbation sets are simulated: backend sim only")
    try:
        sets = load_perturbations(perturb)
    except ConfigError as err:
        raise ArgumentError("perturb", str(err)) from err
    require(perturb_set in sets, "perturb_set", f"{perturb} has {', '.join(sets)}")
    timed = camera_timing(sets[perturb_set])
    require(not timed, "perturb_set", f"{', '.join(timed)}: the sim camera's own timing")
    return sets[perturb_set]


def check_file(argument: str, path: str) -> None:
    """A file argument ('' = none) names an existing file."""
    require(not path or Path(path).is_file(), argument, f"{path} does not exist")


def check_record(path: str) -> None:
    """A bag to record ('' = none) is a new directory in an existing folder."""
    if path:
        bag = Path(path)
        require(not bag.exists(), "record", f"{path} exists already (a bag is never appended)")
        require(bag.absolute().parent.is_dir(), "record", f"{bag.parent} is not a directory")


def check_publish_tf(publish_tf: bool | None) -> bool:
    """Whether robot_state_publisher runs (None = auto: when it is installed)."""
    tf_installed = installed("robot_state_publisher")
    message = "true, but robot_state_publisher is not installed"
    require(tf_installed or not publish_tf, "publish_tf", message)
    return tf_installed if publish_tf is None else publish_tf


def check_live_task(task: str, robot: RobotConfig) -> None:
    """The policies trained on ``task`` can drive ``robot`` in the sim (eval_in_sim)."""
    if get_task(task).obs_mode != "pixels":
        message = f"eval_in_sim needs a pixel task, {task!r} trains a state policy"
        raise ArgumentError("eval_in_sim", message)
    if not runs_task(robot, task):
        message = f"robot {robot.name!r} runs task {robot_tasks(robot)}, not {task!r}"
        raise ArgumentError("robot", message)


def resolve_config(task: str, config: str, overrides: list[str], flags: dict[str, Any]) -> Config:
    """The training config trainer_node will resolve: the task, the config file, the overrides,
    then each given flag (algo, device, seed, iterations, minutes); the first that fails named."""
    try:
        get_task(task)
    except KeyError as err:
        raise ArgumentError("task", err.args[0]) from err

    def attempt(argument: str, **given: Any) -> Config:
        try:
            return resolve_train_config(task, config or None, **given)
        except (OSError, ValueError) as err:  # ConfigError is a ValueError
            raise ArgumentError(argument, str(err)) from err

    attempt("config")
    cfg, given = attempt("overrides", overrides=overrides), {"overrides": overrides}
    for name, value in flags.items():
        if value is not None:
            given[name] = value
            cfg = attempt(name, **given)
    return cfg


def check_out(out: str, overwrite: bool) -> None:
    """A run directory ('' = a new one) holds no run, unless ``overwrite``."""
    if out:
        try:
            check_run_dir(Path(out), overwrite)
        except FileExistsError as err:
            raise ArgumentError("out", str(err)) from err


def installed(package: str) -> bool:
    """Whether the ament index knows ``package``."""
    try:
        get_package_prefix(package)
    except (PackageNotFoundError, OSError):  # OSError: no ament index (AMENT_PREFIX_PATH)
        return False
    return True


def check_cmd_vel(cmd_vel: tuple[float, ...] | None, robot: RobotConfig) -> None:
    """A velocity command (vx, vy, wz), finite, for a robot whose task takes one."""
    if cmd_vel is None:
        return
    message = f"three finite numbers vx,vy,wz, got {cmd_vel}"
    require(len(cmd_vel) == 3 and all(map(math.isfinite, cmd_vel)), "cmd_vel", message)
    takes = bool(robot.sim_task) and get_task(robot.sim_task).factory.command_dim == 3
    require(takes, "cmd_vel", f"robot {robot.name!r} takes no velocity command")


def parse_cmd_vel(text: str) -> tuple[float, ...] | None:
    """'vx,vy,wz' -> the velocity command ('' = none); ArgumentError naming cmd_vel."""
    if not text:
        return None
    try:
        return parse_command(text)
    except ValueError as err:
        raise ArgumentError("cmd_vel", f"vx,vy,wz: {err}") from None
