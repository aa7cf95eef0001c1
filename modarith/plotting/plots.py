"""Plot primitives of the seed report's figures: training and validation curves, sweeps and best
values versus a swept field.

Every ``plot_*`` function returns ``(fig, caption)``: a :class:`matplotlib.figure.Figure` and
a caption computed from the data it was given. Inputs are the frames of
:mod:`modarith.study.analysis`:

* **curves frame** (long): ``model``, swept fields, ``step``, ``metric``, ``mean``, ``std``, ``n``;
* **best frame**: ``model``, swept fields (optionally ``alpha``, ``P``), ``quantity``,
  ``best_mean``, ``best_std``, ``tf_mean``, ``tf_std``, ``n``.

The conventions (colours, labels, axes) live in :mod:`modarith.plotting.style`; a figure leaves
a notebook through :func:`modarith.plotting.output.show`. Nothing here knows which experiment it
draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from modarith.models.registry import MODELS
from modarith.plotting.style import (
    BEST_COLUMNS,
    CMAP,
    CURVE_COLUMNS,
    KIND_NAME,
    KIND_SYMBOL,
    LOG2_FIELDS,
    LOG10_FIELDS,
    SPLIT_COLOR,
    SPLIT_NAME,
    TRAIN_COLOR,
    VAL_COLOR,
    add_colorbar,
    apply_fixed,
    band,
    by_fields,
    check_columns,
    error_bars,
    field_label,
    field_text,
    fixed_text,
    metric_label,
    metric_parts,
    metric_series,
    metric_text,
    model_name,
    pow2_label,
    require_single,
    seeds_text,
    select_model,
    set_log2_x,
    style_value_axis,
    sweep_norm,
    twin_below,
    value_text,
    values_text,
)


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
            s = metric_series(sub, metric)
            if s is not None:
                drawn += 1
                band(ax, *s, SPLIT_COLOR[split], label=metric_label(metric),
                      log=kind == "loss", clip01=kind == "acc")
        style_value_axis(ax, kind)
        ax.set_ylabel(metric_label(f"train_{kind}").replace("train", "train/val"))
        if ax.get_lines():
            ax.legend(loc="best", fontsize=9)
        if i == 0:
            ax.set_title(title)
        else:
            ax.set_xlabel("$t$ (training step)")
    return drawn


def plot_train_val(curves: pd.DataFrame, models: Sequence[str] = MODELS,
                   orders: Sequence[int] | None = None, fixed: Mapping | None = None,
                   figsize=(11, 7.5)):
    """Loss (top, log) and accuracy (bottom) versus step; train blue, validation red, shaded
    ±1 std over seeds. One column per model, or, with ``orders`` (e.g. ``(2, 3)``), one column
    per equation order of the single model in ``models`` (metrics ``train_loss_o2`` …).
    ``fixed`` filters swept fields when the frame holds several configurations.
    """
    check_columns(curves, CURVE_COLUMNS, "curves frame")
    models = [models] if isinstance(models, str) else list(models)
    if orders is not None and len(models) != 1:
        raise ValueError(f"orders = {orders!r} needs one model, got models = {models!r}")
    order_name = {2: "binary", 3: "ternary"}
    columns = ([(models[0], f"_o{o}", f"{order_name.get(o, 'order')} (order {o})") for o in orders]
               if orders is not None else [(m, "", model_name(m)) for m in models])
    fig, axes = plt.subplots(2, len(columns), figsize=figsize, squeeze=False, sharex="col",
                             layout="constrained")
    for j, (model, suffix, title) in enumerate(columns):
        sub = apply_fixed(select_model(curves, model, "curves frame"), fixed, "curves frame")
        require_single(sub, by_fields(sub, CURVE_COLUMNS), "curves frame")
        if not _train_val_column(axes[:, j], sub, suffix, title):
            raise ValueError(f"the curves frame has no metrics ending in {suffix!r} for model "
                             f"{model!r}; metrics present: {sorted(sub['metric'].unique())}")
    names = " and ".join(model_name(m) for m in models)
    cols = ", ".join(t for _, _, t in columns)
    fig.suptitle(f"{names}: training and validation curves" + fixed_text(fixed))
    caption = (
        f"{names}{fixed_text(fixed)}: loss (top, log scale) and accuracy (bottom) versus "
        f"training step t; columns: {cols}. Blue: training set, red: validation set; "
        f"{seeds_text(curves[curves['model'].isin(models)])}.")
    return fig, caption


def _grid_for(metrics: Sequence[str]):
    """Rows (kinds) x columns (splits) for a metric list; param_norm fills both columns."""
    parts = [metric_parts(m) for m in metrics]
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


def _sweep_panel(ax, sub: pd.DataFrame, by: str, values, metric: str, kind: str, norm, log2: bool) -> None:
    """One metric on ``ax``: a mean curve with its band per value of ``by``, coloured by ``norm``."""
    cmap = plt.get_cmap(CMAP)
    for value in values:
        s = metric_series(sub[sub[by] == value], metric)
        if s is None:
            continue
        band(ax, *s, cmap(norm(float(value))), log=kind == "loss", lw=1.4,
             clip01=kind == "acc", label=f"{field_label(by)} = " + (pow2_label(value) if log2 else value_text(value)))
    style_value_axis(ax, kind)
    ax.set_ylabel(metric_label(metric))


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
    check_columns(curves, CURVE_COLUMNS, "curves frame")
    if by not in curves.columns:
        raise ValueError(
            f"by={by!r} is not a column of the curves frame; swept columns: "
            f"{by_fields(curves, CURVE_COLUMNS)}"
        )
    if log2 is None:
        log2 = by in LOG2_FIELDS
    sub = apply_fixed(select_model(curves, model, "curves frame"), fixed, "curves frame")
    others = [c for c in by_fields(sub, CURVE_COLUMNS) if c != by]
    require_single(sub, others, "curves frame")
    values = sorted(sub[by].unique().tolist())
    norm = sweep_norm(values, log2)
    kinds, splits, cells = _grid_for(list(metrics))
    if figsize is None:
        figsize = (12, 3.6 * len(kinds) + 0.6)
    fig, axes = plt.subplots(len(kinds), len(splits), figsize=figsize, squeeze=False,
                             sharex=True, layout="constrained")
    legend_ax = None
    for (i, j), metric in cells.items():
        ax = axes[i, j]
        kind = kinds[i]
        _sweep_panel(ax, sub, by, values, metric, kind, norm, log2)
        ax.set_title(metric_label(metric) if kind == "param_norm"
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
    add_colorbar(fig, axes.ravel().tolist(), norm, values, by, log2)
    fig.suptitle(title or f"{model_name(model)}: sweep over {field_label(by)}"
                 + fixed_text(fixed))
    names = ", ".join(metric_text(m) for m in metrics)
    caption = (
        f"{model_name(model)}{fixed_text(fixed)}: {names} versus training step t for "
        f"{field_text(by)} ∈ {values_text(values, log2)}. Colour: {field_text(by)} "
        f"(viridis{', log₂ scale' if log2 else ''}, see colour bar); losses on a log scale; "
        f"{seeds_text(sub)}."
    )
    return fig, caption


# --------------------------------------------------------------------------- best values
def _set_x(ax, field: str, values, logx: str | None) -> None:
    if logx == "log2":
        set_log2_x(ax, values)
    elif logx == "log10":
        ax.set_xscale("log")


def _best_rows(best: pd.DataFrame, model: str, by: str, hue: str | None, fixed: Mapping | None) -> pd.DataFrame:
    """The rows of ``model`` (and ``fixed``) of a best frame, one configuration per (``by``,
    ``hue``) point; errors name the missing column or the fields left ambiguous."""
    check_columns(best, BEST_COLUMNS, "best frame")
    for f in (by, hue):
        if f is not None and f not in best.columns:
            raise ValueError(f"{f!r} is not a column of the best frame; columns: {list(best.columns)}")
    sub = apply_fixed(select_model(best, model, "best frame"), fixed, "best frame")
    keys = [by, "quantity"] + ([hue] if hue else [])
    if sub.duplicated(keys).any():
        others = [c for c in by_fields(sub, BEST_COLUMNS) if c not in keys]
        raise ValueError(f"the best frame holds several values of {others} per {by!r}"
                         + (f" and {hue!r}" if hue else "") + "; select one with fixed={...}")
    return sub


def _best_points(ax, twin, sub: pd.DataFrame, by: str, kind: str, hue: str | None, hues, norm) -> None:
    """Best values (circles, ``ax``) and their t_f (squares, ``twin``) of one kind ("L" or "A"),
    per ``hue`` value and split: train and validation by colour without ``hue``, by line style
    with it."""
    cmap = plt.get_cmap(CMAP)
    for h in hues:
        rows = sub if h is None else sub[sub[hue] == h]
        for split in ("train", "val"):
            table = rows[rows["quantity"] == f"{kind}_{split}"].sort_values(by)
            if table.empty:
                continue
            color = SPLIT_COLOR[split] if h is None else cmap(norm(float(h)))
            ls = "-" if h is None or split == "val" else ":"
            x = table[by].to_numpy(dtype=float)
            ax.errorbar(x, table["best_mean"].to_numpy(float),
                        yerr=error_bars(table["best_mean"], table["best_std"], kind),
                        color=color, ls=ls, marker="o", ms=5, lw=1.6, capsize=3)
            twin.errorbar(x, table["tf_mean"].to_numpy(float),
                          yerr=np.nan_to_num(table["tf_std"].to_numpy(float)), color=color,
                          alpha=0.55, ls=":" if split == "train" else "-", marker="s",
                          ms=4, lw=1.1, capsize=2)


def _best_axes(ax, twin, kind: str, by: str, values, logx: str | None, hue: str | None) -> None:
    """Scales, labels, title and legend of one panel of :func:`plot_best`."""
    symbol = KIND_SYMBOL["loss" if kind == "L" else "acc"]
    if kind == "L":
        ax.set_yscale("log")
    else:
        ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel(f"best {'loss' if kind == 'L' else 'accuracy'} ${symbol}_{{\\mathrm{{train/val}}}}$")
    twin.set_ylabel(rf"$t_f({symbol})$ (step of the best value)")
    _set_x(ax, by, values, logx)
    ax.set_xlabel(field_label(by))
    ax.grid(True, alpha=0.3)
    ax.set_title("best loss" if kind == "L" else "best accuracy")
    if hue is None:
        handles = [Line2D([], [], color=c, marker="o", label=f"best {s}")
                   for s, c in (("train", TRAIN_COLOR), ("validation", VAL_COLOR))]
    else:
        handles = [Line2D([], [], color="black", ls=":", label="train"),
                   Line2D([], [], color="black", ls="-", label="validation")]
    handles.append(Line2D([], [], color="gray", marker="s", ls="none", alpha=0.55,
                          label="$t_f$ (right axis)"))
    ax.legend(handles=handles, loc="best", fontsize=8)


def plot_best(best: pd.DataFrame, model: str, by: str, hue: str | None = None,
              fixed: Mapping | None = None, logx: str | None = "auto", figsize=(13, 5)):
    """Best values (circles) and their first step t_f (squares, right axis) versus ``by``.

    Left: best loss (log scale) and t_f(L); right: best accuracy and t_f(A); error bars ±1 std.
    Without ``hue``: train blue, validation red. With ``hue`` (e.g. ``"alpha"`` or
    ``"num_layers"``): one colour per value of that field (viridis, colour bar), train dotted
    and validation solid. ``logx``: ``"log2"``, ``"log10"``, None, or ``"auto"`` (log₂ for d and
    B, log₁₀ for P). Every (``by``, ``hue``) point must hold one configuration.
    """
    sub = _best_rows(best, model, by, hue, fixed)
    if logx == "auto":
        logx = "log2" if by in LOG2_FIELDS else "log10" if by in LOG10_FIELDS else None
    values = sorted(sub[by].unique().tolist())
    hues = sorted(sub[hue].unique().tolist()) if hue else [None]
    log2_hue = hue in LOG2_FIELDS
    norm = sweep_norm(hues, log2_hue) if hue else None
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, kind in zip(axes, ("L", "A")):
        twin = twin_below(ax)
        _best_points(ax, twin, sub, by, kind, hue, hues, norm)
        _best_axes(ax, twin, kind, by, values, logx, hue)
    if hue:
        add_colorbar(fig, axes.ravel().tolist(), norm, hues, hue, log2_hue)
    fig.suptitle(f"{model_name(model)}: best values versus {field_label(by)}"
                 + (f" per {field_label(hue)}" if hue else "") + fixed_text(fixed))
    colours = ("blue: training, red: validation" if hue is None else
               f"colour: {field_text(hue)} ∈ {values_text(hues, log2_hue)} (viridis, see colour "
               "bar), training dotted, validation solid")
    scale = {"log2": ", log₂ axis", "log10": ", log axis"}.get(logx, "")
    caption = (
        f"{model_name(model)}{fixed_text(fixed)}: best loss (left, log scale) and best accuracy "
        f"(right) over training, circles, with the first step t_f reaching them (squares, right "
        f"axis), versus {field_text(by)} ∈ {values_text(values, logx == 'log2')}{scale}; "
        f"{colours}. Error bars: ±1 std; {seeds_text(sub).split(',')[0]}.")
    return fig, caption
