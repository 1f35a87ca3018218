"""SDPG rollout throughput against the floor set by its parts, measured in the same run.

The rollout (``SDPGTrainer.collect()``: sync the auxiliaries, then T steps of all N = B(P+1) envs)
is timed against its three irreducible parts, each timed alone over the same T steps (the four
timed round-robin, ``--warmup`` untimed rounds then ``--iterations`` timed ones, medians):
  physics  ``env.step`` of a physics-only env of all N envs (reward, observation included);
  render   rendering the B nominal envs and pushing the frames onto their stacks;
  actor    the nominal actor's forward pass on B pixel observations (input conversion included).
floor_s = physics_s + render_s + actor_s (medians per T steps); rates are N * T / seconds;
ratio_to_floor = rollout env-steps/s / floor env-steps/s = floor_s / rollout_s (1.0: the
rollout costs nothing beyond its parts; target >= 0.5).

Usage:
  python benchmarks/bench_throughput.py                   # reacher CPU config (B=16, P=15, T=16)
  python benchmarks/bench_throughput.py --set sdpg.num_perturbations=63 --iterations 10
  python benchmarks/bench_throughput.py --smoke --out /tmp/bench   # seconds; for the tests
Prints a table; writes <out>/throughput.json (``throughput.ratio_to_floor``...).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
from common import add_common_args, round_robin_medians, write_results

from sdpg_core.config import Config, resolve
from sdpg_core.envs.mujoco_env import MujocoBatchEnv
from sdpg_core.envs.registry import make_env
from sdpg_core.policy import actor_input
from sdpg_core.trainers.sdpg import SDPGTrainer

SMOKE_SETS = [
    "env.image_size=32",
    "sdpg.num_nominal=4",
    "sdpg.num_perturbations=15",
    "sdpg.horizon=4",
]


def physics_steps(cfg: Config, env: MujocoBatchEnv) -> Callable[[], None]:
    """T steps of all N envs of a physics-only env, with fixed random actions."""
    rng = np.random.default_rng(0)
    shape = (cfg.sdpg.horizon, env.num_envs, env.spec.action_dim)
    actions = np.tanh(rng.normal(size=shape)).astype(np.float32)

    def steps() -> None:
        """T physics steps of every env."""
        for action in actions:
            env.step(action)

    return steps


def render_steps(cfg: Config, env: MujocoBatchEnv) -> Callable[[], None]:
    """T renders and frame-stack pushes of the env's B (nominal) envs."""
    renderer, rows = env.renderer, np.arange(env.num_envs)

    def steps() -> None:
        """T frames of every nominal env."""
        for _ in range(cfg.sdpg.horizon):
            renderer.stack.push(rows, renderer.render(env.physics, env.extras))

    return steps


def actor_steps(trainer: SDPGTrainer) -> Callable[[], None]:
    """T nominal actor forward passes (input conversion included) on the trainer's pixels."""
    obs = trainer.env.observe()
    nominal = {"state": obs["state"][trainer.nominal_ids], "pixels": obs.get("pixels")}
    learner = trainer.learner

    def steps() -> None:
        """T forward passes on the nominal envs' observations."""
        for _ in range(trainer.cfg.sdpg.horizon):
            learner.policy(actor_input(trainer.spec, nominal, learner.normalizer, trainer.device))

    return steps


def measure(cfg: Config, args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per T steps of the real rollout and of each part alone, round-robin."""
    hp = cfg.sdpg
    num_envs = hp.num_nominal * (hp.num_perturbations + 1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SDPGTrainer(cfg, tmp)
        physics_env = make_env(cfg.env.task, cfg.env, num_envs, render=False, seed=cfg.run.seed)
        render_env = make_env(cfg.env.task, cfg.env, hp.num_nominal, seed=cfg.run.seed)
        parts = {
            "rollout_s": trainer.collect,
            "physics_s": physics_steps(cfg, physics_env),
            "actor_s": actor_steps(trainer),
        }
        if render_env.renderer is not None:  # a state task renders nothing
            parts["render_s"] = render_steps(cfg, render_env)
        seconds = round_robin_medians(parts, args.warmup, args.iterations)
        for closable in (trainer, physics_env, render_env):
            closable.close()
    return {"render_s": 0.0} | seconds


def figures(cfg: Config, seconds: dict[str, float]) -> dict[str, Any]:
    """Rates and the ratio to the floor from the measured seconds."""
    hp = cfg.sdpg
    num_envs = hp.num_nominal * (hp.num_perturbations + 1)
    steps = num_envs * hp.horizon
    floor = seconds["physics_s"] + seconds["render_s"] + seconds["actor_s"]
    return {
        "num_envs": num_envs,
        "num_nominal": hp.num_nominal,
        "num_perturbations": hp.num_perturbations,
        "horizon": hp.horizon,
        "image_size": cfg.env.image_size,
        **seconds,
        "floor_s": floor,
        "rollout_env_steps_per_s": steps / seconds["rollout_s"],
        "floor_env_steps_per_s": steps / floor,
        "ratio_to_floor": floor / seconds["rollout_s"],
    }


def print_figures(result: dict[str, Any]) -> None:
    """The parts, the floor and the ratio."""
    print(
        f"N={result['num_envs']} envs (B={result['num_nominal']}, "
        f"P={result['num_perturbations']}), T={result['horizon']}, "
        f"{result['image_size']}x{result['image_size']} pixels; seconds per rollout:"
    )
    for key in ("physics_s", "render_s", "actor_s", "floor_s", "rollout_s"):
        print(f"  {key:10s} {result[key]:9.4f}")
    print(
        f"  rollout {result['rollout_env_steps_per_s']:10.0f} env-steps/s, "
        f"floor {result['floor_env_steps_per_s']:10.0f} env-steps/s"
    )
    print(f"  ratio_to_floor {result['ratio_to_floor']:.3f} (target >= 0.5)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring); ``--smoke`` shrinks every budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args(argv)
    if args.smoke:
        args.warmup, args.iterations = 1, 2
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the rollout and its parts; print and save the figures."""
    args = parse_args(argv)
    cfg = resolve(args.task, overrides=[*(SMOKE_SETS if args.smoke else []), *args.set])
    result = {"task": args.task, "warmup": args.warmup, "iterations": args.iterations}
    result |= figures(cfg, measure(cfg, args))
    print_figures(result)
    write_results(args.out, "throughput", result)
    return result


if __name__ == "__main__":
    main()
