"""Notebook 51_softmax_collapse: its design as protocol data, the helpers it calls (arms of
records, the tuned rate, Clopper–Pearson bounds), and its smoke build."""

import math

import pytest

from modarith.models.config import RunConfig, run_id
from modarith.runtime.store import Record
from modarith.study import protocol
from modarith.study.grok import arms_frame, arms_history, choose_lr
from modarith.study.survival import rate_interval


@pytest.mark.parametrize("profile", protocol.PROFILES)
def test_the_design_is_the_authors_setting_and_paired(profile):
    arms = protocol.collapse_arms(profile)
    k = protocol.collapse_knobs(profile)
    short = arms["mlp_short"]["⊥Grad"]
    assert short["model"] == "mlp" and short["orthograd"] and short["weight_decay"] == 0
    assert (short["beta2"], short["eps"]) == (0.999, 1e-8)  # what their OrthoGrad wrapper runs
    assert arms["mlp_long"]["softmax (float32)"]["eps"] == 1e-25  # their default ε
    if profile != "smoke":
        assert short["p"] == 113 and short["r_train"] == 0.4 and short["steps"] == 300 and short["d_model"] == 200
        assert len(k["mlp_short"]["seeds"]) >= 6 and len(k["mlp_long"]["seeds"]) >= 6
        assert not set(k["lstm"]["tuning_seeds"]) & set(k["lstm"]["seeds"])  # tuning seeds never measured
        for block in ("mlp_short", "mlp_long", "lstm"):
            assert not set(k[block].get("pilot_seeds", ())) & set(k[block]["seeds"])
    if profile == "full":
        assert arms["mlp_long"]["StableMax"]["steps"] == 80_000 and arms["mlp_long"]["StableMax"]["p"] == 113
    eta = protocol.COLLAPSE_LSTM_FIXED["AdamW, λ ½"]["lr"]
    assert eta in k["lstm"]["lr_grid"]  # the grid holds AdamW's rate
    runs = protocol.configs("collapse", profile)
    assert len(set(runs)) >= len(runs) - len(k["mlp_long"]["seeds"])  # (smoke: both MLP blocks share an arm)
    assert "collapse" in protocol.select("collapse") and "collapse" in protocol.trained()
    assert "collapse" not in protocol.reproduced()


def _record(seed, val_acc, lr=1e-2, collapse=None):
    cfg = RunConfig(model="mlp", p=7, d_model=8, steps=40, eval_dense=0, eval_every=10, seed=seed, lr=lr)
    hist = {"step": cfg.eval_steps(), "val_acc": val_acc}
    if collapse is not None:
        hist["train_collapse"] = collapse
    return Record(run_id(cfg), cfg, hist, {}, {"group_wall_time_s": 1.0, "group_size": 1})


def test_arms_frame_history_and_chosen_rate():
    grok, never = [0.1, 0.5, 1.0, 1.0, 1.0], [0.1] * 5
    arms = {"a": [_record(0, grok, collapse=[0, 0, 0.5, 1, 1]), _record(1, never, collapse=[0, 0, 0, 0, 0.2])],
            "b": [_record(0, never, collapse=[0] * 5), _record(1, never, collapse=[0] * 5)]}
    f = arms_frame(arms, 0.99, window=2)
    assert list(f.arm) == ["a", "a", "b", "b"] and list(f.observed) == [True, False, False, False]
    assert f.time.tolist() == [20, 40, 40, 40]
    assert f.final_train_collapse.tolist() == [1, 0.2, 0, 0] and f.max_train_collapse.tolist() == [1, 0.2, 0, 0]
    h = arms_history(arms, "train_collapse")
    assert len(h) == 20 and h[(h.arm == "a") & (h.seed == 0)].value.tolist() == [0, 0, 0.5, 1, 1]
    tuning = arms_frame({"x": [_record(9, never, lr=3e-3), _record(9, grok, lr=1e-2), _record(9, grok, lr=3e-2)]},
                        0.99, window=2)
    assert choose_lr(tuning, 3e-2) == 3e-2  # tie (both grokked at 20): nearest the reference
    assert choose_lr(tuning.iloc[:1], 1e-2) == 3e-3  # the only rate
    with pytest.raises(ValueError, match="empty"):
        arms_frame({})


def test_clopper_pearson_bounds():
    lo, hi = rate_interval(0, 6)
    assert lo == 0 and math.isclose(hi, 1 - 0.025 ** (1 / 6), rel_tol=1e-9)  # 0 of 6: up to 46 %
    lo, hi = rate_interval(6, 6)
    assert hi == 1 and math.isclose(lo, 0.025 ** (1 / 6), rel_tol=1e-9)
    with pytest.raises(ValueError, match=r"\(k, n\)"):
        rate_interval(7, 6)


@pytest.mark.slow
def test_smoke_collapse_notebook_answers(smoke_notebooks):
    """51_softmax_collapse in the smoke build: no error, the KM and collapse figures, the
    comparison with their Fig. 1, the Clopper–Pearson sentences and the closing note."""
    import nbformat

    nb = nbformat.read(str(smoke_notebooks["51_softmax_collapse"]), as_version=4)
    text, html = "", []
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", o.get("evalue")
            text += o.get("text", "") if o.get("name") == "stdout" else ""
            html += [o["data"]["text/html"]] if "text/html" in o.get("data", {}) else []
    figures = [h for h in html if h.startswith('<figure class="modarith-figure">')]
    assert sum("Kaplan–Meier" in h for h in figures) >= 3 and any("collapsed" in h for h in figures)
    assert any("Fig. 1" in h for h in html)
    for s in ("Clopper–Pearson", "Chosen:", "MLP (their setting", "LSTM (L"):
        assert s in text


def test_plot_arm_curves_medians_and_bad_arm():
    import pandas as pd
    from matplotlib import pyplot as plt

    from modarith.plotting.progress_plots import plot_arm_curves

    f = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 4, "seed": [0, 0, 1, 1] * 2, "step": [0, 10] * 4,
                      "value": [0, 0.2, 0, 0.6, 0, 1, 0, 1]})
    fig, caption = plot_arm_curves(f, {"panel": ["a", "b"]}, "collapsed fraction")
    assert "a: median 0.4 at step 10 (2 seeds)" in caption and "b: median 1" in caption
    plt.close(fig)
    with pytest.raises(ValueError, match="'c'"):
        plot_arm_curves(f, {"panel": ["c"]}, "collapsed fraction")
