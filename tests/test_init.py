"""Initial weights equal the course code's for a seed (SPEC "Models", "Seeding").

The reference below is built from plain ``nn.Linear`` / ``nn.Embedding`` layers, drawn from the
global RNG after ``torch.manual_seed(seed)`` in the course's module order, with the course's
``LSTMCell.reset_parameters`` (Xavier-uniform gate weights, zero gate biases, gates in the order
input, forget, candidate, output). It knows nothing of our modules; the test compares it
tensor by tensor with ``models.init_model`` / the model classes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modarith.models import GPT, LSTMLM, init_model
from modarith.models.config import RunConfig


def _reference_lstm(seed, V, d, L, pad, bias=True, bias_classifier=True) -> list[torch.Tensor]:
    """Course order: embedding, then per layer the four gates (created input, forget, output,
    candidate; reset input, forget, candidate, output), then the classifier."""
    torch.manual_seed(seed)
    out = [nn.Embedding(V, d, padding_idx=pad).weight]
    for layer in range(L):
        d_in = d if layer == 0 else d
        i, f, o, c = (nn.Linear(d_in + d, d, bias=bias) for _ in range(4))
        for gate in (i, f, c, o):  # reset_parameters at the end of LSTMCell.__init__
            nn.init.xavier_uniform_(gate.weight)
            if bias:
                nn.init.zeros_(gate.bias)
        for gate in (i, f, o, c):
            out += [gate.weight] + ([gate.bias] if bias else [])
    clf = nn.Linear(d, V, bias=bias_classifier)
    out += [clf.weight] + ([clf.bias] if bias_classifier else [])
    return out


def _reference_gpt(seed, V, d, L, m, pad, bias=True, bias_classifier=True) -> list[torch.Tensor]:
    """Course order: token embedding, per block W_Q, W_K, W_V, W_O then the bias-free FFN,
    then the classifier; LayerNorms start at weight 1, bias 0 (no RNG draws)."""
    torch.manual_seed(seed)
    out = [nn.Embedding(V, d, padding_idx=pad).weight]
    for _ in range(L):
        attn = [nn.Linear(d, d, bias=bias) for _ in range(4)]
        for lin in attn:
            out += [lin.weight] + ([lin.bias] if bias else [])
        out += [torch.ones(d), torch.zeros(d)]  # attention LayerNorm
        out += [nn.Linear(d, m * d, bias=False).weight, nn.Linear(m * d, d, bias=False).weight]
        out += [torch.ones(d), torch.zeros(d)]  # FFN LayerNorm
    clf = nn.Linear(d, V, bias=bias_classifier)
    out += [clf.weight] + ([clf.bias] if bias_classifier else [])
    return out


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach() for p in model.parameters()]


def _assert_equal_lists(ours, ref):
    assert len(ours) == len(ref), (len(ours), len(ref))
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape, (k, a.shape, b.shape)
        assert torch.equal(a, b.detach()), f"tensor {k} differs"


@pytest.mark.parametrize("seed", [0, 42])
@pytest.mark.parametrize("L, d", [(1, 16), (2, 128), (3, 32)])
def test_lstm_init_equals_course_order(seed, L, d):
    cfg = RunConfig(model="lstm", seed=seed, num_layers=L, d_model=d)
    ours = _params(init_model(cfg))
    ref = _reference_lstm(seed, cfg.vocab_size, d, L, pad=cfg.p + 4)
    _assert_equal_lists(ours, ref)
    assert len(ours) == 1 + 8 * L + 2  # 19 tensors at the SPEC defaults (L = 2)


@pytest.mark.parametrize("seed", [0, 42])
@pytest.mark.parametrize("L, d, heads", [(1, 16, 2), (2, 128, 4), (3, 64, 4)])
def test_gpt_init_equals_course_order(seed, L, d, heads):
    cfg = RunConfig(model="gpt", seed=seed, num_layers=L, d_model=d, num_heads=heads)
    ours = _params(init_model(cfg))
    ref = _reference_gpt(seed, cfg.vocab_size, d, L, cfg.multiplier, pad=cfg.p + 4)
    _assert_equal_lists(ours, ref)


@pytest.mark.parametrize("bias", [True, False])
def test_bias_on_and_off(bias):
    V, d, L, pad = 36, 32, 2, 35
    torch.manual_seed(5)
    lstm = LSTMLM(V, d, d, L, padding_index=pad, bias_lstm=bias, bias_classifier=bias)
    _assert_equal_lists(_params(lstm), _reference_lstm(5, V, d, L, pad, bias=bias, bias_classifier=bias))
    torch.manual_seed(5)
    gpt = GPT(num_heads=4, num_layers=L, embedding_size=d, vocabulary_size=V, sequence_length=6,
              padding_index=pad, bias_attention=bias, bias_classifier=bias)
    _assert_equal_lists(_params(gpt), _reference_gpt(5, V, d, L, 4, pad, bias=bias, bias_classifier=bias))


def test_lstm_gate_init_is_xavier_with_zero_bias():
    cell = init_model(RunConfig(model="lstm", d_model=64, num_layers=1)).lstm.layers[0]
    bound = (6.0 / (128 + 64)) ** 0.5  # Xavier-uniform bound for fan_in 128, fan_out 64
    for gate in (cell.input_gate, cell.forget_gate, cell.candidate_cell, cell.output_gate):
        w = gate.weight.detach()
        assert float(w.abs().max()) <= bound
        assert float(w.abs().max()) > 0.9 * bound  # not nn.Linear's 1/sqrt(128) bound
        assert torch.equal(gate.bias, torch.zeros(64))


def test_init_independent_of_global_rng_state():
    cfg = RunConfig(model="lstm", d_model=16, num_layers=1)
    a = _params(init_model(cfg))
    torch.rand(1000)  # moving the global RNG must not change a seeded initialisation
    b = _params(init_model(cfg))
    _assert_equal_lists(a, b)
