"""``benchmarks/results/summary.json``: one section per benchmark, plus the machine and commands."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def merge(section: str, key: str, figures: dict[str, Any], out: Path = RESULTS) -> Path:
    """Write ``figures`` at ``section.key`` of ``out/summary.json`` (other entries kept)."""
    path = out / "summary.json"
    out.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["machine"] = machine()
    data.setdefault("commands", {})[f"{section}.{key}"] = " ".join(["python", *sys.argv])
    data.setdefault(section, {})[key] = figures
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
