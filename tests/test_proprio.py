"""The proprio group: one builder for training, evaluation and the ROS policy node."""

import numpy as np
import pytest
import torch

from sdpg_core.config import EnvConfig, resolve
from sdpg_core.envs.base import EnvSpec
from sdpg_core.envs.registry import make_env
from sdpg_core.joint_history import JointHistory, TickSchedule
from sdpg_core.models import Actor
from sdpg_core.obs import proprio
from sdpg_core.obs_tensors import RunningNormalizer
from sdpg_core.policy import Policy
from sdpg_core.safety import measured_by_name


def test_the_env_proprio_is_the_builder_on_joint_states_in_any_order():
    """A joint state message (any joint order, extra joints) gives the training vector."""
    env = make_env("ur5e_reach", EnvConfig(), 3, render=False, seed=0)
    rng = np.random.default_rng(1)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, (3, 6)).astype(np.float32))
    spec, model = env.spec, env.model
    joints = model.actuator_trnid[:, 0]
    for row in range(3):
        qpos = env.physics[row, 1 : 1 + model.nq][model.jnt_qposadr[joints]]
        qvel = env.physics[row, 1 + model.nq :][model.jnt_dofadr[joints]]
        order = rng.permutation(6)
        names = [spec.joint_names[i] for i in order] + ["gripper_joint"]
        positions, velocities = [*qpos[order], 0.3], [*qvel[order], -1.0]
        position, found = measured_by_name(names, positions, spec.joint_names)
        velocity, _ = measured_by_name(names, velocities, spec.joint_names)
        assert found.all()
        built = proprio(
            position,
            velocity,
            env.prev_action[row],
            spec.default_pose,
            spec.velocity_scale,
        )
        np.testing.assert_array_equal(built, env.observe()["proprio"][row])
    env.close()


def test_hand_worked_proprio():
    built = proprio([[1.0, 2.0]], [[10.0, -20.0]], [[0.5, -0.5]], (0.5, 2.5), 0.1)
    np.testing.assert_allclose(built, [[0.5, -0.5, 1.0, -2.0, 0.5, -0.5]])
    assert built.dtype == np.float32


def test_specs_saved_before_the_proprio_group_have_none():
    spec = make_env("reacher", EnvConfig(), 1, render=False).spec
    old = {k: v for k, v in spec.to_dict().items() if k not in ("proprio_dim", "default_pose")}
    restored = EnvSpec.from_dict(old)
    assert restored.proprio_dim == 0 and restored.default_pose == ()
    arm = make_env("ur5e_reach", EnvConfig(), 1, render=False).spec
    assert arm.proprio_dim == 18 and EnvSpec.from_dict(arm.to_dict()) == arm


def test_streaming_the_camera_and_joint_states_gives_the_training_actions():
    """Policy.act_image (the ROS node's path) on frames + joint states = Policy.act on the
    training env's observations, step after step (frames, proprio and previous action)."""
    overrides = ["env.image_size=32", "model.encoder_strides=[2, 1]", "env.randomize.enabled=false"]
    cfg = resolve("ur5e_reach", overrides=overrides)  # the nominal simulator the node streams
    env = make_env("ur5e_reach", cfg.env, 1, seed=2)
    torch.manual_seed(0)
    actor = Actor(env.spec, cfg.model)
    policy = Policy(cfg, env.spec, actor, RunningNormalizer(env.spec.state_dim), "cpu")
    model = env.model
    joints = model.actuator_trnid[:, 0]
    for _ in range(6):
        obs = env.observe()
        batched = policy.act(obs)[0]
        frame = obs["pixels"][0, -3:].transpose(1, 2, 0)
        qpos = env.physics[0, 1 : 1 + model.nq][model.jnt_qposadr[joints]]
        qvel = env.physics[0, 1 + model.nq :][model.jnt_dofadr[joints]]
        np.testing.assert_array_equal(policy.act_image(frame, (qpos, qvel)), batched)
        env.step((batched * 20.0).clip(-1, 1)[None])  # large moves: the joints matter
        policy.prev_action = env.prev_action[0].copy()
    with pytest.raises(ValueError, match="needs joint positions"):
        policy.act_image(frame)
    env.close()


def test_joint_history_pairs_a_frame_with_the_closest_state_and_refuses_bad_ones():
    history = JointHistory(("a", "b"))
    assert history.closest(0, 10)[1][0] == "joint_state_missing"
    assert history.add(0, ["a"], [1.0], [0.0])[0] == "joint_state_names"
    assert history.add(0, ["a", "b"], [1.0, 2.0], [])[0] == "joint_state_names"  # no velocity
    assert history.add(0, ["b", "a"], [np.nan, 1.0], [0.0, 0.0])[0] == "joint_state_non_finite"
    assert len(history) == 0
    assert history.add(100, ["b", "a"], [2.0, 1.0], [20.0, 10.0]) is None
    assert history.add(200, ["a", "b", "c"], [3.0, 4.0, 5.0], [0.0, 0.0, 0.0]) is None
    (position, velocity), problem = history.closest(140, 50)
    assert problem is None and position.tolist() == [1.0, 2.0] and velocity.tolist() == [10.0, 20.0]
    assert history.closest(230, 50)[0][0].tolist() == [3.0, 4.0]
    assert history.closest(400, 50) == (
        None,
        ("joint_state_stale", "closest joint state 0 ms from frame"),
    )


MS = 1_000_000


def ticks(stamps_ms: list[float], period_ms: float = 20.0) -> list[float]:
    """The stamps among ``stamps_ms`` that a TickSchedule ticks on."""
    schedule = TickSchedule(round(period_ms * MS))
    return [t for t in stamps_ms if schedule.due(round(t * MS))]


def test_a_jittery_50_hz_stream_ticks_on_every_message():
    """A late message and the catch-up after it (25, 35 ms) are both ticks (hand-worked)."""
    stamps = [0.0, 25.0, 35.0, 60.0, 80.0, 101.0, 119.0]
    assert ticks(stamps) == stamps


def test_a_500_hz_stream_ticks_every_period_after_a_phase_shift():
    """Every 2 ms: due from half a period early, the schedule then runs at 20 ms steps."""
    assert ticks([2.0 * k for k in range(51)]) == [0.0, 10.0, 30.0, 50.0, 70.0, 90.0]


def test_a_clock_going_back_or_a_pause_restarts_the_schedule():
    assert ticks([100.0, 120.0, 50.0, 60.0, 70.0]) == [100.0, 120.0, 50.0, 60.0]  # 60: 70 - 10
    assert ticks([0.0, 20.0, 200.0, 205.0, 220.0]) == [0.0, 20.0, 200.0, 220.0]
