"""Plot primitives of the notebooks: curves, sweeps, best values, attention grids, and
:func:`show`, which saves a figure and displays it with its caption.

Every ``plot_*`` function returns ``(fig, caption)``: a :class:`matplotlib.figure.Figure` and
a caption computed from the data it was given. Inputs are the frames of
:mod:`modarith.study.analysis`:

* **curves frame** (long): ``model``, swept fields, ``step``, ``metric``, ``mean``, ``std``, ``n``;
* **best frame**: ``model``, swept fields (optionally ``alpha``, ``P``), ``quantity``,
  ``best_mean``, ``best_std``, ``tf_mean``, ``tf_std``, ``n``.

Conventions (SPEC): train blue, validation red, mean curves with a shaded ±1 std band, swept
values coloured with ``viridis`` and a colour bar (log₂ for ``d_model`` and ``batch_size``),
log scale for losses. Nothing here knows which experiment it draws.

(Over 400 lines: one primitive per figure kind of the seed report, each top to bottom with
its caption; they share the axis, colour and caption helpers above them.)
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.cm import ScalarMappable
from matplotlib.lines import Line2D

from modarith.models.registry import MODELS, display_name
from modarith.study.analysis import FIELD_TEXT, fmt_value

TRAIN_COLOR = "tab:blue"
VAL_COLOR = "tab:red"
CMAP = "viridis"
BAND_ALPHA = 0.2
SPLIT_COLOR = {"train": TRAIN_COLOR, "val": VAL_COLOR}
SPLIT_NAME = {"train": "train", "val": "validation"}

CURVE_COLUMNS = ("model", "step", "metric", "mean", "std", "n")
BEST_COLUMNS = ("model", "quantity", "best_mean", "best_std", "tf_mean", "tf_std", "n")
LOG2_FIELDS = ("d_model", "batch_size")  # swept on log2 axes / colour bars
LOG10_FIELDS = ("P",)  # log10 axes

# Math labels of the swept fields (matplotlib mathtext).
FIELD_LABEL = {
    "r_train": r"$r_{\mathrm{train}}$", "num_layers": r"$L$", "d_model": r"$d$",
    "batch_size": r"$B$", "weight_decay": "weight decay", "alpha": r"$\alpha$",
    "P": r"$P$ (non-embedding parameters)", "lr": "learning rate", "p": r"$p$",
    "seed": "seed", "num_heads": r"$H$",
}
KIND_SYMBOL = {"loss": r"\mathcal{L}", "acc": r"\mathcal{A}"}
KIND_NAME = {"loss": "loss", "acc": "accuracy", "param_norm": "parameter norm"}


# --------------------------------------------------------------------------- output
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
        fig.savefig(target, dpi=dpi)
        out.append(target)
    return out


def figure_html(png: bytes, caption: str) -> str:
    """``<figure class="modarith-figure">`` with the PNG inlined (base64) and its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="modarith-figure"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(caption[:120])}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


#: Environment variable naming the files :func:`show` writes per figure (``png``, ``svg``,
#: comma-separated; default PNG only). ``build_report.py --svg`` sets it to ``png,svg``.
FORMATS_ENV = "MODARITH_FIGURE_FORMATS"
FORMATS = ("png", "svg")


def figure_formats(formats: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The file formats :func:`show` writes: ``formats`` (a sequence or ``"png,svg"``), else
    ``$MODARITH_FIGURE_FORMATS``, else PNG only. An unknown format raises ``ValueError``."""
    name = "formats"
    if formats is None:
        name, formats = FORMATS_ENV, os.environ.get(FORMATS_ENV) or "png"
    chosen = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ValueError(f"{name} = {formats!r} is invalid: expected some of {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(chosen))


class FigureFiles(list):
    """The paths :func:`show` wrote. As a cell's last value it displays nothing, so no
    machine's path is printed under a figure (in Jupyter or in the report)."""

    def _ipython_display_(self) -> None:
        pass


def figure_bundle(png: bytes, caption: str) -> dict[str, str]:
    """The MIME bundle :func:`show` displays: ``image/png`` (base64, what nbconvert's PDF,
    Markdown and LaTeX exporters, scrapbook and sanitising viewers keep), ``text/html`` (the
    captioned :func:`figure_html`, what Jupyter and the report's HTML show, once: HTML
    outranks PNG there) and ``text/plain`` (the caption)."""
    return {"image/png": base64.b64encode(png).decode("ascii"), "text/html": figure_html(png, caption),
            "text/plain": caption}


def show(fig, caption: str, save_dir: str | Path | None = None, name: str = "figure",
         dpi: int = 120, formats: str | Sequence[str] | None = None) -> FigureFiles:
    """Display ``fig`` with its caption as one MIME bundle (:func:`figure_bundle`: the PNG,
    and one self-contained HTML ``<figure class="modarith-figure">``; outside IPython: print
    the caption and the paths), save it as ``save_dir/name.png`` (and ``.svg`` when
    :func:`figure_formats` says so; nothing when ``save_dir`` is None), close it, and return
    the paths written (a :class:`FigureFiles`, which a cell does not print). The PNG is
    rendered once, for the page and the file."""
    import io

    formats = figure_formats(formats)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    paths = FigureFiles()
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            path = Path(save_dir) / f"{name}.{fmt}"
            if fmt == "png":
                path.write_bytes(buffer.getvalue())
            else:
                fig.savefig(path, format=fmt)
            paths.append(path)
    plt.close(fig)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(figure_bundle(buffer.getvalue(), caption), raw=True)
    else:
        print(caption + "".join(f"\n  {p}" for p in paths))
    return paths


# --------------------------------------------------------------------------- helpers
def _field_label(field: str) -> str:
    return FIELD_LABEL.get(field, field.replace("_", " "))


def _field_text(field: str) -> str:
    return FIELD_TEXT.get(field, field)


def _model_name(model: str) -> str:
    return display_name(str(model).lower())


def _fmt_value(value, log2: bool = False) -> str:
    """A swept value as text: ``2^7`` for powers of two on log₂ axes, else
    :func:`modarith.study.analysis.fmt_value`."""
    if log2 and _is_pow2(value):
        return f"2^{int(round(math.log2(value)))}"
    return fmt_value(value)


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


def plot_train_val(curves: pd.DataFrame, models: Sequence[str] = MODELS,
                   orders: Sequence[int] | None = None, fixed: Mapping | None = None,
                   figsize=(11, 7.5)):
    """Loss (top, log) and accuracy (bottom) versus step; train blue, validation red, shaded
    ±1 std over seeds. One column per model, or, with ``orders`` (e.g. ``(2, 3)``), one column
    per equation order of the single model in ``models`` (metrics ``train_loss_o2`` …).
    ``fixed`` filters swept fields when the frame holds several configurations.
    """
    _check_columns(curves, CURVE_COLUMNS, "curves frame")
    models = [models] if isinstance(models, str) else list(models)
    if orders is not None and len(models) != 1:
        raise ValueError(f"orders = {orders!r} needs one model, got models = {models!r}")
    order_name = {2: "binary", 3: "ternary"}
    columns = ([(models[0], f"_o{o}", f"{order_name.get(o, 'order')} (order {o})") for o in orders]
               if orders is not None else [(m, "", _model_name(m)) for m in models])
    fig, axes = plt.subplots(2, len(columns), figsize=figsize, squeeze=False, sharex="col",
                             layout="constrained")
    for j, (model, suffix, title) in enumerate(columns):
        sub = _apply_fixed(_select_model(curves, model, "curves frame"), fixed, "curves frame")
        _require_single(sub, _by_fields(sub, CURVE_COLUMNS), "curves frame")
        if not _train_val_column(axes[:, j], sub, suffix, title):
            raise ValueError(f"the curves frame has no metrics ending in {suffix!r} for model "
                             f"{model!r}; metrics present: {sorted(sub['metric'].unique())}")
    names = " and ".join(_model_name(m) for m in models)
    cols = ", ".join(t for _, _, t in columns)
    fig.suptitle(f"{names}: training and validation curves" + _fixed_text(fixed))
    caption = (
        f"{names}{_fixed_text(fixed)}: loss (top, log scale) and accuracy (bottom) versus "
        f"training step t; columns: {cols}. Blue: training set, red: validation set; "
        f"{_seeds_text(curves[curves['model'].isin(models)])}.")
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
    # (over 60 lines: one figure, top to bottom: curves, colour bar, labels and caption together)
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
def _set_x(ax, field: str, values, logx: str | None) -> None:
    if logx == "log2":
        _set_log2_x(ax, values)
    elif logx == "log10":
        ax.set_xscale("log")


def plot_best(best: pd.DataFrame, model: str, by: str, hue: str | None = None,
              fixed: Mapping | None = None, logx: str | None = "auto", figsize=(13, 5)):
    """Best values (circles) and their first step t_f (squares, right axis) versus ``by``.

    Left: best loss (log scale) and t_f(L); right: best accuracy and t_f(A); error bars ±1 std.
    Without ``hue``: train blue, validation red. With ``hue`` (e.g. ``"alpha"`` or
    ``"num_layers"``): one colour per value of that field (viridis, colour bar), train dotted
    and validation solid. ``logx``: ``"log2"``, ``"log10"``, None, or ``"auto"`` (log₂ for d and
    B, log₁₀ for P). Every (``by``, ``hue``) point must hold one configuration.
    """
    # (over 60 lines: one figure, top to bottom: panels, hue, log axes and caption together)
    _check_columns(best, BEST_COLUMNS, "best frame")
    for f in (by, hue):
        if f is not None and f not in best.columns:
            raise ValueError(f"{f!r} is not a column of the best frame; columns: {list(best.columns)}")
    if logx == "auto":
        logx = "log2" if by in LOG2_FIELDS else "log10" if by in LOG10_FIELDS else None
    sub = _apply_fixed(_select_model(best, model, "best frame"), fixed, "best frame")
    keys = [by, "quantity"] + ([hue] if hue else [])
    if sub.duplicated(keys).any():
        others = [c for c in _by_fields(sub, BEST_COLUMNS) if c not in keys]
        raise ValueError(f"the best frame holds several values of {others} per {by!r}"
                         + (f" and {hue!r}" if hue else "") + "; select one with fixed={...}")
    values = sorted(sub[by].unique().tolist())
    hues = sorted(sub[hue].unique().tolist()) if hue else [None]
    log2_hue = hue in LOG2_FIELDS
    norm = _sweep_norm(hues, log2_hue) if hue else None
    cmap = plt.get_cmap(CMAP)
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, kind in zip(axes, ("L", "A")):
        twin = _twin_below(ax)
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
                            yerr=_yerr(table["best_mean"], table["best_std"], kind),
                            color=color, ls=ls, marker="o", ms=5, lw=1.6, capsize=3)
                twin.errorbar(x, table["tf_mean"].to_numpy(float),
                              yerr=np.nan_to_num(table["tf_std"].to_numpy(float)), color=color,
                              alpha=0.55, ls=":" if split == "train" else "-", marker="s",
                              ms=4, lw=1.1, capsize=2)
        symbol = KIND_SYMBOL["loss" if kind == "L" else "acc"]
        if kind == "L":
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.02, 1.05)
        ax.set_ylabel(f"best {'loss' if kind == 'L' else 'accuracy'} ${symbol}_{{\\mathrm{{train/val}}}}$")
        twin.set_ylabel(rf"$t_f({symbol})$ (step of the best value)")
        _set_x(ax, by, values, logx)
        ax.set_xlabel(_field_label(by))
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
    if hue:
        _add_colorbar(fig, axes.ravel().tolist(), norm, hues, hue, log2_hue)
    fig.suptitle(f"{_model_name(model)}: best values versus {_field_label(by)}"
                 + (f" per {_field_label(hue)}" if hue else "") + _fixed_text(fixed))
    colours = ("blue: training, red: validation" if hue is None else
               f"colour: {_field_text(hue)} ∈ {_fmt_values(hues, log2_hue)} (viridis, see colour "
               "bar), training dotted, validation solid")
    scale = {"log2": ", log₂ axis", "log10": ", log axis"}.get(logx, "")
    caption = (
        f"{_model_name(model)}{_fixed_text(fixed)}: best loss (left, log scale) and best accuracy "
        f"(right) over training, circles, with the first step t_f reaching them (squares, right "
        f"axis), versus {_field_text(by)} ∈ {_fmt_values(values, logx == 'log2')}{scale}; "
        f"{colours}. Error bars: ±1 std; {_seeds_text(sub).split(',')[0]}.")
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
    # (over 60 lines: one figure, top to bottom: heatmap grid, labels and caption together)
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
