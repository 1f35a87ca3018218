"""UR5e-class arm reaching a visible target above a table, by joint position deltas."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.actuators import add_position_servo
from sdpg_core.envs.kinematics import Chain
from sdpg_core.envs.registry import register_task
from sdpg_core.envs.task import Task
from sdpg_core.share import urdf_file

JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
HOME = np.array([-np.pi / 2, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
# Position servos of MuJoCo Menagerie's ur5e: (kp, joint damping, force limit), shoulder and
# elbow joints then wrists; armature 0.1 on every joint.
SERVO = {"big": (3500.0, 200.0, 150.0), "wrist": (3000.0, 15.0, 28.0)}
ARMATURE = 0.1


@register_task("ur5e_reach", "UR5e-class arm: tool0 onto a visible target (joint deltas)")
class UR5eReach(Task):
    """Reward terms: ``distance`` (-tool0/target distance / 0.3 m), ``reached`` (1 within 3 cm)
    and ``action`` (-0.05 |a|^2: small, smooth deltas)."""

    camera = "front"
    depth_camera = "front_depth"  # env.image=depth: the D435's depth stream, same mount
    depth_range = (0.11, 2.5)  # the D435's minimum range; beyond the table's far corner
    episode_steps = 100  # 5 s at 20 Hz
    frame_skip = 10  # 10 x 5 ms
    extras_dim = 3 + len(JOINTS)  # target (x, y, z), then the joint position targets
    has_success = True
    success_window = 10  # 0.5 s: tool0 held within the radius for most of the final window
    reward_terms = ("distance", "reached", "action")
    proprio = True
    default_pose = tuple(HOME.tolist())
    success_radius = 0.03
    max_delta = 0.05  # rad per control step (1 rad/s): the bound of a joint target's change
    start_noise = 0.3  # rad around HOME at reset
    target_box = ((-0.15, -0.75, 0.1), (0.35, -0.3, 0.45))  # reachable, above the table (m)

    def build_spec(self) -> mujoco.MjSpec:
        """URDF arm + table, lights, mocap target, the D435 camera and position servos."""
        spec = mujoco.MjSpec.from_file(str(urdf_file("ur5e.urdf")))
        spec.compiler.discardvisual = False  # our geoms are non-colliding but must render
        spec.compiler.fusestatic = False  # keep tool0 and the camera frames as bodies
        spec.option.timestep = 0.005
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        world = spec.worldbody
        world.add_light(pos=[0, -0.5, 2.0], dir=[0, 0, -1], diffuse=[0.7, 0.7, 0.7])
        world.add_light(pos=[0.8, -1.2, 1.5], dir=[-0.4, 0.6, -0.7], diffuse=[0.35, 0.35, 0.35])
        world.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0.1, -0.4, -0.02],
            size=[0.7, 0.7, 0.02],
            rgba=[0.72, 0.62, 0.5, 1],
        )
        target = world.add_body(name="target", mocap=True, pos=[0.1, -0.5, 0.3])
        target.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.025, 0, 0], rgba=[0.9, 0.15, 0.15, 1]
        )
        optical = spec.body("camera_color_optical_frame")
        # MuJoCo cameras look along -z with y up; the optical frame looks along z with y down.
        optical.add_camera(name="front", quat=[0, 1, 0, 0], fovy=42.5)  # D435 colour, vertical
        depth = spec.body("camera_depth_optical_frame")
        depth.add_camera(name="front_depth", quat=[0, 1, 0, 0], fovy=58.0)  # D435 depth, vertical
        wrist = spec.body("wrist_camera_optical_frame")  # option: env.camera=wrist
        wrist.add_camera(name="wrist", quat=[0, 1, 0, 0], fovy=60.0)  # SDPG's Franka wrist FOV
        for geom in spec.geoms:
            geom.contype, geom.conaffinity = 0, 0
        for i, name in enumerate(JOINTS):
            kp, damping, force = SERVO["big" if i < 3 else "wrist"]
            joint = spec.joint(name)
            joint.damping, joint.armature = [damping, 0, 0], ARMATURE
            add_position_servo(spec, name, kp, force)
        return spec

    def bind(self, model: mujoco.MjModel) -> None:
        """Cache the kinematic chain to tool0 (read from the model) and the target mocap id."""
        super().bind(model)
        self.chain = Chain(model, "tool0")
        self.limits = model.actuator_ctrlrange.copy()
        self.target_mocap = int(model.body("target").mocapid[0])

    def tool_position(self, qpos: np.ndarray) -> np.ndarray:
        """Forward kinematics of tool0 in the world (= base_link) frame, [n, 3]."""
        return self.chain.position(qpos)

    def initial_state(self, rng, n):
        """Arm at rest near HOME (targets = pose) and a target in the reachable box."""
        qpos = HOME + rng.uniform(-self.start_noise, self.start_noise, (n, len(JOINTS)))
        low, high = self.target_box
        target = rng.uniform(low, high, (n, 3))
        return qpos, np.zeros((n, len(JOINTS))), np.concatenate([target, qpos], axis=1)

    def control(self, action, extras):
        """Joint targets move by at most ``max_delta`` per step, clamped to the joint limits."""
        low, high = self.limits.T
        targets = np.clip(extras[:, 3:] + self.max_delta * action, low, high)
        return targets, np.concatenate([extras[:, :3], targets], axis=1)

    def action_mapping(self):
        """Joint targets move by ``max_delta`` a per step (delta)."""
        return "delta", np.full(len(JOINTS), self.max_delta), np.zeros(len(JOINTS))

    def action_for(self, ctrl, extras):
        """The delta toward the commanded joint positions, at most ``max_delta`` per step."""
        return np.clip((ctrl - extras[:, 3:]) / self.max_delta, -1.0, 1.0)

    def hold_ctrl(self, qpos, extras):
        """The current joint targets (the measured pose sags under gravity)."""
        return extras[:, 3:]

    def observation(self, qpos, qvel, extras):
        """[q - HOME, 0.1 qdot, targets - HOME, tool0, target, tool0 - target] (27)."""
        tool = self.tool_position(qpos)
        target = extras[:, :3]
        return np.concatenate(
            [qpos - HOME, 0.1 * qvel, extras[:, 3:] - HOME, tool, target, tool - target], axis=1
        )

    def _distance(self, qpos, extras):
        return np.linalg.norm(self.tool_position(qpos) - extras[:, :3], axis=1)

    def terms(self, qpos, qvel, extras, action):
        """Dense distance shaping, an on-target bonus and a small action cost."""
        dist = self._distance(qpos, extras)
        return {
            "distance": -dist / 0.3,
            "reached": (dist < self.success_radius).astype(np.float64),
            "action": -0.05 * np.square(action).sum(axis=1),
        }

    def success(self, qpos, qvel, extras):
        """tool0 within ``success_radius`` of the target."""
        return self._distance(qpos, extras) < self.success_radius

    def prepare_render(self, data, extras):
        """Move the mocap target to this env's target."""
        data.mocap_pos[self.target_mocap] = extras[:3]
