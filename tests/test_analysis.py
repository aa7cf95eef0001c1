"""Analysis on synthetic records with known answers: curves, best/t_f, α slicing, Δt, the
per-model table and the helpers the notebooks' answers are built from."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest

from modarith.models.config import RunConfig
from modarith.runtime.store import Record
from modarith.study import analysis as A


def history(T=1000, every=100, t_mem=100, t_gen=600, val_max=1.0, train_max=1.0,
            loss_floor=1e-3, norm=None, orders=None):
    """A grokking-shaped history: train acc jumps to train_max at t_mem, val acc to val_max at
    t_gen; losses fall to their floor at the same steps (then stay flat)."""
    steps = list(range(0, T + 1, every))
    h = {
        "step": steps,
        "train_acc": [train_max if s >= t_mem else 0.0 for s in steps],
        "val_acc": [val_max if s >= t_gen else 0.0 for s in steps],
        "train_loss": [loss_floor if s >= t_mem else 1.0 for s in steps],
        "val_loss": [(10 * loss_floor if val_max >= 0.9 else 0.5) if s >= t_gen else 2.0
                     for s in steps],
        "param_norm": list(norm) if norm is not None else [10.0] * len(steps),
    }
    for o, (tm, tg) in (orders or {}).items():
        h[f"train_acc_o{o}"] = [1.0 if s >= tm else 0.0 for s in steps]
        h[f"val_acc_o{o}"] = [1.0 if s >= tg else 0.0 for s in steps]
        h[f"train_loss_o{o}"] = [0.01 if s >= tm else 1.0 for s in steps]
        h[f"val_loss_o{o}"] = [0.02 if s >= tg else 1.0 for s in steps]
    return h


def rec(model="gpt", seed=0, T=1000, h=None, **cfg):
    config = RunConfig(model=model, seed=seed, steps=T, **cfg)
    h = h if h is not None else history(T=T)
    return Record("x", config, h, {}, {})


# --------------------------------------------------------------------------- curves
def test_curves_mean_std_over_seeds():
    r0 = rec(seed=0, h=history(t_gen=500))
    r1 = rec(seed=42, h=history(t_gen=700))
    c = A.curves_frame([r0, r1])
    assert list(c.columns) == ["model", "step", "metric", "mean", "std", "n"]
    va = c[c["metric"] == "val_acc"].set_index("step")
    assert va.loc[400, "mean"] == 0.0 and va.loc[400, "std"] == 0.0
    assert va.loc[600, "mean"] == 0.5 and va.loc[600, "std"] == 0.5  # population std
    assert va.loc[800, "mean"] == 1.0 and (va["n"] == 2).all()
    assert set(c["metric"]) == {"train_acc", "val_acc", "train_loss", "val_loss", "param_norm"}


def test_curves_grouped_by_field_and_model():
    rs = [rec(model=m, r_train=r, h=history(t_gen=int(1000 * (1 - r)) // 100 * 100))
          for m in ("gpt", "lstm") for r in (0.3, 0.7)]
    c = A.curves_frame(rs, by=("r_train",))
    assert list(c.columns) == ["model", "r_train", "step", "metric", "mean", "std", "n"]
    assert list(dict.fromkeys(c["model"])) == ["lstm", "gpt"]  # seed order: LSTM first
    assert (c["n"] == 1).all() and (c["std"] == 0).all()
    v = c[(c.model == "gpt") & (c.r_train == 0.7) & (c.metric == "val_acc")].set_index("step")
    assert v.loc[300, "mean"] == 1.0 and v.loc[200, "mean"] == 0.0


def test_curves_by_too_coarse_or_invalid_raises():
    rs = [rec(r_train=0.3), rec(r_train=0.7)]
    with pytest.raises(ValueError, match=r"by = \(\) is too coarse.*r_train"):
        A.curves_frame(rs)
    with pytest.raises(ValueError, match="by = "):
        A.curves_frame(rs, by=("not_a_field",))
    with pytest.raises(ValueError, match="records is empty"):
        A.curves_frame([])


def test_records_may_be_duck_typed():
    r = SimpleNamespace(config=RunConfig(steps=1000), history=history())
    assert len(A.best_frame([r])) == 4


# --------------------------------------------------------------------------- best values
def test_best_frame_values_and_tf():
    r0 = rec(seed=0, h=history(t_mem=100, t_gen=500))
    r1 = rec(seed=42, h=history(t_mem=300, t_gen=900, val_max=0.8))
    b = A.best_frame([r0, r1]).set_index("quantity")
    assert list(b.index) == ["L_train", "L_val", "A_train", "A_val"]
    assert b.loc["A_val", "best_mean"] == pytest.approx(0.9)
    assert b.loc["A_val", "best_std"] == pytest.approx(0.1)
    assert b.loc["A_val", "tf_mean"] == 700 and b.loc["A_val", "tf_std"] == 200
    assert b.loc["A_train", "tf_mean"] == 200 and b.loc["A_train", "best_mean"] == 1.0
    assert b.loc["L_train", "best_mean"] == pytest.approx(1e-3)
    assert (b["n"] == 2).all()


def test_best_frame_t_max_and_alpha_slices():
    r = rec(T=1000, h=history(t_mem=100, t_gen=600))
    early = A.best_frame([r], t_max=500).set_index("quantity")
    assert early.loc["A_val", "best_mean"] == 0.0 and early.loc["A_val", "tf_mean"] == 0
    assert early.loc["A_train", "best_mean"] == 1.0 and early.loc["A_train", "tf_mean"] == 100
    sl = A.best_frame([r], alphas=(0.1, 0.5, 0.6, 1.0))
    av = sl[sl.quantity == "A_val"].set_index("alpha")
    assert list(av.index) == [0.1, 0.5, 0.6, 1.0]
    assert list(av["best_mean"]) == [0.0, 0.0, 1.0, 1.0]  # T_max = α·T = 100, 500, 600, 1000
    assert av.loc[0.6, "tf_mean"] == 600
    with pytest.raises(ValueError, match="alphas"):
        A.best_frame([r], alphas=(0.0, 1.0))
    with pytest.raises(ValueError, match="mutually exclusive"):
        A.best_frame([r], t_max=10, alphas=(1.0,))


def test_best_frame_params_and_compute_columns():
    rs = [rec(model="gpt", d_model=32, num_layers=1), rec(model="gpt", d_model=64, num_layers=1)]
    b = A.best_frame(rs, by=("d_model",), params=True)
    P = b.drop_duplicates("d_model").set_index("d_model")["P"]
    # P = P_decoder + classifier (d·V + V), V = 36
    from modarith.core.params import p_decoder
    for d in (32, 64):
        assert P[d] == p_decoder(d, 1) + d * 36 + 36
    c = A.best_frame(rs, by=("d_model",), params=True, compute=True, t_max=500)
    row = c[c.d_model == 32].iloc[0]
    assert row["C"] == pytest.approx(row["P"] * 480 * 500)  # B_eff = N_train = 480 at p = 31


def test_per_order_and_dt_quantities():
    h = history(t_mem=100, t_gen=700, orders={2: (100, 800), 3: (200, 400)})
    r = rec(p=11, orders=(2, 3), h=h)
    b = A.best_frame([r], quantities=A.ORDER_QUANTITIES).set_index("quantity")
    assert b.loc["A_val_o3", "tf_mean"] == 400 and b.loc["A_val_o2", "tf_mean"] == 800
    d = A.best_frame([r], quantities=("dt_A", "dt_L")).set_index("quantity")
    assert d.loc["dt_A", "best_mean"] == 600
    with pytest.raises(ValueError, match="quantities"):
        A.best_frame([rec()], quantities=("A_val_o3",))


# --------------------------------------------------------------------------- tables
def sanity_records(gpt_gen=(900, 900), lstm_gen=(800, 1000), lstm_val=(1.0, 0.99)):
    out = []
    for s, tg in zip((0, 42), gpt_gen):
        out.append(rec("gpt", s, h=history(t_mem=300, t_gen=tg, loss_floor=1e-4)))
    for s, tg, v in zip((0, 42), lstm_gen, lstm_val):
        out.append(rec("lstm", s, h=history(t_mem=100, t_gen=tg, val_max=v, loss_floor=2e-4)))
    return out


def test_model_table_numbers_and_dt():
    t = A.model_table(sanity_records())
    assert list(t.index) == ["A_train", "L_train", "A_val", "L_val", "dt_A", "dt_L"]
    assert list(t.columns.get_level_values(0).unique()) == ["lstm", "gpt"]
    assert t.loc["A_val", ("lstm", "mean")] == pytest.approx(0.995)
    assert t.loc["A_val", ("lstm", "std")] == pytest.approx(0.005)
    assert t.loc["A_val", ("lstm", "t_f")] == 900
    assert t.loc["A_train", ("gpt", "t_f")] == 300
    assert t.loc["dt_A", ("gpt", "mean")] == 600 and t.loc["dt_A", ("lstm", "mean")] == 800
    assert t.loc["dt_A", ("lstm", "std")] == 100
    assert math.isnan(t.loc["dt_A", ("gpt", "t_f")])


def test_compare_tables_bolds_the_better_model_per_row():
    nan = float("nan")
    other = A.table_frame({m: {"A_train": (1.0, 0.0, 100), "L_train": (v, 0.0, 9600),
                               "A_val": (1.0, 0.0, 9000), "L_val": (v, 0.0, 10000),
                               "dt_A": (9000, nan, nan), "dt_L": (400, nan, nan)}
                           for m, v in (("lstm", 1e-4), ("gpt", 2e-4))})
    text, bold = A.compare_tables({"ours": A.model_table(sanity_records()), "other": other})
    rows = list(text.index)
    # ours: GPT has the lower losses (1e-4 vs 2e-4) and the higher A_val; A_train tied
    assert bold.loc["L_train", ("ours", "GPT")] and not bold.loc["L_train", ("ours", "LSTM")]
    assert bold.loc["A_val", ("ours", "GPT")]
    assert not bold.loc["A_train"].any() and not bold.loc["Δt(A)"].any()
    assert bold.loc["L_val", ("other", "LSTM")] and not bold.loc["L_val", ("other", "GPT")]
    assert not bold.loc["A_val", ("other", "GPT")]  # tie in the other table
    assert text.loc["L_train", ("other", "LSTM")] == "1.00e-04 ± 0.00e+00 (t_f = 9600)"
    assert text.loc["Δt(A)", ("other", "GPT")] == "9000" and rows[-1] == "Δt(L)"
    html = A.styled(text, bold, "caption").to_html()
    rule = re.search(r"([^}]*)\{\s*font-weight: bold", html).group(1)  # one CSS rule, one id per cell
    assert rule.count("#T_") == int(bold.to_numpy().sum()) == 5


# --------------------------------------------------------------------------- answer helpers
def test_threshold_smallest_and_largest_grid_point():
    rs = [rec(r_train=r, h=history(t_gen=500, val_max=v, train_max=1.0))
          for r, v in ((0.3, 0.2), (0.5, 0.95), (0.7, 1.0))]
    best = A.best_frame(rs, by=("r_train",))
    assert A.threshold(best, "gpt", "r_train", lambda b: b["A_val"] >= 0.9) == (0.5, {
        "L_train": pytest.approx(1e-3), "L_val": pytest.approx(1e-2), "A_train": 1.0, "A_val": 0.95})
    r, b = A.threshold(best, "gpt", "r_train", lambda b: b["A_train"] >= 0.9 and b["A_val"] <= 0.5,
                       pick=max)
    assert r == 0.3 and b["A_val"] == 0.2
    assert A.threshold(best, "gpt", "r_train", lambda b: b["A_val"] > 1) == (None, {})


def reg_records(tfs=(900, 600, 300), peak_drop=True):
    """Weight decays 0.25, 0.5, 1 generalising at ``tfs`` (None: never); with ``peak_drop`` the
    norm climbs from 10 until just before generalisation, then falls to 5."""
    rs = []
    for wd, tg in zip((0.25, 0.5, 1.0), tfs):
        steps = list(range(0, 1001, 100))
        t = 10_000 if tg is None else tg
        norm = [10 + s / 100 if s < t - 100 or not peak_drop else 5.0 for s in steps]
        h = history(t_gen=t, norm=norm)
        rs.append(rec("lstm", weight_decay=wd, h=h))
    return rs


def test_direction_and_first_step_helpers():
    assert A.direction([1, 2, 3]) == "increases"
    assert A.direction([3, 2, 2]) == "decreases"
    assert A.direction([1, 1]) == "is unchanged"
    assert A.direction([1, 3, 2]) == "is non-monotone"
    assert A.direction([1, math.nan, 3]) == "increases"  # NaN dropped
    assert A.direction([900, 600, math.nan], nan_is_never=True) == "is non-monotone"
    assert A.direction([math.nan, 800, 500], nan_is_never=True) == "decreases"
    assert A.direction([math.nan, math.nan], nan_is_never=True) == "is unchanged"
    assert A.first_step_at([0, 100, 200], [0.1, 0.95, 1.0]) == 100
    assert math.isnan(A.first_step_at([0, 100], [0.1, 0.2]))


def test_norm_around_generalisation():
    rs = reg_records()
    n = A.norm_around_generalisation(rs, by=("weight_decay",))
    row = n[n.weight_decay == 1.0].iloc[0]
    assert row["tf_A_val"] == 300 and row["norm_peak"] == 11.0 and row["norm_at_tf"] == 5.0
    assert row["step_peak"] == 100 and row["drop"] == pytest.approx(1 - 5 / 11)
    assert row["norm_init"] == 10.0 and row["rise"] == pytest.approx(0.1)
    assert row["t_gen"] == 300
    never = A.norm_around_generalisation(reg_records(tfs=(None, 800, 500)), by=("weight_decay",))
    assert math.isnan(never[never.weight_decay == 0.25].iloc[0]["t_gen"])


# --------------------------------------------------------------------------- norms
def test_parameter_norms_filter_by_name():
    import numpy as np

    snaps = {"steps": np.array([0, 500]),
             "params": {"embedding.weight": np.array([[[3.0, 0.0]], [[0.0, 0.0]]]),
                        "layers.0.weight": np.array([[4.0, 0.0], [1.0, 0.0]])}}
    everything = A.parameter_norms(snaps)
    assert list(everything["step"]) == [0, 500]
    assert everything["norm"].tolist() == pytest.approx([5.0, 1.0])
    grown = A.parameter_norms(snaps, exclude=("embedding",))
    assert grown["norm"].tolist() == pytest.approx([4.0, 1.0])
    with pytest.raises(ValueError, match="leaves no parameter"):
        A.parameter_norms(snaps, exclude=("weight",))


def test_rise_and_fall_around_an_event():
    steps = [0, 100, 200, 300, 400]
    out = A.rise_and_fall(steps, [10.0, 12.0, 11.0, 8.0, 9.0], t_event=250)
    assert (out["peak"], out["step_peak"], out["at_event"]) == (12.0, 100, 11.0)
    assert (out["low"], out["step_low"]) == (8.0, 300)
    assert out["rise"] == pytest.approx(0.2) and out["fall"] == pytest.approx(3 / 11)
    # falls only before the event, then grows: no fall once the event has happened
    early = A.rise_and_fall(steps, [10.0, 12.0, 9.0, 9.5, 9.8], t_event=300)
    assert early["rise"] == pytest.approx(0.2) and early["fall"] == 0.0
    only_falls = A.rise_and_fall(steps, [10.0, 9.0, 8.0, 7.0, 6.0], t_event=300)
    assert only_falls["rise"] == 0.0 and only_falls["step_peak"] == 0
    never = A.rise_and_fall(steps, [1.0] * 5, t_event=math.nan)
    assert math.isnan(never["rise"]) and never["end"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        A.rise_and_fall(steps, [1.0], 100)
