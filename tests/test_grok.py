"""Time to grok on synthetic histories (known answers), and through the engine."""

import math

import numpy as np
import pytest
from test_engine import TINY

from modarith.config import RunConfig, run_id
from modarith.grok import (
    bootstrap_median_ci,
    grok_frame,
    grok_step,
    grok_summary,
    speedup_sentence,
    time_to_grok,
)
from modarith.store import Record

CFG = RunConfig(steps=1000, eval_dense=0, eval_every=100)  # T = 1000, evaluations every 100


def _record(seed: int, grok_at: float, lamb: float = 0.0, group_wall: float = 50.0, size: int = 4):
    cfg = RunConfig(steps=1000, eval_dense=0, eval_every=100, seed=seed,
                    grokfast_alpha=0.9 if lamb else 0.0, grokfast_lamb=lamb)
    steps = cfg.eval_steps()
    acc = [1.0 if s >= grok_at else 0.5 for s in steps]
    acc = [0.989 if s == grok_at - 100 else a for s, a in zip(steps, acc)]  # just below the bar
    hist = {"step": steps, "val_acc": acc}
    meta = {"group_wall_time_s": group_wall, "group_size": size, "wall_time_s": group_wall / size}
    return Record(run_id(cfg), cfg, hist, {}, meta)


def test_grok_step_first_crossing_or_never():
    assert grok_step({"step": [0, 10, 20, 30], "val_acc": [0.2, 0.99, 0.5, 1.0]}) == 10
    assert grok_step({"step": [0, 10], "val_acc": [0.2, 0.98]}) == math.inf
    assert grok_step({"step": [0, 10], "val_acc": [0.2, 0.98]}, threshold=0.9) == 10


def test_grok_frame_steps_and_derived_wall_time():
    recs = [_record(s, g) for s, g in enumerate([300, 500, 200, 2000])]  # last: never (T = 1000)
    f = grok_frame(recs)
    assert f["step"].tolist() == [300, 500, 200, math.inf]
    assert f["wall_s"].tolist()[:3] == pytest.approx([15.0, 25.0, 10.0])  # 50 s × t / 1000
    assert f["run_wall_s"].tolist()[:3] == pytest.approx([15.0 / 4, 25.0 / 4, 10.0 / 4])


def test_summary_median_ci_and_fraction():
    recs = [_record(s, g) for s, g in enumerate([300, 500, 200, 400, 2000, 600, 300, 700])]
    recs += [_record(s, g, lamb=2.0, group_wall=60.0) for s, g in enumerate([100, 200, 100, 100])]
    summ = grok_summary(grok_frame(recs), n_boot=500, seed=1)
    base, fast = summ.iloc[0], summ.iloc[1]
    assert (base["n"], base["n_grokked"], fast["n"]) == (8, 7, 4)
    assert base["median_step"] == 450.0  # median of 200 300 300 400 500 600 700 ∞
    assert base["step_ci_low"] <= base["median_step"] <= base["step_ci_high"]
    assert base["frac_within"] == pytest.approx(7 / 8) and fast["frac_within"] == 1.0
    assert fast["median_step"] == 100.0 and fast["median_wall_s"] == pytest.approx(6.0)
    assert grok_summary(grok_frame(recs), within=300).iloc[0]["frac_within"] == pytest.approx(3 / 8)
    # same seed, same interval; the sentence carries the computed ratio
    again = grok_summary(grok_frame(recs), n_boot=500, seed=1)
    assert again.equals(summ)
    text = speedup_sentence(base, fast, "AdamW", "Grokfast")
    assert "4.50× sooner" in text and "7/8 seeds" in text


def test_bootstrap_ci_known_cases():
    assert bootstrap_median_ci([5.0] * 6) == (5.0, 5.0)
    lo, hi = bootstrap_median_ci(np.arange(1.0, 102.0), n_boot=1000, rng=0)
    assert 40 < lo < 51 < hi < 62  # median 51, standard error ≈ 6
    lo, hi = bootstrap_median_ci([1.0, math.inf, math.inf], n_boot=200)
    assert hi == math.inf and not math.isnan(lo)
    with pytest.raises(ValueError, match="level"):
        bootstrap_median_ci([1.0], level=1.5)


def test_time_to_grok_trains_one_group_of_seeds():
    cfg = RunConfig(model="gpt", lr=1e-2, **{**TINY, "steps": 40})
    frame, summ = time_to_grok(cfg, [0, 1, 2], results=None, device="cpu", threshold=0.3, n_boot=50)
    assert frame["seed"].tolist() == [0, 1, 2] and len(summ) == 1 and summ.iloc[0]["n"] == 3
    assert (frame["run_wall_s"] * 3 == frame["wall_s"]).all()  # one group of three
    with pytest.raises(ValueError, match="seeds"):
        time_to_grok(cfg, [0, 0], results=None)
