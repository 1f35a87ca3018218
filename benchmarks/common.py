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
import subprocess
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
    """Write ``out/<section>[_<key>].json`` and merge the figures into ``out/summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"{section}_{key}" if key else section
    command = " ".join(["python", *sys.argv])
    path = out / f"{name}.json"
    data = {section: {key: figures} if key else figures, "machine": machine(), "command": command}
    path.write_text(json.dumps(data, indent=2) + "\n")
    _merge_summary(out / "summary.json", section, name, data)
    return path


def _merge_summary(path: Path, section: str, name: str, data: dict[str, Any]) -> None:
    """Put one result file's ``data`` into the summary (other entries kept); atomic rewrite."""
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary["machine"] = data["machine"]
    summary.setdefault("commands", {})[name] = data["command"]
    entry = data[section]
    summary[section] = {**summary.get(section, {}), **entry} if name != section else entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


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


def train_in_process(task: str, run_dir: Path, flags: list[str], sets: list[str], log=None) -> None:
    """``sdpg train --task task --out run_dir`` with ``flags`` and ``--set`` items, in a fresh
    process (its output to ``log``, a file, or discarded)."""
    command = [sys.executable, "-m", "sdpg_core.cli", "train", "--task", task]
    command += ["--out", str(run_dir), "--no-progress", *flags]
    for item in sets:
        command += ["--set", item]
    print("$", " ".join(command), flush=True)
    output = subprocess.DEVNULL if log is None else log
    subprocess.run(command, check=True, stdout=output, stderr=None if log is None else output)
