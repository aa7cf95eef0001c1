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

from modarith.core.metrics import count_collapses, first_window
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.store import Record
from modarith.study.protocol import GROK_THRESHOLD
from modarith.study.survival import km_median

# RunConfig fields that tell arms apart, copied into every grok_frame row
ARM_FIELDS = ("lr", "weight_decay", "beta1", "optimizer", "warmup_steps", "clip_norm",
              "grokfast_alpha", "grokfast_lamb", "grokfast_window", "orthograd", "loss", "init_scale")
OUTCOMES = ("grokked", "unstable", "never fitted", "censored")  # competing events 1, 2, 3; 0 censored


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
        i = first_window(acc, threshold, window)
        return math.inf if i is None else float(steps[i])
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


def outcome(history: dict, threshold: float = GROK_THRESHOLD, window: int = 1, fit_bar: float = 0.99,
            crash_below: float = 0.9) -> tuple[str, float]:
    """What ended a run first, and when: ``("grokked", t)`` (:func:`grok_step` with ``window``),
    ``("unstable", t)`` (training accuracy fell below ``crash_below`` after it had reached
    ``fit_bar``, before the run grokked: :func:`modarith.core.metrics.count_collapses`; t = the
    first evaluation below), ``("never fitted", T)`` (training accuracy never reached ``fit_bar``),
    else ``("censored", T)`` (fitted, stable, not grokked by its last step T). Instability and never
    fitting are competing events of grokking, not censoring."""
    steps = history["step"]
    T = float(steps[-1])
    g = grok_step(history, threshold, window=window)
    crash = count_collapses(history, reached=fit_bar, below=crash_below)
    first_crash = crash["episodes"][0][0] if crash["episodes"] else math.inf
    if first_crash < g:
        return "unstable", float(first_crash)
    if math.isfinite(g):
        return "grokked", g
    return ("never fitted", T) if crash["first_fit"] is None else ("censored", T)


def outcome_frame(records: list[Record], threshold: float = GROK_THRESHOLD, window: int = 1,
                  fit_bar: float = 0.99, crash_below: float = 0.9):
    """One row per run: ``run_id, model, seed, <ARM_FIELDS>, el`` (η·λ), ``T`` (the schedule's
    last step), ``stopped_at`` (the step a stopping rule ended it, NaN if none), ``outcome``
    (:data:`OUTCOMES`, :func:`outcome`), ``event`` (its index in OUTCOMES + 1, 0 for censored),
    ``time`` (its step), ``observed`` (grokked), ``time_el`` (time·η·λ)."""
    import pandas as pd

    rows = []
    for rec in records:
        c = rec.config
        what, t = outcome(rec.history, threshold, window, fit_bar, crash_below)
        stopped = rec.meta.get("stopped_at_step")
        rows.append({"run_id": rec.run_id, "model": c.model, "seed": c.seed, **{f: getattr(c, f) for f in ARM_FIELDS},
                     "el": c.lr * c.weight_decay, "T": c.total_steps,
                     "stopped_at": math.nan if stopped is None else float(stopped), "outcome": what,
                     "event": 0 if what == "censored" else OUTCOMES.index(what) + 1, "time": t,
                     "observed": what == "grokked", "time_el": t * c.lr * c.weight_decay})
    return pd.DataFrame(rows)


def arm_table(frame, by: tuple[str, ...] = ("init_scale", "el"), level: float = 0.95):
    """Per arm (one row per ``by`` group of :func:`outcome_frame`): ``n``, the count of each
    outcome, and the Kaplan–Meier median of t·η·λ with its interval of ``level``
    (``median_el, el_low, el_high``; ∞ where not reached), the competing events counted as
    censored at their time (the median of the time to grok had they not happened; the
    cumulative incidence, :func:`modarith.study.survival.competing_incidence`, is the
    unconditional reading)."""
    import pandas as pd

    rows = []
    for key, g in frame.groupby(list(by), sort=True):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        m = km_median(g["time_el"], g["observed"], level)
        row.update(n=len(g), **{o.replace(" ", "_"): int((g["outcome"] == o).sum()) for o in OUTCOMES},
                   median_el=m["median"], el_low=m["ci_low"], el_high=m["ci_high"], T=int(g["T"].max()))
        rows.append(row)
    return pd.DataFrame(rows)


def scale_threshold(records: list[Record]) -> dict:
    """α* = N_eq / N₀ from the α = 1 runs of ``records``: N₀ their median initial parameter norm,
    N_eq their median norm at their last evaluation (under AdamW the norm settles at an
    equilibrium within a few hundred steps). Above α* the weights start larger than that
    equilibrium and decay to it. Returns ``n0, n_eq, alpha_star``."""
    import numpy as np

    ones = [r for r in records if r.config.init_scale == 1.0]
    if not ones:
        raise ValueError("scale_threshold needs runs at init_scale = 1")
    n0 = float(np.median([r.history["param_norm"][0] for r in ones]))
    n_eq = float(np.median([r.history["param_norm"][-1] for r in ones]))
    return {"n0": n0, "n_eq": n_eq, "alpha_star": n_eq / n0}


def median_slopes(table, alpha_min: float = 1.0) -> dict:
    """Per η·λ of :func:`arm_table`: the least-squares slope of the median t·η·λ against ln α over
    the arms with α ≥ ``alpha_min`` whose median is reached ({el: (slope, n arms)}; NaN with fewer
    than two). Descriptive (medians, no interval): the law's prediction is slope 1."""
    import numpy as np

    out = {}
    for el, g in table[table["init_scale"] >= alpha_min].groupby("el"):
        g = g[np.isfinite(g["median_el"])]
        slope = float(np.polyfit(np.log(g["init_scale"]), g["median_el"], 1)[0]) if len(g) >= 2 else math.nan
        out[float(el)] = (slope, len(g))
    return out


def one_slope_test(frame, group: str = "init_scale", n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """Does one exponent b of ``log t = a_g − b·log(η·λ)`` fit every value of ``group`` (α)?
    The log-normal AFT (:func:`fit_log_linear`, censored runs kept) with one intercept per group
    and one slope, against one slope per group: a likelihood-ratio test (χ², df = groups − 1).
    Only for runs whose outcome is grokked or censored (the caller keeps the arms where no run
    was unstable or never fitted). Returns ``b`` with its bootstrap interval (``b_low, b_high``,
    the pooled fit's counts and ``flag``), ``per_group`` ({g: (b_g, low, high)}), ``lr_stat``,
    ``df``, ``p_value``."""
    import numpy as np
    from scipy.stats import chi2

    bad = set(frame["outcome"]) - {"grokked", "censored"}
    if bad:
        raise ValueError(f"one_slope_test needs stable runs only; the frame has outcomes {sorted(bad)}")
    f = frame.assign(x=-np.log(frame["el"]))
    levels = sorted(f[group].unique())
    dummies = {f"g{i}": (f[group] == g).astype(float) for i, g in enumerate(levels[1:], 1)}
    slopes = {f"x{i}": f["x"] * (f[group] == g) for i, g in enumerate(levels)}
    pooled = fit_log_linear(f.assign(**dummies), ("x", *dummies), n_boot, level, seed)
    full = fit_log_linear(f.assign(**dummies, **slopes), (*dummies, *slopes), 0, level, seed)
    per = {}
    for g in levels:
        one = fit_log_linear(f[f[group] == g], ("x",), n_boot, level, seed)
        per[g] = (one["coef"]["x"], one["low"]["x"], one["high"]["x"])
    stat = max(0.0, 2 * (full["loglik"] - pooled["loglik"]))
    df = len(levels) - 1
    return {"b": pooled["coef"]["x"], "b_low": pooled["low"]["x"], "b_high": pooled["high"]["x"],
            "n_runs": pooled["n_runs"], "n_seeds": pooled["n_seeds"], "n_censored": pooled["n_censored"],
            "n_asked": pooled["n_asked"], "n_boot": pooled["n_boot"], "flag": pooled["flag"], "per_group": per,
            "lr_stat": stat, "df": df, "p_value": float(chi2.sf(stat, df)) if df else 1.0}


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
    """Fit ``log t = a − b·log(η·λ) + c·log η`` over the runs of ``frame`` (one row per run:
    ``seed, lr, weight_decay, time, observed``; rows with λ = 0 are left out) with
    :func:`fit_log_linear` (its counts and flags too), and name the coefficients: ``a, b, c``,
    ``b_low, b_high, c_low, c_high``.

    The 1/(η·λ) law (time set by the product alone) is b = 1, c = 0. ``censored=False``: only
    grokked runs enter the fit, by least squares; where slow arms are censored at T, their
    fastest seeds are the ones fitted, which pulls b down. ``censored=True``: the runs that
    never grokked stay in as right-censored at their T (the log-normal AFT model).
    """
    import numpy as np

    need = {"seed", "lr", "weight_decay", "time", "observed"}
    if need - set(frame.columns):
        raise ValueError(f"frame lacks columns {sorted(need - set(frame.columns))}")
    f = frame[frame["weight_decay"] > 0].assign(
        b=lambda d: -np.log(d["lr"] * d["weight_decay"]), c=lambda d: np.log(d["lr"]))
    try:
        out = fit_log_linear(f, ("b", "c"), n_boot, level, seed, censored)
    except ValueError as e:
        if "cannot identify" in str(e):
            raise ValueError(f"{e} (a, b and c: the fit needs at least two values of η·λ and two of η "
                             "that are not tied to each other)") from None
        raise
    for k in ("b", "c"):
        out[k], out[f"{k}_low"], out[f"{k}_high"] = out["coef"][k], out["low"][k], out["high"][k]
    out["a"] = out["coef"]["intercept"]
    return out


def fit_log_linear(frame, terms: tuple[str, ...], n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                   censored: bool = True) -> dict:
    """``log time = β₀ + Σ_j β_j·frame[terms[j]] + σ·ε`` (ε standard normal) over the runs of
    ``frame`` (one row per run: ``seed, time, observed`` and the ``terms`` columns), with
    percentile intervals of ``level`` from a bootstrap over seeds (each of ``n_boot`` resamples
    draws the seeds with replacement and keeps each drawn seed's runs together: they share its
    split and initial weights).

    ``censored=True``: the runs not ``observed`` stay in as right-censored at their time, and β is
    the maximum-likelihood estimate (the log-normal accelerated-failure-time model that
    ``lifelines.LogNormalAFTFitter`` fits; written with scipy so that the bootstrap's thousands of
    fits take seconds); ``censored=False``: least squares over the observed runs alone.

    Fits that fail say so. A fit of the whole frame that cannot identify β or whose optimiser
    does not converge raises ``ValueError``; so does, with ``censored=True``, a design cell (one
    combination of the terms' values) censored on every seed: its time is then only a bound, and
    the fit would extrapolate it from the normal tail. Every resample is counted: ``n_asked`` =
    ``n_boot`` (kept) + ``n_skipped`` (the resample cannot identify β) + ``n_failed`` (the optimiser
    did not converge); ``flag`` is empty when all were kept, else says how many were not and that
    the interval is over the kept ones.

    Returns ``coef``, ``low``, ``high`` (dicts: ``intercept`` and each term), ``sigma``, ``n_runs``,
    ``n_seeds``, ``n_censored``, ``n_asked``, ``n_boot``, ``n_skipped``, ``n_failed``, ``flag``.
    Over 60 lines: the fit, its checks and the counted bootstrap
    read best as one procedure.
    """
    import numpy as np

    terms = tuple(terms)
    need = {"seed", "time", "observed", *terms}
    if need - set(frame.columns):
        raise ValueError(f"frame lacks columns {sorted(need - set(frame.columns))}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot = {n_boot!r} is invalid: expected an integer >= 0")
    if not 0 < level < 1:
        raise ValueError(f"level = {level!r} is invalid: expected a number in (0, 1)")
    f = frame[frame["observed"].astype(bool) | censored]
    t = f["time"].to_numpy(np.float64)
    if (t <= 0).any():
        raise ValueError("time must be > 0 for the log fit (a run grokked at step 0?)")
    X = np.column_stack([np.ones(len(f))] + [f[k].to_numpy(np.float64) for k in terms])  # (n, 1 + J)
    y, obs = np.log(t), f["observed"].to_numpy(bool)
    if censored:
        cells = f.groupby(list(terms))["observed"].any()
        never = [dict(zip(terms, k if isinstance(k, tuple) else (k,))) for k in cells.index[~cells.to_numpy()]]
        if never:
            raise ValueError(f"censored on every seed: {never}; the fit cannot place their times "
                             "(lengthen T or leave these cells out)")
    P = X.shape[1]

    def solve(rows):
        seen = rows[obs[rows]]
        if len(seen) < P or np.linalg.matrix_rank(X[seen]) < P:
            return "skipped"
        coef = np.linalg.lstsq(X[seen], y[seen], rcond=None)[0]
        if not censored:
            return np.append(coef, max((y[seen] - X[seen] @ coef).std(), 1e-12))
        fit = _censored_normal_fit(X[rows], y[rows], obs[rows], coef)
        return "failed" if fit is None else fit

    full = solve(np.arange(len(f)))
    if isinstance(full, str):
        raise ValueError(f"the observed runs ({int(obs.sum())}) cannot identify the {P} coefficients"
                         if full == "skipped" else "the maximum-likelihood fit did not converge")
    seeds = f["seed"].to_numpy()
    uniq = np.unique(seeds)
    rows_of = {s: np.flatnonzero(seeds == s) for s in uniq}
    rng = np.random.default_rng(seed)
    boot, count = [], {"skipped": 0, "failed": 0}
    for _ in range(n_boot):
        draw = rng.choice(uniq, len(uniq), replace=True)
        c = solve(np.concatenate([rows_of[s] for s in draw]))
        if isinstance(c, str):
            count[c] += 1
        else:
            boot.append(c)
    boot = np.asarray(boot).reshape(-1, P + 1)
    assert len(boot) + count["skipped"] + count["failed"] == n_boot  # every resample counted
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo, hi = (np.percentile(boot, q, axis=0) if len(boot) else np.full((2, P + 1), np.nan))
    names = ("intercept",) + terms
    lost = count["skipped"] + count["failed"]
    flag = "" if not lost else (f"{lost} of {n_boot} resamples not fitted ({count['skipped']} could not identify "
                                f"the coefficients, {count['failed']} did not converge): the interval is over "
                                f"the {len(boot)} fitted")
    z = (y - X @ full[:P]) / full[P]
    loglik = float(_normal_loglik(z, obs if censored else np.ones_like(obs), full[P]))
    return {"coef": dict(zip(names, map(float, full[:P]))), "loglik": loglik, "low": dict(zip(names, map(float, lo[:P]))),
            "high": dict(zip(names, map(float, hi[:P]))), "sigma": float(full[P]), "n_runs": len(f),
            "n_seeds": len(uniq), "n_censored": int((~obs).sum()), "n_asked": n_boot, "n_boot": len(boot),
            "n_skipped": count["skipped"], "n_failed": count["failed"], "flag": flag}


def _normal_loglik(z, observed, sigma):
    """Log-likelihood of standardised residuals ``z`` (log-time scale σ): density where
    ``observed``, survival (right-censored) elsewhere."""
    import numpy as np
    from scipy import stats

    return (stats.norm.logpdf(z[observed]).sum() - observed.sum() * np.log(sigma)
            + stats.norm.logsf(z[~observed]).sum())


def _censored_normal_fit(X, y, observed, start):
    """Maximum-likelihood (β, σ) of ``y = Xβ + σ·ε`` (ε standard normal) where the rows not
    ``observed`` are right-censored at ``y`` (only ``y_true ≥ y`` is known); ``start``: the
    least-squares β of the observed rows. None when the optimiser reports no convergence (BFGS,
    then Nelder–Mead from where it stopped)."""
    import numpy as np
    from scipy import optimize

    resid = y[observed] - X[observed] @ start
    theta0 = np.append(start, np.log(max(resid.std(), 1e-3)))

    def nll(theta):
        return -_normal_loglik((y - X @ theta[:-1]) / np.exp(theta[-1]), observed, np.exp(theta[-1]))

    res = optimize.minimize(nll, theta0, method="BFGS")
    if not res.success:  # BFGS often stops on precision loss at the optimum: polish, then judge
        res = optimize.minimize(nll, res.x, method="Nelder-Mead",
                                options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000})
    if not (res.success and np.isfinite(res.fun)):
        return None
    return np.append(res.x[:-1], np.exp(res.x[-1]))


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
