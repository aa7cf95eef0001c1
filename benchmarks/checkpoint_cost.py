"""Cost of one mid-run checkpoint vs. the training time between two checkpoints.

    python benchmarks/checkpoint_cost.py [--model gpt] [--k 2] [--d 128] [--steps 30]

Prints the size and duration of one checkpoint of every run of the group
(``runner.Checkpointer.save``: per-run states, serialise + fsync + rename)
and the time per update, hence the share of run time spent checkpointing at the default
cadence (runner.CHECKPOINT_INTERVAL_S, pushed to >= 50x the save duration).
"""

import argparse
import tempfile
import time

from modarith.models.config import RunConfig
from modarith.runtime.group import GroupTrainer
from modarith.runtime.runner import CHECKPOINT_INTERVAL_S, Checkpointer
from modarith.runtime.store import Store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    configs = [RunConfig(model=a.model, d_model=a.d, seed=s) for s in range(a.k)]
    g = GroupTrainer(configs, a.device)
    g.update()
    t = time.perf_counter()
    for _ in range(a.steps):
        g.update()
    g.evaluate()
    g.flat.sum().item()
    per_step = (time.perf_counter() - t) / a.steps
    with tempfile.TemporaryDirectory(dir=".") as d:
        saver = Checkpointer(Store(d))
        times = []
        for _ in range(5):
            t = time.perf_counter()
            paths = saver.save(g, 0.0)  # the saved wall time is not measured here
            times.append(time.perf_counter() - t)
        size = sum(p.stat().st_size for p in paths)
    save = sorted(times)[len(times) // 2]
    interval = max(CHECKPOINT_INTERVAL_S, 50 * save)
    print(f"{a.model} d={a.d} K={a.k} on {a.device}: state {size / 2**20:.1f} MiB, save {save * 1e3:.0f} ms "
          f"(median of 5), update {per_step * 1e3:.0f} ms/step")
    print(f"default cadence: every {interval:.0f} s (~{interval / per_step:.0f} steps) -> "
          f"checkpoint cost {100 * save / (interval + save):.2f} % of run time")


if __name__ == "__main__":
    main()
