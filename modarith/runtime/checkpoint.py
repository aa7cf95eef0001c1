"""Per-run training checkpoints: each run's own state, resumable by any group.

A checkpoint is ``results/checkpoints/<run_id>.pt`` (``weights_only`` loadable, written
atomically) and holds one run's slice of a group's state: step, evaluations done, parameters
``flat`` (P,), AdamW moments (P,) ×2, Grokfast EMA (P,) when on, the Grokfast-MA window
(w, P) and its float64 running sum (P,) when on, history so far (E, M),
weight snapshots (n, P) when on, and the wall time so far. Everything else that decides the
rest of the run is a pure function of its config: the data split, the mini-batch order
(``group.shuffle_perm(seed, epoch)``) and the dropout masks (``group.dropout_generators``:
seeded by run and step). So a run resumes in any group that contains it, whatever the
grouping, worker count or device count, and gives the numbers it gives alone. (A run
resumed on another *kind* of device, CUDA to CPU say, continues with that device's
generator: dropout masks of the same distribution, not the same masks.)

Checkpoints of format 2 (one file per *group*, ``run_ids`` inside) are split into per-run
files by :func:`convert_group_checkpoints`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modarith.runtime.devices import to_host
from modarith.runtime.group import expected_counts
from modarith.runtime.store import CorruptRecord, Store, atomic_torch_save, safe_torch_load

FORMAT = 3
GROUP_FORMAT = 2  # the previous layout: one file per group
TENSORS = ("flat", "exp_avg", "exp_avg_sq", "hist")  # always present; "grad_ema", "snapshots" optional


def save(store: Store, state: dict) -> Path:
    """Write one run's state (see :func:`run_state`) atomically."""
    path = store.checkpoint_path(state["run_id"])
    atomic_torch_save({"format": FORMAT, **state}, path)
    return path


def load(store: Store, run_id: str) -> dict | None:
    """The checkpoint of ``run_id`` (structure checked), or None. A file that cannot be read,
    belongs to another run or has another format is moved to ``corrupt/`` with the reason."""
    path = store.checkpoint_path(run_id)
    s = store.load_checkpoint(path)  # weights_only; unreadable files are moved aside there
    if s is None:
        return None
    try:
        check_structure(s, run_id)
    except CorruptRecord as e:
        store.quarantine(path, f"checkpoint {e}")
        return None
    return s


def check_structure(s: dict, run_id: str) -> None:
    """Raise :class:`CorruptRecord` unless ``s`` is a format-3 checkpoint of ``run_id``."""
    if s.get("format") != FORMAT:
        raise CorruptRecord(f"format {s.get('format')!r} is not {FORMAT} (written by another modarith version)")
    if s.get("run_id") != run_id:
        raise CorruptRecord(f"belongs to run {s.get('run_id')!r}, not {run_id}")
    if not (isinstance(s.get("step"), int) and isinstance(s.get("n_evals_done"), int)):
        raise CorruptRecord("has no integer step and evaluation count")
    for name in TENSORS:
        if not isinstance(s.get(name), torch.Tensor):
            raise CorruptRecord(f"has no tensor {name!r}")


def discard(store: Store, run_id: str) -> None:
    """Delete a run's checkpoint (the run is stored, or restarts from scratch)."""
    store.checkpoint_path(run_id).unlink(missing_ok=True)


def convert_group_checkpoints(store: Store) -> list[str]:
    """Split every format-2 group checkpoint into per-run checkpoints; return the run ids.

    The old format kept one random state for the whole group; dropout masks now come from
    each run's own generator, so a converted run with dropout continues with its own masks
    from the checkpoint's step on. A file that is not a valid group checkpoint is moved aside.
    """
    converted = []
    folder = store.checkpoints
    for path in sorted(folder.glob("[!.]*.pt")) if folder.exists() else []:
        try:
            s = safe_torch_load(path)
        except Exception:  # noqa: BLE001 - left for load() to quarantine with its reason
            continue
        if not (isinstance(s, dict) and s.get("format") == GROUP_FORMAT):
            continue
        try:
            runs = s["run_ids"]
            K = len(runs)
            for name in TENSORS:
                if s[name].shape[0] != K:
                    raise ValueError(f"{name} has {s[name].shape[0]} rows for {K} runs")
            snaps = s.get("snapshots")
            for k, rid in enumerate(runs):
                state = {"run_id": rid, "step": int(s["step"]), "n_evals_done": int(s["n_evals_done"]),
                         "wall_time_s": float(s.get("wall_time_s", 0.0)),
                         **{n: s[n][k].clone() for n in TENSORS}}
                if "grad_ema" in s:
                    state["grad_ema"] = s["grad_ema"][k].clone()
                if isinstance(snaps, torch.Tensor):
                    state["snapshots"] = snaps[:, k].clone()
                save(store, state)
                converted.append(rid)
        except Exception as e:  # noqa: BLE001 - any malformed group file is set aside, never used
            store.quarantine(path, f"group checkpoint (format 2) could not be split per run: {e}")
            continue
        path.unlink(missing_ok=True)
    return converted


def run_state(trainer, k: int, wall_time_s: float) -> dict:
    """Run k's own state in ``trainer`` (a :class:`~modarith.runtime.group.GroupTrainer`), on the host."""
    s = {"run_id": trainer.run_ids[k], "step": trainer.step, "n_evals_done": trainer.n_evals_done,
         "wall_time_s": float(wall_time_s), "flat": to_host(trainer.flat[k]),
         "exp_avg": to_host(trainer.exp_avg[k]), "exp_avg_sq": to_host(trainer.exp_avg_sq[k]),
         "hist": to_host(trainer.hist[k])}
    if trainer.grad_ema is not None:
        s["grad_ema"] = to_host(trainer.grad_ema[k])
    w = trainer.windows[k]
    if w:  # Grokfast-MA: the run's own w slots (update t in slot t % w) and running sum
        s["ma_window"], s["ma_sum"] = to_host(trainer.ma_window[:w, k]), to_host(trainer.ma_sum[k])
    if trainer.snapshots:
        s["snapshots"] = torch.stack([snap[k] for snap in trainer.snapshots])  # (n, P)
    return s


def check_fits(trainer, s: dict) -> None:
    """Raise :class:`CorruptRecord` unless state ``s`` fits a run of ``trainer``'s group."""
    step = s["step"]
    if not 0 <= step <= trainer.T:
        raise CorruptRecord(f"step {step} is outside [0, {trainer.T}]")
    n_evals, n_snaps = expected_counts(trainer, step)
    if s["n_evals_done"] != n_evals:
        raise CorruptRecord(f"has {s['n_evals_done']} evaluations done at step {step}, not {n_evals}")
    P, (E, M) = trainer.flat.shape[1], trainer.hist.shape[1:]
    shapes = {"flat": (P,), "exp_avg": (P,), "exp_avg_sq": (P,), "hist": (E, M)}
    if trainer.grad_ema is not None:
        shapes["grad_ema"] = (P,)
    w = trainer.windows[trainer.run_ids.index(s["run_id"])] if s.get("run_id") in trainer.run_ids else 0
    if w:
        shapes["ma_window"] = (w, P)
        t = s.get("ma_sum")
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (P,) or t.dtype != torch.float64:
            raise CorruptRecord(f"tensor 'ma_sum' does not have shape {(P,)} and dtype float64")
    snaps = s.get("snapshots")
    n = len(snaps) if isinstance(snaps, torch.Tensor) and snaps.dim() == 2 else 0
    if trainer.snapshot_steps and n not in n_snaps:
        raise CorruptRecord(f"has {n} weight snapshots at step {step}, not {n_snaps[0]} or {n_snaps[1]}")
    if n:
        shapes["snapshots"] = (n, P)
    for name, shape in shapes.items():
        t = s.get(name)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != trainer.flat.dtype:
            raise CorruptRecord(f"tensor {name!r} does not have shape {shape} and dtype {trainer.flat.dtype}")


def restore(trainer, states: list[dict]) -> None:
    """Put each run's checkpointed state into ``trainer`` (one state per run, in order, all at
    one step: :func:`check_fits` first). Nothing is assigned unless every state is usable."""
    steps = {s["step"] for s in states}
    if len(states) != trainer.K or len(steps) != 1:
        raise ValueError(f"restore needs {trainer.K} states at one step, got {len(states)} at {sorted(steps)}")
    for s in states:
        check_fits(trainer, s)
    dev = trainer.device
    stack = lambda name: torch.stack([s[name] for s in states]).to(dev).contiguous()  # noqa: E731
    trainer.step, trainer.n_evals_done = states[0]["step"], states[0]["n_evals_done"]
    trainer.flat, trainer.exp_avg, trainer.exp_avg_sq = stack("flat"), stack("exp_avg"), stack("exp_avg_sq")
    trainer.hist = stack("hist")
    if trainer.grad_ema is not None:
        trainer.grad_ema = stack("grad_ema")
    for k, s in enumerate(states):
        w = trainer.windows[k]
        if w:
            trainer.ma_window[:w, k] = s["ma_window"].to(dev)
            trainer.ma_sum[k] = s["ma_sum"].to(dev)
    n = len(states[0].get("snapshots", ()))
    trainer.snapshots = [torch.stack([s["snapshots"][i] for s in states]) for i in range(n)]
    trainer.elapsed_before = max(float(s.get("wall_time_s", 0.0)) for s in states)
