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
# # Softmax collapse — ⊥Grad and StableMax where their authors showed them, then on the LSTM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/main/notebooks/51_softmax_collapse.ipynb)
#
# Prieto et al. (2025, *Grokking at the Edge of Numerical Stability*) claim that without weight
# decay a model that has fit its training set keeps scaling its logits until the float32 softmax
# gives the correct class a probability of exactly 1 — *softmax collapse*: that sample's gradient
# is then 0 — and that this, not the lack of weight decay as such, is what stops grokking. Their two
# remedies: **StableMax** (a softmax whose tails fall like $1/|x|$, so it does not collapse) and
# **⊥Grad** (the gradient without its component along the weights, which only scales the logits).
#
# A method can only be said not to work here once it has been seen working where its authors showed it.
# So this notebook first runs **their model, at their setting** (positive controls), then asks the
# weight-decay question on **our LSTM**, each method at a learning rate tuned on seeds that are not
# measured.
#
# **Grokked** = validation accuracy at or above the bar for W consecutive evaluations (printed
# below); the time to grok is the first step of that window; a run that never holds it is
# *censored* at its last step T (Kaplan–Meier, `modarith.study.survival`). An arm with no grokked
# seed gets the upper end of its 95 % Clopper–Pearson interval: the largest per-seed rate those
# seeds do not rule out.

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
# `papermill notebooks/51_softmax_collapse.ipynb out.ipynb -p profile quick`.
# On Colab, `results_dir = "drive"` mounts your Google Drive and keeps the results store and
# the training checkpoints in `MyDrive/modarith/`: when the runtime disconnects, run the
# notebook again and it resumes where it stopped instead of starting over.

# %% tags=["parameters"]
profile: str = "auto"  # smoke (seconds) | quick (reduced, CPU) | full (their horizons) | auto: full on CUDA, else quick
device: str = "auto"  # auto | cpu | cuda | mps
results_dir: str = "auto"  # results store; auto: results/ of the checkout; drive: Google Drive (Colab)
figures_dir: str = "auto"  # PNG figures go to <figures_dir>/collapse/; auto: figures/ beside results/
force: bool = False  # True retrains runs that are already stored

# %% tags=["report-hide"]
import pandas as pd
from modarith.models.config import RunConfig
from modarith.plotting import output, progress_plots
from modarith.reporting import notebook
from modarith.runtime.engine import train
from modarith.runtime.plan import plan_text
from modarith.study import protocol
from modarith.study.grok import arms_frame, arms_history, choose_lr
from modarith.study.survival import fmt_p, fmt_steps, km_median, paired_ratios, paired_summary, rate_interval

settings = notebook.settings(profile, device, results_dir, figures_dir, force)
figures = settings.figures / "collapse"
print(settings)

# %% [markdown]
# ## Their model, and how it reads our sequences
#
# Their code (`models.py`, `utils.get_model`, `grokking_experiments.py`, `run_main_experiments.sh`)
# builds an MLP on one-hot pairs: one-hot($a$) ⊕ one-hot($b$) → 200 → 200 → $p$ residues, ReLU, **no
# biases**, `nn.Linear`'s initialisation, float32; $x + y$ mod 113, 40 % of the pairs for training,
# full batch, AdamW at $\eta = 10^{-2}$, no weight decay, β₂ 0.99 and ε $10^{-25}$ (their defaults),
# no clipping. It is `modarith.models.mlp.MLP`, registered as `model="mlp"` (`num_layers` hidden
# layers of width `d_model`; a seed gives their initial weights, tested against a copy of their class).
#
# Our data are token sequences `BOS a + b = r EOS`, and our loss and accuracy read the right-hand
# side, $r$ and EOS. The MLP reads $a$ and $b$ from the sequence and gives the residues' logits where
# the token is `=` (the other 5 tokens get a logit of $-10^{30}$, so the float32 softmax is their
# $p$-way softmax), and a fixed EOS after $r$ (probability exactly 1, no gradient). Accuracy and the
# softmax-collapse fraction are therefore theirs; the recorded loss is half of theirs (a mean over two
# tokens, EOS contributing 0), and so is the gradient, which Adam's update does not see.
#
# Their ⊥Grad run passes `--beta2 0.99`, but their `OrthoGrad` wrapper builds its AdamW with the
# learning rate and weight decay only and loads the configured state into the wrapper, not into the
# AdamW that steps (we ran their `orthograd.py` to check): their ⊥Grad trains with β₂ 0.999 and ε
# $10^{-8}$. The ⊥Grad arm below is what their code runs.

# %%
knobs = protocol.collapse_knobs(settings.profile)
arms = protocol.collapse_arms(settings.profile)
bar, window = knobs["threshold"], knobs["window"]
print(f"Grokked: A_val ≥ {bar} held for W = {window} consecutive evaluations.")
pd.DataFrame([{"block": b, "arm": a, "model": kw["model"], "p": kw["p"], "T": kw["steps"], "η": kw.get("lr", 1e-3),
               "λ": kw.get("weight_decay", 1.0), "β₂": kw.get("beta2", 0.999), "ε": kw.get("eps", 1e-8),
               "loss": kw.get("loss", "softmax"), "⊥Grad": kw.get("orthograd", False),
               "seeds": len(knobs[b]["seeds"]) if b != "lstm" or "@" not in a else
               f"{len(knobs['lstm']['tuning_seeds'])} tuning + measured at the chosen η"}
              for b, block in arms.items() for a, kw in block.items()]).style.hide(axis="index").set_caption(
    "Every arm: the MLP at its authors' setting (mlp_short: their ⊥Grad horizon; mlp_long: StableMax, float64 and "
    "float32 softmax), then the LSTM (fixed AdamW arms; ⊥Grad and StableMax at each rate of the grid, one chosen "
    "on the tuning seeds).")

# %% [markdown]
# **The pilot, and what the quick profile reduces** (this 2-core machine shared with other jobs, one
# thread, seeds 100 and 101, never measured; costs are CPU time of one process, so they do not depend on
# the load):
#
# 1. At $p = 113$, 300 steps: ⊥Grad as their code runs it (β₂ 0.999, ε $10^{-8}$) reached validation
#    accuracy 0.98 and 0.51 at step 90 and 1.00 by step 120 on both seeds; with their flags' β₂ 0.99 and ε
#    $10^{-25}$ the same (1.00 and 0.58 at step 90). AdamW alone fit the training set and held validation
#    accuracy 0.00 at every evaluation to step 300. No training sample had collapsed by step 300 in any arm.
# 2. One update of the MLP at $p = 113$ costs 48 CPU-ms a run (groups of 6), so one of their 80,000-step
#    runs costs about 64 CPU-minutes: those arms are the `full` profile's. At $p = 31$ an update costs 3.7
#    CPU-ms (StableMax 5.9). There, by step 1,200–1,600: the float32 softmax at validation accuracy 0.00
#    with 78–82 % of the training samples collapsed at step 1,500; the float64 softmax also 0.00 (95 %
#    collapsed by the float32 measure); StableMax 0.00 on both seeds to step 2,400, its logits past
#    float32's collapse on every training sample. So `quick` runs the long arms at $p = 31$ for 3,000 steps: long enough for the
#    collapse to show, not their horizon; what it says about StableMax holds at that $p$ and horizon only.
# 3. The LSTM costs 25 CPU-ms an update a run ($d = 64$, groups of 6): 75 CPU-s for 3,000 steps. Its
#    horizon was not piloted (the machine's load left no time): T = 1,500 is what the budget holds. It is 12×
#    the steps ⊥Grad needed on the MLP; the LSTM's positive control, (η, λ) = (1.2·10⁻², ½), grokked at
#    950–2,350 steps on 50_beyond's pilot seeds, so an arm that groks no faster than that is censored here.
#    `quick` keeps the two λ = 0 arms the question is about (tuned on one seed, measured on six) at
#    T = 1,500 and leaves both AdamW arms (with and without weight decay) to `full`. Projected from these
#    CPU costs, the quick part is ≈ 1,050 CPU-s (MLP at $p = 113$: 200; at $p = 31$: 250; LSTM: 600), about
#    9 minutes on two quiet cores; the AdamW arms would add 445 CPU-s, past the 10-minute budget.
#
# The runs and their cost on this device (the build trains the same list):

# %%
configs = protocol.configs("collapse", settings.profile)
print(plan_text(configs, settings.results, settings.device, settings.force))
run = dict(results=settings.results, device=settings.device, force=settings.force)


def block_records(block: str, seeds) -> dict:
    """Arm -> its records, for one block's arms over ``seeds`` (trained here when not stored)."""
    cfgs = {a: [RunConfig(**kw, seed=s) for s in seeds] for a, kw in arms[block].items()}
    recs = iter(train([c for cs in cfgs.values() for c in cs], **run))
    return {a: [next(recs) for _ in cs] for a, cs in cfgs.items()}


def arm_table(frame, caption):
    """Per arm: grokked n/N with the 95 % Clopper–Pearson interval, KM median, collapsed fraction."""
    rows = []
    for a, f in frame.groupby("arm", sort=False):
        m = km_median(f["time"], f["observed"])
        lo, hi = rate_interval(m["n_grokked"], m["n"])
        rows.append({"arm": a, "T": f"{int(f['T'].max()):,}", "grokked": f"{m['n_grokked']}/{m['n']}",
                     "rate (95 % CP)": f"{lo:.0%} to {hi:.0%}",
                     "median steps to grok (95 % CI)": fmt_steps(m["median"])
                     + (f" ({fmt_steps(m['ci_low'])} to {fmt_steps(m['ci_high'])})" if m["n_grokked"] else ""),
                     "collapsed at T (median)": f"{f['final_train_collapse'].median():.0%}",
                     "largest collapsed (median)": f"{f['max_train_collapse'].median():.0%}"})
    return pd.DataFrame(rows).style.hide(axis="index").set_caption(f"{caption} {settings.caption()}")


def paired_text(frame, ref, other):
    """One sentence: the paired comparison of arm ``other`` with arm ``ref`` on their shared seeds."""
    s = paired_summary(paired_ratios(frame[frame.arm == ref], frame[frame.arm == other]))
    ratio = (f"; median time ratio {ref} / {other} = {s['median_ratio']:.2f} over {s['n_exact']} seeds where both "
             f"grokked (Wilcoxon {fmt_p(s['wilcoxon_p'])})" if s["n_exact"] else "")
    return (f"{other} grokked first on {s['b_sooner']} of {s['n']} paired seeds, {ref} on {s['a_sooner']} "
            f"(undecided {s['undecided']}; two-sided sign test {fmt_p(s['sign_p'])}){ratio}")


def rate_text(frame, arm):
    n, k = int((frame.arm == arm).sum()), int(frame.loc[frame.arm == arm, "observed"].sum())
    lo, hi = rate_interval(k, n)
    return f"{arm}: {k} of {n} seeds grokked (per-seed rate {lo:.0%} to {hi:.0%}, 95 % Clopper–Pearson)"


# %% [markdown]
# ## 1. ⊥Grad at their setting and horizon
#
# Their Fig. 1 (a, b): with ⊥AdamW the MLP generalises within the 300 full-batch steps of their run, while
# AdamW without weight decay has only fit its training set. Ours: the same model, rate, data fraction and
# horizon ($p = 113$, 300 steps), paired seeds, ⊥Grad against AdamW (float32 softmax).

# %%
short = block_records("mlp_short", knobs["mlp_short"]["seeds"])
fs = arms_frame(short, bar, window=window)
arm_table(fs, f"The MLP at p = {arms['mlp_short']['⊥Grad']['p']}, T = {arms['mlp_short']['⊥Grad']['steps']} "
               "(their ⊥Grad horizon).")

# %%
print(paired_text(fs, "softmax (float32)", "⊥Grad") + ".")
print("; ".join(rate_text(fs, a) for a in short) + ".")
fig, caption = progress_plots.plot_km_arms(fs, {"MLP, their ⊥Grad horizon": list(short)}, bar, window)
output.show(fig, f"{caption} {settings.caption()}", figures, "mlp_orthograd_km")

# %% [markdown]
# ## 2. StableMax, float64 and float32 softmax without weight decay
#
# Their Fig. 1 (b, c), each run 80,000 full-batch steps at $p = 113$: with the float32 softmax the MLP
# stops learning as its softmax collapses; StableMax groks without weight decay; a float64 softmax
# delays the collapse and lets it generalise further. Below, the collapsed fraction is measured in
# float32 for every arm: for the float64 arm it says where a float32 softmax would have collapsed
# (that arm's own float64 gradient still flows there), not whether float64 collapses.

# %%
long = block_records("mlp_long", knobs["mlp_long"]["seeds"])
fl = arms_frame(long, bar, window=window)
c_long = arms["mlp_long"]["StableMax"]
arm_table(fl, f"The MLP at p = {c_long['p']}, T = {c_long['steps']:,} (theirs: p = 113, T = 80,000).")

# %%
for a in ("StableMax", "float64 softmax"):
    print(paired_text(fl, "softmax (float32)", a) + ".")
print("; ".join(rate_text(fl, a) for a in long) + ".")
fig, caption = progress_plots.plot_km_arms(fl, {"MLP without weight decay": list(long)}, bar, window)
output.show(fig, f"{caption} {settings.caption()}", figures, "mlp_long_km")
curves = pd.concat([arms_history(long, "train_collapse"), arms_history(short, "train_collapse")])
fig, caption = progress_plots.plot_arm_curves(
    curves, {f"T = {c_long['steps']:,}, p = {c_long['p']}": list(long), "their ⊥Grad horizon, p = 113": list(short)},
    "fraction of training samples whose float32 softmax collapsed")
output.show(fig, f"{caption} {settings.caption()}", figures, "mlp_collapse")

# %% [markdown]
# ### Their results beside ours
#
# Their Fig. 1 gives curves, not numbers; what they say it shows (at $p = 113$ and their horizon), beside what our
# runs show at ours:

# %%
def ours_text(frame, arm):
    f = frame[frame.arm == arm]
    m = km_median(f["time"], f["observed"])
    return (f"{m['n_grokked']}/{m['n']} grokked by T = {int(f['T'].max()):,} (median {fmt_steps(m['median'])}); "
            f"collapsed at T {f['final_train_collapse'].median():.0%}")


theirs = {  # their words: the caption of their Fig. 1 and their abstract (the figure's curves are not read here)
    "⊥Grad": ("Fig. 1 (a, b)", "“the delay in generalization induced by NLM can be reversed using the proposed ⊥AdamW”"),
    "softmax (float32)": ("Fig. 1; abstract", "“without regularization … Softmax Collapse (SC) … stopping learning "
                          "altogether”; “numerical errors that lead to overfitting instead of grokking”"),
    "StableMax": ("Fig. 1 (b, c)", "the errors “can be avoided by using the proposed StableMax”; it “enables grokking "
                  "without regularization”"),
    "float64 softmax": ("abstract; a Fig. 1 run of run_main_experiments.sh", "“mitigating SC leads to grokking "
                        "without regularization”; a float64 softmax is one such mitigation")}
pd.DataFrame([{"arm": a, "their figure": fig_, f"theirs (T = {protocol.COLLAPSE_REPORTED_T[a]:,}, p = 113)": what,
               "ours": ours_text(fs if a == "⊥Grad" else fl, a)} for a, (fig_, what) in theirs.items()]).style.hide(
    axis="index").set_caption("Their headline (Prieto et al. 2025, Fig. 1) beside our runs of their MLP.")

# %% [markdown]
# ## 3. The question on the LSTM, fairly
#
# ⊥Grad and StableMax at λ = 0 on the LSTM ($L = 2$, $d = 64$, $p = 31$, $r_{\text{train}} = 0.5$, full
# batch), each at the learning rate its tuning seeds chose from a small grid that includes AdamW's rate
# (rule: most tuning seeds grokked, then the shortest mean time, then the rate nearest AdamW's), against
# AdamW with weight decay at the positive-control setting and AdamW at λ = 0, on the same measured seeds.

# %%
lk = knobs["lstm"]
tuned = {a: {float(kw["lr"]): kw for n, kw in arms["lstm"].items() if n.startswith(a + " @")} for a in lk["tuned"]}
tuning = {f"{a} @ η {lr:g}": [RunConfig(**kw, seed=s) for s in lk["tuning_seeds"]]
          for a, by_lr in tuned.items() for lr, kw in by_lr.items()}
trecs = iter(train([c for cs in tuning.values() for c in cs], **run))
ft = arms_frame({n: [next(trecs) for _ in cs] for n, cs in tuning.items()}, bar, window=window)
eta_adamw = protocol.COLLAPSE_LSTM_FIXED["AdamW, λ ½"]["lr"]  # the positive control's rate
chosen = {a: choose_lr(ft[ft.arm.str.startswith(a + " @")], eta_adamw) for a in tuned}
print("Tuning seeds " + ", ".join(map(str, lk["tuning_seeds"])) + ": " + "; ".join(
    f"{n}: {int(f.observed.sum())}/{len(f)} grokked" for n, f in ft.groupby("arm", sort=False)))
print("Chosen: " + "; ".join(f"{a} at η {lr:g}" for a, lr in chosen.items()) + ".")

# %%
lstm_arms = {a: [RunConfig(**arms["lstm"][a], seed=s) for s in lk["seeds"]] for a in lk["fixed"]}
lstm_arms.update({a: [RunConfig(**tuned[a][lr], seed=s) for s in lk["seeds"]] for a, lr in chosen.items()})
lrecs = iter(train([c for cs in lstm_arms.values() for c in cs], **run))
lstm = {a: [next(lrecs) for _ in cs] for a, cs in lstm_arms.items()}
fq = arms_frame(lstm, bar, window=window)
T_lstm = next(iter(lstm_arms.values()))[0].total_steps
arm_table(fq, "The LSTM at λ = 0" + (" against AdamW with and without weight decay" if lk["fixed"] else "")
          + f", T = {T_lstm:,}, {len(lk['seeds'])} paired seeds.")

# %%
for ref in lk["fixed"]:
    for a in chosen:
        print(f"{a} against {ref}: {paired_text(fq, ref, a)}.")
if not lk["fixed"]:
    print(f"The {settings.profile} profile runs no AdamW arm on the LSTM (the full profile does): an arm that "
          "groks here groks without weight decay; one that does not is not a test of the claim, with no positive "
          "control at this horizon.")
print("; ".join(rate_text(fq, a) for a in lstm) + ".")
fig, caption = progress_plots.plot_km_arms(fq, {"LSTM": list(lstm)}, bar, window)
output.show(fig, f"{caption} {settings.caption()}", figures, "lstm_km")
fig, caption = progress_plots.plot_arm_curves(arms_history(lstm, "train_collapse"), {"LSTM": list(lstm)},
                                              "fraction of training samples whose float32 softmax collapsed")
output.show(fig, f"{caption} {settings.caption()}", figures, "lstm_collapse")

# %% [markdown]
# ## 4. Grokfast, fairly (the `full` profile)
#
# Grokfast's authors compare their filter *with* weight decay 0.005 against Adam *without* it, so
# their gain mixes the two. On our GPT at equal everything else, a 2 × 2: filter off/on × weight
# decay 0 / 0.005 (SPEC's GPT and optimizer otherwise; EMA α 0.98, λ 2). It is a GPU job of the
# `full` profile (and a seconds-long run of the `smoke` profile, which only checks the code).

# %%
if "grokfast" in arms:
    gk = knobs["grokfast"]
    fg = arms_frame(block_records("grokfast", gk["seeds"]), gk.get("threshold", bar), window=window)
    display(arm_table(fg, "Grokfast 2 × 2 on our GPT."))  # noqa: F821 (IPython's display)
    for a in list(arms["grokfast"])[1:]:
        print(paired_text(fg, list(arms["grokfast"])[0], a) + ".")
else:
    print(f"The Grokfast 2 × 2 is not part of the {settings.profile} profile (a full-profile GPU job).")

# %% [markdown]
# ## Closing note
#
# Computed from the runs above; each line names the model, scale, rates and horizon it holds at.

# %%
cs, cl, cq = arms["mlp_short"]["⊥Grad"], c_long, next(iter(lstm_arms.values()))[0]
print(f"MLP (their setting: 2 × 200, p = {cs['p']}, 40 % train, full batch, AdamW η 1e-2, λ 0), T = {cs['steps']} "
      f"(their ⊥Grad horizon): " + "; ".join(rate_text(fs, a) for a in short) + ".")
print(f"MLP at p = {cl['p']} (theirs 113), T = {cl['steps']:,} (theirs 80,000): " + "; ".join(
    rate_text(fl, a) for a in long) + "; median collapsed fraction at T: " + ", ".join(
    f"{a} {fl.loc[fl.arm == a, 'final_train_collapse'].median():.0%}" for a in long) + ".")
print(f"LSTM (L {cq.num_layers}, d {cq.d_model}, p {cq.p}, r {cq.r_train:g}, full batch), T = {cq.total_steps:,}: "
      + "; ".join(rate_text(fq, a) for a in lstm) + "; rates chosen on the tuning seeds: "
      + ", ".join(f"{a} η {lr:g}" for a, lr in chosen.items()) + ".")
