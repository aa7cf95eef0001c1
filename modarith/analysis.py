"""Tidy frames, Table 1 and computed conclusions from training records (seed Problems 4.1–4.8).

Everything here works on *records*: objects with ``.config`` (a :class:`RunConfig`) and
``.history`` (SPEC "History": ``step``, ``train_loss`` … ``param_norm``, per-order keys when
orders are mixed), i.e. :class:`modarith.store.Record` or anything shaped like it.

* :func:`curves_frame` — mean ± std over seeds of every logged metric at every step
  (long format: ``model, <by…>, step, metric, mean, std, n``).
* :func:`best_frame` — best value and t_f of ``L_train, L_val, A_train, A_val`` over
  t ≤ T_max, mean ± std over seeds (``model, <by…>, [alpha], [P, C], quantity, best_mean,
  best_std, tf_mean, tf_std, n``); ``alphas`` slices each run at T_max = α·T (Problem 4.6).
* :func:`table1`, :func:`table1_text`, :func:`table1_html`, :func:`seed_table1` — Table 1.
* ``conclude_*`` — one function per seed question; each returns sentences built from the
  numbers it is given, so they change when the data change.

Standard deviations are population std (ddof = 0) over seeds, as :func:`metrics.mean_std`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace

import numpy as np
import pandas as pd

from modarith.config import RunConfig
from modarith.metrics import best_and_tf, mean_std, summarize

QUANTITIES = ("L_train", "L_val", "A_train", "A_val")
MODEL_ORDER = ("lstm", "gpt")
MODEL_NAMES = {"lstm": "LSTM", "gpt": "GPT"}
GENERALISED = 0.9  # A_val at or above this counts as "generalises" (seed Problem 4.3.d)
OVERFIT_TRAIN = 0.9  # A_train above this and …
OVERFIT_VAL = 0.5  # … A_val below this counts as "just overfits" (seed Problem 4.3.d)

_FIELDS = tuple(f.name for f in fields(RunConfig))
# Plain-text symbol of each swept field (captions, sentences, tables; plots use it too).
FIELD_TEXT = {
    "r_train": "r_train",
    "num_layers": "L",
    "d_model": "d",
    "batch_size": "B",
    "weight_decay": "weight decay",
    "alpha": "α",
    "P": "P",
    "num_heads": "H",
}


# --------------------------------------------------------------------------- helpers
def _check_by(by) -> tuple[str, ...]:
    if by is None:
        return ()
    if isinstance(by, str):
        by = (by,)
    by = tuple(by)
    bad = [b for b in by if b not in _FIELDS or b in ("model", "seed")]
    if bad:
        raise ValueError(
            f"by = {by!r} is invalid: {bad} are not RunConfig fields to group by; accepted: "
            f"{tuple(f for f in _FIELDS if f not in ('model', 'seed'))}"
        )
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
            differ = sorted(
                f for f in _FIELDS if len({getattr(c, f) for c in configs}) > 1
            )
            raise ValueError(
                f"by = {by!r} is too coarse: records of group {key} differ in {differ} "
                "(not only in seed); add those fields to by"
            )
    return records


def _model_key(model: str) -> int:
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def _sort(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    frame = frame.assign(_m=frame["model"].map(_model_key))
    frame = frame.sort_values(["_m", *[k for k in keys if k != "model"]], kind="stable")
    return frame.drop(columns="_m").reset_index(drop=True)


def _name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def _fmt(value, quantity: str = "A") -> str:
    """Accuracy with 4 decimals, loss in scientific notation, steps as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if quantity.startswith("L"):
        return f"{value:.2e}"
    if quantity.startswith(("tf", "dt", "t")):
        return f"{int(round(value))}"
    return f"{value:.4f}"


def _fmt_value(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _sym(field: str) -> str:
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
    from modarith.engine import build_model
    from modarith.params import non_embedding_params

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


# --------------------------------------------------------------------------- Table 1
TABLE1_ROWS = ("A_train", "L_train", "A_val", "L_val", "dt_A", "dt_L")
TABLE1_LABELS = {
    "A_train": "A_train", "L_train": "L_train", "A_val": "A_val", "L_val": "L_val",
    "dt_A": "Δt(A)", "dt_L": "Δt(L)",
}
# Seed report, Problem 4.2, Table 1 (two seeds, mean ± std, t_f = first step at the best value).
_SEED_TABLE1 = {
    "lstm": {
        "A_train": (1.0, 0.0, 100), "L_train": (1.54e-4, 2.82e-7, 9600),
        "A_val": (0.9979, 0.0021, 9200), "L_val": (5.01e-3, 4.26e-3, 10000),
        "dt_A": (9100, math.nan, math.nan), "dt_L": (400, math.nan, math.nan),
    },
    "gpt": {
        "A_train": (1.0, 0.0, 300), "L_train": (9.66e-5, 1.42e-5, 10001),
        "A_val": (1.0, 0.0, 8900), "L_val": (8.88e-4, 2.36e-4, 10001),
        "dt_A": (8600, math.nan, math.nan), "dt_L": (0, math.nan, math.nan),
    },
}


def _table_frame(values: dict) -> pd.DataFrame:
    models = [m for m in MODEL_ORDER if m in values] + [m for m in values if m not in MODEL_ORDER]
    cols = pd.MultiIndex.from_product([models, ["mean", "std", "t_f"]], names=["model", "stat"])
    data = [[x for m in models for x in values[m][q]] for q in TABLE1_ROWS]
    return pd.DataFrame(data, index=pd.Index(TABLE1_ROWS, name="quantity"), columns=cols,
                        dtype=float)


def seed_table1() -> pd.DataFrame:
    """The seed report's published Table 1 (Problem 4.2), in the layout of :func:`table1`."""
    return _table_frame(_SEED_TABLE1)


def table1(records: Iterable) -> pd.DataFrame:
    """Table 1 of the seed from our records: best A, L and t_f per split, Δt(A), Δt(L).

    Index ``A_train, L_train, A_val, L_val, dt_A, dt_L``; columns (model, stat) with stat
    ``mean, std, t_f`` (mean ± std over seeds; ``t_f`` = mean first step reaching the best value;
    for the Δt rows ``mean``/``std`` are Δt over seeds and ``t_f`` is empty). Records are grouped
    by model only, so pass the runs of one configuration per model (the sanity check).
    """
    seeds = per_seed_frame(records, (), quantities=(*QUANTITIES, "dt_A", "dt_L"))
    values: dict = {}
    for model, g in seeds.groupby("model", sort=False):
        values[model] = {}
        for q in TABLE1_ROWS:
            gq = g[g["quantity"] == q]
            m, s = mean_std([None if math.isnan(v) else v for v in gq["best"]])
            tf = math.nan if q.startswith("dt") else mean_std(
                [None if math.isnan(v) else v for v in gq["tf"]])[0]
            values[model][q] = (m, s, tf)
    return _table_frame(values)


def _winners(table: pd.DataFrame) -> dict[str, str | None]:
    """Per row, the model with the strictly better mean (min loss, max acc); None on ties."""
    models = list(dict.fromkeys(table.columns.get_level_values(0)))
    out: dict[str, str | None] = {}
    for q in TABLE1_ROWS:
        if q.startswith("dt") or len(models) < 2:
            out[q] = None
            continue
        vals = {m: table.loc[q, (m, "mean")] for m in models}
        vals = {m: v for m, v in vals.items() if not math.isnan(v)}
        if len(vals) < 2:
            out[q] = None
            continue
        best = (min if q.startswith("L") else max)(vals.values())
        who = [m for m, v in vals.items() if v == best]
        out[q] = who[0] if len(who) == 1 else None
    return out


def _cell(table: pd.DataFrame, model: str, q: str) -> str:
    mean, std, tf = (table.loc[q, (model, s)] for s in ("mean", "std", "t_f"))
    if q.startswith("dt"):
        return _fmt(mean, "dt") + ("" if math.isnan(std) else f" ± {_fmt(std, 'dt')}")
    return f"{_fmt(mean, q)} ± {_fmt(std, q)} (t_f = {_fmt(tf, 'tf')})"


def _display_table(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict]:
    cols, data, bold = [], {}, {}
    for source, table in tables.items():
        win = _winners(table)
        for m in dict.fromkeys(table.columns.get_level_values(0)):
            col = (source, _name(m))
            cols.append(col)
            data[col] = [_cell(table, m, q) for q in TABLE1_ROWS]
            bold[col] = [win[q] == m for q in TABLE1_ROWS]
    frame = pd.DataFrame(data, index=[TABLE1_LABELS[q] for q in TABLE1_ROWS])
    frame.columns = pd.MultiIndex.from_tuples(cols)
    return frame, bold


def table1_text(records: Iterable) -> str:
    """Plain-text Table 1: ours beside the seed's; ``*`` marks the better model per row."""
    frame, bold = _display_table({"ours": table1(records), "seed": seed_table1()})
    for col, marks in bold.items():
        frame[col] = [("*" if b else " ") + v for v, b in zip(frame[col], marks)]
    header = ("Table 1 — best value over t ≤ T (mean ± std over seeds) and t_f, the first step "
              "reaching it; Δt = t_f(val) − t_f(train); * = better model in its row\n")
    return header + frame.to_string()


def table1_html(records: Iterable):
    """Table 1 as a pandas ``Styler``: ours beside the seed's, the better model bolded per row
    (min loss, max accuracy; ties are not bolded). ``.to_html()`` gives the HTML."""
    frame, bold = _display_table({"ours": table1(records), "seed": seed_table1()})
    mask = pd.DataFrame(bold, index=frame.index)
    mask.columns = frame.columns

    def style(_):
        return mask.replace({True: "font-weight: bold", False: ""})

    return (frame.style.apply(style, axis=None)
            .set_caption("Table 1: best value over t ≤ T (mean ± std over seeds) with t_f, the "
                         "first step reaching it; Δt = t_f(val) − t_f(train). Bold: the better "
                         "model in each row (ours and the seed's report, separately)."))


# --------------------------------------------------------------------------- conclusions
def _rows(best: pd.DataFrame, model: str, quantity: str, **fixed) -> pd.DataFrame:
    sel = (best["model"] == model) & (best["quantity"] == quantity)
    for k, v in fixed.items():
        sel &= best[k] == v
    return best[sel]


def _models(best: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(best["model"]))
    return sorted(present, key=_model_key)


def _direction(values: Sequence[float], rel_tol: float = 1e-9) -> str:
    """'increases', 'decreases', 'is unchanged' or 'is non-monotone' along a sequence."""
    v = [x for x in values if not math.isnan(x)]
    if len(v) < 2:
        return "cannot be assessed (one point)"
    diffs = [b - a for a, b in zip(v, v[1:])]
    scale = max(abs(x) for x in v) or 1.0
    sig = [0 if abs(d) <= rel_tol * scale else (1 if d > 0 else -1) for d in diffs]
    if all(s == 0 for s in sig):
        return "is unchanged"
    if all(s >= 0 for s in sig):
        return "increases"
    if all(s <= 0 for s in sig):
        return "decreases"
    return "is non-monotone"


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if a side is constant."""
    rx = pd.Series(list(x), dtype=float).rank().to_numpy()
    ry = pd.Series(list(y), dtype=float).rank().to_numpy()
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _rho(rho: float) -> str:
    return "n/a (a constant series)" if math.isnan(rho) else f"{rho:+.2f}"


def _series(rows: pd.DataFrame, field: str, q: str, col: str = "best_mean") -> str:
    return ", ".join(f"{_fmt_value(x)}: {_fmt(v, q)}" for x, v in zip(rows[field], rows[col]))


def conclude_sanity(best: pd.DataFrame) -> list[str]:
    """Problem 4.1–4.2: does each model memorise first and generalise later (Δt(A))?"""
    out = []
    for m in _models(best):
        at = _rows(best, m, "A_train").iloc[0]
        av = _rows(best, m, "A_val").iloc[0]
        dt = av["tf_mean"] - at["tf_mean"]
        head = (f"{_name(m)}: best train accuracy {_fmt(at['best_mean'])} first reached at "
                f"t_f = {_fmt(at['tf_mean'], 'tf')}, best validation accuracy "
                f"{_fmt(av['best_mean'])} at t_f = {_fmt(av['tf_mean'], 'tf')}")
        if at["best_mean"] < GENERALISED:
            tail = (f"; it does not even fit the training set within T (A_train < "
                    f"{GENERALISED}).")
        elif av["best_mean"] < GENERALISED:
            tail = (f"; it memorises the training set but does not generalise within "
                    f"T (A_val < {GENERALISED}).")
        elif dt > 0:
            tail = (f": it memorises first and generalises Δt(A) = {_fmt(dt, 'dt')} steps later "
                    "(grokking).")
        else:
            tail = (f": validation accuracy peaks no later than training accuracy "
                    f"(Δt(A) = {_fmt(dt, 'dt')}), so there is no delayed generalisation.")
        out.append(head + tail)
    return out


def conclude_data_size(best: pd.DataFrame) -> list[str]:
    """Problem 4.3.d: per model, the smallest r_train with A_val ≥ 0.9 and the largest r_train
    with A_train ≥ 0.9 and A_val ≤ 0.5 (``best`` grouped by ``r_train``)."""
    out = []
    for m in _models(best):
        acc_v = _rows(best, m, "A_val").set_index("r_train")["best_mean"]
        acc_t = _rows(best, m, "A_train").set_index("r_train")["best_mean"]
        r = sorted(acc_v.index)
        gen = [x for x in r if acc_v[x] >= GENERALISED]
        over = [x for x in r if acc_t.get(x, math.nan) >= OVERFIT_TRAIN and acc_v[x] <= OVERFIT_VAL]
        grid = ", ".join(_fmt_value(x) for x in r)
        s_gen = (f"the smallest r_train with A_val ≥ {GENERALISED} is {_fmt_value(min(gen))} "
                 f"(A_val = {_fmt(acc_v[min(gen)])})" if gen else
                 f"no r_train reaches A_val ≥ {GENERALISED} (none in the grid)")
        s_over = (f"the largest r_train that just overfits (A_train ≥ {OVERFIT_TRAIN}, A_val ≤ "
                  f"{OVERFIT_VAL}) is {_fmt_value(max(over))} (A_train = "
                  f"{_fmt(acc_t[max(over)])}, A_val = {_fmt(acc_v[max(over)])})" if over else
                  f"no r_train just overfits (A_train ≥ {OVERFIT_TRAIN} with A_val ≤ "
                  f"{OVERFIT_VAL}: none in the grid)")
        out.append(f"{_name(m)} (r_train ∈ {{{grid}}}): {s_gen}; {s_over}.")
    for m in _models(best):
        lv = _rows(best, m, "L_val")
        out.append(f"{_name(m)}: best L_val {_direction(list(lv['best_mean']))} with r_train "
                   f"({_series(lv, 'r_train', 'L')}).")
    return out


def conclude_orders(best: pd.DataFrame) -> list[str]:
    """Problem 4.4.c: does ternary reach its best validation accuracy earlier than binary?

    ``best`` must hold the per-order quantities ``A_val_o2``, ``A_val_o3`` (and ``L_val_o2``,
    ``L_val_o3``): ``best_frame(records, quantities=ORDER_QUANTITIES)``.
    """
    out = []
    for m in _models(best):
        b, t = _rows(best, m, "A_val_o2"), _rows(best, m, "A_val_o3")
        if b.empty or t.empty:
            raise ValueError("best has no per-order rows (A_val_o2, A_val_o3): build it with "
                             "quantities=ORDER_QUANTITIES from mixed-order records")
        b, t = b.iloc[0], t.iloc[0]
        desc = (f"binary best A_val = {_fmt(b['best_mean'])} at t_f = {_fmt(b['tf_mean'], 'tf')}, "
                f"ternary {_fmt(t['best_mean'])} at t_f = {_fmt(t['tf_mean'], 'tf')}")
        if t["best_mean"] < GENERALISED and b["best_mean"] < GENERALISED:
            verdict = "neither order generalises (A_val < 0.9), so the timing is not comparable"
        elif t["best_mean"] < GENERALISED:
            verdict = "ternary does not generalise (A_val < 0.9) while binary does"
        elif b["best_mean"] < GENERALISED:
            verdict = "binary does not generalise (A_val < 0.9) while ternary does"
        elif t["tf_mean"] < b["tf_mean"]:
            verdict = (f"ternary reaches its best validation accuracy "
                       f"{_fmt(b['tf_mean'] - t['tf_mean'], 'dt')} steps earlier than binary")
        elif t["tf_mean"] > b["tf_mean"]:
            verdict = (f"ternary reaches its best validation accuracy "
                       f"{_fmt(t['tf_mean'] - b['tf_mean'], 'dt')} steps later than binary")
        else:
            verdict = "both orders reach their best validation accuracy at the same step"
        lb, lt = _rows(best, m, "L_val_o2"), _rows(best, m, "L_val_o3")
        loss = ""
        if not lb.empty and not lt.empty:
            loss = (f"; best L_val binary {_fmt(lb.iloc[0]['best_mean'], 'L')} vs ternary "
                    f"{_fmt(lt.iloc[0]['best_mean'], 'L')}")
        out.append(f"{_name(m)}: {verdict} ({desc}){loss}.")
    return out


ORDER_QUANTITIES = (*QUANTITIES, "L_train_o2", "L_val_o2", "A_train_o2", "A_val_o2",
                    "L_train_o3", "L_val_o3", "A_train_o3", "A_val_o3")


def _sweep_sentences(best: pd.DataFrame, m: str, vary: str, fixed: str) -> list[str]:
    out = []
    for fv in sorted(set(_rows(best, m, "L_val")[fixed])):
        parts = []
        for q in ("L_val", "A_val"):
            rows = _rows(best, m, q, **{fixed: fv}).sort_values(vary)
            parts.append(f"best {q} {_direction(list(rows['best_mean']))} "
                         f"({_series(rows, vary, q)})")
        out.append(f"{_name(m)} at {_sym(fixed)} = {_fmt_value(fv)}, as {_sym(vary)} grows: "
                   + "; ".join(parts) + ".")
    return out


def conclude_model_size(best: pd.DataFrame) -> list[str]:
    """Problem 4.5.c: direction of best L_val and A_val with d at fixed L and with L at fixed d,
    and the rank correlation of best L_val with the parameter count P when ``best`` has ``P``."""
    out = []
    for m in _models(best):
        out += _sweep_sentences(best, m, "d_model", "num_layers")
        out += _sweep_sentences(best, m, "num_layers", "d_model")
        if "P" in best.columns:
            rows = _rows(best, m, "L_val")
            rho = _spearman(rows["P"], rows["best_mean"])
            rho_a = _spearman(rows["P"], _rows(best, m, "A_val")["best_mean"])
            trend = ("does not vary" if math.isnan(rho) else "falls" if rho < 0
                     else "rises" if rho > 0 else "shows no monotone trend")
            out.append(f"{_name(m)}: over all (L, d), best L_val {trend} with the number of "
                       f"non-embedding parameters P (Spearman ρ = {_rho(rho)}; for A_val "
                       f"ρ = {_rho(rho_a)}), P from {int(rows['P'].min()):,} to "
                       f"{int(rows['P'].max()):,}.")
    return out


def conclude_compute(best: pd.DataFrame) -> list[str]:
    """Problem 4.6.c: effect of the training fraction α and the batch size B on the best
    validation metrics (``best`` from ``best_frame(records, by=("batch_size",), alphas=…)``)."""
    out = []
    for m in _models(best):
        av = _rows(best, m, "A_val")
        lv = _rows(best, m, "L_val")
        needs = []
        for B in sorted(set(av["batch_size"])):
            rows = av[av["batch_size"] == B].sort_values("alpha")
            ok = rows[rows["best_mean"] >= GENERALISED]
            if ok.empty:
                needs.append(f"B = {B}: not within α = 1")
            else:
                first = ok.iloc[0]
                c = f", C ≈ {first['C']:.2e}" if "C" in rows.columns else ""
                needs.append(f"B = {B}: α = {_fmt_value(first['alpha'])}{c}")
        out.append(f"{_name(m)}: smallest α at which A_val ≥ {GENERALISED} — " + "; ".join(needs)
                   + ".")
        amax = lv["alpha"].max()
        full_l = lv[lv["alpha"] == amax].sort_values("batch_size")
        full_a = av[av["alpha"] == amax].sort_values("batch_size")
        bl = full_l.loc[full_l["best_mean"].idxmin()]
        out.append(
            f"{_name(m)} at α = {_fmt_value(amax)}: best L_val {_direction(list(full_l['best_mean']))}"
            f" with B ({_series(full_l, 'batch_size', 'L')}; lowest at B = {int(bl['batch_size'])}),"
            f" best A_val {_direction(list(full_a['best_mean']))} with B "
            f"({_series(full_a, 'batch_size', 'A')}).")
        gains = []
        for B in sorted(set(lv["batch_size"])):
            rows = lv[lv["batch_size"] == B].sort_values("alpha")
            lo, hi = rows.iloc[0], rows.iloc[-1]
            gains.append(f"B = {B}: {_fmt(lo['best_mean'], 'L')} → {_fmt(hi['best_mean'], 'L')}")
        out.append(f"{_name(m)}: from α = {_fmt_value(lv['alpha'].min())} to "
                   f"{_fmt_value(amax)} the best L_val goes " + "; ".join(gains) + ".")
    return out


def first_step_at(steps, values, threshold: float = GENERALISED) -> float:
    """First step whose value is ≥ ``threshold`` (NaN if none): the onset of generalisation."""
    hit = np.flatnonzero(np.asarray(values, dtype=float) >= threshold)
    return float(np.asarray(steps)[hit[0]]) if hit.size else math.nan


def norm_around_generalisation(records: Iterable, by: Sequence[str] = ("weight_decay",)
                               ) -> pd.DataFrame:
    """Per run: ‖θ‖₂ at initialisation, its peak before t_f(A_val), at t_f(A_val) and at the end.

    Columns ``model, <by…>, seed, tf_A_val, A_val, t_gen`` (first step with A_val ≥ 0.9, NaN if
    never) ``, norm_init, norm_peak, step_peak, norm_at_tf, norm_final, rise, drop`` with
    ``rise = norm_peak / norm_init − 1`` and ``drop = 1 − norm_at_tf / norm_peak``.
    """
    by = _check_by(by)
    rows = []
    for r in _check_records(records, by):
        h = r.history
        steps = np.asarray(h["step"])
        norm = np.asarray(h["param_norm"], dtype=float)
        best, tf = best_and_tf(steps, h["val_acc"], "max")
        before = steps <= tf
        i_peak = int(np.argmax(np.where(before, norm, -np.inf)))
        at_tf = float(norm[np.flatnonzero(steps == tf)[0]])
        rows.append({"model": r.config.model, **{b: getattr(r.config, b) for b in by},
                     "seed": r.config.seed, "tf_A_val": tf, "A_val": best,
                     "t_gen": first_step_at(steps, h["val_acc"]),
                     "norm_init": float(norm[0]), "norm_peak": float(norm[i_peak]),
                     "step_peak": int(steps[i_peak]), "norm_at_tf": at_tf,
                     "norm_final": float(norm[-1]), "rise": float(norm[i_peak]) / float(norm[0]) - 1,
                     "drop": 1.0 - at_tf / float(norm[i_peak])})
    return _sort(pd.DataFrame(rows), ["model", *by, "seed"])


def _order_word(values: Sequence[float]) -> str:
    """Direction of a sequence where NaN means 'never' (later than any step)."""
    v = [math.inf if (x is None or math.isnan(x)) else x for x in values]
    if len(v) < 2:
        return "cannot be assessed (one point)"
    pairs = list(zip(v, v[1:]))
    if all(a == b for a, b in pairs):
        return "is unchanged"
    if all(b <= a for a, b in pairs):
        return "decreases"
    if all(b >= a for a, b in pairs):
        return "increases"
    return "is non-monotone"


def conclude_regularization(best: pd.DataFrame, records: Iterable | None = None) -> list[str]:
    """Problem 4.7.c–d: does a larger weight decay lower t_f(A_val) (monotone? Spearman sign),
    when does A_val first reach 0.9 (with ``records``), and does ‖θ‖₂ rise before and fall
    around generalisation (norm at t_f(A_val) vs its peak before it and its initial value)?"""
    out = []
    for m in _models(best):
        av = _rows(best, m, "A_val").sort_values("weight_decay")
        lv = _rows(best, m, "L_val").sort_values("weight_decay")
        wd, tf = list(av["weight_decay"]), list(av["tf_mean"])
        rho = _spearman(wd, tf)
        direction = _direction(tf)
        verdict = {"decreases": "yes: t_f(A_val) decreases monotonically",
                   "increases": "no: t_f(A_val) increases monotonically",
                   "is unchanged": "no: t_f(A_val) does not change",
                   }.get(direction, "not monotonically: t_f(A_val) is non-monotone")
        never = [_fmt_value(w) for w, a in zip(wd, av["best_mean"]) if a < GENERALISED]
        note = (f"; weight decay {', '.join(never)} never reaches A_val ≥ {GENERALISED}, so its "
                "t_f marks the best of a run that did not generalise" if never else "")
        out.append(f"{_name(m)}: does a larger weight decay lower t_f(A_val)? {verdict} with "
                   f"weight decay ({_series(av, 'weight_decay', 'tf', 'tf_mean')}; Spearman "
                   f"ρ = {_rho(rho)}){note}.")
        out.append(f"{_name(m)}: best L_val {_direction(list(lv['best_mean']))} with weight decay "
                   f"({_series(lv, 'weight_decay', 'L')}); best A_val "
                   f"{_direction(list(av['best_mean']))} ({_series(av, 'weight_decay', 'A')}).")
    if records is None:
        return out
    norms = norm_around_generalisation(records)
    for m in sorted(set(norms["model"]), key=_model_key):
        g = norms[norms["model"] == m].groupby("weight_decay", sort=True)
        wds, tgen = [], []
        for w, rows in g:
            wds.append(w)
            tgen.append(math.nan if rows["t_gen"].isna().any() else rows["t_gen"].mean())
        word = _order_word(tgen)
        meaning = {"decreases": "comes earlier with every increase of the weight decay",
                   "increases": "comes later with every increase of the weight decay",
                   "is unchanged": "does not depend on the weight decay"}.get(
            word, "is not monotone in the weight decay")
        listing = ", ".join(f"{_fmt_value(w)}: {'never' if math.isnan(t) else f'{t:.0f}'}"
                            for w, t in zip(wds, tgen))
        out.append(f"{_name(m)}: the first step with A_val ≥ {GENERALISED} ({listing}) {meaning}.")
        parts, falls, rises = [], 0, 0
        for w, rows in g:
            rise, drop = rows["rise"].mean(), rows["drop"].mean()
            falls += drop > 0.01
            rises += rise > 0.01
            parts.append(f"weight decay {_fmt_value(w)}: {rows['norm_init'].mean():.1f} at "
                         f"init, peak {rows['norm_peak'].mean():.1f} at step "
                         f"{rows['step_peak'].mean():.0f}, {rows['norm_at_tf'].mean():.1f} at "
                         f"t_f(A_val) = {rows['tf_A_val'].mean():.0f} ({-100 * drop:+.0f}% from "
                         f"the peak), final {rows['norm_final'].mean():.1f}")
        n = len(g)
        out.append(f"{_name(m)}: ‖θ‖₂ rises above its initial value before generalising in "
                   f"{rises} of {n} settings and is lower at t_f(A_val) than at its peak in "
                   f"{falls} of {n} (" + "; ".join(parts) + ").")
    return out


def attention_focus(weights, tokens: Sequence[str]) -> dict:
    """Where the ``=`` position (the one that predicts the result) looks, over all heads.

    ``weights`` (L, H, S, S), ``tokens`` the S source tokens. Returns ``argmax``: counts of
    heads whose largest weight falls on an operand / the operator / ``=`` / ``BOS`` / ``PAD``,
    ``mean``: the mean weight (over heads) on each of those token kinds, and ``heads`` = L·H.
    """
    w = np.asarray(weights, dtype=float)
    tokens = list(tokens)
    if "=" not in tokens:
        raise ValueError(f"tokens = {tokens!r} has no '=' position")
    q = tokens.index("=")
    row = w[:, :, q, :]  # (L, H, S)

    def kind(t: str) -> str:
        if t.isdigit():
            return "operand"
        if t in ("=", "BOS", "PAD", "EOS"):
            return t
        return "operator"

    kinds = [kind(t) for t in tokens]
    names = ("operand", "operator", "=", "BOS", "PAD")
    arg = row.argmax(axis=-1).ravel()
    counts = {k: int(sum(kinds[i] == k for i in arg)) for k in names}
    mean = {k: float(row[..., [i for i, x in enumerate(kinds) if x == k]].sum(-1).mean())
            if k in kinds else 0.0 for k in names}
    return {"argmax": counts, "mean": mean, "heads": int(row.shape[0] * row.shape[1])}


def conclude_attention(results: dict) -> list[str]:
    """Problem 4.8.b: which tokens the ``=`` position attends to, per model and equation.

    ``results``: (model name, equation) -> :class:`modarith.attention.AttentionResult` (or any
    object with ``weights``, ``tokens``, ``predicted``, ``correct``, ``expected``).
    """
    out = []
    for (label, _), r in results.items():
        f = attention_focus(r.weights, r.tokens)
        a, m = f["argmax"], f["mean"]
        verdict = "correct" if r.correct else f"wrong, the true result is {r.expected}"
        others = ", ".join(f"{a[k]} on {k!r}" for k in ("operator", "=", "BOS", "PAD") if a[k])
        out.append(
            f"{label}, '{' '.join(r.tokens)}' (predicts {r.predicted}, {verdict}): at the '=' "
            f"position {a['operand']} of {f['heads']} heads (layers × heads) put their largest "
            f"weight on an operand" + (f" ({others})" if others else "")
            + f"; mean weight on the operands {m['operand']:.2f}, on the operator "
              f"{m['operator']:.2f}, on '=' {m['=']:.2f}, on BOS {m['BOS']:.2f}"
            + (f", on PAD {m['PAD']:.2f}" if "PAD" in r.tokens else "") + ".")
    return out
