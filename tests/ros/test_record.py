"""``sdpg-ros deploy --record BAG``: the session's topics in a standard rosbag2 bag (MCAP)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from sdpg_ros import cli, sessions
from sdpg_ros.session_checks import ArgumentError
from tests.ros.helpers import make_checkpoint
from tests.ros.test_deploy import WALKER, deploy_go2


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    """A tiny untrained pixel policy for the reacher at 32x32."""
    return make_checkpoint(tmp_path_factory.mktemp("record") / "policy.pt", image_size=32)


def read_bag(path) -> dict[str, list]:
    """Every message of the bag by topic, deserialized by rosbags (another rosbag2 reader)."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    messages: dict[str, list] = {}
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap"
    with Reader(path) as reader:
        assert reader.message_count == info["message_count"] > 0
        for connection, _, raw in reader.messages():
            message = typestore.deserialize_cdr(raw, connection.msgtype)
            messages.setdefault(connection.topic, []).append(message)
    return messages


def test_a_recorded_deploy_holds_its_inputs_actions_and_commands(policy_file, tmp_path):
    """A sim deploy of the reacher recorded: camera, joint states, episode starts, actions,
    the bridge's commands, task status and diagnostics, readable by rosbags."""
    bag, report = tmp_path / "bag", tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file), "--seed", "0"]
    argv += ["--episodes", "2", "--duration", "60", "--report", str(report), "--record", str(bag)]
    assert cli.main(argv) == 0
    messages = read_bag(bag)
    assert (bag / "metadata.yaml").is_file()
    counts = {topic: len(found) for topic, found in messages.items()}
    for topic in ("/camera/image_raw", "/joint_states", "/policy/action", "/episode_start"):
        assert counts.get(topic, 0) > 0, counts
    assert counts.get("/effort_controller/commands", 0) > 0, counts  # the reacher's
    assert counts.get("/task_status", 0) >= 1 and counts["/diagnostics"] > 0  # 1st episode
    actions = messages["/policy/action"]
    assert json.loads(report.read_text())["actions"] == pytest.approx(len(actions), abs=5)
    frame = messages["/camera/image_raw"][0]
    assert frame.encoding == "rgb8" and frame.data.size == frame.height * frame.step
    assert np.isfinite(actions[-1].position).all()


def test_a_recorded_quadruped_has_its_imu_and_velocity_command(tmp_path):
    bag = tmp_path / "go2_bag"
    deploy_go2(WALKER, tmp_path, episodes=1, steps=200, command="0.5,0,0", record=bag)
    counts = {topic: len(found) for topic, found in read_bag(bag).items()}
    assert counts.get("/imu/data", 0) > 0 and counts.get("/cmd_vel", 0) > 0, counts
    assert counts.get("/forward_position_controller/commands", 0) > 0, sorted(counts.items())
    assert "/camera/image_raw" not in counts  # a proprio-only policy: the sim renders nothing


def test_an_existing_bag_is_refused_before_any_node(policy_file, tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(ArgumentError, match="exists already"):
        sessions.deploy("sim", "reacher", str(policy_file), record=str(tmp_path / "bag"))


def test_replay_with_the_driving_checkpoint_reproduces_the_recorded_actions(tmp_path):
    """The walking go2 policy's recorded deploy (ticks on joint states, IMU, cmd_vel, an
    episode restart) replayed offline: the same actions; another policy's differ, plotted."""
    bag = tmp_path / "walk"
    deploy_go2(WALKER, tmp_path, episodes=2, steps=150, command="0.5,0,0", record=bag)
    report, chart = tmp_path / "replay.json", tmp_path / "replay.png"
    argv = ["replay", str(bag), "--checkpoint", str(WALKER), "--report", str(report)]
    assert cli.main([*argv, "--plot", str(chart)]) == 0
    same = json.loads(report.read_text())
    assert same["actions"] > 150 and same["max_abs_diff"] <= 1e-6, same
    assert chart.stat().st_size > 0
    other = make_checkpoint(tmp_path / "other.pt", task="go2_walk", seed=5)
    assert cli.main(["replay", str(bag), "--checkpoint", str(other), "--report", str(report)]) == 0
    differ = json.loads(report.read_text())
    assert differ["actions"] == same["actions"] and differ["max_abs_diff"] > 0.01
    assert list(differ["mean_abs_diff_per_joint"])[:2] == ["FR_hip_joint", "FR_thigh_joint"]


def test_replay_of_a_camera_policy_reproduces_its_actions(policy_file, tmp_path):
    bag = tmp_path / "reacher"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file), "--seed", "0"]
    assert cli.main([*argv, "--episodes", "2", "--duration", "60", "--record", str(bag)]) == 0
    report = tmp_path / "replay.json"
    argv = ["replay", str(bag), "--checkpoint", str(policy_file), "--report", str(report)]
    assert cli.main(argv) == 0
    result = json.loads(report.read_text())
    assert result["actions"] > 50 and result["max_abs_diff"] <= 1e-6, result


def test_replay_refuses_what_is_not_a_bag(policy_file, tmp_path, capsys):
    argv = ["replay", str(tmp_path), "--checkpoint", str(policy_file)]
    assert cli.main(argv) == 2
    assert "not a readable rosbag2 bag" in capsys.readouterr().err


def test_replay_of_a_slow_depth_camera_policy_reproduces_its_actions(tmp_path):
    """go2_walk_depth: 10 Hz depth frames between 50 Hz ticks. The node records the stamp of
    the newest frame it held beside each action, so a frame and the tick of its own step that
    crossed in transport are replayed as the node saw them."""
    path = make_checkpoint(
        tmp_path / "go2_depth.pt", 58, task="go2_walk_depth", overrides=("env.image_width=87",)
    )
    bag, report = tmp_path / "depth", tmp_path / "replay.json"
    deploy_go2(path, tmp_path, episodes=2, steps=100, command="0.4,0,0", record=bag)
    assert cli.main(["replay", str(bag), "--checkpoint", str(path), "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["actions"] > 100 and result["max_abs_diff"] <= 1e-6, result
