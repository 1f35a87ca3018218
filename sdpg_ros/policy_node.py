"""``policy_node``: camera images in, normalised deterministic actions out (``policy/action``).

Inference runs the training code's frame stack and normalisation (``StreamingPolicy``) on its
own thread, fed the newest frame by the image callback, so the executor never waits on the
network (and a slow policy skips frames, counted as ``superseded``, instead of acting on old
ones). The policy is a checkpoint (torch) or an exported ``.onnx`` file (``sdpg export
--format onnx``), run by onnxruntime without importing torch.
A frame of any size is centre-cropped to the training aspect ratio and area-resized to the
training size (``sdpg_core.obs.prepare_image``). Every bad input (encoding, implausible size,
truncated data, stamp too old or in the future, non-finite output) is counted under
``rejected/<reason>`` and skipped, never fatal; frames the middleware reports lost (large
best-effort frames) are counted as ``rejected/lost``.
A policy with a proprio group (``spec.proprio_dim``: joint positions, velocities and its
previous action; for legged robots first the IMU and the velocity command) gets its joints from
``joint_states``, by name in its joint order, from the message stamped closest to the frame
(the IMU likewise from ``imu/data``, the command from ``cmd_vel``: ``proprio_inputs``); none
yet, or none within ``max_joint_state_offset_ms`` / ``max_imu_offset_ms`` of the frame,
rejects the frame like a stale image (``rejected/joint_state_*``, ``rejected/imu_*``, no
action). A proprio-only policy (no camera) acts once per control period of joint states.
An ``episode_start`` Header (from the sim backend, or an operator's tool on hardware) drops
the frame history at the first frame stamped at or after it, as training does at a reset
(one frame late if it arrives after that frame).
Hot reload (``hot_reload``): set the ``checkpoint`` parameter, call ``~/reload`` or publish a
path on ``checkpoint_topic``. A loader thread reads the checkpoint, checks its spec against
the robot and the running policy before building anything, then builds and warms it up; only a
policy that fits replaces the running one (``reloads``), anything else is refused
(``reload_rejected/<reason>``) and the running policy stays. ``~/reload`` answers when the
load is over; a parameter change is accepted once queued, and the parameter returns to the
running checkpoint if the load is refused.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import (
    QoSMessageLostInfo,
    QoSRequestedIncompatibleQoSInfo,
    SubscriptionEventCallbacks,
)
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from sdpg_core.config import ConfigError
from sdpg_core.robot import RobotConfig, load_robot
from sdpg_core.stream import StreamingPolicy, proprio_labels
from sdpg_ros.common import (
    FRAME_LABELS,
    RELIABLE_QOS,
    SENSOR_QOS,
    Counters,
    Diagnostics,
    ParameterError,
    declare,
    destroy_on_error,
    now_ns,
    require,
    require_topic,
    run_nodes,
    stamp_to_ns,
)
from sdpg_ros.image_conversion import ImageError, to_numpy
from sdpg_ros.policy_loading import PolicyLoading, Refused
from sdpg_ros.proprio_inputs import ProprioInputs

NODE_NAME = "policy_node"
# 4K UHD: the largest mode of common camera drivers. Larger frames are a misconfiguration whose
# conversion alone delays every action (docs/experiments/ros.md, "Large camera frames").
MAX_IMAGE_PIXELS = 3840 * 2160
IMAGE_QOS = {
    "best_effort": SENSOR_QOS,
    "reliable": QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE),
}


class PolicyNode(PolicyLoading, Node):
    """Runs a trained policy on ``camera/image_raw`` (+ proprioception), or a proprio-only one
    on joint states, and publishes ``policy/action``."""

    @destroy_on_error
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._declare_parameters()
        self.counters = Counters(self)
        self.policy: StreamingPolicy | None = None
        if self.checkpoint:
            try:
                self.policy = self.load(self.checkpoint)
            except Refused as err:  # a checkpoint that cannot run is a start-up parameter error
                raise ParameterError(f"parameter 'checkpoint': {err}") from err
        self._lock = threading.Lock()  # guards self.policy (swap) and its frame stack
        self.inference_ms = self.load_ms = 0.0
        self._sizes_seen: set[tuple[int, int]] = set()
        self.action_pub = self.create_publisher(JointState, "policy/action", RELIABLE_QOS)
        self.proprio_pub = self.create_publisher(JointState, "policy/proprio", RELIABLE_QOS)
        self.create_subscription(
            Image,
            "camera/image_raw",
            self._on_image,
            IMAGE_QOS[self.image_reliability],
            callback_group=MutuallyExclusiveCallbackGroup(),
            event_callbacks=SubscriptionEventCallbacks(
                message_lost=self._on_images_lost, incompatible_qos=self._on_incompatible_camera
            ),
        )
        if self.episode_topic:
            self.create_subscription(
                Header, self.episode_topic, self._on_episode_start, RELIABLE_QOS
            )
        self.inputs = ProprioInputs(
            self,
            self.counters,
            (self.max_joint_state_offset_ms, self.max_imu_offset_ms),
            self.cmd_vel_timeout_ms,
            self._on_tick,
        )
        self.inputs.use(self.policy.spec if self.policy else None)
        self._restart_ns: int | None = None  # newest episode_start stamp not yet applied
        self._restoring = False  # set while the parameter is put back to the running path
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics = Diagnostics(self, self.counters, self._diagnostic_values)
        self._latest: dict[str, Any] = {"frame": None, "tick": None}  # newest, not yet used
        self._frame_ns: int | None = None  # stamp of the newest frame in a held stack
        self._wake = threading.Condition()
        self._running = True
        if self.hot_reload:
            self._start_hot_reload()
        self._worker = threading.Thread(target=self._work, name="policy-inference", daemon=True)
        self._worker.start()

    def _declare_parameters(self) -> None:
        """Declare, read and validate the parameters (ParameterError names the bad one)."""
        self.checkpoint = declare(
            self, "checkpoint", "", "policy file: a checkpoint (.pt) or sdpg export's .onnx"
        )
        self.device = declare(self, "device", "cpu", "torch device: cpu or cuda[:i]")
        self.robot_name = declare(
            self, "robot", "", "robot whose sim task and joints a checkpoint must match ('' = any)"
        )
        self.hot_reload = declare(
            self, "hot_reload", True, "accept new checkpoints: parameter, ~/reload, topic"
        )
        self.max_image_age_ms = declare(
            self, "max_image_age_ms", 200.0, "reject older images (node clock); 0 = no check"
        )
        self.max_image_lead_ms = declare(
            self, "max_image_lead_ms", 100.0, "reject images stamped further ahead; 0 = no check"
        )
        self.max_image_pixels = declare(
            self, "max_image_pixels", MAX_IMAGE_PIXELS, "reject larger frames (height x width)"
        )
        self.image_reliability = declare(
            self, "image_reliability", "best_effort", "camera QoS: best_effort or reliable"
        )
        self.checkpoint_topic = declare(
            self, "checkpoint_topic", "trainer/checkpoint", "String paths to load ('' = off)"
        )
        self.max_joint_state_offset_ms = declare(
            self,
            "max_joint_state_offset_ms",
            50.0,
            "proprio policies: the joint state must be stamped this close to the frame",
        )
        self.max_imu_offset_ms = declare(
            self, "max_imu_offset_ms", 50.0, "IMU policies: the IMU reading likewise"
        )
        self.cmd_vel_timeout_ms = declare(
            self, "cmd_vel_timeout_ms", 500.0, "command policies: older cmd_vel commands zero"
        )
        self.episode_topic = declare(
            self, "episode_topic", "episode_start", "Header: frame history restarts ('' = off)"
        )
        self._validate_parameters()

    def _validate_parameters(self) -> None:
        """Reject invalid parameter values at start-up, naming the parameter."""
        waits = self.hot_reload and bool(self.checkpoint_topic)
        require(
            bool(self.checkpoint) or waits,
            "checkpoint",
            "a checkpoint path is required (or hot_reload with a checkpoint_topic to wait on)",
        )
        if self.device != "cpu":  # torch only for another device: an ONNX policy runs without it
            from sdpg_core.models import resolve_device

            try:
                resolve_device(self.device)
            except (RuntimeError, ValueError) as err:
                raise ParameterError(f"parameter 'device': {err}") from err
        self.robot: RobotConfig | None = None
        if self.robot_name:
            try:
                self.robot = load_robot(self.robot_name)
            except ConfigError as err:
                raise ParameterError(f"parameter 'robot': {err}") from err
        require(self.max_image_age_ms >= 0.0, "max_image_age_ms", "must be >= 0 (0 = off)")
        require(self.max_image_lead_ms >= 0.0, "max_image_lead_ms", "must be >= 0 (0 = off)")
        require(self.max_image_pixels > 0, "max_image_pixels", "must be > 0")
        require(
            self.image_reliability in IMAGE_QOS,
            "image_reliability",
            f"must be one of {sorted(IMAGE_QOS)}, got {self.image_reliability!r}",
        )
        for name in ("max_joint_state_offset_ms", "max_imu_offset_ms", "cmd_vel_timeout_ms"):
            require(getattr(self, name) > 0.0, name, "must be > 0")
        if self.checkpoint_topic:
            require_topic("checkpoint_topic", self.checkpoint_topic)
        if self.episode_topic:
            require_topic("episode_topic", self.episode_topic)

    # Images and inference ---------------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        """Executor callback: hand the frame to the inference thread (never blocks on torch)."""
        self.counters.add("images")
        if msg.height * msg.width > self.max_image_pixels:
            size = f"{msg.width}x{msg.height}"
            self.counters.reject("too_large", f"frame {size} > {self.max_image_pixels} pixels")
            return
        self._hand_over("frame", msg)

    def _on_tick(self, stamp_ns: int) -> None:
        """A control tick (a joint state) of a policy that acts at the control rate (no camera,
        or a slower one): hand it to the inference thread."""
        self.counters.add("ticks")
        self._hand_over("tick", stamp_ns)

    def _hand_over(self, kind: str, item: Image | int) -> None:
        """Make ``item`` the newest input of its ``kind`` for the inference thread."""
        with self._wake:
            if self._latest[kind] is not None:  # inference fell behind: keep the newest
                self.counters.add("superseded")
            self._latest[kind] = item
            self._wake.notify()

    def _on_images_lost(self, info: QoSMessageLostInfo) -> None:
        """The middleware dropped frames before they reached us (e.g. large best-effort ones)."""
        for _ in range(info.total_count_change):
            self.counters.reject(
                "lost",
                f"{info.total_count} frames lost in transport so far (frames over ~0.5 MB are "
                "lost between processes with best-effort QoS: image_reliability: reliable)",
            )

    def _on_incompatible_camera(self, info: QoSRequestedIncompatibleQoSInfo) -> None:
        """A camera publisher whose QoS cannot match the subscription: no frame will arrive."""
        self.counters.add("incompatible_camera")
        self.get_logger().error(
            f"a camera publisher's QoS is incompatible with image_reliability "
            f"{self.image_reliability!r} ({qos_policy_name_from_kind(info.last_policy_kind)}): "
            "no frames from it",
            throttle_duration_sec=5.0,
        )

    def _work(self) -> None:
        """Inference thread: the newest frame, then the newest tick, until ``close``."""
        pending = self._latest
        while True:
            with self._wake:
                self._wake.wait_for(lambda: any(pending.values()) or not self._running)
                if not self._running:
                    return
                frame, tick = pending["frame"], pending["tick"]
                pending["frame"] = pending["tick"] = None
            try:
                if frame is not None:
                    self._act(frame)
                if tick is not None:
                    self._act(tick)
            except Exception as err:  # a bug must not silently stop the policy
                self.counters.add("errors")
                self.get_logger().error(f"inference failed: {err!r}", throttle_duration_sec=2.0)

    def _stamp_problem(self, stamp_ns: int) -> tuple[str, str] | None:
        """(reason, detail) when a frame's stamp is too old or too far in the future."""
        age_ms = (now_ns(self) - stamp_ns) * 1e-6
        if self.max_image_age_ms and age_ms > self.max_image_age_ms:
            return "stale", f"image {age_ms:.0f} ms old > {self.max_image_age_ms}"
        if self.max_image_lead_ms and -age_ms > self.max_image_lead_ms:
            return "future", f"image stamped {-age_ms:.0f} ms ahead > {self.max_image_lead_ms}"
        return None

    def _act(self, item: Image | int) -> None:
        """Use one camera image or tick stamp: act on it and publish the action with its stamp
        (a frame of a camera slower than the control rate only joins the frame stack); an
        input that cannot be used is counted and skipped."""
        stamp_ns = item if isinstance(item, int) else stamp_to_ns(item.header.stamp)
        problem = self._stamp_problem(stamp_ns)
        if problem:
            self.counters.reject(*problem)
            return
        with self._lock:
            policy = self.policy
            if policy is None:
                self.counters.add("waiting_for_checkpoint")
                return
            action = self._action(policy, item, stamp_ns)
            group = policy.last_proprio if policy.spec.proprio_dim else None
            held = self._frame_ns if policy.spec.camera_every > 1 else None
        if action is None:
            return
        if not np.isfinite(action).all():
            self.counters.reject("nonfinite", f"policy output {action.tolist()}")
            return
        stamp = divmod(stamp_ns, 1_000_000_000)
        if group is not None:  # what the policy saw, before what it did (for the record)
            self.proprio_pub.publish(self._seen(policy, group, stamp, held))
        out = JointState(name=list(policy.spec.joint_names), position=action.tolist())
        out.header.stamp.sec, out.header.stamp.nanosec = stamp
        self.action_pub.publish(out)
        self.counters.add("actions")

    @staticmethod
    def _seen(
        policy: StreamingPolicy, group: np.ndarray, stamp: tuple[int, int], held: int | None
    ) -> JointState:
        """The proprio group an action was computed on, labelled, stamped as the action; with
        a slower camera also the stamp of the newest frame it held (``FRAME_LABELS``)."""
        names, values = proprio_labels(policy.spec), group[0].tolist()
        if held is not None:
            names, values = names + list(FRAME_LABELS), values + list(divmod(held, 1_000_000_000))
        seen = JointState(name=names, position=[float(v) for v in values])
        seen.header.stamp.sec, seen.header.stamp.nanosec = stamp
        return seen

    def _action(
        self, policy: StreamingPolicy, item: Image | int, stamp_ns: int
    ) -> np.ndarray | None:
        """The policy's action for ``item`` (lock held), or None (counted)."""
        spec, tick = policy.spec, isinstance(item, int)
        if spec.obs_mode == "proprio" and not tick:
            self.counters.add("unused_input")  # a camera the policy does not look at
            return None
        if not tick:
            image = self._image(item, policy)
            if image is None:
                return None
            if spec.camera_every > 1:  # a slower camera: held in the stack for the ticks
                self._maybe_restart(policy, stamp_ns)
                policy.push_frame(image)
                self._frame_ns = stamp_ns
                return None
        readings = self.inputs.readings(spec, stamp_ns)
        if readings is None:
            return None
        self._maybe_restart(policy, stamp_ns)
        start = time.perf_counter()
        if spec.obs_mode == "proprio":
            action = policy.act_proprio(**readings)
        elif not tick:
            action = policy.act_image(image, **readings)
        elif (problem := self._held_frame_problem(policy, stamp_ns)) is not None:
            self.counters.reject(*problem)
            return None
        else:
            action = policy.act_frames(**readings)
        self.inference_ms = (time.perf_counter() - start) * 1e3
        return action

    def _held_frame_problem(self, policy: StreamingPolicy, stamp_ns: int) -> tuple[str, str] | None:
        """Why the held frames cannot be used at a tick: none yet, or older than a camera
        period plus ``max_image_age_ms``."""
        if policy.stream is None or self._frame_ns is None:
            return "image_missing", "no camera frame yet"
        period_ms = policy.spec.camera_every * policy.spec.control_dt * 1e3
        age_ms = (stamp_ns - self._frame_ns) * 1e-6
        if self.max_image_age_ms and age_ms > period_ms + self.max_image_age_ms:
            return "stale", f"newest frame {age_ms:.0f} ms before the tick"
        return None

    def _image(self, msg: Image, policy: StreamingPolicy) -> np.ndarray | None:
        """The message as the policy's kind of image (RGB or depth), or None (counted)."""
        try:
            image = to_numpy(msg, kind=policy.spec.image)
        except ImageError as err:
            self.counters.reject(err.reason, str(err))
            return None
        self._note_size(policy, image.shape[:2])
        return image

    def _note_size(self, policy: StreamingPolicy, size: tuple[int, int]) -> None:
        """Count frames not of the training size; log each new camera size once."""
        trained = tuple(policy.spec.pixel_shape[1:])
        if size == trained:
            return
        self.counters.add("resized")
        if size not in self._sizes_seen:
            self._sizes_seen.add(size)
            self.get_logger().info(
                f"camera frames {size[1]}x{size[0]} are centre-cropped to the training aspect "
                f"ratio and area-resized to {trained[1]}x{trained[0]}"
            )

    def _on_episode_start(self, msg: Header) -> None:
        """A new episode's frames start at ``msg.stamp``."""
        with self._lock:
            self._restart_ns = stamp_to_ns(msg.stamp)

    def _maybe_restart(self, policy: StreamingPolicy, stamp_ns: int) -> None:
        """Drop the frame history at the first frame of a new episode (lock held)."""
        if self._restart_ns is not None and stamp_ns >= self._restart_ns:
            policy.reset_stream()
            self._restart_ns = None
            self.counters.add("episode_restarts")

    # Diagnostics and shutdown -----------------------------------------------------------------

    def _diagnostic_values(self) -> dict[str, Any]:
        """Extra values for /diagnostics."""
        return {
            "checkpoint": self.checkpoint,
            "task": self.policy.spec.task if self.policy else "",
            "hot_reload": self.hot_reload,
            "inference_ms": f"{self.inference_ms:.1f}",
            "load_ms": f"{self.load_ms:.0f}",
        }

    def close(self) -> None:
        """Stop the inference and loader threads and log the final counters."""
        with self._wake:
            self._running = False
            self._wake.notify()
        self._worker.join()
        if self.hot_reload:
            with self._queue:
                self._queue.notify()
            self._loader.join()
            pending = self._pending
            if pending is not None and pending.reply is not None:
                pending.reply.set_result((False, "policy_node is shutting down"))
        self.get_logger().info(f"policy_node counters: {self.counters.as_dict()}")


def main(args: list[str] | None = None) -> int:
    """Entry point ``policy_node``."""
    return run_nodes([PolicyNode], args, executable=True)


if __name__ == "__main__":
    raise SystemExit(main())
