"""Train with SDPG: ``ros2 launch sdpg_ros train.launch.py task:=reacher [eval_in_sim:=true]``.

trainer_node runs sdpg_core training with the same config files and overrides as ``sdpg train``
and publishes progress, a camera preview and each new checkpoint's path. With
``eval_in_sim:=true`` the deploy nodes (sim_backend, policy_node, hardware_bridge) run beside
it: the sim is built from the first checkpoint announced and the policy node hot-reloads every
new one, so the robot visibly improves. The session ends with the training.

Every argument is checked (and the training config resolved) before any node is returned, and
the bridge is the last node to start; the sim has no e-stop publisher, so the bridge does not
wait for one.

The session itself is ``sdpg_ros.sessions.train`` (``sdpg-ros train`` runs the same specs in
one process); this file only turns its specs into launch_ros actions.
"""

from sdpg_ros.launch_support import launch_description


def generate_launch_description():
    """Launch arguments, then the nodes (resolved and checked at launch time)."""
    return launch_description("train")
