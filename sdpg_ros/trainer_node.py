"""trainer_node: SDPG training (sdpg_core) with progress, a camera preview and checkpoint paths.

Publishes ``trainer/progress`` (diagnostic_msgs/DiagnosticStatus, ``progress_rate_hz``),
``trainer/preview`` (sensor_msgs/Image rgb8: nominal env 0's camera) and ``trainer/checkpoint``
(std_msgs/String, transient local: the path of every checkpoint written, for hot reload).
Services ``~/save`` and ``~/stop`` (std_srvs/Trigger). SIGINT/SIGTERM (or the parent process
dying) end training after the current iteration, skip evaluations, save and exit.

A progress line goes to the log every ``log_interval_s`` (iteration, return, success, frames/s),
and the current policy is written as ``checkpoints/live.pt`` (deploy-only) and announced after
the first iteration and every ``live_policy_interval_s``, so a sim watching the training
(``eval_in_sim``) moves within seconds and follows it within a minute, whatever
``run.checkpoint_interval`` is.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from sdpg_core import checkpoint
from sdpg_core.config import ConfigError
from sdpg_core.session import TrainingSession, check_run_dir, default_run_dir, resolve_train_config
from sdpg_ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    ParameterError,
    declare,
    destroy_on_error,
    require,
    run_nodes,
)
from sdpg_ros.image_conversion import to_msg

PROGRESS_KEYS = (
    "iteration",
    "env_steps",
    "wall_time_s",
    "episode_return",
    "success_rate",
    "policy_std",
    "alpha",
    "actor_loss",
    "critic_loss",
    "fps",
    "eval/success_rate",
    "eval/return_mean",
)


def progress_line(record: dict[str, Any], iterations: int) -> str:
    """One log line: iteration of the budget, training return and success, evaluation, speed."""
    parts = [f"iteration {record['iteration']}/{iterations}"]
    for key, label, form in (
        ("episode_return", "return", "{:.1f}"),
        ("success_rate", "success", "{:.0%}"),
        ("eval/success_rate", "eval success", "{:.0%}"),
        ("eval/return_mean", "eval return", "{:.1f}"),
        ("fps", "frames/s", "{:,.0f}"),
    ):
        if record.get(key) is not None:
            parts.append(f"{label} {form.format(record[key])}")
    parts.append(f"{record.get('wall_time_s', 0.0) / 60:.1f} min")
    return ", ".join(parts)


class TrainerNode(Node):
    """Runs a TrainingSession on a worker thread; the executor only publishes and serves."""

    @destroy_on_error
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("trainer_node", **kwargs)
        self._open_session = self._session_factory()
        self.session: TrainingSession | None = None
        self.stop_requested = self.skip_final_evaluation = False
        self.record: dict[str, Any] = {}
        self.preview: np.ndarray | None = None  # latest nominal camera frame
        self.summary: dict[str, Any] | None = None
        self.error: str | None = None
        self.finished = threading.Event()
        self._save_requested = threading.Event()
        self._logged_s = self._live_s = -float("inf")  # monotonic time of the last line / live.pt
        self._make_publishers()
        group = ReentrantCallbackGroup()
        self.create_service(Trigger, "~/save", self._save, callback_group=group)
        self.create_service(Trigger, "~/stop", self._stop, callback_group=group)
        self.worker = threading.Thread(target=self._train, name="sdpg-train", daemon=True)
        self.worker.start()

    def _session_factory(self) -> Callable[[], TrainingSession]:
        """Resolve the config from parameters (same files and overrides as ``sdpg train``).

        The session itself is built on the worker thread: its renderer's GL context belongs to
        the thread that creates it."""
        task = declare(self, "task", "reacher", "registered task name (sdpg tasks)")
        config = declare(self, "config", "", "YAML applied after the task's defaults ('' = none)")
        overrides = declare(self, "overrides", [], "KEY=VALUE overrides, e.g. sdpg.horizon=16")
        out = declare(self, "out", "", "run directory ('' = runs/<task>-<time>)")
        resume = declare(self, "resume", "", "run directory to continue ('' = new run)")
        device = declare(self, "device", "", "cpu or cuda ('' = the config's)")
        seed = declare(self, "seed", -1, "random seed (-1 = the config's)")
        iterations = declare(self, "iterations", 0, "iteration budget (0 = the config's)")
        minutes = declare(self, "minutes", 0.0, "wall-clock cap (0 = the config's)")
        overwrite = declare(self, "overwrite", False, "start afresh in an out that holds a run")
        nproc = declare(self, "nproc", 1, "training processes (this node trains in one)")
        require(
            nproc == 1,
            "nproc",
            "this node trains in one process; for several run `sdpg train --nproc K --out DIR` "
            "(torchrun) and deploy DIR/checkpoints/latest.pt (the policy node reloads new ones)",
        )
        self.progress_rate = declare(self, "progress_rate_hz", 1.0, "progress and preview rate")
        self.log_interval_s = declare(
            self, "log_interval_s", 10.0, "a progress line in the log every so often (0 = off)"
        )
        self.live_interval_s = declare(
            self, "live_policy_interval_s", 30.0, "write and announce live.pt this often (0 = off)"
        )
        require(self.progress_rate > 0, "progress_rate_hz", "must be > 0")
        require(self.log_interval_s >= 0, "log_interval_s", "must be >= 0 (0 = off)")
        require(self.live_interval_s >= 0, "live_policy_interval_s", "must be >= 0 (0 = off)")
        require(iterations >= 0, "iterations", "must be >= 0 (0 = the config's)")
        require(math.isfinite(minutes) and minutes >= 0, "minutes", "must be >= 0 (0 = none)")
        if resume:
            require(Path(resume, "checkpoints", "latest.pt").is_file(), "resume", "no checkpoint")
            return lambda: TrainingSession.resume(resume, device or None)
        try:
            cfg = resolve_train_config(
                task,
                config or None,
                overrides,
                device or None,
                None if seed < 0 else seed,
                iterations or None,
                minutes or None,
            )
        except (ConfigError, KeyError, ValueError, RuntimeError, FileNotFoundError) as err:
            raise ParameterError(f"trainer configuration: {err}") from err
        run_dir = out or default_run_dir(cfg)
        try:
            check_run_dir(Path(run_dir), overwrite)
        except FileExistsError as err:
            raise ParameterError(f"parameter 'out': {err}") from err
        return lambda: TrainingSession.start(cfg, run_dir, overwrite=overwrite)

    def _make_publishers(self) -> None:
        """Progress, preview and checkpoint publishers with their timer."""
        self.progress_pub = self.create_publisher(DiagnosticStatus, "trainer/progress", 10)
        self.preview_pub = self.create_publisher(Image, "trainer/preview", RELIABLE_QOS)
        self.checkpoint_pub = self.create_publisher(String, "trainer/checkpoint", LATCHED_QOS)
        self.create_timer(1.0 / self.progress_rate, self._publish_progress)

    def _train(self) -> None:
        """Worker thread: train until done or stopped, then evaluate and summarise."""
        try:
            self.session = self._open_session()
            self.session.checkpoint_listeners.append(self._on_checkpoint)
            self.session.stop_requested = self.stop_requested
            self.session.skip_final_evaluation = self.skip_final_evaluation
            self.summary = self.session.run(show_progress=False, on_record=self._on_record)
            self.get_logger().info(f"training finished: {self.summary}")
        except Exception as err:  # reported on the progress topic, never a silent death
            self.error = f"{type(err).__name__}: {err}"
            self.get_logger().error(f"training failed: {self.error}")
        finally:
            self.finished.set()

    def _on_record(self, record: dict[str, Any]) -> None:
        """Between iterations (worker thread): keep the record, serve pending save requests,
        log a progress line and refresh the live policy when they are due."""
        self.record = record
        self.preview = self.session.trainer.preview()
        if self._save_requested.is_set():
            self._save_requested.clear()
            self.session.save("latest.pt")
        now = time.monotonic()
        if self.log_interval_s and now - self._logged_s >= self.log_interval_s:
            self._logged_s = now
            self.get_logger().info(progress_line(record, self.session.cfg.run.iterations))
        if self.live_interval_s and now - self._live_s >= self.live_interval_s:
            self._live_s = now
            self._save_live()

    def _save_live(self) -> None:
        """Write the current policy (deploy-only) as checkpoints/live.pt and announce it."""
        policy = self.session.trainer.policy_state_dict()
        self._on_checkpoint(
            checkpoint.save(policy, self.session.run_dir / "checkpoints" / "live.pt")
        )

    def _on_checkpoint(self, path: Path) -> None:
        """Announce a written checkpoint."""
        if self.context.ok():
            self.checkpoint_pub.publish(String(data=str(path.resolve())))

    def _publish_progress(self) -> None:
        """Progress as key/values, plus the latest nominal camera frame."""
        record = self.record
        values = [KeyValue(key=k, value=str(record[k])) for k in PROGRESS_KEYS if k in record]
        if self.session is not None:
            values.append(KeyValue(key="run_dir", value=str(self.session.run_dir)))
        level = DiagnosticStatus.ERROR if self.error else DiagnosticStatus.OK
        message = self.error or ("finished" if self.finished.is_set() else "training")
        self.progress_pub.publish(
            DiagnosticStatus(level=level, name="sdpg_trainer", message=message, values=values)
        )
        frame = self.preview
        if frame is not None:
            msg = to_msg(frame)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.preview_pub.publish(msg)

    def _save(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Ask for latest.pt after the current iteration; its path goes out on trainer/checkpoint
        (the executor never waits on training)."""
        if self.finished.is_set():
            response.success, response.message = False, "training has finished"
            return response
        self._save_requested.set()
        response.success = True
        response.message = "saving after this iteration; the path follows on trainer/checkpoint"
        return response

    def _stop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Finish the current iteration, save, evaluate and end training."""
        self._request_stop()
        response.success, response.message = True, "stopping after this iteration"
        return response

    def close(self) -> None:
        """Stop after this iteration and wait: latest.pt saved, no evaluation (launch gives 5 s)."""
        self._request_stop(skip_final_evaluation=True)
        self.worker.join()

    def _request_stop(self, skip_final_evaluation: bool = False) -> None:
        """Ask the session to end after its current iteration (or before it starts)."""
        self.stop_requested = True
        self.skip_final_evaluation |= skip_final_evaluation
        if self.session is not None:
            self.session.stop_requested = True
            self.session.skip_final_evaluation = self.skip_final_evaluation


def main(args: list[str] | None = None) -> int:
    """Console script ``trainer_node``: exits when training ends or on SIGINT."""
    nodes: list[TrainerNode] = []

    def build() -> TrainerNode:
        nodes.append(TrainerNode())
        return nodes[0]

    code = run_nodes(
        [build],
        args,
        until=lambda: bool(nodes) and nodes[0].finished.is_set(),
        executable=True,
    )
    return code or (1 if nodes and nodes[0].error else 0)  # a failed training is no success


if __name__ == "__main__":
    sys.exit(main())
