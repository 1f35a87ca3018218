"""``bag_recorder``: a deploy session's topics into a rosbag2 bag with MCAP storage, written by
the pure-Python ``rosbags`` library (no rosbag2 install needed).

Recorded: the camera (or depth) images, joint states, IMU, velocity command, episode starts,
the proprio group each action was computed on (``policy/proprio``), the policy's actions, the
bridge's commands (the robot's command topic, or its dry-run topic), e-stop, the sim's task
status and /diagnostics. Messages are taken serialized (CDR) and written
unchanged, stamped with their receive time (ns since the epoch, as ``ros2 bag record`` does);
``ros2 bag info BAG`` and any rosbag2 reader read the bag. Subscriptions are best effort (they
match reliable and best-effort publishers alike). The bag is finished (its ``metadata.yaml``
written) when the node closes; a bag directory that exists already is refused at start-up.
"""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from sdpg_ros.common import declare, destroy_on_error, require, require_topic, run_nodes

NODE_NAME = "bag_recorder"
TOPICS: tuple[tuple[str, str], ...] = (  # (name relative to the node's namespace, type)
    ("camera/image_raw", "sensor_msgs/msg/Image"),
    ("joint_states", "sensor_msgs/msg/JointState"),
    ("imu/data", "sensor_msgs/msg/Imu"),
    ("cmd_vel", "geometry_msgs/msg/Twist"),
    ("episode_start", "std_msgs/msg/Header"),
    ("policy/proprio", "sensor_msgs/msg/JointState"),
    ("policy/action", "sensor_msgs/msg/JointState"),
    ("e_stop", "std_msgs/msg/Bool"),
    ("task_status", "diagnostic_msgs/msg/DiagnosticStatus"),
    ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),
)
COMMAND_TYPES = {
    "forward": "std_msgs/msg/Float64MultiArray",
    "trajectory": "trajectory_msgs/msg/JointTrajectory",
}
RECORD_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED_RECORD_QOS = QoSProfile(  # e_stop is latched: its last state arrives on joining
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def message_class(msgtype: str) -> type:
    """The rclpy message class of a type name such as ``sensor_msgs/msg/Image``."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class BagRecorder(Node):
    """Writes every message of ``TOPICS`` and the command topic into the bag ``bag``."""

    @destroy_on_error
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        bag = declare(self, "bag", "", "rosbag2 directory to create (MCAP storage)")
        command_topic = declare(self, "command_topic", "", "the bridge's command topic")
        command_type = declare(self, "command_type", "forward", "forward or trajectory")
        require(bool(bag), "bag", "a bag directory is required")
        require(not Path(bag).exists(), "bag", f"{bag} exists already (a bag is never appended)")
        require(command_type in COMMAND_TYPES, "command_type", f"one of {sorted(COMMAND_TYPES)}")
        topics = list(TOPICS)
        if command_topic:
            require_topic("command_topic", command_topic)
            topics.append((command_topic, COMMAND_TYPES[command_type]))
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()  # the writer, across callbacks
        self.writer, self.typestore = open_bag(Path(bag))
        self.path = Path(bag)
        for name, msgtype in topics:
            self._record(name, msgtype)

    def _record(self, name: str, msgtype: str) -> None:
        """Subscribe to ``name`` (serialized) and add its connection to the bag."""
        resolved = self.resolve_topic_name(name)
        connection = self.writer.add_connection(resolved, msgtype, typestore=self.typestore)
        self.counts[resolved] = 0

        def write(data: bytes) -> None:
            with self._lock:
                if self.writer is not None:
                    self.writer.write(connection, time.time_ns(), data)
                    self.counts[resolved] += 1

        qos = LATCHED_RECORD_QOS if name == "e_stop" else RECORD_QOS
        self.create_subscription(message_class(msgtype), name, write, qos, raw=True)

    def close(self) -> None:
        """Finish the bag (its metadata); later messages are dropped."""
        with self._lock:
            writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
            recorded = {topic: n for topic, n in self.counts.items() if n}
            self.get_logger().info(f"bag {self.path}: {recorded}")


def open_bag(path: Path) -> tuple[Any, Any]:
    """An open rosbags writer (rosbag2 version 9, MCAP) and the message definitions to store."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    return writer, get_typestore(Stores.ROS2_KILTED)


def main(args: list[str] | None = None) -> int:
    """Entry point ``bag_recorder``."""
    return run_nodes([BagRecorder], args, executable=True)


if __name__ == "__main__":
    raise SystemExit(main())
