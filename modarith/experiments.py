"""Execute the report's notebooks headless: the one executor the report build and
``python -m modarith run <experiment>`` share, and ``python -m modarith list``.

The notebooks under ``notebooks/`` hold each experiment's grid, figures and answers; this
module only executes them with papermill (:func:`execute`), showing what their kernels train
(:func:`showing_progress`). The grids and profiles are data in :mod:`modarith.protocol`.
papermill and nbformat (the ``notebook``/``report`` extras) are imported where they are used.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import modarith
from modarith.protocol import EXPERIMENTS, check_choice, configs, resolve_profile

__all__ = ["configs", "notebook_path", "showing_progress", "execute", "run_notebook", "printed",
           "main_run", "main_list"]  # configs: protocol's, for existing callers

PACKAGE_ROOT = Path(modarith.__file__).resolve().parent.parent  # the checkout of this modarith

#: The kernel's own log stays quiet: jupyter_client interrupts every kernel before shutting it
#: down, which ipykernel may log as "KeyboardInterrupt caught in kernel". Cell errors still
#: reach the notebook and the caller.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


def notebook_path(experiment: str) -> Path:
    """The source notebook of ``experiment`` (``notebooks/<stem>.ipynb`` of this checkout)."""
    check_choice("experiment", experiment, EXPERIMENTS)
    path = PACKAGE_ROOT / "notebooks" / f"{EXPERIMENTS[experiment].notebook}.ipynb"
    if not path.exists():
        raise ValueError(f"experiment = {experiment!r}: its notebook {path} is missing (the "
                         "notebooks ship with a checkout of the repository, not with the package)")
    return path


@contextmanager
def showing_progress(label: str, planned_groups: int | None = None, enabled: bool = True):
    """While the block runs, the engine (in this process, its workers or a notebook's kernel)
    appends its progress events to a private file (``$MODARITH_PROGRESS``), and a thread shows
    them (:class:`modarith.events.BuildProgress`: a bar per group on a terminal, plain lines
    otherwise), each line starting with ``label``."""
    if not enabled:
        yield
        return
    from modarith.events import ENV, BuildProgress

    saved = os.environ.get(ENV)
    with tempfile.TemporaryDirectory(prefix="modarith-progress-") as scratch:
        os.environ[ENV] = str(Path(scratch) / "progress.jsonl")
        tty = sys.stdout.isatty() and shutil.get_terminal_size((0, 0)).columns >= 40  # room for a bar
        shown = BuildProgress(Path(os.environ[ENV]), label, planned_groups, tty)
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


def execute(source: str | Path, output: str | Path, parameters: dict | None = None,
            progress: bool = True, label: str | None = None,
            planned_groups: int | None = None) -> Path:
    """Execute a notebook with papermill into ``output`` (working directory: its folder) and
    return ``output``; a failing cell raises papermill's ``PapermillExecutionError`` and the
    executed copy, with the error, is kept.

    The kernel imports this same modarith (its checkout first on ``PYTHONPATH``), talks over
    IPC sockets in a private folder, and keeps its own log quiet. With ``progress``, what it
    trains is shown as it goes (:func:`showing_progress`, lines starting with ``label``, by
    default the notebook's file name).
    """
    import papermill

    source, output = Path(source), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), old) if p)
    try:
        with tempfile.TemporaryDirectory(prefix="modarith-kernel-") as scratch, \
                showing_progress(label or source.name, planned_groups, progress):
            papermill.execute_notebook(str(source), str(output), parameters=parameters or {},
                                       cwd=str(source.parent), progress_bar=False, log_output=False,
                                       kernel_name="python3", config=_kernel_config(scratch),
                                       extra_arguments=KERNEL_ARGUMENTS)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    return output


def run_notebook(experiment: str, profile: str = "auto", results: str | Path = "results",
                 device: str = "auto", figures: str | Path = "figures", force: bool = False,
                 progress: bool = True, output: str | Path | None = None,
                 parameters: dict | None = None) -> Path:
    """Execute ``experiment``'s notebook (:func:`execute`); return the executed copy's path.

    The notebook's parameters are set from the arguments (folders made absolute, extra ones
    from ``parameters``); the copy goes to ``output`` (default
    ``<results>/notebooks/<stem>.ipynb``). Bad values raise ``ValueError`` before any
    compute; a failing cell raises papermill's ``PapermillExecutionError``.
    """
    source = notebook_path(experiment)
    resolve_profile(profile, "cpu")  # validate the name before starting a kernel
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
    """CLI ``run``: execute the notebook, print what it printed and where the results are."""
    out = run_notebook(experiment, **kwargs)
    print(printed(out), end="")
    print(f"Executed notebook: {out}")
    return out


def main_list():
    """CLI ``list``: print the experiments and the runs / run-steps each profile needs."""
    import pandas as pd

    from modarith.protocol import list_experiments

    frame = list_experiments()
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(frame.to_string(index=False))
    return frame
