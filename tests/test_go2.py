"""The Go2-class quadruped: model from the URDF, standing, IMU = training observation, rewards."""

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from sdpg_core.config import EnvConfig
from sdpg_core.envs.kinematics import projected_gravity
from sdpg_core.envs.registry import get_task, make_env
from sdpg_core.envs.tasks import go2
from sdpg_core.obs import depth_frame, proprio
from sdpg_core.share import urdf_file
from sdpg_core.sim import SimRobot, pinhole


def test_the_model_is_the_urdf_with_its_names_masses_and_limits():
    urdf = ET.parse(urdf_file("go2.urdf")).getroot()
    revolute = [j for j in urdf.iter("joint") if j.get("type") == "revolute"]
    assert tuple(j.get("name") for j in revolute) == go2.JOINTS
    env = make_env("go2_walk", EnvConfig(), 1)
    model = env.model
    assert env.spec.joint_names == go2.JOINTS
    assert sum(model.body_mass) == pytest.approx(15.017, abs=1e-3)  # 15.02 kg published
    for joint in revolute:
        limit = joint.find("limit")
        low, high = float(limit.get("lower")), float(limit.get("upper"))
        np.testing.assert_allclose(model.joint(joint.get("name")).range, [low, high])
        actuator = model.actuator(joint.get("name"))
        effort = float(limit.get("effort"))
        np.testing.assert_allclose(actuator.forcerange, [-effort, effort])
    for name in ("imu", "camera_depth_optical_frame", "FR_foot"):
        model.body(name)  # frames the ROS side names exist in the model
    assert model.sensor("imu_gyro").dim[0] == 3 and model.sensor("imu_framequat").dim[0] == 4
    env.close()


def test_standing_on_the_default_targets_for_ten_seconds():
    """Zero actions (PD targets = the standing pose): no fall in 10 s, level, all feet down."""
    env = make_env("go2_walk", EnvConfig(), 4, seed=1)
    for _ in range(500):  # 50 Hz
        result = env.step(np.zeros((4, 12), dtype=np.float32))
        assert not result.terminated.any()
    base_height = env.physics[:, 3]
    assert (base_height > 0.24).all() and (base_height < 0.33).all()
    gravity = projected_gravity(env.physics[:, 4:8])
    assert (gravity[:, 2] < -0.99).all()
    assert env.task.feet_contact(env.physics[:, 1 : 1 + env.model.nq]).all()
    env.close()


def test_the_imu_sensors_measure_what_the_policy_is_given():
    """MuJoCo's IMU (gyro, orientation: what sim_backend publishes) equals the task's imu_state,
    whose projected gravity the proprio group carries, on a moving robot."""
    env = make_env("go2_walk", EnvConfig(), 1, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, (1, 12)).astype(np.float32))
    model, data = env.model, mujoco.MjData(env.model)
    mujoco.mj_setState(model, data, env.physics[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mujoco.mj_forward(model, data)
    qpos, qvel = data.qpos[None], data.qvel[None]
    quat, gyro = env.task.imu_state(qpos, qvel)
    np.testing.assert_allclose(data.sensor("imu_gyro").data, gyro[0], atol=1e-9)
    sensed = data.sensor("imu_framequat").data
    np.testing.assert_allclose(np.abs(sensed @ quat[0]), 1.0, atol=1e-9)  # same rotation
    group = env.observe()["proprio"][0]
    assert len(group) == env.spec.proprio_dim == 45
    np.testing.assert_allclose(group[:3], 0.25 * gyro[0], atol=1e-6)
    np.testing.assert_allclose(group[3:6], projected_gravity(sensed[None])[0], atol=1e-6)
    np.testing.assert_allclose(group[6:9], env.extras[0, :3] * [2.0, 2.0, 0.25], atol=1e-6)
    env.close()


def test_hand_worked_proprio_with_imu_and_command():
    """A level robot turned 90 degrees in yaw, spinning at 1 rad/s, commanded (0.5, 0, 0.4)."""
    quat = np.array([[np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]])
    group = proprio(
        np.array([[0.2, 0.1]]),
        np.array([[2.0, -4.0]]),
        np.array([[0.5, -0.5]]),
        (0.0, 0.1),
        0.05,
        (quat, np.array([[0.0, 0.0, 1.0]])),
        np.array([[0.5, 0.0, 0.4]]),
    )
    expected = [0, 0, 0.25, 0, 0, -1, 1.0, 0, 0.1, 0.2, 0.0, 0.1, -0.2, 0.5, -0.5]
    np.testing.assert_allclose(group[0], expected, atol=1e-7)


def test_feet_air_time_and_velocity_sums_advance_with_the_steps():
    """A foot in the air for 0.3 s: its air time counts 0.02 s per step and restarts on landing;
    the velocity sums give the success verdict (hand-worked)."""
    task = make_env("go2_walk", EnvConfig(), 1).task
    qpos = np.zeros((1, 19))
    qpos[0, 2], qpos[0, 3] = 0.5, 1.0  # the whole robot in the air, level
    qpos[0, 7:] = go2.STAND
    extras = np.zeros((1, 25))
    extras[0, :3] = [0.5, 0.0, 0.0]
    qvel = np.zeros((1, 18))
    qvel[0, 0] = 0.45  # forward at 0.45 m/s (base frame = world frame, level)
    for _ in range(15):
        extras = task.advance(qpos, qvel, extras, np.zeros((1, 12)))
    np.testing.assert_allclose(extras[0, 15:19], 0.3)
    np.testing.assert_allclose(extras[0, 23:25], [15 * 0.45, 15])
    np.testing.assert_allclose(task.episode_metrics(qpos, qvel, extras)["velocity"], [0.45])
    assert task.success(qpos, qvel, extras)[0]  # 0.45 within 20% of 0.5
    extras[0, 23] = 15 * 0.39
    assert not task.success(qpos, qvel, extras)[0]


def test_variants_and_a_fixed_command():
    assert [get_task(n).obs_mode for n in ("go2_walk", "go2_walk_depth", "go2_walk_state")] == [
        "proprio",
        "pixels",
        "state",
    ]
    env = make_env("go2_walk", EnvConfig(command=(0.5, 0.0, 0.0)), 3, seed=4)
    np.testing.assert_array_equal(env.extras[:, :3], [[0.5, 0.0, 0.0]] * 3)
    env.close()
    with pytest.raises(ValueError, match=r"env\.command: go2_walk takes 3"):
        make_env("go2_walk", EnvConfig(command=(0.5,)), 1)
    with pytest.raises(ValueError, match=r"env\.command: reacher takes 0"):
        make_env("reacher", EnvConfig(command=(0.5, 0.0, 0.0)), 1)


def test_the_head_depth_camera_gives_58_by_87_frames_as_the_sim_publishes():
    """env.image_width: the parkour lineage's 58 x 87 depth frames (vertical FOV 58 degrees,
    so about 80 degrees across); the sim renders the metres the frames are made of."""
    cfg = EnvConfig(image_size=58, image_width=87, frame_stack=1)
    env = make_env("go2_walk_depth", cfg, 1, seed=5)
    assert env.spec.pixel_shape == (1, 58, 87) and env.spec.image == "depth"
    frame = env.observe()["pixels"][0, 0]
    robot = SimRobot("go2_walk_depth", seed=5)
    robot.env.set_state(env.get_state(np.zeros(1, dtype=np.int64)), np.zeros(1, dtype=np.int64))
    metres = robot.image(58, 87)
    assert metres.shape == (58, 87)
    np.testing.assert_array_equal(depth_frame(metres, env.spec.depth_range)[..., 0], frame)
    assert frame[-1].max() < 255 and frame[0].min() == 255  # floor below, nothing at the top
    fx, fy, cx, cy = pinhole(robot.fovy, 87, 58)
    assert fx == fy and (cx, cy) == (43.0, 28.5)
    assert np.degrees(2 * np.arctan(43.5 / fx)) == pytest.approx(79.5, abs=0.5)
    robot.close()
    env.close()


def test_terrain_obstacles_are_per_env_state_seen_by_the_depth_camera_only():
    """go2_terrain: each env's obstacle is part of its state (an auxiliary synced to its
    nominal has the same one), the ground under a foot on it is its top, the depth frame shows
    it, and the proprio group does not."""
    cfg = EnvConfig(image_size=58, image_width=87, frame_stack=1)
    env = make_env("go2_terrain", cfg, 2, seed=3)
    task, ids = env.task, np.arange(2)
    qpos = env.physics[:, 1 : 1 + env.model.nq].copy()
    kind = int(env.extras[0, 26])
    column = task.obstacle_qpos[kind]
    top = qpos[0, column + 2] + 0.25
    assert 0.05 <= top <= 0.15
    above = np.array([[[qpos[0, column], 0.0]]])  # the obstacle's centre
    assert task.ground(qpos[:1], above)[0, 0] == pytest.approx(top)
    beside = above + np.array([0.0, 2.0])
    assert task.ground(qpos[:1], beside)[0, 0] == 0.0  # beside it: the floor
    with_obstacle = env.observe()
    state = env.get_state(ids)
    state.physics[1], state.extras[1] = state.physics[0], state.extras[0]  # the same robot
    state.physics[1, 1 + column : 1 + column + 3] = [-30.0, 0.0, -1.0]  # env 1: no obstacle
    env.set_state(state, ids)
    env._restart_frames(ids)
    without = env.observe()
    assert np.abs(without["pixels"][0].astype(int) - without["pixels"][1]).max() > 20
    np.testing.assert_array_equal(without["proprio"][0], without["proprio"][1])
    assert not np.array_equal(with_obstacle["state"][0, -2:], without["state"][1, -2:])
    env.copy_state(np.array([0]), np.array([1]))  # the SDPG state sync
    np.testing.assert_array_equal(env.physics[0], env.physics[1])
    env.close()


def test_the_depth_camera_renders_at_10_hz_and_holds_frames_in_between():
    """camera_every 5 at 50 Hz: a new frame on steps 5, 10, ... of each episode, none between."""
    env = make_env("go2_walk_depth", EnvConfig(image_size=32, frame_stack=2), 1, seed=6)
    assert env.spec.camera_every == 5
    rng, frames = np.random.default_rng(0), [env.observe()["pixels"][0].copy()]
    for _ in range(10):
        env.step(rng.uniform(-1, 1, (1, 12)).astype(np.float32))
        frames.append(env.observe()["pixels"][0].copy())
    for step in (1, 2, 3, 4, 6, 7, 8, 9):
        np.testing.assert_array_equal(frames[step], frames[step - 1])
    for step in (5, 10):
        assert not np.array_equal(frames[step], frames[step - 1])
        np.testing.assert_array_equal(frames[step][0], frames[step - 1][1])  # the stack shifted
    env.close()


def test_evaluation_and_the_sim_report_the_mean_velocity_along_the_command():
    """Standing under a 0.5 m/s command: ``sdpg eval``'s velocity_mean and a SimRobot episode's
    ``velocity`` metric are the same mean of the velocity along the command, near zero."""
    from sdpg_core.evaluate import evaluate

    env = make_env("go2_walk", EnvConfig(episode_steps=50), 1)
    env.close()

    class Standing:  # zero actions: the PD targets are the standing pose
        cfg, spec = type("Cfg", (), {"env": EnvConfig(episode_steps=50)})(), env.spec

        def act(self, obs):
            return np.zeros((len(obs["state"]), 12), dtype=np.float32)

    result = evaluate(Standing(), 2, command=(0.5, 0.0, 0.0))
    assert abs(result["velocity_mean"]) < 0.05 and result["success_rate"] == 0.0
    robot = SimRobot("go2_walk", seed=12345, episode_steps=50)
    robot.set_task_command(np.array([0.5, 0.0, 0.0]))
    episode = None
    while episode is None:
        episode = robot.step()
    assert set(episode.metrics) == {"velocity"} and abs(episode.metrics["velocity"]) < 0.05
    assert episode.as_dict()["metrics"] == episode.metrics
