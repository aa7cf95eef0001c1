"""Figures of the seed report, one function per figure type.

Every ``plot_*`` function returns ``(fig, caption)``: a :class:`matplotlib.figure.Figure`
created with :mod:`matplotlib.pyplot` (so it shows up by itself in a notebook with the inline
backend; call ``plt.close(fig)`` in loops) and a caption computed from the data it was given.
:func:`save_figure` writes a PNG and an SVG next to each other.

Inputs are the frames built by :mod:`modarith.analysis`:

* **curves frame** (long): ``model``, zero or more swept fields (``r_train``, ``num_layers``,
  ``d_model``, ``batch_size``, ``weight_decay`` …), ``step``, ``metric``, ``mean``, ``std``,
  ``n``; one row per (model, swept values, step, metric).
* **best frame**: ``model``, the swept fields, optionally ``alpha`` and ``P``, then
  ``quantity`` (``L_train``, ``L_val``, ``A_train``, ``A_val``), ``best_mean``, ``best_std``,
  ``tf_mean``, ``tf_std``, ``n``.

Conventions (SPEC, "Figure conventions"): train blue, validation red, mean curves with a
shaded ±1 std band, sweeps coloured with ``viridis`` and a colour bar (log₂-normalised for
``d_model`` and ``batch_size``), log scale for losses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.cm import ScalarMappable
from matplotlib.lines import Line2D

from modarith.analysis import FIELD_TEXT

__all__ = [
    "TRAIN_COLOR",
    "VAL_COLOR",
    "save_figure",
    "plot_train_val",
    "plot_orders",
    "plot_sweep",
    "plot_best",
    "plot_best_bars",
    "plot_best_vs_params",
    "plot_compute",
    "plot_attention_grid",
]

TRAIN_COLOR = "tab:blue"
VAL_COLOR = "tab:red"
CMAP = "viridis"
BAND_ALPHA = 0.2
SPLIT_COLOR = {"train": TRAIN_COLOR, "val": VAL_COLOR}
SPLIT_NAME = {"train": "train", "val": "validation"}

CURVE_COLUMNS = ("model", "step", "metric", "mean", "std", "n")
BEST_COLUMNS = ("model", "quantity", "best_mean", "best_std", "tf_mean", "tf_std", "n")
BEST_VALUE_COLUMNS = ("quantity", "best_mean", "best_std", "tf_mean", "tf_std", "n")
LOG2_FIELDS = ("d_model", "batch_size")
QUANTITIES = ("L_train", "L_val", "A_train", "A_val")

# Math labels of the swept fields (matplotlib mathtext) and their plain-text names.
FIELD_LABEL = {
    "r_train": r"$r_{\mathrm{train}}$",
    "num_layers": r"$L$",
    "d_model": r"$d$",
    "batch_size": r"$B$",
    "weight_decay": "weight decay",
    "alpha": r"$\alpha$",
    "P": r"$P$ (non-embedding parameters)",
    "lr": "learning rate",
    "p": r"$p$",
    "seed": "seed",
    "num_heads": r"$H$",
}
KIND_SYMBOL = {"loss": r"\mathcal{L}", "acc": r"\mathcal{A}"}
KIND_NAME = {"loss": "loss", "acc": "accuracy", "param_norm": "parameter norm"}


# --------------------------------------------------------------------------- helpers


def save_figure(fig, path, dpi: int = 120) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` (``dpi``) and ``<path>.svg``; create parent folders.

    ``path`` is given without suffix (a suffix ``.png``/``.svg`` is stripped). Returns the two
    paths written.
    """
    path = Path(path)
    if path.suffix.lower() in (".png", ".svg"):
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".svg"):
        target = path.parent / (path.name + suffix)
        fig.savefig(target, dpi=dpi, bbox_inches="tight")
        out.append(target)
    return out


def _field_label(field: str) -> str:
    return FIELD_LABEL.get(field, field.replace("_", " "))


def _field_text(field: str) -> str:
    return FIELD_TEXT.get(field, field)


def _model_name(model: str) -> str:
    return {"lstm": "LSTM", "gpt": "GPT"}.get(str(model).lower(), str(model))


def _fmt_value(value, log2: bool = False) -> str:
    """A swept value as text: ``2^7`` for powers of two on log₂ axes, else compact."""
    if log2 and _is_pow2(value):
        return f"2^{int(round(math.log2(value)))}"
    if isinstance(value, (float, np.floating)):
        if float(value).is_integer() and abs(value) >= 1:
            return str(int(value))
        return f"{float(value):g}"
    return str(value)


def _fmt_values(values: Sequence, log2: bool = False) -> str:
    return "{" + ", ".join(_fmt_value(v, log2) for v in values) + "}"


def _is_pow2(value) -> bool:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return v > 0 and float(math.log2(v)).is_integer()


def _metric_parts(metric: str) -> tuple[str, str, str]:
    """Split a metric name into (split, kind, order suffix): ``val_acc_o3`` -> (val, acc, o3).

    ``param_norm`` gives ("", "param_norm", "").
    """
    if metric == "param_norm":
        return "", "param_norm", ""
    parts = metric.split("_")
    if len(parts) < 2 or parts[0] not in ("train", "val") or parts[1] not in ("loss", "acc"):
        raise ValueError(
            f"metric={metric!r} is not understood; expected 'param_norm' or "
            "'<train|val>_<loss|acc>[_o<k>]'"
        )
    return parts[0], parts[1], "_".join(parts[2:])


def _metric_label(metric: str, with_t: bool = True) -> str:
    split, kind, order = _metric_parts(metric)
    t = "^{(t)}" if with_t else ""
    if kind == "param_norm":
        return r"$\|\theta^{(t)}\|_2$" if with_t else r"$\|\theta\|_2$"
    sub = r"\mathrm{" + split + "}" + (r",\,o" + order[1:] if order else "")
    return f"${KIND_SYMBOL[kind]}_{{{sub}}}{t}$"


def _metric_text(metric: str) -> str:
    """Plain-text metric name for captions: ``val_acc_o3`` -> 'validation accuracy (order 3)'."""
    split, kind, order = _metric_parts(metric)
    if kind == "param_norm":
        return "parameter norm ‖θ‖₂"
    text = f"{'training' if split == 'train' else 'validation'} {KIND_NAME[kind]}"
    return text + (f" (order {order[1:]})" if order else "")


def _quantity_label(quantity: str) -> str:
    kind, split = quantity.split("_")
    return f"${kind}_{{\\mathrm{{{split}}}}}$"


def _check_columns(frame: pd.DataFrame, required: Iterable[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}; it has {list(frame.columns)} "
            f"and needs {list(required)}"
        )


def _by_fields(frame: pd.DataFrame, fixed_columns: Sequence[str]) -> list[str]:
    return [c for c in frame.columns if c not in fixed_columns]


def _select_model(frame: pd.DataFrame, model: str, what: str) -> pd.DataFrame:
    models = sorted(map(str, frame["model"].unique()))
    sub = frame[frame["model"].astype(str).str.lower() == str(model).lower()]
    if sub.empty:
        raise ValueError(f"model={model!r} is not in the {what}; it holds {models}")
    return sub


def _apply_fixed(frame: pd.DataFrame, fixed: Mapping | None, what: str) -> pd.DataFrame:
    for field, value in (fixed or {}).items():
        if field not in frame.columns:
            raise ValueError(
                f"fixed field {field!r} is not a column of the {what}; columns: "
                f"{list(frame.columns)}"
            )
        available = sorted(frame[field].unique().tolist())
        frame = frame[np.isclose(frame[field].astype(float), float(value))] if _numeric(
            frame[field]
        ) else frame[frame[field] == value]
        if frame.empty:
            raise ValueError(f"{field}={value!r} selects nothing; available values: {available}")
    return frame


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _require_single(frame: pd.DataFrame, fields: Sequence[str], what: str) -> None:
    """Raise when one of ``fields`` still holds several values (ambiguous selection)."""
    for field in fields:
        values = frame[field].unique()
        if len(values) > 1:
            raise ValueError(
                f"the {what} holds several values of {field!r} "
                f"({sorted(values.tolist())}); select one with fixed={{'{field}': ...}}"
            )


def _series(frame: pd.DataFrame, metric: str):
    """(steps, mean, std) of one metric, sorted by step; ``None`` if the metric is absent."""
    sub = frame[frame["metric"] == metric].sort_values("step")
    if sub.empty:
        return None
    std = sub["std"].to_numpy(dtype=float)
    return (
        sub["step"].to_numpy(dtype=float),
        sub["mean"].to_numpy(dtype=float),
        np.nan_to_num(std, nan=0.0),
    )


def _band(ax, steps, mean, std, color, label=None, log=False, lw=1.6, ls="-", clip01=False):
    """Mean curve with a shaded ±std band; on log axes the band is clipped to stay positive,
    with ``clip01`` (accuracies) to [0, 1]."""
    (line,) = ax.plot(steps, mean, color=color, lw=lw, ls=ls, label=label)
    lower, upper = mean - std, mean + std
    if clip01:
        lower, upper = np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    if log:
        positive = mean[mean > 0]
        floor = positive.min() * 0.5 if positive.size else 1e-12
        lower = np.maximum(lower, floor)
    ax.fill_between(steps, lower, upper, color=color, alpha=BAND_ALPHA, lw=0)
    return line


def _seeds_text(frame: pd.DataFrame) -> str:
    if "n" not in frame.columns or frame.empty:
        return "mean"
    ns = sorted({int(v) for v in frame["n"].dropna().unique()})
    if not ns:
        return "mean"
    count = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    plural = "" if ns == [1] else "s"
    return f"mean over {count} seed{plural}, shaded ±1 std"


def _fixed_text(fixed: Mapping | None) -> str:
    if not fixed:
        return ""
    return " (" + ", ".join(f"{_field_text(k)} = {_fmt_value(v)}" for k, v in fixed.items()) + ")"


def _sweep_norm(values: Sequence[float], log2: bool):
    values = np.asarray(values, dtype=float)
    lo, hi = float(values.min()), float(values.max())
    if log2:
        if lo <= 0:
            raise ValueError(f"log2=True needs positive values, got {values.tolist()}")
        if lo == hi:
            lo, hi = lo / 2, hi * 2
        return mcolors.LogNorm(vmin=lo, vmax=hi)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return mcolors.Normalize(vmin=lo, vmax=hi)


def _add_colorbar(fig, axes, norm, values, field: str, log2: bool):
    """One colour bar for ``axes`` with a tick per swept value (``2^k`` labels on log₂)."""
    sm = ScalarMappable(norm=norm, cmap=CMAP)
    sm.set_array([])
    cbar = fig.colorbar(sm, ax=axes, pad=0.02, fraction=0.04, aspect=30)
    cbar.set_label(_field_label(field))
    values = sorted({float(v) for v in values})
    if log2:
        cbar.ax.yaxis.set_major_locator(ticker.FixedLocator(values))
        cbar.ax.yaxis.set_minor_locator(ticker.NullLocator())
        cbar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(_pow2_label))
    elif len(values) <= 12:
        cbar.set_ticks(values)
        cbar.set_ticklabels([_fmt_value(v) for v in values])
    return cbar


def _pow2_label(value, _pos=None) -> str:
    if _is_pow2(value):
        return f"$2^{{{int(round(math.log2(value)))}}}$"
    return f"{value:g}"


def _set_log2_x(ax, values):
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(ticker.FixedLocator(sorted({float(v) for v in values})))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_pow2_label))


def _yerr(mean, std, kind: str) -> np.ndarray:
    """Asymmetric error bars (2, n) of ±std, kept in [0, 1] for accuracies ("A") and above
    zero for losses ("L", log axes)."""
    mean = np.asarray(mean, dtype=float)
    std = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    lower, upper = mean - std, mean + std
    if kind == "A":
        lower, upper = np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    elif kind == "L":
        lower = np.where(lower > 0, lower, mean * 0.5)
    return np.vstack([mean - lower, upper - mean])


def _twin_below(ax):
    """A twin y-axis drawn below ``ax``, so the best values and the legend stay on top."""
    twin = ax.twinx()
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    return twin


def _style_value_axis(ax, kind: str) -> None:
    if kind == "loss":
        ax.set_yscale("log")
    elif kind == "acc":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="major", alpha=0.3)


# --------------------------------------------------------------------------- curves


def _train_val_column(col_axes, sub: pd.DataFrame, suffix: str, title: str) -> int:
    """Loss (top, log) and accuracy (bottom) panels of one column: train blue, val red.

    ``suffix`` selects per-order metrics (``"_o2"``); returns how many curves were drawn.
    """
    drawn = 0
    for i, kind in enumerate(("loss", "acc")):
        ax = col_axes[i]
        for split in ("train", "val"):
            metric = f"{split}_{kind}{suffix}"
            s = _series(sub, metric)
            if s is not None:
                drawn += 1
                _band(ax, *s, SPLIT_COLOR[split], label=_metric_label(metric),
                      log=kind == "loss", clip01=kind == "acc")
        _style_value_axis(ax, kind)
        ax.set_ylabel(_metric_label(f"train_{kind}").replace("train", "train/val"))
        if ax.get_lines():
            ax.legend(loc="best", fontsize=9)
        if i == 0:
            ax.set_title(title)
        else:
            ax.set_xlabel("$t$ (training step)")
    return drawn


def plot_train_val(curves: pd.DataFrame, models: Sequence[str] = ("lstm", "gpt"),
                   fixed: Mapping | None = None, figsize=(11, 7.5)):
    """Fig. 1 / 6: loss (top, log) and accuracy (bottom) vs step, one column per model.

    Train in blue, validation in red, shaded ±1 std over seeds. ``fixed`` filters swept
    fields when the frame holds several configurations.
    """
    _check_columns(curves, CURVE_COLUMNS, "curves frame")
    models = [models] if isinstance(models, str) else list(models)
    fig, axes = plt.subplots(2, len(models), figsize=figsize, squeeze=False,
                             sharex="col", layout="constrained")
    for j, model in enumerate(models):
        sub = _apply_fixed(_select_model(curves, model, "curves frame"), fixed, "curves frame")
        _require_single(sub, _by_fields(sub, CURVE_COLUMNS), "curves frame")
        _train_val_column(axes[:, j], sub, "", _model_name(model))
    fig.suptitle("Training and validation curves" + _fixed_text(fixed))
    names = " and ".join(_model_name(m) for m in models)
    sides = ("; columns: " + ", ".join(f"{_model_name(m)}" for m in models)) if len(models) > 1 else ""
    caption = (
        f"{names}: loss (top, log scale) and accuracy (bottom) versus training step t"
        f"{_fixed_text(fixed)}{sides}. Blue: training set, red: validation set; "
        f"{_seeds_text(curves[curves['model'].isin(models)])}."
    )
    return fig, caption


def plot_orders(curves: pd.DataFrame, model: str, orders: Sequence[int] = (2, 3),
                fixed: Mapping | None = None, figsize=(11, 7.5)):
    """Fig. 7 / 8: per-order curves; columns binary (``_o2``) / ternary (``_o3``) operations,
    rows loss (log) / accuracy, train blue / validation red."""
    _check_columns(curves, CURVE_COLUMNS, "curves frame")
    sub = _apply_fixed(_select_model(curves, model, "curves frame"), fixed, "curves frame")
    _require_single(sub, _by_fields(sub, CURVE_COLUMNS), "curves frame")
    order_name = {2: "binary", 3: "ternary"}
    fig, axes = plt.subplots(2, len(orders), figsize=figsize, squeeze=False, sharex=True,
                             layout="constrained")
    found = 0
    for j, order in enumerate(orders):
        found += _train_val_column(axes[:, j], sub, f"_o{order}",
                                   f"{order_name.get(order, f'order {order}')} (order {order})")
    if not found:
        raise ValueError(
            f"the curves frame has no per-order metrics for orders {list(orders)} "
            "(expected e.g. 'train_loss_o2'); metrics present: "
            f"{sorted(sub['metric'].unique())}"
        )
    fig.suptitle(f"{_model_name(model)}: per-order performance" + _fixed_text(fixed))
    cols = ", ".join(f"{order_name.get(o, f'order {o}')} (order {o})" for o in orders)
    caption = (
        f"{_model_name(model)} on mixed orders{_fixed_text(fixed)}: columns {cols} equations; "
        "top: loss (log scale), bottom: accuracy, versus training step t. Blue: training "
        f"set, red: validation set; {_seeds_text(sub)}."
    )
    return fig, caption


def _grid_for(metrics: Sequence[str]):
    """Rows (kinds) x columns (splits) for a metric list; param_norm fills both columns."""
    parts = [_metric_parts(m) for m in metrics]
    kinds: list[str] = []
    for _, kind, _ in parts:
        if kind not in kinds:
            kinds.append(kind)
    splits = [s for s in ("train", "val") if any(p[0] == s for p in parts)] or ["train"]
    cells = {}
    for metric, (split, kind, _) in zip(metrics, parts):
        if kind == "param_norm":
            for s in splits:
                cells.setdefault((kinds.index(kind), splits.index(s)), metric)
        else:
            cells.setdefault((kinds.index(kind), splits.index(split)), metric)
    return kinds, splits, cells


def plot_sweep(curves: pd.DataFrame, model: str, by: str, log2: bool | None = None,
               metrics: Sequence[str] = ("train_loss", "val_loss", "train_acc", "val_acc"),
               fixed: Mapping | None = None, figsize=None, title: str | None = None):
    """Fig. 2/3, 9–14, 19/20, 23: one panel per metric, one curve per value of ``by``.

    Rows are the metric kinds (loss, accuracy, and ``param_norm`` duplicated in both columns
    when asked: 3×2 as in Fig. 23), columns train / validation. Curves are coloured by ``by``
    with ``viridis`` (log₂ norm when ``log2``; default: True for d_model and batch_size) and a
    colour bar; shaded ±1 std. ``fixed`` filters the other swept fields, e.g.
    ``{"num_layers": 2}``.
    """
    _check_columns(curves, CURVE_COLUMNS, "curves frame")
    if by not in curves.columns:
        raise ValueError(
            f"by={by!r} is not a column of the curves frame; swept columns: "
            f"{_by_fields(curves, CURVE_COLUMNS)}"
        )
    if log2 is None:
        log2 = by in LOG2_FIELDS
    sub = _apply_fixed(_select_model(curves, model, "curves frame"), fixed, "curves frame")
    others = [c for c in _by_fields(sub, CURVE_COLUMNS) if c != by]
    _require_single(sub, others, "curves frame")
    values = sorted(sub[by].unique().tolist())
    norm = _sweep_norm(values, log2)
    cmap = plt.get_cmap(CMAP)
    kinds, splits, cells = _grid_for(list(metrics))
    if figsize is None:
        figsize = (12, 3.6 * len(kinds) + 0.6)
    fig, axes = plt.subplots(len(kinds), len(splits), figsize=figsize, squeeze=False,
                             sharex=True, layout="constrained")
    legend_ax = None
    for (i, j), metric in cells.items():
        ax = axes[i, j]
        kind = kinds[i]
        for value in values:
            s = _series(sub[sub[by] == value], metric)
            if s is None:
                continue
            _band(ax, *s, cmap(norm(float(value))), log=kind == "loss", lw=1.4,
                  clip01=kind == "acc", label=f"{_field_label(by)} = " + (_pow2_label(value) if log2 else _fmt_value(value)))
        _style_value_axis(ax, kind)
        ax.set_ylabel(_metric_label(metric))
        ax.set_title(_metric_label(metric) if kind == "param_norm"
                     else f"{SPLIT_NAME[splits[j]]} {KIND_NAME[kind]}", fontsize=11)
        if i == len(kinds) - 1:
            ax.set_xlabel("$t$ (training step)")
        if kind == "acc" and splits[j] == "train" and legend_ax is None:
            legend_ax = ax
    for (i, j) in np.ndindex(axes.shape):
        if (i, j) not in cells:
            axes[i, j].set_axis_off()
    legend_ax = legend_ax or axes[tuple(next(iter(cells)))]
    if len(values) <= 12:
        legend_ax.legend(loc="best", fontsize=8, ncol=2 if len(values) > 5 else 1)
    _add_colorbar(fig, axes.ravel().tolist(), norm, values, by, log2)
    fig.suptitle(title or f"{_model_name(model)}: sweep over {_field_label(by)}"
                 + _fixed_text(fixed))
    names = ", ".join(_metric_text(m) for m in metrics)
    caption = (
        f"{_model_name(model)}{_fixed_text(fixed)}: {names} versus training step t for "
        f"{_field_text(by)} ∈ {_fmt_values(values, log2)}. Colour: {_field_text(by)} "
        f"(viridis{', log₂ scale' if log2 else ''}, see colour bar); losses on a log scale; "
        f"{_seeds_text(sub)}."
    )
    return fig, caption


# --------------------------------------------------------------------------- best values


def _best_table(best: pd.DataFrame, quantity: str, x: str) -> pd.DataFrame:
    sub = best[best["quantity"] == quantity].sort_values(x)
    return sub


def _errorband(ax, x, mean, std, color, label, log=False, marker="o", ls="-", clip01=False):
    std = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    mean = np.asarray(mean, dtype=float)
    lower, upper = mean - std, mean + std
    if clip01:
        lower, upper = np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    if log:
        positive = mean[mean > 0]
        lower = np.maximum(lower, positive.min() * 0.5 if positive.size else 1e-12)
    ax.errorbar(x, mean, yerr=np.vstack([mean - lower, upper - mean]), color=color,
                marker=marker, ms=5, lw=1.8, ls=ls, capsize=3, label=label)
    ax.fill_between(x, lower, upper, color=color, alpha=BAND_ALPHA, lw=0)


def plot_best(best: pd.DataFrame, model: str, by: str, log2: bool | None = None,
              fixed: Mapping | None = None, figsize=(13, 5)):
    """Fig. 4/5, 24: best values and their first step t_f versus a swept field.

    Left: best loss (train blue / val red, log y, shaded ±std) and t_f(L) on a twin axis
    (train dotted, val solid). Right: best accuracy and t_f(A) likewise.
    """
    _check_columns(best, BEST_COLUMNS, "best frame")
    if by not in best.columns:
        raise ValueError(f"by={by!r} is not a column of the best frame; columns: "
                         f"{list(best.columns)}")
    if log2 is None:
        log2 = by in LOG2_FIELDS
    sub = _apply_fixed(_select_model(best, model, "best frame"), fixed, "best frame")
    others = [c for c in _by_fields(sub, BEST_COLUMNS) if c not in (by, "P")]
    _require_single(sub, others, "best frame")
    values = sorted(sub[by].unique().tolist())
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, kind in zip(axes, ("L", "A")):
        twin = _twin_below(ax)
        handles = []
        for split in ("train", "val"):
            table = _best_table(sub, f"{kind}_{split}", by)
            if table.empty:
                continue
            x = table[by].to_numpy(dtype=float)
            color = SPLIT_COLOR[split]
            _errorband(ax, x, table["best_mean"], table["best_std"], color,
                       label=f"best {_quantity_label(f'{kind}_{split}')}", log=kind == "L",
                       clip01=kind == "A")
            twin.errorbar(x, table["tf_mean"], yerr=np.nan_to_num(table["tf_std"].to_numpy(float)),
                          color=color, alpha=0.6, ls=":" if split == "train" else "-",
                          marker="s", ms=4, lw=1.3, capsize=2)
            handles.append(Line2D([], [], color=color, marker="o", lw=1.8,
                                  label=f"best ${kind}_{{\\mathrm{{{split}}}}}$"))
            handles.append(Line2D([], [], color=color, alpha=0.6, marker="s", ms=4,
                                  ls=":" if split == "train" else "-",
                                  label=f"$t_f({kind}_{{\\mathrm{{{split}}}}})$"))
        if kind == "L":
            ax.set_yscale("log")
            ax.set_ylabel(r"best loss $\mathcal{L}_{\mathrm{train/val}}$")
        else:
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel(r"best accuracy $\mathcal{A}_{\mathrm{train/val}}$")
        twin.set_ylabel(rf"$t_f(\mathcal{{{kind}}})$ (step of the best value)")
        if log2:
            _set_log2_x(ax, values)
        ax.set_xlabel(_field_label(by))
        ax.grid(True, alpha=0.3)
        ax.legend(handles=handles, loc="best", fontsize=8)
        ax.set_title("best loss" if kind == "L" else "best accuracy")
    fig.suptitle(f"{_model_name(model)}: best values versus {_field_label(by)}" + _fixed_text(fixed))
    caption = (
        f"{_model_name(model)}{_fixed_text(fixed)}: best values over training versus "
        f"{_field_text(by)} ∈ {_fmt_values(values, log2)}. Left: best loss L_train (blue) and "
        "L_val (red), log scale, and the first step t_f(L) reaching it on the right axis "
        "(train dotted, val solid). Right: best accuracy A_train/A_val and t_f(A), same style. "
        f"Error bars and shaded areas: ±1 std; {_seeds_text(sub).split(',')[0]}."
    )
    return fig, caption


def plot_best_bars(best: pd.DataFrame, model: str, x: str = "num_layers", hue: str = "d_model",
                   log2_hue: bool | None = None, fixed: Mapping | None = None, figsize=(13, 7.5)):
    """Fig. 15/16: grouped bars of best loss (left, log) and best accuracy (right).

    ``x`` groups on the x-axis, one bar per ``hue`` value coloured with ``viridis`` (log₂ for
    d_model / batch_size) plus colour bar; rows: train (top) and validation (bottom); error
    bars ±1 std.
    """
    _check_columns(best, BEST_COLUMNS, "best frame")
    for field in (x, hue):
        if field not in best.columns:
            raise ValueError(f"{field!r} is not a column of the best frame; columns: "
                             f"{list(best.columns)}")
    if log2_hue is None:
        log2_hue = hue in LOG2_FIELDS
    sub = _apply_fixed(_select_model(best, model, "best frame"), fixed, "best frame")
    others = [c for c in _by_fields(sub, BEST_COLUMNS) if c not in (x, hue, "P")]
    _require_single(sub, others, "best frame")
    xs = sorted(sub[x].unique().tolist())
    hues = sorted(sub[hue].unique().tolist())
    norm = _sweep_norm(hues, log2_hue)
    cmap = plt.get_cmap(CMAP)
    width = 0.8 / len(hues)
    fig, axes = plt.subplots(2, 2, figsize=figsize, sharex=True, layout="constrained")
    for i, split in enumerate(("train", "val")):
        for j, kind in enumerate(("L", "A")):
            ax = axes[i, j]
            table = sub[sub["quantity"] == f"{kind}_{split}"]
            for k, h in enumerate(hues):
                rows = table[table[hue] == h].set_index(x).reindex(xs)
                pos = np.arange(len(xs)) - 0.4 + width * (k + 0.5)
                ax.bar(pos, rows["best_mean"].to_numpy(float), width=width * 0.92,
                       yerr=_yerr(rows["best_mean"], rows["best_std"], kind),
                       color=cmap(norm(float(h))), edgecolor="black", lw=0.5, capsize=3,
                       error_kw={"lw": 1},
                       label=f"{_field_label(hue)} = "
                       + (_pow2_label(h) if log2_hue else _fmt_value(h)))
            if kind == "L":
                ax.set_yscale("log")
                ax.set_ylabel(f"best loss $\\mathcal{{L}}_{{\\mathrm{{{split}}}}}$")
            else:
                ax.set_ylim(0, 1.05)
                ax.set_ylabel(f"best accuracy $\\mathcal{{A}}_{{\\mathrm{{{split}}}}}$")
            ax.set_title(f"{SPLIT_NAME[split]}: best {'loss' if kind == 'L' else 'accuracy'}",
                         fontsize=11)
            ax.set_xticks(np.arange(len(xs)))
            ax.set_xticklabels([_fmt_value(v) for v in xs])
            ax.grid(True, axis="y", alpha=0.3)
            if i == 1:
                ax.set_xlabel(_field_label(x))
    axes[0, 1].legend(loc="lower right", fontsize=8)
    _add_colorbar(fig, axes.ravel().tolist(), norm, hues, hue, log2_hue)
    fig.suptitle(f"{_model_name(model)}: best values by {_field_label(x)} and {_field_label(hue)}"
                 + _fixed_text(fixed))
    caption = (
        f"{_model_name(model)}{_fixed_text(fixed)}: best loss (left, log scale) and best "
        f"accuracy (right) on the training (top) and validation (bottom) sets, with "
        f"{_field_text(x)} ∈ {_fmt_values(xs)} on the x-axis and one bar per {_field_text(hue)} ∈ "
        f"{_fmt_values(hues, log2_hue)} (viridis{', log₂ scale' if log2_hue else ''}, see colour "
        f"bar). Error bars: ±1 std; {_seeds_text(sub).split(',')[0]}."
    )
    return fig, caption


def plot_best_vs_params(best: pd.DataFrame, model: str, fixed: Mapping | None = None,
                        annotate: bool = True, figsize=(13, 5)):
    """Fig. 17/18: best loss (left, log-log) and best accuracy (right, log x) versus the
    number of non-embedding parameters ``P``; train blue / val red, error bars ±1 std.

    With ``annotate``, validation points of the loss panel are labelled with their
    configuration.
    """
    _check_columns(best, BEST_COLUMNS + ("P",), "best frame")
    sub = _apply_fixed(_select_model(best, model, "best frame"), fixed, "best frame")
    config_fields = [c for c in _by_fields(sub, BEST_COLUMNS) if c != "P"]
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, kind in zip(axes, ("L", "A")):
        for split in ("train", "val"):
            table = sub[sub["quantity"] == f"{kind}_{split}"].sort_values("P")
            if table.empty:
                continue
            x = table["P"].to_numpy(float)
            ax.errorbar(x, table["best_mean"].to_numpy(float),
                        yerr=_yerr(table["best_mean"], table["best_std"], kind),
                        color=SPLIT_COLOR[split], marker="o", ms=5, lw=1.2, capsize=3,
                        label=f"best ${kind}_{{\\mathrm{{{split}}}}}$")
            if annotate and kind == "L" and split == "val" and config_fields:
                for _, row in table.iterrows():
                    text = ", ".join(f"{_field_text(f)}={_fmt_value(row[f])}" for f in config_fields)
                    ax.annotate(text, (row["P"], row["best_mean"]), fontsize=7,
                                xytext=(4, 4), textcoords="offset points", color="dimgray")
        ax.set_xscale("log")
        if kind == "L":
            ax.set_yscale("log")
            ax.set_ylabel(r"best loss $\mathcal{L}_{\mathrm{train/val}}$")
            ax.set_title("best loss")
        else:
            ax.set_ylim(-0.02, 1.05)
            ax.set_ylabel(r"best accuracy $\mathcal{A}_{\mathrm{train/val}}$")
            ax.set_title("best accuracy")
        ax.set_xlabel(_field_label("P"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(f"{_model_name(model)}: best values versus non-embedding parameters"
                 + _fixed_text(fixed))
    ps = sorted(sub["P"].unique().tolist())
    configs = ""
    if config_fields:
        combos = sub[config_fields].drop_duplicates().sort_values(config_fields)
        configs = (" over configurations (" + ", ".join(_field_text(f) for f in config_fields)
                   + ") ∈ {" + ", ".join(
                       "(" + ", ".join(_fmt_value(r[f]) for f in config_fields) + ")"
                       for _, r in combos.iterrows()) + "}")
    caption = (
        f"{_model_name(model)}{_fixed_text(fixed)}: best loss (left, log–log) and best accuracy "
        f"(right) versus the number of non-embedding parameters P "
        f"(from {ps[0]:,.0f} to {ps[-1]:,.0f}){configs}. Blue: training, red: validation; "
        f"error bars ±1 std; {_seeds_text(sub).split(',')[0]}."
    )
    return fig, caption


def plot_compute(best: pd.DataFrame, model: str, by: str = "batch_size",
                 log2: bool | None = None, fixed: Mapping | None = None, twin: bool = True,
                 figsize=None):
    """Fig. 21/22: best values versus ``by`` (default B, log₂ x), one curve per ``alpha``
    (T_max = α·T) coloured with ``viridis`` and a colour bar.

    ``twin=True`` (seed layout, 1×2): best value (left axis, circles) and t_f (right axis,
    squares, faded) in the same panel; train dotted, val solid. ``twin=False`` puts t_f in a
    second row instead (2×2), which reads better with many α values.
    """
    _check_columns(best, BEST_COLUMNS + ("alpha",), "best frame")
    if by not in best.columns:
        raise ValueError(f"by={by!r} is not a column of the best frame; columns: "
                         f"{list(best.columns)}")
    if log2 is None:
        log2 = by in LOG2_FIELDS
    sub = _apply_fixed(_select_model(best, model, "best frame"), fixed, "best frame")
    others = [c for c in _by_fields(sub, BEST_COLUMNS) if c not in (by, "alpha", "P")]
    _require_single(sub, others, "best frame")
    alphas = sorted(sub["alpha"].unique().tolist())
    values = sorted(sub[by].unique().tolist())
    norm = _sweep_norm(alphas, log2=False)
    cmap = plt.get_cmap(CMAP)
    nrows = 1 if twin else 2
    if figsize is None:
        figsize = (13, 5.2) if twin else (13, 8.5)
    fig, axes = plt.subplots(nrows, 2, figsize=figsize, squeeze=False, sharex=True,
                             layout="constrained")
    for j, kind in enumerate(("L", "A")):
        ax = axes[0, j]
        tf_ax = _twin_below(ax) if twin else axes[1, j]
        for alpha in alphas:
            color = cmap(norm(float(alpha)))
            rows = sub[np.isclose(sub["alpha"].astype(float), float(alpha))]
            for split in ("train", "val"):
                table = rows[rows["quantity"] == f"{kind}_{split}"].sort_values(by)
                if table.empty:
                    continue
                x = table[by].to_numpy(float)
                ls = ":" if split == "train" else "-"
                ax.errorbar(x, table["best_mean"].to_numpy(float),
                            yerr=_yerr(table["best_mean"], table["best_std"], kind), color=color,
                            ls=ls, marker="o", ms=4, lw=1.4, capsize=2)
                tf_ax.errorbar(x, table["tf_mean"].to_numpy(float),
                               yerr=np.nan_to_num(table["tf_std"].to_numpy(float)), color=color,
                               ls=ls, marker="s", ms=3.5, lw=1.0, capsize=2,
                               alpha=0.55 if twin else 1.0)
        name = "loss" if kind == "L" else "accuracy"
        symbol = r"\mathcal{L}" if kind == "L" else r"\mathcal{A}"
        if kind == "L":
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.02, 1.05)
        ax.set_ylabel(f"best {name} ${symbol}_{{\\mathrm{{train/val}}}}$")
        tf_ax.set_ylabel(rf"$t_f({symbol})$ (step of the best value)")
        ax.set_title(f"best {name}" + (f" and $t_f({symbol})$" if twin else ""))
        if not twin:
            tf_ax.set_title(f"$t_f({symbol})$")
        for a in ([ax] if twin else [ax, tf_ax]):
            if log2:
                _set_log2_x(a, values)
            a.grid(True, alpha=0.3)
        axes[-1, j].set_xlabel(_field_label(by))
        handles = [Line2D([], [], color="black", ls=":", label="train"),
                   Line2D([], [], color="black", ls="-", label="validation"),
                   Line2D([], [], color="black", marker="o", ls="none", label="best value")]
        if twin:
            handles.append(Line2D([], [], color="black", marker="s", ls="none", alpha=0.55,
                                  label=r"$t_f$ (right axis)"))
        ax.legend(handles=handles, loc="best", fontsize=8)
    _add_colorbar(fig, axes.ravel().tolist(), norm, alphas, "alpha", log2=False)
    fig.suptitle(f"{_model_name(model)}: best values versus {_field_label(by)} per "
                 r"$\alpha$ ($T_{\mathrm{max}} = \alpha T$)" + _fixed_text(fixed))
    caption = (
        f"{_model_name(model)}{_fixed_text(fixed)}: best values computed on training histories "
        f"sliced at T_max = α·T for α ∈ {_fmt_values(alphas)}, versus {_field_text(by)} ∈ "
        f"{_fmt_values(values, log2)}. Left: best loss (log scale) and t_f(L); right: best "
        "accuracy and t_f(A)"
        + (" (t_f on the right axis, faded squares)" if twin else " (t_f in the bottom row)")
        + f"; train dotted, validation solid; colour: α (viridis, see colour bar); error bars "
        f"±1 std; {_seeds_text(sub).split(',')[0]}."
    )
    return fig, caption


# --------------------------------------------------------------------------- attention


def plot_attention_grid(weights, tokens: Sequence[str], title: str | None = None,
                        cmap: str = "viridis", annotate: bool = True, layers=None, heads=None,
                        cell_inches: float | None = None):
    """Fig. 25–27: a grid of attention heatmaps, one row per layer and one column per head.

    ``weights``: array ``(L, H, S, S)`` (query rows, key columns), values in [0, 1];
    ``tokens``: the S source tokens labelling both axes. Each cell shows its weight with two
    decimals. ``layers`` / ``heads`` (0-based iterables) restrict the grid. Returns
    ``(fig, caption)``.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"weights must have shape (L, H, S, S), got {w.shape}")
    n_layers, n_heads, seq, _ = w.shape
    tokens = [str(t) for t in tokens]
    if len(tokens) != seq:
        raise ValueError(f"got {len(tokens)} tokens for sequence length S = {seq}")
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    for name, chosen, size in (("layer", layers, n_layers), ("head", heads, n_heads)):
        bad = [c for c in chosen if not 0 <= c < size]
        if bad or not chosen:
            raise ValueError(f"{name} indices {chosen} out of range 0..{size - 1}")
    rows, cols = len(layers), len(heads)
    if cell_inches is None:
        cell_inches = float(np.clip(12.5 / cols, 2.4, 3.6))
    fig, axes = plt.subplots(rows, cols, figsize=(cell_inches * cols + 1.2,
                                                  cell_inches * rows + 0.8),
                             squeeze=False, layout="constrained")
    colormap = plt.get_cmap(cmap)
    fontsize = float(np.clip(cell_inches * 72 / seq / 4.2, 4.5, 9))
    image = None
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            ax = axes[r, c]
            mat = w[layer, head]
            image = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap=colormap, aspect="equal")
            ax.set_xticks(range(seq))
            ax.set_yticks(range(seq))
            ax.set_xticklabels(tokens, rotation=90, fontsize=8)
            ax.set_yticklabels(tokens, fontsize=8)
            ax.tick_params(length=0)
            ax.set_title(f"Layer {layer + 1}, Head {head + 1}", fontsize=10)
            if r == rows - 1:
                ax.set_xlabel("key", fontsize=9)
            if c == 0:
                ax.set_ylabel("query", fontsize=9)
            if annotate:
                for qi in range(seq):
                    for ki in range(seq):
                        value = mat[qi, ki]
                        rgba = colormap(value)
                        luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                        ax.text(ki, qi, f"{value:.2f}", ha="center", va="center",
                                fontsize=fontsize,
                                color="black" if luminance > 0.5 else "white")
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, aspect=30)
    cbar.set_label("attention weight")
    sentence = " ".join(tokens)
    fig.suptitle(title or f"Attention for: {sentence}")
    caption = (
        f"Attention weights for the input '{sentence}' (S = {seq}): one heatmap per head "
        f"(columns, heads {', '.join(str(h + 1) for h in heads)}) and layer (rows, layers "
        f"{', '.join(str(li + 1) for li in layers)}, layer 1 at the top). Rows are query "
        "positions, columns key positions; colour and the printed numbers give the weight "
        "(0 to 1); the causal mask makes every entry above the diagonal zero."
    )
    return fig, caption
