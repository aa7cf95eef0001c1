"""Generate the report's notebooks (``python notebooks/_make_notebooks.py``).

The notebooks are written without outputs, with stable cell ids, from the cell texts below
and from :mod:`modarith.report` (repository URL, Colab badges, titles, file names), so that
every notebook has the same skeleton:

1. title, "Open in Colab" badge and a one-paragraph summary (markdown);
2. a setup cell that pip-installs modarith from the repository only inside Colab;
3. the papermill ``parameters`` cell (commented, typed literals only);
4. a cell that validates and resolves the parameters (errors name the parameter);
5. the problem statement, one-line calls into modarith (figures, tables and the computed
   conclusions are printed by the library), and a discussion that frames the question.

Cells tagged ``report-hide`` (setup, parameters, settings) are left out of the HTML report.
``tests/test_notebooks.py`` checks that the committed notebooks equal this script's output.
Run with ``--check`` to exit 1 when a notebook is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from modarith.report import HIDE_TAG, NOTEBOOKS, colab_badge, pip_target  # noqa: E402

HIDE = {"tags": [HIDE_TAG]}
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    "colab": {"provenance": []},
}

# ---------------------------------------------------------------------------- shared cells

SETUP = f'''# Only in Google Colab: install modarith from its repository. Elsewhere this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{pip_target()}"], check=True)'''

PARAMETERS_NOTE = """### Parameters

The next cell is papermill's `parameters` cell. Change it here, or from the command line:
`papermill notebooks/{file} out.ipynb -p profile full -p device cuda`
(`papermill --help-notebook notebooks/{file}` lists the parameters). Profiles: `smoke`
(seconds, for CI), `quick` (a reduced protocol for a laptop CPU, labelled as such in every
output) and `full` (the seed's protocol); `auto` picks `full` on a CUDA GPU and `quick`
otherwise. Runs already stored under `results_dir` are reused, so re-running only re-plots."""

COMMON_PARAMETERS = [
    'profile: str = "auto"  # experiment protocol: auto | smoke | quick | full (auto: full on CUDA, quick otherwise)',
    'device: str = "auto"  # training device: auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)',
    'results_dir: str = "auto"  # results store, reused when runs are already there (auto: results/ of the checkout)',
    'figures_dir: str = "auto"  # figures (PNG and SVG) are written here (auto: figures/ of the checkout)',
    "force: bool = False  # True retrains runs that are already stored",
]

SETTINGS = """from modarith.report import notebook_settings

settings = notebook_settings(profile=profile, device=device, results_dir=results_dir,
                             figures_dir=figures_dir, force=force{extra})
{more}print(settings)"""

RUN = """from modarith.experiments import run_experiment

result = run_experiment("{name}", profile=settings.profile, results=settings.results,
                        device=settings.device, force=settings.force)"""

SHOW = "result.show(settings.figures)"

RESULTS = """## Results

The figures, tables and conclusions below are computed from the runs above (the first line
of the run's output names the profile: `quick` and `smoke` are reduced protocols)."""


def experiment_cells(info, intro: str, problem: str, discussion: str, extra_parameters=(),
                     settings_extra: str = "", settings_more: str = "", after_show=()) -> list:
    """Cells of an experiment notebook (everything but the text is shared)."""
    return [
        new_markdown_cell(f"# {info.title}\n\n{colab_badge(info.file)}\n\n{intro}"),
        new_code_cell(SETUP, metadata=HIDE),
        new_markdown_cell(PARAMETERS_NOTE.format(file=info.file), metadata=HIDE),
        new_code_cell("\n".join([*COMMON_PARAMETERS, *extra_parameters]), metadata={"tags": ["parameters"]}),
        new_code_cell(SETTINGS.format(extra=settings_extra, more=settings_more), metadata=HIDE),
        new_markdown_cell(problem),
        new_code_cell(RUN.format(name=info.experiment)),
        new_markdown_cell(RESULTS),
        new_code_cell(SHOW),
        *after_show,
        new_markdown_cell(discussion),
    ]


# ---------------------------------------------------------------------------- 00 parameter counts

P00_INTRO = """How many learnable parameters do the hand-written LSTM, the multi-head attention and the
GPT decoder hold? We derive closed forms from the constructors of the modules, then check them
against the modules of `modarith.models` (which count their own `parameters()`) on a grid of
sizes, with and without biases."""

P00_NOTATION = r"""## Notation

| symbol | meaning |
|---|---|
| $d_x$ | input (embedding) size of the LSTM |
| $d_h$ | hidden size of the LSTM |
| $d$ | model width `d_model` of the GPT |
| $h$, $d_k = d/h$ | number of attention heads, size of one head |
| $m$ | width multiplier of the feed-forward network |
| $L$ | number of layers (LSTM cells or decoder blocks) |
| $V$ | vocabulary size ($p + 5$) |
| $b \in \{0, 1\}$ | 1 when the layers carry a bias, 0 otherwise |

The only building block with parameters is the affine map `nn.Linear(n, k, bias)`,
$x \mapsto W x + b$ with $W \in \mathbb{R}^{k \times n}$: it holds $nk$ weights and $bk$ biases.
Everything else (sigmoid, tanh, softmax, masks, reshapes, sinusoidal positions) has none,
except the two vectors of each layer normalisation."""

P00_LSTM = r"""## Problem 1 — the LSTM

An `LSTMCell` with input size $d_{in}$ reads the concatenation $z_t = [x_t, h_{t-1}] \in
\mathbb{R}^{d_{in} + d_h}$ and computes four gates, each with its own `nn.Linear(d_in + d_h, d_h)`:

$$i_t = \sigma(W_i z_t + b_i), \quad f_t = \sigma(W_f z_t + b_f), \quad o_t = \sigma(W_o z_t + b_o), \quad \tilde{c}_t = \tanh(W_c z_t + b_c),$$

followed by the parameter-free updates $c_t = f_t \odot c_{t-1} + i_t \odot \tilde{c}_t$ and
$h_t = o_t \odot \tanh(c_t)$. One gate holds $(d_{in} + d_h)\, d_h$ weights and $b\, d_h$ biases, so
one cell holds

$$P_{\text{cell}}(d_{in}) = 4 \left[ (d_{in} + d_h)\, d_h + b\, d_h \right] = 4 d_h \left( d_{in} + d_h + b \right).$$

`LSTM` stacks $L$ cells: the first reads the input ($d_{in} = d_x$), each of the $L - 1$ others
reads the hidden state of the cell below ($d_{in} = d_h$). Dropout between layers has no
parameters. Summing,

$$P_{\text{LSTM}} = 4 d_h (d_x + d_h + b) + (L - 1) \cdot 4 d_h (2 d_h + b) = 4 d_h \left[ d_x + d_h + b + (L - 1)(2 d_h + b) \right],$$

that is

$$P_{\text{LSTM}} = \begin{cases} 4 d_h \left[ d_x + d_h + 1 + (L - 1)(2 d_h + 1) \right] & b = 1 \\ 4 d_h \left[ d_x + d_h + 2 (L - 1) d_h \right] & b = 0. \end{cases}$$

The language model `LSTMLM` adds a token embedding ($V d_x$, not counted in the
non-embedding count $P$) and a classifier `nn.Linear(d_h, V)`, so its non-embedding count is
$P = P_{\text{LSTM}} + V (d_h + b_{\text{clf}})$."""

P00_MHA = r"""## Problem 2.6 — multi-head attention

`MultiHeadedAttention(d, h, bias)` holds four projections $W_Q, W_K, W_V, W_O$, each an
`nn.Linear(d, d)` with $d^2$ weights and $b\, d$ biases. Splitting the $d$ outputs of $W_Q, W_K, W_V$
into $h$ heads of size $d_k = d / h$ is a reshape; the scaled scores
$\operatorname{softmax}(Q_j K_j^\top / \sqrt{d_k} + \text{mask})$ and the concatenation of the heads
add nothing. Hence

$$P_{\text{MHA}} = 4 \left( d^2 + b\, d \right) = 4 \left[ (h\, d_k)^2 + b\, h\, d_k \right] = \begin{cases} 4 \left[ (h\, d_k)^2 + h\, d_k \right] & b = 1 \\ 4 (h\, d_k)^2 & b = 0. \end{cases}$$

At fixed width $d$ the count does not depend on the number of heads: more heads means
narrower heads, not more parameters."""

P00_DECODER = r"""## Problem 2.10 — the decoder

A post-norm `Block(d, h, m, dropout, non_linearity, bias)` is
$x \mapsto \mathrm{LN}_2(y + \mathrm{FFN}(y))$ with $y = \mathrm{LN}_1(x + \mathrm{MHA}(x))$. Its parts:

* the attention: $P_{\text{MHA}} = 4(d^2 + b\, d)$ (Problem 2.6);
* the feed-forward network: `nn.Linear(d, m d, bias=False)`, the non-linearity, then
  `nn.Linear(m d, d, bias=False)`: $m d^2 + m d^2 = 2 m d^2$ weights and no bias whatever $b$ is;
* two layer normalisations, each with a gain $\gamma \in \mathbb{R}^d$ and a shift
  $\beta \in \mathbb{R}^d$: $2 \cdot 2d = 4d$.

$$P_{\text{Block}} = 4 (d^2 + b\, d) + 2 m d^2 + 4 d = (4 + 2m)\, d^2 + (4b + 4)\, d.$$

`Decoder` holds $L$ identical blocks and nothing else (the token embedding and the fixed
sinusoidal positions, a buffer, belong to the GPT's embedding), so

$$P_{\text{Decoder}} = L \left[ (4 + 2m)\, d^2 + (4b + 4)\, d \right] = \begin{cases} L \left[ (4 + 2m)\, d^2 + 8 d \right] & b = 1 \\ L \left[ (4 + 2m)\, d^2 + 4 d \right] & b = 0. \end{cases}$$

The GPT adds a classifier `nn.Linear(d, V)`: $P = P_{\text{Decoder}} + V (d + b_{\text{clf}})$. This
$P$ is the $x$-axis of Problem 4.5 and enters the compute estimate $C \approx P \cdot B \cdot T$ of
Problem 4.6."""

P00_PARAMETERS = [
    "sizes: list = [32, 128]  # values of d_x, d_h and d_model on the grid",
    "layers: list = [1, 3]  # numbers of layers L on the grid",
    "heads: list = [1, 4]  # numbers of attention heads h (d_model must be divisible by h)",
    "multipliers: list = [2, 4]  # FFN width multipliers m",
    "vocabulary_size: int = 36  # V for the full-model rows (p + 5 with p 31)",
]

P00_VALIDATE = """for name, values in (("sizes", sizes), ("layers", layers), ("heads", heads),
                     ("multipliers", multipliers), ("vocabulary_size", [vocabulary_size])):
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name}={values!r} is not accepted; give positive integers")
if any(d % h for d in sizes for h in heads):
    raise ValueError(f"heads={heads!r}: every value must divide every value of sizes={sizes!r}")"""

P00_CHECK_INTRO = r"""## Check: formulas against the modules

Each row builds the module and counts `sum(p.numel() for p in module.parameters())`; the
formula column comes from `modarith.params` (`p_lstm`, `p_mha`, `p_decoder`). The last rows do
the same for the full models with `non_embedding_params`, which subtracts the token embedding
from all parameters."""

P00_CHECK = """import itertools

import pandas as pd

from modarith.models import GPT, LSTM, LSTMLM, Decoder, MultiHeadedAttention
from modarith.params import non_embedding_params, p_decoder, p_lstm, p_mha


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
         else f"MISMATCHES:\\n{table[~table['equal']].to_string()}"))
counts = [c for c in table.columns if c.startswith(("formula", "counted"))]
(table.style.hide(axis="index").format({c: "{:,}" for c in counts})
 .set_properties(subset=["module", "sizes"], **{"text-align": "left"}))"""

P00_ASSERT = """assert table["equal"].all(), "a closed form disagrees with its module (see the table)\""""


def notebook_00(info) -> list:
    return [
        new_markdown_cell(f"# {info.title}\n\n{colab_badge(info.file)}\n\n{P00_INTRO}"),
        new_code_cell(SETUP, metadata=HIDE),
        new_markdown_cell("### Parameters\n\nThe grid of sizes checked below (papermill `parameters` cell).",
                          metadata=HIDE),
        new_code_cell("\n".join(P00_PARAMETERS), metadata={"tags": ["parameters"]}),
        new_code_cell(P00_VALIDATE, metadata=HIDE),
        new_markdown_cell(P00_NOTATION),
        new_markdown_cell(P00_LSTM),
        new_markdown_cell(P00_MHA),
        new_markdown_cell(P00_DECODER),
        new_markdown_cell(P00_CHECK_INTRO),
        new_code_cell(P00_CHECK),
        new_code_cell(P00_ASSERT, metadata=HIDE),
    ]


# ---------------------------------------------------------------------------- experiments

DEFAULTS = r"""Unless a problem says otherwise every run uses the defaults of the course: $p = 31$,
operator $+$, $r_{\text{train}} = 0.5$, $L = 2$ layers, $d = 128$, 4 heads, AdamW with learning rate
$10^{-3}$ and weight decay $1$, gradient clipping at norm 1, batch size 512,
$T = 10^4 + 1$ steps, seeds 0 and 42. Loss and accuracy are measured on the right-hand side
of the equation only (the result token and `EOS`); a sample is correct when all of its
right-hand-side tokens are."""

SANITY = dict(
    intro=r"""Both models are trained on $a + b = r \pmod{31}$ with the default hyper-parameters. Do they
fit the training set, and when — if at all — do they generalise to the held-out equations?""",
    problem=r"""## Problem

**4.1** Train the LSTM and the GPT with the default configuration and plot, against the
training step $t$, the training and validation loss $\mathcal{L}^{(t)}$ and accuracy
$\mathcal{A}^{(t)}$ of each model (mean over the two seeds with a ±1 std band).

**4.2** Report, for each model, the best values $\mathcal{L}_{\text{train}}, \mathcal{L}_{\text{val}},
\mathcal{A}_{\text{train}}, \mathcal{A}_{\text{val}}$ (minimum loss, maximum accuracy), the first
step $t_f$ at which each is reached, and the delays
$\Delta t(\mathcal{L}) = t_f(\mathcal{L}_{\text{val}}) - t_f(\mathcal{L}_{\text{train}})$ and
$\Delta t(\mathcal{A}) = t_f(\mathcal{A}_{\text{val}}) - t_f(\mathcal{A}_{\text{train}})$.

""" + DEFAULTS,
    discussion=r"""## Discussion

*Grokking* is the delayed generalisation this experiment looks for: training accuracy
saturates early (the model has memorised the training equations) while validation accuracy
stays near chance ($1/p$) and rises only much later. $\Delta t(\mathcal{A})$ measures that
delay. The loss view and the accuracy view can disagree — a model can classify every
validation equation correctly while its validation loss keeps falling for thousands of
steps — which is why Table 1 reports both. The printed conclusions above are computed from
our runs; the seed's Table 1 is printed beside ours for comparison only. With a reduced
profile (see the first line of the output) the step counts are not comparable to the seed's.""",
)

DATA_SIZE = dict(
    intro=r"""How much of the $p^2$ equations must the models see to generalise? We sweep the training
fraction $r_{\text{train}}$ and look for the threshold between memorisation and
generalisation.""",
    problem=r"""## Problem

Train both models for $r_{\text{train}} \in \{0.1, 0.2, \dots, 0.9\}$, other settings at their
defaults.

* **(a)** Plot $\mathcal{L}^{(t)}_{\text{train}}, \mathcal{L}^{(t)}_{\text{val}},
  \mathcal{A}^{(t)}_{\text{train}}, \mathcal{A}^{(t)}_{\text{val}}$ against $t$, one curve per
  $r_{\text{train}}$ (colour bar).
* **(b)** Plot the best values and their steps $t_f$ against $r_{\text{train}}$.
* **(c)** Which model scales better with the amount of data?
* **(d)** What is the smallest $r_{\text{train}}$ at which each model generalises, and the
  largest at which it only overfits ($\mathcal{A}_{\text{train}} > 0.9$ and
  $\mathcal{A}_{\text{val}} < 0.5$)?

""" + DEFAULTS,
    discussion=r"""## Discussion

With few training equations the models can memorise them all but have no reason to find the
rule: validation accuracy stays near $1/p$. Above some fraction, the rule becomes the
cheaper solution under weight decay and validation accuracy follows training accuracy, after
a delay that shrinks as $r_{\text{train}}$ grows. The computed answers to (c) and (d) above
locate that threshold for each model from our runs; compare the two models' thresholds and
the $t_f(\mathcal{A}_{\text{val}})$ curve of (b), which shows how fast each generalises once it
does. A threshold measured on a coarse grid (the quick profile) is only known to lie between
two grid points.""",
)

ORDERS = dict(
    intro=r"""The models now see binary equations $a + b = r$ and ternary ones $a + b + c = r$ (mod $p$,
with $p = 11$ so that both sets have a manageable size). Is one order learned before the
other?""",
    problem=r"""## Problem

With $p = 11$ build all $p^2$ binary and $p^3$ ternary equations (binary ones padded on the
right to the ternary length) and split each order with $r_{\text{train}} = 0.5$ (a split
stratified by order). Train both models.

* **(a)** Plot loss and accuracy (train and validation) against $t$ for each model, over
  all equations.
* **(b)** Plot the same metrics separately for binary and ternary equations.
* **(c)** Which order is learned faster, and is that what you expected?

""" + DEFAULTS,
    discussion=r"""## Discussion

One might expect binary equations, shorter and fewer, to be learned first. But the ternary
set is $p$ times larger, so with the same $r_{\text{train}}$ the models see many more
ternary examples of the same group structure, and a model that has found the rule for
$a + b$ can reuse it for $(a + b) + c$. The per-order curves of (b) and the computed
comparison of $t_f(\mathcal{A}_{\text{val}})$ per order above answer (c) for our runs.""",
)

MODEL_SIZE = dict(
    intro=r"""How do depth $L$ and width $d$ change memorisation and generalisation, and which
architecture makes better use of more parameters?""",
    problem=r"""## Problem

Train both models for every $(L, d) \in \{1, 2, 3\} \times \{2^6, 2^7, 2^8\}$ (embedding size =
hidden size = $d$).

* **(a)** For each $L$, plot the training curves with one curve per $d$ (colour bar, $\log_2$).
* **(b)** Plot the best metrics as a function of $(L, d)$, and as a function of the number of
  non-embedding parameters $P$ (Problems 1 and 2.10).
* **(c)** At fixed $L$, how do $\mathcal{L}_{\text{val}}$ and $\mathcal{A}_{\text{val}}$ change
  with $d$? At fixed $d$, with $L$? Which model scales better with $P$?

""" + DEFAULTS,
    discussion=r"""## Discussion

$P$ grows like $d^2$ for both models and linearly in $L$ (Problems 1 and 2.10), but more
parameters do not mean better generalisation on a task this small: a larger model memorises
faster, and whether it also generalises earlier depends on how weight decay and the optimiser
interact with its scale. The computed sentences above give, for our runs, the direction of
$\mathcal{L}_{\text{val}}$ and $\mathcal{A}_{\text{val}}$ with $d$ at fixed $L$ and with $L$
at fixed $d$; the plots against $P$ put both architectures on one axis.""",
)

COMPUTE = dict(
    intro=r"""How do the batch size $B$ and the training budget $T$ trade off? We train with several batch
sizes for $2 \cdot 10^4 + 1$ steps and read every run again as if it had stopped at
$T_{\max} = \alpha T$.""",
    problem=r"""## Problem

Train both models for $B \in \{2^5, 2^6, 2^7, 2^8, 2^9\}$ and $T = 2 \cdot 10^4 + 1$ steps.

* **(a)** Plot the training curves with one curve per $B$ (colour bar, $\log_2$).
* **(b)** For $\alpha \in \{0.1, 0.2, \dots, 1.0\}$, compute the best metrics and their $t_f$
  over $t \le \alpha T$ only, and plot them against $B$ with one curve per $\alpha$. The
  non-embedding training compute is $C \approx P \cdot B \cdot T$.
* **(c)** How do $B$ and $\alpha$ (that is, the compute) affect $\mathcal{L}_{\text{val}}$
  and $\mathcal{A}_{\text{val}}$?

""" + DEFAULTS,
    discussion=r"""## Discussion

A larger batch gives a less noisy gradient per step but costs proportionally more compute per
step; at a fixed number of steps it also means more passes over the (small) training set. A
growing $\alpha$ can only improve the best values (the maximum is taken over a longer
window), so the question of (c) is how fast they improve, and for which $B$. The computed
sentences above state, for our runs, how the best validation metrics move with $B$ and with
$\alpha$.""",
)

REGULARIZATION = dict(
    intro=r"""Weight decay is the usual explanation of grokking: among all solutions that fit the
training set it favours the one with the smallest weights, which is the general rule. We vary
it for the LSTM and follow the parameter norm $\lVert \theta^{(t)} \rVert_2$.""",
    problem=r"""## Problem

Train the LSTM for $T = 4 \cdot 10^4 + 1$ steps with weight decay $\in \{0.25, 0.5, 0.75, 1.0\}$,
logging $\lVert \theta^{(t)} \rVert_2$ at every evaluation.

* **(a)** Plot the training and validation loss and accuracy and $\lVert \theta^{(t)} \rVert_2$
  against $t$, one curve per weight decay.
* **(b)** Plot the best metrics and $t_f$ against the weight decay.
* **(c)** How does the weight decay change $t_f(\mathcal{L}_{\text{val}})$ and
  $t_f(\mathcal{A}_{\text{val}})$?
* **(d)** How does $\lVert \theta^{(t)} \rVert_2$ behave before, during and after
  generalisation?

""" + DEFAULTS,
    discussion=r"""## Discussion

AdamW shrinks every weight by a factor $(1 - \eta \lambda)$ per step, so a memorising
solution, which needs large weights, is under constant pressure while a generalising one
can be smaller. If that is the mechanism, the norm should rise while the model memorises, fall
when validation accuracy rises, and a larger $\lambda$ should make the transition earlier.
The computed sentences above test each of these statements on our runs.""",
)

INTERPRETABILITY = dict(
    intro=r"""Where do the trained GPTs look when they compute $a + b$? We draw the attention weights
of every layer and head for chosen equations, for the GPTs of the earlier experiments.""",
    problem=r"""## Problem

* **(a)** For a GPT that generalised (experiment 4.1), one trained on binary and ternary
  equations (experiment 4.4) and a larger one (experiment 4.5, $L = 3$, $d = 2^8$), plot for a
  few equations the grid of attention maps (rows: layers, columns: heads), with the tokens on
  both axes and the weights written in the cells.
* **(b)** Which tokens receive the attention, in particular from the position of `=` (which
  predicts the result)? Why?

The GPTs are the stored runs of the earlier notebooks (the same profile); missing ones are
trained here.""",
    discussion=r"""## Discussion

The prediction of $r$ is made at the position of `=`, and causal attention lets that position
read $a$, the operator, $b$ and `BOS`. The operator is the same in every equation, so it
carries no information; a model that computes $a + b$ must bring the two operands to the `=`
position, either directly (heads of the last layer attending to $a$ and $b$) or in two hops
(an earlier layer moves $a$ next to $b$). The heatmaps above show which of these our models
do; the computed summary lists, per model, how much attention the `=` row gives to the
operands.""",
)

EXPLORER_INTRO = r"""## Explorer

Type an equation (`a + b =`, or a ternary one for the mixed-order model), choose the run,
the layer and the head. In a headless run (papermill, the report) this cell draws the static
attention grids of the `equations` parameter instead."""

EQUATIONS = """if not isinstance(equations, list) or not all(isinstance(e, str) and e.strip() for e in equations):
    raise ValueError(f"equations={equations!r} is not accepted; give a list of strings like '0 + 3'")
equations_text = [e if "=" in e else f"{e} =" for e in equations]  # "0 + 3" -> "0 + 3 ="
"""

EXPLORER = """from modarith.attention import attention_explorer

attention_explorer(result.models(), equations=equations_text, headless=not settings.interactive)"""

EXPERIMENTS = {
    "sanity": SANITY,
    "data_size": DATA_SIZE,
    "orders": ORDERS,
    "model_size": MODEL_SIZE,
    "compute": COMPUTE,
    "regularization": REGULARIZATION,
    "interpretability": INTERPRETABILITY,
}


def notebook_cells(info) -> list:
    """All cells of one notebook."""
    if info.experiment is None:
        return notebook_00(info)
    text = EXPERIMENTS[info.experiment]
    if info.experiment != "interpretability":
        return experiment_cells(info, **text)
    return experiment_cells(
        info, **text,
        extra_parameters=[
            "interactive: bool = True  # ipywidgets explorer; False draws static figures (headless runs)",
            'equations: list = ["1 + 4", "3 + 2"]  # explorer: left-hand sides to draw, binary (operands below p); the equals sign is appended',
        ],
        settings_extra=", interactive=interactive",
        settings_more=EQUATIONS,
        after_show=[new_markdown_cell(EXPLORER_INTRO), new_code_cell(EXPLORER)],
    )


def build(info) -> nbformat.NotebookNode:
    """The notebook of one :class:`modarith.report.NotebookInfo`, without outputs."""
    nb = new_notebook(cells=notebook_cells(info), metadata=METADATA)
    stem = info.file.split("_")[0]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"nb{stem}-{i:02d}"
    nbformat.validate(nb)
    return nb


def render(info) -> str:
    """The JSON text of a notebook, exactly as written to disk."""
    return nbformat.writes(build(info)) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for info in NOTEBOOKS:
        path = HERE / info.file
        text = render(info)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(info.file)
        if not check:
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if check else "written"
    print(f"{len(stale)} notebook(s) {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
