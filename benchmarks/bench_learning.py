"""Equal-compute learning from pixels: SDPG against visual PPO (and others) on one task.

Each (algorithm, seed) trains alone in a fresh process with ``sdpg train --algo A --minutes M``
(the training wall-clock budget; evaluation time is not counted); the figures compare the
evaluation return against the process CPU time of training (``cpu_time_s``: all threads, so
robust to other load on a shared machine), wall-clock time and env steps.

Usage:
  python benchmarks/bench_learning.py --task reacher --seeds 0 1 2 --minutes 10 \
      --eval-interval sdpg=12
  python benchmarks/bench_learning.py --task cartpole_swingup --seeds 0 --minutes 30
  python benchmarks/bench_learning.py --smoke --out /tmp/bench   # seconds; for the tests
Options: --algos sdpg ppo, --runs DIR (run directories; default runs/bench),
--set ALGO:KEY=VALUE (per-algorithm override, repeatable), --eval-interval ALGO=N
(iterations between evaluations).
Prints a table; writes <out>/learning_<task>.json, <out>/learning_<task>.png and the
``learning.<task>`` section of <out>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, train_in_process, write_results

EVAL_INTERVAL = {"sdpg": 50, "ppo": 10, "distill": 20}
SMOKE = {
    "sdpg": ["sdpg.num_nominal=2", "sdpg.num_perturbations=1", "sdpg.horizon=4"],
    "ppo": ["ppo.num_envs=2", "ppo.horizon=4", "ppo.minibatches=1", "ppo.epochs=1"],
}
SMOKE_COMMON = ["env.image_size=32", "run.eval_episodes=2", "run.video=false"]


def train(task: str, algo: str, seed: int, budget: list[str], sets: list[str], runs: Path) -> Path:
    """One training run in a fresh process; returns its run directory."""
    run_dir = runs / f"{task}-{algo}-seed{seed}"
    train_in_process(task, run_dir, ["--algo", algo, "--seed", str(seed), *budget], sets)
    return run_dir


def curve(run_dir: Path) -> dict[str, np.ndarray]:
    """Evaluation points of a run: cpu_s, wall_s, env_steps, return (and success) arrays."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "eval/return_mean" in r]
    final = json.loads((run_dir / "summary.json").read_text())
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    points = {
        "cpu_s": [r["cpu_time_s"] for r in rows] + [last["cpu_time_s"]],
        "wall_s": [r["wall_time_s"] for r in rows] + [last["wall_time_s"]],
        "env_steps": [r["env_steps"] for r in rows] + [last["env_steps"]],
        "return": [r["eval/return_mean"] for r in rows] + [final["return_mean"]],
    }
    if "success_rate" in final:
        points["success"] = [r["eval/success_rate"] for r in rows] + [final["success_rate"]]
    return {k: np.asarray(v, dtype=np.float64) for k, v in points.items()}


def value_at(points: dict[str, np.ndarray], cpu_s: float, key: str = "return") -> float:
    """The last evaluated ``key`` at or before ``cpu_s`` (NaN before the first evaluation)."""
    seen = np.flatnonzero(points["cpu_s"] <= cpu_s + 1e-9)
    return float(points[key][seen[-1]]) if len(seen) else float("nan")


def cpu_to_reach(points: dict[str, np.ndarray], target: float) -> float | None:
    """CPU seconds of the first evaluation with return >= target (None: never)."""
    hits = np.flatnonzero(points["return"] >= target)
    return float(points["cpu_s"][hits[0]]) if len(hits) else None


def zero_action_return(task: str, episodes: int = 32) -> float:
    """Mean return of the zero action on the evaluation episodes (an untrained policy's level)."""
    from sdpg_core.config import EnvConfig
    from sdpg_core.envs.base import EVAL_SEED, episode_seed
    from sdpg_core.envs.registry import make_env

    env = make_env(task, EnvConfig(task=task), episodes, render=False, seed=EVAL_SEED)
    env.reset(np.arange(episodes), seeds=[episode_seed(EVAL_SEED, k) for k in range(episodes)])
    total, done = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    while not done.all():
        result = env.step(np.zeros((episodes, env.spec.action_dim), np.float32))
        total += np.where(done, 0.0, result.reward)
        done |= result.terminated | result.truncated
    env.close()
    return float(total.mean())


def figures(curves: dict[str, list[dict[str, np.ndarray]]], baseline: float) -> dict[str, Any]:
    """The benchmark's figures from every run's evaluation curve (means over seeds)."""
    out: dict[str, Any] = {"zero_action_return": baseline}
    for algo, runs in curves.items():
        out[f"{algo}_return_at_budget"] = float(np.mean([r["return"][-1] for r in runs]))
        out[f"{algo}_cpu_s"] = float(np.mean([r["cpu_s"][-1] for r in runs]))
        out[f"{algo}_wall_s"] = float(np.mean([r["wall_s"][-1] for r in runs]))
        out[f"{algo}_env_steps"] = float(np.mean([r["env_steps"][-1] for r in runs]))
        if "success" in runs[0]:
            out[f"{algo}_success_at_budget"] = float(np.mean([r["success"][-1] for r in runs]))
    if "sdpg" in curves and "ppo" in curves:
        out |= versus_ppo(curves["sdpg"], curves["ppo"], out)
    return out


def versus_ppo(sdpg: list, ppo: list, base: dict[str, Any]) -> dict[str, Any]:
    """SDPG's CPU time to PPO's final return, and both returns at equal CPU time."""
    ppo_final = base["ppo_return_at_budget"]
    reached = [cpu_to_reach(r, ppo_final) for r in sdpg]
    hit = [c for c in reached if c is not None]
    equal_cpu = min(base["ppo_cpu_s"], base["sdpg_cpu_s"])
    sdpg_at = float(np.nanmean([value_at(r, equal_cpu) for r in sdpg]))
    ppo_at = float(np.nanmean([value_at(r, equal_cpu) for r in ppo]))
    out = {
        "ppo_final_return": ppo_final,
        "sdpg_cpu_s_to_ppo_final": float(np.median(hit)) if len(hit) == len(reached) else None,
        "sdpg_seeds_reaching_ppo_final": f"{len(hit)}/{len(reached)}",
        "equal_cpu_s": equal_cpu,
        "sdpg_return_at_equal_cpu": sdpg_at,
        "ppo_return_at_equal_cpu": ppo_at,
    }
    if out["sdpg_cpu_s_to_ppo_final"] is not None:
        out["cpu_fraction_of_ppo"] = out["sdpg_cpu_s_to_ppo_final"] / base["ppo_cpu_s"]
    if ppo_at > 0 and sdpg_at > 0:
        out["return_ratio_at_equal_cpu"] = sdpg_at / ppo_at
    gain_ppo = ppo_at - base["zero_action_return"]
    if gain_ppo > 0:  # returns that can be negative (reacher): ratio of gains over zero action
        out["gain_ratio_at_equal_cpu"] = (sdpg_at - base["zero_action_return"]) / gain_ppo
    return out


def plot(curves: dict[str, list[dict[str, np.ndarray]]], task: str, path: Path) -> None:
    """Evaluation return against training CPU time, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (algo, runs) in enumerate(curves.items()):
        for j, run in enumerate(runs):
            label = algo if j == 0 else None
            ax.plot(run["cpu_s"] / 60, run["return"], color=f"C{i}", label=label, alpha=0.8)
    ax.set(xlabel="training CPU time (min, all threads)", ylabel="evaluation return", title=task)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reacher")
    parser.add_argument("--algos", nargs="+", default=["sdpg", "ppo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--set", action="append", default=[], metavar="ALGO:KEY=VALUE")
    parser.add_argument("--eval-interval", action="append", default=[], metavar="ALGO=N")
    parser.add_argument("--smoke", action="store_true", help="2 iterations, tiny envs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="figures, plot, summary")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"), help="run directories")
    return parser.parse_args(argv)


def run_sets(args: argparse.Namespace, algo: str) -> list[str]:
    """The overrides of one algorithm's runs."""
    intervals = EVAL_INTERVAL | dict(item.split("=", 1) for item in args.eval_interval)
    sets = [f"run.eval_interval={intervals[algo]}"]
    if args.smoke:
        sets = ["run.eval_interval=1", *SMOKE_COMMON, *SMOKE.get(algo, [])]
    prefix = f"{algo}:"
    return sets + [s[len(prefix) :] for s in args.set if s.startswith(prefix)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every (algorithm, seed), print and save the figures."""
    args = parse_args(argv)
    budget = ["--iterations", "2"] if args.smoke else ["--minutes", str(args.minutes)]
    curves = {
        algo: [
            curve(train(args.task, algo, seed, budget, run_sets(args, algo), args.runs))
            for seed in args.seeds
        ]
        for algo in args.algos
    }
    result = figures(curves, zero_action_return(args.task))
    result |= {"minutes_budget": args.minutes, "seeds": args.seeds}
    args.out.mkdir(parents=True, exist_ok=True)
    plot(curves, args.task, args.out / f"learning_{args.task}.png")
    write_results(args.out, "learning", result, key=args.task)
    for key, value in result.items():
        print(f"{key:32s} {value}")
    return result


if __name__ == "__main__":
    main()
