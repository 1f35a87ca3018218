"""SDPG iteration time as auxiliaries per nominal env (P) and nominal envs (B) grow.

Two sweeps of full SDPG iterations (rollout + update) on the task's config (reacher: the CPU
config, 64x64 pixels, T=16): P over ``--ps`` at B = ``--fixed-b``, and B over ``--bs`` at
P = ``--fixed-p``. Every point has its own ``SDPGTrainer``, all alive at once, iterated round-robin
(so load drift on a shared machine hits every point alike): ``--warmup`` untimed rounds, then
the median of ``--iterations`` timed ones per point (and the medians of its update and of the
rest, the rollout). Rendering and the CNN scale with B; only physics and the small critic and
SDPG updates scale with B(P+1).

Usage:
  python benchmarks/bench_scaling.py                  # P 0..63 at B=16, B 4..32 at P=15
  python benchmarks/bench_scaling.py --ps 0 15 63 --iterations 10
  python benchmarks/bench_scaling.py --smoke --out /tmp/bench   # seconds; for the tests
Prints a table; writes <out>/scaling.json (``scaling.time_ratio_p63_over_p0``,
``scaling.seconds_by_p``, ``scaling.seconds_by_b``...) and <out>/scaling.png.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import add_common_args, write_results

from sdpg_core.config import resolve
from sdpg_core.trainers.sdpg import SDPGTrainer

SMOKE = {"ps": [0, 3], "bs": [2, 4], "fixed_b": 2, "fixed_p": 3, "warmup": 1, "iterations": 2}
SMOKE_SETS = ["env.image_size=32", "sdpg.horizon=4", "sdpg.actor_epochs=1"]


def build(task: str, sets: list[str], b: int, p: int, run_dir: Path) -> SDPGTrainer:
    """A fresh SDPG trainer with B nominal envs and P auxiliaries each."""
    cfg = resolve(task, overrides=[*sets, f"sdpg.num_nominal={b}", f"sdpg.num_perturbations={p}"])
    return SDPGTrainer(cfg, run_dir)


def time_rounds(trainers: dict[tuple[int, int], SDPGTrainer], args: argparse.Namespace) -> dict:
    """Round-robin iterations of every trainer; timed (total, update) seconds per point."""
    timed: dict[tuple[int, int], list[tuple[float, float]]] = {key: [] for key in trainers}
    for round_ in range(args.warmup + args.iterations):
        for key, trainer in trainers.items():
            start = time.perf_counter()
            record = trainer.train_iteration()
            if round_ >= args.warmup:
                timed[key].append((time.perf_counter() - start, record["time/update"]))
    return timed


def summarise(b: int, p: int, horizon: int, timed: list[tuple[float, float]]) -> dict:
    """Medians of a point's iteration, rollout (iteration - update) and update seconds."""
    envs = b * (p + 1)
    seconds = statistics.median(total for total, _ in timed)
    return {
        "num_nominal": b,
        "num_perturbations": p,
        "num_envs": envs,
        "iteration_s": seconds,
        "rollout_s": statistics.median(total - update for total, update in timed),
        "update_s": statistics.median(update for _, update in timed),
        "env_steps_per_s": envs * horizon / seconds,
    }


def sweeps(args: argparse.Namespace, sets: list[str]) -> tuple[list[dict], list[dict]]:
    """The P sweep and the B sweep, every point alive at once (a point in both runs once)."""
    points = [(args.fixed_b, p) for p in args.ps] + [(b, args.fixed_p) for b in args.bs]
    horizon = resolve(args.task, overrides=sets).sdpg.horizon
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {key: build(args.task, sets, *key, Path(tmp)) for key in dict.fromkeys(points)}
        timed = time_rounds(trainers, args)
        for trainer in trainers.values():
            trainer.close()
    rows = {key: summarise(*key, horizon, times) for key, times in timed.items()}
    print(
        f"{'B':>4} {'P':>4} {'envs':>6} {'s/iter':>8} {'rollout s':>9} {'update s':>9} "
        f"{'env-steps/s':>11}"
    )
    for row in rows.values():
        print_row(row)
    by_p = [rows[args.fixed_b, p] for p in args.ps]
    return by_p, [rows[b, args.fixed_p] for b in args.bs]


def print_row(row: dict) -> None:
    """One measured point."""
    print(
        f"{row['num_nominal']:4d} {row['num_perturbations']:4d} {row['num_envs']:6d} "
        f"{row['iteration_s']:8.3f} {row['rollout_s']:9.3f} {row['update_s']:9.3f} "
        f"{row['env_steps_per_s']:11.0f}",
        flush=True,
    )


def figures(args: argparse.Namespace, by_p: list[dict], by_b: list[dict]) -> dict[str, Any]:
    """The JSON section: per-P and per-B seconds, the details and the end-to-end ratios."""
    first_p, last_p = by_p[0], by_p[-1]
    first_b, last_b = by_b[0], by_b[-1]
    p0, p1 = first_p["num_perturbations"], last_p["num_perturbations"]
    b0, b1 = first_b["num_nominal"], last_b["num_nominal"]
    return {
        "task": args.task,
        "warmup": args.warmup,
        "iterations": args.iterations,
        "fixed_b": args.fixed_b,
        "fixed_p": args.fixed_p,
        "seconds_by_p": {str(r["num_perturbations"]): r["iteration_s"] for r in by_p},
        "seconds_by_b": {str(r["num_nominal"]): r["iteration_s"] for r in by_b},
        f"time_ratio_p{p1}_over_p{p0}": last_p["iteration_s"] / first_p["iteration_s"],
        f"env_ratio_p{p1}_over_p{p0}": last_p["num_envs"] / first_p["num_envs"],
        f"time_ratio_b{b1}_over_b{b0}": last_b["iteration_s"] / first_b["iteration_s"],
        "detail_by_p": {str(r["num_perturbations"]): r for r in by_p},
        "detail_by_b": {str(r["num_nominal"]): r for r in by_b},
    }


def plot(by_p: list[dict], by_b: list[dict], args: argparse.Namespace, path: Path) -> None:
    """Seconds per iteration (and its rollout / update parts) against P and against B."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = (
        (by_p, "num_perturbations", f"P (B = {args.fixed_b})"),
        (by_b, "num_nominal", f"B (P = {args.fixed_p})"),
    )
    for ax, (rows, key, label) in zip(axes, panels, strict=True):
        x = [r[key] for r in rows]
        for part, style in (("iteration_s", "o-"), ("rollout_s", "s--"), ("update_s", "^:")):
            ax.plot(x, [r[part] for r in rows], style, label=part.removesuffix("_s"))
        ax.set(xlabel=label, ylabel="seconds per iteration (median)", ylim=(0, None))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"SDPG iteration time, {args.task}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring); ``--smoke`` shrinks every budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--ps", type=int, nargs="+", default=[0, 7, 15, 31, 63])
    parser.add_argument("--fixed-b", type=int, default=16)
    parser.add_argument("--bs", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--fixed-p", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both sweeps; print, plot and save the figures."""
    args = parse_args(argv)
    sets = [*(SMOKE_SETS if args.smoke else []), *args.set]
    cfg = resolve(args.task, overrides=sets)
    by_p, by_b = sweeps(args, sets)
    result = {"horizon": cfg.sdpg.horizon, "image_size": cfg.env.image_size}
    result |= figures(args, by_p, by_b)
    for key, value in result.items():
        if key.startswith("time_ratio") or key.startswith("env_ratio"):
            print(f"{key:28s} {value:8.2f}")
    path = write_results(args.out, "scaling", result)
    plot(by_p, by_b, args, path.with_suffix(".png"))
    return result


if __name__ == "__main__":
    main()
