"""A fair comparison of training recipes ("arms") by their time to grok.

The protocol, as data (:class:`Comparison`) and code (:func:`run_comparisons`):

1. **Paired seeds.** Every arm trains the same measured seeds (≥ 8 by default); a seed fixes
   the train/validation split and the initial weights, so arm A and arm B of seed s differ
   only in the recipe.
2. **Each arm at its own best learning rate.** For each arm, every learning rate of a small
   grid trains on *tuning* seeds kept apart from the measured ones; the arm's rate is the one
   with the smallest mean time to grok on them (a run that does not grok counts T, its last
   step; ties: more runs grokked, then the lower mean final validation loss). Best against
   best: no arm is judged at a rate tuned for another.
3. **Censored runs stay censored.** Times come from :func:`modarith.study.grok.grok_frame` (A_val
   ≥ 0.99 and staying there); the statistics (:mod:`modarith.study.survival`) are Kaplan–Meier
   medians with intervals, the log-rank test and the paired per-seed ratio.

Nothing here knows an experiment: the arms, grids and seeds are given (``modarith.study.protocol``
holds the notebook's, and the data classes :class:`Arm` and :class:`Comparison`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modarith.models.config import RunConfig, run_id
from modarith.runtime.engine import train
from modarith.study.grok import grok_frame
from modarith.study.protocol import GROK_THRESHOLD, MIN_SEEDS, Arm, BeyondKnobs, Comparison  # noqa: F401 (comparisons as data live there)
from modarith.study.survival import (
    describe_median,
    fmt_p,
    fmt_steps,
    km_curve,
    km_median,
    logrank,
    paired_ratios,
    paired_summary,
)


@dataclass(frozen=True)
class Design:
    """Arms at fixed hyper-parameters on paired seeds, with no tuning: each arm's changes
    (learning rate included) are given, every arm trains every seed. Grokked = A_val ≥
    ``threshold`` held for ``window`` consecutive evaluations (:func:`modarith.study.grok.grok_step`)."""

    name: str
    base: dict  # RunConfig keyword arguments shared by every arm
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    threshold: float = GROK_THRESHOLD
    window: int | None = None  # None: A_val must stay >= threshold to the end

    def __post_init__(self):
        object.__setattr__(self, "arms", tuple(self.arms))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.arms or len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError(f"Design.arms = {[a.name for a in self.arms]!r} is invalid: expected at "
                             "least one arm, with distinct names")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Design.seeds = {self.seeds!r} is invalid: expected distinct seeds")
        for a in self.arms:
            if "seed" in a.changes:
                raise ValueError(f"Arm {a.name!r} changes 'seed': seeds are set by Design.seeds")
            self.config(a, self.seeds[0])  # a valid RunConfig (errors name the field)

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise ValueError(f"arm = {name!r} is invalid: expected one of {[a.name for a in self.arms]}")

    def config(self, arm: Arm, seed: int) -> RunConfig:
        return RunConfig(**{**self.base, **arm.changes, "seed": seed})

    def configs(self, arms=None) -> list[RunConfig]:
        """Every arm (or the named ``arms``) × seed, arm by arm."""
        chosen = [self.arm(n) for n in arms] if arms is not None else self.arms
        return [self.config(a, s) for a in chosen for s in self.seeds]

    def frame(self, records) -> pd.DataFrame:
        """One row per run of ``records`` (of this design's configs): ``arm`` and
        :func:`modarith.study.grok.grok_frame`'s columns, plus ``final_val_loss`` and, where the
        runs log it, ``final_train_collapse`` and ``max_train_collapse``."""
        arm_of = {run_id(self.config(a, s)): a.name for a in self.arms for s in self.seeds}
        unknown = [r.run_id for r in records if r.run_id not in arm_of]
        if unknown:
            raise ValueError(f"records {unknown[:3]} are not runs of design {self.name!r}")
        f = grok_frame(records, self.threshold, window=self.window)
        f.insert(0, "arm", [arm_of[r] for r in f["run_id"]])
        f["final_val_loss"] = [float(r.history["val_loss"][-1]) for r in records]
        if all("train_collapse" in r.history for r in records):
            f["final_train_collapse"] = [float(r.history["train_collapse"][-1]) for r in records]
            f["max_train_collapse"] = [float(max(r.history["train_collapse"])) for r in records]
        return f


def design(knobs: BeyondKnobs) -> Design:
    """The arms of :class:`modarith.study.protocol.BeyondKnobs` as a :class:`Design` on its paired seeds."""
    return Design("beyond", knobs.base, [Arm(n, ch) for n, ch in knobs.arms().items()], knobs.seeds,
                  knobs.threshold, knobs.window)


def grokfast_design(knobs: BeyondKnobs) -> Design | None:
    """Grokfast at its authors' setting (a :class:`Design`), or None in this profile."""
    g = knobs.grokfast
    return None if g is None else Design("Grokfast", g["base"], [Arm(n, ch) for n, ch in g["arms"].items()],
                                         g["seeds"], g["threshold"], g["window"])


def arm_table(frame: pd.DataFrame, arms=None, level: float = 0.95) -> pd.DataFrame:
    """Per arm of ``frame`` (:meth:`Design.frame`), in order: ``arm, n, n_grokked, median,
    ci_low, ci_high, T`` (Kaplan–Meier, :func:`modarith.study.survival.km_median`)."""
    arms = list(dict.fromkeys(frame["arm"])) if arms is None else list(arms)
    return pd.DataFrame([{"arm": a, **km_median(frame.loc[frame.arm == a, "time"],
                                                frame.loc[frame.arm == a, "observed"], level)}
                         for a in arms])


def paired(frame: pd.DataFrame, reference: str, other: str, level: float = 0.95) -> dict:
    """``other`` against ``reference`` over the seeds both ran: :func:`paired_summary` of
    :func:`paired_ratios` (time_ref / time_other, > 1: other sooner; sign test and Wilcoxon
    signed-rank test of the log-ratios) and the log-rank test (``p_logrank``)."""
    a, b = frame[frame.arm == reference], frame[frame.arm == other]
    if a.empty or b.empty:
        raise ValueError(f"arms {reference!r} / {other!r}: one has no runs in the frame "
                         f"(arms: {sorted(set(frame.arm))})")
    out = paired_summary(paired_ratios(a, b), level)
    out["p_logrank"] = logrank(a["time"], a["observed"], b["time"], b["observed"])["p_value"]
    return out


def _frame(comparison: Comparison, configs: list[RunConfig], records) -> pd.DataFrame:
    arm_of = {}
    for a in comparison.arms:
        for c in configs:
            if c == comparison.config(a, c.lr, c.seed):
                arm_of.setdefault(run_id(c), a.name)
    f = grok_frame(records, comparison.threshold, comparison.stay)
    f.insert(0, "arm", [arm_of[r] for r in f["run_id"]])
    f.insert(0, "comparison", comparison.name)
    f["final_val_loss"] = [float(r.history["val_loss"][-1]) for r in records]
    return f


def choose_lr(tuning: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Each arm's learning rate from its tuning runs (one row per run: ``arm, lr, time,
    observed, final_val_loss``): the smallest mean time (censored runs at T), then the most
    runs grokked, then the lowest mean final validation loss. Returns ``(best, table)``."""
    table = (tuning.groupby(["arm", "lr"], sort=False)
             .agg(mean_time=("time", "mean"), n_grokked=("observed", "sum"), n=("observed", "size"),
                  mean_final_val_loss=("final_val_loss", "mean")).reset_index())
    table["chosen"] = False
    best = {}
    for arm, g in table.groupby("arm", sort=False):
        g = g.assign(_neg=-g["n_grokked"]).sort_values(["mean_time", "_neg", "mean_final_val_loss"],
                                                       kind="stable")
        best[arm] = float(g["lr"].iloc[0])
        table.loc[g.index[0], "chosen"] = True
    return best, table


@dataclass
class ComparisonResult:
    """The runs of one comparison: tuning frame, the chosen rates, the measured frame."""

    comparison: Comparison
    tuning: pd.DataFrame  # one row per tuning run
    lr_table: pd.DataFrame  # :func:`choose_lr`'s table
    best_lr: dict[str, float]
    measured: pd.DataFrame  # one row per measured run (grok_frame columns + arm)

    def arm_frame(self, arm: str) -> pd.DataFrame:
        self.comparison.arm(arm)
        return self.measured[self.measured.arm == arm]

    def medians(self, level: float = 0.95) -> pd.DataFrame:
        """Per arm: ``comparison, arm, lr, n, n_grokked, median, ci_low, ci_high, T``."""
        rows = []
        for a in self.comparison.arms:
            f = self.arm_frame(a.name)
            rows.append({"comparison": self.comparison.name, "arm": a.name, "lr": self.best_lr[a.name],
                         **km_median(f["time"], f["observed"], level)})
        return pd.DataFrame(rows)

    def curves(self, level: float = 0.95) -> dict[str, pd.DataFrame]:
        """Per arm, the Kaplan–Meier fraction grokked by step t (:func:`km_curve`)."""
        return {a.name: km_curve(self.arm_frame(a.name)["time"], self.arm_frame(a.name)["observed"], level)
                for a in self.comparison.arms}

    def versus(self, other: str, reference: str | None = None, level: float = 0.95) -> dict:
        """``other`` against ``reference`` (default: the first arm): both medians, the
        log-rank test, the paired per-seed ratio reference / other (> 1: other sooner) and
        a computed ``sentence``."""
        ref = reference or self.comparison.arms[0].name
        a, b = self.arm_frame(ref), self.arm_frame(other)
        ma, mb = km_median(a["time"], a["observed"], level), km_median(b["time"], b["observed"], level)
        lr = logrank(a["time"], a["observed"], b["time"], b["observed"])
        pairs = paired_ratios(a, b)
        ps = paired_summary(pairs, level)
        out = {"comparison": self.comparison.name, "reference": ref, "other": other,
               "median_ref": ma["median"], "median_other": mb["median"],
               "p_logrank": lr["p_value"], **{f"paired_{k}": v for k, v in ps.items()}}
        out["sentence"] = _sentence(self.comparison.name, ref, other, ma, mb, lr["p_value"], ps,
                                    self.best_lr, level)
        return out


def _sentence(name, ref, other, ma, mb, p, ps, best_lr, level) -> str:
    pct = f"{level:.0%}"
    text = (f"{name}: {ref} (lr {best_lr[ref]:g}) {describe_median(ma)}; {other} (lr {best_lr[other]:g}) "
            f"{describe_median(mb)}; log-rank {fmt_p(p)}. Paired over {ps['n']} seeds, {other} grokked "
            f"first on {ps['b_sooner']}, {ref} on {ps['a_sooner']}"
            + (f", {ps['undecided']} undecided (both censored or not comparable)" if ps["undecided"] else "")
            + f" (sign test {fmt_p(ps['sign_p'])})")
    if ps["n_exact"]:
        lo, hi = ps["ratio_low"], ps["ratio_high"]
        ci = (f"{pct} CI {lo:.2f}–{hi:.2f}" if math.isfinite(lo) and math.isfinite(hi)
              else "too few pairs for an interval")
        text += (f"; median per-seed speed-up {ref}/{other} = {ps['median_ratio']:.2f}× ({ci}, over the "
                 f"{ps['n_exact']} seeds where both grokked)")
    if p < 0.05 and ps["b_sooner"] != ps["a_sooner"]:
        verdict = f"{other} groks {'sooner' if ps['b_sooner'] > ps['a_sooner'] else 'later'} than {ref}"
    elif ma["n_grokked"] == 0 and mb["n_grokked"] == 0:
        verdict = "neither arm groks within the budget: this setting cannot tell them apart"
    else:
        verdict = f"no difference between {other} and {ref} is detected at this scale"
    return f"{text}. So {verdict}."


def run_comparisons(comparisons: list[Comparison], results: str | Path | None = "results",
                    device: str = "auto", force: bool = False, progress: bool = False,
                    workers: int | None = None) -> list[ComparisonResult]:
    """Tune, then measure, every comparison: one :func:`modarith.runtime.engine.train` call for all
    tuning runs (so they group and spread over workers), then one for all measured runs."""
    opts = dict(results=results, device=device, force=force, progress=progress, workers=workers)
    tuning_cfgs = [c.tuning_configs() for c in comparisons]
    recs = train([c for cs in tuning_cfgs for c in cs], **opts)
    tuning, i = [], 0
    for comp, cs in zip(comparisons, tuning_cfgs):
        tuning.append(_frame(comp, cs, recs[i:i + len(cs)]))
        i += len(cs)
    chosen = [choose_lr(t) for t in tuning]
    measured_cfgs = [comp.measured_configs(best) for comp, (best, _) in zip(comparisons, chosen)]
    recs = train([c for cs in measured_cfgs for c in cs], **opts)
    out, i = [], 0
    for comp, cs, t, (best, table) in zip(comparisons, measured_cfgs, tuning, chosen):
        out.append(ComparisonResult(comp, t, table, best, _frame(comp, cs, recs[i:i + len(cs)])))
        i += len(cs)
    return out



def scale_text(comparison: Comparison) -> str:
    """The scale of a comparison in words: 'GPT, p = 17, L = 2, d = 32, r_train 0.7, batch 20
    (9 per epoch), T = 1,500'."""
    c = comparison.config(comparison.arms[0], comparison.lr_grid[0], comparison.seeds[0])
    batch = "full batch" if c.steps_per_epoch == 1 else f"batch {c.batch_size} ({c.steps_per_epoch} per epoch)"
    return (f"{c.model.upper()}, p = {c.p}, L = {c.num_layers}, d = {c.d_model}, r_train {c.r_train:g}, "
            f"{batch}, T = {c.total_steps:,}")


def results_table(results: list[ComparisonResult], level: float = 0.95) -> pd.DataFrame:
    """One text row per comparison and arm, for reading (no ∞, no raw floats): ``comparison,
    arm, lr`` (chosen), ``grokked`` (n/N by T), ``median steps (CI)`` ("never (censored)" when
    not reached), ``log-rank vs first arm`` (the comparison's reference arm)."""
    rows = []
    for res in results:
        med = res.medians(level).set_index("arm")
        ref = res.comparison.arms[0].name
        for a in res.comparison.arms:
            m = med.loc[a.name]
            ci = (f" ({fmt_steps(m['ci_low'])} to {fmt_steps(m['ci_high'])})"
                  if math.isfinite(m["median"]) else "")
            p = "—" if a.name == ref else fmt_p(res.versus(a.name, level=level)["p_logrank"])
            rows.append({"comparison": res.comparison.name, "arm": a.name, "lr": f"{res.best_lr[a.name]:g}",
                         "grokked": f"{m['n_grokked']}/{m['n']}",
                         "median steps (CI)": f"{fmt_steps(m['median'])}{ci}", "log-rank vs first arm": p})
    return pd.DataFrame(rows)
