"""SDPG maths on small hand-worked tensors and a quadratic bandit with a known gradient."""

import math

import torch

from sdpg_core.algorithm import sdpg
from sdpg_core.algorithm.returns import compute_returns

C = math.sqrt(1.5)


def test_group_layout():
    x = torch.arange(12.0).reshape(2, 6)  # T = 2, N = 6 = B 2 x G 3
    grouped = sdpg.group(x, 2)
    assert grouped.shape == (2, 2, 3)
    assert grouped[1, 1].tolist() == [9.0, 10.0, 11.0]


def test_delta_j_and_normalisation():
    returns = torch.tensor([[[1.0, 3.0, -1.0]]])  # [T=1, B=1, G=3]
    delta = sdpg.delta_j(returns)
    assert delta.tolist() == [[[0.0, 2.0, -2.0]]]
    # population std of (0, 2, -2) = sqrt(8/3) -> (0, +-sqrt(3/2))
    normed = sdpg.normalize_delta_j(delta)
    torch.testing.assert_close(normed, torch.tensor([[[0.0, C, -C]]]), atol=1e-5, rtol=1e-5)


def test_normalisation_is_reward_invariant():
    delta = sdpg.delta_j(torch.randn(4, 3, 8))
    torch.testing.assert_close(
        sdpg.normalize_delta_j(delta * 1000.0), sdpg.normalize_delta_j(delta), atol=1e-4, rtol=1e-4
    )


def _small_case():
    delta = torch.tensor([[[0.0, C, -C]]])
    noise = torch.tensor([[[[0.0, 0.0], [1.0, 0.0], [-1.0, 2.0]]]])  # [1, 1, G=3, A=2]
    sigma = torch.tensor([[[0.5, 2.0]]])
    return delta, noise, sigma


def test_ascent_directions_hand_worked():
    delta, noise, sigma = _small_case()
    d_mu, d_log_sigma = sdpg.ascent_directions(delta, noise, sigma)
    # d_mu = mean(C*[1,0], -C*[-1,2]) = C*[1,-1]
    torch.testing.assert_close(d_mu, torch.tensor([[[C, -C]]]))
    # eps^2 - 1 = [0,-1] and [0,3]: mean(C*[0,-1], -C*[0,3]) = C*[0,-2]; times sigma -> C*[0,-4]
    torch.testing.assert_close(d_log_sigma, torch.tensor([[[0.0, -4.0 * C]]]))


def test_top_k_keeps_largest_delta():
    delta, noise, sigma = _small_case()
    d_mu, d_log_sigma = sdpg.ascent_directions(delta, noise, sigma, top_k=1)
    torch.testing.assert_close(d_mu, torch.tensor([[[C, 0.0]]]))
    torch.testing.assert_close(d_log_sigma, torch.tensor([[[0.0, -2.0 * C]]]))


def test_no_perturbations_gives_zero_direction():
    d_mu, d_ls = sdpg.ascent_directions(
        torch.zeros(2, 3, 1), torch.zeros(2, 3, 1, 4), torch.ones(2, 3, 4)
    )
    assert d_mu.abs().sum() == 0 and d_ls.abs().sum() == 0


def test_improved_targets_are_clamped():
    action = torch.tensor([1.5, -1.0])
    mu_star, ls_star = sdpg.improved_targets(
        action,
        torch.tensor([1.8, -4.5]),
        torch.tensor([1.0, 0.5]),
        torch.tensor([1.0, -1.0]),
        2.0,
        -5.0,
        2.0,
    )
    assert mu_star.tolist() == [2.0, -0.5]
    assert ls_star.tolist() == [2.0, -5.0]


def test_actor_loss_value():
    mu, ls = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, -1.0]])
    loss, parts = sdpg.actor_loss(
        mu, ls, torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]]), 0.1
    )
    # MSE mu = 0.5, MSE log_sigma = 0.5, entropy term -0.1 * mean(ls) = +0.05
    assert math.isclose(loss.item(), 1.05, rel_tol=1e-6)
    assert parts == {"mu_loss": 0.5, "log_sigma_loss": 0.5}


def test_alpha_moves_toward_target_std():
    log_alpha = torch.tensor(0.0, requires_grad=True)
    sdpg.alpha_loss(log_alpha, torch.tensor(0.5), 0.15).backward()
    assert log_alpha.grad > 0  # std above target: gradient descent lowers alpha


def test_soft_update():
    online, target = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    sdpg.soft_update(target, online, 0.2)
    assert math.isclose(target.weight.item(), 0.8, rel_tol=1e-6)


def test_bandit_direction_matches_true_gradient():
    """J(a) = -|a - a_opt|^2: the estimated d_mu has cosine >= 0.9 with grad J = 2 (a_opt - mu)."""
    gen = torch.Generator().manual_seed(0)
    batch, perturbations, dim, sigma = 8, 255, 6, 0.1
    mu = torch.randn(batch, dim, generator=gen)
    a_opt = torch.randn(batch, dim, generator=gen)
    noise = torch.randn(batch, perturbations + 1, dim, generator=gen)
    noise[:, 0] = 0.0
    actions = mu[:, None] + sigma * noise
    rewards = -(actions - a_opt[:, None]).square().sum(-1)  # [B, G]
    dones = torch.ones(1, batch * (perturbations + 1))
    returns = compute_returns(
        "td_lambda", rewards.reshape(1, -1), torch.zeros_like(dones), dones, 0.99, 0.95
    )
    delta = sdpg.normalize_delta_j(sdpg.delta_j(sdpg.group(returns, batch)))
    d_mu, _ = sdpg.ascent_directions(delta, noise[None], torch.full((1, batch, dim), sigma))
    cosine = torch.nn.functional.cosine_similarity(d_mu[0], 2 * (a_opt - mu), dim=-1)
    assert cosine.min() >= 0.9, cosine


def test_perturbation_noise_layout_and_mirrored_pairs():
    gen = torch.Generator().manual_seed(0)
    noise = sdpg.perturbation_noise(3, 6, 2, gen, antithetic=True).reshape(3, 6, 2)
    assert noise[:, 0].abs().sum() == 0  # nominal envs replay the mean
    torch.testing.assert_close(noise[:, 2], -noise[:, 1])
    torch.testing.assert_close(noise[:, 4], -noise[:, 3])
    assert (noise[:, 5] + noise[:, 4]).abs().min() > 0  # odd P: the last one is independent
    plain = sdpg.perturbation_noise(3, 6, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain.reshape(3, 6, 2)[:, 1], noise[:, 1])  # same draws


def test_antithetic_pairs_cancel_even_order_terms():
    """J = c.a - |a|^2 around mu = 0: mirrored pairs leave exactly the linear term c."""
    gen = torch.Generator().manual_seed(1)
    noise = sdpg.perturbation_noise(1, 5, 3, gen, antithetic=True).reshape(1, 1, 5, 3)
    c = torch.tensor([0.5, -1.0, 2.0])
    delta = (noise * c).sum(-1) - noise.square().sum(-1)  # [T=1, B=1, G=5], nominal 0
    d_mu, _ = sdpg.ascent_directions(delta, noise, torch.ones(1, 1, 3))
    linear, _ = sdpg.ascent_directions((noise * c).sum(-1), noise, torch.ones(1, 1, 3))
    torch.testing.assert_close(d_mu, linear)


def test_one_step_mask_gives_each_auxiliary_one_step():
    mask = sdpg.one_step_mask(5, 2)  # G = 5 (P = 4), T = 2: aux 1, 3 at t = 0; aux 2, 4 at t = 1
    assert mask.tolist() == [[False, True, False, True, False], [False, False, True, False, True]]
    paired = sdpg.one_step_mask(5, 2, paired=True)  # pairs (1, 2) at t = 0, (3, 4) at t = 1
    assert paired.tolist() == [[False, True, True, False, False], [False, False, False, True, True]]


def test_one_step_noise_only_on_active_members():
    active = torch.tensor([False, True, False])
    noise = sdpg.perturbation_noise(2, 3, 2, torch.Generator().manual_seed(0), active=active)
    noise = noise.reshape(2, 3, 2)
    assert noise[:, [0, 2]].abs().sum() == 0
    assert noise[:, 1].abs().min() > 0


def _one_step_case():
    """T = 2, B = 1, G = 3: aux 1 perturbs t = 0 (dJ 2, eps 1), aux 2 perturbs t = 1 (dJ -2,
    eps -1); the inactive entries hold values that must be ignored."""
    delta = torch.tensor([[[0.0, 2.0, 100.0]], [[0.0, 100.0, -2.0]]])
    noise = torch.tensor([[[[0.0], [1.0], [5.0]]], [[[0.0], [5.0], [-1.0]]]])
    return delta, noise, sdpg.one_step_mask(3, 2)


def test_one_step_normalisation_uses_the_perturbed_entries():
    delta, _, active = _one_step_case()
    normed = sdpg.normalize_delta_j(delta, active)
    # population std of (0, 2, -2) = sqrt(8/3): the active entries become +-C
    assert math.isclose(normed[0, 0, 1].item(), C, rel_tol=1e-5)
    assert math.isclose(normed[1, 0, 2].item(), -C, rel_tol=1e-5)
    torch.testing.assert_close(sdpg.normalize_delta_j(delta * 1000.0, active), normed)


def test_one_step_directions_average_the_active_entries_only():
    delta, noise, active = _one_step_case()
    d_mu, d_log_sigma = sdpg.ascent_directions(delta, noise, torch.ones(2, 1, 1), active=active)
    # t = 0: 2 * 1; t = 1: -2 * -1; eps^2 - 1 = 0 on both active entries
    torch.testing.assert_close(d_mu, torch.tensor([[[2.0]], [[2.0]]]))
    torch.testing.assert_close(d_log_sigma, torch.zeros(2, 1, 1))
