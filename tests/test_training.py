"""Training end to end on CPU: learning, checkpoints, resume, evaluation outputs."""

import json
import math

import numpy as np
import pytest
import torch

from sdpg_core import checkpoint
from sdpg_core.config import resolve
from sdpg_core.evaluate import evaluate
from sdpg_core.policy import Policy
from sdpg_core.session import TrainingSession
from sdpg_core.trainers.sdpg import SDPGTrainer

TINY = [
    "sdpg.num_nominal=4",
    "sdpg.num_perturbations=3",
    "sdpg.horizon=8",
    "env.image_size=32",
    "model.encoder_channels=8",
    "model.encoder_features=32",
    "run.eval_episodes=4",
    "run.checkpoint_interval=2",
    "run.video=false",
]


def test_pixel_training_writes_run_dir(tmp_path):
    cfg = resolve(
        "reacher",
        overrides=[
            *TINY,
            "run.iterations=4",
            "run.minutes=0",
            "run.eval_interval=2",
            "run.video=true",
        ],
    )
    summary = TrainingSession.start(cfg, tmp_path).run(show_progress=False)
    assert summary["iterations"] == 4 and 0.0 <= summary["success_rate"] <= 1.0
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "checkpoints/latest.pt",
        "checkpoints/best.pt",
        "learning_curve.png",
        "eval.mp4",
    ):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "tensorboard").iterdir())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = {
        "iteration",
        "env_steps",
        "nominal_frames",
        "wall_time_s",
        "episode_return",
        "success_rate",
        "actor_loss",
        "critic_loss",
        "policy_std",
        "alpha",
        "fps",
    }
    assert keys <= set(records[-1])
    assert records[-1]["env_steps"] == 4 * 16 * 8 and records[-1]["nominal_frames"] == 4 * 4 * 8


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    cfg = resolve("reacher", overrides=[*TINY, "run.iterations=2"])
    session = TrainingSession.start(cfg, tmp_path)
    session.step()
    path = session.save("latest.pt")
    data = torch.load(path, weights_only=True)
    assert data["spec"]["task"] == "reacher" and data["config"]["sdpg"]["horizon"] == 8
    obs = session.trainer.env.observe()
    live = session.trainer.policy().act({"pixels": obs["pixels"]})
    loaded = Policy.load(path).act({"pixels": obs["pixels"]})
    np.testing.assert_array_equal(live, loaded)
    session.trainer.close()


def test_streaming_images_match_training_frame_stack(tmp_path):
    """act_image on successive camera frames sees exactly the env's stacked observation."""
    cfg = resolve("reacher", overrides=[*TINY, "run.iterations=1"])
    session = TrainingSession.start(cfg, tmp_path)
    policy, env = session.trainer.policy(), session.trainer.env
    env.reset(env.render_ids)
    row = 0
    action = policy.act_image(env.observe()["pixels"][row, -3:].transpose(1, 2, 0))
    for _ in range(3):
        pixels = env.step(np.zeros((env.num_envs, 2), np.float32)).obs["pixels"]
        action = policy.act_image(pixels[row, -3:].transpose(1, 2, 0))
    np.testing.assert_allclose(action, policy.act({"pixels": pixels[row : row + 1]})[0], atol=1e-6)
    session.trainer.close()


def test_resume_matches_uninterrupted_run(tmp_path):
    """2 iterations + checkpoint + resume + 2 iterations == 4 uninterrupted iterations."""
    overrides = [*TINY, "run.iterations=4", "run.checkpoint_interval=100"]
    straight = TrainingSession.start(resolve("reacher", overrides=overrides), tmp_path / "a")
    expected = [straight.step() for _ in range(4)]
    straight.trainer.close()
    second = TrainingSession.start(resolve("reacher", overrides=overrides), tmp_path / "c")
    second.step()
    second.step()
    second.save("latest.pt")
    second.trainer.close()
    resumed = TrainingSession.resume(tmp_path / "c")
    assert resumed.trainer.iteration == 2
    got = [resumed.step() for _ in range(2)]
    resumed.trainer.close()
    for a, b in zip(expected[2:], got, strict=True):
        for key in ("actor_loss", "critic_loss", "episode_return", "policy_std", "alpha"):
            assert a[key] == b[key], key


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path):
    overrides = [*TINY, "run.iterations=3", "run.checkpoint_interval=2"]
    session = TrainingSession.start(resolve("reacher_state", overrides=overrides), tmp_path)
    for _ in range(3):
        session.step()  # latest.pt at iteration 2, metrics up to 3 (then a crash, say)
    session.trainer.close()
    resumed = TrainingSession.resume(tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2]
    assert resumed.run(show_progress=False)["iterations"] == 3


def test_same_seed_same_metrics(tmp_path):
    records = []
    for run in ("a", "b"):
        cfg = resolve("reacher", overrides=[*TINY, "run.iterations=2"])
        session = TrainingSession.start(cfg, tmp_path / run)
        records.append([session.step() for _ in range(2)])
        session.trainer.close()
    for a, b in zip(*records, strict=True):
        for key in ("actor_loss", "critic_loss", "episode_return", "policy_std", "alpha"):
            assert a[key] == b[key], key


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        checkpoint.load(bad)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.pt")


@pytest.mark.slow
def test_short_reacher_training_improves_return(tmp_path):
    cfg = resolve(
        "reacher_state",
        overrides=["run.iterations=300", "run.minutes=0", "run.eval_interval=0", "run.video=false"],
    )
    trainer = SDPGTrainer(cfg, tmp_path)
    before = evaluate(trainer.policy(), 32)
    for _ in range(cfg.run.iterations):
        trainer.train_iteration()
    after = evaluate(trainer.policy(), 32)
    trainer.close()
    assert after["return_mean"] > before["return_mean"] + 10.0, (before, after)


def trained_state(tmp_path, task="reacher_state", algo="sdpg"):
    """A 2-iteration run of ``task`` (by ``algo``); returns its latest.pt."""
    overrides = [*TINY, "run.iterations=2", f"run.algo={algo}"]
    session = TrainingSession.start(resolve(task, overrides=overrides), tmp_path / "first")
    session.run(show_progress=False)
    return tmp_path / "first" / "checkpoints" / "latest.pt"


def same(a, b) -> bool:
    """Two state dicts hold equal tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("algo", ["sdpg", "ppo"])
def test_run_init_starts_from_the_checkpoint_weights_only(tmp_path, algo):
    """run.init: networks and normaliser from the checkpoint; optimisers and counters afresh."""
    source = trained_state(tmp_path, algo=algo)
    saved = checkpoint.load(source)
    cfg = resolve("reacher_state", overrides=[*TINY, f"run.algo={algo}", f"run.init={source}"])
    session = TrainingSession.start(cfg, tmp_path / "second")
    trainer = session.trainer
    for name, part in trainer.stateful().items():
        if isinstance(part, torch.optim.Optimizer):
            assert not part.state, name  # no Adam moments carried over
        elif isinstance(part, torch.Tensor):
            assert torch.equal(part, saved[name]), name
        else:
            assert same(part.state_dict(), saved[name]), name
    assert trainer.iteration == 0 and trainer.env_steps == 0
    session.step()
    trainer.close()


def test_run_init_from_a_policy_file_keeps_a_fresh_critic(tmp_path):
    source = trained_state(tmp_path)
    policy_file = checkpoint.export_policy(source, tmp_path / "policy.pt")
    saved = checkpoint.load(source)
    overrides = [*TINY, f"run.init={policy_file}"]
    fresh = TrainingSession.start(resolve("reacher_state", overrides=TINY), tmp_path / "fresh")
    tuned = TrainingSession.start(resolve("reacher_state", overrides=overrides), tmp_path / "t")
    learner = tuned.trainer.learner
    assert same(learner.actor.state_dict(), saved["actor"])
    assert same(learner.normalizer.state_dict(), saved["normalizer"])
    assert same(learner.critic.state_dict(), fresh.trainer.learner.critic.state_dict())
    fresh.trainer.close()
    tuned.trainer.close()


@pytest.mark.parametrize(
    ("task", "extra", "message"),
    [
        ("reacher", [], "its task is 'reacher_state', this run's 'reacher'"),
        ("reacher_state", ["model.actor_hidden=[32]"], "its actor does not fit this run's model"),
    ],
)
def test_run_init_refuses_a_checkpoint_that_does_not_fit(tmp_path, task, extra, message):
    source = trained_state(tmp_path)
    cfg = resolve(task, overrides=[*TINY, *extra, f"run.init={source}"])
    with pytest.raises(ValueError, match=message):
        TrainingSession.start(cfg, tmp_path / "second")


def test_run_init_names_a_missing_file(tmp_path):
    cfg = resolve("reacher_state", overrides=[*TINY, f"run.init={tmp_path / 'none.pt'}"])
    with pytest.raises(FileNotFoundError, match=r"none\.pt"):
        TrainingSession.start(cfg, tmp_path / "run")


def test_run_init_keeps_this_runs_fixed_sigma(tmp_path):
    """A fine-tuning with sdpg.fixed_sigma explores with it, not the checkpoint's learned std."""
    source = trained_state(tmp_path)
    overrides = [*TINY, f"run.init={source}", "sdpg.fixed_sigma=0.3"]
    session = TrainingSession.start(resolve("reacher_state", overrides=overrides), tmp_path / "t")
    log_sigma = session.trainer.learner.actor.log_sigma
    assert torch.allclose(log_sigma, torch.full_like(log_sigma, math.log(0.3)))
    assert not log_sigma.requires_grad
    session.trainer.close()
