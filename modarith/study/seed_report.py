"""The seed report's published numbers and claims as plain data, and helpers that compare ours
with them.

The seed is the course report that SPEC reproduces (IFT6135 winter 2025, homework 2, practical
part; ``seed/000_a133b5cd909dde9d.txt`` beside SPEC.md). Everything here is quoted from it, with
the section it comes from:

* :data:`TABLE1` — Table 1 of Problem 4.2 (best values, mean ± std over two seeds, and t_f),
  every number kept as the seed prints it (:class:`Quoted`), so its precision is known.
* :data:`CLAIMS` — one :class:`Claim` per question the fidelity section answers: the seed's
  words verbatim and its answer as data (a number, a word or a direction per model).
* :func:`log_noise` — the seed's own seed-to-seed spread of a loss, as the noise of a test
  (:mod:`modarith.study.verdicts` decides; this module has no verdict words of its own).
* :func:`dynamics`, :func:`reference_config`, :func:`training_key` — at which dynamics runs
  answer a claim (SPEC's lr, weight decay, batch and T, or reduced ones).

Nothing here knows how our runs are made; :mod:`modarith.study.claims` measures our answers and
decides the verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import tomllib

from modarith.models.config import OPTIONAL_DEFAULTS, RunConfig
from modarith.models.registry import MODELS, display_name
from modarith.study import verdicts

SOURCE = "seed/000_a133b5cd909dde9d.txt"  # beside SPEC.md; Felix Wilhelmy, April 5, 2025

#: How a claim's measure depends on the horizon T: "first" — fixed by events (first steps at a
#: level) once they happen, so a run that stops before SPEC's T, at SPEC's lr, weight decay and
#: batch, gives SPEC's answer when every event lies before its T (training does not depend on
#: T: a shorter run is a prefix of SPEC's); "whole" — best values over the run: SPEC's T only.
HORIZONS = ("first", "whole")


@dataclass(frozen=True)
class Quoted:
    """A number as the seed prints it; ``text`` keeps its digits, hence its precision."""

    text: str  # as printed, in Python notation: "0.9979", "1.54e-4", "9200"
    unit: str | None = None  # rounding unit of the printing when the text hides it ("1e-4")

    def __post_init__(self):
        for name in ("text", "unit"):
            v = getattr(self, name)
            if v is None and name == "unit":
                continue
            try:
                d = Decimal(v)
            except (InvalidOperation, TypeError):
                raise ValueError(f"Quoted.{name} = {v!r} is invalid: expected a number as "
                                 "printed, e.g. '0.9979' or '1.54e-4'") from None
            if not d.is_finite() or (name == "unit" and d <= 0):
                raise ValueError(f"Quoted.{name} = {v!r} is invalid: expected a finite number"
                                 + (" > 0" if name == "unit" else ""))

    @property
    def value(self) -> float:
        return float(self.text)

    @property
    def half_unit(self) -> float:
        """Half a rounding unit: how far the true value may lie from the printed one. The unit
        is ``unit`` when given, else that of the last printed digit (``0.9979`` → 5e-5,
        ``1.54e-4`` → 5e-7, ``9200`` → 0.5)."""
        if self.unit is not None:
            return 0.5 * float(self.unit)
        return 0.5 * 10.0 ** Decimal(self.text).as_tuple().exponent


def _q(text: str | None, unit: str | None = None) -> Quoted | None:
    return None if text is None else Quoted(text, unit)


# The seed prints accuracies rounded to 4 decimals (A_val = 0.9979 ± 0.0021), so its "1.0 ±
# 0.0" means 1.0000 ± 0.0000.
_ACC = "1e-4"


# --------------------------------------------------------------------------- Table 1
#: Problem 4.2, Table 1: "Performance metrics for LSTM and GPT models. Metrics are reported as
#: mean ± std with the best step indicated to the right of the metrics as t_f." Per model and
#: quantity: ``mean``, ``std`` (None where the seed gives none) and ``t_f``.
TABLE1: dict[str, dict[str, dict[str, Quoted | None]]] = {
    "lstm": {
        "A_train": {"mean": _q("1.0", _ACC), "std": _q("0.0", _ACC), "t_f": _q("100")},
        "L_train": {"mean": _q("1.54e-4"), "std": _q("2.82e-7"), "t_f": _q("9600")},
        "A_val": {"mean": _q("0.9979"), "std": _q("0.0021"), "t_f": _q("9200")},
        "L_val": {"mean": _q("5.01e-3"), "std": _q("4.26e-3"), "t_f": _q("10000")},
        "dt_A": {"mean": _q("9100"), "std": None, "t_f": None},
        "dt_L": {"mean": _q("400"), "std": None, "t_f": None},
    },
    "gpt": {
        "A_train": {"mean": _q("1.0", _ACC), "std": _q("0.0", _ACC), "t_f": _q("300")},
        "L_train": {"mean": _q("9.66e-5"), "std": _q("1.42e-5"), "t_f": _q("10001")},
        "A_val": {"mean": _q("1.0", _ACC), "std": _q("0.0", _ACC), "t_f": _q("8900")},
        "L_val": {"mean": _q("8.88e-4"), "std": _q("2.36e-4"), "t_f": _q("10001")},
        "dt_A": {"mean": _q("8600"), "std": None, "t_f": None},
        "dt_L": {"mean": _q("0"), "std": None, "t_f": None},
    },
}
TABLE1_SECTION = "Problem 4.2, Table 1"


def table1_values() -> dict[str, dict[str, tuple[float, float, float]]]:
    """:data:`TABLE1` as plain floats, model -> quantity -> (mean, std, t_f), NaN where the
    seed prints nothing: the input of :func:`modarith.study.analysis.table_frame`."""
    def number(q: Quoted | None) -> float:
        return math.nan if q is None else q.value

    return {m: {q: (number(c["mean"]), number(c["std"]), number(c["t_f"])) for q, c in rows.items()}
            for m, rows in TABLE1.items()}


# --------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    """One answer of the seed, quoted, with the same answer as plain data."""

    key: str  # short identifier, e.g. "smallest_r_generalising"
    experiment: str  # the experiment whose runs answer it (sanity, data_size, …)
    section: str  # where the seed says it, e.g. "Problem 4.3.d"
    question: str  # the question, in our words
    quote: tuple[str, ...]  # the seed's words, verbatim (whitespace collapsed, LaTeX kept)
    answer: object  # the seed's answer: per model {"lstm": …, "gpt": …} or one word/number
    measure: str  # the rule the claim is decided by, in words (its one home)
    horizon: str = "whole"  # one of HORIZONS: what a run shorter than SPEC's T can answer

    def __post_init__(self):
        if self.horizon not in HORIZONS:
            raise ValueError(f"Claim.horizon = {self.horizon!r} is invalid: expected one of "
                             f"{HORIZONS}")

    @property
    def quote_text(self) -> str:
        """The quoted fragments joined by " … "."""
        return " … ".join(self.quote)


#: The claims, read from ``seed_claims.toml`` beside this module (data, not code).
CLAIMS: tuple[Claim, ...] = tuple(
    Claim(**{**row, "quote": tuple(row["quote"])})
    for row in tomllib.loads(Path(__file__).with_name("seed_claims.toml").read_text(encoding="utf-8"))["claim"])


def claim(key: str) -> Claim:
    """The claim called ``key``; ValueError naming the accepted keys otherwise."""
    for c in CLAIMS:
        if c.key == key:
            return c
    raise ValueError(f"claim = {key!r} is invalid: expected one of {tuple(c.key for c in CLAIMS)}")


# --------------------------------------------------------------------------- spreads
def log_noise(model: str, quantity: str = "L_val") -> verdicts.Noise:
    """The seed report's own spread of a loss (Table 1, mean ± std of two seeds) as the sd of
    ln over its two seeds, df 1 (:func:`verdicts.quoted_log_sd`)."""
    cell = TABLE1.get(model, {}).get(quantity)
    if cell is None or cell["std"] is None or not quantity.startswith("L_"):
        raise ValueError(f"model, quantity = {model!r}, {quantity!r} is invalid: expected one of "
                         f"{sorted(TABLE1)} and L_train or L_val")
    sd = verdicts.quoted_log_sd(cell["mean"].value, cell["std"].value)
    return verdicts.Noise(sd, 1, f"the seed's {display_name(model)} {quantity} {cell['mean'].text} ± "
                           f"{cell['std'].text}: sd {sd:.2f} in ln (df 1)")



_NAMES = {**{m: display_name(m) for m in MODELS}, "both": "both models"}  # display names of answers


def answer_text(answer) -> str:
    """An answer as text: per model "LSTM: 0.4, GPT: 0.3" (LSTM first, as the seed's tables);
    booleans as yes/no."""
    names = _NAMES

    def one(v) -> str:
        if v is None:
            return "–"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:g}"
        return names.get(v, str(v)) if isinstance(v, str) else str(v)

    if isinstance(answer, Mapping):
        order = sorted(answer, key=lambda k: (list(names).index(k) if k in names else len(names)))
        return ", ".join(f"{names.get(k, k)}: {one(answer[k])}" for k in order)
    return one(answer)


# --------------------------------------------------------------------------- dynamics
#: RunConfig fields that do not change a run's training: compared with SPEC's by nobody.
NOT_DYNAMICS = ("seed", "snapshot_every", "snapshots_log")


def training_key(config):
    """``config`` with the fields of :data:`NOT_DYNAMICS` but the seed at their defaults:
    two runs with the same key train identically (one may have weight snapshots, the other
    none), so either answers for the other."""
    from dataclasses import replace

    return replace(config, **{f: OPTIONAL_DEFAULTS[f] for f in NOT_DYNAMICS if f != "seed"})


def reference_config(config, knobs):
    """SPEC's run at the grid point of ``config``: the config that ``knobs`` (an experiment's
    :class:`modarith.study.protocol.Knobs` in the full profile) builds for the same model, seed and
    swept values."""
    grid = {f: getattr(config, f) for f in knobs.grid}
    return RunConfig(model=config.model, seed=config.seed, **knobs.base[config.model], **grid)


def _text(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def dynamics(pairs: Iterable, horizon: str) -> tuple[str, str]:
    """At which dynamics runs answer a claim: ``(status, text)``.

    ``pairs``: ``(config, reference)`` per run, reference = SPEC's run at the same grid point
    (:func:`reference_config`). Every field but :data:`NOT_DYNAMICS` is compared. ``status``:
    ``"spec"`` (nothing differs), ``"prefix"`` (only T, shorter than SPEC's, and the claim's
    ``horizon`` is ``"first"``) or ``"reduced"``; ``text`` names SPEC's lr, weight decay,
    batch and T, or what differs (ours, then SPEC's).
    """
    if horizon not in HORIZONS:
        raise ValueError(f"horizon = {horizon!r} is invalid: expected one of {HORIZONS}")
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs is empty: expected (config, reference) per run")
    diff: dict[str, tuple[set, set]] = {}
    for ours, ref in pairs:
        for f in ours.__dataclass_fields__:
            if f in NOT_DYNAMICS:
                continue
            a, b = getattr(ours, f), getattr(ref, f)
            if a != b:
                d = diff.setdefault(f, (set(), set()))
                d[0].add(a)
                d[1].add(b)

    def values(vs) -> str:
        return "/".join(_text(v) for v in sorted(vs, key=str))

    refs = [r for _, r in pairs]
    spec = (f"lr {values({r.lr for r in refs})}, weight decay "
            f"{values({r.weight_decay for r in refs})}, B {values({r.batch_size for r in refs})}")
    if not diff:
        return "spec", f"SPEC's ({spec}, T {values({r.steps for r in refs})})"
    if set(diff) == {"steps"} and all(o.steps < r.steps for o, r in pairs):
        ours_t, spec_t = values(diff["steps"][0]), values(diff["steps"][1])
        if horizon == "first":
            return "prefix", (f"SPEC's ({spec}), to T {ours_t} of SPEC's {spec_t}: a prefix of "
                              "SPEC's runs")
        return "reduced", (f"SPEC's {spec}, but T {ours_t} of SPEC's {spec_t}: this claim's "
                           "measure needs SPEC's horizon")
    changed = "; ".join(f"{f} {values(a)} (SPEC {values(b)})" for f, (a, b) in diff.items())
    return "reduced", f"reduced: {changed}"
