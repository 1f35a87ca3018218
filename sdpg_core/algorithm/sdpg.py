"""SDPG maths: delta-J, its normalisation, ascent directions, improved targets and losses.

Shapes: T horizon, B nominal envs, G = P + 1 envs per group (index 0 = nominal), A actions.
Per-env tensors reshaped from [T, N] to [T, B, G] follow the env layout g * G + j.
"""

from __future__ import annotations

import torch


def group(x: torch.Tensor, num_nominal: int) -> torch.Tensor:
    """[T, N, ...] -> [T, B, G, ...] (groups of consecutive env ids)."""
    return x.reshape(x.shape[0], num_nominal, -1, *x.shape[2:])


def perturbation_noise(
    num_nominal: int,
    group_size: int,
    action_dim: int,
    generator: torch.Generator,
    antithetic: bool = False,
    active: torch.Tensor | None = None,
) -> torch.Tensor:
    """eps [N, A] ~ N(0, I) in the env layout, 0 for nominal envs.

    ``active`` [G] bool: only these group members perturb this step (the others get 0).

    ``antithetic``: auxiliaries come in mirrored pairs (eps, -eps), j = 2k gets -eps of j = 2k-1
    (with an odd P the last one stays independent), so even-order terms of delta-J cancel in
    the mean ascent direction.
    """
    noise = torch.randn((num_nominal, group_size, action_dim), generator=generator)
    noise[:, 0] = 0.0
    if antithetic:
        pairs = (group_size - 1) // 2
        noise[:, 2 : 2 * pairs + 1 : 2] = -noise[:, 1 : 2 * pairs : 2]
    if active is not None:
        noise = noise * active[None, :, None].to(noise.dtype)
    return noise.reshape(num_nominal * group_size, action_dim)


def one_step_mask(group_size: int, horizon: int, paired: bool = False) -> torch.Tensor:
    """[T, G] bool for ``one_step`` perturbations: auxiliary j perturbs step (j - 1) % T only;
    ``paired``: the antithetic pair j = 2k-1, 2k perturbs step (k - 1) % T (a central
    difference: the pair's noises are eps and -eps, ``perturbation_noise``).

    Before its step an auxiliary repeats its nominal exactly, so its delta-J at that step
    carries no divergence from earlier noise: a clean finite difference of one action.
    """
    members = torch.arange(group_size)
    slot = (members - 1) // 2 if paired else members - 1
    steps = torch.arange(horizon)[:, None]
    return (members > 0) & (slot % horizon == steps)


def delta_j(returns: torch.Tensor) -> torch.Tensor:
    """delta_J[t, b, j] = J[t, b, j] - J[t, b, 0]; returns [T, B, G] -> [T, B, G]."""
    return returns - returns[..., :1]


def delta_j_std(delta: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
    """Population std of delta-J over each group's entries, the nominal's zero included.

    delta [T, B, G] -> [T, B, 1] (per env and step); with ``active`` [T, G] (one_step layout)
    over each group's P perturbed entries and its zero across the horizon -> [1, B, 1].
    """
    if active is None:
        return delta.std(dim=-1, unbiased=False, keepdim=True)
    on = active[:, None, :].to(delta.dtype)
    count = on.sum(dim=(0, 2), keepdim=True) + 1.0
    mean = (delta * on).sum(dim=(0, 2), keepdim=True) / count
    square = (delta * on).square().sum(dim=(0, 2), keepdim=True) / count
    return (square - mean.square()).clamp(min=0.0).sqrt()


def normalize_delta_j(
    delta: torch.Tensor, active: torch.Tensor | None = None, eps: float = 1e-6
) -> torch.Tensor:
    """Reward-invariant scaling: delta / (``delta_j_std`` + eps), shape of delta."""
    return delta / (delta_j_std(delta, active) + eps)


def ascent_directions(
    delta: torch.Tensor,
    noise: torch.Tensor,
    sigma: torch.Tensor,
    top_k: int = 0,
    active: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeroth-order ascent directions from the P auxiliaries of each group.

    delta [T, B, G], noise [T, B, G, A] (noise[..., 0, :] = 0), sigma [T, B, A] ->
    d_mu = mean_j dJ_j eps_j and d_log_sigma = mean_j dJ_j (eps_j^2 - 1) sigma, each [T, B, A];
    the mean runs over the auxiliaries j = 1..P, over the ``top_k`` largest dJ_j, or over the
    auxiliaries that perturbed step t when ``active`` [T, G] is given.
    """
    dj, eps = delta[..., 1:], noise[..., 1:, :]
    if dj.shape[-1] == 0:
        zeros = torch.zeros_like(sigma)
        return zeros, zeros
    if top_k:
        index = dj.topk(top_k, dim=-1).indices
        dj = dj.gather(-1, index)
        eps = eps.gather(-2, index.unsqueeze(-1).expand(*index.shape, eps.shape[-1]))
    on = torch.ones_like(dj) if active is None else active[:, None, 1:].to(dj.dtype).expand_as(dj)
    weight = (dj * on).unsqueeze(-1)
    count = on.sum(dim=-1, keepdim=True).clamp(min=1.0)
    d_mu = (weight * eps).sum(dim=-2) / count
    d_log_sigma = (weight * (eps.square() - 1.0)).sum(dim=-2) / count * sigma
    return d_mu, d_log_sigma


def improved_targets(
    action: torch.Tensor,
    log_sigma: torch.Tensor,
    d_mu: torch.Tensor,
    d_log_sigma: torch.Tensor,
    mu_bound: float,
    log_sigma_min: float,
    log_sigma_max: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mu* = clamp(a_nominal + d_mu), log_sigma* = clamp(log_sigma + d_log_sigma); [T, B, A]."""
    mu_star = (action + d_mu).clamp(-mu_bound, mu_bound)
    log_sigma_star = (log_sigma + d_log_sigma).clamp(log_sigma_min, log_sigma_max)
    return mu_star, log_sigma_star


def actor_loss(
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    mu_star: torch.Tensor,
    log_sigma_star: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE(mu, mu*) + MSE(log_sigma, log_sigma*) - alpha * mean(log_sigma); inputs [n, A]."""
    mu_loss = (mu - mu_star).square().mean()
    sigma_loss = (log_sigma - log_sigma_star).square().mean()
    entropy = log_sigma.mean()
    loss = mu_loss + sigma_loss - alpha * entropy
    parts = {"mu_loss": mu_loss.item(), "log_sigma_loss": sigma_loss.item()}
    return loss, parts


def alpha_loss(
    log_alpha: torch.Tensor, sigma_mean: torch.Tensor, sigma_target: float
) -> torch.Tensor:
    """Temperature loss alpha * (mean sigma - sigma_target), sigma detached."""
    return log_alpha.exp() * (sigma_mean.detach() - sigma_target)


def critic_loss(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE between V(s_t) and its TD(lambda) target."""
    return (values - targets).square().mean()


@torch.no_grad()
def soft_update(target: torch.nn.Module, online: torch.nn.Module, coef: float) -> None:
    """theta_bar <- c * theta_bar + (1 - c) * theta."""
    for bar, theta in zip(target.parameters(), online.parameters(), strict=True):
        bar.mul_(coef).add_(theta, alpha=1.0 - coef)
