"""The runner: groups of run configs in, stored records out, in this process.

:func:`run_groups` is the one path from groups to records; :func:`modarith.runtime.engine.train` calls
it in-process and each worker of :mod:`modarith.runtime.workers` calls it on its share. Hops of one
group: :func:`run_groups` (an out-of-memory error splits the group in halves) →
:func:`_run_locked` (takes the runs' locks, loads what another process finished, reads each
run's checkpoint) → :func:`_fit_group` (restores, trains with :func:`modarith.runtime.loop.fit`,
stores each record, deletes the checkpoints).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from modarith.core.metrics import summarize
from modarith.models.config import RunConfig, run_id
from modarith.runtime import checkpoint as ckpt
from modarith.runtime.devices import add_note, configure, free_memory, is_out_of_memory
from modarith.runtime.group import GroupTrainer
from modarith.runtime.loop import Callback, EventsFile, ProgressBar, WorkerReport, fit
from modarith.runtime.store import CorruptRecord, Record, Store, atomic_torch_save, snapshots_path
from modarith.version import code_version

# Time-based checkpoint cadence (s). Each save also pushes the next one to >= 50x its own
# duration, so checkpoints cost < 2 % of the run time whatever the model and disk. Measured
# (benchmarks/checkpoint_cost.py, 2-core CPU): GPT d=128 K=2, 9 MiB, 20 ms per save -> 0.03 %;
# GPT d=128 K=8, 37 MiB, 85 ms -> 0.14 %; LSTM d=128 K=8, 25 MiB, 130 ms -> 0.22 %.
CHECKPOINT_INTERVAL_S = 60.0
CHECKPOINT_COST_FACTOR = 50.0  # the next save waits >= this many times the last save's duration


class Checkpointer(Callback):
    """Saves every run's own state (:mod:`modarith.runtime.checkpoint`) before an update: every
    ``every`` updates, or (``every`` None) at the first ``eval_every`` multiple after
    ``max(interval_s, 50 × the last save's duration)`` seconds (under 2 % of the run time)."""

    def __init__(self, store, every: int | None = None, interval_s: float = CHECKPOINT_INTERVAL_S):
        self.store, self.every, self.base_interval = store, every, interval_s
        self.seconds: list[float] = []  # duration of each save (cost accounting)

    def on_start(self, trainer, clock):
        self.clock = clock
        self.interval, self.last = self.base_interval, time.monotonic()

    def before_update(self, trainer):
        step = trainer.step
        if step == 0:
            return
        if self.every is not None:
            due = step % self.every == 0
        else:
            due = step % trainer.configs[0].eval_every == 0 and time.monotonic() - self.last >= self.interval
        if due:
            t = time.monotonic()
            self.save(trainer, self.clock())
            self.last = time.monotonic()
            self.seconds.append(self.last - t)
            self.interval = max(self.base_interval, CHECKPOINT_COST_FACTOR * (self.last - t))

    def save(self, trainer, wall: float) -> list[Path]:
        """Write each run's state now (``wall``: the runs' wall time so far, s)."""
        return [ckpt.save(self.store, ckpt.run_state(trainer, k, wall)) for k in range(trainer.K)]


def run_groups(groups: list[list[RunConfig]], store: Store | None, force: bool = False,
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
    recorder = Recorder(store, saver, resumed_from)
    callbacks.append(recorder)
    wall = fit(trainer, callbacks)
    recorder.finish(trainer, list(range(trainer.K)), wall)
    by_id = {r.run_id: r for r in recorder.records}
    return [by_id[run_id(c)] for c in configs]


class Recorder(Callback):
    """Builds and stores each run's record, weights and snapshots when it ends: at its stop
    (``on_stop``: the meta says ``stopped_at_step`` and ``stop_reason``) or at T (:meth:`finish`)."""

    def __init__(self, store: Store | None, saver: Checkpointer | None, resumed_from: int | None):
        self.store, self.saver, self.resumed_from = store, saver, resumed_from
        self.records: list[Record] = []

    def on_start(self, trainer, clock):
        self.clock, self.group_size = clock, trainer.K

    def on_stop(self, trainer, ks):
        self.finish(trainer, ks, self.clock(), stopped=True)

    def finish(self, trainer, ks: list[int], wall: float, stopped: bool = False) -> None:
        """Store runs ``ks`` of ``trainer`` as they are now (``wall``: the group's time so far)."""
        for k in ks:
            c, h = trainer.configs[k], trainer.history(k)
            meta = {"version": code_version(), "torch": torch.__version__, "device": str(trainer.device),
                    "wall_time_share_s": wall / self.group_size, "group_wall_time_s": wall,
                    "group_size": self.group_size, "created": datetime.now(timezone.utc).isoformat(),
                    "resumed_from_step": self.resumed_from,
                    "checkpoint_s": sum(self.saver.seconds) / self.group_size if self.saver else 0.0,
                    "stopped_at_step": trainer.step if stopped else None,
                    "stop_reason": (f"val_acc >= {c.stop_val_acc} at {c.stop_window} consecutive evaluations"
                                    if stopped else None)}
            rec = Record(trainer.run_ids[k], c, h, summarize(h), meta)
            if self.store is not None:
                if trainer.snapshot_steps:  # written before the record, which marks the run done
                    atomic_torch_save(trainer.run_snapshots(k), snapshots_path(self.store, rec.run_id))
                self.store.put(rec, trainer.state_dict(k))
                ckpt.discard(self.store, rec.run_id)
            self.records.append(rec)
