"""Execute the report's notebooks headless: the one executor the report build and
``python -m modarith run <experiment>`` share, and ``python -m modarith list``.

The notebooks under ``notebooks/`` hold each experiment's grid, figures and answers; this
module only executes them with papermill (:func:`execute`), showing what their kernels train
(:func:`showing_progress`). The grids and profiles are data in :mod:`modarith.study.protocol`.
papermill and nbformat (the ``notebook``/``report`` extras) are imported where they are used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import modarith
from modarith.reporting.notebook import figures_for
from modarith.runtime.devices import cpu_cores, resolve_device
from modarith.runtime.events import ENV, BuildProgress
from modarith.study import protocol
from modarith.study.protocol import EXPERIMENTS, check_choice, list_experiments, resolve_profile

__all__ = ["configs", "notebook_path", "showing_progress", "Kernel", "execute", "execute_reporting",
           "execute_many", "run_notebook", "printed", "main_run", "main_list"]


def configs(name: str, profile: str) -> list:
    """Run configs of experiment ``name`` in ``profile`` (:func:`modarith.study.protocol.configs`;
    kept here for existing callers)."""
    return protocol.configs(name, profile)

PACKAGE_ROOT = Path(modarith.__file__).resolve().parent.parent  # the checkout of this modarith

#: The kernel's own log stays quiet: jupyter_client interrupts every kernel before shutting it
#: down, which ipykernel may log as "KeyboardInterrupt caught in kernel". Cell errors still
#: reach the notebook and the caller. No history database: nobody reads it, and a kept
#: kernel renumbers its cells for each notebook.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.enabled=False"]


def notebook_parameters(path: Path) -> set[str]:
    """Names assigned in a notebook's ``parameters`` cell (so we only pass what it declares)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"]
            source = "".join(source) if isinstance(source, list) else str(source)
            return set(re.findall(r"^(\w+)\s*(?::[^=]*)?=", source, re.M))
    return set()


def notebook_path(experiment: str) -> Path:
    """The source notebook of ``experiment`` (``notebooks/<stem>.ipynb`` of this checkout)."""
    check_choice("experiment", experiment, EXPERIMENTS)
    path = PACKAGE_ROOT / "notebooks" / f"{EXPERIMENTS[experiment].notebook}.ipynb"
    if not path.exists():
        raise ValueError(f"experiment = {experiment!r}: its notebook {path} is missing (the "
                         "notebooks ship with a checkout of the repository, not with the package)")
    return path


@contextmanager
def showing_progress(label: str, planned_groups: int | None = None, enabled: bool = True,
                     path: str | Path | None = None):
    """While the block runs, a thread shows the engine's progress events
    (:class:`modarith.runtime.events.BuildProgress`: a bar per group on a terminal, plain lines
    otherwise), each line starting with ``label``. The events come from ``path`` (a kept
    kernel's progress file, emptied first), or else from a private file that
    ``$MODARITH_PROGRESS`` names for the block (training in this process or its workers)."""
    if not enabled:
        yield
        return

    saved = os.environ.get(ENV)
    with tempfile.TemporaryDirectory(prefix="modarith-progress-") as scratch:
        if path is None:
            path = Path(scratch) / "progress.jsonl"
            os.environ[ENV] = str(path)
        else:
            Path(path).write_text("", encoding="utf-8")  # the kernel is idle: nothing is writing
        tty = sys.stdout.isatty() and shutil.get_terminal_size((0, 0)).columns >= 40  # room for a bar
        shown = BuildProgress(Path(path), label, planned_groups, tty)
        stop = threading.Event()

        def watch():
            while not stop.wait(0.25):
                shown.poll()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            shown.poll()
            shown.close()
            if saved is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = saved


def _kernel_config(folder: str):
    """Kernel over IPC sockets in a private folder instead of localhost TCP: nothing to
    eavesdrop on, and no "Kernel is running over TCP without encryption" warning."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(folder) / "kernel")
    # a loaded machine may take a few seconds to stop a kernel: wait rather than interrupt it
    config.KernelManager.shutdown_wait_time = 30.0
    return config


class KernelState:
    """What one notebook may change in a kept kernel and the next must not inherit. Runs
    inside the kernel: :meth:`save` once on a fresh kernel, :meth:`restore` before each
    further notebook: matplotlib's rcParams as saved (the inline backend's included), no open
    figure, pandas' options at their defaults, and Python's, NumPy's and (when imported)
    torch's random generators seeded with :data:`SEED`, as every notebook starts."""

    SEED = 0
    rc: dict | None = None

    @classmethod
    def save(cls) -> None:
        import matplotlib
        import matplotlib.pyplot  # noqa: F401 - the inline backend sets its rcParams on import

        cls.rc = dict(matplotlib.rcParams)
        cls.seed()

    @classmethod
    def seed(cls) -> None:
        import random

        import numpy

        random.seed(cls.SEED)
        numpy.random.seed(cls.SEED)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(cls.SEED)

    @classmethod
    def restore(cls) -> None:
        import warnings

        import matplotlib
        import matplotlib.pyplot as plt
        import pandas

        plt.close("all")
        with warnings.catch_warnings():  # deprecated rcParams / pandas options warn when set
            warnings.simplefilter("ignore")
            if cls.rc is not None:
                matplotlib.rcParams.update(cls.rc)
            pandas.reset_option("all")
        cls.seed()


#: Run in a fresh kept kernel before its first notebook.
_SAVE = ("import modarith.reporting.experiments as _m\n_m.KernelState.save()\ndel _m\n"
         "get_ipython().execution_count = 1\n")
#: Run in a kept kernel before its next notebook: the state of :class:`KernelState` restored,
#: an empty namespace, cells numbered from 1 again; imported modules stay (what keeping the
#: kernel saves).
_RESET = ("get_ipython().run_line_magic('reset', '-f')\n"
          "import os\nimport modarith.reporting.experiments as _m\n_m.KernelState.restore()\nos.chdir({cwd!r})\n"
          "del os, _m\nget_ipython().execution_count = 1\n")


class Kernel:
    """One kernel that executes several notebooks in turn (:func:`execute` with ``kernel=``):
    a notebook runs in a fresh namespace, but the modules the previous ones imported (torch,
    pandas, matplotlib, modarith) stay imported, so the start-up is paid once. The kernel
    imports this checkout's modarith, talks over IPC sockets in a private folder, keeps its
    own log quiet, and appends its training progress to :attr:`progress_file`.
    ``close()`` (or leaving a ``with`` block) shuts it down."""

    def __init__(self, cwd: str | Path):
        from jupyter_client import KernelManager

        self._scratch = tempfile.TemporaryDirectory(prefix="modarith-kernel-")
        self.cwd, self.used = str(cwd), False
        self.progress_file = Path(self._scratch.name) / "progress.jsonl"
        env = {**os.environ, ENV: str(self.progress_file), "PYTHONPATH": os.pathsep.join(
            p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)}
        self.manager = KernelManager(kernel_name="python3", config=_kernel_config(self._scratch.name))
        self.manager.start_kernel(cwd=self.cwd, env=env, extra_arguments=KERNEL_ARGUMENTS)

    def reset(self) -> None:
        """Before the first notebook, save the kernel's state (:class:`KernelState`); before
        each next one, restore it and empty the namespace."""
        code = _RESET.format(cwd=self.cwd) if self.used else _SAVE
        client = self.manager.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive(code, store_history=False, timeout=120,
                                             output_hook=lambda msg: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"resetting the kernel failed: {reply['content']}")
        finally:
            client.stop_channels()
        self.used = True

    def alive(self) -> bool:
        return self.manager.is_alive()

    def close(self) -> None:
        if self.manager.has_kernel:
            self.manager.shutdown_kernel(now=False)
        self._scratch.cleanup()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def execute(source: str | Path, output: str | Path, parameters: dict | None = None,
            progress: bool = True, label: str | None = None, planned_groups: int | None = None,
            kernel: Kernel | None = None) -> Path:
    """Execute a notebook with papermill into ``output`` (working directory: its folder) and
    return ``output``; a failing cell raises papermill's ``PapermillExecutionError`` and the
    executed copy, with the error, is kept.

    The kernel (a new :class:`Kernel`, shut down afterwards, unless ``kernel`` gives a kept
    one) imports this same modarith. With ``progress``, what it trains is shown as it goes
    (:func:`showing_progress`, lines starting with ``label``, by default the file name).
    """
    import papermill

    source, output = Path(source), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    own = kernel is None
    kernel = kernel or Kernel(source.parent)
    try:
        kernel.reset()
        with showing_progress(label or source.name, planned_groups, progress, kernel.progress_file):
            papermill.execute_notebook(str(source), str(output), parameters=parameters or {},
                                       cwd=str(source.parent), progress_bar=False, log_output=False,
                                       kernel_name="python3", km=kernel.manager)
    finally:
        if own:
            kernel.close()
    return output


class NotebookFailed(RuntimeError):
    """A notebook's cell raised: the message is one line naming the notebook, the cell and its
    error (:func:`cell_error`) and where the executed copy is."""


def cell_error(error) -> str:
    """One line for papermill's ``PapermillExecutionError``: the failing cell (its number in the
    executed copy, its ``In [n]``, its first line) and the error it raised."""
    first = next((line for line in error.source.splitlines() if line.strip()), "")
    return (f"cell {error.cell_index + 1} of the executed copy (In [{error.exec_count}]: `{first.strip()}`) "
            f"raised {error.ename}: {error.evalue}")


def execute_reporting(source: str | Path, output: str | Path, parameters: dict, label: str,
                      kernel: Kernel | None = None) -> tuple[float, str]:
    """:func:`execute`, with the outcome as (seconds, error): ``error`` is ``""`` when every
    cell ran, else names the failing cell and its error (or the kernel's death)."""
    import time

    import papermill

    start = time.perf_counter()
    try:
        execute(source, output, parameters, label=label, kernel=kernel)
    except papermill.PapermillExecutionError as e:
        return time.perf_counter() - start, cell_error(e)
    except Exception as e:  # noqa: BLE001 - kernel death, missing kernel, bad notebook …
        return time.perf_counter() - start, f"{type(e).__name__}: {e}"
    return time.perf_counter() - start, ""


_KEPT: dict = {}  # this process's kept kernel (execute_many)


def _execute_in_kept_kernel(source: Path, output: Path, parameters: dict, label: str) -> tuple[float, str]:
    """:func:`execute_reporting` in this process's kept :class:`Kernel` (started on first use,
    again if it died; shut down when the process exits)."""
    from multiprocessing.util import Finalize

    kernel = _KEPT.get("kernel")
    if kernel is None or not kernel.alive():
        if kernel is not None:
            kernel.close()
        try:
            kernel = _KEPT["kernel"] = Kernel(Path(source).parent)
        except Exception as e:  # noqa: BLE001 - no kernel: this notebook fails, the build goes on
            _KEPT.pop("kernel", None)
            return 0.0, f"the kernel did not start: {type(e).__name__}: {e}"
        Finalize(kernel, kernel.close, exitpriority=10)
    return execute_reporting(source, output, parameters, label, kernel)


def execute_many(tasks: list[tuple], jobs: int | None = None, done=None) -> list[tuple[float, str]]:
    """Execute notebooks given as ``(source, output, parameters, label)``, ``jobs`` at a time
    (default: one per core, at most one per notebook); return each one's (seconds, error) in
    task order, calling ``done(index, seconds, error)`` as each ends. Each job is a process
    with one kept :class:`Kernel` that runs its notebooks in turn, each in a fresh namespace,
    so a kernel's start-up and imports are paid once per job; the notebooks must not depend
    on each other's order. With one job everything runs in this process."""
    jobs = max(1, min(jobs or cpu_cores(), len(tasks)))
    outcomes: list = [None] * len(tasks)

    def finish(i, outcome):
        outcomes[i] = outcome
        if done is not None:
            done(i, *outcome)

    if jobs == 1:
        try:
            for i, task in enumerate(tasks):
                finish(i, _execute_in_kept_kernel(*task))
        finally:
            if "kernel" in _KEPT:
                _KEPT.pop("kernel").close()
        return outcomes
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_execute_in_kept_kernel, *task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    return outcomes


def run_notebook(experiment: str, profile: str = "auto", results: str | Path = "results",
                 device: str = "auto", figures: str | Path | None = None, force: bool = False,
                 progress: bool = True, output: str | Path | None = None,
                 parameters: dict | None = None) -> Path:
    """Execute ``experiment``'s notebook (:func:`execute`); return the executed copy's path.

    The notebook's parameters are set from the arguments (folders made absolute, extra ones
    from ``parameters``; ``figures`` None: ``figures/``, or ``figures/<profile>/`` for a profile
    other than the committed one, :func:`~modarith.reporting.notebook.figures_for`); the copy goes to ``output`` (default
    ``<results>/notebooks/<stem>.ipynb``). Bad values raise ``ValueError`` before any
    compute; a failing cell raises papermill's ``PapermillExecutionError``.
    """
    source = notebook_path(experiment)
    resolve_profile(profile, "cpu")  # validate the name before starting a kernel
    declared = notebook_parameters(source)
    unknown = sorted(set(parameters or {}) - declared)
    if unknown:
        raise ValueError(f"{unknown[0]} is not a parameter of {source.name} (its parameters: "
                         f"{', '.join(sorted(declared))})")
    if figures is None:  # figures/, or figures/<profile>/ for a profile other than the committed one
        figures = figures_for("figures", resolve_profile(profile, str(resolve_device(device)).split(":")[0]))
    results = Path(results).expanduser().resolve()
    out = Path(output) if output is not None else results / "notebooks" / source.name
    params = {"profile": profile, "device": device, "results_dir": str(results),
              "figures_dir": str(Path(figures).expanduser().resolve()), "force": force,
              **(parameters or {})}
    return execute(source, out, params, progress)


def printed(notebook: str | Path) -> str:
    """What an executed notebook printed (its stdout streams, in order)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("name") == "stdout")


def main_run(experiment: str, **kwargs) -> Path:
    """CLI ``run``: execute the notebook, print what it printed and where the results are; a
    failing cell raises :class:`NotebookFailed` (one line) instead of papermill's traceback."""
    import papermill

    try:
        out = run_notebook(experiment, **kwargs)
    except papermill.PapermillExecutionError as e:
        name = notebook_path(experiment).name
        raise NotebookFailed(f"{name} failed: {cell_error(e)}") from None
    print(printed(out), end="")
    print(f"Executed notebook: {out}")
    return out


def main_list():
    """CLI ``list``: print every experiment that ``run`` accepts (every row of
    :data:`~modarith.study.protocol.EXPERIMENTS`) and the runs / run-steps each profile needs."""
    import pandas as pd

    frame = list_experiments(list(EXPERIMENTS))
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(frame.to_string(index=False))
    return frame
