"""sdpg_ros.common on a real rclpy graph: half-built nodes are destroyed, diagnostics levels."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.exceptions import InvalidNodeNameException
from rclpy.node import Node
from std_msgs.msg import String

from sdpg_ros.common import RELIABLE_QOS, Counters, Diagnostics, ParameterError, destroy_on_error
from tests.ros.helpers import Collector


class HalfBuilt(Node):
    """A node whose constructor fails after rclpy built it (as parameter validation does)."""

    @destroy_on_error
    def __init__(self, name: str, built: list[Node], **kwargs) -> None:
        super().__init__(name, **kwargs)
        built.append(self)
        self.create_publisher(String, "half_built/out", RELIABLE_QOS)
        self.create_timer(0.1, lambda: None)
        raise ParameterError("parameter 'x': invalid")


def test_a_node_failing_in_its_constructor_is_destroyed_at_once(graph):
    probe = graph.add(Node("probe", context=graph.context))
    built: list[Node] = []
    with pytest.raises(ParameterError, match="parameter 'x'"):
        HalfBuilt("half_built", built, context=graph.context)
    assert "half_built" not in probe.get_node_names()  # not left to the garbage collector
    assert probe.count_publishers("half_built/out") == 0
    with pytest.raises(Exception, match="destruction was requested"):  # rclpy's InvalidHandle
        built[0].get_name()


def test_a_node_rclpy_could_not_build_raises_its_own_error(graph):
    built: list[Node] = []
    with pytest.raises(InvalidNodeNameException):
        HalfBuilt("bad name", built, context=graph.context)
    assert built == []


def test_diagnostics_level_and_message_follow_rejections(graph):
    node = graph.add(Node("diagnosed", context=graph.context))
    counters = Counters(node)
    Diagnostics(node, counters, period_s=0.05)
    got = Collector(node, DiagnosticArray, "/diagnostics", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(got) >= 2)
    counters.reject("nonfinite", "NaN in the input")

    def warned() -> bool:
        return any(m.status[0].level == DiagnosticStatus.WARN for m in got.messages)

    assert graph.spin_until(warned)
    statuses = [m.status[0] for m in got.messages]
    assert (statuses[0].level, statuses[0].message) == (DiagnosticStatus.OK, "ok")
    for status in statuses:
        values = {kv.key: kv.value for kv in status.values}
        if status.level == DiagnosticStatus.OK:
            assert status.message == "ok" and "rejected" not in values
        else:
            assert (status.level, status.message) == (DiagnosticStatus.WARN, "rejected inputs")
            assert values["rejected"] == "1" and values["rejected/nonfinite"] == "1"
