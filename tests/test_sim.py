"""SimRobot: physical commands, episodes, training-identical images, seeded reproducibility."""

import mujoco
import numpy as np
import pytest

from sdpg_core.config import (
    EnvConfig,
    LatencyRandomization,
    PhysicsRandomization,
    RandomizeConfig,
    VisionRandomization,
)
from sdpg_core.envs.base import episode_seed
from sdpg_core.envs.registry import TASKS, make_env, register_task, task_names
from sdpg_core.envs.tasks.reacher import Reacher
from sdpg_core.obs import depth_frame
from sdpg_core.sim import (
    CommandError,
    SimRobot,
    actuator_interface,
    command_scale,
    pinhole,
)


def command_for(robot: SimRobot, action: np.ndarray) -> np.ndarray:
    """The joint command (efforts, or position targets) that the env applies for ``action``
    from the current state (the task's control, independent of SimRobot)."""
    m = robot.model
    ctrl = robot.env.task.control(action[None], robot.env.extras[:1])[0][0]
    if robot.interface == "position":
        return ctrl / m.actuator_gear[:, 0]
    return ctrl * m.actuator_gear[:, 0] * m.actuator_gainprm[:, 0]


def test_reacher_effort_commands_map_through_the_gear():
    robot = SimRobot("reacher")
    assert robot.interface == "effort" and robot.spec.joint_names == ("shoulder", "elbow")
    robot.set_command([0.025, -0.0125])
    np.testing.assert_allclose(robot.action, [0.5, -0.25])
    robot.set_command([0.2, -1.0])
    np.testing.assert_allclose(robot.action, [1.0, -1.0])  # clipped
    robot.set_command([0.025, -0.0125])
    np.testing.assert_allclose(robot.joint_state().effort, [0.025, -0.0125], atol=1e-12)
    robot.set_command([0.2, 0.0])
    np.testing.assert_allclose(robot.joint_state().effort, [0.05, 0.0], atol=1e-12)
    robot.close()


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ([0.01], "length"),
        ([0.0, 0.0, 0.0], "length"),
        ([np.nan, 0.0], "nonfinite"),
        ([0.0, np.inf], "nonfinite"),
    ],
)
def test_malformed_commands_are_refused_and_the_last_one_held(command, reason):
    robot = SimRobot("reacher")
    robot.set_command([0.01, 0.02])
    held = robot.action.copy()
    with pytest.raises(CommandError) as err:
        robot.set_command(command)
    assert err.value.reason == reason
    np.testing.assert_array_equal(robot.action, held)
    robot.close()


def model_with(actuators: str) -> mujoco.MjModel:
    """Two hinge joints driven by ``actuators`` (MJCF)."""
    xml = f"""<mujoco><worldbody><body><joint name="a" axis="0 0 1"/><geom size=".1"/>
      <body pos=".2 0 0"><joint name="b" axis="0 0 1"/><geom size=".1"/><site name="s"/></body>
      </body></worldbody><actuator>{actuators}</actuator></mujoco>"""
    return mujoco.MjModel.from_xml_string(xml)


def test_actuator_interface_is_inferred_and_mixtures_refused():
    motors = model_with('<motor joint="a" gear="2"/><motor joint="b" gear="4"/>')
    assert actuator_interface(motors) == "effort"
    np.testing.assert_allclose(command_scale(motors, "effort"), [0.5, 0.25])
    servos = model_with('<position joint="a" kp="5"/><position joint="b" kp="3" kv="1"/>')
    assert actuator_interface(servos) == "position"
    np.testing.assert_allclose(command_scale(servos, "position"), [1.0, 1.0])
    with pytest.raises(ValueError, match="share one command interface"):
        actuator_interface(model_with('<motor joint="a"/><position joint="b" kp="1"/>'))
    with pytest.raises(ValueError, match="neither a motor nor a position servo"):
        actuator_interface(model_with('<motor joint="a"/><velocity joint="b" kv="1"/>'))
    with pytest.raises(ValueError, match="does not drive a joint"):
        actuator_interface(model_with('<motor joint="a"/><motor site="s" gear="1 0 0 0 0 0"/>'))


@pytest.mark.parametrize("name", task_names())
def test_images_and_physics_equal_the_training_env(name):
    """Same seed and same actions: SimRobot renders exactly the training env's frames (on the
    steps the camera renders: every step, or every ``camera_every``)."""
    robot = SimRobot(name, seed=3)
    env = make_env(name, EnvConfig(image_size=32), 1, render=True, seed=3)
    env.reset(np.zeros(1, dtype=np.int64), seeds=[episode_seed(3, 0)])  # evaluation episode 0
    rng, every = np.random.default_rng(0), env.spec.camera_every
    for _ in range(3 * every):
        action = rng.uniform(-0.9, 0.9, robot.spec.action_dim).astype(np.float32)
        robot.set_command(command_for(robot, action))
        applied = robot.action
        np.testing.assert_allclose(applied, action, atol=1e-6)
        robot.step()
        env.step(applied[None])
        np.testing.assert_array_equal(robot.env.physics, env.physics)
        if env.steps[0] % every:
            continue
        training_frame = env.renderer.stack.latest_rgb(0)
        image = robot.image(32)  # RGB, or depth in metres (the training frame quantises it)
        if robot.spec.image == "depth":
            image = np.repeat(depth_frame(image, robot.spec.depth_range), 3, axis=2)
        np.testing.assert_array_equal(image, training_frame)
    robot.close()
    env.close()


PERTURBED = RandomizeConfig(
    vision=VisionRandomization(
        light_intensity=(0.6, 0.6), color=(-0.1, 0.1), camera_position=(0.02, 0.02), noise=(6, 6)
    ),
    physics=PhysicsRandomization(mass=(1.2, 1.2), damping=(0.8, 1.2)),
    latency=LatencyRandomization(
        action_delay=(20.0, 20.0), action_jitter=(0.0, 10.0), joint_delay=(10.0, 10.0)
    ),
)


@pytest.mark.parametrize("name", ["reacher", "ur5e_reach"])
def test_a_perturbed_sim_is_the_perturbed_training_env(name):
    """Under a perturbation set the sim's episode k draws what evaluation episode k draws:
    the same physics, images (looks and noise) and delayed joint readings step by step."""
    robot = SimRobot(name, seed=3, randomize=PERTURBED)
    env = make_env(name, EnvConfig(image_size=32, randomize=PERTURBED), 1, render=True, seed=3)
    env.reset(np.zeros(1, dtype=np.int64), seeds=[episode_seed(3, 0)])
    np.testing.assert_array_equal(robot.env.params, env.params)
    rng = np.random.default_rng(0)
    for _ in range(4):
        action = rng.uniform(-0.9, 0.9, robot.spec.action_dim).astype(np.float32)
        robot.set_command(command_for(robot, action))
        applied = robot.action
        robot.step()
        env.step(applied[None])
        np.testing.assert_array_equal(robot.env.physics, env.physics)
        np.testing.assert_array_equal(robot.image(32), env.renderer.stack.latest_rgb(0))
        sensed = env.latency.sensed[0, 1 + env.joint_qpos]  # 10 ms (2 substeps) ago
        np.testing.assert_array_equal(robot.joint_state().position, sensed)
        assert not np.array_equal(sensed, env.physics[0, 1 + env.joint_qpos])
    robot.close()
    env.close()


def test_the_sim_refuses_camera_timing_it_does_not_simulate():
    late = RandomizeConfig(latency=LatencyRandomization(camera_delay=(1.0, 1.0)))
    with pytest.raises(ValueError, match="camera_delay"):
        SimRobot("reacher", randomize=late)


def test_episodes_auto_reset_with_return_and_success():
    robot = SimRobot("reacher", seed=5, episode_steps=4)
    reference = make_env("reacher", EnvConfig(episode_steps=4), 1, render=False, seed=5)
    reference.reset(np.zeros(1, dtype=np.int64), seeds=[episode_seed(5, 0)])
    robot.set_command([0.02, -0.01])
    total = 0.0
    for step in range(4):
        action = robot.action.copy()
        ended = robot.step()
        result = reference.step(action[None])
        total += float(result.reward[0])
        assert (ended is None) == (step < 3)
    assert ended.index == 0 and ended.steps == 4 and ended.success is False
    assert ended.episode_return == pytest.approx(total)
    reference.reset(np.array([0]), seeds=[episode_seed(5, 1)])  # evaluation episode 1
    np.testing.assert_array_equal(robot.env.physics, reference.physics)
    assert robot.episode == 1 and robot.joint_state().effort.tolist() == [0.0, 0.0]
    # Target on the fingertip, arm at rest and unpowered: every step is on target.
    robot.env.extras[0] = robot.env.task.fingertip(robot.env.physics[:1, 1:3])[0]
    episodes = [robot.step() for _ in range(4)]
    assert episodes[-1].success is True and episodes[-1].episode_return > 0
    assert episodes[-1].as_dict() == {
        "episode": 1,
        "return": episodes[-1].episode_return,
        "success": True,
        "steps": 4,
        "metrics": {},  # the reacher has no episode metrics
    }
    robot.close()
    reference.close()


def run(robot: SimRobot, steps: int) -> list[np.ndarray]:
    """Joint positions over ``steps`` steps of a fixed command (crossing an episode end)."""
    robot.set_command([0.03, -0.02])
    out = []
    for _ in range(steps):
        robot.step()
        out.append(robot.joint_state().position)
    return out


def test_seeded_reproducibility():
    a, b, c = (SimRobot("reacher", seed=s, episode_steps=3) for s in (7, 7, 8))
    first = run(a, 7)
    np.testing.assert_array_equal(first, run(b, 7))
    np.testing.assert_array_equal(a.image(32), b.image(32))
    assert not np.allclose(first, run(c, 7))
    for robot in (a, b, c):
        robot.close()


def test_camera_intrinsics_project_the_target_onto_its_pixels():
    robot = SimRobot("reacher")
    size = 96
    robot.env.physics[0, 1:3] = [0.0, 0.0]  # arm along +x, away from the target
    target = np.array([-0.05, 0.15])
    robot.env.extras[0] = target
    image = robot.image(size).astype(int)
    red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
    rows, cols = np.nonzero(red)
    fx, fy, cx, cy = pinhole(robot.fovy, size, size)
    depth = 0.75 - 0.02  # top camera height minus the target centre height
    assert fx == fy and cx == cy == (size - 1) / 2
    assert cols.mean() == pytest.approx(cx + fx * target[0] / depth, abs=0.75)
    assert rows.mean() == pytest.approx(cy - fy * target[1] / depth, abs=0.75)
    robot.close()


@pytest.fixture
def position_task():
    """A reacher variant driven by position servos, registered for one test."""

    class PositionReacher(Reacher):
        def build_spec(self) -> mujoco.MjSpec:
            spec = super().build_spec()
            for actuator in spec.actuators:
                actuator.set_to_position(kp=0.05, kv=0.01)
                actuator.gear = [1, 0, 0, 0, 0, 0]
                actuator.ctrlrange = [-3, 3]
            return spec

    register_task("test_position_reacher", "test only")(PositionReacher)
    yield "test_position_reacher"
    TASKS.pop("test_position_reacher")
    TASKS.pop("test_position_reacher_state")


def test_position_servo_robot_holds_then_tracks(position_task):
    robot = SimRobot(position_task, seed=1, episode_steps=100)
    assert robot.interface == "position"
    start = robot.joint_state().position
    for _ in range(10):
        robot.step()
    np.testing.assert_allclose(robot.joint_state().position, start, atol=1e-3)  # held
    goal = np.array([start[0] + 0.4, start[1] - 0.3])
    robot.set_command(goal)
    for _ in range(50):
        robot.step()
    assert np.abs(robot.joint_state().position - goal).max() < 0.1
    robot.close()


def test_sim_episodes_replay_the_evaluation_episodes():
    batch = make_env("reacher", EnvConfig(), 3, render=False, seed=99)
    batch.reset(np.arange(3), seeds=[episode_seed(7, k) for k in range(3)])
    robot = SimRobot("reacher", seed=7)
    for k in range(3):
        np.testing.assert_array_equal(robot.env.physics[0], batch.physics[k])
        np.testing.assert_array_equal(robot.env.extras[0], batch.extras[k])
        robot.reset()
    assert not np.array_equal(batch.extras[0], batch.extras[1])
    robot.close()


def test_the_arm_follows_position_commands_by_bounded_joint_deltas():
    """A position command farther than one step away moves the targets by max_delta per step."""
    robot = SimRobot("ur5e_reach", seed=1)
    assert robot.interface == "position"
    task, start = robot.env.task, robot.env.extras[0, 3:].copy()
    np.testing.assert_array_equal(robot.action, np.zeros(6))  # no command: targets kept
    robot.set_command(start + 1.0)
    np.testing.assert_allclose(robot.action, np.ones(6))
    robot.step()
    np.testing.assert_allclose(robot.env.extras[0, 3:], start + task.max_delta, atol=1e-6)
    robot.set_command(start + task.max_delta + 0.01)
    np.testing.assert_allclose(robot.action, np.full(6, 0.2), atol=1e-9)
    robot.close()


def test_the_arm_camera_is_its_urdf_optical_frame():
    """Images name the URDF's camera_color_optical_frame, and a point projects through that
    frame's pose (REP-103: z forward, x right, y down) with the published intrinsics onto the
    pixel where MuJoCo renders it."""
    robot = SimRobot("ur5e_reach", seed=0)
    assert robot.camera_frame == "camera_color_optical_frame"
    assert SimRobot("reacher").camera_frame == "camera"
    env, size = robot.env, 96
    target = np.array([0.05, -0.55, 0.30])
    env.extras[0, :3] = target
    image = robot.image(size).astype(int)
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
    rows, cols = np.nonzero(red)
    data = mujoco.MjData(robot.model)
    data.qpos[:] = env.physics[0, 1 : 1 + robot.model.nq]
    mujoco.mj_kinematics(robot.model, data)
    frame = data.body("camera_color_optical_frame")
    x, y, z = frame.xmat.reshape(3, 3).T @ (target - frame.xpos)
    fx, fy, cx, cy = pinhole(robot.fovy, size, size)
    assert z > 0 and red.sum() > 5
    assert cols.mean() == pytest.approx(cx + fx * x / z, abs=1.0)
    assert rows.mean() == pytest.approx(cy + fy * y / z, abs=1.0)
    robot.close()


def test_the_arm_wrist_camera_option_looks_along_tool0():
    """``env.camera=wrist``: a camera on the flange (URDF wrist_camera_optical_frame) that sees
    a point straight ahead of tool0 at its image centre."""
    env = make_env("ur5e_reach", EnvConfig(camera="wrist", image_size=64), 1, seed=0)
    for _ in range(20):  # settle under gravity: the camera's pose at the render is this one
        env.step(np.zeros((1, 6), np.float32))
    data = mujoco.MjData(env.model)
    data.qpos[:] = env.physics[0, 1 : 1 + env.model.nq]
    mujoco.mj_kinematics(env.model, data)
    frame = data.body("wrist_camera_optical_frame")
    forward = frame.xmat.reshape(3, 3)[:, 2]
    np.testing.assert_allclose(forward, data.body("tool0").xmat.reshape(3, 3)[:, 2], atol=1e-9)
    env.extras[0, :3] = frame.xpos + 0.3 * forward
    env.step(np.zeros((1, 6), np.float32))  # renders the new target (the arm holds still)
    image = env.observe()["pixels"][0, -3:].transpose(1, 2, 0).astype(int)
    rows, cols = np.nonzero((image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80))
    assert len(rows) > 20 and env.spec.camera == "wrist"
    assert rows.mean() == pytest.approx(31.5, abs=1.5) and cols.mean() == pytest.approx(
        31.5, abs=1.5
    )
    env.close()
