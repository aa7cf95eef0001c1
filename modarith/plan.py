"""What :func:`modarith.engine.train` will do, timed on the device before anything trains.

:func:`plan` lists the vectorised groups still to train (runs in the store are skipped) and
times a few updates and one evaluation of each on the device, scaled to its T updates and
evaluations. A group that does not fit in device memory is timed as the halves the runner
would train (:func:`time_group`). :func:`plan_text` is the line a notebook prints.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from modarith.config import RunConfig
from modarith.devices import free_memory, is_out_of_memory, synchronize
from modarith.engine import default_workers, group_configs
from modarith.group import GroupTrainer
from modarith.store import Store


def _clock(device: str) -> float:
    """Wall clock after the device finished its queued work."""
    synchronize(device)
    return time.perf_counter()


def time_group(group: list[RunConfig], device: str, updates: int = 3) -> float:
    """Estimated training time (s) of ``group`` on ``device`` at this process's thread count:
    ``updates`` updates and one evaluation after a warm-up, scaled to its T updates and
    evaluations. Out of memory: the sum over its halves, as the runner would train them."""
    c0 = group[0]
    try:
        trainer = GroupTrainer(group, device)
        trainer.update()
        trainer.update()
        trainer.evaluate()  # warm-up
        t0 = _clock(device)
        for _ in range(updates):
            trainer.update()
        t1 = _clock(device)
        trainer.evaluate()
        t2 = _clock(device)
    except Exception as e:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
        if not is_out_of_memory(e) or len(group) == 1:
            raise
        del e
        free_memory(device)
        half = (len(group) + 1) // 2
        return time_group(group[:half], device, updates) + time_group(group[half:], device, updates)
    return (t1 - t0) / updates * c0.total_steps + (t2 - t1) * len(c0.eval_steps())


def plan(configs: list[RunConfig], results: str | Path | None = None, device: str = "cpu",
         force: bool = False, measure: bool = True) -> pd.DataFrame:
    """What :func:`modarith.engine.train` will do with ``configs``: one row per vectorised
    group still to train (runs already stored in ``results`` are skipped unless ``force``).

    Columns ``group, model, runs, steps, run_steps, eta_s``. With ``measure``, ``eta_s`` is
    :func:`time_group` on ``device`` (a rough estimate: the first seconds of a run are not
    its average); else NaN.
    """
    stored = set()
    if results is not None and Path(results).is_dir() and not force:
        store = Store(results)
        stored = {c for c in configs if store.record_path(c).exists()}
    rows = []
    for i, group in enumerate(group_configs([c for c in configs if c not in stored]), 1):
        c0 = group[0]
        eta = time_group(group, device) if measure else float("nan")
        rows.append({"group": i, "model": c0.model, "runs": len(group), "steps": c0.total_steps,
                     "run_steps": len(group) * c0.total_steps, "eta_s": eta})
    return pd.DataFrame(rows, columns=["group", "model", "runs", "steps", "run_steps", "eta_s"])


def plan_text(configs: list[RunConfig], results: str | Path | None = None, device: str = "cpu",
              force: bool = False) -> str:
    """The line a notebook prints before training: runs, vectorised groups, run-steps and
    the ETA on ``device`` (:func:`plan`)."""
    table = plan(configs, results, device, force)
    todo, serial = int(table["runs"].sum()), float(table["eta_s"].sum())
    workers = min(default_workers(device, group_configs(configs)), max(todo, 1))
    # groups one after another / spread over the workers (a lower bound: the longest group)
    eta = max(serial / workers, float(table["eta_s"].max()) / max(1, workers // len(table) or 1)) \
        if todo else 0.0
    when = (f"ETA ≈ {eta / 60:.1f} min on {device} with {workers} worker(s) (timed: a few steps "
            f"per group; {serial / 60:.1f} min one group after another)" if todo
            else "nothing to train: every run is stored")
    return (f"{len(configs)} runs ({sum(c.total_steps for c in configs):,} run-steps); to train: "
            f"{todo} runs in {len(table)} vectorised group(s), "
            f"{int(table['run_steps'].sum()):,} run-steps; {when}.")
