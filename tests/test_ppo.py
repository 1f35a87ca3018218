"""PPO baseline: hand-worked GAE and clipped-surrogate numbers, learning, checkpoints, CLI."""

import json
import math

import numpy as np
import pytest
import torch
import yaml

from sdpg_core.algorithm import ppo
from sdpg_core.cli import build_parser, main, train_config
from sdpg_core.config import ConfigError, resolve
from sdpg_core.evaluate import evaluate
from sdpg_core.policy import Policy
from sdpg_core.session import TrainingSession
from sdpg_core.trainers import make_trainer
from sdpg_core.trainers.ppo import PPOTrainer
from sdpg_core.trainers.sdpg import SDPGTrainer

TINY_PPO = [
    "run.algo=ppo",
    "ppo.num_envs=4",
    "ppo.horizon=8",
    "ppo.epochs=2",
    "ppo.minibatches=2",
    "env.image_size=32",
    "model.encoder_channels=8",
    "model.encoder_features=32",
    "run.eval_episodes=2",
    "run.checkpoint_interval=2",
    "run.video=false",
]


def test_gae_hand_worked_with_termination_and_truncation():
    """gamma = lam = 0.5 (gamma * lam = 0.25); columns: no reset, terminated, truncated."""
    rewards = torch.tensor([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0], [3.0, 1.0, 1.0]])
    values = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 2.0], [1.0, 0.0, 0.0]])
    # env 1 terminated at t = 0 (the runner zeroed V(s_1)); env 2 was truncated at t = 1 and
    # is bootstrapped with V = 4 of the state it reached.
    next_values = torch.tensor([[2.0, 0.0, 2.0], [2.0, 2.0, 4.0], [4.0, 2.0, 2.0]])
    dones = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    advantages, returns = ppo.gae(rewards, values, next_values, dones, 0.5, 0.5)
    # env 0: delta = (1, 2, 4); A2 = 4, A1 = 2 + 0.25 * 4 = 3, A0 = 1 + 0.25 * 3 = 1.75
    # env 1: delta = (1, 0, 2); A2 = 2, A1 = 0 + 0.25 * 2 = 0.5, A0 = 1 (cut by the done)
    # env 2: delta = (2, 1, 2); A2 = 2, A1 = 1 (cut), A0 = 2 + 0.25 * 1 = 2.25
    expected = torch.tensor([[1.75, 1.0, 2.25], [3.0, 0.5, 1.0], [4.0, 2.0, 2.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_gae_with_lambda_zero_is_the_td_error():
    rewards, values, next_values = torch.randn(3, 4, 5).unbind(0)
    advantages, _ = ppo.gae(rewards, values, next_values, torch.zeros(4, 5), 0.9, 0.0)
    torch.testing.assert_close(advantages, rewards + 0.9 * next_values - values)


def test_clipped_surrogate_hand_worked():
    ratio = torch.tensor([0.5, 1.5, 1.1, 0.7], requires_grad=True)
    advantages = torch.tensor([1.0, 1.0, -1.0, -2.0])
    # min(rA, clip(r)A): min(0.5, 0.8) = 0.5; min(1.5, 1.2) = 1.2; min(-1.1, -1.1) = -1.1;
    # min(-1.4, -1.6) = -1.6; mean = -1.0 / 4
    objective = ppo.clipped_surrogate(ratio, advantages, 0.2)
    assert math.isclose(objective.item(), -0.25, rel_tol=1e-6)
    objective.backward()
    # gradient A / n where the unclipped term is the minimum, 0 where the clipped one is
    torch.testing.assert_close(ratio.grad, torch.tensor([0.25, 0.0, -0.25, 0.0]))


def test_gaussian_log_prob_and_entropy_match_torch():
    u, mu, log_sigma = torch.randn(3, 6, 2).unbind(0)
    normal = torch.distributions.Normal(mu, log_sigma.exp())
    torch.testing.assert_close(ppo.gaussian_log_prob(u, mu, log_sigma), normal.log_prob(u).sum(-1))
    torch.testing.assert_close(ppo.gaussian_entropy(log_sigma), normal.entropy().sum(-1))
    assert ppo.approx_kl(torch.zeros(5)).item() == 0.0


def test_short_ppo_run_on_reacher_state_improves_return(tmp_path):
    cfg = resolve(
        "reacher_state",
        overrides=[
            "run.algo=ppo",
            "ppo.epochs=4",
            "ppo.lr=1e-3",
            "run.iterations=20",
            "run.minutes=0",
        ],
    )
    trainer = make_trainer(cfg, tmp_path)
    assert isinstance(trainer, PPOTrainer)
    before = evaluate(trainer.policy(), 32)
    for _ in range(cfg.run.iterations):
        record = trainer.train_iteration()
    after = evaluate(trainer.policy(), 32)
    trainer.close()
    assert after["return_mean"] > before["return_mean"] + 10.0, (before, after)
    assert record["cpu_time_s"] > 0.0


def test_ppo_pixel_run_writes_a_loadable_checkpoint(tmp_path):
    cfg = resolve("reacher", overrides=[*TINY_PPO, "run.iterations=2", "run.minutes=0"])
    summary = TrainingSession.start(cfg, tmp_path).run(show_progress=False)
    assert summary["iterations"] == 2 and 0.0 <= summary["success_rate"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    assert last["algo"] == "ppo" and last["env_steps"] == 2 * 4 * 8
    assert {"cpu_time_s", "actor_loss", "critic_loss", "approx_kl", "clip_fraction"} <= set(last)
    assert 0.0 < records[0]["cpu_time_s"] < last["cpu_time_s"]
    policy = Policy.load(tmp_path / "checkpoints" / "latest.pt")
    assert policy.spec.obs_mode == "pixels"
    pixels = np.zeros((3, *policy.spec.pixel_shape), np.uint8)
    actions = policy.act({"pixels": pixels})
    assert actions.shape == (3, 2) and np.all(np.abs(actions) < 1.0)


def test_ppo_resume_matches_uninterrupted_run(tmp_path):
    overrides = [*TINY_PPO, "run.iterations=4", "run.checkpoint_interval=100"]
    straight = TrainingSession.start(resolve("reacher_state", overrides=overrides), tmp_path / "a")
    expected = [straight.step() for _ in range(4)]
    straight.trainer.close()
    second = TrainingSession.start(resolve("reacher_state", overrides=overrides), tmp_path / "b")
    second.step()
    second.step()
    second.save("latest.pt")
    second.trainer.close()
    resumed = TrainingSession.resume(tmp_path / "b")
    assert isinstance(resumed.trainer, PPOTrainer) and resumed.trainer.iteration == 2
    got = [resumed.step() for _ in range(2)]
    resumed.trainer.close()
    for a, b in zip(expected[2:], got, strict=True):
        for key in ("actor_loss", "critic_loss", "episode_return", "approx_kl", "policy_std"):
            assert a[key] == b[key], key


def test_sdpg_records_cpu_time(tmp_path):
    overrides = ["sdpg.num_nominal=2", "sdpg.num_perturbations=1", "sdpg.horizon=4"]
    trainer = make_trainer(resolve("reacher_state", overrides=overrides), tmp_path)
    assert isinstance(trainer, SDPGTrainer)
    first, second = trainer.train_iteration(), trainer.train_iteration()
    assert 0.0 < first["cpu_time_s"] < second["cpu_time_s"] and second["algo"] == "sdpg"
    assert trainer.state_dict()["cpu_time_s"] == second["cpu_time_s"]
    trainer.close()


def test_algo_flag_sets_the_config():
    args = build_parser().parse_args(["train", "--task", "reacher", "--algo", "ppo"])
    assert train_config(args).run.algo == "ppo"
    args = build_parser().parse_args(["train", "--task", "reacher"])
    assert train_config(args).run.algo == "sdpg"


def test_cli_trains_and_resumes_with_the_checkpoint_algo(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--task", "reacher_state", "--algo", "ppo", "--iterations", "2"]
    sets = ["ppo.num_envs=2", "ppo.horizon=4", "run.eval_episodes=2", "run.video=false"]
    for item in sets:
        args += ["--set", item]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    assert "task=reacher_state" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["algo"] == "ppo"
    session = TrainingSession.resume(out)
    assert isinstance(session.trainer, PPOTrainer) and session.trainer.iteration == 2
    session.trainer.close()
    assert main(["resume", str(out), "--no-progress"]) == 0


def test_bad_algo_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", "reacher", "--algo", "a2c"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'a2c'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"run\.algo: 'a2c' is not one of sdpg, ppo, distill"):
        resolve("reacher", overrides=["run.algo=a2c"])
    with pytest.raises(ConfigError, match=r"ppo\.minibatches"):
        resolve("reacher", overrides=["ppo.minibatches=0"])
    with pytest.raises(ConfigError, match=r"ppo\.horizn: unknown key"):
        resolve("reacher", overrides=["ppo.horizn=3"])
