"""The claims' verdicts on synthetic histories whose right verdict is known (the decision
procedure itself: tests/test_verdicts.py)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from modarith.models.config import RunConfig
from modarith.study import analysis, claims, fidelity

T = 10_001


def history(T=T, t_mem=100, t_gen=5_000, best_L=1e-3, t_best=None, norm=None, orders=None,
            a_val_at_mem=0.05):
    """A run: A_train 1 from t_mem, A_val 1 from t_gen (NaN t_gen: never), L_val falling to
    best_L at t_best (default: halfway between t_gen and T), ‖θ‖₂ from ``norm(step)``."""
    steps = np.array(sorted(set(range(0, 101)) | set(range(0, T + 1, 100)) | {T}), dtype=float)
    train_acc = np.where(steps >= t_mem, 1.0, 0.02)
    gen = steps >= t_gen if not math.isnan(t_gen) else np.zeros_like(steps, dtype=bool)
    val_acc = np.where(gen, 1.0, a_val_at_mem)
    t_best = (t_gen + T) // 2 if t_best is None else t_best
    val_loss = np.where(steps < t_best, 3.0, best_L)
    h = {"step": steps.tolist(), "train_acc": train_acc.tolist(), "val_acc": val_acc.tolist(),
         "train_loss": np.where(steps >= t_mem, 1e-4, 3.0).tolist(), "val_loss": val_loss.tolist(),
         "param_norm": [norm(s) for s in steps] if norm else np.full(len(steps), 50.0).tolist()}
    for o, t in (orders or {}).items():
        h[f"val_acc_o{o}"] = np.where(steps >= t, 1.0, 0.0).tolist() if not math.isnan(t) \
            else np.zeros(len(steps)).tolist()
    return h


def run(model="lstm", seed=0, steps=T, **h):
    fields = {k: h.pop(k) for k in ("d_model", "num_layers", "weight_decay", "r_train") if k in h}
    orders = h.get("orders")
    cfg = RunConfig(model=model, seed=seed, steps=steps, orders=(2, 3) if orders else (2,), **fields)
    return SimpleNamespace(config=cfg, history=history(T=cfg.total_steps, **h), run_id=f"{model}{seed}")


# --------------------------------------------------------------------------- claim 1
def test_claim1_the_delay_size_decides():
    late = [run(m, s, t_mem=100, t_gen=8_000) for m in ("lstm", "gpt") for s in (0, 42)]
    a = claims.memorise_then_generalise(late)
    assert a.verdict == "agree" and "×80" in a.ours and a.seeds == 2 and a.family == 2
    # a positive but small lag (generalise at 1.5 × t_mem) is not the seed's delay
    small = [run(m, s, t_mem=1_000, t_gen=1_500) for m in ("lstm", "gpt") for s in (0, 42)]
    assert claims.memorise_then_generalise(small).verdict == "disagree"
    # A_val already high when A_train reaches 0.9: no memorisation phase
    high = [run(m, 0, t_mem=100, t_gen=8_000, a_val_at_mem=0.7) for m in ("lstm", "gpt")]
    assert claims.memorise_then_generalise(high).verdict == "disagree"
    # a delay ×30 on one seed and ×3 on the other: not significant at df 2
    noisy = [run(m, s, t_mem=100, t_gen=t) for m in ("lstm", "gpt") for s, t in ((0, 3_000), (42, 300))]
    a = claims.memorise_then_generalise(noisy)
    assert a.verdict == "inconclusive" and "would detect ×" in a.line()


def test_claim1_censored_at_a_shortened_horizon():
    never = [run(m, 0, t_gen=math.nan) for m in ("lstm", "gpt")]
    assert claims.memorise_then_generalise(never, spec_steps=40_001).verdict == "not tested"
    assert claims.memorise_then_generalise(never, spec_steps=T).verdict == "disagree"
    assert claims.memorise_then_generalise(never, reduced="lr 3e-3").verdict == "not tested"


# --------------------------------------------------------------------------- claim 2
def pair(lstm, gpt, **h):
    return [run("lstm", s, best_L=L, **h) for s, L in enumerate(lstm)] + \
           [run("gpt", s, best_L=L, **h) for s, L in enumerate(gpt)]


def test_claim2_the_seeds_quoted_spread_is_the_least_noise():
    # GPT lower ×50 at five seeds: beyond the LSTM's quoted spread (sd 1.78 in ln) at df 8
    a = claims.lower_val_loss(pair([5e-3, 6e-3] * 2 + [5e-3], [1e-4, 1.1e-4] * 2 + [1e-4]))
    assert a.verdict == "agree" and a.tests[0].df == 8
    assert a.tests[0].noise.sd == pytest.approx(math.log(9.27 / 0.75) / math.sqrt(2))
    # the same ×50 at two seeds: our seeds agree closely, but the seed's spread (df 2) does not decide
    two = claims.lower_val_loss(pair([5e-3, 6e-3], [1e-4, 1.1e-4]))
    assert two.verdict == "inconclusive" and two.tests[0].df == 2
    wrong = claims.lower_val_loss(pair([1e-4] * 5, [5e-3] * 5))
    assert wrong.verdict == "disagree"


def test_claim2_one_seed_takes_the_seeds_spread_and_its_df():
    far = pair([3e-2], [1e-4])
    a = claims.lower_val_loss(far)
    assert a.verdict == "inconclusive" and a.tests[0].df == 1 and a.seeds == 1
    assert "the seed's LSTM L_val 5.01e-3 ± 4.26e-3" in a.tests[0].noise.source
    assert claims.lower_val_loss(far, spec_steps=40_001).verdict == "not tested"


def test_claim2_a_censored_best_decides_only_where_it_cannot_flip():
    lstm, gpt = [5e-3, 6e-3] * 2 + [5e-3], [1e-4, 1.1e-4] * 2 + [1e-4]
    at_T = [run("lstm", s, best_L=L, t_best=T) for s, L in enumerate(lstm)] + \
        [run("gpt", s, best_L=L) for s, L in enumerate(gpt)]
    # the LSTM's best at T may still fall: the GPT's lead is not established
    assert claims.lower_val_loss(at_T).verdict == "inconclusive"
    gpt_at_T = [run("lstm", s, best_L=L) for s, L in enumerate(lstm)] + \
        [run("gpt", s, best_L=L, t_best=T) for s, L in enumerate(gpt)]
    assert claims.lower_val_loss(gpt_at_T).verdict == "agree"


# --------------------------------------------------------------------------- claims 3-4
def acc_run(model, seed, r, a_train, a_val, rising=False):
    """A_train ``a_train`` from step 100; A_val ``a_val`` from step 1,000, or a ramp to it at T."""
    steps = np.array(sorted(set(range(0, 101)) | set(range(0, T + 1, 100)) | {T}), dtype=float)
    val = a_val * steps / T if rising else np.where(steps >= 1_000, a_val, 0.0)
    h = {"step": steps.tolist(), "train_acc": np.where(steps >= 100, a_train, 0.0).tolist(),
         "val_acc": val.tolist(), "train_loss": np.full(len(steps), 1.0).tolist(),
         "val_loss": np.full(len(steps), 1.0).tolist(), "param_norm": np.full(len(steps), 1.0).tolist()}
    cfg = RunConfig(model=model, seed=seed, r_train=r)
    return SimpleNamespace(config=cfg, history=h)


def r_grid(a_val, model="lstm", seed=0, rising=(), a_train=1.0):
    return [acc_run(model, seed, r, a_train, v, r in rising) for r, v in zip((0.3, 0.4, 0.5), a_val)]


def test_claims3_4_per_seed_thresholds():
    a = claims.smallest_r_generalising(r_grid((0.1, 0.43, 1.0)) + r_grid((0.1, 0.2, 1.0), "gpt"))
    assert a.verdict == "agree" and a.ours == "LSTM 0.5, GPT 0.5"
    # the GPT generalises at 0.4 already: the seed's 0.5 is excluded
    assert claims.smallest_r_generalising(r_grid((0.1, 0.43, 1.0)) + r_grid((0.1, 0.95, 1.0), "gpt")
                                          ).verdict == "disagree"
    # the LSTM at r 0.4 sits at 0.85 and still rises at T: a longer run may cross 0.9
    near = claims.smallest_r_generalising(r_grid((0.1, 0.85, 1.0), rising=(0.4,)) + r_grid((0.1, 0.2, 1.0), "gpt"))
    assert near.verdict == "inconclusive" and "0.4/0.5" in near.ours
    # two seeds with different thresholds
    split = r_grid((0.1, 0.43, 1.0)) + r_grid((0.1, 0.95, 1.0), seed=1) + r_grid((0.1, 0.2, 1.0), "gpt")
    assert claims.smallest_r_generalising(split).verdict == "inconclusive"
    # claim 4, the case: the LSTM at r 0.4 has A_val 0.43, still rising at T
    gpt = r_grid((0.2, 1.0, 1.0), "gpt")
    assert claims.largest_r_overfitting(r_grid((0.1, 0.43, 1.0)) + gpt).verdict == "agree"
    assert claims.largest_r_overfitting(r_grid((0.1, 0.43, 1.0), rising=(0.4,)) + gpt).verdict == "inconclusive"
    assert claims.largest_r_overfitting(r_grid((0.1, 0.2, 0.3)) + gpt).verdict == "disagree"


# --------------------------------------------------------------------------- claim 5
def orders_runs(gaps, model="lstm"):
    return [run(model, s, orders={2: 3_000 + g, 3: 3_000}) for s, g in enumerate(gaps)]


def test_claim5_paired_gaps_beyond_one_evaluation_interval():
    assert claims.ternary_faster(orders_runs([100, 100])).verdict == "inconclusive"  # one interval
    assert claims.ternary_faster(orders_runs([-100, 500])).verdict == "inconclusive"
    a = claims.ternary_faster(orders_runs([2_000, 2_200]))
    assert a.verdict == "agree" and a.tests[0].se == pytest.approx(100) and a.tests[0].df == 1
    assert claims.ternary_faster(orders_runs([-2_000, -2_200])).verdict == "disagree"


def test_claim5_one_seed_and_any_number_of_seeds():
    one = claims.ternary_faster(orders_runs([2_000]))
    assert one.verdict == "inconclusive" and "one seed" in one.tests[0].noise.source
    eight = claims.ternary_faster(orders_runs([2_000 + 10 * i for i in range(8)]))
    assert eight.verdict == "agree" and eight.seeds == 8


def test_claim5_censored_order():
    rs = [run("lstm", s, steps=5_001, orders={2: 3_000, 3: math.nan}) for s in (0, 1)]
    assert claims.ternary_faster(rs, spec_steps=T).verdict == "not tested"
    # at SPEC's T, binary never: a bound (after T) that can only widen ternary's lead
    late = [run("lstm", s, orders={2: math.nan, 3: 3_000 + 100 * s}) for s in (0, 1)]
    assert claims.ternary_faster(late).verdict == "agree"


# --------------------------------------------------------------------------- claims 6–9
def grid(model, L_of, seeds=(0,), ds=(64, 128), Ls=(1, 2)):
    return [run(model, s, d_model=d, num_layers=L, best_L=L_of(d, L, s))
            for s in seeds for d in ds for L in Ls]


def test_trend_one_seed_against_the_seeds_spread():
    # the GPT's L_val falls ×10⁴ from d 64 to 128 at each L: beyond the seed's spread at df 1
    falls = grid("gpt", lambda d, L, s: 1e-2 if d == 64 else 1e-6)
    a = claims.gpt_width(falls)
    assert a.verdict == "agree" and a.tests[0].df == 1 and "the seed's GPT" in a.tests[0].noise.source
    assert claims.gpt_width(falls, spec_steps=40_001).verdict == "not tested"
    assert claims.gpt_width(grid("gpt", lambda d, L, s: 1e-6 if d == 64 else 1e-2)).verdict == "disagree"
    # ×100: a real fall, but one seed at the seed's spread cannot show it
    hundred = claims.gpt_width(grid("gpt", lambda d, L, s: 1e-2 if d == 64 else 1e-4))
    assert hundred.verdict == "inconclusive" and "would detect ×" in hundred.line()


def test_trend_with_seeds_and_more_than_two_points():
    vals = {64: 1e-6, 128: 5e-7, 256: 1e-1}
    rs = grid("lstm", lambda d, L, s: vals[d] * (1 + 0.1 * s), seeds=(0, 1), ds=(64, 128, 256), Ls=(1,))
    a = claims.lstm_width(rs)
    assert a.verdict == "agree" and "non-monotone over all 3 points" in a.why and a.seeds == 2
    assert a.tests[0].df == 3  # three points, two seeds each


def test_trend_means_over_fixed_values_and_counts_instability():
    # at L 1 falls, at L 2 rises as much: the mean effect is zero
    rs = grid("lstm", lambda d, L, s: (1e-2 if d == 64 else 1e-5) if L == 1 else (1e-5 if d == 64 else 1e-2),
              seeds=range(5))
    assert claims.lstm_width(rs).verdict == "inconclusive"
    deep = grid("lstm", lambda d, L, s: 1e-5 if L == 1 else 1e-2, seeds=range(5))
    h = deep[-1].history  # one collapse of A_train in a 2-layer run
    h["train_acc"] = [0.5 if 5_000 <= s < 5_300 else a for s, a in zip(h["step"], h["train_acc"])]
    a = claims.lstm_depth(deep)
    assert a.verdict == "agree"
    assert a.extra["instability"] == {1: {"A_train collapses": 0, "A_val crashes": 0},
                                      2: {"A_train collapses": 1, "A_val crashes": 0}}


# --------------------------------------------------------------------------- claim 10
def wd_runs(t_best, seeds=(0, 1), steps=40_001):
    return [run("lstm", s, steps=steps, weight_decay=w, t_gen=t - 500, t_best=t + 100 * s)
            for s in seeds for w, t in t_best.items()]


def test_claim10_paired_steps_censoring_and_horizon():
    assert claims.weight_decay_time(wd_runs({0.25: 30_000, 1.0: 10_000})).verdict == "agree"
    assert claims.weight_decay_time(wd_runs({0.25: 10_000, 1.0: 30_000})).verdict == "disagree"
    assert claims.weight_decay_time(wd_runs({0.25: 10_000, 1.0: 9_950})).verdict == "inconclusive"
    # the small decay's best L_val at T is a lower bound of its t_f: the fall it shows stands
    cens = claims.weight_decay_time(
        [run("lstm", s, steps=40_001, weight_decay=0.25, t_gen=30_000, t_best=40_001) for s in (0, 1)]
        + [run("lstm", s, steps=40_001, weight_decay=1.0, t_gen=9_500, t_best=10_000 + 100 * s) for s in (0, 1)])
    assert cens.verdict == "agree" and cens.tests[1].can_fall
    s = claims.weight_decay_time(wd_runs({0.25: 8_000, 1.0: 3_000}, steps=10_001), spec_steps=40_001)
    assert s.verdict == "not tested" and "40,001" in s.why


# --------------------------------------------------------------------------- claim 11
def norm_run(t_gen, norm, steps=T, seed=0, wd=1.0):
    return run("lstm", seed, steps=steps, t_gen=t_gen, weight_decay=wd, norm=norm)


def up_down(s):
    return 60 + 20 * min(s, 4_000) / 4_000 - (0 if s <= 4_000 else 40 * (s - 4_000) / 6_001)


def test_claim11_a_rise_before_and_a_fall_after():
    assert claims.norm_rise_fall([norm_run(4_000, up_down)], spec_steps=T).verdict == "agree"
    # the quick LSTM's case: 76.2 falling from the start, never above its initial value
    only_falls = lambda s: max(40.3, 76.2 - 35.4 * s / 4_000)  # noqa: E731
    a = claims.norm_rise_fall([norm_run(4_000, only_falls)], spec_steps=T)
    assert a.verdict == "disagree" and a.per_seed["wd 1 seed 0"][0] == pytest.approx(0)
    rises_only = lambda s: 60 + 20 * min(s, 4_000) / 4_000  # noqa: E731
    assert claims.norm_rise_fall([norm_run(4_000, rises_only)]).verdict == "disagree"
    mixed = [norm_run(4_000, up_down), norm_run(4_000, only_falls, seed=1)]
    assert claims.norm_rise_fall(mixed).verdict == "inconclusive"


def test_claim11_a_shortened_horizon_is_not_tested():
    a = claims.norm_rise_fall([norm_run(4_000, up_down)], spec_steps=40_001)
    assert a.verdict == "not tested" and "40,001" in a.horizon
    assert claims.norm_rise_fall([norm_run(math.nan, up_down)], spec_steps=T).verdict == "not tested"


# --------------------------------------------------------------------------- Table 1
def test_table1_equivalence_margins_and_bounds():
    rs = [run(m, s, best_L=1e-3, t_best=9_000) for m in ("lstm", "gpt") for s in (0, 42)]
    cells = {c.cell: c for c in fidelity.table1(rs)}
    # L_train 1e-4 vs the seed's 1.54e-4 ± 2.82e-7: within ×2 and tight
    assert cells["LSTM L_train"].verdict == "equivalent"
    assert cells["LSTM A_train"].verdict == "equivalent"  # 1.0 against 1.0 ± 0.0
    # the seed's L_val best is at its last step (10,000): a bound, so never "equivalent"
    assert cells["LSTM L_val"].verdict == "inconclusive"
    far = [run("lstm", s, t_mem=100) for s in (0, 42)]
    for r in far:
        r.history["train_loss"] = [1e-7 if s >= 100 else 3.0 for s in r.history["step"]]
    assert {c.cell: c for c in fidelity.table1(far)}["LSTM L_train"].verdict == "different"
    # our t_f at T is a bound too; one seed has no spread of step times
    assert {c.cell: c for c in fidelity.table1(rs[:1])}["LSTM A_val t_f"].verdict == "inconclusive"
    assert {c.verdict for c in fidelity.table1(rs, reduced="lr 0.01 (SPEC 0.001)")} == {"not tested"}
    assert {c.verdict for c in fidelity.table1(rs, spec_steps=40_001)} == {"not tested"}


def test_table1_skips_a_model_the_seed_has_no_numbers_for():
    rs = [run("lstm", s) for s in (0, 42)]
    other = SimpleNamespace(config=SimpleNamespace(model="mlp", seed=0, eval_every=100),
                            history=history())
    cells = fidelity.table1(rs + [other])
    assert cells and not any(c.cell.startswith(("MLP", "mlp")) for c in cells)


def test_spikes_at_crashes():
    h = history(t_gen=2_000)
    steps = np.asarray(h["step"])
    crash = (steps >= 5_000) & (steps < 5_300)
    h["val_acc"] = np.where(crash, 0.1, h["val_acc"]).tolist()
    assert analysis.spikes_at_crashes(h) == (1, 0)  # a flat norm: no spike
    h["param_norm"] = np.where((steps >= 4_900) & (steps <= 5_100), 60.0, 50.0).tolist()
    assert analysis.spikes_at_crashes(h) == (1, 1)
    h["param_norm"] = np.where((steps >= 7_000) & (steps <= 7_100), 60.0, 50.0).tolist()
    assert analysis.spikes_at_crashes(h) == (1, 0)  # a spike elsewhere does not count


def test_answer_is_built_by_keyword_and_prints():
    a = claims.lower_val_loss(pair([3e-2], [1e-4]))
    assert a.line().startswith("lower_val_loss: inconclusive — ")
    assert "(df 1)" in a.line() and a.row()["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="verdict"):
        claims.Answer(claim="x", observable="o", verdict="yes", why="", seeds=1, horizon="T")
    with pytest.raises(ValueError, match="records is empty"):
        claims.lower_val_loss([])


def test_number_texts():
    assert claims.number_text(math.nan) == "–" and claims.number_text(12_345.0) == "12,345"
    assert claims.number_text(0.012345) == "0.0123" and claims.number_text(7) == "7"
    assert claims.numbers_text([100.0, math.nan]) == "100/never"


def test_a_family_is_corrected_together():
    # two claims each at p ≈ 0.03 alone: decided alone, not over a family of two (Holm: 0.06)
    alone = [claims.ternary_faster(orders_runs([950, 1_050])) for _ in range(2)]
    p = alone[0].tests[0].p
    assert 0.025 < p < 0.05 and all(a.verdict == "agree" for a in alone)
    assert [a.verdict for a in claims.decide_family(alone)] == ["inconclusive"] * 2
