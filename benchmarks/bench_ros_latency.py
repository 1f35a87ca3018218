"""Camera-to-command latency through policy_node and hardware_bridge over a real ROS 2 graph.

A camera process publishes rgb8 frames stamped with the wall clock at a fixed rate on the
robot's camera topic, and the robot's joint states (standing at the default pose) and, for a
robot with an IMU, a level IMU reading at the same stamps (a proprio-only policy acts on the
joint states); ``sdpg-ros deploy --backend real --activate``
(policy_node + hardware_bridge, one process, as on a robot) acts on them and commands the
robot's controller; the camera process also publishes the released e-stop state the bridge
waits for. The bridge measures each command's latency from the image stamp. Prints p50/p99
and dropped frames per rate and writes benchmarks/results/ros_latency[_<robot>].json.

Usage: python benchmarks/bench_ros_latency.py [--frames 5000] [--rates 50 100] [--size 84]
       python benchmarks/bench_ros_latency.py --robot ur5e --rates 30 --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def make_checkpoint(path: Path, size: int, task: str) -> Path:
    """An (untrained) pixel policy of ``task`` at ``size`` x ``size``: latency ignores the
    weights."""
    from sdpg_core import checkpoint
    from sdpg_core.config import resolve
    from sdpg_core.trainers.sdpg import SDPGTrainer

    overrides = [f"env.image_size={size}", "sdpg.num_nominal=1", "sdpg.num_perturbations=0"]
    trainer = SDPGTrainer(resolve(task, overrides=overrides), path.parent)
    checkpoint.save(trainer.state_dict(), path)
    trainer.close()
    return path


def camera(rate_hz: float, frames: int, size: int, warmup_s: float, robot: str) -> int:
    """Publish ``frames`` images at ``rate_hz`` after ``warmup_s`` (each after a joint state of
    the same stamp when the robot's policy reads them); returns the count sent."""
    import rclpy
    from sensor_msgs.msg import Image, Imu, JointState
    from std_msgs.msg import Bool

    from sdpg_core.envs.registry import get_task
    from sdpg_core.robot import load_robot
    from sdpg_ros.hardware_bridge import E_STOP_QOS
    from sdpg_ros.image_conversion import to_msg

    config = load_robot(robot)
    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pub = node.create_publisher(Image, config.camera_topic, 10)
    joints = node.create_publisher(JointState, "joint_states", 10)
    state = JointState(name=list(config.joints), position=list(config.default_pose))
    state.velocity = [0.0] * len(config.joints)
    imu = (
        node.create_publisher(Imu, "imu/data", 10)
        if get_task(config.sim_task).factory.imu
        else None
    )
    level = Imu()
    level.orientation.w = 1.0
    e_stop = node.create_publisher(Bool, "e_stop", E_STOP_QOS)  # the operator's: released
    e_stop.publish(Bool(data=False))
    images = np.random.default_rng(0).integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    msgs = [to_msg(image) for image in images]
    time.sleep(warmup_s)
    start, sent = time.perf_counter(), 0
    while sent < frames:
        msg = msgs[sent % len(msgs)]
        stamp = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        state.header.stamp = level.header.stamp = msg.header.stamp
        if imu is not None:
            imu.publish(level)
        joints.publish(state)
        pub.publish(msg)
        sent += 1
        delay = start + sent / rate_hz - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    node.destroy_node()
    rclpy.shutdown()
    return sent


def run_rate(
    ckpt: Path, rate_hz: float, frames: int, size: int, workdir: Path, robot: str = "reacher"
) -> dict:
    """One deploy process + this process as the camera; returns the figures for ``rate_hz``."""
    report = workdir / f"report_{int(rate_hz)}.json"
    warmup_s = 8.0
    duration = warmup_s + frames / rate_hz + 3.0
    deploy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "sdpg-ros"),
            "deploy",
            "--backend=real",
            "--activate",
            f"--checkpoint={ckpt}",
            f"--robot={robot}",
            f"--duration={duration}",
            f"--report={report}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sent = camera(rate_hz, frames, size, warmup_s, robot)
    out, _ = deploy.communicate(timeout=duration + 60)
    if deploy.returncode != 0 or not report.is_file():
        raise RuntimeError(f"deploy failed ({deploy.returncode}):\n{out}")
    data = json.loads(report.read_text())
    latency = data["latency_ms"]
    return {
        "rate_hz": rate_hz,
        "frames_sent": sent,
        "images_received": data["images"],
        "dropped_frames": sent - data["images"],
        "actions": data["actions"],
        "commands": data["commands"],
        "rejected": data["rejected"],
        "latency_p50_ms": latency["p50"],
        "latency_p99_ms": latency["p99"],
        "latency_max_ms": latency["max"],
    }


def main() -> int:
    """Measure each rate, print a table, write results/ros_latency.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 100.0])
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--robot", default="reacher", help="robot YAML name (its sim task)")
    parser.add_argument("--out", default="", help="default results/ros_latency[_<robot>].json")
    args = parser.parse_args()
    suffix = "" if args.robot == "reacher" else f"_{args.robot}"
    out = Path(args.out or RESULTS / f"ros_latency{suffix}.json")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from sdpg_core.robot import load_robot

        task = load_robot(args.robot).sim_task
        ckpt = make_checkpoint(Path(tmp) / "policy.pt", args.size, task)
        for rate in args.rates:
            rows.append(run_rate(ckpt, rate, args.frames, args.size, Path(tmp), args.robot))
            row = rows[-1]
            print(
                f"{rate:5.0f} Hz  frames {row['frames_sent']}  dropped {row['dropped_frames']}  "
                f"p50 {row['latency_p50_ms']:.2f} ms  p99 {row['latency_p99_ms']:.2f} ms  "
                f"max {row['latency_max_ms']:.2f} ms  rejected {row['rejected']}"
            )
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": " ".join(sys.argv),
        "robot": args.robot,
        "image_size": args.size,
        "rates": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
