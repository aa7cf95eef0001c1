"""Tests for modarith.core.metrics (SPEC "Loss and accuracy", "Summary statistics")."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modarith.core.data import make_dataset
from modarith.core.metrics import best_and_tf, get_loss_and_accuracy, mean_std, summarize

P = 5  # vocabulary: 0..4, "+", "=", BOS, EOS, PAD
OP, EQ, BOS, EOS, PAD = 5, 6, 7, 8, 9
V = P + 5


def _batch():
    """Hand-built mixed-order batch, S = 8: a padded binary row and a ternary row."""
    targets = torch.tensor(
        [
            [1, OP, 2, EQ, 3, EOS, PAD, PAD],  # 1 + 2 = 3, two RHS tokens (positions 4, 5)
            [1, OP, 2, OP, 4, EQ, 2, EOS],  # 1 + 2 + 4 = 2, two RHS tokens (positions 6, 7)
        ]
    )
    eq = torch.tensor([3, 5])
    mask = (targets != PAD).float()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 8, V, generator=g, dtype=torch.float64)
    return logits, targets, eq, mask


def _logp(logits, b, s, t):
    row = logits[b, s].tolist()
    return row[t] - math.log(sum(math.exp(x) for x in row))


def test_loss_matches_hand_formula_all_reductions():
    logits, targets, eq, mask = _batch()
    # explicit per-token log-probs of the RHS tokens
    l0 = -(_logp(logits, 0, 4, 3) + _logp(logits, 0, 5, EOS)) / 2
    l1 = -(_logp(logits, 1, 6, 2) + _logp(logits, 1, 7, EOS)) / 2
    loss_n, _ = get_loss_and_accuracy(logits, targets, eq, mask, "none")
    loss_m, _ = get_loss_and_accuracy(logits, targets, eq, mask, "mean")
    loss_s, _ = get_loss_and_accuracy(logits, targets, eq, mask, "sum")
    assert loss_n.shape == (2,)
    assert loss_n.tolist() == pytest.approx([l0, l1], rel=1e-12)
    assert float(loss_m) == pytest.approx((l0 + l1) / 2, rel=1e-12)
    assert float(loss_s) == pytest.approx(l0 + l1, rel=1e-12)


def test_pad_and_lhs_logits_do_not_matter():
    logits, targets, eq, mask = _batch()
    base, _ = get_loss_and_accuracy(logits, targets, eq, mask, "none")
    changed = logits.clone()
    changed[0, 6:] += 100 * torch.randn(2, V, dtype=torch.float64)  # PAD positions
    changed[:, :4] -= 50.0 * torch.arange(V, dtype=torch.float64)  # left-hand side
    again, _ = get_loss_and_accuracy(changed, targets, eq, mask, "none")
    assert torch.allclose(base, again)


def test_padded_binary_row_has_exactly_two_rhs_tokens():
    # The starter-code slip (source mask) would count a third position; ours counts 2.
    ds = make_dataset(P, "+", (2, 3))
    i = 7  # binary row 1 + 2 = 3, padded
    target, e, m = ds.target[i : i + 1], ds.eq_positions[i : i + 1], ds.mask[i : i + 1]
    logits = torch.zeros(1, ds.seq_len, V)
    logits[0, 4, 3] = 1.0  # only positions 4 (r) and 5 (EOS) should count
    loss, _ = get_loss_and_accuracy(logits, target, e, m, "none")
    lp_r = 1.0 - math.log(math.e + V - 1)
    lp_eos = -math.log(V)
    assert float(loss[0]) == pytest.approx(-(lp_r + lp_eos) / 2, rel=1e-6)


def test_differs_from_token_level_ignore_index_mean():
    logits, targets, eq, mask = _batch()
    # row 0: the binary row but not padded in the mask sense -> make EOS a PAD:
    # one RHS token; row 1 keeps two RHS tokens.
    targets = targets.clone()
    targets[0, 5] = PAD
    mask = (targets != PAD).float()
    l0 = -_logp(logits, 0, 4, 3)
    l1 = -(_logp(logits, 1, 6, 2) + _logp(logits, 1, 7, EOS)) / 2
    ours, _ = get_loss_and_accuracy(logits, targets, eq, mask, "mean")
    assert float(ours) == pytest.approx((l0 + l1) / 2, rel=1e-12)
    # token-level mean over RHS positions, as ignore_index would give
    rhs_targets = targets.clone()
    positions = torch.arange(8).unsqueeze(0)
    rhs_targets[(positions <= eq.unsqueeze(1)) | (mask == 0)] = -100
    token_mean = F.cross_entropy(logits.reshape(-1, V), rhs_targets.reshape(-1), ignore_index=-100)
    assert float(token_mean) == pytest.approx((l0 + 2 * l1) / 3, rel=1e-12)
    assert abs(float(ours) - float(token_mean)) > 1e-6


def test_equal_rhs_lengths_agree_with_token_level_mean():
    logits, targets, eq, mask = _batch()
    ours, _ = get_loss_and_accuracy(logits, targets, eq, mask, "mean")
    rhs_targets = targets.clone()
    positions = torch.arange(8).unsqueeze(0)
    rhs_targets[(positions <= eq.unsqueeze(1)) | (mask == 0)] = -100
    token_mean = F.cross_entropy(logits.reshape(-1, V), rhs_targets.reshape(-1), ignore_index=-100)
    assert float(ours) == pytest.approx(float(token_mean), rel=1e-12)


def _perfect_logits(targets):
    return 10.0 * F.one_hot(targets, V).double()


def test_accuracy_requires_every_rhs_token():
    _, targets, eq, mask = _batch()
    logits = _perfect_logits(targets)
    _, acc = get_loss_and_accuracy(logits, targets, eq, mask, "none")
    assert acc.tolist() == [1.0, 1.0]
    # wrong EOS prediction in row 0 (r still correct) -> row 0 wrong
    bad = logits.clone()
    bad[0, 5] = 0.0
    bad[0, 5, 0] = 20.0
    _, acc = get_loss_and_accuracy(bad, targets, eq, mask, "none")
    assert acc.tolist() == [0.0, 1.0]
    _, acc_mean = get_loss_and_accuracy(bad, targets, eq, mask, "mean")
    _, acc_sum = get_loss_and_accuracy(bad, targets, eq, mask, "sum")
    assert float(acc_mean) == 0.5 and float(acc_sum) == 1.0
    # wrong predictions on the left-hand side or on PAD do not matter
    lhs = logits.clone()
    lhs[:, :3] = 0.0
    lhs[:, :3, 0] = 20.0
    lhs[0, 6:] = 0.0
    lhs[0, 6:, 1] = 20.0
    _, acc = get_loss_and_accuracy(lhs, targets, eq, mask, "none")
    assert acc.tolist() == [1.0, 1.0]


def test_sample_weight():
    logits, targets, eq, mask = _batch()
    loss_n, acc_n = get_loss_and_accuracy(logits, targets, eq, mask, "none")
    w = torch.tensor([1.0, 0.0])
    lm, am = get_loss_and_accuracy(logits, targets, eq, mask, "mean", sample_weight=w)
    ls, as_ = get_loss_and_accuracy(logits, targets, eq, mask, "sum", sample_weight=w)
    assert float(lm) == pytest.approx(float(loss_n[0])) and float(am) == float(acc_n[0])
    assert float(ls) == pytest.approx(float(loss_n[0])) and float(as_) == float(acc_n[0])
    # padded batch: duplicating row 0 with weight 0 leaves the mean unchanged
    def pad(t):
        return torch.cat([t, t[:1]])

    full, _ = get_loss_and_accuracy(logits, targets, eq, mask, "mean")
    padded, _ = get_loss_and_accuracy(
        pad(logits), pad(targets), pad(eq), pad(mask), "mean", torch.tensor([1.0, 1.0, 0.0])
    )
    assert float(padded) == pytest.approx(float(full), rel=1e-12)


def test_vmap_compatible():
    _, targets, eq, mask = _batch()
    M = 3
    logits = torch.randn(M, 2, 8, V, generator=torch.Generator().manual_seed(1))
    w = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    for red in ("mean", "sum", "none"):

        def fn(lg, ww, red=red):
            return get_loss_and_accuracy(lg, targets, eq, mask, red, sample_weight=ww)

        loss_v, acc_v = torch.vmap(fn)(logits, w)
        for m in range(M):
            loss_l, acc_l = fn(logits[m], w[m])
            assert torch.allclose(loss_v[m], loss_l) and torch.equal(acc_v[m], acc_l)
    # also vmapped over targets / eq / mask (per-run data)
    def fn2(lg, t, e, mk):
        return get_loss_and_accuracy(lg, t, e, mk, "mean")

    def stack(x):
        return x.unsqueeze(0).expand(M, *x.shape)

    lv, _ = torch.vmap(fn2)(logits, stack(targets), stack(eq), stack(mask))
    looped = torch.stack([fn2(logits[m], targets, eq, mask)[0] for m in range(M)])
    assert torch.allclose(lv, looped)


def test_gradient_flows():
    logits, targets, eq, mask = _batch()
    logits.requires_grad_(True)
    loss, _ = get_loss_and_accuracy(logits, targets, eq, mask)
    loss.backward()
    assert logits.grad[0, 6:].abs().sum() == 0 and logits.grad[0, 4:6].abs().sum() > 0


def test_half_precision_upcast():
    logits, targets, eq, mask = _batch()
    loss, acc = get_loss_and_accuracy(logits.bfloat16(), targets, eq, mask)
    assert loss.dtype == torch.float32 and acc.dtype == torch.float32


@pytest.mark.parametrize("red", ["avg", "", None, "MEAN"])
def test_bad_reduction(red):
    logits, targets, eq, mask = _batch()
    with pytest.raises(ValueError, match="reduction") as exc:
        get_loss_and_accuracy(logits, targets, eq, mask, red)
    assert "'mean', 'sum', 'none'" in str(exc.value)


def test_bad_shapes():
    logits, targets, eq, mask = _batch()
    with pytest.raises(ValueError, match="targets"):
        get_loss_and_accuracy(logits, targets[:, :-1], eq, mask)
    with pytest.raises(ValueError, match="eq_positions"):
        get_loss_and_accuracy(logits, targets, eq[:1], mask)
    with pytest.raises(ValueError, match="sample_weight"):
        get_loss_and_accuracy(logits, targets, eq, mask, sample_weight=torch.ones(3))


# --------------------------------------------------------------------------- best_and_tf
def test_best_and_tf():
    steps = [0, 1, 2, 100, 200, 300]
    loss = [3.0, 2.0, 1.0, 0.5, 0.5, 0.7]
    acc = [0.0, 0.2, 1.0, 1.0, 0.9, 1.0]
    assert best_and_tf(steps, loss, "min") == (0.5, 100)
    assert best_and_tf(steps, acc, "max") == (1.0, 2)
    assert best_and_tf(np.array(steps), np.array(loss), "min", t_max=2) == (1.0, 2)
    assert best_and_tf(steps, loss, "min", t_max=150) == (0.5, 100)
    best, tf = best_and_tf(steps, loss, "min")
    assert type(best) is float and type(tf) is int
    assert best_and_tf(steps, [math.nan, 2.0, 1.0, math.nan, 3.0, 4.0], "min") == (1.0, 2)
    b, t = best_and_tf([0, 1], [math.nan, math.nan], "min")
    assert math.isnan(b) and t is None


def test_best_and_tf_bad_inputs():
    with pytest.raises(ValueError, match="mode"):
        best_and_tf([0, 1], [1.0, 2.0], "argmin")
    with pytest.raises(ValueError, match="t_max"):
        best_and_tf([10, 20], [1.0, 2.0], "min", t_max=5)
    with pytest.raises(ValueError, match="steps"):
        best_and_tf([0, 1, 2], [1.0, 2.0], "min")


# --------------------------------------------------------------------------- summarize
def _history():
    return {
        "step": [0, 1, 2, 100, 200, 300],
        "train_loss": [3.0, 1.0, 0.1, 0.01, 0.02, 0.005],
        "train_acc": [0.0, 0.5, 1.0, 1.0, 1.0, 1.0],
        "val_loss": [3.0, 3.5, 4.0, 2.0, 0.5, 0.6],
        "val_acc": [0.0, 0.0, 0.1, 0.5, 1.0, 0.99],
        "param_norm": [10.0, 11.0, 12.0, 9.0, 8.0, 7.0],
    }


def test_summarize_known_answers():
    s = summarize(_history())
    assert s["L_train"] == 0.005 and s["tf_L_train"] == 300
    assert s["L_val"] == 0.5 and s["tf_L_val"] == 200
    assert s["A_train"] == 1.0 and s["tf_A_train"] == 2
    assert s["A_val"] == 1.0 and s["tf_A_val"] == 200
    assert s["dt_L"] == 200 - 300 and s["dt_A"] == 200 - 2
    assert s["final_train_loss"] == 0.005 and s["final_val_acc"] == 0.99
    assert s["final_train_acc"] == 1.0 and s["final_val_loss"] == 0.6
    assert s["final_param_norm"] == 7.0 and s["last_step"] == 300
    json.dumps(s)  # plain Python values


def test_summarize_t_max_slicing():
    s = summarize(_history(), t_max=100)
    assert s["L_train"] == 0.01 and s["tf_L_train"] == 100
    assert s["L_val"] == 2.0 and s["tf_L_val"] == 100
    assert s["A_val"] == 0.5 and s["tf_A_val"] == 100
    assert s["dt_L"] == 0 and s["dt_A"] == 98
    assert s["final_val_loss"] == 2.0 and s["last_step"] == 100 and s["final_param_norm"] == 9.0
    # t_max between evaluations uses the last evaluation before it
    assert summarize(_history(), t_max=150) == s


def test_summarize_per_order_keys():
    h = _history()
    h["train_loss_o2"] = [2.0, 1.0, 0.5, 0.1, 0.2, 0.3]
    h["val_acc_o2"] = [0.0, 0.1, 0.2, 0.9, 0.8, 0.9]
    h["train_acc_o3"] = [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    h["val_acc_o3"] = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2]
    s = summarize(h)
    assert s["L_train_o2"] == 0.1 and s["tf_L_train_o2"] == 100
    assert s["A_val_o2"] == 0.9 and s["tf_A_val_o2"] == 100
    assert s["A_train_o3"] == 1.0 and s["tf_A_train_o3"] == 200
    assert s["A_val_o3"] == 0.2 and s["tf_A_val_o3"] == 300
    assert s["dt_A_o3"] == 100 and "dt_L_o3" not in s and "dt_A_o2" not in s
    assert s["final_val_acc_o3"] == 0.2
    json.dumps(s)


def test_summarize_numpy_values_become_python():
    h = {k: np.asarray(v) for k, v in _history().items()}
    s = summarize(h)
    assert all(isinstance(v, (int, float)) and not isinstance(v, np.generic) for v in s.values())
    json.dumps(s)


# --------------------------------------------------------------------------- mean_std
def test_mean_std():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)  # population std (ddof = 0)
    assert mean_std([5.0]) == (5.0, 0.0)
    assert mean_std(np.array([100, 300])) == (200.0, 100.0)
    m, s = mean_std([2.0, None])
    assert (m, s) == (2.0, 0.0)
    with pytest.raises(ValueError, match="values"):
        mean_std([])
