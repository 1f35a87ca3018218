"""Sessions as node specs: ``ros2 launch`` arguments and ``sdpg-ros`` flags give the same nodes
and parameters, every launch argument reaches them, bad values are named, and the launch path
(checks included) reads checkpoints without torch."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from sdpg_core import checkpoint
from sdpg_core.envs.base import EVAL_SEED
from sdpg_ros import cli, launch_arguments, session_checks, sessions
from tests.ros.helpers import make_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "tests" / "data" / "reacher_pixels.pt"  # format 1: read through migrations


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A 48 px reacher checkpoint, a cart-pole one, a params file, a driver launch file."""
    folder = tmp_path_factory.mktemp("sessions")
    params = folder / "params.yaml"
    params.write_text("/**:\n  ros__parameters: {}\n")
    driver = folder / "driver.launch.xml"
    driver.write_text("<launch/>\n")
    return {
        "reacher": str(make_checkpoint(folder / "reacher.pt", image_size=48)),
        "cartpole": str(make_checkpoint(folder / "cartpole.pt", task="cartpole_swingup")),
        "params": str(params),
        "driver": str(driver),
        "out": str(folder / "run"),
    }


# (launch file, its arguments, the same session's sdpg-ros command line); {name} = files[name]
EQUIVALENT = {
    "deploy sim": (
        "deploy",
        {"checkpoint": "{reacher}", "seed": str(EVAL_SEED), "publish_tf": "false"},
        "deploy --checkpoint {reacher}",
    ),
    "deploy real": (
        "deploy",
        {
            "backend": "real",
            "checkpoint": "{reacher}",
            "camera_topic": "/camera/color/image_raw",
            "joint_states_topic": "/arm/joint_states",
            "dry_run": "true",
            "hot_reload": "true",
            "params_file": "{params}",
            "publish_tf": "false",
        },
        "deploy --backend real --checkpoint {reacher} --dry-run --hot-reload --camera-topic "
        "/camera/color/image_raw --joint-states-topic /arm/joint_states --params-file {params}",
    ),
    "deploy sim in a namespace": (
        "deploy",
        {"checkpoint": "{reacher}", "namespace": "arm1", "seed": "3", "publish_tf": "false"},
        "deploy --checkpoint {reacher} --namespace arm1 --seed 3",
    ),
    "train": (
        "train",
        {
            "overrides": "sdpg.horizon=4 env.image_size=48",
            "algo": "sdpg",
            "out": "{out}",
            "device": "cpu",
            "seed": "2",
            "iterations": "3",
            "minutes": "1.5",
            "overwrite": "true",
        },
        "train --task reacher --set sdpg.horizon=4 --set env.image_size=48 --algo sdpg --out "
        "{out} --device cpu --seed 2 --iterations 3 --minutes 1.5 --overwrite",
    ),
    "train eval_in_sim in a namespace": (
        "train",
        {"eval_in_sim": "true", "namespace": "/arm1", "params_file": "{params}"},
        "train --task reacher --eval-in-sim --namespace /arm1 --params-file {params}",
    ),
}


def filled(arguments: dict[str, str], files: dict[str, str]) -> dict[str, str]:
    """``arguments`` with {name} replaced by files[name]."""
    return {name: value.format(**files) for name, value in arguments.items()}


def cli_specs(argv: list[str]) -> list[sessions.Spec]:
    """The specs ``sdpg-ros`` builds its nodes from for ``argv``."""
    args = cli.build_parser().parse_args(argv)
    return (cli.deploy_specs if args.command == "deploy" else cli.train_specs)(args)


@pytest.mark.parametrize("case", EQUIVALENT, ids=str)
def test_launch_arguments_and_cli_flags_give_the_same_specs(files, case):
    kind, arguments, argv = EQUIVALENT[case]
    from_launch = launch_arguments.from_launch(kind, filled(arguments, files))
    assert from_launch == cli_specs(argv.format(**files).split())
    *_, last = from_launch  # the bridge starts last (a training alone has no bridge)
    assert (last.executable, last.lifecycle) in {("hardware_bridge", True), ("trainer_node", False)}
    params = (files["params"],) if "params_file" in arguments else ()
    for spec in from_launch:  # package defaults, then the params file, then the values
        default = ROOT / "config" / f"{spec.executable}.yaml"
        assert spec.files == (*((str(default),) if default.exists() else ()), *params)
        assert spec.namespace == ("/arm1" if "namespace" in case else "")


def test_the_sessions_nodes_and_their_values(files):
    sim, policy, bridge = sessions.deploy("sim", "reacher", files["reacher"])
    commands = {"command_topic": "effort_controller/commands"}  # where the robot's driver listens
    assert sim.parameters == {"checkpoint": files["reacher"], "use_sim_time": False, **commands}
    assert policy.parameters["hot_reload"] and bridge.parameters["autostart"]
    assert bridge.parameters["wait_for_e_stop"] is False  # the sim has no e-stop publisher
    real = sessions.deploy("real", "reacher", files["reacher"], driver_launch=files["driver"])
    driver, policy, bridge = real
    assert driver == sessions.IncludeSpec(files["driver"])
    assert not policy.parameters["hot_reload"] and not bridge.parameters["autostart"]
    assert "wait_for_e_stop" not in bridge.parameters and policy.remaps == ()  # '' = no remap
    trainer, sim, policy, bridge = sessions.train("reacher", eval_in_sim=True)
    assert trainer.ends_session and trainer.parameters == {"task": "reacher"}
    assert sim.parameters == {"checkpoint_topic": "trainer/checkpoint", **commands}  # first one
    arm_sim, arm_policy, _ = sessions.deploy("sim", "ur5e", hot_reload=True)
    trajectories = "scaled_joint_trajectory_controller/joint_trajectory"
    assert arm_sim.parameters["trajectory_topic"] == trajectories
    color = ("camera/image_raw", "camera/color/image_raw")  # the RealSense topics, sim and real
    assert arm_sim.remaps == (color, ("camera/camera_info", "camera/color/camera_info"))
    assert arm_policy.remaps == (color,)
    assert sessions.deploy("real", "ur5e", hot_reload=True)[-2].remaps == (color,)
    assert policy.parameters["checkpoint"] == "" and policy.parameters["hot_reload"]


def test_depth_policies_read_the_depth_topic(tmp_path):
    """A depth policy's sim publishes, and its policy node reads, the RealSense depth topics;
    the training session's live evaluation follows env.image."""
    path = make_checkpoint(tmp_path / "depth.pt", task="ur5e_reach", overrides=("env.image=depth",))
    depth = ("camera/image_raw", "camera/depth/image_rect_raw")
    arm_sim, arm_policy, _ = sessions.deploy("sim", "ur5e", str(path))
    assert arm_sim.remaps == (depth, ("camera/camera_info", "camera/depth/camera_info"))
    assert arm_policy.remaps == (depth,)
    assert sessions.deploy("real", "ur5e", str(path))[-2].remaps == (depth,)
    live = sessions.train(
        "ur5e_reach", overrides=["env.image=depth"], eval_in_sim=True, robot="ur5e"
    )
    assert live[2].remaps == (depth,)


PERTURB = str(ROOT / "config" / "perturb" / "reacher.yaml")
# Every launch argument: a value other than its default, and the arguments it needs beside it.
CHANGED = {
    "deploy": {
        "backend": ({"backend": "real"}, {}),
        "robot": ({"robot": str(ROOT / "config" / "robots" / "reacher.yaml")}, {}),
        "checkpoint": ({"checkpoint": "{other}"}, {}),
        "dry_run": ({"dry_run": "true"}, {}),
        "use_sim_time": ({"use_sim_time": "true"}, {}),
        "camera_topic": ({"camera_topic": "/cam/image"}, {"backend": "real"}),
        "joint_states_topic": ({"joint_states_topic": "/arm/joints"}, {"backend": "real"}),
        "driver_launch": ({"driver_launch": "{driver}"}, {"backend": "real"}),
        "autostart": ({"autostart": "false"}, {}),
        "hot_reload": ({"hot_reload": "false"}, {}),
        "publish_tf": ({"publish_tf": "false"}, {}),  # auto: installed (here)
        "params_file": ({"params_file": "{params}"}, {}),
        "namespace": ({"namespace": "arm1"}, {}),
        "device": ({"device": "cuda"}, {}),
        "seed": ({"seed": "7"}, {}),
        "cmd_vel": ({"cmd_vel": "0.5,0,0.1"}, {"robot": "go2", "checkpoint": "{go2}"}),
        "record": ({"record": "{bag}"}, {}),
        "perturb": ({"perturb": PERTURB, "perturb_set": "latency_40ms"}, {}),
        "perturb_set": (
            {"perturb_set": "weak_heavy"},
            {"perturb": PERTURB, "perturb_set": "latency_40ms"},
        ),
    },
    "train": {
        "task": ({"task": "reacher_state"}, {}),
        "config": ({"config": "{config}"}, {}),
        "overrides": ({"overrides": "sdpg.horizon=4"}, {}),
        "algo": ({"algo": "ppo"}, {}),
        "out": ({"out": "{out}"}, {}),
        "device": ({"device": "cpu"}, {}),
        "seed": ({"seed": "0"}, {}),
        "iterations": ({"iterations": "3"}, {}),
        "minutes": ({"minutes": "0.5"}, {}),
        "overwrite": ({"overwrite": "true"}, {}),
        "eval_in_sim": ({"eval_in_sim": "true"}, {}),
        "robot": (
            {"robot": str(ROOT / "config" / "robots" / "reacher.yaml")},
            {"eval_in_sim": "true"},
        ),
        "params_file": ({"params_file": "{params}"}, {}),
        "namespace": ({"namespace": "arm1"}, {}),
    },
}


@pytest.fixture(scope="module")
def more_files(files, tmp_path_factory) -> dict[str, str]:
    """``files`` and a config file, a second reacher checkpoint, a go2 one and a new bag."""
    folder = tmp_path_factory.mktemp("more")
    config = folder / "config.yaml"
    config.write_text("sdpg:\n  horizon: 4\n")
    other = make_checkpoint(folder / "other.pt", image_size=32, seed=1)
    go2 = make_checkpoint(folder / "go2.pt", task="go2_walk")
    bag = str(folder / "bag")  # not created: a bag to record
    return files | {"config": str(config), "other": str(other), "go2": str(go2), "bag": bag}


@pytest.mark.parametrize(
    ("kind", "name"), [(k, n) for k, names in CHANGED.items() for n in names], ids="-".join
)
def test_every_launch_argument_reaches_the_specs(more_files, monkeypatch, kind, name):
    monkeypatch.setattr(session_checks, "installed", lambda _package: True)  # publish_tf:=true
    assert set(CHANGED[kind]) == set(launch_arguments.ARGUMENTS[kind])
    changed, beside = (filled(d, more_files) for d in CHANGED[kind][name])
    base = {"checkpoint": more_files["reacher"]} if kind == "deploy" else {}
    before = launch_arguments.from_launch(kind, base | beside)
    after = launch_arguments.from_launch(kind, base | beside | changed)
    assert after != before, name


def test_the_readme_shows_only_launch_arguments_that_exist():
    """Every ``name:=`` in the README (but on other packages' launch lines, e.g. the robot
    driver's), and every `name` in its sentences about arguments."""
    lines = (ROOT / "README.md").read_text().splitlines()
    others = re.compile(r"ros2 launch (?!sdpg_ros)")
    readme = "\n".join(line for line in lines if not others.search(line))
    shown = set(re.findall(r"(\w+):=", readme))
    for sentence in re.split(r"\.\s", readme):
        if "argument" in sentence:
            shown |= set(re.findall(r"`(\w+)`", sentence))
    known = set(launch_arguments.DEPLOY) | set(launch_arguments.TRAIN)
    assert {"backend", "checkpoint", "task"} <= shown <= known, shown - known


@pytest.mark.parametrize(
    ("kind", "arguments", "name"),
    [
        ("train", {"iterations": "abc"}, "iterations"),
        ("train", {"seed": "-1"}, "seed"),
        ("train", {"minutes": "inf"}, "minutes"),
        ("train", {"algo": "nope"}, "algo"),
        ("train", {"task": "nope"}, "task"),
        ("train", {"config": "/nonexistent.yaml"}, "config"),
        ("train", {"overrides": "sdpg.horizonn=3"}, "overrides"),
        ("train", {"namespace": "1bad"}, "namespace"),
        ("train", {"task": "reacher_state", "eval_in_sim": "true"}, "eval_in_sim"),
        ("deploy", {"backend": "foo"}, "backend"),
        ("deploy", {"namespace": "1bad"}, "namespace"),
        ("deploy", {"seed": "x"}, "seed"),
        ("deploy", {"use_sim_time": "1"}, "use_sim_time"),
        ("deploy", {"publish_tf": "yes"}, "publish_tf"),
        ("deploy", {"backend": "real", "camera_topic": "bad topic"}, "camera_topic"),
        ("deploy", {"backend": "real", "joint_states_topic": "1/x"}, "joint_states_topic"),
        ("deploy", {"cmd_vel": "0.5,0,0"}, "cmd_vel"),  # the reacher takes no velocity command
        ("deploy", {"cmd_vel": "fast"}, "cmd_vel"),
        ("deploy", {"cmd_vel": "0.5,0"}, "cmd_vel"),
        ("deploy", {"perturb": PERTURB}, "perturb_set"),
        ("deploy", {"perturb": PERTURB, "perturb_set": "nope"}, "perturb_set"),
        ("deploy", {"perturb": "/nonexistent.yaml", "perturb_set": "x"}, "perturb"),
        ("deploy", {"backend": "real", "perturb": PERTURB, "perturb_set": "weak_heavy"}, "perturb"),
    ],
)
def test_a_bad_value_is_named_before_any_spec(files, kind, arguments, name):
    base = {"checkpoint": files["reacher"]} if kind == "deploy" else {}
    with pytest.raises(ValueError, match=f"^{kind}.launch.py: argument '{name}': "):
        launch_arguments.from_launch(kind, base | arguments)


def test_the_sim_refuses_a_set_with_camera_timing(files, tmp_path):
    late = tmp_path / "late.yaml"
    late.write_text("late:\n  latency:\n    camera_delay: [40.0, 40.0]\n")
    arguments = {"checkpoint": files["reacher"], "perturb": str(late), "perturb_set": "late"}
    with pytest.raises(ValueError, match="argument 'perturb_set': camera_delay"):
        launch_arguments.from_launch("deploy", arguments)


def test_a_run_directory_holding_a_run_is_named_out(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="argument 'out'"):
        launch_arguments.from_launch("train", {"out": str(tmp_path)})
    assert launch_arguments.from_launch("train", {"out": str(tmp_path), "overwrite": "true"})


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", "--task", "reacher", "--namespace", "1bad"], "--namespace"),
        (["train", "--task", "reacher", "--set", "sdpg.horizonn=3"], "--set"),
        (["train", "--task", "reacher", "--iterations", "-2"], "--iterations"),
        (["train", "--task", "reacher", "--nproc", "2"], "--nproc"),
        (["deploy", "--checkpoint", "/nonexistent.pt"], "--checkpoint"),
        (["deploy", "--checkpoint", "CARTPOLE", "--backend", "real"], "--checkpoint"),
    ],
)
def test_sdpg_ros_names_the_flag_of_a_bad_value(files, capsys, argv, flag):
    argv = [files["cartpole"] if a == "CARTPOLE" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sdpg-ros {argv[0]}: error: argument {flag}: ")


def test_the_launch_path_reads_checkpoints_without_torch(files):
    """Both launch files, run against the stand-ins for ``launch``, resolve and check their
    sessions (a trained checkpoint, one that does not fit the robot) without importing torch."""
    script = f"""
import sys
from pathlib import Path
from tests.ros.launch_stand_ins import launch_stand_ins, load_launch_file, run_launch
sys.modules.update(launch_stand_ins())
deploy = load_launch_file(Path({str(ROOT / "launch" / "deploy.launch.py")!r}))
train = load_launch_file(Path({str(ROOT / "launch" / "train.launch.py")!r}))
assert len(run_launch(deploy, checkpoint={str(TRAINED)!r}, publish_tf="false")) == 3
assert len(run_launch(train, eval_in_sim="true", namespace="arm1")) == 4
try:
    run_launch(deploy, checkpoint={files["cartpole"]!r})
except ValueError as err:
    assert "does not fit robot" in str(err), err
else:
    raise AssertionError("a cart-pole checkpoint was accepted for the reacher")
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_the_header_reader_sees_what_load_sees_without_tensors():
    header, full = checkpoint.read_header(TRAINED), checkpoint.load(TRAINED)
    assert header["format"] == full["format"] == checkpoint.FORMAT  # migrated from format 1
    assert header["config"] == full["config"] and header["spec"] == full["spec"]
    assert set(header["actor"]) == set(full["actor"])
    assert all(value is None for value in header["actor"].values())


class Foreign:
    """An object no checkpoint holds."""


def test_the_header_reader_refuses_what_load_refuses(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": checkpoint.FORMAT, "config": Foreign()}, foreign)
    newer = tmp_path / "newer.pt"
    torch.save({"format": checkpoint.FORMAT + 1}, newer)
    text, empty = tmp_path / "text.pt", tmp_path / "empty.pt"
    text.write_text("not a checkpoint")
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(TRAINED.read_bytes()[:2000])
    cases = {
        foreign: "refused: it names Python objects",
        newer: "not an sdpg checkpoint of a known format",
        text: r"not a readable checkpoint \(not a torch file\)",
        empty: r"not a readable checkpoint \(empty\)",
        truncated: "not a readable checkpoint",
    }
    for path, message in cases.items():
        with pytest.raises(ValueError, match=message):
            checkpoint.read_header(path)
        with pytest.raises(ValueError, match=message):
            checkpoint.load(path)
    with pytest.raises(FileNotFoundError):
        checkpoint.read_header(tmp_path / "missing.pt")


def test_the_header_reader_never_calls_a_global(tmp_path):
    """A data.pkl naming os.system is refused before anything is called."""
    path = tmp_path / "evil.pt"
    payload = b"cos\nsystem\n(S'touch " + str(tmp_path / "ran").encode() + b"'\ntR."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
    with pytest.raises(ValueError, match="refused"):
        checkpoint.read_header(path)
    assert not (tmp_path / "ran").exists()


def test_the_real_robot_is_commanded_only_when_asked():
    """dry_run defaults to true on backend real (commands to ~/dry_run/commands), false in the
    sim; --no-dry-run / dry_run:=false commands the robot."""
    bridge = lambda specs: specs[-1].parameters["dry_run"]  # noqa: E731
    assert bridge(sessions.deploy("real", "ur5e", hot_reload=True)) is True
    assert bridge(sessions.deploy("sim", "ur5e", hot_reload=True)) is False
    assert bridge(sessions.deploy("real", "ur5e", hot_reload=True, dry_run=False)) is False
    arm = str(ROOT / "tests" / "data" / "ur5e_reach_pixels.pt")
    argv = ["deploy", "--backend", "real", "--robot", "ur5e", "--checkpoint", arm, "--no-dry-run"]
    assert bridge(cli.deploy_specs(cli.build_parser().parse_args(argv))) is False


def test_a_terrain_policy_deploys_to_the_quadruped(tmp_path):
    """go2_terrain is one of the go2's tasks: its checkpoint passes the deploy checks, the sim
    runs its task and the policy reads the depth topic."""
    terrain = make_checkpoint(tmp_path / "terrain.pt", task="go2_terrain")
    specs = {spec.name: spec for spec in sessions.deploy("sim", "go2", str(terrain))}
    assert specs["sim_backend"].parameters["checkpoint"] == str(terrain)
    assert ("camera/image_raw", "camera/depth/image_rect_raw") in specs["policy_node"].remaps
