"""``sdpg-ros``: the ROS 2 sessions composed in one process (for machines without ``launch``).

``sdpg-ros train ...`` = launch/train.launch.py, ``sdpg-ros deploy ...`` = launch/deploy.launch.py:
both build the specs of ``sdpg_ros.sessions`` (same nodes, parameter files, values and remaps);
here each spec's executable becomes its node class, spun by one single-threaded executor. Every
check that can fail runs before any node starts. On ``--backend real`` the bridge neither
activates itself (``--activate``) nor accepts hot reloads (``--hot-reload``) unless asked; the
sim has no e-stop publisher, so its bridge does not wait for one. ``robot_state_publisher`` and
a driver launch (``publish_tf``, ``driver_launch``) need ``ros2 launch``. ``sdpg-ros replay``
runs a recorded deploy's inputs through a policy offline (``sdpg_ros.replay``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter

from sdpg_core.cli import add_train_arguments
from sdpg_core.config import ConfigError
from sdpg_core.envs.base import EVAL_SEED
from sdpg_ros import sessions
from sdpg_ros.common import run_nodes
from sdpg_ros.report import deploy_report, summary_line
from sdpg_ros.session_checks import ArgumentError, check_perturb, parse_cmd_vel

NODE_CLASSES = {
    "sim_backend": "sdpg_ros.sim_backend:SimBackend",
    "policy_node": "sdpg_ros.policy_node:PolicyNode",
    "hardware_bridge": "sdpg_ros.hardware_bridge:HardwareBridge",
    "trainer_node": "sdpg_ros.trainer_node:TrainerNode",
    "cmd_vel_source": "sdpg_ros.command_source:CmdVelSource",
    "bag_recorder": "sdpg_ros.bag_recorder:BagRecorder",
}
FLAGS = {"overrides": "--set", "autostart": "--activate"}  # launch argument: flag, if not alike


def non_negative(kind: type) -> Callable[[str], Any]:
    """argparse type: a finite ``kind`` (int or float) >= 0."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sdpg-ros``."""
    parser = argparse.ArgumentParser(prog="sdpg-ros", description="SDPG sessions over ROS 2")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="trainer_node (+ live evaluation in the sim)")
    add_train_arguments(train)
    train.add_argument("--eval-in-sim", action="store_true", help="watch each new checkpoint")
    train.add_argument("--robot", default="reacher", help="robot YAML for --eval-in-sim")
    train.add_argument("--params-file", help="extra ROS parameters YAML for every node")
    train.add_argument("--namespace", default="", help="ROS namespace of every node ('' = none)")
    deploy = sub.add_parser("deploy", help="policy_node + hardware_bridge (+ sim_backend)")
    deploy.add_argument("--backend", choices=("sim", "real"), default="sim")
    deploy.add_argument("--checkpoint", required=True)
    deploy.add_argument("--robot", default="reacher")
    deploy.add_argument(
        "--duration", type=non_negative(float), default=0.0, help="seconds (0 = until ^C)"
    )
    deploy.add_argument(
        "--episodes", type=non_negative(int), default=0, help="sim: stop after N episodes"
    )
    deploy.add_argument("--report", help="write the deploy report (JSON) here")
    deploy.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        help="commands to a harmless topic (default: real yes, sim no)",
    )
    deploy.add_argument("--camera-topic", default="", help="real: image topic ('' = robot's)")
    deploy.add_argument("--joint-states-topic", default="", help="real: joint states remap")
    deploy.add_argument("--params-file", help="extra ROS parameters YAML for every node")
    deploy.add_argument("--namespace", default="", help="ROS namespace of every node ('' = none)")
    deploy.add_argument(
        "--activate",
        action=argparse.BooleanOptionalAction,
        help="the bridge configures and activates itself (default: sim yes, real no)",
    )
    deploy.add_argument(
        "--hot-reload",
        action=argparse.BooleanOptionalAction,
        help="policy_node accepts new checkpoints at run time (default: sim yes, real no)",
    )
    deploy.add_argument(
        "--compare",
        action="store_true",
        help="sim: also evaluate the checkpoint in-process on the same episodes; print the gap",
    )
    deploy.add_argument(
        "--seed", type=int, default=EVAL_SEED, help="sim: episode seed (= sdpg eval's episodes)"
    )
    deploy.add_argument(
        "--cmd-vel", default="", metavar="VX,VY,WZ", help="publish this velocity command (legged)"
    )
    deploy.add_argument(
        "--record", default="", metavar="BAG", help="record the session's topics (rosbag2, MCAP)"
    )
    deploy.add_argument(
        "--perturb",
        nargs=2,
        default=("", ""),
        metavar=("FILE", "SET"),
        help="sim: episodes drawn from this held-out set of sdpg eval --perturb's FILE",
    )
    deploy.add_argument("--device", default="cpu")
    deploy.add_argument("--use-sim-time", action="store_true", help="nodes use /clock (sim)")
    replay = sub.add_parser("replay", help="a recorded deploy's inputs through a policy, offline")
    replay.add_argument("bag", help="a bag written by sdpg-ros deploy --record")
    replay.add_argument("--checkpoint", required=True, help="checkpoint (.pt) or exported .onnx")
    replay.add_argument("--report", help="write the comparison (JSON) here")
    replay.add_argument("--plot", help="recorded and replayed actions over time (PNG)")
    return parser


def node_factory(spec: sessions.NodeSpec) -> Callable[[], Node]:
    """A factory building ``spec``'s node class: its parameter files in order, then its values
    (overrides, which win over the files), its name, namespace and remaps."""
    module, _, name = NODE_CLASSES[spec.executable].partition(":")
    cls = getattr(importlib.import_module(module), name)
    overrides = [Parameter(key, value=value) for key, value in spec.parameters.items()]
    cli_args = ["--ros-args", "-r", f"__node:={spec.name}"]
    for path in spec.files:
        cli_args += ["--params-file", path]
    if spec.namespace:
        cli_args += ["-r", f"__ns:={spec.namespace}"]
    for src, dst in spec.remaps:
        cli_args += ["-r", f"{src}:={dst}"]
    return lambda: cls(parameter_overrides=overrides, cli_args=cli_args)


def run_session(
    specs: list[sessions.Spec], stop: Callable[[dict[str, Node]], bool]
) -> tuple[int, dict[str, Node]]:
    """Build the specs' nodes one by one and spin them until a signal, ``stop(nodes)`` or the
    end of a node that ends the session; returns the exit code and the nodes by name."""
    nodes: dict[str, Node] = {}

    def build(spec: sessions.NodeSpec) -> Node:
        node = node_factory(spec)()
        nodes[node.get_name()] = node
        return node

    def ended() -> bool:
        enders = [nodes.get(spec.name) for spec in specs if spec.ends_session]
        return any(node is not None and node.finished.is_set() for node in enders)

    factories = [partial(build, spec) for spec in specs]
    return run_nodes(factories, None, lambda: stop(nodes) or ended()), nodes


def deploy_specs(args: argparse.Namespace) -> list[sessions.Spec]:
    """The deploy session of ``sdpg-ros deploy``'s flags."""
    return sessions.deploy(
        args.backend,
        args.robot,
        args.checkpoint,
        dry_run=args.dry_run,
        autostart=args.activate,
        hot_reload=args.hot_reload,
        use_sim_time=args.use_sim_time,
        camera_topic=args.camera_topic,
        joint_states_topic=args.joint_states_topic,
        params_file=args.params_file or "",
        namespace=args.namespace,
        device=args.device,
        seed=args.seed,
        cmd_vel=parse_cmd_vel(args.cmd_vel),
        record=args.record,
        perturb=args.perturb[0],
        perturb_set=args.perturb[1],
    )


def train_specs(args: argparse.Namespace) -> list[sessions.Spec]:
    """The training session of ``sdpg-ros train``'s flags (those of ``sdpg train``)."""
    if args.nproc > 1:
        raise ValueError(
            "argument --nproc: trainer_node trains in one process; for several run `sdpg train "
            "--nproc K --out DIR` (torchrun) and deploy DIR/checkpoints/latest.pt"
        )
    return sessions.train(
        args.task,
        config=args.config or "",
        overrides=args.set,
        algo=args.algo or "",
        out=args.out or "",
        device=args.device or "",
        seed=args.seed,
        iterations=args.iterations,
        minutes=args.minutes,
        overwrite=args.overwrite,
        eval_in_sim=args.eval_in_sim,
        robot=args.robot,
        params_file=args.params_file or "",
        namespace=args.namespace,
    )


def in_process_reference(
    checkpoint: str,
    episodes: int,
    seed: int,
    cmd_vel: tuple[float, ...] | None,
    perturb: tuple[str, str] = ("", ""),
) -> dict[str, Any]:
    """``sdpg eval`` of the checkpoint on the deployment's episodes (same seeds and count, and
    perturbation set; a command task follows the session's command, zero without one, as the
    sim does)."""
    from sdpg_core.evaluate import evaluate
    from sdpg_core.policy import load_policy

    if episodes == 0:
        return {}
    policy = load_policy(checkpoint)
    command = (cmd_vel or (0.0,) * policy.spec.command_dim) if policy.spec.command_dim else None
    randomize = check_perturb(*perturb, sim=True)
    result = evaluate(policy, episodes, seed, command=command, randomize=randomize)
    means = {k[: -len("_mean")]: v for k, v in result.items() if k.endswith("_mean")}
    return {
        "in_process_success_rate": result.get("success_rate"),
        "in_process_return_mean": result["return_mean"],
        "in_process_metrics": {k: v for k, v in means.items() if k != "return"},
    }


def cmd_deploy(args: argparse.Namespace) -> int:
    """Run the deploy session; write and print its report."""
    specs = deploy_specs(args)
    start = time.monotonic()

    def stop(nodes: dict[str, Node]) -> bool:
        if args.duration and time.monotonic() - start >= args.duration:
            return True
        episodes = getattr(nodes.get("sim_backend"), "episodes", None)
        return bool(args.episodes and episodes is not None and len(episodes) >= args.episodes)

    code, nodes = run_session(specs, stop)
    if code:  # a node refused to start: its one-line error is the whole output
        return code
    report = {"checkpoint": args.checkpoint, **deploy_report(nodes, time.monotonic() - start)}
    if args.compare and args.backend == "sim":
        cmd_vel = parse_cmd_vel(args.cmd_vel)
        report |= in_process_reference(
            args.checkpoint, report["episodes"], args.seed, cmd_vel, tuple(args.perturb)
        )
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    print(summary_line(report))
    return code


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay the bag through the checkpoint; print (and write) the action differences."""
    from sdpg_core.policy import load_policy
    from sdpg_ros.replay import plot, replay

    policy = load_policy(args.checkpoint)
    result = replay(args.bag, policy)
    summary = {k: v for k, v in result.items() if k not in ("recorded", "replayed", "stamps_ns")}
    if args.plot:
        summary["plot"] = str(plot(result, policy.spec.joint_names, args.plot))
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"replayed {summary['actions']} actions of {args.bag} with {args.checkpoint}: "
        f"max |diff| {summary['max_abs_diff']:.3g}, mean {summary['mean_abs_diff']:.3g}"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Run trainer_node (and with --eval-in-sim the live evaluation nodes)."""
    specs = train_specs(args)
    start = time.monotonic()
    code, nodes = run_session(specs, lambda _nodes: False)
    summary = getattr(nodes.get("trainer_node"), "summary", None)
    if summary:
        print(json.dumps(summary))
    if args.eval_in_sim:
        print("live evaluation:", summary_line(deploy_report(nodes, time.monotonic() - start)))
    if code:
        return code
    return 0 if summary else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sdpg-ros``."""
    args = build_parser().parse_args(argv)
    handlers = {"train": cmd_train, "deploy": cmd_deploy, "replay": cmd_replay}
    try:
        return handlers[args.command](args)
    except ArgumentError as err:
        flag = FLAGS.get(err.argument, f"--{err.argument.replace('_', '-')}")
        print(f"sdpg-ros {args.command}: error: argument {flag}: {err}", file=sys.stderr)
        return 2
    except (ConfigError, KeyError, OSError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sdpg-ros {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
