"""Run an experiment's notebook headless (``python -m modarith run <experiment>``) and list the
experiments (``python -m modarith list``).

The notebooks under ``notebooks/`` hold each experiment's grid, figures and answers; this
module only executes them with papermill. The grids and profiles are data in
:mod:`modarith.protocol`; :func:`configs` and :func:`resolve_profile` are re-exported here for
existing callers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

import modarith
from modarith import protocol
from modarith.protocol import EXPERIMENTS, PROFILES, resolve_profile

__all__ = ["EXPERIMENTS", "PROFILES", "configs", "resolve_profile", "notebook_path",
           "run_notebook", "execute", "printed", "main_run", "main_list"]

PACKAGE_ROOT = Path(modarith.__file__).resolve().parent.parent  # the checkout of this modarith


def configs(name: str, profile: str) -> list:
    """Run configs of experiment ``name`` in ``profile`` (:func:`modarith.protocol.configs`)."""
    return protocol.configs(name, profile)


def notebook_path(experiment: str) -> Path:
    """The source notebook of ``experiment`` (``notebooks/<stem>.ipynb`` of this checkout)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment = {experiment!r} is invalid: expected one of "
                         f"{tuple(EXPERIMENTS)}")
    path = PACKAGE_ROOT / "notebooks" / f"{EXPERIMENTS[experiment].notebook}.ipynb"
    if not path.exists():
        raise ValueError(f"experiment = {experiment!r}: its notebook {path} is missing (the "
                         "notebooks ship with a checkout of the repository, not with the package)")
    return path


def run_notebook(experiment: str, profile: str = "auto", results: str | Path = "results",
                 device: str = "auto", figures: str | Path = "figures", force: bool = False,
                 progress: bool = True, output: str | Path | None = None,
                 parameters: dict | None = None) -> Path:
    """Execute ``experiment``'s notebook with papermill; return the executed copy's path.

    The notebook's parameters are set from the arguments (folders made absolute, extra ones
    from ``parameters``); the copy goes to ``output`` (default
    ``<results>/notebooks/<stem>.ipynb``). The kernel imports this same modarith (its
    checkout is put first on ``PYTHONPATH``). Bad values raise ``ValueError`` before any
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


def execute(source: str | Path, output: str | Path, parameters: dict | None = None,
            progress: bool = True) -> Path:
    """Execute a notebook with papermill (working directory: its folder) into ``output``, with
    this checkout first on the kernel's ``PYTHONPATH``; return ``output``."""
    import papermill

    source, output = Path(source), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), old) if p)
    try:
        papermill.execute_notebook(str(source), str(output), parameters=parameters or {},
                                   progress_bar=progress, cwd=str(source.parent))
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    return output


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


def main_list() -> pd.DataFrame:
    """CLI ``list``: print the experiments and the runs / run-steps each profile needs."""
    from modarith.protocol import list_experiments

    frame = list_experiments()
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(frame.to_string(index=False))
    return frame
