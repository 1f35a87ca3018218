"""sdpg_core: ROS-free SDPG library (algorithm, batched MuJoCo envs, models, trainer, CLI)."""

import os

# Headless rendering: EGL must be chosen before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

__version__ = "0.1.0"
