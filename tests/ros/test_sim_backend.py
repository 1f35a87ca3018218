"""sim_backend over real rclpy: the topics of a robot with ros2_control and a camera."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, Header, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sdpg_core.config import load_perturbations
from sdpg_core.sim import SimRobot
from sdpg_ros.common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, ParameterError, stamp_to_ns
from sdpg_ros.image_conversion import to_numpy
from sdpg_ros.sim_backend import Settings, SimBackend
from tests.ros.helpers import Collector, make_checkpoint


def backend(graph, **params) -> SimBackend:
    """A sim_backend in ``graph`` with fast defaults overridden by ``params``."""
    values = {"image_size": 32, "real_time_factor": 20.0, **params}
    overrides = [Parameter(k, value=v) for k, v in values.items()]
    return graph.add(SimBackend(context=graph.context, parameter_overrides=overrides))


PERTURB = Path(__file__).resolve().parents[2] / "config" / "perturb" / "reacher.yaml"


def probe(graph) -> Node:
    """A plain test node in ``graph``."""
    return graph.add(Node("probe", context=graph.context))


def test_publishes_camera_joint_states_and_clock(graph):
    sim = backend(graph)
    node = probe(graph)
    images = Collector(node, Image, "camera/image_raw", SENSOR_QOS)
    infos = Collector(node, CameraInfo, "camera/camera_info", SENSOR_QOS)
    joints = Collector(node, JointState, "joint_states", RELIABLE_QOS)
    clock = Collector(node, Clock, "/clock", RELIABLE_QOS)
    assert graph.spin_until(lambda: min(len(images), len(infos), len(joints), len(clock)) >= 3)
    image = images.last
    assert (image.encoding, image.height, image.width, image.header.frame_id) == (
        "rgb8",
        32,
        32,
        "camera",
    )
    assert to_numpy(image).std() > 0  # a real rendering, not a blank frame
    stamps = {stamp_to_ns(m.header.stamp) for m in infos.messages}
    assert stamp_to_ns(image.header.stamp) in stamps
    info = infos.last
    focal = 16 / math.tan(math.radians(sim.robot.fovy) / 2)
    np.testing.assert_allclose(info.k, [focal, 0, 15.5, 0, focal, 15.5, 0, 0, 1])
    assert list(joints.last.name) == ["shoulder", "elbow"] and len(joints.last.effort) == 2
    ticks = [stamp_to_ns(m.clock) for m in clock.messages]
    assert all(b - a == 40_000_000 for a, b in itertools.pairwise(ticks))
    assert sim.counters.as_dict()["frames"] >= 3


def test_effort_command_moves_the_joints_and_bad_ones_are_ignored(graph):
    sim = backend(graph, episode_steps=1000)
    node = probe(graph)
    joints = Collector(node, JointState, "joint_states", RELIABLE_QOS)
    pub = node.create_publisher(Float64MultiArray, "effort_controller/commands", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(joints) >= 2 and pub.get_subscription_count() == 1)
    rest = joints.last
    assert not np.any(rest.velocity) and not np.any(rest.effort)  # unpowered arm at rest
    command = [0.05, -0.05]
    pub.publish(Float64MultiArray(data=command))
    assert graph.spin_until(lambda: sim.counters.as_dict().get("commands") == 1)
    held = sim.robot.action.copy()
    pub.publish(Float64MultiArray(data=[0.05]))
    pub.publish(Float64MultiArray(data=[float("nan"), 0.0]))
    assert graph.spin_until(lambda: sim.counters.as_dict().get("rejected") == 2)
    counts = sim.counters.as_dict()
    assert counts["rejected/length"] == 1 and counts["rejected/nonfinite"] == 1
    np.testing.assert_array_equal(sim.robot.action, held)

    def powered() -> list[JointState]:
        return [m for m in joints.messages if np.allclose(m.effort, command, atol=1e-9)]

    assert graph.spin_until(lambda: len(powered()) >= 3)
    first = powered()[0]  # one control step after the command, starting from rest
    assert np.dot(first.velocity, command) > 0  # the efforts do positive work
    assert np.abs(np.subtract(powered()[-1].position, rest.position)).max() > 1e-3


def test_trajectory_commands_are_mapped_by_joint_name(graph):
    sim = backend(graph, episode_steps=1000, trajectory_topic="effort_controller/joint_trajectory")
    node = probe(graph)
    pub = node.create_publisher(JointTrajectory, "effort_controller/joint_trajectory", RELIABLE_QOS)
    assert graph.spin_until(lambda: pub.get_subscription_count() == 1)
    point = JointTrajectoryPoint(effort=[-0.025, 0.0125])  # elbow, shoulder
    pub.publish(JointTrajectory(joint_names=["elbow", "shoulder"], points=[point]))
    pub.publish(JointTrajectory(joint_names=["elbow", "wrist"], points=[point]))
    assert graph.spin_until(lambda: sim.counters.as_dict().get("rejected/trajectory") == 1)
    assert sim.counters.as_dict()["commands"] == 1
    np.testing.assert_allclose(sim.robot.action, [0.25, -0.5])


def test_reset_service_starts_a_new_episode(graph):
    sim = backend(graph, episode_steps=1000)
    node = probe(graph)
    client = node.create_client(Trigger, "sim_backend/reset")
    assert graph.spin_until(lambda: client.service_is_ready() and sim.robot.total_steps > 0)
    before = sim.robot.joint_state().position
    future = client.call_async(Trigger.Request())
    assert graph.spin_until(future.done)
    assert future.result().success and "episode 1" in future.result().message
    assert sim.robot.episode == 1 and sim.counters.as_dict()["resets"] == 1
    assert not np.allclose(sim.robot.joint_state().position, before)


def test_episode_start_precedes_the_first_frame_of_each_episode(graph):
    sim = backend(graph, episode_steps=3)
    node = probe(graph)
    starts = Collector(node, Header, "episode_start", RELIABLE_QOS)
    images = Collector(node, Image, "camera/image_raw", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(starts) >= 3 and len(images) >= 7)
    image_ns = [stamp_to_ns(m.header.stamp) for m in images.messages]
    start_ns = [stamp_to_ns(m.stamp) for m in starts.messages[:3]]
    assert start_ns == image_ns[0:7:3] and starts.last.frame_id == "camera"
    assert sim.counters.as_dict()["episodes"] >= 2


def test_reset_publishes_the_initial_state_of_the_next_episode(graph):
    sim = backend(graph, episode_steps=1000, real_time_factor=5.0)
    node = probe(graph)
    starts = Collector(node, Header, "episode_start", RELIABLE_QOS)
    joints = Collector(node, JointState, "joint_states", RELIABLE_QOS)
    client = node.create_client(Trigger, "sim_backend/reset")
    assert graph.spin_until(lambda: client.service_is_ready() and len(starts) == 1)
    future = client.call_async(Trigger.Request())
    assert graph.spin_until(lambda: future.done() and len(starts) == 2)
    restart = stamp_to_ns(starts.last.stamp)
    assert graph.spin_until(lambda: stamp_to_ns(joints.last.header.stamp) >= restart)
    first = next(m for m in joints.messages if stamp_to_ns(m.header.stamp) == restart)
    initial = SimRobot("reacher", seed=sim.seed)
    initial.reset()  # episode 1's initial state
    np.testing.assert_allclose(first.position, initial.joint_state().position)
    initial.close()


def test_a_perturbation_set_is_what_the_sim_simulates(graph):
    """perturb / perturb_set: the sim's episodes draw from that held-out set (here 40 ms of
    action delay): what the same set's SimRobot draws for episode 0, from the same state."""
    sim = backend(graph, perturb=str(PERTURB), perturb_set="latency_40ms")
    node = probe(graph)
    joints = Collector(node, JointState, "joint_states", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(joints) >= 1)
    twin = SimRobot("reacher", seed=sim.seed, randomize=load_perturbations(PERTURB)["latency_40ms"])
    np.testing.assert_allclose(joints.messages[0].position, twin.joint_state().position)
    assert sim.robot.env.latency.ctrl_queue.shape[1] == 4  # 40 ms = 4 substeps of 10 ms
    np.testing.assert_array_equal(sim.robot.env.params, twin.env.params)  # the same draws
    twin.close()


def test_task_status_at_each_episode_end(graph):
    sim = backend(graph, episode_steps=3)
    node = probe(graph)
    status = Collector(node, DiagnosticStatus, "task_status", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(status) >= 2)
    first, second = status.messages[:2]
    values = {kv.key: kv.value for kv in first.values}
    assert first.name == "task_status" and values["task"] == "reacher" and values["steps"] == "3"
    episode = sim.episodes[int(values["episode"])]
    assert values["success"] == ("true" if episode["success"] else "false")
    assert float(values["return"]) == pytest.approx(episode["return"], rel=1e-5)
    assert {kv.key: kv.value for kv in second.values}["episode"] == str(episode["episode"] + 1)
    assert sim.counters.as_dict()["episodes"] == len(sim.episodes) >= 2


def test_sim_time_stamps_and_camera_rate(graph):
    backend(graph, use_sim_time=True, camera_rate_hz=12.5)
    node = probe(graph)
    images = Collector(node, Image, "camera/image_raw", SENSOR_QOS)
    joints = Collector(node, JointState, "joint_states", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(images) >= 3)
    stamps = [stamp_to_ns(m.header.stamp) for m in images.messages]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps and all(g > 0 and g % 80_000_000 == 0 for g in gaps)  # every 2nd step

    def joint_stamps():
        return {stamp_to_ns(m.header.stamp) for m in joints.messages}

    assert graph.spin_until(lambda: stamps[-1] in joint_stamps())
    assert all(t % 40_000_000 == 0 for t in joint_stamps())


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"real_time_factor": 0.0}, "real_time_factor"),
        ({"task": "nope"}, "task"),
        ({"image_size": 0}, "image_size"),
        ({"command_topic": "bad topic"}, "command_topic"),
        ({"camera_rate_hz": -1.0}, "camera_rate_hz"),
        ({"checkpoint": "/nonexistent.pt"}, "checkpoint"),
        ({"checkpoint_topic": "bad topic"}, "checkpoint_topic"),
        ({"perturb": "/nonexistent.yaml", "perturb_set": "weak_heavy"}, "perturb"),
        ({"perturb": str(PERTURB)}, "perturb_set"),
        ({"perturb": str(PERTURB), "perturb_set": "nope"}, "perturb_set"),
    ],
)
def test_invalid_parameters_are_named(graph, params, name):
    with pytest.raises(ParameterError, match=f"parameter '{name}'") as raised:
        SimBackend(
            context=graph.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
        )
    # the traceback still references the node: only an explicit destroy takes it off the graph
    assert "sim_backend" not in probe(graph).get_node_names(), raised.value


def test_the_checkpoint_sets_task_camera_size_and_action_repeat(graph, tmp_path):
    path = make_checkpoint(tmp_path / "p.pt", image_size=40, overrides=("env.action_repeat=2",))
    sim = backend(graph, checkpoint=str(path), task="cartpole_swingup", image_size=64)
    images = Collector(probe(graph), Image, "camera/image_raw", SENSOR_QOS)
    assert graph.spin_until(lambda: len(images) >= 2)
    assert sim.settings == Settings("reacher", 40, 2)  # the checkpoint's, not the parameters'
    assert (images.last.height, images.last.width) == (40, 40)
    once = SimRobot("reacher")  # one control step per command
    assert sim.robot.spec.control_dt == pytest.approx(2 * once.spec.control_dt)
    once.close()


def test_in_a_training_session_the_sim_starts_on_the_first_checkpoint(graph, tmp_path):
    """No sim until a checkpoint is announced; later ones with its settings are followed, one
    with another camera size is refused (the running policy node refuses that swap too)."""
    first = make_checkpoint(tmp_path / "first.pt", image_size=40)
    same = make_checkpoint(tmp_path / "same.pt", image_size=40, seed=1)
    other = make_checkpoint(tmp_path / "other.pt", image_size=48)
    sim = backend(graph, checkpoint_topic="trainer/checkpoint")
    node = probe(graph)
    images = Collector(node, Image, "camera/image_raw", SENSOR_QOS)
    paths = node.create_publisher(String, "trainer/checkpoint", LATCHED_QOS)
    count = lambda key: sim.counters.as_dict().get(key, 0)  # noqa: E731

    def announce(path, key: str, total: int) -> None:
        paths.publish(String(data=str(path)))
        assert graph.spin_until(lambda: count(key) == total), (path, sim.counters.as_dict())

    announce(tmp_path / "missing.pt", "checkpoints_refused", 1)
    assert sim.robot is None and node.count_publishers("camera/image_raw") == 0
    announce(first, "checkpoints", 1)
    assert graph.spin_until(lambda: len(images) >= 2)
    assert (images.last.height, sim.settings) == (40, Settings("reacher", 40, 1))
    announce(same, "checkpoints", 2)
    announce(other, "checkpoints_refused", 2)
    assert sim.settings.image_size == 40 and images.last.height == 40
