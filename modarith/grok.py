"""Time to grok: when, over seeds, a configuration first reaches A_val ≥ 0.99.

:func:`time_to_grok` trains N seeds of one configuration as one vectorised group (through
:func:`modarith.engine.train`, so stored runs are reused) and returns one row per seed
(:func:`grok_frame`) and the distribution over seeds (:func:`grok_summary`): the median
with a bootstrap confidence interval and the fraction of seeds that grok within a budget.

Wall seconds are derived, not timed per seed: the seeds train together, so a seed that
groks at step t does so after ``group_wall_time_s · t / T`` seconds of the group's run
(``wall_s``, what one waits for with this group), and its own share of the machine is that
divided by the group size (``run_wall_s``). Both assume a constant cost per step (evaluations
are denser before step ``eval_dense``, so early times are slight under-estimates).
A seed that never groks has step = wall = ∞ (it counts in the median and the fraction).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from .config import RunConfig
from .store import Record

GROK_THRESHOLD = 0.99  # A_val at or above this counts as grokked


def grok_step(history: dict, threshold: float = GROK_THRESHOLD) -> float:
    """First evaluated step with ``val_acc >= threshold`` (∞ when never)."""
    for step, acc in zip(history["step"], history["val_acc"]):
        if acc >= threshold:
            return float(step)
    return math.inf


def grok_frame(records: list[Record], threshold: float = GROK_THRESHOLD):
    """One row per run: ``run_id, model, seed, lr, grokfast_alpha, grokfast_lamb, T, step,
    wall_s, run_wall_s`` (step and wall ∞ when the run never reaches ``threshold``)."""
    import pandas as pd

    rows = []
    for rec in records:
        c, meta = rec.config, rec.meta
        T = c.total_steps
        step = grok_step(rec.history, threshold)
        group_wall = float(meta.get("group_wall_time_s", meta.get("wall_time_s", math.nan)))
        size = int(meta.get("group_size", 1))
        wall = group_wall * step / T if math.isfinite(step) else math.inf
        rows.append({"run_id": rec.run_id, "model": c.model, "seed": c.seed, "lr": c.lr,
                     "grokfast_alpha": c.grokfast_alpha, "grokfast_lamb": c.grokfast_lamb,
                     "T": T, "step": step, "wall_s": wall, "run_wall_s": wall / size})
    return pd.DataFrame(rows)


def bootstrap_median_ci(values, n_boot: int = 2000, level: float = 0.95,
                        rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (values may be ∞).

    Resamples ``values`` with replacement ``n_boot`` times; the bounds are the lower/upper
    order statistics at (1 ± level)/2 of the resampled medians (no interpolation, so ∞ stays
    ∞ instead of becoming NaN)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or np.isnan(x).any():
        raise ValueError("values must be a non-empty 1-D array without NaN (∞ = never)")
    if not 0 < level < 1:
        raise ValueError(f"level = {level!r} is invalid: expected a number in (0, 1)")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot = {n_boot!r} is invalid: expected an integer >= 1")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    meds = np.median(x[rng.integers(0, len(x), size=(n_boot, len(x)))], axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(meds, a, method="lower")), float(np.quantile(meds, 1 - a, method="higher")))


def grok_summary(frame, within: float | None = None, by: tuple[str, ...] = ("model", "lr",
                 "grokfast_alpha", "grokfast_lamb"), n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0):
    """Distribution over seeds, one row per ``by`` group: ``n, n_grokked, median_step,
    step_ci_low, step_ci_high, median_wall_s, wall_ci_low, wall_ci_high, median_run_wall_s,
    within, frac_within`` (fraction of seeds grokking at a step ≤ ``within``; default: the
    runs' T). Bootstrap with ``np.random.default_rng(seed)``, the same for every group."""
    import pandas as pd

    rows = []
    for key, g in frame.groupby(list(by), sort=False):
        T = float(within if within is not None else g["T"].max())
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        steps = g["step"].to_numpy(float)
        lo, hi = bootstrap_median_ci(steps, n_boot, level, seed)
        wlo, whi = bootstrap_median_ci(g["wall_s"].to_numpy(float), n_boot, level, seed)
        row.update(n=len(g), n_grokked=int(np.isfinite(steps).sum()), median_step=float(np.median(steps)),
                   step_ci_low=lo, step_ci_high=hi, median_wall_s=float(np.median(g["wall_s"])),
                   wall_ci_low=wlo, wall_ci_high=whi,
                   median_run_wall_s=float(np.median(g["run_wall_s"])), within=T,
                   frac_within=float(np.mean(steps <= T)))
        rows.append(row)
    return pd.DataFrame(rows)


def time_to_grok(config: RunConfig, seeds: list[int], results: str | Path | None = "results",
                 device: str = "auto", threshold: float = GROK_THRESHOLD, within: float | None = None,
                 force: bool = False, progress: bool = False, n_boot: int = 2000, level: float = 0.95):
    """Train ``config`` for each seed as one vectorised group; return ``(frame, summary)``
    (:func:`grok_frame`, :func:`grok_summary`). Stored runs are loaded, not retrained."""
    from .engine import train

    if not isinstance(config, RunConfig):
        raise ValueError(f"config must be a RunConfig, got {type(config).__name__}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds = {seeds!r} is invalid: expected distinct integers >= 0")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold = {threshold!r} is invalid: expected a number in (0, 1]")
    configs = [dataclasses.replace(config, seed=s) for s in seeds]
    records = train(configs, results=results, device=device, force=force, progress=progress)
    frame = grok_frame(records, threshold)
    return frame, grok_summary(frame, within, n_boot=n_boot, level=level)


def _fmt(v: float, unit: str = "") -> str:
    if not math.isfinite(v):
        return "∞"
    return f"{v:.1f} s" if unit == " s" else f"{v:,.0f}"


def describe_row(row) -> str:
    """'median 1,200 steps (95% CI 900–1,500), 12.3 s of group wall time …; 8/8 seeds within
    3,000 steps' (∞: more than half of the resampled seeds never grok)."""
    n_in = round(row["frac_within"] * row["n"])
    if not math.isfinite(row["median_step"]):
        return f"median ∞ (only {n_in}/{row['n']} seeds grok within {_fmt(row['within'])} steps)"
    return (f"median {_fmt(row['median_step'])} steps (CI {_fmt(row['step_ci_low'])}–"
            f"{_fmt(row['step_ci_high'])}), {_fmt(row['median_wall_s'], ' s')} of group wall time "
            f"(CI {_fmt(row['wall_ci_low'], ' s')}–{_fmt(row['wall_ci_high'], ' s')}); "
            f"{n_in}/{row['n']} seeds within {_fmt(row['within'])} steps")


def speedup_sentence(base, other, base_name: str, other_name: str) -> str:
    """A computed sentence comparing two :func:`grok_summary` rows (median steps and wall)."""
    def ratio(a, b):
        if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
            return None
        return a / b

    rs, rw = ratio(base["median_step"], other["median_step"]), ratio(base["median_wall_s"], other["median_wall_s"])
    if rs is None:
        slow = base_name if not math.isfinite(base["median_step"]) else other_name
        verdict = f"the speed-up cannot be computed: {slow} does not grok for most seeds within the budget"
    else:
        faster = "sooner" if rs >= 1 else "later"
        verdict = (f"{other_name} groks {max(rs, 1 / rs):.2f}× {faster} in median steps"
                   + (f"; the ratio of median wall times ({base_name} / {other_name}) is {rw:.2f}"
                      if rw is not None else ""))
    return (f"{base_name}: {describe_row(base)}. {other_name}: {describe_row(other)}. So {verdict}.")
