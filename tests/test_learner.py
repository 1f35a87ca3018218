"""SDPG learner: which rollout samples train the critic."""

import pytest
import torch

from sdpg_core.config import Config
from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs_tensors import RunningNormalizer
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
