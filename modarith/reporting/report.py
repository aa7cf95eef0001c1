"""The report build: plan, training, execution, then the page (``python build_report.py``).

:func:`main` prints which profile runs on which device and the build's plan (per notebook:
its runs, those still to train and their estimated time), trains the union of every chosen
notebook's runs first, as one :func:`modarith.runtime.engine.train` call (so the engine spreads all
groups over the workers, longest first, instead of idling at each notebook's tail), then
executes the notebooks of ``notebooks/`` (:func:`modarith.reporting.experiments.execute`), which load
their runs and plot, and writes ``build/report.html`` (:mod:`modarith.reporting.export`) and, where
Chromium exists, ``build/report.pdf``. The notebooks are the rows of
:data:`modarith.study.protocol.EXPERIMENTS`; their runs are :func:`modarith.study.protocol.configs`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from modarith.models.config import run_id
from modarith.reporting import export
from modarith.reporting.experiments import PACKAGE_ROOT, execute_many, notebook_parameters, showing_progress
from modarith.reporting.export import NotebookRun
from modarith.reporting.notebook import figures_for
from modarith.runtime.devices import DEVICES, cpu_cores, resolve_device
from modarith.runtime.engine import engine_groups, train
from modarith.runtime.events import format_seconds
from modarith.runtime.plan import (
    NOTEBOOK_SECONDS,
    makespan_s,
    read_timeline,
    schedule,
    time_group,
    time_groups,
    timeline_text,
    worker_threads,
    worker_threads_set,
)
from modarith.runtime.store import Store
from modarith.runtime.workers import group_label
from modarith.study import protocol
from modarith.study.protocol import EXPERIMENTS, PROFILE_CHOICES

#: What ``--svg`` sets for the notebooks' kernels (:func:`modarith.plotting.output.figure_formats`).
FIGURE_FORMATS_ENV = "MODARITH_FIGURE_FORMATS"


def select_notebooks(only: str | None) -> list[str]:
    """Rows of :data:`~modarith.study.protocol.EXPERIMENTS` chosen by ``--only``
    (:func:`modarith.study.protocol.select`)."""
    return protocol.select(only)


def notebook_file(name: str) -> str:
    """The notebook file of an experiment row (``notebooks/<stem>.ipynb``)."""
    return f"{EXPERIMENTS[name].notebook}.ipynb"


def describe_profile(profile: str, device: str, requested_profile: str = "auto",
                     requested_device: str = "auto") -> str:
    """The line that says which profile runs on which device (first line of a build)."""
    how_p = " (auto: full on CUDA, quick otherwise)" if requested_profile == "auto" else ""
    how_d = " (auto)" if requested_device == "auto" else ""
    if profile == "full":
        note = "the seed's protocol"
    elif profile == "quick":
        note = ("a REDUCED protocol (SPEC's dynamics and the seed's model on fewer grid points and seeds, "
                "two horizons shortened; the report's title page lists every reduction)")
    else:
        note = "a REDUCED smoke protocol for CI (seconds per experiment; numbers are not meaningful)"
    return f"profile {profile}{how_p} on device {device}{how_d}: {note}"


def resolve(profile: str = "auto", device: str = "auto") -> tuple[str, str]:
    """Validate ``profile``/``device`` and resolve ``auto`` (device first, then profile)."""
    protocol.check_choice("profile", profile, PROFILE_CHOICES)
    protocol.check_choice("device", device, DEVICES)

    try:
        resolved_device = str(resolve_device(device)).split(":")[0]
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"device = {device!r} cannot be used here: {error}") from error
    return protocol.resolve_profile(profile, resolved_device), resolved_device


# ----------------------------------------------------------------------------- the plan
@dataclass
class NotebookPlan:
    """What one notebook's runs need (:func:`build_plan`)."""

    name: str  # row of EXPERIMENTS
    runs: int  # distinct runs of the notebook
    run_steps: int  # Σ T over them
    earlier: int  # of them, listed by an earlier notebook of the build (counted there)
    to_train: int  # of the others, not stored: trained by the build before the notebook runs
    train_steps: int  # Σ T over those
    seconds: float  # their share of the estimated training time (NaN: not timed)

    def describe(self) -> str:
        """One line: runs (run-steps, as the notebook's own plan line counts them), to train,
        stored, shared."""
        if self.runs == 0:
            return "no protocol runs"
        text = f"{self.runs} run{'s' * (self.runs != 1)} ({self.run_steps:,} run-steps): "
        if self.to_train:
            text += (f"{self.to_train} to train ({self.train_steps:,} run-steps, "
                     f"≈ {format_seconds(self.seconds)}), ")
        text += f"{self.runs - self.earlier - self.to_train} stored"
        if self.earlier:
            text += f", {self.earlier} shared with an earlier notebook"
        return text


@dataclass
class BuildPlan:
    """The runs the build trains before executing the notebooks, each notebook's share, and
    the build's expected wall time: the training's schedule over the workers
    (:func:`modarith.runtime.plan.schedule`), then the notebooks' execution over the jobs."""

    notebooks: list[NotebookPlan]
    distinct: int  # distinct runs of all chosen notebooks
    todo: list = field(default_factory=list)  # RunConfigs to train (not stored), run-id order
    groups: list = field(default_factory=list)  # the engine's groups of todo, split, in submit order
    group_seconds: list = field(default_factory=list)  # each group's time at the workers' concurrency
    workers: int = 1  # worker processes the groups are spread over
    notebook_seconds: list = field(default_factory=list)  # each notebook's execution (last build's, or
    # modarith.runtime.plan.NOTEBOOK_SECONDS)
    jobs: int = 1  # notebooks executed at a time

    @property
    def serial_seconds(self) -> float:
        """Estimated training time, one group after another."""
        return float(sum(self.group_seconds))

    @property
    def timeline(self) -> list[dict]:
        """The groups, in the engine's order, each to the worker that frees first."""

        return schedule(self.group_seconds, self.workers) if self.groups else []

    @property
    def seconds(self) -> float:
        """Estimated wall time of the training over the workers (:attr:`timeline`)."""

        return makespan_s(self.timeline)

    @property
    def execution_seconds(self) -> float:
        """Estimated wall time of the notebooks' execution, longest first over the jobs."""

        return makespan_s(schedule(sorted(self.notebook_seconds, reverse=True), self.jobs))

    @property
    def total_seconds(self) -> float:
        """Estimated wall time of the build: training, then the notebooks."""
        return self.seconds + self.execution_seconds

    def describe(self, device: str) -> str:
        """The lines printed before the build: totals, then one line per notebook."""
        n = len(self.notebooks)
        head = f"Plan: {n} notebook{'s' * (n != 1)}, {self.distinct} distinct runs: "
        if self.todo:
            g, steps = len(self.groups), sum(c.total_steps for c in self.todo)
            head += (f"{len(self.todo)} to train first, in {g} group{'s' * (g != 1)} ({steps:,} run-steps) "
                     f"over {self.workers} worker{'s' * (self.workers != 1)}, estimated "
                     f"{format_seconds(self.seconds)} on {device} (each group timed for a few steps "
                     f"at its worker's threads and concurrency, longest first to the worker that frees "
                     f"first; {format_seconds(self.serial_seconds)} one group after another), "
                     f"{self.distinct - len(self.todo)} stored; then the notebooks load and plot")
        else:
            head += "all stored, nothing to train (the notebooks load the runs and plot)"
        head += (f"; executing the notebooks ≈ {format_seconds(self.execution_seconds)} over {self.jobs} "
                 f"job{'s' * (self.jobs != 1)}; the build ≈ {format_seconds(self.total_seconds)} in all")
        lines = [head]
        width = max(len(notebook_file(p.name)) for p in self.notebooks)
        for i, p in enumerate(self.notebooks, 1):
            lines.append(f"  [{i}/{n}] {notebook_file(p.name):<{width}}  {p.describe()}")
        return "\n".join(lines)


def _time_group(group: list, device: str, measure: bool, workers: int = 1) -> float:
    """:func:`modarith.runtime.plan.time_group` at the threads each of ``workers`` has, or NaN when not
    measured or when timing fails."""
    if not measure:
        return float("nan")

    try:
        with worker_threads_set(worker_threads(device, workers)):
            return float(time_group(group, device))
    except Exception:  # noqa: BLE001 - an estimate that fails must not stop the build
        return float("nan")


def build_plan(names: list[str], profile: str, device: str, results: Path,
               workers: int | None = None, measure: bool = True, timer=None,
               out_dir: Path | None = None, jobs: int | None = None) -> BuildPlan:
    """The build's plan: the union of the notebooks' runs (:func:`modarith.study.protocol.configs`
    of each row), those not stored in ``results`` grouped and split as
    :func:`modarith.runtime.engine.train` does, each group timed on ``device`` at the concurrency it
    will run with (:func:`modarith.runtime.plan.time_groups`; ``timer`` replaces the timing, e.g. in
    tests; a timing that fails is NaN); per notebook its runs, those listed by an earlier
    notebook, and those it brings to the training with their share of the time; and each
    notebook's execution time as the last build into ``out_dir`` (its executed notebooks)
    recorded it, else :data:`modarith.runtime.plan.NOTEBOOK_SECONDS`, over ``jobs`` (default: one
    per core, as :func:`modarith.reporting.experiments.execute_many`)."""
    store = Store(results) if Path(results).is_dir() else None
    per_notebook = {name: list(dict.fromkeys(protocol.configs(name, profile))) for name in names}
    union = list(dict.fromkeys(c for cs in per_notebook.values() for c in cs))
    todo = sorted((c for c in union if store is None or not store.record_path(c).exists()), key=run_id)
    groups, n = engine_groups(todo, device, workers)
    seconds = time_groups(groups, device, n, timer or (lambda g: _time_group(g, device, measure, n)))
    share = {run_id(c): s / len(g) for g, s in zip(groups, seconds) for c in g}
    pending = {run_id(c) for c in todo}
    seen: set[str] = set()
    notebooks = []
    for name in names:
        ids = [run_id(c) for c in per_notebook[name]]
        fresh = [i for i in ids if i not in seen]
        mine = [i for i in fresh if i in pending]
        steps = {run_id(c): c.total_steps for c in per_notebook[name]}
        notebooks.append(NotebookPlan(name, len(ids), sum(steps.values()), len(ids) - len(fresh), len(mine),
                                      sum(steps[i] for i in mine), float(sum(share[i] for i in mine))))
        seen.update(ids)
    last = [_last_duration(out_dir / notebook_file(name)) if out_dir is not None else float("inf")
            for name in names]
    executing = [s if s != float("inf") else NOTEBOOK_SECONDS for s in last]
    return BuildPlan(notebooks, len(union), todo, groups, seconds, n, executing,
                     max(1, min(jobs or cpu_cores(), len(names))))


# ----------------------------------------------------------------------------- the build
def train_union(plan: BuildPlan, results: Path, device: str) -> bool:
    """Train the plan's runs (if any) as one :func:`modarith.runtime.engine.train` call, showing each
    group's progress, then the time it took; returns whether it succeeded. A failure is
    printed, not raised: the notebooks then train (or fail on) what is missing."""
    if not plan.todo:
        return True
    print(f"training {len(plan.todo)} runs in {len(plan.groups)} groups over {plan.workers} worker(s) …",
          flush=True)
    start = time.perf_counter()
    try:
        with showing_progress("training", len(plan.groups)):
            train(plan.todo, results=results, device=device, progress=False, workers=plan.workers)
    except Exception as error:  # noqa: BLE001 - reported; the notebooks still run
        print(f"training FAILED: {type(error).__name__}: {error}", flush=True)
        return False
    print(f"trained {len(plan.todo)} runs in {format_seconds(time.perf_counter() - start)} "
          f"(estimated {format_seconds(plan.seconds)})", flush=True)
    print(timeline_lines(plan, results), flush=True)
    return True


def timeline_lines(plan: BuildPlan, results: Path) -> str:
    """The training's per-worker timeline as the workers logged it (``results/timeline.jsonl``,
    :func:`modarith.runtime.plan.read_timeline`) under the plan's."""

    planned = timeline_text(plan.timeline, [group_label(g) for g in plan.groups])
    logged = read_timeline(results) if plan.workers > 1 else []
    return ("per-worker timeline, planned:\n" + planned
            + ("\nper-worker timeline, measured:\n" + timeline_text(logged) if logged else ""))


def execute_notebooks(chosen: list[str], plan: BuildPlan, source_dir: Path, out_dir: Path,
                      parameters: dict, jobs: int | None = None) -> list:
    """Execute the chosen notebooks (:func:`modarith.reporting.experiments.execute_many`: ``jobs`` at a
    time, one kept kernel per job), each given the build's parameters it declares, printing
    each one's outcome as it ends; returns their :class:`~modarith.reporting.export.NotebookRun` in
    ``chosen`` order. The runs are stored by then: the notebooks load, plot and answer."""
    files = [notebook_file(name) for name in chosen]
    labels = [f"[{i}/{len(chosen)}] {file}" for i, file in enumerate(files, 1)]
    tasks = []
    for file, label in zip(files, labels):
        wanted = notebook_parameters(source_dir / file)
        tasks.append((source_dir / file, out_dir / file, {k: v for k, v in parameters.items() if k in wanted},
                      label))

    def done(i: int, seconds: float, error: str) -> None:
        if error:
            print(f"{labels[i]}: FAILED ({seconds:.1f} s)\n  {files[i]}: {error}\n"
                  f"  executed copy with the error: {out_dir / files[i]}", flush=True)
        else:
            print(f"{labels[i]}: ok ({seconds:.1f} s)", flush=True)

    # longest first (as the last build into out_dir timed them), so no job idles at the end
    order = sorted(range(len(tasks)), key=lambda i: -_last_duration(out_dir / files[i]))
    print(f"executing {len(tasks)} notebook{'s' * (len(tasks) != 1)}", flush=True)
    ordered = execute_many([tasks[i] for i in order], jobs, lambda k, *outcome: done(order[k], *outcome))
    outcomes = [outcome for _, outcome in sorted(zip(order, ordered))]
    return [NotebookRun(file, EXPERIMENTS[name].title, out_dir / file, seconds, not error, error, p.describe())
            for name, file, (seconds, error), p in zip(chosen, files, outcomes, plan.notebooks)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build_report.py",
        description="Train the notebooks' runs, execute the notebooks with papermill and build "
                    "build/report.html and report.pdf.")
    parser.add_argument("--profile", default="auto", choices=PROFILE_CHOICES,
                        help="experiment protocol: auto (full on CUDA, quick otherwise), smoke, quick, full")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="training device; auto = cuda, then mps, then cpu")
    parser.add_argument("--only", default=None, metavar="KEYS",
                        help="comma-separated notebooks to build, e.g. 4.3,4.5 (keys: "
                             + ", ".join((*e.keys, n)[0] for n, e in EXPERIMENTS.items()) + ")")
    parser.add_argument("--results", default="results", metavar="DIR",
                        help="results store (runs already stored are reused)")
    parser.add_argument("--out", default="build", metavar="DIR",
                        help="output folder: report.html, report.pdf, notebooks/")
    parser.add_argument("--figures", default=None, metavar="DIR",
                        help="folder for figure files (default figures/ for the quick profile, the "
                             "committed report's, figures/<profile>/ for the others)")
    parser.add_argument("--svg", action="store_true", help="write each figure as SVG too (default: PNG only)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes for the training (default: the engine's choice)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="notebooks executed at a time, each with its own kernel (default: one per core)")
    parser.add_argument("--no-pdf", action="store_true", help="write the HTML only")
    return parser


def main(argv: list[str] | None = None, notebooks_dir: Path | None = None) -> int:
    """Command line of ``build_report.py``; returns the exit code (0 ok, 1 a notebook failed,
    2 usage). Without Chromium the PDF is skipped with one line and the exit code is 0."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        chosen = select_notebooks(args.only)
    except ValueError as error:
        parser.error(str(error))
    for option in ("results", "out", "figures"):
        if getattr(args, option) is not None and not getattr(args, option).strip():
            parser.error(f"--{option}: give a folder path")
    for option in ("workers", "jobs"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"--{option}: {getattr(args, option)} is invalid: expected an integer >= 1")
    try:
        profile, device = resolve(args.profile, args.device)
    except ValueError as error:
        parser.error(f"--{str(error).split()[0]}: {error}")
    profile_line = describe_profile(profile, device, args.profile, args.device)
    print(profile_line, flush=True)

    source_dir = (notebooks_dir or PACKAGE_ROOT / "notebooks").resolve()
    missing = [notebook_file(n) for n in chosen if not (source_dir / notebook_file(n)).exists()]
    if missing:
        print(f"error: notebooks not found in {source_dir}: {', '.join(missing)}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser().resolve()
    executed = out / "notebooks"
    executed.mkdir(parents=True, exist_ok=True)
    results = Path(args.results).expanduser().resolve()
    parameters = {"profile": profile, "device": device, "results_dir": str(results),
                  "figures_dir": str(Path(args.figures or figures_for("figures", profile)).expanduser().resolve()),
                  "interactive": False}

    start = time.perf_counter()
    plan = build_plan(chosen, profile, device, results, args.workers, out_dir=executed, jobs=args.jobs)
    print(plan.describe(device), flush=True)
    trained_ok = train_union(plan, results, device)
    saved_formats = os.environ.get(FIGURE_FORMATS_ENV)
    if args.svg:
        os.environ[FIGURE_FORMATS_ENV] = "png,svg"
    try:
        runs = execute_notebooks(chosen, plan, source_dir, executed, parameters, args.jobs)
    finally:
        if args.svg:
            if saved_formats is None:
                os.environ.pop(FIGURE_FORMATS_ENV, None)
            else:
                os.environ[FIGURE_FORMATS_ENV] = saved_formats
    write_report(runs, out, profile_line, profile, device, time.perf_counter() - start, pdf=not args.no_pdf)
    failed = [run for run in runs if not run.ok]
    print(f"done in {time.perf_counter() - start:.1f} s: {len(runs) - len(failed)} notebook(s) ok"
          + (f", {len(failed)} FAILED: {', '.join(r.file for r in failed)}" if failed else "")
          + ("" if trained_ok else "; the training before them FAILED"), flush=True)
    return 1 if failed or not trained_ok else 0


def write_report(runs: list, out: Path, profile_line: str, profile: str, device: str,
                 seconds: float, pdf: bool = True) -> None:
    """Write ``out/report.html`` and, with ``pdf`` and Chromium, ``out/report.pdf``; without
    Chromium one line says so (the HTML is complete)."""
    t_html = time.perf_counter()
    html_path = out / "report.html"
    html_path.write_text(export.assemble_html(runs, profile_line, profile, device, seconds), encoding="utf-8")
    print(f"wrote {html_path} ({html_path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t_html:.1f} s)",
          flush=True)
    if not pdf:
        return
    chromium = export.find_chromium()
    if chromium is None:
        print(f"no PDF: Chromium/Chrome not found ({export.install_hint()}); the HTML report is complete",
              flush=True)
        return
    t_pdf = time.perf_counter()
    pdf_path = out / "report.pdf"
    try:
        export.html_to_pdf(html_path, pdf_path, chromium)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"warning: PDF not written: {error}", file=sys.stderr)
    else:
        print(f"wrote {pdf_path} ({export.pdf_page_count(pdf_path)} pages, {time.perf_counter() - t_pdf:.1f} s)",
              flush=True)


def _last_duration(executed: Path) -> float:
    """Seconds papermill recorded for an executed copy (a previous build's), else infinity
    (an untimed notebook goes first)."""
    try:
        return float(json.loads(executed.read_text(encoding="utf-8"))["metadata"]["papermill"]["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("inf")


