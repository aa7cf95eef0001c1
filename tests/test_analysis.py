"""Analysis on synthetic records with known answers: curves, best/t_f, α slicing, Δt, Table 1
and the computed conclusions (each sentence must change when the data change)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from modarith import analysis as A
from modarith.config import RunConfig
from modarith.store import Record


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
    from modarith.params import p_decoder
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


# --------------------------------------------------------------------------- Table 1
def sanity_records(gpt_gen=(900, 900), lstm_gen=(800, 1000), lstm_val=(1.0, 0.99)):
    out = []
    for s, tg in zip((0, 42), gpt_gen):
        out.append(rec("gpt", s, h=history(t_mem=300, t_gen=tg, loss_floor=1e-4)))
    for s, tg, v in zip((0, 42), lstm_gen, lstm_val):
        out.append(rec("lstm", s, h=history(t_mem=100, t_gen=tg, val_max=v, loss_floor=2e-4)))
    return out


def test_table1_numbers_and_dt():
    t = A.table1(sanity_records())
    assert list(t.index) == ["A_train", "L_train", "A_val", "L_val", "dt_A", "dt_L"]
    assert list(t.columns.get_level_values(0).unique()) == ["lstm", "gpt"]
    assert t.loc["A_val", ("lstm", "mean")] == pytest.approx(0.995)
    assert t.loc["A_val", ("lstm", "std")] == pytest.approx(0.005)
    assert t.loc["A_val", ("lstm", "t_f")] == 900
    assert t.loc["A_train", ("gpt", "t_f")] == 300
    assert t.loc["dt_A", ("gpt", "mean")] == 600 and t.loc["dt_A", ("lstm", "mean")] == 800
    assert t.loc["dt_A", ("lstm", "std")] == 100
    assert math.isnan(t.loc["dt_A", ("gpt", "t_f")])


def test_seed_table1_constants():
    s = A.seed_table1()
    assert s.loc["L_train", ("lstm", "mean")] == 1.54e-4
    assert s.loc["L_train", ("lstm", "std")] == 2.82e-7
    assert s.loc["A_val", ("lstm", "t_f")] == 9200
    assert s.loc["L_val", ("gpt", "mean")] == 8.88e-4 and s.loc["L_val", ("gpt", "t_f")] == 10001
    assert s.loc["dt_A", ("lstm", "mean")] == 9100 and s.loc["dt_A", ("gpt", "mean")] == 8600
    assert s.loc["dt_L", ("lstm", "mean")] == 400 and s.loc["dt_L", ("gpt", "mean")] == 0


def test_table1_html_bolds_best_per_row_and_text_shows_seed():
    rs = sanity_records()
    html = A.table1_html(rs).to_html()
    assert "font-weight: bold" in html
    frame, bold = A._display_table({"ours": A.table1(rs), "seed": A.seed_table1()})
    rows = list(frame.index)
    # ours: GPT has the lower losses (1e-4 vs 2e-4) and the higher A_val; A_train tied
    assert bold[("ours", "GPT")][rows.index("L_train")]
    assert not bold[("ours", "LSTM")][rows.index("L_train")]
    assert bold[("ours", "GPT")][rows.index("A_val")]
    assert not any(bold[(s, m)][rows.index("A_train")] for s in ("ours", "seed")
                   for m in ("LSTM", "GPT"))
    assert not any(bold[("ours", m)][rows.index("Δt(A)")] for m in ("LSTM", "GPT"))
    # seed: GPT's losses are bold, as in the published table
    assert bold[("seed", "GPT")][rows.index("L_val")] and bold[("seed", "GPT")][rows.index("L_train")]
    text = A.table1_text(rs)
    assert "1.54e-04 ± 2.82e-07 (t_f = 9600)" in text and "9100" in text
    assert "*" in text


# --------------------------------------------------------------------------- conclusions
def test_conclude_sanity_changes_with_data():
    s1 = A.conclude_sanity(A.best_frame(sanity_records()))
    assert len(s1) == 2 and s1[0].startswith("LSTM") and s1[1].startswith("GPT")
    assert "generalises Δt(A) = 600 steps later" in s1[1]
    s2 = A.conclude_sanity(A.best_frame(sanity_records(gpt_gen=(400, 400))))
    assert "Δt(A) = 100" in s2[1] and s1 != s2
    never = [rec("gpt", h=history(t_mem=100, t_gen=500, val_max=0.3))]
    assert "does not generalise" in A.conclude_sanity(A.best_frame(never))[0]


def data_size_records(gen_from=0.5, overfit_val=0.2):
    rs = []
    for m in ("lstm", "gpt"):
        for r in (0.2, 0.3, 0.4, 0.5, 0.7):
            v = 1.0 if r >= gen_from else (overfit_val if r <= 0.3 else 0.7)
            rs.append(rec(m, r_train=r, h=history(t_gen=500, val_max=v)))
    return rs


def test_conclude_data_size_thresholds_and_change():
    s = A.conclude_data_size(A.best_frame(data_size_records(), by=("r_train",)))
    assert "smallest r_train with A_val ≥ 0.9 is 0.5" in s[0]
    assert "largest r_train that just overfits" in s[0] and "is 0.3" in s[0]
    s2 = A.conclude_data_size(A.best_frame(data_size_records(gen_from=0.4), by=("r_train",)))
    assert "is 0.4" in s2[0] and s2 != s
    s3 = A.conclude_data_size(A.best_frame(data_size_records(gen_from=0.9, overfit_val=0.6),
                                           by=("r_train",)))
    assert "none in the grid" in s3[0] and "no r_train just overfits" in s3[0]


def orders_records(t2=800, t3=400):
    h = history(t_mem=100, t_gen=max(t2, t3), orders={2: (100, t2), 3: (100, t3)})
    return [rec(m, p=11, orders=(2, 3), h=h) for m in ("lstm", "gpt")]


def test_conclude_orders_earlier_later():
    q = A.ORDER_QUANTITIES
    s = A.conclude_orders(A.best_frame(orders_records(), quantities=q))
    assert "ternary reaches its best validation accuracy 400 steps earlier than binary" in s[0]
    s2 = A.conclude_orders(A.best_frame(orders_records(t2=300, t3=700), quantities=q))
    assert "400 steps later" in s2[1]
    with pytest.raises(ValueError, match="per-order"):
        A.conclude_orders(A.best_frame(orders_records()))


def model_size_records(gpt_better_with_d=True):
    rs = []
    for m in ("lstm", "gpt"):
        for L in (1, 2):
            for d in (32, 64):
                good = (d == 64) == gpt_better_with_d if m == "gpt" else d == 32
                floor = 1e-4 if good else 1e-3
                rs.append(rec(m, num_layers=L, d_model=d,
                              h=history(t_gen=500, loss_floor=floor / L, val_max=1.0 if good else 0.95)))
    return rs


def test_conclude_model_size_directions():
    by = ("num_layers", "d_model")
    s = A.conclude_model_size(A.best_frame(model_size_records(), by=by, params=True))
    text = " ".join(s)
    gpt_l1 = next(x for x in s if x.startswith("GPT at L = 1"))
    assert "best L_val decreases" in gpt_l1 and "best A_val increases" in gpt_l1
    lstm_l1 = next(x for x in s if x.startswith("LSTM at L = 1"))
    assert "best L_val increases" in lstm_l1 and "best A_val decreases" in lstm_l1
    gpt_d64 = next(x for x in s if x.startswith("GPT at d = 64"))
    assert "best L_val decreases" in gpt_d64 and "best A_val is unchanged" in gpt_d64
    assert "Spearman" in text
    s2 = A.conclude_model_size(A.best_frame(model_size_records(False), by=by, params=True))
    assert "best L_val increases" in next(x for x in s2 if x.startswith("GPT at L = 1"))


def compute_records(gen=((64, 300), (512, 800))):
    rs = []
    for m in ("lstm", "gpt"):
        for B, tg in gen:
            rs.append(rec(m, batch_size=B, h=history(t_gen=tg, loss_floor=1e-4 * B / 64)))
    return rs


def test_conclude_compute_alpha_and_batch():
    b = A.best_frame(compute_records(), by=("batch_size",), alphas=(0.2, 0.5, 1.0), compute=True)
    s = A.conclude_compute(b)
    first = s[0]
    assert first.startswith("LSTM") and "B = 64: α = 0.5" in first and "B = 512: α = 1" in first
    assert "C ≈" in first
    assert "best L_val increases with B" in s[1] and "lowest at B = 64" in s[1]
    b2 = A.best_frame(compute_records(((64, 900), (512, 200))), by=("batch_size",),
                      alphas=(0.2, 0.5, 1.0), compute=True)
    s2 = A.conclude_compute(b2)
    assert "B = 512: α = 0.2" in s2[0] and s2 != s


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


def test_conclude_regularization_monotone_and_norm():
    rs = reg_records()
    s = A.conclude_regularization(A.best_frame(rs, by=("weight_decay",)), rs)
    assert "yes: t_f(A_val) decreases monotonically" in s[0] and "ρ = -1.00" in s[0]
    assert "(0.25: 900, 0.5: 600, 1: 300) comes earlier with every increase" in s[2]
    assert "rises above its initial value before generalising in 3 of 3" in s[3]
    assert "lower at t_f(A_val) than at its peak in 3 of 3" in s[3]
    n = A.norm_around_generalisation(rs)
    row = n[n.weight_decay == 1.0].iloc[0]
    assert row["tf_A_val"] == 300 and row["norm_peak"] == 11.0 and row["norm_at_tf"] == 5.0
    assert row["step_peak"] == 100 and row["drop"] == pytest.approx(1 - 5 / 11)
    assert row["norm_init"] == 10.0 and row["rise"] == pytest.approx(0.1)
    assert row["t_gen"] == 300
    rs2 = reg_records(tfs=(300, 900, 600), peak_drop=False)
    s2 = A.conclude_regularization(A.best_frame(rs2, by=("weight_decay",)), rs2)
    assert "not monotonically" in s2[0] and "is not monotone in the weight decay" in s2[2]
    assert "in 3 of 3" in s2[3] and "than at its peak in 0 of 3" in s2[3]
    rs3 = reg_records(tfs=(None, 800, 500))
    s3 = A.conclude_regularization(A.best_frame(rs3, by=("weight_decay",)), rs3)
    assert "(0.25: never, 0.5: 800, 1: 500) comes earlier" in s3[2]
    assert "weight decay 0.25 never reaches A_val ≥ 0.9" in s3[0]


def test_direction_and_spearman_helpers():
    assert A._direction([1, 2, 3]) == "increases"
    assert A._direction([3, 2, 2]) == "decreases"
    assert A._direction([1, 1]) == "is unchanged"
    assert A._direction([1, 3, 2]) == "is non-monotone"
    assert A._spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1)
    assert math.isnan(A._spearman([1, 2], [5, 5]))


def test_conclude_attention_counts_heads():
    tokens = ["BOS", "0", "+", "3", "=", "3"]
    w = np.zeros((2, 2, 6, 6))
    w[:, :, 4, 3] = 1.0  # every head at '=' looks at the second operand
    w[1, 1, 4, 3], w[1, 1, 4, 2] = 0.0, 1.0  # ... except one that looks at '+'
    res = SimpleNamespace(weights=w, tokens=tokens, predicted="3", correct=True, expected=3)
    s = A.conclude_attention({("sanity GPT", "0 + 3 ="): res})
    assert "3 of 4 heads" in s[0] and "1 on 'operator'" in s[0] and "correct" in s[0]
    f = A.attention_focus(w, tokens)
    assert f["mean"]["operand"] == pytest.approx(0.75)
    assert isinstance(pd.DataFrame([f["argmax"]]), pd.DataFrame)
