"""The one decision procedure every verdict of the report goes through: tests with a stated
error rate.

A claim of the seed is a direction (our effect has the seed's sign) or a threshold. Each
direction is one or more :class:`Test` objects — an observed effect, its standard error and
degrees of freedom — and a test says *agree* when the seed's direction is significant,
*disagree* when the opposite one is, *inconclusive* otherwise; with *not tested* for runs that
cannot answer. The words are :data:`VERDICTS` (claims) and :data:`CELL_VERDICTS` (Table 1).

* Losses are compared as log ratios. The noise is the within-point standard deviation of
  ln(value) pooled over grid points (:func:`pooled_log_sd`, degrees of freedom Σ(nᵢ − 1)),
  never smaller than the seed report's own spread where it quotes one (:func:`log_noise`);
  with no degrees of freedom of our own the seed's spread supplies the noise (its df: 1).
  The standard error is that of a difference of means (:func:`log_difference`,
  :func:`mean_of_differences`).
* Step times are paired differences, pooled over grid points, with one evaluation interval of
  resolution: an effect counts only beyond it (:func:`step_difference`).
* Student-t quantiles (``scipy.stats.t``) at those degrees of freedom; zero degrees of freedom
  decides nothing (inconclusive).
* A family of tests (every test of the claims one report decides) keeps its family-wise error
  rate at :data:`ALPHA` by Holm's step-down correction (:func:`holm`; a few lines here because
  statsmodels is not a dependency, and ``scipy.stats.false_discovery_control`` controls the
  false discovery rate, not the family-wise error rate).
* A censored value (a best at the last evaluation, an event not reached by T) is a bound: a
  test records which way the true effect could still move (``can_rise``, ``can_fall``) and a
  direction the bound could flip is not decided.
* An inconclusive test gives the smallest effect it could have detected
  (:meth:`Test.detectable`, at power :data:`POWER`) and the seeds that would detect the effect
  measured (:func:`seeds_to_decide`).
* Table 1: equivalence within a margin fixed in advance, two one-sided tests at ALPHA
  (:func:`equivalence`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

AGREE, DISAGREE, INCONCLUSIVE, NOT_TESTED = "agree", "disagree", "inconclusive", "not tested"
VERDICTS = (AGREE, DISAGREE, INCONCLUSIVE, NOT_TESTED)
EQUIVALENT, DIFFERENT = "equivalent", "different"
CELL_VERDICTS = (EQUIVALENT, DIFFERENT, INCONCLUSIVE, NOT_TESTED)
ALPHA = 0.05  # family-wise error rate of the claims one report decides; TOST level of a cell
POWER = 0.8  # the power at which a detectable effect and the seeds that decide are quoted
MAX_SEEDS = 64  # seeds_to_decide looks no further


@dataclass(frozen=True)
class Noise:
    """A standard deviation per seed with its degrees of freedom and where it comes from."""

    sd: float
    df: int
    source: str


@dataclass(frozen=True)
class Test:
    """One comparison: ``effect`` (in ``unit``: "ln" or "steps") with its standard error ``se``
    at ``df`` degrees of freedom, against the seed's direction ``sign`` (+1/−1)."""

    label: str  # what is compared, e.g. "LSTM", "L 2"
    effect: float
    se: float
    df: int
    sign: int
    unit: str = "ln"
    noise: Noise | None = None
    resolution: float = 0.0  # an effect within ± this is no effect (steps: one evaluation interval)
    n: int = 1  # seeds per compared mean now
    se_n: Callable[[int], tuple[float, int]] | None = None  # seeds -> (se, df) of this design
    can_rise: bool = False  # a censored value: the true effect may be larger
    can_fall: bool = False  # … or smaller

    def _p(self, direction: int) -> float:
        """One-sided p-value of ``direction`` · effect > resolution."""
        if not math.isfinite(self.effect) or self.df < 1 or not math.isfinite(self.se):
            return 1.0
        excess = direction * self.effect - self.resolution
        if self.se == 0:
            return 0.0 if excess > 0 else 1.0
        return float(stats.t.sf(excess / self.se, self.df))

    @property
    def p(self) -> float:
        """Two-sided p-value: twice the smaller one-sided one (capped at 1)."""
        return min(1.0, 2 * min(self._p(+1), self._p(-1)))

    def decide(self, p_adjusted: float | None = None, level: float = ALPHA) -> str:
        """Agree / disagree when the (Holm-adjusted) p-value is at most ``level`` on the seed's
        side or the other, unless a bound could flip it; else inconclusive."""
        p = self.p if p_adjusted is None else p_adjusted
        if p > level:
            return INCONCLUSIVE
        up = self._p(+1) <= self._p(-1)  # the significant side: effect > 0
        if (up and self.can_fall) or (not up and self.can_rise):
            return INCONCLUSIVE
        return AGREE if up == (self.sign > 0) else DISAGREE

    def critical(self, level: float = ALPHA, power: float = POWER, se=None, df=None) -> float:
        """The smallest |effect| decided with probability ``power`` at a two-sided ``level``:
        resolution + (t_{1−level/2} + t_{power})·se; inf with no degrees of freedom."""
        se, df = (self.se, self.df) if se is None else (se, df)
        if df < 1 or not math.isfinite(se):
            return math.inf
        return self.resolution + (stats.t.ppf(1 - level / 2, df) + stats.t.ppf(power, df)) * se

    def detectable(self, level: float = ALPHA, power: float = POWER) -> str:
        """The smallest effect this design detects, as text ("×4.1 at 2 seeds")."""
        return effect_text(self.critical(level, power), self.unit) + f" at {self.n} seed" \
            + ("s" if self.n != 1 else "")

    def text(self) -> str:
        """``LSTM: ln +1.20 ± 0.40 (df 2)``."""
        unit = "ln " if self.unit == "ln" else ""
        e = (f"{self.effect:+.2f}" if self.unit == "ln" else f"{self.effect:+,.0f}") \
            if math.isfinite(self.effect) else "–"
        se = (f"{self.se:.2f}" if self.unit == "ln" else f"{self.se:,.0f}") \
            if math.isfinite(self.se) else "–"
        return f"{self.label}: {unit}{e} ± {se} (df {self.df})"


def effect_text(x: float, unit: str) -> str:
    """An effect size as text: ×e^x for a log ratio, steps otherwise; "no design" for inf."""
    if not math.isfinite(x):
        return "nothing (no degrees of freedom)"
    return f"×{math.exp(x):.3g}" if unit == "ln" else f"{x:,.0f} steps"


# --------------------------------------------------------------------------- noise
def pooled_sd(groups: Iterable[Sequence[float]]) -> tuple[float, int]:
    """Within-group standard deviation pooled over groups: √(Σ Σ (x − x̄ᵢ)² / Σ(nᵢ − 1)) and its
    degrees of freedom Σ(nᵢ − 1) (NaN, 0 when no group has two values). NaN entries are
    dropped."""
    ss, df = 0.0, 0
    for g in groups:
        v = np.asarray([x for x in g if not math.isnan(x)], dtype=float)
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
    return (math.sqrt(ss / df) if df else math.nan), df


def pooled_log_sd(groups: Iterable[Sequence[float]]) -> tuple[float, int]:
    """:func:`pooled_sd` of ln(value)."""
    return pooled_sd([np.log(np.asarray(g, dtype=float)) for g in groups])


def quoted_log_sd(mean: float, std: float) -> float:
    """The sample sd of ln(value) over two seeds printed as mean ± std (population std): the
    two values are mean ∓ std, so it is |ln((mean + std)/(mean − std))| / √2 (df 1)."""
    if not 0 <= std < mean:
        raise ValueError(f"mean, std = {mean!r}, {std!r} is invalid: expected 0 <= std < mean")
    return abs(math.log((mean + std) / (mean - std))) / math.sqrt(2)


def log_noise(groups: Iterable[Sequence[float]], floor: Noise | None = None) -> Noise:
    """The noise of ln(value) at one grid point: pooled over ``groups`` (the experiment's grid
    points, :func:`pooled_log_sd`), never smaller than ``floor`` (the seed's quoted spread);
    with no degrees of freedom of our own the floor with its own."""
    sd, df = pooled_log_sd(groups)
    if df == 0:
        if floor is None:
            return Noise(math.nan, 0, "one seed per point and no spread quoted: none")
        return floor
    text = f"ln pooled over our grid points (df {df})"
    if floor is not None and floor.sd > sd:
        return Noise(floor.sd, df, f"{floor.source}, above ours ({sd:.2f}, df {df})")
    return Noise(sd, df, f"sd {sd:.2f} of {text}")


# --------------------------------------------------------------------------- tests
def log_difference(label: str, a: Sequence[float], b: Sequence[float], noise: Noise, sign: int,
                   can_rise: bool = False, can_fall: bool = False) -> Test:
    """mean ln(a) − mean ln(b) (a log ratio of geometric means), se = sd·√(1/n_a + 1/n_b)."""
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    na, nb = len(la), len(lb)
    effect = float(la.mean() - lb.mean())

    def se_n(n: int) -> tuple[float, int]:
        return noise.sd * math.sqrt(2 / n), _df_at(noise, na, n)

    return Test(label, effect, noise.sd * math.sqrt(1 / na + 1 / nb), noise.df, sign, "ln", noise,
                n=min(na, nb), se_n=se_n, can_rise=can_rise, can_fall=can_fall)


def log_mean(label: str, values: Sequence[float], noise: Noise, sign: int) -> Test:
    """mean ln(value) against 0 (values already divided by the level they are compared with),
    se = sd/√n: one sample."""
    lv = np.log(np.asarray(values, dtype=float))
    n = len(lv)

    def se_n(m: int) -> tuple[float, int]:
        return noise.sd / math.sqrt(m), _df_at(noise, n, m)

    return Test(label, float(lv.mean()), noise.sd / math.sqrt(n), noise.df, sign, "ln", noise, n=n,
                se_n=se_n)


def geo_mean(values: Sequence[float]) -> float:
    """Geometric mean (the mean on the log scale); NaN if any value is NaN or none is given."""
    v = np.asarray(values, dtype=float)
    return float(np.exp(np.log(v).mean())) if len(v) and not np.isnan(v).any() else math.nan


def mean_of_differences(label: str, parts: Sequence[Test]) -> Test:
    """The mean of independent tests' effects (one per fixed value of a "tends to" claim), se
    = √Σ se² / k, at the df of their shared noise (the smallest)."""
    k = len(parts)
    if not k:
        raise ValueError("parts is empty: expected at least one test")
    p0 = parts[0]

    def se_n(n: int) -> tuple[float, int]:
        s = [p.se_n(n) for p in parts]
        return math.sqrt(sum(x[0] ** 2 for x in s)) / k, min(x[1] for x in s)

    return replace(p0, label=label, effect=float(np.mean([p.effect for p in parts])),
                   se=math.sqrt(sum(p.se ** 2 for p in parts)) / k, df=min(p.df for p in parts),
                   n=min(p.n for p in parts), se_n=se_n,
                   can_rise=any(p.can_rise for p in parts), can_fall=any(p.can_fall for p in parts))


def step_difference(label: str, diffs: Mapping[object, Sequence[float]], eval_every: int, sign: int,
                    can_rise: bool = False, can_fall: bool = False) -> Test:
    """Paired step differences (one per seed) at each of several grid points; the effect is
    their mean at ``label``'s point — the first of ``diffs`` — and the noise their sd pooled
    over all points, with one evaluation interval of resolution."""
    groups = list(diffs.values())
    sd, df = pooled_sd(groups)
    own = np.asarray(groups[0], dtype=float)
    n = len(own)
    noise = Noise(sd, df, f"sd of the paired step differences pooled over {len(groups)} point(s)"
                  if df else "one seed: no spread of step times (the seed quotes none)")

    def se_n(m: int) -> tuple[float, int]:
        return sd / math.sqrt(m), len(groups) * (m - 1)

    return Test(label, float(own.mean()), sd / math.sqrt(n) if df else math.nan, df, sign, "steps",
                noise, resolution=float(eval_every), n=n, se_n=se_n, can_rise=can_rise,
                can_fall=can_fall)


def _df_at(noise: Noise, n_now: int, n: int) -> int:
    """Degrees of freedom of ``noise`` had every point ``n`` seeds instead of ``n_now``."""
    if noise.df == 0 or n_now < 2:
        points = 2  # at least the two compared points
        return max(noise.df, points * (n - 1))
    return noise.df * (n - 1) // (n_now - 1)


# --------------------------------------------------------------------------- families
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate): sorted ascending, the k-th
    smallest (0-based) times (m − k), made monotone, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(adj)
    out[order] = adj
    return out.tolist()


def every(verdicts: Sequence[str]) -> str:
    """A claim made for every part (every model): disagree if a part disagrees, else
    inconclusive if one is, else not tested if one is, else agree (agree needs every part
    significant: an intersection-union test, no correction needed)."""
    vs = set(verdicts)
    for v in (DISAGREE, INCONCLUSIVE, NOT_TESTED):
        if v in vs:
            return v
    return AGREE if vs else NOT_TESTED


def unanimous(verdicts: Sequence[str]) -> str:
    """Runs read one by one (claim 11): agree when every run tested agrees, disagree when every
    one disagrees, inconclusive when they differ; not tested when none was tested."""
    vs = set(verdicts) - {NOT_TESTED}
    if not vs:
        return NOT_TESTED
    return vs.pop() if len(vs) == 1 else INCONCLUSIVE


RULES = {"every": every, "unanimous": unanimous}


def decidable(test: Test) -> bool:
    """Whether a test can decide at all: an effect, and a standard error with degrees of freedom
    (known from the design, before the effect is looked at)."""
    return test.df >= 1 and math.isfinite(test.se) and math.isfinite(test.effect)


def decide(tests: Sequence[Test], level: float = ALPHA) -> list[str]:
    """Each test's verdict with Holm's correction over the decidable ``tests`` (one family; a
    test that cannot decide is inconclusive and does not widen the family)."""
    family = [t for t in tests if decidable(t)]
    adj = iter(holm([t.p for t in family]))
    return [t.decide(next(adj), level) if decidable(t) else INCONCLUSIVE for t in tests]


def seeds_to_decide(test: Test, level: float = ALPHA, power: float = POWER,
                    max_seeds: int = MAX_SEEDS) -> int | None:
    """The seeds per point at which ``test``'s design detects the effect it measured (at the
    measured spread) with probability ``power``; None when none up to ``max_seeds`` does (or
    the effect is zero or unmeasured)."""
    size = abs(test.effect)
    if test.se_n is None or not math.isfinite(size) or size == 0:
        return None
    for n in range(max(2, test.n + 1), max_seeds + 1):
        se, df = test.se_n(n)
        if not math.isfinite(se):
            return None
        if test.critical(level, power, se, df) <= size:
            return n
    return None


# --------------------------------------------------------------------------- Table 1
def equivalence(effect: float, se: float, df: float, margin: float, level: float = ALPHA,
                can_rise: bool = False, can_fall: bool = False) -> str:
    """Two one-sided tests at ``level`` against ±``margin``: *equivalent* when the (1 − 2·level)
    interval lies inside it, *different* when it lies wholly outside on one side (and no bound
    could bring it back), else *inconclusive*. A bound (``can_rise``/``can_fall``) forbids
    equivalence."""
    if not (math.isfinite(effect) and math.isfinite(se)) or df < 1:
        return INCONCLUSIVE
    half = stats.t.ppf(1 - level, df) * se
    lo, hi = effect - half, effect + half
    if -margin < lo and hi < margin and not (can_rise or can_fall):
        return EQUIVALENT
    if (lo > margin and not can_fall) or (hi < -margin and not can_rise):
        return DIFFERENT
    return INCONCLUSIVE


def welch_df(parts: Sequence[tuple[float, int]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variances ``(var, df)``; 0 when a
    part has none."""
    if any(df < 1 for v, df in parts if v > 0):
        return 0
    num = sum(v for v, _ in parts) ** 2
    den = sum(v * v / df for v, df in parts if v > 0)
    return num / den if den else math.inf
