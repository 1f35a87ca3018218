"""cmd_vel_source: a fixed velocity command at a rate; bad parameters are named."""

import math

import pytest
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter

from sdpg_ros.command_source import CmdVelSource
from sdpg_ros.common import RELIABLE_QOS, ParameterError
from tests.ros.helpers import Collector


def source(graph, **params) -> CmdVelSource:
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return graph.add(CmdVelSource(context=graph.context, parameter_overrides=overrides))


def test_publishes_the_command_at_its_rate(graph):
    source(graph, linear_x=0.5, linear_y=-0.1, angular_z=0.3, rate_hz=20.0)
    probe = graph.add(Node("probe", context=graph.context))
    received = Collector(probe, Twist, "cmd_vel", RELIABLE_QOS)
    assert graph.spin_until(lambda: len(received) >= 5, 5.0)
    msg = received.last
    assert (msg.linear.x, msg.linear.y, msg.angular.z) == (0.5, -0.1, 0.3)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"rate_hz": 0.0}, "rate_hz"),
        ({"linear_x": math.nan}, "linear_x"),
        ({"rate_hz": 10}, "rate_hz"),
    ],
)
def test_bad_parameters_are_named(graph, params, name):
    with pytest.raises(ParameterError, match=f"parameter '{name}'"):
        source(graph, **params)
