"""The memory, scaling and throughput benchmarks run in --smoke mode and report sane figures."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def results_snapshot() -> dict[Path, float]:
    """Modification times of the committed results (smoke runs must leave them alone)."""
    return {path: path.stat().st_mtime for path in (BENCHMARKS / "results").glob("*")}


def smoke(script: str, out: Path) -> tuple[dict, str]:
    """Run ``script --smoke --out out`` with this interpreter; its JSON section and stdout."""
    before = results_snapshot()
    command = [sys.executable, str(BENCHMARKS / script), "--smoke", "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results_snapshot() == before
    section = script.removeprefix("bench_").removesuffix(".py")
    return json.loads((out / f"{section}.json").read_text())[section], proc.stdout


def assert_positive(figures: dict, keys: list[str]) -> None:
    """Every ``figures[key]`` is a finite number > 0."""
    for key in keys:
        value = figures[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key


@pytest.mark.slow
def test_memory_smoke(tmp_path):
    figures, stdout = smoke("bench_memory.py", tmp_path)
    rows = {k: v for k, v in figures.items() if k.startswith("envs_")}
    assert rows
    assert "ratio ppo_peak / sdpg_peak" in stdout or "unavailable" in stdout
    frame = 3 * 3 * figures["image_size"] ** 2  # 3 stacked RGB frames, uint8
    for key, row in rows.items():
        assert_positive(row, ["sdpg_baseline_mb", "sdpg_peak_mb", "sdpg_pixel_mb"])
        assert row["sdpg_peak_mb"] >= row["sdpg_baseline_mb"]
        # B frame stacks + B observations per step of the horizon, nothing else
        expected = figures["sdpg_nominal"] * (figures["horizon"] + 1) * frame
        assert row["sdpg_pixel_mb"] * 2**20 == expected
        if "ppo" in row:  # PPO trainer missing or failed: reported, not raised
            assert row["ppo"].startswith("unavailable") and row["ratio"] is None
            continue
        assert_positive(row, ["ppo_baseline_mb", "ppo_peak_mb", "ppo_pixel_mb", "ratio"])
        envs = int(key.removeprefix("envs_"))
        assert row["ppo_rendered_envs"] == envs
        assert row["ppo_pixel_mb"] * 2**20 >= envs * (figures["horizon"] + 1) * frame


@pytest.mark.slow
def test_scaling_smoke(tmp_path):
    figures, stdout = smoke("bench_scaling.py", tmp_path)
    assert "time_ratio_p" in stdout
    assert_positive(figures["seconds_by_p"], list(figures["seconds_by_p"]))
    assert_positive(figures["seconds_by_b"], list(figures["seconds_by_b"]))
    ratios = [k for k in figures if k.startswith("time_ratio_")]
    assert len(ratios) == 2
    assert_positive(figures, ratios)
    assert (tmp_path / "scaling.png").stat().st_size > 0


@pytest.mark.slow
def test_throughput_smoke(tmp_path):
    figures, stdout = smoke("bench_throughput.py", tmp_path)
    assert "ratio_to_floor" in stdout
    keys = ["rollout_s", "physics_s", "render_s", "actor_s", "floor_s", "ratio_to_floor"]
    assert_positive(figures, [*keys, "rollout_env_steps_per_s", "floor_env_steps_per_s"])
    parts = figures["physics_s"] + figures["render_s"] + figures["actor_s"]
    assert figures["floor_s"] == pytest.approx(parts)
    assert figures["ratio_to_floor"] == pytest.approx(figures["floor_s"] / figures["rollout_s"])


@pytest.mark.slow
def test_learning_smoke(tmp_path):
    before = results_snapshot()
    command = [sys.executable, str(BENCHMARKS / "bench_learning.py"), "--smoke"]
    command += ["--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--seeds", "0", "1"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results_snapshot() == before
    figures = json.loads((tmp_path / "learning_reacher.json").read_text())["learning"]["reacher"]
    assert_positive(figures, ["sdpg_cpu_s", "ppo_cpu_s", "sdpg_env_steps", "ppo_env_steps"])
    assert math.isfinite(figures["sdpg_return_at_budget"] + figures["ppo_return_at_budget"])
    assert figures["equal_cpu_s"] == min(figures["sdpg_cpu_s"], figures["ppo_cpu_s"])
    assert "sdpg_cpu_s_to_ppo_final" in figures and figures["seeds"] == [0, 1]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["learning"]["reacher"] == figures and "learning_reacher" in summary["commands"]
    assert (tmp_path / "learning_reacher.png").stat().st_size > 0


@pytest.mark.slow
def test_ppo_sweep_smoke(tmp_path):
    command = [sys.executable, str(BENCHMARKS / "bench_ppo_sweep.py"), "--smoke"]
    command += ["--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = json.loads((tmp_path / "ppo_sweep_reacher.json").read_text())["ppo_sweep"]["reacher"]
    assert sweep["best"] in sweep["candidates"] and len(sweep["candidates"]) >= 3
    assert "best: " in proc.stdout


@pytest.mark.slow
def test_reliability_smoke(tmp_path):
    figures, stdout = smoke("bench_reliability.py", tmp_path)
    keys = [f"{noise}_p{p}" for noise in ("independent", "mirrored") for p in (2, 3)]
    keys.append("one_step_p4")  # P rounded up to a multiple of the smoke horizon 4
    for key in keys:
        assert -1.0 <= figures[key] <= 1.0, key
    assert figures["task"] == "reacher" and "reliability" in stdout


def test_learning_figures_hand_worked():
    """CPU time to PPO's final return and returns at equal CPU time, on made-up curves."""
    sys.path.insert(0, str(BENCHMARKS))
    from bench_learning import figures

    def run(cpu, ret):
        n = len(cpu)
        return {
            "cpu_s": np.array(cpu, float),
            "return": np.array(ret, float),
            "wall_s": np.array(cpu, float) / 2,
            "env_steps": np.arange(1.0, n + 1),
        }

    sdpg = [run([10, 20, 30], [1, 5, 9]), run([10, 20, 30], [3, 5, 7])]
    ppo = [run([20, 40, 60], [1, 2, 4])]
    out = figures({"sdpg": sdpg, "ppo": ppo}, baseline=0.0)
    assert out["ppo_return_at_budget"] == 4 and out["ppo_cpu_s"] == 60
    assert out["sdpg_cpu_s_to_ppo_final"] == 20  # both seeds first reach >= 4 at 20 s
    assert out["cpu_fraction_of_ppo"] == pytest.approx(1 / 3)
    assert out["equal_cpu_s"] == 30  # min of the mean budgets (30 vs 60)
    assert out["sdpg_return_at_equal_cpu"] == 8 and out["ppo_return_at_equal_cpu"] == 1
    assert out["return_ratio_at_equal_cpu"] == 8 and out["gain_ratio_at_equal_cpu"] == 8


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_robot_smoke(tmp_path):
    """Train, evaluate, deploy over ROS and measure latency for the arm, in tiny budgets."""
    before = results_snapshot()
    command = [sys.executable, str(BENCHMARKS / "bench_robot.py"), "--smoke"]
    command += ["--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=380, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert results_snapshot() == before
    figures = json.loads((tmp_path / "robots_ur5e_reach.json").read_text())["robots"]
    arm = figures["ur5e_reach"]
    assert arm["iterations"] == 2 and arm["episodes"] == 2 and arm["ros_episodes"] >= 2
    assert 0.0 <= arm["success_rate"] <= 1.0 and 0.0 <= arm["ros_success_rate"] <= 1.0
    assert_positive(arm, ["minutes", "cpu_s", "latency_p50_ms", "latency_p99_ms"])
    assert arm["ros_rejected"] == 0 and arm["latency_frames"] == 30
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["robots"]["ur5e_reach"] == arm


def test_export_smoke(tmp_path):
    """ONNX Runtime latency and agreement for the arm's and the walker's policies, 50 steps."""
    before = results_snapshot()
    command = [sys.executable, str(BENCHMARKS / "bench_export.py"), "--smoke"]
    command += ["--out", str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results_snapshot() == before
    figures = json.loads((tmp_path / "summary.json").read_text())["sim2real"]["export"]
    for name in ("ur5e_reach", "go2_walk"):
        assert figures[name]["steps"] == 50 and figures[name]["max_abs_diff"] <= 1e-4
        for timing in ("onnx_infer_ms", "onnx_step_ms", "torch_step_ms"):
            assert_positive(figures[name][timing], ["p50", "p99", "max"])


@pytest.mark.timeout(300)
def test_robustness_smoke(tmp_path):
    """Two tiny reacher trainings (randomised, nominal), each evaluated nominal and under the
    held-out sets."""
    before = results_snapshot()
    command = [sys.executable, str(BENCHMARKS / "bench_robustness.py"), "--smoke"]
    command += ["--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    command += ["--randomize", "config/randomize/reacher.yaml", "--set", "env.episode_steps=3"]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=280, check=False, cwd=BENCHMARKS.parent
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert results_snapshot() == before
    figures = json.loads((tmp_path / "summary.json").read_text())["sim2real"]["robustness_reacher"]
    assert figures["randomize"] == "config/randomize/reacher.yaml"
    for name in ("randomized", "nominal"):
        policy = figures[name]
        assert policy["iterations"] == 2
        assert set(policy["perturbed_success"]) == {
            "camera_moved",
            "other_lighting",
            "noisy_camera",
            "latency_40ms",
            "weak_heavy",
        }
        assert_positive(policy, ["env_steps_per_s", "env_steps_per_cpu_s", "cpu_s"])
    drawn = (tmp_path / "runs" / "reacher_randomized" / "randomization.jsonl").read_text()
    assert json.loads(drawn.splitlines()[0])["randomization"]["vision.light_intensity/light0"] > 0
    assert not (tmp_path / "runs" / "reacher_nominal" / "randomization.jsonl").exists()
    proc = subprocess.run(
        [*command, "--cost"],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
        cwd=BENCHMARKS.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())["sim2real"]
    cost = summary["randomization_cost_reacher"]
    assert cost["rounds"] == 1 and cost["iterations"] == 2
    assert cost["cost_env_steps_per_s"] < 1.0 and cost["nominal_env_steps_per_s"] > 0
    assert "robustness_reacher" in summary  # kept beside


@pytest.mark.timeout(300)
def test_robustness_finetune_smoke(tmp_path):
    """--finetune: the randomised run starts from the nominal run's latest.pt (run.init)."""
    command = [sys.executable, str(BENCHMARKS / "bench_robustness.py"), "--smoke"]
    command += ["--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--finetune", "3"]
    command += ["--randomize", "config/randomize/reacher.yaml", "--set", "env.episode_steps=3"]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=280, check=False, cwd=BENCHMARKS.parent
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())["sim2real"]
    assert summary["robustness_reacher_finetuned"]["finetune_iterations"] == 3
    tuned = yaml.safe_load((tmp_path / "runs" / "reacher_randomized" / "config.yaml").read_text())
    nominal = tmp_path / "runs" / "reacher_nominal" / "checkpoints" / "latest.pt"
    assert tuned["run"]["init"] == str(nominal) and nominal.is_file()


@pytest.mark.timeout(300)
def test_distributed_smoke(tmp_path):
    """The same tiny SDPG run in 1 and 2 processes: speeds and rank 0's time split."""
    figures, _ = smoke("bench_distributed.py", tmp_path)
    assert figures["processes_1"]["processes"] == 1 and figures["processes_2"]["processes"] == 2
    for k in (1, 2):
        assert_positive(figures[f"processes_{k}"], ["env_steps_per_s", "iteration_s"])
    assert figures["processes_2"]["split_allreduce_s"] > 0.0
    assert figures["processes_1"]["split_allreduce_s"] == 0.0
    assert figures["efficiency"] == pytest.approx(figures["speedup"] / 2)
