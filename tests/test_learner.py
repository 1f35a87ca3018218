"""SDPG learner: which rollout samples train the critic; shifted pixels for the actor."""

import numpy as np
import pytest
import torch

from sdpg_core.config import Config
from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer, random_shift
from sdpg_core.storage import RolloutStorage
from sdpg_core.trainers.sdpg_learner import SDPGLearner

SPEC = EnvSpec("t", "state", 4, 2, None, 10, 0.1, (), False, ("a", "b"), "cam")


def batch_with_aux_rewards(cfg: Config, aux_reward: float) -> RolloutStorage:
    """A rollout whose nominal envs earn 0 and whose auxiliaries earn ``aux_reward``."""
    hp = cfg.sdpg
    g = hp.num_perturbations + 1
    st = RolloutStorage.allocate(
        hp.horizon, hp.num_nominal, hp.num_nominal * g, SPEC, torch.device("cpu")
    )
    st.critic_obs.normal_(generator=torch.Generator().manual_seed(0))
    st.rewards.fill_(aux_reward)
    st.rewards[:, ::g] = 0.0
    st.dones[-1] = 1.0
    return st


@pytest.mark.parametrize(("critic_data", "loss_above_1e4"), [("all", True), ("nominal", False)])
def test_critic_data_selects_the_critic_samples(critic_data, loss_above_1e4):
    """critic_data=nominal regresses V on the closed-loop (nominal) envs only."""
    cfg = Config()
    cfg.sdpg.num_nominal, cfg.sdpg.num_perturbations, cfg.sdpg.horizon = 2, 3, 4
    cfg.sdpg.critic_data = critic_data
    learner = SDPGLearner(cfg, SPEC, torch.device("cpu"))
    batch = batch_with_aux_rewards(cfg, aux_reward=1000.0)
    metrics = learner.update(batch, RunningNormalizer(4), iteration=0, progress=0.0)
    assert (metrics["critic_loss"] > 1e4) == loss_above_1e4


def shifted(frames: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """[C, H, W] moved by (dy, dx) with edges repeated: out[:, r, q] = in[:, r + dy, q + dx]."""
    h, w = frames.shape[1:]
    rows = np.clip(np.arange(h) + dy, 0, h - 1)
    cols = np.clip(np.arange(w) + dx, 0, w - 1)
    return frames[:, rows][:, :, cols]


def test_the_reference_shift_by_hand():
    frame = np.arange(1, 10).reshape(1, 3, 3)
    assert shifted(frame, 1, -1).tolist() == [[[4, 4, 5], [7, 7, 8], [7, 7, 8]]]


def test_random_shift_moves_each_sample_by_one_shift_within_pad():
    """Every sample's whole stack by one (dy, dx) in [-2, 2]^2; all 25 shifts occur."""
    torch.manual_seed(0)
    pixels = torch.randint(0, 256, (300, 6, 8, 8), dtype=torch.uint8)
    out = random_shift(pixels, 2)
    assert out.dtype == torch.uint8 and out.shape == pixels.shape
    seen = set()
    for before, after in zip(pixels.numpy(), out.numpy(), strict=True):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(shifted(before, dy, dx), after)
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 25
    assert torch.equal(random_shift(pixels, 0), pixels)


PIXELS = EnvSpec("t", "pixels", 4, 2, (6, 24, 24), 10, 0.1, (), False, ("a", "b"), "cam", 3)


@pytest.mark.parametrize(("spec", "shift", "moved"), [(PIXELS, 2, True), (PIXELS, 0, False)])
def test_the_actor_regresses_on_shifted_pixels_when_asked(spec, shift, moved):
    """sdpg.augment_shift moves the pixels of the actor's regression samples, never proprio."""
    cfg = Config()
    cfg.sdpg.augment_shift = shift
    learner = SDPGLearner(cfg, spec, torch.device("cpu"))
    torch.manual_seed(0)
    obs = ActorObs(torch.randint(0, 256, (64, 6, 24, 24), dtype=torch.uint8), torch.randn(64, 3))
    seen = learner.augment(obs)
    assert (not torch.equal(seen.main, obs.main)) == moved
    assert seen.proprio is obs.proprio


def test_state_actors_are_not_augmented():
    cfg = Config()
    cfg.sdpg.augment_shift = 4
    obs = ActorObs(torch.randn(8, 4))
    assert SDPGLearner(cfg, SPEC, torch.device("cpu")).augment(obs) is obs
