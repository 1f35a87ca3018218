"""The policy node's loading and hot reload (a mixin of ``PolicyNode``): a checkpoint or an
exported ``.onnx`` is read, its spec checked against the robot and the running policy before
any network is built, then built and warmed up; hot reload takes the ``checkpoint`` parameter,
``~/reload`` and ``checkpoint_topic``, loading on its own thread so inference never waits."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.parameter import Parameter
from rclpy.task import Future
from std_msgs.msg import String
from std_srvs.srv import Trigger

from sdpg_core import checkpoint as checkpoint_file
from sdpg_core.envs.base import EnvSpec
from sdpg_core.fit import Misfit, checkpoint_spec, robot_misfit, swap_misfit
from sdpg_core.onnx_policy import OnnxPolicy, is_onnx
from sdpg_core.stream import StreamingPolicy
from sdpg_ros.common import LATCHED_QOS

STARTUP_ONLY = (
    "device",
    "robot",
    "hot_reload",
    "max_image_age_ms",
    "max_image_lead_ms",
    "max_image_pixels",
    "image_reliability",
    "checkpoint_topic",
    "max_joint_state_offset_ms",
    "max_imu_offset_ms",
    "cmd_vel_timeout_ms",
    "episode_topic",
)


class Refused(Exception):
    """A checkpoint that will not run here; ``reason`` is the counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class LoadRequest:
    """One hot-reload request; ``reply`` (if any) gets ``(ok, message)`` when it is over."""

    path: str
    reply: Future | None = None


class PolicyLoading:
    """Loading and hot reload; the node provides ``checkpoint``, ``device``, ``robot``,
    ``hot_reload``, ``checkpoint_topic``, ``policy``, ``inputs``, ``counters``, ``_lock`` and
    ``_running``."""

    def misfit(self, spec: EnvSpec) -> Misfit | None:
        """Why a policy for ``spec`` cannot run here (robot, running policy), or None."""
        if spec.obs_mode == "state":
            return Misfit("obs_mode", f"policy for {spec.task!r} acts on privileged state")
        if self.robot is not None and (found := robot_misfit(spec, self.robot)):
            return found
        running = self.policy
        return swap_misfit(spec, running.spec) if running is not None else None

    def load(self, path: str) -> StreamingPolicy:
        """Read ``path`` (a checkpoint, or an exported ``.onnx`` run by onnxruntime without
        torch), check its spec, then build and warm up the policy.

        Raises Refused; the checks run before any network is built, so a misfit is refused
        in milliseconds whatever size of network it declares."""
        policy = self._onnx_policy(path) if is_onnx(path) else self._torch_policy(path)
        try:
            policy.warm_up()
        except Exception as err:  # a network that builds but cannot run on a frame
            raise Refused("build", f"{path}: cannot run the policy: {err}") from err
        return policy

    def _onnx_policy(self, path: str) -> StreamingPolicy:
        """An exported ONNX policy whose IO contract fits the robot and the running policy."""
        try:
            policy = OnnxPolicy.load(path)
        except ValueError as err:
            raise Refused("unreadable", str(err)) from err
        if found := self.misfit(policy.spec):
            raise Refused(found.reason, f"{path}: {found.message}")
        return policy

    def _torch_policy(self, path: str) -> StreamingPolicy:
        """A checkpoint's policy (torch, imported on first use), its spec and weights checked."""
        from sdpg_core.policy import Policy, nonfinite_weights

        try:
            data = checkpoint_file.load(path)
            spec = checkpoint_spec(data, path)
        except (FileNotFoundError, ValueError) as err:
            raise Refused("unreadable", str(err)) from err
        found = self.misfit(spec) or nonfinite_weights(data)
        if found:
            raise Refused(found.reason, f"{path}: {found.message}")
        try:
            return Policy.from_checkpoint(data, path, self.device)
        except ValueError as err:  # from_checkpoint names the file and what does not fit
            raise Refused("build", str(err)) from err

    def _start_hot_reload(self) -> None:
        """The loader thread and the reload interfaces: ``~/reload``, ``checkpoint_topic``."""
        self._queue = threading.Condition()  # guards the four fields below
        self._pending: LoadRequest | None = None  # queued, not yet taken by the loader
        self._busy = False  # a request is queued or loading
        self._finished: list[tuple[LoadRequest, bool, str]] = []
        self._loads_done = self.create_guard_condition(self._on_loads_done)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        # own group: the group stays busy while the service awaits the loader
        group = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, "~/reload", self._on_reload, callback_group=group)
        if self.checkpoint_topic:
            self.create_subscription(
                String, self.checkpoint_topic, self._on_checkpoint_msg, LATCHED_QOS
            )
        self._loader = threading.Thread(target=self._load_loop, name="policy-loader", daemon=True)
        self._loader.start()

    def request_reload(self, request: LoadRequest) -> None:
        """Queue a load; a request still waiting for the loader is superseded by the new one."""
        with self._queue:
            if self._pending is not None:
                self.counters.add("reload_superseded")
                self._finished.append((self._pending, False, "superseded by a newer request"))
                self._loads_done.trigger()
            self._pending, self._busy = request, True
            self._queue.notify()

    def _load_loop(self) -> None:
        """Loader thread: load queued checkpoints one at a time until ``close``."""
        while True:
            with self._queue:
                self._queue.wait_for(lambda: self._pending is not None or not self._running)
                if not self._running:
                    return
                request, self._pending = self._pending, None
            ok, message = self._swap_in(request.path)
            with self._queue:
                self._finished.append((request, ok, message))
                self._busy = self._pending is not None
            self._loads_done.trigger()

    def _swap_in(self, path: str) -> tuple[bool, str]:
        """Load ``path`` and make it the running policy, or refuse it. (ok, message)."""
        start = time.perf_counter()
        try:
            policy = self.load(path)
        except Refused as err:
            self.load_ms = (time.perf_counter() - start) * 1e3
            self.counters.add("reload_rejected")
            self.counters.add(f"reload_rejected/{err.reason}")
            message = (
                f"reload refused ({err.reason}, {self.load_ms:.0f} ms), keeping "
                f"{self.checkpoint or 'no policy'}: {err}"
            )
            self.get_logger().error(message)
            return False, message
        with self._lock:
            self.policy, self.checkpoint = policy, path
            self.inputs.use(policy.spec)
        self.load_ms = (time.perf_counter() - start) * 1e3
        self.counters.add("reloads")
        message = f"loaded {path} ({policy.spec.task}) in {self.load_ms:.0f} ms"
        self.get_logger().info(message)
        return True, message

    def _on_loads_done(self) -> None:
        """Executor: answer finished requests; once idle, the parameter shows the running path."""
        with self._queue:
            finished, self._finished = self._finished, []
            idle = not self._busy
        for request, ok, message in finished:
            if request.reply is not None:
                request.reply.set_result((ok, message))
        if idle and self.get_parameter("checkpoint").value != self.checkpoint:
            self._restoring = True
            try:
                self.set_parameters([Parameter("checkpoint", value=self.checkpoint)])
            finally:
                self._restoring = False

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Only ``checkpoint`` may change, with hot_reload on and a non-empty path."""
        for param in params:
            if param.name in STARTUP_ONLY:
                return SetParametersResult(
                    successful=False, reason=f"{param.name} is read at start-up only"
                )
            if param.name != "checkpoint" or self._restoring:
                continue
            if not self.hot_reload:
                return SetParametersResult(
                    successful=False, reason="hot_reload is false: the checkpoint is fixed"
                )
            if not param.value:
                return SetParametersResult(successful=False, reason="a checkpoint path is needed")
        return SetParametersResult(successful=True)

    def _on_parameters_set(self, params: list[Parameter]) -> None:
        """A new ``checkpoint`` value queues a load (the loader thread checks and loads it)."""
        for param in params:
            if param.name == "checkpoint" and not self._restoring:
                self.request_reload(LoadRequest(param.value))

    async def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Any:
        """``~/reload``: load the current checkpoint path again (e.g. after the file changed);
        answers when the load is over, without holding the executor meanwhile."""
        if not self.checkpoint:
            response.success, response.message = False, "no checkpoint loaded yet"
            return response
        reply = Future()
        self.request_reload(LoadRequest(self.checkpoint, reply))
        response.success, response.message = await reply
        return response

    def _on_checkpoint_msg(self, msg: String) -> None:
        """A path on ``checkpoint_topic``: set the parameter, which queues a load."""
        result = self.set_parameters([Parameter("checkpoint", value=msg.data)])[0]
        if not result.successful:
            self.get_logger().error(f"checkpoint {msg.data!r} on the topic: {result.reason}")
