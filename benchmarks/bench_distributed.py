"""Data-parallel scaling: the same SDPG config trained in 1 and in K processes of this machine.

Each run is ``sdpg train --nproc K`` in a fresh process tree (torchrun; one torch thread per
process when K > 1, the cores shared out), the task config with ``--iterations`` iterations;
iterations after ``--warmup`` are timed. Reported per K: env steps per second (all ranks),
iteration seconds, and rank 0's time split per iteration (actor forward, env step, critic,
update, of which all-reduce); the speed-up K over 1 and the efficiency (speed-up / K).

Usage:
  python benchmarks/bench_distributed.py                       # reacher, 1 and 2 processes
  python benchmarks/bench_distributed.py --task go2_walk --iterations 40
  python benchmarks/bench_distributed.py --smoke --out /tmp/bench   # for the tests
Writes ``distributed`` in summary.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_common_args, write_results

SMOKE = ["sdpg.num_nominal=2", "sdpg.num_perturbations=3", "sdpg.horizon=4"]
SPLIT = ("actor_forward", "env_step", "critic", "update", "allreduce", "physics", "render")


def train(task: str, nproc: int, iterations: int, sets: list[str], run_dir: Path) -> Path:
    """``sdpg train`` in ``nproc`` processes; the run's metrics file."""
    command = [sys.executable, "-m", "sdpg_core.cli", "train", "--task", task]
    command += ["--iterations", str(iterations), "--out", str(run_dir), "--no-progress"]
    command += ["--nproc", str(nproc)]
    for item in [*sets, "run.eval_interval=0", "run.video=false", "run.eval_episodes=1"]:
        command += ["--set", item]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return run_dir / "metrics.jsonl"


def figures(metrics: Path, warmup: int) -> dict[str, Any]:
    """Steady-state speed and rank 0's time split of a run."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()][warmup:]
    steps = rows[-1]["env_steps"] - rows[0]["env_steps"]
    seconds = rows[-1]["wall_time_s"] - rows[0]["wall_time_s"]
    out = {
        "processes": rows[-1]["world_size"],
        "iterations_timed": len(rows) - 1,
        "env_steps_per_s": steps / seconds,
        "iteration_s": statistics.median(
            b["wall_time_s"] - a["wall_time_s"] for a, b in itertools.pairwise(rows)
        ),
    }
    for name in SPLIT:
        values = [r.get(f"time/{name}", 0.0) for r in rows[1:]]
        out[f"split_{name}_s"] = statistics.median(values)
    return out


def main() -> int:
    """Train in 1 and K processes; write distributed.*."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--processes", type=int, default=2, help="K")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    iterations, warmup = (4, 1) if args.smoke else (args.iterations, args.warmup)
    sets = [*SMOKE, *args.set] if args.smoke else args.set
    result: dict[str, Any] = {"task": args.task, "iterations": iterations, "warmup": warmup}
    with tempfile.TemporaryDirectory() as tmp:
        for k in (1, args.processes):
            metrics = train(args.task, k, iterations, sets, Path(tmp) / f"k{k}")
            result[f"processes_{k}"] = figures(metrics, warmup)
    one, many = result["processes_1"], result[f"processes_{args.processes}"]
    result["speedup"] = many["env_steps_per_s"] / one["env_steps_per_s"]
    result["efficiency"] = result["speedup"] / args.processes
    print(json.dumps(result, indent=2))
    write_results(args.out, "distributed", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
