"""The deploy report: counts, success over ROS and camera-to-command latency percentiles."""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.node import Node


def latency_summary(latencies_ms: list[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/max of camera-to-command latencies in ms (None without samples)."""
    if not latencies_ms:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    values = np.asarray(latencies_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "count": len(values),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
    }


def episode_metrics(episodes: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each task metric (e.g. go2's ``velocity``) of every finished episode, in order."""
    names = episodes[0].get("metrics", {}) if episodes else {}
    return {name: [float(e["metrics"][name]) for e in episodes] for name in names}


def deploy_report(nodes: dict[str, Node], seconds: float) -> dict[str, Any]:
    """Gather the counters of every node (by name), the sim's episodes, the bridge's latencies.

    Nodes may already be destroyed: only their Python-side statistics are read."""
    counts = {name: n.counters.as_dict() for name, n in nodes.items() if hasattr(n, "counters")}
    nodes = list(nodes.values())
    episodes = next((node.episodes for node in nodes if hasattr(node, "episodes")), [])
    latencies = next((list(n.latencies_ms) for n in nodes if hasattr(n, "latencies_ms")), [])
    get = lambda name, key: counts.get(name, {}).get(key, 0)  # noqa: E731
    per_episode = episode_metrics(episodes)
    report: dict[str, Any] = {
        "duration_s": seconds,
        "images": get("policy_node", "images"),
        "actions": get("policy_node", "actions"),
        "commands": get("hardware_bridge", "commands"),
        "rejected": sum(c.get("rejected", 0) for c in counts.values()),
        "frames_published": get("sim_backend", "frames"),
        "episodes": len(episodes),
        "success_rate": float(np.mean([e["success"] for e in episodes])) if episodes else None,
        "return_mean": float(np.mean([e["return"] for e in episodes])) if episodes else None,
        "returns": [float(e["return"]) for e in episodes],
        "episode_metrics": per_episode,
        "metrics": {name: float(np.mean(values)) for name, values in per_episode.items()},
        "latency_ms": latency_summary(latencies),
        "nodes": counts,
    }
    return report


def summary_line(report: dict[str, Any]) -> str:
    """One line: episodes, success over ROS, latency p50/p99, counts."""
    latency = report["latency_ms"]
    success = report["success_rate"]
    parts = [
        f"checkpoint={report['checkpoint']}" if report.get("checkpoint") else "",
        f"ros_episodes={report['episodes']}",
        f"ros_success={success:.0%}" if success is not None else "ros_success=n/a",
        f"latency_p50_ms={latency['p50']:.2f}" if latency["p50"] is not None else "",
        f"latency_p99_ms={latency['p99']:.2f}" if latency["p99"] is not None else "",
        f"images={report['images']}",
        f"actions={report['actions']}",
        f"commands={report['commands']}",
        f"rejected={report['rejected']}",
    ]
    parts += [f"ros_{name}={value:.3g}" for name, value in report.get("metrics", {}).items()]
    parts += [f"in_process_{k}={v:.3g}" for k, v in report.get("in_process_metrics", {}).items()]
    reference = report.get("in_process_success_rate")
    if reference is not None and success is not None:
        parts.append(f"in_process_success={reference:.0%} gap={100 * (success - reference):+.0f}pt")
    return " ".join(p for p in parts if p)
