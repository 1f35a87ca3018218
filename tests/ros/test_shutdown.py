"""Node executables as launch runs them: clean exit on SIGINT/SIGTERM, stop when orphaned.

``ros2 launch`` starts each node in its own process group; a terminal Ctrl-C reaches every
group, launch then forwards its own SIGINT to each child, and sends SIGTERM 5 s later (SIGKILL
after 5 more). Every executable must exit 0 within those 5 s whatever signals follow, and must
stop by itself when its parent dies (a launch that failed part-way must not leave a bridge
commanding the robot).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from sdpg_core import checkpoint
from sdpg_core.logger import read_metrics
from sdpg_ros.common import RELIABLE_QOS, SENSOR_QOS
from tests.ros.helpers import Collector, make_checkpoint
from tests.ros.test_trainer_node import TINY

BIN = Path(sys.executable).parent  # the console scripts of this environment
EXIT_S = 5.0  # launch's SIGINT -> SIGTERM timeout
ORPHAN_EXIT_S = 2.0
LAUNCH_CTRL_C = (signal.SIGINT, signal.SIGINT, signal.SIGTERM)  # SIGTERM during the cleanup
PR_SET_CHILD_SUBREAPER = 36
# A parent that starts a node (output piped to it, as launch does), prints its pid, and waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
print(child.pid, flush=True)
time.sleep(600)
"""
BRIDGE = ["dry_run:=true", "autostart:=true", "wait_for_e_stop:=false"]  # active on joint_states
DRY_RUN = "/hardware_bridge/dry_run/commands"


def command(name: str, params: list[str]) -> list[str]:
    """The console script ``name`` with ROS parameters."""
    return [str(BIN / name), "--ros-args", *[arg for p in params for arg in ("-p", p)]]


def start(name: str, params: list[str], log: Path) -> subprocess.Popen:
    """Start a node executable in its own process group, output to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            command(name, params), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def diagnosing(probe: Node, name: str) -> Callable[[], bool]:
    """A predicate: ``/name`` has published on /diagnostics (it is spinning)."""
    statuses = Collector(probe, DiagnosticArray, "/diagnostics", RELIABLE_QOS)
    return lambda: any(s.name == f"/{name}" for m in statuses.messages for s in m.status)


def commanding(probe: Node) -> Callable[[], bool]:
    """A predicate: the dry-run bridge is active and commanding (given joint states)."""
    publish_joint_states(probe)
    commands = Collector(probe, Float64MultiArray, DRY_RUN, RELIABLE_QOS)
    return lambda: len(commands) >= 10


def training(run_dir: Path) -> Callable[[], bool]:
    """A predicate: the trainer has logged an iteration (it is training)."""
    return lambda: bool(read_metrics(run_dir / "metrics.jsonl"))


def node_setup(probe: Node, name: str, tmp_path: Path) -> tuple[list[str], Callable[[], bool]]:
    """Parameters of a quick ``name`` and the predicate telling it is up."""
    if name == "trainer_node":
        run_dir = tmp_path / "run"
        overrides = "overrides:=[" + ",".join(TINY) + "]"
        return [f"out:={run_dir}", "iterations:=100000", overrides], training(run_dir)
    if name == "hardware_bridge":
        return BRIDGE, commanding(probe)
    if name == "policy_node":
        return [f"checkpoint:={make_checkpoint(tmp_path / 'policy.pt')}"], diagnosing(probe, name)
    return ["image_size:=32"], diagnosing(probe, name)


def publish_joint_states(node: Node) -> None:
    """Keep publishing a resting reacher's joint states (the bridge activates on them)."""
    pub = node.create_publisher(JointState, "joint_states", SENSOR_QOS)

    def tick() -> None:
        msg = JointState(name=["shoulder", "elbow"], position=[0.0, 0.0], velocity=[0.0, 0.0])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)

    node.create_timer(0.05, tick)


def signal_group(proc: subprocess.Popen, signals: tuple[int, ...]) -> float:
    """Send ``signals`` to the process group 80 ms apart; returns the time of the first."""
    start_s = time.monotonic()
    for k, sig in enumerate(signals):
        if k:
            time.sleep(0.08)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # already gone
            break
    return start_s


def exit_time(proc: subprocess.Popen, since: float, log: Path) -> float:
    """Seconds from ``since`` until ``proc`` exits (killed and failed after EXIT_S)."""
    try:
        proc.wait(timeout=EXIT_S - (time.monotonic() - since))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"still running {EXIT_S} s after the first signal:\n{log.read_text()}")
    return time.monotonic() - since


CASES = [
    pytest.param(name, signals, id=f"{name}-{kind}")
    for name in ("sim_backend", "policy_node", "hardware_bridge", "trainer_node")
    for kind, signals in (("ctrl-c", LAUNCH_CTRL_C), ("term", (signal.SIGTERM,)))
] + [pytest.param("hardware_bridge", (signal.SIGHUP,), id="hardware_bridge-hangup")]


@pytest.mark.parametrize(("name", "signals"), CASES)
def test_exits_cleanly_on_signals(graph, tmp_path, name, signals):
    probe = graph.add(Node("probe", context=graph.context))
    params, up = node_setup(probe, name, tmp_path)
    log = tmp_path / "out.log"
    proc = start(name, params, log)
    assert graph.spin_until(lambda: up() or proc.poll() is not None, 120.0), log.read_text()
    assert proc.poll() is None, log.read_text()
    elapsed = exit_time(proc, signal_group(proc, signals), log)
    out = log.read_text()
    assert proc.returncode == 0 and "Traceback" not in out, f"after {elapsed:.2f} s:\n{out}"
    if name == "hardware_bridge":
        assert "close: published the safe command" in out
    if name == "trainer_node":  # saved, and consistent with the metrics
        run_dir = tmp_path / "run"
        saved = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
        last = read_metrics(run_dir / "metrics.jsonl")[-1]
        assert saved["iteration"] == last["iteration"] >= 1


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Adopt orphaned descendants (instead of init), so the test can reap them."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    assert prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def reap(pid: int, timeout: float) -> int | None:
    """Exit code of child ``pid`` if it exits within ``timeout`` s, else None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    return None


@pytest.mark.usefixtures("subreaper")
def test_an_orphaned_bridge_stops_commanding_and_exits(graph, tmp_path):
    up = commanding(graph.add(Node("robot", context=graph.context)))
    env = {**os.environ, "ROS_LOG_DIR": str(tmp_path / "log")}
    cmd = [sys.executable, "-c", PARENT, *command("hardware_bridge", BRIDGE)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as parent:
        child, code = int(parent.stdout.readline()), None
        try:
            assert graph.spin_until(up, 120.0)
            parent.kill()
            parent.wait()
            code = reap(child, ORPHAN_EXIT_S)
        finally:
            if code is None:  # never leave a bridge behind
                parent.kill()
                parent.wait()
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.kill(child, signal.SIGKILL)
                    reap(child, 5.0)
    assert code == 0
    logs = "".join(p.read_text() for p in (tmp_path / "log").rglob("*.log"))
    assert "parent process exited" in logs and "close: published the safe command" in logs


HUNG_TEST = """
import ctypes


def test_hung_in_c_holding_the_gil():
    ctypes.PyDLL(None).sleep(60)  # like DDS teardown spinning inside the garbage collector
"""


def test_a_test_hung_in_c_code_ends_the_run(pytestconfig, tmp_path):
    timeout = float(pytestconfig.getini("timeout"))
    assert 0 < timeout < float(pytestconfig.getini("faulthandler_timeout"))
    (tmp_path / "test_hung.py").write_text(HUNG_TEST)
    config = pytestconfig.rootpath / "pyproject.toml"
    # the project's settings, with the limits shortened to 1 s (pytest-timeout) and 2 s
    options = ["-p", "no:cacheprovider", "-o", "timeout=1", "-o", "faulthandler_timeout=2"]
    cmd = [sys.executable, "-m", "pytest", "-c", str(config), *options, str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode != 0
    assert "in test_hung_in_c_holding_the_gil" in proc.stderr  # every thread's stack
