"""Figures of the progress measures (:mod:`modarith.study.progress_measures`) and of time to grok
(Kaplan–Meier curves of arms). Like
:mod:`modarith.plotting.plots`, every ``plot_*`` function returns ``(fig, caption)`` with a caption
computed from the data it was given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.ticker import MaxNLocator

from modarith.plotting.style import TRAIN_COLOR, VAL_COLOR
from modarith.study.progress_measures import fourier_coefficients, key_frequencies, top_k_fraction
from modarith.study.survival import competing_incidence, fmt_steps, km_curve, km_median

MEASURE_STYLE = {  # measure -> (label, colour, linestyle)
    "loss": ("train loss (result token)", TRAIN_COLOR, "-"),
    "restricted_loss": ("restricted loss", "tab:green", "-"),
    "excluded_loss": ("excluded loss", "tab:purple", "--"),
    "top_k_fraction": ("energy in key frequencies", "tab:orange", "-"),
    "gini": ("Gini of the spectrum", "tab:brown", "--"),
    "restricted_loss_null": ("restricted loss, random non-key frequencies (null)", "tab:green", ":"),
    "excluded_loss_null": ("excluded loss, random non-key frequencies (null)", "tab:purple", ":"),
    "restricted_loss_all": ("restricted loss, every frequency (ceiling)", "tab:gray", "-."),
    "logit_key_fraction": ("logit energy in key frequencies", "tab:red", "-"),
}


def _first_at_least(steps, values, bar: float) -> float:
    for s, v in zip(steps, values):
        if v >= bar:
            return float(s)
    return math.nan


def plot_progress(history: dict, progress: pd.DataFrame, keys: list[int], name: str,
                  bar: float = 0.99) -> tuple[plt.Figure, str]:
    """Accuracy curves (top), restricted/excluded loss beside their random-key null (middle)
    and spectrum concentration (bottom) of one run against the step (linear x from 0); a
    dotted line where A_val first ≥ ``bar``."""
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 7.5), sharex=True)
    steps = history["step"]
    ax = axes[0]
    ax.plot(steps, history["train_acc"], color=TRAIN_COLOR, label="train")
    ax.plot(steps, history["val_acc"], color=VAL_COLOR, label="validation")
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    t_grok = _first_at_least(steps, history["val_acc"], bar)
    for row, measures in ((1, ("loss", "restricted_loss", "excluded_loss", "restricted_loss_null",
                               "excluded_loss_null", "restricted_loss_all")),
                          (2, ("logit_key_fraction", "top_k_fraction", "gini"))):
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
    axes[2].set_xlim(0, max(steps))
    for ax in axes:
        if math.isfinite(t_grok):
            ax.axvline(t_grok, color="k", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.tight_layout()

    caption = (f"{name}: accuracy and progress measures over training ({len(keys)} key frequencies, "
               f"chosen from the last snapshot's logits: {keys}; dotted: the median over sets of "
               f"as many random frequencies drawn from the other frequencies; dash-dotted: the restricted "
               f"loss with every frequency of a ∘ b, the ceiling). The result logits are projected, not neurons.")
    frac = progress[progress.measure == "top_k_fraction"].sort_values("step")
    lk = progress[progress.measure == "logit_key_fraction"].sort_values("step")
    if len(lk):
        caption += (f" The logits' a ∘ b energy in the keys goes from {lk.value.iloc[0]:.2f} to "
                    f"{lk.value.iloc[-1]:.2f}.")
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
        rn = progress[progress.measure == "restricted_loss_null"].sort_values("step")
        en = progress[progress.measure == "excluded_loss_null"].sort_values("step")
        if len(rn) and len(en):
            caption += (f" With random keys instead: restricted {rn.value.iloc[-1]:.3g}, excluded "
                        f"{en.value.iloc[-1]:.3g} at the last snapshot.")
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


def plot_km_arms(frame: pd.DataFrame, panels: dict[str, list[str]], threshold: float, window: int | None,
                 level: float = 0.95) -> tuple[plt.Figure, str]:
    """One panel per entry of ``panels`` (title -> arm names of ``frame``, one row per run with
    ``arm, time, observed, T``): the Kaplan–Meier
    fraction of seeds grokked by step t for each arm, with its band; runs that never grok are
    censored at T, so a curve below 1 at T means censored runs, not an infinite time."""

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 3.6), squeeze=False, sharey=True)
    colors = plt.get_cmap("tab10")
    parts = []
    T = float(frame["T"].max())
    for ax, (title, arms) in zip(axes[0], panels.items()):
        for i, arm in enumerate(arms):
            f = frame[frame.arm == arm]
            if f.empty:
                raise ValueError(f"arm {arm!r} has no runs in the frame (arms: {sorted(set(frame.arm))})")
            c = km_curve(f["time"], f["observed"], level)
            x = np.append(c.step.to_numpy(), T)
            ax.step(x, np.append(c.grokked.to_numpy(), c.grokked.iloc[-1]), where="post", color=colors(i),
                    label=arm)
            ax.fill_between(x, np.append(c.low.to_numpy(), c.low.iloc[-1]),
                            np.append(c.high.to_numpy(), c.high.iloc[-1]), step="post", color=colors(i),
                            alpha=0.12, lw=0)
            m = km_median(f["time"], f["observed"], level)
            parts.append(f"{arm}: {m['n_grokked']}/{m['n']} grokked, median {fmt_steps(m['median'])}")
        ax.set_title(title, fontsize="medium")
        ax.set_xlim(0, T)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="x-small")
    axes[0, 0].set_ylabel("fraction grokked (KM)")
    fig.tight_layout()
    held = f"held for {window} consecutive evaluations" if window else "staying there to the end"
    return fig, (f"Time to grok (A_val ≥ {threshold:g} {held}; the time is the first step of that window), "
                 f"Kaplan–Meier estimate of the fraction of seeds grokked by step t with its {level:.0%} band; "
                 f"runs that never grok are censored at T = {fmt_steps(T)}. " + "; ".join(parts) + ".")


def plot_time_law(table: pd.DataFrame, alpha_star: float | None = None) -> tuple[plt.Figure, str]:
    """Per arm of :func:`modarith.study.grok.arm_table` (``init_scale, el, median_el, el_low,
    el_high``): the median time to grok in units of 1/(η·λ), t·η·λ, against ln α, one line per η·λ,
    with its interval; the prediction ``t·η·λ = c + ln(α/α*)`` for α > α* (slope 1, anchored at
    the smallest η·λ's median at the largest α ≤ α*) dashed. Medians not reached are not drawn."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    cmap = plt.get_cmap("viridis")
    els = sorted(table["el"].unique())
    parts = []
    for i, el in enumerate(els):
        t = table[table["el"] == el].sort_values("init_scale")
        ok = np.isfinite(t["median_el"].to_numpy())
        x = np.log(t["init_scale"].to_numpy())
        color = cmap(i / max(len(els) - 1, 1))
        lo = np.where(np.isfinite(t["el_low"]), t["el_low"], np.nan)
        hi = np.where(np.isfinite(t["el_high"]), t["el_high"], np.nan)
        ax.errorbar(x[ok], t["median_el"].to_numpy()[ok],
                    yerr=[np.nan_to_num(t["median_el"].to_numpy()[ok] - lo[ok]),
                          np.nan_to_num(hi[ok] - t["median_el"].to_numpy()[ok])],
                    marker="o", ms=4, capsize=2, color=color, label=f"η·λ = {el:.3g}")
        parts.append(f"η·λ {el:.3g}: {int(ok.sum())} of {len(t)} medians reached")
    if alpha_star is not None and alpha_star > 0:
        grid = np.linspace(max(np.log(alpha_star), 0.0), np.log(table["init_scale"].max()), 20)
        base = table[(table["el"] == els[0]) & (table["init_scale"] <= max(alpha_star, table["init_scale"].min()))]
        c = float(base["median_el"].replace(np.inf, np.nan).dropna().iloc[-1]) if base["median_el"].apply(
            np.isfinite).any() else None
        if c is not None:
            ax.plot(grid, c + grid - grid[0], "k--", lw=1, label="prediction: slope 1 above α*")
    ax.set_xlabel("ln α (initial scale)")
    ax.set_ylabel("median t·η·λ")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig, ("Median time to grok in units of 1/(η·λ) (Kaplan–Meier, runs ended by instability or never "
                 "fitting censored at their time; bars: 95 % interval, open where a bound is not reached) "
                 "against ln α. The law t ≈ ln α/(η·λ) is slope 1 and curves that coincide. " + "; ".join(parts) + ".")


def plot_competing(frame: pd.DataFrame, events: tuple[str, ...], by: str = "init_scale",
                   level: float = 0.95) -> tuple[plt.Figure, str]:
    """Cumulative incidence (Aalen–Johansen, :func:`modarith.study.survival.competing_incidence`) of
    each event of ``events`` (outcome names, in event order 1, 2, …) against t·η·λ, one panel per
    event, one line per value of ``by``; ``frame``: :func:`modarith.study.grok.outcome_frame`."""
    fig, axes = plt.subplots(1, len(events), figsize=(4.4 * len(events), 3.4), squeeze=False, sharey=True)
    values = sorted(frame[by].unique())
    cmap = plt.get_cmap("plasma")
    for ax, (k, name) in zip(axes[0], enumerate(events, 1)):
        for i, v in enumerate(values):
            f = frame[frame[by] == v]
            c = competing_incidence(f["time_el"], f["event"], k, level)
            ax.step(c["step"], c["incidence"], where="post", color=cmap(i / max(len(values), 1)), label=f"{by} {v:g}")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("t·η·λ")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("cumulative incidence")
    axes[0, 0].legend(fontsize="x-small")
    fig.tight_layout()
    counts = "; ".join(f"{name}: {int((frame['outcome'] == name).sum())} runs" for name in events)
    return fig, (f"Competing risks over all η·λ arms pooled per {by}: the fraction of runs ended by each event by "
                 f"time t·η·λ (Aalen–Johansen; a run ended by one event cannot have another: not censoring). "
                 f"{counts} of {len(frame)}.")


def plot_arm_curves(frame: pd.DataFrame, panels: dict[str, list[str]], label: str,
                    logx: bool = False) -> tuple[plt.Figure, str]:
    """One panel per entry of ``panels`` (title -> arm names): for each arm the median over its
    seeds of a logged value against the step, with the band from the smallest to the largest
    seed. ``frame``: one row per run and evaluation, columns ``arm, seed, step, value``;
    ``label``: what the value is (axis and caption)."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 3.4), squeeze=False)
    colors = plt.get_cmap("tab10")
    parts = []
    for ax, (title, arms) in zip(axes[0], panels.items()):
        for i, arm in enumerate(arms):
            f = frame[frame.arm == arm]
            if f.empty:
                raise ValueError(f"arm {arm!r} has no rows in the frame (arms: {sorted(set(frame.arm))})")
            g = f.groupby("step")["value"]
            med, lo, hi = g.median(), g.min(), g.max()
            ax.plot(med.index, med.to_numpy(), color=colors(i), label=arm)
            ax.fill_between(med.index, lo.to_numpy(), hi.to_numpy(), color=colors(i), alpha=0.15, lw=0)
            last = f[f.step == f.step.max()]["value"]
            parts.append(f"{arm}: median {last.median():.2g} at step {fmt_steps(f.step.max())} "
                         f"({f.seed.nunique()} seeds)")
        if logx:
            ax.set_xscale("symlog", linthresh=100)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="x-small")
    axes[0, 0].set_ylabel(label)
    fig.tight_layout()
    return fig, (f"{label[0].upper()}{label[1:]} over training: the median over seeds, band from the smallest "
                 "to the largest seed. " + "; ".join(parts) + ".")
