"""ROS 2 nodes around ``sdpg_core``: sim backend, policy, hardware bridge, trainer."""
