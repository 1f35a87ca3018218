"""Robot registry: strict YAML loading, URDF limits, joint names shared with the MuJoCo task."""

import math
from pathlib import Path

import pytest

from sdpg_core.config import ConfigError, EnvConfig
from sdpg_core.envs.registry import make_env
from sdpg_core.fit import action_misfit, robot_misfit
from sdpg_core.robot import (
    joint_limits,
    load_robot,
    parse_urdf_limits,
    robot_config_path,
    robot_names,
    robot_urdf_path,
)

ROBOT_FILES = sorted((Path(__file__).resolve().parents[1] / "config" / "robots").glob("*.yaml"))
REACHER = Path(__file__).resolve().parents[1] / "config" / "robots" / "reacher.yaml"


def write_robot(tmp_path, replace: dict[str, str]) -> Path:
    """A copy of reacher.yaml with some top-level lines replaced ("key: value")."""
    lines = []
    for line in REACHER.read_text().splitlines():
        key = line.split(":")[0]
        lines.append(replace.pop(key) if key in replace else line)
    lines.extend(replace.values())  # keys not in the file are appended
    path = tmp_path / "robot.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_registry_lists_every_robot_file():
    assert ROBOT_FILES, "config/robots/ holds no robot"
    assert {p.stem for p in ROBOT_FILES} <= set(robot_names())
    assert robot_config_path("reacher") == REACHER


def test_load_by_name_and_by_path():
    robot = load_robot("reacher")
    assert load_robot(str(REACHER)) == robot
    assert robot.joints == ("shoulder", "elbow")
    assert robot.command_interface == "effort"
    assert robot.action_scale == (0.05, 0.05)


def test_unknown_robot_lists_known():
    with pytest.raises(ConfigError, match=r"unknown robot 'nope'.*reacher"):
        load_robot("nope")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.yaml does not exist"):
        load_robot(tmp_path / "missing.yaml")


def test_unknown_key_names_file_and_key(tmp_path):
    path = write_robot(tmp_path, {"max_delt": "max_delt: [0.1, 0.1]"})
    with pytest.raises(ConfigError, match=r"robot.yaml: max_delt: unknown key"):
        load_robot(path)


def test_old_max_delta_key_says_how_to_migrate(tmp_path):
    path = write_robot(tmp_path, {"max_rate": "max_delta: [0.1, 0.1]"})
    with pytest.raises(ConfigError, match=r"robot.yaml: max_delta .* replaced by max_rate"):
        load_robot(path)


def test_wrong_type_names_file_and_key(tmp_path):
    path = write_robot(tmp_path, {"action_scale": "action_scale: [0.05, fast]"})
    with pytest.raises(ConfigError, match=r"robot.yaml: action_scale\[1\]: expected a number"):
        load_robot(path)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("command_interface: torque", "command_interface"),
        ("command_type: action", "command_type"),
        ("max_rate: [0.05]", "max_rate"),
        ("max_rate: [0.05, 0.0]", "max_rate"),
        ("damping_kd: [0.1, -0.1]", "damping_kd"),
        ("joints: [shoulder, shoulder]", "joints"),
        ("action_offset: [0.0, .nan]", "action_offset"),
        ("command_topic: ''", "command_topic"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, line, key):
    path = write_robot(tmp_path, {line.split(":")[0]: line})
    with pytest.raises(ConfigError, match=rf"robot.yaml: invalid value for {key}"):
        load_robot(path)


def test_reacher_urdf_limits():
    limits = parse_urdf_limits(robot_urdf_path(load_robot("reacher")))
    assert set(limits) == {"shoulder", "elbow"}  # the fixed fingertip joint is not movable
    shoulder, elbow = limits["shoulder"], limits["elbow"]
    assert (shoulder.lower, shoulder.upper) == (-math.inf, math.inf)  # continuous
    assert (elbow.lower, elbow.upper) == (-2.8, 2.8)
    assert shoulder.effort == elbow.effort == 0.05
    assert shoulder.velocity == elbow.velocity == 50.0


def test_urdf_xml_string_equals_file():
    path = robot_urdf_path(load_robot("reacher"))
    assert parse_urdf_limits(path.read_text()) == parse_urdf_limits(path)


def test_urdf_revolute_without_limit_is_rejected():
    xml = '<robot name="r"><joint name="j" type="revolute"/></robot>'
    with pytest.raises(ConfigError, match=r"robot_description: joint j: .*<limit>"):
        parse_urdf_limits(xml)


def test_urdf_bad_number_is_named():
    xml = '<robot name="r"><joint name="j" type="prismatic"><limit lower="a"/></joint></robot>'
    with pytest.raises(ConfigError, match=r"joint j: limit lower='a'"):
        parse_urdf_limits(xml)


def test_urdf_malformed_xml():
    with pytest.raises(ConfigError, match=r"robot_description: cannot read URDF"):
        parse_urdf_limits("<robot><joint></robot>")


def test_joint_missing_from_urdf_is_named():
    xml = '<robot name="r"><joint name="shoulder" type="continuous"/></robot>'
    with pytest.raises(ConfigError, match=r"\['elbow'\] are not movable joints"):
        joint_limits(load_robot("reacher"), parse_urdf_limits(xml))


@pytest.mark.parametrize("path", ROBOT_FILES, ids=lambda p: p.stem)
def test_robot_file_consistent(path):
    robot = load_robot(path)
    assert robot.name == path.stem
    limits = joint_limits(robot, parse_urdf_limits(robot_urdf_path(robot)))
    for joint, pose, lim in zip(robot.joints, robot.default_pose, limits, strict=True):
        assert lim.lower <= pose <= lim.upper, joint
    for task in robot.task_names:  # every task it runs: its joints and action mapping
        env = make_env(task, EnvConfig(), 1, render=False)
        assert env.spec.joint_names == robot.joints
        assert action_misfit(env.spec, robot) is None, task
        if robot.command_interface == "effort":  # a in [-1, 1] is the ctrl of a torque motor
            model = env.model
            torque = model.actuator_gear[:, 0] * model.actuator_ctrlrange[:, 1]
            assert robot.action_scale == pytest.approx(torque)
            assert robot.action_offset == pytest.approx([0.0] * model.nu)
        if robot.action_mode == "delta":  # the bridge integrates as the task's control does
            assert robot.action_scale == pytest.approx([env.task.max_delta] * env.model.nu)
            assert robot.default_pose == pytest.approx(env.spec.default_pose)


def test_the_arm_urdf_and_model_agree_with_the_driver_names():
    """Joint names agree across URDF, MuJoCo model, robot YAML; frames the driver publishes."""
    robot = load_robot("ur5e")
    urdf = robot_urdf_path(robot).read_text()
    env = make_env("ur5e_reach", EnvConfig(), 1, render=False)
    names = {env.model.body(i).name for i in range(env.model.nbody)}
    assert {"base_link", "tool0", "camera_color_optical_frame"} <= names
    assert env.spec.joint_names == robot.joints
    assert all(f'<joint name="{joint}" type="revolute">' in urdf for joint in robot.joints)
    assert (robot.command_interface, robot.action_mode) == ("position", "delta")


def test_delta_actions_need_the_position_interface(tmp_path):
    path = write_robot(tmp_path, {"action_mode": "action_mode: delta"})
    with pytest.raises(ConfigError, match="action_mode"):
        load_robot(path)


def test_a_terrain_policy_drives_the_quadruped_and_a_reacher_policy_does_not():
    go2 = load_robot("go2")
    assert go2.task_names == ("go2_walk", "go2_terrain")
    terrain = make_env("go2_terrain", EnvConfig(), 1, render=False).spec
    assert robot_misfit(terrain, go2) is None
    reacher = make_env("reacher", EnvConfig(), 1, render=False).spec
    misfit = robot_misfit(reacher, go2)
    assert misfit.reason == "task" and "runs 'go2_walk' / 'go2_terrain'" in misfit.message
