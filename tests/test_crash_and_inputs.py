"""Reproducible schedules, runs that survive kill -9, and bad inputs that end in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sdpg_core.cli import main
from sdpg_core.config import resolve
from sdpg_core.logger import MetricsLogger, read_metrics
from sdpg_core.session import TrainingSession, prepare_run_dir, resolve_train_config
from sdpg_core.trainers.base import TrainerBase

TINY = [
    "sdpg.num_nominal=2",
    "sdpg.num_perturbations=1",
    "sdpg.horizon=4",
    "run.eval_episodes=2",
    "run.eval_interval=0",
    "run.video=false",
    "run.checkpoint_interval=2",
]


def sdpg(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the ``sdpg`` command in a subprocess."""
    command = [sys.executable, "-m", "sdpg_core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


# Reproducible by default ----------------------------------------------------------------------


def test_schedule_follows_iterations_not_wall_time():
    cfg = resolve("reacher", overrides=["run.iterations=200", "run.minutes=1"])
    slow = SimpleNamespace(cfg=cfg, iteration=50, wall_time=3600.0)  # far past the cap
    fast = SimpleNamespace(cfg=cfg, iteration=50, wall_time=1.0)
    assert TrainerBase.progress(slow) == TrainerBase.progress(fast) == 0.25


def test_minutes_is_a_cap_that_keeps_the_iteration_budget():
    default = resolve_train_config("reacher")
    capped = resolve_train_config("reacher", minutes=5.0)
    assert capped.run.iterations == default.run.iterations
    assert capped.run.minutes == 5.0


def test_make_run_budget_is_in_iterations():
    cfg = resolve("reacher")
    assert cfg.run.minutes == 0.0 and cfg.run.iterations > 0


# Run directories --------------------------------------------------------------------------------


def test_train_refuses_a_directory_holding_a_run(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 1}\n')
    code = main(["train", "--task", "reacher_state", "--out", str(tmp_path), "--iterations", "1"])
    err = capsys.readouterr().err
    assert code == 2 and f"sdpg resume {tmp_path}" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "metrics.jsonl").read_text() == '{"iteration": 1}\n'  # untouched


def test_overwrite_starts_afresh(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.pt").write_bytes(b"old")
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 1}\n')
    (tmp_path / "notes.txt").write_text("mine")
    prepare_run_dir(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["train", "--task", "reacher_state", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err


# Metrics and checkpoints after a kill ----------------------------------------------------------


def test_resumed_metrics_hold_every_iteration_once(tmp_path):
    rows = [1, 2, 3, 3, 4, 5, 6, 7]  # a duplicate, rows past the checkpoint, a torn last line
    text = "".join(json.dumps({"iteration": i, "x": i}) + "\n" for i in rows)
    (tmp_path / "metrics.jsonl").write_text(text + '{"iteration": 8, "x"')
    MetricsLogger(tmp_path, resume_after=5).close()
    assert [r["iteration"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5]


def test_resume_removes_stray_temporary_files(tmp_path):
    cfg = resolve("reacher_state", overrides=[*TINY, "run.iterations=3"])
    session = TrainingSession.start(cfg, tmp_path)
    session.step(), session.step()
    session.trainer.close()
    stray = tmp_path / "checkpoints" / "latest.ptab12cd.tmp"
    stray.write_bytes(b"")  # what a kill during save leaves
    resumed = TrainingSession.resume(tmp_path)
    assert not stray.exists()
    assert resumed.run(show_progress=False)["iterations"] == 3
    assert [r["iteration"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("rows", [4, 8])
def test_kill_9_then_resume_gives_every_iteration_once(tmp_path, rows):
    run = tmp_path / "run"
    args = ["--task", "reacher_state", "--out", str(run), "--no-progress", "--iterations", "40"]
    sets = [f"--set={item}" for item in [*TINY, "run.checkpoint_interval=3"]]
    command = [sys.executable, "-m", "sdpg_core.cli", "train", *args, *sets]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120.0
    while len(read_metrics(run / "metrics.jsonl")) < rows and time.monotonic() < deadline:
        time.sleep(0.002)  # killed mid-run, at a moment that is rarely a checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = sdpg("resume", str(run), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    iterations = [r["iteration"] for r in read_metrics(run / "metrics.jsonl")]
    assert iterations == list(range(1, 41))
    assert not list((run / "checkpoints").glob("*.tmp"))


# Checkpoint files: every loader says in one line what is wrong ---------------------------------


class Evil:
    """A pickle payload that would run a command if unpickled without weights_only."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/sdpg-pwned",))


def crafted(tmp_path: Path, kind: str, good: Path) -> Path:
    """A bad checkpoint file of ``kind`` derived from the good policy file ``good``."""
    path = tmp_path / f"{kind}.pt"
    data = torch.load(good, weights_only=True)
    if kind == "pickle":
        torch.save({"format": 1, "actor": Evil()}, path)
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello")
    elif kind == "format":
        torch.save({**data, "format": 99}, path)
    elif kind == "no_actor":
        torch.save({k: v for k, v in data.items() if k != "actor"}, path)
    elif kind == "shapes":
        actor = {k: torch.zeros(3, 3) for k in data["actor"]}
        torch.save({**data, "actor": actor}, path)
    elif kind == "nan":
        actor = {k: v.float() * float("nan") for k, v in data["actor"].items()}
        torch.save({**data, "actor": actor}, path)
    elif kind == "spec":
        torch.save({**data, "spec": {"task": 3}}, path)
    elif kind == "config":
        torch.save({**data, "config": {"sdpg": {"horizon": "x"}}}, path)
    return path


KINDS = {
    "pickle": "refused",
    "truncated": "not a readable checkpoint",
    "empty": "not a readable checkpoint (empty)",
    "text": "not a readable checkpoint",
    "format": "not an sdpg checkpoint of a known format",
    "no_actor": "missing actor",
    "shapes": "actor weights do not fit",
    "nan": "non-finite weights",
    "spec": "no valid env spec",
    "config": "sdpg.horizon",
}


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    """A deployable policy of a 1-iteration reacher_state run."""
    folder = tmp_path_factory.mktemp("good")
    cfg = resolve("reacher_state", overrides=[*TINY, "run.iterations=1"])
    session = TrainingSession.start(cfg, folder)
    session.step()
    path = session.save("latest.pt")
    session.trainer.close()
    return path


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("command", ["eval", "export", "resume"])
def test_bad_checkpoints_are_one_line_errors(tmp_path, policy_file, kind, command):
    bad = crafted(tmp_path, kind, policy_file)
    if command == "eval":
        result = sdpg("eval", "--checkpoint", str(bad), "--episodes", "1")
    elif command == "export":
        result = sdpg("export", "--checkpoint", str(bad), "--out", str(tmp_path / "o.pt"))
    else:
        run = tmp_path / "run"
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "latest.pt").write_bytes(bad.read_bytes())
        result = sdpg("resume", str(run), "--no-progress")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"sdpg {command}: error:"), result.stderr
    expected = "missing" if command == "resume" and kind == "no_actor" else KINDS[kind]
    assert expected in lines[0]
    assert "weights_only=False" not in result.stderr
    assert not (tmp_path / "o.pt").exists()  # export writes nothing broken
    assert not Path("/tmp/sdpg-pwned").exists()


def test_resume_from_a_deploy_only_file_says_what_to_do(tmp_path, policy_file):
    run = tmp_path / "run"
    assert main(["export", "--checkpoint", str(policy_file), "--out", str(tmp_path / "p.pt")]) == 0
    (run / "checkpoints").mkdir(parents=True)
    (tmp_path / "p.pt").rename(run / "checkpoints" / "latest.pt")
    result = sdpg("resume", str(run))
    assert result.returncode == 2 and "deploy-only policy file" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--checkpoint", "CKPT", "--out", "DIR"], "is a directory"),
        (["export", "--checkpoint", "CKPT", "--out", "CKPT"], "is the checkpoint itself"),
        (["eval", "--checkpoint", "CKPT", "--episodes", "0"], "--episodes"),
        (["eval", "--checkpoint", "CKPT", "--episodes", "-1"], "--episodes"),
        (["train", "--task", "reacher", "--minutes", "-1"], "run.minutes"),
        (["train", "--task", "reacher", "--iterations", "0"], "run.iterations"),
        (["train", "--task", "reacher", "--set", "run.checkpoint_interval=0"], "checkpoint_int"),
        (["train", "--task", "reacher", "--set", "sdpg.actor_lr=nan"], "sdpg.actor_lr"),
        (["resume", "NOWHERE"], "no checkpoints/latest.pt"),
    ],
)
def test_bad_command_lines_are_one_line_errors(tmp_path, policy_file, args, message):
    subs = {"CKPT": str(policy_file), "DIR": str(tmp_path), "NOWHERE": str(tmp_path / "x")}
    result = sdpg(*[subs.get(a, a) for a in args])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(lines) == 1 or lines[-1].startswith("sdpg"), result.stderr
