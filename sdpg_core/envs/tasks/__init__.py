"""Built-in tasks (importing this package registers them)."""

from sdpg_core.envs.tasks import cartpole, hopper, reacher, walker  # noqa: F401
