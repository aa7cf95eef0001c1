# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Problems 1, 2.6 and 2.10 — Parameter counts
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/00_parameter_counts.ipynb)
#
# How many learnable parameters do the hand-written LSTM, the multi-head attention and the
# GPT decoder hold? We derive closed forms from the constructors of the modules, then check them
# against the modules of `modarith.models` (which count their own `parameters()`) on a grid of
# sizes, with and without biases.

# %% tags=["report-hide"]
# Colab only: install modarith at its release (a fork: MODARITH_REPO_URL; another branch, tag or commit: MODARITH_REF).
import os, subprocess, sys  # noqa: E401, I001
if "google.colab" in sys.modules:
    url = os.environ.get("MODARITH_REPO_URL", "https://github.com/modarith/modarith") + "@" + (os.environ.get("MODARITH_REF") or "v0.1.0")
    print(f"installing modarith from {url} …", flush=True)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"modarith[notebook] @ git+{url}"], capture_output=True, text=True)
    if pip.returncode:  # one message with pip's reason, not pip's output followed by an ImportError below
        raise SystemExit(f"modarith could not be installed from {url} ({next((ln.strip() for ln in pip.stderr.splitlines() if ln.strip().lower().startswith(('error:', 'fatal:'))), f'pip exit code {pip.returncode}')}): set MODARITH_REPO_URL / MODARITH_REF and run this cell again.")

# %% [markdown] tags=["report-hide"]
# ### Parameters
#
# The grid of sizes checked below (papermill `parameters` cell).

# %% tags=["parameters"]
sizes: list = [32, 128]  # values of d_x, d_h and d_model on the grid
layers: list = [1, 3]  # numbers of layers L on the grid
heads: list = [1, 4]  # numbers of attention heads h (d_model must be divisible by h)
multipliers: list = [2, 4]  # FFN width multipliers m
vocabulary_size: int = 36  # V for the full-model rows (p + 5 with p 31)

# %% tags=["report-hide"]
from modarith.reporting import notebook

notebook.readable_tables()  # tables' plain text and stable ids
sizes, layers, heads, multipliers = (notebook.int_list(name, values, minimum=1) for name, values in (
    ("sizes", sizes), ("layers", layers), ("heads", heads), ("multipliers", multipliers)))  # as typed: 4, [2, 4], "2,4"
if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < 1:
    raise ValueError(f"vocabulary_size={vocabulary_size!r} is not accepted; give a positive integer")
if any(d % h for d in sizes for h in heads):
    raise ValueError(f"heads={heads!r}: every value must divide every value of sizes={sizes!r}")

# %% [markdown]
# ## Notation
#
# | symbol | meaning |
# |---|---|
# | $d_x$ | input (embedding) size of the LSTM |
# | $d_h$ | hidden size of the LSTM |
# | $d$ | model width `d_model` of the GPT |
# | $h$, $d_k = d/h$ | number of attention heads, size of one head |
# | $m$ | width multiplier of the feed-forward network |
# | $L$ | number of layers (LSTM cells or decoder blocks) |
# | $V$ | vocabulary size ($p + 5$) |
# | $b \in \{0, 1\}$ | 1 when the layers carry a bias, 0 otherwise |
#
# The only building block with parameters is the affine map `nn.Linear(n, k, bias)`,
# $x \mapsto W x + b$ with $W \in \mathbb{R}^{k \times n}$: it holds $nk$ weights and $bk$ biases.
# Everything else (sigmoid, tanh, softmax, masks, reshapes, sinusoidal positions) has none,
# except the two vectors of each layer normalisation.

# %% [markdown]
# ## Problem 1 — the LSTM
#
# An `LSTMCell` with input size $d_{in}$ reads the concatenation $z_t = [x_t, h_{t-1}] \in
# \mathbb{R}^{d_{in} + d_h}$ and computes four gates, each with its own `nn.Linear(d_in + d_h, d_h)`:
#
# $$i_t = \sigma(W_i z_t + b_i), \quad f_t = \sigma(W_f z_t + b_f), \quad o_t = \sigma(W_o z_t + b_o), \quad \tilde{c}_t = \tanh(W_c z_t + b_c),$$
#
# followed by the parameter-free updates $c_t = f_t \odot c_{t-1} + i_t \odot \tilde{c}_t$ and
# $h_t = o_t \odot \tanh(c_t)$. One gate holds $(d_{in} + d_h)\, d_h$ weights and $b\, d_h$ biases, so
# one cell holds
#
# $$P_{\text{cell}}(d_{in}) = 4 \left[ (d_{in} + d_h)\, d_h + b\, d_h \right] = 4 d_h \left( d_{in} + d_h + b \right).$$
#
# `LSTM` stacks $L$ cells: the first reads the input ($d_{in} = d_x$), each of the $L - 1$ others
# reads the hidden state of the cell below ($d_{in} = d_h$). Dropout between layers has no
# parameters. Summing,
#
# $$P_{\text{LSTM}} = 4 d_h (d_x + d_h + b) + (L - 1) \cdot 4 d_h (2 d_h + b) = 4 d_h \left[ d_x + d_h + b + (L - 1)(2 d_h + b) \right],$$
#
# that is
#
# $$P_{\text{LSTM}} = \begin{cases} 4 d_h \left[ d_x + d_h + 1 + (L - 1)(2 d_h + 1) \right] & b = 1 \\ 4 d_h \left[ d_x + d_h + 2 (L - 1) d_h \right] & b = 0. \end{cases}$$
#
# The language model `LSTMLM` adds a token embedding ($V d_x$, not counted in the
# non-embedding count $P$) and a classifier `nn.Linear(d_h, V)`, so its non-embedding count is
# $P = P_{\text{LSTM}} + V (d_h + b_{\text{clf}})$.

# %% [markdown]
# ## Problem 2.6 — multi-head attention
#
# `MultiHeadedAttention(d, h, bias)` holds four projections $W_Q, W_K, W_V, W_O$, each an
# `nn.Linear(d, d)` with $d^2$ weights and $b\, d$ biases. Splitting the $d$ outputs of $W_Q, W_K, W_V$
# into $h$ heads of size $d_k = d / h$ is a reshape; the scaled scores
# $\operatorname{softmax}(Q_j K_j^\top / \sqrt{d_k} + \text{mask})$ and the concatenation of the heads
# add nothing. Hence
#
# $$P_{\text{MHA}} = 4 \left( d^2 + b\, d \right) = 4 \left[ (h\, d_k)^2 + b\, h\, d_k \right] = \begin{cases} 4 \left[ (h\, d_k)^2 + h\, d_k \right] & b = 1 \\ 4 (h\, d_k)^2 & b = 0. \end{cases}$$
#
# At fixed width $d$ the count does not depend on the number of heads: more heads means
# narrower heads, not more parameters.

# %% [markdown]
# ## Problem 2.10 — the decoder
#
# A post-norm `Block(d, h, m, dropout, non_linearity, bias)` is
# $x \mapsto \mathrm{LN}_2(y + \mathrm{FFN}(y))$ with $y = \mathrm{LN}_1(x + \mathrm{MHA}(x))$. Its parts:
#
# * the attention: $P_{\text{MHA}} = 4(d^2 + b\, d)$ (Problem 2.6);
# * the feed-forward network: `nn.Linear(d, m d, bias=False)`, the non-linearity, then
#   `nn.Linear(m d, d, bias=False)`: $m d^2 + m d^2 = 2 m d^2$ weights and no bias whatever $b$ is;
# * two layer normalisations, each with a gain $\gamma \in \mathbb{R}^d$ and a shift
#   $\beta \in \mathbb{R}^d$: $2 \cdot 2d = 4d$.
#
# $$P_{\text{Block}} = 4 (d^2 + b\, d) + 2 m d^2 + 4 d = (4 + 2m)\, d^2 + (4b + 4)\, d.$$
#
# `Decoder` holds $L$ identical blocks and nothing else (the token embedding and the fixed
# sinusoidal positions, a buffer, belong to the GPT's embedding), so
#
# $$P_{\text{Decoder}} = L \left[ (4 + 2m)\, d^2 + (4b + 4)\, d \right] = \begin{cases} L \left[ (4 + 2m)\, d^2 + 8 d \right] & b = 1 \\ L \left[ (4 + 2m)\, d^2 + 4 d \right] & b = 0. \end{cases}$$
#
# The GPT adds a classifier `nn.Linear(d, V)`: $P = P_{\text{Decoder}} + V (d + b_{\text{clf}})$. This
# $P$ is the $x$-axis of Problem 4.5 and enters the compute estimate $C \approx P \cdot B \cdot T$ of
# Problem 4.6.

# %% [markdown]
# ## Check: formulas against the modules
#
# Each row builds the module and counts `sum(p.numel() for p in module.parameters())`; the
# formula column comes from `modarith.core.params` (`p_lstm`, `p_mha`, `p_decoder`). The last rows do
# the same for the full models with `non_embedding_params`, which subtracts the token embedding
# from all parameters.

# %%
import itertools

import pandas as pd
from modarith.core.params import non_embedding_params, p_decoder, p_lstm, p_mha
from modarith.models import GPT, LSTM, LSTMLM, Decoder, MultiHeadedAttention


def count(module):
    return sum(p.numel() for p in module.parameters())


V, h = vocabulary_size, heads[-1]
checks = []  # (module, sizes, formula(bias) -> int, module(bias) -> nn.Module)
for d_x, d_h, L in itertools.product(sizes, sizes, layers):
    checks.append(("LSTM", f"d_x={d_x}, d_h={d_h}, L={L}", lambda b, d_x=d_x, d_h=d_h, L=L: p_lstm(d_x, d_h, L, b),
                   lambda b, d_x=d_x, d_h=d_h, L=L: LSTM(d_x, d_h, L, bias=b)))
for d, n_heads in itertools.product(sizes, heads):
    checks.append(("MultiHeadedAttention", f"d={d}, h={n_heads}", lambda b, d=d: p_mha(d, b),
                   lambda b, d=d, n_heads=n_heads: MultiHeadedAttention(d, n_heads, bias=b)))
for d, L, m in itertools.product(sizes, layers, multipliers):
    checks.append(("Decoder", f"d={d}, L={L}, m={m}", lambda b, d=d, L=L, m=m: p_decoder(d, L, m, b),
                   lambda b, d=d, L=L, m=m: Decoder(d, h, L, m, 0.0, bias=b)))
rows = []
for name, text, formula, build in checks:
    rows.append((name, text, formula(True), count(build(True)), formula(False), count(build(False))))
for d, L in itertools.product(sizes, layers):  # full models: non-embedding P (classifier with bias)
    rows.append(("LSTMLM: P", f"V={V}, d={d}, L={L}", p_lstm(d, d, L, True) + V * (d + 1),
                 non_embedding_params(LSTMLM(V, d, d, L)),
                 p_lstm(d, d, L, False) + V * (d + 1), non_embedding_params(LSTMLM(V, d, d, L, bias_lstm=False))))
    rows.append(("GPT: P", f"V={V}, d={d}, L={L}, h={h}, m=4", p_decoder(d, L, 4, True) + V * (d + 1),
                 non_embedding_params(GPT(h, L, d, V, 7)),
                 p_decoder(d, L, 4, False) + V * (d + 1), non_embedding_params(GPT(h, L, d, V, 7, bias_attention=False))))
table = pd.DataFrame(rows, columns=["module", "sizes", "formula b=1", "counted b=1", "formula b=0", "counted b=0"])
table["equal"] = (table["formula b=1"] == table["counted b=1"]) & (table["formula b=0"] == table["counted b=0"])
print(f"{int(table['equal'].sum())} of {len(table)} configurations (each with and without bias): "
      + ("every count equals its closed form." if table["equal"].all()
         else f"MISMATCHES:\n{table[~table['equal']].to_string()}"))
counts = [c for c in table.columns if c.startswith(("formula", "counted"))]
(table.style.hide(axis="index").format({c: "{:,}" for c in counts})
 .set_properties(subset=["module", "sizes"], **{"text-align": "left"}))

# %% tags=["report-hide"]
assert table["equal"].all(), "a closed form disagrees with its module (see the table)"
