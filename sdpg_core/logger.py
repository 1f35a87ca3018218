"""Run logging: metrics.jsonl, TensorBoard events and the learning-curve plot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from torch.utils.tensorboard import SummaryWriter


class MetricsLogger:
    """Appends one JSON object per iteration and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, resume_after: int = 0) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        if resume_after:
            self._truncate(resume_after)
        purge = resume_after + 1 if resume_after else None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)

    def _truncate(self, iteration: int) -> None:
        """Keep each iteration up to ``iteration`` once (the checkpoint a run resumes from);
        drop later rows and a line cut short by a kill. Rewritten atomically."""
        kept: dict[int, dict[str, Any]] = {}
        for record in read_metrics(self.path):
            if record["iteration"] <= iteration:
                kept.setdefault(record["iteration"], record)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(kept[i]) + "\n" for i in sorted(kept)))
        os.replace(tmp, self.path)

    def log(self, record: dict[str, Any]) -> None:
        """Append ``record`` (must hold ``iteration``) and flush it to disk."""
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        step = int(record["iteration"])
        for key, value in record.items():
            if isinstance(value, (int, float)) and key != "iteration":
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush TensorBoard and draw the learning curve."""
        self.writer.close()
        plot_learning_curve(self.path, self.run_dir / "learning_curve.png")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete records of a metrics.jsonl file (a line a kill cut short is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), int):
            records.append(record)
    return records


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(minutes, values) of the records that hold ``key``."""
    rows = [(r["wall_time_s"] / 60, r[key]) for r in records if r.get(key) is not None]
    return [m for m, _ in rows], [v for _, v in rows]


def plot_learning_curve(metrics: Path, out: Path) -> None:
    """Training and evaluation return (and success where defined) against wall time."""
    records = read_metrics(metrics)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("episode_return", "train return"), ("eval/return_mean", "eval return")):
        ax.plot(*_series(records, key), label=label)
    ax.set_xlabel("wall time (min)")
    ax.set_ylabel("episode return")
    success = _series(records, "eval/success_rate")
    if success[0]:
        twin = ax.twinx()
        twin.plot(*success, color="tab:green", linestyle="--", label="eval success")
        twin.set_ylabel("success rate")
        twin.set_ylim(0, 1.05)
        twin.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(records[0].get("task", "") if records else "no iterations yet")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
