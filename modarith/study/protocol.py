"""The protocol as plain data: SPEC's grids, the reduced profiles, and the report's notebooks.

Each experiment notebook builds its runs in plain sight from :func:`knobs`::

    knobs = protocol.knobs("data_size", settings.profile)
    configs = [RunConfig(model=m, r_train=r, seed=s, **knobs.base[m])
               for m in knobs.models for r in knobs.grid["r_train"] for s in knobs.seeds]

Profiles: ``full`` is SPEC's protocol exactly (about 1.5 M run-steps, a GPU job); ``quick``
shows the same phenomena on a 2-core CPU with labelled reductions (:func:`changes` prints
them); ``smoke`` takes seconds per experiment (CI). ``auto`` resolves to ``full`` on CUDA and
``quick`` elsewhere (:func:`resolve_profile`). Nothing here branches on an experiment's name:
the experiments are rows of :data:`EXPERIMENTS`, the profiles rows of :data:`PROFILE_KNOBS`.
Every notebook of the report is a row of :data:`EXPERIMENTS` (title, ``--only`` keys); a row
with no models trains nothing (the parameter counts, the fidelity summary). A notebook's
settings (folders, Google Drive) are :mod:`modarith.reporting.notebook`'s.

(Long: the protocol is data — every profile's knobs, every notebook's row — one table of tables.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import pandas as pd

from modarith.models.config import RunConfig, did_you_mean
from modarith.runtime.devices import resolve_device

#: The repository the Colab badges open and the install cells pip-install from
#: (the environment variable ``MODARITH_REPO_URL`` overrides it in the install cell).
REPO_URL = "https://github.com/modarith/modarith"
#: The branch the Colab badges open. The install cells install the release
#: (``modarith.version.RELEASE_REF``, the tag of ``modarith.__version__``) unless ``MODARITH_REF``
#: names another branch, tag or commit.
REPO_REF = "main"

PROFILES = ("smoke", "quick", "full")
PROFILE_CHOICES = ("auto", *PROFILES)  # what a notebook or the build accepts (auto: by device)
SEEDS = (0, 42)
#: The seed report's architectures: the rows that reproduce it name them (a registered model joins none).
SEED_MODELS = ("lstm", "gpt")

# --------------------------------------------------------------------------- profile knobs
# What each profile sets. "base" applies to every run, "model_base" per model; "steps…" keys
# are a number or a {model: number} dict; an experiment names the keys it reads (EXPERIMENTS).
_FULL = {
    "base": {},  # RunConfig defaults = SPEC's training defaults
    "model_base": {"lstm": {}, "gpt": {}},
    "seeds": SEEDS,
    "steps": 10_001,
    "steps_compute": 20_001,
    "steps_regularization": 40_001,
    "r_grid": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "orders_p": 11,
    "L_grid": (1, 2, 3),
    "d_grid": (64, 128, 256),
    "B_grid": (32, 64, 128, 256, 512),
    "wd_grid": (0.25, 0.5, 0.75, 1.0),
    "alphas": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "size_pick": {"num_layers": 3, "d_model": 256},  # the biggest model-size GPT (4.8)
    "lr_sanity": 1e-3,  # SPEC's lr
}

# Quick profile (2-core CPU): every claim of the seed answered at SPEC's *dynamics* — lr 1e-3,
# weight decay 1 (unless swept), batch 512, T = 10⁴+1 — on reduced grids and one seed; only
# the sanity check keeps both seeds. The calibration (benchmarks/CALIBRATION.md): at lr 3e-3 and
# T 1.5–4k, 7 of the seed's 11 claims came out differently, and a changed lr or horizon says
# nothing about the seed. Two horizons differ from SPEC's, each stated by 49_fidelity:
#   orders T = 5,001: training does not depend on T (no schedule), so a shorter run is a prefix
#     of SPEC's; its first steps at A_val ≥ 0.9 (the claim's measure) are SPEC's when they lie
#     before T (measured at SPEC's dynamics: ≤ 3,500 for both models, seeds 0 and 42);
#   regularization T = 10,001 (SPEC 4·10⁴+1, 80k LSTM run-steps, over the budget): t_f(L_val)
#     needs SPEC's horizon, so 49_fidelity reports claim 10 as not tested at SPEC's dynamics.
# Runs shared between experiments (one training, `Store` returns it to each): sanity seed 0 =
# data_size r 0.5 = model_size (L 2, d 128) = compute B 512 = regularization wd 1 (LSTM).
# The LSTM snapshots its weights every 500 steps (~23 MB a run) so that ‖θ‖₂ can be read
# without the token embedding (claim 11: the norm the model grows, not its lookup table).
_QUICK = {
    "base": {},  # p = 31, d = 128, L = 2, lr 1e-3, weight decay 1, batch 512 (SPEC)
    "model_base": {"lstm": {"snapshot_every": 500}, "gpt": {}},
    "seeds": (0,),
    "seeds_sanity": SEEDS,
    "lr_sanity": 1e-3,  # SPEC's lr
    "steps_sanity": 10_001,  # SPEC's T
    "steps": 10_001,  # SPEC's T
    "steps_orders": 5_001,  # a prefix of SPEC's 10⁴+1 (see above)
    # claim 5 compares step times binary vs ternary: with one seed it has no spread (df 0) and
    # cannot be decided; SPEC's two seeds cost 10,002 more run-steps (2.9 % of the quick build),
    # under the 10 % at which a profile takes the seeds that could decide a claim
    "seeds_orders": SEEDS,
    "steps_compute": 10_001,  # SPEC 2·10⁴+1; 4.6 makes no claim 49_fidelity tests
    "steps_regularization": 10_001,  # SPEC 4·10⁴+1 (see above)
    "r_grid": (0.3, 0.4, 0.5),  # the seed's thresholds: LSTM overfits at 0.4, GPT at 0.3
    "orders_p": 11,
    "L_grid": (1, 2),
    "d_grid": (64, 128),
    "B_grid": (64, 512),
    "wd_grid": (0.5, 1.0),
    "alphas": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    # the biggest model-size GPT other than the sanity run (L 2, d 128 is the sanity GPT here)
    "size_pick": {"num_layers": 1, "d_model": 128},
}

_SMOKE = {
    "base": {"p": 7, "lr": 1e-2, "num_layers": 1, "eval_dense": 5, "eval_every": 5},
    "model_base": {"lstm": {"d_model": 16}, "gpt": {"d_model": 16}},
    "seeds": (0,),
    "steps": 20,
    "steps_compute": 24,
    "steps_regularization": 24,
    "r_grid": (0.3, 0.7),
    "orders_p": 5,
    "L_grid": (1, 2),
    "d_grid": (8, 16),
    "B_grid": (8, 16),
    "wd_grid": (0.5, 1.0),
    "alphas": (0.5, 1.0),
    "size_pick": {"num_layers": 2, "d_model": 16},
    "lr_sanity": 1e-2,  # the smoke lr
}

PROFILE_KNOBS = {"smoke": _SMOKE, "quick": _QUICK, "full": _FULL}

@dataclass(frozen=True)
class Knobs:
    """The plain values one experiment uses in one profile."""

    experiment: str  # a key of EXPERIMENTS
    profile: str  # smoke | quick | full
    models: tuple[str, ...]  # architectures trained
    seeds: tuple[int, ...]  # seeds of every configuration
    base: dict  # model -> RunConfig keyword arguments shared by all its runs (not the grid's)
    grid: dict  # swept RunConfig field -> values in sweep order ({} when nothing is swept)
    alphas: tuple[float, ...] = ()  # T_max = α·T slices of the best values (() = none)
    picks: tuple = ()  # (label, RunConfig) of runs chosen from other experiments

    def configs(self) -> list[RunConfig]:
        """Every run: models × grid points × seeds (or the picked runs), in that order."""
        if self.picks:
            return [c for _, c in self.picks]
        names = list(self.grid)
        return [RunConfig(model=m, seed=s, **self.base[m], **dict(zip(names, point)))
                for m in self.models for point in itertools.product(*self.grid.values())
                for s in self.seeds]


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} = {value!r} is invalid: expected one of {tuple(choices)}"
                         f"{did_you_mean(value, choices)}")
    return value


def knobs(experiment: str, profile: str) -> Knobs:
    """The knobs of ``experiment`` (a key of :data:`EXPERIMENTS`) in ``profile``."""
    e = EXPERIMENTS[check_choice("experiment", experiment, EXPERIMENTS)]
    k = PROFILE_KNOBS[check_choice("profile", profile, PROFILES)]

    def value(v):
        return k[v] if isinstance(v, str) else v

    base = {}
    for m in e.models:
        steps = k.get(e.steps, k["steps"])
        kw = {**k["base"], **k["model_base"][m], **{f: value(v) for f, v in e.fixed.items()},
              "steps": steps[m] if isinstance(steps, dict) else steps}
        base[m] = {f: v for f, v in kw.items() if f not in e.grid}
    picks = []
    for label, source, model, where in e.picks:
        where = value(where)
        found = [c for c in knobs(source, profile).configs()
                 if c.model == model and all(getattr(c, f) == v for f, v in where.items())]
        picks.append((label, found[0]))
    return Knobs(experiment, profile, e.models, tuple(k.get(e.seeds, k["seeds"])), base,
                 {f: tuple(k[v]) for f, v in e.grid.items()},
                 tuple(k["alphas"]) if e.alphas else (), tuple(picks))


def configs(experiment: str, profile: str) -> list[RunConfig]:
    """Run configs of ``experiment`` in ``profile``: what its notebook trains (its grid, or its
    ``design``; [] for a row that trains nothing)."""
    e = EXPERIMENTS[check_choice("experiment", experiment, EXPERIMENTS)]
    if e.design is not None:  # distinct runs, in the design's order (two of its blocks may share a run)
        return list(dict.fromkeys(e.design(check_choice("profile", profile, PROFILES))))
    return knobs(experiment, profile).configs()


def trained() -> list[str]:
    """Names of the rows of :data:`EXPERIMENTS` that train runs (a grid's models or a design)."""
    return [name for name, e in EXPERIMENTS.items() if e.trains]


def reproduced() -> list[str]:
    """Names of the rows that reproduce the seed report's experiments: a grid of models
    answering one of the seed's problems (``problem`` set). A new experiment beyond the seed
    (no ``problem``) trains, but stays out of the seed's totals and the front page's reductions."""
    return [name for name, e in EXPERIMENTS.items() if e.models and e.problem]


def select(only: str | None) -> list[str]:
    """Rows of :data:`EXPERIMENTS` chosen by ``--only`` (comma-separated names or keys, e.g.
    ``"4.3,4.5"``), in report order; all if None or empty. Raises ``ValueError`` naming
    ``--only`` and the accepted keys for an unknown one."""
    if only is None or not only.strip():
        return list(EXPERIMENTS)
    known = {key: name for name, e in EXPERIMENTS.items() for key in (*e.keys, name)}
    wanted = [key.strip() for key in only.split(",") if key.strip()]
    unknown = [key for key in wanted if key not in known]
    if unknown:
        hints = "".join(did_you_mean(key, known) for key in unknown)
        raise ValueError(f"--only: unknown key(s) {', '.join(map(repr, unknown))}{hints}; "
                         f"accepted: {', '.join(known)}")
    chosen = {known[key] for key in wanted}
    return [name for name in EXPERIMENTS if name in chosen]


def resolve_profile(profile: str, device: str = "auto") -> str:
    """``"auto"`` -> ``"full"`` on CUDA, ``"quick"`` elsewhere; other values are checked."""
    check_choice("profile", profile, ("auto", *PROFILES))
    if profile != "auto":
        return profile
    if device == "auto":
        device = resolve_device(device)
    return "full" if str(device).startswith("cuda") else "quick"


# --------------------------------------------------------------------------- tables
def list_experiments(names: list[str] | None = None) -> pd.DataFrame:
    """One row per experiment of ``names`` (default: those that train, :func:`trained`; the
    CLI's ``list`` gives every row of :data:`EXPERIMENTS`): name, problem, notebook, runs and
    run-steps (Σ T) per profile, then a row of the distinct runs of all of them (shared runs
    count once). Time on this device: :func:`modarith.runtime.plan.plan`."""
    rows, distinct = [], {p: {} for p in PROFILES}
    for name in trained() if names is None else names:
        e = EXPERIMENTS[name]
        row = {"name": name, "problem": e.problem, "notebook": e.notebook}
        for p in PROFILES:
            cs = configs(check_choice("experiment", name, EXPERIMENTS), p)
            row[f"runs_{p}"] = len(cs)
            row[f"run_steps_{p}"] = sum(c.total_steps for c in cs)
            distinct[p].update(dict.fromkeys(cs))
        rows.append(row)
    total = {"name": "all (distinct runs)", "problem": "", "notebook": ""}
    for p in PROFILES:
        total[f"runs_{p}"] = len(distinct[p])
        total[f"run_steps_{p}"] = sum(c.total_steps for c in distinct[p])
    return pd.DataFrame([*rows, total])


def values_text(values) -> str:
    """A set of values as text: ``0.5`` or ``{0.1, 0.2}``."""
    vals = sorted(set(values), key=lambda v: (str(type(v)), v))
    text = [f"{v:g}" if isinstance(v, float) else str(v) for v in vals]
    return text[0] if len(text) == 1 else "{" + ", ".join(text) + "}"


def changes(experiment: str, profile: str) -> pd.DataFrame:
    """What ``profile`` changes from SPEC's protocol (``full``) in ``experiment``.

    Columns ``model, field, full, <profile>``: one row per RunConfig field whose set of values
    differs, per model (``both`` when the models changed alike), an ``alpha`` row when the
    T_max slices differ, and a last ``runs`` row (runs, Σ T). Computed from the configs the two
    profiles expand to, so it cannot drift from what runs.
    """
    fc, mc = configs(experiment, "full"), configs(experiment, profile)
    rows: dict[tuple, dict] = {}
    for f in (f.name for f in fields(RunConfig) if f.name != "model"):
        for m in dict.fromkeys(c.model for c in fc):
            a = values_text(getattr(c, f) for c in fc if c.model == m)
            b = values_text(getattr(c, f) for c in mc if c.model == m)
            if a != b:
                key = (f, a, b)
                if key in rows:
                    rows[key]["model"] = "both"
                else:
                    rows[key] = {"model": m, "field": f, "full": a, profile: b}
    out = list(rows.values())
    if EXPERIMENTS[experiment].alphas:
        full, mine = knobs(experiment, "full").alphas, knobs(experiment, profile).alphas
        if full != mine:
            out.append({"model": "both", "field": "alpha", "full": values_text(full),
                        profile: values_text(mine)})
    out.append({"model": "both", "field": "runs",
                "full": f"{len(fc)} runs, {sum(c.total_steps for c in fc):,} steps",
                profile: f"{len(mc)} runs, {sum(c.total_steps for c in mc):,} steps"})
    return pd.DataFrame(out, columns=["model", "field", "full", profile])


def reductions(profile: str = "quick") -> pd.DataFrame:
    """:func:`changes` of every experiment that reproduces the seed (:func:`reproduced`; a
    design's own profiles are its notebook's to tell) in one frame (column ``experiment`` first)."""
    return pd.concat([changes(n, profile).assign(experiment=n) for n in reproduced()],
                     ignore_index=True)[["experiment", "model", "field", "full", profile]]


# =========================================================================== time to grok
GROK_THRESHOLD = 0.99  # A_val at or above this (and staying there) counts as grokked


# =========================================================================== time_law (52_time_law)
# The time to grok against the initial scale α and η·λ (AdamW, decoupled weight decay), on the
# MLP: every arm on the same seeds (a seed fixes the split and the initial weights before the ×α),
# each run stopping once it has grokked (A_val ≥ threshold at `window` consecutive evaluations),
# so a slow arm costs its own steps only. Pilots ran on seeds ≥ 1000, never measured.
TIME_LAW = {
    "smoke": {"base": {"model": "mlp", "p": 11, "num_layers": 2, "d_model": 16, "lr": 1e-2, "clip_norm": 0.0,
                       "eval_dense": 0, "eval_every": 10}, "steps": 60,
              "alphas": (1.0, 4.0), "weight_decays": (1.0, 3.0), "seeds": (0, 1), "threshold": 0.5, "window": 2},
    "quick": {"base": {"model": "mlp", "p": 31, "num_layers": 2, "d_model": 64, "lr": 1e-2, "clip_norm": 0.0,
                       "eval_dense": 0, "eval_every": 25}, "steps": 6_000,
              "alphas": (1.0, 2.0, 4.0, 8.0, 16.0), "weight_decays": (1.0, 2.0, 4.0),
              "seeds": tuple(range(8)), "threshold": 0.95, "window": 4},
    "full": {"base": {"model": "mlp", "p": 31, "num_layers": 2, "d_model": 200, "lr": 1e-2, "clip_norm": 0.0,
                      "eval_dense": 0, "eval_every": 25}, "steps": 40_000,
             "alphas": (1.0, 2.0, 4.0, 8.0, 16.0, 32.0), "weight_decays": (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
             "seeds": tuple(range(16)), "threshold": 0.95, "window": 4},
}


def time_law_configs(profile: str) -> list[RunConfig]:
    """The runs of 52_time_law in ``profile``: α × λ × seeds over :data:`TIME_LAW`'s base run,
    each stopping once it has grokked (``stop_val_acc`` = the threshold, ``stop_window`` = the window)."""
    k = TIME_LAW[check_choice("profile", profile, PROFILES)]
    return [RunConfig(**k["base"], steps=k["steps"], init_scale=a, weight_decay=wd, seed=s,
                      stop_val_acc=k["threshold"], stop_window=k["window"])
            for a in k["alphas"] for wd in k["weight_decays"] for s in k["seeds"]]


# =========================================================================== softmax collapse (51_softmax_collapse)
# Notebook 51_softmax_collapse as data: the numerical-stability paper's headline first, at its authors'
# setting (positive controls), then the weight-decay question on the LSTM. Fixed arms on paired seeds;
# grokked = A_val >= threshold held for `window` consecutive evaluations (grok.grok_step).
# Their setting (Prieto et al. 2025, LucasPrietoAl/grokking-at-the-edge-of-numerical-stability: utils.py,
# models.py, grokking_experiments.py, run_main_experiments.sh Fig. 1): MLP 2 × 200 ReLU without biases on
# one-hot pairs, x + y mod 113, 40 % train, full batch, AdamW lr 1e-2, wd 0, β₂ 0.99 and ε 1e-25 (their
# defaults), no clipping. Their Fig. 1 runs: StableMax 8·10⁴ steps at β₂ 0.999; ⊥Grad 300 steps with the
# flag β₂ 0.99 — but their OrthoGrad wrapper builds its AdamW with lr and wd only and then loads the
# state dict into the wrapper, not into the AdamW that steps: the ⊥Grad run trains with AdamW's defaults
# β₂ 0.999, ε 1e-8 (checked by running their orthograd.py) — the arm below is what their code runs;
# float64 softmax 8·10⁴ steps.
COLLAPSE_MLP = {"model": "mlp", "p": 113, "r_train": 0.4, "num_layers": 2, "d_model": 200, "lr": 1e-2,
                "weight_decay": 0.0, "beta2": 0.99, "eps": 1e-25, "clip_norm": 0.0, "batch_size": 100_000,
                "record_collapse": True, "eval_dense": 0}
COLLAPSE_MLP_ARMS = {"softmax (float32)": {}, "float64 softmax": {"loss": "softmax64"},
                     "StableMax": {"loss": "stablemax", "beta2": 0.999},
                     "⊥Grad": {"orthograd": True, "beta2": 0.999, "eps": 1e-8}}
#: their horizons (run_main_experiments.sh, Fig. 1), in full-batch steps
COLLAPSE_REPORTED_T = {"softmax (float32)": 80_000, "float64 softmax": 80_000, "StableMax": 80_000, "⊥Grad": 300}
# The LSTM of the weight-decay question: L 2, d 64, p 31, r 0.5, full batch, clipping 1, AdamW (0.9, 0.999);
# the positive control (η, λ) = (1.2·10⁻², ½) grokked on every pilot seed by 3,000 steps (50_beyond's pilots).
COLLAPSE_LSTM = {"model": "lstm", "p": 31, "r_train": 0.5, "num_layers": 2, "d_model": 64, "batch_size": 512,
                 "record_collapse": True, "eval_dense": 0, "eval_every": 50}
COLLAPSE_LSTM_FIXED = {"AdamW, λ ½": {"lr": 1.2e-2, "weight_decay": 0.5},
                       "AdamW, λ 0": {"lr": 1.2e-2, "weight_decay": 0.0}}
# Grokfast, fairly: a 2 × 2 on our GPT (SPEC's GPT and AdamW otherwise), filter off/on × weight decay 0 / their
# 0.005; their EMA filter α 0.98, λ 2 (Lee et al. 2024; SPEC "Reference settings").
COLLAPSE_GROKFAST = {"model": "gpt", "eval_dense": 0, "eval_every": 50, "record_collapse": True}
COLLAPSE_GROKFAST_ARMS = {"AdamW, λ 0": {"weight_decay": 0.0},
                          "AdamW, λ 0.005": {"weight_decay": 0.005},
                          "Grokfast-EMA, λ 0": {"weight_decay": 0.0, "grokfast_alpha": 0.98, "grokfast_lamb": 2.0},
                          "Grokfast-EMA, λ 0.005": {"weight_decay": 0.005, "grokfast_alpha": 0.98,
                                                    "grokfast_lamb": 2.0}}
COLLAPSE_LSTM_TUNED = {"⊥Grad, λ 0": {"orthograd": True, "weight_decay": 0.0},
                       "StableMax, λ 0": {"loss": "stablemax", "weight_decay": 0.0},
                       "⊥Grad + StableMax, λ 0": {"orthograd": True, "loss": "stablemax", "weight_decay": 0.0}}

_COLLAPSE = {
    "smoke": {"mlp_short": {"base": {"p": 7, "d_model": 16, "steps": 30, "eval_every": 5},
                            "arms": ("⊥Grad", "softmax (float32)"), "seeds": (0, 1)},
              "mlp_long": {"base": {"p": 7, "d_model": 16, "steps": 30, "eval_every": 5},
                           "arms": ("softmax (float32)", "float64 softmax", "StableMax"), "seeds": (0, 1)},
              "lstm": {"base": {"p": 7, "num_layers": 1, "d_model": 8, "steps": 30, "eval_every": 5},
                       "fixed": ("AdamW, λ ½", "AdamW, λ 0"), "tuned": ("⊥Grad, λ 0", "StableMax, λ 0"),
                       "lr_grid": (1.2e-2, 3e-2), "tuning_seeds": (200,), "seeds": (0, 1),
                       "planned_lr": {"⊥Grad, λ 0": 1.2e-2, "StableMax, λ 0": 1.2e-2}},
              "grokfast": {"base": {"p": 7, "num_layers": 1, "d_model": 16, "steps": 30, "eval_every": 5, "lr": 1e-2},
                           "seeds": (0, 1)},
              "threshold": 0.99, "window": 2},
    "quick": {"mlp_short": {"base": {"steps": 300, "eval_every": 10}, "arms": ("⊥Grad", "softmax (float32)"),
                            "seeds": tuple(range(6)), "pilot_seeds": (100, 101)},
              "mlp_long": {"base": {"p": 31, "steps": 3_000, "eval_every": 50},
                           "arms": ("softmax (float32)", "float64 softmax", "StableMax"),
                           "seeds": tuple(range(6)), "pilot_seeds": (100, 101)},
              # no fixed AdamW arms in quick (their 12 runs × 75 CPU-s would double the budget): full has them
              "lstm": {"base": {"steps": 1_500}, "fixed": (),
                       "tuned": ("⊥Grad, λ 0", "StableMax, λ 0"), "lr_grid": (3e-3, 1.2e-2),
                       "tuning_seeds": (200,), "seeds": tuple(range(6)), "pilot_seeds": (100, 101),
                       "planned_lr": {"⊥Grad, λ 0": 1.2e-2, "StableMax, λ 0": 1.2e-2}},
              "threshold": 0.99, "window": 3},
    "full": {"mlp_short": {"base": {"steps": 300, "eval_every": 10}, "arms": ("⊥Grad", "softmax (float32)"),
                           "seeds": tuple(range(8))},
             "mlp_long": {"base": {"steps": 80_000, "eval_every": 500},
                          "arms": ("softmax (float32)", "float64 softmax", "StableMax"), "seeds": tuple(range(8))},
             "lstm": {"base": {"steps": 10_000}, "fixed": tuple(COLLAPSE_LSTM_FIXED),
                      "tuned": tuple(COLLAPSE_LSTM_TUNED), "lr_grid": (3e-3, 1.2e-2, 3e-2),
                      "tuning_seeds": (200, 201), "seeds": tuple(range(8)),
                      "planned_lr": dict.fromkeys(COLLAPSE_LSTM_TUNED, 1.2e-2)},
             "grokfast": {"base": {}, "seeds": tuple(range(8))},
             "threshold": 0.99, "window": 3},
}


def collapse_knobs(profile: str) -> dict:
    """Notebook 51_softmax_collapse's knobs in ``profile`` (plain data: the blocks ``mlp_short``,
    ``mlp_long``, ``lstm``, the bar and the window)."""
    return _COLLAPSE[check_choice("profile", profile, PROFILES)]


def collapse_arms(profile: str) -> dict[str, dict[str, dict]]:
    """Block -> arm name -> RunConfig keyword arguments (all but the seed; the LSTM's tuned arms
    once per rate of its grid, named ``"<arm> @ η <lr>"``)."""
    k = collapse_knobs(profile)
    mlp = {b: {a: {**COLLAPSE_MLP, **k[b]["base"], **COLLAPSE_MLP_ARMS[a]} for a in k[b]["arms"]}
           for b in ("mlp_short", "mlp_long")}
    lstm = {a: {**COLLAPSE_LSTM, **k["lstm"]["base"], **COLLAPSE_LSTM_FIXED[a]} for a in k["lstm"]["fixed"]}
    lstm.update({f"{a} @ η {lr:g}": {**COLLAPSE_LSTM, **k["lstm"]["base"], **COLLAPSE_LSTM_TUNED[a], "lr": lr}
                 for a in k["lstm"]["tuned"] for lr in k["lstm"]["lr_grid"]})
    out = {**mlp, "lstm": lstm}
    if "grokfast" in k:
        out["grokfast"] = {a: {**COLLAPSE_GROKFAST, **k["grokfast"]["base"], **ch} for a, ch in COLLAPSE_GROKFAST_ARMS.items()}
    return out


def collapse_configs(profile: str) -> list[RunConfig]:
    """Every run of notebook 51_softmax_collapse, for a plan made before tuning: each arm × its
    measured seeds, the LSTM's tuned arms at every rate of the grid on the tuning seeds, and their
    measured runs at the rate the pilot chose (``planned_lr``; if tuning chooses another rate,
    those runs train in addition when the notebook runs)."""
    k, arms = collapse_knobs(profile), collapse_arms(profile)
    out = [RunConfig(**kw, seed=s) for b in ("mlp_short", "mlp_long", "grokfast") if b in k
           for kw in arms[b].values() for s in k[b]["seeds"]]
    lstm = k["lstm"]
    for name, kw in arms["lstm"].items():
        arm = name.split(" @ ")[0]
        seeds = lstm["seeds"] if arm in lstm["fixed"] else lstm["tuning_seeds"] + (
            lstm["seeds"] if kw["lr"] == lstm["planned_lr"][arm] else ())
        out += [RunConfig(**kw, seed=s) for s in seeds]
    return out


# =========================================================================== the report's notebooks
@dataclass(frozen=True)
class Experiment:
    """One notebook of the report as data: its title, ``--only`` keys, and what it trains in a
    profile. One kind of row: a seed experiment names its ``models`` and the profile knobs its grid
    reads (:func:`knobs`); a design of its own is ``design(profile) -> list[RunConfig]``; a row
    with neither trains nothing (the parameter counts, the fidelity summary). A registered model
    joins no experiment unless a row names it."""

    problem: str  # seed problem number(s), e.g. "4.3" ("" when none)
    title: str  # the notebook's title (its first heading)
    notebook: str  # notebook file stem under notebooks/
    models: tuple[str, ...] = ()  # architectures its grid trains (the seed's rows name SEED_MODELS)
    keys: tuple[str, ...] = ()  # what --only accepts besides the row's name (problem numbers)
    grid: dict = field(default_factory=dict)  # swept RunConfig field -> profile knob of its values
    fixed: dict = field(default_factory=dict)  # RunConfig field -> profile knob (or literal tuple)
    steps: str = "steps"  # profile knob of T
    seeds: str = "seeds"  # profile knob of the seeds (falls back to "seeds")
    alphas: bool = False  # best values also sliced at T_max = α·T
    picks: tuple = ()  # (label, source experiment, model, {field: value or knob}) chosen runs
    design: Callable[[str], list[RunConfig]] | None = None  # profile -> its runs, for a row without a grid

    @property
    def trains(self) -> bool:
        return bool(self.models) or self.design is not None


EXPERIMENTS: dict[str, Experiment] = {
    "parameter_counts": Experiment("1, 2.6, 2.10", "Problems 1, 2.6 and 2.10 — Parameter counts",
                                   "00_parameter_counts", keys=("1", "2.6", "2.10", "params")),
    "sanity": Experiment("4.1–4.2", "Problems 4.1 and 4.2 — Sanity check", "41_sanity_check",
                         seeds="seeds_sanity", steps="steps_sanity", fixed={"lr": "lr_sanity"},
                         models=SEED_MODELS, keys=("4.1", "4.2")),
    "data_size": Experiment("4.3", "Problem 4.3 — Scaling the data size", "43_data_size",
                            grid={"r_train": "r_grid"}, models=SEED_MODELS, keys=("4.3",)),
    "orders": Experiment("4.4", "Problem 4.4 — Binary and ternary operations", "44_binary_ternary",
                         fixed={"p": "orders_p", "orders": (2, 3)}, steps="steps_orders", seeds="seeds_orders",
                         models=SEED_MODELS, keys=("4.4",)),
    "model_size": Experiment("4.5", "Problem 4.5 — Scaling the model size", "45_model_size",
                             grid={"num_layers": "L_grid", "d_model": "d_grid"}, models=SEED_MODELS, keys=("4.5",)),
    "compute": Experiment("4.6", "Problem 4.6 — Scaling the compute", "46_compute",
                          grid={"batch_size": "B_grid"}, steps="steps_compute", alphas=True, models=SEED_MODELS, keys=("4.6",)),
    "regularization": Experiment("4.7", "Problem 4.7 — Regularization", "47_regularization",
                                 models=("lstm",), grid={"weight_decay": "wd_grid"},
                                 steps="steps_regularization", keys=("4.7",)),
    "interpretability": Experiment(
        "4.8", "Problem 4.8 — Interpretability: attention maps", "48_interpretability",
        models=("gpt",), picks=(("sanity GPT", "sanity", "gpt", {}),
                                ("orders GPT (binary + ternary)", "orders", "gpt", {}),
                                ("model-size GPT", "model_size", "gpt", "size_pick")), keys=("4.8",)),
    "fidelity": Experiment("", "Fidelity — the seed's claims against our runs", "49_fidelity"),
    "collapse": Experiment("", "Softmax collapse — ⊥Grad and StableMax where their authors showed them, then on "
                               "the LSTM", "51_softmax_collapse", design=collapse_configs,
                           keys=("stablemax", "orthograd")),
    "time_law": Experiment("", "The time to grok against the initial scale and η·λ", "52_time_law",
                           design=time_law_configs, keys=("law",)),
}
