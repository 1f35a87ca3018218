"""Portable policies: ONNX / TorchScript graphs equal PyTorch, carry their IO contract, and the
ONNX file runs without torch."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sdpg_core import cli
from sdpg_core.config import resolve
from sdpg_core.envs.registry import make_env
from sdpg_core.export import example_inputs, export, input_names, io_contract
from sdpg_core.models import Actor
from sdpg_core.obs_tensors import RunningNormalizer
from sdpg_core.onnx_policy import OnnxPolicy
from sdpg_core.policy import Policy

DATA = Path(__file__).resolve().parent / "data"
TRAINED = {
    "reacher": DATA / "reacher_pixels.pt",  # pixels
    "ur5e": DATA / "ur5e_reach_pixels.pt",  # pixels + proprio
    "go2": DATA / "go2_walk.pt",  # proprio only, with IMU and command
}


def state_policy() -> Policy:
    """An untrained reacher_state actor behind a normaliser with non-trivial statistics."""
    cfg = resolve("reacher_state")
    env = make_env("reacher_state", cfg.env, 1, render=False)
    spec = env.spec
    env.close()
    torch.manual_seed(0)
    normalizer = RunningNormalizer(spec.state_dim)
    normalizer.update(3.0 * torch.randn(500, spec.state_dim) + 1.0)
    return Policy(cfg, spec, Actor(spec, cfg.model), normalizer, torch.device("cpu"))


@pytest.fixture(scope="module", params=[*TRAINED, "state"])
def policy(request) -> Policy:
    """Each observation mode: pixels, pixels + proprio, proprio-only, state."""
    return state_policy() if request.param == "state" else Policy.load(TRAINED[request.param])


def as_obs(policy: Policy, inputs: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    """Graph inputs as the observation dict ``Policy.act`` takes."""
    return {name: x.numpy() for name, x in zip(input_names(policy.spec), inputs, strict=True)}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_graphs_equal_pytorch_on_1000_random_inputs(policy, fmt, tmp_path):
    path = export(policy, tmp_path / f"policy.{fmt}", fmt)
    inputs = example_inputs(policy.spec, 1000, torch.Generator().manual_seed(1))
    expected = policy.act(as_obs(policy, inputs))
    if fmt == "onnx":
        actions = OnnxPolicy.load(path).act(as_obs(policy, inputs))
    else:
        with torch.no_grad():
            actions = torch.jit.load(str(path))(*inputs).numpy()
    assert actions.shape == (1000, policy.spec.action_dim) and actions.dtype == np.float32
    # float32's floor for a conv encoder (a 39,200-term sum per feature): torch itself differs
    # by 6e-6 between one batch and single frames, ONNX Runtime by up to 1.1e-5 on noise images
    tolerance = 2e-5 if policy.spec.obs_mode == "pixels" else 1e-5
    assert np.abs(actions - expected).max() <= tolerance
    assert np.abs(expected).max() < 1.0 and expected.std() > 0  # a real, varied output


def test_the_contract_describes_the_quadruped_inputs_and_action(tmp_path):
    policy = Policy.load(TRAINED["go2"])
    contract = io_contract(policy.spec)
    assert contract["control_rate_hz"] == pytest.approx(50.0) and contract["camera"] is None
    layout = contract["proprio"]
    assert [s["name"] for s in layout][:3] == [
        "angular_velocity",
        "gravity_in_body_frame",
        "command",
    ]
    assert sum(s["size"] for s in layout) == policy.spec.proprio_dim
    assert contract["action"]["joints"][:2] == ["FR_hip_joint", "FR_thigh_joint"]
    # a checkpoint from before actions carried their meaning gets its task's (a migration)
    assert contract["action"]["mode"] == "absolute" and contract["action"]["scale"] == [0.5] * 12
    assert contract["action"]["offset"][:3] == [-0.1, 0.8, -1.5]
    assert contract["inputs"]["proprio"]["shape"] == ["n", policy.spec.proprio_dim]
    path = export(policy, tmp_path / "go2.pt", "torchscript")
    files = {"sdpg.spec": "", "sdpg.contract": ""}
    torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["sdpg.contract"]) == json.loads(json.dumps(contract))
    assert json.loads(files["sdpg.spec"])["joint_names"] == list(policy.spec.joint_names)


def test_a_depth_policy_contract_names_its_encoding():
    cfg = resolve("ur5e_reach", overrides=["env.image=depth"])
    env = make_env("ur5e_reach", cfg.env, 1)
    camera = io_contract(env.spec)["camera"]
    env.close()
    assert camera["image"] == "depth" and camera["depth_range"] == [0.11, 2.5]
    assert camera["frames"] == cfg.env.frame_stack and "metres" in camera["encoding"]


STREAM = """
import json, sys
sys.modules["torch"] = None  # any import of torch fails
import numpy as np
from sdpg_core.onnx_policy import OnnxPolicy
policy = OnnxPolicy.load(sys.argv[1])
policy.warm_up()
out = []
for k in range(3):
    joints = (np.full(12, 0.01 * k), np.full(12, 0.1))
    imu = (np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.1 * k, 0.0]))
    out.append(policy.act_proprio(joints, imu, np.array([0.5, 0.0, 0.0])).tolist())
print(json.dumps(out))
"""


def test_the_onnx_policy_streams_without_torch_as_pytorch_does(tmp_path):
    """A process where torch cannot be imported streams the go2 policy's actions (proprio group
    and previous action from the training's observation code) equal to ``Policy``'s."""
    path = export(Policy.load(TRAINED["go2"]), tmp_path / "go2.onnx", "onnx")
    run = subprocess.run(
        [sys.executable, "-c", STREAM, str(path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    streamed = np.array(json.loads(run.stdout))
    policy = Policy.load(TRAINED["go2"])
    for k in range(3):
        joints = (np.full(12, 0.01 * k), np.full(12, 0.1))
        imu = (np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.1 * k, 0.0]))
        expected = policy.act_proprio(joints, imu, np.array([0.5, 0.0, 0.0]))
        np.testing.assert_allclose(streamed[k], expected, atol=1e-5)


def test_files_that_are_not_exported_policies_are_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.onnx: not a readable ONNX model"):
        OnnxPolicy.load(junk)
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["action"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 2])
    bare = tmp_path / "bare.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), str(bare))
    with pytest.raises(ValueError, match=r"bare\.onnx: no sdpg IO contract"):
        OnnxPolicy.load(bare)


def test_sdpg_export_formats_from_the_command_line(tmp_path):
    out = tmp_path / "reacher.onnx"
    argv = ["export", "--checkpoint", str(TRAINED["reacher"]), "--out", str(out)]
    assert cli.main([*argv, "--format", "onnx"]) == 0
    assert OnnxPolicy.load(out).spec.task == "reacher"
    with pytest.raises(SystemExit):
        cli.main([*argv, "--format", "tflite"])
