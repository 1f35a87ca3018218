"""SDPG rollout collection: auxiliaries, noise layout and synchronisation."""

import pytest
import torch

from sdpg_core.algorithm import sdpg
from sdpg_core.config import ConfigError, resolve
from sdpg_core.trainers.sdpg import SDPGTrainer

ONE_STEP = [
    "sdpg.perturbation=one_step",
    "sdpg.num_nominal=2",
    "sdpg.num_perturbations=8",
    "sdpg.horizon=4",
    "run.video=false",
]


def test_one_step_auxiliaries_follow_their_nominal_until_their_step(tmp_path):
    """Aux j is its nominal's exact copy up to step (j - 1) % T and diverges after it."""
    trainer = SDPGTrainer(resolve("cartpole_swingup_state", overrides=ONE_STEP), tmp_path)
    trainer.collect()
    st, b = trainer.storage, trainer.cfg.sdpg.num_nominal
    states, noise = sdpg.group(st.critic_obs, b), sdpg.group(st.noise, b)
    active = sdpg.one_step_mask(9, 4)
    trainer.close()
    assert torch.equal(noise.abs().sum(-1) > 0, active[:, None, :].expand(4, b, 9))
    for j in range(1, 9):
        step = (j - 1) % 4
        same = (states[:, :, j] == states[:, :, 0]).all(-1).all(-1)  # [T]
        assert same[: step + 1].all(), (j, same)
        assert not same[step + 1 :].any(), (j, same)


def test_paired_one_step_auxiliaries_mirror_each_other_at_their_step(tmp_path):
    """one_step + antithetic: aux 2k-1 and 2k perturb the same step (k - 1) % T by eps and -eps."""
    overrides = [*ONE_STEP, "sdpg.antithetic=true"]
    trainer = SDPGTrainer(resolve("cartpole_swingup_state", overrides=overrides), tmp_path)
    trainer.collect()
    noise = sdpg.group(trainer.storage.noise, trainer.cfg.sdpg.num_nominal)  # [T, B, G, A]
    trainer.close()
    active = sdpg.one_step_mask(9, 4, paired=True)
    assert active.tolist()[1] == [False, False, False, True, True, False, False, False, False]
    assert torch.equal(noise.abs().sum(-1) > 0, active[:, None, :].expand_as(noise[..., 0]))
    torch.testing.assert_close(noise[:, :, 2::2], -noise[:, :, 1::2])


@pytest.mark.parametrize(
    "bad",
    [
        ["sdpg.num_perturbations=6"],
        ["sdpg.top_k=2"],
        ["sdpg.antithetic=true", "sdpg.num_perturbations=4"],
    ],
)
def test_one_step_layout_is_checked(bad):
    with pytest.raises(ConfigError, match="one_step"):
        resolve("cartpole_swingup_state", overrides=[*ONE_STEP, *bad])
