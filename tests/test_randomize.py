"""Domain randomisation (env.randomize): draws per env, shared by a group, applied exactly."""

import json
from dataclasses import replace

import numpy as np
import pytest

from sdpg_core.config import (
    ConfigError,
    EnvConfig,
    LatencyRandomization,
    PhysicsRandomization,
    RandomizeConfig,
    VisionRandomization,
    load_perturbations,
    ranges,
    resolve,
)
from sdpg_core.envs.registry import get_task, make_env, task_names
from sdpg_core.evaluate import evaluate
from sdpg_core.share import find_share_file

ACTOR_TASKS = [n for n in task_names() if get_task(n).obs_mode != "state"]
FULL = RandomizeConfig(
    vision=VisionRandomization(
        light_position=(-0.3, 0.3),
        light_intensity=(0.6, 1.4),
        color=(-0.15, 0.15),
        camera_position=(-0.02, 0.02),
        camera_rotation=(-2.0, 2.0),
        camera_fovy=(-3.0, 3.0),
        noise=(0.0, 6.0),
        blur=(0.0, 1.0),
        brightness=(-15.0, 15.0),
        contrast=(0.8, 1.2),
        depth_noise=(0.0, 0.02),
        depth_holes=(0.0, 0.05),
    ),
    physics=PhysicsRandomization(
        friction=(0.5, 1.5),
        mass=(0.8, 1.2),
        com=(-0.01, 0.01),
        damping=(0.8, 1.2),
        armature=(0.8, 1.2),
        frictionloss=(0.8, 1.2),
        kp=(0.8, 1.2),
        kd=(0.8, 1.2),
        strength=(0.8, 1.2),
    ),
    latency=LatencyRandomization(
        action_delay=(0.0, 30.0),
        action_jitter=(0.0, 10.0),
        joint_delay=(0.0, 10.0),
        camera_delay=(0.0, 80.0),
        camera_drop=(0.0, 0.3),
    ),
)


def env_of(name, randomize=FULL, n=3, seed=0, **kw):
    """n envs of ``name`` (env 0 rendered for pixel tasks) with ``randomize``."""
    cfg = EnvConfig(task=name, image_size=32, randomize=randomize, **kw)
    return make_env(name, cfg, n, render_ids=np.array([0]), seed=seed)


@pytest.mark.parametrize("name", ACTOR_TASKS)
def test_an_auxiliary_with_zero_noise_replays_its_nominal_under_randomization(name):
    env = env_of(name)
    env.reset(np.arange(3))
    env.copy_state(np.array([0, 0]), np.array([1, 2]))
    assert np.array_equal(env.params[0], env.params[1]) and np.array_equal(
        env.params[0], env.params[2]
    )
    rng = np.random.default_rng(1)
    for _ in range(15):
        actions = rng.uniform(-1, 1, (3, env.spec.action_dim)).astype(np.float32)
        actions[1] = actions[0]
        obs = env.step(actions).obs
        assert np.array_equal(env.physics[0], env.physics[1])
        for key in ("state", "proprio"):
            if key in obs:
                assert np.array_equal(obs[key][0], obs[key][1])
    assert not np.array_equal(env.physics[0], env.physics[2])
    assert len(env.variants) == 1  # one model variant for the group


@pytest.mark.parametrize("name", ["reacher", "go2_walk"])
def test_the_draws_change_the_dynamics(name):
    nominal, randomized = env_of(name, RandomizeConfig(), n=1), env_of(name, n=1)
    for env in (nominal, randomized):
        env.reset(np.zeros(1, dtype=np.int64), seeds=[[3, 0]])
    assert nominal.randomizer.dim == 0 and randomized.randomizer.dim > 0
    np.testing.assert_array_equal(nominal.physics, randomized.physics)  # same initial state
    action = np.full((1, nominal.spec.action_dim), 0.5, dtype=np.float32)
    for _ in range(10):
        nominal.step(action)
        randomized.step(action)
    assert not np.allclose(nominal.physics, randomized.physics)


def test_draws_are_reproducible_from_the_seed():
    a, b = env_of("ur5e_reach", n=2, seed=0), env_of("ur5e_reach", n=2, seed=99)
    a.reset(np.arange(2), seeds=[[7, 0], [7, 1]])
    b.reset(np.arange(2), seeds=[[7, 0], [7, 1]])
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params[0], a.params[1])
    values = a.randomizer.values(a.params[0])
    assert len(values) == a.randomizer.dim and "physics.friction" in values
    assert "physics.mass/shoulder_link" in values and "latency.action_delay" in values


def test_off_is_the_nominal_simulator():
    ranges = replace(FULL, enabled=False)
    for randomize in (RandomizeConfig(), ranges):
        env, plain = env_of("go2_walk", randomize, n=2), env_of("go2_walk", RandomizeConfig(), n=2)
        assert env.randomizer.dim == 0 and env.latency.ctrl_queue.shape[1] == 0
        action = np.full((2, 12), 0.3, dtype=np.float32)
        for _ in range(5):
            env.step(action)
            plain.step(action)
        np.testing.assert_array_equal(env.physics, plain.physics)


def test_physics_variant_scales_the_model_by_its_draws():
    env = env_of("go2_walk", n=1)
    r, row, base = env.randomizer, env.params[0], env.model
    variant = r.physics_variant(row)
    friction = row[r.slices["friction"]][0]
    np.testing.assert_allclose(variant.geom_friction[:, 0], base.geom_friction[:, 0] * friction)
    np.testing.assert_allclose(variant.body_mass[1:], base.body_mass[1:] * row[r.slices["mass"]])
    kp, strength = row[r.slices["kp"]], row[r.slices["strength"]]
    np.testing.assert_allclose(
        variant.actuator_gainprm[:, 0], base.actuator_gainprm[:, 0] * kp * strength
    )
    np.testing.assert_allclose(
        variant.actuator_forcerange, base.actuator_forcerange * strength[:, None]
    )
    assert np.array_equal(
        base.body_mass, env_of("go2_walk", RandomizeConfig(), n=1).model.body_mass
    )


def test_a_group_shares_one_model_variant():
    env = env_of("go2_walk", n=12)
    env.reset(np.arange(12))
    nominals = np.array([0, 4, 8])
    env.copy_state(np.repeat(nominals, 3), np.setdiff1d(np.arange(12), nominals))
    env.step(np.zeros((12, 12), dtype=np.float32))
    assert len(env.variants) == 3
    models = env.variants.models(env.params)
    assert models[0] is models[3] and models[0] is not models[4]


def delayed(env, ctrl):
    """The env's controls per substep for ``ctrl`` at its current step."""
    return env.latency.delayed(ctrl, env.params, env.steps, env.task.frame_skip)


def test_action_delay_in_substeps_hand_worked():
    # reacher: 10 ms substeps, 4 per control step; a 20 ms delay = 2 substeps
    latency = LatencyRandomization(action_delay=(20.0, 20.0))
    env = env_of("reacher", RandomizeConfig(latency=latency), n=1)
    assert env.task.frame_skip == 4 and env.latency.ctrl_queue.shape == (1, 2, 2)
    held = env.latency.ctrl_queue[0, 0].copy()  # the zero action's control, from the reset
    first, second = np.array([[0.3, -0.2]]), np.array([[0.7, 0.1]])
    applied = delayed(env, first)
    np.testing.assert_array_equal(applied[0], [held, held, first[0], first[0]])
    applied = delayed(env, second)
    np.testing.assert_array_equal(applied[0], [first[0], first[0], second[0], second[0]])


def test_a_longer_delay_never_brings_back_an_older_command():
    # reacher: 4 substeps of 10 ms; delays up to 70 ms = 7 substeps span two earlier commands
    latency = LatencyRandomization(action_delay=(0.0, 0.0), action_jitter=(0.0, 70.0))
    env = env_of("reacher", RandomizeConfig(latency=latency), n=1)
    assert env.latency.ctrl_queue.shape == (1, 7, 2)
    delays = {0: 0, 1: 1, 2: 7}  # substeps each step's command waits (by the episode's step)
    env.randomizer.action_delays = lambda _params, steps: np.array([delays.get(int(steps[0]), 0)])
    c0, c1, c2 = (np.array([[v, -v]]) for v in (0.1, 0.2, 0.3))
    np.testing.assert_array_equal(delayed(env, c0)[0], [c0[0]] * 4)
    env.steps += 1
    np.testing.assert_array_equal(delayed(env, c1)[0], [c0[0], c1[0], c1[0], c1[0]])
    env.steps += 1
    # 7 substeps late the slots read c0 c0 c0 c1, but c1 already replaced c0: c1 is held
    np.testing.assert_array_equal(delayed(env, c2)[0], [c1[0]] * 4)


def test_joint_delay_reports_the_state_from_substeps_ago():
    latency = LatencyRandomization(joint_delay=(10.0, 10.0))  # go2: 5 ms substeps -> 2
    env = env_of("go2_walk", RandomizeConfig(latency=latency), n=1)
    env.step(np.full((1, 12), 0.4, dtype=np.float32))
    np.testing.assert_array_equal(env.latency.sensed[0], env._out[0, -3])
    assert not np.array_equal(env.latency.sensed[0], env.physics[0])
    plain = env_of("go2_walk", RandomizeConfig(), n=1)
    delayed = env._proprio(env.latency.sensed)
    plain.physics[:] = env.latency.sensed
    plain.prev_action[:] = env.prev_action
    np.testing.assert_array_equal(env.observe()["proprio"], delayed)
    np.testing.assert_array_equal(plain.observe()["proprio"], delayed)


def test_camera_delay_shows_the_frame_from_a_step_ago():
    one_step = 1000.0 * 0.04  # reacher's control period, ms
    latency = LatencyRandomization(camera_delay=(one_step, one_step))
    delayed = env_of("reacher", RandomizeConfig(latency=latency), n=1)
    plain = env_of("reacher", RandomizeConfig(), n=1)
    for env in (delayed, plain):
        env.reset(np.zeros(1, dtype=np.int64), seeds=[[5, 0]])
    frames = []
    for _ in range(6):
        action = np.full((1, 2), 0.8, dtype=np.float32)
        frames.append(
            (delayed.step(action).obs["pixels"][0, -3:], plain.step(action).obs["pixels"][0, -3:])
        )
    for (now_delayed, _), (_, before_plain) in zip(frames[1:], frames[:-1], strict=True):
        np.testing.assert_array_equal(now_delayed, before_plain)


def test_dropped_camera_frames_are_held():
    latency = LatencyRandomization(camera_drop=(0.5, 0.5))
    env = env_of("reacher", RandomizeConfig(latency=latency), n=1)
    held, newest = 0, env.observe()["pixels"][0, -3:]
    for _ in range(60):
        frame = env.step(np.full((1, 2), 0.8, dtype=np.float32)).obs["pixels"][0, -3:]
        held += np.array_equal(frame, newest)
        newest = frame
    assert 15 <= held <= 45


def test_vision_draws_change_the_image_not_the_physics_and_repeat_exactly():
    vision = RandomizeConfig(vision=FULL.vision)
    looks, plain = env_of("ur5e_reach", vision, n=1), env_of("ur5e_reach", RandomizeConfig(), n=1)
    for env in (looks, plain):
        env.reset(np.zeros(1, dtype=np.int64), seeds=[[2, 0]])
    np.testing.assert_array_equal(looks.physics, plain.physics)
    assert not np.array_equal(looks.observe()["pixels"], plain.observe()["pixels"])
    again = looks.renderer.render(looks.physics, looks.extras, looks.params, looks.steps)
    np.testing.assert_array_equal(again.transpose(0, 3, 1, 2), looks.observe()["pixels"][:, -3:])


def test_state_round_trip_under_randomization_is_exact():
    env = env_of("reacher", n=2)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (12, 2, 2)).astype(np.float32)
    for a in actions[:4]:
        env.step(a)
    saved = env.get_state(np.array([0]))  # env 0 is rendered: frames and delayed frames too
    first = [env.step(a).obs["pixels"].copy() for a in actions[4:]]
    end = env.physics[0].copy()
    env.set_state(saved, np.array([0]))
    again = [env.step(a).obs["pixels"].copy() for a in actions[4:]]
    np.testing.assert_array_equal(env.physics[0], end)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)


def test_checkpointed_env_state_keeps_the_draws():
    env = env_of("reacher", n=2)
    env.step(np.zeros((2, 2), dtype=np.float32))
    other = env_of("reacher", n=2, seed=5)
    other.load_state_dict(env.state_dict())
    np.testing.assert_array_equal(other.params, env.params)
    np.testing.assert_array_equal(other.latency.ctrl_queue, env.latency.ctrl_queue)
    np.testing.assert_array_equal(other.latency.pending, env.latency.pending)


def test_ranges_are_checked_and_perturbation_files_are_strict(tmp_path):
    with pytest.raises(ConfigError, match=r"env\.randomize\.physics\.friction"):
        resolve("reacher", overrides=["env.randomize.physics.friction=[1.5, 0.5]"])
    with pytest.raises(ConfigError, match=r"env\.randomize\.latency\.camera_drop"):
        resolve("reacher", overrides=["env.randomize.latency.camera_drop=[0, 1.5]"])
    bad = tmp_path / "p.yaml"
    bad.write_text("dim:\n  vision:\n    lightness: [0.3, 0.3]\n")
    with pytest.raises(ConfigError, match=r"p.yaml: dim.vision.lightness: unknown key"):
        load_perturbations(bad)
    bad.write_text("dim:\n  vision:\n    light_intensity: [-1, 0.3]\n")
    with pytest.raises(ConfigError, match=r"dim\.vision\.light_intensity"):
        load_perturbations(bad)


TRAINING = {  # training ranges -> (task, randomisation file or None, held-out sets)
    "reacher": ("reacher", "randomize/reacher.yaml", "perturb/reacher.yaml"),
    "ur5e": ("ur5e_reach", None, "perturb/ur5e.yaml"),
    "ur5e_sim2real": ("ur5e_reach", "randomize/ur5e.yaml", "perturb/ur5e.yaml"),
    "go2": ("go2_walk", None, "perturb/go2.yaml"),
}


@pytest.mark.parametrize("training", sorted(TRAINING))
def test_shipped_perturbation_sets_lie_outside_the_training_ranges(training):
    task, randomize, perturb = TRAINING[training]
    sets = load_perturbations(find_share_file("config", perturb))
    trained = resolve(task, randomize and find_share_file("config", randomize)).env.randomize
    assert len(sets) >= 4
    for name, perturbation in sets.items():
        outside = []
        for (_, _, span), (_, _, seen) in zip(ranges(perturbation), ranges(trained), strict=True):
            if span:
                outside.append(not seen or span[0] < seen[0] or span[1] > seen[1])
        assert outside and all(outside), name


@pytest.mark.parametrize("task", ["ur5e_reach", "go2_walk", "go2_walk_depth", "go2_terrain"])
def test_robot_tasks_train_randomized_by_default(task):
    cfg = resolve(task).env.randomize
    assert cfg.enabled and cfg.physics != PhysicsRandomization() and cfg.latency.action_delay
    if get_task(task).obs_mode == "pixels":
        assert cfg.vision != VisionRandomization()
    assert resolve("reacher").env.randomize == RandomizeConfig()  # CPU configs: off


def test_training_logs_each_episodes_draws(tmp_path):
    from sdpg_core.trainers.sdpg import SDPGTrainer

    cfg = resolve(
        "reacher_state",
        overrides=[
            "sdpg.num_nominal=2",
            "sdpg.num_perturbations=3",
            "sdpg.horizon=30",
            "env.episode_steps=20",
            "env.randomize.physics.friction=[0.5, 1.5]",
            "env.randomize.latency.action_delay=[0, 20]",
        ],
    )
    trainer = SDPGTrainer(cfg, tmp_path)
    trainer.train_iteration()
    records = [
        json.loads(line) for line in (tmp_path / "randomization.jsonl").read_text().splitlines()
    ]
    assert len(records) == 2 and {r["env"] for r in records} == {0, 4}  # the nominal envs
    assert set(records[0]["randomization"]) == {"physics.friction", "latency.action_delay"}
    evaluated: list[dict] = []
    evaluate(trainer.policy(), 2, records=evaluated)  # evaluation: the nominal simulator
    assert evaluated[0]["randomization"] == {}
    trainer.env.close()


def test_the_reacher_floor_fills_the_view_of_its_moved_camera():
    """The held-out moved camera (3 cm, 3 degrees) still sees floor to its edges: no black void
    beyond the scene (the floor of half-width 0.3 m it had ended inside that view)."""
    moved = load_perturbations(find_share_file("config", "perturb/reacher.yaml"))["camera_moved"]
    for randomize in (RandomizeConfig(enabled=False), moved):
        env = make_env("reacher", replace(resolve("reacher").env, randomize=randomize), 4, seed=0)
        env.reset(np.arange(4))
        frames = env.observe()["pixels"].reshape(4, -1, 3, *env.spec.pixel_shape[1:])
        env.close()
        dark = (frames < 40).all(axis=2)  # [n, frames, H, W]: all three channels dark
        assert dark.mean(axis=-1).max() < 0.5 and dark.mean(axis=-2).max() < 0.5  # no band
