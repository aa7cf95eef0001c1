# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the report — why and when it groks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/v0.1.0/notebooks/50_beyond.ipynb)
#
# The seed shows *what* happens: memorisation, then late generalisation. Here we ask *why* and
# *when*. Why: Nanda et al.'s progress measures (Fourier key frequencies of the number
# embeddings, restricted and excluded loss) over weight snapshots, for the GPT and for the
# LSTM. When: the distribution over seeds of the time to grok (first step with
# $\mathcal{A}_{\text{val}} \ge 0.99$), with plain AdamW, with the Grokfast-EMA gradient filter
# at the same learning rate, and with plain AdamW at a 3× learning rate.

# %% tags=["report-hide"]
# Colab only: install modarith, pinned, with what this notebook imports. Elsewhere: nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO_URL = os.environ.get("MODARITH_REPO_URL", "https://github.com/modarith/modarith")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                          f"modarith[notebook] @ git+{REPO_URL}@v0.1.0"], capture_output=True, text=True)
    if pip.returncode != 0:  # one message, not pip's output followed by an ImportError below
        why = next((line.strip() for line in pip.stderr.splitlines()
                    if line.strip().lower().startswith(("error:", "fatal:"))), f"pip exit code {pip.returncode}")
        raise SystemExit(f"modarith v0.1.0 could not be installed from {REPO_URL} ({why}). Set "
                         "MODARITH_REPO_URL to a repository that has the tag v0.1.0, e.g. os.environ["
                         "'MODARITH_REPO_URL'] = 'https://github.com/<you>/modarith', then run this cell again.")

# %% [markdown]
# ## Parameters
#
# Change them here, or run headless:
# `papermill notebooks/50_beyond.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device = "auto"  # auto | cpu | cuda | mps
results_dir = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir = "auto"  # PNG figures go to <figures_dir>/beyond/; auto: figures/ beside results/
force = False  # True retrains runs that are already stored

# %%
import dataclasses

import pandas as pd
from modarith import notebook, plots, progress_measures, progress_plots, protocol
from modarith.config import RunConfig
from modarith.engine import train
from modarith.grok import grok_step, grok_summary, speedup_sentence, time_to_grok

settings = notebook.settings(profile, device, results_dir, figures_dir, force)
figures = settings.figures / "beyond"
print(settings)

# %% [markdown]
# ## The knobs
#
# In `full` and `smoke` the models are the sanity-check models of notebook 41
# (`protocol.knobs("sanity", profile)`; `full`: SPEC's defaults, $p = 31$, $L = 2$, $d = 128$,
# learning rate $10^{-3}$, $T = 10^4 + 1$). In `quick` the sanity check is SPEC's exact
# protocol, far too long for 48 time-to-grok runs on a CPU, so this notebook sets smaller
# models of its own, below: $p = 23$, $d = 64$, $L = 2$, GPT learning rate
# $3 \cdot 10^{-3}$ for 2301 steps, LSTM $10^{-2}$ for 4001 steps (smaller settings, one layer
# with $d = 32$, did not grok within 3000 steps on a 2-core CPU, with or without Grokfast).
# Even these cost far more than ten minutes on 2 CPU cores (about 650–770 CPU seconds per GPT
# group of 8 seeds, measured); on a GPU the `full` profile is the one to run. Added here: the
# weight snapshots of the progress-measure runs, the seeds of each time-to-grok distribution,
# Grokfast's $(\alpha, \lambda)$ (the values its authors use for modular arithmetic), the
# learning-rate factor of the plain-AdamW comparison, and a finer evaluation grid for the
# time-to-grok runs.

# %%
sanity_knobs = protocol.knobs("sanity", settings.profile)
SHARED = {  # the same in every profile
    "seeds": list(range(8)),  # seeds of each time-to-grok distribution
    "grokfast": {"grokfast_alpha": 0.98, "grokfast_lamb": 2.0},  # (α, λ) of the Grokfast variant
    "lr_factor": 3.0,  # learning-rate factor of the plain-AdamW comparison
}
QUICK_MODELS = {  # quick only: smaller than the sanity check's exact protocol (see above)
    "gpt": {"p": 23, "d_model": 64, "lr": 3e-3, "steps": 2_301},
    "lstm": {"p": 23, "d_model": 64, "lr": 1e-2, "steps": 4_001},
}
KNOBS = {
    "full": {"snapshots": {"snapshots_log": 40, "snapshot_every": 500}, "grok_eval": {"eval_every": 50}},
    "quick": {"snapshots": {"snapshots_log": 24, "snapshot_every": 250}, "grok_eval": {"eval_every": 50},
              "models": QUICK_MODELS},
    "smoke": {"snapshots": {"snapshots_log": 5, "snapshot_every": 0}, "grok_eval": {}},
}
knobs = {**SHARED, **KNOBS[settings.profile]}
base = {m: knobs.get("models", sanity_knobs.base)[m] for m in ("gpt", "lstm")}
for m in base:
    print(f"{m}: {base[m] or 'SPEC defaults'}; snapshots {knobs['snapshots']}; seeds {knobs['seeds']}; "
          f"Grokfast {knobs['grokfast']}; 3x lr = {knobs['lr_factor']}")

# %% [markdown]
# ## (a) Progress measures beside the accuracy curves
#
# The sanity-check run of each model (seed 0) is retrained with weight snapshots at log-spaced
# steps. For each snapshot: the Fourier spectrum of the number-token embeddings over
# $\mathbb{Z}/p\mathbb{Z}$, the fraction of its (non-constant) energy in the key frequencies
# (those of the last snapshot holding 90 % of it), the Gini coefficient of the spectrum, and
# the loss of the result token on the training set with the logits restricted to the key
# frequency terms $\cos/\sin(w_k(a+b))$ plus a constant (restricted loss) or with those terms
# removed (excluded loss). Is the structure there before $\mathcal{A}_{\text{val}}$ rises?

# %%
sanity = {m: RunConfig(model=m, seed=0, **base[m], **knobs["snapshots"]) for m in base}
records = dict(zip(sanity, train(list(sanity.values()), results=settings.results,
                                 device=settings.device, force=settings.force)))
measures, keys = {}, {}
for m, cfg in sanity.items():
    snaps = progress_measures.load_snapshots(cfg, settings.results)
    spectrum = progress_measures.fourier_spectrum(progress_measures.number_embeddings(
        {n: t[-1] for n, t in snaps["params"].items()}, cfg))
    keys[m] = progress_measures.key_frequencies(spectrum)
    measures[m] = progress_measures.progress_frame(cfg, snaps, keys=keys[m])

# %%
for m in sanity:
    fig, caption = progress_plots.plot_progress(records[m].history, measures[m], keys[m],
                                                f"{m.upper()} (seed 0)")
    plots.show(fig, f"{caption} {settings.caption()}", figures, f"{m}_progress")


# %% [markdown]
# Computed: at which step each measure settles, against the step at which the validation
# accuracy reaches 0.99.

# %%
def settle_step(frame, measure, fraction=0.9):
    """First snapshot step after which the measure stays within 1 − fraction of its final change."""
    sub = frame[frame.measure == measure].sort_values("step")
    v = sub.value.to_numpy()
    target = v[0] + fraction * (v[-1] - v[0])
    inside = (v - target) * (v[-1] - v[0]) >= 0
    idx = next(i for i in range(len(v)) if inside[i:].all())
    return int(sub.step.iloc[idx])


for m in sanity:
    t = grok_step(records[m].history)
    when = f"reaches 0.99 at t = {int(t)}" if t != float("inf") else "does not reach 0.99 within the run"
    s_frac = settle_step(measures[m], "top_k_fraction")
    s_exc = settle_step(measures[m], "excluded_loss")
    s_res = settle_step(measures[m], "restricted_loss")
    print(f"{m.upper()}: A_val {when}; the key-frequency energy fraction has done 90 % "
          f"of its change by t = {s_frac}, the excluded loss by t = {s_exc}, the restricted loss by "
          f"t = {s_res} (snapshot resolution).")

# %% [markdown]
# ## (b) When does it grok? Time to grok over seeds
#
# Each variant trains its seeds as one vectorised group. Wall seconds are the group's wall time
# scaled by step / T (the time at which the group had reached that step; per run, divide by
# the number of seeds). Confidence intervals: bootstrap of the median over seeds (2000
# resamples, 95 %). A seed that never groks counts as ∞.

# %%
VARIANTS = {"AdamW": {}, "AdamW + Grokfast": knobs["grokfast"], "AdamW, 3× lr": "lr"}
frames = []
for m in base:
    cfg = RunConfig(model=m, **{**base[m], **knobs["grok_eval"]})
    for name, change in VARIANTS.items():
        c = dataclasses.replace(cfg, lr=cfg.lr * knobs["lr_factor"]) if change == "lr" \
            else dataclasses.replace(cfg, **change)
        frame, _ = time_to_grok(c, knobs["seeds"], results=settings.results, device=settings.device,
                                force=settings.force, progress=True)
        frames.append(frame.assign(variant=name))
grok = pd.concat(frames, ignore_index=True)
summary = grok_summary(grok, by=("model", "variant"))
summary[["model", "variant", "n", "n_grokked", "median_step", "step_ci_low", "step_ci_high",
         "median_wall_s", "median_run_wall_s", "frac_within"]]

# %%
fig, caption = progress_plots.plot_time_to_grok(grok)
plots.show(fig, f"{caption} {settings.caption()}", figures, "time_to_grok")

# %% [markdown]
# Computed: the speed-up of Grokfast over AdamW at the same learning rate, and AdamW at a 3×
# learning rate (a larger step alone), per model.

# %%
for m in base:
    adamw = summary[(summary.model == m) & (summary.variant == "AdamW")].iloc[0]
    for other in ("AdamW + Grokfast", "AdamW, 3× lr"):
        row = summary[(summary.model == m) & (summary.variant == other)].iloc[0]
        print(f"{m.upper()} — " + speedup_sentence(adamw, row, "AdamW", other))
    print()

# %% [markdown]
# ## (c) Fourier heatmaps of the trained embeddings
#
# The number embeddings of the progress-measure runs at their last step, expanded on the
# Fourier basis of $\mathbb{Z}/p\mathbb{Z}$: a model that uses the Fourier algorithm puts its
# embedding dimensions on a few frequencies (bright rows), the others stay dark.

# %%
final = {f"{m.upper()} (seed 0)": progress_measures.number_embeddings(
    {n: t[-1] for n, t in progress_measures.load_snapshots(cfg, settings.results)["params"].items()}, cfg)
    for m, cfg in sanity.items()}
fig, caption = progress_plots.plot_fourier_heatmaps(final)
plots.show(fig, f"{caption} {settings.caption()}", figures, "fourier_heatmaps")
for m in sanity:
    spec = progress_measures.fourier_spectrum(final[f"{m.upper()} (seed 0)"])
    print(f"{m.upper()} seed 0: key frequencies (90 % of the energy) {keys[m]}, top-3 "
          f"{progress_measures.key_frequencies(spec, n=3)}, Gini {progress_measures.gini(spec[1:]):.2f}, "
          f"energy in the top 3 {progress_measures.top_k_fraction(spec, 3):.0%}.")

# %% [markdown]
# ## Discussion
#
# Nanda et al. found, for a one-layer transformer on $p = 113$, that the Fourier structure
# forms gradually during the memorisation plateau (the excluded loss rises while the
# restricted loss falls) and that the sudden rise of validation accuracy is the *clean-up*:
# weight decay removes the memorising components. Panel (a) asks the same of the seed's
# models, including the LSTM, whose embeddings no published tool inspects; the printed
# settle steps say whether the structure precedes $\mathcal{A}_{\text{val}}$ in these runs.
# Panel (b) separates Grokfast's low-pass filter from a plain larger step: if the 3×
# learning rate baseline groks as early as Grokfast, the filter's benefit is mostly an
# effective step-size increase. The medians come with bootstrap intervals over the seeds, so a
# difference is only read as one when the intervals do not overlap. In the reduced profiles the
# numbers are those of smaller models and shorter runs (see the knobs above).
