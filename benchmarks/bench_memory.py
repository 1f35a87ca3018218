"""Peak memory from pixels: SDPG (few rendered envs) against all-rendered PPO, same env count.

SDPG runs ``--nominal`` rendered envs (B, default 64) and N / B - 1 physics-only auxiliaries
each; PPO renders every env and stores its pixel observations over the horizon. Each
(algorithm, env count) runs alone in a fresh process: import, read the baseline RSS, build the
trainer, run one rollout (``collect()``: T steps of every env, storage filled), then read the
peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``). The update that follows a rollout is not
run: its activation memory is set by the minibatch size, not by the number of rendered envs.
Pixel bytes: every pixel array the trainer holds (renderer frame stacks, rollout storage),
shared memory counted once.

Usage:
  python benchmarks/bench_memory.py                      # 1,024 and 4,096 envs, T=32, 84x84
  python benchmarks/bench_memory.py --envs 1024 --horizon 16 --algos sdpg
  python benchmarks/bench_memory.py --smoke --out /tmp/bench   # seconds; for the tests
Prints a table; writes <out>/memory.json (``memory.envs_<N>.{sdpg,ppo}_peak_mb``, ``ratio``...).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from common import add_common_args, write_results

MARKER = "MEMORY_RESULT "
MAX_DEPTH = 6
SMOKE = {"envs": [64], "nominal": 8, "horizon": 4, "image_size": 32}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def overrides(algo: str, envs: int, args: argparse.Namespace) -> list[str]:
    """``--set`` overrides of one configuration."""
    common = [f"env.image_size={args.image_size}", f"run.algo={algo}", *args.set]
    if algo == "ppo":
        return [f"ppo.num_envs={envs}", f"ppo.horizon={args.horizon}", *common]
    if envs % args.nominal:
        raise SystemExit(f"--envs {envs} is not a multiple of --nominal {args.nominal}")
    return [
        f"sdpg.num_nominal={args.nominal}",
        f"sdpg.num_perturbations={envs // args.nominal - 1}",
        f"sdpg.horizon={args.horizon}",
        *common,
    ]


def trainer_class(algo: str) -> type:
    """The trainer of ``algo``; SDPG's trainer is imported either way (same baseline)."""
    from sdpg_core.trainers.sdpg import SDPGTrainer

    if algo == "ppo":
        from sdpg_core.trainers.ppo import PPOTrainer

        return PPOTrainer
    return SDPGTrainer


def _children(obj: Any) -> list[Any]:
    """Objects referenced by ``obj`` that may lead to arrays (arrays and tensors are leaves)."""
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset, deque)):
        return list(obj)
    if hasattr(obj, "shape") or isinstance(obj, (str, bytes, int, float, type)):
        return []
    return list(getattr(obj, "__dict__", {}).values())


def _span(obj: Any, size: int) -> tuple[int, int] | None:
    """(address, bytes) of the memory behind a pixel array or tensor (trailing C,H,W or H,W,C)."""
    shape = tuple(getattr(obj, "shape", ()))
    if len(shape) < 3 or (size, size) not in (shape[-2:], shape[-3:-1]):
        return None
    if hasattr(obj, "untyped_storage"):  # a torch tensor: its whole storage
        storage = obj.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    if isinstance(obj, np.ndarray):
        while isinstance(obj.base, np.ndarray):
            obj = obj.base
        return obj.__array_interface__["data"][0], obj.nbytes
    return None


def pixel_bytes(root: Any, size: int) -> int:
    """Bytes of the distinct memory behind every pixel array reachable from ``root`` (BFS)."""
    seen: set[int] = set()
    spans: list[tuple[int, int]] = []
    queue = deque([(root, 0)])
    while queue:
        obj, depth = queue.popleft()
        if id(obj) in seen or depth > MAX_DEPTH:
            continue
        seen.add(id(obj))
        span = _span(obj, size)
        if span is not None:
            spans.append(span)
        else:
            queue.extend((child, depth + 1) for child in _children(obj))
    return _union_bytes(spans)


def _union_bytes(spans: list[tuple[int, int]]) -> int:
    """Bytes covered by (address, length) spans, overlaps (shared memory, views) counted once."""
    total, end = 0, -1
    for start, length in sorted(spans):
        total += max(0, start + length - max(start, end))
        end = max(end, start + length)
    return total


def rendered_envs(trainer: Any) -> int | None:
    """Number of envs that render (None if the trainer does not say)."""
    env = getattr(trainer, "env", None)
    ids = getattr(env, "render_ids", None)
    return None if ids is None or getattr(env, "renderer", None) is None else len(ids)


def measure(algo: str, envs: int, args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS and pixel bytes of one configuration (call in a fresh process)."""
    from sdpg_core.config import resolve

    cls = trainer_class(algo)
    baseline = peak_rss_mb()
    cfg = resolve(args.task, overrides=overrides(algo, envs, args))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        trainer = cls(cfg, tmp)
        built, cpu = time.perf_counter(), time.process_time()
        phase = "collect" if hasattr(trainer, "collect") else "train_iteration"
        getattr(trainer, phase)()
        done, cpu = time.perf_counter(), time.process_time() - cpu
        result = {
            "baseline_mb": baseline,
            "peak_mb": peak_rss_mb(),
            "pixel_mb": pixel_bytes(trainer, cfg.env.image_size) / 2**20,
            "num_envs": getattr(trainer, "num_envs", envs),
            "rendered_envs": rendered_envs(trainer),
            "measured": phase,
            "build_s": built - start,
            "rollout_s": done - built,
            "rollout_cpu_s": cpu,
        }
        trainer.close()
    return result


def run_child(algo: str, envs: int, args: argparse.Namespace) -> dict[str, Any] | str:
    """``measure`` in a fresh interpreter; a failure returns ``"unavailable: <reason>"``."""
    if algo == "ppo" and importlib.util.find_spec("sdpg_core.trainers.ppo") is None:
        return "unavailable: sdpg_core.trainers.ppo (PPOTrainer) does not exist"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", algo, str(envs)]
    command += child_args(args)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return f"unavailable: no result within --timeout {args.timeout:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"unavailable: exit code {proc.returncode}: {tail}"
    return json.loads(lines[-1][len(MARKER) :]) | {"process_s": time.perf_counter() - start}


def child_args(args: argparse.Namespace) -> list[str]:
    """The options a child process needs to rebuild the same configuration."""
    out = ["--task", args.task, "--nominal", str(args.nominal), "--horizon", str(args.horizon)]
    out += ["--image-size", str(args.image_size)]
    for item in args.set:
        out += ["--set", item]
    return out


def compare(sdpg: dict[str, Any] | str, ppo: dict[str, Any] | str) -> dict[str, Any]:
    """Figures of one env count: each side's measurements and the PPO / SDPG peak ratio."""
    out: dict[str, Any] = {}
    for name, side in (("sdpg", sdpg), ("ppo", ppo)):
        if isinstance(side, str):
            out[name] = side
            continue
        out |= {f"{name}_{key}": value for key, value in side.items()}
    both = not isinstance(sdpg, str) and not isinstance(ppo, str)
    out["ratio"] = ppo["peak_mb"] / sdpg["peak_mb"] if both else None
    return out


def print_table(figures: dict[str, Any]) -> None:
    """One row per (env count, algorithm), then the ratios."""
    print(
        f"{'envs':>6} {'algo':5} {'rendered':>8} {'baseline MB':>11} {'peak MB':>9} "
        f"{'pixels MB':>9} {'rollout s':>9}"
    )
    for key, row in figures.items():
        if not key.startswith("envs_"):
            continue
        for algo in ("sdpg", "ppo"):
            if algo in row:
                print(f"{key[5:]:>6} {algo:5} {row[algo]}")
                continue
            print(
                f"{key[5:]:>6} {algo:5} {row[f'{algo}_rendered_envs']!s:>8} "
                f"{row[f'{algo}_baseline_mb']:11.1f} {row[f'{algo}_peak_mb']:9.1f} "
                f"{row[f'{algo}_pixel_mb']:9.1f} {row[f'{algo}_rollout_s']:9.2f}"
            )
        if row["ratio"] is not None:
            print(f"{key[5:]:>6} ratio ppo_peak / sdpg_peak = {row['ratio']:.2f} (target >= 10)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring); ``--smoke`` shrinks every budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--envs", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--algos", nargs="+", choices=["sdpg", "ppo"], default=["sdpg", "ppo"])
    parser.add_argument("--nominal", type=int, default=64, help="SDPG rendered envs (B)")
    parser.add_argument("--horizon", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    parser.add_argument("--child", nargs=2, metavar=("ALGO", "ENVS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.envs, args.nominal = SMOKE["envs"], SMOKE["nominal"]
        args.horizon, args.image_size = SMOKE["horizon"], SMOKE["image_size"]
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every (env count, algorithm) in its own process; print and save the figures."""
    args = parse_args(argv)
    if args.child:
        result = measure(args.child[0], int(args.child[1]), args)
        print(MARKER + json.dumps(result), flush=True)
        return result
    figures: dict[str, Any] = {
        "task": args.task,
        "horizon": args.horizon,
        "image_size": args.image_size,
        "sdpg_nominal": args.nominal,
    }
    for envs in args.envs:
        sides = {
            algo: run_child(algo, envs, args) for algo in ("sdpg", "ppo") if algo in args.algos
        }
        if isinstance(sides.get("sdpg"), str):
            raise SystemExit(f"SDPG at {envs} envs failed: {sides['sdpg']}")
        figures[f"envs_{envs}"] = compare(sides.get("sdpg", "not run"), sides.get("ppo", "not run"))
    print_table(figures)
    write_results(args.out, "memory", figures)
    return figures


if __name__ == "__main__":
    main()
