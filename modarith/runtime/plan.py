"""What :func:`modarith.runtime.engine.train` will do, timed on the device before anything trains.

:func:`plan` lists the vectorised groups still to train (runs in the store are skipped),
split over the workers as the engine splits them (:func:`modarith.runtime.engine.split_groups`), and
times a few updates and one evaluation of each on the device at the thread count each worker
will have (:func:`time_group`, :func:`worker_threads`), scaled to its T updates and
evaluations and by the slowdown of workers sharing the machine (:func:`contention`). A group
that does not fit in device memory is timed as the halves the runner would train.
:func:`schedule` then hands the groups, longest first, to the worker that frees first (as the
engine's pool does), which gives the wall time and each worker's timeline; :func:`plan_text`
is the line a notebook prints. :func:`read_timeline` reads the timeline the engine's workers
logged (``results/timeline.jsonl``, :mod:`modarith.runtime.workers`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch

from modarith.models.config import RunConfig
from modarith.runtime.devices import cpu_cores, free_memory, is_out_of_memory, synchronize
from modarith.runtime.engine import engine_groups
from modarith.runtime.events import format_seconds
from modarith.runtime.group import GroupTrainer
from modarith.runtime.store import Store

#: Per-step slowdown of a CPU worker when another training worker runs beside it on the
#: other core (shared caches and memory bandwidth), against one beside an idle core: measured
#: with ``benchmarks/concurrency.py`` (a busy loop beside the "alone" timing so that time
#: slicing by other load cancels; ``benchmarks/NOTES.md``, "An ETA that holds"). ``MODARITH_CONTENTION``
#: overrides it.
CPU_CONTENTION = 1.0

#: Seconds to execute one notebook whose runs are stored (load, analyse, plot) when no
#: earlier build into the same folder timed it: a fresh-clone quick build on the 2-core CPU spent
#: ≈ 100 s after its training on 10 notebooks over 2 kernels plus the HTML.
NOTEBOOK_SECONDS = 20.0


def contention(device: str, workers: int) -> float:
    """Factor on each group's time when ``workers`` workers train at once on ``device``: on the
    CPU :data:`CPU_CONTENTION` (``MODARITH_CONTENTION`` overrides it) for 2 or more workers;
    elsewhere 1 (several workers on one GPU are timed as they share it: not modelled)."""
    if workers < 2 or not str(device).startswith("cpu"):
        return 1.0
    env = os.environ.get("MODARITH_CONTENTION")
    if env:
        try:
            value = float(env)
        except ValueError:
            value = -1.0
        if not value >= 1.0:
            raise ValueError(f"MODARITH_CONTENTION = {env!r} is invalid: expected a number >= 1")
        return value
    return CPU_CONTENTION


def worker_threads(device: str, workers: int) -> int:
    """Threads each worker trains with (as :func:`modarith.runtime.workers.run_parallel` sets them):
    the cores shared out on the CPU, else 1; in this process (one worker) torch's count."""
    if workers <= 1:
        return torch.get_num_threads()
    return max(1, cpu_cores() // workers) if str(device).startswith("cpu") else 1


@contextmanager
def worker_threads_set(n: int):
    """Within the block, torch uses ``n`` threads in this process (to time as a worker)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def schedule(seconds: Sequence[float], workers: int) -> list[dict]:
    """The engine's pool in time: tasks taken in the given order (the engine submits its groups
    longest first), each by the worker that frees first (the lowest index on a tie). Returns one
    row per task: ``task`` (index into ``seconds``), ``worker``, ``start_s``, ``end_s``."""
    free = [0.0] * max(1, workers)
    rows = []
    for i, s in enumerate(seconds):
        w = free.index(min(free))
        rows.append({"task": i, "worker": w, "start_s": free[w], "end_s": free[w] + float(s)})
        free[w] += float(s)
    return rows


def makespan_s(rows: list[dict]) -> float:
    """Wall time of a :func:`schedule`: when its last worker ends."""
    return max((r["end_s"] for r in rows), default=0.0)


def timeline_text(rows: list[dict], labels: Sequence[str] | None = None) -> str:
    """A schedule or a logged timeline as lines: per worker, its groups with start–end
    (minutes from the first start) and the idle time at the end."""

    if not rows:
        return "no groups trained in worker processes"
    span = makespan_s(rows)
    lines = []
    for w in sorted({r["worker"] for r in rows}):
        mine = sorted((r for r in rows if r["worker"] == w), key=lambda r: r["start_s"])
        parts = [f"{labels[r['task']] if labels else r.get('label', r['task'])} "
                 f"{r['start_s'] / 60:.1f}–{r['end_s'] / 60:.1f}" for r in mine]
        idle = span - mine[-1]["end_s"]
        lines.append(f"  worker {w}: " + ", ".join(parts) + f" min; idle at the end {format_seconds(idle)}")
    return "\n".join(lines)


def read_timeline(results: str | Path) -> list[dict]:
    """The per-worker timeline of the last :func:`modarith.runtime.engine.train` call that trained over
    worker processes into ``results`` (``timeline.jsonl``: one line per group a worker ran):
    rows ``worker, label, runs, start_s, end_s`` (seconds from that call's start)."""
    path = Path(results) / "timeline.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return []
    last = lines[-1]["call"]
    return [{"worker": r["worker"], "label": r["label"], "runs": r["runs"], "task": r["label"],
             "start_s": r["start"] - last, "end_s": r["end"] - last} for r in lines if r["call"] == last]


def _clock(device: str) -> float:
    """Wall clock after the device finished its queued work."""
    synchronize(device)
    return time.perf_counter()


def time_group(group: list[RunConfig], device: str, updates: int = 3) -> float:
    """Estimated training time (s) of ``group`` on ``device`` at this process's thread count:
    building its trainer, then ``updates`` updates and one evaluation after a warm-up, scaled
    to its T updates and evaluations. Out of memory: the sum over its halves, as the runner would train them."""
    c0 = group[0]
    try:
        t_build = _clock(device)
        trainer = GroupTrainer(group, device)
        t_build = _clock(device) - t_build
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
    return t_build + (t1 - t0) / updates * c0.total_steps + (t2 - t1) * len(c0.eval_steps())


def time_groups(groups: list[list[RunConfig]], device: str, workers: int,
                timer: Callable[[list[RunConfig]], float] | None = None) -> list[float]:
    """Each group's expected wall time when ``workers`` train at once: ``timer`` (default
    :func:`time_group` at :func:`worker_threads`) × :func:`contention`."""
    if timer is None:
        def timer(g):
            with worker_threads_set(worker_threads(device, workers)):
                return time_group(g, device)
    factor = contention(device, min(workers, len(groups)))
    return [timer(g) * factor for g in groups]


def plan(configs: list[RunConfig], results: str | Path | None = None, device: str = "cpu",
         force: bool = False, measure: bool = True, workers: int | None = None,
         timer: Callable[[list[RunConfig]], float] | None = None) -> pd.DataFrame:
    """What :func:`modarith.runtime.engine.train` will do with ``configs``: one row per group still to
    train (runs already stored in ``results`` are skipped unless ``force``), as the engine
    groups and splits them over its workers, in the order it hands them out.

    Columns ``group, model, runs, steps, run_steps, eta_s, worker, start_s, end_s``. With
    ``measure``, ``eta_s`` is :func:`time_groups` on ``device`` (``timer`` replaces the
    timing, e.g. in tests) and ``worker/start_s/end_s`` are the :func:`schedule`; else NaN.
    """
    stored = set()
    if results is not None and Path(results).is_dir() and not force:
        store = Store(results)
        stored = {c for c in configs if store.record_path(c).exists()}
    groups, n = engine_groups([c for c in dict.fromkeys(configs) if c not in stored], device, workers)
    nan = float("nan")
    seconds = time_groups(groups, device, n, timer) if measure else [nan] * len(groups)
    slots = schedule(seconds, n) if measure else [{"worker": -1, "start_s": nan, "end_s": nan}] * len(groups)
    rows = []
    for i, (group, eta, slot) in enumerate(zip(groups, seconds, slots), 1):
        c0 = group[0]
        rows.append({"group": i, "model": c0.model, "runs": len(group), "steps": c0.total_steps,
                     "run_steps": len(group) * c0.total_steps, "eta_s": eta,
                     "worker": slot["worker"], "start_s": slot["start_s"], "end_s": slot["end_s"]})
    table = pd.DataFrame(rows, columns=["group", "model", "runs", "steps", "run_steps", "eta_s",
                                        "worker", "start_s", "end_s"])
    table.attrs["workers"] = n
    return table


def plan_text(configs: list[RunConfig], results: str | Path | None = None, device: str = "cpu",
              force: bool = False, timer: Callable[[list[RunConfig]], float] | None = None) -> str:
    """The line a notebook prints before training: runs, vectorised groups, run-steps and
    the ETA on ``device``: the :func:`plan`'s schedule over the engine's workers."""
    table = plan(configs, results, device, force, timer=timer)
    todo, serial = int(table["runs"].sum()), float(table["eta_s"].sum())
    workers = table.attrs["workers"]
    eta = float(table["end_s"].max()) if todo else 0.0
    when = (f"ETA ≈ {eta / 60:.1f} min on {device} with {workers} worker(s) (each group timed for a "
            f"few steps at the worker's threads; {serial / 60:.1f} min one group after another)" if todo
            else "nothing to train: every run is stored")
    return (f"{len(configs)} runs ({sum(c.total_steps for c in configs):,} run-steps); to train: "
            f"{todo} runs in {len(table)} vectorised group(s), "
            f"{int(table['run_steps'].sum()):,} run-steps; {when}.")
