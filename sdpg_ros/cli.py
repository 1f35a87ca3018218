"""``sdpg-ros``: the launch sessions composed in one process (for machines without ``launch``).

``sdpg-ros train ...`` = launch/train.launch.py, ``sdpg-ros deploy ...`` = launch/deploy.launch.py:
the same nodes, parameters and topics, spun by one single-threaded executor. Every check that
can fail (checkpoint against robot, params file) runs before any node starts.
On ``--backend real`` the bridge neither activates itself (``--activate``) nor accepts hot
reloads (``--hot-reload``) unless asked; the sim has no e-stop publisher, so its bridge does
not wait for one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rclpy.exceptions import InvalidNamespaceException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.validate_namespace import validate_namespace

from sdpg_core.cli import add_train_arguments
from sdpg_core.config import ConfigError
from sdpg_core.envs.registry import get_task
from sdpg_core.evaluate import EVAL_SEED
from sdpg_core.policy import Policy, base_task, read_metadata, robot_misfit
from sdpg_core.robot import load_robot
from sdpg_core.session import resolve_train_config
from sdpg_ros.common import run_nodes
from sdpg_ros.report import deploy_report, summary_line


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
    deploy.add_argument("--dry-run", action="store_true", help="commands to a harmless topic")
    deploy.add_argument("--camera-topic", default="", help="real: camera image topic remap")
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
    deploy.add_argument("--device", default="cpu")
    return parser


def _node(
    cls: type[Node],
    params: dict[str, Any],
    remaps: dict[str, str] | None = None,
    params_file: str | None = None,
    namespace: str = "",
) -> Callable[[], Node]:
    """A factory building ``cls`` with a params file, parameter overrides (which take
    precedence over the file), topic remaps and a namespace."""
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    cli_args = ["--ros-args"]
    if params_file:
        cli_args += ["--params-file", params_file]
    if namespace:
        cli_args += ["-r", f"__ns:={namespace}"]
    for src, dst in (remaps or {}).items():
        if dst:
            cli_args += ["-r", f"{src}:={dst}"]
    return lambda: cls(parameter_overrides=overrides, cli_args=cli_args)


def check_namespace(namespace: str) -> str:
    """The absolute ROS namespace for ``namespace`` ('' = none); ValueError if invalid."""
    if not namespace:
        return ""
    absolute = namespace if namespace.startswith("/") else f"/{namespace}"
    try:
        validate_namespace(absolute)
    except InvalidNamespaceException as err:
        raise ValueError(f"namespace {namespace!r} is not a valid ROS namespace: {err}") from err
    return absolute


def check_params_file(path: str | None) -> None:
    """A params file that is missing or not ROS parameters YAML (``<node or /**>:
    ros__parameters: {...}``) is an error before any node starts."""
    if not path:
        return
    if not Path(path).is_file():
        raise FileNotFoundError(f"params file {path} does not exist")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or "cannot parse"
        raise ValueError(f"params file {path}: not valid YAML{where}: {problem}") from err
    if not isinstance(data, dict) or not data:
        raise ValueError(f"params file {path}: expected '<node name>: ros__parameters: {{...}}'")
    for node, section in data.items():
        params = section.get("ros__parameters") if isinstance(section, dict) else None
        if not isinstance(params, dict):
            raise ValueError(f"params file {path}: '{node}' needs a 'ros__parameters:' mapping")


def check_checkpoint(checkpoint: str, robot: str) -> None:
    """ValueError naming the problem when ``checkpoint`` was not trained for ``robot``."""
    _, spec = read_metadata(checkpoint)
    misfit = robot_misfit(spec, load_robot(robot))
    if misfit:
        raise ValueError(f"checkpoint {checkpoint} does not fit robot {robot!r}: {misfit.message}")


def check_task(task: str, robot: str) -> None:
    """ValueError unless the policies trained on ``task`` can drive ``robot`` (--eval-in-sim)."""
    sim_task = load_robot(robot).sim_task
    if get_task(task).obs_mode != "pixels":
        raise ValueError(f"--eval-in-sim needs a pixel task, {task!r} trains a state policy")
    if sim_task and base_task(task) != base_task(sim_task):
        raise ValueError(f"--eval-in-sim: robot {robot!r} runs task {sim_task!r}, not {task!r}")


def _keep(nodes: dict[str, Node], factory: Callable[[], Node]) -> Node:
    """Build a node and remember it by name (for the report after the session)."""
    node = factory()
    nodes[node.get_name()] = node
    return node


def policy_parameters(checkpoint: str, robot: str, device: str, hot_reload: bool) -> dict:
    """policy_node's parameters in a session."""
    return {"checkpoint": checkpoint, "device": device, "robot": robot, "hot_reload": hot_reload}


def bridge_parameters(robot: str, dry_run: bool, activate: bool, sim: bool) -> dict:
    """hardware_bridge's parameters; the sim has no e-stop publisher to wait for."""
    params = {"robot": robot, "dry_run": dry_run, "autostart": activate}
    return params | ({"wait_for_e_stop": False} if sim else {})


def deploy_parameters(args: argparse.Namespace) -> tuple[dict, dict]:
    """policy_node's and hardware_bridge's parameters for ``sdpg-ros deploy``: on real hardware
    no self-activation and no hot reload unless asked (--activate, --hot-reload)."""
    sim = args.backend == "sim"
    hot_reload = sim if args.hot_reload is None else args.hot_reload
    activate = sim if args.activate is None else args.activate
    return (
        policy_parameters(args.checkpoint, args.robot, args.device, hot_reload),
        bridge_parameters(args.robot, args.dry_run, activate, sim),
    )


def sim_factories(
    policy: dict[str, Any],
    bridge: dict[str, Any],
    seed: int,
    params_file: str | None = None,
    env=None,
    namespace: str = "",
) -> list[Callable[[], Node]]:
    """sim_backend + policy_node + hardware_bridge (started last) for the policy's checkpoint
    ('' = wait for the trainer, whose env config ``env`` sets camera size and action repeat)."""
    from sdpg_ros.hardware_bridge import HardwareBridge
    from sdpg_ros.policy_node import PolicyNode
    from sdpg_ros.sim_backend import SimBackend

    checkpoint = policy["checkpoint"]
    env = read_metadata(checkpoint)[0].env if checkpoint else env
    sim_params: dict[str, Any] = {"task": load_robot(bridge["robot"]).sim_task, "seed": seed}
    if env is not None:
        sim_params |= {"image_size": env.image_size, "action_repeat": env.action_repeat}
    return [
        _node(SimBackend, sim_params, params_file=params_file, namespace=namespace),
        _node(PolicyNode, policy, params_file=params_file, namespace=namespace),
        _node(HardwareBridge, bridge, params_file=params_file, namespace=namespace),
    ]


def in_process_reference(checkpoint: str, episodes: int, seed: int) -> dict[str, Any]:
    """``sdpg eval`` of the checkpoint on the deployment's episodes (same seeds and count)."""
    from sdpg_core.evaluate import evaluate

    if episodes == 0:
        return {}
    result = evaluate(Policy.load(checkpoint), episodes, seed)
    return {
        "in_process_success_rate": result.get("success_rate"),
        "in_process_return_mean": result["return_mean"],
    }


def cmd_deploy(args: argparse.Namespace) -> int:
    """Run the deploy session; write and print its report."""
    from sdpg_ros.hardware_bridge import HardwareBridge
    from sdpg_ros.policy_node import PolicyNode

    check_params_file(args.params_file)
    namespace = check_namespace(args.namespace)
    check_checkpoint(args.checkpoint, args.robot)
    policy, bridge = deploy_parameters(args)
    if args.backend == "sim":
        factories = sim_factories(policy, bridge, args.seed, args.params_file, None, namespace)
    else:
        remaps = {"camera/image_raw": args.camera_topic, "joint_states": args.joint_states_topic}
        factories = [
            _node(PolicyNode, policy, remaps, args.params_file, namespace),
            _node(HardwareBridge, bridge, remaps, args.params_file, namespace),
        ]
    nodes: dict[str, Node] = {}
    start = time.monotonic()

    def until() -> bool:
        if args.duration and time.monotonic() - start >= args.duration:
            return True
        episodes = getattr(nodes.get("sim_backend"), "episodes", None)
        return bool(args.episodes and episodes is not None and len(episodes) >= args.episodes)

    code = run_nodes([lambda f=f: _keep(nodes, f) for f in factories], None, until)
    if code:  # a node refused to start: its one-line error is the whole output
        return code
    report = {"checkpoint": args.checkpoint, **deploy_report(nodes, time.monotonic() - start)}
    if args.compare and args.backend == "sim":
        report |= in_process_reference(args.checkpoint, report["episodes"], args.seed)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    print(summary_line(report))
    return code


def trainer_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """trainer_node's parameters from the ``sdpg train`` flags (``--algo`` as an override)."""
    params: dict[str, Any] = {"task": args.task}
    overrides = list(args.set) + ([f"run.algo={args.algo}"] if args.algo else [])
    if overrides:
        params["overrides"] = overrides
    for key in ("config", "out", "device"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    for key in ("seed", "iterations", "minutes"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.overwrite:
        params["overwrite"] = True
    return params


def cmd_train(args: argparse.Namespace) -> int:
    """Run trainer_node (and with --eval-in-sim the live evaluation nodes)."""
    from sdpg_ros.trainer_node import TrainerNode

    check_params_file(args.params_file)
    namespace = check_namespace(args.namespace)
    params = trainer_parameters(args)
    factories = [_node(TrainerNode, params, params_file=args.params_file, namespace=namespace)]
    if args.eval_in_sim:
        cfg = resolve_train_config(args.task, args.config, params.get("overrides"))
        check_task(cfg.env.task, args.robot)
        policy = policy_parameters("", args.robot, "cpu", hot_reload=True)
        bridge = bridge_parameters(args.robot, dry_run=False, activate=True, sim=True)
        factories += sim_factories(policy, bridge, 0, args.params_file, cfg.env, namespace)
    nodes: dict[str, Node] = {}
    start = time.monotonic()
    code = run_nodes(
        [lambda f=f: _keep(nodes, f) for f in factories],
        None,
        lambda: "trainer_node" in nodes and nodes["trainer_node"].finished.is_set(),
    )
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
    handlers = {"train": cmd_train, "deploy": cmd_deploy}
    try:
        return handlers[args.command](args)
    except (ConfigError, KeyError, OSError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sdpg-ros {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
