"""policy_node over real rclpy: actions equal the training code's, bad input, hot reload."""

import shutil

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from sdpg_core.policy import Policy
from sdpg_ros.common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, ParameterError, stamp_to_ns
from sdpg_ros.image_conversion import to_msg
from sdpg_ros.policy_node import PolicyNode
from sdpg_ros.sim_backend import SimBackend
from tests.ros.helpers import Collector, make_checkpoint

SIZE = 32


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two tiny policies with different weights, and one whose actions are NaN."""
    folder = tmp_path_factory.mktemp("checkpoints")
    return {
        "a": make_checkpoint(folder / "a.pt", seed=0, image_size=SIZE),
        "b": make_checkpoint(folder / "b.pt", seed=1, image_size=SIZE),
        "nan": make_checkpoint(folder / "nan.pt", image_size=SIZE, nan=True),
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
        self.images = self.probe.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
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
    small = to_msg(frames(1, size=16)[0])
    short = to_msg(good)
    short.data = bytes(short.data)[:-10]
    empty = Image(encoding="rgb8")
    return {"encoding": mono, "size": small, "truncated": short, "empty": empty}


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
    h = Harness(graph, checkpoints["a"])
    for reason, msg in bad_images().items():
        h.send(msg)
        key = "size" if reason == "empty" else reason
        assert h.count(f"rejected/{key}") >= 1, reason
    assert h.count("rejected") == 4 and len(h.actions) == 0
    h.send(to_msg(frames(1)[0]), age_s=1.0)
    assert h.count("rejected/stale") == 1 and len(h.actions) == 0
    image = frames(1, seed=3)[0]
    np.testing.assert_allclose(h.act(image), reference(checkpoints["a"], [image])[0], atol=1e-6)


def test_configured_camera_size_is_resized_like_training(graph, checkpoints):
    h = Harness(graph, checkpoints["a"], image_height=48, image_width=64, max_image_age_ms=0.0)
    image = frames(1, size=48, width=64)[0]
    np.testing.assert_allclose(h.act(image), reference(checkpoints["a"], [image])[0], atol=1e-6)
    h.send(to_msg(frames(1)[0]), age_s=60.0)  # training size is now wrong; age unchecked
    assert h.count("rejected/size") == 1 and h.count("rejected/stale") == 0


def test_nonfinite_actions_are_not_published(graph, checkpoints):
    h = Harness(graph, checkpoints["nan"])
    h.send(to_msg(frames(1)[0]))
    assert h.count("rejected/nonfinite") == 1 and len(h.actions) == 0


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
    client = h.probe.create_client(Trigger, "policy_node/reload")
    assert graph.spin_until(client.service_is_ready)
    future = client.call_async(Trigger.Request())
    assert graph.spin_until(future.done) and future.result().success
    np.testing.assert_allclose(h.act(image), action_b, atol=1e-6)
    result = h.node.set_parameters([Parameter("checkpoint", value=str(checkpoints["a"]))])[0]
    assert result.successful and h.node.checkpoint == str(checkpoints["a"])
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


def test_failed_reload_keeps_the_running_policy(graph, checkpoints, tmp_path):
    h = Harness(graph, checkpoints["a"])
    image = frames(1, seed=6)[0]
    expected = reference(checkpoints["a"], [image])[0]
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = h.node.set_parameters([Parameter("checkpoint", value=str(broken))])[0]
    assert not result.successful and "keeping" in result.reason
    assert h.node.get_parameter("checkpoint").value == str(checkpoints["a"])
    ok, _ = h.node.reload(str(tmp_path / "missing.pt"))
    assert not ok and h.count("reload_failed") == 2 and h.count("reloads") == 0
    np.testing.assert_allclose(h.act(image), expected, atol=1e-6)
    result = h.node.set_parameters([Parameter("max_image_age_ms", value=5.0)])[0]
    assert not result.successful and h.node.max_image_age_ms == 200.0


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"checkpoint": "", "checkpoint_topic": ""}, "checkpoint"),
        ({"checkpoint": "/nonexistent.pt"}, "checkpoint"),
        ({"image_height": 48}, "image_width"),
        ({"max_image_age_ms": -1.0}, "max_image_age_ms"),
        ({"use_joint_states": True}, "use_joint_states"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_invalid_parameters_are_named(graph, checkpoints, params, name):
    values = {"checkpoint": str(checkpoints["a"]), **params}
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
