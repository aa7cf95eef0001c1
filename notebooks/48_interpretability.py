# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab
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
# # Problem 4.8 — Interpretability: attention maps
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/48_interpretability.ipynb)
#
# Where do the trained GPTs look when they compute $a + b$? We draw the attention weights of
# every layer and head for chosen equations, for GPTs trained by the earlier notebooks.

# %% tags=["report-hide"]
# Colab only: install modarith at its release (a fork: MODARITH_REPO_URL; another branch, tag or commit: MODARITH_REF).
import os, subprocess, sys  # noqa: E401, I001
if "google.colab" in sys.modules:
    url = os.environ.get("MODARITH_REPO_URL", "https://github.com/modarith/modarith") + "@" + (os.environ.get("MODARITH_REF") or "v0.1.0")
    print(f"installing modarith from {url} …", flush=True)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"modarith[notebook] @ git+{url}"], capture_output=True, text=True)
    if pip.returncode:  # one message with pip's reason, not pip's output followed by an ImportError below
        raise SystemExit(f"modarith could not be installed from {url} ({next((ln.strip() for ln in pip.stderr.splitlines() if ln.strip().lower().startswith(('error:', 'fatal:'))), f'pip exit code {pip.returncode}')}): set MODARITH_REPO_URL / MODARITH_REF and run this cell again.")

# %% [markdown]
# ## Parameters
#
# Change them here, or run headless:
# `papermill notebooks/48_interpretability.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/interpretability/; auto: figures/ beside results/
force: bool = False  # True retrains runs that are already stored
binary_lhs: str = "0 + 3"  # binary left-hand side drawn for every GPT (operands below p)
ternary_lhs: str = "1 + 2 + 3"  # ternary one, drawn for the GPT trained on binary + ternary equations
interactive: bool = True  # True: an ipywidgets explorer at the end (Jupyter, Colab)

# %% tags=["report-hide"]
from modarith.plotting import attention, output
from modarith.reporting import notebook
from modarith.runtime.engine import train
from modarith.runtime.plan import plan_text
from modarith.study import protocol

settings = notebook.settings(profile, device, results_dir, figures_dir, force)
figures = settings.figures / "interpretability"
print(settings)

# %% [markdown]
# ## The runs
#
# No runs of its own: the GPT of the sanity check (4.1), the GPT trained on binary and ternary
# equations (4.4) and the biggest GPT of the model-size grid other than the sanity one (4.5),
# all of the same profile. Missing ones are trained here. What this profile changes from SPEC:

# %%
knobs = protocol.knobs("interpretability", settings.profile)
print(protocol.changes("interpretability", settings.profile).to_string(index=False))

# %%
picks = dict(knobs.picks)  # label -> RunConfig of a GPT trained by an earlier notebook
for label, c in picks.items():
    print(f"{label}: p = {c.p}, orders = {c.orders}, L = {c.num_layers}, d = {c.d_model}, seed = {c.seed}")
configs = list(picks.values())
print(plan_text(configs, settings.results, settings.device, settings.force))

# %%
records = train(configs, results=settings.results, device=settings.device, force=settings.force)
models = {label: attention.load_run(r, settings.results) for label, r in zip(picks, records)}
maps = {}  # (label, equation) -> attention of that GPT on that equation, for the answer below
binary_equation, ternary_equation = f"{binary_lhs} =", f"{ternary_lhs} ="

# %% [markdown]
# ## (a) Attention grids: one heatmap per layer (rows) and head (columns)
#
# Query positions are rows, key positions columns; the number in a cell is its weight.

# %%
label = "sanity GPT"
model, tokenizer, seq_len = models[label]
fig, caption, maps[label, binary_equation] = attention.attention_figure(model, tokenizer, binary_equation, seq_len)
output.show(fig, f"{label}. {caption} {settings.caption()} Seed: Figure 25.", figures, "sanity_gpt")

# %%
label = "orders GPT (binary + ternary)"
model, tokenizer, seq_len = models[label]
for k, equation in enumerate((ternary_equation, binary_equation)):
    fig, caption, maps[label, equation] = attention.attention_figure(model, tokenizer, equation, seq_len)
    output.show(fig, f"{label}. {caption} {settings.caption()} Seed: Figure 26.", figures, f"orders_gpt_{k}")

# %%
label = "model-size GPT"
model, tokenizer, seq_len = models[label]
fig, caption, maps[label, binary_equation] = attention.attention_figure(model, tokenizer, binary_equation, seq_len)
output.show(fig, f"{label} (L = {picks[label].num_layers}, d = {picks[label].d_model}). {caption} "
           f"{settings.caption()} Seed: Figure 27.", figures, "model_size_gpt")

# %% [markdown]
# ## (b) Which tokens receive the attention of the `=` position?
#
# The logits at `=` predict the result. Computed per GPT and equation: how many heads put
# their largest weight on an operand, the operator, `=`, `BOS` or `PAD`, and the mean weight
# on each.

# %%
for (label, _), r in maps.items():
    f = attention.attention_focus(r.weights, r.tokens)
    a, w = f["argmax"], f["mean"]
    verdict = "correct" if r.correct else f"wrong, the true result is {r.expected}"
    others = ", ".join(f"{a[k]} on {k!r}" for k in ("operator", "=", "BOS", "PAD") if a[k])
    print(f"{label}, '{' '.join(r.tokens)}' (predicts {r.predicted}, {verdict}): at the '=' position "
          f"{a['operand']} of {f['heads']} heads (layers × heads) put their largest weight on an operand"
          + (f" ({others})" if others else "")
          + f"; mean weight on the operands {w['operand']:.2f}, on the operator {w['operator']:.2f}, "
          f"on '=' {w['=']:.2f}, on BOS {w['BOS']:.2f}" + (f", on PAD {w['PAD']:.2f}" if "PAD" in r.tokens else "")
          + ".")

# %% [markdown]
# ## Discussion
#
# The prediction of $r$ is made at the position of `=`, and causal attention lets that position
# read $a$, the operator, $b$ and `BOS`. The operator is the same in every equation, so it
# carries no information; a model that computes $a + b$ must bring the two operands to the `=`
# position, either directly (heads of the last layer attending to $a$ and $b$) or in two hops
# (an earlier layer moves $a$ next to $b$). The heatmaps above show which of these the models
# do; the computed summary of (b) lists, per model, how much attention the `=` row gives to
# the operands.

# %% [markdown] tags=["report-hide"]
# ## Explorer
#
# Type an equation, choose the GPT, the layer and the head.

# %% tags=["report-hide"]
if interactive:
    from IPython.display import display

    display(attention.attention_explorer(models, equations=[binary_equation]))
