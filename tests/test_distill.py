"""Teacher-student distillation (DAgger): teacher labels, buffer, smoke run, clear errors."""

import json

import numpy as np
import pytest
import torch

from sdpg_core import checkpoint
from sdpg_core.cli import main
from sdpg_core.config import ConfigError, resolve
from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs_tensors import ActorObs
from sdpg_core.policy import Policy
from sdpg_core.session import TrainingSession
from sdpg_core.trainers.distill import DistillTrainer, ReplayBuffer, Teacher
from sdpg_core.trainers.sdpg import SDPGTrainer

SDPG_TINY = ["sdpg.num_nominal=2", "sdpg.num_perturbations=1", "sdpg.horizon=4"]
PIXELS_TINY = ["env.image_size=32", "model.encoder_channels=8", "model.encoder_features=32"]


def distill_overrides(teacher) -> list[str]:
    """A tiny distillation run from ``teacher``."""
    return [
        "run.algo=distill",
        f"distill.teacher={teacher}",
        "distill.num_envs=3",
        "distill.horizon=4",
        "distill.batch_size=8",
        "distill.buffer_size=16",
        "distill.updates=2",
        "distill.beta=0.5",
        "distill.beta_decay=0.5",
        *PIXELS_TINY,
        "run.eval_episodes=2",
        "run.checkpoint_interval=1",
        "run.video=false",
    ]


def save_trainer(task: str, path, overrides: list[str], iterations: int = 0):
    """Train an SDPG policy for a few iterations and write its checkpoint to ``path``."""
    trainer = SDPGTrainer(resolve(task, overrides=overrides), path.parent / f"{path.stem}-run")
    for _ in range(iterations):
        trainer.train_iteration()
    checkpoint.save(trainer.state_dict(), path)
    trainer.close()
    return path


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """A state teacher (SDPG on reacher_state, 2 iterations: non-trivial normaliser)."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    return save_trainer("reacher_state", path, SDPG_TINY, iterations=2)


def test_teacher_acts_on_state_through_its_own_normaliser(teacher_path):
    teacher = Teacher(str(teacher_path), "reacher", torch.device("cpu"))
    policy = Policy.load(teacher_path)
    assert not torch.allclose(policy.normalizer.mean, torch.zeros_like(policy.normalizer.mean))
    state = np.random.default_rng(0).normal(size=(5, policy.spec.state_dim)).astype(np.float32)
    labels = teacher(state)
    np.testing.assert_allclose(torch.tanh(labels).numpy(), policy.act({"state": state}))
    normalised = policy.normalizer(torch.from_numpy(state)).float()
    mu, _ = policy.actor(ActorObs(normalised))
    torch.testing.assert_close(labels, mu.detach().clamp(-2.0, 2.0))


def test_replay_buffer_is_a_bounded_fifo():
    spec = EnvSpec("t", "pixels", 4, 1, (1, 1, 1), 10, 0.1, (), False, ("a",), "cam", 2)
    buffer = ReplayBuffer(5, spec)
    proprio = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    buffer.add(
        ActorObs(torch.arange(3, dtype=torch.uint8).reshape(3, 1, 1, 1), proprio[:3]),
        torch.zeros(3, 1),
    )
    buffer.add(
        ActorObs(torch.arange(3, 6, dtype=torch.uint8).reshape(3, 1, 1, 1), proprio[3:]),
        torch.ones(3, 1),
    )
    assert len(buffer) == 5
    assert buffer.obs.main.flatten().tolist() == [5, 1, 2, 3, 4]  # 0, the oldest, was dropped
    assert buffer.obs.proprio[:, 0].tolist() == [10.0, 2.0, 4.0, 6.0, 8.0]  # rows kept together
    assert buffer.labels.flatten().tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    obs, labels = buffer.sample(4, torch.Generator().manual_seed(0))
    assert obs.main.shape == (4, 1, 1, 1) and obs.proprio.shape == (4, 2) and labels.shape == (4, 1)


def test_distill_smoke_writes_a_loadable_student(tmp_path, teacher_path):
    cfg = resolve("reacher", overrides=[*distill_overrides(teacher_path), "run.iterations=2"])
    session = TrainingSession.start(cfg, tmp_path)
    assert isinstance(session.trainer, DistillTrainer)
    summary = session.run(show_progress=False)
    assert summary["iterations"] == 2
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["beta"] for r in records] == [0.5, 0.25]
    assert [r["buffer_size"] for r in records] == [12, 16]  # B * T = 12 per iteration, cap 16
    assert records[-1]["algo"] == "distill" and records[-1]["cpu_time_s"] > 0.0
    assert {"actor_loss", "imitation_mse", "episode_return"} <= set(records[-1])
    student = Policy.load(tmp_path / "checkpoints" / "latest.pt")
    assert student.spec.task == "reacher" and student.spec.obs_mode == "pixels"
    actions = student.act({"pixels": np.zeros((2, *student.spec.pixel_shape), np.uint8)})
    assert actions.shape == (2, 2)
    resumed = TrainingSession.resume(tmp_path)
    assert isinstance(resumed.trainer, DistillTrainer) and resumed.trainer.iteration == 2
    assert resumed.trainer.beta() == 0.125
    resumed.trainer.close()


def test_missing_teacher_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"run\.algo=distill needs distill\.teacher"):
        resolve("reacher", overrides=["run.algo=distill"])
    assert main(["train", "--task", "reacher", "--algo", "distill", "--out", str(tmp_path)]) == 2
    assert "needs distill.teacher" in capsys.readouterr().err
    cfg = resolve("reacher", overrides=distill_overrides(tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError, match=r"distill\.teacher: checkpoint not found"):
        DistillTrainer(cfg, tmp_path / "run")


def test_teacher_must_be_a_state_policy_of_the_same_task(tmp_path, teacher_path):
    pixel_teacher = save_trainer("reacher", tmp_path / "pixels.pt", [*SDPG_TINY, *PIXELS_TINY])
    with pytest.raises(ValueError, match="the teacher must be a state policy"):
        Teacher(str(pixel_teacher), "reacher", torch.device("cpu"))
    other = checkpoint.load(teacher_path)
    other["spec"]["task"] = "cartpole_swingup_state"
    other_path = checkpoint.save(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="trained on 'cartpole_swingup_state'"):
        Teacher(str(other_path), "reacher", torch.device("cpu"))
    with pytest.raises(ValueError, match="distill trains a pixel student"):
        Teacher(str(teacher_path), "reacher_state", torch.device("cpu"))
