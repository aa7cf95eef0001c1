"""Attention weights of a trained GPT for equations typed as text (seed Problem 4.8).

* :func:`parse_equation` turns ``"0 + 3 ="``, ``"0 + 3 = 3"``, ``"BOS 0 + 3 = 3"`` (binary or
  ternary, optionally ending in ``EOS``/``PAD``) into the model's SOURCE ids: the sequence
  ``BOS a ∘ b = r EOS`` (right-padded with ``PAD`` to ``seq_len + 1``) without its last token.
  A missing right-hand side is completed with the true result.
* :func:`attention_maps` runs the GPT once and returns an :class:`AttentionResult`
  (weights ``(L, H, S, S)``, tokens, prediction for the result); it unpacks as
  ``weights, tokens = attention_maps(...)``.
* :func:`plot_attention_grid` draws the weights, one heatmap per layer and head (Fig. 25–27).
* :func:`attention_focus` summarises where the ``=`` position looks, over all heads.
* :func:`load_run` loads a stored GPT with its tokenizer and sequence length.
* :func:`attention_explorer` is a small ipywidgets UI; headless it draws static figures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from modarith.core.data import OPERATORS, Tokenizer, compute_result
from modarith.runtime.store import load_model

__all__ = [
    "AttentionResult",
    "parse_equation",
    "attention_maps",
    "attention_figure",
    "plot_attention_grid",
    "attention_explorer",
    "attention_focus",
    "load_run",
]

_TOKEN_RE = re.compile(r"\d+|[A-Za-z_]+|\S")
_SPECIAL = ("BOS", "EOS", "PAD")


@dataclass
class Equation:
    """A parsed equation: operands, the RHS typed by the user (``None`` if absent), the true
    result and the source ids."""

    operands: tuple[int, ...]
    given: int | None
    expected: int
    source: list[int]


def _form(tokenizer: Tokenizer) -> str:
    op = tokenizer.operator
    return (
        f"'a {op} b =' or 'a {op} b {op} c =' with numbers 0..{tokenizer.p - 1}, optionally "
        f"preceded by 'BOS' and followed by the result (e.g. 'BOS 0 {op} 3 = "
        f"{compute_result((0, 3), op, tokenizer.p) if op != '/' else 0}')"
    )


def _number(tok: str, tokenizer: Tokenizer, text: str, role: str) -> int:
    p = tokenizer.p
    if tok.isdigit() and str(int(tok)) == tok and int(tok) < p:
        return int(tok)
    if tok.isdigit():
        why = f"numbers must be 0..{p - 1} without leading zeros"
    elif tok in OPERATORS or tok == "=" or tok in _SPECIAL:
        why = f"expected a number ({role}) here"
    else:
        why = f"it is not in the vocabulary (numbers 0..{p - 1}, {tokenizer.operator!r}, '=', " \
              "'BOS', 'EOS', 'PAD')"
    raise ValueError(f"bad token {tok!r} as {role} in {text!r}: {why}. Accepted form: "
                     f"{_form(tokenizer)}")


def _parse(text: str, tokenizer: Tokenizer, seq_len: int | None = None) -> Equation:
    if not isinstance(text, str):
        raise ValueError(f"equation must be a string, got {type(text).__name__}")
    toks = _TOKEN_RE.findall(text)
    if not toks:
        raise ValueError(f"empty equation {text!r}. Accepted form: {_form(tokenizer)}")
    if toks[0] == "BOS":
        toks = toks[1:]
    while toks and toks[-1] in ("EOS", "PAD"):
        toks = toks[:-1]
    for tok in toks:
        if tok in _SPECIAL:
            raise ValueError(f"bad token {tok!r} in {text!r}: 'BOS' may only open the equation "
                             f"and 'EOS'/'PAD' only close it. Accepted form: {_form(tokenizer)}")
    if toks.count("=") != 1:
        raise ValueError(f"{text!r} must contain exactly one '=', found {toks.count('=')}. "
                         f"Accepted form: {_form(tokenizer)}")
    eq = toks.index("=")
    lhs, rhs = toks[:eq], toks[eq + 1:]
    if len(lhs) not in (3, 5):
        raise ValueError(
            f"left-hand side {' '.join(lhs)!r} of {text!r} has {len(lhs)} token(s); expected "
            f"'a {tokenizer.operator} b' (binary) or 'a {tokenizer.operator} b "
            f"{tokenizer.operator} c' (ternary). Accepted form: {_form(tokenizer)}"
        )
    operands = []
    for k, tok in enumerate(lhs):
        if k % 2:
            if tok != tokenizer.operator:
                raise ValueError(
                    f"bad token {tok!r} in {text!r}: this model's operator is "
                    f"{tokenizer.operator!r}. Accepted form: {_form(tokenizer)}")
        else:
            operands.append(_number(tok, tokenizer, text, f"operand {k // 2 + 1}"))
    if len(rhs) > 1:
        raise ValueError(f"right-hand side {' '.join(rhs)!r} of {text!r} must be one number "
                         f"or empty. Accepted form: {_form(tokenizer)}")
    given = _number(rhs[0], tokenizer, text, "result") if rhs else None
    try:
        expected = compute_result(operands, tokenizer.operator, tokenizer.p)
    except ValueError as err:
        raise ValueError(f"{text!r} has no result: {err}") from None
    result = expected if given is None else given
    full = [tokenizer.bos_id]
    for k, a in enumerate(operands):
        if k:
            full.append(tokenizer.op_id)
        full.append(a)
    full += [tokenizer.eq_id, result, tokenizer.eos_id]  # BOS a ∘ b = r EOS
    natural = len(full) - 1
    if seq_len is not None:
        if seq_len < natural:
            raise ValueError(
                f"{text!r} is an order-{len(operands)} equation with source length {natural}, "
                f"but the model's sequence length is {seq_len} (it was trained on shorter "
                "equations); use a binary equation")
        full += [tokenizer.pad_id] * (seq_len + 1 - len(full))
    return Equation(tuple(operands), given, expected, full[:-1])


def parse_equation(text: str, tokenizer: Tokenizer, seq_len: int | None = None) -> list[int]:
    """Equation text -> source token ids (the sequence without its last token).

    Accepts ``"0 + 3 ="``, ``"0 + 3 = 3"``, ``"BOS 0 + 3 = 3"``, ``"0+3="``, binary or ternary,
    optionally ending with ``EOS``/``PAD``. A missing result is completed with the true one
    (:func:`modarith.core.data.compute_result`); a typed result is kept as typed. With ``seq_len``
    (the model's S) the sequence is right-padded with ``PAD`` as in the mixed-order dataset,
    e.g. S = 8 and a binary equation give ``BOS a + b = r EOS PAD``. Raises ``ValueError``
    naming the bad token or problem and the accepted form.
    """
    return _parse(text, tokenizer, seq_len).source


@dataclass
class AttentionResult:
    """Attention of one equation: ``weights`` (L, H, S, S) numpy, ``tokens`` (S source tokens),
    the model's ``predicted`` token for the result (read at the ``=`` position), the
    ``expected`` (true) result, ``correct`` (predicted == expected), and the parsed equation.

    Unpacks as ``weights, tokens = result``.
    """

    weights: np.ndarray
    tokens: list[str]
    predicted: str
    expected: int
    correct: bool
    equation: str
    given: int | None = None

    def __iter__(self) -> Iterator:
        return iter((self.weights, self.tokens))

    @property
    def summary(self) -> str:
        """One line: the equation and the model's answer."""
        verdict = "correct" if self.correct else f"wrong, true result {self.expected}"
        return f"{self.equation}  →  model predicts {self.predicted} ({verdict})"


def attention_maps(model, tokenizer: Tokenizer, equation: str,
                   seq_len: int | None = None) -> AttentionResult:
    """Run the GPT on one equation and return its attention weights and prediction.

    ``model``: a :class:`modarith.models.GPT` (forward returns ``(logits, (hidden_states,
    attentions (B, L, H, S, S)))``); ``seq_len``: the model's S (default
    ``model.sequence_length``). Runs in eval mode under ``torch.no_grad()`` and restores the
    model's training flag.
    """
    if seq_len is None:
        seq_len = getattr(model, "sequence_length", None)
    eq = _parse(equation, tokenizer, seq_len)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.tensor([eq.source], dtype=torch.int64, device=device)  # (1, S)
            logits, (_, attentions) = model(x)  # (1, S, V), (1, L, H, S, S)
    finally:
        model.train(was_training)
    eq_index = eq.source.index(tokenizer.eq_id)  # logits at '=' predict the result
    predicted_id = int(logits[0, eq_index].argmax())
    predicted = tokenizer.tokens[predicted_id]
    tokens = [tokenizer.tokens[i] for i in eq.source]
    return AttentionResult(
        weights=attentions[0].float().cpu().numpy(),
        tokens=tokens,
        predicted=predicted,
        expected=eq.expected,
        correct=predicted_id == eq.expected,
        equation=" ".join(tokens),
        given=eq.given,
    )


def _grid_choice(weights, tokens: Sequence[str], layers, heads):
    """``(weights (L, H, S, S), tokens, layers, heads)`` checked: the shape, one token per
    position, layer and head indices in range (0-based; None: all)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"weights must have shape (L, H, S, S), got {w.shape}")
    n_layers, n_heads, seq, _ = w.shape
    tokens = [str(t) for t in tokens]
    if len(tokens) != seq:
        raise ValueError(f"got {len(tokens)} tokens for sequence length S = {seq}")
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    for name, chosen, size in (("layer", layers, n_layers), ("head", heads, n_heads)):
        bad = [c for c in chosen if not 0 <= c < size]
        if bad or not chosen:
            raise ValueError(f"{name} indices {chosen} out of range 0..{size - 1}")
    return w, tokens, layers, heads


def _attention_cell(ax, mat, tokens: list[str], title: str, colormap):
    """One head's heatmap ``mat`` (S, S) on ``ax``, the tokens labelling both axes."""
    seq = len(tokens)
    image = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap=colormap, aspect="equal")
    ax.set_xticks(range(seq))
    ax.set_yticks(range(seq))
    ax.set_xticklabels(tokens, rotation=90, fontsize=8)
    ax.set_yticklabels(tokens, fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=10)
    return image


def _annotate(ax, mat, colormap, fontsize: float) -> None:
    """Each weight of ``mat`` printed on its cell with two decimals, black or white by the
    cell's luminance."""
    for qi in range(mat.shape[0]):
        for ki in range(mat.shape[1]):
            value = mat[qi, ki]
            rgba = colormap(value)
            luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            ax.text(ki, qi, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="black" if luminance > 0.5 else "white")


def plot_attention_grid(weights, tokens: Sequence[str], title: str | None = None,
                        cmap: str = "viridis", annotate: bool = True, layers=None, heads=None,
                        cell_inches: float | None = None):
    """Fig. 25–27: a grid of attention heatmaps, one row per layer and one column per head.

    ``weights``: array ``(L, H, S, S)`` (query rows, key columns), values in [0, 1];
    ``tokens``: the S source tokens labelling both axes. Each cell shows its weight with two
    decimals. ``layers`` / ``heads`` (0-based iterables) restrict the grid. Returns
    ``(fig, caption)``.
    """
    w, tokens, layers, heads = _grid_choice(weights, tokens, layers, heads)
    seq = len(tokens)
    rows, cols = len(layers), len(heads)
    if cell_inches is None:
        cell_inches = float(np.clip(12.5 / cols, 2.4, 3.6))
    fig, axes = plt.subplots(rows, cols, figsize=(cell_inches * cols + 1.2,
                                                  cell_inches * rows + 0.8),
                             squeeze=False, layout="constrained")
    colormap = plt.get_cmap(cmap)
    fontsize = float(np.clip(cell_inches * 72 / seq / 4.2, 4.5, 9))
    image = None
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            ax = axes[r, c]
            image = _attention_cell(ax, w[layer, head], tokens, f"Layer {layer + 1}, Head {head + 1}", colormap)
            if r == rows - 1:
                ax.set_xlabel("key", fontsize=9)
            if c == 0:
                ax.set_ylabel("query", fontsize=9)
            if annotate:
                _annotate(ax, w[layer, head], colormap, fontsize)
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, aspect=30)
    cbar.set_label("attention weight")
    sentence = " ".join(tokens)
    fig.suptitle(title or f"Attention for: {sentence}")
    caption = (
        f"Attention weights for the input '{sentence}' (S = {seq}): one heatmap per head "
        f"(columns, heads {', '.join(str(h + 1) for h in heads)}) and layer (rows, layers "
        f"{', '.join(str(li + 1) for li in layers)}, layer 1 at the top). Rows are query "
        "positions, columns key positions; colour and the printed numbers give the weight "
        "(0 to 1); the causal mask makes every entry above the diagonal zero."
    )
    return fig, caption


def attention_figure(model, tokenizer: Tokenizer, equation: str, seq_len: int | None = None,
                     layers=None, heads=None, title: str | None = None):
    """:func:`attention_maps` + :func:`plot_attention_grid`.

    Returns ``(fig, caption, result)``; the caption adds the model's prediction.
    """
    result = attention_maps(model, tokenizer, equation, seq_len)
    fig, caption = plot_attention_grid(
        result.weights, result.tokens, layers=layers, heads=heads,
        title=title or f"Attention for: {result.equation}  (prediction {result.predicted}, "
        f"{'correct' if result.correct else 'wrong'})")
    caption += f" The model predicts {result.predicted} for the result " + (
        "(correct)." if result.correct else f"(the true result is {result.expected}).")
    return fig, caption, result


def load_run(record, results="results", device: str = "cpu") -> tuple:
    """``(model, tokenizer, seq_len)`` of a stored run (``record`` or its RunConfig)."""
    config = getattr(record, "config", record)
    return (load_model(record, results, device), Tokenizer(config.p, config.operator),
            config.seq_len)


def attention_focus(weights, tokens: Sequence[str]) -> dict:
    """Where the ``=`` position (the one that predicts the result) looks, over all heads.

    ``weights`` (L, H, S, S), ``tokens`` the S source tokens. Returns ``argmax``: counts of
    heads whose largest weight falls on an operand / the operator / ``=`` / ``BOS`` / ``PAD``,
    ``mean``: the mean weight (over heads) on each of those token kinds, and ``heads`` = L·H.
    """
    w = np.asarray(weights, dtype=float)
    tokens = list(tokens)
    if "=" not in tokens:
        raise ValueError(f"tokens = {tokens!r} has no '=' position")
    row = w[:, :, tokens.index("="), :]  # (L, H, S)
    kinds = ["operand" if t.isdigit() else t if t in ("=", "BOS", "PAD", "EOS") else "operator"
             for t in tokens]
    names = ("operand", "operator", "=", "BOS", "PAD")
    arg = row.argmax(axis=-1).ravel()
    counts = {k: int(sum(kinds[i] == k for i in arg)) for k in names}
    mean = {k: float(row[..., [i for i, x in enumerate(kinds) if x == k]].sum(-1).mean())
            if k in kinds else 0.0 for k in names}
    return {"argmax": counts, "mean": mean, "heads": int(row.shape[0] * row.shape[1])}


def _close(fig) -> None:
    plt.close(fig)


def _show(fig) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(fig)


def _static_figures(runs: dict, equations: Sequence[str]) -> None:
    """The explorer without widgets: every run's figure for every equation, shown (inside
    IPython) and closed; a bad equation prints its ``ValueError`` message."""
    for name, (model, tokenizer, seq_len) in runs.items():
        for text in equations:
            try:
                fig, _, _ = attention_figure(model, tokenizer, text, seq_len,
                                             title=None)
            except ValueError as err:
                print(f"[{name}] {err}")
                continue
            fig.suptitle(f"{name}: {fig.get_suptitle()}")
            _show(fig)
            _close(fig)


def attention_explorer(runs: Mapping[str, tuple], equations: Sequence[str] = ("0 + 3 =",),
                       headless: bool = False):
    """Interactive attention explorer.

    ``runs``: name -> ``(model, tokenizer, seq_len)``. The UI has a text box for the
    equation, a run selector and layer / head selectors (``"all"`` or a number); it redraws
    the heatmap grid in an ``Output`` widget and prints the ``ValueError`` message of a bad
    equation instead of a traceback. Returns the widget.

    If ipywidgets is missing or ``headless=True``, draws the static figures for every run and
    every equation of ``equations`` (displayed when inside IPython, then closed) and returns
    ``None``.
    """
    if not runs:
        raise ValueError("runs must hold at least one entry name -> (model, tokenizer, seq_len)")
    runs = dict(runs)
    widgets = None
    if not headless:
        try:
            import ipywidgets as widgets
        except ImportError:
            widgets = None
    if widgets is None:
        _static_figures(runs, equations)
        return None

    return _explorer_widget(widgets, runs, equations)


def _explorer_widget(widgets, runs: dict, equations: Sequence[str]):
    """The explorer's controls (equation, run, layer, head) and the ``Output`` its redraw
    callback draws into, as one ``VBox``."""
    from IPython.display import clear_output, display

    names = list(runs)
    text = widgets.Text(value=equations[0] if equations else "0 + 3 =",
                        description="equation", continuous_update=False)
    run = widgets.Dropdown(options=names, value=names[0], description="run")
    layer = widgets.Dropdown(description="layer")
    head = widgets.Dropdown(description="head")
    out = widgets.Output()

    def set_options(*_):
        model = runs[run.value][0]
        layer.options = ["all"] + list(range(1, model.num_layers + 1))
        head.options = ["all"] + list(range(1, model.num_heads + 1))
        layer.value, head.value = "all", "all"

    def redraw(*_):
        model, tokenizer, seq_len = runs[run.value]
        layers = None if layer.value == "all" else [layer.value - 1]
        heads = None if head.value == "all" else [head.value - 1]
        with out:
            clear_output(wait=True)
            try:
                fig, _, result = attention_figure(model, tokenizer, text.value, seq_len,
                                                  layers=layers, heads=heads)
            except ValueError as err:
                print(f"ValueError: {err}")
                return
            print(result.summary)
            display(fig)
            _close(fig)

    set_options()
    run.observe(lambda change: (set_options(), redraw()), names="value")
    for w in (text, layer, head):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([text, run, layer, head]), out])
