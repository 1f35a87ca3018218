"""Deterministic evaluation of a policy on fresh episodes, with an optional video."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import mujoco
import numpy as np

from sdpg_core.config import RandomizeConfig
from sdpg_core.envs.base import EVAL_SEED, episode_seed
from sdpg_core.envs.registry import make_env
from sdpg_core.stream import StreamingPolicy

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


def evaluate(
    policy: StreamingPolicy,
    episodes: int,
    seed: int = EVAL_SEED,
    video: str | Path | None = None,
    command: tuple[float, ...] | None = None,
    randomize: RandomizeConfig | None = None,
    records: list[dict] | None = None,
) -> dict[str, float]:
    """Run ``episodes`` parallel episodes; return mean/std return, success rate and the mean of
    each of the task's episode metrics (``<name>_mean``). ``command``: a command task's command
    in every episode (None: the config's). ``randomize``: a perturbation set to draw from
    (None: the nominal simulator, whatever the training randomised). ``records``: appended with
    one dict per episode (seed, return, success, metrics, the randomised values it used)."""
    spec = policy.spec
    cfg = replace(policy.cfg.env, randomize=randomize or RandomizeConfig(enabled=False))
    if command is not None:
        cfg = replace(cfg, command=tuple(command))
    env = make_env(spec.task, cfg, episodes, seed=seed)
    env.reset(np.arange(episodes), seeds=[episode_seed(seed, k) for k in range(episodes)])
    writer = _VideoWriter(env, Path(video)) if video else None
    returns = np.zeros(episodes)
    done = np.zeros(episodes, dtype=bool)
    success = np.zeros(episodes, dtype=bool)
    metrics = {name: np.zeros(episodes) for name in env.task.metrics}
    try:
        obs = env.observe()
        while not done.all():
            result = env.step(policy.act(obs))
            returns += np.where(done, 0.0, result.reward)
            ended = (result.terminated | result.truncated) & ~done
            if spec.has_success:
                success[ended] = result.info["success"][ended]
            for name, values in metrics.items():
                values[ended] = result.info["metrics"][name][ended]
            done |= ended
            obs = result.obs
            if writer:
                writer.add()
        if records is not None:
            records += _records(env, seed, returns, success if spec.has_success else None, metrics)
    finally:
        if writer:
            writer.close()
        env.close()
    out = {"return_mean": float(returns.mean()), "return_std": float(returns.std())}
    if spec.has_success:
        out["success_rate"] = float(success.mean())
    out.update({f"{name}_mean": float(values.mean()) for name, values in metrics.items()})
    return out


def evaluate_perturbed(
    policy: StreamingPolicy,
    episodes: int,
    sets: dict[str, RandomizeConfig],
    command: tuple[float, ...] | None = None,
    records: list[dict] | None = None,
    video: str | Path | None = None,
) -> dict:
    """``{"nominal": evaluate(...), "perturbed": {name: evaluate(...)}}``: the same seeded
    episodes in the nominal simulator and under each perturbation set; ``records`` get a
    ``set`` name each; ``video`` shows the first nominal episode."""
    results = {}
    for name, randomize in {"nominal": None, **sets}.items():
        mine: list[dict] = []
        clip = video if name == "nominal" else None
        results[name] = evaluate(
            policy, episodes, command=command, randomize=randomize, records=mine, video=clip
        )
        if records is not None:
            records += [{"set": name, **record} for record in mine]
    return {"nominal": results.pop("nominal"), "perturbed": results}


def _records(env, seed: int, returns, success, metrics) -> list[dict]:
    """One dict per evaluated episode: its seed, outcome and randomised values."""
    out = []
    for k in range(len(returns)):
        record = {"seed": episode_seed(seed, k), "return": float(returns[k])}
        if success is not None:
            record["success"] = bool(success[k])
        record |= {name: float(values[k]) for name, values in metrics.items()}
        record["randomization"] = env.randomizer.values(env.params[k])
        out.append(record)
    return out


class _VideoWriter:
    """Renders env 0 from the task camera at 240x240 into an mp4."""

    def __init__(self, env, path: Path, size: int = 240) -> None:
        self.env = env
        self.data = mujoco.MjData(env.model)
        self.renderer = mujoco.Renderer(env.model, size, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        fps = max(1, round(1.0 / env.spec.control_dt))
        self.out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
        self.add()

    def add(self) -> None:
        """Append the current frame of env 0."""
        mujoco.mj_setState(self.env.model, self.data, self.env.physics[0], FULLPHYSICS)
        self.env.task.prepare_render(self.data, self.env.extras[0])
        mujoco.mj_forward(self.env.model, self.data)
        self.renderer.update_scene(self.data, self.env.spec.camera)
        self.out.write(cv2.cvtColor(self.renderer.render(), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the file."""
        self.out.release()
        self.renderer.close()
