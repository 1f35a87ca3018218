"""``sdpg-ros deploy``: the composed sim session end to end over a real ROS 2 graph."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray, String

from sdpg_core.config import load_perturbations
from sdpg_core.evaluate import evaluate
from sdpg_core.policy import Policy
from sdpg_core.robot import load_robot
from sdpg_core.sim import SimRobot
from sdpg_ros import cli
from sdpg_ros.common import LATCHED_QOS, RELIABLE_QOS
from sdpg_ros.hardware_bridge import DISCOVERY_S, HardwareBridge
from sdpg_ros.policy_node import PolicyNode
from sdpg_ros.sim_backend import SimBackend
from tests.ros.helpers import Arrivals, make_checkpoint, with_image_size


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    """A tiny untrained pixel policy for the reacher at 32x32."""
    return make_checkpoint(tmp_path_factory.mktemp("deploy") / "policy.pt", image_size=32)


def test_sim_session_runs_episodes_and_reports(policy_file, tmp_path, capsys):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file)]
    argv += ["--episodes", "2", "--duration", "60", "--report", str(report_file), "--compare"]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["episodes"] >= 2 and report["success_rate"] is not None
    assert 0.0 <= report["in_process_success_rate"] <= 1.0  # same checkpoint and episodes
    # every frame became an action and a command; nothing was malformed (on a loaded machine a
    # frame may wait past max_image_age_ms, or be overtaken by a newer one before the policy gets
    # to it: stale frames are rejected and overtaken ones skipped, as they should be)
    policy_counts = report["nodes"]["policy_node"]
    stale = policy_counts.get("rejected/stale", 0)
    skipped = stale + policy_counts.get("superseded", 0)
    assert report["images"] >= 2 * 50 and report["rejected"] == stale
    assert skipped <= 0.05 * report["images"]
    assert report["actions"] == report["images"] - skipped
    assert report["commands"] >= report["actions"]
    # the bridge activates DISCOVERY_S after configuring (0.2 s after start): the actions of
    # the first frames (25 per sim second) are not commanded
    uncommanded = (0.5 + DISCOVERY_S) * 25
    assert report["latency_ms"]["count"] >= 0.9 * (report["actions"] - uncommanded)
    assert 0.0 <= report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert set(report["nodes"]) == {"sim_backend", "policy_node", "hardware_bridge"}
    out = capsys.readouterr().out
    assert "ros_episodes=" in out and "in_process_success=" in out and "gap=" in out


def test_a_deploy_under_a_perturbation_set_compares_with_the_same_set(policy_file, tmp_path):
    """--perturb FILE SET: the sim's episodes draw from the held-out set, and --compare
    evaluates the checkpoint in-process under that set too."""
    perturb = ROOT / "config" / "perturb" / "reacher.yaml"
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file), "--compare"]
    argv += ["--perturb", str(perturb), "weak_heavy", "--episodes", "2", "--duration", "60"]
    assert cli.main([*argv, "--report", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["episodes"] >= 2
    held_out = load_perturbations(perturb)["weak_heavy"]
    reference = evaluate(Policy.load(policy_file), report["episodes"], randomize=held_out)
    assert report["in_process_return_mean"] == reference["return_mean"]


def test_dry_run_keeps_the_robot_still(policy_file, tmp_path):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file), "--dry-run"]
    argv += ["--episodes", "1", "--duration", "60", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["commands"] > 0
    assert report["nodes"]["sim_backend"].get("commands", 0) == 0


ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "tests" / "data" / "reacher_pixels.pt"
ARM = TRAINED.parent / "ur5e_reach_pixels.pt"  # 400 iterations of ur5e_reach (6% success)


def in_process_twin(path: Path, episodes: int, seed: int) -> list[bool]:
    """The deploy loop without ROS: same sim, seed, images and command mapping."""
    policy, robot = Policy.load(path), SimRobot("reacher", seed=seed)
    scale = np.asarray(load_robot("reacher").action_scale)
    size = policy.spec.pixel_shape[1]
    image, successes = robot.image(size), []
    while len(successes) < episodes:
        robot.set_command(scale * policy.act_image(image))
        episode = robot.step()
        if episode is not None:
            successes.append(bool(episode.success))
            policy.reset_stream()  # the policy node does so on the sim's episode_start
        image = robot.image(size)
    robot.close()
    return successes


def test_trained_policy_reaches_over_ros_as_in_process(tmp_path):
    """A pixel policy trained by ``make run`` (exported to tests/data) drives the simulated arm
    over ROS 2 topics, succeeding on the same episodes as the same loop without ROS (up to
    the bridge's 1 s activation ramp and timing)."""
    episodes = 16
    twin = in_process_twin(TRAINED, episodes, seed=0)
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(TRAINED), "--seed", "0"]
    argv += ["--episodes", str(episodes), "--duration", "120", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["episodes"] >= episodes and report["rejected"] == 0
    assert report["success_rate"] >= 0.6
    ros_successes = round(report["success_rate"] * report["episodes"])
    assert abs(ros_successes - sum(twin)) <= 2, (ros_successes, twin)


def arm_twin(path: Path, episodes: int, seed: int) -> list[float]:
    """The arm's deploy loop without ROS: joint states and image -> action -> the command
    integrated as the bridge does (last + action_scale * a, clamped) -> the sim."""
    policy = Policy.load(path)
    env = policy.cfg.env
    robot = SimRobot("ur5e_reach", seed=seed, camera=env.camera, image=env.image)
    scale = np.asarray(load_robot("ur5e").action_scale)
    low, high = robot.env.task.limits.T
    size, returns = policy.spec.pixel_shape[1], []
    command = robot.env.extras[0, 3:].copy()
    while len(returns) < episodes:
        state = robot.joint_state()
        action = policy.act_image(robot.image(size), (state.position, state.velocity))
        command = np.clip(command + scale * action, low, high)
        robot.set_command(command)
        episode = robot.step()
        if episode is not None:
            returns.append(episode.episode_return)
            policy.reset_stream()  # the policy node does so on the sim's episode_start
            command = robot.env.extras[0, 3:].copy()  # the bridge rebases on the new pose
    robot.close()
    return returns


def test_the_arm_follows_its_policy_over_ros_as_in_process(tmp_path):
    """A UR5e policy (camera + proprio, joint deltas; a short training exported to tests/data)
    drives the simulated arm over the driver's topics: trajectory commands integrated by the
    bridge, rebased at each episode start. After the first episode (the bridge's activation
    ramp) each return matches the same loop without ROS, and the arm is far from standing
    still (evaluation of zero deltas)."""
    episodes = 4
    twin = arm_twin(ARM, episodes, seed=0)
    still = evaluate(StandStill(Policy.load(ARM)), episodes, seed=0)["return_mean"]
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--robot", "ur5e", "--checkpoint", str(ARM)]
    argv += ["--seed", "0", "--episodes", str(episodes), "--duration", "90"]
    assert cli.main([*argv, "--report", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    bridge = report["nodes"]["hardware_bridge"]
    assert report["episodes"] >= episodes and report["rejected"] == 0
    assert bridge["rebased"] >= episodes - 1 and report["nodes"]["sim_backend"]["commands"] > 0
    ros = report["returns"][1:episodes]
    np.testing.assert_allclose(ros, twin[1:], rtol=0.1, err_msg=f"{report['returns']} {twin}")
    assert np.mean(twin) - still > 0.3 * abs(still), (twin, still)


def test_the_arm_over_the_forward_position_controller(tmp_path):
    """The robot YAML's alternative: Float64MultiArray on forward_position_controller/commands
    drives the simulated arm the same way (episode 2 equals the loop without ROS)."""
    text = (ROOT / "config" / "robots" / "ur5e.yaml").read_text()
    text = text.replace("command_type: trajectory", "command_type: forward")
    trajectories = "scaled_joint_trajectory_controller/joint_trajectory"
    text = text.replace(trajectories, "forward_position_controller/commands")
    robot = tmp_path / "ur5e_forward.yaml"
    robot.write_text(text.replace("name: ur5e", "name: ur5e_forward"))
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--robot", str(robot), "--checkpoint", str(ARM)]
    argv += ["--seed", "0", "--episodes", "2", "--duration", "60", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["nodes"]["sim_backend"]["commands"] > 0 and report["rejected"] == 0
    twin = arm_twin(ARM, 2, seed=0)
    np.testing.assert_allclose(report["returns"][1], twin[1], rtol=0.1)


def test_a_depth_policy_drives_the_arm_from_the_depth_topic(tmp_path):
    """env.image=depth: the sim publishes 32FC1 metres on the RealSense depth topic, the policy
    node reads them there (nothing rejected), and episode 2 equals the loop without ROS."""
    policy = make_checkpoint(
        tmp_path / "depth.pt", task="ur5e_reach", overrides=("env.image=depth",)
    )
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--robot", "ur5e", "--checkpoint", str(policy)]
    argv += ["--seed", "0", "--episodes", "2", "--duration", "60", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["rejected"] == 0 and report["actions"] >= 100, report["nodes"]
    assert report["nodes"]["sim_backend"]["commands"] > 0
    twin = arm_twin(policy, 2, seed=0)
    np.testing.assert_allclose(report["returns"][1], twin[1], rtol=0.1)


def go2_twin(path: Path, episodes: int, seed: int, steps: int, command) -> list:
    """The quadruped's deploy loop without ROS: joint states, IMU and the command (and, for a
    depth policy, a frame every ``camera_every`` steps) -> action -> the robot YAML's targets
    (default pose + 0.5 a) -> the sim; its episodes."""
    policy = Policy.load(path)
    spec, env = policy.spec, policy.cfg.env
    robot = SimRobot(spec.task, seed=seed, episode_steps=steps, image=env.image)
    robot.set_task_command(command)
    config = load_robot("go2")
    scale, offset = np.asarray(config.action_scale), np.asarray(config.action_offset)
    ended = []
    while len(ended) < episodes:
        state, imu = robot.joint_state(), robot.imu()
        readings = (state.position, state.velocity), (imu.orientation, imu.angular_velocity)
        if spec.obs_mode == "proprio":
            action = policy.act_proprio(*readings, command)
        else:
            if robot.env.steps[0] % spec.camera_every == 0:
                policy.push_frame(robot.image(*spec.pixel_shape[1:]))
            action = policy.act_frames(*readings, command)
        robot.set_command(offset + scale * action)
        episode = robot.step()
        if episode is not None:
            ended.append(episode)
            policy.reset_stream()  # the policy node does so on the sim's episode_start
    robot.close()
    return ended


def deploy_go2(
    path: Path, tmp_path: Path, episodes: int, steps: int, command: str, record: Path | None = None
) -> dict:
    """``sdpg-ros deploy --robot go2`` (a 0.5 s + 0.2 s stand-up) on ``steps``-step episodes
    (``record``: also into this bag)."""
    text = (ROOT / "config" / "robots" / "go2.yaml").read_text()
    robot = tmp_path / "go2_quick.yaml"
    robot.write_text(
        text.replace("name: go2", "name: go2_quick")
        .replace("stand_s: 3.0", "stand_s: 0.5")
        .replace("stand_hold_s: 1.0", "stand_hold_s: 0.2")
    )
    params = tmp_path / "params.yaml"
    params.write_text(f"/**/sim_backend:\n  ros__parameters:\n    episode_steps: {steps}\n")
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--robot", str(robot), "--checkpoint", str(path)]
    argv += ["--seed", "0", "--episodes", str(episodes), "--duration", "90", "--cmd-vel", command]
    argv += ["--params-file", str(params), "--report", str(report_file)]
    argv += ["--record", str(record)] if record else []
    assert cli.main(argv) == 0
    return json.loads(report_file.read_text())


def test_the_quadruped_follows_its_proprio_policy_over_ros_as_in_process(tmp_path):
    """A proprio-only go2_walk policy over ROS: the policy node acts on joint states + IMU +
    cmd_vel at 50 Hz, the bridge stands the robot up first; after the first episode (the
    stand-up) each episode's return matches the loop without ROS."""
    path = make_checkpoint(tmp_path / "go2.pt", task="go2_walk", seed=3)
    report = deploy_go2(path, tmp_path, episodes=3, steps=100, command="0.5,0,0")
    twin = go2_twin(path, 3, seed=0, steps=100, command=np.array([0.5, 0.0, 0.0]))
    policy_counts = report["nodes"]["policy_node"]
    # at most a start-up race: the first ticks before the IMU subscription has its
    # readings in (none yet: imu_missing; only an early one: imu_stale, 158 ms, seen in CI)
    race = {"rejected/imu_missing", "rejected/imu_stale"}
    rejected = {key for key in policy_counts if key.startswith("rejected/")}
    assert rejected <= race, policy_counts
    assert sum(policy_counts.get(key, 0) for key in race) <= 2, policy_counts
    assert policy_counts["ticks"] >= 200 and report["images"] == 0  # episodes 2 and 3 at least
    assert report["nodes"]["sim_backend"]["cmd_vel"] > 0
    np.testing.assert_allclose(
        report["returns"][1:3], [e.episode_return for e in twin[1:]], rtol=0.05
    )


def test_a_depth_policy_at_10_hz_acts_at_50_hz_over_ros_as_in_process(tmp_path):
    """go2_walk_depth: the sim publishes 58 x 87 depth frames every 5th step (10 Hz); the policy
    node stacks them and acts on every joint state (50 Hz) with the newest frame, returning
    what the loop without ROS returns (episodes 2-3)."""
    path = make_checkpoint(
        tmp_path / "go2_depth.pt", 58, task="go2_walk_depth", overrides=("env.image_width=87",)
    )
    report = deploy_go2(path, tmp_path, episodes=3, steps=100, command="0.4,0,0")
    twin = go2_twin(path, 3, seed=0, steps=100, command=np.array([0.4, 0.0, 0.0]))
    policy_counts = report["nodes"]["policy_node"]
    started = len(report["returns"]) + 1  # episodes of 100 steps: 20 frames each at most
    assert report["nodes"]["sim_backend"]["frames"] <= 20 * started
    assert policy_counts["actions"] >= 200, policy_counts
    np.testing.assert_allclose(
        report["returns"][1:3], [e.episode_return for e in twin[1:]], rtol=0.05
    )


WALKER = TRAINED.parent / "go2_walk.pt"  # see test_a_walking_policy_moves_the_quadruped_forward


def walks_forward(report: dict, twin: list) -> None:
    """Over ROS the first episode (the stand-up, then the policy ramping in) moves forward and
    episodes 2-3 walk at least half as fast as the loop without ROS. Walking over a real-time
    ROS loop is chaotic (seen: 0.30-0.57 m/s in episodes 2-3 for 0.40-0.47 without), so this
    is the criterion, not a match; the benchmark compares 20 episodes (docs/experiments/go2.md)."""
    assert all(e.steps == 250 and e.metrics["velocity"] >= 0.35 for e in twin)  # it walks
    velocity = report["episode_metrics"]["velocity"][:3]
    reference = np.mean([e.metrics["velocity"] for e in twin[1:3]])
    assert len(velocity) == 3 and velocity[0] > 0.05, (velocity, reference)
    assert min(velocity[1:3]) > reference / 2, (velocity, reference)


def test_a_walking_policy_moves_the_quadruped_forward_over_ros(tmp_path):
    """A trained go2_walk policy (tests/data; docs/experiments/go2.md says how it was made) under
    cmd_vel 0.5 m/s: over ROS the quadruped stands up, then walks forward in every episode."""
    report = deploy_go2(WALKER, tmp_path, episodes=3, steps=250, command="0.5,0,0")
    twin = go2_twin(WALKER, 3, seed=0, steps=250, command=np.array([0.5, 0.0, 0.0]))
    assert report["episodes"] >= 3 and report["rejected"] <= 2, report["nodes"]
    walks_forward(report, twin)


class StandStill:
    """A policy that never moves (zero joint deltas): the baseline the arm must beat."""

    def __init__(self, policy: Policy) -> None:
        self.spec, self.cfg = policy.spec, policy.cfg

    def act(self, obs: dict) -> np.ndarray:
        """Zero actions [n, A]."""
        return np.zeros((len(obs["state"]), self.spec.action_dim), dtype=np.float32)


def test_train_with_live_evaluation_hot_reloads(tmp_path, capsys):
    tiny = ["sdpg.num_nominal=2", "sdpg.num_perturbations=1", "sdpg.horizon=4"]
    tiny += ["env.image_size=32", "model.encoder_channels=4", "model.encoder_features=16"]
    tiny += ["run.checkpoint_interval=2", "run.eval_episodes=2", "run.video=false"]
    argv = ["train", "--task", "reacher", "--iterations", "40", "--out", str(tmp_path / "run")]
    argv += [arg for item in tiny for arg in ("--set", item)] + ["--eval-in-sim"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["iterations"] == 40
    live = dict(part.split("=", 1) for part in out.splitlines()[1].split()[2:] if "=" in part)
    assert int(live["actions"]) > 0 and int(live["commands"]) > 0


def test_configuration_errors_exit_2(capsys):
    assert cli.main(["train", "--task", "reacher", "--set", "sdpg.horizonn=3"]) == 2
    assert "sdpg.horizonn" in capsys.readouterr().err
    assert cli.main(["deploy", "--checkpoint", "/nonexistent.pt"]) == 2


BAD_BUDGETS = [
    ["--duration", "-1"],
    ["--episodes", "-1"],
    ["--duration", "nan"],
    ["--episodes", "x"],
]


@pytest.mark.parametrize("flags", BAD_BUDGETS)
def test_negative_or_nonsense_deploy_budgets_are_refused(capsys, flags):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["deploy", "--checkpoint", "/nonexistent.pt", *flags])
    assert exit_info.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_train_flags_become_trainer_parameters():
    args = cli.build_parser().parse_args(
        ["train", "--task", "reacher", "--algo", "ppo", "--set", "ppo.lr=1e-3", "--seed", "3"]
    )
    (trainer,) = cli.train_specs(args)
    params = trainer.parameters
    assert params["overrides"] == ["ppo.lr=1e-3", "run.algo=ppo"]
    assert params["task"] == "reacher" and params["seed"] == 3 and "minutes" not in params


def test_mismatches_exit_2_before_any_node_starts(policy_file, tmp_path, monkeypatch, capsys):
    """A checkpoint of another task than the robot's (cart-pole on the reacher), a missing
    params file, a live evaluation of another task: one line naming the problem, exit 2."""
    started = []
    monkeypatch.setattr(cli, "run_nodes", lambda *args: started.append(args) or 0)
    cartpole = make_checkpoint(tmp_path / "cartpole.pt", image_size=32, task="cartpole_swingup")
    runs = {
        "cartpole_swingup": ["deploy", "--checkpoint", str(cartpole), "--robot", "reacher"],
        "params file": ["deploy", "--checkpoint", str(policy_file), "--params-file", "/no.yaml"],
        "runs task 'reacher'": ["train", "--task", "cartpole_swingup", "--eval-in-sim"],
        "state policy": ["train", "--task", "reacher_state", "--eval-in-sim"],
    }
    for problem, argv in runs.items():
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and problem in err, err
    assert started == []


@pytest.mark.parametrize(
    ("flags", "hot_reload", "autostart"),
    [
        (["--backend", "sim"], True, True),
        (["--backend", "real"], False, False),
        (["--backend", "real", "--hot-reload", "--activate"], True, True),
        (["--backend", "sim", "--no-hot-reload", "--no-activate"], False, False),
    ],
)
def test_real_hardware_neither_activates_nor_hot_reloads_by_default(
    policy_file, flags, hot_reload, autostart
):
    args = cli.build_parser().parse_args(["deploy", "--checkpoint", str(policy_file), *flags])
    policy, bridge = (spec.parameters for spec in cli.deploy_specs(args)[-2:])
    assert policy["hot_reload"] is hot_reload and bridge["autostart"] is autostart
    assert policy["robot"] == bridge["robot"] == "reacher"
    # the sim has no e-stop publisher; on hardware the bridge waits for the e-stop state
    assert bridge.get("wait_for_e_stop", True) is (args.backend == "real")


def test_params_file_reaches_the_nodes(policy_file, tmp_path):
    params = tmp_path / "params.yaml"  # for every node; the others ignore an unknown parameter
    params.write_text("/**:\n  ros__parameters:\n    max_image_pixels: 100\n")
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--backend", "sim", "--checkpoint", str(policy_file)]
    argv += ["--params-file", str(params), "--duration", "3", "--report", str(report_file)]
    assert cli.main(argv) == 0
    report = json.loads(report_file.read_text())
    policy_counts = report["nodes"]["policy_node"]
    assert policy_counts["rejected/too_large"] == report["images"] > 0
    assert report["actions"] == 0


@pytest.mark.parametrize("text", ["policy_node: [1, 2\n", "policy_node:\n  rate: 3\n", "- 1\n"])
def test_a_malformed_params_file_is_one_line_before_any_node(policy_file, tmp_path, capsys, text):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    argv = ["deploy", "--checkpoint", str(policy_file), "--params-file", str(params)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    prefix = f"sdpg-ros deploy: error: argument --params-file: params file {params}"
    assert len(err) == 1 and err[0].startswith(prefix)


def test_a_namespaced_sim_session_runs_and_a_bad_namespace_is_refused(policy_file, tmp_path):
    report_file = tmp_path / "report.json"
    argv = ["deploy", "--checkpoint", str(policy_file), "--namespace", "arm1"]
    assert cli.main([*argv, "--duration", "3", "--report", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["actions"] > 0 and report["commands"] > 0  # every topic found in /arm1
    assert cli.main(["deploy", "--checkpoint", str(policy_file), "--namespace", "bad ns"]) == 2


@pytest.fixture(scope="module")
def big_policy(tmp_path_factory):
    """The trained reacher policy, declaring a 2048 x 2048 camera."""
    return with_image_size(TRAINED, tmp_path_factory.mktemp("big") / "big.pt", 2048)


def composed_deploy(graph, checkpoint: Path) -> PolicyNode:
    """sim_backend + policy_node + hardware_bridge on the graph's one executor, as
    ``sdpg-ros deploy --backend sim`` composes them; returns the policy node."""

    def add(cls, **params):
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        return graph.add(cls(context=graph.context, parameter_overrides=overrides))

    args = cli.build_parser().parse_args(["deploy", "--checkpoint", str(checkpoint)])
    policy, bridge = (spec.parameters for spec in cli.deploy_specs(args)[-2:])
    add(SimBackend, task="reacher", image_size=64)
    node = add(PolicyNode, **policy)
    add(HardwareBridge, **bridge)
    return node


def test_hot_reloads_do_not_stall_the_commands(graph, tmp_path, big_policy, monkeypatch):
    """Reloads of the trained checkpoint (built and warmed up on the loader thread) and of one
    declaring a 2048 px camera (refused on its spec, never built) while the composed deploy
    runs: the bridge's commands keep flowing (before: 60 ms and 1.6 s without one)."""
    live = tmp_path / "live.pt"
    shutil.copy(TRAINED, live)
    policy = composed_deploy(graph, live)
    builds: list[tuple[str, list]] = []  # (thread, pixel shape) of every policy built
    build = Policy.from_checkpoint.__func__

    def spy(cls, data, source, device="cpu"):
        builds.append((threading.current_thread().name, list(data["spec"]["pixel_shape"])))
        return build(cls, data, source, device)

    monkeypatch.setattr(Policy, "from_checkpoint", classmethod(spy))
    probe = graph.add(Node("probe", context=graph.context))
    commands = Arrivals(probe, Float64MultiArray, "effort_controller/commands", RELIABLE_QOS)
    paths = probe.create_publisher(String, "trainer/checkpoint", LATCHED_QOS)
    assert graph.spin_until(lambda: len(commands) >= 25, 30.0)  # active and commanding
    count = lambda key: policy.counters.as_dict().get(key, 0)  # noqa: E731
    start = time.monotonic()
    for path, counter in [(live, "reloads"), (big_policy, "reload_rejected")] * 2:
        before, sent = count(counter), time.monotonic()
        paths.publish(String(data=str(path)))
        assert graph.spin_until(lambda c=counter, b=before: count(c) > b, 20.0)
        if counter == "reload_rejected":  # spec checked before building 2048 px (ms; loose
            assert time.monotonic() - sent < 2.0  # bound for a loaded machine)
    graph.spin_for(0.3)
    gap_ms = commands.max_gap_ms(start, time.monotonic())
    print(f"longest gap between commands during the reloads: {gap_ms:.0f} ms")
    assert count("reloads") == 2 and count("reload_rejected/image_size") == 2
    main = threading.main_thread().name  # the executor spins here
    assert len(builds) == 2 and all(thread != main for thread, _ in builds), builds
    assert all(2048 not in shape for _, shape in builds)  # the big one was never built
    assert gap_ms < 250.0, gap_ms  # loose: a load on the executor took 1.6-6 s
