"""StableMax cross-entropy against its formula in float64, and the float32 softmax-collapse
diagnostic against autograd's own gradient."""

import pytest
import torch
import torch.nn.functional as F

from modarith.core.metrics import get_loss_and_accuracy, softmax_collapsed, stablemax_log_probs


def _s(x: float) -> float:
    return x + 1.0 if x >= 0 else 1.0 / (1.0 - x)


def _batch(B=5, S=4, V=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, S, V, generator=g) * 3
    targets = torch.randint(0, V, (B, S), generator=g)
    eq = torch.full((B,), 1)
    mask = torch.ones(B, S)
    mask[0, -1] = 0  # a padded position
    return logits, targets, eq, mask


def test_stablemax_loss_equals_formula_in_float64():
    logits, targets, eq, mask = _batch()
    loss, acc = get_loss_and_accuracy(logits, targets, eq, mask, reduction="none", loss="stablemax")
    assert loss.dtype == torch.float64
    for b in range(logits.shape[0]):
        nll = []
        for t in range(logits.shape[1]):
            if t > eq[b] and mask[b, t] > 0:
                s = [_s(float(v)) for v in logits[b, t].double()]
                nll.append(-torch.log(torch.tensor(s[targets[b, t]] / sum(s), dtype=torch.float64)))
        assert float(loss[b]) == pytest.approx(float(sum(nll) / len(nll)), rel=1e-12)
    _, acc_softmax = get_loss_and_accuracy(logits, targets, eq, mask, reduction="none")
    assert torch.equal(acc, acc_softmax)  # s is increasing: same argmax
    soft, _ = get_loss_and_accuracy(logits, targets, eq, mask, reduction="none")
    assert not torch.allclose(loss.float(), soft)


def test_stablemax_gradient_finite_at_branch_points_and_large_logits():
    x = torch.tensor([[1.0, 0.0, -1e30, 1e30, 1.0 - 1e-7]], dtype=torch.float32, requires_grad=True)
    lp = stablemax_log_probs(x)
    lp[0, 0].backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="loss"):
        get_loss_and_accuracy(*_batch(), loss="sparsemax")


def test_softmax_collapse_is_exactly_a_zero_gradient_on_the_correct_logit():
    B, S, V = 4, 3, 5
    logits = torch.zeros(B, S, V)
    targets = torch.zeros(B, S, dtype=torch.long)
    eq = torch.zeros(B, dtype=torch.long)  # RHS = positions 1 and 2
    mask = torch.ones(B, S)
    logits[0, 1:, 0] = 200.0  # collapsed everywhere on the RHS
    logits[1, 1:, 0] = 5.0  # confident, not collapsed
    logits[2, 1, 0], logits[2, 2, 0] = 200.0, 5.0  # only one RHS token collapsed
    logits[3, 1:, 0] = 200.0
    logits[3, 0, 0] = 0.0  # left-hand side: ignored
    got = softmax_collapsed(logits, targets, eq, mask)
    assert got.tolist() == [1.0, 0.0, 0.0, 1.0]
    # the definition: autograd's float32 gradient on every RHS correct logit is exactly 0
    x = logits.clone().requires_grad_()
    F.cross_entropy(x[:, 1:].reshape(-1, V), targets[:, 1:].reshape(-1), reduction="sum").backward()
    zero = (x.grad[:, 1:, 0] == 0).all(dim=1).float()
    assert torch.equal(zero, got)
