"""Built-in tasks (importing this package registers them)."""

from sdpg_core.envs.tasks import cartpole, go2, hopper, reacher, ur5e_reach, walker  # noqa: F401
