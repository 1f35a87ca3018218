"""The ``sdpg`` command: listing, clear errors, train/eval round trip."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdpg_core import checkpoint
from sdpg_core.cli import main
from sdpg_core.policy import Policy


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "sdpg_core.cli", *args], capture_output=True, text=True, check=False
    )


def test_tasks_lists_every_task(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("reacher", "reacher_state", "cartpole_swingup", "hopper", "walker"):
        assert name in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--task", "reacher", "--set", "sdpg.horizn=3"], "sdpg.horizn: unknown key"),
        (["--task", "reacher", "--set", "sdpg.horizon=abc"], "sdpg.horizon: expected an integer"),
        (["--task", "reacher", "--device", "cuda", "--iterations", "1"], "CUDA is not available"),
    ],
)
def test_train_errors_are_clear(tmp_path, capsys, args, message):
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err


def test_config_file_errors_name_file(tmp_path, capsys):
    bad = tmp_path / "my.yaml"
    bad.write_text("run:\n  minutes: fast\n")
    assert main(["train", "--task", "reacher", "--config", str(bad)]) == 2
    assert "my.yaml: run.minutes: expected a number" in capsys.readouterr().err


def test_train_then_eval(tmp_path):
    out = tmp_path / "run"
    train = run(
        "train",
        "--task",
        "reacher_state",
        "--iterations",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "sdpg.num_nominal=2",
        "--set",
        "sdpg.num_perturbations=1",
        "--set",
        "run.video=false",
        "--set",
        "run.eval_episodes=2",
    )
    assert train.returncode == 0, train.stderr
    assert "task=reacher_state" in train.stdout and "success=" in train.stdout
    ev = run(
        "eval",
        "--checkpoint",
        str(out / "checkpoints" / "best.pt"),
        "--episodes",
        "2",
        "--video",
        str(tmp_path / "v.mp4"),
    )
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["task"] == "reacher_state"
    assert (tmp_path / "v.mp4").stat().st_size > 0
    exported = tmp_path / "policy.pt"
    best = out / "checkpoints" / "best.pt"
    assert main(["export", "--checkpoint", str(best), "--out", str(exported)]) == 0
    small = checkpoint.load(exported)
    assert set(small) >= {"config", "spec", "actor", "normalizer"}
    assert "critic" not in small and "actor_opt" not in small
    full, slim = Policy.load(best), Policy.load(exported)
    obs = {"state": np.random.default_rng(0).normal(size=(4, slim.spec.state_dim)).astype("f4")}
    np.testing.assert_array_equal(full.act(obs), slim.act(obs))


def test_eval_missing_checkpoint(capsys):
    assert main(["eval", "--checkpoint", "/nonexistent.pt"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_eval_with_a_fixed_command(tmp_path, capsys):
    """A command task evaluated under one command (the go2 walking target: 0.5 m/s forward);
    a task without commands says so."""
    out = tmp_path / "go2"
    tiny = ["sdpg.num_nominal=2", "sdpg.num_perturbations=1", "sdpg.horizon=4"]
    tiny += ["run.eval_episodes=2", "run.eval_interval=0", "env.episode_steps=20"]
    argv = ["train", "--task", "go2_walk", "--iterations", "1", "--out", str(out), "--no-progress"]
    assert main([*argv, *[arg for item in tiny for arg in ("--set", item)]]) == 0
    capsys.readouterr()
    latest = str(out / "checkpoints" / "latest.pt")
    assert main(["eval", "--checkpoint", latest, "--episodes", "2", "--command", "0.5,0,0"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "go2_walk"
    with pytest.raises(SystemExit):
        main(["eval", "--checkpoint", latest, "--command", "0.5,x"])
    assert "expected numbers separated by commas" in capsys.readouterr().err
    reacher = str(Path(__file__).parent / "data" / "reacher_pixels.pt")
    assert main(["eval", "--checkpoint", reacher, "--command", "0.5,0,0"]) == 2
    assert "env.command: reacher takes 0 command values" in capsys.readouterr().err


def test_eval_under_perturbations_logs_each_episode(tmp_path, capsys):
    """sdpg eval --perturb: the same episodes nominal and under each named set; --log keeps
    every episode's outcome and the values it was drawn."""
    sets = tmp_path / "perturb.yaml"
    sets.write_text(
        "dark:\n  vision:\n    light_intensity: [0.3, 0.3]\n"
        "late:\n  latency:\n    action_delay: [40, 40]\n"
    )
    reacher, log = str(Path(__file__).parent / "data" / "reacher_pixels.pt"), tmp_path / "ep.jsonl"
    argv = ["eval", "--checkpoint", reacher, "--episodes", "2", "--perturb", str(sets)]
    assert main([*argv, "--log", str(log)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["perturbed"]) == {"dark", "late"} and "success_rate" in result["nominal"]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["set"] for r in records] == ["nominal"] * 2 + ["dark"] * 2 + ["late"] * 2
    assert records[0]["randomization"] == {} and records[0]["seed"] == [12345, 0]
    assert records[2]["randomization"]["vision.light_intensity/light0"] == 0.3
    assert records[4]["randomization"]["latency.action_delay"] == 4.0  # 40 ms = 4 substeps
    sets.write_text("dark:\n  vision:\n    light: [0.3, 0.3]\n")
    assert main([*argv]) == 2
    assert "dark.vision.light: unknown key" in capsys.readouterr().err
