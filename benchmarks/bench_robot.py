"""A robot task end to end: train it, evaluate it in-process, drive the simulated robot over ROS 2.

1. ``sdpg train --task T`` with the task config's iteration budget (or ``--run DIR``: a finished
   run of it), in a fresh process; iterations, minutes and CPU seconds from the run.
2. The final policy (``latest.pt``) on ``--episodes`` seeded episodes in-process (``sdpg eval``'s
   episodes): the success rate.
3. ``sdpg-ros deploy --backend sim --robot R --compare`` on the same episodes (or the first
   ``--ros-episodes``: over ROS the sim runs in real time): success (walkers: mean velocity
   along the command) over ROS and, beside it, in-process on exactly those episodes.
4. Camera-to-command latency of the same policy at the camera rate with the camera in another
   process (``bench_ros_latency.run_rate``); a policy without a camera (go2_walk) has none.

Usage:
  python benchmarks/bench_robot.py --task ur5e_reach --robot ur5e
  python benchmarks/bench_robot.py --task ur5e_reach --robot ur5e --run runs/ur5e --episodes 100
  python benchmarks/bench_robot.py --task go2_walk --robot go2 --command 0.5,0,0 --rate 50 \
      --ros-episodes 20
  python benchmarks/bench_robot.py --smoke --out /tmp/bench   # a minute; for the tests
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ros_latency import run_rate
from common import RESULTS, train_in_process, write_results

SMOKE = ["sdpg.num_nominal=2", "sdpg.num_perturbations=1", "sdpg.horizon=4", "env.image_size=32"]
SMOKE += ["run.eval_episodes=2", "run.video=false", "run.eval_interval=0"]


def training_figures(run_dir: Path) -> dict[str, Any]:
    """Iterations, minutes and CPU seconds of a finished run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "iterations": summary["iterations"],
        "minutes": summary["minutes"],
        "cpu_s": last["cpu_time_s"],
        "run_dir": str(run_dir),
    }


def in_process(checkpoint: Path, episodes: int, command: str) -> dict[str, float]:
    """``sdpg eval``'s evaluation of the checkpoint on ``episodes`` seeded episodes (a command
    task with the fixed ``command`` 'vx,vy,wz')."""
    from sdpg_core.config import parse_command
    from sdpg_core.evaluate import evaluate
    from sdpg_core.policy import Policy

    fixed = parse_command(command) if command else None
    result = evaluate(Policy.load(checkpoint), episodes, command=fixed)
    keep = ("success_rate", "return_mean", "velocity_mean")  # velocity: walkers
    return {key: result[key] for key in keep if key in result}


def over_ros(
    checkpoint: Path, robot: str, episodes: int, episode_s: float, work: Path, cmd_vel: str
) -> dict:
    """``sdpg-ros deploy --backend sim --compare`` on ``episodes`` episodes."""
    report = work / "deploy.json"
    command = [str(Path(sys.executable).parent / "sdpg-ros"), "deploy", "--backend", "sim"]
    command += ["--robot", robot, "--checkpoint", str(checkpoint), "--compare"]
    command += ["--cmd-vel", cmd_vel] if cmd_vel else []
    command += ["--episodes", str(episodes), "--duration", str(2 * episodes * episode_s + 60)]
    print("$", " ".join([*command, "--report", str(report)]), flush=True)
    subprocess.run([*command, "--report", str(report)], check=True, stdout=subprocess.DEVNULL)
    data = json.loads(report.read_text())
    return {
        "ros_success_rate": data["success_rate"],
        "ros_in_process_success_rate": data["in_process_success_rate"],
        "ros_episodes": data["episodes"],
        "ros_rejected": data["rejected"],
        "ros_return_mean": sum(data["returns"]) / max(1, len(data["returns"])),
        **{f"ros_{name}_mean": value for name, value in data["metrics"].items()},
        **{f"ros_in_process_{k}_mean": v for k, v in data.get("in_process_metrics", {}).items()},
    }


def latency_figures(latency: dict[str, Any], rate: float) -> dict[str, Any]:
    """The camera-to-command latency keys of ``robots.<task>``."""
    keys = ("latency_p50_ms", "latency_p99_ms", "latency_max_ms")
    return {key: latency[key] for key in keys} | {
        "latency_rate_hz": rate,
        "latency_frames": latency["frames_sent"],
        "latency_dropped_frames": latency["dropped_frames"],
    }


def main() -> int:
    """Train (or read a run), evaluate, deploy, measure latency; write robots.<task>."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="ur5e_reach")
    parser.add_argument("--robot", default="ur5e")
    parser.add_argument("--run", type=Path, help="a finished training run of the task (skip 1)")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument(
        "--ros-episodes",
        type=int,
        help="over ROS: the first this many (default: all; 0: none, e.g. a task the robot YAML's "
        "sim does not run)",
    )
    parser.add_argument("--key", help="summary.json entry robots.<key> (default: the task)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--frames", type=int, default=3000, help="latency: frames sent")
    parser.add_argument("--command", default="", help="command tasks: fixed 'vx,vy,wz'")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets (tests)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    iterations = 2 if args.smoke else None
    sets = [*SMOKE, *args.set] if args.smoke else args.set
    episodes, frames = (2, 30) if args.smoke else (args.episodes, args.frames)
    ros_episodes = episodes if args.ros_episodes is None else min(episodes, args.ros_episodes)
    run_dir = args.run or args.runs / args.task
    if args.run is None:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        flags = ["--overwrite", *(["--iterations", str(iterations)] if iterations else [])]
        with open(f"{run_dir}.log", "w") as log:  # the config's budget unless --smoke
            train_in_process(args.task, run_dir, flags, sets, log)
    checkpoint = run_dir / "checkpoints" / "latest.pt"
    figures = training_figures(run_dir)
    figures.update(in_process(checkpoint, episodes, args.command))
    figures["episodes"] = episodes
    from sdpg_core.checkpoint import read_header

    spec = read_header(checkpoint)["spec"]
    episode_s = spec["episode_steps"] * spec["control_dt"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if ros_episodes:  # 0: no ROS part at all
            figures |= over_ros(checkpoint, args.robot, ros_episodes, episode_s, work, args.command)
        if ros_episodes and spec["obs_mode"] == "pixels":  # camera-to-command latency
            size = spec["pixel_shape"][1]
            figures |= latency_figures(
                run_rate(checkpoint, args.rate, frames, size, work, args.robot), args.rate
            )
    print(json.dumps(figures, indent=2))
    write_results(args.out, "robots", figures, key=args.key or args.task)
    return 0


if __name__ == "__main__":
    sys.exit(main())
