"""How much slower a group trains when another worker trains beside it (CPU, one thread each).

    python benchmarks/concurrency.py [--updates 10] [--rounds 2] [--groups lstm5,gpt4]

Times the quick profile's two largest groups (LSTM × 5 and GPT × 4 at SPEC's model, full
batch) with :func:`modarith.runtime.plan.time_group` on one thread: alone (one process), then two
processes at once (one per group), in alternating rounds so that load from other processes
hits both alike. With ``--spinner`` (the default) each "alone" round runs a busy loop beside
the timed process (a Python ``while`` loop: it takes a core's time slices but neither caches
nor memory bandwidth), so on a machine with other load both conditions compete for the cores
the same way and the ratio isolates what a second *training* worker costs. Prints per group the seconds per update alone and paired and their ratio,
the slowdown factor :data:`modarith.runtime.plan.CPU_CONTENTION` holds (``benchmarks/NOTES.md``).
Read the ratios, and note ``uptime``: a machine busy with other work inflates them (time
slicing adds to the contention of shared caches and memory bandwidth).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _groups() -> dict:
    from modarith.models.config import RunConfig

    base = dict(p=31, d_model=128, num_layers=2, batch_size=512, steps=10_001)
    return {"lstm5": [RunConfig(model="lstm", seed=s, **base) for s in range(5)],
            "gpt4": [RunConfig(model="gpt", seed=s, **base) for s in range(4)]}


def _time(name: str, updates: int, queue=None) -> float:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from modarith.runtime.plan import time_group

    group = _groups()[name]
    seconds = time_group(group, "cpu", updates=updates) / group[0].total_steps  # per update (+ evals)
    if queue is not None:
        queue.put((name, seconds))
    return seconds


def _spin() -> None:
    while True:
        pass


def measure(names: list[str], updates: int, rounds: int, spinner: bool = True) -> dict:
    ctx = mp.get_context("spawn")
    alone = {n: [] for n in names}
    paired = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:  # alone: one child at a time (beside a busy loop)
            spin = ctx.Process(target=_spin, daemon=True) if spinner else None
            if spin is not None:
                spin.start()
            q = ctx.Queue()
            p = ctx.Process(target=_time, args=(n, updates, q))
            p.start()
            alone[n].append(q.get()[1])
            p.join()
            if spin is not None:
                spin.terminate()
                spin.join()
        q = ctx.Queue()  # paired: all children at once
        procs = [ctx.Process(target=_time, args=(n, updates, q)) for n in names]
        for p in procs:
            p.start()
        for _ in procs:
            n, s = q.get()
            paired[n].append(s)
        for p in procs:
            p.join()
    out = {"load": os.getloadavg(), "updates": updates, "rounds": rounds, "spinner": spinner}
    for n in names:
        a, b = statistics.median(alone[n]), statistics.median(paired[n])
        out[n] = {"alone_s_per_step": a, "paired_s_per_step": b, "ratio": b / a}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--groups", default="lstm5,gpt4")
    ap.add_argument("--no-spinner", action="store_true", help="time 'alone' without the busy loop beside it")
    args = ap.parse_args(argv)
    out = measure(args.groups.split(","), args.updates, args.rounds, not args.no_spinner)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
