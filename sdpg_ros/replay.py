"""``sdpg-ros replay BAG --checkpoint P``: a recorded deploy's inputs through a policy, offline.

The bag (``sdpg-ros deploy --record``) is read with ``rosbags`` and its messages deserialized
as rclpy messages, in receive order. Each recorded action names its input by stamp: the proprio
group the node computed it on (``policy/proprio``: joint state, IMU and command as the node
paired them, recorded beside each action) and, for a camera policy, the camera frame (converted,
cropped, resized and stacked as the node does; for a camera slower than the control rate, the
frames up to the newest one the node held, whose stamp its ``policy/proprio`` carries, join the
stack before the action: bags from before that stamp push frames as they arrive); an
``episode_start`` restarts the frame history at the first input stamped at or after it. The
replayed policy acts on those inputs with its own previous action, and its action is compared
with the recorded one.

With the checkpoint that drove the robot the recorded actions come back (``max_abs_diff`` at
float rounding); with another one the report says what that policy would have done on the same
observations (action difference statistics per joint; ``--plot`` draws both over time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.serialization import deserialize_message

from sdpg_core.stream import StreamingPolicy
from sdpg_ros.bag_recorder import message_class
from sdpg_ros.common import FRAME_LABELS, stamp_to_ns
from sdpg_ros.image_conversion import to_numpy


@dataclass(frozen=True)
class Received:
    """One recorded message: receive time (ns), topic, type and the rclpy message."""

    time_ns: int
    topic: str
    msgtype: str
    msg: Any


def read_bag(path: str | Path) -> Iterator[Received]:
    """The bag's messages in receive order, one at a time (a bag of camera frames need not fit
    in memory); ValueError naming the bag if it cannot be opened."""
    from rosbags.rosbag2 import Reader

    try:
        reader = Reader(Path(path))
        reader.open()
    except Exception as err:  # rosbags raises its own error types
        raise ValueError(f"{path}: not a readable rosbag2 bag ({err})") from err
    try:
        for c, t, raw in reader.messages():
            yield Received(
                t, c.topic, c.msgtype, deserialize_message(raw, message_class(c.msgtype))
            )
    finally:
        reader.close()


class Replayer:
    """The policy node's inputs rebuilt from the bag, fed to ``policy``."""

    def __init__(self, policy: StreamingPolicy) -> None:
        self.policy, spec = policy, policy.spec
        # recorded proprio groups by stamp, not yet used, with the held frame's stamp (or None)
        self.groups: dict[int, tuple[np.ndarray, int | None]] = {}
        self.frames: dict[int, Any] = {}  # camera messages by stamp, not yet used
        self.restart_ns: int | None = None
        self.ticked = spec.obs_mode == "proprio" or spec.camera_every > 1

    def feed(self, item: Received) -> np.ndarray | None:
        """Take one message; for a recorded action, the policy's action on its input."""
        msg, kind, topic = item.msg, item.msgtype.rsplit("/", 1)[-1], item.topic
        if kind == "JointState" and topic.endswith("policy/action"):
            return self._act(stamp_to_ns(msg.header.stamp))
        if kind == "JointState" and topic.endswith("policy/proprio"):
            self.groups[stamp_to_ns(msg.header.stamp)] = _group(msg)
        elif kind == "Header" and topic.endswith("episode_start"):
            self.restart_ns = stamp_to_ns(msg.stamp)
        elif kind == "Image" and self.policy.spec.obs_mode == "pixels":
            self._frame(msg)
        return None

    def _frame(self, msg: Any) -> None:
        """A camera frame: kept for its action (or, a slower camera, for the next tick)."""
        self.frames[stamp_to_ns(msg.header.stamp)] = msg

    def _push_held(self, upto_ns: int | None) -> None:
        """A slower camera: push the kept frames stamped up to ``upto_ns`` (all: None) into the
        stack in arrival order, as the node did before the tick."""
        for stamp in [s for s in self.frames if upto_ns is None or s <= upto_ns]:
            self._maybe_restart(stamp)
            self.policy.push_frame(to_numpy(self.frames.pop(stamp), kind=self.policy.spec.image))

    def _maybe_restart(self, stamp_ns: int) -> None:
        """Drop the frame history at the first input of a new episode (as the node does)."""
        if self.restart_ns is not None and stamp_ns >= self.restart_ns:
            self.policy.reset_stream()
            self.restart_ns = None

    def _act(self, stamp_ns: int) -> np.ndarray:
        """The policy's action on the input stamped ``stamp_ns`` (a frame or a tick)."""
        spec, group, held = self.policy.spec, None, None
        if spec.proprio_dim:
            group, held = self.groups.pop(stamp_ns, (None, None))
            if group is None:
                raise ValueError(f"no policy/proprio stamped {stamp_ns} for an action")
            self.groups = {s: g for s, g in self.groups.items() if s > stamp_ns}
        if spec.obs_mode == "pixels" and self.ticked:
            self._push_held(held)
        if spec.obs_mode == "pixels" and not self.ticked:
            frame = self.frames.pop(stamp_ns, None)
            if frame is None:
                raise ValueError(f"no camera frame stamped {stamp_ns} for an action")
            self.frames = {s: m for s, m in self.frames.items() if s > stamp_ns}  # older: unused
            self._maybe_restart(stamp_ns)
            self.policy.push_frame(to_numpy(frame, kind=spec.image))
        elif spec.obs_mode == "proprio":
            self._maybe_restart(stamp_ns)
        return self.policy.act_recorded(group)


def _group(msg: Any) -> tuple[np.ndarray, int | None]:
    """A ``policy/proprio`` message: (the proprio group, the held frame's stamp or None)."""
    values = np.asarray(msg.position)
    if tuple(msg.name[-2:]) != FRAME_LABELS:
        return values, None
    sec, nanosec = values[-2:]
    return values[:-2], int(sec) * 1_000_000_000 + int(nanosec)


def replay(bag: str | Path, policy: StreamingPolicy) -> dict[str, Any]:
    """Recorded and replayed actions [n, A] with their stamps, and the difference statistics."""
    replayer, recorded, replayed, stamps = Replayer(policy), [], [], []
    for item in read_bag(bag):
        action = replayer.feed(item)
        if action is not None:
            recorded.append(np.asarray(item.msg.position, dtype=np.float64))
            replayed.append(np.asarray(action, dtype=np.float64))
            stamps.append(stamp_to_ns(item.msg.header.stamp))
    if not recorded:
        raise ValueError(f"{bag}: no policy/action messages to replay")
    recorded_a, replayed_a = np.stack(recorded), np.stack(replayed)
    diff = np.abs(replayed_a - recorded_a)
    return {
        "actions": len(recorded),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "mean_abs_diff_per_joint": dict(
            zip(policy.spec.joint_names, diff.mean(axis=0).tolist(), strict=True)
        ),
        "stamps_ns": stamps,
        "recorded": recorded_a,
        "replayed": replayed_a,
    }


def plot(result: dict[str, Any], joints: tuple[str, ...], path: str | Path) -> Path:
    """Recorded and replayed actions over time, one panel per joint, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (np.asarray(result["stamps_ns"]) - result["stamps_ns"][0]) * 1e-9
    fig, axes = plt.subplots(len(joints), 1, figsize=(9, 1.6 * len(joints)), sharex=True)
    for k, axis in enumerate(np.atleast_1d(axes)):
        axis.plot(t, result["recorded"][:, k], label="recorded", linewidth=1.0)
        axis.plot(t, result["replayed"][:, k], label="replayed", linewidth=1.0, linestyle="--")
        axis.set_ylabel(joints[k], fontsize=7)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("s (action stamps)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
