"""Survival statistics of the time to grok, with censored runs counted as censored.

A run *grokks* at the first evaluated step from which its validation accuracy stays at or
above the bar (:func:`modarith.study.grok.grok_step`); a run that never does is *censored* at its
last step T: we only know that its time to grok is larger than T. Treating such runs as
"∞" (or dropping them) biases medians and their intervals; survival analysis does not.
The statistics come from ``lifelines`` (Davidson-Pilon, a maintained survival-analysis
package), not hand-written estimators:

- :func:`km_fitter`, :func:`km_curve`: the Kaplan–Meier estimate of the fraction of runs
  grokked by step t, 1 − S(t), with its pointwise confidence band (lifelines' exponential
  Greenwood interval);
- :func:`km_median`: the median time to grok and its confidence interval (the steps where the
  band crosses one half; ∞ when it never does within the runs);
- :func:`competing_incidence`: the cumulative incidence of one event among competing ones
  (grokked, unstable, never fitted: lifelines' Aalen–Johansen estimator);
- :func:`logrank`: the log-rank test of equal time-to-grok distributions between two arms;
- :func:`paired_ratios`, :func:`paired_summary`: per seed (same split and initial weights in
  both arms), the ratio of the two times, labelled ``exact``, ``lower bound`` (the first arm
  censored), ``upper bound`` (the second censored) or ``both censored``; which arm grokked
  first whenever that is decided, with a two-sided sign test on those seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

NEVER = "never (censored)"  # how a time that was not observed is written


def _check(time, observed) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    if t.ndim != 1 or len(t) == 0 or t.shape != e.shape:
        raise ValueError("time and observed must be 1-D arrays of one equal, non-zero length")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("time must hold finite steps >= 0 (a censored run: its last step, observed False)")
    return t, e


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level = {level!r} is invalid: expected a number in (0, 1)")
    return float(level)


def km_fitter(time, observed, label: str | None = None, level: float = 0.95):
    """A fitted ``lifelines.KaplanMeierFitter``: ``time`` (n,) steps (censored runs: their
    last step T), ``observed`` (n,) True where the run grokked."""
    from lifelines import KaplanMeierFitter

    t, e = _check(time, observed)
    return KaplanMeierFitter(alpha=1 - _check_level(level)).fit(t, e, label=label)


def km_curve(time, observed, level: float = 0.95) -> pd.DataFrame:
    """Fraction grokked by step t, ``1 − S(t)``, as a step function: columns ``step,
    grokked, low, high`` (the band of ``level``), from t = 0 to the last time."""
    kmf = km_fitter(time, observed, "S", level)
    ci = kmf.confidence_interval_
    return pd.DataFrame({"step": kmf.survival_function_.index.to_numpy(float),
                         "grokked": 1 - kmf.survival_function_["S"].to_numpy(),
                         "low": 1 - ci.iloc[:, 1].to_numpy(), "high": 1 - ci.iloc[:, 0].to_numpy()})


def km_median(time, observed, level: float = 0.95) -> dict:
    """Kaplan–Meier median time to grok with its confidence interval: ``n, n_grokked,
    median, ci_low, ci_high, T`` (∞ where the estimate or a bound does not fall to one half
    within the runs, i.e. more than half of them may never grok by T = the largest time)."""
    from lifelines.utils import median_survival_times

    t, e = _check(time, observed)
    kmf = km_fitter(t, e, "S", level)
    ci = median_survival_times(kmf.confidence_interval_)
    return {"n": len(t), "n_grokked": int(e.sum()), "median": float(kmf.median_survival_time_),
            "ci_low": float(ci.iloc[0, 0]), "ci_high": float(ci.iloc[0, 1]), "T": float(t.max())}


def logrank(time_a, observed_a, time_b, observed_b) -> dict:
    """Log-rank test of equal time-to-grok distributions: ``statistic, p_value``. When no
    run of either arm grokked there is nothing to compare: ``p_value`` 1.0."""
    from lifelines.statistics import logrank_test

    ta, ea = _check(time_a, observed_a)
    tb, eb = _check(time_b, observed_b)
    if not (ea.any() or eb.any()):
        return {"statistic": 0.0, "p_value": 1.0}
    r = logrank_test(ta, tb, event_observed_A=ea, event_observed_B=eb)
    return {"statistic": float(r.test_statistic), "p_value": float(r.p_value)}


def competing_incidence(time, event, of_interest: int, level: float = 0.95) -> pd.DataFrame:
    """Cumulative incidence of one event among competing ones (lifelines' Aalen–Johansen
    estimator): ``time`` (n,) steps, ``event`` (n,) integers (0 censored, 1, 2, … the competing
    events), ``of_interest`` the event whose incidence is estimated. Columns ``step, incidence,
    low, high`` (the band of ``level``), a step function from t = 0. Runs ended by another event
    are not censored here: they can no longer have this one."""
    from lifelines import AalenJohansenFitter

    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event, dtype=int)
    _check(t, e >= 0)
    if not (e == of_interest).any():
        return pd.DataFrame({"step": [0.0, float(t.max())], "incidence": [0.0, 0.0], "low": [0.0, 0.0],
                             "high": [0.0, 0.0]})
    import warnings

    with warnings.catch_warnings():  # tied times are jittered by lifelines (seeded), which warns
        warnings.simplefilter("ignore")
        ajf = AalenJohansenFitter(alpha=1 - _check_level(level), seed=0).fit(t, e, event_of_interest=of_interest)
    cif = ajf.cumulative_density_
    ci = ajf.confidence_interval_cumulative_density_
    out = pd.DataFrame({"step": cif.index.to_numpy(float), "incidence": cif.iloc[:, 0].to_numpy(),
                        "low": ci.iloc[:, 0].to_numpy(), "high": ci.iloc[:, 1].to_numpy()})
    none_yet = out["incidence"] == 0  # no band before the first event (lifelines: NaN): it is 0
    out.loc[none_yet, ["low", "high"]] = 0.0
    return out


PAIR_KINDS = ("exact", "lower bound", "upper bound", "both censored")


def paired_ratios(a: pd.DataFrame, b: pd.DataFrame, on: str = "seed") -> pd.DataFrame:
    """Per seed, ``ratio = time_a / time_b`` (> 1: arm b grokked sooner). ``a``, ``b``: one
    row per run with columns ``on``, ``time``, ``observed``; seeds present in both are paired.

    ``kind``: ``exact`` (both grokked), ``lower bound`` (a censored: the true ratio is larger),
    ``upper bound`` (b censored: smaller), ``both censored`` (ratio NaN). ``sooner``: ``b``,
    ``a``, ``tie`` or ``undecided`` — which arm grokked first, decided whenever one grokked
    before the other's time (censored or not)."""
    for name, f in (("a", a), ("b", b)):
        missing = {on, "time", "observed"} - set(f.columns)
        if missing:
            raise ValueError(f"{name} lacks columns {sorted(missing)}")
    m = a[[on, "time", "observed"]].merge(b[[on, "time", "observed"]], on=on, suffixes=("_a", "_b"))
    if m.empty:
        raise ValueError(f"a and b share no {on!r}: nothing to pair")
    rows = []
    for r in m.itertuples(index=False):
        ta, ea, tb, eb = float(r.time_a), bool(r.observed_a), float(r.time_b), bool(r.observed_b)
        kind = PAIR_KINDS[0 if ea and eb else 1 if eb else 2 if ea else 3]
        ratio = ta / tb if kind != "both censored" and tb > 0 else math.nan
        if eb and (tb < ta or (not ea and tb <= ta)):
            sooner = "b"
        elif ea and (ta < tb or (not eb and ta <= tb)):
            sooner = "a"
        else:
            sooner = "tie" if ea and eb else "undecided"
        rows.append({on: getattr(r, on), "time_a": ta, "observed_a": ea, "time_b": tb,
                     "observed_b": eb, "ratio": ratio, "kind": kind, "sooner": sooner})
    return pd.DataFrame(rows)


def median_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Median of ``values`` with its distribution-free (order-statistic, binomial) confidence
    interval of at least ``level``: ``(median, low, high)``; NaNs when there are no values,
    bounds ±∞ when too few values for the level."""
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    a = (1 - _check_level(level)) / 2
    j = int(binom.ppf(a, n, 0.5))  # P(Bin(n, ½) < j) <= a: x_(j) is a lower bound (1-based)
    while j > 0 and binom.cdf(j - 1, n, 0.5) > a:
        j -= 1
    lo = float(x[j - 1]) if j >= 1 else -math.inf
    hi = float(x[n - j]) if j >= 1 else math.inf
    return float(np.median(x)), lo, hi


def paired_summary(pairs: pd.DataFrame, level: float = 0.95) -> dict:
    """Summary of :func:`paired_ratios`: ``n`` pairs, ``n_exact``, ``median_ratio`` with its
    order-statistic interval over the exact pairs (``ratio_low``, ``ratio_high``), the counts
    of each ``kind``, ``b_sooner``, ``a_sooner``, ``ties``, ``undecided``, ``sign_p``:
    the two-sided sign test of "b sooner" against "a sooner" over the decided seeds, and
    ``wilcoxon_p``: the two-sided Wilcoxon signed-rank test of the exact pairs' log-ratios
    against 0 (1.0 with no non-zero log-ratio)."""
    from scipy.stats import binomtest, wilcoxon

    exact = pairs.loc[pairs.kind == "exact", "ratio"].to_numpy(float)
    med, lo, hi = median_ci(exact, level)
    nb, na = int((pairs.sooner == "b").sum()), int((pairs.sooner == "a").sum())
    sign_p = float(binomtest(nb, nb + na, 0.5).pvalue) if nb + na else 1.0
    logr = np.log(exact[exact > 0])
    wil_p = float(wilcoxon(logr).pvalue) if (logr != 0).any() else 1.0
    out = {"n": len(pairs), "n_exact": len(exact), "median_ratio": med, "ratio_low": lo,
           "ratio_high": hi, "b_sooner": nb, "a_sooner": na, "ties": int((pairs.sooner == "tie").sum()),
           "undecided": int((pairs.sooner == "undecided").sum()), "sign_p": sign_p,
           "wilcoxon_p": wil_p}
    out.update({k.replace(" ", "_"): int((pairs.kind == k).sum()) for k in PAIR_KINDS})
    return out


def fmt_steps(v: float) -> str:
    """A step count as text: ``1,234``, or :data:`NEVER` for ∞ (not observed)."""
    return NEVER if not math.isfinite(v) else f"{v:,.0f}"


def fmt_p(p: float) -> str:
    """A p-value as text: ``p = 0.031``, ``p < 0.001``."""
    return "p < 0.001" if p < 1e-3 else f"p = {p:.3f}"


def describe_median(m: dict) -> str:
    """'median 1,200 steps (95% CI 900–1,500), 7/8 runs grokked by T = 3,000'."""
    if not math.isfinite(m["median"]):
        med = f"median {NEVER} (fewer than half of the runs grok by T = {fmt_steps(m['T'])})"
    else:
        med = f"median {fmt_steps(m['median'])} steps (CI {fmt_steps(m['ci_low'])} to {fmt_steps(m['ci_high'])})"
    return f"{med}, {m['n_grokked']}/{m['n']} runs grokked"


def rate_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval of a per-seed rate from ``k`` events in ``n`` seeds
    (``scipy.stats.binomtest(...).proportion_ci(method="exact")``): with no event, its upper end
    is the largest rate the seeds do not rule out (0 of 6: 46 % at 95 %)."""
    from scipy.stats import binomtest

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or not 0 <= k <= n:
        raise ValueError(f"(k, n) = ({k!r}, {n!r}) is invalid: expected integers 0 <= k <= n, n >= 1")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=_check_level(level), method="exact")
    return float(ci.low), float(ci.high)
