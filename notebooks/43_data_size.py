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
# # Problem 4.3 — Scaling the data size
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/43_data_size.ipynb)
#
# How much of the $p^2$ equations must the models see to generalise? We train the LSTM and the
# GPT on a growing fraction $r_{\text{train}}$ of the equations and look for the threshold
# between memorisation and generalisation.

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
# `papermill notebooks/43_data_size.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/data_size/; auto: figures/ beside results/
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
figures = settings.figures / "data_size"
print(settings)

# %% [markdown]
# ## The runs
#
# Both models, for every $r_{\text{train}}$ of the grid and every seed.
# Every setting not swept here is at the profile's defaults (SPEC: $p = 31$, $L = 2$,
# $d = 128$, AdamW with learning rate $10^{-3}$ and weight decay 1, batch 512,
# $T = 10^4 + 1$ steps, seeds 0 and 42). What this profile changes from SPEC, computed from
# the configurations below:

# %%
knobs = protocol.knobs("data_size", settings.profile)
print(protocol.changes("data_size", settings.profile).to_string(index=False))

# %%
seeds = notebook.int_list("seeds", seeds, knobs.seeds)  # as typed: 42, [0, 42], "0,42"; None: the profile's
configs = [RunConfig(model=m, r_train=r, seed=s, **knobs.base[m])
           for m in knobs.models for r in knobs.grid["r_train"] for s in seeds]
print(plan_text(configs, settings.results, settings.device, settings.force))

# %%
records = train(configs, results=settings.results, device=settings.device, force=settings.force)
curves = analysis.curves_frame(records, by=["r_train"])
best = analysis.best_frame(records, by=["r_train"])

# %% [markdown]
# ## (a) Training curves
#
# Loss and accuracy on the training and validation sets against the step $t$, one curve per
# $r_{\text{train}}$.

# %%
fig, caption = plots.plot_sweep(curves, "lstm", "r_train")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 2.", figures, "lstm_sweep")

# %%
fig, caption = plots.plot_sweep(curves, "gpt", "r_train")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 3.", figures, "gpt_sweep")

# %% [markdown]
# ## (b) Best values against $r_{\text{train}}$
#
# The best loss and accuracy over the whole run and the first step $t_f$ that reaches them.

# %%
fig, caption = plots.plot_best(best, "lstm", "r_train")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 4.", figures, "lstm_best")

# %%
fig, caption = plots.plot_best(best, "gpt", "r_train")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 5.", figures, "gpt_best")

# %% [markdown]
# ## (c) Which model scales better with the amount of data?
#
# Computed: how the best validation loss moves with $r_{\text{train}}$ for each model, and the
# smallest $r_{\text{train}}$ at which each reaches $\mathcal{A}_{\text{val}} \ge 0.9$.

# %%
for m in analysis.models_in(best):
    rows = analysis.select(best, m, "L_val")
    print(f"{analysis.name(m)}: best L_val {analysis.direction(list(rows['best_mean']))} with "
          f"r_train ({analysis.listing(rows, 'r_train', 'L')}).")
first = {m: analysis.threshold(best, m, "r_train", lambda b: b["A_val"] >= 0.9)[0]
         for m in analysis.models_in(best)}
reached = {m: r for m, r in first.items() if r is not None}
if not reached:
    print("Neither model reaches A_val ≥ 0.9 on this grid.")
elif len(set(reached.values())) == 1 and len(reached) == len(first):
    print(f"Both models first reach A_val ≥ 0.9 at r_train = {analysis.fmt_value(min(reached.values()))}.")
else:
    m = min(reached, key=reached.get)
    print(f"{analysis.name(m)} needs less data: A_val ≥ 0.9 from r_train = "
          f"{analysis.fmt_value(reached[m])} ("
          + ", ".join(f"{analysis.name(k)}: {'never' if v is None else analysis.fmt_value(v)}"
                      for k, v in first.items()) + ").")

# %% [markdown]
# ## (d) Where does each model generalise, and where does it only overfit?
#
# Computed: the smallest $r_{\text{train}}$ with $\mathcal{A}_{\text{val}} \ge 0.9$ and the
# largest with $\mathcal{A}_{\text{train}} \ge 0.9$ but $\mathcal{A}_{\text{val}} \le 0.5$.

# %%
for m in analysis.models_in(best):
    grid = ", ".join(analysis.fmt_value(x) for x in sorted(set(best["r_train"])))
    r, b = analysis.threshold(best, m, "r_train", lambda b: b["A_val"] >= 0.9)
    s_gen = (f"the smallest r_train with A_val ≥ 0.9 is {analysis.fmt_value(r)} "
             f"(A_val = {analysis.fmt(b['A_val'])})" if r is not None
             else "no r_train reaches A_val ≥ 0.9 (none in the grid)")
    r, b = analysis.threshold(best, m, "r_train",
                              lambda b: b["A_train"] >= 0.9 and b["A_val"] <= 0.5, pick=max)
    s_over = (f"the largest r_train that just overfits (A_train ≥ 0.9, A_val ≤ 0.5) is "
              f"{analysis.fmt_value(r)} (A_train = {analysis.fmt(b['A_train'])}, "
              f"A_val = {analysis.fmt(b['A_val'])})" if r is not None
              else "no r_train just overfits (A_train ≥ 0.9 with A_val ≤ 0.5: none in the grid)")
    print(f"{analysis.name(m)} (r_train ∈ {{{grid}}}): {s_gen}; {s_over}.")
# the seed's two claims (Problem 4.3.d, strict inequalities), as 49_fidelity measures them
spec = claims.against_spec(configs, protocol.knobs("data_size", "full"))
for key in ("smallest_r_generalising", "largest_r_overfitting"):
    print(claims.measure(key, records, **spec).line())

# %% [markdown]
# ## Discussion
#
# With few training equations the models can memorise them all but have no reason to find the
# rule: validation accuracy stays near $1/p$. Above some fraction, the rule becomes the
# cheaper solution under weight decay and validation accuracy follows training accuracy, after
# a delay that shrinks as $r_{\text{train}}$ grows. The answers to (c) and (d) above locate
# that threshold for each model from these runs; the $t_f(\mathcal{A}_{\text{val}})$ curve of
# (b) shows how fast each model generalises once it does. A threshold measured on a coarse
# grid (the quick profile) is only known to lie between two grid points.
