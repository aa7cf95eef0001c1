"""Time to grok on synthetic histories (known answers), and through the engine."""

import math

import pytest
from test_engine import TINY

from modarith.models.config import RunConfig, run_id
from modarith.runtime.store import Record
from modarith.study.grok import grok_frame, grok_step, grok_summary, time_to_grok


def _record(seed: int, grok_at: float, lamb: float = 0.0, group_wall: float = 50.0, size: int = 4,
            dip_at: float | None = None):
    cfg = RunConfig(steps=1000, eval_dense=0, eval_every=100, seed=seed,
                    grokfast_alpha=0.9 if lamb else 0.0, grokfast_lamb=lamb)
    steps = cfg.eval_steps()
    acc = [1.0 if s >= grok_at else 0.5 for s in steps]
    acc = [0.989 if s == grok_at - 100 else a for s, a in zip(steps, acc)]  # just below the bar
    if dip_at is not None:
        acc = [0.6 if s == dip_at else a for s, a in zip(steps, acc)]
    hist = {"step": steps, "val_acc": acc}
    meta = {"group_wall_time_s": group_wall, "group_size": size, "wall_time_s": group_wall / size}
    return Record(run_id(cfg), cfg, hist, {}, meta)


def test_grok_step_must_stay_above_the_bar():
    h = {"step": [0, 10, 20, 30, 40], "val_acc": [0.2, 0.99, 0.5, 1.0, 0.995]}
    assert grok_step(h) == 30  # 10 touches the bar but falls back: not grokked there
    assert grok_step(h, stay=0) == 10  # the old "first crossing" definition
    assert grok_step(h, stay=1) == 30  # must hold for the next evaluation too
    assert grok_step({"step": [0, 10], "val_acc": [0.2, 0.98]}) == math.inf
    assert grok_step({"step": [0, 10], "val_acc": [0.2, 0.98]}, threshold=0.9) == 10
    assert grok_step({"step": [0, 10, 20], "val_acc": [1.0, float("nan"), 1.0]}) == 20  # NaN is below
    with pytest.raises(ValueError, match="stay"):
        grok_step(h, stay=-1)


def test_grok_frame_steps_censoring_and_derived_wall_time():
    recs = [_record(s, g) for s, g in enumerate([300, 500, 200, 2000])]  # last: never (T = 1000)
    recs.append(_record(4, 300, dip_at=700))  # falls back at 700: grokked at 800
    f = grok_frame(recs)
    assert f["step"].tolist() == [300, 500, 200, math.inf, 800]
    assert f["time"].tolist() == [300, 500, 200, 1000, 800]  # censored at T
    assert f["observed"].tolist() == [True, True, True, False, True]
    assert f["wall_s"].tolist()[:3] == pytest.approx([15.0, 25.0, 10.0])  # 50 s × t / 1000
    assert f["run_wall_s"].tolist()[:3] == pytest.approx([15.0 / 4, 25.0 / 4, 10.0 / 4])


def test_summary_is_the_kaplan_meier_median_with_censored_runs():
    recs = [_record(s, g) for s, g in enumerate([300, 500, 200, 400, 2000, 600, 300, 700, 800])]
    recs += [_record(s, g, lamb=2.0, group_wall=60.0) for s, g in enumerate([100, 200, 100, 2000])]
    summ = grok_summary(grok_frame(recs), by=("model", "grokfast_lamb"))
    base, fast = summ.iloc[0], summ.iloc[1]
    assert (base["n"], base["n_grokked"], fast["n"], fast["n_grokked"]) == (9, 8, 4, 3)
    # KM, one run censored at T = 1000: S = 8/9, 6/9, 5/9 by t = 400, then 4/9 < ½ at t = 500
    assert base["median_step"] == 500.0
    assert base["step_ci_low"] <= base["median_step"] <= base["step_ci_high"]
    assert fast["median_step"] == 100.0
    # more than half censored: the median is not reached
    never = grok_summary(grok_frame([_record(s, 2000) for s in range(3)] + [_record(9, 100)]))
    assert never.iloc[0]["median_step"] == math.inf and never.iloc[0]["n_grokked"] == 1


def test_time_to_grok_trains_one_group_of_seeds():
    cfg = RunConfig(model="gpt", lr=1e-2, **{**TINY, "steps": 40})
    frame, summ = time_to_grok(cfg, [0, 1, 2], results=None, device="cpu", threshold=0.3)
    assert frame["seed"].tolist() == [0, 1, 2] and len(summ) == 1 and summ.iloc[0]["n"] == 3
    assert (frame["run_wall_s"] * 3).tolist() == pytest.approx(frame["wall_s"].tolist())  # one group of three
    with pytest.raises(ValueError, match="seeds"):
        time_to_grok(cfg, [0, 0], results=None)


def test_windowed_grok_on_flicker_late_grok_and_never():
    """Grokked = W consecutive evaluations at or above the bar; the time is the window's first step."""
    steps = list(range(0, 1100, 100))
    flicker = [0.1, 0.2, 0.995, 0.5, 0.99, 1.0, 0.97, 1.0, 1.0, 1.0, 1.0]  # single touches, then a dip
    assert grok_step({"step": steps, "val_acc": flicker}, window=3) == 700
    assert grok_step({"step": steps, "val_acc": flicker}, window=2) == 400  # 400 and 500 hold
    assert grok_step({"step": steps, "val_acc": flicker}) == 700  # "to the end" agrees here
    late = [0.0] * 8 + [1.0, 1.0, 1.0]
    assert grok_step({"step": steps, "val_acc": late}, window=3) == 800
    assert grok_step({"step": steps, "val_acc": late}, window=4) == math.inf  # the window must fit in the run
    after = [0.0, 1.0, 1.0, 1.0, 0.5] + [1.0] * 6  # a later flicker does not un-grok it
    assert grok_step({"step": steps, "val_acc": after}, window=3) == 100
    assert grok_step({"step": steps, "val_acc": after}) == 500
    never = [0.1 * i for i in range(10)] + [0.98]
    assert grok_step({"step": steps, "val_acc": never}, window=1) == math.inf
    with pytest.raises(ValueError, match="window"):
        grok_step({"step": steps, "val_acc": never}, window=0)
    with pytest.raises(ValueError, match="at most one"):
        grok_step({"step": steps, "val_acc": never}, window=2, stay=1)


def test_fit_time_law_recovers_known_exponents():
    """Synthetic times t = e^a (ηλ)^-b η^c × a per-seed factor × noise: the fit recovers b and c,
    and the bootstrap-over-seeds intervals cover them."""
    import numpy as np
    import pandas as pd

    from modarith.study.grok import fit_time_law

    rng = np.random.default_rng(3)
    arms = [(6e-3, 1), (3e-3, 2), (1.5e-3, 4), (3e-3, 1), (6e-3, 2), (1e-2, 0)]
    for b, c in ((1.0, 0.0), (0.6, 0.4)):
        rows = []
        for s in range(8):
            seed_factor = rng.normal(0, 0.2)
            for eta, lam in arms:
                t = math.exp(2.0 + seed_factor + rng.normal(0, 0.05)) * (eta * lam or 1) ** -b * eta ** c
                rows.append({"seed": s, "lr": eta, "weight_decay": lam, "time": t, "observed": lam > 0})
        rows.append({"seed": 0, "lr": 6e-3, "weight_decay": 1, "time": 1.0, "observed": False})  # censored: left out
        fit = fit_time_law(pd.DataFrame(rows), n_boot=300)
        assert fit["n_runs"] == 40 and fit["n_seeds"] == 8
        assert fit["b"] == pytest.approx(b, abs=0.08) and fit["c"] == pytest.approx(c, abs=0.08)
        assert fit["b_low"] < b < fit["b_high"] and fit["c_low"] < c < fit["c_high"]
    tied = pd.DataFrame([{"seed": s, "lr": 1e-3, "weight_decay": lam, "time": 100.0 * lam, "observed": True}
                         for s in range(3) for lam in (1, 2)])
    tied["lr"] = tied["weight_decay"] * 1e-3  # η·λ and η move together: c is not identified
    with pytest.raises(ValueError, match="cannot identify"):
        fit_time_law(tied)


def test_censored_time_law_keeps_slow_runs_and_matches_lifelines():
    """Runs censored at T stay in the fit as right-censored: the censored fit recovers b and c
    where the grokked-only fit is pulled down by losing the slow seeds, and its estimates are
    lifelines' log-normal AFT maximum likelihood."""
    import numpy as np
    import pandas as pd
    from lifelines import LogNormalAFTFitter

    from modarith.study.grok import fit_time_law

    rng = np.random.default_rng(5)
    arms = [(1.2e-2, 0.5), (6e-3, 1), (2.4e-2, 0.25), (1.2e-2, 0.25), (1.2e-2, 1)]
    T, rows = 2_500.0, []
    for s in range(12):
        for eta, lam in arms:
            t = math.exp(2.1 + rng.normal(0, 0.35)) * (eta * lam) ** -1.0 * eta ** 0.0
            rows.append({"seed": s, "lr": eta, "weight_decay": lam, "time": min(t, T), "observed": t < T})
    frame = pd.DataFrame(rows)
    assert 5 <= (~frame.observed).sum() <= 20  # the half-product arm is censored on most seeds
    cens = fit_time_law(frame, n_boot=200, censored=True)
    seen = fit_time_law(frame, n_boot=200)
    assert cens["n_censored"] == (~frame.observed).sum() and seen["n_censored"] == 0
    assert cens["b"] == pytest.approx(1.0, abs=0.1) and cens["c"] == pytest.approx(0.0, abs=0.1)
    assert cens["b_low"] < 1.0 < cens["b_high"]
    assert seen["b"] < cens["b"] - 0.1  # losing the slow seeds biases b low
    aft = LogNormalAFTFitter().fit(pd.DataFrame({"x1": -np.log(frame.lr * frame.weight_decay),
                                                 "x2": np.log(frame.lr), "T": frame.time, "E": frame.observed}),
                                   "T", "E")
    assert cens["b"] == pytest.approx(aft.params_["mu_"]["x1"], abs=2e-3)
    assert cens["c"] == pytest.approx(aft.params_["mu_"]["x2"], abs=2e-3)
    assert cens["a"] == pytest.approx(aft.params_["mu_"]["Intercept"], abs=5e-3)


def _censored_frame(seed=5, n=12):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        for eta, lam in ((1.2e-2, 0.5), (6e-3, 1), (2.4e-2, 0.25), (1.2e-2, 0.25), (1.2e-2, 1)):
            t = math.exp(2.1 + rng.normal(0, 0.35)) / (eta * lam)
            rows.append({"seed": s, "lr": eta, "weight_decay": lam, "time": min(t, 2_500.0), "observed": t < 2_500})
    return pd.DataFrame(rows)


def test_censored_fit_reports_a_failed_optimiser(monkeypatch):
    """An optimiser that does not converge gives no estimate (not its last iterate): the whole
    fit raises, and failed resamples are counted and flagged, kept + skipped + failed = asked."""
    import numpy as np
    from scipy import optimize

    from modarith.study import grok

    X = np.column_stack([np.ones(6), np.arange(6.0)])
    y, obs = 1.0 + 0.5 * np.arange(6.0) + np.array([0.1, -0.1, 0.05, 0, -0.05, 0.02]), np.ones(6, bool)
    assert grok._censored_normal_fit(X, y, obs, np.array([1.0, 0.5])) is not None
    real = optimize.minimize
    monkeypatch.setattr(optimize, "minimize", lambda *a, **k: optimize.OptimizeResult(
        x=real(*a, **k).x, fun=0.0, success=False, message="forced failure"))
    assert grok._censored_normal_fit(X, y, obs, np.array([1.0, 0.5])) is None
    with pytest.raises(ValueError, match="did not converge"):
        grok.fit_time_law(_censored_frame(), n_boot=5, censored=True)
    monkeypatch.setattr(optimize, "minimize", real)
    calls = [0]
    fit_ok = grok._censored_normal_fit

    def every_third_fails(*a):
        calls[0] += 1
        return None if calls[0] % 3 == 0 else fit_ok(*a)

    monkeypatch.setattr(grok, "_censored_normal_fit", every_third_fails)
    f = grok.fit_time_law(_censored_frame(), n_boot=30, censored=True)
    assert f["n_failed"] == 10 and f["n_boot"] + f["n_skipped"] + f["n_failed"] == f["n_asked"] == 30
    assert "10 of 30 resamples not fitted" in f["flag"]
    monkeypatch.setattr(grok, "_censored_normal_fit", fit_ok)
    clean = grok.fit_time_law(_censored_frame(), n_boot=30, censored=True)
    assert clean["flag"] == "" and clean["n_boot"] == 30


def test_a_cell_censored_on_every_seed_is_an_error_not_a_number():
    from modarith.study.grok import fit_time_law

    frame = _censored_frame()
    slow = (frame.lr == 6e-3) & (frame.weight_decay == 1)
    frame.loc[slow, "observed"], frame.loc[slow, "time"] = False, 10.0
    with pytest.raises(ValueError, match="censored on every seed"):
        fit_time_law(frame, n_boot=10, censored=True)
    assert fit_time_law(frame, n_boot=10)["n_runs"] == int(frame.observed.sum())  # least squares: seen runs only
