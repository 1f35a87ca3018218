"""Helpers shared by the benchmark scripts (not a benchmark itself).

Usage: ``from common import add_common_args, round_robin_medians, write_results`` in a
script under ``benchmarks/`` (run as ``python benchmarks/bench_X.py``, so this folder is on
``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every script takes: task, overrides, smoke mode, output directory."""
    parser.add_argument("--task", default="reacher")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, seconds (tests)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the results")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write_results(out: Path, section: str, figures: dict[str, Any], key: str = "") -> Path:
    """Write ``out/<section>[_<key>].json`` and the same figures at ``section[.key]`` of
    ``out/summary.json`` (other entries kept)."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"{section}_{key}" if key else section
    command = " ".join(["python", *sys.argv])
    path = out / f"{name}.json"
    data = {section: {key: figures} if key else figures, "machine": machine(), "command": command}
    path.write_text(json.dumps(data, indent=2) + "\n")
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary["machine"] = machine()
    summary.setdefault("commands", {})[name] = command
    if key:
        summary.setdefault(section, {})[key] = figures
    else:
        summary[section] = figures
    tmp = summary_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, summary_path)
    return path


def round_robin_medians(
    fns: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, float]:
    """Median wall time of each ``fns[name]()``, called in turn (load drift hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
