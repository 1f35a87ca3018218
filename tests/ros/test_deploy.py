"""``sdpg-ros deploy``: the composed sim session end to end over a real ROS 2 graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sdpg_core.policy import Policy
from sdpg_core.robot import load_robot
from sdpg_core.sim import SimRobot
from sdpg_ros import cli
from tests.ros.helpers import make_checkpoint


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    """A tiny untrained pixel policy for the reacher at 32x32."""
    return make_checkpoint(tmp_path_factory.mktemp("deploy") / "policy.pt", image_size=32)


def test_sim_session_runs_episodes_and_reports(policy_file, tmp_path, capsys):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file)]
    argv += ["--episodes", "2", "--duration", "60", "--report", str(report_file), "--compare"]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["episodes"] >= 2 and report["success_rate"] is not None
    assert 0.0 <= report["in_process_success_rate"] <= 1.0  # same checkpoint and episodes
    # every frame became an action and a command; nothing was malformed (on a loaded machine a
    # frame may wait past max_image_age_ms, or be overtaken by a newer one before the policy gets
    # to it: stale frames are rejected and overtaken ones skipped, as they should be)
    policy_counts = report["nodes"]["policy_node"]
    stale = policy_counts.get("rejected/stale", 0)
    skipped = stale + policy_counts.get("superseded", 0)
    assert report["images"] >= 2 * 50 and report["rejected"] == stale
    assert skipped <= 0.05 * report["images"]
    assert report["actions"] == report["images"] - skipped
    assert report["commands"] >= report["actions"]
    # (the bridge activates a moment after the first actions: those are not commanded)
    assert report["latency_ms"]["count"] >= 0.9 * report["actions"]
    assert 0.0 <= report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert set(report["nodes"]) == {"sim_backend", "policy_node", "hardware_bridge"}
    out = capsys.readouterr().out
    assert "ros_episodes=" in out and "in_process_success=" in out and "gap=" in out


def test_dry_run_keeps_the_robot_still(policy_file, tmp_path):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file), "--dry-run"]
    argv += ["--episodes", "1", "--duration", "60", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["commands"] > 0
    assert report["nodes"]["sim_backend"].get("commands", 0) == 0


TRAINED = Path(__file__).resolve().parents[1] / "data" / "reacher_pixels.pt"


def in_process_twin(path: Path, episodes: int, seed: int) -> list[bool]:
    """The deploy loop without ROS: same sim, seed, images and command mapping."""
    policy, robot = Policy.load(path), SimRobot("reacher", seed=seed)
    scale = np.asarray(load_robot("reacher").action_scale)
    size = policy.spec.pixel_shape[1]
    image, successes = robot.image(size), []
    while len(successes) < episodes:
        robot.set_command(scale * policy.act_image(image))
        episode = robot.step()
        if episode is not None:
            successes.append(bool(episode.success))
            policy.reset_stream()  # the policy node does so on the sim's episode_start
        image = robot.image(size)
    robot.close()
    return successes


def test_trained_policy_reaches_over_ros_as_in_process(tmp_path):
    """A pixel policy trained by ``make run`` (exported to tests/data) drives the simulated arm
    over ROS 2 topics, succeeding on the same episodes as the same loop without ROS (up to
    the bridge's 1 s activation ramp and timing)."""
    episodes = 16
    twin = in_process_twin(TRAINED, episodes, seed=0)
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(TRAINED), "--seed", "0"]
    argv += ["--episodes", str(episodes), "--duration", "120", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["episodes"] >= episodes and report["rejected"] == 0
    assert report["success_rate"] >= 0.6
    ros_successes = round(report["success_rate"] * report["episodes"])
    assert abs(ros_successes - sum(twin)) <= 2, (ros_successes, twin)


def test_train_with_live_evaluation_hot_reloads(tmp_path, capsys):
    tiny = ["algo.num_nominal=2", "algo.num_perturbations=1", "algo.horizon=4"]
    tiny += ["env.image_size=32", "model.encoder_channels=4", "model.encoder_features=16"]
    tiny += ["run.checkpoint_interval=2", "run.eval_episodes=2", "run.video=false"]
    argv = ["train", "--task", "reacher", "--iterations", "40", "--out", str(tmp_path / "run")]
    argv += [arg for item in tiny for arg in ("--set", item)] + ["--eval-in-sim"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["iterations"] == 40
    live = dict(part.split("=", 1) for part in out.splitlines()[1].split()[2:] if "=" in part)
    assert int(live["actions"]) > 0 and int(live["commands"]) > 0


def test_configuration_errors_exit_2(capsys):
    assert cli.main(["train", "--task", "reacher", "--set", "algo.horizonn=3"]) == 2
    assert "algo.horizonn" in capsys.readouterr().err
    assert cli.main(["deploy", "--checkpoint", "/nonexistent.pt"]) == 2


def test_train_flags_become_trainer_parameters():
    args = cli.build_parser().parse_args(
        ["train", "--task", "reacher", "--algo", "ppo", "--set", "ppo.lr=1e-3", "--seed", "3"]
    )
    params = cli.trainer_parameters(args)
    assert params["overrides"] == ["ppo.lr=1e-3", "run.algo=ppo"]
    assert params["task"] == "reacher" and params["seed"] == 3 and "minutes" not in params
