"""Frames and statistics of training records: what every notebook computes its figures and
answers from. Nothing here knows which experiment it serves.

*Records* are objects with ``.config`` (a :class:`RunConfig`) and ``.history`` (``step``,
``train_loss`` … ``param_norm``, per-order keys when orders are mixed), e.g.
:class:`modarith.runtime.store.Record`.

* :func:`curves_frame` — mean ± std over seeds of every logged metric at every step.
* :func:`best_frame` — best value and its first step t_f over t ≤ T_max, mean ± std over seeds;
  ``alphas`` slices each run at T_max = α·T; ``params`` adds P, ``compute`` adds C ≈ P·B·T.
* :func:`model_table`, :func:`compare_tables` — best values, t_f and Δt per model, side by side
  with another table (e.g. a published one), the better model bolded per row.
* :func:`select`, :func:`direction`, :func:`threshold`, :func:`first_step_at`,
  :func:`norm_around_generalisation` and the formatters — building blocks of computed answers.

Standard deviations are population std (ddof = 0) over seeds, as :func:`metrics.mean_std`.

(Over 400 lines: the frames the figures read and the answer helpers the questions read
share one set of selection and formatting rules.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace

import numpy as np
import pandas as pd

from modarith.core.metrics import best_and_tf, mean_std, summarize
from modarith.core.params import non_embedding_params
from modarith.models.config import MODELS, RunConfig
from modarith.models.registry import build_model, display_name

QUANTITIES = ("L_train", "L_val", "A_train", "A_val")
ORDER_QUANTITIES = (*QUANTITIES, "L_train_o2", "L_val_o2", "A_train_o2", "A_val_o2",
                    "L_train_o3", "L_val_o3", "A_train_o3", "A_val_o3")

_FIELDS = tuple(f.name for f in fields(RunConfig))
# Plain-text symbol of each swept field (captions, sentences, tables; plots use it too).
FIELD_TEXT = {"r_train": "r_train", "num_layers": "L", "d_model": "d", "batch_size": "B",
              "weight_decay": "weight decay", "alpha": "α", "P": "P", "num_heads": "H"}


# --------------------------------------------------------------------------- helpers
def _check_by(by) -> tuple[str, ...]:
    if by is None:
        return ()
    by = (by,) if isinstance(by, str) else tuple(by)
    bad = [b for b in by if b not in _FIELDS or b in ("model", "seed")]
    if bad:
        raise ValueError(
            f"by = {by!r} is invalid: {bad} are not RunConfig fields to group by; accepted: "
            f"{tuple(f for f in _FIELDS if f not in ('model', 'seed'))}")
    return by


def _check_records(records, by: tuple[str, ...]) -> list:
    records = list(records)
    if not records:
        raise ValueError("records is empty: expected at least one record with .config and .history")
    groups: dict[tuple, set] = {}
    for r in records:
        key = (r.config.model, *(getattr(r.config, b) for b in by))
        groups.setdefault(key, set()).add(replace(r.config, seed=0))
    for key, configs in groups.items():
        if len(configs) > 1:
            differ = sorted(f for f in _FIELDS if len({getattr(c, f) for c in configs}) > 1)
            raise ValueError(f"by = {by!r} is too coarse: records of group {key} differ in "
                             f"{differ} (not only in seed); add those fields to by")
    return records


def _model_key(model: str) -> int:
    return MODELS.index(model) if model in MODELS else len(MODELS)


def _sort(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    frame = frame.assign(_m=frame["model"].map(_model_key))
    frame = frame.sort_values(["_m", *[k for k in keys if k != "model"]], kind="stable")
    return frame.drop(columns="_m").reset_index(drop=True)


def name(model: str) -> str:
    """Display name of a model: ``LSTM``, ``GPT``."""
    return display_name(model)


def fmt(value, quantity: str = "A") -> str:
    """Accuracy with 4 decimals, loss (``L…``) in scientific notation, steps (``tf``, ``dt``,
    ``t…``) as integers, ``n/a`` for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if quantity.startswith("L"):
        return f"{value:.2e}"
    if quantity.startswith(("tf", "dt", "t")):
        return f"{int(round(value))}"
    return f"{value:.4f}"


def fmt_value(value) -> str:
    """A swept value as text: ``512``, ``0.25`` (Python or numpy numbers)."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:g}"
    return str(value)


def sym(field: str) -> str:
    """Plain-text symbol of a field (``d_model`` -> ``d``)."""
    return FIELD_TEXT.get(field, field)


# --------------------------------------------------------------------------- frames
def curves_frame(records: Iterable, by: Sequence[str] = (), metrics: Sequence[str] | None = None
                 ) -> pd.DataFrame:
    """Mean ± std over seeds of every logged metric at every evaluation step.

    ``records``: objects with ``.config`` and ``.history``; runs that share ``model`` and the
    ``by`` fields are the seeds of one curve (they must not differ in anything else, else
    ``ValueError``). ``metrics``: history keys to keep (default: all but ``step``).
    Returns a long frame with columns ``model, <by…>, step, metric, mean, std, n``
    (std is the population std, 0 for a single seed; ``n`` = number of seeds at that step).
    """
    by = _check_by(by)
    records = _check_records(records, by)
    parts = []
    for r in records:
        steps = np.asarray(r.history["step"], dtype=np.int64)
        keys = [k for k in r.history if k != "step"] if metrics is None else list(metrics)
        for k in keys:
            if k not in r.history:
                continue
            values = np.asarray(r.history[k], dtype=float)
            part = pd.DataFrame({"step": steps, "value": values})
            part["metric"] = k
            part["model"] = r.config.model
            for b in by:
                part[b] = getattr(r.config, b)
            parts.append(part)
    if not parts:
        raise ValueError(f"metrics = {metrics!r}: none of them is in the records' histories")
    long = pd.concat(parts, ignore_index=True)
    keys = ["model", *by, "metric", "step"]
    grouped = long.groupby(keys, sort=False)["value"]
    out = grouped.agg(mean="mean", n="count").reset_index()
    out["std"] = grouped.std(ddof=0).to_numpy()
    out["std"] = out["std"].fillna(0.0)
    out = out[["model", *by, "step", "metric", "mean", "std", "n"]]
    return _sort(out, ["model", *by, "metric", "step"])


def _params_of(config: RunConfig, cache: dict) -> int:
    """Non-embedding parameters P of the model a config builds (cached per architecture)."""
    key = replace(config, seed=0, r_train=0.5, lr=1e-3, weight_decay=1.0, batch_size=512,
                  steps=1, dropout=0.0)
    if key not in cache:
        cache[key] = int(non_embedding_params(build_model(key)))
    return cache[key]


def per_seed_frame(records: Iterable, by: Sequence[str] = (), t_max: float | None = None,
                   alphas: Sequence[float] | None = None, quantities: Sequence[str] = QUANTITIES,
                   params: bool = False, compute: bool = False) -> pd.DataFrame:
    """One row per (record, [alpha], quantity): ``best`` and ``tf`` over t ≤ T_max.

    ``quantities`` may also name ``dt_A``/``dt_L`` (Δt, ``best`` = Δt) and per-order keys such
    as ``A_val_o3``. ``alphas``: slice every run at T_max = α·T (T = the config's ``steps``);
    mutually exclusive with ``t_max``. ``params``: add ``P`` (non-embedding parameters);
    ``compute``: add ``C`` = P·B_eff·T_max, B_eff = min(B, N_train) samples per step
    (SPEC: C ≈ P·B·T).
    """
    by = _check_by(by)
    records = _check_records(records, by)
    if alphas is not None and t_max is not None:
        raise ValueError("t_max and alphas are mutually exclusive: give one of them")
    if alphas is not None:
        alphas = [float(a) for a in alphas]
        if not alphas or any(not (0 < a <= 1) for a in alphas):
            raise ValueError(f"alphas = {alphas!r} is invalid: expected numbers in (0, 1]")
    cache: dict = {}
    rows = []
    for r in records:
        c = r.config
        slices = [(a, a * c.steps) for a in alphas] if alphas is not None else [(None, t_max)]
        base = {"model": c.model, **{b: getattr(c, b) for b in by}}
        if params or compute:
            P = _params_of(c, cache)
        for alpha, tm in slices:
            s = summarize(r.history, t_max=tm)
            for q in quantities:
                if q.startswith("dt_"):
                    best, tf = s.get(q), None
                    best = math.nan if best is None else float(best)
                elif q in s:
                    best, tf = s[q], s[f"tf_{q}"]
                else:
                    raise ValueError(
                        f"quantities = {tuple(quantities)!r}: {q!r} is not in the summary of run "
                        f"{getattr(r, 'run_id', '?')} (keys: {sorted(k for k in s if not k.startswith(('tf_', 'final_')))})"
                    )
                row = dict(base, seed=c.seed, quantity=q, best=best,
                           tf=math.nan if tf is None else float(tf))
                if alphas is not None:
                    row["alpha"] = alpha
                if params:
                    row["P"] = P
                if compute:
                    T = c.total_steps if tm is None else min(int(math.floor(tm)), c.total_steps)
                    row["C"] = float(P) * min(c.batch_size, c.n_train) * T
                rows.append(row)
    return pd.DataFrame(rows)


def best_frame(records: Iterable, by: Sequence[str] = (), t_max: float | None = None,
               alphas: Sequence[float] | None = None, params: bool = False,
               quantities: Sequence[str] = QUANTITIES, compute: bool = False) -> pd.DataFrame:
    """Best metrics and t_f, mean ± std over seeds (seed Figures 4–5, 15–18, 21–22, 24).

    Columns: ``model, <by…>, [alpha], [P], [C], quantity, best_mean, best_std, tf_mean, tf_std,
    n``. ``quantity`` ∈ ``quantities`` (default ``L_train, L_val, A_train, A_val``; per-order
    keys such as ``A_val_o3`` and ``dt_A``/``dt_L`` are accepted). ``t_max``: best over
    t ≤ t_max; ``alphas``: one slice per α at T_max = α·T (Problem 4.6); ``params``: add the
    non-embedding parameter count ``P``; ``compute``: add the training compute
    ``C`` = P·B_eff·T_max (for analysis only: the plots treat extra columns as swept fields).
    """
    by = _check_by(by)
    seeds = per_seed_frame(records, by, t_max, alphas, quantities, params, compute)
    keys = ["model", *by]
    if alphas is not None:
        keys.append("alpha")
    if params:
        keys.append("P")
    if compute:
        keys.append("C")
    keys.append("quantity")
    rows = []
    for key, g in seeds.groupby(keys, sort=False):
        bm, bs = mean_std([None if math.isnan(v) else v for v in g["best"]])
        tm, ts = mean_std([None if math.isnan(v) else v for v in g["tf"]])
        rows.append(dict(zip(keys, key), best_mean=bm, best_std=bs, tf_mean=tm, tf_std=ts,
                         n=len(g)))
    out = pd.DataFrame(rows, columns=[*keys, "best_mean", "best_std", "tf_mean", "tf_std", "n"])
    qorder = {q: i for i, q in enumerate(quantities)}
    out = out.assign(_q=out["quantity"].map(qorder))
    sort_keys = [k for k in keys if k not in ("quantity", "P", "C")] + ["_q"]
    return _sort(out, sort_keys).drop(columns="_q")


# --------------------------------------------------------------------------- tables
TABLE_ROWS = ("A_train", "L_train", "A_val", "L_val", "dt_A", "dt_L")
TABLE_LABELS = {"A_train": "A_train", "L_train": "L_train", "A_val": "A_val", "L_val": "L_val",
                "dt_A": "Δt(A)", "dt_L": "Δt(L)"}


def table_frame(values: dict) -> pd.DataFrame:
    """``{model: {row: (mean, std, t_f)}}`` -> the layout of :func:`model_table` (rows
    :data:`TABLE_ROWS`; columns (model, stat) with stat ``mean, std, t_f``)."""
    models = [m for m in MODELS if m in values] + [m for m in values if m not in MODELS]
    cols = pd.MultiIndex.from_product([models, ["mean", "std", "t_f"]], names=["model", "stat"])
    data = [[x for m in models for x in values[m][q]] for q in TABLE_ROWS]
    return pd.DataFrame(data, index=pd.Index(TABLE_ROWS, name="quantity"), columns=cols,
                        dtype=float)


def model_table(records: Iterable) -> pd.DataFrame:
    """Best A, L and t_f per split, Δt(A), Δt(L), mean ± std over seeds, one column group per
    model (records grouped by model only: pass one configuration per model).

    Index :data:`TABLE_ROWS`; columns (model, stat) with stat ``mean, std, t_f`` (``t_f`` = mean
    first step reaching the best value; empty for the Δt rows).
    """
    seeds = per_seed_frame(records, (), quantities=(*QUANTITIES, "dt_A", "dt_L"))
    values: dict = {}
    for model, g in seeds.groupby("model", sort=False):
        values[model] = {}
        for q in TABLE_ROWS:
            gq = g[g["quantity"] == q]
            m, s = mean_std([None if math.isnan(v) else v for v in gq["best"]])
            tf = math.nan if q.startswith("dt") else mean_std(
                [None if math.isnan(v) else v for v in gq["tf"]])[0]
            values[model][q] = (m, s, tf)
    return table_frame(values)


def _winners(table: pd.DataFrame) -> dict[str, str | None]:
    """Per row, the model with the strictly better mean (min loss, max acc); None on ties."""
    models = list(dict.fromkeys(table.columns.get_level_values(0)))
    out: dict[str, str | None] = {}
    for q in TABLE_ROWS:
        vals = {m: table.loc[q, (m, "mean")] for m in models}
        vals = {m: v for m, v in vals.items() if not math.isnan(v)}
        if q.startswith("dt") or len(vals) < 2:
            out[q] = None
            continue
        best = (min if q.startswith("L") else max)(vals.values())
        who = [m for m, v in vals.items() if v == best]
        out[q] = who[0] if len(who) == 1 else None
    return out


def _cell(table: pd.DataFrame, model: str, q: str) -> str:
    mean, std, tf = (table.loc[q, (model, s)] for s in ("mean", "std", "t_f"))
    if q.startswith("dt"):
        return fmt(mean, "dt") + ("" if math.isnan(std) else f" ± {fmt(std, 'dt')}")
    return f"{fmt(mean, q)} ± {fmt(std, q)} (t_f = {fmt(tf, 'tf')})"


def compare_tables(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables of :func:`model_table` side by side: ``(text, bold)`` frames with columns
    (source, model); ``text`` holds ``mean ± std (t_f = …)``, ``bold`` is True where that
    model is strictly better in its row within its source (min loss, max accuracy)."""
    cols, data, bold = [], {}, {}
    for source, table in tables.items():
        win = _winners(table)
        for m in dict.fromkeys(table.columns.get_level_values(0)):
            col = (source, name(m))
            cols.append(col)
            data[col] = [_cell(table, m, q) for q in TABLE_ROWS]
            bold[col] = [win[q] == m for q in TABLE_ROWS]
    index = [TABLE_LABELS[q] for q in TABLE_ROWS]
    text, mask = pd.DataFrame(data, index=index), pd.DataFrame(bold, index=index)
    text.columns = mask.columns = pd.MultiIndex.from_tuples(cols)
    return text, mask


def styled(text: pd.DataFrame, bold: pd.DataFrame, caption: str = ""):
    """A pandas ``Styler`` of ``text`` with the cells where ``bold`` is True in bold."""
    return (text.style.apply(lambda _: bold.replace({True: "font-weight: bold", False: ""}),
                             axis=None).set_caption(caption))


# --------------------------------------------------------------------------- answers
def select(best: pd.DataFrame, model: str, quantity: str, **fixed) -> pd.DataFrame:
    """Rows of a best frame for one model and quantity (and fixed field values)."""
    sel = (best["model"] == model) & (best["quantity"] == quantity)
    for k, v in fixed.items():
        sel &= best[k] == v
    return best[sel]


def models_in(frame: pd.DataFrame) -> list[str]:
    """The models of a frame, LSTM first."""
    return sorted(dict.fromkeys(frame["model"]), key=_model_key)


def direction(values: Sequence[float], rel_tol: float = 1e-9, nan_is_never: bool = False) -> str:
    """'increases', 'decreases', 'is unchanged' or 'is non-monotone' along a sequence.

    NaN entries are dropped, or with ``nan_is_never`` (step sequences) read as +∞ ("never").
    """
    if nan_is_never:
        v = [math.inf if (x is None or math.isnan(x)) else x for x in values]
    else:
        v = [x for x in values if not math.isnan(x)]
    if len(v) < 2:
        return "cannot be assessed (one point)"
    finite = [abs(x) for x in v if math.isfinite(x)]
    scale = max(finite, default=1.0) or 1.0
    sig = [0 if a == b or abs(b - a) <= rel_tol * scale else (1 if b > a else -1)
           for a, b in zip(v, v[1:])]
    if all(s == 0 for s in sig):
        return "is unchanged"
    if all(s >= 0 for s in sig):
        return "increases"
    if all(s <= 0 for s in sig):
        return "decreases"
    return "is non-monotone"


def listing(rows: pd.DataFrame, field: str, q: str, col: str = "best_mean") -> str:
    """``0.3: 0.5000, 0.5: 1.0000``: a field's values beside a column, formatted as ``q``."""
    return ", ".join(f"{fmt_value(x)}: {fmt(v, q)}" for x, v in zip(rows[field], rows[col]))


def threshold(best: pd.DataFrame, model: str, field: str, when, pick=min):
    """``pick`` (min or max) of the values of ``field`` whose best values satisfy ``when``.

    ``when`` receives ``{quantity: best_mean}`` of one grid point (e.g. ``lambda b:
    b["A_val"] >= 0.9``). Returns ``(value, {quantity: best_mean})``, or ``(None, {})`` when
    no grid point satisfies it.
    """
    sub = best[best["model"] == model]
    points = {v: dict(zip(g["quantity"], g["best_mean"])) for v, g in sub.groupby(field)}
    hits = [v for v, b in points.items() if when(b)]
    if not hits:
        return None, {}
    v = pick(hits)
    return v, points[v]


def first_step_at(steps, values, level: float = 0.9) -> float:
    """First step whose value is ≥ ``level`` (NaN if none): the onset of generalisation."""
    hit = np.flatnonzero(np.asarray(values, dtype=float) >= level)
    return float(np.asarray(steps)[hit[0]]) if hit.size else math.nan


def norm_around_generalisation(records: Iterable, by: Sequence[str] = (),
                               level: float = 0.9) -> pd.DataFrame:
    """Per run: ‖θ‖₂ at initialisation, its peak before t_f(A_val), at t_f(A_val), at the end.

    Columns ``model, <by…>, seed, tf_A_val, A_val, t_gen`` (first step with A_val ≥ ``level``,
    NaN if never) ``, norm_init, norm_peak, step_peak, norm_at_tf, norm_final, rise, drop`` with
    ``rise = norm_peak / norm_init − 1`` and ``drop = 1 − norm_at_tf / norm_peak``.
    """
    by = _check_by(by)
    rows = []
    for r in _check_records(records, by):
        h = r.history
        steps = np.asarray(h["step"])
        norm = np.asarray(h["param_norm"], dtype=float)
        best, tf = best_and_tf(steps, h["val_acc"], "max")
        i_peak = int(np.argmax(np.where(steps <= tf, norm, -np.inf)))
        at_tf = float(norm[np.flatnonzero(steps == tf)[0]])
        rows.append({"model": r.config.model, **{b: getattr(r.config, b) for b in by},
                     "seed": r.config.seed, "tf_A_val": tf, "A_val": best,
                     "t_gen": first_step_at(steps, h["val_acc"], level),
                     "norm_init": float(norm[0]), "norm_peak": float(norm[i_peak]),
                     "step_peak": int(steps[i_peak]), "norm_at_tf": at_tf,
                     "norm_final": float(norm[-1]),
                     "rise": float(norm[i_peak]) / float(norm[0]) - 1,
                     "drop": 1.0 - at_tf / float(norm[i_peak])})
    return _sort(pd.DataFrame(rows), ["model", *by, "seed"])


# --------------------------------------------------------------------------- norms
# Measures behind the fidelity verdicts (49_fidelity): parameter norms by name filter (e.g.
# without the token embedding) and how a norm moves around an event.
def parameter_norms(snapshots: dict, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """‖θ‖₂ at every snapshot over the parameters whose name contains none of ``exclude``.

    ``snapshots``: ``{"steps": (n,), "params": {name: (n, *shape)}}``
    (:func:`modarith.study.progress_measures.load_snapshots`). ``exclude=("embedding",)`` leaves out
    the token embeddings of both models. Columns ``step, norm``; ValueError when the filter
    leaves no parameter.
    """
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    kept = {n: t for n, t in snapshots["params"].items() if not any(x in n for x in exclude)}
    if not kept:
        raise ValueError(f"exclude = {exclude!r} leaves no parameter of "
                         f"{sorted(snapshots['params'])}")
    sq = sum(np.square(np.asarray(t, dtype=np.float64).reshape(len(t), -1)).sum(axis=1)
             for t in kept.values())
    steps = np.asarray(snapshots["steps"]).astype(np.int64)
    return pd.DataFrame({"step": steps, "norm": np.sqrt(sq)})


def rise_and_fall(steps: Sequence[float], norm: Sequence[float], t_event: float) -> dict:
    """How a norm curve moves before and after a step ``t_event`` (e.g. the first step with
    A_val ≥ 0.9): does it rise before, and fall once the event has happened?

    ``init`` (first value), ``peak`` and ``step_peak`` (the largest value at steps ≤
    ``t_event``), ``at_event`` and ``step_event`` (the value at the last step ≤ ``t_event``),
    ``low`` and ``step_low`` (the smallest value at steps ≥ that step), ``end`` (last value),
    ``rise = peak / init − 1`` and ``fall = 1 − low / at_event``. A NaN ``t_event`` (never
    reached) gives NaN for every entry but ``init`` and ``end``.
    """
    s = np.asarray(steps, dtype=float)
    v = np.asarray(norm, dtype=float)
    if len(s) != len(v) or len(s) < 2:
        raise ValueError(f"steps and norm must have the same length >= 2, got {len(s)} and {len(v)}")
    out = {"init": float(v[0]), "end": float(v[-1]), "peak": math.nan, "step_peak": math.nan,
           "at_event": math.nan, "step_event": math.nan, "low": math.nan, "step_low": math.nan,
           "rise": math.nan, "fall": math.nan}
    if math.isnan(t_event) or t_event < s[0]:
        return out
    before = s <= t_event
    i = int(np.argmax(np.where(before, v, -np.inf)))
    e = int(np.flatnonzero(before)[-1])
    j = e + int(np.argmin(v[e:]))
    out.update(peak=float(v[i]), step_peak=float(s[i]), at_event=float(v[e]),
               step_event=float(s[e]), low=float(v[j]),
               step_low=float(s[j]), rise=float(v[i] / v[0] - 1), fall=float(1 - v[j] / v[e]))
    return out
