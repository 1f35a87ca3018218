"""Portable policies: ONNX Runtime's time per frame and its agreement with PyTorch.

Each policy (default: the arm's and the walker's policies in tests/data) is exported with
``sdpg export --format onnx`` and driven one control step at a time, as the policy node drives
it: a camera frame at the camera's native size (640 x 480) for camera policies, joint / IMU /
command readings for every policy. Per step, p50 / p99 / max in ms:
- ``onnx_infer_ms``: ``OnnxPolicy.act`` (``session.run``) on the prepared inputs alone;
- ``onnx_step_ms``: the whole streaming step (crop, resize, frame stack, proprio, run);
- ``torch_step_ms``: the same step with the PyTorch ``Policy``;
and ``max_abs_diff``, the largest |ONNX - PyTorch| action difference over the steps (both on
the same inputs and previous action). Each policy is timed alone (their thread pools would
compete), ``onnx_infer_ms`` beside the agreement pass.
Target (#18): the arm's ONNX inference p99 <= 2 ms per frame on this CPU.

Usage:
  python benchmarks/bench_export.py                # ~1 minute
  python benchmarks/bench_export.py --smoke --out /tmp/bench
Writes ``sim2real.export`` in <out>/summary.json and <out>/sim2real_export.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_results

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
POLICIES = {"ur5e_reach": DATA / "ur5e_reach_pixels.pt", "go2_walk": DATA / "go2_walk.pt"}


def readings(spec: Any, rng: np.random.Generator) -> dict[str, Any]:
    """One control step's joint / IMU / command readings for a policy with a proprio group."""
    if not spec.proprio_dim:
        return {}
    a = spec.action_dim
    out: dict[str, Any] = {"joints": (rng.normal(0, 0.3, a), rng.normal(0, 1.0, a))}
    if spec.imu:
        quat = rng.normal(0, 0.05, 4) + np.array([1.0, 0.0, 0.0, 0.0])
        out["imu"] = (quat / np.linalg.norm(quat), rng.normal(0, 0.3, 3))
    if spec.command_dim:
        out["command"] = np.array([0.5, 0.0, 0.0])
    return out


def frame(spec: Any, rng: np.random.Generator) -> np.ndarray:
    """A 640 x 480 camera image of the policy's kind (RGB uint8 or depth metres)."""
    if spec.image == "depth":
        return rng.uniform(0.2, 3.0, (480, 640)).astype(np.float32)
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


def step_fn(policy: Any) -> Callable[[np.ndarray | None, dict[str, Any]], np.ndarray]:
    """One streaming control step of ``policy``: a frame (camera policies) and readings."""
    if policy.spec.obs_mode == "proprio":
        return lambda _image, kw: policy.act_proprio(**kw)
    return lambda image, kw: policy.act_image(image, **kw)


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """p50 / p99 / max of a list of milliseconds."""
    p50, p99 = np.percentile(values_ms, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(max(values_ms))}


def measure(checkpoint: Path, steps: int, work: Path) -> dict[str, Any]:
    """Export ``checkpoint`` and time ``steps`` streaming steps with ONNX and PyTorch."""
    from sdpg_core.export import export
    from sdpg_core.onnx_policy import OnnxPolicy
    from sdpg_core.policy import Policy

    torch_policy = Policy.load(checkpoint)
    onnx_policy = OnnxPolicy.load(export(torch_policy, work / "policy.onnx", "onnx"))
    spec, rng = torch_policy.spec, np.random.default_rng(0)
    camera = spec.obs_mode == "pixels"
    timings: dict[str, list[float]] = {"onnx_step_ms": [], "torch_step_ms": []}
    infer, diffs = [], []
    onnx_step, torch_step = step_fn(onnx_policy), step_fn(torch_policy)
    inputs = [(frame(spec, rng) if camera else None, readings(spec, rng)) for _ in range(steps)]
    for policy in (onnx_policy, torch_policy):
        policy.warm_up()
    for name, step, policy in (
        ("onnx", onnx_step, onnx_policy),
        ("torch", torch_step, torch_policy),
    ):
        for image, kw in inputs[:20]:  # warm-up, not timed
            step(image, kw)
        policy.reset_stream()
        for image, kw in inputs:  # one policy at a time: their thread pools never compete
            start = time.perf_counter()
            step(image, kw)
            timings[f"{name}_step_ms"].append((time.perf_counter() - start) * 1e3)
    onnx_policy.reset_stream()
    torch_policy.reset_stream()
    for image, kw in inputs:  # agreement, each step on the same previous action
        torch_policy.prev_action = onnx_policy.prev_action.copy()
        diffs.append(float(np.abs(onnx_step(image, kw) - torch_step(image, kw)).max()))
        obs = {"pixels": onnx_policy.stream.frames} if camera else {}
        if spec.proprio_dim:
            obs["proprio"] = onnx_policy.last_proprio
        start = time.perf_counter()
        onnx_policy.act(obs)
        infer.append((time.perf_counter() - start) * 1e3)
    figures = {"onnx_infer_ms": percentiles(infer)}
    figures |= {name: percentiles(values) for name, values in timings.items()}
    return {**figures, "max_abs_diff": max(diffs), "steps": steps, "task": spec.task}


def main() -> int:
    """Measure each policy; print and write ``sim2real.export``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="one policy instead of tests/data's")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="50 steps (tests)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    policies = {args.checkpoint.stem: args.checkpoint} if args.checkpoint else POLICIES
    steps = 50 if args.smoke else args.steps
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, checkpoint in policies.items():
            figures[name] = measure(checkpoint, steps, Path(tmp))
            infer, step = figures[name]["onnx_infer_ms"], figures[name]["onnx_step_ms"]
            print(
                f"{name}: onnx inference p50 {infer['p50']:.3f} p99 {infer['p99']:.3f} ms, "
                f"streaming step p99 {step['p99']:.3f} ms (torch "
                f"{figures[name]['torch_step_ms']['p99']:.3f}), max |diff| "
                f"{figures[name]['max_abs_diff']:.2e}",
                flush=True,
            )
    write_results(args.out, "sim2real", figures, key="export")
    return 0


if __name__ == "__main__":
    sys.exit(main())
