"""Sweeps on a cluster: one submitit job per vectorised group, over a shared results folder.

``submit(configs, results, executor="slurm", ...)`` groups the runs the store does not hold yet
exactly as :func:`modarith.runtime.engine.train` does, submits one job per group (each job calls
``train(group, results, workers=1)`` on its node), and either waits and returns the records or
returns at once (``wait=False``). A rerun of the same call collects what finished and submits
only the groups still missing; a job that finds its runs locked by another job waits, then
loads them (the store's locks), so nothing is trained twice. ``executor="submitit-local"``
runs the same code path with submitit's local executor (processes on this machine; the CI
tests it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from modarith.models.config import RunConfig, run_id
from modarith.runtime.engine import group_configs, train
from modarith.runtime.store import Store

EXECUTORS = ("local", "slurm", "submitit-local")  # local = worker processes, no submitit


@dataclass
class Submission:
    """What :func:`submit` did: records already stored, jobs submitted (submitit ``Job``s)."""

    records: list  # Record of every config that is stored now (all of them once jobs finished)
    jobs: list  # submitit jobs submitted by this call (empty when everything was stored)
    missing: list[str]  # run ids not stored yet (jobs still running, or failed)


def check_executor(executor: str) -> None:
    """ValueError naming ``executor`` when it is unknown or needs submitit and it is missing."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor = {executor!r} is invalid: expected one of {EXECUTORS}")
    if executor != "local" and importlib.util.find_spec("submitit") is None:
        raise ValueError(f"executor = {executor!r} needs submitit, which is not installed: "
                         "pip install submitit (or pip install 'modarith[slurm]')")


def _job(group: list[RunConfig], results: str, device: str) -> list[str]:
    """Body of one cluster job: train one group into the shared store."""
    return [r.run_id for r in train(group, results=results, device=device, progress=False, workers=1)]


def submit(configs: list[RunConfig], results: str | Path, executor: str = "slurm", wait: bool = True,
           partition: str | None = None, time_min: int = 240, gpus: int = 0, cpus: int = 1,
           device: str = "auto", max_group_size: int | None = None, folder: str | Path | None = None,
           ) -> Submission:
    """Submit one job per missing group; wait for them (``wait=True``) or return at once.

    ``partition``, ``time_min`` (job time limit, minutes), ``gpus`` (per job) and ``cpus``
    (per job) are the Slurm job's resources; ``folder``: submitit's logs (default
    ``results/jobs``). Raises ValueError on bad arguments before submitting anything.
    """
    check_executor(executor)
    if executor == "local":
        raise ValueError("executor = 'local' runs worker processes: use modarith.runtime.engine.train(workers=...)")
    for name, v, lo in (("time_min", time_min, 1), ("gpus", gpus, 0), ("cpus", cpus, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} = {v!r} is invalid: expected an integer >= {lo}")
    if results is None or not str(results).strip():
        raise ValueError(f"results = {results!r} is invalid: cluster jobs need a shared results folder")
    import submitit

    store = Store(results)
    configs = list(configs)
    stored = {run_id(c): store.get(c) for c in configs}
    todo = {run_id(c): c for c in configs if stored[run_id(c)] is None}
    jobs = []
    if todo:
        ex = submitit.AutoExecutor(folder=str(folder or Path(results) / "jobs"),
                                   cluster="local" if executor == "submitit-local" else "slurm")
        params = dict(name="modarith", timeout_min=time_min, cpus_per_task=cpus)
        if executor == "slurm":
            params["gpus_per_node"] = gpus
            if partition:
                params["slurm_partition"] = partition
        ex.update_parameters(**params)
        groups = group_configs([todo[r] for r in sorted(todo)], max_group_size)
        jobs = [ex.submit(_job, g, str(results), device) for g in groups]
        if wait:
            for j in jobs:
                j.result()  # re-raises a job's exception, with its log's path
            stored = {run_id(c): store.get(c) for c in configs}
    missing = [r for r, rec in stored.items() if rec is None]
    return Submission([rec for rec in stored.values() if rec is not None], jobs, missing)
