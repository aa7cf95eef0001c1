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
settings (folders, Google Drive) are :mod:`modarith.notebook`'s.

(Over 400 lines: the protocol is data — every profile's knobs and every notebook's row — and
reads best as one table of tables.)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import pandas as pd

from modarith.config import MODELS, RunConfig, did_you_mean

#: The repository the Colab badges open and the install cells pip-install from
#: (the environment variable ``MODARITH_REPO_URL`` overrides it in the install cell).
REPO_URL = "https://github.com/modarith/modarith"
#: The branch the Colab badges open; the install cells install its default branch unless
#: ``MODARITH_REF`` names a branch or tag (the release ``v`` + ``modarith.__version__``, the
#: version's one place).
REPO_REF = "main"

PROFILES = ("smoke", "quick", "full")
PROFILE_CHOICES = ("auto", *PROFILES)  # what a notebook or the build accepts (auto: by device)
DEVICES = ("auto", "cpu", "cuda", "mps")
SEEDS = (0, 42)

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
# the sanity check keeps both seeds. Issue 21 (benchmarks/CALIBRATION.md): at lr 3e-3 and
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
# without the token embedding (claim 11; issue 21.3).
_QUICK = {
    "base": {},  # p = 31, d = 128, L = 2, lr 1e-3, weight decay 1, batch 512 (SPEC)
    "model_base": {"lstm": {"snapshot_every": 500}, "gpt": {}},
    "seeds": (0,),
    "seeds_sanity": SEEDS,
    "lr_sanity": 1e-3,  # SPEC's lr
    "steps_sanity": 10_001,  # SPEC's T
    "steps": 10_001,  # SPEC's T
    "steps_orders": 5_001,  # a prefix of SPEC's 10⁴+1 (see above)
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
class Experiment:
    """One notebook of the report as data: its title, ``--only`` keys, and which knobs of a
    profile its runs read (``models=()``: it trains nothing)."""

    problem: str  # seed problem number(s), e.g. "4.3" ("" when none)
    title: str  # the notebook's title (its first heading)
    notebook: str  # notebook file stem under notebooks/
    models: tuple[str, ...] = MODELS  # architectures trained (() = none)
    keys: tuple[str, ...] = ()  # what --only accepts besides the row's name (problem numbers)
    grid: dict = field(default_factory=dict)  # swept RunConfig field -> profile knob of its values
    fixed: dict = field(default_factory=dict)  # RunConfig field -> profile knob (or literal tuple)
    steps: str = "steps"  # profile knob of T
    seeds: str = "seeds"  # profile knob of the seeds (falls back to "seeds")
    alphas: bool = False  # best values also sliced at T_max = α·T
    picks: tuple = ()  # (label, source experiment, model, {field: value or knob}) chosen runs


EXPERIMENTS: dict[str, Experiment] = {
    "parameter_counts": Experiment("1, 2.6, 2.10", "Problems 1, 2.6 and 2.10 — Parameter counts",
                                   "00_parameter_counts", models=(), keys=("1", "2.6", "2.10", "params")),
    "sanity": Experiment("4.1–4.2", "Problems 4.1 and 4.2 — Sanity check", "41_sanity_check",
                         seeds="seeds_sanity", steps="steps_sanity", fixed={"lr": "lr_sanity"},
                         keys=("4.1", "4.2")),
    "data_size": Experiment("4.3", "Problem 4.3 — Scaling the data size", "43_data_size",
                            grid={"r_train": "r_grid"}, keys=("4.3",)),
    "orders": Experiment("4.4", "Problem 4.4 — Binary and ternary operations", "44_binary_ternary",
                         fixed={"p": "orders_p", "orders": (2, 3)}, steps="steps_orders", keys=("4.4",)),
    "model_size": Experiment("4.5", "Problem 4.5 — Scaling the model size", "45_model_size",
                             grid={"num_layers": "L_grid", "d_model": "d_grid"}, keys=("4.5",)),
    "compute": Experiment("4.6", "Problem 4.6 — Scaling the compute", "46_compute",
                          grid={"batch_size": "B_grid"}, steps="steps_compute", alphas=True, keys=("4.6",)),
    "regularization": Experiment("4.7", "Problem 4.7 — Regularization", "47_regularization",
                                 models=("lstm",), grid={"weight_decay": "wd_grid"},
                                 steps="steps_regularization", keys=("4.7",)),
    "interpretability": Experiment(
        "4.8", "Problem 4.8 — Interpretability: attention maps", "48_interpretability",
        models=("gpt",), picks=(("sanity GPT", "sanity", "gpt", {}),
                                ("orders GPT (binary + ternary)", "orders", "gpt", {}),
                                ("model-size GPT", "model_size", "gpt", "size_pick")), keys=("4.8",)),
    "fidelity": Experiment("", "Fidelity — the seed's claims against our runs", "49_fidelity", models=()),
    # Its runs are fair comparisons (modarith.compare): configs("beyond", profile) gives them
    # from beyond_knobs (COMPARISON_EXPERIMENTS, below), so the build plans and trains them too.
    "beyond": Experiment("", "Beyond the report — why and when it groks", "50_beyond", models=(),
                         keys=("5", "grokking")),
}


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
    """Run configs of ``experiment`` in ``profile`` (what its notebook trains; [] for a row
    without models). A key of :data:`COMPARISON_EXPERIMENTS` (a notebook built on fair
    comparisons, whose measured runs' learning rates are chosen while it runs) gives that
    notebook's runs as its plan counts them."""
    if experiment in COMPARISON_EXPERIMENTS:
        return COMPARISON_EXPERIMENTS[experiment](check_choice("profile", profile, PROFILES)).configs()
    return knobs(experiment, profile).configs()


def trained() -> list[str]:
    """Names of the rows of :data:`EXPERIMENTS` that train runs (those with models)."""
    return [name for name, e in EXPERIMENTS.items() if e.models]


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
        from modarith.devices import resolve_device

        device = resolve_device(device)
    return "full" if str(device).startswith("cuda") else "quick"


# --------------------------------------------------------------------------- tables
def list_experiments(names: list[str] | None = None) -> pd.DataFrame:
    """One row per experiment of ``names`` (default: those that train, :func:`trained`; the
    CLI's ``list`` gives every row of :data:`EXPERIMENTS`): name, problem, notebook, runs and
    run-steps (Σ T) per profile, then a row of the distinct runs of all of them (shared runs
    count once). Time on this device: :func:`plan`."""
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
    full, mine = knobs(experiment, "full"), knobs(experiment, profile)
    fc, mc = full.configs(), mine.configs()
    rows: dict[tuple, dict] = {}
    for f in (f.name for f in fields(RunConfig) if f.name != "model"):
        for m in full.models:
            a = values_text(getattr(c, f) for c in fc if c.model == m)
            b = values_text(getattr(c, f) for c in mc if c.model == m)
            if a != b:
                key = (f, a, b)
                if key in rows:
                    rows[key]["model"] = "both"
                else:
                    rows[key] = {"model": m, "field": f, "full": a, profile: b}
    out = list(rows.values())
    if full.alphas != mine.alphas:
        out.append({"model": "both", "field": "alpha", "full": values_text(full.alphas),
                    profile: values_text(mine.alphas)})
    out.append({"model": "both", "field": "runs",
                "full": f"{len(fc)} runs, {sum(c.total_steps for c in fc):,} steps",
                profile: f"{len(mc)} runs, {sum(c.total_steps for c in mc):,} steps"})
    return pd.DataFrame(out, columns=["model", "field", "full", profile])


def reductions(profile: str = "quick") -> pd.DataFrame:
    """:func:`changes` of every experiment in one frame (column ``experiment`` first)."""
    return pd.concat([changes(n, profile).assign(experiment=n) for n in trained()],
                     ignore_index=True)[["experiment", "model", "field", "full", profile]]


# --------------------------------------------------------------------------- plan
# The plan is timed by the runner's side (modarith.plan); notebooks call it from here.
from modarith.plan import plan, plan_text  # noqa: E402, F401

# =========================================================================== beyond (50_beyond)
# Notebook 50_beyond as data: the progress-measure runs (weight snapshots), an optional
# reference run, and the fair comparisons (modarith.compare) of its three questions:
#   (a) Grokfast at its paper's recipe (Lee et al. 2024, README: torch.optim.Adam with coupled
#       L2 0.005, β₂ 0.98, lr 1e-3, 10-step warm-up, batch 512 ≈ 10 mini-batches per epoch, no
#       clipping, α 0.98, λ 2), scaled down to a CPU: a smaller p, batches of ≈ N_train / 10;
#   (b) Grokfast, ⊥Grad and StableMax on the seed's GPT and LSTM at SPEC's optimizer (AdamW,
#       weight decay 1, clipping at 1, full batch);
#   (c) AdamW with β₁ = α (a slower first moment) as a control of (b)'s Grokfast arm.
# Each comparison: paired measured seeds (8), each arm's lr from ``lr_grid`` on tuning seeds
# kept apart (100, 101, ...). The plan (and the build, which trains what the plan lists)
# counts the measured runs at ``planned_lr`` (model -> arm -> rate; default the grid's first):
# the rates tuning chose in the measured quick run of 2026-12-01 (tuning is deterministic).
GROKFAST_PAPER = {"grokfast_alpha": 0.98, "grokfast_lamb": 2.0}
BEYOND_SPEC_ARMS = (("AdamW", {}), ("AdamW + Grokfast", GROKFAST_PAPER),
                    ("AdamW + ⊥Grad", {"orthograd": True}), ("AdamW + StableMax", {"loss": "stablemax"}),
                    ("AdamW, β₁ = 0.98", {"beta1": 0.98}))
BEYOND_RECIPE_ARMS = (("Adam", {}), ("Adam + Grokfast", GROKFAST_PAPER), ("Adam, β₁ = 0.98", {"beta1": 0.98}))
# the Grokfast paper's optimizer, less the batch size (set per profile: ≈ 10 batches per epoch)
GROKFAST_RECIPE = {"optimizer": "adam", "weight_decay": 0.005, "beta2": 0.98, "warmup_steps": 10,
                   "clip_norm": 0.0}
MEASURED_SEEDS = tuple(range(8))

_BEYOND = {
    "smoke": {
        "progress": {"p": 7, "d_model": 16, "num_layers": 1, "lr": 1e-2, "steps": 30, "eval_dense": 5,
                     "eval_every": 5, "snapshots_log": 4},
        "progress_seeds": (0, 1),
        "comparisons": {
            "a": {"models": ("gpt",), "arms": BEYOND_RECIPE_ARMS, "threshold": 0.95,
                  "base": {**GROKFAST_RECIPE, "p": 7, "d_model": 8, "num_layers": 1, "num_heads": 2,
                           "batch_size": 3, "steps": 20, "eval_dense": 0, "eval_every": 5},
                  "lr_grid": (1e-2,), "tuning_seeds": (100,)},
            "b": {"models": ("gpt", "lstm"), "arms": BEYOND_SPEC_ARMS,
                  "base": {"p": 7, "d_model": 8, "num_layers": 1, "num_heads": 2, "steps": 20,
                           "eval_dense": 0, "eval_every": 5},
                  "lr_grid": (1e-2,), "tuning_seeds": (100,)},
        },
        "reference": None,
    },
    "quick": {  # sized by measurement on the 2-core CPU (see the notebook's knobs section)
        "progress": {"p": 17, "d_model": 32, "num_layers": 1, "r_train": 0.7, "lr": 1e-2, "steps": 2_500,
                     "eval_dense": 0, "eval_every": 25, "snapshots_log": 12, "snapshot_every": 250},
        "progress_seeds": (0, 1, 2),
        "comparisons": {
            "a": {"models": ("gpt",), "arms": BEYOND_RECIPE_ARMS, "threshold": 0.95,  # the paper's bar
                  "base": {**GROKFAST_RECIPE, "p": 17, "d_model": 32, "num_layers": 1, "r_train": 0.7,
                           "batch_size": 20, "steps": 3_000, "eval_dense": 0, "eval_every": 25},
                  "lr_grid": (3e-3, 1e-2), "tuning_seeds": (100,),
                  "planned_lr": {"gpt": {"Adam, β₁ = 0.98": 1e-2}}},
            "b": {"models": ("gpt", "lstm"), "arms": BEYOND_SPEC_ARMS,
                  "base": {"p": 17, "d_model": 32, "num_layers": 1, "r_train": 0.7, "steps": 2_500,
                           "eval_dense": 0, "eval_every": 25},
                  "lr_grid": (3e-3, 1e-2), "tuning_seeds": (100,),
                  "planned_lr": {"gpt": {"AdamW + Grokfast": 1e-2, "AdamW + ⊥Grad": 1e-2,
                                         "AdamW, β₁ = 0.98": 1e-2},
                                 "lstm": {"AdamW": 1e-2, "AdamW + Grokfast": 1e-2, "AdamW + ⊥Grad": 1e-2,
                                          "AdamW + StableMax": 1e-2}}},
        },
        "reference": None,
    },
    "full": {  # SPEC's models and optimizer; (a) at the paper's p = 97 (a GPU job)
        "progress": {"snapshots_log": 40, "snapshot_every": 500},
        "progress_seeds": (0, 42),
        "comparisons": {
            "a": {"models": ("gpt",), "arms": BEYOND_RECIPE_ARMS, "threshold": 0.95,  # the paper's bar
                  "base": {**GROKFAST_RECIPE, "p": 97, "batch_size": 512, "steps": 40_000,
                           "eval_dense": 0, "eval_every": 100},
                  "lr_grid": (1e-3, 3e-3), "tuning_seeds": (100, 101)},
            "b": {"models": ("gpt", "lstm"), "arms": BEYOND_SPEC_ARMS,
                  "base": {"eval_dense": 0, "eval_every": 50},
                  "lr_grid": (1e-3, 3e-3), "tuning_seeds": (100, 101)},
        },
        # Nanda et al.'s setting as far as our GPT allows (it keeps its post-norm LayerNorm):
        # p = 113, 1 layer, d 128, 4 heads, d_mlp 512, ReLU, AdamW lr 1e-3, wd 1, β₂ 0.98,
        # 30 % train, full batch. Known outcome (TransformerLens demo): test loss < 0.02 by
        # about step 14,400; five key frequencies.
        "reference": {"model": "gpt", "p": 113, "num_layers": 1, "d_model": 128, "num_heads": 4,
                      "multiplier": 4, "non_linearity": "relu", "lr": 1e-3, "weight_decay": 1.0,
                      "beta2": 0.98, "r_train": 0.3, "batch_size": 4_000, "steps": 25_000,
                      "eval_dense": 0, "eval_every": 100, "snapshots_log": 30, "snapshot_every": 1_000},
    },
}


@dataclass(frozen=True)
class BeyondKnobs:
    """Notebook 50_beyond's runs in one profile."""

    profile: str
    progress: dict  # model -> RunConfig keyword arguments of the progress-measure runs
    progress_seeds: tuple[int, ...]
    comparisons: dict  # key ("a_gpt", "b_lstm", ...) -> modarith.compare.Comparison
    reference: dict | None  # RunConfig keyword arguments of the reference run, or None

    def configs(self) -> list[RunConfig]:
        """Every run the notebook trains, as a plan counts them (see ``plan_configs``)."""
        out = [RunConfig(model=m, seed=s, **kw) for m, kw in self.progress.items() for s in self.progress_seeds]
        if self.reference is not None:
            out.append(RunConfig(seed=0, **self.reference))
        for c in self.comparisons.values():
            out += c.plan_configs()
        return out


def beyond_knobs(profile: str) -> BeyondKnobs:
    """The knobs of notebook 50_beyond in ``profile``."""
    from modarith.compare import Arm, Comparison
    from modarith.grok import GROK_THRESHOLD

    k = _BEYOND[check_choice("profile", profile, PROFILES)]
    comps = {}
    for key, spec in k["comparisons"].items():
        for m in spec["models"]:
            comps[f"{key}_{m}"] = Comparison(
                name=f"({key}) {m.upper()}", base={"model": m, **spec["base"]},
                arms=tuple(Arm(n, dict(ch)) for n, ch in spec["arms"]), lr_grid=spec["lr_grid"],
                tuning_seeds=spec["tuning_seeds"], seeds=MEASURED_SEEDS,
                threshold=spec.get("threshold", GROK_THRESHOLD),
                planned_lr=dict(spec.get("planned_lr", {}).get(m, {})))
    return BeyondKnobs(profile, {m: dict(k["progress"]) for m in MODELS}, tuple(k["progress_seeds"]), comps,
                       k["reference"])


COMPARISON_EXPERIMENTS = {"beyond": beyond_knobs}
