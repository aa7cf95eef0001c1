"""The engine's fast path (modarith.core.fast) against the hand-written reference modules.

Logits and gradients of ``gpt_logits`` / ``lstm_logits`` (shared prefixes, fused kernels,
RHS-only) must equal the reference modules' ``positions=`` forward, for training batches and
for evaluation over all N rows, binary and mixed orders, dropout 0 and > 0.
"""

import pytest
import torch

from modarith.core import fast
from modarith.core.data import make_dataset
from modarith.models import init_model, registry
from modarith.models.config import RunConfig
from modarith.runtime.group import GroupTrainer

TOL = dict(rtol=1e-5, atol=2e-6)  # fp32, a few ulps of accumulated rounding


def _cfg(model, orders=(2,), dropout=0.0, seed=0):
    p = 11
    return RunConfig(model=model, p=p, orders=orders, d_model=16, num_layers=2, num_heads=2,
                     dropout=dropout, seed=seed)


def _perturbed(cfg):
    """The config's model with every parameter moved off its initial value (LayerNorm weights
    off 1, biases off 0), so that every parameter matters in the comparison."""
    model = init_model(cfg)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
            if name == "embedding.tokens.weight" or name == "embedding.weight":
                p[cfg.p + 4] = 0.0  # PAD row stays 0, as nn.Embedding(padding_idx) keeps it
    return model


def _rhs_positions(ds, rows):
    """RHS positions (B, R=2) of dataset rows (clamped to S-1, as the engine does)."""
    S = ds.source.shape[1]
    return (ds.eq_positions[rows, None] + torch.arange(1, 3)).clamp(max=S - 1)


def _fast_logits(cfg, models, ds, plan, rows, positions, dropout=0.0, gens=None):
    """Fast-path logits (K, B, R, V) with K = len(models) parameter sets, all on ``rows``."""
    params = {n: torch.stack([dict(m.named_parameters())[n] for m in models])
              for n, _ in models[0].named_parameters()}
    K = len(models)
    idx = rows.expand(K, -1)  # (K, B)
    x = ds.source[idx][..., plan.row_start:]
    anc = [a[idx] for a in plan.row_anc]
    pos = positions.expand(K, -1, -1)
    buffers = dict(models[0].named_buffers())
    return registry.entry(cfg.model).fast_logits(params, buffers, plan, x, anc, pos, cfg, dropout, gens)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("orders", [(2,), (2, 3)])
@pytest.mark.parametrize("batch", ["train", "eval"])
def test_fast_equals_reference_logits_and_gradients(model, orders, batch):
    cfg = _cfg(model, orders)
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    N = len(ds)
    if batch == "eval":  # all N rows, the evaluation plan
        rows = torch.arange(N)
    else:  # a random training batch, the plan for its batch size
        rows = torch.randperm(N, generator=torch.Generator().manual_seed(3))[: N // 3]
    plan = fast.make_plan(ds.source, len(rows), int(ds.eq_positions.min()) + 1)
    assert plan.m >= 1, plan.bounds  # prefixes really are shared
    if orders == (2, 3) and batch == "eval":
        assert plan.m >= 2, plan.bounds  # BOS a ∘ and BOS a ∘ b levels
    pos = _rhs_positions(ds, rows)
    ref_model, fast_model = _perturbed(cfg), _perturbed(cfg)
    ref = ref_model(ds.source[rows], positions=pos)[0]  # (B, R, V)
    ours = _fast_logits(cfg, [fast_model], ds, plan, rows, pos)[0]
    torch.testing.assert_close(ours, ref, **TOL)
    # gradients of a loss that weights every logit differently
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(4))
    (ref * w).sum().backward()
    (ours * w).sum().backward()
    # fp32 sums over hundreds of rows: tolerance relative to the largest gradient entry
    scale = max(float(p.grad.abs().max()) for p in ref_model.parameters())
    for (name, p), q in zip(ref_model.named_parameters(), fast_model.parameters()):
        if name.endswith("W_K.bias"):  # softmax is invariant to it: true gradient 0, both noise
            assert max(p.grad.abs().max(), q.grad.abs().max()) < 1e-6 * scale, name
            continue
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=2e-6 * scale, msg=name)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_fast_dropout_draws_the_reference_masks(model):
    """Dropout > 0 in training: no prefix sharing, masks drawn on the reference's shapes in the
    reference's order, so with one run and the same seed the logits are the reference's."""
    cfg = _cfg(model, dropout=0.3)
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    rows = torch.arange(0, len(ds), 2)
    plan = fast.make_plan(ds.source, len(rows), 4, share=False)
    assert plan.m == 0
    pos = _rhs_positions(ds, rows)
    ref_model = _perturbed(cfg).train()
    torch.manual_seed(11)
    ref = ref_model(ds.source[rows], positions=pos)[0]
    torch.manual_seed(11)
    ours = _fast_logits(cfg, [_perturbed(cfg)], ds, plan, rows, pos, dropout=cfg.dropout)[0]
    torch.testing.assert_close(ours, ref, **TOL)
    torch.manual_seed(12)  # another seed: other masks (the check above could not pass by luck)
    other = _fast_logits(cfg, [_perturbed(cfg)], ds, plan, rows, pos, dropout=cfg.dropout)[0]
    assert not torch.allclose(other, ref)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_fast_dropout_differs_between_runs_of_a_group(model):
    """K identical parameter sets draw K different dropout masks (runs are independent)."""
    cfg = _cfg(model, dropout=0.3)
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    rows = torch.arange(len(ds))
    plan = fast.make_plan(ds.source, len(rows), 4, share=False)
    m = _perturbed(cfg)
    out = _fast_logits(cfg, [m, m, m], ds, plan, rows, _rhs_positions(ds, rows), dropout=cfg.dropout)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])
    no_drop = _fast_logits(cfg, [m, m], ds, plan, rows, _rhs_positions(ds, rows))
    torch.testing.assert_close(no_drop[0], no_drop[1], rtol=0, atol=0)


def test_plan_levels_and_ancestors():
    p = 11
    ds = make_dataset(p, "+", (2, 3))
    X = ds.source
    plan = fast.make_plan(X, len(X), int(ds.eq_positions.min()) + 1)
    assert plan.bounds == (0, 3, 4, X.shape[1])  # BOS a ∘ (p units), BOS a ∘ b (p² units), rows
    assert [len(t) for t in plan.unit_tokens] == [p, p * p]
    for j, toks in enumerate(plan.unit_tokens):
        s0, s1 = plan.bounds[j], plan.bounds[j + 1]
        # every row's ancestor unit holds exactly that row's tokens at the level's positions
        torch.testing.assert_close(toks[plan.row_anc[j]], X[:, s0:s1], rtol=0, atol=0)
    assert torch.equal(plan.unit_anc[1][0][plan.row_anc[1]], plan.row_anc[0])
    # a small batch shares nothing (p units cost more than they save), dropout shares nothing
    assert fast.make_plan(X, 4, 4).m == 0
    assert fast.make_plan(X, len(X), 4, share=False).bounds == (0, X.shape[1])


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_engine_fast_and_reference_paths_agree(model):
    """Through GroupTrainer: one training loss, its gradient and one evaluation, both paths."""
    cfgs = [RunConfig(model=model, p=5, orders=(2, 3), d_model=16, num_layers=2, num_heads=2,
                      batch_size=40, seed=s) for s in (0, 42)]
    g = GroupTrainer(cfgs, device="cpu")
    g.step = 3  # a reshuffled mini-batch of the first epoch
    out = {}
    for fast_on in (True, False):
        g.fast = fast_on
        grad = g.gradients()
        g.n_evals_done = 0
        g.evaluate()
        out[fast_on] = (grad, g.hist[:, 0].clone())
    for a, b in zip(out[True], out[False]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_per_run_generators_draw_the_global_rng_masks(model):
    """A run's own dropout generator, in the global RNG's state, draws the masks F.dropout
    draws from the global RNG: the per-run masks have the reference's distribution."""
    cfg = _cfg(model, dropout=0.3)
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    rows = torch.arange(0, len(ds), 2)
    plan = fast.make_plan(ds.source, len(rows), 4, share=False)
    pos = _rhs_positions(ds, rows)
    torch.manual_seed(11)
    ref = _fast_logits(cfg, [_perturbed(cfg)], ds, plan, rows, pos, dropout=cfg.dropout)[0]
    gens = [torch.Generator().manual_seed(11)]
    ours = _fast_logits(cfg, [_perturbed(cfg)], ds, plan, rows, pos, dropout=cfg.dropout, gens=gens)[0]
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


@pytest.mark.parametrize("non_linearity", ["relu", "tanh"])
def test_fast_gpt_other_non_linearities(non_linearity):
    cfg = RunConfig(model="gpt", p=11, d_model=16, num_layers=2, num_heads=2, non_linearity=non_linearity)
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    rows = torch.arange(len(ds))
    plan = fast.make_plan(ds.source, len(rows), 4)
    pos = _rhs_positions(ds, rows)
    model = _perturbed(cfg)
    ref = model(ds.source, positions=pos)[0]
    torch.testing.assert_close(_fast_logits(cfg, [model], ds, plan, rows, pos)[0], ref, **TOL)
