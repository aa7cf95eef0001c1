"""The runner: a list of run configs in, a list of records out.

:func:`train` loads what the store holds and trains the rest. Runs that share a
:func:`~modarith.group.group_key` train together as one vectorised group
(:class:`~modarith.group.GroupTrainer`, :func:`~modarith.loop.fit`). The groups run here one
after another, or over worker processes (``concurrent.futures``); each run's checkpoint is
its own (:mod:`modarith.checkpoint`), so any grouping or worker count resumes it.

Hops of one group: :func:`train` → :func:`_run_serial` (or a worker's :func:`_worker_run`)
→ :func:`_run_locked` (takes the runs' locks, loads what another process finished, reads each
run's checkpoint) → :func:`_fit_group` (restores, trains, stores each record, deletes the
checkpoints).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from modarith import checkpoint as ckpt
from modarith.config import RunConfig, run_id
from modarith.devices import (
    add_note,
    configure,
    cpu_cores,
    free_memory,
    is_out_of_memory,
    resolve_device,
)
from modarith.group import GroupTrainer, group_key
from modarith.loop import CHECKPOINT_INTERVAL_S, Checkpointer, EventsFile, ProgressBar, WorkerReport, fit
from modarith.metrics import summarize
from modarith.store import CorruptRecord, Record, Store, atomic_torch_save, snapshots_path
from modarith.version import code_version

# Below this much work, starting worker processes (an interpreter and torch each, seconds)
# costs more than the second core saves: ``default_workers`` keeps such work in-process.
# Work is counted in SPEC-equivalent run-steps (GPT/LSTM d = 128, L = 2, batch 480: about
# 0.1–0.3 s each on one CPU core), so 200 of them are ~30 s or more.
MIN_PARALLEL_WORK = 200.0


# ---------------------------------------------------------------------------------------------
# grouping and workers
# ---------------------------------------------------------------------------------------------
def group_configs(configs: list[RunConfig], max_group_size: int | None = None) -> list[list[RunConfig]]:
    """Partition configs into vectorised groups (order preserved, chunks of max_group_size)."""
    groups: dict[tuple, list[RunConfig]] = {}
    for c in configs:
        groups.setdefault(group_key(c), []).append(c)
    out = []
    for g in groups.values():
        n = max_group_size or len(g)
        out.extend(g[i:i + n] for i in range(0, len(g), n))
    return out


def spec_equivalent_run_steps(groups: list[list[RunConfig]]) -> float:
    """Training work of ``groups`` in run-steps of SPEC's default model (d² · L · batch rows)."""
    ref = 128**2 * 2 * 480
    return sum(c.total_steps * c.d_model**2 * c.num_layers * min(c.batch_size, c.n_train) / ref
               for g in groups for c in g)


def default_workers(device: str, groups: list[list[RunConfig]] | None = None) -> int:
    """Default worker count: ``MODARITH_WORKERS`` if set; else one per GPU on CUDA, one per
    core on the CPU (1 on MPS), and 1 when ``groups`` hold less work than
    ``MIN_PARALLEL_WORK`` (:func:`spec_equivalent_run_steps`)."""
    env = os.environ.get("MODARITH_WORKERS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"MODARITH_WORKERS = {env!r} is invalid: expected an integer >= 1")
        return int(env)
    if groups is not None and spec_equivalent_run_steps(groups) < MIN_PARALLEL_WORK:
        return 1
    if str(device).startswith("cuda"):
        return max(1, torch.cuda.device_count()) if device == "cuda" else 1
    return cpu_cores() if str(device) == "cpu" else 1


#: Rough seconds of one SPEC-equivalent run-step on one CPU core, per model (:func:`group_cost`):
#: the fresh-clone quick build of issue 29 trained LSTM × 5 at 17.7 and GPT × 4 at 13.0
#: run-steps/s per core (0.056 and 0.077 s); other models count as the mean.
SECONDS_PER_SPEC_STEP = {"gpt": 0.077, "lstm": 0.056}

#: :func:`split_groups` splits a group when a worker would otherwise idle longer than this at
#: the end while another finishes (a group of K gives the numbers of K singles).
SPLIT_IDLE_S = 180.0


def group_cost(group: list[RunConfig]) -> float:
    """Rough seconds of a group on one CPU core, for scheduling: its
    :func:`spec_equivalent_run_steps` × :data:`SECONDS_PER_SPEC_STEP` of its model."""
    rates = SECONDS_PER_SPEC_STEP
    return spec_equivalent_run_steps([group]) * rates.get(group[0].model, sum(rates.values()) / len(rates))


def _end_times(costs: list[float], n: int) -> list[float]:
    """When each of ``n`` workers ends when the costs go, in this order, each to the worker
    that frees first (the order the pool hands them out)."""
    free = [0.0] * max(1, n)
    for c in costs:
        free[free.index(min(free))] += c
    return free


def makespan(groups: list[list[RunConfig]], n: int, cost: Callable[[list[RunConfig]], float] = group_cost) -> float:
    """Cost of the slowest of ``n`` workers when the groups go, costliest first, each to the
    worker that frees first (the order the pool hands them out)."""
    return max(_end_times(sorted((cost(g) for g in groups), reverse=True), n))


def idle_at_end(groups: list[list[RunConfig]], n: int,
                cost: Callable[[list[RunConfig]], float] = group_cost) -> float:
    """How long the first worker to finish waits for the last (costliest first, as
    :func:`makespan`); a worker without a group waits the whole makespan."""
    ends = _end_times(sorted((cost(g) for g in groups), reverse=True), n)
    return max(ends) - min(ends)


def split_groups(groups: list[list[RunConfig]], n: int, cost: Callable[[list[RunConfig]], float] = group_cost,
                 idle_s: float = SPLIT_IDLE_S) -> list[list[RunConfig]]:
    """Split groups in halves so that ``n`` workers all have work and none idles at the end
    while another finishes a long group. While there are fewer groups than workers (and a
    group of several runs), or a worker would idle more than ``idle_s`` (in ``cost`` units:
    rough seconds) at the end, the costliest group whose halving shortens the
    :func:`makespan` is halved; it stops when none does. Returned costliest first, the order
    the engine submits them (a group of K gives the numbers of K singles)."""
    groups = sorted(([*g] for g in groups), key=cost, reverse=True)
    while True:
        short = len(groups) < n
        if not short and idle_at_end(groups, n, cost) <= idle_s:
            break
        span = makespan(groups, n, cost)
        for i in sorted((i for i, g in enumerate(groups) if len(g) > 1), key=lambda i: -cost(groups[i])):
            half = (len(groups[i]) + 1) // 2
            trial = groups[:i] + [groups[i][:half], groups[i][half:]] + groups[i + 1:]
            if short or makespan(trial, n, cost) < span * (1 - 1e-9):
                groups = sorted(trial, key=cost, reverse=True)
                break
        else:
            break
    return groups


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _check_train_args(results, force, progress, max_group_size, checkpoint_every,
                      checkpoint_interval_s, workers=None, deterministic=None, compile=None) -> None:
    if results is not None and (not isinstance(results, (str, os.PathLike)) or not str(results).strip()):
        raise ValueError(f"results = {results!r} is invalid: expected a folder path (str or Path) or None")
    for name, v in (("force", force), ("progress", progress)):
        if not isinstance(v, bool):
            raise ValueError(f"{name} = {v!r} is invalid: expected True or False")
    for name, v in (("max_group_size", max_group_size), ("checkpoint_every", checkpoint_every),
                    ("workers", workers)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} = {v!r} is invalid: expected None or an integer >= 1")
    if deterministic is not None and not isinstance(deterministic, bool):
        raise ValueError(f"deterministic = {deterministic!r} is invalid: expected None, True or False")
    if compile is not None and compile not in COMPILE_MODES:
        raise ValueError(f"compile = {compile!r} is invalid: expected None or one of {COMPILE_MODES}")
    v = checkpoint_interval_s
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
        raise ValueError(f"checkpoint_interval_s = {v!r} is invalid: expected a finite number of seconds > 0")


# ---------------------------------------------------------------------------------------------
# the public entry point
# ---------------------------------------------------------------------------------------------
def train(configs: list[RunConfig] | RunConfig, results: str | Path | None = "results",
          device: str = "auto", force: bool = False, progress: bool = True,
          max_group_size: int | None = None, checkpoint_every: int | None = None,
          checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
          workers: int | None = None, deterministic: bool | None = None,
          compile: str | None = None) -> list[Record]:
    """Train what is missing from the store, load the rest; return records in input order.

    ``results=None`` trains in memory without storing anything. With a store:

    - each run checkpoints to ``results/checkpoints/<run_id>.pt`` (every ``checkpoint_every``
      updates, else time-based, see :class:`~modarith.loop.Checkpointer`); a rerun resumes
      each run from its own checkpoint, in whatever group it lands (``force=True`` ignores
      stored records and checkpoints); a stored run's checkpoint is deleted;
    - a process holds ``results/locks/<run_id>.lock`` for each run it trains; another process
      wanting the same runs waits, then loads what the first one stored;
    - corrupt or foreign files are moved to ``results/corrupt/`` with a warning and retrained.

    ``workers``: worker processes the groups are spread over (``None``:
    :func:`default_workers`; 1: this process). Each worker runs whole groups with
    ``cores // workers`` threads (one GPU each on CUDA); groups are split so that every worker
    has work (a group of K gives the numbers of K single runs). ``deterministic``: bit-exact
    CUDA (see :mod:`modarith.devices`; None reads ``MODARITH_DETERMINISTIC``). ``compile``: a
    ``torch.compile`` mode for the forward and backward (``"reduce-overhead"``: CUDA graphs);
    a failed compilation warns and trains eagerly. On CUDA, ``MODARITH_WORKERS=N`` above the
    GPU count puts several workers (groups training at once) on each GPU.

    An out-of-memory error in a group splits it in halves and retries (with a warning).
    """
    # (over 60 lines: most of it is the docstring and argument checks; the flow is 15 lines)
    if isinstance(configs, RunConfig):
        configs = [configs]
    try:
        configs = list(configs)
    except TypeError:
        raise ValueError(f"configs must be a RunConfig or a list of them, got {type(configs).__name__}") from None
    bad = [c for c in configs if not isinstance(c, RunConfig)]
    if bad:
        raise ValueError(f"configs must be RunConfig instances, got {type(bad[0]).__name__}")
    _check_train_args(results, force, progress, max_group_size, checkpoint_every, checkpoint_interval_s,
                      workers, deterministic, compile)
    device = resolve_device(device)
    store = Store(results) if results is not None else None
    if store is not None:
        store.clean_tmp()
        ckpt.convert_group_checkpoints(store)
    found: dict[str, Record] = {}
    todo: dict[str, RunConfig] = {}
    for c in configs:
        rid = run_id(c)
        if rid in found or rid in todo:
            continue
        rec = None if (force or store is None) else store.get(c)
        if rec is not None:
            found[rid] = rec
            if store.checkpoint_path(rid).exists():  # stored by a process killed before its cleanup
                ckpt.discard(store, rid)
        else:
            todo[rid] = c
    # sorted by run id: group membership does not depend on input order
    groups = group_configs([todo[r] for r in sorted(todo)], max_group_size)
    n = workers if workers is not None else default_workers(device, groups)
    opts = dict(device=device, progress=progress, checkpoint_every=checkpoint_every,
                checkpoint_interval_s=checkpoint_interval_s, deterministic=deterministic, compile=compile)
    if n > 1 and groups:
        groups = split_groups(groups, n)
        n = min(n, len(groups))
    if n <= 1:
        found.update(_run_serial(groups, store, force, **opts))
    else:
        from modarith.workers import run_parallel

        found.update(run_parallel(groups, results, force, n, **opts))
    return [found[run_id(c)] for c in configs]


def _run_serial(groups: list[list[RunConfig]], store: Store | None, force: bool = False,
                **opts) -> dict[str, Record]:
    """Train (or load) groups one after another in this process; an out-of-memory error in a
    group splits it in halves and retries."""
    found: dict[str, Record] = {}
    queue = list(groups)
    device = opts.get("device", "cpu")
    while queue:
        group = queue.pop(0)
        try:
            found.update(_run_locked(group, store, force, **opts))
            continue
        except Exception as e:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(e):
                raise
            if len(group) == 1:
                add_note(e, f"modarith: a single run ({run_id(group[0])}) does not fit in {device} "
                         "memory; use a smaller model or batch, or device='cpu'")
                raise
        half = (len(group) + 1) // 2
        msg = (f"modarith: out of memory on {device} training a group of {len(group)} runs; "
               f"retrying as groups of {half} and {len(group) - half}")
        print(msg, file=sys.stderr, flush=True)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        free_memory(device)
        queue[:0] = [group[:half], group[half:]]
    return found


def _run_locked(group: list[RunConfig], store: Store | None, force: bool, **opts) -> dict[str, Record]:
    """One group under its runs' locks: runs another process stored meanwhile are loaded; the
    rest resume from their own checkpoints, as one group per checkpointed step."""
    if store is None:
        return {rec.run_id: rec for rec in _fit_group(group, None, [None] * len(group), **opts)}
    with store.lock([run_id(c) for c in group]):
        out, rest = {}, []
        for c in group:  # re-check under the lock: another process may have finished them
            rec = None if force else store.get(c)
            if rec is not None:
                out[rec.run_id] = rec
                ckpt.discard(store, rec.run_id)
            else:
                rest.append(c)
        states = [None if force else ckpt.load(store, run_id(c)) for c in rest]
        by_step: dict[int, list[int]] = {}
        for i, s in enumerate(states):
            by_step.setdefault(0 if s is None else s["step"], []).append(i)
        for step in sorted(by_step, reverse=True):  # the most advanced runs first
            idx = by_step[step]
            for rec in _fit_group([rest[i] for i in idx], store, [states[i] for i in idx], **opts):
                out[rec.run_id] = rec
        return out


def _fit_group(configs: list[RunConfig], store: Store | None, states: list[dict | None],
               device: str = "cpu", progress: bool = True, checkpoint_every: int | None = None,
               checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S, deterministic: bool | None = None,
               compile: str | None = None, on_progress: Callable[[int], None] | None = None) -> list[Record]:
    """Train one group of unfinished runs from ``states`` (their checkpoints at one step, or
    all None), store each record and weights, delete the checkpoints; return the records.
    A checkpoint that does not fit its run is moved to ``corrupt/`` and the group restarts."""
    configure(device, deterministic, configs[0].precision)
    trainer = GroupTrainer(configs, device)
    resumed_from = None
    if any(s is not None for s in states):
        try:
            ckpt.restore(trainer, states)
            resumed_from = trainer.step
        except CorruptRecord as e:
            for c in configs:
                store.quarantine(store.checkpoint_path(run_id(c)), f"checkpoint {e}")
            trainer = GroupTrainer(configs, device)
    if compile:
        trainer.compile(compile)
    callbacks = [EventsFile()]
    if progress:
        callbacks.append(ProgressBar())
    if on_progress is not None:
        callbacks.append(WorkerReport(on_progress))
    saver = Checkpointer(store, checkpoint_every, checkpoint_interval_s) if store is not None else None
    if saver is not None:
        callbacks.append(saver)
    wall = fit(trainer, callbacks)
    out = []
    for k, c in enumerate(configs):
        h = trainer.history(k)
        meta = {"version": code_version(), "torch": torch.__version__, "device": str(trainer.device),
                "wall_time_share_s": wall / trainer.K, "group_wall_time_s": wall, "group_size": trainer.K,
                "created": datetime.now(timezone.utc).isoformat(), "resumed_from_step": resumed_from,
                "checkpoint_s": sum(saver.seconds) / trainer.K if saver else 0.0}
        rec = Record(trainer.run_ids[k], c, h, summarize(h), meta)
        if store is not None:
            if trainer.snapshot_steps:  # written before the record, which marks the run done
                atomic_torch_save(trainer.run_snapshots(k), snapshots_path(store, rec.run_id))
            store.put(rec, trainer.state_dict(k))
            ckpt.discard(store, rec.run_id)
        out.append(rec)
    return out


def group_id(configs: list[RunConfig]) -> str:
    """Identity of a set of runs (their run ids, in order), e.g. to name a job."""
    return hashlib.sha256("|".join(run_id(c) for c in configs).encode()).hexdigest()[:20]

