"""Deployable policy: camera frames of any size, and the checks that a checkpoint fits."""

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from sdpg_core.envs.base import EnvSpec
from sdpg_core.fit import robot_misfit, swap_misfit
from sdpg_core.obs import centre_crop, prepare_image
from sdpg_core.policy import Policy, nonfinite_weights
from sdpg_core.robot import load_robot
from tests.ros.helpers import make_checkpoint

SPEC = EnvSpec(
    task="reacher",
    obs_mode="pixels",
    state_dim=8,
    action_dim=2,
    pixel_shape=(9, 64, 64),
    episode_steps=50,
    control_dt=0.04,
    reward_terms=("distance",),
    has_success=True,
    joint_names=("shoulder", "elbow"),
    camera="top",
)


def test_training_size_passes_unchanged():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert prepare_image(image, 64, 64) is image


@pytest.mark.parametrize(
    ("shape", "kept"),
    [
        ((84, 84), (slice(0, 84), slice(0, 84))),
        ((48, 64), (slice(0, 48), slice(8, 56))),
        ((64, 40), (slice(12, 52), slice(0, 40))),
        ((16, 16), (slice(0, 16), slice(0, 16))),
    ],
)
def test_frames_are_centre_cropped_to_the_aspect_ratio_then_area_resized(shape, kept):
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = cv2.resize(np.ascontiguousarray(image[kept]), (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(prepare_image(image, 32, 32), expected)


def test_crop_keeps_a_non_square_training_aspect_ratio():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    assert centre_crop(image, 48, 64).shape == (75, 100, 3)  # 4:3 wide
    assert centre_crop(image, 64, 48).shape == (100, 75, 3)  # 3:4 tall
    assert prepare_image(image, 48, 64).shape == (48, 64, 3)


@pytest.mark.parametrize("image", [np.zeros((8, 8), np.uint8), np.zeros((0, 8, 3), np.uint8)])
def test_non_images_are_refused(image):
    with pytest.raises(ValueError, match="RGB uint8"):
        prepare_image(image, 32, 32)


def test_robot_misfit_names_task_and_joints():
    robot = load_robot("reacher")
    assert robot_misfit(SPEC, robot) is None
    assert robot_misfit(dataclasses.replace(SPEC, task="reacher_state"), robot) is None
    assert robot_misfit(dataclasses.replace(SPEC, task="cartpole_swingup"), robot).reason == "task"
    swapped = dataclasses.replace(SPEC, joint_names=("elbow", "shoulder"))
    assert robot_misfit(swapped, robot).reason == "joints"


@pytest.mark.parametrize(
    ("task", "robot"), [("reacher", "reacher"), ("ur5e_reach", "ur5e"), ("go2_walk", "go2")]
)
def test_the_shipped_robots_map_actions_as_their_task_trained_them(task, robot):
    from sdpg_core.config import EnvConfig
    from sdpg_core.envs.registry import make_env

    env = make_env(task, EnvConfig(task=task), 1, render=False)
    assert env.spec.action_mode and robot_misfit(env.spec, load_robot(robot)) is None
    env.close()


def test_a_robot_that_scales_actions_otherwise_is_refused():
    robot = load_robot("go2")
    spec = dataclasses.replace(
        SPEC,
        task="go2_walk",
        action_dim=12,
        joint_names=tuple(robot.joints),
        action_mode="absolute",
        action_scale=(0.5,) * 12,
        action_offset=tuple(robot.action_offset),
    )
    assert robot_misfit(spec, robot) is None
    assert robot_misfit(dataclasses.replace(spec, action_mode=""), robot) is None  # old spec
    half = dataclasses.replace(robot, action_scale=(0.25,) * 12)
    found = robot_misfit(spec, half)
    assert found.reason == "action" and "scale [0.25" in found.message and "go2" in found.message
    moved = dataclasses.replace(robot, action_offset=(0.0,) * 12)
    assert robot_misfit(spec, moved).reason == "action"
    delta = dataclasses.replace(spec, action_mode="delta")
    assert robot_misfit(delta, robot).reason == "action"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"obs_mode": "state"}, "obs_mode"),
        ({"task": "cartpole_swingup"}, "task"),
        ({"joint_names": ("a", "b")}, "joints"),
        ({"action_dim": 3}, "action_size"),
        ({"pixel_shape": (9, 2048, 2048)}, "image_size"),
        ({"pixel_shape": (6, 64, 64)}, "image_size"),  # another frame stack
    ],
)
def test_swap_misfit_names_what_differs(change, reason):
    assert swap_misfit(SPEC, SPEC) is None
    assert swap_misfit(dataclasses.replace(SPEC, **change), SPEC).reason == reason


def test_nonfinite_weights_are_named():
    data = {"actor": {"w": torch.ones(2), "b": torch.tensor([0.0, float("inf")])}}
    data["normalizer"] = {"count": torch.tensor(3, dtype=torch.int64)}
    assert nonfinite_weights(data).message == "non-finite weights in actor.b"
    data["actor"]["b"] = torch.zeros(2)
    assert nonfinite_weights(data) is None


def test_a_policy_with_nonfinite_weights_is_refused(tmp_path):
    path = make_checkpoint(tmp_path / "nan.pt", nan=True)
    with pytest.raises(ValueError, match=r"non-finite weights in actor\.head\.\d+\.bias"):
        Policy.load(path)
