"""The deploy report's figures from hand-made node statistics."""

from types import SimpleNamespace

import pytest

from sdpg_ros.report import deploy_report, latency_summary, summary_line


def test_latency_percentiles_by_hand():
    summary = latency_summary([float(v) for v in range(1, 101)])  # 1..100 ms
    assert summary["count"] == 100 and summary["max"] == 100.0
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p99"] == pytest.approx(99.01)
    assert latency_summary([])["p99"] is None


def counters(**counts):
    return SimpleNamespace(as_dict=lambda: counts)


def test_report_counts_success_and_gap():
    nodes = {
        "sim_backend": SimpleNamespace(
            counters=counters(frames=10),
            episodes=[{"return": 1.0, "success": True}, {"return": 3.0, "success": False}],
        ),
        "policy_node": SimpleNamespace(counters=counters(images=9, actions=8, rejected=1)),
        "hardware_bridge": SimpleNamespace(
            counters=counters(commands=20, rejected=2), latencies_ms=[1.0, 3.0]
        ),
    }
    report = deploy_report(nodes, 4.0)
    assert (report["images"], report["actions"], report["commands"]) == (9, 8, 20)
    assert report["rejected"] == 3 and report["frames_published"] == 10
    assert report["success_rate"] == 0.5 and report["return_mean"] == 2.0
    assert report["latency_ms"]["p50"] == 2.0
    report["in_process_success_rate"] = 0.75
    line = summary_line(report)
    assert "ros_success=50%" in line and "gap=-25pt" in line


def test_report_averages_the_task_metrics_of_the_episodes():
    """A walker's per-episode ``velocity`` is averaged over ROS and printed beside in-process."""
    episodes = [
        {"return": 1.0, "success": True, "metrics": {"velocity": 0.5}},
        {"return": 2.0, "success": False, "metrics": {"velocity": 0.3}},
    ]
    report = deploy_report({"sim_backend": SimpleNamespace(episodes=episodes)}, 1.0)
    assert report["metrics"] == {"velocity": pytest.approx(0.4)}
    assert report["episode_metrics"] == {"velocity": [0.5, 0.3]}
    report["in_process_metrics"] = {"velocity": 0.45}
    line = summary_line(report)
    assert "ros_velocity=0.4" in line and "in_process_velocity=0.45" in line
    no_metrics = deploy_report({"sim_backend": SimpleNamespace(episodes=episodes[:0])}, 1.0)
    assert no_metrics["metrics"] == {}
