"""Tests of the hand-written models against PyTorch references, and their vmap safety."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from modarith.models import (
    GPT,
    LSTM,
    LSTMLM,
    Block,
    Decoder,
    LayerNorm,
    LSTMCell,
    MultiHeadedAttention,
)

ATOL = 1e-5


def to_torch_lstm(ours: LSTM) -> nn.LSTM:
    """An ``nn.LSTM`` with our weights: its (i, f, g, o) chunks <- our four gates."""
    ref = nn.LSTM(ours.input_size, ours.hidden_size, ours.num_layers, bias=ours.bias, batch_first=True)
    with torch.no_grad():
        for k, cell in enumerate(ours.layers):
            gates = (cell.input_gate, cell.forget_gate, cell.candidate_cell, cell.output_gate)
            weight = torch.cat([g.weight for g in gates], dim=0)  # (4H, d_in + H)
            getattr(ref, f"weight_ih_l{k}").copy_(weight[:, : cell.input_size])
            getattr(ref, f"weight_hh_l{k}").copy_(weight[:, cell.input_size :])
            if ours.bias:
                getattr(ref, f"bias_ih_l{k}").copy_(torch.cat([g.bias for g in gates]))
                getattr(ref, f"bias_hh_l{k}").zero_()
    return ref


def step_cells(lstm: LSTM, x: torch.Tensor, hx=None):
    """Reference: step ``LSTMCell.forward`` over time and layers."""
    B, S, _ = x.shape
    L, H = lstm.num_layers, lstm.hidden_size
    h0, c0 = hx if hx is not None else (torch.zeros(L, B, H), torch.zeros(L, B, H))
    layer_input, h_n, c_n = x, [], []
    for k, cell in enumerate(lstm.layers):
        h, c = h0[k], c0[k]
        outs = []
        for t in range(S):
            h, c = cell(layer_input[:, t], (h, c))
            outs.append(h)
        layer_input = torch.stack(outs, dim=1)
        h_n.append(h)
        c_n.append(c)
    return layer_input, (torch.stack(h_n), torch.stack(c_n))


# ----------------------------------------------------------------------------------- LSTM


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_matches_torch_lstm(num_layers, bias):
    torch.manual_seed(0)
    lstm = LSTM(5, 7, num_layers, bias=bias)
    ref = to_torch_lstm(lstm)
    x = torch.randn(3, 6, 5)
    out, (h_n, c_n) = lstm(x)
    ref_out, (ref_h, ref_c) = ref(x)
    assert out.shape == (3, 6, 7) and h_n.shape == c_n.shape == (num_layers, 3, 7)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(h_n, ref_h, atol=ATOL, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=ATOL, rtol=0)
    # with a given initial state
    hx = (torch.randn(num_layers, 3, 7), torch.randn(num_layers, 3, 7))
    out, (h_n, c_n) = lstm(x, hx)
    ref_out, (ref_h, ref_c) = ref(x, hx)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(c_n, ref_c, atol=ATOL, rtol=0)


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_fast_lstm_equals_stepping_cells(num_layers, bias):
    torch.manual_seed(1)
    lstm = LSTM(4, 8, num_layers, bias=bias)
    x = torch.randn(2, 5, 4)
    hx = (torch.randn(num_layers, 2, 8), torch.randn(num_layers, 2, 8))
    for state in (None, hx):
        out, (h_n, c_n) = lstm(x, state)
        ref_out, (ref_h, ref_c) = step_cells(lstm, x, state)
        torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
        torch.testing.assert_close(h_n, ref_h, atol=ATOL, rtol=0)
        torch.testing.assert_close(c_n, ref_c, atol=ATOL, rtol=0)


def test_lstm_cell_structure():
    cell = LSTMCell(3, 5, bias=False)
    for name in ("input_gate", "forget_gate", "output_gate", "candidate_cell"):
        gate = getattr(cell, name)
        assert isinstance(gate, nn.Linear)
        assert gate.weight.shape == (5, 8) and gate.bias is None
    lstm = LSTM(3, 5, num_layers=3)
    assert [c.input_size for c in lstm.layers] == [3, 5, 5]


def test_lstm_dropout_only_between_layers():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 3)
    one = LSTM(3, 5, num_layers=1, dropout=0.5).train()
    ref = copy.deepcopy(one)
    ref.dropout.p = 0.0
    torch.testing.assert_close(one(x)[0], ref(x)[0])  # no dropout after the last layer
    two = LSTM(3, 5, num_layers=2, dropout=0.5).train()
    assert not torch.allclose(two(x)[0], two.eval()(x)[0])  # dropout between layers


def test_lstmlm_matches_torch_reference():
    torch.manual_seed(3)
    V, d, H, L, pad = 11, 6, 9, 2, 10
    model = LSTMLM(V, d, H, L, padding_index=pad)
    ref = to_torch_lstm(model.lstm)
    x = torch.randint(0, V, (4, 7))
    logits, (h_n, c_n) = model(x)
    ref_hidden, (ref_h, ref_c) = ref(model.embedding(x))
    torch.testing.assert_close(c_n, ref_c, atol=ATOL, rtol=0)
    assert logits.shape == (4, 7, V) and h_n.shape == (L, 4, H)
    torch.testing.assert_close(logits, model.classifier(ref_hidden), atol=ATOL, rtol=0)
    torch.testing.assert_close(h_n, ref_h, atol=ATOL, rtol=0)
    assert torch.all(model.embedding.weight[pad] == 0)
    no_bias = LSTMLM(V, d, H, L, bias_lstm=False, bias_classifier=False)
    assert no_bias.classifier.bias is None and no_bias.lstm.layers[0].input_gate.bias is None


# ------------------------------------------------------------------------------------ GPT


def test_layer_norm_matches_functional():
    torch.manual_seed(4)
    ln = LayerNorm(8)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(3, 5, 8) * 3 + 1
    ref = F.layer_norm(x, (8,), ln.weight, ln.bias, eps=1e-5)
    torch.testing.assert_close(ln(x), ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("bias", [True, False])
def test_attention_matches_sdpa(bias):
    torch.manual_seed(5)
    mha = MultiHeadedAttention(16, 4, bias=bias)
    x = torch.randn(2, 6, 16)
    out, weights = mha(x, x, x)
    q, k, v = (mha.split_heads(W(x)) for W in (mha.W_Q, mha.W_K, mha.W_V))
    ref = mha.W_O(mha.merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True)))
    assert out.shape == (2, 6, 16) and weights.shape == (2, 4, 6, 6)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 6), atol=ATOL, rtol=0)
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_split_merge_heads_inverse():
    mha = MultiHeadedAttention(12, 3)
    x = torch.randn(2, 5, 12)
    split = mha.split_heads(x)
    assert split.shape == (2, 3, 5, 4)
    torch.testing.assert_close(split[:, 1], x[..., 4:8])  # head h holds features h*d_k...
    torch.testing.assert_close(mha.merge_heads(split), x)


def test_block_is_post_norm():
    torch.manual_seed(6)
    block = Block(8, 2, multiplier=2, dropout=0.0)
    assert all(m.bias is None for m in block.ffn if isinstance(m, nn.Linear))
    assert block.ffn[0].out_features == 16
    x = torch.randn(2, 5, 8)
    attn, _ = block.self_attn(x, x, x)
    h = block.self_attn_norm(x + attn)
    torch.testing.assert_close(block(x)[0], block.ffn_norm(h + block.ffn(h)))


def small_gpt(**kwargs) -> GPT:
    defaults = {
        "num_heads": 2,
        "num_layers": 2,
        "embedding_size": 16,
        "vocabulary_size": 13,
        "sequence_length": 8,
    }
    return GPT(**{**defaults, **kwargs})


def test_gpt_shapes_and_attention_rows():
    torch.manual_seed(7)
    model = small_gpt(num_layers=3, padding_index=12)
    x = torch.randint(0, 13, (4, 6))
    logits, (hidden_states, attentions) = model(x)
    assert logits.shape == (4, 6, 13)
    assert hidden_states.shape == (4, 4, 6, 16)
    assert attentions.shape == (4, 3, 2, 6, 6)
    torch.testing.assert_close(attentions.sum(-1), torch.ones(4, 3, 2, 6), atol=ATOL, rtol=0)
    assert torch.all(attentions.triu(diagonal=1) == 0)
    torch.testing.assert_close(hidden_states[:, 0], model.embedding(x))
    torch.testing.assert_close(model.classifier(hidden_states[:, -1]), logits)
    assert torch.all(model.embedding.tokens.weight[12] == 0)


def test_gpt_positions_are_a_fixed_buffer():
    model = small_gpt()
    names = {n for n, _ in model.named_parameters()}
    assert "embedding.positions" not in names
    assert "embedding.positions" in model.state_dict()
    pe = model.embedding.positions
    assert pe.shape == (8, 16) and not pe.requires_grad
    t, i = 3, 2
    torch.testing.assert_close(pe[t, 2 * i], torch.tensor(math.sin(t / 10000 ** (2 * i / 16))))
    torch.testing.assert_close(pe[t, 2 * i + 1], torch.tensor(math.cos(t / 10000 ** (2 * i / 16))))


@pytest.mark.parametrize("make", [small_gpt, lambda: LSTMLM(13, 16, 16, 2)])
def test_causal_future_does_not_change_past(make):
    torch.manual_seed(8)
    model = make().eval()
    x = torch.randint(0, 13, (3, 8))
    y = x.clone()
    y[:, 5] = (x[:, 5] + 1) % 13
    logits_x, logits_y = model(x)[0], model(y)[0]
    torch.testing.assert_close(logits_x[:, :5], logits_y[:, :5], atol=ATOL, rtol=0)
    assert not torch.allclose(logits_x[:, 5:], logits_y[:, 5:])


ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "silu": F.silu, "leaky_relu": F.leaky_relu}


@pytest.mark.parametrize("non_linearity", sorted(ACTIVATIONS))
def test_non_linearities(non_linearity):
    """The FFN applies the named function between its two bias-free linears."""
    torch.manual_seed(0)
    block = small_gpt(non_linearity=non_linearity).decoder.blocks[0]
    x = torch.randn(2, 8, 16)
    w1, w2 = block.ffn[0].weight, block.ffn[2].weight  # (m·d, d), (d, m·d)
    expected = ACTIVATIONS[non_linearity](x @ w1.T) @ w2.T  # (2, 8, d)
    torch.testing.assert_close(block.ffn(x), expected)
    other = "relu" if non_linearity != "relu" else "tanh"
    assert not torch.allclose(ACTIVATIONS[other](x @ w1.T) @ w2.T, expected)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="non_linearity.*gelu.*'swish'"):
        Block(8, 2, 4, 0.0, non_linearity="swish")
    with pytest.raises(ValueError, match="non_linearity"):
        small_gpt(non_linearity="swish")
    with pytest.raises(ValueError, match="d_model=10.*num_heads=3"):
        MultiHeadedAttention(10, 3)
    with pytest.raises(ValueError, match="d_model=10.*num_heads=3"):
        small_gpt(embedding_size=10, num_heads=3)
    with pytest.raises(ValueError, match="d_model=16.*num_heads=3"):
        Decoder(16, 3, 1, 4, 0.0)


# ----------------------------------------------------------------------------------- vmap


def vmapped(models, x, randomness="error"):
    """Forward K stacked copies at once, as the engine does (buffers unbatched)."""
    params, _ = stack_module_state(models)
    buffers = dict(models[0].named_buffers())
    base = copy.deepcopy(models[0]).to("meta")

    def call(p, inputs):
        return functional_call(base, (p, buffers), (inputs,))

    return params, torch.vmap(call, in_dims=(0, None), randomness=randomness)(params, x)


MAKERS = {
    "gpt": lambda: small_gpt(padding_index=12),
    "lstm": lambda: LSTMLM(13, 16, 16, 2, padding_index=12),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_vmap_functional_call_matches_each_model(name):
    torch.manual_seed(9)
    models = [MAKERS[name]() for _ in range(3)]
    x = torch.randint(0, 13, (4, 8))
    params, (logits, extras) = vmapped(models, x)
    assert logits.shape == (3, 4, 8, 13)
    for k, model in enumerate(models):
        ref_logits, ref_extras = model(x)
        torch.testing.assert_close(logits[k], ref_logits, atol=ATOL, rtol=0)
        for got, ref in zip(extras, ref_extras, strict=True):
            torch.testing.assert_close(got[k], ref, atol=ATOL, rtol=0)

    # gradients through the vmapped forward equal each model's own gradients
    targets = torch.randint(0, 13, (4, 8))
    losses = torch.stack([F.cross_entropy(logits[k].reshape(-1, 13), targets.reshape(-1)) for k in range(3)])
    grads = torch.autograd.grad(losses.sum(), list(params.values()))
    for k, model in enumerate(models):
        ref_loss = F.cross_entropy(model(x)[0].reshape(-1, 13), targets.reshape(-1))
        ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
        for g, r in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g[k], r, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_vmap_with_dropout_needs_randomness(name):
    torch.manual_seed(10)
    make = {
        "gpt": lambda: small_gpt(dropout=0.1),
        "lstm": lambda: LSTMLM(13, 16, 16, 2, dropout=0.1),
    }[name]
    one = make().train()
    models = [copy.deepcopy(one) for _ in range(3)]  # identical parameters
    x = torch.randint(0, 13, (4, 8))
    _, (logits, _) = vmapped(models, x, randomness="different")
    assert logits.shape == (3, 4, 8, 13)
    # the K copies draw different dropout masks: identical parameters, different outputs
    assert not torch.allclose(logits[0], logits[1]) and not torch.allclose(logits[1], logits[2])
    # and without dropout the same copies agree exactly (so the difference is the masks)
    for m in models:
        m.eval()
    _, (plain, _) = vmapped(models, x, randomness="different")
    torch.testing.assert_close(plain[0], plain[1], rtol=0, atol=0)


# ----------------------------------------------------------------------- positions= (RHS only)
def _dataset_and_rhs(p, orders):
    from modarith.core.data import make_dataset

    ds = make_dataset(p, "+", orders)
    S = ds.source.shape[1]
    pos = (ds.eq_positions[:, None] + torch.arange(1, 3)).clamp(max=S - 1)  # (N, 2)
    return ds, pos


def _rhs_model(name, p, orders):
    S = 6 if orders == (2,) else 8
    torch.manual_seed(21)
    if name == "gpt":
        return GPT(num_heads=2, num_layers=2, embedding_size=16, vocabulary_size=p + 5,
                   sequence_length=S, padding_index=p + 4)
    return LSTMLM(p + 5, 16, 16, 2, padding_index=p + 4)


@pytest.mark.parametrize("name", ["gpt", "lstm"])
@pytest.mark.parametrize("orders", [(2,), (2, 3)])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_positions_path_equals_full_forward_gathered(name, orders, mode):
    """``positions=`` over all N rows of the dataset (evaluation) and in training mode:
    logits equal the full forward's logits at those positions, and so do the gradients."""
    p = 7 if orders == (2,) else 5
    ds, pos = _dataset_and_rhs(p, orders)
    model = _rhs_model(name, p, orders)
    model.train(mode == "train")
    full = model(ds.source)[0]  # (N, S, V)
    gathered = full.gather(1, pos.unsqueeze(-1).expand(-1, -1, full.shape[-1]))  # (N, 2, V)
    rhs = model(ds.source, positions=pos)[0]
    assert rhs.shape == (len(ds), 2, p + 5)
    torch.testing.assert_close(rhs, gathered, rtol=1e-5, atol=1e-6)
    w = torch.randn(rhs.shape, generator=torch.Generator().manual_seed(2))
    g_full = torch.autograd.grad((gathered * w).sum(), list(model.parameters()), allow_unused=True)
    g_rhs = torch.autograd.grad((rhs * w).sum(), list(model.parameters()), allow_unused=True)
    for (n, _), a, b in zip(model.named_parameters(), g_rhs, g_full):
        if a is None or b is None:
            assert a is None and b is None, n
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=n)


def test_block_positions_equal_full_block_gathered():
    """``Block(x, positions=...)``: outputs and attention rows equal the full block's there."""
    torch.manual_seed(22)
    block = Block(16, 2, 4, 0.0)
    x = torch.randn(10, 8, 16)
    pos = torch.stack([torch.randperm(8)[:3] for _ in range(10)])  # (B, 3), any positions
    out, att = block(x)
    out_p, att_p = block(x, positions=pos)
    torch.testing.assert_close(out_p, out.gather(1, pos.unsqueeze(-1).expand(-1, -1, 16)), rtol=1e-5, atol=1e-6)
    ref_att = att.gather(2, pos[:, None, :, None].expand(-1, att.shape[1], -1, att.shape[-1]))
    torch.testing.assert_close(att_p, ref_att, rtol=1e-5, atol=1e-6)
