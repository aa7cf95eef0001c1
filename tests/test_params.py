"""The seed's closed-form parameter counts equal the modules' counts."""

from __future__ import annotations

import itertools

import pytest
from torch import nn

from modarith.core.params import (
    embedding_params,
    non_embedding_params,
    p_block,
    p_decoder,
    p_lstm,
    p_mha,
)
from modarith.models import GPT, LSTM, LSTMLM, Block, Decoder, MultiHeadedAttention


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("bias", [True, False])
def test_p_lstm_matches_module(bias):
    for d_x, d_h, L in itertools.product([3, 16, 64], [4, 32, 128], [1, 2, 3]):
        assert p_lstm(d_x, d_h, L, bias) == count(LSTM(d_x, d_h, L, bias=bias)), (d_x, d_h, L)


@pytest.mark.parametrize("bias", [True, False])
def test_p_mha_matches_module(bias):
    for d, h in [(8, 1), (8, 2), (32, 4), (64, 4), (128, 8), (256, 4)]:
        assert p_mha(d, bias) == count(MultiHeadedAttention(d, h, bias=bias)), (d, h)


@pytest.mark.parametrize("bias", [True, False])
def test_p_block_and_decoder_match_modules(bias):
    for d, L, m in itertools.product([8, 32, 64], [1, 2, 3], [1, 2, 4]):
        assert p_block(d, m, bias) == count(Block(d, 4, m, 0.0, bias=bias)), (d, m)
        assert p_decoder(d, L, m, bias) == count(Decoder(d, 4, L, m, 0.0, bias=bias)), (d, L, m)
        # the seed's expanded form
        assert p_decoder(d, L, m, bias) == L * (d * d * (4 + 2 * m) + d * (4 * bias + 4))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("d, L", [(128, 2), (64, 1), (256, 3)])
def test_seed_closed_forms_count_the_modules(d, L, bias):
    """The seed's closed forms, written as in the seed (SPEC), against the modules' counts."""
    b, m = int(bias), 4
    assert count(LSTM(d, d, L, bias=bias)) == 4 * d * (d + d + b + (L - 1) * (2 * d + b))
    assert count(MultiHeadedAttention(d, 4, bias=bias)) == 4 * (d * d + b * d)
    assert count(Decoder(d, 4, L, m, 0.0, bias=bias)) == L * (d * d * (4 + 2 * m) + d * (4 * b + 4))


@pytest.mark.parametrize("bias", [True, False])
def test_non_embedding_params_gpt(bias):
    V, d, L = 36, 64, 2
    model = GPT(4, L, d, V, 8, bias_attention=bias, bias_classifier=bias, padding_index=V - 1)
    assert embedding_params(model) == V * d  # positions are a buffer, not parameters
    assert non_embedding_params(model) == count(model) - V * d
    assert non_embedding_params(model) == p_decoder(d, L, 4, bias) + d * V + bias * V


@pytest.mark.parametrize("bias", [True, False])
def test_non_embedding_params_lstm(bias):
    V, d, L = 36, 64, 3
    model = LSTMLM(V, d, d, L, bias_lstm=bias, bias_classifier=bias)
    assert embedding_params(model) == V * d
    assert non_embedding_params(model) == count(model) - V * d
    assert non_embedding_params(model) == p_lstm(d, d, L, bias) + d * V + bias * V


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="num_layers"):
        p_lstm(4, 4, 0, True)
    with pytest.raises(ValueError, match="d_model"):
        p_mha(0, True)
    with pytest.raises(ValueError, match="multiplier"):
        p_decoder(8, 1, 0, True)
