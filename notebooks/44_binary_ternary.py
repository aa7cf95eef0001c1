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
# # Problem 4.4 — Binary and ternary operations
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/44_binary_ternary.ipynb)
#
# The models now see binary equations $a + b = r$ and ternary ones $a + b + c = r$ (mod $p$,
# with $p = 11$ in SPEC so that both sets have a manageable size). Is one order learned before
# the other?

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
# `papermill notebooks/44_binary_ternary.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/orders/; auto: figures/ beside results/
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
figures = settings.figures / "orders"
print(settings)

# %% [markdown]
# ## The runs
#
# Both models on all $p^2$ binary and $p^3$ ternary equations (binary ones padded on the right
# to the ternary length), each order split with $r_{\text{train}} = 0.5$ (stratified), every
# seed.
# Every setting not swept here is at the profile's defaults (SPEC: $p = 31$, $L = 2$,
# $d = 128$, AdamW with learning rate $10^{-3}$ and weight decay 1, batch 512,
# $T = 10^4 + 1$ steps, seeds 0 and 42). What this profile changes from SPEC, computed from
# the configurations below:

# %%
knobs = protocol.knobs("orders", settings.profile)
print(protocol.changes("orders", settings.profile).to_string(index=False))

# %%
seeds = notebook.int_list("seeds", seeds, knobs.seeds)  # as typed: 42, [0, 42], "0,42"; None: the profile's
configs = [RunConfig(model=m, seed=s, **knobs.base[m]) for m in knobs.models for s in seeds]
print(plan_text(configs, settings.results, settings.device, settings.force))

# %%
records = train(configs, results=settings.results, device=settings.device, force=settings.force)
curves = analysis.curves_frame(records)
best = analysis.best_frame(records, quantities=analysis.ORDER_QUANTITIES)

# %% [markdown]
# ## (a) Training curves over all equations

# %%
fig, caption = plots.plot_train_val(curves, ["lstm", "gpt"])
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 6.", figures, "train_val")

# %% [markdown]
# ## (b) Per order: binary and ternary equations separately

# %%
fig, caption = plots.plot_train_val(curves, ["lstm"], orders=(2, 3))
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 7.", figures, "lstm_orders")

# %%
fig, caption = plots.plot_train_val(curves, ["gpt"], orders=(2, 3))
output.show(fig, f"{caption} {settings.caption()} Seed: Figure 8.", figures, "gpt_orders")

# %% [markdown]
# ## (c) Which order is learned faster?
#
# Computed: the best validation accuracy of each order and the first step $t_f$ reaching it;
# the timing is compared only when both orders generalise ($\mathcal{A}_{\text{val}} \ge 0.9$).

# %%
for m in analysis.models_in(best):
    b = analysis.select(best, m, "A_val_o2").iloc[0]
    t = analysis.select(best, m, "A_val_o3").iloc[0]
    desc = (f"binary best A_val = {analysis.fmt(b['best_mean'])} at t_f = {analysis.fmt(b['tf_mean'], 'tf')}, "
            f"ternary {analysis.fmt(t['best_mean'])} at t_f = {analysis.fmt(t['tf_mean'], 'tf')}")
    if t["best_mean"] < 0.9 and b["best_mean"] < 0.9:
        verdict = "neither order generalises (A_val < 0.9), so the timing is not comparable"
    elif t["best_mean"] < 0.9:
        verdict = "ternary does not generalise (A_val < 0.9) while binary does"
    elif b["best_mean"] < 0.9:
        verdict = "binary does not generalise (A_val < 0.9) while ternary does"
    elif t["tf_mean"] != b["tf_mean"]:
        verdict = (f"ternary reaches its best validation accuracy "
                   f"{analysis.fmt(abs(b['tf_mean'] - t['tf_mean']), 'dt')} steps "
                   f"{'earlier' if t['tf_mean'] < b['tf_mean'] else 'later'} than binary")
    else:
        verdict = "both orders reach their best validation accuracy at the same step"
    lb = analysis.select(best, m, "L_val_o2").iloc[0]["best_mean"]
    lt = analysis.select(best, m, "L_val_o3").iloc[0]["best_mean"]
    print(f"{analysis.name(m)}: {verdict} ({desc}); best L_val binary {analysis.fmt(lb, 'L')} "
          f"vs ternary {analysis.fmt(lt, 'L')}.")
# the seed's claim (ternary learned faster), as 49_fidelity measures it: the first step with
# A_val ≥ 0.9 per order, against one evaluation interval + the seed-to-seed spread
print(claims.ternary_faster(records, **claims.against_spec(configs, protocol.knobs("orders", "full"))).line())

# %% [markdown]
# ## Discussion
#
# One might expect binary equations, shorter and fewer, to be learned first. But the ternary
# set is $p$ times larger, so with the same $r_{\text{train}}$ the models see many more
# ternary examples of the same group structure, and a model that has found the rule for
# $a + b$ can reuse it for $(a + b) + c$. The per-order curves of (b) and the computed
# comparison of (c) answer the question for these runs.
