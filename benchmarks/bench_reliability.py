"""Split-half reliability of SDPG's mean ascent direction d_mu for a (trained) policy.

Two estimates of d_mu come from independent auxiliary noise on identical nominal rollouts (env
and normaliser state restored in between; nominal envs replay the mean, so their trajectory
repeats exactly). Their correlation over every (step, env, action) is the share of the
estimate's variance that is signal: 1 for a noiseless direction, 0 for pure noise. Measured for
each P in ``--ps``, with independent noise at every step, mirrored noise (``sdpg.antithetic``)
and one perturbed step per auxiliary (``sdpg.perturbation=one_step``, P rounded up to a
multiple of T), after ``--warmup`` rollouts of the checkpoint's policy (never updated).

Usage:
  python benchmarks/bench_reliability.py --checkpoint runs/X/checkpoints/latest.pt
  python benchmarks/bench_reliability.py --checkpoint C --ps 15 63 --pairs 16
  python benchmarks/bench_reliability.py --smoke --out /tmp/bench   # untrained reacher policy
Prints a table; writes <out>/reliability.json
(``reliability.<independent|mirrored|one_step>_p<P>``).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from typing import Any

import torch
from common import add_common_args, write_results

from sdpg_core import checkpoint
from sdpg_core.config import Config, from_dict, resolve, with_overrides
from sdpg_core.trainers.sdpg import SDPGTrainer

SMOKE_SETS = ["env.image_size=32", "sdpg.horizon=4", "sdpg.num_nominal=2"]
LEARNER_PARTS = ("actor", "critic", "target_critic", "normalizer")
LAYOUTS = ("independent", "mirrored", "one_step")


def layout(base: Config, name: str, perturbations: int) -> Config:
    """``base`` with P perturbations in layout ``name`` (one_step: P rounded up to k * T)."""
    if name == "one_step":
        perturbations = -(-perturbations // base.sdpg.horizon) * base.sdpg.horizon
    return with_overrides(
        base,
        [
            f"sdpg.num_perturbations={perturbations}",
            f"sdpg.antithetic={str(name == 'mirrored').lower()}",
            f"sdpg.perturbation={'one_step' if name == 'one_step' else 'every_step'}",
        ],
    )


def ascent_direction(trainer: SDPGTrainer) -> torch.Tensor:
    """d_mu [T, B, A] of the rollout held in the trainer's storage (the learner's own maths)."""
    learner, batch = trainer.learner, trainer.storage
    return learner.directions(batch, learner.returns(batch))[0]


def split_half(trainer: SDPGTrainer) -> tuple[torch.Tensor, torch.Tensor]:
    """Two d_mu estimates from one start state with independent noise."""
    env_state = copy.deepcopy(trainer.env.state_dict())
    normalizer = copy.deepcopy(trainer.learner.normalizer.state_dict())
    trainer.collect()
    first, nominal = ascent_direction(trainer), trainer.storage.actor_obs.main.clone()
    trainer.env.load_state_dict(env_state)
    trainer.learner.normalizer.load_state_dict(normalizer)
    trainer.collect()
    if not torch.equal(nominal, trainer.storage.actor_obs.main):
        raise RuntimeError("nominal rollouts differ after restoring the state")
    return first, ascent_direction(trainer)


def reliability(cfg: Config, state: dict[str, Any] | None, warmup: int, pairs: int) -> float:
    """Correlation of paired d_mu estimates over ``pairs`` rollouts after ``warmup`` ones."""
    trainer = SDPGTrainer(cfg, tempfile.mkdtemp(prefix="reliability-"))
    if state is not None:
        for name in LEARNER_PARTS:
            getattr(trainer.learner, name).load_state_dict(state[name])
    for _ in range(warmup):
        trainer.collect()
    halves = [split_half(trainer) for _ in range(pairs)]
    first = torch.cat([a.flatten() for a, _ in halves])
    second = torch.cat([b.flatten() for _, b in halves])
    return torch.corrcoef(torch.stack([first, second]))[0, 1].item()


def main() -> None:
    """Parse arguments, measure every (noise, P), print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--checkpoint", help="policy to probe (default: an untrained one)")
    parser.add_argument("--ps", type=int, nargs="+", default=[15, 31, 63])
    parser.add_argument("--warmup", type=int, default=5, help="rollouts before measuring")
    parser.add_argument("--pairs", type=int, default=8, help="split-half rollout pairs")
    args = parser.parse_args()
    if args.smoke:
        args.ps, args.warmup, args.pairs = [2, 3], 1, 2
    state = checkpoint.load(args.checkpoint) if args.checkpoint else None
    if state is not None:
        base = from_dict(state["config"], f"{args.checkpoint}: config")
    else:
        base = resolve(args.task, overrides=[*args.set, *(SMOKE_SETS if args.smoke else [])])
    figures: dict[str, Any] = {"task": base.env.task, "checkpoint": args.checkpoint}
    print(f"{'noise':<12} {'P':>3}  reliability")
    for name in LAYOUTS:
        for p in args.ps:
            cfg = layout(base, name, p)
            value = reliability(cfg, state, args.warmup, args.pairs)
            p = cfg.sdpg.num_perturbations
            figures[f"{name}_p{p}"] = round(value, 4)
            print(f"{name:<12} {p:>3}  {value:.3f}")
    print(f"wrote {write_results(args.out, 'reliability', figures)}")


if __name__ == "__main__":
    main()
