"""Run-steps per second of one worker (one thread) against the vectorised group size K, on the CPU.

Why: the engine groups every run of one shape; on a CPU a large group's activations leave the
caches, so K runs in one group can train slower per run than K/2 in each of two groups.
Usage: ``python -m benchmarks.group_size [--sizes 1,3,6,9,18,27] [--steps 150] [--d-model 64]``.
Each size trains ``K`` fresh runs of the ``50_beyond`` quick base (LSTM L 2, p 31, full batch)
in memory for ``--steps`` updates after a 20-update warm-up and prints run-steps/s.
"""

from __future__ import annotations

import argparse
import time

import torch

from modarith.models.config import RunConfig
from modarith.runtime.group import GroupTrainer
from modarith.study import protocol


def rate(k: int, steps: int, **over) -> float:
    base = {**protocol.beyond_knobs("quick").base, "lr": 1.2e-2, "weight_decay": 0.5, **over}
    trainer = GroupTrainer([RunConfig(**{**base, "seed": 1000 + s}) for s in range(k)], device="cpu")
    for _ in range(20):
        trainer.update()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.update()
    return k * steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,3,6,9,18,27")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--model", default="lstm")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for k in (int(s) for s in args.sizes.split(",")):
        print(f"{args.model} d {args.d_model} K {k:3d}: {rate(k, args.steps, model=args.model, d_model=args.d_model):7.1f} "
              "run-steps/s (1 thread)", flush=True)


if __name__ == "__main__":
    main()
