"""The training loop of one group, top to bottom, with callbacks for everything around it.

:func:`fit` snapshots, evaluates on schedule and updates until step T. Progress and
checkpoints are :class:`Callback` s: the tqdm bar (:class:`ProgressBar`), the events file the
report build follows (:class:`EventsFile`), a worker's reports to its parent's bar
(:class:`WorkerReport`); the per-run checkpoints are :class:`modarith.runtime.runner.Checkpointer`. Only the bar reads
the device from the host (its val_acc, every ``eval_every`` steps), and, in a group where a run
has a stopping rule (``RunConfig.stop_val_acc``), the stop check after each evaluation: a run
whose rule holds goes to ``Callback.on_stop`` (the runner stores it) and leaves the group.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modarith.runtime.events import writer as progress_writer
from modarith.runtime.group import GroupTrainer

Clock = Callable[[], float]  # the runs' wall time so far (s), a resume's earlier time included


class Callback:
    """Hooks of :func:`fit`; each does nothing unless overridden. ``on_start`` receives the
    clock of the runs' wall time; ``on_stop`` the runs (indices in the trainer) whose stopping
    rule holds at the evaluation just done, before they leave the group."""

    def on_start(self, trainer: GroupTrainer, clock: Clock) -> None: ...
    def on_eval(self, trainer: GroupTrainer) -> None: ...
    def on_stop(self, trainer: GroupTrainer, ks: list[int]) -> None: ...
    def before_update(self, trainer: GroupTrainer) -> None: ...
    def after_update(self, trainer: GroupTrainer) -> None: ...
    def on_end(self, trainer: GroupTrainer) -> None: ...


def describe(trainer: GroupTrainer) -> str:
    """A group's one-line name: ``gpt L=2 d=128 ×3``."""
    c0 = trainer.configs[0]
    return f"{c0.model} L={c0.num_layers} d={c0.d_model} ×{trainer.K}"


def fit(trainer: GroupTrainer, callbacks: list[Callback] = ()) -> float:
    """Train ``trainer`` from its current step to T; return the runs' wall time (s), counting
    the time before a resume (``trainer.elapsed_before``). A run whose stopping rule holds
    after an evaluation goes to the callbacks' ``on_stop`` and leaves the group
    (:meth:`GroupTrainer.drop`); the loop ends early when no run is left."""
    t0 = time.monotonic()

    def clock() -> float:
        return trainer.elapsed_before + time.monotonic() - t0

    for cb in callbacks:
        cb.on_start(trainer, clock)
    try:
        while True:
            trainer.snapshot()
            if trainer.evaluate_if_due():
                for cb in callbacks:
                    cb.on_eval(trainer)
                stopped = trainer.stop_due()
                if stopped:
                    for cb in callbacks:
                        cb.on_stop(trainer, stopped)
                    trainer.drop(stopped)
                    if trainer.K == 0:
                        break
            if trainer.step >= trainer.T:
                break
            for cb in callbacks:
                cb.before_update(trainer)
            trainer.update()
            for cb in callbacks:
                cb.after_update(trainer)
    finally:
        for cb in callbacks:
            cb.on_end(trainer)
    return clock()


class ProgressBar(Callback):
    """A tqdm bar over the group's steps, with the runs' mean val_acc."""

    def __init__(self, desc: str | None = None):
        self.desc = desc

    def on_start(self, trainer, clock):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.T, initial=trainer.step, desc=self.desc or describe(trainer),
                        mininterval=1.0, dynamic_ncols=True)
        self.every = trainer.configs[0].eval_every
        self.col = trainer.metric_names.index("val_acc")

    def on_eval(self, trainer):
        if trainer.step % self.every == 0 and trainer.step > 0:
            va = trainer.hist[:, trainer.n_evals_done - 1, self.col].mean().item()
            self.bar.set_postfix(val_acc=f"{va:.3f}", refresh=False)

    def after_update(self, trainer):
        self.bar.update(1)

    def on_end(self, trainer):
        self.bar.close()


class EventsFile(Callback):
    """Progress events for another process (``$MODARITH_PROGRESS``; nothing when unset)."""

    def on_start(self, trainer, clock):
        self.w = progress_writer(describe(trainer), trainer.K, trainer.T, trainer.step)

    def after_update(self, trainer):
        if self.w is not None:
            self.w.update(trainer.step)

    def on_end(self, trainer):
        if self.w is not None:
            self.w.close(trainer.step)


class WorkerReport(Callback):
    """Calls ``report(n)`` with the run-steps done since its last call, about once a second
    (a worker process feeding its parent's overall bar)."""

    def __init__(self, report: Callable[[int], None]):
        self.report = report

    def on_start(self, trainer, clock):
        self.pending, self.last = trainer.step * trainer.K, time.monotonic()  # resumed: count it

    def after_update(self, trainer):
        self.pending += trainer.K
        if time.monotonic() - self.last >= 1.0:
            self.on_end(trainer)

    def on_end(self, trainer):
        if self.pending:
            self.report(self.pending)
        self.pending, self.last = 0, time.monotonic()
