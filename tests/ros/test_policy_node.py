"""policy_node over real rclpy: actions equal the training code's, bad input, hot reload."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from sdpg_core import checkpoint
from sdpg_core.policy import Policy
from sdpg_ros.common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, ParameterError, stamp_to_ns
from sdpg_ros.image_conversion import to_msg
from sdpg_ros.policy_node import PolicyNode
from sdpg_ros.sim_backend import SimBackend
from tests.ros.helpers import Collector, make_checkpoint

SIZE = 32


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two tiny policies with different weights, one with NaN weights, one whose finite weights
    give NaN actions, one whose weights do not fit its config, and policies that do not fit a
    running 32 px reacher policy."""
    folder = tmp_path_factory.mktemp("checkpoints")
    a = make_checkpoint(folder / "a.pt", seed=0, image_size=SIZE)
    data = checkpoint.load(a)
    data["config"]["model"]["encoder_channels"] = 8  # the weights have 4
    return {
        "mismatched": checkpoint.save(data, folder / "mismatched.pt"),
        "a": a,
        "b": make_checkpoint(folder / "b.pt", seed=1, image_size=SIZE),
        "nan": make_checkpoint(folder / "nan.pt", image_size=SIZE, nan=True),
        "overflow": make_checkpoint(folder / "overflow.pt", image_size=SIZE, overflow=True),
        "48px": make_checkpoint(folder / "48px.pt", image_size=48),
        "cartpole": make_checkpoint(
            folder / "cartpole.pt", image_size=SIZE, task="cartpole_swingup"
        ),
        "arm": make_checkpoint(folder / "arm.pt", image_size=SIZE, task="ur5e_reach"),
    }


class Harness:
    """A policy node plus a test node that sends frames and collects actions."""

    def __init__(self, graph, checkpoint, **params) -> None:
        self.graph = graph
        overrides = [Parameter("checkpoint", value=str(checkpoint))]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        self.node = graph.add(PolicyNode(context=graph.context, parameter_overrides=overrides))
        self.probe = graph.add(Node("probe", context=graph.context))
        self.actions = Collector(self.probe, JointState, "policy/action", RELIABLE_QOS)
        camera_qos = RELIABLE_QOS if params.get("image_reliability") == "reliable" else SENSOR_QOS
        self.images = self.probe.create_publisher(Image, "camera/image_raw", camera_qos)
        assert graph.spin_until(
            lambda: (
                self.images.get_subscription_count() == 1
                and self.node.action_pub.get_subscription_count() == 1
            )
        )

    def count(self, key: str) -> int:
        """A counter of the node."""
        return self.node.counters.as_dict().get(key, 0)

    def send(self, msg: Image, age_s: float = 0.0) -> Image:
        """Publish ``msg`` stamped ``age_s`` seconds ago and wait until the node handled it."""
        now = self.probe.get_clock().now().nanoseconds - int(age_s * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        handled = self.count("actions") + self.count("rejected")
        self.images.publish(msg)
        assert self.graph.spin_until(
            lambda: (
                self.count("actions") + self.count("rejected") > handled
                and len(self.actions) == self.count("actions")
            )
        )
        return msg

    def act(self, image: np.ndarray) -> np.ndarray:
        """Send a good frame and return the action it produced."""
        before = len(self.actions)
        msg = self.send(to_msg(image))
        assert len(self.actions) == before + 1
        action = self.actions.last
        assert stamp_to_ns(action.header.stamp) == stamp_to_ns(msg.header.stamp)
        return np.array(action.position)


def frames(count: int, size: int = SIZE, seed: int = 0, width: int = 0) -> list[np.ndarray]:
    """Random RGB frames [size, width or size, 3]."""
    rng = np.random.default_rng(seed)
    shape = (size, width or size, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def reference(checkpoint, images) -> list[np.ndarray]:
    """Actions of the training code's Policy on the same frame sequence."""
    policy = Policy.load(checkpoint)
    return [policy.act_image(image) for image in images]


def test_actions_equal_the_training_policy_and_carry_the_image_stamp(graph, checkpoints):
    h = Harness(graph, checkpoints["a"])
    images = frames(4)
    bgr = to_msg(images[3])
    bgr.encoding = "bgr8"
    bgr.data = np.ascontiguousarray(images[3][..., ::-1]).tobytes()
    got = [h.act(image) for image in images[:3]]
    h.send(bgr)
    got.append(np.array(h.actions.last.position))
    np.testing.assert_allclose(got, reference(checkpoints["a"], images), rtol=1e-5, atol=1e-6)
    assert list(h.actions.last.name) == ["shoulder", "elbow"]
    assert np.abs(got).max() < 1.0 and h.count("actions") == 4


def bad_images() -> dict[str, Image]:
    """One malformed message per rejection reason."""
    good = frames(1)[0]
    mono = to_msg(good)
    mono.encoding = "mono8"
    short = to_msg(good)
    short.data = bytes(short.data)[:-10]
    empty = Image(encoding="rgb8")
    huge = to_msg(frames(1, size=SIZE + 1, width=SIZE)[0])  # over max_image_pixels below
    return {"encoding": mono, "truncated": short, "size": empty, "too_large": huge}


def test_episode_start_restarts_the_frame_history(graph, checkpoints):
    h = Harness(graph, checkpoints["a"])
    starts = h.probe.create_publisher(Header, "episode_start", RELIABLE_QOS)
    images = frames(4, seed=3)
    got = [h.act(image) for image in images[:2]]
    restart = h.probe.get_clock().now().to_msg()
    starts.publish(Header(stamp=restart, frame_id="camera"))
    assert h.graph.spin_until(lambda: h.node._restart_ns is not None)
    got += [h.act(image) for image in images[2:]]
    expected = reference(checkpoints["a"], images[:2]) + reference(checkpoints["a"], images[2:])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert h.count("episode_restarts") == 1


def test_bad_images_are_counted_and_skipped(graph, checkpoints):
    h = Harness(graph, checkpoints["a"], max_image_pixels=SIZE * SIZE)
    for reason, msg in bad_images().items():
        h.send(msg)
        assert h.count(f"rejected/{reason}") == 1, reason
    assert h.count("rejected") == 4 and len(h.actions) == 0
    h.send(to_msg(frames(1)[0]), age_s=1.0)
    assert h.count("rejected/stale") == 1 and len(h.actions) == 0
    h.send(to_msg(frames(1)[0]), age_s=-1.0)  # stamped a second in the future
    assert h.count("rejected/future") == 1 and len(h.actions) == 0
    image = frames(1, seed=3)[0]
    np.testing.assert_allclose(h.act(image), reference(checkpoints["a"], [image])[0], atol=1e-6)


def test_future_tolerance_and_checks_can_be_off(graph, checkpoints):
    h = Harness(graph, checkpoints["a"], max_image_lead_ms=0.0, max_image_age_ms=0.0)
    image = frames(1, seed=4)[0]
    msg = to_msg(image)
    h.send(msg, age_s=-60.0)
    h.send(to_msg(image), age_s=60.0)
    assert h.count("actions") == 2 and h.count("rejected") == 0


@pytest.mark.parametrize("shape", [(84, 84), (48, 64), (64, 40), (16, 16)])
def test_frames_of_any_size_are_cropped_and_resized_like_training(graph, checkpoints, shape):
    """A camera of another size (84x84 for a 32 px policy; non-square: centre crop) acts
    exactly as ``Policy.act_image`` does on the same frames."""
    h = Harness(graph, checkpoints["a"])
    images = frames(3, size=shape[0], width=shape[1], seed=7)
    got = [h.act(image) for image in images]
    np.testing.assert_allclose(got, reference(checkpoints["a"], images), rtol=1e-5, atol=1e-6)
    assert h.count("resized") == 3 and h.count("rejected") == 0


def test_nonfinite_actions_are_not_published(graph, checkpoints):
    h = Harness(graph, checkpoints["overflow"])
    h.send(to_msg(frames(1)[0]))
    assert h.count("rejected/nonfinite") == 1 and len(h.actions) == 0


def call_reload(h: Harness) -> Trigger.Response:
    """Call ``~/reload`` and spin until it answers."""
    client = h.probe.create_client(Trigger, "policy_node/reload")
    assert h.graph.spin_until(client.service_is_ready)
    future = client.call_async(Trigger.Request())
    assert h.graph.spin_until(future.done)
    return future.result()


def test_hot_reload_by_service_parameter_and_topic(graph, checkpoints, tmp_path):
    live = tmp_path / "live.pt"
    shutil.copy(checkpoints["a"], live)
    h = Harness(graph, live)
    image = frames(1, seed=5)[0]
    action_a = reference(checkpoints["a"], [image])[0]
    action_b = reference(checkpoints["b"], [image])[0]
    assert not np.allclose(action_a, action_b)
    np.testing.assert_allclose(h.act(image), action_a, atol=1e-6)
    shutil.copy(checkpoints["b"], live)  # the trainer overwrote the file
    response = call_reload(h)  # answered once the load is over
    assert response.success and "loaded" in response.message and h.count("reloads") == 1
    np.testing.assert_allclose(h.act(image), action_b, atol=1e-6)
    result = h.node.set_parameters([Parameter("checkpoint", value=str(checkpoints["a"]))])[0]
    assert result.successful  # queued: the loader thread loads it
    assert graph.spin_until(lambda: h.count("reloads") == 2)
    assert h.node.checkpoint == str(checkpoints["a"])
    np.testing.assert_allclose(h.act(image), action_a, atol=1e-6)
    topic = h.probe.create_publisher(String, "trainer/checkpoint", LATCHED_QOS)
    assert graph.spin_until(lambda: topic.get_subscription_count() == 1)
    topic.publish(String(data=str(live)))
    assert graph.spin_until(lambda: h.count("reloads") == 3)
    assert h.node.get_parameter("checkpoint").value == str(live)
    np.testing.assert_allclose(h.act(image), action_b, atol=1e-6)


def test_waits_for_a_latched_checkpoint_path(graph, checkpoints):
    trainer = graph.add(Node("trainer", context=graph.context))
    latched = trainer.create_publisher(String, "trainer/checkpoint", LATCHED_QOS)
    latched.publish(String(data=str(checkpoints["b"])))  # before the policy node exists
    h = Harness(graph, "")
    image = frames(1, seed=3)[0]
    assert graph.spin_until(lambda: h.count("reloads") == 1)
    np.testing.assert_allclose(h.act(image), reference(checkpoints["b"], [image])[0], atol=1e-6)


def test_images_before_any_checkpoint_are_skipped(graph):
    h = Harness(graph, "", checkpoint_topic="trainer/checkpoint")
    msg = to_msg(frames(1)[0])
    msg.header.stamp = h.probe.get_clock().now().to_msg()
    h.images.publish(msg)
    assert graph.spin_until(lambda: h.count("waiting_for_checkpoint") == 1)
    assert len(h.actions) == 0 and h.node.policy is None


@pytest.mark.parametrize(
    ("name", "reason", "params"),
    [
        ("missing", "unreadable", {}),
        ("broken", "unreadable", {}),
        ("nan", "nonfinite", {}),
        ("mismatched", "build", {}),
        ("48px", "image_size", {}),
        ("cartpole", "task", {}),
        ("cartpole", "task", {"robot": "reacher"}),
    ],
)
def test_reloads_that_do_not_fit_are_refused_and_the_policy_stays(
    graph, checkpoints, tmp_path, name, reason, params
):
    """Unreadable files, NaN weights, another image size or task: counted under
    ``reload_rejected/<reason>``, the running policy acts on, the parameter shows it."""
    h = Harness(graph, checkpoints["a"], **params)
    image = frames(1, seed=6)[0]
    expected = reference(checkpoints["a"], [image])[0]
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    path = checkpoints.get(name, tmp_path / f"{name}.pt")
    result = h.node.set_parameters([Parameter("checkpoint", value=str(path))])[0]
    assert result.successful
    assert graph.spin_until(lambda: h.count("reload_rejected") == 1)
    assert h.count(f"reload_rejected/{reason}") == 1 and h.count("reloads") == 0
    assert graph.spin_until(
        lambda: h.node.get_parameter("checkpoint").value == str(checkpoints["a"])
    )
    np.testing.assert_allclose(h.act(image), expected, atol=1e-6)


def test_reload_service_reports_a_refusal(graph, checkpoints, tmp_path):
    live = tmp_path / "live.pt"
    shutil.copy(checkpoints["a"], live)
    h = Harness(graph, live)
    shutil.copy(checkpoints["48px"], live)
    response = call_reload(h)
    assert not response.success and "image_size" in response.message
    assert h.count("reload_rejected/image_size") == 1


def test_startup_parameters_are_fixed(graph, checkpoints):
    h = Harness(graph, checkpoints["a"])
    for name, value in [("max_image_age_ms", 5.0), ("hot_reload", False), ("robot", "reacher")]:
        result = h.node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and "start-up" in result.reason, name
    assert h.node.max_image_age_ms == 200.0 and h.node.hot_reload


def test_hot_reload_off_accepts_no_new_checkpoint(graph, checkpoints):
    h = Harness(graph, checkpoints["a"], hot_reload=False)
    result = h.node.set_parameters([Parameter("checkpoint", value=str(checkpoints["b"]))])[0]
    assert not result.successful and "hot_reload" in result.reason
    topic = h.probe.create_publisher(String, "trainer/checkpoint", LATCHED_QOS)
    graph.spin_for(0.5)
    assert topic.get_subscription_count() == 0
    names = [name for name, _ in h.probe.get_service_names_and_types()]
    assert "/policy_node/reload" not in names
    assert h.node.checkpoint == str(checkpoints["a"])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"checkpoint": "", "checkpoint_topic": ""}, "checkpoint"),
        ({"checkpoint": "", "hot_reload": False}, "checkpoint"),
        ({"checkpoint": "/nonexistent.pt"}, "checkpoint"),
        ({"checkpoint": "nan"}, "checkpoint"),
        ({"checkpoint": "cartpole", "robot": "reacher"}, "checkpoint"),
        ({"robot": "no_such_robot"}, "robot"),
        ({"max_image_age_ms": -1.0}, "max_image_age_ms"),
        ({"max_image_lead_ms": -1.0}, "max_image_lead_ms"),
        ({"max_image_pixels": 0}, "max_image_pixels"),
        ({"image_reliability": "sometimes"}, "image_reliability"),
        ({"max_joint_state_offset_ms": 0.0}, "max_joint_state_offset_ms"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_invalid_parameters_are_named(graph, checkpoints, params, name):
    values = {"checkpoint": str(checkpoints["a"]), **params}
    if values["checkpoint"] in checkpoints:
        values["checkpoint"] = str(checkpoints[values["checkpoint"]])
    overrides = [Parameter(k, value=v) for k, v in values.items()]
    with pytest.raises(ParameterError, match=f"parameter '{name}'"):
        PolicyNode(context=graph.context, parameter_overrides=overrides)


def test_policy_acts_on_the_sim_backend_camera(graph, checkpoints):
    params = {"image_size": SIZE, "real_time_factor": 2.0}
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    graph.add(SimBackend(context=graph.context, parameter_overrides=overrides))
    h = Harness(graph, checkpoints["a"])
    images = Collector(h.probe, Image, "camera/image_raw", SENSOR_QOS)

    def stamped_from_a_sim_image() -> bool:
        stamps = {stamp_to_ns(m.header.stamp) for m in images.messages}
        return len(h.actions) >= 3 and stamp_to_ns(h.actions.last.header.stamp) in stamps

    assert graph.spin_until(stamped_from_a_sim_image)
    assert h.count("rejected/size") == h.count("rejected/encoding") == 0


CAMERA = """
import sys, time
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

size, count, reliability = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rclpy.init()
node = rclpy.create_node("camera")
qos = QoSProfile(depth=5, reliability=getattr(ReliabilityPolicy, reliability.upper()))
pub = node.create_publisher(Image, "camera/image_raw", qos)
end = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < end:
    time.sleep(0.05)
time.sleep(0.5)
data = bytes(size * size * 3)
for _ in range(count):
    msg = Image(height=size, width=size, encoding="rgb8", step=size * 3, data=data)
    msg.header.stamp = node.get_clock().now().to_msg()
    pub.publish(msg)
    time.sleep(0.1)
time.sleep(1.0)
"""


def camera_process(size: int, count: int, reliability: str) -> subprocess.Popen:
    """A camera driver in another process (large frames cross the middleware's transports)."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    args = [sys.executable, "-c", CAMERA, str(size), str(count), reliability]
    return subprocess.Popen(args, env=env)


@pytest.mark.parametrize("reliability", ["best_effort", "reliable"])
def test_large_frames_from_another_process_are_never_lost_silently(graph, checkpoints, reliability):
    """2048x2048 rgb8 frames (12.6 MB) from another process: with best-effort QoS Fast DDS
    drops nearly all of them before the callback and reports them lost (counted); with
    ``image_reliability: reliable`` and a reliable camera all arrive and are resized."""
    h = Harness(graph, checkpoints["a"], image_reliability=reliability, max_image_age_ms=0.0)
    count = 8
    camera = camera_process(2048, count, reliability)

    def accounted() -> int:
        return h.count("images") + h.count("rejected/lost")

    try:
        # a lost frame is reported when a later one shows the gap (the first and last one may
        # go unreported: measured 18 of 20)
        assert graph.spin_until(lambda: accounted() >= count - 2, 40.0)
        assert graph.spin_until(lambda: camera.poll() is not None, 30.0)
    finally:
        camera.kill()
    assert accounted() <= count
    if reliability == "reliable":  # every frame arrives; each is acted on or, if the policy
        # fell behind (a loaded machine), superseded by a newer one: counted either way
        assert graph.spin_until(lambda: h.count("actions") + h.count("superseded") == count)
        assert h.count("images") == count and h.count("resized") == h.count("actions") >= 1
    else:
        assert h.count("rejected/lost") >= count // 2


def test_a_best_effort_camera_on_a_reliable_subscription_is_reported(graph, checkpoints):
    h = Harness(graph, checkpoints["a"], image_reliability="reliable")
    h.probe.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
    assert graph.spin_until(lambda: h.count("incompatible_camera") == 1)


def test_a_proprio_policy_pairs_each_frame_with_the_closest_joint_state(graph, checkpoints):
    """Joints by name (any order, extra joints) from the state stamped closest to the frame;
    none yet, or only a stale one, rejects the frame like a stale image (no action)."""
    h = Harness(graph, checkpoints["arm"])
    joints = h.node.policy.spec.joint_names
    publisher = h.probe.create_publisher(JointState, "joint_states", RELIABLE_QOS)
    assert graph.spin_until(lambda: publisher.get_subscription_count() == 1)
    image = frames(1)[0]
    h.send(to_msg(image))
    assert h.count("rejected/joint_state_missing") == 1 and len(h.actions) == 0

    def publish(age_s: float, position: np.ndarray, velocity: np.ndarray) -> None:
        order = [5, 2, 0, 4, 1, 3]
        msg = JointState(
            name=["finger_joint", *[joints[i] for i in order]],
            position=[0.7, *position[order]],
            velocity=[0.0, *velocity[order]],
        )
        now = h.probe.get_clock().now().nanoseconds - int(age_s * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        held = len(h.node.inputs.joints)
        publisher.publish(msg)
        assert graph.spin_until(lambda: len(h.node.inputs.joints) > held)

    position = np.array([-1.4, -1.6, 1.5, -1.5, -1.7, 0.2])
    velocity = np.array([0.1, -0.2, 0.3, 0.0, 0.5, -0.4])
    publish(1.0, position, velocity)
    h.send(to_msg(image))
    assert h.count("rejected/joint_state_stale") == 1 and len(h.actions) == 0
    publish(0.0, position, velocity)
    got = h.act(image)
    expected = Policy.load(checkpoints["arm"]).act_image(image, (position, velocity))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert list(h.actions.last.name) == list(joints)


def test_a_legged_policy_acts_on_joint_states_with_the_imu_and_cmd_vel(graph, tmp_path):
    """A proprio-only go2 policy: one action per control period of joint-state stamps, from the
    joint state, the IMU reading stamped closest (none close: rejected) and the newest cmd_vel
    (stale: zero, counted); camera frames are not used."""
    path = make_checkpoint(tmp_path / "go2.pt", task="go2_walk", seed=2)
    h = Harness(graph, path, cmd_vel_timeout_ms=300.0)
    joints = h.node.policy.spec.joint_names
    states = h.probe.create_publisher(JointState, "joint_states", SENSOR_QOS)
    imu_pub = h.probe.create_publisher(Imu, "imu/data", SENSOR_QOS)
    cmd = h.probe.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
    assert graph.spin_until(
        lambda: min(p.get_subscription_count() for p in (states, imu_pub, cmd)) == 1
    )
    rng = np.random.default_rng(0)
    position, velocity = rng.normal(0, 0.3, 12), rng.normal(0, 1.0, 12)
    quat = np.array([0.99, 0.1, -0.05, 0.02])
    quat /= np.linalg.norm(quat)
    gyro = np.array([0.3, -0.2, 0.5])

    def stamped(msg, stamp_ns):
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        return msg

    def tick(stamp_ns, imu_stamp_ns=None):
        imu = Imu()
        imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z = quat
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = gyro
        imu_pub.publish(stamped(imu, stamp_ns if imu_stamp_ns is None else imu_stamp_ns))
        graph.spin_for(0.02)
        handled = h.count("actions") + h.count("rejected")
        msg = JointState(name=list(joints), position=position.tolist())
        msg.velocity = velocity.tolist()
        states.publish(stamped(msg, stamp_ns))
        assert graph.spin_until(lambda: h.count("actions") + h.count("rejected") > handled)

    command = Twist()
    command.linear.x, command.angular.z = 0.6, -0.3
    cmd.publish(command)
    graph.spin_for(0.05)
    now = h.probe.get_clock().now().nanoseconds
    tick(now)
    expected = Policy.load(path)
    want = expected.act_proprio((position, velocity), (quat, gyro), np.array([0.6, 0.0, -0.3]))
    np.testing.assert_allclose(h.actions.last.position, want, rtol=1e-5, atol=1e-6)
    assert stamp_to_ns(h.actions.last.header.stamp) == now
    frame = stamped(to_msg(frames(1)[0]), h.probe.get_clock().now().nanoseconds)
    h.images.publish(frame)  # a camera the policy does not use
    assert graph.spin_until(lambda: h.count("unused_input") == 1)
    graph.spin_for(0.4)  # no cmd_vel for longer than cmd_vel_timeout_ms
    tick(h.probe.get_clock().now().nanoseconds)
    assert h.count("actions") == 2 and h.count("cmd_vel_stale") == 1
    stale = expected.act_proprio((position, velocity), (quat, gyro), np.zeros(3))
    np.testing.assert_allclose(h.actions.last.position, stale, rtol=1e-5, atol=1e-6)
    later = h.probe.get_clock().now().nanoseconds + 100_000_000
    tick(later, imu_stamp_ns=later - 10**9)  # the closest IMU reading is too old
    assert h.count("rejected/imu_stale") == 1 and h.count("actions") == 2
