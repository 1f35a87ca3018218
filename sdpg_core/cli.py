"""Command line: ``sdpg tasks | train | eval | resume | export``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from sdpg_core.config import (
    ALGOS,
    ConfigError,
    RunConfig,
    load_perturbations,
    load_yaml,
    parse_command,
)


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """The flags of ``sdpg train`` (shared with ``sdpg-ros train``)."""
    train.add_argument("--task", required=True)
    train.add_argument(
        "--algo",
        choices=ALGOS,
        help="learning algorithm (sets run.algo; default: the config's, sdpg)",
    )
    train.add_argument("--config", help="YAML file applied after the task's defaults")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. --set sdpg.horizon=16 (repeatable)",
    )
    train.add_argument("--out", help="run directory (default runs/<task>-<time>)")
    train.add_argument("--device", help="cpu or cuda")
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--iterations", type=int, help="iteration budget: the schedules follow it (run.iterations)"
    )
    train.add_argument(
        "--minutes",
        type=float,
        help="wall-clock cap (run.minutes; 0 = none): may end the run early, never changes the "
        "schedule, so results depend on the machine",
    )
    train.add_argument(
        "--overwrite", action="store_true", help="start afresh in an --out that holds a run"
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_nproc_argument(train)


def add_nproc_argument(parser: argparse.ArgumentParser) -> None:
    """``--nproc K``: SDPG data-parallel over K processes of this machine (torchrun)."""
    parser.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        help="train in K processes on this machine (torchrun --standalone; each owns "
        "sdpg.num_nominal / K nominal groups); several machines: torchrun, see the README",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sdpg`` command."""
    parser = argparse.ArgumentParser(prog="sdpg", description="SDPG visual RL in MuJoCo")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list registered tasks")
    add_train_arguments(sub.add_parser("train", help="train a policy"))
    ev = sub.add_parser("eval", help="evaluate a checkpoint")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--episodes", type=positive_int, default=16)
    ev.add_argument("--video", help="write an mp4 of the first episode")
    ev.add_argument(
        "--command",
        dest="task_command",
        type=command_values,
        help="command tasks: this command in every episode, e.g. 0.5,0,0 (vx, vy, yaw rate)",
    )
    ev.add_argument(
        "--perturb",
        metavar="FILE",
        help="also evaluate under each named perturbation set of this YAML "
        "(config/perturb/*.yaml; same episodes, nominal first)",
    )
    ev.add_argument("--log", metavar="FILE", help="write one JSON line per episode (with draws)")
    ev.add_argument("--device", default="cpu")
    export = sub.add_parser("export", help="write a deploy-only policy file from a checkpoint")
    export.add_argument("--checkpoint", required=True)
    export.add_argument("--out", required=True)
    export.add_argument(
        "--format",
        default="pt",
        choices=("pt", "onnx", "torchscript"),
        help="pt: a deploy-only checkpoint (sdpg eval, policy_node); onnx / torchscript: one "
        "portable graph with the IO contract as metadata",
    )
    resume = sub.add_parser("resume", help="continue a run from its latest checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("--device")
    resume.add_argument("--no-progress", action="store_true")
    add_nproc_argument(resume)
    return parser


def cmd_tasks(_: argparse.Namespace) -> int:
    """Print registered tasks."""
    from sdpg_core.envs.registry import get_task, task_names

    for name in task_names():
        entry = get_task(name)
        print(f"{name:24s} {entry.obs_mode:7s} {entry.description}")
    return 0


def train_config(args: argparse.Namespace):
    """Resolve the config of ``sdpg train`` from task YAML, --config and flags."""
    from sdpg_core.session import resolve_train_config

    return resolve_train_config(
        args.task,
        args.config,
        args.set,
        args.device,
        args.seed,
        args.iterations,
        args.minutes,
        args.algo,
    )


def run_session(session, show_progress: bool) -> int:
    """Run a training session. SIGINT/SIGTERM: finish the iteration, save, evaluate, exit;
    a second signal aborts at once (the last saved checkpoint stays valid)."""

    def stop(signum, frame):  # noqa: ARG001
        if session.stop_requested:
            raise KeyboardInterrupt
        session.stop_requested = True
        print("\nstopping after this iteration (signal again to abort)", file=sys.stderr)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = session.run(show_progress=show_progress)
    except KeyboardInterrupt:
        print(f"aborted; last checkpoint in {session.run_dir}/checkpoints", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if session.world.main:
        print(summary_line(summary))
        (Path(session.run_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


def summary_line(summary: dict) -> str:
    """One line: task, the final policy's success/return and its file, budget, best.pt."""
    parts = [f"task={summary['task']}"]
    if "success_rate" in summary:
        parts.append(f"success={summary['success_rate']:.0%}")
    if "return_mean" in summary:
        parts.append(f"return={summary['return_mean']:.1f}")
    parts += [
        f"episodes={summary.get('episodes', 0)}",
        f"evaluated={summary['evaluated']}",
        f"iterations={summary['iterations']}",
        f"minutes={summary['minutes']:.1f}",
    ]
    if "best_iteration" in summary:
        best = summary.get("best_eval_success_rate")
        rate = f" (eval success {best:.0%})" if best is not None else ""
        parts.append(f"best.pt=iteration {summary['best_iteration']}{rate}")
    return " ".join(parts)


def cmd_train(args: argparse.Namespace) -> int:
    """Train from scratch (in ``--nproc`` processes: relaunched under torchrun)."""
    from sdpg_core.distributed import broadcast, close_world, init_world
    from sdpg_core.session import TrainingSession, default_run_dir

    cfg = train_config(args)
    if args.nproc > 1:
        return relaunch(args)
    world = init_world(cfg.run.device, cfg.run.dist_timeout_s)
    try:
        out = broadcast(args.out or str(default_run_dir(cfg)), world, "the run directory")
        session = TrainingSession.start(cfg, out, overwrite=args.overwrite, world=world)
        return run_session(session, not args.no_progress)
    finally:
        close_world(world)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a run (with the algorithm of its checkpoint's config; as many processes as it
    was trained in)."""
    from sdpg_core.distributed import close_world, init_world
    from sdpg_core.session import TrainingSession

    if args.nproc > 1:
        return relaunch(args)
    world = init_world(args.device or "cpu", run_timeout(args.run_dir))
    try:
        session = TrainingSession.resume(args.run_dir, args.device, world)
        return run_session(session, not args.no_progress)
    finally:
        close_world(world)


def run_timeout(run_dir: str) -> float:
    """The run's ``run.dist_timeout_s`` from its config.yaml (the default when unreadable: the
    checkpoint, read after the processes meet, is what the run resumes from)."""
    try:
        return load_yaml(Path(run_dir) / "config.yaml").validate().run.dist_timeout_s
    except ConfigError:
        return RunConfig.dist_timeout_s


def relaunch(args: argparse.Namespace) -> int:
    """This command again in ``args.nproc`` processes of this machine, by torchrun."""
    import subprocess

    from sdpg_core.distributed import launched_size

    if launched_size() > 1:
        raise ValueError("--nproc inside a torchrun launch: give torchrun the process count")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={args.nproc}", "-m", "sdpg_core.cli", *without_nproc(args.argv)]
    threads = str(max(1, (os.cpu_count() or 1) // args.nproc))  # the cores shared out
    return subprocess.call(command, env={"OMP_NUM_THREADS": threads, **os.environ})


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` without its ``--nproc K`` / ``--nproc=K``."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def command_values(text: str) -> tuple[float, ...]:
    """``--command``'s value (``config.parse_command``) for argparse."""
    try:
        return parse_command(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint (or an exported .onnx policy) and print JSON."""
    from sdpg_core.evaluate import evaluate, evaluate_perturbed
    from sdpg_core.policy import load_policy

    sets = load_perturbations(args.perturb) if args.perturb else {}
    policy = load_policy(args.checkpoint, args.device)
    records: list[dict] = []
    if sets:
        result = evaluate_perturbed(
            policy, args.episodes, sets, args.task_command, records, args.video
        )
    else:
        result = evaluate(
            policy, args.episodes, video=args.video, command=args.task_command, records=records
        )
    if args.log:
        Path(args.log).write_text("".join(json.dumps(r) + "\n" for r in records))
    print(json.dumps({"task": policy.spec.task, **result}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``pt``: keep actor, normaliser, config and spec (what policy_node and ``sdpg eval``
    need); ``onnx`` / ``torchscript``: a portable graph (``sdpg_core.export``)."""
    from sdpg_core.checkpoint import export_policy

    if args.format == "pt":
        print(export_policy(args.checkpoint, args.out))
        return 0
    from sdpg_core.export import export
    from sdpg_core.policy import Policy

    print(export(Policy.load(args.checkpoint), args.out, args.format))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; configuration and input errors exit 2 with a one-line message."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    handlers = {
        "tasks": cmd_tasks,
        "train": cmd_train,
        "eval": cmd_eval,
        "resume": cmd_resume,
        "export": cmd_export,
    }
    try:
        return handlers[args.command](args)
    except (ConfigError, KeyError, OSError, ValueError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        rank = f" (rank {os.environ['RANK']})" if "RANK" in os.environ else ""
        print(f"sdpg {args.command}{rank}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
