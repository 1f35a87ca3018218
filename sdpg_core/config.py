"""Typed configuration: dataclasses, strict YAML loading and command-line overrides."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sdpg_core.share import find_share_file

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A configuration file or override is malformed; the message names the source and key."""


class Section:
    """A config dataclass that refuses assignment once frozen (``Config.freeze``)."""

    _frozen = False

    def __setattr__(self, name: str, value: Any) -> None:
        """Set a field, unless frozen (derive a new config with ``with_overrides`` instead)."""
        if self._frozen:
            raise dataclasses.FrozenInstanceError(
                f"the resolved config is frozen: cannot set {type(self).__name__}.{name} "
                "(derive a new one with sdpg_core.config.with_overrides)"
            )
        super().__setattr__(name, value)


@dataclass
class VisionRandomization(Section):
    """Ranges (lo, hi) of the rendered envs' looks; () leaves that part nominal."""

    light_position: tuple[float, ...] = ()  # m, offset of each light along each axis
    light_intensity: tuple[float, ...] = ()  # scale of each light's diffuse colour
    color: tuple[float, ...] = ()  # RGB offset of each geom class: floor, scene, robot, target
    camera_position: tuple[float, ...] = ()  # m, camera offset along each axis
    camera_rotation: tuple[float, ...] = ()  # deg, camera rotation about each of its axes
    camera_fovy: tuple[float, ...] = ()  # deg, offset of the vertical field of view
    noise: tuple[float, ...] = ()  # std of per-pixel Gaussian noise, grey levels (0-255)
    blur: tuple[float, ...] = ()  # std of a Gaussian blur, px (< 0.3: none)
    brightness: tuple[float, ...] = ()  # grey levels added
    contrast: tuple[float, ...] = ()  # scale about mid-grey
    depth_noise: tuple[float, ...] = ()  # depth cameras: noise std per metre of depth
    depth_holes: tuple[float, ...] = ()  # depth cameras: fraction of pixels reading 0


@dataclass
class PhysicsRandomization(Section):
    """Ranges (lo, hi) of the physics, one draw per env shared by its auxiliaries."""

    friction: tuple[float, ...] = ()  # scale of every geom's sliding friction
    mass: tuple[float, ...] = ()  # scale of each body's mass (and inertia)
    com: tuple[float, ...] = ()  # m, offset of each body's centre of mass along each axis
    damping: tuple[float, ...] = ()  # scale of each joint's damping
    armature: tuple[float, ...] = ()  # scale of each joint's armature
    frictionloss: tuple[float, ...] = ()  # scale of each joint's dry friction
    kp: tuple[float, ...] = ()  # scale of the position servos' stiffness
    kd: tuple[float, ...] = ()  # scale of the position servos' damping
    strength: tuple[float, ...] = ()  # scale of every actuator's force (gain and limit)


@dataclass
class LatencyRandomization(Section):
    """Ranges (lo, hi) of the timing; delays in milliseconds."""

    action_delay: tuple[float, ...] = ()  # ms before a new action reaches the motors
    action_jitter: tuple[float, ...] = ()  # ms, each step's extra delay is uniform in [0, it]
    joint_delay: tuple[float, ...] = ()  # ms, age of the joint states and IMU (< a control step)
    camera_delay: tuple[float, ...] = ()  # ms, age of a camera frame (whole control steps)
    camera_drop: tuple[float, ...] = ()  # probability that a camera frame is lost (held)


@dataclass
class RandomizeConfig(Section):
    """Domain randomisation, sampled per env at each episode start (``env.randomize``)."""

    enabled: bool = True  # false: every range below is ignored (the nominal simulator)
    vision: VisionRandomization = field(default_factory=VisionRandomization)
    physics: PhysicsRandomization = field(default_factory=PhysicsRandomization)
    latency: LatencyRandomization = field(default_factory=LatencyRandomization)


@dataclass
class EnvConfig(Section):
    """Environment settings (physics, pixels); independent of the learning algorithm."""

    task: str = "reacher"
    image_size: int = 84  # frame height, px (and width unless image_width is set)
    image_width: int = 0  # > 0: frames this wide (e.g. a 58 x 87 depth camera); 0: square
    frame_stack: int = 3
    camera: str = ""  # empty: the task's default camera
    image: str = ""  # rgb or depth; empty: the task's
    command: tuple[float, ...] = ()  # command tasks (go2): this command every episode; (): sampled
    shadows: bool = False
    msaa: bool = False
    episode_steps: int = 0  # control steps; 0: the task's default / action_repeat
    action_repeat: int = 1  # control steps per action (rewards summed, frames rendered once)
    physics_threads: int = 2
    randomize: RandomizeConfig = field(default_factory=RandomizeConfig)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the camera frames."""
        return self.image_size, self.image_width or self.image_size


@dataclass
class ModelConfig(Section):
    """Network sizes (DrQ-v2 style encoder, MLP heads)."""

    encoder: str = "drqv2"  # drqv2: flatten the conv maps; spatial_softmax: keypoints (x, y)
    encoder_channels: int = 32
    encoder_strides: tuple[int, ...] = (2, 1, 1, 1)
    encoder_features: int = 128
    proprio_features: int = 64  # width of the MLP on the proprio group, fused with the pixels
    actor_hidden: tuple[int, ...] = (128, 64, 32)
    critic_hidden: tuple[int, ...] = (64, 64)


@dataclass
class SDPGConfig(Section):
    """SDPG hyperparameters (names follow the paper)."""

    num_nominal: int = 64  # B
    num_perturbations: int = 63  # P auxiliary envs per nominal env
    horizon: int = 32  # T
    gamma: float = 0.99
    lam: float = 0.95
    returns: str = "td_lambda"  # td_lambda | monte_carlo | non_causal
    normalize_delta_j: bool = True
    top_k: int = 0  # 0: use every perturbation
    antithetic: bool = False  # auxiliaries in mirrored noise pairs (eps, -eps)
    # every_step (paper): auxiliaries perturb every step; one_step: auxiliary j perturbs only
    # step (j - 1) % T and replays its nominal exactly otherwise (needs P a multiple of T;
    # with antithetic, the pair (2k-1, 2k) perturbs step (k - 1) % T by eps and -eps: P a
    # multiple of 2T)
    perturbation: str = "every_step"
    fixed_sigma: float = 0.0  # > 0: exploration std fixed to this value (no log_sigma learning)
    reward_scale: float = 1.0
    actor_lr: float = 2e-3
    actor_lr_min: float = 1e-5
    warmup_iterations: int = 100
    actor_epochs: int = 1
    actor_minibatches: int = 1
    alpha_init: float = 0.01
    alpha_lr: float = 1e-3
    auto_alpha: bool = True
    sigma_target: float = 0.15
    critic_lr: float = 2e-4
    critic_lr_decay: bool = False  # linear decay to 0.1x over training
    critic_minibatch: int = 4096
    critic_epochs: int = 2
    critic_data: str = "all"  # all: every env's TD(lambda) target; nominal: closed-loop envs only
    target_coef: float = 0.01  # c in theta_bar = c * theta_bar + (1 - c) * theta
    grad_clip: float = 1.0


@dataclass
class ActionConfig(Section):
    """The action convention of every learner (sdpg_core/action.py): pre-tanh bounds."""

    mu_bound: float = 2.0  # pre-tanh means and samples in [-mu_bound, mu_bound]
    log_sigma_min: float = -5.0
    log_sigma_max: float = 2.0


@dataclass
class PPOConfig(Section):
    """PPO baseline (Schulman et al., 2017) from pixels; names follow the paper (the action
    bounds are the shared ``action:`` section)."""

    num_envs: int = 64  # every env renders and runs the actor
    horizon: int = 32  # T steps per env and iteration: 2048 samples, as in the paper's MuJoCo
    epochs: int = 10  # K passes over the rollout
    minibatches: int = 32  # of 64 samples
    clip: float = 0.2  # epsilon of the clipped surrogate
    gamma: float = 0.99
    lam: float = 0.95  # GAE lambda
    lr: float = 3e-4  # one Adam over actor and critic
    anneal_lr: bool = True  # linear decay to 0 over run progress
    value_coef: float = 0.5  # c1
    entropy_coef: float = 0.0  # c2
    init_log_std: float = -0.5  # pre-tanh log-std at the start
    normalize_advantages: bool = True  # over the whole rollout
    reward_scale: float = 1.0
    grad_clip: float = 0.5  # max grad norm, actor and critic each


@dataclass
class DistillConfig(Section):
    """Teacher-student distillation with DAgger (Ross et al., 2011) onto a pixel actor."""

    teacher: str = ""  # checkpoint of a trained state policy of <task>_state (SDPG or PPO)
    # Per iteration as SDPG's reacher CPU config: 256 rendered frames, 1024 CNN passes.
    num_envs: int = 16  # B rendered envs, the student (or the teacher) acting
    horizon: int = 16  # T steps per env and iteration
    beta: float = 1.0  # probability that the teacher acts, at iteration 0
    beta_decay: float = 0.9  # beta_i = beta * beta_decay ** i
    buffer_size: int = 8192  # aggregated (pixels, teacher action) pairs, oldest dropped
    batch_size: int = 128
    updates: int = 8  # Adam steps per iteration
    lr: float = 1e-3
    grad_clip: float = 1.0


ALGOS = ("sdpg", "ppo", "distill")
RENAMED = {"algo": "sdpg"}  # old top-level sections, named in the unknown-key error


@dataclass
class RunConfig(Section):
    """Algorithm, run length, device, seeding, logging and evaluation."""

    algo: str = "sdpg"  # sdpg | ppo | distill
    iterations: int = 20000
    minutes: float = 0.0  # > 0: a wall-clock cap; the schedules follow iterations only
    seed: int = 0
    device: str = "cpu"
    torch_threads: int = 0  # 0: torch default
    checkpoint_interval: int = 100
    eval_episodes: int = 16
    eval_interval: int = 0  # > 0: evaluate every N iterations (best.pt follows evaluation)
    stop_success_rate: float = 0.0  # > 0: stop once evaluation success reaches this rate
    video: bool = True
    # a checkpoint (training or exported policy) whose networks and normaliser start this run
    # (fine-tuning, e.g. under randomisation); optimisers, counters and schedules start afresh
    init: str = ""
    dist_timeout_s: float = 600.0  # torchrun: a collective waiting longer fails the run (the
    # other ranks wait in one while rank 0 evaluates: keep it above the longest evaluation)


@dataclass
class Config(Section):
    """The whole configuration of a run."""

    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    sdpg: SDPGConfig = field(default_factory=SDPGConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples), safe for YAML, JSON and torch weights_only."""
        return _plain(dataclasses.asdict(self))

    def freeze(self) -> Config:
        """Make this config and its sections read-only; returns it."""
        _freeze(self)
        return self

    def validate(self) -> Config:
        """Check value ranges that types alone cannot express."""
        checks = {
            "env.image_size": self.env.image_size >= 16,
            "env.image_width": self.env.image_width == 0 or self.env.image_width >= 16,
            "env.frame_stack": self.env.frame_stack >= 1,
            "env.image": self.env.image in ("", "rgb", "depth"),
            "env.action_repeat": self.env.action_repeat >= 1,
            "model.encoder": self.model.encoder in ("drqv2", "spatial_softmax"),
            "sdpg.returns": self.sdpg.returns in ("td_lambda", "monte_carlo", "non_causal"),
            "sdpg.num_nominal": self.sdpg.num_nominal >= 1,
            "sdpg.num_perturbations": self.sdpg.num_perturbations >= 0,
            "sdpg.horizon": self.sdpg.horizon >= 1,
            "sdpg.critic_data": self.sdpg.critic_data in ("all", "nominal"),
            "sdpg.perturbation": self.sdpg.perturbation in ("every_step", "one_step"),
            "sdpg.top_k": 0 <= self.sdpg.top_k <= self.sdpg.num_perturbations,
            "sdpg.gamma": 0.0 <= self.sdpg.gamma <= 1.0,
            "sdpg.lam": 0.0 <= self.sdpg.lam <= 1.0,
            "run.device": self.run.device.split(":")[0] in ("cpu", "cuda"),
        }
        checks |= _size_checks(self) | _ppo_checks(self.ppo) | _distill_checks(self.distill)
        checks |= _sdpg_rate_checks(self.sdpg) | _run_checks(self.run)
        checks |= randomize_checks(self.env.randomize, "env.randomize.")
        checks |= {
            "action.mu_bound": self.action.mu_bound > 0.0,
            "action.log_sigma_max": self.action.log_sigma_min < self.action.log_sigma_max,
        }
        bad = _non_finite(self) + [key for key, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid value for {', '.join(dict.fromkeys(bad))}")
        _check_algo(self)
        return self


def _freeze(section: Section) -> None:
    """Freeze ``section`` and every section nested in it."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if isinstance(value, Section):
            _freeze(value)
    object.__setattr__(section, "_frozen", True)


def _non_finite(cfg: Any, prefix: str = "") -> list[str]:
    """Keys of every NaN or infinite number in a (nested) config."""
    bad = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            bad += _non_finite(value, f"{prefix}{f.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(f"{prefix}{f.name}")
    return bad


def _size_checks(cfg: Config) -> dict[str, bool]:
    """Sizes and counts that must be positive (or non-negative where 0 means 'default')."""
    env, model = cfg.env, cfg.model
    return {
        "env.episode_steps": env.episode_steps >= 0,
        "env.physics_threads": env.physics_threads >= 1,
        "model.encoder_channels": model.encoder_channels >= 1,
        "model.encoder_strides": len(model.encoder_strides) >= 1
        and min(model.encoder_strides) >= 1,
        "model.encoder_features": model.encoder_features >= 1,
        "model.proprio_features": model.proprio_features >= 1,
        "model.actor_hidden": all(h >= 1 for h in model.actor_hidden),
        "model.critic_hidden": all(h >= 1 for h in model.critic_hidden),
    }


# ranges that must stay within bounds: (lowest, highest) allowed value
_RANGE_BOUNDS = {
    "light_intensity": (0.0, math.inf),
    "camera_fovy": (-60.0, 60.0),
    "noise": (0.0, math.inf),
    "blur": (0.0, math.inf),
    "contrast": (0.0, math.inf),
    "depth_noise": (0.0, math.inf),
    "depth_holes": (0.0, 1.0),
    "friction": (0.0, math.inf),
    "mass": (1e-3, math.inf),
    "damping": (0.0, math.inf),
    "armature": (0.0, math.inf),
    "frictionloss": (0.0, math.inf),
    "kp": (0.0, math.inf),
    "kd": (0.0, math.inf),
    "strength": (0.0, math.inf),
    "action_delay": (0.0, 1000.0),
    "action_jitter": (0.0, 1000.0),
    "joint_delay": (0.0, 1000.0),
    "camera_delay": (0.0, 1000.0),
    "camera_drop": (0.0, 0.99),
}


def ranges(cfg: RandomizeConfig) -> Iterator[tuple[str, str, tuple[float, ...]]]:
    """(group, field, range) of every field of a randomize section, in declaration order."""
    for group in ("vision", "physics", "latency"):
        section = getattr(cfg, group)
        for f in dataclasses.fields(section):
            yield group, f.name, getattr(section, f.name)


def randomize_checks(cfg: RandomizeConfig, prefix: str) -> dict[str, bool]:
    """Every range is () or (lo, hi) with lo <= hi, within its bounds."""
    checks = {}
    for group, name, span in ranges(cfg):
        low, high = _RANGE_BOUNDS.get(name, (-math.inf, math.inf))
        checks[f"{prefix}{group}.{name}"] = span == () or (
            len(span) == 2 and low <= span[0] <= span[1] <= high
        )
    return checks


def _sdpg_rate_checks(hp: SDPGConfig) -> dict[str, bool]:
    """Learning rates, bounds and counts of the SDPG section."""
    return {
        "sdpg.fixed_sigma": hp.fixed_sigma >= 0.0,
        "sdpg.reward_scale": hp.reward_scale > 0.0,
        "sdpg.actor_lr": hp.actor_lr > 0.0,
        "sdpg.actor_lr_min": 0.0 <= hp.actor_lr_min <= hp.actor_lr,
        "sdpg.warmup_iterations": hp.warmup_iterations >= 0,
        "sdpg.actor_epochs": hp.actor_epochs >= 1,
        "sdpg.actor_minibatches": hp.actor_minibatches >= 1,
        "sdpg.alpha_init": hp.alpha_init >= 0.0,
        "sdpg.alpha_lr": hp.alpha_lr > 0.0,
        "sdpg.sigma_target": hp.sigma_target > 0.0,
        "sdpg.critic_lr": hp.critic_lr > 0.0,
        "sdpg.critic_minibatch": hp.critic_minibatch >= 1,
        "sdpg.critic_epochs": hp.critic_epochs >= 1,
        "sdpg.target_coef": 0.0 <= hp.target_coef <= 1.0,
        "sdpg.grad_clip": hp.grad_clip > 0.0,
    }


def _run_checks(run: RunConfig) -> dict[str, bool]:
    """Budget, seeding, logging and evaluation settings."""
    return {
        "run.iterations": run.iterations >= 1,
        "run.minutes": run.minutes >= 0.0,
        "run.seed": run.seed >= 0,
        "run.torch_threads": run.torch_threads >= 0,
        "run.checkpoint_interval": run.checkpoint_interval >= 1,
        "run.eval_episodes": run.eval_episodes >= 1,
        "run.eval_interval": run.eval_interval >= 0,
        "run.stop_success_rate": 0.0 <= run.stop_success_rate <= 1.0,
        "run.dist_timeout_s": run.dist_timeout_s > 0.0,
    }


def _ppo_checks(ppo: PPOConfig) -> dict[str, bool]:
    """Range checks of the ``ppo`` section."""
    return {
        "ppo.num_envs": ppo.num_envs >= 1,
        "ppo.horizon": ppo.horizon >= 1,
        "ppo.epochs": ppo.epochs >= 1,
        "ppo.minibatches": 1 <= ppo.minibatches <= ppo.num_envs * ppo.horizon,
        "ppo.clip": ppo.clip > 0.0,
        "ppo.gamma": 0.0 <= ppo.gamma <= 1.0,
        "ppo.lam": 0.0 <= ppo.lam <= 1.0,
        "ppo.lr": ppo.lr > 0.0,
        "ppo.value_coef": ppo.value_coef >= 0.0,
        "ppo.entropy_coef": ppo.entropy_coef >= 0.0,
        "ppo.reward_scale": ppo.reward_scale > 0.0,
        "ppo.grad_clip": ppo.grad_clip > 0.0,
    }


def _distill_checks(distill: DistillConfig) -> dict[str, bool]:
    """Range checks of the ``distill`` section."""
    return {
        "distill.num_envs": distill.num_envs >= 1,
        "distill.horizon": distill.horizon >= 1,
        "distill.beta": 0.0 <= distill.beta <= 1.0,
        "distill.beta_decay": 0.0 <= distill.beta_decay <= 1.0,
        "distill.batch_size": distill.batch_size >= 1,
        "distill.buffer_size": distill.buffer_size >= max(distill.batch_size, distill.num_envs),
        "distill.updates": distill.updates >= 1,
        "distill.lr": distill.lr > 0.0,
        "distill.grad_clip": distill.grad_clip > 0.0,
    }


def _check_algo(cfg: Config) -> None:
    """``run.algo`` names an algorithm; distillation names its teacher; one-step layout fits."""
    hp = cfg.sdpg
    per_step = 2 if hp.antithetic else 1  # antithetic: a pair (eps, -eps) per step
    if hp.perturbation == "one_step" and (
        hp.num_perturbations == 0 or hp.num_perturbations % (per_step * hp.horizon) or hp.top_k
    ):
        raise ConfigError(
            "sdpg.perturbation=one_step needs sdpg.num_perturbations a positive multiple of "
            f"{'2 x ' if hp.antithetic else ''}sdpg.horizon (got {hp.num_perturbations} and "
            f"{hp.horizon}; antithetic: a pair per step) and top_k 0"
        )
    if cfg.run.algo not in ALGOS:
        raise ConfigError(f"run.algo: {cfg.run.algo!r} is not one of {', '.join(ALGOS)}")
    if cfg.run.algo == "distill" and not cfg.distill.teacher:
        base = cfg.env.task.removesuffix("_state")
        raise ConfigError(
            "run.algo=distill needs distill.teacher: the checkpoint of a state policy trained "
            f"on {base}_state (e.g. --set distill.teacher=runs/X/checkpoints/best.pt)"
        )


def _plain(value: Any) -> Any:
    """Convert tuples to lists recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Return value checked against a type hint; raise ConfigError naming `where`."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{where}: union types are not supported")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads "3e-3" (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint!r}")


def _apply(obj: Any, data: dict[str, Any], source: str, prefix: str = "") -> None:
    """Set fields of dataclass `obj` from a nested dict, strictly."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        where = f"{source}: {prefix}{key}"
        if key not in names:
            hint = f"; renamed to {RENAMED[key]!r}" if key in RENAMED and not prefix else ""
            raise ConfigError(f"{where}: unknown key{hint} (valid: {', '.join(sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, source, f"{prefix}{key}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], where))


def merge(cfg: Config, data: dict[str, Any], source: str) -> Config:
    """Apply a nested dict onto a config in place (strict) and return it."""
    _apply(cfg, data, source)
    return cfg


def load_yaml(path: str | Path, cfg: Config | None = None) -> Config:
    """Load a YAML file onto `cfg` (or defaults); unknown keys and wrong types raise."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read config: {err}") from err
    return merge(cfg or Config(), data, str(path))


def load_perturbations(path: str | Path) -> dict[str, RandomizeConfig]:
    """Named perturbation sets of a YAML file, {name: randomize section}, strictly checked
    (``sdpg eval --perturb``): each top-level key is a set written like ``env.randomize``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read perturbations: {err}") from err
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of named perturbation sets")
    sets = {}
    for name, body in data.items():
        section = RandomizeConfig()
        _apply(section, body or {}, str(path), f"{name}.")
        bad = [key for key, ok in randomize_checks(section, f"{name}.").items() if not ok]
        if bad:
            raise ConfigError(f"{path}: invalid range for {', '.join(bad)}")
        sets[str(name)] = section
    return sets


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` overrides (values parsed as YAML scalars/lists)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. sdpg.horizon=16")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: cannot parse value: {err}") from err
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        merge(cfg, nested, "--set")
    return cfg


def parse_command(text: str) -> tuple[float, ...]:
    """A command given as text, '0.5,0,0' -> (0.5, 0.0, 0.0) (``env.command``); ValueError
    naming the text otherwise."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, got {text!r}") from None


def task_config_path(task: str) -> Path | None:
    """The per-task YAML for `task` (a ``_state`` variant falls back to its base task's)."""
    for name in dict.fromkeys([task, task.removesuffix("_state")]):
        found = find_share_file("config", Path("tasks") / f"{name}.yaml")
        if found is not None:
            return found
    return None


def resolve(
    task: str, config_file: str | None = None, overrides: list[str] | None = None
) -> Config:
    """Defaults, then the task YAML, then an explicit file, then `--set` overrides."""
    cfg = Config()
    cfg.env.task = task
    task_file = task_config_path(task)
    if task_file is not None:
        load_yaml(task_file, cfg)
    if config_file:
        load_yaml(config_file, cfg)
    apply_overrides(cfg, overrides or [])
    if cfg.env.task != task:
        raise ConfigError(f"env.task is {cfg.env.task!r} but the run asks for task {task!r}")
    return cfg.validate().freeze()


def from_dict(data: dict[str, Any], source: str = "checkpoint") -> Config:
    """Rebuild a frozen Config from `Config.to_dict()` output."""
    return merge(Config(), data, source).validate().freeze()


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A new frozen config: ``cfg`` with ``section.key=value`` overrides (``cfg`` unchanged)."""
    fresh = merge(Config(), cfg.to_dict(), "config")
    return apply_overrides(fresh, overrides).validate().freeze()
