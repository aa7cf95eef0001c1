"""Training: a list of run configs in, a list of records out.

:func:`train` loads what the store holds and trains the rest. Runs that share a
:func:`~modarith.runtime.group.group_key` train together as one vectorised group
(:class:`~modarith.runtime.group.GroupTrainer`, :func:`~modarith.runtime.loop.fit`). The groups run here one
after another, or over worker processes (``concurrent.futures``); each run's checkpoint is
its own (:mod:`modarith.runtime.checkpoint`), so any grouping or worker count resumes it.

The groups go to :func:`modarith.runtime.runner.run_groups`, here or in each worker
(:func:`modarith.runtime.workers.run_parallel`): one path from configs to stored records.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch

from modarith.models.config import RunConfig, run_id
from modarith.runtime import checkpoint as ckpt
from modarith.runtime.devices import check_float64, cpu_cores, resolve_device
from modarith.runtime.group import group_key
from modarith.runtime.runner import CHECKPOINT_INTERVAL_S, run_groups
from modarith.runtime.store import Record, Store
from modarith.runtime.workers import run_parallel

# Below this much work, starting worker processes (an interpreter and torch each, seconds)
# costs more than the second core saves: ``default_workers`` keeps such work in-process.
# Work is counted in SPEC-equivalent run-steps (GPT/LSTM d = 128, L = 2, batch 480: about
# 0.1–0.3 s each on one CPU core), so 200 of them are ~30 s or more.
MIN_PARALLEL_WORK = 200.0


# ---------------------------------------------------------------------------------------------
# grouping and workers
# ---------------------------------------------------------------------------------------------
#: Largest vectorised group on the CPU when ``train`` is not given ``max_group_size``: beyond
#: about 9 runs a group's activations leave the caches. Measured with ``python -m benchmarks.bench
#: --threads 1 --models lstm --sizes 9,27 --config '{"d_model": 64, "steps": 3000, "eval_every":
#: 50, "eval_dense": 0}'`` (the 50_beyond runs): 67.6 against 54.3 run-steps/s at K = 9 and 27 in
#: one process, 128.9 against 106.0 in all with two such processes at once (the build's two
#: workers); ``benchmarks/NOTES.md`` has the GPT's (K ≈ 8). On a GPU every run of a shape is one group.
CPU_MAX_GROUP = 9


def group_configs(configs: list[RunConfig], max_group_size: int | None = None) -> list[list[RunConfig]]:
    """Partition configs into vectorised groups by :func:`group_key`, order preserved; a
    group larger than ``max_group_size`` becomes the fewest chunks of at most that size, as even
    as possible (20 runs at most 9 → 7, 7, 6)."""
    groups: dict[tuple, list[RunConfig]] = {}
    for c in configs:
        groups.setdefault(group_key(c), []).append(c)
    out = []
    for g in groups.values():
        chunks = -(-len(g) // (max_group_size or len(g)))
        size, extra = divmod(len(g), chunks)
        starts = [i * size + min(i, extra) for i in range(chunks + 1)]
        out.extend(g[a:b] for a, b in zip(starts, starts[1:]))
    return out


def engine_groups(todo: list[RunConfig], device: str, workers: int | None = None,
                  max_group_size: int | None = None) -> tuple[list[list[RunConfig]], int]:
    """The groups :func:`train` trains ``todo`` in and how many workers train them: run-id
    order (group membership does not depend on input order), chunks of at most
    ``max_group_size`` (default :data:`CPU_MAX_GROUP` on the CPU, no limit elsewhere), split
    over the workers (:func:`split_groups`) when there are several."""
    cap = max_group_size if max_group_size is not None else (CPU_MAX_GROUP if str(device) == "cpu" else None)
    groups = group_configs(sorted(todo, key=run_id), cap)
    n = workers if workers is not None else (default_workers(device, groups) if groups else 1)
    if n > 1 and groups:
        groups = split_groups(groups, n)
        n = min(n, len(groups))
    return groups, n


def spec_equivalent_run_steps(groups: list[list[RunConfig]]) -> float:
    """Training work of ``groups`` in run-steps of SPEC's default model (d² · L · batch rows)."""
    ref = 128**2 * 2 * 480
    return sum(c.total_steps * c.d_model**2 * c.num_layers * min(c.batch_size, c.n_train) / ref
               for g in groups for c in g)


def default_workers(device: str, groups: list[list[RunConfig]] | None = None) -> int:
    """Default worker count: ``MODARITH_WORKERS`` if set; else one per GPU on CUDA, one per
    core on the CPU (1 on MPS), and 1 when ``groups`` hold less work than
    ``MIN_PARALLEL_WORK`` (:func:`spec_equivalent_run_steps`)."""
    env = os.environ.get("MODARITH_WORKERS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"MODARITH_WORKERS = {env!r} is invalid: expected an integer >= 1")
        return int(env)
    if groups is not None and spec_equivalent_run_steps(groups) < MIN_PARALLEL_WORK:
        return 1
    if str(device).startswith("cuda"):
        return max(1, torch.cuda.device_count()) if device == "cuda" else 1
    return cpu_cores() if str(device) == "cpu" else 1


#: Rough seconds of one SPEC-equivalent run-step on one CPU core, per model (:func:`group_cost`):
#: a fresh-clone quick build on the 2-core CPU (``benchmarks/NOTES.md``) trained LSTM × 5 at 17.7 and GPT × 4 at 13.0
#: run-steps/s per core (0.056 and 0.077 s); other models count as the mean.
SECONDS_PER_SPEC_STEP = {"gpt": 0.077, "lstm": 0.056}

#: :func:`split_groups` splits a group when a worker would otherwise idle longer than this at
#: the end while another finishes (a group of K gives the numbers of K singles).
SPLIT_IDLE_S = 180.0


def group_cost(group: list[RunConfig]) -> float:
    """Rough seconds of a group on one CPU core, for scheduling: its
    :func:`spec_equivalent_run_steps` × :data:`SECONDS_PER_SPEC_STEP` of its model."""
    rates = SECONDS_PER_SPEC_STEP
    return spec_equivalent_run_steps([group]) * rates.get(group[0].model, sum(rates.values()) / len(rates))


def _end_times(costs: list[float], n: int) -> list[float]:
    """When each of ``n`` workers ends when the costs go, in this order, each to the worker
    that frees first (the order the pool hands them out)."""
    free = [0.0] * max(1, n)
    for c in costs:
        free[free.index(min(free))] += c
    return free


def makespan(groups: list[list[RunConfig]], n: int, cost: Callable[[list[RunConfig]], float] = group_cost) -> float:
    """Cost of the slowest of ``n`` workers when the groups go, costliest first, each to the
    worker that frees first (the order the pool hands them out)."""
    return max(_end_times(sorted((cost(g) for g in groups), reverse=True), n))


def idle_at_end(groups: list[list[RunConfig]], n: int,
                cost: Callable[[list[RunConfig]], float] = group_cost) -> float:
    """How long the first worker to finish waits for the last (costliest first, as
    :func:`makespan`); a worker without a group waits the whole makespan."""
    ends = _end_times(sorted((cost(g) for g in groups), reverse=True), n)
    return max(ends) - min(ends)


def split_groups(groups: list[list[RunConfig]], n: int, cost: Callable[[list[RunConfig]], float] = group_cost,
                 idle_s: float = SPLIT_IDLE_S) -> list[list[RunConfig]]:
    """Split groups in halves so that ``n`` workers all have work and none idles at the end
    while another finishes a long group. While there are fewer groups than workers (and a
    group of several runs), or a worker would idle more than ``idle_s`` (in ``cost`` units:
    rough seconds) at the end, the costliest group whose halving shortens the
    :func:`makespan` is halved; it stops when none does. Returned costliest first, the order
    the engine submits them (a group of K gives the numbers of K singles)."""
    groups = sorted(([*g] for g in groups), key=cost, reverse=True)
    while True:
        short = len(groups) < n
        if not short and idle_at_end(groups, n, cost) <= idle_s:
            break
        span = makespan(groups, n, cost)
        for i in sorted((i for i, g in enumerate(groups) if len(g) > 1), key=lambda i: -cost(groups[i])):
            half = (len(groups[i]) + 1) // 2
            trial = groups[:i] + [groups[i][:half], groups[i][half:]] + groups[i + 1:]
            if short or makespan(trial, n, cost) < span * (1 - 1e-9):
                groups = sorted(trial, key=cost, reverse=True)
                break
        else:
            break
    return groups


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _check_train_args(results, force, progress, max_group_size, checkpoint_every,
                      checkpoint_interval_s, workers=None, deterministic=None, compile=None) -> None:
    if results is not None and (not isinstance(results, (str, os.PathLike)) or not str(results).strip()):
        raise ValueError(f"results = {results!r} is invalid: expected a folder path (str or Path) or None")
    for name, v in (("force", force), ("progress", progress)):
        if not isinstance(v, bool):
            raise ValueError(f"{name} = {v!r} is invalid: expected True or False")
    for name, v in (("max_group_size", max_group_size), ("checkpoint_every", checkpoint_every),
                    ("workers", workers)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} = {v!r} is invalid: expected None or an integer >= 1")
    if deterministic is not None and not isinstance(deterministic, bool):
        raise ValueError(f"deterministic = {deterministic!r} is invalid: expected None, True or False")
    if compile is not None and compile not in COMPILE_MODES:
        raise ValueError(f"compile = {compile!r} is invalid: expected None or one of {COMPILE_MODES}")
    v = checkpoint_interval_s
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
        raise ValueError(f"checkpoint_interval_s = {v!r} is invalid: expected a finite number of seconds > 0")


# ---------------------------------------------------------------------------------------------
# the public entry point
# ---------------------------------------------------------------------------------------------
def _config_list(configs) -> list[RunConfig]:
    """``configs`` (one RunConfig or an iterable of them) as a list; anything else raises."""
    if isinstance(configs, RunConfig):
        configs = [configs]
    try:
        configs = list(configs)
    except TypeError:
        raise ValueError(f"configs must be a RunConfig or a list of them, got {type(configs).__name__}") from None
    bad = [c for c in configs if not isinstance(c, RunConfig)]
    if bad:
        raise ValueError(f"configs must be RunConfig instances, got {type(bad[0]).__name__}")
    return configs


def _stored_and_missing(configs: list[RunConfig], store: Store | None,
                        force: bool) -> tuple[dict[str, Record], dict[str, RunConfig]]:
    """``(found, todo)`` by run id, each run once: the records the store holds (none with
    ``force`` or without a store; a stored run's leftover checkpoint is discarded) and the
    configs to train."""
    found: dict[str, Record] = {}
    todo: dict[str, RunConfig] = {}
    for c in configs:
        rid = run_id(c)
        if rid in found or rid in todo:
            continue
        rec = None if (force or store is None) else store.get(c)
        if rec is not None:
            found[rid] = rec
            if store.checkpoint_path(rid).exists():  # stored by a process killed before its cleanup
                ckpt.discard(store, rid)
        else:
            todo[rid] = c
    return found, todo


def train(configs: list[RunConfig] | RunConfig, results: str | Path | None = "results",
          device: str = "auto", force: bool = False, progress: bool = True,
          max_group_size: int | None = None, checkpoint_every: int | None = None,
          checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
          workers: int | None = None, deterministic: bool | None = None,
          compile: str | None = None) -> list[Record]:
    """Train what is missing from the store, load the rest; return records in input order.

    ``results=None`` trains in memory without storing anything. With a store:

    - each run checkpoints to ``results/checkpoints/<run_id>.pt`` (every ``checkpoint_every``
      updates, else time-based, see :class:`~modarith.runtime.runner.Checkpointer`); a rerun resumes
      each run from its own checkpoint, in whatever group it lands (``force=True`` ignores
      stored records and checkpoints); a stored run's checkpoint is deleted;
    - a process holds ``results/locks/<run_id>.lock`` for each run it trains; another process
      wanting the same runs waits, then loads what the first one stored;
    - corrupt or foreign files are moved to ``results/corrupt/`` with a warning and retrained.

    Runs of one shape train as one vectorised group, in chunks of at most ``max_group_size``
    (``None``: :data:`CPU_MAX_GROUP` on the CPU, no limit elsewhere; :func:`engine_groups`).
    ``workers``: worker processes the groups are spread over (``None``:
    :func:`default_workers`; 1: this process). Each worker runs whole groups with
    ``cores // workers`` threads (one GPU each on CUDA); groups are split so that every worker
    has work (a group of K gives the numbers of K single runs). ``deterministic``: bit-exact
    CUDA (see :mod:`modarith.runtime.devices`; None reads ``MODARITH_DETERMINISTIC``). ``compile``: a
    ``torch.compile`` mode for the forward and backward (``"reduce-overhead"``: CUDA graphs);
    a failed compilation warns and trains eagerly. On CUDA, ``MODARITH_WORKERS=N`` above the
    GPU count puts several workers (groups training at once) on each GPU.

    An out-of-memory error in a group splits it in halves and retries (with a warning).
    """
    configs = _config_list(configs)
    _check_train_args(results, force, progress, max_group_size, checkpoint_every, checkpoint_interval_s,
                      workers, deterministic, compile)
    device = resolve_device(device)
    check_float64(configs, device)
    store = Store(results) if results is not None else None
    if store is not None:
        store.clean_tmp()
        ckpt.convert_group_checkpoints(store)
    found, todo = _stored_and_missing(configs, store, force)
    groups, n = engine_groups(list(todo.values()), device, workers, max_group_size)
    opts = dict(device=device, progress=progress, checkpoint_every=checkpoint_every,
                checkpoint_interval_s=checkpoint_interval_s, deterministic=deterministic, compile=compile)
    if n <= 1:
        found.update(run_groups(groups, store, force, **opts))
    else:
        found.update(run_parallel(groups, results, force, n, **opts))
    return [found[run_id(c)] for c in configs]


def group_id(configs: list[RunConfig]) -> str:
    """Identity of a set of runs (their run ids, in order), e.g. to name a job."""
    return hashlib.sha256("|".join(run_id(c) for c in configs).encode()).hexdigest()[:20]

