"""The ROS package: colcon builds it as ros.ament_python; the launch files (run against
stand-ins for ``launch``) start the sessions' nodes, every one a console script."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ament_index_python.packages import PackageNotFoundError

from sdpg_ros import cli, session_checks, sessions
from tests.ros.helpers import make_checkpoint
from tests.ros.launch_stand_ins import (
    LaunchLifecycleNode,
    LaunchNode,
    launch_stand_ins,
    load_launch_file,
    run_launch,
    unwrap,
)

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ROOT / "ros2_ws"
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def console_scripts() -> set[str]:
    """Names of the console scripts declared in setup.py."""
    text = (ROOT / "setup.py").read_text()
    return set(re.findall(r'"([\w-]+) = [\w.]+:main"', text))


def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"deploy.launch.py", "train.launch.py"}


def test_session_nodes_are_console_scripts_and_sdpg_ros_classes(tmp_path):
    checkpoint = str(make_checkpoint(tmp_path / "policy.pt"))
    go2 = str(make_checkpoint(tmp_path / "go2.pt", task="go2_walk"))
    specs = sessions.deploy("sim", "reacher", checkpoint) + sessions.train(
        "reacher", eval_in_sim=True
    )
    specs += sessions.deploy("sim", "go2", go2, cmd_vel=(0.5, 0.0, 0.0))
    specs += sessions.deploy("sim", "reacher", checkpoint, record=str(tmp_path / "bag"))
    ours = {spec.executable for spec in specs if spec.package == "sdpg_ros"}
    assert (
        ours
        == set(cli.NODE_CLASSES)
        == {"sim_backend", "policy_node", "hardware_bridge", "trainer_node", "cmd_vel_source"}
        | {"bag_recorder"}
    )
    assert ours <= console_scripts(), ours - console_scripts()


def test_colcon_builds_ament_python_package(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    assert colcon, "colcon is installed from requirements.txt"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    listing = subprocess.run(
        [colcon, "list"], cwd=WORKSPACE, env=env, capture_output=True, text=True, check=True
    )
    assert re.search(r"^sdpg_ros\s+src/sdpg_ros\s+\(ros\.ament_python\)$", listing.stdout, re.M)
    build = [colcon, "--log-base", str(tmp_path / "log"), "build", "--symlink-install"]
    build += ["--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")]
    subprocess.run(build, cwd=WORKSPACE, env=env, capture_output=True, text=True, check=True)
    prefix = tmp_path / "install" / "sdpg_ros"
    share = prefix / "share" / "sdpg_ros"
    assert (prefix / "share/ament_index/resource_index/packages/sdpg_ros").is_file()
    assert (share / "package.xml").is_file()
    assert {p.name for p in (share / "launch").iterdir()} >= {p.name for p in LAUNCH_FILES}
    assert (share / "config" / "robots" / "reacher.yaml").is_file()
    assert (share / "config" / "tasks" / "reacher.yaml").is_file()
    assert (share / "urdf" / "reacher.urdf").is_file()
    installed = {p.name for p in (prefix / "lib" / "sdpg_ros").iterdir()}
    assert console_scripts() <= installed


def test_deploy_launch_starts_sim_backend():
    try:  # the repo's own launch/ folder is a namespace package: probe the real API
        from launch_ros.actions import Node  # noqa: F401

        from launch import LaunchDescription  # noqa: F401
    except ImportError:
        pytest.skip("ROS 2 `launch`/`launch_ros` are not installed (not on the registries)")
    ros2 = shutil.which("ros2")
    if ros2 is None:
        pytest.skip("the `ros2` command line (ros2launch) is not installed")
    proc = subprocess.Popen(
        [ros2, "launch", "sdpg_ros", "deploy.launch.py", "backend:=sim", "dry_run:=true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "sim_backend" in out and "Traceback" not in out, out


@pytest.fixture
def launch_file(monkeypatch):
    """Import a launch file against stand-ins for ``launch`` / ``launch_ros`` (not on the
    registries), with ``robot_state_publisher`` installed or not."""

    def load(name: str, tf_installed: bool = False):
        for module_name, module in launch_stand_ins().items():
            monkeypatch.setitem(sys.modules, module_name, module)

        def prefix(package: str) -> str:
            if package == "robot_state_publisher" and tf_installed:
                return "/opt/ros"
            raise PackageNotFoundError(package)

        monkeypatch.setattr(session_checks, "get_package_prefix", prefix)
        return load_launch_file(ROOT / "launch" / name)

    return load


def started(actions: list) -> dict:
    """{executable: the dict of parameters the launch arguments set} for each node action."""
    nodes = [unwrap(a)[1] for a in actions]
    return {
        n.kwargs["executable"]: n.kwargs["parameters"][-1]
        for n in nodes
        if isinstance(n, LaunchNode)
    }


@pytest.fixture(scope="module")
def launch_checkpoints(tmp_path_factory):
    """A reacher checkpoint (48 px) and a cart-pole one."""
    folder = tmp_path_factory.mktemp("launch")
    return {
        "reacher": str(make_checkpoint(folder / "reacher.pt", image_size=48)),
        "cartpole": str(make_checkpoint(folder / "cartpole.pt", task="cartpole_swingup")),
    }


def test_deploy_launch_sim_and_real_defaults(launch_file, launch_checkpoints, tmp_path):
    module = launch_file("deploy.launch.py")
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters: {}\n")
    checkpoint = launch_checkpoints["reacher"]
    sim = run_launch(module, checkpoint=checkpoint, params_file=str(params))
    assert isinstance(sim[-1], LaunchLifecycleNode)  # the bridge starts last
    nodes = started(sim)
    assert list(nodes) == ["sim_backend", "policy_node", "hardware_bridge"]  # no TF: not installed
    assert nodes["sim_backend"]["checkpoint"] == checkpoint  # its camera size, repeat and task
    assert nodes["hardware_bridge"]["autostart"] and not nodes["hardware_bridge"]["wait_for_e_stop"]
    assert nodes["policy_node"]["hot_reload"] and nodes["policy_node"]["robot"] == "reacher"
    for action in sim:  # package defaults, then the params file, then the launch arguments
        name = action.kwargs["executable"]
        default, given, _ = action.kwargs["parameters"]
        assert (default, given) == (str(ROOT / "config" / f"{name}.yaml"), str(params))
        assert action.kwargs["name"] == name and action.kwargs["output"] == "screen"
    real = run_launch(module, backend="real", checkpoint=checkpoint, camera_topic="/cam/image")
    assert list(started(real)) == ["policy_node", "hardware_bridge"]
    bridge = started(real)["hardware_bridge"]
    assert not bridge["autostart"] and "wait_for_e_stop" not in bridge
    assert not started(real)["policy_node"]["hot_reload"]
    assert all(a.kwargs["remappings"] == [("camera/image_raw", "/cam/image")] for a in real)
    asked = run_launch(
        module, backend="real", checkpoint=checkpoint, autostart="true", hot_reload="true"
    )
    assert started(asked)["hardware_bridge"]["autostart"]
    assert started(asked)["policy_node"]["hot_reload"]


def test_deploy_launch_includes_the_driver_launch_first(launch_file, launch_checkpoints, tmp_path):
    driver = tmp_path / "driver.launch.xml"
    driver.write_text("<launch/>\n")
    module = launch_file("deploy.launch.py")
    checkpoint = launch_checkpoints["reacher"]
    include, *nodes = run_launch(
        module, backend="real", checkpoint=checkpoint, driver_launch=str(driver)
    )
    (source,) = include.args  # AnyLaunchDescriptionSource: .py, .xml or .yaml
    assert source.args == (str(driver),)
    assert [n.kwargs["executable"] for n in nodes] == ["policy_node", "hardware_bridge"]


def test_deploy_launch_starts_tf_only_when_installed(launch_file, launch_checkpoints):
    checkpoint = launch_checkpoints["reacher"]
    with_tf = started(run_launch(launch_file("deploy.launch.py", True), checkpoint=checkpoint))
    assert list(with_tf) == [
        "sim_backend",
        "robot_state_publisher",
        "policy_node",
        "hardware_bridge",
    ]
    assert "<robot" in with_tf["robot_state_publisher"]["robot_description"]
    module = launch_file("deploy.launch.py", tf_installed=False)
    with pytest.raises(ValueError, match=r"'publish_tf'.*robot_state_publisher is not installed"):
        run_launch(module, checkpoint=checkpoint, publish_tf="true")


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"backend": "mars"}, "backend"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"autostart": "maybe"}, "autostart"),
        ({"robot": "no_such_robot"}, "robot"),
        ({"checkpoint": "cartpole"}, "checkpoint"),
        ({"checkpoint": "/nonexistent.pt"}, "checkpoint"),
        ({"checkpoint": "", "backend": "real"}, "checkpoint"),  # hot reload off: nothing to run
        ({"params_file": "/nonexistent.yaml"}, "params_file"),
        ({"params_file": "MALFORMED"}, "params_file"),
        ({"backend": "real", "driver_launch": "/nonexistent.launch.py"}, "driver_launch"),
        ({"namespace": "1bad"}, "namespace"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_deploy_launch_checks_every_argument_before_any_node(
    launch_file, launch_checkpoints, arguments, name, tmp_path
):
    module = launch_file("deploy.launch.py")
    if arguments.get("params_file") == "MALFORMED":  # YAML, but not ROS parameters
        malformed = tmp_path / "params.yaml"
        malformed.write_text("policy_node:\n  max_image_pixels: 100\n")
        arguments = {"params_file": str(malformed)}
    values = {"checkpoint": launch_checkpoints["reacher"], **arguments}
    values["checkpoint"] = launch_checkpoints.get(values["checkpoint"], values["checkpoint"])
    with pytest.raises(ValueError, match=f"^deploy.launch.py: argument '{name}': "):
        run_launch(module, **values)


def test_train_launch_live_evaluation(launch_file, tmp_path):
    module = launch_file("train.launch.py")
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters: {}\n")
    actions = run_launch(
        module, eval_in_sim="true", overrides="env.image_size=48", params_file=str(params)
    )
    assert isinstance(actions[-1], LaunchLifecycleNode)
    nodes = started(actions)
    assert list(nodes) == ["trainer_node", "sim_backend", "policy_node", "hardware_bridge"]
    assert nodes["trainer_node"]["overrides"] == ["env.image_size=48"]
    assert nodes["sim_backend"] == {  # built from the first checkpoint; the driver's topic
        "checkpoint_topic": "trainer/checkpoint",
        "command_topic": "effort_controller/commands",
    }
    assert nodes["hardware_bridge"]["autostart"] and not nodes["hardware_bridge"]["wait_for_e_stop"]
    assert nodes["policy_node"]["robot"] == "reacher" and nodes["policy_node"]["hot_reload"]
    assert all(str(params) in a.kwargs["parameters"] for a in actions)
    assert list(started(run_launch(module))) == ["trainer_node"]
    trainer, *live = actions
    assert "on_exit" in trainer.kwargs  # the session ends with its training
    assert not any("on_exit" in a.kwargs for a in live)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"eval_in_sim": "yes"}, "'eval_in_sim'"),
        ({"iterations": "many"}, "'iterations'"),
        ({"iterations": "abc"}, "'iterations'"),
        ({"minutes": "-1"}, "'minutes'"),
        ({"minutes": "nan"}, "'minutes'"),
        ({"device": "tpu"}, "'device'"),
        ({"params_file": "/nonexistent.yaml"}, "'params_file'"),
        ({"overrides": "sdpg.horizonn=3"}, "'overrides'.*sdpg.horizonn"),
        ({"task": "cartpole_swingup", "eval_in_sim": "true"}, "'robot'"),
        ({"namespace": "1bad"}, "'namespace'"),
    ],
)
def test_train_launch_checks_every_argument_before_any_node(launch_file, arguments, match):
    with pytest.raises(ValueError, match=f"^train.launch.py: argument {match}"):
        run_launch(launch_file("train.launch.py"), **arguments)


@pytest.mark.parametrize("name", ["deploy.launch.py", "train.launch.py"])
def test_launch_files_push_every_node_into_the_namespace(launch_file, launch_checkpoints, name):
    module = launch_file(name)
    extra = {"checkpoint": launch_checkpoints["reacher"]} if name.startswith("deploy") else {}
    plain = run_launch(module, **extra)
    pushed = [unwrap(action) for action in run_launch(module, namespace="arm1", **extra)]
    assert {namespace for namespace, _ in pushed} == {"/arm1"}
    same = lambda a: (a.kwargs["executable"], a.kwargs["parameters"])  # noqa: E731
    assert [same(a) for _, a in pushed] == [same(a) for a in plain]
    with pytest.raises(ValueError, match="argument 'namespace'"):
        run_launch(module, namespace="bad ns", **extra)
