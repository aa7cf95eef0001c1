"""Arms (training recipes) compared by their time to grok, on paired seeds.

Every arm of a :class:`Design` trains the same seeds at fixed hyper-parameters (no rate is
tuned on any seed); a seed fixes the train/validation split and the initial weights, so arm A
and arm B of seed s differ only in the recipe. Times come from
:func:`modarith.study.grok.grok_frame`; censored runs stay censored: the statistics
(:mod:`modarith.study.survival`) are Kaplan–Meier medians with intervals (:func:`arm_table`),
the paired per-seed ratio and the log-rank test (:func:`paired`).

Nothing here knows an experiment: the arms and seeds are given (``modarith.study.protocol``
holds the notebook's knobs, :class:`modarith.study.protocol.BeyondKnobs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from modarith.models.config import RunConfig, run_id
from modarith.study.grok import grok_frame
from modarith.study.protocol import GROK_THRESHOLD, BeyondKnobs
from modarith.study.survival import km_median, logrank, paired_ratios, paired_summary


@dataclass(frozen=True)
class Arm:
    """One recipe: a name and the RunConfig fields it changes from the design's base."""

    name: str
    changes: dict = field(default_factory=dict)


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
