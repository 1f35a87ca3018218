"""``sdpg-ros deploy``: the composed sim session end to end over a real ROS 2 graph."""

from __future__ import annotations

import json

import pytest

from sdpg_ros import cli
from tests.ros.helpers import make_checkpoint


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    """A tiny untrained pixel policy for the reacher at 32x32."""
    return make_checkpoint(tmp_path_factory.mktemp("deploy") / "policy.pt", image_size=32)


def test_sim_session_runs_episodes_and_reports(policy_file, tmp_path, capsys):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file)]
    argv += ["--episodes", "2", "--duration", "60", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["episodes"] >= 2 and report["success_rate"] is not None
    # every frame became an action and a command; nothing was malformed (on a loaded machine a
    # frame may wait past max_image_age_ms: stale frames are rejected, as they should be)
    policy_counts = report["nodes"]["policy_node"]
    stale = policy_counts.get("rejected/stale", 0)
    assert report["images"] >= 2 * 50 and report["rejected"] == stale <= 0.05 * report["images"]
    assert report["actions"] == report["images"] - stale
    assert report["commands"] >= report["actions"]
    # (the bridge activates a moment after the first actions: those are not commanded)
    assert report["latency_ms"]["count"] >= 0.9 * report["actions"]
    assert 0.0 <= report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert set(report["nodes"]) == {"sim_backend", "policy_node", "hardware_bridge"}
    assert "ros_episodes=" in capsys.readouterr().out


def test_dry_run_keeps_the_robot_still(policy_file, tmp_path):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file), "--dry-run"]
    argv += ["--episodes", "1", "--duration", "60", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["commands"] > 0
    assert report["nodes"]["sim_backend"].get("commands", 0) == 0
