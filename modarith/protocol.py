"""The protocol as plain data: SPEC's grids, the reduced profiles, and the notebook settings.

Each experiment notebook builds its runs in plain sight from :func:`knobs`::

    knobs = protocol.knobs("data_size", settings.profile)
    configs = [RunConfig(model=m, r_train=r, seed=s, **knobs.base[m])
               for m in knobs.models for r in knobs.grid["r_train"] for s in knobs.seeds]

Profiles: ``full`` is SPEC's protocol exactly (about 1.5 M run-steps, a GPU job); ``quick``
shows the same phenomena on a 2-core CPU with labelled reductions (:func:`changes` prints
them); ``smoke`` takes seconds per experiment (CI). ``auto`` resolves to ``full`` on CUDA and
``quick`` elsewhere (:func:`resolve_profile`). Nothing here branches on an experiment's name:
the experiments are rows of :data:`EXPERIMENTS`, the profiles rows of :data:`PROFILE_KNOBS`.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from modarith.config import RunConfig, did_you_mean

#: The repository the Colab badges open and the install cells pip-install from
#: (the environment variable ``MODARITH_REPO_URL`` overrides it in the install cell).
REPO_URL = "https://github.com/modarith/modarith"
#: The tag the notebooks' install cells and Colab badges are pinned to.
REPO_REF = "v0.1.0"

PROFILES = ("smoke", "quick", "full")
DEVICES = ("auto", "cpu", "cuda", "mps")
MODELS = ("lstm", "gpt")
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
    """One experiment (one notebook) as data: which knobs of a profile it reads."""

    problem: str  # seed problem number(s), e.g. "4.3"
    title: str  # one line
    notebook: str  # notebook file stem under notebooks/
    models: tuple[str, ...] = MODELS  # architectures trained
    grid: dict = field(default_factory=dict)  # swept RunConfig field -> profile knob of its values
    fixed: dict = field(default_factory=dict)  # RunConfig field -> profile knob (or literal tuple)
    steps: str = "steps"  # profile knob of T
    seeds: str = "seeds"  # profile knob of the seeds (falls back to "seeds")
    alphas: bool = False  # best values also sliced at T_max = α·T
    picks: tuple = ()  # (label, source experiment, model, {field: value or knob}) chosen runs


EXPERIMENTS: dict[str, Experiment] = {
    "sanity": Experiment("4.1–4.2", "Sanity check: memorisation, then generalisation",
                         "41_sanity_check", seeds="seeds_sanity", steps="steps_sanity",
                         fixed={"lr": "lr_sanity"}),
    "data_size": Experiment("4.3", "Scaling the data size (r_train)", "43_data_size",
                            grid={"r_train": "r_grid"}),
    "orders": Experiment("4.4", "Binary and ternary operations", "44_binary_ternary",
                         fixed={"p": "orders_p", "orders": (2, 3)}, steps="steps_orders"),
    "model_size": Experiment("4.5", "Scaling the model size (L, d)", "45_model_size",
                             grid={"num_layers": "L_grid", "d_model": "d_grid"}),
    "compute": Experiment("4.6", "Scaling the compute (B, α)", "46_compute",
                          grid={"batch_size": "B_grid"}, steps="steps_compute", alphas=True),
    "regularization": Experiment("4.7", "Regularization: weight decay and ‖θ‖₂ (LSTM)",
                                 "47_regularization", models=("lstm",),
                                 grid={"weight_decay": "wd_grid"}, steps="steps_regularization"),
    "interpretability": Experiment(
        "4.8", "Interpretability: attention maps of trained GPTs", "48_interpretability",
        models=("gpt",), picks=(("sanity GPT", "sanity", "gpt", {}),
                                ("orders GPT (binary + ternary)", "orders", "gpt", {}),
                                ("model-size GPT", "model_size", "gpt", "size_pick"))),
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
    """Run configs of ``experiment`` in ``profile`` (what its notebook trains)."""
    return knobs(experiment, profile).configs()


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
def list_experiments() -> pd.DataFrame:
    """One row per experiment: name, problem, notebook, runs and run-steps (Σ T) per profile,
    then a row of the distinct runs of all experiments (shared runs count once). Time on this
    device: :func:`plan`."""
    rows, distinct = [], {p: {} for p in PROFILES}
    for name, e in EXPERIMENTS.items():
        row = {"name": name, "problem": e.problem, "notebook": e.notebook}
        for p in PROFILES:
            cs = configs(name, p)
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
    return pd.concat([changes(n, profile).assign(experiment=n) for n in EXPERIMENTS],
                     ignore_index=True)[["experiment", "model", "field", "full", profile]]


# --------------------------------------------------------------------------- plan
def _clock(device: str) -> float:
    """Wall clock after the device finished its queued work."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter()


def plan(configs: list[RunConfig], results: str | Path | None = None, device: str = "cpu",
         force: bool = False, measure: bool = True) -> pd.DataFrame:
    """What :func:`modarith.engine.train` will do with ``configs``: one row per vectorised
    group still to train (runs already stored in ``results`` are skipped unless ``force``).

    Columns ``group, model, runs, steps, run_steps, eta_s``. With ``measure``, ``eta_s`` is
    timed on ``device``: three updates and one evaluation of the group after a warm-up, scaled
    to its T updates and evaluations (a rough estimate: the first seconds of a run are not
    its average); else NaN.
    """
    from modarith.engine import group_configs
    from modarith.group import GroupTrainer
    from modarith.store import Store

    stored = set()
    if results is not None and Path(results).is_dir() and not force:
        store = Store(results)
        stored = {c for c in configs if store.record_path(c).exists()}
    rows = []
    for i, group in enumerate(group_configs([c for c in configs if c not in stored]), 1):
        c0 = group[0]
        eta = float("nan")
        if measure:
            trainer = GroupTrainer(group, device)
            trainer.update()
            trainer.update()
            trainer.evaluate()  # warm-up
            t0 = _clock(device)
            for _ in range(3):
                trainer.update()
            t1 = _clock(device)
            trainer.evaluate()
            t2 = _clock(device)
            eta = (t1 - t0) / 3 * c0.total_steps + (t2 - t1) * len(c0.eval_steps())
        rows.append({"group": i, "model": c0.model, "runs": len(group), "steps": c0.total_steps,
                     "run_steps": len(group) * c0.total_steps, "eta_s": eta})
    return pd.DataFrame(rows, columns=["group", "model", "runs", "steps", "run_steps", "eta_s"])


def plan_text(configs: list[RunConfig], results: str | Path | None = None, device: str = "cpu",
              force: bool = False) -> str:
    """The line a notebook prints before training: runs, vectorised groups, run-steps and
    the ETA on ``device`` (:func:`plan`)."""
    from modarith.engine import default_workers, group_configs

    table = plan(configs, results, device, force)
    todo, serial = int(table["runs"].sum()), float(table["eta_s"].sum())
    workers = min(default_workers(device, group_configs(configs)), max(todo, 1))
    # groups one after another / spread over the workers (a lower bound: the longest group)
    eta = max(serial / workers, float(table["eta_s"].max()) / max(1, workers // len(table) or 1)) \
        if todo else 0.0
    when = (f"ETA ≈ {eta / 60:.1f} min on {device} with {workers} worker(s) (timed: a few steps "
            f"per group; {serial / 60:.1f} min one group after another)" if todo
            else "nothing to train: every run is stored")
    return (f"{len(configs)} runs ({sum(c.total_steps for c in configs):,} run-steps); to train: "
            f"{todo} runs in {len(table)} vectorised group(s), "
            f"{int(table['run_steps'].sum()):,} run-steps; {when}.")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """A notebook's resolved parameters."""

    profile: str  # smoke | quick | full (never auto)
    device: str  # cpu | cuda | mps (never auto)
    results: Path  # results store (runs and checkpoints)
    figures: Path  # figures root; each experiment writes under figures/<experiment>/
    force: bool = False  # retrain runs that are already stored

    def caption(self) -> str:
        """The sentence every caption ends with: which profile the runs came from."""
        what = "SPEC's protocol" if self.profile == "full" else "a reduced protocol"
        return f"Runs of the {self.profile} profile ({what})."

    def __str__(self) -> str:
        return (f"profile {self.profile}, device {self.device}\nresults: {self.results}\n"
                f"figures: {self.figures}")


DRIVE_ROOT = Path("/content/drive")  # where Colab mounts Google Drive
DRIVE_DIR = DRIVE_ROOT / "MyDrive" / "modarith"  # results/ and figures/ on the Drive


def project_root(start: Path | None = None) -> Path | None:
    """The checkout holding the notebooks: the first folder from ``start`` (default: the
    working directory) upwards with both ``notebooks/`` and ``modarith/``; None if none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "modarith").is_dir():
            return folder
    return None


def _mount_drive() -> Path:
    try:
        from google.colab import drive  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError("results_dir = 'drive' needs Google Colab (it mounts Google Drive); "
                         "give a folder path instead") from None
    drive.mount(str(DRIVE_ROOT))
    return DRIVE_DIR


def settings(profile: str = "auto", device: str = "auto", results_dir: str = "auto",
             figures_dir: str = "auto", force: bool = False) -> Settings:
    """Validate and resolve a notebook's parameters; errors name the parameter.

    ``results_dir``: a folder, ``"auto"`` (``results/`` of the checkout, else of the working
    directory) or ``"drive"`` (Colab: mount Google Drive and keep the store, its checkpoints
    and, with ``figures_dir="auto"``, the figures under ``MyDrive/modarith/``, so a rerun after
    a disconnect resumes). ``figures_dir``: a folder or ``"auto"``.
    """
    from modarith.devices import resolve_device

    for name, v in (("results_dir", results_dir), ("figures_dir", figures_dir)):
        if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
            raise ValueError(f"{name} = {v!r} is invalid: give a folder path, 'auto'"
                             + (" or 'drive'" if name == "results_dir" else ""))
    if not isinstance(force, bool):
        raise ValueError(f"force = {force!r} is invalid: expected True or False")
    check_choice("profile", profile, ("auto", *PROFILES))
    check_choice("device", device, DEVICES)
    try:
        dev = str(resolve_device(device)).split(":")[0]
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"device = {device!r} cannot be used here: {err}") from err
    root = project_root() or Path.cwd()
    if results_dir == "drive":
        root = _mount_drive()
    results = root / "results" if results_dir in ("auto", "drive") else Path(results_dir)
    figures = root / "figures" if figures_dir == "auto" else Path(figures_dir)
    figures = figures.expanduser().resolve()
    figures.mkdir(parents=True, exist_ok=True)
    return Settings(resolve_profile(profile, dev), dev, results.expanduser().resolve(), figures,
                    force)
