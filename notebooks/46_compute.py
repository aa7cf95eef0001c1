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
# # Problem 4.6 — Scaling the compute
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/46_compute.ipynb)
#
# How do the batch size $B$ and the training budget $T$ trade off? We train with several batch
# sizes and read every run again as if it had stopped at $T_{\max} = \alpha T$.

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
# `papermill notebooks/46_compute.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/compute/; auto: figures/ beside results/
force: bool = False  # True retrains runs that are already stored
seeds: list = None  # seeds per grid point, e.g. [0, 42, 1, 2]; None: the profile's

# %% tags=["report-hide"]
from modarith.models.config import RunConfig
from modarith.plotting import output, plots
from modarith.reporting import notebook
from modarith.runtime.engine import train
from modarith.runtime.plan import plan_text
from modarith.study import analysis, protocol

settings = notebook.settings(profile, device, results_dir, figures_dir, force)
figures = settings.figures / "compute"
print(settings)

# %% [markdown]
# ## The runs
#
# Both models for every batch size $B$ of the grid, every seed, for the profile's $T$ (SPEC:
# $2 \cdot 10^4 + 1$ steps); the best values are then sliced at $T_{\max} = \alpha T$ for every
# $\alpha$ of the profile.
# Every setting not swept here is at the profile's defaults (SPEC: $p = 31$, $L = 2$,
# $d = 128$, AdamW with learning rate $10^{-3}$ and weight decay 1, batch 512,
# $T = 10^4 + 1$ steps, seeds 0 and 42). What this profile changes from SPEC, computed from
# the configurations below:

# %%
knobs = protocol.knobs("compute", settings.profile)
print(protocol.changes("compute", settings.profile).to_string(index=False))

# %%
seeds = notebook.int_list("seeds", seeds, knobs.seeds)  # as typed: 42, [0, 42], "0,42"; None: the profile's
configs = [RunConfig(model=m, batch_size=B, seed=s, **knobs.base[m])
           for m in knobs.models for B in knobs.grid["batch_size"] for s in seeds]
print(plan_text(configs, settings.results, settings.device, settings.force))

# %%
records = train(configs, results=settings.results, device=settings.device, force=settings.force)
curves = analysis.curves_frame(records, by=["batch_size"])
best = analysis.best_frame(records, by=["batch_size"], alphas=knobs.alphas, compute=True)

# %% [markdown]
# ## (a) Training curves, one curve per $B$

# %%
fig, caption = plots.plot_sweep(curves, "lstm", "batch_size")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 19.", figures, "lstm_sweep")

# %%
fig, caption = plots.plot_sweep(curves, "gpt", "batch_size")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 20.", figures, "gpt_sweep")

# %% [markdown]
# ## (b) Best values over $t \le \alpha T$ against $B$, one curve per $\alpha$
#
# The non-embedding training compute is $C \approx P \cdot B \cdot T$ (with $B$ capped at the
# training-set size: a larger batch holds the whole set once).

# %%
fig, caption = plots.plot_best(best, "lstm", "batch_size", hue="alpha")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 21.", figures, "lstm_alpha")

# %%
fig, caption = plots.plot_best(best, "gpt", "batch_size", hue="alpha")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 22.", figures, "gpt_alpha")

# %% [markdown]
# ## (c) How do $B$ and $\alpha$ (the compute) affect $\mathcal{L}_{\text{val}}$ and $\mathcal{A}_{\text{val}}$?
#
# Computed: per $B$, the smallest $\alpha$ (and compute $C$) with
# $\mathcal{A}_{\text{val}} \ge 0.9$; at the largest $\alpha$, the direction of the best
# validation metrics with $B$; per $B$, how much the best $\mathcal{L}_{\text{val}}$ improves
# from the smallest to the largest $\alpha$.

# %%
for m in analysis.models_in(best):
    av, lv = analysis.select(best, m, "A_val"), analysis.select(best, m, "L_val")
    needs = []
    for B in sorted(set(av["batch_size"])):
        ok = av[(av["batch_size"] == B) & (av["best_mean"] >= 0.9)].sort_values("alpha")
        needs.append(f"B = {B}: not within α = 1" if ok.empty else
                     f"B = {B}: α = {analysis.fmt_value(ok.iloc[0]['alpha'])}, C ≈ {ok.iloc[0]['C']:.2e}")
    print(f"{analysis.name(m)}: smallest α at which A_val ≥ 0.9 — " + "; ".join(needs) + ".")
    amax = lv["alpha"].max()
    full_l = lv[lv["alpha"] == amax].sort_values("batch_size")
    full_a = av[av["alpha"] == amax].sort_values("batch_size")
    lowest = int(full_l.loc[full_l["best_mean"].idxmin(), "batch_size"])
    print(f"{analysis.name(m)} at α = {analysis.fmt_value(amax)}: best L_val "
          f"{analysis.direction(list(full_l['best_mean']))} with B ({analysis.listing(full_l, 'batch_size', 'L')}; "
          f"lowest at B = {lowest}), best A_val {analysis.direction(list(full_a['best_mean']))} with B "
          f"({analysis.listing(full_a, 'batch_size', 'A')}).")
    gains = []
    for B in sorted(set(lv["batch_size"])):
        rows = lv[lv["batch_size"] == B].sort_values("alpha")
        gains.append(f"B = {B}: {analysis.fmt(rows.iloc[0]['best_mean'], 'L')} → "
                     f"{analysis.fmt(rows.iloc[-1]['best_mean'], 'L')}")
    print(f"{analysis.name(m)}: from α = {analysis.fmt_value(lv['alpha'].min())} to "
          f"{analysis.fmt_value(amax)} the best L_val goes " + "; ".join(gains) + ".")

# %% [markdown]
# ## Discussion
#
# A larger batch gives a less noisy gradient per step but costs proportionally more compute per
# step; at a fixed number of steps it also means more passes over the (small) training set. A
# growing $\alpha$ can only improve the best values (the best is taken over a longer window),
# so the question of (c) is how fast they improve, and for which $B$. The computed sentences
# above state, for these runs, how the best validation metrics move with $B$ and with $\alpha$.
