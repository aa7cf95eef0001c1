"""Worker processes for :func:`modarith.runtime.engine.train`: groups spread over ``concurrent.futures``.

Each worker (started with ``spawn``) takes a device (one GPU each on CUDA, one thread each
share of the cores on the CPU) and runs whole groups over the shared results store; the
parent shows one overall bar fed by the workers' reports, and appends each group's start and
end per worker to ``results/timeline.jsonl`` (:func:`modarith.runtime.plan.read_timeline`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue as queue_mod
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch

from modarith.models.config import RunConfig
from modarith.runtime.devices import cpu_cores, set_threads
from modarith.runtime.runner import run_groups
from modarith.runtime.store import Record, Store

_WORKER: dict = {}  # in a worker process: its progress queue and device


def _worker_init(threads: int, progress_queue, device_queue) -> None:
    """Worker process initializer: pin the thread count, take a device, keep the queue."""
    set_threads(threads)
    _WORKER["progress"] = progress_queue
    _WORKER["device"] = device_queue.get() if device_queue is not None else None
    if _WORKER["device"]:
        torch.cuda.set_device(torch.device(_WORKER["device"]))


def _worker_run(group: list[RunConfig], results: str | None, force: bool,
                opts: dict) -> tuple[dict[str, Record], dict]:
    """Task of a worker process: train (or load) one group over the shared store; returns its
    records and its slot (process id, device, wall-clock start and end)."""
    q = _WORKER.get("progress")
    opts = dict(opts, progress=False, on_progress=q.put if q is not None else None)
    if _WORKER.get("device"):
        opts["device"] = _WORKER["device"]
    start = time.time()
    found = run_groups([group], Store(results) if results is not None else None, force, **opts)
    return found, {"pid": os.getpid(), "device": opts["device"], "start": start, "end": time.time()}


def group_label(group: list[RunConfig]) -> str:
    """Short name of a group in a timeline: model × runs, T."""
    return f"{group[0].model}×{len(group)} T={group[0].total_steps}"


def log_slot(results, call: float, workers: dict[int, int], group: list[RunConfig], slot: dict) -> dict:
    """Append one group's slot to ``results/timeline.jsonl`` (``call``: the train call's start,
    wall clock; ``workers``: process id → worker number, filled as workers appear)."""
    row = {"call": call, "worker": workers.setdefault(slot["pid"], len(workers)), "label": group_label(group),
           "runs": len(group), "model": group[0].model, "steps": group[0].total_steps, **slot}
    if results is not None:
        Path(results).mkdir(parents=True, exist_ok=True)
        with open(Path(results) / "timeline.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return row


def run_parallel(groups: list[list[RunConfig]], results, force: bool, n: int, **opts) -> dict[str, Record]:
    """Train groups in ``n`` worker processes (``concurrent.futures``, spawn), one overall bar."""
    from tqdm.auto import tqdm

    device = opts["device"]
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue()
    device_queue = None
    if device == "cuda":  # one process per GPU
        device_queue = ctx.Queue()
        for i in range(n):
            device_queue.put(f"cuda:{i % max(1, torch.cuda.device_count())}")
    threads = max(1, cpu_cores() // n) if device == "cpu" else 1
    total = sum(c.total_steps for g in groups for c in g)
    bar = tqdm(total=total, unit="run-step", desc=f"{len(groups)} groups, {n} workers",
               disable=not opts.get("progress", True), mininterval=1.0, dynamic_ncols=True, smoothing=0.05)
    saved_env = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({v: str(threads) for v in saved_env})  # children read it at torch import
    found: dict[str, Record] = {}
    call, worker_ids = time.time(), {}
    try:
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init,
                                 initargs=(threads, progress_queue, device_queue)) as pool:
            pending = {pool.submit(_worker_run, g, None if results is None else str(results), force, opts): g
                       for g in groups}
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                try:
                    while True:
                        bar.update(progress_queue.get_nowait())
                except queue_mod.Empty:
                    pass
                for f in done:
                    records, slot = f.result()  # a worker's exception is raised here
                    found.update(records)
                    log_slot(results, call, worker_ids, pending.pop(f), slot)
    finally:
        bar.close()
        for v, old in saved_env.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old
    return found
