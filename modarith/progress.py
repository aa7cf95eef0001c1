"""Training plans and progress that another process can follow (the report build).

* :func:`make_plan` says, before anything trains, which runs of a list of configs are already
  stored and which will train, in how many vectorised groups, how many run-steps, and how
  long that should take on a device (each group's update and evaluation timed for a few steps).
* When the environment variable :data:`ENV` (``MODARITH_PROGRESS``) names a file,
  :func:`modarith.engine.GroupTrainer.run` appends one JSON line per event to it (a group
  starts, its step every second or so, it ends): ``build_report.py`` sets it for the notebook
  kernels it starts and tails the file (:class:`ProgressTail`), and :class:`BuildProgress`
  shows the notebook, the group, the step and the ETA while the kernel trains.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from modarith.config import RunConfig, run_id

ENV = "MODARITH_PROGRESS"  # file the engine appends progress events to (unset: no events)
WRITE_EVERY_S = 1.0  # seconds between two "step" events of one group


# ----------------------------------------------------------------------------- events (engine)
class ProgressWriter:
    """Appends a group's progress events (JSON lines) to the file named by ``$MODARITH_PROGRESS``.

    One ``write`` per line on a file opened in append mode, so the lines of several processes
    (parallel workers) do not interleave within a line.
    """

    def __init__(self, path: str, desc: str, runs: int, total: int, step: int):
        self.path, self.desc, self.runs, self.total = path, desc, runs, total
        self._last = 0.0
        self._emit("group", step)

    def _emit(self, event: str, step: int) -> None:
        line = json.dumps({"event": event, "pid": os.getpid(), "desc": self.desc, "runs": self.runs,
                           "total": self.total, "step": int(step), "t": time.time()})
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:  # progress is informative: never let it stop training
            pass
        self._last = time.monotonic()

    def update(self, step: int) -> None:
        """Record the current step (written at most every :data:`WRITE_EVERY_S` seconds)."""
        if time.monotonic() - self._last >= WRITE_EVERY_S:
            self._emit("step", step)

    def close(self, step: int) -> None:
        """Record the group's end (``step`` = the last step reached)."""
        self._emit("end", step)


def writer(desc: str, runs: int, total: int, step: int = 0) -> ProgressWriter | None:
    """A :class:`ProgressWriter` when ``$MODARITH_PROGRESS`` is set, else None."""
    path = os.environ.get(ENV)
    return ProgressWriter(path, desc, runs, total, step) if path else None


class ProgressTail:
    """Reads the events appended to a progress file since the last call (see :class:`ProgressWriter`)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0
        self._partial = ""

    def read(self) -> list[dict]:
        """New complete events (a line still being written is kept for the next call)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events


# ----------------------------------------------------------------------------- plans
@dataclass
class Plan:
    """What training a list of configs will do (see :func:`make_plan`)."""

    runs: int  # distinct runs asked for
    stored: int  # of them, already in the store (loaded, not trained)
    earlier: int  # of them, trained or loaded earlier in the same build (``exclude``)
    groups: list[list[RunConfig]] = field(default_factory=list)  # vectorised groups to train
    group_seconds: list[float | None] = field(default_factory=list)  # estimate per group (None: unknown)

    @property
    def to_train(self) -> int:
        """Runs that will train."""
        return sum(len(g) for g in self.groups)

    @property
    def run_steps(self) -> int:
        """Σ T over the runs that will train."""
        return sum(c.total_steps for g in self.groups for c in g)

    @property
    def seconds(self) -> float | None:
        """Estimated training time (None when a group could not be timed)."""
        if any(s is None for s in self.group_seconds):
            return None
        return float(sum(self.group_seconds))

    def describe(self) -> str:
        """One line: runs to train / to load, groups, run-steps and the estimated time."""
        if self.runs == 0:
            return "no training"
        loaded = self.stored + self.earlier
        text = f"{self.runs} run{'s' * (self.runs != 1)}: {self.to_train} to train"
        if self.groups:
            text += f" in {len(self.groups)} group{'s' * (len(self.groups) > 1)} ({self.run_steps:,} run-steps)"
        text += f", {loaded} to load"
        if self.earlier:
            text += f" ({self.earlier} shared with an earlier notebook)"
        if self.groups:
            text += f"; estimated {format_seconds(self.seconds)}"
        return text


def format_seconds(seconds: float | None) -> str:
    """``"2 min 05 s"``, ``"1 h 02 min"``, ``"12 s"``; ``"unknown"`` for None."""
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{max(seconds, 0):.0f} s" if seconds >= 1 else f"{max(seconds, 0):.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def time_group(group: list[RunConfig], device: str = "cpu", updates: int = 2) -> float:
    """Estimated seconds to train ``group`` on ``device``: one evaluation and ``updates``
    updates are timed (after one warm-up update) and scaled to the group's steps and evaluations."""
    import torch

    from modarith.engine import GroupTrainer

    def sync():
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    trainer = GroupTrainer(group, device)
    trainer.update()  # warm-up (allocations, kernels)
    sync()
    t0 = time.perf_counter()
    for _ in range(updates):
        trainer.update()
    sync()
    t_update = (time.perf_counter() - t0) / updates
    t0 = time.perf_counter()
    trainer.evaluate()
    sync()
    t_eval = time.perf_counter() - t0
    return trainer.T * t_update + len(trainer.eval_steps) * t_eval


def make_plan(configs: list[RunConfig], results: str | Path | None, device: str = "cpu",
              force: bool = False, exclude: set[str] | None = None, measure: bool = True) -> Plan:
    """The plan of ``train(configs, results, device, force)``, without training.

    A run counts as stored when its record file exists in ``results`` (unless ``force``);
    run ids in ``exclude`` (trained or loaded earlier in the same build) count as ``earlier``. With
    ``measure``, every group to train is timed on ``device`` (:func:`time_group`).
    """
    from modarith.engine import group_configs
    from modarith.store import Store

    distinct = {run_id(c): c for c in configs}
    exclude = exclude or set()
    store = Store(results) if results is not None else None
    stored = earlier = 0
    todo = []
    for rid, c in sorted(distinct.items()):
        if rid in exclude:
            earlier += 1
        elif store is not None and not force and store.record_path(c).exists():
            stored += 1
        else:
            todo.append(c)
    groups = group_configs(todo)
    seconds: list[float | None] = []
    for g in groups:
        try:
            seconds.append(time_group(g, device) if measure else None)
        except Exception:  # noqa: BLE001 - an estimate that fails must not stop the build
            seconds.append(None)
    return Plan(len(distinct), stored, earlier, groups, seconds)


# ----------------------------------------------------------------------------- display (build)
PLAIN_EVERY_S = 15.0  # seconds between two plain progress lines of one group (not a TTY)


class BuildProgress:
    """Shows what a notebook's kernel trains, from the events it appends to a progress file
    (:class:`ProgressWriter`): on a TTY one tqdm line per group that updates in place (step,
    rate, ETA); otherwise plain lines (group start, every :data:`PLAIN_EVERY_S` seconds with
    the ETA, group end), as CI logs want them. :meth:`poll` runs in a thread while papermill
    executes the notebook."""

    def __init__(self, path: Path, prefix: str, planned_groups: int | None, tty: bool,
                 stream=None, plain_every_s: float = PLAIN_EVERY_S):
        self.tail = ProgressTail(path)
        self.prefix, self.planned, self.tty = prefix, planned_groups, tty
        self.stream = stream or sys.stdout
        self.plain_every_s = plain_every_s
        self.started = 0  # groups seen
        self.active: dict[tuple, dict] = {}  # (pid, desc) -> state of a running group

    def _label(self, number: int, event: dict) -> str:
        of = f"/{self.planned}" if self.planned and number <= self.planned else ""
        runs = event["runs"]
        return f"{self.prefix} group {number}{of} {event['desc']} ({runs} run{'s' * (runs != 1)})"

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def poll(self) -> None:
        """Display the events appended since the last call."""
        for event in self.tail.read():
            key = (event.get("pid"), event.get("desc"))
            kind, step, total = event.get("event"), int(event.get("step", 0)), int(event.get("total", 0))
            if kind == "group":
                self.started += 1
                state = {"label": self._label(self.started, event), "t0": event["t"], "s0": step,
                         "last": time.monotonic(), "bar": None}
                self.active[key] = state
                if self.tty:
                    from tqdm import tqdm

                    state["bar"] = tqdm(total=total, initial=step, desc=state["label"], leave=False,
                                        file=self.stream, dynamic_ncols=True, unit="step",
                                        position=len(self.active) - 1)
                else:
                    self._say(f"{state['label']}: step {step}/{total} …")
                continue
            state = self.active.get(key)
            if state is None:
                continue
            elapsed = max(event["t"] - state["t0"], 1e-9)
            rate = (step - state["s0"]) / elapsed
            if kind == "step":
                if state["bar"] is not None:
                    state["bar"].n = step
                    state["bar"].refresh()
                elif time.monotonic() - state["last"] >= self.plain_every_s:
                    state["last"] = time.monotonic()
                    eta = (total - step) / rate if rate > 0 else None
                    self._say(f"{state['label']}: step {step}/{total} ({100 * step / max(total, 1):.0f} %), "
                              f"{rate:.1f} steps/s, ETA {format_seconds(eta)}")
            elif kind == "end":
                self.active.pop(key)
                if state["bar"] is not None:
                    state["bar"].n = step
                    state["bar"].refresh()
                    state["bar"].close()
                else:
                    self._say(f"{state['label']}: done, step {step}/{total} in {format_seconds(elapsed)}")

    def close(self) -> None:
        """Display what is left and close the bars of groups that did not end (a failed cell)."""
        self.poll()
        for state in self.active.values():
            if state["bar"] is not None:
                state["bar"].close()
        self.active.clear()
