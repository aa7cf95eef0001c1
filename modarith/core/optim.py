"""Optimizer steps as pure functions on a group's stacked ``(K, P)`` tensors.

Each function updates K independent runs at once, with per-run hyper-parameters given as
``(K, 1)`` columns, and equals its single-run reference applied run by run
(``tests/test_optim.py``):

- :func:`clip_` = ``torch.nn.utils.clip_grad_norm_`` (a run with ``max_norm`` 0 is not clipped);
- :func:`adamw_` = ``torch.optim.AdamW``; :func:`coupled_l2_` then :func:`adamw_` with zero
  decoupled decay = ``torch.optim.Adam(weight_decay=...)`` (coupled L2, ``g + wd·θ``);
- :func:`warmup_factor` = the Grokfast paper's ``LambdaLR(lambda u: 1 if u > W else u / W)``;
- :func:`grokfast_ema_` = Grokfast's ``gradfilter_ema``, :func:`grokfast_ma_` = its
  ``gradfilter_ma`` (mean filter, ``warmup=True``) (Lee et al. 2024);
- :func:`orthograd_` = ⊥Grad (Prieto et al. 2025): per parameter tensor, the gradient minus its
  projection on the weights, rescaled to the gradient's norm.

The group trainer (:mod:`modarith.runtime.group`) owns the state tensors; these functions only compute.
The order of one update is written once, at :func:`update_`.
"""

from __future__ import annotations

import math

import torch


def clip_(g: torch.Tensor, max_norm: torch.Tensor) -> torch.Tensor:
    """Clip each run's gradient ``g`` (K, P) to ℓ2 norm ``max_norm`` (K, 1), in place, as
    ``clip_grad_norm_`` does (scale ``max_norm / (‖g‖ + 1e-6)`` when below 1); a run with
    ``max_norm`` 0 is left unclipped (``RunConfig.clip_norm = 0``: off). Returns ``g``."""
    gnorm = torch.linalg.vector_norm(g, dim=1, keepdim=True)  # (K, 1)
    scale = (max_norm / (gnorm + 1e-6)).clamp(max=1.0)
    return g.mul_(torch.where(max_norm > 0, scale, torch.ones_like(scale)))  # 0: no clipping


def adamw_(flat: torch.Tensor, g: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
           step: int, lr: torch.Tensor, weight_decay: torch.Tensor, beta1: float, beta2: float,
           eps: float) -> None:
    """One AdamW update of every run, in place: decoupled weight decay, bias-corrected moments.

    ``flat``, ``g``, ``exp_avg``, ``exp_avg_sq``: (K, P); ``lr``, ``weight_decay``: (K, 1);
    ``step``: the update's number, counting from 1 (bias corrections)."""
    flat.mul_(1.0 - lr * weight_decay)
    exp_avg.lerp_(g, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    bc1 = 1.0 - beta1**step
    bc2_sqrt = math.sqrt(1.0 - beta2**step)
    denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
    flat.sub_(exp_avg / denom * (lr / bc1))


def grokfast_ema_(g: torch.Tensor, ema: torch.Tensor, first: bool, alpha: torch.Tensor,
                  lamb: torch.Tensor) -> torch.Tensor:
    """Grokfast-EMA filter of every run: ``ema ← α·ema + (1−α)·g`` (``ema = g`` at the first
    update, ``first``), in place; returns the filtered gradient ``g + λ·ema``.

    ``g``, ``ema``: (K, P); ``alpha``, ``lamb``: (K, 1). A run with λ = 0 gets ``g`` back."""
    if first:
        ema.copy_(g)
    else:
        ema.mul_(alpha).add_((1.0 - alpha) * g)
    return g + lamb * ema


def coupled_l2_(g: torch.Tensor, flat: torch.Tensor, l2: torch.Tensor) -> torch.Tensor:
    """Coupled L2 weight decay, in place: ``g ← g + l2·θ`` (``torch.optim.Adam``'s
    ``weight_decay``, added to the gradient before the moments). ``l2``: (K, 1), 0 for runs
    with decoupled (AdamW) decay. Returns ``g``."""
    return g.add_(l2 * flat)


def warmup_factor(update: int, warmup: torch.Tensor) -> torch.Tensor:
    """Linear learning-rate warm-up factor of update number ``update`` (0-based) for each run:
    ``min(update / W, 1)``, 1 when ``W`` = 0 (no warm-up). ``warmup``: (K, 1) numbers of steps.

    It is the Grokfast paper's ``LambdaLR(opt, lambda u: 1 if u > W else u / W)``: the first
    update has learning rate 0, update W + 1 the full rate. Computed in ``warmup``'s own float
    dtype (float32 for integers), so a device without float64 (Apple's MPS) runs it: one correctly
    rounded division, whose float32 bits equal the float64 quotient's rounded to float32
    (``tests/test_float64.py``)."""
    w = warmup.to(warmup.dtype if warmup.is_floating_point() else torch.float32)
    return torch.where(w > 0, (torch.full_like(w, float(update)) / w.clamp(min=1.0)).clamp(max=1.0),
                       torch.ones_like(w))


def grokfast_ma_(g: torch.Tensor, window_buf: torch.Tensor, window_sum: torch.Tensor, n_seen: int,
                 window: torch.Tensor, lamb: torch.Tensor) -> torch.Tensor:
    """Grokfast-MA filter of every run (``gradfilter_ma``, mean filter, ``warmup=True``):
    keep the last ``w`` gradients; once ``w`` of them are in the window, return
    ``g + λ·mean(window)`` (the window includes ``g``), before that ``g`` unchanged.

    ``g`` (K, P); ``window_buf`` (W, K, P), W ≥ the largest window of the group: run k keeps
    its gradient of update t in slot ``t % w_k`` (so its first w_k slots are its own state,
    whatever the group); ``window_sum`` (K, P) float64 running sum of each run's window (the
    mean is that sum / w, exact up to the float64 rounding of the running sum); ``n_seen``:
    gradients pushed before this one (the update's 0-based number); ``window`` (K, 1)
    integers ≥ 1 (runs with λ = 0 get ``g`` back whatever their window); ``lamb`` (K, 1).
    Updates the buffer and the sum in place; returns the filtered gradient."""
    K = g.shape[0]
    w = window.to(torch.long).clamp(min=1).squeeze(1)  # (K,)
    t = n_seen
    slot, runs = t % w, torch.arange(K, device=g.device)  # (K,) each
    old = window_buf[slot, runs]  # (K, P): the gradient of update t − w_k (zeros before)
    window_sum.sub_(torch.where((t - w >= 0)[:, None], old, torch.zeros_like(old)).double())
    window_buf[slot, runs] = g
    window_sum.add_(g.double())
    full = (t + 1 >= w)[:, None] & (lamb > 0)  # (K, 1)
    avg = (window_sum / w[:, None].to(torch.float64)).to(g.dtype)
    return torch.where(full, g + (lamb * avg).to(g.dtype), g)


def tensor_segments(sizes: list[int], device: torch.device | str | None = None) -> torch.Tensor:
    """Index of the parameter tensor each of the P flat coordinates belongs to: (P,) int64,
    from the tensors' sizes in flattening order (``sum(sizes)`` = P)."""
    sizes_t = torch.as_tensor(list(sizes), dtype=torch.long)
    if sizes_t.dim() != 1 or (sizes_t < 1).any():
        raise ValueError(f"sizes = {list(sizes)!r} is invalid: expected a list of integers >= 1")
    return torch.repeat_interleave(torch.arange(len(sizes_t)), sizes_t).to(device)


def orthograd_(g: torch.Tensor, flat: torch.Tensor, segments: torch.Tensor, on: torch.Tensor,
               eps: float = 1e-30) -> torch.Tensor:
    """⊥Grad of every run, in place, per parameter tensor (Prieto et al. 2025, ``OrthoGrad``):
    ``g⊥ = g − (⟨w, g⟩ / (⟨w, w⟩ + eps))·w``, then ``g⊥ · ‖g‖ / (‖g⊥‖ + eps)``, with w, g one
    tensor's weights and gradient.

    ``g``, ``flat``: (K, P); ``segments``: (P,) tensor index of each coordinate
    (:func:`tensor_segments`); ``on``: (K, 1) bool, the runs to project (the others keep
    ``g``). Returns ``g``."""
    def per_tensor(x):  # (K, P) -> (K, P): column j < n holds tensor j's sum (no host read of n)
        return torch.zeros_like(x).index_add_(1, segments, x)

    ww, wg, gg = per_tensor(flat * flat), per_tensor(flat * g), per_tensor(g * g)
    proj = (wg / (ww + eps))[:, segments]  # (K, P)
    g_orth = g - proj * flat
    scale = (gg.sqrt() / (per_tensor(g_orth * g_orth).sqrt() + eps))[:, segments]
    return g.copy_(torch.where(on, g_orth * scale, g))


# ---- one whole update of a group, from its configs ------------------------------------------------
def hyper_columns(configs, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Per-run hyper-parameters of a group's :class:`~modarith.models.config.RunConfig` s as (K, 1)
    columns for :func:`update_`: ``lr, weight_decay`` (decoupled, AdamW runs), ``l2`` (coupled,
    Adam runs), ``clip`` (0: off), ``warmup``, ``ema_alpha, ema_lamb`` (Grokfast-EMA),
    ``ma_window, ma_lamb`` (Grokfast-MA), ``orthograd`` (bool)."""
    def col(values, dtype=torch.float32):
        return torch.tensor(list(values), dtype=dtype, device=device)[:, None]

    adam = [c.optimizer == "adam" for c in configs]
    return {"lr": col(c.lr for c in configs),
            "weight_decay": col(0.0 if a else c.weight_decay for a, c in zip(adam, configs)),
            "l2": col(c.weight_decay if a else 0.0 for a, c in zip(adam, configs)),
            "clip": col(c.clip_norm for c in configs), "warmup": col(c.warmup_steps for c in configs),
            "ema_alpha": col(c.grokfast_alpha for c in configs),
            "ema_lamb": col(c.grokfast_lamb if c.grokfast else 0.0 for c in configs),
            "ma_window": col(max(c.grokfast_window, 1) for c in configs),
            "ma_lamb": col(c.grokfast_lamb if c.grokfast_ma else 0.0 for c in configs),
            "orthograd": col((c.orthograd for c in configs), torch.bool)}


def optimizer_state(configs, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Zero optimizer state of a group (K, P) for :func:`update_`: Adam's moments, and only
    when a run uses them the Grokfast-EMA average and the Grokfast-MA window (W, K, P) with its
    float64 running sum (W = the group's largest window)."""
    state = {"exp_avg": torch.zeros_like(flat), "exp_avg_sq": torch.zeros_like(flat)}
    if any(c.grokfast for c in configs):
        state["grad_ema"] = torch.zeros_like(flat)
    W = max((c.grokfast_window for c in configs), default=0)
    if W:
        state["ma_window"] = torch.zeros(W, *flat.shape, dtype=flat.dtype, device=flat.device)
        state["ma_sum"] = torch.zeros_like(flat, dtype=torch.float64)
    return state


@torch.no_grad()
def update_(flat: torch.Tensor, g: torch.Tensor, state: dict[str, torch.Tensor], cols: dict[str, torch.Tensor],
            step: int, segments: torch.Tensor | None, beta1: float, beta2: float, eps: float) -> None:
    """One update of every run of a group, in place (``step``: updates done before this one), in
    this order: gradient → Grokfast-EMA / -MA → clip → ⊥Grad → coupled L2 → Adam(W) at
    ``lr · warmup_factor``.

    ``state``: :func:`optimizer_state`; ``cols``: :func:`hyper_columns`; ``segments``:
    :func:`tensor_segments` of the model's parameters when a run uses ⊥Grad, else None."""
    if "grad_ema" in state:
        g = grokfast_ema_(g, state["grad_ema"], step == 0, cols["ema_alpha"], cols["ema_lamb"])
    if "ma_window" in state:
        g = grokfast_ma_(g, state["ma_window"], state["ma_sum"], step, cols["ma_window"], cols["ma_lamb"])
    clip_(g, cols["clip"])
    if segments is not None:  # a run of the group uses ⊥Grad (decided on the host: no device read)
        orthograd_(g, flat, segments, cols["orthograd"])
    coupled_l2_(g, flat, cols["l2"])
    adamw_(flat, g, state["exp_avg"], state["exp_avg_sq"], step + 1, cols["lr"] * warmup_factor(step, cols["warmup"]),
           cols["weight_decay"], beta1, beta2, eps)
