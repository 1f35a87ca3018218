"""The shared action convention, hand-worked: clamp the pre-tanh action, the env gets its tanh."""

import math

import pytest
import torch

from sdpg_core.action import clamp_log_sigma, clamp_mean, env_action
from sdpg_core.config import ActionConfig

BOUNDS = ActionConfig(mu_bound=2.0, log_sigma_min=-5.0, log_sigma_max=2.0)


def test_means_and_samples_are_clamped_to_the_bound():
    u = torch.tensor([[-3.0, -2.0, 0.5, 2.5]])
    assert clamp_mean(u, BOUNDS).tolist() == [[-2.0, -2.0, 0.5, 2.0]]


def test_log_sigma_is_clamped_to_its_range():
    assert clamp_log_sigma(torch.tensor([-9.0, 0.0, 3.0]), BOUNDS).tolist() == [-5.0, 0.0, 2.0]


def test_the_env_receives_tanh_of_the_clamped_action():
    got = env_action(torch.tensor([[-3.0, 0.5, 2.5]]), BOUNDS)[0].tolist()
    assert got == pytest.approx([-math.tanh(2.0), math.tanh(0.5), math.tanh(2.0)])
    assert all(-1.0 < value < 1.0 for value in got)
