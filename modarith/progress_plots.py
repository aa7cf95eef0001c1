"""Figures of the progress measures (:mod:`modarith.progress_measures`) and of time to grok
(:mod:`modarith.grok`). Like :mod:`modarith.plots`, every ``plot_*`` function returns
``(fig, caption)`` with a caption computed from the data it was given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.ticker import MaxNLocator

from .plots import TRAIN_COLOR, VAL_COLOR
from .progress_measures import fourier_coefficients, key_frequencies, top_k_fraction

MEASURE_STYLE = {  # measure -> (label, colour, linestyle)
    "loss": ("train loss (result token)", TRAIN_COLOR, "-"),
    "restricted_loss": ("restricted loss", "tab:green", "-"),
    "excluded_loss": ("excluded loss", "tab:purple", "--"),
    "top_k_fraction": ("energy in key frequencies", "tab:orange", "-"),
    "gini": ("Gini of the spectrum", "tab:brown", "--"),
}


def _first_at_least(steps, values, bar: float) -> float:
    for s, v in zip(steps, values):
        if v >= bar:
            return float(s)
    return math.nan


def plot_progress(history: dict, progress: pd.DataFrame, keys: list[int], name: str,
                  bar: float = 0.99) -> tuple[plt.Figure, str]:
    """Accuracy curves (top), restricted/excluded loss (middle) and spectrum concentration
    (bottom) of one run against the step (symlog x); a dotted line where A_val first ≥ ``bar``."""
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 7.5), sharex=True)
    steps = history["step"]
    ax = axes[0]
    ax.plot(steps, history["train_acc"], color=TRAIN_COLOR, label="train")
    ax.plot(steps, history["val_acc"], color=VAL_COLOR, label="validation")
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    t_grok = _first_at_least(steps, history["val_acc"], bar)
    for row, measures in ((1, ("loss", "restricted_loss", "excluded_loss")),
                          (2, ("top_k_fraction", "gini"))):
        ax = axes[row]
        for m in measures:
            sub = progress[progress.measure == m].sort_values("step")
            if len(sub):
                label, color, ls = MEASURE_STYLE[m]
                ax.plot(sub.step, sub.value, color=color, ls=ls, marker=".", label=label)
        ax.legend(loc="best", fontsize="small")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("loss")
    axes[2].set_ylabel("fraction / Gini")
    axes[2].set_xlabel("step t")
    axes[2].set_xscale("symlog", linthresh=10)
    for ax in axes:
        if math.isfinite(t_grok):
            ax.axvline(t_grok, color="k", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.tight_layout()

    caption = f"{name}: accuracy and progress measures over training (key frequencies {keys})."
    frac = progress[progress.measure == "top_k_fraction"].sort_values("step")
    if len(frac):
        caption += (f" The energy of the number embeddings in the {len(keys)} key frequencies goes from "
                    f"{frac.value.iloc[0]:.2f} at t = {int(frac.step.iloc[0])} to "
                    f"{frac.value.iloc[-1]:.2f} at t = {int(frac.step.iloc[-1])}.")
    caption += (f" A_val first reaches {bar} at t = {int(t_grok)} (dotted line)." if math.isfinite(t_grok)
                else f" A_val never reaches {bar} in this run.")
    exc = progress[progress.measure == "excluded_loss"].sort_values("step")
    if len(exc):
        rest = progress[progress.measure == "restricted_loss"].sort_values("step")
        caption += (f" Restricted loss {rest.value.iloc[0]:.3g} → {rest.value.iloc[-1]:.3g}, excluded loss "
                    f"{exc.value.iloc[0]:.3g} → {exc.value.iloc[-1]:.3g} (first → last snapshot).")
    return fig, caption


def plot_fourier_heatmaps(embeddings: dict[str, np.ndarray]) -> tuple[plt.Figure, str]:
    """One heatmap per trained model: norm of the number embeddings' Fourier coefficient
    (cos and sin together) per frequency k (rows) and embedding dimension (columns, sorted by
    their dominant frequency). ``embeddings``: name -> E (p, d)."""
    n = len(embeddings)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.2), squeeze=False)
    parts = []
    for ax, (name, E) in zip(axes[0], embeddings.items()):
        C = fourier_coefficients(E).pow(2).sum(1).sqrt().numpy()  # (F, d)
        order = np.lexsort((-C.max(0), C[1:].argmax(0)))  # dims grouped by dominant k >= 1
        im = ax.imshow(C[:, order], aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_xlabel("embedding dimension (sorted by dominant frequency)")
        ax.set_ylabel("frequency k")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        fig.colorbar(im, ax=ax, label="|coefficient|")
        spec = np.sqrt((C**2).sum(1))
        keys = key_frequencies(spec)
        parts.append(f"{name}: key frequencies k = {', '.join(map(str, keys))} hold "
                     f"{top_k_fraction(spec, max(len(keys), 1)):.0%} of the non-constant energy")
    fig.tight_layout()
    return fig, ("Fourier coefficients of the trained number embeddings over Z/pZ, per frequency and "
                 "dimension. " + "; ".join(parts) + ".")


def plot_time_to_grok(frame: pd.DataFrame, label: str = "variant") -> tuple[plt.Figure, str]:
    """Per model, the fraction of seeds that have grokked against the step (an empirical CDF)
    for each value of ``label``; seeds that never grok keep the curve below 1."""
    models = list(dict.fromkeys(frame["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 3.8), squeeze=False, sharey=True)
    colors = plt.get_cmap("tab10")
    parts = []
    for ax, m in zip(axes[0], models):
        sub = frame[frame.model == m]
        T = float(sub["T"].max())
        for i, (v, g) in enumerate(sub.groupby(label, sort=False)):
            s = np.sort(g["step"].to_numpy(float))
            fin = s[np.isfinite(s)]
            x = np.concatenate([[0.0], np.repeat(fin, 2), [T]])
            y = np.concatenate([[0.0], np.repeat(np.arange(len(fin) + 1), 2)[1:-1], [len(fin)]]) / len(s)
            ax.plot(x, y, color=colors(i), label=f"{v} (n = {len(s)})")
            parts.append(f"{m} {v}: {len(fin)}/{len(s)}")
        ax.set_title(m.upper())
        ax.set_xlabel("step t")
        ax.set_xlim(0, T)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    axes[0][0].set_ylabel("fraction of seeds with A_val ≥ 0.99")
    fig.tight_layout()
    return fig, ("Time to grok over seeds: fraction of seeds whose validation accuracy has reached 0.99 "
                 "by step t. Seeds that grok within the budget: " + "; ".join(parts) + ".")
