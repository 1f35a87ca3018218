"""Networks: keypoint coordinates by hand, encoder shapes for both encoders, small initial mean."""

import pytest
import torch

from sdpg_core.config import ModelConfig
from sdpg_core.envs.base import EnvSpec
from sdpg_core.models import Actor, PixelEncoder, SpatialSoftmax
from sdpg_core.obs_tensors import ActorObs


def test_spatial_softmax_finds_a_peak():
    maps = torch.zeros(1, 2, 5, 9)
    maps[0, 0, 0, 8] = 100.0  # top right corner: x = +1, y = -1
    maps[0, 1, 2, 4] = 100.0  # centre: x = 0, y = 0
    out = SpatialSoftmax()(maps)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, -1.0, 0.0]]), atol=1e-4, rtol=0)


def test_spatial_softmax_of_a_flat_map_is_the_centre():
    out = SpatialSoftmax()(torch.zeros(3, 4, 6, 6))
    torch.testing.assert_close(out, torch.zeros(3, 8), atol=1e-6, rtol=0)


def test_spatial_softmax_sharp_maps_give_no_denormal_gradients():
    """Logit ranges far past 87 (float32 exp underflow) leave keypoints and gradients normal."""
    maps = torch.randn(4, 8, 11, 11, generator=torch.Generator().manual_seed(0)) * 40.0
    maps.requires_grad_(True)
    keypoints = SpatialSoftmax()(maps)
    keypoints.sum().backward()
    exact = torch.softmax(maps.detach().double().flatten(2), dim=-1)
    grid = torch.linspace(-1.0, 1.0, 11, dtype=torch.float64)
    x = (exact.reshape(4, 8, 11, 11) * grid).sum((-2, -1))
    torch.testing.assert_close(keypoints[:, :8].double(), x, atol=1e-6, rtol=0)
    tiny = torch.finfo(torch.float32).tiny
    grad = maps.grad.abs()
    assert not ((grad > 0) & (grad < tiny)).any()


@pytest.mark.parametrize("encoder", ["drqv2", "spatial_softmax"])
def test_encoders_map_uint8_frames_to_bounded_features(encoder):
    cfg = ModelConfig(encoder=encoder, encoder_strides=(2, 2, 1, 1), encoder_features=24)
    net = PixelEncoder((9, 40, 40), cfg)
    pixels = torch.randint(0, 256, (5, 9, 40, 40), dtype=torch.uint8)
    features = net(pixels)
    assert features.shape == (5, 24) and features.abs().max() <= 1.0
    features.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_initial_policy_mean_is_near_zero():
    spec = EnvSpec("t", "state", 6, 3, None, 10, 0.1, (), False, ("a", "b", "c"), "cam")
    actor = Actor(spec, ModelConfig())
    mu, log_sigma = actor(ActorObs(torch.randn(64, 6)))
    assert mu.abs().max() < 0.1 and torch.all(log_sigma == 0.0)


def test_the_actor_fuses_the_proprio_group_with_the_pixels():
    spec = EnvSpec("t", "pixels", 6, 2, (3, 24, 24), 10, 0.1, (), False, ("a", "b"), "cam", 6)
    actor = Actor(spec, ModelConfig(encoder_strides=(2, 1), encoder_features=16))
    pixels = torch.randint(0, 256, (4, 3, 24, 24), dtype=torch.uint8)
    proprio = torch.zeros(4, 6)
    mu, _ = actor(ActorObs(pixels, proprio))
    moved, _ = actor(ActorObs(pixels, proprio + 1.0))
    assert mu.shape == (4, 2) and not torch.allclose(mu, moved)  # the joints change the action
    mu.sum().backward()
    assert all(p.grad is not None for p in actor.proprio.parameters())
