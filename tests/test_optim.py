"""Optimizer steps on (K, P) tensors against their authors' references, on given gradients,
and a group of K equal to K single runs."""

from collections import deque

import pytest
import torch

from modarith.core.optim import (
    adamw_,
    clip_,
    coupled_l2_,
    grokfast_ema_,
    grokfast_ma_,
    orthograd_,
    tensor_segments,
    warmup_factor,
)

SIZES = [6, 3, 8]  # three parameter "tensors", flattened one after another
P = sum(SIZES)


def _grads(n_steps: int, K: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_steps, K, P, generator=g, dtype=torch.float64)


def _col(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[:, None]


# ---- clipping ----------------------------------------------------------------------------------
def test_clip_equals_clip_grad_norm_and_zero_means_off():
    g = _grads(1, 3)[0] * 5
    max_norm = _col([0.5, 100.0, 0.0])
    ours = clip_(g.clone(), max_norm)
    for k in range(2):
        ref = [t.clone().requires_grad_() for t in g[k].split(SIZES)]
        for t, gt in zip(ref, g[k].split(SIZES)):
            t.grad = gt.clone()
        torch.nn.utils.clip_grad_norm_(ref, float(max_norm[k]))
        torch.testing.assert_close(ours[k], torch.cat([t.grad for t in ref]))
    assert torch.equal(ours[2], g[2])  # clip_norm 0: not clipped
    assert not torch.equal(ours[0], g[0])


# ---- Adam with coupled L2 and AdamW, with warm-up ------------------------------------------------
def _reference_adam(cls, theta0, grads, lr, wd, warmup, betas=(0.9, 0.98), eps=1e-8):
    """One run with torch.optim (Adam or AdamW) and the Grokfast paper's LambdaLR warm-up."""
    p = theta0.clone().requires_grad_()
    opt = cls([p], lr=lr, weight_decay=wd, betas=betas, eps=eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: 1 if u > warmup else u / warmup) \
        if warmup else None
    for gt in grads:
        p.grad = gt.clone()
        opt.step()
        if sched is not None:
            sched.step()
    return p.detach()


@pytest.mark.parametrize("coupled", [True, False])
def test_adam_coupled_l2_and_adamw_with_warmup_equal_torch_optim(coupled):
    n, K = 15, 3
    grads = _grads(n, K, seed=1)
    theta0 = _grads(1, K, seed=2)[0]
    lr, wd, warm = _col([1e-2, 3e-3, 1e-3]), _col([0.005, 0.5, 0.0]), _col([10, 0, 4])
    flat = theta0.clone()
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)
    zero = torch.zeros_like(wd)
    for t in range(n):
        g = grads[t].clone()
        if coupled:
            coupled_l2_(g, flat, wd)
        adamw_(flat, g, m, v, t + 1, lr * warmup_factor(t, warm), zero if coupled else wd, 0.9, 0.98, 1e-8)
    cls = torch.optim.Adam if coupled else torch.optim.AdamW
    for k in range(K):
        ref = _reference_adam(cls, theta0[k], grads[:, k], float(lr[k]), float(wd[k]), int(warm[k]))
        torch.testing.assert_close(flat[k], ref, rtol=1e-10, atol=1e-12)


def test_warmup_factor_first_update_zero_then_linear():
    f = warmup_factor(0, _col([10, 0])).squeeze(1).tolist()
    assert f == [0.0, 1.0]
    assert warmup_factor(5, _col([10])).item() == 0.5
    assert warmup_factor(11, _col([10])).item() == 1.0


# ---- Grokfast -------------------------------------------------------------------------------------
def _gradfilter_ema(grads, alpha, lamb):
    """The paper's gradfilter_ema, written plainly: ema = g at the first call."""
    out, ema = [], None
    for g in grads:
        ema = g.clone() if ema is None else ema * alpha + g * (1 - alpha)
        out.append(g + lamb * ema)
    return out


def _gradfilter_ma(grads, window, lamb):
    """The paper's gradfilter_ma (filter_type 'mean', warmup=True), written plainly."""
    out, q = [], deque(maxlen=window)
    for g in grads:
        q.append(g)
        out.append(g + lamb * (sum(q) / len(q)) if len(q) == window else g)
    return out


def test_grokfast_ema_equals_gradfilter_ema_per_run():
    n, K = 12, 3
    grads = _grads(n, K, seed=3)
    alpha, lamb = _col([0.98, 0.5, 0.0]), _col([2.0, 5.0, 0.0])
    ema = torch.zeros(K, P, dtype=torch.float64)
    ours = [grokfast_ema_(grads[t], ema, t == 0, alpha, lamb) for t in range(n)]
    for k in range(2):
        ref = _gradfilter_ema(grads[:, k], float(alpha[k]), float(lamb[k]))
        for t in range(n):
            torch.testing.assert_close(ours[t][k], ref[t])
    for t in range(n):
        assert torch.equal(ours[t][2], grads[t, 2])  # off


def test_grokfast_ma_equals_gradfilter_ma_with_warmup_per_run():
    n, K = 20, 4
    grads = _grads(n, K, seed=4).float()
    window, lamb = _col([5, 1, 8, 3]), _col([5.0, 2.0, 0.5, 0.0])
    W = 8
    buf = torch.zeros(W, K, P)
    total = torch.zeros(K, P, dtype=torch.float64)
    ours = [grokfast_ma_(grads[t], buf, total, t, window, lamb) for t in range(n)]
    for k in range(3):
        ref = _gradfilter_ma(list(grads[:, k]), int(window[k]), float(lamb[k]))
        for t in range(n):
            torch.testing.assert_close(ours[t][k], ref[t], rtol=1e-6, atol=1e-6)
        w = int(window[k])
        assert all(torch.equal(ours[t][k], grads[t, k]) for t in range(w - 1))  # warm-up: unfiltered
        assert not torch.equal(ours[w - 1][k], grads[w - 1, k])
    assert all(torch.equal(ours[t][3], grads[t, 3]) for t in range(n))  # λ = 0: off


# ---- ⊥Grad ----------------------------------------------------------------------------------------
def _orthograd_reference(weights, grads):
    """OrthoGrad's per-tensor projection (Prieto et al. 2025), written plainly."""
    out = []
    for w, g in zip(weights, grads):
        proj = torch.dot(w, g) / (torch.dot(w, w) + 1e-30)
        g_orth = g - proj * w
        out.append(g_orth * (g.norm() / (g_orth.norm() + 1e-30)))
    return torch.cat(out)


def test_orthograd_equals_reference_per_tensor_and_per_run():
    K = 3
    g, flat = _grads(1, K, seed=5)[0], _grads(1, K, seed=6)[0]
    seg = tensor_segments(SIZES)
    on = torch.tensor([True, True, False])[:, None]
    ours = orthograd_(g.clone(), flat, seg, on)
    for k in range(2):
        ref = _orthograd_reference(flat[k].split(SIZES), g[k].split(SIZES))
        torch.testing.assert_close(ours[k], ref, rtol=1e-12, atol=1e-12)
        for gt, wt, gt0 in zip(ours[k].split(SIZES), flat[k].split(SIZES), g[k].split(SIZES)):
            assert abs(float(torch.dot(gt, wt))) < 1e-10  # orthogonal to that tensor's weights
            torch.testing.assert_close(gt.norm(), gt0.norm())  # and as long as its gradient
    assert torch.equal(ours[2], g[2])  # off
    # a global projection (one tensor) differs from the per-tensor one
    assert not torch.allclose(ours[0], _orthograd_reference([flat[0]], [g[0]]))


def test_tensor_segments_validates():
    assert tensor_segments([2, 1]).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="sizes"):
        tensor_segments([2, 0])


# ---- a group of K = K single runs ----------------------------------------------------------------
def _pipeline(grads, flat, hyper, W):
    """Every switch at once, the trainer's order: MA or EMA filter, clip, ⊥Grad, L2, Adam(W)."""
    n, K, _ = grads.shape
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)
    ema, buf = torch.zeros_like(flat), torch.zeros(W, K, P, dtype=flat.dtype)
    total = torch.zeros(K, P, dtype=torch.float64)
    seg = tensor_segments(SIZES)
    for t in range(n):
        g = grads[t].clone()
        g = grokfast_ema_(g, ema, t == 0, hyper["alpha"], hyper["ema_lamb"])
        g = grokfast_ma_(g, buf, total, t, hyper["window"], hyper["ma_lamb"])
        clip_(g, hyper["clip"])
        orthograd_(g, flat, seg, hyper["ortho"])
        coupled_l2_(g, flat, hyper["l2"])
        adamw_(flat, g, m, v, t + 1, hyper["lr"] * warmup_factor(t, hyper["warm"]), hyper["wd"],
               0.9, 0.98, 1e-8)
    return flat


def test_group_of_k_equals_k_single_runs():
    n, K = 14, 4
    grads, flat0 = _grads(n, K, seed=7), _grads(1, K, seed=8)[0]
    hyper = {"alpha": _col([0.9, 0, 0, 0.5]), "ema_lamb": _col([2.0, 0, 0, 1.0]),
             "window": _col([1, 4, 1, 1]), "ma_lamb": _col([0, 3.0, 0, 0]),
             "clip": _col([0, 1.0, 0.5, 0]), "ortho": torch.tensor([[True], [False], [True], [False]]),
             "l2": _col([0.005, 0, 0, 0.1]), "wd": _col([0, 1.0, 0.5, 0]),
             "lr": _col([1e-3, 3e-3, 1e-2, 1e-3]), "warm": _col([10, 0, 3, 0])}
    together = _pipeline(grads, flat0.clone(), hyper, W=4)
    for k in range(K):
        single = {name: h[k:k + 1] for name, h in hyper.items()}
        alone = _pipeline(grads[:, k:k + 1], flat0[k:k + 1].clone(), single, W=max(int(single["window"]), 1))
        torch.testing.assert_close(together[k], alone[0], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(together[0], together[3])


def test_update_from_configs_equals_torch_adam_l2_warmup_and_gradfilter_ema():
    """The paper's loop on given gradients: gradfilter_ema, then torch.optim.Adam with coupled
    L2 and the LambdaLR warm-up, no clipping; beside it an AdamW + ⊥Grad run in the same group."""
    from modarith.core.optim import hyper_columns, optimizer_state, update_
    from modarith.models.config import RunConfig

    paper = RunConfig(optimizer="adam", weight_decay=0.005, beta2=0.98, warmup_steps=3, clip_norm=0.0,
                      lr=1e-2, grokfast_alpha=0.9, grokfast_lamb=2.0, beta1=0.9)
    ortho = RunConfig(orthograd=True, weight_decay=0.5, lr=3e-3, clip_norm=100.0, beta2=0.98)
    n = 12
    grads, theta0 = _grads(n, 2, seed=9).float(), _grads(1, 2, seed=10)[0].float()
    flat = theta0.clone()
    cols = hyper_columns([paper, ortho])
    state = optimizer_state([paper, ortho], flat)
    seg = tensor_segments(SIZES)
    for t in range(n):
        update_(flat, grads[t].clone(), state, cols, t, seg, 0.9, 0.98, 1e-8)
    filtered = _gradfilter_ema(grads[:, 0], 0.9, 2.0)
    ref = _reference_adam(torch.optim.Adam, theta0[0], filtered, 1e-2, 0.005, 3)
    torch.testing.assert_close(flat[0], ref, rtol=1e-5, atol=1e-6)
    # AdamW + ⊥Grad: the per-tensor projection at the current weights, then torch.optim.AdamW
    p = theta0[1].clone().requires_grad_()
    opt = torch.optim.AdamW([p], lr=3e-3, weight_decay=0.5, betas=(0.9, 0.98), eps=1e-8)
    for t in range(n):
        p.grad = _orthograd_reference(p.detach().split(SIZES), grads[t, 1].split(SIZES)).clone()
        opt.step()
    torch.testing.assert_close(flat[1], p.detach(), rtol=1e-5, atol=1e-6)
