"""An exported ONNX policy on the robot side: the policy node runs it without torch, refuses one
whose IO contract does not fit the robot, and deploys it as its checkpoint."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sdpg_core.export import export
from sdpg_core.policy import Policy
from tests.ros.test_deploy import ARM, WALKER, deploy_go2, go2_twin, walks_forward

NODE_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch fails
import rclpy
from rclpy.parameter import Parameter
from sdpg_ros.common import ParameterError
from sdpg_ros.policy_node import PolicyNode

rclpy.init()
params = [Parameter("checkpoint", value=sys.argv[1]), Parameter("robot", value=sys.argv[2])]
try:
    node = PolicyNode(parameter_overrides=params)
except ParameterError as err:
    print("refused:", err)
else:
    print("running:", type(node.policy).__name__, node.policy.spec.task)
    node.close()
    node.destroy_node()
rclpy.shutdown()
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The walking go2 policy and the arm policy of tests/data as .onnx files."""
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "go2": export(Policy.load(WALKER), folder / "go2_walk.onnx", "onnx"),
        "ur5e": export(Policy.load(ARM), folder / "ur5e_reach.onnx", "onnx"),
    }


def node_without_torch(path, robot: str) -> str:
    """What a policy node says on start-up in a process where torch cannot be imported."""
    run = subprocess.run(
        [sys.executable, "-c", NODE_WITHOUT_TORCH, str(path), robot],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def test_the_policy_node_runs_an_onnx_policy_without_torch(exported):
    assert node_without_torch(exported["go2"], "go2") == "running: OnnxPolicy go2_walk"


def test_an_onnx_policy_for_other_joints_is_refused_naming_the_mismatch(exported):
    line = node_without_torch(exported["ur5e"], "go2")
    assert line.startswith("refused: parameter 'checkpoint'")
    assert "ur5e_reach" in line and "go2" in line  # the task and the robot named


def test_the_onnx_walker_walks_over_ros(exported, tmp_path):
    """``sdpg-ros deploy --checkpoint go2_walk.onnx``: the quadruped walks forward as with the
    checkpoint (the walking test's criterion; actions equal PyTorch's: tests/test_export.py)."""
    report = deploy_go2(exported["go2"], tmp_path, episodes=3, steps=250, command="0.5,0,0")
    twin = go2_twin(WALKER, 3, seed=0, steps=250, command=np.array([0.5, 0.0, 0.0]))
    assert report["episodes"] >= 3 and report["rejected"] <= 2, report["nodes"]
    walks_forward(report, twin)
