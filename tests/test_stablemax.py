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


def test_float64_softmax_keeps_the_gradient_float32_loses():
    logits = torch.zeros(1, 2, 4)
    logits[0, 1, 0] = 20.0  # float32: p = 1 exactly (collapsed); float64: 1 − 3·e⁻²⁰
    targets, eq, mask = torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long), torch.ones(1, 2)
    assert softmax_collapsed(logits, targets, eq, mask).item() == 1.0
    grads = {}
    for loss in ("softmax", "softmax64"):
        x = logits.clone().requires_grad_()
        value, _ = get_loss_and_accuracy(x, targets, eq, mask, loss=loss)
        value.backward()
        grads[loss] = x.grad[0, 1, 0].item()
    assert grads["softmax"] == 0.0 and grads["softmax64"] < 0.0


def test_every_loss_trains_on_the_fast_path_and_the_module_alike():
    from modarith.models.config import RunConfig
    from modarith.runtime.group import GroupTrainer

    cfgs = [RunConfig(model="lstm", p=5, d_model=8, num_layers=1, steps=3, seed=s, loss=loss, lr=1e-2)
            for s, loss in enumerate(("softmax", "stablemax", "softmax64"))]
    grads = [GroupTrainer(cfgs, "cpu", fast=fast).gradients() for fast in (True, False)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    softmax_only = GroupTrainer([RunConfig(**{**cfgs[1].to_dict(), "loss": "softmax", "orders": (2,)})], "cpu")
    assert not torch.allclose(softmax_only.gradients()[0], grads[0][1])  # StableMax's run: its own loss
