"""The seed report's experiments (Problems 4.1–4.8) as code: run grids per profile, figures,
tables and computed conclusions.

Each :class:`Experiment` expands to a list of :class:`RunConfig` for a *profile*:

* ``full`` — SPEC's protocol exactly (grids, p, T = 10⁴+1 / 2·10⁴+1 / 4·10⁴+1, seeds 0 and 42,
  both models unless SPEC says LSTM only). About 1.5 M training steps: meant for a GPU.
* ``quick`` — the whole report on a 2-core CPU in about 14 minutes (:data:`QUICK_SECONDS`), showing
  the same phenomena with labelled reductions (:func:`quick_reductions` prints them).
* ``smoke`` — a few seconds per experiment, for CI.

``"auto"`` picks ``full`` on CUDA and ``quick`` elsewhere. :func:`run_experiment` trains what is
missing through :func:`modarith.engine.train` (vectorised groups), loads what is stored and
returns an :class:`ExperimentResult` that draws the seed's figures, tables and conclusions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from modarith import analysis
from modarith.config import RunConfig

PROFILES = ("smoke", "quick", "full")
SEEDS = (0, 42)
MODELS = ("lstm", "gpt")

# --------------------------------------------------------------------------- profile knobs
# Everything a profile changes lives here; quick_reductions() derives its table from the
# configs these knobs produce, so the table cannot drift from what actually runs.
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
}

# Quick profile (2-core CPU): p = 23 instead of 31 (a step costs ~0.55×, and the GPT groks in
# 1.8k steps instead of 4.1k), d = 64, per-model learning rates (the LSTM barely moves at 3e-3
# within 4k steps at p = 23; at 1e-2 it reaches A_val ≥ 0.9 by 3.4k), one seed except the
# sanity check. Calibration runs (this CPU, r = 0.5, first step with A_val ≥ 0.9 / 0.99):
#   GPT  p=23 d=64 lr 3e-3: 1.6k / 1.8k   GPT  p=23 d=64 lr 1e-2: 1.1k / 1.4k (then unstable)
#   LSTM p=23 d=64 lr 1e-2: 3.4k / –      LSTM p=23 d=64 lr 3e-3: – (A_val 0.19 at 2.5k)
#   LSTM p=31 d=64 lr 1e-2: – (0.83 at 3k) LSTM p=31 d=32 lr 1e-2: 2.4k / – (0.99 at 4k)
#   GPT  p=17 d=64 lr 3e-3: – (0.80 at 2.5k)   GPT p=7 orders (2,3): – (0.81 at 2.5k)
_QUICK = {
    "base": {"p": 23},
    "model_base": {"lstm": {"d_model": 64, "lr": 1e-2}, "gpt": {"d_model": 64, "lr": 3e-3}},
    "seeds": (0,),
    "seeds_sanity": SEEDS,
    "steps": {"gpt": 2_301, "lstm": 4_001},
    "steps_orders": {"gpt": 1_001, "lstm": 1_501},
    "steps_compute": {"gpt": 2_301, "lstm": 4_001},
    "steps_regularization": {"lstm": 4_001},
    "r_grid": (0.3, 0.4, 0.5),
    "orders_p": 11,
    "L_grid": (1, 2),
    "d_grid": (32, 64),
    "B_grid": (64, 512),
    "wd_grid": (0.25, 0.5, 1.0),
    "alphas": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
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
}

_KNOBS = {"smoke": _SMOKE, "quick": _QUICK, "full": _FULL}

# Why each quick reduction was made: (experiment or "*", field[, model]) -> reason.
_WHY = {
    ("*", "p"): "a step costs ~0.55× of p = 31 (fewer equations) and the GPT groks in 1.8k "
                "steps instead of 4.1k (measured on this CPU)",
    ("orders", "p"): "SPEC's p = 11 for binary + ternary is kept",
    ("*", "seed"): "one seed; the sanity check keeps both seeds for Table 1's ± std",
    ("*", "lr", "gpt"): "lr 3e-3 groks ~2.5× sooner than 1e-3 (SPEC's CPU measurements)",
    ("*", "lr", "lstm"): "at p = 23 the LSTM does not generalise within 4k steps at 3e-3; "
                         "at 1e-2 it reaches A_val ≥ 0.9 by 3.4k (measured)",
    ("*", "d_model"): "d = 64 costs about half of d = 128 per step on a CPU and still groks",
    ("*", "steps", "gpt"): "the GPT reaches A_val ≥ 0.9 by 1.8k–2.0k steps at p = 23 (seeds "
                           "42, 0; measured)",
    ("*", "steps", "lstm"): "the LSTM reaches A_val ≥ 0.9 by 2.8k–3.4k steps at p = 23, lr 1e-2 "
                            "(seeds 42, 0; measured)",
    ("*", "steps"): "shortened to fit the CPU budget",
    ("orders", "steps"): "a p = 11 mixed-order step costs ~3× a p = 23 step; both orders of "
                         "the GPT reach A_val ≥ 0.9 by 400 steps, the LSTM's binary by 600 "
                         "(measured)",
    ("*", "runs"): "runs of the experiment (shared runs counted in each) and Σ T",
    ("data_size", "r_train"): "three fractions around the generalisation threshold (the runs "
                              "below 0.3 only memorise, above 0.5 cost more per step)",
    ("model_size", "num_layers"): "L = 3 dropped: the depth trend is read on L = 1, 2",
    ("model_size", "d_model"): "d = 128, 256 are too slow on a CPU; the width trend is read on "
                               "d = 32, 64",
    ("compute", "batch_size"): "the two ends 2⁶ and 2⁹ (a small-B step costs about as much as a "
                               "full-batch one on a CPU; B = 128 added ~85 s and sat between "
                               "them, measured)",
    ("compute", "steps"): "the same T as the other experiments (shares the B = 512 run); the "
                          "α slices still span memorisation and generalisation",
    ("regularization", "weight_decay"): "three weight decays keep the monotonicity question",
    ("regularization", "steps"): "the same T as the sanity LSTM (shares the weight decay 1 run)",
    ("interpretability", "num_layers"): "the biggest quick model-size GPT other than the "
                                        "sanity GPT",
    ("interpretability", "d_model"): "the biggest quick model-size GPT other than the sanity GPT",
}

# Measured wall time (s) of each experiment's quick profile on this project's 2-core CPU
# machine (torch 2 threads, fresh results folder, experiments in the order of EXPERIMENTS, runs
# shared with an earlier experiment counted there), training + figures (PNG + SVG). Per run,
# the least-loaded of three measurements (other processes shared the machine: at
# load average 3–4 the same runs took 2–4× longer, torch's threads then contend). Training per
# run: GPT p=23 d=64 ×2 seeds 46 s/run, LSTM ×2 seeds 48 s/run; single runs 16–62 s; the
# p = 11 mixed-order runs 47 s (GPT, 1k steps) and 55 s (LSTM, 1.5k steps). Total ≈ 824 s
# (13.7 min).
QUICK_SECONDS: dict[str, float] = {
    "sanity": 190.0, "data_size": 167.0, "orders": 106.0, "model_size": 181.0,
    "compute": 73.0, "regularization": 95.0, "interpretability": 12.0,
}


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile = {profile!r} is invalid: expected one of {PROFILES}")
    return profile


def _cfg(k: dict, model: str, **over) -> RunConfig:
    kw = {**k["base"], **k["model_base"][model], **over}
    return RunConfig(model=model, **kw)


def _seeds(k: dict, name: str) -> tuple[int, ...]:
    return k.get(f"seeds_{name}", k["seeds"])


def _T(k: dict, key: str, model: str) -> int:
    """Steps T of one kind (``steps``, ``steps_compute`` …), per model when given as a dict."""
    v = k.get(key, k["steps"])
    return v[model] if isinstance(v, dict) else v


def _sanity(k: dict) -> list[RunConfig]:
    return [_cfg(k, m, seed=s, steps=_T(k, "steps", m)) for m in MODELS for s in _seeds(k, "sanity")]


def _data_size(k: dict) -> list[RunConfig]:
    return [_cfg(k, m, r_train=r, seed=s, steps=_T(k, "steps", m))
            for m in MODELS for r in k["r_grid"] for s in _seeds(k, "data_size")]


def _orders(k: dict) -> list[RunConfig]:
    return [_cfg(k, m, p=k["orders_p"], orders=(2, 3), seed=s, steps=_T(k, "steps_orders", m))
            for m in MODELS for s in _seeds(k, "orders")]


def _model_size(k: dict) -> list[RunConfig]:
    return [_cfg(k, m, num_layers=L, d_model=d, seed=s, steps=_T(k, "steps", m))
            for m in MODELS for L in k["L_grid"] for d in k["d_grid"]
            for s in _seeds(k, "model_size")]


def _compute(k: dict) -> list[RunConfig]:
    return [_cfg(k, m, batch_size=B, seed=s, steps=_T(k, "steps_compute", m))
            for m in MODELS for B in k["B_grid"] for s in _seeds(k, "compute")]


def _regularization(k: dict) -> list[RunConfig]:
    return [_cfg(k, "lstm", weight_decay=w, seed=s, steps=_T(k, "steps_regularization", "lstm"))
            for w in k["wd_grid"] for s in _seeds(k, "regularization")]


def _interpretability(k: dict) -> list[RunConfig]:
    """The sanity GPT, the orders GPT and the biggest model-size GPT (largest L·d², seed 0)
    that is not the sanity GPT itself: no runs of its own; they are shared with (and usually
    already trained by) those experiments."""
    sanity = _sanity(k)[len(_seeds(k, "sanity"))]  # first GPT run
    orders = [c for c in _orders(k) if c.model == "gpt"][0]
    sizes = [c for c in _model_size(k) if c.model == "gpt" and c != sanity]
    biggest = max(sizes, key=lambda c: (c.num_layers * c.d_model**2, c.num_layers))
    return [sanity, orders, biggest]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Experiment:
    """One experiment of the seed report: what it sweeps and how it expands to runs."""

    name: str
    problem: str  # seed problem number(s), e.g. "4.3"
    title: str
    by: tuple[str, ...]  # RunConfig fields swept (curves and best values are grouped by them)
    figures_in_seed: str  # the seed's figures/tables this experiment reproduces
    _build: Callable[[dict], list[RunConfig]] = field(repr=False, compare=False)
    uses_alphas: bool = False  # best values sliced at T_max = α·T (Problem 4.6)

    def configs(self, profile: str) -> list[RunConfig]:
        """The run configs of this experiment in ``profile`` (one of :data:`PROFILES`)."""
        return self._build(_KNOBS[_check_profile(profile)])

    def alphas(self, profile: str) -> tuple[float, ...] | None:
        """α grid for T_max = α·T slices (compute experiment), else None."""
        return tuple(_KNOBS[_check_profile(profile)]["alphas"]) if self.uses_alphas else None


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment("sanity", "4.1–4.2", "Sanity check: memorisation, then generalisation", (),
                   "Figure 1, Table 1", _sanity),
        Experiment("data_size", "4.3", "Scaling data size (r_train)", ("r_train",),
                   "Figures 2–5", _data_size),
        Experiment("orders", "4.4", "Binary and ternary operations (p = 11)", (),
                   "Figures 6–8", _orders),
        Experiment("model_size", "4.5", "Scaling model size (L, d)", ("num_layers", "d_model"),
                   "Figures 9–18", _model_size),
        Experiment("compute", "4.6", "Scaling compute (B, α)", ("batch_size",),
                   "Figures 19–22", _compute, uses_alphas=True),
        Experiment("regularization", "4.7", "Regularization: weight decay and ‖θ‖₂ (LSTM)",
                   ("weight_decay",), "Figures 23–24", _regularization),
        Experiment("interpretability", "4.8", "Interpretability: attention maps of trained GPTs",
                   (), "Figures 25–27", _interpretability),
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ValueError naming the accepted names otherwise."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment = {name!r} is invalid: expected one of {tuple(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def configs(name: str, profile: str) -> list[RunConfig]:
    """Run configs of experiment ``name`` in ``profile``."""
    return get_experiment(name).configs(profile)


def resolve_profile(profile: str, device: str = "auto") -> str:
    """``"auto"`` -> ``"full"`` on CUDA, ``"quick"`` elsewhere; other values are checked."""
    if profile == "auto":
        if device == "auto":
            from modarith.engine import resolve_device

            device = resolve_device(device)
        return "full" if str(device).startswith("cuda") else "quick"
    if profile not in PROFILES:
        raise ValueError(f"profile = {profile!r} is invalid: expected one of {('auto', *PROFILES)}")
    return profile


def list_experiments() -> pd.DataFrame:
    """One row per experiment: name, problem, title, runs and run-steps (Σ T) per profile,
    plus a last row with the distinct runs of all experiments together (shared runs, e.g. the
    sanity check's r_train = 0.5 runs inside the data-size grid, count once)."""
    rows, distinct = [], {p: {} for p in PROFILES}
    for e in EXPERIMENTS.values():
        row = {"name": e.name, "problem": e.problem, "title": e.title}
        for p in PROFILES:
            cs = e.configs(p)
            row[f"runs_{p}"] = len(cs)
            row[f"run_steps_{p}"] = sum(c.total_steps for c in cs)
            distinct[p].update({c: None for c in cs})
        row["quick_time_s"] = QUICK_SECONDS.get(e.name, math.nan)
        rows.append(row)
    total = {"name": "all (distinct runs)", "problem": "", "title": ""}
    for p in PROFILES:
        total[f"runs_{p}"] = len(distinct[p])
        total[f"run_steps_{p}"] = sum(c.total_steps for c in distinct[p])
    total["quick_time_s"] = sum(QUICK_SECONDS.values()) if QUICK_SECONDS else math.nan
    rows.append(total)
    return pd.DataFrame(rows)


def _values_text(values) -> str:
    vals = sorted(set(values), key=lambda v: (str(type(v)), v))
    text = [analysis._fmt_value(v) if not isinstance(v, tuple) else str(v) for v in vals]
    return text[0] if len(text) == 1 else "{" + ", ".join(text) + "}"


def quick_reductions() -> pd.DataFrame:
    """How the quick profile departs from SPEC's protocol.

    Columns ``experiment, model, field, full, quick, why``: one row per distinct change of a
    RunConfig field (``experiment`` lists where it applies, ``all`` = every experiment that runs
    that model; ``model`` is ``both`` when LSTM and GPT changed alike), then one ``runs`` row per
    experiment (runs / Σ steps). Derived from the configs the two profiles actually expand to,
    so it cannot drift from them.
    """
    names = [f.name for f in fields(RunConfig) if f.name != "model"]
    changes: dict[tuple, list[str]] = {}
    totals = []
    for e in EXPERIMENTS.values():
        full, quick = e.configs("full"), e.configs("quick")
        for m in MODELS:
            fm = [c for c in full if c.model == m]
            qm = [c for c in quick if c.model == m]
            for f in names:
                fv, qv = {getattr(c, f) for c in fm}, {getattr(c, f) for c in qm}
                if fv != qv:
                    key = (m, f, _values_text(fv), _values_text(qv))
                    changes.setdefault(key, []).append(e.name)
        fa, qa = e.alphas("full"), e.alphas("quick")
        if fa != qa:
            changes.setdefault(("both", "alpha", _values_text(fa), _values_text(qa)), []).append(e.name)
        totals.append({"experiment": e.name, "model": "both", "field": "runs",
                       "full": f"{len(full)} runs, {sum(c.total_steps for c in full):,} steps",
                       "quick": f"{len(quick)} runs, {sum(c.total_steps for c in quick):,} steps"})
    has_model = {m: [e.name for e in EXPERIMENTS.values()
                     if any(c.model == m for c in e.configs("full"))] for m in MODELS}
    rows: dict[tuple, dict] = {}
    for (m, f, fv, qv), exps in changes.items():
        where = "all" if m in has_model and exps == has_model[m] else ", ".join(exps)
        key = (where, f, fv, qv)
        if key in rows:  # LSTM and GPT changed alike
            rows[key]["model"] = "both"
        else:
            rows[key] = {"experiment": where, "model": m, "field": f, "full": fv, "quick": qv}
    out = sorted(rows.values(), key=lambda r: (r["experiment"] != "all", names.index(r["field"])
                                               if r["field"] in names else len(names)))
    out += totals
    for row in out:
        e, f, m = row["experiment"], row["field"], row["model"]
        e1 = e.split(", ")[0]
        row["why"] = _WHY.get((e1, f, m), _WHY.get((e1, f), _WHY.get(("*", f, m),
                                                                     _WHY.get(("*", f), ""))))
    return pd.DataFrame(out, columns=["experiment", "model", "field", "full", "quick", "why"])


# --------------------------------------------------------------------------- results
DEFAULT_EQUATIONS = {"binary": "0 + 3 =", "ternary": "1 + 2 + 3 ="}


@dataclass
class ExperimentResult:
    """Records of one experiment plus the analysis the seed report makes of them."""

    name: str
    profile: str
    device: str
    records: list
    results: str | Path = "results"
    figure_paths: list[Path] = field(default_factory=list)
    _models: dict | None = field(default=None, repr=False)

    @property
    def experiment(self) -> Experiment:
        return get_experiment(self.name)

    # ---- frames ------------------------------------------------------------------------
    def _by(self, by) -> tuple[str, ...]:
        return self.experiment.by if by is None else tuple([by] if isinstance(by, str) else by)

    def curves(self, by=None) -> pd.DataFrame:
        """Mean ± std curves over seeds (:func:`analysis.curves_frame`), grouped by the
        experiment's swept fields unless ``by`` is given."""
        return analysis.curves_frame(self.records, self._by(by))

    def best(self, by=None, t_max: float | None = None, alphas=None, params: bool | None = None,
             quantities=analysis.QUANTITIES) -> pd.DataFrame:
        """Best values and t_f, mean ± std over seeds (:func:`analysis.best_frame`).

        Defaults per experiment: the compute experiment slices at T_max = α·T for its α grid
        (column ``alpha``) unless ``t_max`` or ``alphas`` is given; the model-size experiment
        adds the non-embedding parameter count ``P``.
        """
        if alphas is None and t_max is None and self.experiment.uses_alphas:
            alphas = self.experiment.alphas(self.profile)
        if params is None:
            params = self.name == "model_size"
        return analysis.best_frame(self.records, self._by(by), t_max=t_max, alphas=alphas,
                                   params=params, quantities=quantities)

    def summary(self) -> pd.DataFrame:
        """Compact table: one row per configuration, ``mean ± std (t_f)`` per quantity."""
        if self.name == "interpretability":
            raise ValueError("experiment = 'interpretability' has no metric summary; use models()")
        best = analysis.best_frame(self.records, self.experiment.by,
                                   params=self.name == "model_size")
        keys = ["model", *self.experiment.by]
        rows = []
        for key, g in best.groupby(keys, sort=False):
            row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
            row["model"] = analysis.MODEL_NAMES.get(row["model"], row["model"])
            for _, r in g.iterrows():
                q = r["quantity"]
                row[q] = (f"{analysis._fmt(r['best_mean'], q)} ± {analysis._fmt(r['best_std'], q)}"
                          f" (t_f {analysis._fmt(r['tf_mean'], 'tf')})")
            rows.append(row)
        return pd.DataFrame(rows)

    # ---- tables ------------------------------------------------------------------------
    def table(self):
        """Table 1 (sanity check only) as a pandas Styler, ours beside the seed's."""
        self._only("sanity", "table")
        return analysis.table1_html(self.records)

    def table_frame(self) -> pd.DataFrame:
        """Table 1 (sanity check only) as numbers: :func:`analysis.table1`."""
        self._only("sanity", "table_frame")
        return analysis.table1(self.records)

    def table_text(self) -> str:
        """Table 1 (sanity check only) as plain text, ours beside the seed's."""
        self._only("sanity", "table_text")
        return analysis.table1_text(self.records)

    def _only(self, name: str, what: str) -> None:
        if self.name != name:
            raise ValueError(f"experiment = {self.name!r}: {what}() exists only for {name!r}")

    # ---- interpretability ----------------------------------------------------------------
    def _labels(self) -> list[str]:
        self._only("interpretability", "models")
        out = []
        for label, rec in zip(("sanity GPT", "orders GPT (binary + ternary)", "model-size GPT"),
                              self.records):
            c = rec.config
            if label == "model-size GPT":
                label = f"model-size GPT (L = {c.num_layers}, d = {c.d_model})"
            out.append(label)
        return out

    def models(self) -> dict[str, tuple]:
        """Interpretability: name -> (model, tokenizer, seq_len) of the chosen trained GPTs
        (the sanity GPT, the binary+ternary GPT, the biggest model-size GPT), loaded from the
        results store once and cached."""
        from modarith.data import Tokenizer
        from modarith.engine import load_model

        if self._models is None:
            self._models = {
                label: (load_model(rec, self.results), Tokenizer(rec.config.p, rec.config.operator),
                        rec.config.seq_len)
                for label, rec in zip(self._labels(), self.records)}
        return self._models

    def equations(self) -> dict[str, list[str]]:
        """Interpretability: the equations drawn per model: ``"0 + 3 ="``; for the mixed-order
        GPT a ternary one and the same binary one (padded to S = 8)."""
        out = {}
        for label, rec in zip(self._labels(), self.records):
            eqs = [DEFAULT_EQUATIONS["binary"]]
            if 3 in rec.config.orders:
                eqs = [DEFAULT_EQUATIONS["ternary"], DEFAULT_EQUATIONS["binary"]]
            out[label] = eqs
        return out

    def attention(self) -> dict[tuple[str, str], object]:
        """Interpretability: (model name, equation) -> :class:`attention.AttentionResult`."""
        from modarith.attention import attention_maps

        models = self.models()
        out = {}
        for label, eqs in self.equations().items():
            model, tok, seq_len = models[label]
            for eq in eqs:
                out[(label, eq)] = attention_maps(model, tok, eq, seq_len)
        return out

    # ---- figures -----------------------------------------------------------------------
    def figures(self, out_dir: str | Path | None = "figures", dpi: int = 120
                ) -> list[tuple[str, object, str]]:
        """Every seed figure type of this experiment as ``(key, fig, caption)``; saved as PNG
        (``dpi``) and SVG under ``<out_dir>/<experiment>/<key>`` unless ``out_dir`` is None;
        the paths written are in ``self.figure_paths``."""
        from modarith import plots

        figs = []
        models = [m for m in MODELS if any(r.config.model == m for r in self.records)]
        n = self.name
        if n == "interpretability":
            from modarith.attention import attention_figure

            seed_fig = {0: 25, 1: 26, 2: 27}
            equations = self.equations()
            for i, (label, (model, tok, seq_len)) in enumerate(self.models().items()):
                for eq in equations[label]:
                    fig, caption, _ = attention_figure(model, tok, eq, seq_len)
                    fig.suptitle(f"{label}: {fig.get_suptitle()}")
                    key = f"{('sanity', 'orders', 'model_size')[i]}_gpt_{_slug(eq)}"
                    figs.append((key, fig, f"{label}. {caption} (seed: Figure {seed_fig[i]})"))
        else:
            curves = self.curves()
            best = self.best() if n != "orders" and n != "sanity" else None
            if n == "sanity":
                figs.append(("train_val", *plots.plot_train_val(curves, models), 1))
            elif n == "data_size":
                for i, m in enumerate(models):
                    figs.append((f"{m}_sweep", *plots.plot_sweep(curves, m, "r_train"), 2 + i))
                for i, m in enumerate(models):
                    figs.append((f"{m}_best", *plots.plot_best(best, m, "r_train"), 4 + i))
            elif n == "orders":
                figs.append(("train_val", *plots.plot_train_val(curves, models), 6))
                for i, m in enumerate(models):
                    figs.append((f"{m}_orders", *plots.plot_orders(curves, m), 7 + i))
            elif n == "model_size":
                for i, m in enumerate(models):
                    for j, L in enumerate(sorted(set(curves["num_layers"]))):
                        figs.append((f"{m}_L{L}", *plots.plot_sweep(
                            curves, m, "d_model", log2=True, fixed={"num_layers": L}),
                            9 + 3 * i + j))
                for i, m in enumerate(models):
                    figs.append((f"{m}_bars", *plots.plot_best_bars(best, m), 15 + i))
                for i, m in enumerate(models):
                    figs.append((f"{m}_params", *plots.plot_best_vs_params(best, m), 17 + i))
            elif n == "compute":
                for i, m in enumerate(models):
                    figs.append((f"{m}_sweep", *plots.plot_sweep(curves, m, "batch_size",
                                                                 log2=True), 19 + i))
                for i, m in enumerate(models):
                    figs.append((f"{m}_alpha", *plots.plot_compute(best, m), 21 + i))
            elif n == "regularization":
                metrics = ("train_loss", "val_loss", "train_acc", "val_acc", "param_norm")
                figs.append(("lstm_sweep", *plots.plot_sweep(curves, "lstm", "weight_decay",
                                                             metrics=metrics), 23))
                figs.append(("lstm_best", *plots.plot_best(best, "lstm", "weight_decay"), 24))
            figs = [(k, f, f"{c} (seed: Figure {s})") for k, f, c, s in figs]
        if out_dir is not None:
            self.figure_paths = []
            for key, fig, _ in figs:
                self.figure_paths += plots.save_figure(fig, Path(out_dir) / n / key, dpi=dpi)
        return figs

    # ---- conclusions --------------------------------------------------------------------
    def conclusions(self) -> list[str]:
        """The seed's questions for this experiment answered by sentences built from our data."""
        n = self.name
        if n == "sanity":
            return analysis.conclude_sanity(self.best())
        if n == "data_size":
            return analysis.conclude_data_size(self.best())
        if n == "orders":
            return analysis.conclude_orders(self.best(quantities=analysis.ORDER_QUANTITIES))
        if n == "model_size":
            return analysis.conclude_model_size(self.best(params=True))
        if n == "compute":
            best = analysis.best_frame(self.records, self.experiment.by,
                                       alphas=self.experiment.alphas(self.profile), compute=True)
            return analysis.conclude_compute(best)
        if n == "regularization":
            return analysis.conclude_regularization(self.best(), self.records)
        return analysis.conclude_attention(self.attention())

    def caveat(self) -> str:
        """One line saying which protocol produced these numbers."""
        if self.profile == "full":
            return "Numbers from the full protocol of SPEC (the seed's grids, steps and seeds)."
        return (f"Numbers from the '{self.profile}' profile, not the seed's protocol: see "
                "experiments.quick_reductions() for every change.")

    # ---- notebook display ----------------------------------------------------------------
    def show(self, figures_dir: str | Path | None = "figures", dpi: int = 120) -> None:
        """Display every figure followed by its caption ("**Figure k.** …"), then the tables
        and the conclusions as a bulleted list (Markdown in IPython, plain text otherwise)."""
        import matplotlib.pyplot as plt

        ip = _ipython()
        figs = self.figures(figures_dir, dpi=dpi)
        for k, (_, fig, caption) in enumerate(figs, 1):
            if ip:
                from IPython.display import Markdown, display

                display(fig)
                display(Markdown(f"**Figure {k}.** {caption}"))
            else:
                print(f"Figure {k}. {caption}")
            plt.close(fig)
        if not ip and self.figure_paths:
            print("Saved: " + ", ".join(str(p) for p in self.figure_paths))
        tables = []
        if self.name == "sanity":
            tables.append(("Table 1", self.table(), self.table_text()))
        elif self.name != "interpretability":
            frame = self.summary()
            tables.append(("Best values", frame, frame.to_string(index=False)))
        for title, obj, text in tables:
            if ip:
                from IPython.display import Markdown, display

                display(Markdown(f"**{title}.**"))
                display(obj)
            else:
                print(f"{title}.\n{text}")
        lines = [self.caveat(), *self.conclusions()]
        if ip:
            from IPython.display import Markdown, display

            display(Markdown("**Conclusions computed from the data.**\n\n"
                             + "\n".join(f"- {s}" for s in lines)))
        else:
            print("Conclusions computed from the data:\n" + "\n".join(f"- {s}" for s in lines))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.replace("+", "plus")).strip("_")


def _ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"


# --------------------------------------------------------------------------- entry points
def run_experiment(name: str, profile: str = "auto", results: str | Path = "results",
                   device: str = "auto", force: bool = False, progress: bool = True
                   ) -> ExperimentResult:
    """Train the missing runs of experiment ``name`` (vectorised groups), load the stored ones.

    Prints the resolved profile and device on its first line. ``profile``: ``"auto"`` (full on
    CUDA, quick elsewhere), ``"smoke"``, ``"quick"`` or ``"full"``.
    """
    from modarith.engine import resolve_device, train

    exp = get_experiment(name)
    if profile != "auto":
        resolve_profile(profile)  # validate before touching the device
    dev = resolve_device(device)
    prof = resolve_profile(profile, dev)
    cs = exp.configs(prof)
    print(f"{name} (Problem {exp.problem}): profile = {prof}, device = {dev}, {len(cs)} runs, "
          f"{sum(c.total_steps for c in cs):,} steps", flush=True)
    records = train(cs, results=results, device=dev, force=force, progress=progress)
    return ExperimentResult(name, prof, dev, records, results)


def main_run(name: str, profile: str = "auto", results: str | Path = "results",
             device: str = "auto", figures: str | Path = "figures", force: bool = False,
             progress: bool = True) -> ExperimentResult:
    """CLI ``run``: train/load, write the figures, print Table 1 (sanity), the conclusions and
    the figure paths."""
    import matplotlib.pyplot as plt

    res = run_experiment(name, profile, results, device, force, progress)
    for _, fig, _ in res.figures(figures):
        plt.close(fig)
    if name == "sanity":
        print(res.table_text())
    print(res.caveat())
    for s in res.conclusions():
        print(f"- {s}")
    print("Figures:")
    for p in res.figure_paths:
        print(f"  {p}")
    return res


def main_list() -> pd.DataFrame:
    """CLI ``list``: print the experiments and how many runs / steps each profile needs."""
    frame = list_experiments()
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(frame.to_string(index=False))
    return frame
