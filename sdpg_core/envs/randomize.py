"""Domain randomisation (``env.randomize``): per-env draws of looks, physics and timing.

Each env holds one row of draws, ``params`` float64 [N, K], sampled when it is reset and
copied with its state (an auxiliary env carries its nominal's row, so delta-J measures the
action noise alone). Columns are named (``labels``): e.g. ``physics.mass/thigh_FL`` or
``latency.action_delay`` (in physics substeps). Physics draws select a model variant, one per
distinct row (``ModelVariants``); vision draws edit the render model before an env is drawn
and post-process its image; latency draws shift controls, joint states and camera frames.
"""

from __future__ import annotations

import copy
import dataclasses

import cv2
import mujoco
import numpy as np

from sdpg_core.config import RandomizeConfig, ranges
from sdpg_core.envs.actuators import is_position_servo

COLOR_CLASSES = ("floor", "scene", "robot", "target")
AXES = ("x", "y", "z")
NOISE_BANK = 64  # fixed noise patterns per image shape (see ``Randomizer._noise``)
SEED_COLUMN = "seed"  # a per-episode integer keying the per-step draws (noise, jitter, drops)
_PER_STEP = ("noise", "depth_noise", "depth_holes", "action_jitter", "camera_drop")


@dataclasses.dataclass(frozen=True)
class Column:
    """A named block of ``params`` columns drawn uniformly in [low, high]."""

    group: str  # vision | physics | latency | seed
    key: str  # the config field
    labels: tuple[str, ...]  # one per column
    low: float
    high: float


class Randomizer:
    """Samples rows of draws for ``model`` from ``cfg`` and applies them (see the module doc)."""

    def __init__(self, cfg: RandomizeConfig, model: mujoco.MjModel, frame_skip: int) -> None:
        self.model, self.frame_skip = model, frame_skip
        self.control_dt = model.opt.timestep * frame_skip
        self.columns = _columns(cfg, model) if cfg.enabled else []
        self.slices, start = {}, 0
        for col in self.columns:
            self.slices[col.key] = slice(start, start + len(col.labels))
            start += len(col.labels)
        self.dim = start
        self.labels = tuple(f"{c.group}.{label}" for c in self.columns for label in c.labels)
        physics = [self.slices[c.key] for c in self.columns if c.group == "physics"]
        self.physics_cols = np.r_[tuple(physics)] if physics else np.zeros(0, dtype=np.int64)
        self.max_action_delay = self._substeps_max("action_delay") + self._substeps_max(
            "action_jitter"
        )
        self.max_camera_delay = self._steps_max("camera_delay")
        self._classes = _geom_classes(model)
        self._banks: dict[tuple, np.ndarray] = {}

    def has(self, key: str) -> bool:
        """Whether ``key`` (a config field) is randomised."""
        return key in self.slices

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draws [n, K] for n envs (delays converted to substeps or control steps)."""
        out = np.zeros((n, self.dim))
        for col in self.columns:
            cols = self.slices[col.key]
            if col.group == "seed":
                out[:, cols] = rng.integers(0, 2**31, (n, 1))
                continue
            out[:, cols] = rng.uniform(col.low, col.high, (n, len(col.labels)))
            if col.key in ("action_delay", "action_jitter", "joint_delay"):
                out[:, cols] = np.round(out[:, cols] / 1000.0 / self.model.opt.timestep)
            elif col.key == "camera_delay":
                out[:, cols] = np.round(out[:, cols] / 1000.0 / self.control_dt)
        if self.has("joint_delay"):
            out[:, self.slices["joint_delay"]] = np.minimum(
                out[:, self.slices["joint_delay"]], self.frame_skip
            )
        return out

    def values(self, row: np.ndarray) -> dict[str, float]:
        """One env's draws by label (what to log to reproduce its episode)."""
        return {label: float(v) for label, v in zip(self.labels, row, strict=True)}

    def column(self, params: np.ndarray, key: str) -> np.ndarray:
        """The draws of ``key`` [n, k] (zeros [n, 1] when ``key`` is not randomised)."""
        if not self.has(key):
            return np.zeros((len(params), 1))
        return params[:, self.slices[key]]

    def _substeps_max(self, key: str) -> int:
        """Upper bound of a delay range in physics substeps (0 when off)."""
        return round(self._high_s(key) / self.model.opt.timestep)

    def _steps_max(self, key: str) -> int:
        """Upper bound of a delay range in control steps (0 when off)."""
        return round(self._high_s(key) / self.control_dt)

    def _high_s(self, key: str) -> float:
        """Upper bound of a delay range (ms in the config) in seconds (0 when off)."""
        return next((c.high / 1000.0 for c in self.columns if c.key == key), 0.0)

    # physics -------------------------------------------------------------------------------

    def physics_variant(self, row: np.ndarray) -> mujoco.MjModel:
        """A copy of the model with ``row``'s physics draws applied."""
        base, m = self.model, copy.copy(self.model)
        get = {c.key: row[self.slices[c.key]] for c in self.columns if c.group == "physics"}
        if "friction" in get:
            m.geom_friction[:, 0] = base.geom_friction[:, 0] * get["friction"][0]
        if "mass" in get:
            m.body_mass[1:] = base.body_mass[1:] * get["mass"]
            m.body_inertia[1:] = base.body_inertia[1:] * get["mass"][:, None]
        if "com" in get:
            m.body_ipos[1:] = base.body_ipos[1:] + get["com"].reshape(-1, 3)
            m.body_sameframe[1:] = 0  # inertial frames moved: take MuJoCo's general path
            m.body_simple[1:] = 0
        for key in ("damping", "armature", "frictionloss"):
            if key in get:
                getattr(m, f"dof_{key}")[:] = getattr(base, f"dof_{key}") * get[key]
        _scale_actuators(base, m, get)
        mujoco.mj_setConst(m, mujoco.MjData(m))
        return m

    # vision --------------------------------------------------------------------------------

    def apply_vision(self, model: mujoco.MjModel, row: np.ndarray) -> None:
        """Set ``model``'s (the render model's) lights and colours to ``row``'s draws."""
        base = self.model
        if self.has("light_position"):
            model.light_pos[:] = base.light_pos + row[self.slices["light_position"]].reshape(-1, 3)
        if self.has("light_intensity"):
            model.light_diffuse[:] = (
                base.light_diffuse * row[self.slices["light_intensity"]][:, None]
            )
        if self.has("color"):
            offsets = row[self.slices["color"]].reshape(-1, 3)
            for k, geoms in enumerate(self._classes):
                rgb = np.clip(base.geom_rgba[geoms, :3] + offsets[k], 0.0, 1.0)
                model.geom_rgba[geoms, :3] = rgb

    def apply_camera(self, model: mujoco.MjModel, camera: int, row: np.ndarray) -> None:
        """Move camera ``camera`` of ``model`` by ``row``'s pose and field-of-view draws."""
        base = self.model
        if self.has("camera_position"):
            model.cam_pos[camera] = base.cam_pos[camera] + row[self.slices["camera_position"]]
        if self.has("camera_rotation"):
            turn = np.array([1.0, 0.0, 0.0, 0.0])
            mujoco.mju_quatIntegrate(turn, np.deg2rad(row[self.slices["camera_rotation"]]), 1.0)
            mujoco.mju_mulQuat(model.cam_quat[camera], base.cam_quat[camera], turn)
        if self.has("camera_fovy"):
            fovy = base.cam_fovy[camera] + row[self.slices["camera_fovy"]][0]
            model.cam_fovy[camera] = float(np.clip(fovy, 5.0, 170.0))

    def postprocess_rgb(self, images: np.ndarray, params: np.ndarray, steps: np.ndarray) -> None:
        """Blur, contrast, brightness and noise of RGB images [n, H, W, 3] uint8, in place."""
        if not any(self.has(k) for k in ("blur", "contrast", "brightness", "noise")):
            return
        img = images.astype(np.float32)
        sigma = self.column(params, "blur")[:, 0]
        for i in np.flatnonzero(sigma >= 0.3):
            img[i] = cv2.GaussianBlur(img[i], (0, 0), float(sigma[i]))
        if self.has("contrast"):
            img -= 128.0
            img *= self.column(params, "contrast")[:, 0, None, None, None].astype(np.float32)
            img += 128.0
        img += self.column(params, "brightness")[:, 0, None, None, None].astype(np.float32)
        if self.has("noise"):
            std = self.column(params, "noise")[:, 0, None, None, None].astype(np.float32)
            img += self._noise(img.shape[1:], params, steps, 1) * std
        np.clip(np.rint(img, out=img), 0, 255, out=img)
        images[:] = img.astype(np.uint8)

    def _noise(
        self,
        shape: tuple[int, ...],
        params: np.ndarray,
        steps: np.ndarray,
        tag: int,
        uniform: bool = False,
    ) -> np.ndarray:
        """Standard normal (or uniform [0, 1)) images [n, *shape] float32: for each env and
        step one of ``NOISE_BANK`` fixed patterns, chosen by a hash of its seed draw, step and
        ``tag``; the noise is a function of the env's state and costs one gather."""
        key = (shape, uniform)
        if key not in self._banks:
            rng = np.random.default_rng(NOISE_BANK)
            size = (NOISE_BANK, *shape)
            bank = rng.random(size) if uniform else rng.standard_normal(size)
            self._banks[key] = bank.astype(np.float32)
        pick = (self.uniform(params, steps, tag) * NOISE_BANK).astype(np.int64)
        return self._banks[key][pick]

    def postprocess_depth(self, depth: np.ndarray, params: np.ndarray, steps: np.ndarray) -> None:
        """Noise (std proportional to depth) and holes (0 m) of depth images [n, H, W], in place."""
        if self.has("depth_noise"):
            std = self.column(params, "depth_noise")[:, 0, None, None].astype(np.float32)
            depth += self._noise(depth.shape[1:], params, steps, 2) * std * depth
        if self.has("depth_holes"):
            rate = self.column(params, "depth_holes")[:, 0, None, None]
            depth[self._noise(depth.shape[1:], params, steps, 5, uniform=True) < rate] = 0.0

    # latency -------------------------------------------------------------------------------

    def uniform(self, params: np.ndarray, steps: np.ndarray, tag: int) -> np.ndarray:
        """A per-env, per-step uniform draw in [0, 1) [n] (a hash of seed, step and use)."""
        seed = self.column(params, SEED_COLUMN)[:, 0].astype(np.uint64)
        with np.errstate(over="ignore"):
            x = seed * np.uint64(0x9E3779B97F4A7C15) + steps.astype(np.uint64) * np.uint64(
                0xBF58476D1CE4E5B9
            )
            x += np.uint64(tag) * np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(30)
            x *= np.uint64(0xBF58476D1CE4E5B9)
            x ^= x >> np.uint64(27)
            x *= np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(31)
        return (x >> np.uint64(11)).astype(np.float64) / float(2**53)

    def action_delays(self, params: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Substeps [n] each env's new control waits this step (delay plus jitter)."""
        delay = self.column(params, "action_delay")[:, 0]
        if self.has("action_jitter"):
            top = self.column(params, "action_jitter")[:, 0]
            delay = delay + np.floor(self.uniform(params, steps, 3) * (top + 1))
        return np.minimum(delay, self.max_action_delay).astype(np.int64)

    def dropped(self, params: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Which envs lose this step's camera frame, bool [n]."""
        if not self.has("camera_drop"):
            return np.zeros(len(params), dtype=bool)
        return self.uniform(params, steps, 4) < self.column(params, "camera_drop")[:, 0]


class ModelVariants:
    """The model each env steps with: one physics variant per distinct row of physics draws,
    built on first use and dropped when no env uses it (memory: one model per group)."""

    def __init__(self, randomizer: Randomizer) -> None:
        self.randomizer = randomizer
        self._cache: dict[bytes, mujoco.MjModel] = {}
        self._list: list[mujoco.MjModel] | None = None

    @property
    def active(self) -> bool:
        """Whether physics is randomised at all (else the base model serves every env)."""
        return len(self.randomizer.physics_cols) > 0

    def invalidate(self) -> None:
        """Some env's draws changed: rebuild the per-env list on next use."""
        self._list = None

    def models(self, params: np.ndarray) -> mujoco.MjModel | list[mujoco.MjModel]:
        """The base model, or one model per env [N] for ``mujoco.rollout``."""
        if not self.active:
            return self.randomizer.model
        if self._list is None:
            rows = params[:, self.randomizer.physics_cols]
            keys = [row.tobytes() for row in rows]
            cache = {}
            for key, row in zip(keys, params, strict=True):
                if key not in cache:
                    cache[key] = self._cache.get(key) or self.randomizer.physics_variant(row)
            self._cache = cache
            self._list = [cache[key] for key in keys]
        return self._list

    def __len__(self) -> int:
        """Distinct variants alive."""
        return len(self._cache)


def _columns(cfg: RandomizeConfig, model: mujoco.MjModel) -> list[Column]:
    """The enabled columns of ``cfg`` with one label per drawn value."""
    sizes = _label_sets(model)
    out = []
    for group, name, span in ranges(cfg):
        labels = sizes.get(name, (name,))
        if span and labels:
            out.append(Column(group, name, labels, float(span[0]), float(span[1])))
    if any(c.key in _PER_STEP for c in out):
        out.append(Column("seed", SEED_COLUMN, (SEED_COLUMN,), 0.0, 0.0))
    return out


def _label_sets(model: mujoco.MjModel) -> dict[str, tuple[str, ...]]:
    """Column labels of the multi-valued draws (per light, class, body, dof, actuator)."""

    def name(kind: mujoco.mjtObj, i: int) -> str:
        return mujoco.mj_id2name(model, kind, i) or f"{kind.name[6:].lower()}{i}"

    obj = mujoco.mjtObj
    lights = [name(obj.mjOBJ_LIGHT, i) for i in range(model.nlight)]
    bodies = [name(obj.mjOBJ_BODY, i) for i in range(1, model.nbody)]
    dofs = [f"{name(obj.mjOBJ_JOINT, int(model.dof_jntid[i]))}:{i}" for i in range(model.nv)]
    actuators = [name(obj.mjOBJ_ACTUATOR, i) for i in range(model.nu)]
    servos = [a for i, a in enumerate(actuators) if is_position_servo(model, i)]
    return {
        "light_position": tuple(f"light_position/{n}/{a}" for n in lights for a in AXES),
        "light_intensity": tuple(f"light_intensity/{n}" for n in lights),
        "color": tuple(f"color/{c}/{ch}" for c in COLOR_CLASSES for ch in "rgb"),
        "camera_position": tuple(f"camera_position/{a}" for a in AXES),
        "camera_rotation": tuple(f"camera_rotation/{a}" for a in AXES),
        "mass": tuple(f"mass/{b}" for b in bodies),
        "com": tuple(f"com/{b}/{a}" for b in bodies for a in AXES),
        "damping": tuple(f"damping/{d}" for d in dofs),
        "armature": tuple(f"armature/{d}" for d in dofs),
        "frictionloss": tuple(f"frictionloss/{d}" for d in dofs),
        "kp": tuple(f"kp/{a}" for a in servos),
        "kd": tuple(f"kd/{a}" for a in servos),
        "strength": tuple(f"strength/{a}" for a in actuators),
    }


def _scale_actuators(base: mujoco.MjModel, m: mujoco.MjModel, get: dict) -> None:
    """Servo gains (kp, kd) and every actuator's strength (gain, bias and force limit)."""
    servos = np.array([is_position_servo(base, i) for i in range(base.nu)], dtype=bool)
    kp, kd = np.ones(base.nu), np.ones(base.nu)
    if "kp" in get:
        kp[servos] = get["kp"]
    if "kd" in get:
        kd[servos] = get["kd"]
    strength = get.get("strength", np.ones(base.nu))
    m.actuator_gainprm[:, 0] = base.actuator_gainprm[:, 0] * kp * strength
    m.actuator_biasprm[:, 1] = base.actuator_biasprm[:, 1] * kp * strength
    m.actuator_biasprm[:, 2] = base.actuator_biasprm[:, 2] * kd * strength
    m.actuator_forcerange[:] = base.actuator_forcerange * strength[:, None]


def _geom_classes(model: mujoco.MjModel) -> list[np.ndarray]:
    """Geom ids of each colour class: floor (planes), scene (other static geoms), robot
    (geoms on moving bodies), target (geoms on mocap bodies)."""
    body = model.geom_bodyid
    mocap = model.body_mocapid[body] >= 0
    static = (model.body_weldid[body] == 0) & ~mocap
    plane = model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE
    return [
        np.flatnonzero(plane),
        np.flatnonzero(static & ~plane),
        np.flatnonzero(~static & ~mocap & ~plane),
        np.flatnonzero(mocap),
    ]
