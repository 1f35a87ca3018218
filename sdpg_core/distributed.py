"""Data-parallel training over ``torch.distributed`` (processes launched by ``torchrun``).

Each rank owns B / K nominal groups with their auxiliaries and rolls them out alone; the update
is data-parallel: every optimiser step averages the ranks' gradients (one all-reduce of a flat
buffer), the state normaliser folds the moments of every rank's batch, so weights,
optimiser states, normaliser and temperature are the same on every rank after each update.
Decisions that must agree (stop, evaluation results) come from rank 0. Backend: ``gloo`` on the
CPU, ``nccl`` on CUDA, chosen from the device; collectives time out after ``run.dist_timeout_s``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


class DistributedError(RuntimeError):
    """A collective failed or timed out: another rank died or hangs."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that logs, evaluates and writes checkpoints)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there are other ranks to talk to."""
        return self.size > 1


def launched_size() -> int:
    """WORLD_SIZE set by torchrun (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_world(device: str, timeout_s: float) -> World:
    """Join the process group torchrun set up (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` ...);
    a single process needs none."""
    if launched_size() == 1:
        return World()
    if not dist.is_initialized():
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    return World(dist.get_rank(), dist.get_world_size())


def close_world(world: World) -> None:
    """Leave the process group."""
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def _guard(world: World, what: str, fn: Any, *args: Any) -> Any:
    """Run collective ``fn``; a failure names this rank and what it was doing."""
    try:
        return fn(*args)
    except (RuntimeError, dist.DistError) as err:
        raise DistributedError(
            f"rank {world.rank} of {world.size}: {what} failed: another rank died or hangs "
            f"(collectives time out after run.dist_timeout_s): {str(err).splitlines()[0]}"
        ) from err


def average_gradients(params: Iterable[torch.nn.Parameter], world: World) -> None:
    """Replace each gradient by its mean over the ranks (one all-reduce of a flat buffer)."""
    if not world.active:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    _guard(world, "gradient all-reduce", dist.all_reduce, flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_moments(
    count: int, mean: torch.Tensor, var: torch.Tensor, world: World
) -> list[tuple[float, torch.Tensor, torch.Tensor]]:
    """Every rank's batch moments (count, mean, population var), in rank order on every rank
    (folded one after the other they give the statistics of the union)."""
    if not world.active:
        return [(float(count), mean, var)]
    row = torch.cat([torch.tensor([float(count)], dtype=torch.float64), mean, var]).to(mean.device)
    rows = [torch.empty_like(row) for _ in range(world.size)]
    _guard(world, "normaliser all-gather", dist.all_gather, rows, row)
    dim = mean.numel()
    return [(float(r[0]), r[1 : 1 + dim], r[1 + dim :]) for r in rows]


def broadcast(value: Any, world: World, what: str) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if not world.active:
        return value
    box = [value]
    _guard(world, f"broadcast of {what}", dist.broadcast_object_list, box, 0)
    return box[0]


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank if ``flag`` is True on any."""
    if not world.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    _guard(world, "stop vote", dist.all_reduce, value, dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def total(value: float, world: World) -> float:
    """The sum of ``value`` over the ranks."""
    if not world.active:
        return value
    box = torch.tensor([value], dtype=torch.float64)
    _guard(world, "sum", dist.all_reduce, box)
    return float(box.item())


def gather(value: Any, world: World, what: str) -> list[Any] | None:
    """Every rank's ``value`` in rank order on rank 0 (None elsewhere)."""
    if not world.active:
        return [value]
    out = [None] * world.size if world.main else None
    _guard(world, f"gather of {what}", dist.gather_object, value, out, 0)
    return out


def scatter(values: list[Any] | None, world: World, what: str) -> Any:
    """Rank r gets ``values[r]`` of rank 0's list."""
    if not world.active:
        return values[0]
    out = [None]
    _guard(world, f"scatter of {what}", dist.scatter_object_list, out, values, 0)
    return out[0]


def barrier(world: World, what: str) -> None:
    """Wait until every rank gets here."""
    if world.active:
        _guard(world, what, dist.barrier)
