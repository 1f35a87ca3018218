"""PPO's settings for the learning benchmark, searched on a fixed, documented budget.

Each candidate trains PPO from pixels once (seed 0) for ``--minutes`` of training wall-clock
with ``bench_learning``; the one with the best evaluation return at the budget is PPO's setting
in the equal-compute comparison. Candidates vary what matters most for PPO at a small CPU
budget: learning rate, samples per iteration and epochs.

Usage: python benchmarks/bench_ppo_sweep.py [--task reacher] [--minutes 4] [--smoke]
       [--out DIR] [--runs DIR]
Prints a table; writes <out>/ppo_sweep_<task>.json (and the ``ppo_sweep.<task>`` section of
<out>/summary.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learning import main as learning
from common import RESULTS, write_results

BASE = ["ppo.num_envs=32", "ppo.horizon=32", "ppo.epochs=3", "ppo.minibatches=8"]
CANDIDATES: dict[str, list[str]] = {
    "envs_32_lr_3e-4": [*BASE, "ppo.lr=3e-4"],
    "envs_32_lr_1e-3": [*BASE, "ppo.lr=1e-3"],
    "envs_16_lr_1e-3": [*BASE, "ppo.num_envs=16", "ppo.lr=1e-3"],
    "epochs_1_lr_1e-3": [*BASE, "ppo.epochs=1", "ppo.minibatches=4", "ppo.lr=1e-3"],
}


def sweep(task: str, minutes: float, smoke: bool, runs: Path) -> dict[str, Any]:
    """Train every candidate; their returns at the budget and the best one."""
    results: dict[str, Any] = {}
    for name, sets in CANDIDATES.items():
        argv = ["--task", task, "--algos", "ppo", "--seeds", "0", "--minutes", str(minutes)]
        scratch = runs / "ppo_sweep" / name
        argv += ["--out", str(scratch), "--runs", str(scratch)] + (["--smoke"] if smoke else [])
        argv += [arg for item in sets for arg in ("--set", f"ppo:{item}")]
        figures = learning(argv)
        results[name] = {
            "overrides": sets,
            "return_at_budget": figures["ppo_return_at_budget"],
            "success_at_budget": figures.get("ppo_success_at_budget"),
            "cpu_s": figures["ppo_cpu_s"],
        }
    best = max(results, key=lambda name: results[name]["return_at_budget"])
    return {"minutes_budget": minutes, "candidates": results, "best": best}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the sweep, print and save it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reacher")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the sweep's figures")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"), help="run directories")
    args = parser.parse_args(argv)
    result = sweep(args.task, args.minutes, args.smoke, args.runs)
    write_results(args.out, "ppo_sweep", result, key=args.task)
    for name, row in result["candidates"].items():
        print(f"{name:20s} return {row['return_at_budget']:8.2f}  cpu_s {row['cpu_s']:7.0f}")
    print("best:", result["best"])
    return result


if __name__ == "__main__":
    main()
