"""The seed's claims measured from our records, each decided against the noise.

One function per claim of :data:`modarith.study.seed_report.CLAIMS` (same keys, :data:`MEASURES`)
and :func:`table1` for the cells of the seed's Table 1. Each takes the stored records of its
experiment (anything with ``.config`` and ``.history``) and returns an :class:`Answer`: the
observable as the seed names it, our numbers per seed, the effect, the noise scale it was
compared with and where that noise came from, the number of seeds, the horizon, one of four
:data:`VERDICTS` and a one-line ``why`` with the numbers.

The rules (issue 26):

* Losses are compared as log ratios, against a log-scale spread: the std over our seeds of
  ln(value), or with one seed the seed report's own spread (Table 1's mean ± std of its two
  seeds, as a half log-range: :func:`seed_log_spread`), quoted in ``noise_from``.
* Step times are compared with a tolerance of one evaluation interval plus the std over our
  seeds of the paired difference; the seed quotes no spread of step times, so with one seed a
  step-time comparison is *inconclusive*.
* A best value reached at the last evaluation (t_f = T) is censored: a longer run could move
  it, so it is not compared. A claim whose measure needs SPEC's horizon ("best over the run")
  is *not tested* on runs shorter than SPEC's; a claim answered by events (first steps at a
  level) is *not tested* when an event it needs has not happened by a shortened T, unless the
  shown horizon already decides it.
* Runs at reduced dynamics (another lr, weight decay, batch…) are *not tested*: pass
  ``reduced`` (the text of :func:`modarith.study.seed_report.dynamics`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from modarith.core.metrics import count_collapses, summarize
from modarith.study import analysis, seed_report

AGREE, DISAGREE, INCONCLUSIVE, NOT_TESTED = "agree", "disagree", "inconclusive", "not tested"
VERDICTS = (AGREE, DISAGREE, INCONCLUSIVE, NOT_TESTED)
LEVEL = 0.9  # A ≥ LEVEL: memorised (A_train) or generalised (A_val), the seed's Problem 4.3.d
LOW = 0.5  # A_val below this when A_train first reaches LEVEL: "still low" (claim 1)
MULTIPLE = 2.0  # claim 1: t_gen at least this multiple of t_mem ("a multiple")
#: The seed's Table 1 runs: T 10,001, evaluated every 100 steps, so a t_f of 10,000 or 10,001
#: is a best at its last evaluation (censored).
SEED_LAST_EVAL = 10_000


@dataclass(frozen=True)
class Answer:
    """Our measurement of one claim (or one Table 1 cell) and its verdict."""

    claim: str  # claim key (seed_report.CLAIMS) or "T1 <model> <quantity>"
    observable: str  # as the seed names it, e.g. "best L_val", "t_f(A_val) per order"
    per_seed: Mapping[str, tuple]  # label -> one number per seed (NaN: never / censored)
    effect: float  # the compared effect (a log ratio, steps, a share …; NaN when none)
    noise: float  # the noise scale it is compared with (same unit; NaN when none)
    noise_from: str  # where the noise comes from: our seeds, the seed report (quoted) …
    seeds: int  # seeds per configuration
    horizon: str  # e.g. "T 10,001 (SPEC's)" or "T 10,001 of SPEC's 40,001"
    verdict: str  # one of VERDICTS
    why: str  # one line, with numbers
    ours: str = ""  # our answer in the seed's terms (short)
    extra: Mapping[str, object] = field(default_factory=dict)  # tables behind the answer

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"Answer.verdict = {self.verdict!r} is invalid: expected one of "
                             f"{VERDICTS}")

    def line(self) -> str:
        """``<claim>: <verdict> — <why>``."""
        return f"{self.claim}: {self.verdict} — {self.why}"

    def row(self) -> dict:
        """The details as one table row (the claim table's second part)."""
        per = "; ".join(f"{k}: {_nums(v)}" for k, v in self.per_seed.items())
        return {"claim": self.claim, "observable": self.observable, "per seed": per,
                "effect": number_text(self.effect), "noise": number_text(self.noise),
                "noise from": self.noise_from, "seeds": self.seeds, "horizon": self.horizon,
                "verdict": self.verdict, "why": self.why}


def number_text(v) -> str:
    """A number for a verdict line: "–" for NaN, thousands separators for step counts, else 3
    significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 10):
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _nums(vs) -> str:
    return "/".join("never" if isinstance(v, float) and math.isnan(v) else number_text(v) for v in vs)


# --------------------------------------------------------------------------- noise
def seed_log_spread(model: str, quantity: str = "L_val") -> tuple[float, str]:
    """The seed report's own seed-to-seed spread of a loss on a log scale: Table 1 prints
    mean ± std of two seeds (population std), i.e. the two values m − s and m + s; the spread
    is their half log-range ½·ln((m + s)/(m − s)) — the std of ln(value) over the two seeds.
    Returns ``(spread, quoted text)``."""
    if model not in seed_report.TABLE1 or quantity not in seed_report.TABLE1[model]:
        raise ValueError(f"model, quantity = {model!r}, {quantity!r} is invalid: expected one of "
                         f"{sorted(seed_report.TABLE1)} and a Table 1 loss (L_train, L_val)")
    cell = seed_report.TABLE1[model][quantity]
    if cell["std"] is None or not quantity.startswith("L_"):
        raise ValueError(f"quantity = {quantity!r} has no log-scale spread: expected L_train or L_val")
    m, s = cell["mean"].value, cell["std"].value
    spread = 0.5 * math.log((m + s) / (m - s))
    return spread, (f"the seed's {analysis.name(model)} {quantity} {cell['mean'].text} ± "
                    f"{cell['std'].text} (two seeds {m - s:.3g} and {m + s:.3g}): ±{spread:.2f} in ln")


def log_std(values: Sequence[float]) -> float:
    """Std over seeds (population, as the seed's tables) of ln(value); NaN with < 2 values."""
    v = np.log(np.asarray([x for x in values if not math.isnan(x)], dtype=float))
    return float(v.std()) if len(v) >= 2 else math.nan


def geo_mean(values: Sequence[float]) -> float:
    """Geometric mean over seeds (the mean on the log scale); NaN if any value is NaN."""
    v = np.asarray(values, dtype=float)
    return float(np.exp(np.log(v).mean())) if len(v) and not np.isnan(v).any() else math.nan


def _seeds_of(records) -> int:
    counts: dict = {}
    for r in records:
        key = _point(r.config)
        counts[key] = counts.get(key, 0) + 1
    return max(counts.values(), default=0)


def _point(config):
    from dataclasses import replace

    return replace(seed_report.training_key(config), seed=0)


def _horizon(records, spec_steps: int | None) -> tuple[str, bool]:
    """(text, shortened): the runs' horizon (their last logged step, T for a finished run) and
    whether it is shorter than SPEC's T."""
    T = int(min(r.history["step"][-1] for r in records))
    if spec_steps is None or T >= spec_steps:
        return f"T {T:,}" + (" (SPEC's)" if spec_steps is not None else ""), False
    return f"T {T:,} of SPEC's {spec_steps:,}", True


def _check(records, key: str) -> list:
    records = list(records)
    if not records:
        raise ValueError(f"records is empty: claim {key!r} needs the runs of its experiment")
    for r in records:
        if not hasattr(r, "config") or not hasattr(r, "history"):
            raise ValueError(f"records must have .config and .history, got {type(r).__name__}")
    return [r for r in records if r.config.model in seed_report.TABLE1]  # the seed's models: the claims' subject


def _untested(key, observable, records, horizon, why, per_seed=None) -> Answer:
    return Answer(key, observable, per_seed or {}, math.nan, math.nan, "", _seeds_of(records),
                  horizon, NOT_TESTED, why)


def _opening(key, observable, records, spec_steps, reduced, needs: str = ""):
    """What every measure does first: ``(records, horizon, shortened, untested)`` — the records
    checked (:func:`_check`), their horizon (:func:`_horizon`) and, when the claim cannot be
    tested, its "not tested" :class:`Answer` (else None): under reduced dynamics, or on a
    shortened horizon for a measure that ``needs`` SPEC's (what needs it, e.g. "a best over the
    run needs")."""
    records = _check(records, key)
    horizon, short = _horizon(records, spec_steps)
    if reduced:
        return records, horizon, short, _untested(key, observable, records, horizon,
                                                  f"reduced dynamics: {reduced}")
    if short and needs:
        return records, horizon, short, _untested(key, observable, records, horizon,
                                                  f"{needs} SPEC's horizon ({horizon})")
    return records, horizon, short, None


def _by_model(records) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in sorted(records, key=lambda r: (analysis._model_key(r.config.model), r.config.seed)):
        out.setdefault(r.config.model, []).append(r)
    return out


def _first(r, key: str, level: float = LEVEL) -> float:
    return analysis.first_step_at(r.history["step"], r.history[key], level)


def combine_models(verdicts: Mapping[str, str]) -> str:
    """One verdict from per-model verdicts of a claim made for every model: disagree if any
    model disagrees, else inconclusive if any is, else not tested if any is, else agree."""
    vs = set(verdicts.values())
    for v in (DISAGREE, INCONCLUSIVE, NOT_TESTED):
        if v in vs:
            return v
    return AGREE


def combine_tends(verdicts: Sequence[str]) -> str:
    """One verdict from the verdicts at each value of a fixed field, for a "tends to" claim:
    agree when some agree and none disagrees, disagree when some disagree and none agrees,
    inconclusive when they conflict or all are inconclusive; not tested when all are."""
    vs = set(verdicts)
    if AGREE in vs and DISAGREE in vs:
        return INCONCLUSIVE
    for v in (AGREE, DISAGREE, INCONCLUSIVE):
        if v in vs:
            return v
    return NOT_TESTED


def compare_log(effect: float, noise: float, seed_sign: int) -> str:
    """A log-ratio effect against a log-scale noise: inconclusive when |effect| ≤ noise (or
    either is NaN), else agree when its sign is ``seed_sign`` (+1/−1), disagree otherwise."""
    if math.isnan(effect) or math.isnan(noise) or abs(effect) <= noise:
        return INCONCLUSIVE
    return AGREE if (effect > 0) == (seed_sign > 0) else DISAGREE


def compare_steps(gaps: Sequence[float], eval_every: int, seed_sign: int) -> tuple[str, float, str]:
    """Paired step differences (one per seed) against one evaluation interval plus their std
    over seeds. With one seed no spread is known (the seed quotes none for step times):
    inconclusive. Returns ``(verdict, tolerance, noise_from)``."""
    g = np.asarray(gaps, dtype=float)
    if len(g) < 2:
        return (INCONCLUSIVE, math.nan,
                "one seed: no spread of step times (the seed quotes none)")
    tol = eval_every + float(g.std())
    mean = float(g.mean())
    if abs(mean) <= tol:
        return INCONCLUSIVE, tol, f"one evaluation interval ({eval_every}) + std over {len(g)} seeds"
    return ((AGREE if (mean > 0) == (seed_sign > 0) else DISAGREE), tol,
            f"one evaluation interval ({eval_every}) + std over {len(g)} seeds")


def against_spec(configs: Iterable, full_knobs) -> dict:
    """How runs stand against SPEC's: ``{"spec_steps": …, "reduced": …}``, the keyword
    arguments of every claim function. ``full_knobs``: the experiment's
    :class:`modarith.study.protocol.Knobs` in the full profile (SPEC's runs at the same grid points,
    :func:`modarith.study.seed_report.reference_config`). ``spec_steps`` is SPEC's T; ``reduced`` is
    None when only T differs (the claim functions judge the horizon), else the text of what
    differs (:func:`modarith.study.seed_report.dynamics`)."""
    pairs = [(c, seed_report.reference_config(c, full_knobs)) for c in configs]
    if not pairs:
        raise ValueError("configs is empty: expected the runs' RunConfigs")
    status, how = seed_report.dynamics(pairs, "first")
    return {"spec_steps": max(ref.steps for _, ref in pairs),
            "reduced": how.removeprefix("reduced: ") if status == "reduced" else None}


# --------------------------------------------------------------------------- claims
def memorise_then_generalise(records, spec_steps: int | None = None,
                             reduced: str | None = None) -> Answer:
    """Claim 1, the delay's size: per run, A_val still below :data:`LOW` when A_train first
    reaches 0.9 (t_mem), and t_gen (first A_val ≥ 0.9) at least :data:`MULTIPLE` × t_mem (one
    evaluation interval of tolerance). Agree when every run does; a run that never reaches
    A_val 0.9 disagrees at SPEC's T and is censored (not tested) at a shortened one."""
    key, obs = "memorise_then_generalise", "t_gen / t_mem (first A_val ≥ 0.9 / first A_train ≥ 0.9)"
    records, horizon, short, untested = _opening(key, obs, records, spec_steps, reduced)
    if untested:
        return untested
    per, verdicts, parts, ratio_of = {}, {}, [], {}
    for m, rs in _by_model(records).items():
        t_mem = [_first(r, "train_acc") for r in rs]
        t_gen = [_first(r, "val_acc") for r in rs]
        a_at = [float(np.asarray(r.history["val_acc"])[np.asarray(r.history["step"]) == t][0])
                if not math.isnan(t) else math.nan for r, t in zip(rs, t_mem)]
        per[f"{analysis.name(m)} t_mem"] = tuple(t_mem)
        per[f"{analysis.name(m)} t_gen"] = tuple(t_gen)
        per[f"{analysis.name(m)} A_val at t_mem"] = tuple(a_at)
        ok = []
        for r, tm, tg, a in zip(rs, t_mem, t_gen, a_at):
            if math.isnan(tg) or math.isnan(tm):
                ok.append(None if short else False)
            else:
                ok.append(a < LOW and tg + r.config.eval_every >= MULTIPLE * tm)
        verdicts[m] = (NOT_TESTED if None in ok and False not in ok else
                       AGREE if all(ok) else DISAGREE)
        ratio = [tg / tm if tm else math.nan for tm, tg in zip(t_mem, t_gen)]
        ratio_of[m] = [round(x) if not math.isnan(x) else x for x in ratio]
        parts.append(f"{analysis.name(m)}: t_mem {_nums(t_mem)}, A_val there {_nums(a_at)}, "
                     f"t_gen {_nums(t_gen)} (×{_nums(ratio)})")
    verdict = combine_models(verdicts)
    if NOT_TESTED in verdicts.values():
        parts.append(f"A_val not at 0.9 by {horizon}: censored")
    ratios = [tg / tm for m in per if m.endswith("t_gen")
              for tm, tg in zip(per[m.replace("t_gen", "t_mem")], per[m]) if tm and not math.isnan(tg)]
    return Answer(key, obs, per, min(ratios, default=math.nan), MULTIPLE,
                  f"threshold: A_val < {LOW} at t_mem and t_gen ≥ {MULTIPLE:g}·t_mem "
                  "(± one evaluation interval) in every run", _seeds_of(records), horizon,
                  verdict, "; ".join(parts),
                  ours=", ".join(f"{analysis.name(m)}: t_gen ×{_nums(r_)} t_mem"
                                 for m, r_ in ratio_of.items()))


def lower_val_loss(records, spec_steps: int | None = None, reduced: str | None = None) -> Answer:
    """Claim 2: the model with the lower best L_val, as a log ratio ln(L_LSTM / L_GPT) of the
    geometric means over seeds, against the log spread of a single-seed difference:
    √(s_LSTM² + s_GPT²), s = std of ln(best L_val) over our seeds, or the seed's own."""
    key, obs = "lower_val_loss", "best L_val"
    records, horizon, short, untested = _opening(key, obs, records,
                                                 spec_steps, reduced, "a best over the run needs")
    if untested:
        return untested
    models = _by_model(records)
    if set(models) != {"lstm", "gpt"}:
        raise ValueError(f"records must hold both models for {key}, got {sorted(models)}")
    per = {analysis.name(m): tuple(summarize(r.history)["L_val"] for r in rs)
           for m, rs in models.items()}
    g = {m: geo_mean(v) for m, v in per.items()}
    effect = math.log(g["LSTM"] / g["GPT"])  # > 0: GPT lower
    n = _seeds_of(records)
    if n >= 2:
        noise = math.hypot(log_std(per["LSTM"]), log_std(per["GPT"]))
        noise_from = f"std of ln L_val over our {n} seeds, both models"
    else:
        sl, tl = seed_log_spread("lstm")
        sg, tg = seed_log_spread("gpt")
        noise, noise_from = math.hypot(sl, sg), f"one seed: {tl}; {tg}"
    verdict = compare_log(effect, noise, +1)
    lower = "GPT" if effect > 0 else "LSTM"
    why = (f"geometric means LSTM {g['LSTM']:.2e}, GPT {g['GPT']:.2e}: {lower} lower "
           f"×{math.exp(abs(effect)):.3g} (ln {effect:+.2f}) against noise ±{noise:.2f} in ln "
           f"(×{math.exp(noise):.3g})")
    return Answer(key, obs, per, effect, noise, noise_from, n, horizon, verdict, why,
                  ours=f"{lower} lower ×{math.exp(abs(effect)):.3g}")


def _r_threshold(key, records, when: Callable, pick, spec_steps, reduced, obs) -> Answer:
    records, horizon, short, untested = _opening(key, obs, records,
                                                 spec_steps, reduced, "best values over the run need")
    if untested:
        return untested
    seed_answer = seed_report.claim(key).answer
    best = analysis.best_frame(records, by=["r_train"])
    per, verdicts, parts, ours = {}, {}, [], {}
    for m in analysis.models_in(best):
        grid = sorted(set(best.loc[best["model"] == m, "r_train"]))
        r, _ = analysis.threshold(best, m, "r_train", when, pick)
        a_tr, a_val = (analysis.select(best, m, q).sort_values("r_train") for q in ("A_train", "A_val"))
        per[f"{analysis.name(m)} A_val"] = tuple(a_val["best_mean"])
        per[f"{analysis.name(m)} A_train"] = tuple(a_tr["best_mean"])
        want = seed_answer.get(m) if isinstance(seed_answer, Mapping) else seed_answer
        if want is not None and not any(math.isclose(want, x) for x in grid):
            verdicts[m] = NOT_TESTED
            note = f"the seed's r {want:g} is not a point of our grid"
        else:
            verdicts[m] = AGREE if r is not None and math.isclose(r, want) else DISAGREE
            note = f"seed {want:g}"
        ours[m] = "none" if r is None else f"{r:g}"
        parts.append(f"{analysis.name(m)} r {ours[m]} ({note}; A_train/A_val " + ", ".join(
            f"{x:g}: {t:.2f}/{v:.2f}" for x, t, v in
            zip(a_tr["r_train"], a_tr["best_mean"], a_val["best_mean"])) + ")")
    return Answer(key, obs, per, math.nan, math.nan, "the grid's spacing (a threshold on the grid)",
                  _seeds_of(records), horizon, combine_models(verdicts), "; ".join(parts),
                  ours=", ".join(f"{analysis.name(m)} {v}" for m, v in ours.items()))


def smallest_r_generalising(records, spec_steps: int | None = None,
                            reduced: str | None = None) -> Answer:
    """Claim 3: the smallest r_train of the grid whose best A_val (mean over seeds) is ≥ 0.9;
    agree when it is the seed's value (not tested when that value is not a grid point)."""
    return _r_threshold("smallest_r_generalising", records, lambda b: b["A_val"] >= LEVEL, min,
                        spec_steps, reduced, "smallest r with best A_val ≥ 0.9")


def largest_r_overfitting(records, spec_steps: int | None = None,
                          reduced: str | None = None) -> Answer:
    """Claim 4: the largest r_train with best A_train > 0.9 and best A_val < 0.5 (the seed's
    strict inequalities; means over seeds)."""
    return _r_threshold("largest_r_overfitting", records,
                        lambda b: b["A_train"] > LEVEL and b["A_val"] < LOW, max,
                        spec_steps, reduced, "largest r with A_train > 0.9, A_val < 0.5")


def ternary_faster(records, spec_steps: int | None = None, reduced: str | None = None) -> Answer:
    """Claim 5: per model, the paired gap t_gen(binary) − t_gen(ternary) (first A_val ≥ 0.9
    per order; > 0: ternary first) against one evaluation interval + its std over seeds
    (:func:`compare_steps`). A run where an order never reaches 0.9: at SPEC's T that order is
    "never" (the other wins when it does); at a shortened T it is censored (not tested)."""
    key, obs = "ternary_faster", "first step with A_val ≥ 0.9, binary vs ternary"
    records, horizon, short, untested = _opening(key, obs, records, spec_steps, reduced)
    if untested:
        return untested
    per, verdicts, parts, effects, noises, froms, ours = {}, {}, [], [], [], [], []
    for m, rs in _by_model(records).items():
        b = [_first(r, "val_acc_o2") for r in rs]
        t = [_first(r, "val_acc_o3") for r in rs]
        per[f"{analysis.name(m)} binary"], per[f"{analysis.name(m)} ternary"] = tuple(b), tuple(t)
        name = analysis.name(m)
        if any(math.isnan(x) for x in b + t):
            if short:
                verdicts[m] = NOT_TESTED
                parts.append(f"{name}: binary {_nums(b)}, ternary {_nums(t)}: an order not at 0.9 "
                             f"by {horizon} (censored)")
                continue
            T = max(r.config.total_steps for r in rs)
            b = [T + 1 if math.isnan(x) else x for x in b]  # never by SPEC's T: after it
            t = [T + 1 if math.isnan(x) else x for x in t]
        gaps = [x - y for x, y in zip(b, t)]
        v, tol, src = compare_steps(gaps, rs[0].config.eval_every, +1)
        verdicts[m] = v
        effects.append(float(np.mean(gaps)))
        noises.append(tol)
        froms.append(src)
        first = "ternary" if np.mean(gaps) > 0 else "binary" if np.mean(gaps) < 0 else "neither"
        ours.append(f"{name}: {first} first by {abs(np.mean(gaps)):,.0f} steps")
        parts.append(f"{name}: binary {_nums(b)}, ternary {_nums(t)}: {first} first by "
                     f"{abs(np.mean(gaps)):,.0f} steps vs tolerance "
                     + ("unknown (one seed)" if math.isnan(tol) else f"{tol:,.0f}"))
    return Answer(key, obs, per, effects[0] if len(effects) == 1 else math.nan,
                  max(noises, default=math.nan), "; ".join(dict.fromkeys(froms)),
                  _seeds_of(records), horizon, combine_models(verdicts), "; ".join(parts),
                  ours="; ".join(ours))


def instability(records, field_: str) -> dict:
    """Per value of ``field_``: collapses of A_train (below 0.9 after first reaching 1.0) and
    crashes of A_val after generalising (below 0.5 after first reaching 0.9), summed over
    runs (:func:`modarith.core.metrics.count_collapses`)."""
    out: dict = {}
    for r in records:
        x = getattr(r.config, field_)
        c = out.setdefault(x, {"A_train collapses": 0, "A_val crashes": 0})
        c["A_train collapses"] += count_collapses(r.history)["collapses"]
        c["A_val crashes"] += count_collapses(r.history, key="val_acc", reached=LEVEL,
                                              below=LOW)["collapses"]
    return dict(sorted(out.items()))


def trend(key: str, records, vary: str, fixed: str, model: str, spec_steps: int | None = None,
          reduced: str | None = None) -> Answer:
    """Claims 6–9, the seed's "tends to": at each value of ``fixed``, the log ratio of the
    best L_val (geometric mean over seeds) at the grid's last point of ``vary`` to its first,
    against the log spread of a single-seed difference √(s_first² + s_last²) (std of ln L_val
    over our seeds at those points, or the seed's own with one seed). With more than two
    points, every point is listed and whether the means are monotone. "Unstable" is measured
    by :func:`instability` along ``vary`` and reported. The per-value verdicts are combined
    by :func:`combine_tends`."""
    obs = f"best L_val along {analysis.sym(vary)} ({analysis.name(model)})"
    records, horizon, short, untested = _opening(key, obs, [r for r in records if r.config.model == model],
                                                 spec_steps, reduced, "a best over the run needs")
    if untested:
        return untested
    seed_word = seed_report.claim(key).answer[model]
    sign = +1 if seed_word == "increases" else -1
    n = _seeds_of(records)
    one, one_from = seed_log_spread(model)
    per, verdicts, parts, effects, noises, end_seeds = {}, [], [], [], [], []
    fixed_values = sorted({getattr(r.config, fixed) for r in records})
    for f in fixed_values:
        rs = [r for r in records if getattr(r.config, fixed) == f]
        xs = sorted({getattr(r.config, vary) for r in rs})
        vals = {x: [summarize(r.history)["L_val"] for r in rs if getattr(r.config, vary) == x]
                for x in xs}
        for x in xs:
            per[f"{analysis.sym(fixed)} {analysis.fmt_value(f)}, {analysis.sym(vary)} "
                f"{analysis.fmt_value(x)}"] = tuple(vals[x])
        means = [geo_mean(vals[x]) for x in xs]
        effect = math.log(means[-1] / means[0])
        ends = (vals[xs[0]], vals[xs[-1]])
        # each end point's own log spread over its seeds; a point with one seed takes the
        # seed report's spread (the shared sanity-check point may have more seeds than the rest)
        noise = math.hypot(*(log_std(v) if len(v) >= 2 else one for v in ends))
        end_seeds.extend(len(v) for v in ends)
        v = compare_log(effect, noise, sign)
        verdicts.append(v)
        effects.append(effect)
        noises.append(noise)
        shape = ""
        if len(xs) > 2:
            shape = f", {analysis.direction(means).replace('is ', '')} over all {len(xs)} points"
        parts.append(f"{analysis.sym(fixed)} {analysis.fmt_value(f)}: " + " → ".join(
            f"{m_:.2e}" for m_ in means) + f" (ln {effect:+.2f} vs ±{noise:.2f}{shape}): {v}")
    inst = instability(records, vary)
    unstable = ", ".join(f"{analysis.sym(vary)} {analysis.fmt_value(x)}: "
                         f"{c['A_train collapses']}+{c['A_val crashes']}" for x, c in inst.items())
    n = min(end_seeds, default=n)  # seeds behind the weakest end point
    if min(end_seeds, default=0) >= 2:
        noise_from = f"std of ln L_val over our seeds at the end points (≥ {n} each)"
    elif max(end_seeds, default=0) >= 2:
        noise_from = f"std of ln L_val over our seeds where an end point has ≥ 2, else {one_from}"
    else:
        noise_from = f"one seed: √2 × {one_from}"
    verdict = combine_tends(verdicts)
    return Answer(key, obs, per, effects[0] if len(effects) == 1 else float(np.mean(effects)),
                  max(noises), noise_from, n, horizon, verdict,
                  "; ".join(parts) + f"; unstable (A_train collapses + A_val crashes) {unstable}",
                  ours=f"{analysis.sym(vary)} first → last: " + ", ".join(
                      f"×{math.exp(e):.3g} at {analysis.sym(fixed)} {analysis.fmt_value(f)}"
                      for f, e in zip(fixed_values, effects)),
                  extra={"instability": inst})


def gpt_width(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 6: the GPT's best L_val along d at fixed L (:func:`trend`)."""
    return trend("gpt_width", records, "d_model", "num_layers", "gpt", spec_steps, reduced)


def lstm_width(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 7: the LSTM's best L_val along d at fixed L (:func:`trend`)."""
    return trend("lstm_width", records, "d_model", "num_layers", "lstm", spec_steps, reduced)


def lstm_depth(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 8: the LSTM's best L_val along L at fixed d, and its instability (:func:`trend`)."""
    return trend("lstm_depth", records, "num_layers", "d_model", "lstm", spec_steps, reduced)


def gpt_depth(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 9: the GPT's best L_val along L at fixed d (:func:`trend`)."""
    return trend("gpt_depth", records, "num_layers", "d_model", "gpt", spec_steps, reduced)


def weight_decay_time(records, spec_steps: int | None = None,
                      reduced: str | None = None) -> Answer:
    """Claim 10: t_f(A_val) and t_f(L_val) of the LSTM at the largest weight decay of the grid
    minus at the smallest, paired per seed, against one evaluation interval + the std over
    seeds (:func:`compare_steps`). A t_f at the last evaluation is censored (not compared);
    a shortened horizon is not tested (a best over the run needs SPEC's T). Agree when both
    fall beyond the tolerance, disagree when either rises beyond it."""
    key, obs = "weight_decay_time", "t_f(A_val) and t_f(L_val) along the weight decay (LSTM)"
    records, horizon, short, untested = _opening(key, obs, [r for r in records if r.config.model == "lstm"],
                                                 spec_steps, reduced, "t_f of a best over the run needs")
    if untested:
        return untested
    wds = sorted({r.config.weight_decay for r in records})
    per, verdicts, parts, effects, tols, src = {}, [], [], [], [], ""
    for q in ("A_val", "L_val"):
        tf = {}
        for r in records:
            s = summarize(r.history)
            t = s[f"tf_{q}"]
            tf.setdefault(r.config.weight_decay, {})[r.config.seed] = (
                math.nan if t is None or t >= r.history["step"][-1] else float(t))  # censored at T
        for w in wds:
            per[f"t_f({q}) wd {w:g}"] = tuple(tf[w][s] for s in sorted(tf[w]))
        lo, hi = tf[wds[0]], tf[wds[-1]]
        common = sorted(set(lo) & set(hi))
        if any(math.isnan(lo[s]) or math.isnan(hi[s]) for s in common):
            verdicts.append(NOT_TESTED)
            parts.append(f"t_f({q}) censored at T in a run (best at the last step)")
            continue
        gaps = [hi[s] - lo[s] for s in common]
        v, tol, src = compare_steps(gaps, records[0].config.eval_every, -1)
        verdicts.append(v)
        effects.append(float(np.mean(gaps)))
        tols.append(tol)
        parts.append(f"t_f({q}) wd {wds[0]:g} → {wds[-1]:g}: {_nums([lo[s] for s in common])} → "
                     f"{_nums([hi[s] for s in common])} ({np.mean(gaps):+,.0f} vs tolerance "
                     + ("unknown" if math.isnan(tol) else f"{tol:,.0f}") + f"): {v}")
    vs = set(verdicts)
    verdict = (DISAGREE if DISAGREE in vs else NOT_TESTED if NOT_TESTED in vs else
               INCONCLUSIVE if INCONCLUSIVE in vs else AGREE)
    return Answer(key, obs, per, effects[0] if effects else math.nan,
                  max(tols, default=math.nan), src, _seeds_of(records), horizon, verdict,
                  "; ".join(parts), ours="; ".join(p_.split(" (")[0] for p_ in parts))


def norm_shares(steps, norm, t_gen: float) -> dict:
    """The total ‖θ‖₂ around t_gen: ``peak`` (largest value at steps ≤ t_gen), ``at_gen``
    (value at the last step ≤ t_gen), ``low`` (smallest value from there on), ``end``;
    ``share_after`` = (at_gen − low) / (peak − low), the share of the fall from the peak to the
    low that happens after t_gen; ``high_before`` = peak / low (how much higher it is before);
    ``max_share_after`` = at_gen / peak, the largest share any longer horizon could give (the
    norm cannot fall below 0)."""
    r = analysis.rise_and_fall(steps, norm, t_gen)
    peak, at_gen, low = r["peak"], r["at_event"], r["low"]
    drop = peak - low
    return {**r, "share_after": (at_gen - low) / drop if drop > 0 else math.nan,
            "high_before": peak / low if low > 0 else math.nan,
            "max_share_after": at_gen / peak if peak > 0 else math.nan}


def norm_rise_fall(records, spec_steps: int | None = None, reduced: str | None = None) -> Answer:
    """Claim 11 on the total ‖θ‖₂ (the seed's Fig. 23): per LSTM run that generalises, the
    share of the fall from the peak before t_gen to the low after it that happens after t_gen
    (:func:`norm_shares`). A run agrees when more than half of the fall comes after t_gen
    ("once the model begins to generalize … starts decreasing"), disagrees when less. At a
    horizon shorter than SPEC's a further fall could only raise the share, so "agree" stands,
    and "disagree" stands only when even a fall to 0 could not reach half
    (``max_share_after`` < ½); otherwise the run is not tested. Runs combine as a sign test:
    all agree → agree, all disagree → disagree, mixed → inconclusive. The seed's spikes of the
    norm at A_val crashes are counted per run (:func:`spikes_at_crashes`) and reported."""
    key, obs = "norm_rise_fall", "total ‖θ‖₂ around t_gen (first A_val ≥ 0.9)"
    records, horizon, short, untested = _opening(key, obs, [r for r in records if r.config.model == "lstm"],
                                                 spec_steps, reduced)
    if untested:
        return untested
    per, runs, parts, shares = {}, [], [], []
    for r in sorted(records, key=lambda r: (r.config.weight_decay, r.config.seed)):
        label = f"wd {r.config.weight_decay:g} seed {r.config.seed}"
        t_gen = _first(r, "val_acc")
        if math.isnan(t_gen):
            runs.append(NOT_TESTED if short else None)
            parts.append(f"{label}: A_val never 0.9 by {horizon}")
            continue
        s = norm_shares(r.history["step"], r.history["param_norm"], t_gen)
        per[label] = (s["share_after"],)
        shares.append(s["share_after"])
        if s["share_after"] > 0.5:
            v = AGREE
        elif short and s["max_share_after"] >= 0.5:
            v = NOT_TESTED
        else:
            v = DISAGREE
        runs.append(v)
        parts.append(f"{label}: {s['peak']:.1f} (peak ≤ t_gen {t_gen:,.0f}) → {s['at_event']:.1f} at "
                     f"t_gen → low {s['low']:.1f}: {100 * s['share_after']:.1f} % of the fall after "
                     f"t_gen, ×{s['high_before']:.2f} higher before: {v}"
                     + (f"; {spikes[1]} of {spikes[0]} A_val crashes with a norm spike"
                        if (spikes := spikes_at_crashes(r.history))[0] else ""))
    tested = [v for v in runs if v is not None]
    vs = set(tested)
    verdict = (NOT_TESTED if not tested or NOT_TESTED in vs and len(vs) == 1 else
               AGREE if vs == {AGREE} else DISAGREE if vs == {DISAGREE} else
               INCONCLUSIVE if AGREE in vs and DISAGREE in vs else
               NOT_TESTED)
    return Answer(key, obs, per, float(np.mean(shares)) if shares else math.nan, 0.5,
                  "a share after t_gen above ½ per run (sign test over runs)",
                  _seeds_of(records), horizon, verdict, "; ".join(parts),
                  ours=(f"{100 * np.mean(shares):.1f} % of the fall after t_gen (mean)"
                        if shares else "no run generalises"))


def spikes_at_crashes(history: Mapping, window: int = 2, rise: float = 0.01) -> tuple[int, int]:
    """The seed's third paragraph on ‖θ‖₂ (Problem 4.7.d): spikes of the norm as A_val crashes.
    Returns ``(crashes, with_spike)``: the crashes of A_val after generalising (below 0.5
    after first reaching 0.9, :func:`modarith.core.metrics.count_collapses`) and how many of them
    have a norm spike — a rise of more than ``rise`` (relative) from the norm ``window``
    evaluations before the crash's first step to the largest value within ``window``
    evaluations after it."""
    steps = np.asarray(history["step"], dtype=float)
    norm = np.asarray(history["param_norm"], dtype=float)
    episodes = count_collapses(history, key="val_acc", reached=LEVEL, below=LOW)["episodes"]
    hit = 0
    for start, _, _ in episodes:
        i = int(np.searchsorted(steps, start))
        lo, hi = max(0, i - window), min(len(norm), i + window + 1)
        hit += bool(norm[lo:hi].max() > norm[lo] * (1 + rise))
    return len(episodes), hit


MEASURES: dict[str, Callable[..., Answer]] = {
    "memorise_then_generalise": memorise_then_generalise,
    "lower_val_loss": lower_val_loss,
    "smallest_r_generalising": smallest_r_generalising,
    "largest_r_overfitting": largest_r_overfitting,
    "ternary_faster": ternary_faster,
    "gpt_width": gpt_width,
    "lstm_width": lstm_width,
    "lstm_depth": lstm_depth,
    "gpt_depth": gpt_depth,
    "weight_decay_time": weight_decay_time,
    "norm_rise_fall": norm_rise_fall,
}
assert set(MEASURES) == {c.key for c in seed_report.CLAIMS}, "one function per claim"


def measure(key: str, records, spec_steps: int | None = None, reduced: str | None = None) -> Answer:
    """The :class:`Answer` of claim ``key`` (a key of :data:`MEASURES`)."""
    if key not in MEASURES:
        raise ValueError(f"claim = {key!r} is invalid: expected one of {tuple(MEASURES)}")
    return MEASURES[key](records, spec_steps=spec_steps, reduced=reduced)


# --------------------------------------------------------------------------- Table 1
def table1(records: Iterable, spec_steps: int | None = None,
           reduced: str | None = None) -> list[Answer]:
    """Table 1's cells, ours beside the seed's, one :class:`Answer` per (model, quantity).

    Losses: |ln(our geometric mean / the seed's mean)| against the seed's log spread
    (:func:`seed_log_spread`) plus ours (std of ln over our seeds). Accuracies: |our mean −
    the seed's| against the seed's std + ours + the seed's rounding. t_f and Δt: a t_f at our
    last evaluation (t_f = T) or at the seed's T is censored (not tested); otherwise our t_f
    against the seed's with one evaluation interval + our std over seeds (the seed quotes no
    spread). A best over the run at a horizon shorter than SPEC's, or at reduced dynamics
    (``reduced``, as for the claims), is not tested."""
    records = _check(records, "table1")
    horizon, short = _horizon(records, spec_steps)
    out = []
    for m, rs in _by_model(records).items():
        sums = [summarize(r.history) for r in rs]
        T = [r.history["step"][-1] for r in rs]
        ev = rs[0].config.eval_every
        n = len(rs)
        for q, cell in seed_report.TABLE1[m].items():
            cid = f"T1 {analysis.name(m)} {q}"
            seed_mean = cell["mean"].value
            if short or reduced:
                out.append(Answer(cid, q, {}, math.nan, math.nan, "", n, horizon, NOT_TESTED,
                                  f"reduced dynamics: {reduced}" if reduced else
                                  f"a best over the run needs SPEC's horizon ({horizon})"))
                continue
            if q.startswith("dt_"):
                a, b = ("tf_A_val", "tf_A_train") if q == "dt_A" else ("tf_L_val", "tf_L_train")
                vals = [math.nan if s[a] is None or s[b] is None or s[a] >= t or s[b] >= t
                        else float(s[a] - s[b]) for s, t in zip(sums, T)]
                parts_ = ("A_val", "A_train") if q == "dt_A" else ("L_val", "L_train")
                seed_censored = any(seed_report.TABLE1[m][p]["t_f"].value >= SEED_LAST_EVAL
                                    for p in parts_)
                out.append(_steps_cell(cid, q, vals, seed_mean, ev, n, horizon, seed_censored))
                continue
            vals = [float(s[q]) for s in sums]
            if q.startswith("L_"):
                ours_g = geo_mean(vals)
                effect = math.log(ours_g / seed_mean)
                s_seed, quoted = seed_log_spread(m, q)
                s_ours = log_std(vals) if n >= 2 else 0.0
                noise = s_seed + s_ours
                v = AGREE if abs(effect) <= noise else DISAGREE
                why = (f"ours {ours_g:.3g} (geometric mean of {n}) vs seed {cell['mean'].text}: "
                       f"ln ratio {effect:+.2f} vs ±{noise:.2f}")
                src = quoted + (f" + ours ±{s_ours:.2f}" if n >= 2 else "")
            else:
                mean, s_ours = float(np.mean(vals)), float(np.std(vals))
                noise = cell["std"].value + s_ours + max(cell["mean"].half_unit, cell["std"].half_unit)
                effect = mean - seed_mean
                v = AGREE if abs(effect) <= noise * (1 + 1e-9) else DISAGREE
                why = (f"ours {mean:.4f} vs seed {cell['mean'].text} ± {cell['std'].text}: "
                       f"{effect:+.4f} vs ±{noise:.4f}")
                src = "the seed's std + ours + the seed's rounding"
            out.append(Answer(cid, q, {q: tuple(vals)}, effect, noise, src, n, horizon, v, why,
                              ours=f"{np.mean(vals):.3g}"))
            # the cell's t_f
            tf = [math.nan if s[f"tf_{q}"] is None or s[f"tf_{q}"] >= t else float(s[f"tf_{q}"])
                  for s, t in zip(sums, T)]
            seed_tf = cell["t_f"].value
            out.append(_steps_cell(f"{cid} t_f", f"t_f({q})", tf, seed_tf, ev, n, horizon,
                                   seed_tf >= SEED_LAST_EVAL))
    return out


def _steps_cell(cid, obs, vals, seed_value, eval_every, n, horizon, seed_censored) -> Answer:
    if seed_censored or any(math.isnan(v) for v in vals):
        who = "the seed's" if seed_censored else "ours"
        return Answer(cid, obs, {obs: tuple(vals)}, math.nan, math.nan, "", n, horizon, NOT_TESTED,
                      f"censored: {who} t_f at the last step (T); ours {_nums(vals)}, seed "
                      f"{seed_value:,.0f}")
    mean = float(np.mean(vals))
    effect = mean - seed_value
    tol = eval_every + (float(np.std(vals)) if n >= 2 else 0.0)
    # beyond one evaluation interval, one seed has no spread to set the gap against
    v = AGREE if abs(effect) <= tol else DISAGREE if n >= 2 else INCONCLUSIVE
    return Answer(cid, obs, {obs: tuple(vals)}, effect, tol,
                  f"one evaluation interval ({eval_every})"
                  + (f" + std over our {n} seeds" if n >= 2 else " (one seed; the seed quotes no spread)"),
                  n, horizon, v, f"ours {_nums(vals)} vs seed {seed_value:,.0f}: {effect:+,.0f} vs "
                  f"±{tol:,.0f} steps", ours=f"{mean:,.0f}")
