"""Time to grok: when, over seeds, a configuration reaches A_val ≥ 0.99 and stays there.

:func:`grok_step` is the definition: the first evaluated step from which the validation
accuracy stays at or above the bar to the end of the run (or, with ``stay = n``, for the n
evaluations that follow), so a run that touches 0.99 and falls back has not grokked yet. With
``window = W`` it is the first step of the first W consecutive evaluations at or above the bar
(all W inside the run): the time does not depend on T beyond that window, and one later flicker
does not un-grok a run.
:func:`time_to_grok` trains N seeds of one configuration as one vectorised group (through
:func:`modarith.runtime.engine.train`, so stored runs are reused) and returns one row per seed
(:func:`grok_frame`) and the distribution over seeds (:func:`grok_summary`): the
Kaplan–Meier median with its interval (:mod:`modarith.study.survival`), runs that never grok
counted as censored at their last step T.

Wall seconds are derived, not timed per seed: the seeds train together, so a seed that
groks at step t does so after ``group_wall_time_s · t / T`` seconds of the group's run
(``wall_s``, what one waits for with this group), and its own share of the machine is that
divided by the group size (``run_wall_s``). Both assume a constant cost per step (evaluations
are denser before step ``eval_dense``, so early times are slight under-estimates).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.store import Record
from modarith.study.protocol import GROK_THRESHOLD
from modarith.study.survival import km_median

# RunConfig fields that tell arms apart, copied into every grok_frame row
ARM_FIELDS = ("lr", "weight_decay", "beta1", "optimizer", "warmup_steps", "clip_norm",
              "grokfast_alpha", "grokfast_lamb", "grokfast_window", "orthograd", "loss")


def grok_step(history: dict, threshold: float = GROK_THRESHOLD, stay: int | None = None,
              window: int | None = None) -> float:
    """First evaluated step with ``val_acc >= threshold`` there and at every later evaluation
    (``stay`` and ``window`` None) or at the ``stay`` evaluations that follow it (fewer at the
    end of the run); with ``window = W``, the first step of the first W consecutive
    evaluations at or above the bar, all W within the run. ∞ when there is none."""
    if stay is not None and (isinstance(stay, bool) or not isinstance(stay, int) or stay < 0):
        raise ValueError(f"stay = {stay!r} is invalid: expected None (to the end) or an integer >= 0")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise ValueError(f"window = {window!r} is invalid: expected None or an integer >= 1 (evaluations)")
    if window is not None and stay is not None:
        raise ValueError(f"stay = {stay!r} and window = {window!r}: give at most one of them")
    steps, acc = list(history["step"]), [float(a) for a in history["val_acc"]]
    n = len(acc)
    ok = [a >= threshold for a in acc]  # NaN counts as below
    if window is not None:
        run = 0  # consecutive evaluations at or above the bar, ending at i
        for i in range(n):
            run = run + 1 if ok[i] else 0
            if run == window:
                return float(steps[i - window + 1])
        return math.inf
    # holds[i]: ok from i to the end; with stay, ok over i … i + stay
    for i in range(n):
        end = n if stay is None else min(n, i + stay + 1)
        if all(ok[i:end]):
            return float(steps[i])
    return math.inf


def grok_frame(records: list[Record], threshold: float = GROK_THRESHOLD, stay: int | None = None,
               window: int | None = None):
    """One row per run: ``run_id, model, seed, <ARM_FIELDS>, T, step`` (:func:`grok_step` with
    ``stay`` or ``window``, ∞ when never), ``time`` (the step, or T when censored), ``observed`` (grokked by T),
    ``wall_s, run_wall_s`` (∞ when never)."""
    import pandas as pd

    rows = []
    for rec in records:
        c, meta = rec.config, rec.meta
        T = c.total_steps
        step = grok_step(rec.history, threshold, stay, window)
        group_wall = float(meta.get("group_wall_time_s", meta.get("wall_time_s", math.nan)))
        size = int(meta.get("group_size", 1))
        wall = group_wall * step / T if math.isfinite(step) else math.inf
        rows.append({"run_id": rec.run_id, "model": c.model, "seed": c.seed,
                     **{f: getattr(c, f) for f in ARM_FIELDS}, "T": T, "step": step,
                     "time": step if math.isfinite(step) else float(T),
                     "observed": math.isfinite(step), "wall_s": wall, "run_wall_s": wall / size})
    return pd.DataFrame(rows)


def grok_summary(frame, by: tuple[str, ...] = ("model",) + ARM_FIELDS, level: float = 0.95):
    """Distribution over seeds, one row per ``by`` group: ``n, n_grokked, median_step,
    step_ci_low, step_ci_high`` (Kaplan–Meier median and interval of ``level``, ∞ where not
    reached), ``T``."""
    import pandas as pd

    rows = []
    for key, g in frame.groupby(list(by), sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        m = km_median(g["time"], g["observed"], level)
        row.update(n=m["n"], n_grokked=m["n_grokked"], median_step=m["median"],
                   step_ci_low=m["ci_low"], step_ci_high=m["ci_high"], T=m["T"])
        rows.append(row)
    return pd.DataFrame(rows)


def time_to_grok(config: RunConfig, seeds: list[int], results: str | Path | None = "results",
                 device: str = "auto", threshold: float = GROK_THRESHOLD, stay: int | None = None,
                 force: bool = False, progress: bool = False, level: float = 0.95):
    """Train ``config`` for each seed as one vectorised group; return ``(frame, summary)``
    (:func:`grok_frame`, :func:`grok_summary`). Stored runs are loaded, not retrained."""
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
    frame = grok_frame(records, threshold, stay)
    return frame, grok_summary(frame, level=level)


def fit_time_law(frame, n_boot: int = 2000, level: float = 0.95, seed: int = 0, censored: bool = False) -> dict:
    """Fit ``log t = a − b·log(η·λ) + c·log η`` over the grokked runs of ``frame`` (one row per
    run: ``seed, lr, weight_decay, time, observed``; rows with λ = 0 or not grokked are left
    out) by least squares, with percentile intervals of ``level`` from a bootstrap over seeds:
    each of ``n_boot`` resamples draws the seeds with replacement and keeps each drawn seed's
    runs together (the runs of one seed share its split and initial weights). Resamples whose
    design cannot identify (a, b, c) are skipped and counted.

    The 1/(η·λ) law (time set by the product alone) is b = 1, c = 0. Returns ``a, b, c``,
    ``b_low, b_high, c_low, c_high``, ``n_runs`` (grokked runs fitted), ``n_seeds``,
    ``n_boot`` (resamples used), ``n_skipped``, ``n_censored`` (censored runs in the fit).

    ``censored=False``: only grokked runs enter the fit, by least squares; where slow arms are
    censored at T, their fastest seeds are the ones fitted, which pulls b down.
    ``censored=True``: the runs that never grokked stay in as right-censored at their T, and
    (a, b, c) are the maximum-likelihood estimates of ``log t = a − b·log(η·λ) + c·log η + σ·ε``
    with ε standard normal (a log-normal accelerated-failure-time model, what
    ``lifelines.LogNormalAFTFitter`` fits; written with scipy so the bootstrap's thousands of
    fits take seconds). Identification needs the *grokked* runs to span the design.
    """
    import numpy as np

    need = {"seed", "lr", "weight_decay", "time", "observed"}
    if need - set(frame.columns):
        raise ValueError(f"frame lacks columns {sorted(need - set(frame.columns))}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot = {n_boot!r} is invalid: expected an integer >= 0")
    if not 0 < level < 1:
        raise ValueError(f"level = {level!r} is invalid: expected a number in (0, 1)")
    f = frame[(frame["observed"].astype(bool) | censored) & (frame["weight_decay"] > 0)]
    eta, lam, t = (f[k].to_numpy(np.float64) for k in ("lr", "weight_decay", "time"))
    if (t <= 0).any():
        raise ValueError("time must be > 0 for the log fit (a run grokked at step 0?)")
    X = np.column_stack([np.ones(len(f)), -np.log(eta * lam), np.log(eta)])  # (n, 3)
    y = np.log(t)
    obs = f["observed"].to_numpy(bool)

    def solve(rows):
        seen = rows[obs[rows]]
        if len(seen) < 3 or np.linalg.matrix_rank(X[seen]) < 3:
            return None
        coef = np.linalg.lstsq(X[seen], y[seen], rcond=None)[0]
        return _censored_normal_fit(X[rows], y[rows], obs[rows], coef) if censored else coef

    coef = solve(np.arange(len(f)))
    if coef is None:
        raise ValueError(f"the grokked runs ({int(obs.sum())}) cannot identify a, b and c: the fit needs "
                         "at least two values of η·λ and two of η that are not tied to each other")
    seeds = f["seed"].to_numpy()
    uniq = np.unique(seeds)
    rows_of = {s: np.flatnonzero(seeds == s) for s in uniq}
    rng = np.random.default_rng(seed)
    boot, skipped = [], 0
    for _ in range(n_boot):
        draw = rng.choice(uniq, len(uniq), replace=True)
        c = solve(np.concatenate([rows_of[s] for s in draw]))
        if c is None:
            skipped += 1
        else:
            boot.append(c)
    boot = np.asarray(boot).reshape(-1, 3)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo, hi = (np.percentile(boot, q, axis=0) if len(boot) else np.full((2, 3), np.nan))
    return {"a": float(coef[0]), "b": float(coef[1]), "c": float(coef[2]),
            "b_low": float(lo[1]), "b_high": float(hi[1]), "c_low": float(lo[2]), "c_high": float(hi[2]),
            "n_runs": len(f), "n_seeds": len(uniq), "n_boot": len(boot), "n_skipped": skipped,
            "n_censored": int((~obs).sum())}


def _censored_normal_fit(X, y, observed, start):
    """Maximum-likelihood β of ``y = Xβ + σ·ε`` (ε standard normal) where the rows not
    ``observed`` are right-censored at ``y`` (only ``y_true ≥ y`` is known); ``start``: the
    least-squares β of the observed rows."""
    import numpy as np
    from scipy import optimize, stats

    resid = y[observed] - X[observed] @ start
    theta0 = np.append(start, np.log(max(resid.std(), 1e-3)))

    def nll(theta):
        z = (y - X @ theta[:-1]) / np.exp(theta[-1])
        return -(stats.norm.logpdf(z[observed]).sum() - observed.sum() * theta[-1]
                 + stats.norm.logsf(z[~observed]).sum())

    return optimize.minimize(nll, theta0, method="BFGS").x[:-1]


def arms_frame(arms: dict[str, list[Record]], threshold: float = GROK_THRESHOLD, stay: int | None = None,
               window: int | None = None):
    """:func:`grok_frame` of several arms (name -> its runs' records), with an ``arm`` column and,
    where the runs recorded it, ``final_train_collapse`` and ``max_train_collapse`` (the fraction
    of training samples whose float32 softmax collapsed, at T and at its largest)."""
    import pandas as pd

    parts = []
    for name, records in arms.items():
        f = grok_frame(records, threshold, stay, window)
        f.insert(0, "arm", name)
        if all("train_collapse" in r.history for r in records):
            f["final_train_collapse"] = [float(r.history["train_collapse"][-1]) for r in records]
            f["max_train_collapse"] = [max(map(float, r.history["train_collapse"])) for r in records]
        parts.append(f)
    if not parts:
        raise ValueError("arms is empty: expected arm names mapped to their records")
    return pd.concat(parts, ignore_index=True)


def arms_history(arms: dict[str, list[Record]], key: str):
    """One logged value of several arms' runs over training, long: ``arm, seed, step, value``."""
    import pandas as pd

    rows = [{"arm": name, "seed": r.config.seed, "step": s, "value": float(v)}
            for name, records in arms.items() for r in records
            for s, v in zip(r.history["step"], r.history[key])]
    return pd.DataFrame(rows, columns=["arm", "seed", "step", "value"])


def choose_lr(frame, reference: float):
    """The learning rate of one arm chosen on its tuning runs (``frame``: one row per run with
    ``lr, time, observed``): the most runs grokked, then the shortest mean time (censored runs
    at T), then the rate closest to ``reference`` in log (the base arm's rate)."""
    if frame.empty:
        raise ValueError("frame is empty: expected the tuning runs of one arm")
    g = frame.groupby("lr").agg(n=("observed", "sum"), t=("time", "mean")).reset_index()
    g["far"] = (g.lr.map(math.log) - math.log(reference)).abs()
    return float(g.sort_values(["n", "t", "far"], ascending=[False, True, True]).lr.iloc[0])
