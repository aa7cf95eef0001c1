"""Tests of modarith.plotting.attention: equation parsing, attention maps of a tiny GPT, explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from modarith.core.data import Tokenizer  # noqa: E402
from modarith.models import GPT  # noqa: E402
from modarith.plotting.attention import (  # noqa: E402
    attention_explorer,
    attention_figure,
    attention_maps,
    parse_equation,
)

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


def _known_gpt(answer: str, seq_len=6, layers=2, heads=2):
    """A GPT whose attention and prediction are known by construction: every key projection is
    zero, so every score is 0 and each position attends uniformly to itself and the positions
    before it (1/(i+1) each); the classifier's weight is zero and its bias is one-hot on
    ``answer``, so the model predicts ``answer`` whatever the input."""
    model = _gpt(seq_len, layers, heads)
    with torch.no_grad():
        for block in model.decoder.blocks:
            block.self_attn.W_K.weight.zero_()
            block.self_attn.W_K.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[TOK.tokens.index(answer)] = 10.0
    return model


def _uniform_causal(layers, heads, s):
    w = np.tril(np.ones((s, s))) / np.arange(1, s + 1)[:, None]
    return np.broadcast_to(w, (layers, heads, s, s))


def test_attention_maps_of_a_model_with_known_attention_and_prediction():
    model = _known_gpt("3")
    model.train()
    result = attention_maps(model, TOK, "0 + 3 =")
    assert model.training  # mode restored
    weights, tokens = result
    assert tokens == ["BOS", "0", "+", "3", "=", "3"]
    np.testing.assert_allclose(weights, _uniform_causal(2, 2, 6), atol=1e-6)
    assert (result.predicted, result.expected, result.correct) == ("3", 3, True)
    assert result.summary == "BOS 0 + 3 = 3  →  model predicts 3 (correct)"
    wrong = attention_maps(_known_gpt("7"), TOK, "0 + 3 =")
    assert (wrong.predicted, wrong.expected, wrong.correct) == ("7", 3, False)
    assert wrong.summary.endswith("model predicts 7 (wrong, true result 3)")
    # a typed (wrong) result changes the input, not the expected result
    typed = attention_maps(_known_gpt("3"), TOK, "0 + 3 = 9")
    assert typed.tokens[-1] == "9" and typed.expected == 3 and typed.correct


def test_attention_maps_of_a_random_gpt_are_causal_distributions():
    weights, _ = attention_maps(_gpt(), TOK, "0 + 3 =")
    assert weights.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((6, 6), dtype=bool), k=1)
    assert np.all(weights[..., upper] == 0)
    assert not np.allclose(weights, _uniform_causal(2, 2, 6), atol=1e-3)  # its keys are not zero


def test_attention_maps_padded_binary():
    model = _known_gpt("5", seq_len=8)
    result = attention_maps(model, TOK, "2 + 3 = 5")
    assert result.tokens == ["BOS", "2", "+", "3", "=", "5", "EOS", "PAD"]
    np.testing.assert_allclose(result.weights, _uniform_causal(2, 2, 8), atol=1e-6)
    assert result.correct


def test_attention_focus_on_known_attention():
    from modarith.plotting.attention import attention_focus

    result = attention_maps(_known_gpt("3"), TOK, "0 + 3 =")
    f = attention_focus(result.weights, result.tokens)  # '=' (index 4) looks at 5 tokens, 1/5 each
    assert f["heads"] == 4
    assert f["mean"] == pytest.approx({"operand": 0.4, "operator": 0.2, "=": 0.2, "BOS": 0.2, "PAD": 0.0})


def test_attention_figure():
    fig, caption, result = attention_figure(_known_gpt("7"), TOK, "BOS 0 + 3 = 3")
    heat = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(heat) == 4
    assert caption.endswith("The model predicts 7 for the result (the true result is 3).")
    assert "prediction 7, wrong" in fig.get_suptitle()
    fig2, caption2, _ = attention_figure(_known_gpt("3"), TOK, "0 + 3 =", layers=[1], heads=[0])
    assert len([ax for ax in fig2.axes if ax.get_label() != "<colorbar>"]) == 1
    assert caption2.endswith("The model predicts 3 for the result (correct).")
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)


def test_explorer_headless(capsys):
    runs = {"tiny": (_gpt(), TOK, 6)}
    assert attention_explorer(runs, equations=("0 + 3 =", "40 + 1 ="), headless=True) is None
    assert "'40'" in capsys.readouterr().out


def test_explorer_widget_redraws_on_input(capsys):
    widgets = pytest.importorskip("ipywidgets")  # optional third-party package
    runs = {"right": (_known_gpt("3"), TOK, 6), "wrong": (_known_gpt("7", layers=1, heads=4), TOK, 6)}
    app = attention_explorer(runs, equations=("0 + 3 =",))
    assert isinstance(app, widgets.VBox)
    (bar, out) = app.children
    text, run, layer, head = bar.children
    assert isinstance(out, widgets.Output)
    assert (text.value, run.options, run.value) == ("0 + 3 =", ("right", "wrong"), "right")
    assert list(layer.options) == ["all", 1, 2] and list(head.options) == ["all", 1, 2]
    # outside a kernel the Output widget does not capture: the redraw's summary reaches stdout
    assert "model predicts 3 (correct)" in capsys.readouterr().out
    run.value = "wrong"  # the selectors follow the run's layers and heads, and it redraws
    assert list(layer.options) == ["all", 1] and list(head.options) == ["all", 1, 2, 3, 4]
    assert "model predicts 7 (wrong, true result 3)" in capsys.readouterr().out
    text.value = "40 + 1 ="  # a bad equation prints its ValueError, no traceback
    shown = capsys.readouterr().out
    assert "ValueError: bad token '40'" in shown and "Traceback" not in shown
    text.value = "1 + 1 ="
    assert "model predicts 7 (wrong, true result 2)" in capsys.readouterr().out


def test_attention_focus_counts_heads_and_mean_weights():
    from modarith.plotting.attention import attention_focus

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
