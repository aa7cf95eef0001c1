"""Tests of modarith.attention: equation parsing, attention maps of a tiny GPT, explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from modarith.attention import (  # noqa: E402
    attention_explorer,
    attention_figure,
    attention_maps,
    parse_equation,
)
from modarith.data import Tokenizer  # noqa: E402
from modarith.models import GPT  # noqa: E402

TOK = Tokenizer(31, "+")


@pytest.mark.parametrize(
    "text, seq_len, expected",
    [
        ("0 + 3 =", None, "BOS 0 + 3 = 3"),
        ("0 + 3 = 3", None, "BOS 0 + 3 = 3"),
        ("BOS 0 + 3 = 3", None, "BOS 0 + 3 = 3"),
        ("BOS 0 + 3 = 3 EOS", None, "BOS 0 + 3 = 3"),
        ("30+5=", None, "BOS 30 + 5 = 4"),
        ("0 + 3 = 7", None, "BOS 0 + 3 = 7"),  # a typed (wrong) result is kept
        ("1 + 2 + 30 =", None, "BOS 1 + 2 + 30 = 2"),
        ("0 + 3 =", 6, "BOS 0 + 3 = 3"),
        ("0 + 3 =", 8, "BOS 0 + 3 = 3 EOS PAD"),
        ("1 + 2 + 3 =", 8, "BOS 1 + 2 + 3 = 6"),
    ],
)
def test_parse_equation_good(text, seq_len, expected):
    ids = parse_equation(text, TOK, seq_len)
    assert TOK.decode(ids) == expected.strip()


@pytest.mark.parametrize(
    "text, seq_len, match",
    [
        ("40 + 3 =", None, "'40'"),
        ("a + 3 =", None, "'a'"),
        ("0 - 3 =", None, "operator"),
        ("0 + =", None, "left-hand side"),
        ("0 + 3", None, "exactly one '='"),
        ("0 + 3 = = 3", None, "exactly one '='"),
        ("0 + 3 = 3 4", None, "right-hand side"),
        ("0 + 03 =", None, "'03'"),
        ("0 + 3 = x", None, "'x'"),
        ("", None, "empty"),
        ("0 BOS 3 =", None, "'BOS'"),
        ("1 + 2 + 3 =", 6, "sequence length"),
    ],
)
def test_parse_equation_bad(text, seq_len, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_equation(text, TOK, seq_len)
    assert "Accepted form" in str(info.value) or "sequence length" in str(info.value) \
        or "empty" in str(info.value)


def test_parse_division_by_zero():
    tok = Tokenizer(7, "/")
    assert tok.decode(parse_equation("6 / 3 =", tok)) == "BOS 6 / 3 = 2"
    with pytest.raises(ValueError, match="no result"):
        parse_equation("3 / 0 =", tok)


def _gpt(seq_len=6, layers=2, heads=2):
    torch.manual_seed(0)
    return GPT(num_heads=heads, num_layers=layers, embedding_size=16,
               vocabulary_size=TOK.vocab_size, sequence_length=seq_len)


def test_attention_maps_shapes_rows_causal():
    model = _gpt()
    model.train()
    result = attention_maps(model, TOK, "0 + 3 =")
    assert model.training  # mode restored
    weights, tokens = result
    assert weights.shape == (2, 2, 6, 6)
    assert tokens == ["BOS", "0", "+", "3", "=", "3"]
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((6, 6), dtype=bool), k=1)
    assert np.all(weights[..., upper] == 0)
    assert result.predicted in TOK.tokens
    assert result.expected == 3
    assert result.correct == (result.predicted == "3")
    assert "model predicts" in result.summary


def test_attention_maps_padded_binary():
    model = _gpt(seq_len=8)
    result = attention_maps(model, TOK, "2 + 3 = 5")
    assert result.tokens == ["BOS", "2", "+", "3", "=", "5", "EOS", "PAD"]
    assert result.weights.shape == (2, 2, 8, 8)


def test_attention_figure():
    fig, caption, result = attention_figure(_gpt(), TOK, "BOS 0 + 3 = 3")
    heat = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(heat) == 4
    assert "predicts" in caption
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_explorer_headless(capsys):
    runs = {"tiny": (_gpt(), TOK, 6)}
    assert attention_explorer(runs, equations=("0 + 3 =", "40 + 1 ="), headless=True) is None
    assert "'40'" in capsys.readouterr().out


def test_explorer_widget_or_none():
    pytest.importorskip("ipywidgets")
    runs = {"tiny": (_gpt(), TOK, 6)}
    app = attention_explorer(runs, equations=("0 + 3 =",))
    assert app is not None


def test_attention_focus_counts_heads_and_mean_weights():
    from modarith.attention import attention_focus

    tokens = ["BOS", "0", "+", "3", "=", "3"]
    w = np.zeros((2, 2, 6, 6))
    w[:, :, 4, 3] = 1.0  # every head at '=' looks at the second operand
    w[1, 1, 4, 3], w[1, 1, 4, 2] = 0.0, 1.0  # ... except one that looks at '+'
    f = attention_focus(w, tokens)
    assert f["heads"] == 4
    assert f["argmax"] == {"operand": 3, "operator": 1, "=": 0, "BOS": 0, "PAD": 0}
    assert f["mean"]["operand"] == pytest.approx(0.75) and f["mean"]["operator"] == pytest.approx(0.25)
    assert f["mean"]["PAD"] == 0.0
    with pytest.raises(ValueError, match="no '='"):
        attention_focus(w, ["BOS", "0", "+", "3", "x", "3"])
