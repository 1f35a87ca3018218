"""Depth cameras: metres -> policy frames (one function), the env contract, sim = training."""

import numpy as np
import pytest
import torch

from sdpg_core.config import EnvConfig, resolve
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import make_env
from sdpg_core.models import Actor
from sdpg_core.obs import depth_frame, prepare_depth
from sdpg_core.obs_tensors import RunningNormalizer
from sdpg_core.policy import Policy
from sdpg_core.sim import SimRobot

DEPTH = EnvConfig(image_size=32, image="depth", frame_stack=2)


def test_hand_worked_depth_frames():
    """Range 0.5-2.5 m: 255 levels over 2 m; holes (0, NaN, inf) and far surfaces read 255."""
    metres = np.array([[0.5, 1.0, 1.5, 2.5], [0.3, 3.0, 0.0, np.nan], [np.inf, -1.0, 2.0, 0.51]])
    expected = [[0, 64, 128, 255], [0, 255, 255, 255], [255, 255, 191, 1]]
    frame = depth_frame(metres, (0.5, 2.5))  # 1.0 -> 63.75 -> 64; 1.5 -> 127.5 -> 128
    assert frame.dtype == np.uint8 and frame.shape == (3, 4, 1)
    np.testing.assert_array_equal(frame[..., 0], expected)


def test_prepare_depth_crops_and_resizes_without_blending():
    """A 4x8 image -> 2x2: centre crop to 4x4, nearest neighbour (values are kept, not mixed)."""
    image = np.arange(32, dtype=np.float32).reshape(4, 8) * 0.1 + 0.5
    frame = prepare_depth(image, 2, 2, (0.5, 4.0))[..., 0]
    kept = np.rint((image[:, 2:6][::2, ::2] - 0.5) * 255 / 3.5)
    np.testing.assert_array_equal(frame, kept)
    with pytest.raises(ValueError, match="depth image"):
        prepare_depth(np.zeros((4, 4, 3), dtype=np.uint8), 2, 2, (0.5, 4.0))


def test_the_arm_renders_depth_frames_with_the_depth_camera():
    env = make_env("ur5e_reach", DEPTH, 3, render_ids=np.array([0, 2]), seed=1)
    spec = env.spec
    assert spec.image == "depth" and spec.image_channels == 1
    assert spec.pixel_shape == (2, 32, 32) and spec.camera == "front_depth"
    assert spec.depth_range == (0.11, 2.5) and EnvSpec.from_dict(spec.to_dict()) == spec
    pixels = env.observe()["pixels"]
    assert pixels.shape == (2, 2, 32, 32) and pixels.dtype == np.uint8
    # the table's near edge (bottom rows) is nearer than its far part; beyond it, no return
    column = pixels[0, -1, :, 8].astype(int)
    assert column[-1] < column[24] < column[18] < 255 and column[0] == 255
    rendered = np.array([0, 2])
    saved = env.get_state(rendered)
    first = env.step(np.full((3, 6), 0.5, dtype=np.float32)).obs["pixels"]
    assert not np.array_equal(first[:, -1], first[:, 0])  # the stack shifted one frame
    env.set_state(saved, rendered)
    again = env.step(np.full((3, 6), 0.5, dtype=np.float32)).obs["pixels"]
    np.testing.assert_array_equal(first, again)
    env.close()


def test_the_sim_publishes_the_metres_the_training_frames_are_made_of():
    """SimRobot.image (what sim_backend sends as 32FC1) through depth_frame = the env's frame."""
    robot = SimRobot("ur5e_reach", seed=4, image="depth")
    env = make_env("ur5e_reach", DEPTH, 1, seed=4)
    env.set_state(robot.env.get_state(np.zeros(1, dtype=np.int64)), np.zeros(1, dtype=np.int64))
    env._render_step()
    metres = robot.image(32)
    assert metres.dtype == np.float32 and metres.shape == (32, 32)
    assert np.nanmin(metres) > 0.11 and 1.0 < np.median(metres) < 2.5
    frame = depth_frame(metres, robot.spec.depth_range)[..., 0]
    np.testing.assert_array_equal(frame, env.observe()["pixels"][0, -1])
    robot.close()
    env.close()


def test_a_depth_policy_streams_metres_as_in_training():
    """Policy.act_image on metres (the ROS node's path) = Policy.act on the env's frames."""
    overrides = ["env.image_size=32", "env.image=depth", "model.encoder_strides=[2, 1]"]
    overrides += ["env.randomize.enabled=false"]  # the sim serves the nominal simulator
    cfg = resolve("ur5e_reach", overrides=overrides)
    env = make_env("ur5e_reach", cfg.env, 1, seed=2)
    torch.manual_seed(0)
    policy = Policy(cfg, env.spec, Actor(env.spec, cfg.model), RunningNormalizer(27), "cpu")
    robot = SimRobot("ur5e_reach", seed=2, image="depth")
    env.set_state(robot.env.get_state(np.zeros(1, dtype=np.int64)), np.zeros(1, dtype=np.int64))
    env._render_step()
    env._render_step()  # both stacked frames are the current one, as after a reset
    assert policy.blank_image().shape == (32, 32)
    for _ in range(4):
        obs = env.observe()
        state = robot.joint_state()
        streamed = policy.act_image(robot.image(32), (state.position, state.velocity))
        np.testing.assert_allclose(streamed, policy.act(obs)[0], atol=1e-6)
        env.step(streamed[None])
        robot.set_command(robot.env.task.control(streamed[None], robot.env.extras[:1])[0][0])
        robot.step()
        np.testing.assert_allclose(robot.env.physics, env.physics, atol=1e-8)  # solver warm start
    robot.close()
    env.close()
