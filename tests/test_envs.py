"""Property tests over every registered task: the env contract of sdpg_core.envs.base."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdpg_core.config import EnvConfig
from sdpg_core.envs.registry import get_task, make_env, task_names

PIXEL_TASKS = [n for n in task_names() if get_task(n).obs_mode == "pixels"]
ACTOR_TASKS = [n for n in task_names() if get_task(n).obs_mode != "state"]  # + proprio-only
CFG = EnvConfig(image_size=48)
ENVS: dict = {}


def env_for(name: str):
    """One cached 4-env batch per task (envs 0 and 2 rendered)."""
    if name not in ENVS:
        ENVS[name] = make_env(name, CFG, 4, render_ids=np.array([0, 2]), seed=0)
    return ENVS[name]


def random_actions(rng, env):
    return rng.uniform(-1, 1, (env.num_envs, env.spec.action_dim)).astype(np.float32)


def test_every_task_has_both_variants():
    for name in ACTOR_TASKS:
        assert get_task(get_task(name).base + "_state").obs_mode == "state"
    assert {"reacher", "cartpole_swingup", "hopper", "walker"} <= set(PIXEL_TASKS)
    assert get_task("go2_walk").obs_mode == "proprio" and "go2_walk_depth" in PIXEL_TASKS


@pytest.mark.parametrize("name", ACTOR_TASKS)
def test_shapes_dtypes_and_finiteness(name):
    env = env_for(name)
    spec, rng = env.spec, np.random.default_rng(0)
    env.reset(np.arange(4))
    for _ in range(20):
        result = env.step(random_actions(rng, env))
        assert result.obs["state"].shape == (4, spec.state_dim)
        assert result.obs["state"].dtype == np.float32
        assert ("pixels" in result.obs) == (spec.obs_mode == "pixels")
        if spec.obs_mode == "pixels":
            assert result.obs["pixels"].shape == (2, *spec.pixel_shape)
            assert result.obs["pixels"].dtype == np.uint8
        assert np.isfinite(result.obs["state"]).all() and np.isfinite(result.reward).all()
        assert result.reward.dtype == np.float32 and result.reward.shape == (4,)
        assert result.terminated.dtype == bool and result.truncated.dtype == bool
        assert set(result.info["reward_terms"]) == set(spec.reward_terms)
        assert ("success" in result.info) == spec.has_success
        assert ("proprio" in result.obs) == (spec.proprio_dim > 0)
        if spec.proprio_dim:
            assert result.obs["proprio"].shape == (4, spec.proprio_dim)
            assert result.obs["proprio"].dtype == np.float32
            assert np.isfinite(result.obs["proprio"]).all()


@pytest.mark.parametrize("name", ACTOR_TASKS)
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**16), warmup=st.integers(0, 5))
def test_exact_state_round_trip(name, seed, warmup):
    """Restore then step equals stepping the original (obs, reward, pixels, bit for bit)."""
    env, rng = env_for(name), np.random.default_rng(seed)
    env.reset(np.arange(4))
    for _ in range(warmup):
        env.step(random_actions(rng, env))
    saved = [env.get_state(np.array([i])) for i in range(4)]
    actions = [random_actions(rng, env) for _ in range(3)]
    first = [env.step(a) for a in actions]
    for i in range(4):
        env.set_state(saved[i], np.array([i]))
    second = [env.step(a) for a in actions]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.obs["state"], b.obs["state"])
        np.testing.assert_array_equal(a.obs.get("pixels"), b.obs.get("pixels"))
        np.testing.assert_array_equal(a.obs.get("proprio"), b.obs.get("proprio"))
        np.testing.assert_array_equal(a.reward, b.reward)


@pytest.mark.parametrize("name", ACTOR_TASKS)
def test_copied_state_replays_identically(name):
    """An auxiliary synced to its nominal and given the same action follows it exactly."""
    env, rng = env_for(name), np.random.default_rng(1)
    env.reset(np.arange(4))
    env.step(random_actions(rng, env))
    env.copy_state(np.array([0]), np.array([1]))
    for _ in range(5):
        actions = random_actions(rng, env)
        actions[1] = actions[0]
        result = env.step(actions)
        np.testing.assert_array_equal(result.obs["state"][0], result.obs["state"][1])
        assert result.reward[0] == result.reward[1]


@pytest.mark.parametrize("name", ACTOR_TASKS)
def test_same_seed_same_trajectory(name):
    runs = []
    for _ in range(2):
        env = make_env(name, CFG, 3, render_ids=np.array([1]), seed=7)
        rng = np.random.default_rng(3)
        runs.append([env.step(random_actions(rng, env)) for _ in range(10)])
        env.close()
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a.obs["state"], b.obs["state"])
        np.testing.assert_array_equal(a.obs.get("pixels"), b.obs.get("pixels"))


@pytest.mark.parametrize("name", PIXEL_TASKS)
def test_pixels_change_when_state_changes(name):
    env = env_for(name)
    env.reset(np.arange(4))
    env.copy_state(np.array([0]), np.array([2]))
    state = env.get_state(np.array([2]))
    nq = env.model.nq
    state.physics[:, 1 : 1 + nq] += 0.4
    env.set_state(state, np.array([2]))
    for _ in range(env.spec.camera_every):  # a slower camera renders every few steps
        pixels = env.step(np.zeros((4, env.spec.action_dim), np.float32)).obs["pixels"]
    changed = np.abs(pixels[0, -3:].astype(int) - pixels[1, -3:].astype(int)).sum(axis=0) > 30
    assert changed.mean() > 0.002, f"{name}: only {changed.mean():.4f} of pixels changed"


@pytest.mark.parametrize("name", ACTOR_TASKS)
def test_nonfinite_state_terminates_with_zero_reward(name):
    env = env_for(name)
    env.reset(np.arange(4))
    state = env.get_state(np.array([3]))
    state.physics[:, 1:] = np.nan
    env.set_state(state, np.array([3]))
    result = env.step(np.zeros((4, env.spec.action_dim), np.float32))
    assert result.terminated[3] and result.reward[3] == 0.0
    assert np.isfinite(result.obs["state"]).all()
    assert np.isfinite(result.obs.get("proprio", np.zeros(1))).all()


def test_invalid_actions_rejected():
    env = env_for("reacher")
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((4, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="actions must be"):
        env.step(np.zeros((3, 2), np.float32))


def test_unknown_task_lists_registered():
    with pytest.raises(KeyError, match="reacher"):
        get_task("reachr")


def test_truncation_at_episode_end():
    env = make_env("reacher_state", EnvConfig(episode_steps=3), 2, seed=0)
    flags = [env.step(np.zeros((2, 2), np.float32)).truncated.all() for _ in range(3)]
    assert flags == [False, False, True]


def test_success_is_judged_on_the_final_window(monkeypatch):
    """Reacher: success held on >= half of the last 10 of 12 steps (hand-worked counts)."""
    env = make_env("reacher_state", EnvConfig(episode_steps=12), 2, seed=0)
    held = np.array(
        [[1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]], dtype=bool
    )  # in the window (steps 3..12): 5 of 10 -> success; 4 of 10 -> failure
    monkeypatch.setattr(env.task, "success", lambda *_: held[:, env.steps[0] - 1])
    verdicts = [env.step(np.zeros((2, 2), np.float32)).info["success"] for _ in range(12)]
    assert env.success_window == 10 and verdicts[-1].tolist() == [True, False]
    assert not np.any(verdicts[:10]) and verdicts[10].tolist() == [True, False]
    env.reset(np.array([0]))
    assert env.on_target.tolist() == [0, 4]


@pytest.mark.parametrize("name", sorted({get_task(n).base + "_state" for n in ACTOR_TASKS}))
def test_action_repeat_sums_rewards_of_the_repeated_steps(name):
    repeat = 3
    once = make_env(name, EnvConfig(), 2, seed=7)
    thrice = make_env(name, EnvConfig(action_repeat=repeat), 2, seed=7)
    action = np.full((2, once.spec.action_dim), 0.3, dtype=np.float32)
    rewards, ended = np.zeros(2), np.zeros(2, dtype=bool)
    for _ in range(repeat):
        step = once.step(action)
        rewards += np.where(ended, 0.0, step.reward)
        ended |= step.terminated
    result = thrice.step(action)
    np.testing.assert_allclose(result.reward, rewards, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.terminated, ended)
    np.testing.assert_array_equal(thrice.physics, once.physics)
    assert thrice.spec.control_dt == pytest.approx(repeat * once.spec.control_dt)
    assert thrice.spec.episode_steps == -(-once.spec.episode_steps // repeat)
