"""The fair comparison protocol: validation, the learning-rate choice on tuning seeds, and a
tiny end-to-end comparison whose statistics are computed from its own runs."""

import math

import pandas as pd
import pytest
from test_engine import TINY

from modarith.study.compare import Arm, Comparison, choose_lr, results_table, run_comparisons, scale_text

ARMS = (Arm("AdamW"), Arm("Grokfast", {"grokfast_alpha": 0.9, "grokfast_lamb": 2.0}))


def _comparison(**kw):
    args = dict(name="tiny", base={"model": "gpt", **TINY}, arms=ARMS, lr_grid=(1e-2, 3e-3),
                tuning_seeds=(100,), seeds=tuple(range(8)), threshold=0.3)
    return Comparison(**{**args, **kw})


@pytest.mark.parametrize("kw, match", [
    (dict(seeds=tuple(range(7))), "at least 8"),
    (dict(tuning_seeds=(3,)), "tuning_seeds"),
    (dict(arms=(Arm("a"), Arm("a"))), "distinct"),
    (dict(arms=(Arm("a", {"lr": 1e-3}),)), "learning rates"),
    (dict(arms=(Arm("a", {"optimizer": "sgd"}),)), "RunConfig.optimizer"),
    (dict(lr_grid=()), "lr_grid"),
])
def test_comparison_validates(kw, match):
    with pytest.raises(ValueError, match=match):
        _comparison(**kw)


def test_plan_configs_cover_tuning_and_measured_runs():
    c = _comparison()
    assert len(c.tuning_configs()) == 2 * 2 * 1 and len(c.plan_configs()) == 4 + 2 * 8
    assert {x.seed for x in c.tuning_configs()}.isdisjoint({x.seed for x in c.measured_configs(
        {"AdamW": 1e-2, "Grokfast": 3e-3})})


def test_choose_lr_smallest_mean_time_then_more_grokked_then_lower_loss():
    t = pd.DataFrame({
        "arm": ["a"] * 4 + ["b"] * 4,
        "lr": [1e-3, 1e-3, 3e-3, 3e-3, 1e-3, 1e-3, 3e-3, 3e-3],
        "time": [500, 1000, 300, 400, 1000, 1000, 1000, 1000],
        "observed": [True, False, True, True, False, False, False, False],
        "final_val_loss": [1, 1, 1, 1, 2.0, 2.0, 1.0, 1.0]})
    best, table = choose_lr(t)
    assert best == {"a": 3e-3, "b": 3e-3}  # b: all censored, the lower loss decides
    assert table.chosen.sum() == 2


def test_tiny_comparison_end_to_end():
    (res,) = run_comparisons([_comparison()], results=None, device="cpu")
    assert set(res.best_lr) == {"AdamW", "Grokfast"}
    assert len(res.measured) == 16 and set(res.measured.seed) == set(range(8))
    assert len(res.tuning) == 4 and (res.tuning.seed == 100).all()
    for arm, lr in res.best_lr.items():
        assert (res.arm_frame(arm).lr == lr).all()
    med = res.medians()
    assert med.n.tolist() == [8, 8]
    v = res.versus("Grokfast")
    assert 0 <= v["p_logrank"] <= 1 and v["paired_n"] == 8
    assert "log-rank" in v["sentence"] and "Paired over 8 seeds" in v["sentence"]
    curves = res.curves()
    assert all(((c.grokked >= 0) & (c.grokked <= 1)).all() for c in curves.values())
    assert not any(math.isinf(x) for x in res.measured.time)  # censored runs carry T, not ∞
    table = results_table([res])
    assert list(table.arm) == ["AdamW", "Grokfast"] and table["log-rank vs first arm"].iloc[0] == "—"
    assert not table.isna().any().any() and "inf" not in table.to_string()
    assert scale_text(res.comparison).startswith("GPT, p = 7, L = 1, d = 16")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from modarith.plotting.progress_plots import plot_km

    fig, caption = plot_km([res])
    n_ok = int(res.arm_frame("AdamW").observed.sum())
    assert f"tiny, AdamW: {n_ok}/8 grokked" in caption and "censored at T" in caption
    assert fig.axes[0].get_xlim() == (0.0, float(res.measured["T"].max()))
    plt.close(fig)


def test_design_frames_arms_on_paired_seeds_and_tests_pairs():
    """A Design: every arm × seed, no tuning; its frame uses the windowed definition and the paired
    test reports the Wilcoxon signed-rank p of the log-ratios (small when one arm is always 2× faster)."""
    from modarith.models.config import run_id
    from modarith.runtime.store import Record
    from modarith.study.compare import Design, arm_table, paired

    d = Design("t", {"model": "lstm", "steps": 1000, "eval_dense": 0, "eval_every": 100},
               [Arm("slow", {"lr": 1e-3}), Arm("fast", {"lr": 2e-3})], seeds=range(8), window=2)
    cfgs = d.configs()
    assert len(cfgs) == 16 and {c.lr for c in d.configs(["fast"])} == {2e-3}
    recs = []
    for c in cfgs:
        t = (200 + 50 * (c.seed % 2) * 2) * (2 if c.lr == 1e-3 else 1)  # fast: half the time, every seed
        steps = c.eval_steps()
        acc = [1.0 if s >= t else 0.2 for s in steps]
        if c.seed == 0 and c.lr == 1e-3:
            acc = [0.2 if s == 900 else a for s, a in zip(steps, acc)]  # a late flicker does not un-grok it
        recs.append(Record(run_id(c), c, {"step": steps, "val_acc": acc, "val_loss": [1.0] * len(steps)}, {}, {}))
    f = d.frame(recs)
    assert f.loc[(f.arm == "slow") & (f.seed == 0), "time"].item() == 400  # window 2 held at 400, 500
    tab = arm_table(f).set_index("arm")
    assert tab.loc["fast", "n_grokked"] == 8 and tab.loc["fast", "median"] < tab.loc["slow", "median"]
    s = paired(f, "slow", "fast")
    assert s["b_sooner"] == 8 and s["wilcoxon_p"] < 0.01 and s["median_ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="not runs of design"):
        Design("u", {"model": "gpt"}, [Arm("x")], seeds=(0,)).frame(recs[:1])
    with pytest.raises(ValueError, match="Design.seeds"):
        Design("u", {"model": "gpt"}, [Arm("x")], seeds=(0, 0))
