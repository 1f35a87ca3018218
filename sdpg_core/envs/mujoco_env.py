"""Batched MuJoCo env: physics for all envs via ``mujoco.rollout``, pixels for render ids only."""

from __future__ import annotations

import copy
import json
import time
from collections import defaultdict

import mujoco
import numpy as np
import torch
from mujoco import rollout

from sdpg_core.config import EnvConfig
from sdpg_core.envs.base import BatchedEnv, EnvSpec, EnvState, StepResult
from sdpg_core.envs.latency import Latency
from sdpg_core.envs.randomize import ModelVariants, Randomizer
from sdpg_core.envs.registry import TaskEntry
from sdpg_core.envs.render import PixelRenderer
from sdpg_core.obs import proprio

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
TIMING = ("params", "ctrl_queue", "sensed")  # per-env randomisation state beside the physics


class MujocoBatchEnv(BatchedEnv):
    """N copies of one task; see ``sdpg_core.envs.base`` for the contract."""

    def __init__(
        self,
        entry: TaskEntry,
        cfg: EnvConfig,
        num_envs: int,
        render_ids: np.ndarray | None = None,
        pixels: bool = True,
        seed: int = 0,
    ) -> None:
        self.entry = entry
        self.task = task = entry.factory()
        if cfg.command:
            if len(cfg.command) != task.command_dim:
                raise ValueError(
                    f"env.command: {entry.name} takes {task.command_dim} command values, "
                    f"got {list(cfg.command)}"
                )
            task.fixed_command = tuple(cfg.command)
        self.model = task.build_spec().compile()
        task.bind(self.model)
        self.num_envs = num_envs
        self.render_ids = np.arange(num_envs) if render_ids is None else np.asarray(render_ids)
        self._render_row = np.full(num_envs, -1, dtype=np.int64)
        self._render_row[self.render_ids] = np.arange(len(self.render_ids))
        m = self.model
        self._nstate = mujoco.mj_stateSize(m, FULLPHYSICS)
        if self._nstate != 1 + m.nq + m.nv + m.na:
            raise ValueError(f"{type(task).__name__}: unsupported state layout (history/plugins)")
        threads = max(1, cfg.physics_threads)
        self._pool = rollout.Rollout(nthread=threads if threads > 1 else 0)
        self._datas = [mujoco.MjData(m) for _ in range(threads)]
        self._scratch = mujoco.MjData(m)
        self._warmstart = np.zeros((num_envs, m.nv))
        self._out = np.zeros((num_envs, task.frame_skip, self._nstate))
        self.physics = np.zeros((num_envs, self._nstate))
        self.extras = np.zeros((num_envs, task.extras_dim))
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.prev_action = np.zeros((num_envs, m.nu), dtype=np.float32)
        self.action_repeat = cfg.action_repeat
        self.episode_steps = cfg.episode_steps or -(-task.episode_steps // cfg.action_repeat)
        window = -(-task.success_window // cfg.action_repeat)
        self.success_window = max(1, min(window, self.episode_steps))
        self.on_target = np.zeros(num_envs, dtype=np.int64)
        self._init_randomization(cfg)
        self.timers: dict[str, float] = defaultdict(float)
        joints = m.actuator_trnid[:, 0]
        # qpos / qvel indices of the actuated joints, in action order
        self.joint_qpos, self.joint_dof = m.jnt_qposadr[joints], m.jnt_dofadr[joints]
        self.renderer = None
        self.spec = self._make_spec(cfg, pixels)
        if pixels:
            self.renderer = PixelRenderer(
                copy.copy(m) if self.randomizer.dim else m,
                task,
                len(self.render_ids),
                cfg.image_shape,
                cfg.frame_stack,
                self.spec.camera,
                cfg.shadows,
                cfg.msaa,
                self.spec.depth_range,
                self.randomizer,
            )
            stack = self.renderer.stack
            self.latency.watch_camera(
                len(self.render_ids), (*stack.frames.shape[2:], stack.channels)
            )
        self.rng = np.random.default_rng(seed)
        self.reset(np.arange(num_envs))

    def _init_randomization(self, cfg: EnvConfig) -> None:
        """Draws per env, the model variants they select and the delay buffers they need."""
        m, n = self.model, self.num_envs
        self.randomizer = Randomizer(cfg.randomize, m, self.task.frame_skip)
        self.variants = ModelVariants(self.randomizer)
        self.params = np.zeros((n, self.randomizer.dim))
        self.latency = Latency(self.randomizer, n, m.nu, self._nstate)

    def _make_spec(self, cfg: EnvConfig, pixels: bool) -> EnvSpec:
        """Build the static spec from the compiled model and task."""
        height, width = cfg.image_shape
        image = cfg.image or self.task.image
        channels = 1 if image == "depth" else 3
        obs = self.task.observation(*self._split(self.physics[:1]), self.extras[:1])
        mode, scale, offset = self.task.action_mapping()
        return EnvSpec(
            task=self.entry.name,
            obs_mode=self.entry.obs_mode,
            state_dim=obs.shape[1],
            action_dim=self.model.nu,
            pixel_shape=(channels * cfg.frame_stack, height, width) if pixels else None,
            episode_steps=self.episode_steps,
            control_dt=float(self.model.opt.timestep * self.task.frame_skip * self.action_repeat),
            reward_terms=tuple(self.task.reward_terms),
            has_success=self.task.has_success,
            joint_names=self.task.joint_names(),
            camera=cfg.camera or self._default_camera(image),
            proprio_dim=self._proprio_dim(),
            default_pose=tuple(self.task.default_pose) if self.task.proprio else (),
            velocity_scale=self.task.velocity_scale if self.task.proprio else 0.0,
            imu=self.task.proprio and self.task.imu,
            command_dim=self.task.command_dim if self.task.proprio else 0,
            image=image,
            depth_range=tuple(self.task.depth_range) if image == "depth" else (),
            camera_every=self.task.camera_every,
            action_mode=mode,
            action_scale=tuple(float(v) for v in scale),
            action_offset=tuple(float(v) for v in offset),
        )

    def _proprio_dim(self) -> int:
        """P: joints (3A), after the IMU (6) and the command for tasks that have them."""
        task = self.task
        if not task.proprio:
            return 0
        return 3 * self.model.nu + (6 if task.imu else 0) + task.command_dim

    def _default_camera(self, image: str) -> str:
        """The task's camera for images of kind ``image``."""
        task = self.task
        return (task.depth_camera or task.camera) if image == "depth" else task.camera

    def _split(self, physics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) views of FULLPHYSICS rows."""
        nq, nv = self.model.nq, self.model.nv
        return physics[:, 1 : 1 + nq], physics[:, 1 + nq : 1 + nq + nv]

    def reset(self, ids: np.ndarray, seeds: list | None = None) -> None:
        """Sample fresh initial states for ``ids`` and restart their frame stacks.

        ``seeds`` (one per id, any ``np.random.default_rng`` seed) makes each initial state a
        function of its seed alone, e.g. ``(eval_seed, episode)``: in-process evaluation and
        the ROS sim backend then play the very same episodes."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        if seeds is None:
            qpos, qvel, extras = self.task.initial_state(self.rng, len(ids))
            params = self.randomizer.sample(self.rng, len(ids))
        else:
            rngs = [np.random.default_rng(s) for s in seeds]
            draws = [self.task.initial_state(rng, 1) for rng in rngs]
            qpos, qvel, extras = (np.concatenate(parts) for parts in zip(*draws, strict=True))
            params = np.concatenate([self.randomizer.sample(rng, 1) for rng in rngs])
        physics = np.zeros((len(ids), self._nstate))
        physics[:, 1 : 1 + self.model.nq] = qpos
        physics[:, 1 + self.model.nq : 1 + self.model.nq + self.model.nv] = qvel
        self.physics[ids] = physics
        self.extras[ids] = extras
        self.steps[ids] = 0
        self.on_target[ids] = 0
        self.prev_action[ids] = 0.0
        self.params[ids] = params
        self.variants.invalidate()
        held = None
        if self.latency.ctrl_queue.shape[1]:  # the zero action's control, until one lands
            held = self.task.control(np.zeros((len(ids), self.model.nu)), extras)[0]
        self.latency.reset(ids, held, physics)
        self._restart_frames(ids)

    def _restart_frames(self, ids: np.ndarray) -> None:
        """Fill the frame stacks of the rendered envs among ``ids`` with their current image."""
        rendered = ids[self._render_row[ids] >= 0]
        if self.renderer is None or len(rendered) == 0:
            return
        start = time.perf_counter()
        physics, extras = self.physics[rendered], self.extras[rendered]
        images = self.renderer.render(physics, extras, self.params[rendered], self.steps[rendered])
        self.renderer.stack.reset(self._render_row[rendered], images)
        self.latency.restart_frames(self._render_row[rendered], images)
        self.timers["render"] += time.perf_counter() - start

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance all envs one control step: ``action_repeat`` x ``frame_skip`` physics steps.

        Rewards and their terms are summed over the repeats until termination (dm_control's
        action-repeat convention, so returns keep the task's scale)."""
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (self.num_envs, self.model.nu):
            raise ValueError(
                f"actions must be [{self.num_envs}, {self.model.nu}], got {actions.shape}"
            )
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf")
        reward, terms, terminated, broken = self._repeat(actions)
        self.prev_action[:] = actions
        self.steps += 1
        qpos, qvel = self._split(self.physics)
        info = {"reward_terms": terms, "nonfinite": broken}
        if self.task.has_success:
            info["success"] = self._judge_success(qpos, qvel, broken)
        if self.task.metrics:
            info["metrics"] = self.task.episode_metrics(qpos, qvel, self.extras)
        self._render_step()
        truncated = (self.steps >= self.episode_steps) & ~terminated
        return StepResult(self.observe(), reward, terminated, truncated, info)

    def _judge_success(self, qpos: np.ndarray, qvel: np.ndarray, broken: np.ndarray) -> np.ndarray:
        """Count success over the final window; True once it held on at least half of it."""
        held = self.task.success(qpos, qvel, self.extras) & ~broken
        in_window = self.steps > self.episode_steps - self.success_window
        self.on_target += held & in_window
        return 2 * self.on_target >= self.success_window

    def _repeat(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Apply ``actions`` ``action_repeat`` times: (reward, terms, terminated, broken) [N]."""
        clipped = np.clip(actions, -1.0, 1.0)
        n = self.num_envs
        reward, terms = np.zeros(n), {name: np.zeros(n) for name in self.task.reward_terms}
        ended, broken = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for _ in range(self.action_repeat):
            broken |= self._step_physics(clipped)
            qpos, qvel = self._split(self.physics)
            live = ~(ended | broken)
            with np.errstate(invalid="ignore", over="ignore"):
                step_terms = self.task.terms(qpos, qvel, self.extras, actions)
                self.extras = self.task.advance(qpos, qvel, self.extras, actions)
                reward += np.where(live, self.task.combine(step_terms), 0.0)
                for name, value in step_terms.items():
                    terms[name] += np.where(live, value, 0.0)
                ended |= broken | self.task.terminated(qpos, qvel, self.extras)
        terms = {k: v.astype(np.float32) for k, v in terms.items()}
        return reward.astype(np.float32), terms, ended, broken

    def _step_physics(self, actions: np.ndarray) -> np.ndarray:
        """Batch-step the physics with ``mujoco.rollout``; returns the diverged rows [N] bool.

        MuJoCo silently resets a diverging MjData (bad qpos/qvel/qacc) to its initial state
        and time 0: a non-finite input row, or a clock that did not advance by exactly
        frame_skip * timestep, marks such a row.
        """
        start = time.perf_counter()
        ctrl, self.extras = self.task.control(actions, self.extras)
        expected = self.physics[:, 0] + self.task.frame_skip * self.model.opt.timestep
        broken_before = ~np.isfinite(self.physics).all(axis=1)
        before = self.physics.copy() if self.latency.sensed.shape[1] else None
        self._pool.rollout(
            self.variants.models(self.params),
            self._datas,
            self.physics,
            self.latency.delayed(ctrl, self.params, self.steps, self.task.frame_skip),
            nstep=self.task.frame_skip,
            initial_warmstart=self._warmstart,
            state=self._out,
        )
        self.physics[:] = self._out[:, -1]
        if before is not None:
            self.latency.sense(before, self._out, self.params)
        tolerance = 0.5 * self.model.opt.timestep
        with np.errstate(invalid="ignore"):
            diverged = ~(np.abs(self.physics[:, 0] - expected) < tolerance)
        self.timers["physics"] += time.perf_counter() - start
        return diverged | broken_before | ~np.isfinite(self.physics).all(axis=1)

    def _render_step(self) -> None:
        """Render each rendered env whose camera is due (every ``camera_every`` steps of its
        episode) and push the frame onto its stack."""
        if self.renderer is None:
            return
        start = time.perf_counter()
        rows = np.flatnonzero(self.steps[self.render_ids] % self.spec.camera_every == 0)
        ids = self.render_ids[rows]
        physics = np.nan_to_num(self.physics[ids], nan=0.0, posinf=0.0, neginf=0.0)
        images = self.renderer.render(physics, self.extras[ids], self.params[ids], self.steps[ids])
        rows, images = self.latency.frames(rows, images, self.params[ids], self.steps[ids])
        self.renderer.stack.push(rows, images)
        self.timers["render"] += time.perf_counter() - start

    def observe(self) -> dict[str, np.ndarray]:
        """Current observations; non-finite physics rows give zero state and proprio."""
        qpos, qvel = self._split(self.physics)
        with np.errstate(invalid="ignore", over="ignore"):
            state = self.task.observation(qpos, qvel, self.extras).astype(np.float32)
        broken = ~np.isfinite(self.physics).all(axis=1)
        state[broken | ~np.isfinite(state).all(axis=1)] = 0.0
        obs = {"state": state}
        if self.task.proprio:
            sensed = self.latency.sensed if self.latency.sensed.shape[1] else self.physics
            obs["proprio"] = self._proprio(np.where(broken[:, None], 0.0, sensed))
            obs["proprio"][broken] = 0.0
        if self.renderer is not None:
            obs["pixels"] = self.renderer.stack.frames.copy()
        return obs

    def _proprio(self, physics: np.ndarray) -> np.ndarray:
        """The proprio group [N, P] of FULLPHYSICS rows (actuated joints, previous action)."""
        qpos, qvel = self._split(physics)
        spec, task = self.spec, self.task
        return proprio(
            qpos[:, self.joint_qpos],
            qvel[:, self.joint_dof],
            self.prev_action,
            spec.default_pose,
            spec.velocity_scale,
            task.imu_state(qpos, qvel) if spec.imu else None,
            task.command(self.extras) if spec.command_dim else None,
        )

    def get_state(self, ids: np.ndarray, frames: bool = True) -> EnvState:
        """Copy of the state of ``ids`` (frames when asked and every id is rendered: a sync of
        auxiliaries to their nominals copies no images)."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = self._render_row[ids]
        wanted, frames = frames, None
        if wanted and self.renderer is not None and len(ids) and (rows >= 0).all():
            frames = self.renderer.stack.frames[rows].copy()
        return EnvState(
            self.physics[ids].copy(),
            self.extras[ids].copy(),
            self.steps[ids].copy(),
            self.prev_action[ids].copy(),
            self.on_target[ids].copy(),
            frames,
            *(self._timing(name)[ids].copy() for name in TIMING),
            self._pending_of(rows) if frames is not None else None,
        )

    def _timing(self, name: str) -> np.ndarray:
        """The per-env array behind EnvState field ``name`` of ``TIMING``."""
        return self.params if name == "params" else getattr(self.latency, name)

    def _pending_of(self, rows: np.ndarray) -> np.ndarray | None:
        """Copy of the delayed camera frames of render rows ``rows`` (None without delays)."""
        pending = self.latency.pending
        return None if pending is None else pending[rows].copy()

    def set_state(self, state: EnvState, ids: np.ndarray) -> None:
        """Restore ``ids`` from ``state``; frames are applied to rendered ids when present."""
        ids = np.asarray(ids, dtype=np.int64)
        self.physics[ids] = state.physics
        self.extras[ids] = state.extras
        self.steps[ids] = state.steps
        self.prev_action[ids] = state.prev_action
        self.on_target[ids] = state.on_target
        self._set_timing(state, ids)
        rows = self._render_row[ids]
        if state.frames is not None and self.renderer is not None:
            keep = rows >= 0
            self.renderer.stack.frames[rows[keep]] = state.frames[keep]
            if state.pending is not None and self.latency.pending is not None:
                self.latency.pending[rows[keep]] = state.pending[keep]

    def _set_timing(self, state: EnvState, ids: np.ndarray) -> None:
        """Restore the draws of ``ids`` and the controls and readings they delay (a state
        without them, from before randomisation, leaves the env's own)."""
        for name in TIMING:
            value, mine = getattr(state, name), self._timing(name)
            if value is None:
                continue
            if value.shape[1:] != mine.shape[1:]:
                raise ValueError(
                    f"set_state: {name} of shape {value.shape[1:]} per env, this env's is "
                    f"{mine.shape[1:]}: the state comes from an env randomised otherwise "
                    "(env.randomize)"
                )
            mine[ids] = value
        if state.params is not None:
            self.variants.invalidate()

    def state_dict(self) -> dict:
        """Whole-batch state incl. frame stacks and the reset RNG, as tensors (for checkpoints)."""
        state = self.get_state(np.arange(self.num_envs))
        frames = self.renderer.stack.frames if self.renderer is not None else np.zeros(0)
        pending = self.latency.pending
        return {
            "physics": torch.from_numpy(state.physics),
            "extras": torch.from_numpy(state.extras),
            "steps": torch.from_numpy(state.steps),
            "prev_action": torch.from_numpy(state.prev_action),
            "on_target": torch.from_numpy(state.on_target),
            "frames": torch.from_numpy(frames.copy()),
            "rng": json.dumps(self.rng.bit_generator.state),
            **{name: torch.from_numpy(getattr(state, name)) for name in TIMING},
            "pending": torch.from_numpy(np.array([] if pending is None else pending)),
        }

    def load_state_dict(self, state: dict) -> None:
        """Inverse of ``state_dict`` (same task, batch size and rendered ids)."""
        restored = EnvState(
            state["physics"].numpy(),
            state["extras"].numpy(),
            state["steps"].numpy(),
            state["prev_action"].numpy(),
            state["on_target"].numpy(),
        )
        for name in TIMING:  # absent from older checkpoints
            if name in state:
                setattr(restored, name, state[name].numpy())
        self.set_state(restored, np.arange(self.num_envs))
        if self.renderer is not None:
            self.renderer.stack.frames[:] = state["frames"].numpy()
        if self.latency.pending is not None and "pending" in state:
            self.latency.pending[:] = state["pending"].numpy()
        self.rng.bit_generator.state = json.loads(state["rng"])

    def close(self) -> None:
        """Release the renderer and the rollout thread pool."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        self._pool.close()
