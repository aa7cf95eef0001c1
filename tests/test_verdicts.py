"""The decision procedure: calibration on null data, power, and known answers of each part."""

import math

import numpy as np
import pytest
from scipy import stats

from modarith.study import verdicts as vd

SPREAD = 1.0  # sd of ln L per seed (×2.7): between the seed's GPT (0.39) and its LSTM (1.78)
DRAWS = 2_000


def decided(rng, n, shift, floor=None):
    """One comparison as the claims make it: n seeds a side, ln L ~ N(shift, SPREAD) vs N(0, SPREAD),
    noise pooled over both points, floored by ``floor`` or by a two-seed spread drawn like the
    seed report's; True when the verdict is not inconclusive."""
    a, b = np.exp(rng.normal(shift, SPREAD, n)), np.exp(rng.normal(0.0, SPREAD, n))
    if floor is None:
        two = rng.normal(0.0, SPREAD, 2)
        floor = vd.Noise(abs(two[0] - two[1]) / math.sqrt(2), 1, "drawn")
    noise = vd.log_noise([a, b], floor)
    test = vd.log_difference("a / b", a, b, noise, +1)
    return vd.decide([test])[0] != vd.INCONCLUSIVE


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_null_is_decided_at_most_alpha(n):
    """Both sides from one log-normal: the rate of agree/disagree stays at α within its Monte
    Carlo error. (The rule this replaced, |ln ratio| > one population sd: 0.60, 0.41, 0.23 and
    0.08 at n = 1, 2, 3, 5 on the same draws' design.)"""
    rng = np.random.default_rng(n)
    rate = np.mean([decided(rng, n, 0.0) for _ in range(DRAWS)])
    mc = math.sqrt(vd.ALPHA * (1 - vd.ALPHA) / DRAWS)
    assert rate <= vd.ALPHA + 3 * mc


def test_a_tenfold_effect_at_five_seeds_is_decided():
    floor = vd.Noise(0.385, 1, "the seed's GPT L_val spread")
    rng = np.random.default_rng(7)
    power = np.mean([decided(rng, 5, math.log(10), floor) for _ in range(DRAWS)])
    assert power >= 0.8


def test_holm_known_answer():
    # m = 4: sorted 0.01·4, 0.02·3, 0.03·2 → 0.04, 0.06, 0.06 (monotone), 0.5·1 → 0.5
    assert vd.holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert vd.holm([]) == []


def test_pooled_sd_and_degrees_of_freedom():
    sd, df = vd.pooled_sd([[1.0, 3.0], [10.0, 12.0, 14.0], [5.0]])
    # squares 2 + 8 = 10 over (1 + 2) df
    assert df == 3 and sd == pytest.approx(math.sqrt(10 / 3))
    assert vd.pooled_sd([[1.0], [2.0]]) == (pytest.approx(math.nan, nan_ok=True), 0)


def test_no_degrees_of_freedom_decides_nothing():
    t = vd.log_difference("x", [1e-5], [1.0], vd.log_noise([[1e-5], [1.0]]), -1)
    assert t.df == 0 and vd.decide([t]) == [vd.INCONCLUSIVE]
    assert "no degrees of freedom" in t.detectable()


def test_t_quantiles_decide_at_their_degrees_of_freedom():
    crit = stats.t.ppf(0.975, 2)  # 4.30
    at = vd.Test("x", effect=crit * 1.01, se=1.0, df=2, sign=+1)
    below = vd.Test("x", effect=crit * 0.99, se=1.0, df=2, sign=+1)
    assert vd.decide([at]) == [vd.AGREE] and vd.decide([below]) == [vd.INCONCLUSIVE]
    assert vd.decide([vd.Test("x", effect=-crit * 1.01, se=1.0, df=2, sign=+1)]) == [vd.DISAGREE]


def test_a_bound_decides_only_the_side_it_cannot_flip():
    t = vd.Test("x", effect=5.0, se=1.0, df=10, sign=+1)
    assert vd.decide([t]) == [vd.AGREE]
    assert vd.decide([vd.Test("x", 5.0, 1.0, 10, +1, can_fall=True)]) == [vd.INCONCLUSIVE]
    assert vd.decide([vd.Test("x", 5.0, 1.0, 10, +1, can_rise=True)]) == [vd.AGREE]


def test_steps_keep_one_evaluation_interval_of_resolution():
    tie = vd.step_difference("x", {"x": [100.0, 100.0, 100.0]}, 100, +1)
    assert vd.decide([tie]) == [vd.INCONCLUSIVE]  # exactly one interval, no spread
    clear = vd.step_difference("x", {"x": [300.0, 300.0]}, 100, +1)
    assert vd.decide([clear]) == [vd.AGREE]
    one = vd.step_difference("x", {"x": [2_000.0]}, 100, +1)
    assert one.df == 0 and vd.decide([one]) == [vd.INCONCLUSIVE]
    # another point's pairs lend their spread (pooled, df 1)
    lent = vd.step_difference("x", {"x": [2_000.0], "y": [500.0, 700.0]}, 100, +1)
    assert lent.df == 1 and lent.se == pytest.approx(math.sqrt(20_000))


def test_detectable_effect_and_seeds_to_decide():
    noise = vd.Noise(1.0, 2, "x")
    t = vd.log_difference("x", [math.e] * 2, [1.0] * 2, noise, +1)  # ln 1, se 1, df 2
    crit = stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)
    assert t.critical() == pytest.approx(crit)
    assert t.detectable() == f"×{math.exp(crit):.3g} at 2 seeds"
    n = vd.seeds_to_decide(t)
    se, df = t.se_n(n)
    prev_se, prev_df = t.se_n(n - 1)
    assert t.critical(se=se, df=df) <= 1.0 < t.critical(se=prev_se, df=prev_df)


def test_equivalence_known_answers():
    m = math.log(2)
    assert vd.equivalence(0.1, 0.05, 10, m) == vd.EQUIVALENT
    assert vd.equivalence(2.0, 0.1, 10, m) == vd.DIFFERENT
    assert vd.equivalence(0.5, 0.5, 10, m) == vd.INCONCLUSIVE
    assert vd.equivalence(0.1, 0.05, 10, m, can_fall=True) == vd.INCONCLUSIVE  # a bound
    assert vd.equivalence(2.0, 0.1, 10, m, can_fall=True) == vd.INCONCLUSIVE
    assert vd.equivalence(2.0, 0.1, 10, m, can_rise=True) == vd.DIFFERENT
    assert vd.equivalence(0.0, 1.0, 0, m) == vd.INCONCLUSIVE


def test_quoted_spread_and_combination_rules():
    # the seed's LSTM L_val 5.01e-3 ± 4.26e-3: two seeds 0.75e-3 and 9.27e-3
    assert vd.quoted_log_sd(5.01e-3, 4.26e-3) == pytest.approx(math.log(9.27 / 0.75) / math.sqrt(2))
    assert vd.every([vd.AGREE, vd.INCONCLUSIVE]) == vd.INCONCLUSIVE
    assert vd.every([vd.AGREE, vd.DISAGREE, vd.INCONCLUSIVE]) == vd.DISAGREE
    assert vd.every([vd.AGREE, vd.AGREE]) == vd.AGREE
    assert vd.unanimous([vd.AGREE, vd.DISAGREE]) == vd.INCONCLUSIVE
    assert vd.unanimous([vd.DISAGREE, vd.NOT_TESTED]) == vd.DISAGREE
    assert vd.unanimous([]) == vd.NOT_TESTED


def test_a_test_that_cannot_decide_does_not_widen_the_family():
    crit = stats.t.ppf(0.975, 5)
    good = vd.Test("x", effect=crit * 1.05, se=1.0, df=5, sign=+1)  # p just under α alone
    blind = vd.Test("y", effect=3.0, se=math.nan, df=0, sign=+1)  # one seed, no spread
    assert vd.decide([good, blind]) == [vd.AGREE, vd.INCONCLUSIVE]
    assert vd.decide([good, good]) == [vd.INCONCLUSIVE, vd.INCONCLUSIVE]  # Holm: 2p > α
