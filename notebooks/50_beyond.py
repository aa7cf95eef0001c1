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
# # Beyond the report — what sets the time to grok, and can ⊥Grad or StableMax replace weight decay?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/50_beyond.ipynb)
#
# The seed shows memorisation, then late generalisation, at one learning rate η and one weight
# decay λ. Two questions its runs cannot answer:
#
# 1. **Does η·λ alone set the time to grok?** With decoupled weight decay each step shrinks the
#    weights by the factor 1 − η·λ; gradient flow with small weight decay (Lyu et al. 2024) says
#    the time to grok scales like 1/(η·λ). We fit $\log t = a - b\,\log(\eta\lambda) + c\,\log\eta$:
#    that law is $b = 1$, $c = 0$.
# 2. **Can ⊥Grad or StableMax replace weight decay?** Prieto et al. (2025) claim that either lets
#    a model grok *without* weight decay. We run them at λ = 0.
#
# The design: fixed arms (no learning rate tuned on any seed), every arm on the same seeds (a
# seed fixes the split and the initial weights, so arms are paired), a positive control that
# must grok and a negative control (λ = 0) that must not, shown before any question is
# answered. **Grokked** = validation accuracy at or above the bar for W consecutive
# evaluations (W is printed below); the time to grok is the first step of that window; a run
# that never holds it is *censored* at its last step T (Kaplan–Meier, `modarith.study.survival`).

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
# `papermill notebooks/50_beyond.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (SPEC) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/beyond/; auto: figures/ beside results/
force: bool = False  # True retrains runs that are already stored

# %% tags=["report-hide"]
import math

import pandas as pd
from modarith.plotting import output, progress_plots
from modarith.reporting import notebook
from modarith.runtime.engine import train
from modarith.runtime.plan import plan_text
from modarith.runtime.store import Store
from modarith.study import compare, progress_measures, protocol
from modarith.study.grok import fit_time_law
from modarith.study.survival import fmt_p, fmt_steps

settings = notebook.settings(profile, device, results_dir, figures_dir, force)
figures = settings.figures / "beyond"
print(settings)

# %% [markdown]
# ## The knobs and the grid
#
# All knobs are data in `modarith.study.protocol` (`protocol.beyond_knobs(profile)`): the base run,
# the paired seeds, the centre $(\eta, \lambda)$, the factors that make the other arms, the bar
# and the window. `knobs.arms()` expands them into the arms below; the build's plan counts the
# same runs. Every arm shares one architecture and schedule, so they train as vectorised groups.
#
# How the quick scale was chosen (pilots on this 2-core machine, one thread per process, full
# batch, $p = 31$, $r_{\text{train}} = 0.5$, clipping at 1, AdamW (0.9, 0.999), T = 3,000; no pilot
# used the measured seeds 6–11):
#
# 1. A first pilot: the seed's LSTM at $L = 2$, $d = 64$, $(\eta, \lambda) = (3\cdot10^{-3}, 1)$
#    grokked at step 1,900 on seed 0 but not on seed 1 by 2,500; nothing generalised at λ = 0.
#    $d = 32$ did not fit its training set on 3 of 6 seeds by 2,850 (training accuracy 0.55–0.75).
# 2. A first design on seeds 0–5, centred at $(6\cdot10^{-3}, 1)$ with the equal-product arms
#    $(3\cdot10^{-3}, 2)$ and $(1.5\cdot10^{-3}, 4)$ and the products ×½, ×2 through λ: the centre grokked on
#    5 of 6 seeds (1,400–2,450 steps), each lower-η arm on 0 of 6 (at λ = 4 the training accuracy at
#    T was 0.19–0.70: so large a λ kept the model from fitting its training set; at λ = 2 the
#    validation accuracy at T was 0.22–0.98), and (6·10⁻³, ½) and (6·10⁻³, 2) on 1 of 6 each. That already says η·λ alone does not set the
#    time to grok, but 7 grokked runs at one product cannot give the exponents.
# 3. Arms at η ≥ 6·10⁻³ on pilot seeds 100, 101: (6·10⁻³, 1) grokked at 1,650 / 1,300 steps,
#    (1.2·10⁻², ½) 1,700 / 1,100, (2.4·10⁻², ¼) 1,100 / 1,250 (seed 100 then diverged: training
#    accuracy 0 at T), (1.2·10⁻², 1) not held / 950, (1.2·10⁻², ¼) 2,350 / 1,850. So the arms below
#    are centred at (1.2·10⁻², ½), where every arm grokked on at least one pilot seed by T, and the λ = 0 arms
#    run at the centre's η.
#
# Cost: 54 runs × 3,000 steps = 162,000 run-steps. From an empty store on a quiet 2-core CPU (two
# workers, groups of 9) they trained in 26 min 42 s, over a 15-minute target: the design is the
# fewest arms (three of equal η·λ, two other products, four at λ = 0), seeds (6) and steps (the
# slowest arm grokked at 2,850) the questions need, and the cheaper $d = 32$ did not fit. The plan
# line below gives the estimate for your device.

# %%
knobs = protocol.beyond_knobs(settings.profile)
design = compare.design(knobs)
arms = knobs.arms()
eta0, lam0 = knobs.centre
centre, control = next(iter(arms)), "AdamW, λ = 0"
print(f"base: {knobs.base}\nseeds: {list(knobs.seeds)}; centre (η, λ) = {knobs.centre}; grokked = A_val ≥ "
      f"{knobs.threshold} held for W = {knobs.window} consecutive evaluations "
      f"(every {design.config(design.arms[0], 0).eval_every} steps)")
pd.DataFrame([{"arm": n, "η": ch["lr"], "λ": ch["weight_decay"], "η·λ": ch["lr"] * ch["weight_decay"],
               "⊥Grad": ch.get("orthograd", False), "loss": ch.get("loss", "softmax")}
              for n, ch in arms.items()]).style.hide(axis="index").format(precision=4).set_caption(
    "The arms: every one trains every seed. First: the positive control; 'AdamW, λ = 0': the negative control.")

# %%
configs = protocol.configs("beyond", settings.profile)
print(plan_text(configs, settings.results, settings.device, settings.force))

# %% [markdown]
# ## Controls first
#
# The positive control (the centre arm) must grok on nearly every seed by T, and the negative
# control (the same η at λ = 0) must not; otherwise the questions below cannot be answered at
# this scale, and the sentence says so.

# %%
run = dict(results=settings.results, device=settings.device, force=settings.force)
ctrl_records = train(design.configs([centre, control]), **run)
ctrl = design.frame(ctrl_records)
T = int(ctrl["T"].max())
n_seeds = len(knobs.seeds)
pos, neg = (int(ctrl.loc[ctrl.arm == a, "observed"].sum()) for a in (centre, control))
pos_ok, neg_ok = pos >= n_seeds - 1, neg <= 1
print(f"Positive control ({centre}): grokked on {pos} of {n_seeds} seeds by T = {T:,} — "
      + ("the scale groks." if pos_ok else "too few: this scale cannot answer the questions below."))
print(f"Negative control ({control}): grokked on {neg} of {n_seeds} seeds by T = {T:,} — "
      + ("weight decay is needed at this scale." if neg_ok else "it groks without weight decay here."))

# %% [markdown]
# ## All arms

# %%
records = train(design.configs(), **run)
frame = design.frame(records)
table = compare.arm_table(frame, list(arms))
table["grokked"] = [f"{r.n_grokked}/{r.n}" for r in table.itertuples()]
table["median steps (95 % CI)"] = [fmt_steps(r.median) + (f" ({fmt_steps(r.ci_low)} to {fmt_steps(r.ci_high)})"
                                                          if math.isfinite(r.median) else "")
                                   for r in table.itertuples()]
if "final_train_collapse" in frame:
    coll = frame.groupby("arm")["final_train_collapse"].median()
    table["collapsed at T (median)"] = [f"{coll[a]:.0%}" for a in table.arm]
table[["arm", "grokked", "median steps (95 % CI)"] + [c for c in table if c.startswith("collapsed")]].style.hide(
    axis="index").set_caption(f"Time to grok per arm over {n_seeds} paired seeds (Kaplan–Meier median; never = "
                              f"censored at T = {T:,}); the fraction of training samples whose float32 softmax "
                              f"has collapsed at T. {settings.caption()}")

# %%
q1_arms = [a for a, ch in arms.items() if ch["weight_decay"] > 0]
q2_arms = [a for a, ch in arms.items() if ch["weight_decay"] == 0]
fig, caption = progress_plots.plot_km_arms(
    frame, {"Question 1: η and λ": q1_arms + [control], "Question 2: λ = 0": [centre] + q2_arms},
    knobs.threshold, knobs.window)
output.show(fig, f"{caption} {settings.caption()}", figures, "time_to_grok_km")

# %% [markdown]
# ## Question 1: does η·λ alone set the time to grok?
#
# The law $\log t = a - b\,\log(\eta\lambda) + c\,\log\eta$ over the runs with λ > 0, fitted twice, each
# with 95 % intervals from a bootstrap over seeds (a resample keeps each seed's runs together):
# **with the censored runs** (a run that never grokked stays in as "later than T": the maximum
# likelihood of a log-normal accelerated-failure-time model, `fit_time_law(..., censored=True)`),
# the answer; and by least squares over the grokked runs alone, which drops the slowest seeds of
# the slowest arms and so pulls b down.
# The arms of equal η·λ and different η are compared with the centre seed by seed (time ratio
# centre / arm; Wilcoxon signed-rank test of the log-ratios).

# %%
def paired_text(ref, other):
    s = compare.paired(frame, ref, other)
    ratio = (f"median time ratio {ref} / {other} = {s['median_ratio']:.2f} over {s['n_exact']} seeds where both "
             f"grokked (Wilcoxon {fmt_p(s['wilcoxon_p'])})" if s["n_exact"] else "no seed grokked in both arms")
    return (f"{other} grokked first on {s['b_sooner']} seeds, {ref} on {s['a_sooner']} (sign test "
            f"{fmt_p(s['sign_p'])}); {ratio}; log-rank {fmt_p(s['p_logrank'])}")


same = [a for a in q1_arms if a != centre and math.isclose(arms[a]["lr"] * arms[a]["weight_decay"], eta0 * lam0)]
for a in same:
    print(f"Equal η·λ = {eta0 * lam0:g}: {paired_text(centre, a)}.")
for a in (a for a in q1_arms if a != centre and a not in same):
    print(f"η·λ ×{arms[a]['lr'] * arms[a]['weight_decay'] / (eta0 * lam0):g}: {paired_text(centre, a)}.")
def law_text(fit):
    law = (fit["b_low"] <= 1 <= fit["b_high"]) and (fit["c_low"] <= 0 <= fit["c_high"])
    return (f"b = {fit['b']:.2f} (95 % CI {fit['b_low']:.2f} to {fit['b_high']:.2f}) and c = {fit['c']:.2f} "
            f"(95 % CI {fit['c_low']:.2f} to {fit['c_high']:.2f}); the 1/(η·λ) law (b = 1, c = 0) is "
            + ("consistent with these runs" if law else "rejected by these runs (its value lies outside an interval)"))


try:
    fit = fit_time_law(frame[frame.arm.isin(q1_arms)], censored=True)
    fit_seen = fit_time_law(frame[frame.arm.isin(q1_arms)])
except ValueError as e:
    fit = fit_seen = None
    print(f"Question 1 cannot be fitted at this scale: {e}.")
if fit is not None:
    print(f"Question 1: over {fit['n_runs']} runs ({fit['n_censored']} of them censored at T, {fit['n_seeds']} "
          f"seeds), {law_text(fit)}.")
    print(f"Least squares over the {fit_seen['n_runs']} grokked runs alone: {law_text(fit_seen)}.")
    print("Read as a power law: t ∝ η^(−(b − c)) · λ^(−b) = η^" + f"{-(fit['b'] - fit['c']):.2f} · λ^{-fit['b']:.2f}. "
          f"At equal η·λ, doubling η multiplies the time to grok by 2^c = {2 ** fit['c']:.2f} ({2 ** fit['c_low']:.2f} "
          f"to {2 ** fit['c_high']:.2f}); at fixed η, doubling η·λ multiplies it by 2^−b = {2 ** -fit['b']:.2f} "
          f"({2 ** -fit['b_high']:.2f} to {2 ** -fit['b_low']:.2f}), where the 1/(η·λ) law says 0.50.")


# %% [markdown]
# ## Question 2: can ⊥Grad or StableMax replace weight decay?
#
# At λ = 0 and the centre η: AdamW (the negative control), AdamW + ⊥Grad, AdamW with the
# StableMax loss, and both, on the same seeds, with the fraction of training samples whose
# float32 softmax has collapsed (the correct class's probability rounds to exactly 1, so its
# gradient is 0: Prieto et al.'s "softmax collapse") at every evaluation.

# %%
n_by = frame.groupby("arm")["observed"].sum()
grok_q2 = [a for a in q2_arms if n_by[a] >= n_seeds - 1]
for a in q2_arms[1:]:
    print(f"{a} against {control}: {paired_text(control, a)}.")
    print(f"{a} against the centre ({centre}): {paired_text(centre, a)}.")
coll = (frame.groupby("arm")["max_train_collapse"].median() if "max_train_collapse" in frame else None)
print("Question 2: at λ = 0, " + "; ".join(
    f"{a} grokked on {n_by[a]} of {n_seeds} seeds by T = {T:,}"
    + (f" (median largest collapsed fraction {coll[a]:.0%})" if coll is not None else "") for a in q2_arms)
      + f"; with weight decay ({centre}) {n_by[centre]} of {n_seeds}. So "
      + (f"{', '.join(grok_q2)} groks without weight decay at this scale." if grok_q2 else
         "neither ⊥Grad, nor StableMax, nor both replace weight decay at this scale: no λ = 0 arm groks on "
         "most seeds by T.")
      + ("" if pos_ok else " (The positive control did not grok, so this is not a test of the claim.)"))

# %% [markdown]
# ## Why: progress measures, and their null on the memorising control
#
# For one seed of the positive control and of the negative control (the memorising run), the
# key frequencies are the fewest whose $\cos/\sin(w_k(a+b))$ terms hold 90 % of the non-constant
# energy of the result **logits** at the last snapshot (the logits are projected, not neurons:
# Nanda et al. project the activations of a model without LayerNorm). Restricted loss = the
# logits reduced to the constant and the key terms; excluded loss = the key terms removed; both
# on the training pairs. The null: the same with as many random frequencies drawn from the
# *complement* of the keys (median of 10 sets), and the ceiling: every frequency of $a + b$.
# Structure is found when the keys are sparse (a minority of the $(p-1)/2$ frequencies, so that
# a null set of the same size fits in their complement), the restricted loss is at least 2×
# below its null *and* the excluded loss at least 2× above it
# (`progress_measures.structure_found`). On the memorising control it must not be found.

# %%
store = Store(settings.results)
pm_seed = knobs.seeds[0]
for name in (centre, control):
    cfg = design.config(design.arm(name), pm_seed)
    rec = store.get(cfg)
    snaps = progress_measures.load_snapshots(cfg, settings.results)
    keys = progress_measures.snapshot_keys(cfg, snaps)
    pm = progress_measures.progress_frame(cfg, snaps, keys=keys)
    last = pm[pm.step == pm.step.max()].set_index("measure")["value"]
    found, reason = progress_measures.structure_found(
        cfg.p, len(keys), last["restricted_loss"], last["restricted_loss_null"], last["excluded_loss"],
        last["excluded_loss_null"])
    role = "positive control" if name == centre else "memorising control"
    print(f"{role} ({name}, seed {pm_seed}, A_val at T {rec.history['val_acc'][-1]:.2f}): {len(keys)} keys "
          f"{sorted(keys)}; restricted loss {last['restricted_loss']:.3g} (null {last['restricted_loss_null']:.3g}, "
          f"every frequency {last['restricted_loss_all']:.3g}); excluded loss {last['excluded_loss']:.3g} (null "
          f"{last['excluded_loss_null']:.3g}); full loss {last['loss']:.3g} — "
          + ("structure found" if found else "no structure found") + f" ({reason}).")
    if name == centre:
        fig, caption = progress_plots.plot_progress(rec.history, pm, keys, f"{name}, seed {pm_seed}")
        output.show(fig, f"{caption} {settings.caption()}", figures, "progress_centre")

# %% [markdown]
# ## Grokfast where its authors measured it
#
# Only in the `full` profile (a GPU job): Lee et al.'s setting (GPT $L = 2$, $d = 128$,
# $x \cdot y$ mod 97, 50 % train, batch 512, Adam lr $10^{-3}$, β₂ 0.98, 10-step warm-up, no
# clipping), Grokfast-EMA (α 0.98, λ 2) at weight decay 0.005 against Adam at weight decay 0,
# to 95 % validation accuracy as they measure it. The quick profile leaves Grokfast out: no
# scaled variant of it has a positive control that groks on this CPU.

# %%
gf = compare.grokfast_design(knobs)
if gf is None:
    print(f"Grokfast is left out of the {settings.profile} profile (a full-profile configuration at its "
          "authors' setting).")
else:
    gfr = gf.frame(train(gf.configs(), **run))
    for row in compare.arm_table(gfr).itertuples():
        print(f"{row.arm}: grokked (A_val ≥ {gf.threshold}) on {row.n_grokked} of {row.n} seeds, KM median "
              f"{fmt_steps(row.median)} steps; Lee et al. report {protocol.GROKFAST_REPORTED[row.arm]:,} steps.")
    a, b = (x.name for x in gf.arms)
    print(f"Grokfast against Adam: {compare.paired(gfr, a, b)['median_ratio']:.1f}× (median per-seed ratio); "
          f"their ratio {protocol.GROKFAST_REPORTED[a] / protocol.GROKFAST_REPORTED[b]:.1f}×.")

# %% [markdown]
# ## Closing note
#
# Computed from the runs above: the controls, question 1's exponents and question 2's answer.

# %%
c0 = design.config(design.arms[0], knobs.seeds[0])
print(f"Scale: {c0.model.upper()}, L = {c0.num_layers}, d = {c0.d_model}, p = {c0.p}, r_train {c0.r_train:g}, "
      f"batch {min(c0.batch_size, c0.n_train)}{' (full)' if c0.batch_size >= c0.n_train else ''}, T = {c0.total_steps:,}; {n_seeds} paired seeds; grokked = A_val ≥ {knobs.threshold} "
      f"for {knobs.window} consecutive evaluations.")
print(f"Positive control {pos}/{n_seeds}, negative control {neg}/{n_seeds} grokked by T = {T:,}.")
print("Question 1: " + (law_text(fit) + f" (censored fit over {fit['n_runs']} runs)." if fit else "no fit at this scale."))
print("Question 2: " + ("; ".join(f"{a} {n_by[a]}/{n_seeds}" for a in q2_arms) + f" grokked at λ = 0, against "
                        f"{n_by[centre]}/{n_seeds} with weight decay."))
