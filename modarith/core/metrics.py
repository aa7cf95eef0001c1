"""Right-hand-side loss and accuracy, and summary statistics of training histories.

SPEC "Loss and accuracy": RHS(y) = target positions strictly after ``=`` that are not ``PAD``
(the result token and ``EOS``). Loss = mean over samples of the mean NLL over that sample's RHS
tokens; a sample is correct only if every RHS token is the argmax.

StableMax cross-entropy (Prieto et al. 2025, ``loss="stablemax"``): probabilities s(x)/Σs(x)
with s(x) = x + 1 for x ≥ 0 and 1/(1 − x) for x < 0, the loss computed in float64.
:func:`softmax_collapsed`: the same paper's diagnostic, samples whose float32 softmax gives
the correct logit a gradient of exactly 0.

SPEC "Summary statistics": best values over t ≤ T_max (min loss, max accuracy), t_f = first
step reaching the best value, Δt = t_f(val) − t_f(train).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum", "none")
LOSSES = ("softmax", "stablemax", "softmax64")  # output normalisation of the cross-entropy (softmax64: in float64)
_PER_ORDER = re.compile(r"^(train|val)_(loss|acc)_o(\d+)$")


def _check_shapes(logits, targets, eq_positions, mask, sample_weight) -> None:
    """:func:`get_loss_and_accuracy`'s inputs: logits (B, S, V), targets and mask (B, S),
    eq_positions and sample_weight (B,); the error names the tensor and both shapes."""
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, S, V), got {tuple(logits.shape)}")
    if tuple(targets.shape) != tuple(logits.shape[:2]) or tuple(mask.shape) != tuple(targets.shape):
        raise ValueError(
            f"targets and mask must have shape {tuple(logits.shape[:2])} (B, S), got "
            f"{tuple(targets.shape)} and {tuple(mask.shape)}"
        )
    if tuple(eq_positions.shape) != tuple(logits.shape[:1]):
        raise ValueError(
            f"eq_positions must have shape ({logits.shape[0]},), got {tuple(eq_positions.shape)}"
        )
    if sample_weight is not None and tuple(sample_weight.shape) != tuple(logits.shape[:1]):
        raise ValueError(
            f"sample_weight must have shape ({logits.shape[0]},), got {tuple(sample_weight.shape)}"
        )


def get_loss_and_accuracy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    eq_positions: torch.Tensor,
    mask: torch.Tensor,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
    loss: str = "softmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and accuracy on the right-hand side of each equation.

    logits (B, S, V), targets (B, S) int64, eq_positions (B,) int64, mask (B, S) (1 real, 0 PAD).
    reduction: ``"mean"`` (over samples), ``"sum"`` (over samples) or ``"none"`` (per-sample
    tensors of shape (B,)). ``sample_weight`` (B,) float in {0, 1} (e.g. 0 on padding rows of a
    padded batch) turns ``mean`` into the weighted mean and ``sum`` into the weighted sum;
    ``none`` returns the unweighted per-sample values. A sample without RHS tokens has loss 0
    and accuracy 1. Half-precision logits are upcast to float32. ``loss="stablemax"``: the NLL
    of :func:`stablemax_log_probs` (float64 loss; the accuracy is the same, s is increasing);
    ``loss="softmax64"``: the softmax cross-entropy computed in float64 (the paper's
    ``cross_entropy_float64``: the logits upcast, so its gradient does not vanish where float32's does).
    Pure tensor ops, so it works under ``torch.vmap``. Over 60 lines: the three losses and the
    reductions read best side by side.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    _check_shapes(logits, targets, eq_positions, mask, sample_weight)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()

    S = logits.shape[1]
    positions = torch.arange(S, device=logits.device)  # (S,)
    after_eq = positions.unsqueeze(0) > eq_positions.unsqueeze(1)  # (B, S)
    rhs = after_eq.to(logits.dtype) * (mask > 0).to(logits.dtype)  # (B, S)
    n_rhs = rhs.sum(dim=1)  # (B,)

    if loss == "stablemax":
        log_probs = stablemax_log_probs(logits)  # (B, S, V) float64
        rhs, n_rhs = rhs.double(), n_rhs.double()
    elif loss == "softmax64":
        log_probs = F.log_softmax(logits.double(), dim=-1)  # (B, S, V) float64
        rhs, n_rhs = rhs.double(), n_rhs.double()
    else:
        log_probs = F.log_softmax(logits, dim=-1)  # (B, S, V)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, S)
    loss = (nll * rhs).sum(dim=1) / n_rhs.clamp_min(1.0)  # (B,)

    wrong = (logits.argmax(dim=-1) != targets).to(logits.dtype) * rhs  # (B, S)
    acc = (wrong.sum(dim=1) == 0).to(logits.dtype)  # (B,)

    if reduction == "none":
        return loss, acc
    if sample_weight is None:
        if reduction == "mean":
            return loss.mean(), acc.mean()
        return loss.sum(), acc.sum()
    w = sample_weight.to(loss.dtype)  # (B,)
    loss_sum, acc_sum = (loss * w).sum(), (acc * w).sum()
    if reduction == "sum":
        return loss_sum, acc_sum
    denom = w.sum().clamp_min(torch.finfo(logits.dtype).tiny)
    return loss_sum / denom, acc_sum / denom


def stablemax_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log(s(x) / Σ s(x)) over the last axis in float64, s(x) = x + 1 for x ≥ 0 and
    1 / (1 − x) for x < 0 (StableMax, Prieto et al. 2025). Both branches are evaluated on
    clamped inputs, so neither can overflow and the gradient is finite everywhere. float64 as
    its authors compute it: a device without float64 (MPS) refuses StableMax runs before
    training (``modarith.runtime.devices.check_float64``) rather than run them in float32."""
    x = logits.double()
    s = torch.where(x >= 0, x.clamp(min=0) + 1.0, 1.0 / (1.0 - x.clamp(max=0)))
    return torch.log(s / s.sum(dim=-1, keepdim=True))


def softmax_collapsed(logits: torch.Tensor, targets: torch.Tensor, eq_positions: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
    """Per sample (B,), 1.0 where the float32 softmax has collapsed: on every RHS token the
    cross-entropy's gradient on the correct logit, ``exp(log_softmax(x))[target] − 1``, is
    exactly 0 in float32 (the numerical-stability paper's Softmax Collapse), else 0.0.
    Shapes as :func:`get_loss_and_accuracy`; pure tensor ops (vmap)."""
    x = logits.float()
    S = x.shape[1]
    after_eq = torch.arange(S, device=x.device).unsqueeze(0) > eq_positions.unsqueeze(1)  # (B, S)
    rhs = after_eq & (mask > 0)
    p = F.log_softmax(x, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).exp()  # (B, S)
    zero_grad = (p - 1.0) == 0
    return (zero_grad | ~rhs).all(dim=1).to(x.dtype)


def first_window(values, threshold: float, window: int) -> int | None:
    """Index of the first of the first ``window`` consecutive values at or above ``threshold``
    (NaN counts as below), or None. The "grokked" criterion: the study's time to grok and a
    run's stopping rule (``RunConfig.stop_val_acc``) both read it."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window = {window!r} is invalid: expected an integer >= 1 (evaluations)")
    run = 0  # consecutive values at or above the bar, ending at i
    for i, v in enumerate(values):
        run = run + 1 if float(v) >= threshold else 0
        if run == window:
            return i - window + 1
    return None


def best_and_tf(steps, values, mode: str, t_max: float | None = None) -> tuple[float, int | None]:
    """Best value over entries with step ≤ ``t_max`` and the first step reaching it.

    mode ``"min"`` (losses) or ``"max"`` (accuracies); ``t_max=None`` uses every entry.
    NaN values are ignored; if all are NaN the result is ``(nan, None)``.
    Returns plain Python ``(float, int)``.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be one of ('min', 'max'), got {mode!r}")
    steps_a = np.asarray(steps)
    values_a = np.asarray(values, dtype=float)
    if steps_a.shape != values_a.shape or steps_a.ndim != 1:
        raise ValueError(
            f"steps and values must be 1-D of equal length, got shapes {steps_a.shape} "
            f"and {values_a.shape}"
        )
    keep = np.ones(steps_a.shape, dtype=bool) if t_max is None else steps_a <= t_max
    if not keep.any():
        first = steps_a.min() if steps_a.size else "none"
        raise ValueError(f"t_max must be >= the first step ({first}), got {t_max!r}")
    s, v = steps_a[keep], values_a[keep]
    finite = ~np.isnan(v)
    if not finite.any():
        return float("nan"), None
    best = float(np.min(v[finite]) if mode == "min" else np.max(v[finite]))
    t_f = int(s[np.flatnonzero(v == best)[0]])
    return best, t_f


def _dt(t_val, t_train):
    return None if t_val is None or t_train is None else int(t_val - t_train)


def summarize(history: dict[str, list], t_max: float | None = None) -> dict:
    """Summary of one run's history over steps ≤ ``t_max`` (all if None).

    Keys: ``L_train, L_val`` (min loss), ``A_train, A_val`` (max accuracy), ``tf_*`` (first
    step reaching each), ``dt_L = tf_L_val − tf_L_train``, ``dt_A = tf_A_val − tf_A_train``,
    ``final_train_loss, final_val_loss, final_train_acc, final_val_acc`` (and
    ``final_param_norm`` if logged) at the last step ≤ t_max, ``last_step``. Per-order keys such
    as ``train_loss_o2`` add ``L_train_o2``, ``tf_L_train_o2``, ``A_val_o3``, ``final_val_acc_o3``
    …, and ``dt_L_o2``/``dt_A_o2`` when both train and val are present. Plain Python values.
    """
    if "step" not in history:
        raise ValueError(f"history must have a 'step' key, got keys {sorted(history)}")
    steps = np.asarray(history["step"])
    keep = np.ones(steps.shape, dtype=bool) if t_max is None else steps <= t_max
    if not keep.any():
        first = steps.min() if steps.size else "none"
        raise ValueError(f"t_max must be >= the first step ({first}), got {t_max!r}")
    last = int(np.flatnonzero(keep)[-1])

    out: dict = {}
    suffixes = [""]
    for key in history:
        m = _PER_ORDER.match(key)
        if m and f"_o{m.group(3)}" not in suffixes:
            suffixes.append(f"_o{m.group(3)}")

    for suf in suffixes:
        for split in ("train", "val"):
            for metric, letter, mode in (("loss", "L", "min"), ("acc", "A", "max")):
                key = f"{split}_{metric}{suf}"
                if key not in history:
                    continue
                best, tf = best_and_tf(steps, history[key], mode, t_max)
                out[f"{letter}_{split}{suf}"] = best
                out[f"tf_{letter}_{split}{suf}"] = tf
                out[f"final_{key}"] = float(history[key][last])
        for letter in ("L", "A"):
            tv, tt = f"tf_{letter}_val{suf}", f"tf_{letter}_train{suf}"
            if tv in out and tt in out:
                out[f"dt_{letter}{suf}"] = _dt(out[tv], out[tt])
    if "param_norm" in history:
        out["final_param_norm"] = float(history["param_norm"][last])
    out["last_step"] = int(steps[last])
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof = 0) over seeds; one value -> std 0.0.

    ``None`` entries (e.g. an undefined t_f) are dropped; all-None -> ``(nan, nan)``.
    """
    items = list(values)
    if not items:
        raise ValueError("values must hold at least one number, got an empty sequence")
    vals = [float(v) for v in items if v is not None]
    if not vals:
        return math.nan, math.nan
    arr = np.asarray(vals, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=0))


def _nanmin(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return min(finite) if finite else math.nan


def count_collapses(history: dict[str, list], key: str = "train_acc", reached: float = 1.0,
                    below: float = 0.9, t_max: float | None = None) -> dict:
    """Collapses of a metric after it was first fitted: episodes below ``below`` once the
    metric has first reached ``reached`` (by default: training accuracy falling under 0.9
    after it first hit 1.0), over the evaluations with step ≤ ``t_max`` (all if None).

    An episode starts at an evaluation below ``below`` (NaN counts as below) and ends at the
    next evaluation at or above it; consecutive evaluations below are one episode. Returns
    plain Python values: ``collapses`` (the number of episodes), ``episodes`` (a list of
    ``(first step below, first step back or None, lowest value)``), ``first_fit`` (first step
    at ≥ ``reached``, None if never), ``window`` (steps from ``first_fit`` to the last
    evaluation, 0 if never fitted), ``rate_per_1k`` (collapses per 1,000 steps of that window;
    NaN when the window is empty) and ``last_step``.
    """
    for k in ("step", key):
        if k not in history:
            raise ValueError(f"history must have a {k!r} key, got keys {sorted(history)}")
    for name, v in (("reached", reached), ("below", below)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} = {v!r} is invalid: expected a finite number")
    if below > reached:
        raise ValueError(f"below = {below!r} is invalid: expected a number <= reached = {reached!r}")
    steps = np.asarray(history["step"])
    values = np.asarray(history[key], dtype=float)
    if steps.shape != values.shape or steps.ndim != 1:
        raise ValueError(f"history['step'] and history[{key!r}] must be 1-D of equal length, "
                         f"got shapes {steps.shape} and {values.shape}")
    keep = np.ones(steps.shape, dtype=bool) if t_max is None else steps <= t_max
    if not keep.any():
        first = steps.min() if steps.size else "none"
        raise ValueError(f"t_max must be >= the first step ({first}), got {t_max!r}")
    steps, values = steps[keep], values[keep]
    last = int(steps[-1])
    fitted = np.flatnonzero(values >= reached)
    if not fitted.size:
        return {"collapses": 0, "episodes": [], "first_fit": None, "window": 0,
                "rate_per_1k": math.nan, "last_step": last}
    start = int(fitted[0])
    episodes: list[tuple[int, int | None, float]] = []
    low: list[float] = []  # values of the open episode
    open_at = None
    for s, v in zip(steps[start:], values[start:]):
        if math.isnan(v) or v < below:
            open_at = int(s) if open_at is None else open_at
            low.append(float(v))
        elif open_at is not None:
            episodes.append((open_at, int(s), _nanmin(low)))
            open_at, low = None, []
    if open_at is not None:
        episodes.append((open_at, None, _nanmin(low)))
    window = last - int(steps[start])
    rate = 1000.0 * len(episodes) / window if window > 0 else math.nan
    return {"collapses": len(episodes), "episodes": episodes, "first_fit": int(steps[start]),
            "window": window, "rate_per_1k": rate, "last_step": last}
