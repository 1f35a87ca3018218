"""Hand-worked returns for the three modes, with a done inside the horizon."""

import pytest
import torch

from sdpg_core.algorithm.returns import compute_returns

# Two envs, T = 3, gamma = lambda = 0.5. Env 0 ends a segment after t = 1; t = 2 is forced done.
REWARDS = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
NEXT_V = torch.tensor([[10.0, 4.0], [20.0, 4.0], [30.0, 4.0]])
DONES = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])

# env 0: J2 = 3 + .5*30 = 18; J1 = 2 + .5*20 = 12; J0 = 1 + .5*(.5*10 + .5*12) = 6.5
#   (= .5 * G(1) + .5 * G(2) = .5 * 6 + .5 * 7); MC: J0 = 1 + .5*12 = 7
# env 1: J2 = 1 + 2 = 3; J1 = 1 + .5*(2 + 1.5) = 2.75; J0 = 1 + .5*(2 + 1.375) = 2.6875;
#   MC: 3, 2.5, 2.25
EXPECTED = {
    "td_lambda": [[6.5, 2.6875], [12.0, 2.75], [18.0, 3.0]],
    "monte_carlo": [[7.0, 2.25], [12.0, 2.5], [18.0, 3.0]],
    "non_causal": [[7.0, 2.25], [7.0, 2.25], [18.0, 2.25]],
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_hand_worked_returns(mode):
    out = compute_returns(mode, REWARDS, NEXT_V, DONES, gamma=0.5, lam=0.5)
    torch.testing.assert_close(out, torch.tensor(EXPECTED[mode]))


def test_td_lambda_limits():
    """lambda = 0 gives one-step TD targets; lambda = 1 gives Monte Carlo."""
    one_step = compute_returns("td_lambda", REWARDS, NEXT_V, DONES, 0.5, 0.0)
    torch.testing.assert_close(one_step, REWARDS + 0.5 * NEXT_V)
    mc = compute_returns("monte_carlo", REWARDS, NEXT_V, DONES, 0.5, 0.3)
    torch.testing.assert_close(compute_returns("td_lambda", REWARDS, NEXT_V, DONES, 0.5, 1.0), mc)


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown returns mode"):
        compute_returns("gae", REWARDS, NEXT_V, DONES, 0.5, 0.5)
