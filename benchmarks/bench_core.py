"""Core throughput: SDPG rollout vs raw physics, renders/s, and the per-iteration time split.

Usage: python benchmarks/bench_core.py [--task reacher] [--iterations 10] [--set KEY=VALUE]...
Prints a table and writes benchmarks/results/core.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from sdpg_core.config import resolve
from sdpg_core.envs.registry import make_env
from sdpg_core.trainers.sdpg import SDPGTrainer

RESULTS = Path(__file__).resolve().parent / "results"


def raw_physics_rate(cfg, num_envs: int, steps: int) -> float:
    """Env steps/s of batched physics alone (no rendering, no policy)."""
    env = make_env(cfg.env.task, cfg.env, num_envs, render=False, seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, env.spec.action_dim))
    actions = actions.astype(np.float32)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    rate = num_envs * steps / (time.perf_counter() - start)
    env.close()
    return rate


def render_rate(cfg, count: int, repeats: int) -> float:
    """Rendered frames/s for ``count`` envs at the configured image size."""
    env = make_env(cfg.env.task, cfg.env, count, render=True, seed=0)
    env.renderer.render(env.physics, env.extras)
    start = time.perf_counter()
    for _ in range(repeats):
        env.renderer.render(env.physics, env.extras)
    rate = count * repeats / (time.perf_counter() - start)
    env.close()
    return rate


def sdpg_iterations(cfg, iterations: int) -> dict[str, float]:
    """Mean time split of full SDPG iterations and the rollout env-steps/s."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SDPGTrainer(cfg, tmp)
        trainer.train_iteration()  # warm-up (allocations, first GL frame)
        totals: dict[str, float] = {}
        wall = 0.0
        for _ in range(iterations):
            record = trainer.train_iteration()
            wall += trainer.num_envs * cfg.sdpg.horizon / record["fps"]
            for key, value in record.items():
                if key.startswith("time/"):
                    totals[key[5:]] = totals.get(key[5:], 0.0) + value
        steps = trainer.num_envs * cfg.sdpg.horizon
        trainer.close()
    split = {k: v / iterations for k, v in totals.items()}
    rollout = split["actor_forward"] + split["env_step"] + split["critic"]
    return {"iteration_s": wall / iterations, "rollout_env_steps_per_s": steps / rollout, **split}


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="reacher")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    cfg = resolve(args.task, overrides=args.set)
    hp = cfg.sdpg
    num_envs = hp.num_nominal * (hp.num_perturbations + 1)
    result = {
        "task": args.task,
        "machine": platform.platform(),
        "num_envs": num_envs,
        "num_nominal": hp.num_nominal,
        "horizon": hp.horizon,
        "raw_physics_env_steps_per_s": raw_physics_rate(cfg, num_envs, 200),
        "renders_per_s": render_rate(cfg, hp.num_nominal, 50),
        **sdpg_iterations(cfg, args.iterations),
    }
    print(f"task {args.task}: N={num_envs} envs (B={hp.num_nominal}), T={hp.horizon}")
    for key, value in result.items():
        if isinstance(value, float):
            print(f"  {key:32s} {value:14.4f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "core.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
