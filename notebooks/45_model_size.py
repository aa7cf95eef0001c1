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
# # Problem 4.5 — Scaling the model size
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/45_model_size.ipynb)
#
# How do depth $L$ and width $d$ change memorisation and generalisation, and which
# architecture makes better use of more parameters?

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
# `papermill notebooks/45_model_size.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/model_size/; auto: figures/ beside results/
force: bool = False  # True retrains runs that are already stored
seeds: list = None  # seeds per grid point, e.g. [0, 42, 1, 2]; None: the profile's

# %% tags=["report-hide"]
from modarith.models.config import RunConfig
from modarith.plotting import output, plots
from modarith.reporting import notebook
from modarith.runtime.engine import train
from modarith.runtime.plan import plan_text
from modarith.study import analysis, claims, protocol

settings = notebook.settings(profile, device, results_dir, figures_dir, force)
figures = settings.figures / "model_size"
print(settings)

# %% [markdown]
# ## The runs
#
# Both models for every $(L, d)$ of the grid (embedding size = hidden size = $d$), every seed.
# Every setting not swept here is at the profile's defaults (SPEC: $p = 31$, $L = 2$,
# $d = 128$, AdamW with learning rate $10^{-3}$ and weight decay 1, batch 512,
# $T = 10^4 + 1$ steps, seeds 0 and 42). What this profile changes from SPEC, computed from
# the configurations below:

# %%
knobs = protocol.knobs("model_size", settings.profile)
print(protocol.changes("model_size", settings.profile).to_string(index=False))

# %%
seeds = notebook.int_list("seeds", seeds, knobs.seeds)  # as typed: 42, [0, 42], "0,42"; None: the profile's
configs = [RunConfig(model=m, num_layers=L, d_model=d, seed=s, **knobs.base[m])
           for m in knobs.models for L in knobs.grid["num_layers"] for d in knobs.grid["d_model"]
           for s in seeds]
print(plan_text(configs, settings.results, settings.device, settings.force))

# %%
records = train(configs, results=settings.results, device=settings.device, force=settings.force)
curves = analysis.curves_frame(records, by=["num_layers", "d_model"])
best = analysis.best_frame(records, by=["num_layers", "d_model"], params=True)

# %% [markdown]
# ## (a) Training curves: one figure per depth $L$, one curve per width $d$
#
# The seed draws one figure per model and $L$ (Figures 9–11 LSTM, 12–14 GPT); one cell per
# model draws them for the depths of the grid.

# %%
for i, L in enumerate(knobs.grid["num_layers"]):
    fig, caption = plots.plot_sweep(curves, "lstm", "d_model", fixed={"num_layers": L})
    output.show(fig, f"{caption} {settings.caption()} Seed: Figure {9 + i}.", figures, f"lstm_L{L}")

# %%
for i, L in enumerate(knobs.grid["num_layers"]):
    fig, caption = plots.plot_sweep(curves, "gpt", "d_model", fixed={"num_layers": L})
    output.show(fig, f"{caption} {settings.caption()} Seed: Figure {12 + i}.", figures, f"gpt_L{L}")

# %% [markdown]
# ## (b) Best values against $(L, d)$ and against the parameter count $P$

# %%
fig, caption = plots.plot_best(best, "lstm", "d_model", hue="num_layers")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 15.", figures, "lstm_by_size")

# %%
fig, caption = plots.plot_best(best, "gpt", "d_model", hue="num_layers")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 16.", figures, "gpt_by_size")

# %%
fig, caption = plots.plot_best(best, "lstm", "P")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 17.", figures, "lstm_params")

# %%
fig, caption = plots.plot_best(best, "gpt", "P")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 18.", figures, "gpt_params")

# %% [markdown]
# ## (c) How do $\mathcal{L}_{\text{val}}$ and $\mathcal{A}_{\text{val}}$ change with $d$ at fixed $L$, and with $L$ at fixed $d$? Which model scales better with $P$?
#
# Computed: the direction of each best validation metric along each axis of the grid
# (descriptive), then the seed's four trends measured by `modarith.study.claims`: the log ratio of
# the best $\mathcal{L}_{\text{val}}$ between the grid's end points against the seed-to-seed
# spread, with a verdict.

# %%
for m in analysis.models_in(best):
    for vary, fixed in (("d_model", "num_layers"), ("num_layers", "d_model")):
        for fv in sorted(set(best[fixed])):
            parts = []
            for q in ("L_val", "A_val"):
                rows = analysis.select(best, m, q, **{fixed: fv}).sort_values(vary)
                parts.append(f"best {q} {analysis.direction(list(rows['best_mean']))} "
                             f"({analysis.listing(rows, vary, q)})")
            print(f"{analysis.name(m)} at {analysis.sym(fixed)} = {analysis.fmt_value(fv)}, as "
                  f"{analysis.sym(vary)} grows: " + "; ".join(parts) + ".")
# the seed's four trends (claims 6-9), each against the seed-to-seed noise on a log scale
spec = claims.against_spec(configs, protocol.knobs("model_size", "full"))
for key in ("gpt_width", "lstm_width", "lstm_depth", "gpt_depth"):
    if key.split("_")[0] in knobs.models:
        print(claims.measure(key, records, **spec).line())

# %% [markdown]
# ## Discussion
#
# $P$ grows like $d^2$ for both models and linearly in $L$ (Problems 1 and 2.10), but more
# parameters do not mean better generalisation on a task this small: a larger model memorises
# faster, and whether it also generalises earlier depends on how weight decay and the optimiser
# interact with its scale. The computed sentences above give, for these runs, the direction of
# $\mathcal{L}_{\text{val}}$ and $\mathcal{A}_{\text{val}}$ along each axis; the plots against
# $P$ put both architectures on one axis.
