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
# # Problem 4.7 — Regularization
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/47_regularization.ipynb)
#
# Weight decay is the usual explanation of grokking: among all solutions that fit the
# training set it favours the one with the smallest weights, which is the general rule. We vary
# it for the LSTM and follow the parameter norm $\lVert \theta^{(t)} \rVert_2$.

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
# `papermill notebooks/47_regularization.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/regularization/; auto: figures/ beside results/
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
figures = settings.figures / "regularization"
print(settings)

# %% [markdown]
# ## The runs
#
# The LSTM only, for every weight decay of the grid and every seed, for the profile's $T$
# (SPEC: $4 \cdot 10^4 + 1$ steps); $\lVert \theta^{(t)} \rVert_2$ is logged at every evaluation.
# Every setting not swept here is at the profile's defaults (SPEC: $p = 31$, $L = 2$,
# $d = 128$, AdamW with learning rate $10^{-3}$ and weight decay 1, batch 512,
# $T = 10^4 + 1$ steps, seeds 0 and 42). What this profile changes from SPEC, computed from
# the configurations below:

# %%
knobs = protocol.knobs("regularization", settings.profile)
print(protocol.changes("regularization", settings.profile).to_string(index=False))

# %%
seeds = notebook.int_list("seeds", seeds, knobs.seeds)  # as typed: 42, [0, 42], "0,42"; None: the profile's
configs = [RunConfig(model=m, weight_decay=w, seed=s, **knobs.base[m])
           for m in knobs.models for w in knobs.grid["weight_decay"] for s in seeds]
print(plan_text(configs, settings.results, settings.device, settings.force))

# %%
records = train(configs, results=settings.results, device=settings.device, force=settings.force)
curves = analysis.curves_frame(records, by=["weight_decay"])
best = analysis.best_frame(records, by=["weight_decay"])

# %% [markdown]
# ## (a) Training curves and the parameter norm, one curve per weight decay

# %%
fig, caption = plots.plot_sweep(curves, "lstm", "weight_decay",
                                metrics=("train_loss", "val_loss", "train_acc", "val_acc", "param_norm"))
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 23.", figures, "lstm_sweep")

# %% [markdown]
# ## (b) Best values and $t_f$ against the weight decay

# %%
fig, caption = plots.plot_best(best, "lstm", "weight_decay")
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 24.", figures, "lstm_best")

# %% [markdown]
# ## (c) How does the weight decay change $t_f(\mathcal{L}_{\text{val}})$ and $t_f(\mathcal{A}_{\text{val}})$?
#
# Computed: the direction of $t_f(\mathcal{A}_{\text{val}})$ with the weight decay
# (descriptive; the seed's claim is measured with its noise in (d) below), the best validation metrics, and the first step with
# $\mathcal{A}_{\text{val}} \ge 0.9$ per weight decay.

# %%
norms = analysis.norm_around_generalisation(records, by=["weight_decay"])
for m in analysis.models_in(best):
    av = analysis.select(best, m, "A_val").sort_values("weight_decay")
    lv = analysis.select(best, m, "L_val").sort_values("weight_decay")
    wd, tf = list(av["weight_decay"]), list(av["tf_mean"])
    never = [analysis.fmt_value(w) for w, a in zip(wd, av["best_mean"]) if a < 0.9]
    note = (f"; weight decay {', '.join(never)} never reaches A_val ≥ 0.9, so its t_f marks the best "
            "of a run that did not generalise" if never else "")
    print(f"{analysis.name(m)}: t_f(A_val) {analysis.direction(tf)} with weight decay "
          f"({analysis.listing(av, 'weight_decay', 'tf', 'tf_mean')}){note}.")
    print(f"{analysis.name(m)}: best L_val {analysis.direction(list(lv['best_mean']))} with weight decay "
          f"({analysis.listing(lv, 'weight_decay', 'L')}); best A_val "
          f"{analysis.direction(list(av['best_mean']))} ({analysis.listing(av, 'weight_decay', 'A')}).")
    g = norms[norms["model"] == m].groupby("weight_decay")
    t_gen = {w: (float("nan") if rows["t_gen"].isna().any() else rows["t_gen"].mean()) for w, rows in g}
    meaning = {"decreases": "comes earlier with every increase of the weight decay",
               "increases": "comes later with every increase of the weight decay",
               "is unchanged": "does not depend on the weight decay",
               }.get(analysis.direction(list(t_gen.values()), nan_is_never=True),
                     "is not monotone in the weight decay")
    listing = ", ".join(f"{analysis.fmt_value(w)}: {'never' if t != t else f'{t:.0f}'}" for w, t in t_gen.items())
    print(f"{analysis.name(m)}: the first step with A_val ≥ 0.9 ({listing}) {meaning}.")

# %% [markdown]
# ## (d) How does $\lVert \theta^{(t)} \rVert_2$ behave before, during and after generalisation?
#
# Computed per weight decay: the norm at initialisation, its peak before
# $t_f(\mathcal{A}_{\text{val}})$, its value at $t_f(\mathcal{A}_{\text{val}})$ and at the end.

# %%
for m in sorted(set(norms["model"])):
    g = norms[norms["model"] == m].groupby("weight_decay")
    parts = []
    for w, rows in g:
        drop = rows["drop"].mean()
        parts.append(f"weight decay {analysis.fmt_value(w)}: {rows['norm_init'].mean():.1f} at init, peak "
                     f"{rows['norm_peak'].mean():.1f} at step {rows['step_peak'].mean():.0f}, "
                     f"{rows['norm_at_tf'].mean():.1f} at t_f(A_val) = {rows['tf_A_val'].mean():.0f} "
                     f"({-100 * drop:+.0f}% from the peak), final {rows['norm_final'].mean():.1f}")
    print(f"{analysis.name(m)}, ‖θ‖₂ of all parameters per weight decay (descriptive; the peak is "
          "the largest value before t_f(A_val), step 0 included): " + "; ".join(parts) + ".")
# the seed's claims 10 and 11 (LSTM), measured as in 49_fidelity: t_f against one evaluation
# interval + the seed spread, censored at T; the share of the norm's fall after t_gen, not
# tested where a horizon shorter than SPEC's could still change it
if "lstm" in knobs.models:
    spec = claims.against_spec(configs, protocol.knobs("regularization", "full"))
    for key in ("weight_decay_time", "norm_rise_fall"):
        print(claims.measure(key, records, **spec).line())

# %% [markdown]
# ## Discussion
#
# AdamW shrinks every weight by a factor $(1 - \eta \lambda)$ per step, so a memorising
# solution, which needs large weights, is under constant pressure while a generalising one
# can be smaller. If that is the mechanism, the norm should rise while the model memorises,
# fall when validation accuracy rises, and a larger $\lambda$ should make the transition
# earlier. The computed sentences above test each of these statements on these runs.
