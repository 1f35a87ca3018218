"""``policy_node``: camera images in, normalised deterministic actions out (``policy/action``).

Inference runs the training code's frame stack and normalisation (``Policy.act_image``) on its
own thread, fed the newest frame by the image callback, so the executor never waits on torch
(and a slow policy skips frames, counted as ``superseded``, instead of acting on old ones).
Every bad input (encoding, size, truncated data, stale stamp, non-finite output) is counted
and skipped, never fatal.
An ``episode_start`` Header (from the sim backend, or an operator's tool on hardware) drops
the frame history at the first frame stamped at or after it, as training does at a reset
(one frame late if it arrives after that frame).
Hot reload: set the ``checkpoint`` parameter, call ``~/reload``, or publish a path on
``checkpoint_topic``; a failed load keeps the running policy.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from sdpg_core.models import resolve_device
from sdpg_core.policy import Policy
from sdpg_ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    Counters,
    Diagnostics,
    ParameterError,
    declare,
    now_ns,
    require,
    require_topic,
    run_nodes,
    stamp_to_ns,
)
from sdpg_ros.image_conversion import ImageError, to_numpy

NODE_NAME = "policy_node"
STARTUP_ONLY = (
    "device",
    "max_image_age_ms",
    "image_height",
    "image_width",
    "checkpoint_topic",
    "use_joint_states",
    "episode_topic",
)


def load_policy(path: str, device: str) -> Policy:
    """A pixel policy from a checkpoint (ValueError for a state-only policy)."""
    policy = Policy.load(path, device)
    if policy.spec.obs_mode != "pixels":
        raise ValueError(f"{path}: policy for {policy.spec.task!r} acts on state, not images")
    _, height, width = policy.spec.pixel_shape
    policy.act_image(np.zeros((height, width, 3), dtype=np.uint8))  # warm up: no slow 1st frame
    policy.reset_stream()
    return policy


class PolicyNode(Node):
    """Runs a trained pixel policy on ``camera/image_raw`` and publishes ``policy/action``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._declare_parameters()
        self.policy: Policy | None = None
        if self.checkpoint:
            try:
                self.policy = load_policy(self.checkpoint, self.device)
            except Exception as err:  # any unreadable checkpoint is a start-up parameter error
                raise ParameterError(f"parameter 'checkpoint': {err}") from err
        self.counters = Counters(self)
        self._lock = threading.Lock()  # guards self.policy (swap) and its frame stack
        self.inference_ms = 0.0
        self.action_pub = self.create_publisher(JointState, "policy/action", RELIABLE_QOS)
        self.create_subscription(
            Image,
            "camera/image_raw",
            self._on_image,
            SENSOR_QOS,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_service(Trigger, "~/reload", self._on_reload)
        if self.checkpoint_topic:
            self.create_subscription(
                String, self.checkpoint_topic, self._on_checkpoint_msg, LATCHED_QOS
            )
        if self.episode_topic:
            self.create_subscription(
                Header, self.episode_topic, self._on_episode_start, RELIABLE_QOS
            )
        self._restart_ns: int | None = None  # newest episode_start stamp not yet applied
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics = Diagnostics(self, self.counters, self._diagnostic_values)
        self._latest: Image | None = None  # newest frame not yet acted on
        self._wake = threading.Condition()
        self._running = True
        self._worker = threading.Thread(target=self._work, name="policy-inference", daemon=True)
        self._worker.start()

    def _declare_parameters(self) -> None:
        """Declare, read and validate the parameters (ParameterError names the bad one)."""
        self.checkpoint = declare(self, "checkpoint", "", "policy checkpoint file (.pt)")
        self.device = declare(self, "device", "cpu", "torch device: cpu or cuda[:i]")
        self.max_image_age_ms = declare(
            self, "max_image_age_ms", 200.0, "reject older images (node clock); 0 = no check"
        )
        self.image_height = declare(
            self, "image_height", 0, "accepted camera height; 0 = the policy's training size"
        )
        self.image_width = declare(
            self, "image_width", 0, "accepted camera width; 0 = the policy's training size"
        )
        self.checkpoint_topic = declare(
            self, "checkpoint_topic", "trainer/checkpoint", "String paths to load ('' = off)"
        )
        self.use_joint_states = declare(
            self, "use_joint_states", False, "feed joint states to the policy (pixel: no)"
        )
        self.episode_topic = declare(
            self, "episode_topic", "episode_start", "Header: frame history restarts ('' = off)"
        )
        require(
            bool(self.checkpoint or self.checkpoint_topic),
            "checkpoint",
            "a checkpoint path is required (or a checkpoint_topic to wait on)",
        )
        try:
            resolve_device(self.device)
        except (RuntimeError, ValueError) as err:
            raise ParameterError(f"parameter 'device': {err}") from err
        require(self.max_image_age_ms >= 0.0, "max_image_age_ms", "must be >= 0 (0 = off)")
        sizes = (self.image_height, self.image_width)
        require(min(sizes) >= 0, "image_height", "image_height/image_width must be >= 0")
        require((0 in sizes) == (sizes == (0, 0)), "image_width", "set both sizes or neither")
        require(
            not self.use_joint_states,
            "use_joint_states",
            "the policies act on camera images only (no proprioceptive input)",
        )
        if self.checkpoint_topic:
            require_topic("checkpoint_topic", self.checkpoint_topic)
        if self.episode_topic:
            require_topic("episode_topic", self.episode_topic)

    def expected_size(self, policy: Policy) -> tuple[int, int]:
        """(height, width) of the accepted camera images."""
        if self.image_height:
            return self.image_height, self.image_width
        return policy.spec.pixel_shape[1], policy.spec.pixel_shape[2]

    def _on_image(self, msg: Image) -> None:
        """Executor callback: hand the frame to the inference thread (never blocks on torch)."""
        self.counters.add("images")
        with self._wake:
            if self._latest is not None:  # inference fell behind the camera: keep the newest
                self.counters.add("superseded")
            self._latest = msg
            self._wake.notify()

    def _work(self) -> None:
        """Inference thread: act on the newest frame until ``close``."""
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._latest is not None or not self._running)
                if not self._running:
                    return
                msg, self._latest = self._latest, None
            try:
                self._act(msg)
            except Exception as err:  # a bug must not silently stop the policy
                self.counters.add("errors")
                self.get_logger().error(f"inference failed: {err!r}", throttle_duration_sec=2.0)

    def _act(self, msg: Image) -> None:
        """Validate one camera image, act on it and publish the action with its stamp."""
        try:
            image = to_numpy(msg)
        except ImageError as err:
            self.counters.reject(err.reason, str(err))
            return
        age_ms = (now_ns(self) - stamp_to_ns(msg.header.stamp)) * 1e-6
        if self.max_image_age_ms and age_ms > self.max_image_age_ms:
            self.counters.reject("stale", f"image {age_ms:.0f} ms old > {self.max_image_age_ms}")
            return
        with self._lock:
            policy = self.policy
            if policy is None:
                self.counters.add("waiting_for_checkpoint")
                return
            expected = self.expected_size(policy)
            if image.shape[:2] != expected:
                self.counters.reject("size", f"image {image.shape[:2]}, expected {expected}")
                return
            self._maybe_restart(policy, stamp_to_ns(msg.header.stamp))
            start = time.perf_counter()
            action = policy.act_image(image)
            self.inference_ms = (time.perf_counter() - start) * 1e3
        if not np.isfinite(action).all():
            self.counters.reject("nonfinite", f"policy output {action.tolist()}")
            return
        out = JointState(name=list(policy.spec.joint_names), position=action.tolist())
        out.header.stamp = msg.header.stamp
        self.action_pub.publish(out)
        self.counters.add("actions")

    def _on_episode_start(self, msg: Header) -> None:
        """A new episode's frames start at ``msg.stamp``."""
        with self._lock:
            self._restart_ns = stamp_to_ns(msg.stamp)

    def _maybe_restart(self, policy: Policy, stamp_ns: int) -> None:
        """Drop the frame history at the first frame of a new episode (lock held)."""
        if self._restart_ns is not None and stamp_ns >= self._restart_ns:
            policy.reset_stream()
            self._restart_ns = None
            self.counters.add("episode_restarts")

    def reload(self, path: str) -> tuple[bool, str]:
        """Load ``path`` and swap it in; on failure keep the running policy. (ok, message)."""
        try:
            policy = load_policy(path, self.device)
        except Exception as err:  # whatever the file holds, the running policy stays
            self.counters.add("reload_failed")
            message = f"reload of {path!r} failed, keeping {self.checkpoint!r}: {err}"
            self.get_logger().error(message)
            return False, message
        with self._lock:
            self.policy = policy
            self.checkpoint = path
        self.counters.add("reloads")
        self.get_logger().info(f"loaded policy {path!r} ({policy.spec.task})")
        return True, f"loaded {path}"

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """A new ``checkpoint`` value reloads (rejected if the load fails); others are fixed."""
        for param in params:
            if param.name in STARTUP_ONLY:
                return SetParametersResult(
                    successful=False, reason=f"{param.name} is read at start-up only"
                )
            if param.name == "checkpoint":
                ok, message = self.reload(param.value)
                if not ok:
                    return SetParametersResult(successful=False, reason=message)
        return SetParametersResult(successful=True)

    def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Any:
        """``~/reload``: load the current checkpoint path again (e.g. after the file changed)."""
        response.success, response.message = self.reload(self.checkpoint)
        return response

    def _on_checkpoint_msg(self, msg: String) -> None:
        """A path on ``checkpoint_topic``: set the parameter, which reloads."""
        self.set_parameters([Parameter("checkpoint", value=msg.data)])

    def _diagnostic_values(self) -> dict[str, Any]:
        """Extra values for /diagnostics."""
        return {
            "checkpoint": self.checkpoint,
            "task": self.policy.spec.task if self.policy else "",
            "inference_ms": f"{self.inference_ms:.1f}",
        }

    def close(self) -> None:
        """Stop the inference thread and log the final counters."""
        with self._wake:
            self._running = False
            self._wake.notify()
        self._worker.join()
        self.get_logger().info(f"policy_node counters: {self.counters.as_dict()}")


def main(args: list[str] | None = None) -> int:
    """Entry point ``policy_node``."""
    return run_nodes([PolicyNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
