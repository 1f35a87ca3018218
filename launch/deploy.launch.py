"""Deploy a trained policy: ``ros2 launch sdpg_ros deploy.launch.py backend:=sim|real ...``.

Policy and bridge nodes are identical for both backends; ``backend:=sim`` adds the MuJoCo
sim_backend (same topics as a robot with ros2_control and a camera driver; camera size, action
repeat and task from the checkpoint), ``backend:=real`` includes the vendor driver launch
(``driver_launch:=...``) and remaps the camera and joint state topics. ``dry_run:=true`` sends
the bridge's commands to a harmless topic.

Every argument and dependency is checked before any node is returned (launch does not stop
nodes it already started when a later action fails), and the bridge is the last node to start.
On ``backend:=real`` the bridge waits for the lifecycle services (``autostart:=true`` to
activate it at once) and hot reload is off (``hot_reload:=true``); the sim has no e-stop
publisher, so its bridge does not wait for one.

The session itself is ``sdpg_ros.sessions.deploy`` (``sdpg-ros deploy`` runs the same specs in
one process); this file only turns its specs into launch_ros actions.
"""

from sdpg_ros.launch_support import launch_description


def generate_launch_description():
    """Launch arguments, then the nodes (resolved and checked at launch time)."""
    return launch_description("deploy")
