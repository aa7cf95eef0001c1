"""Optimizer steps as pure functions on a group's stacked ``(K, P)`` tensors.

Each function updates K independent runs at once, with per-run hyper-parameters given as
``(K, 1)`` columns, and equals its single-run reference applied run by run
(``tests/test_optim.py``): :func:`clip_` = ``torch.nn.utils.clip_grad_norm_``, :func:`adamw_` =
``torch.optim.AdamW``, :func:`grokfast_ema_` = Grokfast's ``gradfilter_ema`` (Lee et al. 2024).
The group trainer (:mod:`modarith.group`) owns the state tensors; these functions only compute.
"""

from __future__ import annotations

import math

import torch


def clip_(g: torch.Tensor, max_norm: torch.Tensor) -> torch.Tensor:
    """Clip each run's gradient ``g`` (K, P) to ℓ2 norm ``max_norm`` (K, 1), in place, as
    ``clip_grad_norm_`` does (scale ``max_norm / (‖g‖ + 1e-6)`` when below 1). Returns ``g``."""
    gnorm = torch.linalg.vector_norm(g, dim=1, keepdim=True)  # (K, 1)
    return g.mul_((max_norm / (gnorm + 1e-6)).clamp(max=1.0))


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
