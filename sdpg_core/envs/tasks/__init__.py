"""Built-in tasks (importing this package registers them)."""

from sdpg_core.envs.tasks import (  # noqa: F401
    cartpole,
    go2,
    go2_terrain,
    hopper,
    reacher,
    ur5e_reach,
    walker,
)
