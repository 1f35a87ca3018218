"""``cmd_vel_source``: a fixed velocity command on ``cmd_vel`` (geometry_msgs/Twist) at a rate,
for legged robots without a teleoperator (``sdpg-ros deploy --cmd-vel vx,vy,wz``). The policy
node zeroes a command older than its ``cmd_vel_timeout_ms``, so stopping this node stops the
robot walking."""

from __future__ import annotations

import math
from typing import Any

from geometry_msgs.msg import Twist
from rclpy.node import Node

from sdpg_ros.common import RELIABLE_QOS, declare, destroy_on_error, require, run_nodes

NODE_NAME = "cmd_vel_source"


class CmdVelSource(Node):
    """Publishes (linear_x, linear_y, angular_z) every 1 / rate_hz seconds."""

    @destroy_on_error
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        values = [
            declare(self, "linear_x", 0.0, "forward velocity, m/s"),
            declare(self, "linear_y", 0.0, "leftward velocity, m/s"),
            declare(self, "angular_z", 0.0, "yaw rate, rad/s"),
        ]
        rate_hz = declare(self, "rate_hz", 10.0, "publishing rate, Hz")
        for name, value in zip(("linear_x", "linear_y", "angular_z"), values, strict=True):
            require(math.isfinite(value), name, f"must be finite, got {value}")
        require(rate_hz > 0.0, "rate_hz", f"must be > 0, got {rate_hz}")
        self.msg = Twist()
        self.msg.linear.x, self.msg.linear.y, self.msg.angular.z = values
        self.publisher = self.create_publisher(Twist, "cmd_vel", RELIABLE_QOS)
        self.create_timer(1.0 / rate_hz, lambda: self.publisher.publish(self.msg))


def main(args: list[str] | None = None) -> int:
    """Entry point ``cmd_vel_source``."""
    return run_nodes([CmdVelSource], args, executable=True)


if __name__ == "__main__":
    raise SystemExit(main())
