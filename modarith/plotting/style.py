"""The figures' conventions and the helpers the plot primitives share (:mod:`modarith.plotting.plots`,
:mod:`modarith.plotting.progress_plots`): colours, mathtext labels of the swept fields and metrics,
values as text, the checks that name a frame's missing column or an ambiguous selection, mean
curves with their ±std band, colour bars and log₂ axes.

Conventions (SPEC): train blue, validation red, mean curves with a shaded ±1 std band, swept
values coloured with ``viridis`` and a colour bar (log₂ for ``d_model`` and ``batch_size``),
log scale for losses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.cm import ScalarMappable

from modarith.models.registry import display_name
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


def field_label(field: str) -> str:
    return FIELD_LABEL.get(field, field.replace("_", " "))


def field_text(field: str) -> str:
    return FIELD_TEXT.get(field, field)


def model_name(model: str) -> str:
    return display_name(str(model).lower())


def value_text(value, log2: bool = False) -> str:
    """A swept value as text: ``2^7`` for powers of two on log₂ axes, else
    :func:`modarith.study.analysis.fmt_value`."""
    if log2 and is_pow2(value):
        return f"2^{int(round(math.log2(value)))}"
    return fmt_value(value)


def values_text(values: Sequence, log2: bool = False) -> str:
    return "{" + ", ".join(value_text(v, log2) for v in values) + "}"


def is_pow2(value) -> bool:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return v > 0 and float(math.log2(v)).is_integer()


def metric_parts(metric: str) -> tuple[str, str, str]:
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


def metric_label(metric: str, with_t: bool = True) -> str:
    split, kind, order = metric_parts(metric)
    t = "^{(t)}" if with_t else ""
    if kind == "param_norm":
        return r"$\|\theta^{(t)}\|_2$" if with_t else r"$\|\theta\|_2$"
    sub = r"\mathrm{" + split + "}" + (r",\,o" + order[1:] if order else "")
    return f"${KIND_SYMBOL[kind]}_{{{sub}}}{t}$"


def metric_text(metric: str) -> str:
    """Plain-text metric name for captions: ``val_acc_o3`` -> 'validation accuracy (order 3)'."""
    split, kind, order = metric_parts(metric)
    if kind == "param_norm":
        return "parameter norm ‖θ‖₂"
    text = f"{'training' if split == 'train' else 'validation'} {KIND_NAME[kind]}"
    return text + (f" (order {order[1:]})" if order else "")


def check_columns(frame: pd.DataFrame, required: Iterable[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}; it has {list(frame.columns)} "
            f"and needs {list(required)}"
        )


def by_fields(frame: pd.DataFrame, fixed_columns: Sequence[str]) -> list[str]:
    return [c for c in frame.columns if c not in fixed_columns]


def select_model(frame: pd.DataFrame, model: str, what: str) -> pd.DataFrame:
    models = sorted(map(str, frame["model"].unique()))
    sub = frame[frame["model"].astype(str).str.lower() == str(model).lower()]
    if sub.empty:
        raise ValueError(f"model={model!r} is not in the {what}; it holds {models}")
    return sub


def apply_fixed(frame: pd.DataFrame, fixed: Mapping | None, what: str) -> pd.DataFrame:
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


def require_single(frame: pd.DataFrame, fields: Sequence[str], what: str) -> None:
    """Raise when one of ``fields`` still holds several values (ambiguous selection)."""
    for field in fields:
        values = frame[field].unique()
        if len(values) > 1:
            raise ValueError(
                f"the {what} holds several values of {field!r} "
                f"({sorted(values.tolist())}); select one with fixed={{'{field}': ...}}"
            )


def metric_series(frame: pd.DataFrame, metric: str):
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


def band(ax, steps, mean, std, color, label=None, log=False, lw=1.6, ls="-", clip01=False):
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


def seeds_text(frame: pd.DataFrame) -> str:
    if "n" not in frame.columns or frame.empty:
        return "mean"
    ns = sorted({int(v) for v in frame["n"].dropna().unique()})
    if not ns:
        return "mean"
    count = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    plural = "" if ns == [1] else "s"
    return f"mean over {count} seed{plural}, shaded ±1 std"


def fixed_text(fixed: Mapping | None) -> str:
    if not fixed:
        return ""
    return " (" + ", ".join(f"{field_text(k)} = {value_text(v)}" for k, v in fixed.items()) + ")"


def sweep_norm(values: Sequence[float], log2: bool):
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


def add_colorbar(fig, axes, norm, values, field: str, log2: bool):
    """One colour bar for ``axes`` with a tick per swept value (``2^k`` labels on log₂)."""
    sm = ScalarMappable(norm=norm, cmap=CMAP)
    sm.set_array([])
    cbar = fig.colorbar(sm, ax=axes, pad=0.02, fraction=0.04, aspect=30)
    cbar.set_label(field_label(field))
    values = sorted({float(v) for v in values})
    if log2:
        cbar.ax.yaxis.set_major_locator(ticker.FixedLocator(values))
        cbar.ax.yaxis.set_minor_locator(ticker.NullLocator())
        cbar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(pow2_label))
    elif len(values) <= 12:
        cbar.set_ticks(values)
        cbar.set_ticklabels([value_text(v) for v in values])
    return cbar


def pow2_label(value, _pos=None) -> str:
    if is_pow2(value):
        return f"$2^{{{int(round(math.log2(value)))}}}$"
    return f"{value:g}"


def set_log2_x(ax, values):
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(ticker.FixedLocator(sorted({float(v) for v in values})))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(pow2_label))


def error_bars(mean, std, kind: str) -> np.ndarray:
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


def twin_below(ax):
    """A twin y-axis drawn below ``ax``, so the best values and the legend stay on top."""
    twin = ax.twinx()
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    return twin


def style_value_axis(ax, kind: str) -> None:
    if kind == "loss":
        ax.set_yscale("log")
    elif kind == "acc":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="major", alpha=0.3)
