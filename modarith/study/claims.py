"""The seed's claims measured from our records and decided by :mod:`modarith.study.verdicts`.

One function per claim of :data:`modarith.study.seed_report.CLAIMS` (same keys, :data:`MEASURES`).
Each takes the stored records of its experiment (anything with ``.config`` and ``.history``) and
returns an :class:`Answer`: the observable, our numbers per seed, the tests behind the verdict
(effect, standard error, degrees of freedom), the verdict and a line with the numbers. The rule
each claim is decided by is written once, in the claim's ``measure`` in ``seed_claims.toml``;
the functions here carry it out.

What every claim shares: runs at reduced dynamics (another lr, weight decay, batch …) are *not
tested* (``reduced``: the text of :func:`modarith.study.seed_report.dynamics`); a claim whose
measure needs SPEC's horizon is *not tested* on shorter runs (``spec_steps``); a best value at
the last evaluation is a bound (:attr:`verdicts.Test.can_rise` / ``can_fall``). An experiment's
claims are decided together (:func:`modarith.study.fidelity.answers`: Holm over their tests);
a report decides all of them as one family (:func:`decide_family`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from modarith.core.metrics import summarize
from modarith.study import analysis, seed_report
from modarith.study import verdicts as vd
from modarith.study.verdicts import AGREE, ALPHA, DISAGREE, INCONCLUSIVE, NOT_TESTED, VERDICTS

LEVEL = 0.9  # A ≥ LEVEL: memorised (A_train) or generalised (A_val), the seed's Problem 4.3.d
LOW = 0.5  # A_val below this when A_train first reaches LEVEL: "still low" (claim 1)
MULTIPLE = 2.0  # claim 1: t_gen at least this multiple of t_mem ("a multiple")
DELTA_ACC = 0.1  # claims 3-4: an accuracy this close below its cut and still rising may cross it
RISING_TAIL = 0.1  # … "still rising": its best reached in the last tenth of the run
DELTA_NORM = 0.01  # claim 11: a rise or a fall of ‖θ‖₂ counts beyond 1 % (relative)


@dataclass(frozen=True)
class Answer:
    """Our measurement of one claim and its verdict (built by keyword, :func:`_answer`)."""

    claim: str  # claim key (seed_report.CLAIMS)
    observable: str  # as the seed names it, e.g. "best L_val"
    verdict: str  # one of VERDICTS
    why: str  # one line, with numbers
    seeds: int  # seeds per configuration
    horizon: str  # e.g. "T 10,001 (SPEC's)"
    per_seed: Mapping[str, tuple] = field(default_factory=dict)  # label -> one number per seed
    tests: tuple = ()  # verdicts.Test behind the verdict
    fixed: tuple = ()  # verdicts of parts read without a test (thresholds, single runs)
    rule: str = "every"  # how parts combine (a key of verdicts.RULES)
    family: int = 0  # tests in the family its verdict was corrected over (Holm)
    run_steps: int = 0  # run-steps of one more seed of its runs
    ours: str = ""  # our answer in the seed's terms (short)
    extra: Mapping[str, object] = field(default_factory=dict)  # tables behind the answer

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"Answer.verdict = {self.verdict!r} is invalid: expected one of {VERDICTS}")

    def line(self) -> str:
        """``<claim>: <verdict> — <why> [tests]``."""
        tests = f" [{self.tests_text()}]" if self.tests else ""
        return f"{self.claim}: {self.verdict} — {self.why}{tests}"

    def tests_text(self) -> str:
        """Each test's effect ± se (df), Holm's family, and the detectable effect when
        inconclusive."""
        out = "; ".join(t.text() for t in self.tests)
        if self.family:
            out += f"; α {ALPHA} over {self.family} test{'s' if self.family > 1 else ''} (Holm)"
        if self.verdict == INCONCLUSIVE and self.tests:
            out += "; would detect " + ", ".join(t.detectable() for t in self.tests)
        return out

    def row(self) -> dict:
        """The details as one table row."""
        return {"claim": self.claim, "observable": self.observable, "verdict": self.verdict,
                "tests": self.tests_text(), "seeds": self.seeds, "horizon": self.horizon,
                "why": self.why}


def _answer(claim: str, observable: str, records, horizon: str, *, verdict: str | None = None,
            why: str, tests=(), fixed=(), rule: str = "every", **rest) -> Answer:
    """The one way an :class:`Answer` is built: ``verdict`` given, or decided from ``tests``
    (Holm over them) and ``fixed`` by ``rule``."""
    tests, fixed = tuple(tests), tuple(fixed)
    family = sum(map(vd.decidable, tests))
    if verdict is None:
        verdict = vd.RULES[rule]([*vd.decide(tests), *fixed])
    points = {_point(r.config) for r in records}
    steps = sum(r.config.total_steps for r in records) // max(1, _seeds_of(records))
    return Answer(claim, observable, verdict, why, _seeds_of(records), horizon, tests=tests,
                  fixed=fixed, rule=rule, family=family, run_steps=steps if points else 0, **rest)


def decide_family(answers: Sequence[Answer], level: float = ALPHA) -> list[Answer]:
    """The answers re-decided as one family: Holm over every test of every answer."""
    tests = [t for a in answers for t in a.tests]
    decided = iter(vd.decide(tests, level))
    out = []
    for a in answers:
        if not a.tests:
            out.append(a)
            continue
        parts = [next(decided) for _ in a.tests]
        out.append(replace(a, verdict=vd.RULES[a.rule]([*parts, *a.fixed]),
                           family=sum(map(vd.decidable, tests))))
    return out


def number_text(v) -> str:
    """A number for a verdict line: "–" for NaN, thousands separators for step counts, else 3
    significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 10):
        return f"{v:,.0f}"
    return f"{v:.3g}"


def numbers_text(vs) -> str:
    """One number per seed, "/"-separated ("never" for NaN)."""
    return "/".join("never" if isinstance(v, float) and math.isnan(v) else number_text(v) for v in vs)


# --------------------------------------------------------------------------- shared steps
def _floor(models) -> vd.Noise | None:
    """The largest quoted spread of the seed among ``models`` (None when it quotes none)."""
    quoted = [seed_report.log_noise(m) for m in models if m in seed_report.TABLE1]
    return max(quoted, key=lambda n: n.sd, default=None)


def _seeds_of(records) -> int:
    counts: dict = {}
    for r in records:
        counts[_point(r.config)] = counts.get(_point(r.config), 0) + 1
    return max(counts.values(), default=0)


def _point(config):
    return replace(seed_report.training_key(config), seed=0)


def _opening(key, observable, records, spec_steps, reduced, needs: str = ""):
    """What every measure does first: ``(records, horizon, shortened, untested)``; ``untested``
    is the "not tested" Answer under reduced dynamics, or on a shortened horizon for a measure
    that ``needs`` SPEC's (e.g. "a best over the run needs"), else None."""
    records = list(records)
    if not records:
        raise ValueError(f"records is empty: claim {key!r} needs the runs of its experiment")
    for r in records:
        if not hasattr(r, "config") or not hasattr(r, "history"):
            raise ValueError(f"records must have .config and .history, got {type(r).__name__}")
    records = [r for r in records if r.config.model in seed_report.TABLE1]  # the seed's models: the claims' subject
    if not records:
        raise ValueError(f"records hold none of the seed's models: claim {key!r} is about {sorted(seed_report.TABLE1)}")
    T = int(min(r.history["step"][-1] for r in records))
    short = spec_steps is not None and T < spec_steps
    horizon = (f"T {T:,} of SPEC's {spec_steps:,}" if short else
               f"T {T:,}" + (" (SPEC's)" if spec_steps is not None else ""))
    why = (f"reduced dynamics: {reduced}" if reduced else
           f"{needs} SPEC's horizon ({horizon})" if short and needs else None)
    untested = None if why is None else _answer(key, observable, records, horizon,
                                                verdict=NOT_TESTED, why=why)
    return records, horizon, short, untested


def by_model(records) -> dict[str, list]:
    """Records per model, in the registry's display order, each by seed."""
    out: dict[str, list] = {}
    for r in sorted(records, key=lambda r: (analysis.model_order(r.config.model), r.config.seed)):
        out.setdefault(r.config.model, []).append(r)
    return out


def _first(r, key: str, level: float = LEVEL) -> float:
    return analysis.first_step_at(r.history["step"], r.history[key], level)


def best(r, q: str) -> tuple[float, bool]:
    """A run's best value of ``q`` and whether it is censored (t_f at the last evaluation)."""
    s = summarize(r.history)
    return float(s[q]), s[f"tf_{q}"] is not None and s[f"tf_{q}"] >= r.history["step"][-1]


# --------------------------------------------------------------------------- claims
def memorise_then_generalise(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 1 (rule: ``seed_claims.toml``)."""
    key, obs = "memorise_then_generalise", "t_gen / t_mem (first A_val ≥ 0.9 / first A_train ≥ 0.9)"
    records, horizon, short, untested = _opening(key, obs, records, spec_steps, reduced)
    if untested:
        return untested
    per, logs, fixed, parts = {}, {}, [], []
    for m, rs in by_model(records).items():
        name = analysis.name(m)
        t_mem = [_first(r, "train_acc") for r in rs]
        t_gen = [_first(r, "val_acc") for r in rs]
        a_at = [float(np.asarray(r.history["val_acc"])[np.asarray(r.history["step"]) == t][0])
                if not math.isnan(t) else math.nan for r, t in zip(rs, t_mem)]
        per.update({f"{name} t_mem": tuple(t_mem), f"{name} t_gen": tuple(t_gen),
                    f"{name} A_val at t_mem": tuple(a_at)})
        parts.append(f"{name}: t_mem {numbers_text(t_mem)}, A_val there {numbers_text(a_at)}, t_gen {numbers_text(t_gen)}")
        if any(math.isnan(t) for t in t_mem + t_gen):
            fixed.append(NOT_TESTED if short else DISAGREE)
            parts[-1] += f" (A_val or A_train never 0.9 by {horizon})"
        elif any(a >= LOW for a in a_at):
            fixed.append(DISAGREE)
            parts[-1] += f" (A_val ≥ {LOW} at t_mem: no memorising phase)"
        else:
            logs[name] = [tg / (MULTIPLE * max(tm, 1.0)) for tm, tg in zip(t_mem, t_gen)]
    noise = vd.log_noise(list(logs.values()))
    tests = [vd.log_mean(f"{m} ln(t_gen / {MULTIPLE:g}·t_mem)", v, noise, +1) for m, v in logs.items()]
    return _answer(key, obs, records, horizon, why="; ".join(parts), tests=tests, fixed=fixed,
                   per_seed=per, ours=", ".join(f"{m}: t_gen ×{numbers_text([MULTIPLE * x for x in v])} t_mem"
                                                for m, v in logs.items()))


def lower_val_loss(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 2 (rule: ``seed_claims.toml``)."""
    key, obs = "lower_val_loss", "best L_val"
    records, horizon, short, untested = _opening(key, obs, records, spec_steps, reduced,
                                                 "a best over the run needs")
    if untested:
        return untested
    models = by_model(records)
    if not {"lstm", "gpt"} <= set(models):
        raise ValueError(f"records must hold the LSTM and the GPT for {key}, got {sorted(models)}")
    vals = {m: [best(r, "L_val") for r in models[m]] for m in ("lstm", "gpt")}
    L = {m: [v for v, _ in vals[m]] for m in vals}
    cens = {m: any(c for _, c in vals[m]) for m in vals}
    noise = vd.log_noise(L.values(), _floor(("lstm", "gpt")))
    # ln(L_LSTM / L_GPT) > 0: the GPT lower (the seed's answer); a censored best may be lower
    test = vd.log_difference("ln(L_LSTM / L_GPT)", L["lstm"], L["gpt"], noise, +1,
                             can_rise=cens["gpt"], can_fall=cens["lstm"])
    g = {m: vd.geo_mean(v) for m, v in L.items()}
    lower = "GPT" if test.effect > 0 else "LSTM"
    return _answer(key, obs, records, horizon, tests=[test],
                   per_seed={analysis.name(m): tuple(v) for m, v in L.items()},
                   why=(f"geometric means LSTM {g['lstm']:.2e}, GPT {g['gpt']:.2e}: {lower} lower "
                        f"×{math.exp(abs(test.effect)):.3g}; noise {noise.source}"
                        + ("; a best at T (censored)" if any(cens.values()) else "")),
                   ours=f"{lower} lower ×{math.exp(abs(test.effect)):.3g}")


def _unsettled(r, cuts: Mapping[str, float]) -> bool:
    """A run whose best value of a criterion lies within DELTA_ACC below its cut and is still
    rising (its best in the last RISING_TAIL of the run): a longer run may move it across."""
    T = r.history["step"][-1]
    s = summarize(r.history)
    return any(cut - DELTA_ACC <= s[q] < cut and s[f"tf_{q}"] >= (1 - RISING_TAIL) * T
               for q, cut in cuts.items())


def _possible(points: Mapping[float, bool], unsettled: Sequence[float], pick) -> set:
    """Every threshold (``pick`` of the points that hold) reachable by flipping any subset of
    the unsettled points."""
    out = set()
    for k in range(len(unsettled) + 1):
        for flip in itertools.combinations(unsettled, k):
            hold = [x for x, ok in points.items() if ok != (x in flip)]
            out.add(pick(hold) if hold else None)
    return out


def _r_threshold(key, records, when: Callable, cuts, pick, spec_steps, reduced, obs) -> Answer:
    records, horizon, short, untested = _opening(key, obs, records, spec_steps, reduced,
                                                 "best values over the run need")
    if untested:
        return untested
    fixed, parts, ours, per = [], [], {}, {}
    for m, rs in by_model(records).items():
        want = seed_report.claim(key).answer.get(m)
        grid = sorted({r.config.r_train for r in rs})
        found = {}
        for seed in sorted({r.config.seed for r in rs}):
            runs = {r.config.r_train: r for r in rs if r.config.seed == seed}
            ok = {x: when(summarize(r.history)) for x, r in runs.items()}
            found[seed] = _possible(ok, [x for x, r in runs.items() if _unsettled(r, cuts)], pick)
            per[f"{analysis.name(m)} seed {seed} A_train/A_val"] = tuple(
                f"{summarize(r.history)['A_train']:.2f}/{summarize(r.history)['A_val']:.2f}"
                for _, r in sorted(runs.items()))
        values = set().union(*found.values())
        ours[m] = "/".join("none" if v is None else f"{v:g}" for v in sorted(values, key=str))
        if want is not None and not any(math.isclose(want, x) for x in grid):
            fixed.append(NOT_TESTED)
            note = f"the seed's {want:g} is not a point of our grid"
        elif len(values) > 1:
            fixed.append(INCONCLUSIVE)
            note = f"seeds or a run near its cut still rising leave {ours[m]} open"
        else:
            v = values.pop()
            fixed.append(AGREE if v is not None and math.isclose(v, want) else DISAGREE)
            note = f"seed {want:g}"
        parts.append(f"{analysis.name(m)} r {ours[m]} ({note})")
    return _answer(key, obs, records, horizon, fixed=fixed, per_seed=per, why="; ".join(parts),
                   ours=", ".join(f"{analysis.name(m)} {v}" for m, v in ours.items()))


def smallest_r_generalising(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 3 (rule: ``seed_claims.toml``)."""
    return _r_threshold("smallest_r_generalising", records, lambda b: b["A_val"] >= LEVEL,
                        {"A_val": LEVEL}, min, spec_steps, reduced,
                        "smallest r with best A_val ≥ 0.9, per seed")


def largest_r_overfitting(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 4 (rule: ``seed_claims.toml``)."""
    return _r_threshold("largest_r_overfitting", records,
                        lambda b: b["A_train"] > LEVEL and b["A_val"] < LOW,
                        {"A_train": LEVEL, "A_val": LOW}, max, spec_steps, reduced,
                        "largest r with A_train > 0.9 and A_val < 0.5, per seed")


def ternary_faster(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 5 (rule: ``seed_claims.toml``)."""
    key, obs = "ternary_faster", "first step with A_val ≥ 0.9, binary − ternary"
    records, horizon, short, untested = _opening(key, obs, records, spec_steps, reduced)
    if untested:
        return untested
    per, gaps, bounds, parts, fixed = {}, {}, {}, [], []
    for m, rs in by_model(records).items():
        name = analysis.name(m)
        b = [_first(r, "val_acc_o2") for r in rs]
        t = [_first(r, "val_acc_o3") for r in rs]
        per[f"{name} binary"], per[f"{name} ternary"] = tuple(b), tuple(t)
        parts.append(f"{name}: binary {numbers_text(b)}, ternary {numbers_text(t)}")
        never_b, never_t = any(map(math.isnan, b)), any(map(math.isnan, t))
        if never_b or never_t:
            if short or (never_b and never_t):
                fixed.append(NOT_TESTED if short else INCONCLUSIVE)
                parts[-1] += f" (an order not at 0.9 by {horizon}: censored)"
                continue
            T = max(r.history["step"][-1] for r in rs)  # never by T: after T, a bound
            b = [T + 1 if math.isnan(x) else x for x in b]
            t = [T + 1 if math.isnan(x) else x for x in t]
        gaps[name] = [x - y for x, y in zip(b, t)]
        bounds[name] = (never_b, never_t)
    ev = records[0].config.eval_every
    tests = [vd.step_difference(name, {name: g, **{k: v for k, v in gaps.items() if k != name}}, ev, +1,
                                can_rise=bounds[name][0], can_fall=bounds[name][1])
             for name, g in gaps.items()]
    ours = "; ".join(f"{t.label}: {'ternary' if t.effect > 0 else 'binary'} first by "
                     f"{abs(t.effect):,.0f} steps" for t in tests)
    return _answer(key, obs, records, horizon, tests=tests, fixed=fixed, per_seed=per,
                   why="; ".join(parts), ours=ours)


def trend(key: str, records, vary: str, fixed: str, model: str, spec_steps=None,
          reduced=None) -> Answer:
    """Claims 6–9, along ``vary`` at each value of ``fixed`` for ``model`` (rule:
    ``seed_claims.toml``); "unstable" is counted by :func:`analysis.instability` and reported."""
    obs = f"best L_val along {analysis.sym(vary)} ({analysis.name(model)})"
    records, horizon, short, untested = _opening(
        key, obs, [r for r in records if r.config.model == model], spec_steps, reduced,
        "a best over the run needs")
    if untested:
        return untested
    sign = +1 if seed_report.claim(key).answer[model] == "increases" else -1
    points: dict = {}
    for r in records:
        points.setdefault((getattr(r.config, fixed), getattr(r.config, vary)), []).append(best(r, "L_val"))
    noise = vd.log_noise([[v for v, _ in p] for p in points.values()], _floor([model]))
    per, parts, tests = {}, [], []
    for f in sorted({f for f, _ in points}):
        xs = sorted(x for f_, x in points if f_ == f)
        first, last = points[f, xs[0]], points[f, xs[-1]]
        for x in xs:
            per[f"{analysis.sym(fixed)} {analysis.fmt_value(f)}, {analysis.sym(vary)} "
                f"{analysis.fmt_value(x)}"] = tuple(v for v, _ in points[f, x])
        tests.append(vd.log_difference(
            f"{analysis.sym(fixed)} {analysis.fmt_value(f)}", [v for v, _ in last],
            [v for v, _ in first], noise, sign, can_rise=any(c for _, c in first),
            can_fall=any(c for _, c in last)))
        means = [vd.geo_mean([v for v, _ in points[f, x]]) for x in xs]
        shape = (f", {analysis.direction(means).replace('is ', '')} over all {len(xs)} points"
                 if len(xs) > 2 else "")
        parts.append(f"{analysis.sym(fixed)} {analysis.fmt_value(f)}: "
                     + " → ".join(f"{m_:.2e}" for m_ in means) + shape)
    test = vd.mean_of_differences(f"mean ln(last / first) over {analysis.sym(fixed)}", tests)
    inst = analysis.instability(records, vary)
    unstable = ", ".join(f"{analysis.sym(vary)} {analysis.fmt_value(x)}: "
                         f"{c['A_train collapses']}+{c['A_val crashes']}" for x, c in inst.items())
    return _answer(key, obs, records, horizon, tests=[test], per_seed=per,
                   why="; ".join(parts) + f"; noise {noise.source}; collapses of A_train + crashes of "
                   f"A_val: {unstable}", extra={"instability": inst},
                   ours=f"×{math.exp(test.effect):.3g} from the first {analysis.sym(vary)} to the last")


def gpt_width(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 6: the GPT along d at fixed L (:func:`trend`)."""
    return trend("gpt_width", records, "d_model", "num_layers", "gpt", spec_steps, reduced)


def lstm_width(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 7: the LSTM along d at fixed L (:func:`trend`)."""
    return trend("lstm_width", records, "d_model", "num_layers", "lstm", spec_steps, reduced)


def lstm_depth(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 8: the LSTM along L at fixed d (:func:`trend`)."""
    return trend("lstm_depth", records, "num_layers", "d_model", "lstm", spec_steps, reduced)


def gpt_depth(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 9: the GPT along L at fixed d (:func:`trend`)."""
    return trend("gpt_depth", records, "num_layers", "d_model", "gpt", spec_steps, reduced)


def weight_decay_time(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 10 (rule: ``seed_claims.toml``)."""
    key, obs = "weight_decay_time", "t_f(A_val) and t_f(L_val) along the weight decay (LSTM)"
    records, horizon, short, untested = _opening(key, obs, [r for r in records if r.config.model == "lstm"],
                                                 spec_steps, reduced, "t_f of a best over the run needs")
    if untested:
        return untested
    wds = sorted({r.config.weight_decay for r in records})
    per, tests, parts = {}, [], []
    for q in ("A_val", "L_val"):
        tf: dict = {}
        for r in records:
            s = summarize(r.history)
            tf.setdefault(r.config.weight_decay, {})[r.config.seed] = (
                float(s[f"tf_{q}"]), s[f"tf_{q}"] >= r.history["step"][-1])  # at T: a lower bound
        for w in wds:
            per[f"t_f({q}) wd {w:g}"] = tuple(tf[w][s][0] for s in sorted(tf[w]))
        lo, hi = tf[wds[0]], tf[wds[-1]]
        common = sorted(set(lo) & set(hi))
        tests.append(vd.step_difference(
            f"t_f({q}) wd {wds[-1]:g} − {wds[0]:g}", {q: [hi[s][0] - lo[s][0] for s in common]},
            records[0].config.eval_every, -1, can_rise=any(hi[s][1] for s in common),
            can_fall=any(lo[s][1] for s in common)))
        parts.append(f"t_f({q}) {numbers_text([lo[s][0] for s in common])} → {numbers_text([hi[s][0] for s in common])}")
    return _answer(key, obs, records, horizon, tests=tests, per_seed=per, why="; ".join(parts),
                   ours="; ".join(f"{t.label} {t.effect:+,.0f}" for t in tests))


def norm_shares(steps, norm, t_gen: float) -> dict:
    """The total ‖θ‖₂ around t_gen (:func:`analysis.rise_and_fall`: ``init``, ``peak`` before
    t_gen, ``at_event``, ``low`` after, ``end``), plus ``share_after`` = (at_gen − low) /
    (peak − low), the share of the fall from the peak to the low that comes after t_gen."""
    r = analysis.rise_and_fall(steps, norm, t_gen)
    drop = r["peak"] - r["low"]
    return {**r, "share_after": (r["at_event"] - r["low"]) / drop if drop > 0 else math.nan}


def norm_rise_fall(records, spec_steps=None, reduced=None) -> Answer:
    """Claim 11 on the total ‖θ‖₂ (rule: ``seed_claims.toml``); the seed's spikes of the norm at
    A_val crashes are counted per run (:func:`analysis.spikes_at_crashes`) and reported."""
    key, obs = "norm_rise_fall", "total ‖θ‖₂: a rise before t_gen, a fall after it"
    records, horizon, short, untested = _opening(key, obs, [r for r in records if r.config.model == "lstm"],
                                                 spec_steps, reduced, "a fall after t_gen needs")
    if untested:
        return untested
    per, runs, parts = {}, [], []
    for r in sorted(records, key=lambda r: (r.config.weight_decay, r.config.seed)):
        label = f"wd {r.config.weight_decay:g} seed {r.config.seed}"
        t_gen = _first(r, "val_acc")
        if math.isnan(t_gen):
            parts.append(f"{label}: A_val never 0.9 by {horizon} (not a run that generalises)")
            continue
        s = norm_shares(r.history["step"], r.history["param_norm"], t_gen)
        rise, fall = s["peak"] / s["init"] - 1, 1 - s["low"] / s["at_event"]
        per[label] = (rise, fall)
        runs.append(AGREE if rise > DELTA_NORM and fall > DELTA_NORM else DISAGREE)
        spikes = analysis.spikes_at_crashes(r.history)
        parts.append(f"{label}: {s['init']:.1f} → peak {s['peak']:.1f} (≤ t_gen {t_gen:,.0f}, "
                     f"{100 * rise:+.1f} %) → {s['at_event']:.1f} at t_gen → low {s['low']:.1f} "
                     f"({-100 * fall:+.1f} %): {runs[-1]}"
                     + (f"; {spikes[1]} of {spikes[0]} A_val crashes with a norm spike" if spikes[0] else ""))
    return _answer(key, obs, records, horizon, fixed=runs, rule="unanimous", per_seed=per,
                   why="; ".join(parts) or "no run", ours=f"{runs.count(AGREE)} of {len(runs)} runs "
                   "rise and fall")


MEASURES: dict[str, Callable[..., Answer]] = {
    "memorise_then_generalise": memorise_then_generalise, "lower_val_loss": lower_val_loss,
    "smallest_r_generalising": smallest_r_generalising, "largest_r_overfitting": largest_r_overfitting,
    "ternary_faster": ternary_faster, "gpt_width": gpt_width, "lstm_width": lstm_width,
    "lstm_depth": lstm_depth, "gpt_depth": gpt_depth, "weight_decay_time": weight_decay_time,
    "norm_rise_fall": norm_rise_fall,
}
assert set(MEASURES) == {c.key for c in seed_report.CLAIMS}, "one function per claim"


def measure(key: str, records, spec_steps: int | None = None, reduced: str | None = None) -> Answer:
    """The :class:`Answer` of claim ``key`` (a key of :data:`MEASURES`) alone."""
    if key not in MEASURES:
        raise ValueError(f"claim = {key!r} is invalid: expected one of {tuple(MEASURES)}")
    return MEASURES[key](records, spec_steps=spec_steps, reduced=reduced)
