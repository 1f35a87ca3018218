"""Helpers shared by the nodes: parameters, QoS, counters, diagnostics, stamps, entry points."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidTopicNameException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from rclpy.validate_topic_name import validate_topic_name

SENSOR_QOS: QoSProfile = qos_profile_sensor_data  # best effort, keep last 5
RELIABLE_QOS = QoSProfile(depth=10)
# Latched: a late subscriber still gets the last message (checkpoint paths).
LATCHED_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
DRY_RUN_TOPIC = "hardware_bridge/dry_run/commands"  # the bridge's commands when dry_run is on


class ParameterError(ValueError):
    """A node parameter has an invalid value; the message names the parameter."""


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a typed parameter with a description and return its value."""
    descriptor = ParameterDescriptor(description=description)
    try:
        if isinstance(default, list) and not default:
            declared = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
            return list(declared.value or [])
        return node.declare_parameter(name, default, descriptor).value
    except InvalidParameterTypeException as err:  # e.g. rate_hz:=50, an integer for a float
        raise ParameterError(f"parameter '{name}': {err}") from err


def require(condition: bool, name: str, message: str) -> None:
    """Raise ParameterError naming ``name`` unless ``condition`` holds."""
    if not condition:
        raise ParameterError(f"parameter '{name}': {message}")


def require_topic(parameter: str, name: str) -> None:
    """Raise ParameterError naming ``parameter`` unless ``name`` is a valid topic name."""
    try:
        validate_topic_name(name)
    except InvalidTopicNameException as err:
        message = f"parameter '{parameter}': invalid topic name {name!r}: {err}"
        raise ParameterError(message) from err


def destroy_on_error(init: Callable[..., None]) -> Callable[..., None]:
    """Decorate a node's ``__init__``: if it raises, destroy the half-built node at once.

    A node left to the garbage collector is torn down at an arbitrary later moment, inside a
    live context, which can make Fast DDS spin forever in participant teardown."""

    @functools.wraps(init)
    def wrapper(self: Node, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except BaseException:
            if getattr(self, "handle", None) is not None:  # rclpy built the node itself
                self.destroy_node()
            raise

    return wrapper


# appended to a ``policy/proprio`` message of a policy with a slower camera: the stamp of the
# newest frame in its stack when it acted (what makes a replay of it exact)
FRAME_LABELS = ("camera_frame.sec", "camera_frame.nanosec")


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def now_ns(node: Node) -> int:
    """The node clock (sim time when ``use_sim_time``) in nanoseconds."""
    return node.get_clock().now().nanoseconds


class Counters:
    """Named event counters with throttled warnings for rejected inputs."""

    def __init__(self, node: Node, throttle_s: float = 2.0) -> None:
        self.node, self.throttle_s = node, throttle_s
        self.counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        """Count an event."""
        self.counts[name] += amount

    def reject(self, reason: str, detail: str) -> None:
        """Count a rejected input under ``rejected/<reason>`` and warn (throttled per reason)."""
        self.counts[f"rejected/{reason}"] += 1
        self.counts["rejected"] += 1
        self.node.get_logger().warning(
            f"rejected input ({reason}): {detail} [total {self.counts['rejected']}]",
            throttle_duration_sec=self.throttle_s,
        )

    def as_dict(self) -> dict[str, int]:
        """Plain copy of the counts."""
        return dict(self.counts)


class Diagnostics:
    """Publishes a node's counters (and extra values) on /diagnostics at a fixed period."""

    def __init__(
        self,
        node: Node,
        counters: Counters,
        extra: Callable[[], dict[str, Any]] | None = None,
        period_s: float = 1.0,
    ) -> None:
        self.node, self.counters, self.extra = node, counters, extra
        self.pub = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self.timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        """One DiagnosticArray with this node's status."""
        values = {**self.counters.as_dict(), **(self.extra() if self.extra else {})}
        warn = bool(values.get("rejected"))
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if warn else DiagnosticStatus.OK,
            name=self.node.get_fully_qualified_name(),
            message="rejected inputs" if warn else "ok",
            values=[KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_signals() -> tuple[signal.Signals, ...]:
    """SIGINT, SIGTERM and, unless ignored (``nohup``), SIGHUP: closing the terminal stops the
    nodes as cleanly as Ctrl-C does."""
    hangup = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    return STOP_SIGNALS + (() if hangup else (signal.SIGHUP,))


class _StopRequest:
    """Why the spin loop should end: a SIGINT/SIGTERM came, or the parent process is gone."""

    def __init__(self, watch_parent: bool) -> None:
        self.signalled = False
        self.parent = os.getppid() if watch_parent else None

    def on_signal(self, _signum: int, _frame: Any) -> None:
        """SIGINT/SIGTERM handler: only note it; the loop ends and the nodes close with the
        context alive (the bridge publishes its safe command, the trainer saves)."""
        self.signalled = True

    def orphaned(self) -> bool:
        """The parent process died (the process was re-parented)."""
        return self.parent is not None and os.getppid() != self.parent

    def requested(self) -> bool:
        """A signal came or the parent is gone."""
        return self.signalled or self.orphaned()


def run_nodes(
    factories: Sequence[Callable[[], Node]],
    args: list[str] | None = None,
    until: Callable[[], bool] | None = None,
    *,
    executable: bool = False,
) -> int:
    """Init rclpy, build nodes, spin them until SIGINT/SIGTERM (or until ``until()`` is true).

    ``executable``: this call is a node executable's whole process. It also stops when its
    parent dies (a launch that failed part-way must not leave an orphan commanding the robot),
    and SIGINT/SIGTERM stay ignored until the process exits (launch follows the terminal's
    SIGINT with its own, and SIGTERM after 5 s). Otherwise the previous handlers come back.

    One single-threaded executor: every callback is short (policy inference and training run
    on their own threads). rclpy's MultiThreadedExecutor busy-waits while a callback group is
    busy and starved the policy of the GIL (docs/experiments/ros.md, "Executor choice")."""
    stop = _StopRequest(watch_parent=executable)
    previous = {sig: signal.signal(sig, stop.on_signal) for sig in stop_signals()}
    nodes: list[Node] = []
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        executor = SingleThreadedExecutor()
        for factory in factories:  # one by one: a failing node still closes the earlier ones
            nodes.append(factory())
            executor.add_node(nodes[-1])
        while rclpy.ok() and not stop.requested() and not (until and until()):
            executor.spin_once(timeout_sec=0.1)
        if stop.orphaned():
            get_logger("run_nodes").warning("parent process exited: shutting down")
    except ExternalShutdownException:
        pass
    except ParameterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        _close(nodes)
        for sig, handler in previous.items():  # SIG_IGN survives the interpreter's shutdown
            signal.signal(sig, signal.SIG_IGN if executable else handler)
    return 0


def _close(nodes: list[Node]) -> None:
    """Close (safe command, checkpoint) and destroy the nodes, then shut rclpy down."""
    for node in reversed(nodes):  # the bridge (built after its inputs) stops first
        close = getattr(node, "close", None)
        if close is not None:
            close()
        node.destroy_node()
    rclpy.try_shutdown()
