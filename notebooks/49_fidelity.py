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
# # Fidelity — the seed's claims against our runs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/modarith/modarith/blob/v0.1.0/notebooks/49_fidelity.ipynb)
#
# Does our reproduction say what the seed report says? This notebook trains nothing: it reads
# the runs the experiment notebooks stored, answers each of the seed's claims from them, and
# puts our answer beside the seed's, quoted. It also compares our Table 1 with the seed's,
# cell by cell, and counts the collapses of the training accuracy in every run. Every table
# names the profile of the runs it used; runs of the full profile (SPEC's protocol) get their
# own column when the store holds them.

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
# `papermill notebooks/49_fidelity.ipynb out.ipynb -p profile quick`.

# %% tags=["parameters"]
profile = "auto"  # runs compared with the seed: smoke | quick | full | auto (full on CUDA, else quick)
device = "auto"  # resolves the auto profile (full on CUDA); nothing is trained here
results_dir = "auto"  # the results store the experiment notebooks trained into
figures_dir = "auto"  # the collapse figure goes to <figures_dir>/fidelity/

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from modarith import analysis, notebook, plots, protocol, seed_report
from modarith.metrics import count_collapses
from modarith.store import Store

settings = notebook.settings(profile, device, results_dir, figures_dir)
figures = settings.figures / "fidelity"
store = Store(settings.results)
# the profile asked for, then SPEC's protocol (full) when that is another profile
PROFILES = [settings.profile] + (["full"] if settings.profile != "full" else [])
print(f"profile {settings.profile}; results: {settings.results}")

# %% [markdown]
# ## The runs
#
# Each claim is answered from the runs of one experiment, rebuilt from the profile's knobs
# exactly as its notebook builds them, and looked up in the store. A claim is answered only
# when every run of its experiment is stored; otherwise it reads "not enough runs".

# %%
EXPERIMENTS = list(dict.fromkeys([c.experiment for c in seed_report.CLAIMS]))
runs = {}  # (experiment, profile) -> the stored records, in config order
complete = {}  # (experiment, profile) -> every run of the experiment is stored
rows = []
for prof in PROFILES:
    for name in EXPERIMENTS:
        configs = protocol.configs(name, prof)
        records = [store.get(c) for c in configs]
        runs[name, prof] = [r for r in records if r is not None]
        complete[name, prof] = len(runs[name, prof]) == len(configs)
        rows.append({"experiment": name, "profile": prof, "runs": len(configs),
                     "stored": len(runs[name, prof])})
display(pd.DataFrame(rows))

# %% [markdown]
# ## How our answers are computed
#
# One small function per claim; each takes the records of its experiment and returns our
# answer in the seed's terms (a number, a word or yes/no per model). "Best" values are the
# best over the whole run, averaged over seeds (as in the seed's tables).

# %%
LEVEL = 0.9  # A_val at or above this counts as "generalised" (the seed's Problem 4.3.d)


def first_steps(records, metric):
    """Per model: mean over seeds of the first step where `metric` ≥ LEVEL (NaN if never)."""
    out = {}
    for r in records:
        out.setdefault(r.config.model, []).append(
            analysis.first_step_at(r.history["step"], r.history[metric], LEVEL))
    return {m: float(np.mean(v)) for m, v in out.items()}


def memorise_then_generalise(records):
    train, val = first_steps(records, "train_acc"), first_steps(records, "val_acc")
    return {m: bool(not math.isnan(val[m]) and val[m] > train[m]) for m in train}


def lower_val_loss(records):
    best = analysis.best_frame(records)
    lv = {m: float(analysis.select(best, m, "L_val")["best_mean"].iloc[0])
          for m in analysis.models_in(best)}
    return min(lv, key=lv.get)


def r_threshold(records, when, pick):
    """Per model: `pick` (min/max) of the r_train whose best values satisfy `when`."""
    best = analysis.best_frame(records, by=["r_train"])
    out = {}
    for m in analysis.models_in(best):
        r, _ = analysis.threshold(best, m, "r_train", when, pick)
        out[m] = "none in the grid" if r is None else float(r)
    return out


def smallest_r_generalising(records):
    return r_threshold(records, lambda b: b["A_val"] >= LEVEL, min)


def largest_r_overfitting(records):  # the seed's strict inequalities
    return r_threshold(records, lambda b: b["A_train"] > LEVEL and b["A_val"] < 0.5, max)


def ternary_faster(records):
    binary, ternary = first_steps(records, "val_acc_o2"), first_steps(records, "val_acc_o3")
    out = {}
    for m in binary:
        b, t = binary[m], ternary[m]
        out[m] = ("neither reaches A_val 0.9" if math.isnan(b) and math.isnan(t)
                  else "binary" if math.isnan(t) or b < t
                  else "ternary" if math.isnan(b) or t < b else "same step")
    return out


def trend(records, vary, fixed, model):
    """Direction of the best L_val along `vary`, at each value of `fixed`: one word if all
    agree, else each direction with its fixed value."""
    best = analysis.best_frame(records, by=[fixed, vary])
    rows = analysis.select(best, model, "L_val")
    words = {f: analysis.direction(list(g.sort_values(vary)["best_mean"]))
             for f, g in rows.groupby(fixed)}
    if len(set(words.values())) == 1:
        return next(iter(words.values()))
    return "; ".join(f"{analysis.sym(fixed)} = {f}: {w}" for f, w in words.items())


def weight_decay_time(records):
    best = analysis.best_frame(records, by=["weight_decay"])
    a, b = (analysis.direction(list(analysis.select(best, "lstm", q).sort_values(
        "weight_decay")["tf_mean"])) for q in ("A_val", "L_val"))
    return {"lstm": "decreases" if a == b == "decreases" else f"t_f(A_val) {a}, t_f(L_val) {b}"}


def norm_table(records):
    """Per run: ‖θ‖₂ at init, its peak before t_f(A_val), at the end, and the largest jump
    between two consecutive evaluations (relative to the earlier one)."""
    norms = analysis.norm_around_generalisation(records, by=["weight_decay"])
    jumps = {(r.config.weight_decay, r.config.seed): float(np.max(np.abs(np.diff(
        np.asarray(r.history["param_norm"])) / np.asarray(r.history["param_norm"])[:-1])))
        for r in records}
    norms["largest_jump"] = [jumps[w, s] for w, s in zip(norms["weight_decay"], norms["seed"])]
    norms["fall"] = 1 - norms["norm_final"] / norms["norm_peak"]
    return norms


def norm_rise_fall(records):
    t = norm_table(records)
    return {"lstm": bool(((t["rise"] > 0.01) & (t["fall"] > 0.01)).all())}


OURS = {
    "memorise_then_generalise": memorise_then_generalise,
    "lower_val_loss": lower_val_loss,
    "smallest_r_generalising": smallest_r_generalising,
    "largest_r_overfitting": largest_r_overfitting,
    "ternary_faster": ternary_faster,
    "gpt_width": lambda rs: {"gpt": trend(rs, "d_model", "num_layers", "gpt")},
    "lstm_width": lambda rs: {"lstm": trend(rs, "d_model", "num_layers", "lstm")},
    "lstm_depth": lambda rs: {"lstm": trend(rs, "num_layers", "d_model", "lstm")},
    "gpt_depth": lambda rs: {"gpt": trend(rs, "num_layers", "d_model", "gpt")},
    "weight_decay_time": weight_decay_time,
    "norm_rise_fall": norm_rise_fall,
}
assert set(OURS) == {c.key for c in seed_report.CLAIMS}, "one function per claim"

# %% [markdown]
# ## The claims, one row each
#
# The seed's answer is quoted below the table, with its section. "Agree" compares our answer
# with the seed's word for word (numbers exactly: a threshold measured on a coarser grid can
# only agree when the seed's value is a point of our grid).

# %%
table = []
for c in seed_report.CLAIMS:
    row = {"claim": c.question, "seed": seed_report.answer_text(c.answer)}
    for prof in PROFILES:
        if complete[c.experiment, prof]:
            ours = OURS[c.key](runs[c.experiment, prof])
            row[f"ours ({prof})"] = seed_report.answer_text(ours)
            row[f"{prof} vs seed"] = seed_report.agreement(c.answer, ours)
        else:
            n = len(protocol.configs(c.experiment, prof))
            row[f"ours ({prof})"] = f"{len(runs[c.experiment, prof])} of {n} runs stored"
            row[f"{prof} vs seed"] = seed_report.NOT_ENOUGH
    table.append(row)
claims = pd.DataFrame(table, index=range(1, len(table) + 1))
display(claims)
display(Markdown("**The seed's words.**\n\n" + "\n".join(
    f"{i}. *{c.section}*: “{c.quote_text}” — our measure: {c.measure}."
    for i, c in enumerate(seed_report.CLAIMS, 1))))

# %% [markdown]
# ## ‖θ‖₂ around generalisation (weight-decay sweep)
#
# The numbers behind the last claim, per run: ‖θ‖₂ at initialisation, its peak before the
# best validation accuracy, at the end, and the largest relative change between two
# consecutive evaluations (a large jump makes the rise-then-fall hard to read).

# %%
for prof in PROFILES:
    if complete["regularization", prof]:
        print(f"Profile {prof}:")
        cols = ["weight_decay", "seed", "t_gen", "tf_A_val", "norm_init", "norm_peak",
                "step_peak", "norm_final", "rise", "fall", "largest_jump"]
        display(norm_table(runs["regularization", prof])[cols].round(3))
    else:
        print(f"Profile {prof}: not enough runs of the weight-decay sweep.")

# %% [markdown]
# ## Table 1, ours beside the seed's
#
# Best value over the run (mean ± std over seeds) and t_f, the first step that reaches it.
# A cell is "within the seed's spread" when our mean lies in the seed's mean ± std (widened by
# the rounding of the seed's printed digits); with two seeds that interval spans exactly the
# seed's two runs. The seed quotes no spread for t_f and Δt: their difference is shown.

# %%
def fmt(value, quantity):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2e}" if quantity.startswith("L") else \
        f"{value:.0f}" if quantity.startswith(("dt", "t")) else f"{value:.4f}"


for prof in PROFILES:
    if not complete["sanity", prof]:
        print(f"Profile {prof}: not enough runs of the sanity check for Table 1.")
        continue
    seeds = analysis.per_seed_frame(runs["sanity", prof], (),
                                    quantities=(*analysis.QUANTITIES, "dt_A", "dt_L"))
    rows = []
    for model, cells in seed_report.TABLE1.items():
        for q, cell in cells.items():
            g = seeds[(seeds["model"] == model) & (seeds["quantity"] == q)]
            mean, std, tf = g["best"].mean(), g["best"].std(ddof=0), g["tf"].mean()
            seed_mean = cell["mean"].value
            if cell["std"] is None:
                verdict = f"differs by {mean - seed_mean:+.0f} steps"
                seed_text = fmt(seed_mean, "dt")
            else:
                verdict = seed_report.verdict(g["best"], cell["mean"], cell["std"])
                seed_text = f"{fmt(seed_mean, q)} ± {fmt(cell['std'].value, q)}"
            rows.append({"model": analysis.name(model), "quantity": q,
                         f"ours ({prof})": f"{fmt(mean, q)} ± {fmt(std, q)}", "seed": seed_text,
                         "verdict": verdict,
                         "t_f ours": fmt(tf, "tf"),
                         "t_f seed": "" if cell["t_f"] is None else fmt(cell["t_f"].value, "tf")})
    print(f"Table 1 from the sanity-check runs of the {prof} profile "
          f"({len(runs['sanity', prof])} runs, seeds "
          f"{sorted({r.config.seed for r in runs['sanity', prof]})}):")
    display(pd.DataFrame(rows))

# %% [markdown]
# ## Collapses of the training accuracy
#
# A collapse is an episode of training accuracy below 0.9 after it first reached 1.0
# (evaluations every 100 steps). The rate is per 1,000 steps after that first fit. Runs at
# SPEC's settings (their config is one the full profile trains) are kept apart from runs at
# reduced settings, so the two rates can be compared; `profile` is the first profile (in the
# order above) whose experiment lists the run.

# %%
full_configs = {c for name in EXPERIMENTS for c in protocol.configs(name, "full")}
seen, rows = set(), []
for prof in PROFILES:
    for name in EXPERIMENTS:
        for r in runs[name, prof]:
            if r.run_id in seen:
                continue
            seen.add(r.run_id)
            col = count_collapses(r.history)
            c = r.config
            rows.append({"settings": "SPEC" if c in full_configs else "reduced",
                         "profile": prof, "experiment": name, "model": c.model, "seed": c.seed, "p": c.p,
                         "d": c.d_model, "L": c.num_layers, "lr": c.lr, "wd": c.weight_decay,
                         "r_train": c.r_train, "T": c.total_steps, "first fit": col["first_fit"],
                         "collapses": col["collapses"], "per 1k steps": col["rate_per_1k"],
                         "lowest": min((e[2] for e in col["episodes"]), default=math.nan),
                         "window": col["window"]})
collapses = pd.DataFrame(rows)
if collapses.empty:
    print("No stored runs: nothing to count.")
else:
    display(collapses.drop(columns="window").round(3))
    pooled = collapses.groupby(["model", "settings"]).agg(
        runs=("collapses", "size"), collapses=("collapses", "sum"), steps=("window", "sum"))
    pooled["per 1k steps"] = 1000 * pooled["collapses"] / pooled["steps"].where(pooled["steps"] > 0)
    display(pooled.round(3))
    for m in sorted(set(collapses["model"])):
        rate = {s: pooled.loc[(m, s), "per 1k steps"] if (m, s) in pooled.index else math.nan
                for s in ("SPEC", "reduced")}
        if math.isnan(rate["SPEC"]) or math.isnan(rate["reduced"]):
            print(f"{analysis.name(m)}: no comparison (runs at both SPEC and "
                  "reduced settings are needed).")
        else:
            print(f"{analysis.name(m)}: {rate['reduced']:.2f} collapses per 1,000 "
                  f"steps at reduced settings against {rate['SPEC']:.2f} at SPEC's settings.")

# %% [markdown]
# The training accuracy of every run with at least one collapse (shaded: below 0.9).

# %%
hit = [r for name in EXPERIMENTS for prof in PROFILES for r in runs[name, prof]
       if count_collapses(r.history)["collapses"] > 0]
hit = list({r.run_id: r for r in hit}.values())
if hit:
    fig, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    for r in hit:
        c = r.config
        ax.plot(r.history["step"], r.history["train_acc"], lw=1,
                label=f"{analysis.name(c.model)} seed {c.seed}, d {c.d_model}, lr {c.lr:g}, "
                      f"r {c.r_train:g}, wd {c.weight_decay:g}")
    ax.axhspan(0, 0.9, color="0.9", zorder=0)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\mathcal{A}_{\mathrm{train}}$")
    ax.legend(fontsize=6, loc="lower right")
    profiles = ", ".join(sorted({p for (_, p), rs in runs.items() for r in rs if r in hit}))
    plots.show(fig, f"Training accuracy of the {len(hit)} runs with a collapse (below 0.9, "
                    f"shaded, after first reaching 1.0); runs of the {profiles} profile(s).",
               figures, "collapses")
else:
    print("No run has a collapse.")

# %% [markdown]
# ## Discussion
#
# A claim can disagree for three kinds of reasons, and the tables above separate them. The
# protocol may differ: a reduced profile trains fewer steps at a higher learning rate, on a
# coarser grid, with fewer seeds, and its column says so; the full column is the like-for-like
# comparison. The seed's own answer may rest on noise: two seeds, and best values that a
# single collapse or a late spike can move. Or the science may differ: a full-profile
# disagreement on a grid point the seed also measured is the case to look into. Collapses are
# part of the seed's protocol too (its GPT at SPEC's settings has them), so a reduced profile
# is acceptable when its collapse rate per 1,000 steps stays near the rate of the runs at
# SPEC's settings.
