"""Training progress events that another process can follow (the report build).

* When the environment variable :data:`ENV` (``MODARITH_PROGRESS``) names a file,
  :class:`modarith.runtime.loop.EventsFile` appends one JSON line per event to it (a group
  starts, its step every second or so, it ends): ``build_report.py`` sets it for the notebook
  kernels it starts and tails the file (:class:`ProgressTail`), and :class:`BuildProgress`
  shows the notebook, the group, the step and the ETA while the kernel trains.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

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


def format_seconds(seconds: float | None) -> str:
    """``"2 min 05 s"``, ``"1 h 02 min"``, ``"12 s"``; ``"unknown"`` for None or NaN."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{max(seconds, 0):.0f} s" if seconds >= 1 else f"{max(seconds, 0):.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


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
