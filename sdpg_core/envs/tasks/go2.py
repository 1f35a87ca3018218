"""Go2-class quadruped tracking a commanded planar velocity with PD targets around its stance."""

from __future__ import annotations

import mujoco
import numpy as np

from sdpg_core.envs.actuators import add_position_servo
from sdpg_core.envs.kinematics import Chain, projected_gravity, quat_to_mat
from sdpg_core.envs.registry import register_task
from sdpg_core.envs.task import Task
from sdpg_core.share import urdf_file

LEGS = ("FR", "FL", "RR", "RL")  # Unitree's order; each leg: hip, thigh, calf
JOINTS = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf"))
# unitree_rl_gym's go2 standing pose: hips -0.1 (right) / +0.1 (left), thighs 0.8 front / 1.0
# rear, calves -1.5; the SDPG paper's PD gains 30 / 1.5 and action scale 0.5 (../shared/ROBOTS.md).
STAND = np.array([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5])
KP, KD, ACTION_SCALE = 30.0, 1.5, 0.5
EFFORT = np.tile([23.7, 23.7, 35.55], 4)  # N m: hip, thigh, calf
ARMATURE = 0.01  # reflected rotor inertia, kg m^2
STAND_HEIGHT = 0.33  # base height standing on the default pose, m
DT = 0.02  # control period (50 Hz): the legged_gym reward terms are scaled by it
COMMAND, LAST_ACTION, AIR_TIME, CONTACT, VELOCITY_SUM = (
    slice(0, 3),
    slice(3, 15),
    slice(15, 19),
    slice(19, 23),
    slice(23, 25),
)


@register_task("go2_walk", "Go2-class quadruped: track a commanded velocity on flat ground")
class Go2Walk(Task):
    """Reward terms (legged_gym's, times the control period): ``tracking_lin_vel``,
    ``tracking_ang_vel``, ``lin_vel_z``, ``ang_vel_xy``, ``orientation``, ``torques``,
    ``action_rate``, ``feet_air_time``, ``collision``. Success: no fall, and the episode's mean
    velocity along the commanded direction within 20% of the command's speed."""

    variants = (("", "proprio"), ("_depth", "pixels"), ("_state", "state"))
    camera = "depth"
    image = "depth"
    depth_range = (0.0, 2.0)  # the parkour lineage's clipping
    camera_every = 5  # the head depth camera at 10 Hz, as on the real robot
    episode_steps = 1000  # 20 s at 50 Hz
    frame_skip = 4  # 4 x 5 ms
    extras_dim = 25  # command, last action, feet air time and contact, velocity sums
    has_success = True
    success_window = 1  # judged on the episode's last step, from the running sums
    reward_terms = (
        "tracking_lin_vel",
        "tracking_ang_vel",
        "lin_vel_z",
        "ang_vel_xy",
        "orientation",
        "torques",
        "action_rate",
        "feet_air_time",
        "collision",
    )
    metrics = ("velocity",)
    proprio = True
    imu = True  # the proprio group starts with the IMU (angular velocity, gravity direction)
    command_dim = 3  # then the velocity command (vx, vy, yaw rate)
    default_pose = tuple(STAND.tolist())
    velocity_scale = 0.05
    command_range = ((-0.5, 1.0), (-0.3, 0.3), (-0.5, 0.5))  # vx, vy (m/s), yaw rate (rad/s)
    fixed_command: tuple[float, ...] = ()  # env.command: this command in every episode

    def build_spec(self) -> mujoco.MjSpec:
        """URDF robot on a free base + floor, PD position servos, IMU sensors, depth camera."""
        spec = mujoco.MjSpec.from_file(str(urdf_file("go2.urdf")))
        spec.compiler.fusestatic = False  # keep imu, camera and feet as bodies
        spec.option.timestep = 0.005
        world = spec.worldbody
        world.add_light(pos=[0, 0, 3.0], dir=[0, 0, -1], diffuse=[0.7, 0.7, 0.7])
        floor = world.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05])
        floor.rgba, floor.contype, floor.conaffinity = [0.45, 0.5, 0.55, 1], 0, 1
        base = spec.body("base")
        base.add_freejoint(name="floating_base")
        for geom in spec.geoms:  # the robot touches the ground (and obstacles), never itself
            if geom is not floor:
                geom.contype, geom.conaffinity, geom.condim = 1, 2, 3
        imu = spec.body("imu").add_site(name="imu")
        for kind in ("gyro", "accelerometer", "framequat"):
            sensor = spec.add_sensor(name=f"imu_{kind}", objname=imu.name)
            sensor.type = getattr(mujoco.mjtSensor, f"mjSENS_{kind.upper()}")
            sensor.objtype = mujoco.mjtObj.mjOBJ_SITE
        optical = spec.body("camera_depth_optical_frame")
        optical.add_camera(name="depth", quat=[0, 1, 0, 0], fovy=58.0)  # D435 depth, vertical
        for name, effort in zip(JOINTS, EFFORT, strict=True):
            spec.joint(name).armature = ARMATURE
            add_position_servo(spec, name, KP, effort, KD)
        return spec

    def bind(self, model: mujoco.MjModel) -> None:
        """Cache the leg chains (hip origin -> knee, -> foot) and the joints' qpos/qvel columns."""
        super().bind(model)
        base = model.body("base").id
        self.feet = [Chain(model, f"{leg}_foot", base) for leg in LEGS]
        self.knees = [Chain(model, f"{leg}_calf", base) for leg in LEGS]
        self.limits = model.actuator_ctrlrange.copy()
        joints = model.actuator_trnid[:, 0]
        self.qpos_cols, self.qvel_cols = model.jnt_qposadr[joints], model.jnt_dofadr[joints]

    def initial_state(self, rng, n):
        """Standing pose with small joint noise, base just above standing height, a command."""
        qpos = np.zeros((n, self.model.nq))
        qpos[:, 2] = STAND_HEIGHT + 0.02
        yaw = rng.uniform(-np.pi, np.pi, n)
        qpos[:, 3], qpos[:, 6] = np.cos(yaw / 2), np.sin(yaw / 2)
        qpos[:, self.qpos_cols] = STAND + rng.uniform(-0.05, 0.05, (n, len(JOINTS)))
        qvel = np.zeros((n, self.model.nv))
        qvel[:, :6] = rng.uniform(-0.1, 0.1, (n, 6))
        extras = np.zeros((n, self.extras_dim))
        extras[:, COMMAND] = self.sample_command(rng, n)
        return qpos, qvel, extras

    def sample_command(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Velocity commands [n, 3] uniform in ``command_range`` (or the fixed one)."""
        if self.fixed_command:
            return np.tile(np.asarray(self.fixed_command, dtype=np.float64), (n, 1))
        low, high = np.asarray(self.command_range).T
        return rng.uniform(low, high, (n, 3))

    def control(self, action, extras):
        """PD targets q* = default pose + 0.5 a, within the joint limits."""
        low, high = self.limits.T
        return np.clip(STAND + ACTION_SCALE * action, low, high), extras

    def action_mapping(self):
        """PD targets = the standing pose + 0.5 a (absolute)."""
        return "absolute", np.full(len(JOINTS), ACTION_SCALE), STAND.copy()

    def action_for(self, ctrl, extras):
        """The action whose PD targets are ``ctrl``."""
        return np.clip((ctrl - STAND) / ACTION_SCALE, -1.0, 1.0)

    def hold_ctrl(self, qpos, extras):
        """The standing pose."""
        return np.broadcast_to(STAND, (len(qpos), len(JOINTS))).copy()

    def imu_state(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base orientation (w, x, y, z) [n, 4], base angular velocity in the base frame [n, 3]):
        what the IMU on the base measures (a free joint's angular velocity is in its body frame)."""
        return qpos[:, 3:7], qvel[:, 3:6]

    def command(self, extras: np.ndarray) -> np.ndarray:
        """The velocity command [n, 3] of each env."""
        return extras[:, COMMAND]

    def set_command(self, extras: np.ndarray, command: np.ndarray) -> np.ndarray:
        """Extras with the velocity command replaced."""
        out = extras.copy()
        out[:, COMMAND] = command
        return out

    def _base(self, qpos: np.ndarray, qvel: np.ndarray) -> dict[str, np.ndarray]:
        """Base frame quantities: rotation, linear / angular velocity in the base frame, gravity."""
        rot = quat_to_mat(qpos[:, 3:7])
        linear = np.einsum("nji,nj->ni", rot, qvel[:, :3])  # R^T v: world -> base frame
        return {"rot": rot, "lin": linear, "ang": qvel[:, 3:6], "gravity": -rot[:, 2, :]}

    def _heights(
        self, qpos: np.ndarray, chains: list[Chain], rot: np.ndarray | None = None
    ) -> np.ndarray:
        """Heights above the ground [n, 4] of a point per leg (feet or knees); ``rot``: the
        base rotations [n, 3, 3] when already computed."""
        rot = quat_to_mat(qpos[:, 3:7]) if rot is None else rot
        points = np.stack([c.position(qpos, qpos[:, :3], rot) for c in chains], axis=1)
        return points[..., 2] - self.ground(qpos, points[..., :2])

    def ground(self, qpos: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Ground height [n, k] under the points ``xy`` [n, k, 2] (flat: 0)."""
        return np.zeros(xy.shape[:-1])

    def feet_contact(self, qpos: np.ndarray, rot: np.ndarray | None = None) -> np.ndarray:
        """Feet on the ground [n, 4] bool (foot centre within 5 mm of resting on it)."""
        return self._heights(qpos, self.feet, rot) < 0.022 + 0.005

    def observation(self, qpos, qvel, extras):
        """Privileged state (45 + 4 + 4): base height, base-frame linear and angular velocity,
        gravity direction, command, joint positions (- default) and velocities, last action,
        feet contact and air time."""
        base = self._base(qpos, qvel)
        return np.concatenate(
            [
                qpos[:, 2:3] - STAND_HEIGHT,
                2.0 * base["lin"],
                0.25 * base["ang"],
                base["gravity"],
                extras[:, COMMAND],
                qpos[:, self.qpos_cols] - STAND,
                0.05 * qvel[:, self.qvel_cols],
                extras[:, LAST_ACTION],
                extras[:, CONTACT],
                extras[:, AIR_TIME],
            ],
            axis=1,
        )

    def terms(self, qpos, qvel, extras, action):
        """legged_gym's terms (its go2 scales), each times the 20 ms control period."""
        base, command = self._base(qpos, qvel), extras[:, COMMAND]
        targets = np.clip(STAND + ACTION_SCALE * action, *self.limits.T)
        q, qd = qpos[:, self.qpos_cols], qvel[:, self.qvel_cols]
        torques = np.clip(KP * (targets - q) - KD * qd, -EFFORT, EFFORT)
        contact = self.feet_contact(qpos, base["rot"])
        first_contact = contact & (extras[:, CONTACT] < 0.5)
        air = np.sum((extras[:, AIR_TIME] + DT - 0.5) * first_contact, axis=1)
        moving = np.linalg.norm(command[:, :2], axis=1) > 0.1
        lin_error = np.sum(np.square(command[:, :2] - base["lin"][:, :2]), axis=1)
        knees_down = self._heights(qpos, self.knees, base["rot"]) < 0.05
        terms = {
            "tracking_lin_vel": np.exp(-lin_error / 0.25),
            "tracking_ang_vel": 0.5 * np.exp(-np.square(command[:, 2] - base["ang"][:, 2]) / 0.25),
            "lin_vel_z": -2.0 * np.square(base["lin"][:, 2]),
            "ang_vel_xy": -0.05 * np.sum(np.square(base["ang"][:, :2]), axis=1),
            "orientation": -1.0 * np.sum(np.square(base["gravity"][:, :2]), axis=1),
            "torques": -0.0002 * np.sum(np.square(torques), axis=1),
            "action_rate": -0.01 * np.sum(np.square(action - extras[:, LAST_ACTION]), axis=1),
            "feet_air_time": np.where(moving, air, 0.0),
            "collision": -1.0 * knees_down.sum(axis=1),
        }
        return {name: DT * value for name, value in terms.items()}

    def advance(self, qpos, qvel, extras, action):
        """After a control step: feet air time and contact, the last action, velocity sums."""
        out, base = extras.copy(), self._base(qpos, qvel)
        contact = self.feet_contact(qpos, base["rot"])
        out[:, AIR_TIME] = np.where(contact, 0.0, extras[:, AIR_TIME] + DT)
        out[:, CONTACT] = contact
        out[:, LAST_ACTION] = action
        command = extras[:, COMMAND][:, :2]  # in the base frame, as the robot is commanded
        direction = command / np.maximum(np.linalg.norm(command, axis=1), 1e-9)[:, None]
        along = np.sum(base["lin"][:, :2] * direction, axis=1)
        out[:, VELOCITY_SUM] += np.stack([along, np.ones(len(qpos))], axis=1)
        return out

    def terminated(self, qpos, qvel, extras):
        """A fall: base below 0.18 m above the ground or tilted more than 60 degrees."""
        height = qpos[:, 2] - self.ground(qpos, qpos[:, None, :2])[:, 0]
        return (height < 0.18) | (projected_gravity(qpos[:, 3:7])[:, 2] > -0.5)

    def episode_metrics(self, qpos, qvel, extras):
        """``velocity``: the mean velocity along the command's direction so far (m/s)."""
        total, steps = extras[:, VELOCITY_SUM].T
        return {"velocity": total / np.maximum(steps, 1)}

    def success(self, qpos, qvel, extras):
        """Mean velocity along the command's direction within 20% of its speed (no fall: the
        episode reached its end)."""
        speed = np.linalg.norm(extras[:, COMMAND][:, :2], axis=1)
        velocity = self.episode_metrics(qpos, qvel, extras)["velocity"]
        return np.abs(velocity - speed) <= 0.2 * np.maximum(speed, 0.1)
