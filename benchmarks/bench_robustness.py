"""Robustness: success nominal and under held-out perturbations, trained with and without domain
randomisation.

For the task:
1. Train twice in fresh processes with the task config's iteration budget and the same seed:
   ``randomized`` (the config's ``env.randomize``, or ``--randomize FILE`` on top: the reacher's
   config/randomize/reacher.yaml, the arm's config/randomize/ur5e.yaml) and ``nominal``
   (``env.randomize.enabled=false``).
2. Each final policy (``latest.pt``) on ``--episodes`` seeded episodes in the nominal simulator
   and under each set of the perturbation file (``sdpg eval --perturb``'s episodes).
3. Retention = success under perturbation (mean over the sets) / nominal success.
``--finetune N``: the randomised policy is the nominal one fine-tuned under randomisation for N
iterations instead (trained after it, from its ``latest.pt`` through ``run.init``).
Writes ``sim2real.robustness_<task>`` (``..._finetuned`` with ``--finetune``; per policy: nominal
and per-set success, retention).

``--cost``: the randomisation's training cost instead: ``--cost-iterations`` iterations of each
config in fresh processes, alternated over ``--cost-rounds`` rounds (run it on an otherwise idle
machine); cost = 1 - randomized / nominal median env steps per wall second (and per CPU second).
Writes ``sim2real.randomization_cost_<task>``.

Usage:
  python benchmarks/bench_robustness.py --task reacher --randomize config/randomize/reacher.yaml \
      --perturb config/perturb/reacher.yaml
  python benchmarks/bench_robustness.py --task ur5e_reach --perturb config/perturb/ur5e.yaml
  python benchmarks/bench_robustness.py --task reacher --randomize config/randomize/reacher.yaml \
      --perturb config/perturb/reacher.yaml --finetune 2000
  python benchmarks/bench_robustness.py --task ur5e_reach --randomize config/randomize/ur5e.yaml \
      --perturb config/perturb/ur5e.yaml --finetune 1500
  python benchmarks/bench_robustness.py --task reacher --cost --randomize \
      config/randomize/reacher.yaml
  python benchmarks/bench_robustness.py --smoke --out /tmp/bench   # a minute; for the tests
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, train_in_process, write_results

SMOKE = ["sdpg.num_nominal=2", "sdpg.num_perturbations=3", "sdpg.horizon=4"]
SMOKE += ["run.eval_episodes=2", "run.video=false", "run.eval_interval=0"]


def train(task: str, run_dir: Path, randomize: Path | None, sets: list[str], smoke: bool) -> None:
    """One training run in a fresh process (the config's budget unless ``smoke``)."""
    flags = ["--overwrite", *(["--iterations", "2"] if smoke else [])]
    flags += ["--config", str(randomize)] if randomize else []
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{run_dir}.log", "w") as log:
        train_in_process(task, run_dir, flags, sets, log)


def finetuning(nominal: Path, iterations: int, smoke: bool) -> list[str]:
    """Overrides that make the randomised run a fine-tuning of the nominal one (none if 0)."""
    if not iterations:
        return []
    budget = [] if smoke else [f"run.iterations={iterations}"]
    return [f"run.init={nominal / 'checkpoints' / 'latest.pt'}", *budget]


def run_figures(run_dir: Path) -> dict[str, Any]:
    """Iterations, minutes, CPU seconds and env steps per second of a finished run."""
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "iterations": last["iteration"],
        "minutes": last["wall_time_s"] / 60.0,
        "cpu_s": last["cpu_time_s"],
        "env_steps_per_s": last["env_steps"] / last["wall_time_s"],
        "env_steps_per_cpu_s": last["env_steps"] / last["cpu_time_s"],
    }


def robustness(checkpoint: Path, episodes: int, perturb: Path) -> dict[str, Any]:
    """Success nominal and under each perturbation set; retention = perturbed / nominal."""
    from sdpg_core.config import load_perturbations
    from sdpg_core.evaluate import evaluate_perturbed
    from sdpg_core.policy import load_policy

    result = evaluate_perturbed(load_policy(checkpoint), episodes, load_perturbations(perturb))
    nominal = result["nominal"]["success_rate"]
    perturbed = {name: r["success_rate"] for name, r in result["perturbed"].items()}
    mean = sum(perturbed.values()) / len(perturbed)
    return {
        "nominal_success": nominal,
        "perturbed_success": perturbed,
        "perturbed_success_mean": mean,
        "retention": mean / nominal if nominal > 0 else None,
        "nominal_return": result["nominal"]["return_mean"],
    }


def training_cost(
    task: str, runs: dict[str, tuple], iterations: int, rounds: int
) -> dict[str, Any]:
    """Median env steps per wall / CPU second of short runs of each config, alternated; the
    relative cost of randomisation."""
    speeds: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            for name, (_, randomize, overrides) in runs.items():
                run_dir = Path(tmp) / f"{name}_{k}"
                flags = ["--overwrite", "--iterations", str(iterations)]
                flags += ["--config", str(randomize)] if randomize else []
                flags += ["--set", "run.eval_interval=0"]
                train_in_process(task, run_dir, flags, [*overrides, "run.video=false"])
                figures = run_figures(run_dir)
                speeds[name].append((figures["env_steps_per_s"], figures["env_steps_per_cpu_s"]))
    out: dict[str, Any] = {"iterations": iterations, "rounds": rounds}
    for i, per in enumerate(("env_steps_per_s", "env_steps_per_cpu_s")):
        median = {name: statistics.median(s[i] for s in values) for name, values in speeds.items()}
        out |= {f"{name}_{per}": value for name, value in median.items()}
        out[f"cost_{per}"] = 1.0 - median["randomized"] / median["nominal"]
    return out


def main() -> int:
    """Train both policies (or read the runs), evaluate them; write sim2real.robustness_<task>."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reacher")
    parser.add_argument("--randomize", type=Path, help="a config file adding env.randomize")
    parser.add_argument("--perturb", type=Path, default=Path("config/perturb/reacher.yaml"))
    parser.add_argument("--runs", type=Path, default=Path("runs/bench_robustness"))
    parser.add_argument("--skip-training", action="store_true", help="evaluate finished runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument(
        "--finetune", type=int, default=0, metavar="N", help="randomised = nominal + N iterations"
    )
    parser.add_argument("--cost", action="store_true", help="measure the training cost only")
    parser.add_argument("--cost-iterations", type=int, default=40)
    parser.add_argument("--cost-rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny budgets (tests)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.cost and args.finetune:
        parser.error("--cost measures the training throughput, --finetune trains: one at a time")
    sets = [*SMOKE, *args.set] if args.smoke else args.set
    episodes = 2 if args.smoke else args.episodes
    nominal = args.runs / f"{args.task}_nominal"
    randomized = [*sets, *finetuning(nominal, args.finetune, args.smoke)]
    runs = {  # the nominal run first: a fine-tuning starts from it
        "nominal": (nominal, None, [*sets, "env.randomize.enabled=false"]),
        "randomized": (args.runs / f"{args.task}_randomized", args.randomize, randomized),
    }
    if args.cost:
        iterations, rounds = (2, 1) if args.smoke else (args.cost_iterations, args.cost_rounds)
        cost = training_cost(args.task, runs, iterations, rounds)
        print(json.dumps(cost, indent=2))
        write_results(args.out, "sim2real", cost, key=f"randomization_cost_{args.task}")
        return 0
    figures: dict[str, Any] = {"episodes": episodes, "perturbations": str(args.perturb)}
    figures["randomize"] = str(args.randomize) if args.randomize else None  # None: the task's
    figures["finetune_iterations"] = args.finetune
    for name, (run_dir, randomize, overrides) in runs.items():
        if not args.skip_training:
            train(args.task, run_dir, randomize, overrides, args.smoke)
        checkpoint = run_dir / "checkpoints" / "latest.pt"
        figures[name] = run_figures(run_dir) | robustness(checkpoint, episodes, args.perturb)
        print(name, json.dumps(figures[name]), flush=True)
    print(json.dumps(figures, indent=2))
    key = f"robustness_{args.task}" + ("_finetuned" if args.finetune else "")
    write_results(args.out, "sim2real", figures, key=key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
