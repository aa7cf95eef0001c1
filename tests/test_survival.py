"""Survival statistics of time to grok: known Kaplan–Meier answers, censoring honoured, the
log-rank test separating arms that differ, paired ratios labelled."""

import math

import numpy as np
import pandas as pd
import pytest

from modarith.study.survival import (
    NEVER,
    describe_median,
    fmt_steps,
    km_curve,
    km_median,
    logrank,
    median_ci,
    paired_ratios,
    paired_summary,
)


def test_km_without_censoring_is_the_empirical_fraction():
    t = [100, 200, 300, 400]
    curve = km_curve(t, [True] * 4)
    at = dict(zip(curve.step, curve.grokked))
    assert at[100] == pytest.approx(0.25) and at[300] == pytest.approx(0.75) and at[400] == pytest.approx(1.0)
    m = km_median(t, [True] * 4)
    assert m["median"] == 200 and m["n_grokked"] == 4  # lifelines: first t with S(t) <= 0.5


def test_km_counts_censored_runs_as_censored_not_as_never_or_dropped():
    # 3 grok, 5 censored at T = 1000: the median is not reached ("never"), not the median of 3
    m = km_median([100, 200, 300, 1000, 1000, 1000, 1000, 1000], [True] * 3 + [False] * 5)
    assert m["median"] == math.inf and m["n_grokked"] == 3 and m["T"] == 1000
    assert NEVER in describe_median(m)
    # censoring early (a run stopped at 150) changes the estimate: KM reweights the risk set
    a = km_curve([100, 150, 200, 300], [True, False, True, True])
    assert dict(zip(a.step, a.grokked))[200] == pytest.approx(1 - 0.75 * 0.5)
    assert (a.low <= a.grokked + 1e-12).all() and (a.grokked <= a.high + 1e-12).all()


def test_median_interval_contains_the_median_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = rng.exponential(1000, 10)
    big = rng.exponential(1000, 400)
    ms, mb = km_median(small, np.ones(10, bool)), km_median(big, np.ones(400, bool))
    for m in (ms, mb):
        assert m["ci_low"] <= m["median"] <= m["ci_high"]
    assert mb["ci_high"] - mb["ci_low"] < ms["ci_high"] - ms["ci_low"]


def test_logrank_separates_different_arms_and_not_equal_ones():
    rng = np.random.default_rng(1)
    slow, fast = rng.exponential(2000, 40), rng.exponential(200, 40)
    T = 3000
    obs_slow = slow < T
    p_diff = logrank(np.minimum(slow, T), obs_slow, fast, np.ones(40, bool))["p_value"]
    p_same = logrank(fast, np.ones(40, bool), fast, np.ones(40, bool))["p_value"]
    assert p_diff < 1e-6 and p_same > 0.9
    assert logrank([5, 5], [False, False], [5, 5], [False, False])["p_value"] == 1.0


def test_paired_ratios_label_censoring_and_who_is_sooner():
    a = pd.DataFrame({"seed": [0, 1, 2, 3, 4], "time": [400, 1000, 300, 1000, 200],
                      "observed": [True, False, True, False, True]})
    b = pd.DataFrame({"seed": [0, 1, 2, 3, 4], "time": [100, 500, 1000, 1000, 200],
                      "observed": [True, True, False, False, True]})
    p = paired_ratios(a, b).set_index("seed")
    assert p.kind.tolist() == ["exact", "lower bound", "upper bound", "both censored", "exact"]
    assert p.loc[0, "ratio"] == 4.0 and p.loc[1, "ratio"] == 2.0 and math.isnan(p.loc[3, "ratio"])
    assert p.sooner.tolist() == ["b", "b", "a", "undecided", "tie"]
    s = paired_summary(p.reset_index())
    assert (s["n"], s["n_exact"], s["b_sooner"], s["a_sooner"], s["ties"], s["undecided"]) == (5, 2, 2, 1, 1, 1)
    assert s["median_ratio"] == pytest.approx(2.5) and s["lower_bound"] == 1
    with pytest.raises(ValueError, match="share no"):
        paired_ratios(a, b.assign(seed=b.seed + 10))


def test_median_ci_order_statistics():
    med, lo, hi = median_ci(np.arange(1.0, 101.0))
    assert med == 50.5 and 39 <= lo < 50.5 < hi <= 62
    assert median_ci([3.0, 4.0]) == (3.5, -math.inf, math.inf)  # too few for 95 %
    assert all(math.isnan(v) for v in median_ci([]))


def test_bad_input_and_formatting():
    with pytest.raises(ValueError, match="time"):
        km_median([1, math.inf], [True, False])
    with pytest.raises(ValueError, match="level"):
        km_median([1, 2], [True, True], level=1.0)
    assert fmt_steps(math.inf) == NEVER and fmt_steps(1234.0) == "1,234"


def test_paired_summary_sign_test_and_ratio_interval_known_answers():
    """Ten seeds, b grokked sooner on nine: the two-sided sign test is 2·P(Bin(10, ½) ≤ 1) =
    2·11/1024; the exact ratios 1 … 10 have median 5.5 and, at 95 %, the order-statistic
    interval (x₍₂₎, x₍₉₎) = (2, 9) (coverage 1 − 2·11/1024 ≈ 0.979 ≥ 0.95, while (x₍₃₎, x₍₈₎)
    covers only 1 − 2·56/1024 ≈ 0.891)."""
    ratios = np.arange(1.0, 11.0)  # seed 0: ratio 1 (a tie); the others b sooner
    a = pd.DataFrame({"seed": range(10), "time": 100.0 * ratios, "observed": True})
    b = pd.DataFrame({"seed": range(10), "time": 100.0, "observed": True})
    b.loc[0, "time"] = 200.0  # seed 0: a sooner (ratio ½), so 9 b-sooner against 1 a-sooner
    s = paired_summary(paired_ratios(a, b))
    assert (s["b_sooner"], s["a_sooner"], s["ties"]) == (9, 1, 0)
    assert s["sign_p"] == pytest.approx(2 * 11 / 1024)
    assert s["median_ratio"] == pytest.approx(5.5)  # ratios ½, 2, 3, …, 10
    assert (s["ratio_low"], s["ratio_high"]) == (2.0, 9.0)
    even = paired_summary(paired_ratios(a.assign(time=100.0), b.assign(time=100.0)))
    assert even["sign_p"] == 1.0 and even["ties"] == 10  # nothing decided: no evidence either way


def test_competing_incidence_counts_other_events_as_events_not_censoring():
    """Without censoring the Aalen–Johansen incidence is the empirical fraction: 4 of 10 runs
    grokked by their times; 3 others ended by a competing event can never grok, so the incidence
    stays at 0.4 (Kaplan–Meier with them censored would climb to 1 at the last grok)."""
    from modarith.study.survival import competing_incidence

    time = [100, 200, 300, 400, 150, 250, 350, 500, 500, 500]
    event = [1, 1, 1, 1, 2, 2, 2, 0, 0, 0]
    cif = competing_incidence(time, event, 1)
    assert cif["incidence"].iloc[-1] == pytest.approx(0.4, abs=1e-6)
    assert cif.loc[cif.step <= 200, "incidence"].iloc[-1] == pytest.approx(0.2, abs=1e-6)
    assert (cif["low"] <= cif["incidence"] + 1e-9).all() and (cif["incidence"] <= cif["high"] + 1e-9).all()
    assert competing_incidence(time, [0] * 10, 1)["incidence"].max() == 0.0
