"""Data-parallel SDPG over torch.distributed (gloo, 2 CPU processes)."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sdpg_core.config import resolve
from sdpg_core.distributed import World
from sdpg_core.envs.registry import make_env
from sdpg_core.obs_tensors import ActorObs, RunningNormalizer
from sdpg_core.storage import RolloutStorage
from sdpg_core.trainers.sdpg_learner import SDPGLearner

B, P, T = 4, 3, 8  # nominal groups, auxiliaries each, horizon
SETTINGS = [f"sdpg.num_nominal={B}", f"sdpg.num_perturbations={P}", f"sdpg.horizon={T}"]
SETTINGS += ["sdpg.actor_epochs=2", "sdpg.critic_minibatch=4096", "sdpg.warmup_iterations=0"]
ROOT = Path(__file__).resolve().parents[1]


def spec_of():
    """The reacher_state env spec."""
    return make_env("reacher_state", resolve("reacher_state").env, 1, render=False).spec


def rollout(spec) -> RolloutStorage:
    """A fixed random rollout of B groups (nominal noise 0, segment ends at T-1)."""
    g = torch.Generator().manual_seed(3)
    n, a, ds = B * (P + 1), spec.action_dim, spec.state_dim
    noise = torch.randn((T, n, a), generator=g)
    noise[:, :: P + 1] = 0.0
    dones = (torch.rand((T, n), generator=g) < 0.05).float()
    dones[-1] = 1.0
    return RolloutStorage(
        actor_obs=ActorObs(torch.randn((T, B, ds), generator=g)),
        critic_obs=torch.randn((T, n, ds), generator=g),
        actions=torch.randn((T, n, a), generator=g).clamp(-2, 2),
        noise=noise,
        log_sigma=torch.full((T, B, a), -1.0),
        rewards=torch.randn((T, n), generator=g),
        next_values=torch.randn((T, n), generator=g),
        dones=dones,
    )


def part(batch: RolloutStorage, rank: int, size: int) -> RolloutStorage:
    """Rank ``rank``'s groups of ``batch`` (B / size consecutive groups and their envs)."""
    b = B // size
    envs = slice(rank * b * (P + 1), (rank + 1) * b * (P + 1))
    nominal = slice(rank * b, (rank + 1) * b)
    return RolloutStorage(
        actor_obs=batch.actor_obs[:, nominal],
        critic_obs=batch.critic_obs[:, envs],
        actions=batch.actions[:, envs],
        noise=batch.noise[:, envs],
        log_sigma=batch.log_sigma[:, nominal],
        rewards=batch.rewards[:, envs],
        next_values=batch.next_values[:, envs],
        dones=batch.dones[:, envs],
    )


def one_update(rank: int, size: int, store: str, out: str) -> None:
    """Rank ``rank`` of ``size``: normaliser update and one SDPG update on its part."""
    import torch.distributed as dist

    if size > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    torch.manual_seed(0)
    cfg = resolve("reacher_state", overrides=SETTINGS)
    spec = spec_of()
    learner = SDPGLearner(cfg, spec, torch.device("cpu"), World(rank, size))
    batch = part(rollout(spec), rank, size)
    learner.update_normalizer(batch.critic_obs.flatten(0, 1))
    frozen = RunningNormalizer(spec.state_dim)
    learner.update(batch, frozen, iteration=5, progress=0.1)
    if rank == 0:
        torch.save(learner.state_dict(), out)
    if size > 1:
        dist.destroy_process_group()


@pytest.mark.timeout(180)
def test_two_ranks_update_as_one_process_fed_the_same_rollouts(tmp_path):
    one_update(0, 1, "", str(tmp_path / "one.pt"))
    context = multiprocessing.get_context("spawn")
    store, out = str(tmp_path / "store"), str(tmp_path / "two.pt")
    ranks = [context.Process(target=one_update, args=(r, 2, store, out)) for r in range(2)]
    for p in ranks:
        p.start()
    for p in ranks:
        p.join(150)
        assert p.exitcode == 0
    single, double = torch.load(tmp_path / "one.pt"), torch.load(out)
    assert single.keys() == double.keys()
    for key, value in single.items():
        torch.testing.assert_close(double[key], value, atol=1e-5, rtol=0, msg=key)
    torch.manual_seed(0)  # the learner as it was built, before the update
    fresh = SDPGLearner(resolve("reacher_state", overrides=SETTINGS), spec_of(), "cpu").state_dict()
    moved = [k for k, v in single.items() if v.is_floating_point() and not torch.equal(v, fresh[k])]
    assert any(k.startswith("actor.") for k in moved) and any(
        k.startswith("critic.") for k in moved
    )
    assert "normalizer.mean" in moved  # the update changed what it should


def sdpg(*args: str, timeout: float = 240.0) -> subprocess.CompletedProcess:
    """``python -m sdpg_core.cli ARGS`` from the project root."""
    command = [sys.executable, "-m", "sdpg_core.cli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


TINY = [*SETTINGS, "run.eval_episodes=2", "run.checkpoint_interval=2", "run.video=false"]


@pytest.mark.timeout(400)
def test_a_two_process_run_writes_one_run_and_resumes_only_in_two(tmp_path):
    out = tmp_path / "run"
    sets = [arg for item in TINY for arg in ("--set", item)]
    train = ["train", "--task", "reacher_state", "--iterations", "3", "--out", str(out)]
    done = sdpg(*train, "--nproc", "2", "--no-progress", *sets)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("task=reacher_state") == 1  # rank 0 alone reports
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3] and {r["world_size"] for r in rows} == {2}
    assert rows[0]["env_steps"] == B * (P + 1) * T  # both ranks' envs
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["env"]["physics"], state["ranks"][1]["env"]["physics"])
    refused = sdpg("resume", str(out), "--no-progress")
    assert refused.returncode == 2 and "resume it with --nproc 2" in refused.stderr
    resumed = sdpg("resume", str(out), "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["processes"] == 2


def ranks_of(out: Path) -> dict[int, int]:
    """{rank: pid} of the training processes writing ``out`` (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        rank = [e for e in environ if e.startswith(b"RANK=")]
        if str(out) in cmdline and rank and "torch.distributed.run" not in cmdline:
            found[int(rank[0][5:])] = int(entry.name)
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_rank_that_dies_or_hangs_fails_the_run_with_a_message(tmp_path, how):
    out = tmp_path / "run"
    sets = [*TINY, "run.dist_timeout_s=15"]
    command = [sys.executable, "-m", "sdpg_core.cli", "train", "--task", "reacher_state"]
    command += ["--iterations", "100000", "--out", str(out), "--nproc", "2", "--no-progress"]
    command += [arg for item in sets for arg in ("--set", item)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
        ranks = ranks_of(out)
        assert set(ranks) == {0, 1}
        os.kill(ranks[1], signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        start = time.monotonic()
        _, stderr = proc.communicate(timeout=150)
        waited = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in ranks_of(out).values():
            os.kill(pid, signal.SIGKILL)
    text = stderr.decode()
    assert proc.returncode != 0 and waited < 120, text[-3000:]
    if how == "killed":
        assert "rank" in text and "1" in text and "exitcode" in text, text[-3000:]
    else:
        assert "rank 0 of 2" in text and "another rank died or hangs" in text, text[-3000:]


def test_resume_waits_as_long_as_the_run_was_configured_to(tmp_path):
    from sdpg_core.cli import run_timeout

    (tmp_path / "config.yaml").write_text("run:\n  dist_timeout_s: 42.0\n")
    assert run_timeout(str(tmp_path)) == 42.0
    (tmp_path / "config.yaml").write_text("run:\n  dist_timeout_s: -1.0\n")  # invalid: default
    assert run_timeout(str(tmp_path)) == 600.0
    assert run_timeout(str(tmp_path / "missing")) == 600.0
