"""What a report decides about the seed: an experiment's claims from the profile's runs, as
one family, and the seed's Table 1 cell by cell, as equivalence.

* :func:`keys` — the claims an experiment answers (``seed_claims.toml``);
  :func:`against_spec` — how its runs stand against SPEC's; :func:`answers` — its claims'
  :class:`modarith.study.claims.Answer` objects, decided together (Holm).
* :func:`profile_records` — the runs a verdict reads: the profile's configs only (or the
  ``seeds`` asked for), whatever else the store holds.
* :func:`decide_all` — every claim of a profile as one family; :func:`seeds_to_decide`,
  :func:`seeds_table` — for an inconclusive claim, the seeds that would decide it at the
  measured spread, and their run-steps (against :func:`build_run_steps`).
* :func:`table1` — each cell of the seed's Table 1 tested for equivalence with ours within
  :data:`MARGINS` (:func:`modarith.study.verdicts.equivalence`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from modarith.core.metrics import summarize
from modarith.study import analysis, claims, protocol, seed_report
from modarith.study import verdicts as vd

#: The seed's Table 1 runs: T 10,001, evaluated every 100 steps, so a t_f of 10,000 or 10,001 is
#: a best at its last evaluation (censored).
SEED_LAST_EVAL = 10_000
#: Table 1's equivalence margins, fixed before looking at our numbers.
MARGINS = {"loss": math.log(2.0), "accuracy": 0.01, "steps": 0.10}
MARGIN_TEXT = (f"equivalent: both one-sided tests at α {vd.ALPHA} inside the margin — losses within "
               f"×2, accuracies within {MARGINS['accuracy']:g}, step times within one evaluation "
               f"interval + {100 * MARGINS['steps']:.0f} % of the seed's value; different: the "
               "interval wholly outside it; a best at the last step (ours or the seed's) is a bound")


def keys(experiment: str, models: Iterable[str] | None = None) -> tuple[str, ...]:
    """The claims an experiment's runs answer (``seed_claims.toml``), only those about
    ``models`` when given."""
    protocol.check_choice("experiment", experiment, protocol.EXPERIMENTS)
    ms = None if models is None else set(models)
    return tuple(c.key for c in seed_report.CLAIMS if c.experiment == experiment
                 and (ms is None or not isinstance(c.answer, Mapping) or set(c.answer) <= ms))


def against_spec(experiment: str, configs: Iterable) -> dict:
    """How runs of ``experiment`` stand against SPEC's (its full-profile runs at the same grid
    points): ``{"spec_steps": SPEC's T, "reduced": None or what differs}``, the keyword
    arguments of every claim function (:func:`seed_report.dynamics`)."""
    full = protocol.knobs(experiment, "full")
    pairs = [(c, seed_report.reference_config(c, full)) for c in configs]
    if not pairs:
        raise ValueError("configs is empty: expected the runs' RunConfigs")
    status, how = seed_report.dynamics(pairs, "first")
    return {"spec_steps": max(ref.steps for _, ref in pairs),
            "reduced": how.removeprefix("reduced: ") if status == "reduced" else None}


def answers(experiment: str, records, models: Iterable[str] | None = None,
            level: float = vd.ALPHA) -> list:
    """The Answers of an experiment's claims (:func:`keys`, those about the records' models)
    from its records, decided as one family (:func:`claims.decide_family`)."""
    records = list(records)
    spec = against_spec(experiment, [r.config for r in records])
    ms = {r.config.model for r in records} if models is None else models
    return claims.decide_family([claims.measure(k, records, **spec) for k in keys(experiment, ms)], level)


def profile_records(experiment: str, profile: str, store, seeds: Sequence[int] | None = None):
    """``(records, missing)``: the stored runs of ``experiment`` in ``profile`` (its seeds, or
    ``seeds``) and how many are not stored. Only these runs: whatever else the store holds
    changes nothing. A stored run that differs only in weight snapshots trains identically and
    answers for one without (:func:`seed_report.training_key`)."""
    k = protocol.knobs(experiment, profile)
    configs = (k if seeds is None else replace(k, seeds=tuple(seeds))).configs()
    found = {c: store.get(c) for c in configs}
    if None in found.values():
        by_key = {seed_report.training_key(c): c for c, r in found.items() if r is None}
        for r in store.records():
            c = by_key.get(seed_report.training_key(r.config))
            if c is not None and found[c] is None:
                found[c] = r
    recs = [r for r in found.values() if r is not None]
    return recs, len(configs) - len(recs)


def decide_all(profile: str, store, seeds: Sequence[int] | None = None,
               level: float = vd.ALPHA) -> dict:
    """Every claim of the seed from ``profile``'s runs (:func:`profile_records`), decided as one
    family (Holm over all their tests): claim key -> Answer, or the number of its experiment's
    runs not stored (an int) when some are missing."""
    out, measured = {}, {}
    for c in seed_report.CLAIMS:
        recs, missing = profile_records(c.experiment, profile, store, seeds)
        if missing or not recs:
            out[c.key] = missing
            continue
        measured[c.key] = claims.measure(c.key, recs, **against_spec(c.experiment, [r.config for r in recs]))
    decided = claims.decide_family(list(measured.values()), level)
    return {k: dict(zip(measured, decided)).get(k, v) for k, v in {**out, **measured}.items()}


def build_run_steps(profile: str) -> int:
    """The run-steps of every run the report trains in ``profile`` (each run once)."""
    runs = dict.fromkeys(c for name in protocol.EXPERIMENTS for c in protocol.configs(name, profile))
    return sum(c.total_steps for c in runs)


def seeds_table(answers: Mapping, profile: str) -> pd.DataFrame:
    """Per inconclusive claim: the seeds per configuration that would decide it at the measured
    spread (:func:`seeds_to_decide`), the run-steps they add and their share of the profile's
    build (:func:`build_run_steps`)."""
    total = build_run_steps(profile)
    rows = []
    for key, a in answers.items():
        if isinstance(a, claims.Answer) and a.verdict == vd.INCONCLUSIVE:
            n, cost = seeds_to_decide(a)
            unmeasured = any(not math.isfinite(t.noise.sd) for t in a.tests if t.noise) or not a.tests
            rows.append({"claim": key, "seeds now": a.seeds,
                         "seeds that decide": n if n is not None else "unknown (no spread measured)"
                         if unmeasured else f"more than {vd.MAX_SEEDS}",
                         "run-steps added": "–" if cost is None else f"{cost:,}",
                         "share of the build": "–" if cost is None else f"{100 * cost / total:.0f} %"})
    return pd.DataFrame(rows, columns=["claim", "seeds now", "seeds that decide", "run-steps added",
                                       "share of the build"])


def seeds_to_decide(a) -> tuple[int | None, int | None]:
    """``(seeds, run-steps)``: the seeds per configuration at which every test of an answer
    would detect the effect it measured at the measured spread (:func:`verdicts.seeds_to_decide`)
    and the run-steps of the seeds added; None when none up to :data:`verdicts.MAX_SEEDS` does."""
    need = [vd.seeds_to_decide(t) for t in a.tests]
    if not need or None in need:
        return None, None
    n = max(need)
    return n, (n - a.seeds) * a.run_steps


# --------------------------------------------------------------------------- Table 1
@dataclass(frozen=True)
class Cell:
    """One cell of Table 1, ours against the seed's."""

    cell: str  # "LSTM L_val", "GPT t_f(A_val)" …
    verdict: str  # one of verdicts.CELL_VERDICTS
    why: str
    effect: float = math.nan
    se: float = math.nan
    df: float = 0
    margin: float = math.nan


def _sd(values: Sequence[float], floor: float) -> tuple[float, int]:
    """Our sample sd over seeds, never below ``floor`` (the seed's); df n − 1 (1 with the floor
    alone)."""
    own = float(np.std(values, ddof=1)) if len(values) >= 2 else math.nan
    if len(values) < 2:
        return floor, 1
    return max(own, floor), len(values) - 1


def _value_cell(name, q, vals, cens, cell, n, seed_cens) -> Cell:
    """A loss (on ln) or an accuracy cell: our mean against the seed's, se of both means."""
    m, s = cell["mean"].value, cell["std"].value
    if q.startswith("L_"):
        seed_sd = vd.quoted_log_sd(m, s)
        ours = np.log(vals)
        effect, margin = float(ours.mean()) - math.log(math.sqrt(m * m - s * s)), MARGINS["loss"]
    else:
        seed_sd, ours = s * math.sqrt(2), np.asarray(vals)
        effect, margin = float(ours.mean()) - m, MARGINS["accuracy"]
    sd, df = _sd(list(ours), seed_sd)
    parts = [(sd * sd / n, df), (seed_sd * seed_sd / 2, 1)]
    se, dfw = math.sqrt(sum(v for v, _ in parts)), vd.welch_df(parts)
    up = q.startswith("A_")  # a censored best: an accuracy could be higher, a loss lower
    v = vd.equivalence(effect, se, dfw, margin, can_rise=(cens and up) or (seed_cens and not up),
                       can_fall=(cens and not up) or (seed_cens and up))
    shown = (f"ln ratio {effect:+.2f} ± {se:.2f} vs ±{margin:.2f}" if q.startswith("L_")
             else f"{effect:+.4f} ± {se:.4f} vs ±{margin:g}")
    return Cell(name, v, f"ours {analysis.fmt(vd.geo_mean(vals) if q.startswith('L_') else np.mean(vals), q)}"
                f" vs seed {cell['mean'].text} ± {cell['std'].text}: {shown} (df {dfw:.3g})"
                + ("; a best at T (bound)" if cens or seed_cens else ""), effect, se, dfw, margin)


def _steps_cell(name, vals, cens, seed_value, seed_cens, eval_every) -> Cell:
    """A step-time cell: our mean t_f (or Δt) against the seed's, our spread only (the seed
    quotes none), margin one evaluation interval + a share of the seed's value."""
    n = len(vals)
    effect = float(np.mean(vals)) - seed_value
    sd = float(np.std(vals, ddof=1)) if n >= 2 else math.nan
    se = sd / math.sqrt(n) if n >= 2 else math.nan
    margin = eval_every + MARGINS["steps"] * abs(seed_value)
    v = vd.equivalence(effect, se, n - 1, margin, can_rise=cens[0] or seed_cens[1],
                       can_fall=cens[1] or seed_cens[0])
    return Cell(name, v, f"ours {claims.numbers_text(vals)} vs seed {seed_value:,.0f}: {effect:+,.0f} ± "
                f"{claims.number_text(se)} vs ±{margin:,.0f} steps (df {n - 1})"
                + ("; a bound (t_f at the last step)" if any(cens) or any(seed_cens) else ""),
                effect, se, n - 1, margin)


def table1(records, spec_steps: int | None = None, reduced: str | None = None) -> list[Cell]:
    """Table 1's cells for every model of ``records`` the seed has numbers for (others are
    skipped): not tested at reduced dynamics or a shortened horizon (``reduced``,
    ``spec_steps`` as for the claims)."""
    out = []
    for m, rs in claims.by_model(records).items():
        if m not in seed_report.TABLE1:
            continue
        sums = [summarize(r.history) for r in rs]
        T = [r.history["step"][-1] for r in rs]
        short = spec_steps is not None and min(T) < spec_steps
        for q, cell in seed_report.TABLE1[m].items():
            name = f"{analysis.name(m)} {q}"
            if short or reduced:
                out.append(Cell(name, vd.NOT_TESTED, f"reduced dynamics: {reduced}" if reduced else
                                f"a best over the run needs SPEC's T ({spec_steps:,})"))
                continue
            out.extend(_cells(name, m, q, cell, sums, T, rs[0].config.eval_every))
    return out


def _cells(name, m, q, cell, sums, T, ev) -> list[Cell]:
    """The cell of quantity ``q`` and, for a best value, its t_f."""
    if q.startswith("dt_"):
        a, b = ("A_val", "A_train") if q == "dt_A" else ("L_val", "L_train")
        vals = [s[f"tf_{a}"] - s[f"tf_{b}"] for s in sums]
        cens = (any(s[f"tf_{a}"] >= t for s, t in zip(sums, T)),
                any(s[f"tf_{b}"] >= t for s, t in zip(sums, T)))
        seed_cens = tuple(seed_report.TABLE1[m][p]["t_f"].value >= SEED_LAST_EVAL for p in (a, b))
        return [_steps_cell(name, vals, cens, cell["mean"].value, seed_cens, ev)]
    tf = [s[f"tf_{q}"] for s in sums]
    cens = any(t >= last for t, last in zip(tf, T))
    seed_cens = cell["t_f"].value >= SEED_LAST_EVAL
    return [_value_cell(name, q, [s[q] for s in sums], cens, cell, len(sums), seed_cens),
            _steps_cell(f"{name} t_f", tf, (cens, False), cell["t_f"].value, (seed_cens, False), ev)]
