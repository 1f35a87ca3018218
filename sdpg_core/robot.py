"""Robots the hardware bridge can drive: typed YAML (config/robots/<name>.yaml) and URDF limits."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from sdpg_core.config import ConfigError, _apply
from sdpg_core.share import find_share_file, share_dirs

INTERFACES = ("position", "velocity", "effort")
COMMAND_TYPES = ("forward", "trajectory")
ACTION_MODES = ("absolute", "delta")  # delta: position interface only


@dataclass
class RobotConfig:
    """One robot: joint order, command interface and topic, action mapping, safety gains."""

    name: str = ""
    urdf: str = ""  # file name under urdf/ (installed: share/sdpg_ros/urdf), or an absolute path
    sim_task: str = ""  # MuJoCo task the policy was trained on ('' = none)
    tasks: tuple[str, ...] = ()  # further tasks whose policies drive it (same joints and actions)
    joints: tuple[str, ...] = ()  # command and action order (the controller's joint order)
    default_pose: tuple[float, ...] = ()  # a safe resting pose, per joint
    command_interface: str = "position"  # position | velocity | effort
    command_type: str = "forward"  # forward: Float64MultiArray; trajectory: JointTrajectory
    command_topic: str = ""
    camera_topic: str = "camera/image_raw"  # the camera driver's image topic (sim: the same)
    depth_topic: str = "camera/depth/image_rect_raw"  # its depth image topic (depth policies)
    action_mode: str = "absolute"  # absolute: offset + scale * a; delta: last + scale * a
    action_scale: tuple[float, ...] = ()  # command = action_offset + action_scale * a
    action_offset: tuple[float, ...] = ()
    max_rate: tuple[float, ...] = ()  # largest command change per second, command units / s
    damping_kd: tuple[float, ...] = ()  # effort hold: -damping_kd * measured velocity
    stand_s: float = 0.0  # > 0: staged start, from the measured pose to default_pose in this time
    stand_hold_s: float = 0.0  # then held this long before the policy may command

    def validate(self, source: str) -> RobotConfig:
        """Check values types cannot express; ConfigError names ``source`` and the key."""
        n = len(self.joints)
        checks = {
            "name": bool(self.name),
            "tasks": all(self.tasks) and (not self.tasks or bool(self.sim_task)),
            "urdf": bool(self.urdf),
            "joints": n > 0 and len(set(self.joints)) == n and all(self.joints),
            "command_interface": self.command_interface in INTERFACES,
            "command_type": self.command_type in COMMAND_TYPES,
            "action_mode": self.action_mode in ACTION_MODES
            and (self.action_mode == "absolute" or self.command_interface == "position"),
            "command_topic": bool(self.command_topic),
            "camera_topic": bool(self.camera_topic),
            "depth_topic": bool(self.depth_topic),
            "default_pose": _finite_list(self.default_pose, n),
            "action_scale": _finite_list(self.action_scale, n),
            "action_offset": _finite_list(self.action_offset, n),
            "max_rate": _finite_list(self.max_rate, n) and min(self.max_rate) > 0,
            "damping_kd": _finite_list(self.damping_kd, n) and min(self.damping_kd) >= 0,
            "stand_s": math.isfinite(self.stand_s)
            and self.stand_s >= 0
            and (self.stand_s == 0 or self.command_interface == "position"),
            "stand_hold_s": math.isfinite(self.stand_hold_s) and self.stand_hold_s >= 0,
        }
        bad = [key for key, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"{source}: invalid value for {', '.join(bad)} (per-joint lists need one finite "
                f"entry per joint ({n}); max_rate > 0, damping_kd >= 0; command_interface in "
                f"{INTERFACES}, command_type in {COMMAND_TYPES}, action_mode in {ACTION_MODES}, "
                "delta for the position interface only)"
            )
        return self

    @property
    def task_names(self) -> tuple[str, ...]:
        """Every task whose policies drive this robot: ``sim_task`` first, then ``tasks``."""
        return (self.sim_task, *self.tasks) if self.sim_task else ()

    def image_topic(self, image: str) -> str:
        """The topic a policy of image kind ``image`` (rgb or depth) reads its camera from."""
        return self.depth_topic if image == "depth" else self.camera_topic


def _finite_list(values: tuple[float, ...], n: int) -> bool:
    """True when ``values`` has ``n`` finite entries."""
    return len(values) == n and all(math.isfinite(v) for v in values)


@dataclass(frozen=True)
class JointLimits:
    """URDF limits of one joint (a continuous joint has infinite position bounds)."""

    lower: float
    upper: float
    effort: float
    velocity: float


def robot_dirs() -> list[Path]:
    """Directories searched for ``<name>.yaml`` robot files."""
    return [base / "robots" for base in share_dirs("config")]


def robot_names() -> list[str]:
    """Names of every robot found in the search directories, sorted."""
    return sorted({p.stem for d in robot_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def robot_config_path(robot: str | Path) -> Path:
    """The YAML of a robot given by registry name or by file path."""
    text = str(robot)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        if not Path(text).is_file():
            raise ConfigError(f"robot file {text} does not exist")
        return Path(text)
    for d in robot_dirs():
        if (d / f"{text}.yaml").is_file():
            return d / f"{text}.yaml"
    raise ConfigError(f"unknown robot {text!r}; known: {', '.join(robot_names()) or 'none'}")


def load_robot(robot: str | Path) -> RobotConfig:
    """Load and validate a robot by name or path; unknown keys and wrong types raise."""
    path = robot_config_path(robot)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read robot file: {err}") from err
    if isinstance(data, dict) and "max_delta" in data:
        raise ConfigError(
            f"{path}: max_delta (change per command) was replaced by max_rate (change per "
            "second): max_rate = max_delta * the bridge's rate_hz (e.g. 0.1 at 50 Hz -> 5.0)"
        )
    cfg = RobotConfig()
    _apply(cfg, data, str(path))
    return cfg.validate(str(path))


def robot_urdf_path(robot: RobotConfig) -> Path:
    """The URDF file of ``robot`` (an absolute path, else searched in the share directories)."""
    given = Path(robot.urdf)
    found = given if given.is_absolute() and given.is_file() else None
    if not given.is_absolute():
        found = find_share_file("urdf", given)
    if found is None:
        where = given if given.is_absolute() else [d / given for d in share_dirs("urdf")]
        raise ConfigError(f"robot {robot.name}: urdf {robot.urdf!r} not found in {where}")
    return found


def parse_urdf_limits(urdf: str | Path) -> dict[str, JointLimits]:
    """Limits of every movable joint, from a URDF file path or a URDF XML string."""
    text = str(urdf)
    is_xml = text.lstrip().startswith("<")
    source = "robot_description" if is_xml else text
    try:
        root = ET.fromstring(text) if is_xml else ET.parse(text).getroot()
    except (OSError, ET.ParseError) as err:
        raise ConfigError(f"{source}: cannot read URDF: {err}") from err
    limits = {}
    for joint in root.iter("joint"):
        kind, name = joint.get("type"), joint.get("name")
        if kind in ("revolute", "prismatic", "continuous"):
            limits[name] = _joint_limits(joint.find("limit"), kind, f"{source}: joint {name}")
    return limits


def _joint_limits(element: ET.Element | None, kind: str, where: str) -> JointLimits:
    """JointLimits from a <limit> element (URDF defaults: lower = upper = 0)."""
    if element is None:
        if kind != "continuous":
            raise ConfigError(f"{where}: a {kind} joint needs a <limit> element")
        return JointLimits(-math.inf, math.inf, math.inf, math.inf)

    def number(attr: str, default: float) -> float:
        raw = element.get(attr)
        try:
            return default if raw is None else float(raw)
        except ValueError as err:
            raise ConfigError(f"{where}: limit {attr}={raw!r} is not a number") from err

    effort, velocity = number("effort", math.inf), number("velocity", math.inf)
    if kind == "continuous":
        return JointLimits(-math.inf, math.inf, effort, velocity)
    lower, upper = number("lower", 0.0), number("upper", 0.0)
    if not lower <= upper:
        raise ConfigError(f"{where}: limit lower={lower} > upper={upper}")
    return JointLimits(lower, upper, effort, velocity)


def joint_limits(robot: RobotConfig, limits: dict[str, JointLimits]) -> list[JointLimits]:
    """The limits of ``robot.joints`` in that order; joints missing from the URDF raise."""
    missing = [j for j in robot.joints if j not in limits]
    if missing:
        raise ConfigError(
            f"robot {robot.name}: joints {missing} are not movable joints of the URDF "
            f"(it has {sorted(limits)})"
        )
    return [limits[j] for j in robot.joints]
