"""trainer_node on a real ROS 2 graph: progress, preview, checkpoint paths, save and stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from sdpg_core.policy import Policy
from sdpg_core.session import TrainingSession, resolve_train_config
from sdpg_ros.common import LATCHED_QOS, ParameterError
from sdpg_ros.trainer_node import TrainerNode, progress_line

TINY = [
    "sdpg.num_nominal=2",
    "sdpg.num_perturbations=3",
    "sdpg.horizon=4",
    "env.image_size=32",
    "model.encoder_channels=8",
    "model.encoder_features=32",
    "run.eval_episodes=2",
    "run.checkpoint_interval=2",
    "run.video=false",
]


def trainer(graph, tmp_path: Path, iterations: int, extra: tuple = ()) -> TrainerNode:
    """A trainer node on the test graph with a tiny config."""
    params = {
        "task": "reacher",
        "overrides": [*TINY, *extra],
        "iterations": iterations,
        "out": str(tmp_path / "run"),
        "progress_rate_hz": 20.0,
    }
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return graph.add(TrainerNode(context=graph.context, parameter_overrides=overrides))


def listener(graph) -> tuple[Node, dict[str, list]]:
    """A node recording progress, previews and checkpoint paths."""
    node = graph.add(Node("listener", context=graph.context))
    got: dict[str, list] = {"progress": [], "preview": [], "checkpoint": []}
    node.create_subscription(DiagnosticStatus, "trainer/progress", got["progress"].append, 10)
    node.create_subscription(Image, "trainer/preview", got["preview"].append, 10)
    node.create_subscription(String, "trainer/checkpoint", got["checkpoint"].append, LATCHED_QOS)
    return node, got


def call(graph, node: Node, name: str) -> Trigger.Response:
    """Call a Trigger service and spin until it answers."""
    client = node.create_client(Trigger, name)
    assert graph.spin_until(client.service_is_ready, 10.0), name
    future = client.call_async(Trigger.Request())
    assert graph.spin_until(future.done, 60.0), name
    return future.result()


def test_trainer_publishes_progress_preview_and_checkpoints(graph, tmp_path):
    node = trainer(graph, tmp_path, iterations=6)
    _, got = listener(graph)
    assert graph.spin_until(node.finished.is_set, 120.0)
    assert graph.spin_until(lambda: got["checkpoint"] and got["preview"], 10.0)
    paths = {Path(m.data) for m in got["checkpoint"]}
    assert all(p.is_file() for p in paths)
    assert {p.name for p in paths} >= {"latest.pt"}
    keys = {kv.key for m in got["progress"] for kv in m.values}
    assert {"iteration", "env_steps", "run_dir"} <= keys
    assert (got["preview"][-1].height, got["preview"][-1].width) == (32, 32)
    assert node.summary is not None and node.summary["iterations"] == 6
    assert node.error is None


def test_live_policy_and_progress_lines_before_any_checkpoint(graph, tmp_path, capfd):
    # no periodic checkpoint in this run: the sim still gets a policy after the first iteration
    node = trainer(graph, tmp_path, iterations=3, extra=("run.checkpoint_interval=100000",))
    _, got = listener(graph)
    assert graph.spin_until(lambda: len(got["checkpoint"]) > 0, 120.0)
    first = Path(got["checkpoint"][0].data)
    assert first.name == "live.pt" and node.record["iteration"] >= 1
    assert Policy.load(first).spec.task == "reacher"
    assert graph.spin_until(node.finished.is_set, 120.0)
    assert "[trainer_node]: iteration 1/3, " in capfd.readouterr().err


def test_a_failed_training_is_a_failed_exit(tmp_path):
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    exe = Path(sys.executable).parent / "trainer_node"
    args = ["-p", "task:=reacher_state", "-p", "device:=cuda", "-p", f"out:={tmp_path / 'run'}"]
    proc = subprocess.run(
        [str(exe), "--ros-args", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "CUDA is not available" in proc.stderr


def test_progress_line_by_hand():
    record = {"iteration": 120, "episode_return": -21.34, "success_rate": 0.2, "fps": 5123.4}
    line = progress_line({**record, "wall_time_s": 96.0}, 800)
    assert line == "iteration 120/800, return -21.3, success 20%, frames/s 5,123, 1.6 min"


def test_save_and_stop_services(graph, tmp_path):
    # no periodic checkpoints: the only latest.pt before the stop comes from ~/save
    node = trainer(graph, tmp_path, iterations=100000, extra=("run.checkpoint_interval=100000",))
    client_node, got = listener(graph)
    saved = call(graph, client_node, "/trainer_node/save")
    assert saved.success, saved.message
    assert graph.spin_until(lambda: got["checkpoint"], 60.0)
    assert Path(got["checkpoint"][0].data).name == "latest.pt"
    assert Path(got["checkpoint"][0].data).is_file()
    stopped = call(graph, client_node, "/trainer_node/stop")
    assert stopped.success
    assert graph.spin_until(node.finished.is_set, 60.0)
    assert node.summary["iterations"] < 100000
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file()


def test_bad_configuration_names_the_problem(graph, tmp_path):
    with pytest.raises(ParameterError, match=r"sdpg\.horizonn") as raised:
        TrainerNode(
            context=graph.context,
            parameter_overrides=[
                Parameter("overrides", value=["sdpg.horizonn=3"]),
                Parameter("out", value=str(tmp_path / "bad")),
            ],
        )
    probe = graph.add(Node("probe", context=graph.context))
    # the traceback still references the node: only an explicit destroy takes it off the graph
    assert "trainer_node" not in probe.get_node_names(), raised.value


def test_a_distributed_run_is_refused_with_the_way_to_start_one(graph, tmp_path):
    with pytest.raises(ParameterError, match=r"sdpg train --nproc K"):
        TrainerNode(
            context=graph.context,
            parameter_overrides=[
                Parameter("nproc", value=2),
                Parameter("out", value=str(tmp_path / "two")),
            ],
        )


def test_a_supervisor_stop_does_not_wait_for_the_periodic_evaluation(tmp_path, monkeypatch):
    # TrainerNode.close() (SIGINT/SIGTERM under launch, 5 s to exit) sets skip_final_evaluation
    cfg = resolve_train_config("reacher", overrides=[*TINY, "run.eval_interval=1"], iterations=3)
    session = TrainingSession.start(cfg, tmp_path / "run")
    monkeypatch.setattr(session, "evaluate", lambda *_: pytest.fail("evaluated"))
    session.skip_final_evaluation = True
    record = session.step()
    summary = session.finish()
    assert record["iteration"] == summary["iterations"] == 1
    assert not any(key.startswith("eval/") for key in record)
