"""Training engine: a list of run configs in, a list of records out.

Runs that share an architecture, batch size and schedule train together as one *group*:
their parameters are stacked into one flat tensor ``(K, P)``. The forward pass runs all K runs
at once through :mod:`modarith.fast` (fused kernels, positions with a shared prefix computed
once per distinct prefix, logits only on the right-hand side; ``GroupTrainer(fast=False)``
runs the reference modules under ``torch.vmap`` instead), one autograd backward gives every
run its gradient, and AdamW + gradient clipping are applied per run with per-run learning
rate and weight decay. Data, splits, batch indices and the metrics history stay on the
device; the host only reads the history at the end (and at checkpoints / progress-bar
updates, every ``eval_every`` steps).

A group of one is the simple case; a group of K gives the same numbers as K groups of one
(up to float rounding of batched matmuls) — ``tests/test_engine.py`` checks it.
"""

from __future__ import annotations

import gc
import hashlib
import math
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from . import __version__
from . import fast as fast_path
from .config import RunConfig, run_id
from .data import make_dataset, split_indices
from .events import writer as progress_writer
from .metrics import get_loss_and_accuracy, summarize
from .store import CorruptRecord, Record, Store, atomic_torch_save, safe_torch_load

DEVICES = ("auto", "cpu", "cuda", "mps")
CHECKPOINT_FORMAT = 2  # layout of GroupTrainer.state(); older checkpoints are moved aside
# Time-based checkpoint cadence (s). Each save also pushes the next one to >= 50x its own
# duration, so checkpoints cost < 2 % of the run time whatever the model and disk. Measured
# (benchmarks/checkpoint_cost.py, 2-core CPU): GPT d=128 K=2, 9 MiB, 20 ms per save -> 0.03 %;
# GPT d=128 K=8, 37 MiB, 85 ms -> 0.14 %; LSTM d=128 K=8, 25 MiB, 130 ms -> 0.22 %.
CHECKPOINT_INTERVAL_S = 60.0
CHECKPOINT_COST_FACTOR = 50.0  # the next save waits >= this many times the last save's duration


# ---------------------------------------------------------------------------------------------
# devices, models, grouping
# ---------------------------------------------------------------------------------------------
def resolve_device(device: str = "auto") -> str:
    """'auto' -> cuda, then mps, then cpu. Unknown or unavailable devices raise ValueError."""
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ValueError(f"device = {device!r} is invalid: expected one of {DEVICES}")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device = {device!r} is not available on this machine: use 'cpu' or 'auto'")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device = 'mps' is not available on this machine: use 'cpu' or 'auto'")
    return device


def build_model(config: RunConfig) -> nn.Module:
    """The model a config describes, freshly initialised from the global RNG."""
    from .models import GPT, LSTMLM

    pad = config.p + 4  # PAD is the last token of the vocabulary
    if config.model == "gpt":
        return GPT(num_heads=config.num_heads, num_layers=config.num_layers,
                   embedding_size=config.d_model, vocabulary_size=config.vocab_size,
                   sequence_length=config.seq_len, multiplier=config.multiplier,
                   dropout=config.dropout, non_linearity=config.non_linearity, padding_index=pad)
    return LSTMLM(vocabulary_size=config.vocab_size, embedding_size=config.d_model,
                  hidden_size=config.d_model, num_layers=config.num_layers,
                  dropout=config.dropout, padding_index=pad)


def init_model(config: RunConfig) -> nn.Module:
    """``build_model`` with the initialisation seeded by ``config.seed`` (device independent)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(config)


# Fields that may differ between runs of one vectorised group; everything else must match.
PER_RUN_FIELDS = ("seed", "r_train", "lr", "weight_decay", "clip_norm", "steps", "grokfast_alpha",
                  "grokfast_lamb")


def group_key(config: RunConfig) -> tuple:
    """Runs with equal keys train together (same architecture, batch size and schedule)."""
    d = config.to_dict()
    for f in PER_RUN_FIELDS:
        d.pop(f)
    d["orders"] = tuple(d["orders"])
    return tuple(sorted(d.items())) + (("total_steps", config.total_steps),)


def group_configs(configs: list[RunConfig], max_group_size: int | None = None) -> list[list[RunConfig]]:
    """Partition configs into vectorised groups (order preserved, chunks of max_group_size)."""
    groups: dict[tuple, list[RunConfig]] = {}
    for c in configs:
        groups.setdefault(group_key(c), []).append(c)
    out = []
    for g in groups.values():
        n = max_group_size or len(g)
        out.extend(g[i:i + n] for i in range(0, len(g), n))
    return out


@lru_cache(maxsize=1)
def code_version() -> str:
    """Library version plus the git commit of the source tree when available."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except Exception:
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__


# ---------------------------------------------------------------------------------------------
# one vectorised group
# ---------------------------------------------------------------------------------------------
@dataclass
class _Flat:
    """Layout of a model's parameters inside one flat vector."""

    names: list[str]
    shapes: list[torch.Size]
    sizes: list[int]

    @classmethod
    def of(cls, model: nn.Module) -> _Flat:
        named = list(model.named_parameters())
        return cls([n for n, _ in named], [p.shape for _, p in named], [p.numel() for _, p in named])

    def flatten(self, model: nn.Module) -> torch.Tensor:
        params = dict(model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        # split (one cat in backward), then view each chunk in its shape
        chunks = torch.split(flat, self.sizes, dim=-1)
        return {n: c.view(*c.shape[:-1], *s) for n, c, s in zip(self.names, chunks, self.shapes)}


def _shuffle_perm(seed: int, epoch: int, n: int) -> torch.Tensor:
    """Permutation of the training set for (run seed, epoch): a pure function, so resumed or
    regrouped runs draw exactly the same batches."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63 - 1))
    return torch.randperm(n, generator=g)


class GroupTrainer:
    """Trains K configs that share a :func:`group_key` as one vectorised computation."""

    def __init__(self, configs: list[RunConfig], device: str = "cpu", fast: bool = True):
        keys = {group_key(c) for c in configs}
        if len(keys) != 1:
            raise ValueError("GroupTrainer needs configs with one group_key; use group_configs()")
        self.configs = configs
        self.device = device = torch.device(device)
        c0 = configs[0]
        self.K = K = len(configs)
        self.T = c0.total_steps
        self.eval_steps = c0.eval_steps()
        self.run_ids = [run_id(c) for c in configs]

        # ---- data: one dataset, K splits, everything resident on the device ----------------
        ds = make_dataset(c0.p, c0.operator, c0.orders)
        self.X = ds.source.to(device)  # (N, S)
        self.Y = ds.target.to(device)  # (N, S)
        self.EQ = ds.eq_positions.to(device)  # (N,)
        self.M = ds.mask.to(device)  # (N, S)
        N = len(ds)
        self.train_idx = []
        train_mask = torch.zeros(K, N)
        for k, c in enumerate(configs):
            tr, _ = split_indices(ds, c.r_train, c.seed)
            assert len(tr) == c.n_train, (len(tr), c.n_train)
            self.train_idx.append(tr)
            train_mask[k, tr] = 1.0
        self.train_mask = train_mask.to(device)  # (K, N)
        self.val_mask = (1.0 - train_mask).to(device)  # (K, N)
        self.metric_names = ["train_loss", "train_acc", "val_loss", "val_acc"]
        order_masks = []
        if len(c0.orders) > 1:
            for o in c0.orders:
                om = (ds.orders == o).float().to(device)
                order_masks.append(om)
                self.metric_names += [f"train_loss_o{o}", f"train_acc_o{o}",
                                      f"val_loss_o{o}", f"val_acc_o{o}"]
        self.order_masks = order_masks
        # the loss reads only the RHS: R positions right after '=' (2: the result and EOS);
        # the models compute their last block / classifier only there (rhs_only=False: all S)
        S = self.Y.shape[1]
        after_eq = torch.arange(S, device=device) > self.EQ[:, None]  # (N, S)
        R = int((after_eq & (self.M > 0)).sum(1).max())
        self._rhs_offsets = torch.arange(1, R + 1, device=device)  # (R,)
        self.rhs_only = True
        self._eval_rhs = self._rhs(self.EQ, self.Y, self.M)
        self.metric_names.append("param_norm")
        # fast path (modarith.fast): fused K-batched forwards with shared prefixes; ``fast=False``
        # runs the reference modules under vmap (same numbers up to float rounding)
        self.fast = fast
        row_start_max = int(self.EQ.min()) + 1  # the rows compute every RHS position themselves
        self._plan_eval = fast_path.make_plan(ds.source, N, row_start_max).to(device)
        self._plan_train = fast_path.make_plan(ds.source, min(c0.batch_size, N), row_start_max,
                                               share=c0.dropout == 0).to(device)

        # ---- batches: full batch when N_train <= B (static), else per-epoch reshuffles ------
        B = c0.batch_size
        self.spe = [c.steps_per_epoch for c in configs]
        self.full_batch = all(s == 1 for s in self.spe)
        self.Bmax = min(B, max(c.n_train for c in configs))
        if self.full_batch:
            idx = torch.zeros(K, self.Bmax, dtype=torch.long)
            w = torch.zeros(K, self.Bmax)
            for k, tr in enumerate(self.train_idx):
                idx[k, : len(tr)] = tr
                w[k, : len(tr)] = 1.0
            self._static_batch = self._gather(idx.to(device), w.to(device))
        self._perm_cache: dict[int, tuple[int, torch.Tensor]] = {}

        # ---- parameters: K models (seeded init on the CPU), stacked into (K, P) -------------
        models = [init_model(c) for c in configs]
        self.template = models[0].to(device)
        self.layout = _Flat.of(self.template)
        self.flat = torch.stack([self.layout.flatten(m) for m in models]).to(device)  # (K, P)
        self.buffers = {n: b for n, b in self.template.named_buffers()}
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.step = 0
        col = lambda f: torch.tensor([float(getattr(c, f)) for c in configs], device=device)[:, None]  # noqa: E731
        self.lr, self.wd, self.clip = col("lr"), col("weight_decay"), col("clip_norm")
        self.beta1, self.beta2, self.eps = c0.beta1, c0.beta2, c0.eps
        # Grokfast-EMA (only when a run of the group asks for it; λ = 0 runs get g + 0·ema = g)
        self.grad_ema = torch.zeros_like(self.flat) if any(c.grokfast for c in configs) else None
        self.gf_alpha, self.gf_lamb = col("grokfast_alpha"), col("grokfast_lamb")
        # weight snapshots (group-wide schedule; empty when off): steps and (K, P) CPU copies
        self.snapshot_steps = c0.snapshot_steps()
        self._snapshot_set = frozenset(self.snapshot_steps)
        self.snapshots: list[torch.Tensor] = []
        self.hist = torch.full((K, len(self.eval_steps), len(self.metric_names)), float("nan"),
                               device=device)
        self.n_evals_done = 0
        self.autocast = c0.precision == "bf16"
        randomness = "different" if c0.dropout > 0 else "error"
        # vmap the forward only; one ordinary autograd backward through the batched graph gives
        # every run its own gradient (runs are independent) — 1.2× faster than vmap(grad(...))
        # on the CPU, bit-identical gradients (benchmarks/NOTES.md).
        self._vloss = torch.vmap(self._loss, randomness=randomness)
        self._veval = torch.vmap(self._eval_one, in_dims=(0, 0, 0))
        self._vloss_from_logits = torch.vmap(
            lambda lg, y, eq, m, w: get_loss_and_accuracy(lg, y, eq, m, reduction="mean", sample_weight=w))
        self._vsample_metrics = torch.vmap(
            lambda lg, y, eq, m: get_loss_and_accuracy(lg, y, eq, m, reduction="none"), in_dims=(0, None, None, None))
        self._vsummaries = torch.vmap(self._summaries)

    # ---- functional pieces (per run; vmapped over K) ------------------------------------------
    def _rhs(self, eq: torch.Tensor, y: torch.Tensor, m: torch.Tensor):
        """RHS positions eq+1 … eq+R (B, R), the targets and mask there, and eq = -1, so that
        ``get_loss_and_accuracy`` on the gathered (B, R) tensors equals it on the full ones."""
        S = y.shape[-1]
        idx = eq.unsqueeze(-1) + self._rhs_offsets  # (B, R)
        valid = (idx < S).to(m.dtype)
        idx = idx.clamp(max=S - 1)
        return idx, y.gather(-1, idx), m.gather(-1, idx) * valid, torch.full_like(eq, -1)

    def _forward(self, flat_k: torch.Tensor, x: torch.Tensor,
                 positions: torch.Tensor | None = None) -> torch.Tensor:
        params = self.layout.unflatten(flat_k)
        kwargs = {} if positions is None else {"positions": positions}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = functional_call(self.template, (params, self.buffers), (x,), kwargs)[0]
        return logits.float()  # (B, S, V), or (B, R, V) at ``positions``

    def _loss(self, flat_k, x, y, eq, m, w, idx=None):
        if self.rhs_only:
            pos, y, m, eq = self._rhs(eq, y, m)
            logits = self._forward(flat_k, x, pos)  # (B, R, V)
        else:
            logits = self._forward(flat_k, x)  # (B, S, V)
        loss, acc = get_loss_and_accuracy(logits, y, eq, m, reduction="mean", sample_weight=w)
        return loss, acc

    def _fast_logits(self, flat: torch.Tensor, plan, idx: torch.Tensor, positions: torch.Tensor,
                     dropout: float) -> torch.Tensor:
        """Logits (K, B, R, V) of all K runs at ``positions`` (K, B, R) of dataset rows ``idx``
        (K, B), through :mod:`modarith.fast` (shared prefixes, fused kernels)."""
        c0 = self.configs[0]
        params = self.layout.unflatten(flat)  # name -> (K, ...)
        rows = self.X[idx][..., plan.row_start:]  # (K, B, S - row_start)
        anc = [a[idx] for a in plan.row_anc]  # (K, B) each
        pad = c0.p + 4
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if c0.model == "gpt":
                logits = fast_path.gpt_logits(params, self.buffers["embedding.positions"], plan, rows, anc,
                                              positions, c0.num_heads, c0.num_layers, pad, dropout,
                                              c0.non_linearity)
            else:
                logits = fast_path.lstm_logits(params, plan, rows, anc, positions, c0.num_layers, pad, dropout)
        return logits.float()

    def _eval_one(self, flat_k, train_mask, val_mask):
        if self.rhs_only:
            pos, y, m, eq = self._eval_rhs
            logits = self._forward(flat_k, self.X, pos)  # (N, R, V)
        else:
            y, m, eq = self.Y, self.M, self.EQ
            logits = self._forward(flat_k, self.X)  # (N, S, V)
        loss, acc = get_loss_and_accuracy(logits, y, eq, m, reduction="none")
        return self._summaries(loss, acc, flat_k, train_mask, val_mask)

    def _summaries(self, loss, acc, flat_k, train_mask, val_mask):
        """One run's history row from per-sample loss and accuracy (N,) over the dataset."""
        out = []
        masks = [(train_mask, val_mask)] + [(train_mask * om, val_mask * om) for om in self.order_masks]
        for tm, vm in masks:
            for mask in (tm, vm):
                n = mask.sum().clamp(min=1.0)
                out += [(loss * mask).sum() / n, (acc * mask).sum() / n]
        out.append(torch.linalg.vector_norm(flat_k))
        return torch.stack(out)

    def _gather(self, idx: torch.Tensor, w: torch.Tensor):
        return self.X[idx], self.Y[idx], self.EQ[idx], self.M[idx], w, idx

    def _batch(self, t: int):
        """Batch for update number t (0-based): (x, y, eq, mask, weight), each (K, Bmax, ...)."""
        if self.full_batch:
            return self._static_batch
        K, B = self.K, self.configs[0].batch_size
        idx = torch.zeros(K, self.Bmax, dtype=torch.long)
        w = torch.zeros(K, self.Bmax)
        for k, c in enumerate(self.configs):
            epoch, j = divmod(t, self.spe[k])
            cached = self._perm_cache.get(k)
            if cached is None or cached[0] != epoch:
                perm = self.train_idx[k][_shuffle_perm(c.seed, epoch, c.n_train)]
                self._perm_cache[k] = cached = (epoch, perm)
            chunk = cached[1][j * B:(j + 1) * B]
            idx[k, : len(chunk)] = chunk
            w[k, : len(chunk)] = 1.0
        return self._gather(idx.to(self.device, non_blocking=True), w.to(self.device, non_blocking=True))

    # ---- training ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> None:
        """Evaluate every run on its full train and validation sets; store in the history."""
        if self.fast:
            K, N = self.K, self.X.shape[0]
            pos, y, m, eq = self._eval_rhs  # (N, R) each, eq (N,)
            idx = torch.arange(N, device=self.device).expand(K, N)
            logits = self._fast_logits(self.flat, self._plan_eval, idx, pos.expand(K, -1, -1), 0.0)
            loss, acc = self._vsample_metrics(logits, y, eq, m)  # (K, N) each
            self.hist[:, self.n_evals_done] = self._vsummaries(loss, acc, self.flat, self.train_mask,
                                                                self.val_mask)
        else:
            self.template.eval()  # no dropout at evaluation
            try:
                self.hist[:, self.n_evals_done] = self._veval(self.flat, self.train_mask, self.val_mask)
            finally:
                self.template.train()
        self.n_evals_done += 1

    def _batch_loss(self, flat: torch.Tensor, batch) -> torch.Tensor:
        """Per-run training loss (K,) on a batch from :meth:`_batch`."""
        if not self.fast:
            return self._vloss(flat, *batch)[0]
        x, y, eq, m, w, idx = batch
        pos, y, m, eq = self._rhs(eq, y, m)  # (K, B, R) ×3, (K, B)
        logits = self._fast_logits(flat, self._plan_train, idx, pos, self.configs[0].dropout)
        return self._vloss_from_logits(logits, y, eq, m, w)[0]

    def update(self) -> None:
        """One optimizer step of every run: gradient -> clip -> AdamW (per-run settings)."""
        g = self.gradients()  # (K, P)
        with torch.no_grad():
            if self.grad_ema is not None:  # Grokfast-EMA, before clipping
                g = self._grokfast(g)
            self.clip_(g)
            self.adamw_(g)

    def gradients(self) -> torch.Tensor:
        """Per-run gradients (K, P) of the training loss on batch number ``self.step``."""
        flat = self.flat.detach().requires_grad_(True)
        loss = self._batch_loss(flat, self._batch(self.step))  # (K,)
        (g,) = torch.autograd.grad(loss.sum(), flat)  # runs are independent: ∂Σ/∂θ_k = ∂L_k/∂θ_k
        return g

    def clip_(self, g: torch.Tensor) -> None:
        """Clip each run's gradient (K, P) to its ℓ2 norm ``clip_norm``, in place."""
        gnorm = torch.linalg.vector_norm(g, dim=1, keepdim=True)  # (K, 1)
        g.mul_((self.clip / (gnorm + 1e-6)).clamp(max=1.0))

    def adamw_(self, g: torch.Tensor) -> None:
        """One AdamW step of every run (decoupled weight decay, bias-corrected moments)."""
        self.step += 1
        b1, b2 = self.beta1, self.beta2
        self.flat.mul_(1.0 - self.lr * self.wd)
        self.exp_avg.lerp_(g, 1.0 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(g, g, value=1.0 - b2)
        bc1 = 1.0 - b1**self.step
        bc2_sqrt = math.sqrt(1.0 - b2**self.step)
        denom = (self.exp_avg_sq.sqrt() / bc2_sqrt).add_(self.eps)
        self.flat.sub_(self.exp_avg / denom * (self.lr / bc1))

    def _grokfast(self, g: torch.Tensor) -> torch.Tensor:
        """Grokfast-EMA filter, per run: ema <- α·ema + (1-α)·g (ema = g at the first update),
        return g + λ·ema. g, ema: (K, P); α, λ: (K, 1)."""
        if self.step == 0:
            self.grad_ema.copy_(g)
        else:
            self.grad_ema.mul_(self.gf_alpha).add_((1.0 - self.gf_alpha) * g)
        return g + self.gf_lamb * self.grad_ema

    def snapshot(self) -> None:
        """Record the parameters at the current step if it is a snapshot step (a CPU copy)."""
        if self.step in self._snapshot_set and len(self.snapshots) < len(self.snapshot_steps) \
                and self.snapshot_steps[len(self.snapshots)] == self.step:
            self.snapshots.append(self.flat.detach().cpu().clone())

    def run_snapshots(self, k: int) -> dict:
        """Snapshots of run k: ``{"steps": (n,) int64, "params": {name: (n, *shape)}}``."""
        steps = torch.tensor(self.snapshot_steps[:len(self.snapshots)], dtype=torch.long)
        flat = torch.stack([s[k] for s in self.snapshots]) if self.snapshots else \
            torch.zeros(0, self.flat.shape[1])  # (n, P)
        return {"steps": steps, "params": {n: t.clone() for n, t in self.layout.unflatten(flat).items()}}

    def run(self, progress: bool = True, checkpoint: Path | None = None,
            checkpoint_every: int | None = None,
            checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S, desc: str | None = None,
            on_progress: Callable[[int], None] | None = None) -> None:
        """Train to the last step, evaluating on schedule; save checkpoints if asked.

        ``checkpoint``: where to save the full state (see :meth:`state`), every
        ``checkpoint_every`` updates, or when that is None at the first ``eval_every`` multiple
        after ``max(checkpoint_interval_s, 50 × the last save's duration)`` seconds, which
        keeps saving under 2 % of the run time. Resuming is :meth:`load_state` before ``run``
        (``train_group`` does both). The run's random stream (dropout) is seeded from the
        group's run ids and restored from a checkpoint, without touching the global RNG.
        ``on_progress(n)``: called with the number of run-steps (updates × K) done since its
        last call, at most about once a second (worker processes report to the parent's bar).
        """
        from tqdm.auto import tqdm

        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self._seed_rng()
            c0 = self.configs[0]
            desc = desc or f"{c0.model} L={c0.num_layers} d={c0.d_model} ×{self.K}"
            bar = tqdm(total=self.T, initial=self.step, desc=desc, disable=not progress,
                       mininterval=1.0, dynamic_ncols=True)
            events = progress_writer(desc, self.K, self.T, self.step)  # $MODARITH_PROGRESS, or None
            self.checkpoint_seconds: list[float] = []  # duration of each save (cost accounting)
            self._run_t0 = time.monotonic()
            self._ckpt_interval, self._last_ckpt = checkpoint_interval_s, time.monotonic()
            reported, last_report = 0, time.monotonic()
            if on_progress is not None and self.step:
                on_progress(self.step * self.K)  # resumed: count what the checkpoint holds
            try:
                while True:
                    if self._snapshot_set:
                        self.snapshot()
                    self._evaluate_if_due(bar if progress else None)
                    if self.step >= self.T:
                        break
                    if checkpoint is not None:
                        self._checkpoint_if_due(checkpoint, checkpoint_every, checkpoint_interval_s)
                    self.update()
                    bar.update(1)
                    if events is not None:
                        events.update(self.step)
                    reported += self.K
                    if on_progress is not None and time.monotonic() - last_report >= 1.0:
                        on_progress(reported)
                        reported, last_report = 0, time.monotonic()
            finally:
                bar.close()
                if events is not None:
                    events.close(self.step)
                if on_progress is not None and reported:
                    on_progress(reported)

    def _seed_rng(self) -> None:
        """Seed the (forked) global RNG from the run ids, or restore a checkpoint's state."""
        rng = getattr(self, "_rng", None)
        if rng is None:
            torch.manual_seed(int(hashlib.sha256("|".join(self.run_ids).encode()).hexdigest()[:15], 16))
            return
        torch.set_rng_state(rng["cpu"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def _evaluate_if_due(self, bar=None) -> None:
        """Evaluate when ``self.step`` is on the schedule; show the mean val_acc on ``bar``."""
        if self.n_evals_done < len(self.eval_steps) and self.eval_steps[self.n_evals_done] == self.step:
            self.evaluate()
            if bar is not None and self.step % self.configs[0].eval_every == 0 and self.step > 0:
                va = self.hist[:, self.n_evals_done - 1, self.metric_names.index("val_acc")]
                bar.set_postfix(val_acc=f"{va.mean().item():.3f}", refresh=False)

    def _checkpoint_if_due(self, path: Path, every: int | None, interval_s: float) -> None:
        """Save the state every ``every`` updates, or (``every`` None) at the first
        ``eval_every`` multiple once the time-based interval has passed."""
        if self.step == 0:
            return
        if every is not None:
            due = self.step % every == 0
        else:
            due = (self.step % self.configs[0].eval_every == 0
                   and time.monotonic() - self._last_ckpt >= self._ckpt_interval)
        if not due:
            return
        t = time.monotonic()
        self.save_state(path)
        self._last_ckpt = time.monotonic()
        self.checkpoint_seconds.append(self._last_ckpt - t)
        self._ckpt_interval = max(interval_s, CHECKPOINT_COST_FACTOR * (self._last_ckpt - t))

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything that determines the rest of the run, on the CPU (plain tensors/numbers).

        Batch shuffles are a pure function of (seed, epoch), the data and splits of the configs,
        so parameters, AdamW moments, step, history and the RNG states are the whole state.
        """
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        elapsed = getattr(self, "elapsed_before", 0.0) + time.monotonic() - getattr(
            self, "_run_t0", time.monotonic())
        return {"format": CHECKPOINT_FORMAT, "run_ids": list(self.run_ids), "step": self.step,
                "n_evals_done": self.n_evals_done, "flat": self.flat.cpu(),
                "exp_avg": self.exp_avg.cpu(), "exp_avg_sq": self.exp_avg_sq.cpu(),
                "hist": self.hist.cpu(), "rng": rng, "wall_time_s": float(elapsed),
                **({} if self.grad_ema is None else {"grad_ema": self.grad_ema.cpu()}),
                **({"snapshots": torch.stack(self.snapshots)} if self.snapshots else {})}

    def save_state(self, path: Path) -> None:
        """Write :meth:`state` atomically (temporary file + rename): complete or absent."""
        atomic_torch_save(self.state(), path)

    def load_state(self, source: Path | dict) -> None:
        """Restore a :meth:`state` (a dict, or a file loaded with ``weights_only=True``).

        Everything is validated before anything is assigned; a checkpoint of another group,
        format or shape raises :class:`~modarith.store.CorruptRecord` naming the reason.
        """
        import bisect

        s = source if isinstance(source, dict) else safe_torch_load(source)
        if not isinstance(s, dict):
            raise CorruptRecord(f"checkpoint is a {type(s).__name__}, not a dict")
        if s.get("format") != CHECKPOINT_FORMAT:
            raise CorruptRecord(f"checkpoint format {s.get('format')!r} is not {CHECKPOINT_FORMAT} "
                                "(written by another modarith version)")
        if s.get("run_ids") != self.run_ids:
            raise CorruptRecord("checkpoint belongs to another group of runs")
        step, n_evals = s.get("step"), s.get("n_evals_done")
        if not (isinstance(step, int) and 0 <= step <= self.T):
            raise CorruptRecord(f"checkpoint step {step!r} is outside [0, {self.T}]")
        if n_evals != bisect.bisect_right(self.eval_steps, step):
            raise CorruptRecord(f"checkpoint has {n_evals!r} evaluations done at step {step}")
        optional = [("grad_ema", self.grad_ema)] if self.grad_ema is not None else []
        # snapshots taken so far: those before `step`, and the one at `step` if it was taken
        snaps = s.get("snapshots")
        n_snap = len(snaps) if isinstance(snaps, torch.Tensor) and snaps.dim() == 3 else 0
        if n_snap or any(t < step for t in self.snapshot_steps):
            if n_snap not in (bisect.bisect_left(self.snapshot_steps, step),
                              bisect.bisect_right(self.snapshot_steps, step)):
                raise CorruptRecord(f"checkpoint has {n_snap} weight snapshots at step {step}")
            optional.append(("snapshots", torch.empty(n_snap, *self.flat.shape, device="meta")))
        for name, ref in (("flat", self.flat), ("exp_avg", self.exp_avg),
                          ("exp_avg_sq", self.exp_avg_sq), ("hist", self.hist), *optional):
            t = s.get(name)
            if not isinstance(t, torch.Tensor) or t.shape != ref.shape or t.dtype != ref.dtype:
                raise CorruptRecord(f"checkpoint tensor {name!r} does not have shape "
                                    f"{tuple(ref.shape)} and dtype {ref.dtype}")
        rng = s.get("rng")
        if not (isinstance(rng, dict) and isinstance(rng.get("cpu"), torch.Tensor)
                and rng["cpu"].dtype == torch.uint8):
            raise CorruptRecord("checkpoint has no valid RNG state")
        dev = self.device
        self.step, self.n_evals_done = step, n_evals
        self.flat = s["flat"].to(dev).contiguous()
        self.exp_avg = s["exp_avg"].to(dev).contiguous()
        self.exp_avg_sq = s["exp_avg_sq"].to(dev).contiguous()
        self.hist = s["hist"].to(dev).contiguous()
        if self.grad_ema is not None:
            self.grad_ema = s["grad_ema"].to(dev).contiguous()
        self.snapshots = list(s["snapshots"].unbind(0)) if n_snap else []
        self._rng = rng
        self.elapsed_before = float(s.get("wall_time_s", 0.0))

    # ---- results -----------------------------------------------------------------------------
    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Final weights of run k, as a plain state_dict of the model class."""
        sd = {n: t.detach().clone().cpu() for n, t in self.layout.unflatten(self.flat[k]).items()}
        sd.update({n: b.detach().clone().cpu() for n, b in self.buffers.items()})
        return sd

    def records(self, group_wall_time_s: float) -> list[Record]:
        """One record per run; ``meta`` holds the group's wall time and each run's share of it
        (``group_wall_time_s / K``: the runs trained together, not one after another)."""
        hist = self.hist.cpu()
        out = []
        for k, c in enumerate(self.configs):
            h = {"step": list(self.eval_steps)}
            for j, name in enumerate(self.metric_names):
                h[name] = [float(v) for v in hist[k, :, j]]
            meta = {"version": code_version(), "torch": torch.__version__, "device": str(self.device),
                    "wall_time_share_s": group_wall_time_s / self.K,
                    "group_wall_time_s": group_wall_time_s,
                    "group_size": self.K, "created": datetime.now(timezone.utc).isoformat()}
            out.append(Record(self.run_ids[k], c, h, summarize(h), meta))
        return out


def group_id(configs: list[RunConfig]) -> str:
    """Identity of a vectorised group (its run ids, in order): names its checkpoint file."""
    return hashlib.sha256("|".join(run_id(c) for c in configs).encode()).hexdigest()[:20]


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA/MPS out-of-memory error (``torch.cuda.OutOfMemoryError`` or the
    RuntimeError text "out of memory")."""
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (bool(oom) and isinstance(error, oom)) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _check_train_args(results, force, progress, max_group_size, checkpoint_every,
                      checkpoint_interval_s, workers=None) -> None:
    import os

    if results is not None and (not isinstance(results, (str, os.PathLike)) or not str(results).strip()):
        raise ValueError(f"results = {results!r} is invalid: expected a folder path (str or Path) or None")
    for name, v in (("force", force), ("progress", progress)):
        if not isinstance(v, bool):
            raise ValueError(f"{name} = {v!r} is invalid: expected True or False")
    for name, v in (("max_group_size", max_group_size), ("checkpoint_every", checkpoint_every),
                    ("workers", workers)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} = {v!r} is invalid: expected None or an integer >= 1")
    v = checkpoint_interval_s
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
        raise ValueError(f"checkpoint_interval_s = {v!r} is invalid: expected a finite number of seconds > 0")


# ---------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------
def train(configs: list[RunConfig] | RunConfig, results: str | Path | None = "results",
          device: str = "auto", force: bool = False, progress: bool = True,
          max_group_size: int | None = None, checkpoint_every: int | None = None,
          checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
          workers: int | None = None) -> list[Record]:
    """Train what is missing from the store, load the rest; return records in input order.

    ``results=None`` trains in memory without storing anything. With a store:

    - each group checkpoints to ``results/checkpoints/<group_id>.pt`` (every
      ``checkpoint_every`` updates, else time-based, see :meth:`GroupTrainer.run`) and a rerun
      resumes from it bit-exactly (``force=True`` ignores stored records and checkpoints);
    - a process holds ``results/locks/<run_id>.lock`` for the runs it trains; another process
      wanting the same runs waits, then loads what the first one stored;
    - corrupt or foreign files are moved to ``results/corrupt/`` with a warning and retrained.

    ``workers``: number of worker processes the groups are spread over (``None``:
    :func:`default_workers`; 1: everything in this process). Each worker runs whole groups
    with ``cores // workers`` threads; when there are fewer groups than workers, the largest
    groups are split (a group of K gives the same numbers as K groups of one), and one overall
    progress bar counts run-steps. A killed worker loses only the steps since its group's
    last checkpoint: a rerun resumes it.

    A CUDA out-of-memory error in a group splits it in halves and retries (with a warning).
    """
    if isinstance(configs, RunConfig):
        configs = [configs]
    try:
        configs = list(configs)
    except TypeError:
        raise ValueError(f"configs must be a RunConfig or a list of them, got {type(configs).__name__}") from None
    bad = [c for c in configs if not isinstance(c, RunConfig)]
    if bad:
        raise ValueError(f"configs must be RunConfig instances, got {type(bad[0]).__name__}")
    _check_train_args(results, force, progress, max_group_size, checkpoint_every, checkpoint_interval_s,
                      workers)
    device = resolve_device(device)
    store = Store(results) if results is not None else None
    if store is not None:
        store.clean_tmp()
    found: dict[str, Record] = {}
    todo: dict[str, RunConfig] = {}
    for c in configs:
        rid = run_id(c)
        if rid in found or rid in todo:
            continue
        rec = None if (force or store is None) else store.get(c)
        if rec is not None:
            found[rid] = rec
        else:
            todo[rid] = c
    # sorted by run id: group membership (hence checkpoint names) does not depend on input order
    groups = group_configs([todo[r] for r in sorted(todo)], max_group_size)
    n = workers if workers is not None else default_workers(device, groups)
    opts = dict(device=device, progress=progress, checkpoint_every=checkpoint_every,
                checkpoint_interval_s=checkpoint_interval_s)
    if n > 1 and groups:
        groups = split_groups(groups, n)
        n = min(n, len(groups))
    if n <= 1:
        found.update(train_groups(groups, store, force, **opts))
    else:
        found.update(_train_parallel(groups, results, force, n, **opts))
    return [found[run_id(c)] for c in configs]


# Below this much work, starting worker processes (an interpreter and torch each, seconds)
# costs more than the second core saves: ``default_workers`` keeps such work in-process.
# Work is counted in SPEC-equivalent run-steps (GPT/LSTM d = 128, L = 2, batch 480: about
# 0.1–0.3 s each on one CPU core), so 200 of them are ~30 s or more.
MIN_PARALLEL_WORK = 200.0


def spec_equivalent_run_steps(groups: list[list[RunConfig]]) -> float:
    """Training work of ``groups`` in run-steps of SPEC's default model (d² · L · batch rows)."""
    ref = 128**2 * 2 * 480
    return sum(c.total_steps * c.d_model**2 * c.num_layers * min(c.batch_size, c.n_train) / ref
               for g in groups for c in g)


def cpu_cores() -> int:
    """Cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(device: str, groups: list[list[RunConfig]] | None = None) -> int:
    """Default worker count: ``MODARITH_WORKERS`` if set; else one per GPU on CUDA, one per
    core on the CPU (1 on MPS), and 1 when ``groups`` hold less work than
    ``MIN_PARALLEL_WORK`` (:func:`spec_equivalent_run_steps`)."""
    import os

    env = os.environ.get("MODARITH_WORKERS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"MODARITH_WORKERS = {env!r} is invalid: expected an integer >= 1")
        return int(env)
    if groups is not None and spec_equivalent_run_steps(groups) < MIN_PARALLEL_WORK:
        return 1
    if str(device).startswith("cuda"):
        return max(1, torch.cuda.device_count()) if device == "cuda" else 1
    return cpu_cores() if str(device) == "cpu" else 1


def _group_cost(group: list[RunConfig]) -> float:
    """Rough relative cost of a group (run-steps × model width² × layers), for scheduling."""
    c = group[0]
    return c.total_steps * len(group) * c.d_model**2 * c.num_layers


def split_groups(groups: list[list[RunConfig]], n: int) -> list[list[RunConfig]]:
    """Split the largest groups in halves until there are ``n`` groups (or all are single);
    returned largest cost first (so parallel workers finish close together)."""
    groups = [list(g) for g in groups]
    while len(groups) < n:
        i = max(range(len(groups)), key=lambda i: len(groups[i]))
        if len(groups[i]) < 2:
            break
        g = groups.pop(i)
        half = (len(g) + 1) // 2
        groups[i:i] = [g[:half], g[half:]]
    return sorted(groups, key=_group_cost, reverse=True)


def train_groups(groups: list[list[RunConfig]], store: Store | None, force: bool = False,
                 **opts) -> dict[str, Record]:
    """Train (or load) groups one after another in this process; CUDA out-of-memory in a
    group splits it in halves and retries."""
    found: dict[str, Record] = {}
    queue = list(groups)
    device = opts.get("device", "cpu")
    while queue:
        group = queue.pop(0)
        try:
            found.update(_train_or_load(group, store, force, **opts))
            continue
        except Exception as e:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(e):
                raise
            if len(group) == 1:
                e.add_note(f"modarith: a single run ({run_id(group[0])}) does not fit in {device} "
                           "memory; use a smaller model or batch, or device='cpu'")
                raise
        half = (len(group) + 1) // 2
        msg = (f"modarith: out of memory on {device} training a group of {len(group)} runs; "
               f"retrying as groups of {half} and {len(group) - half}")
        print(msg, file=sys.stderr, flush=True)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        gc.collect()
        if str(device).startswith("cuda"):
            torch.cuda.empty_cache()
        queue[:0] = [group[:half], group[half:]]
    return found


# ---- worker processes -------------------------------------------------------------------------
_WORKER: dict = {}  # in a worker process: its progress queue and device


def _worker_init(threads: int, progress_queue, device_queue) -> None:
    """Worker process initializer: pin the thread count, take a device, keep the queue."""
    import os

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    _WORKER["progress"] = progress_queue
    _WORKER["device"] = device_queue.get() if device_queue is not None else None


def _worker_train(group: list[RunConfig], results: str | None, force: bool, opts: dict) -> dict[str, Record]:
    """Task of a worker process: train (or load) one group over the shared store."""
    q = _WORKER.get("progress")
    opts = dict(opts, progress=False, on_progress=q.put if q is not None else None)
    if _WORKER.get("device"):
        opts["device"] = _WORKER["device"]
    return train_groups([group], Store(results) if results is not None else None, force, **opts)


def _train_parallel(groups: list[list[RunConfig]], results, force: bool, n: int, **opts) -> dict[str, Record]:
    """Train groups in ``n`` worker processes (``concurrent.futures``, spawn), one overall bar."""
    import multiprocessing as mp
    import os
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    device = opts["device"]
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue()
    device_queue = None
    if device == "cuda":  # one process per GPU
        device_queue = ctx.Queue()
        for i in range(n):
            device_queue.put(f"cuda:{i % max(1, torch.cuda.device_count())}")
    threads = max(1, cpu_cores() // n) if device == "cpu" else 1
    total = sum(c.total_steps for g in groups for c in g)
    bar = tqdm(total=total, unit="run-step", desc=f"{len(groups)} groups, {n} workers",
               disable=not opts.get("progress", True), mininterval=1.0, dynamic_ncols=True, smoothing=0.05)
    saved_env = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({v: str(threads) for v in saved_env})  # children read it at torch import
    found: dict[str, Record] = {}
    try:
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init,
                                 initargs=(threads, progress_queue, device_queue)) as pool:
            pending = {pool.submit(_worker_train, g, None if results is None else str(results), force, opts)
                       for g in groups}
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                try:
                    while True:
                        bar.update(progress_queue.get_nowait())
                except queue_mod.Empty:
                    pass
                for f in done:
                    found.update(f.result())  # a worker's exception is raised here
    finally:
        bar.close()
        for v, old in saved_env.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old
    return found


def _train_or_load(group: list[RunConfig], store: Store | None, force: bool, **opts) -> dict[str, Record]:
    """Train one group under its runs' locks; runs another process stored meanwhile are loaded."""
    if store is None:
        return {rec.run_id: rec for rec, _ in train_group(group, store=None, **opts)}
    with store.lock([run_id(c) for c in group]):
        out, rest = {}, []
        for c in group:  # re-check under the lock: another process may have finished them
            rec = None if force else store.get(c)
            if rec is not None:
                out[rec.run_id] = rec
            else:
                rest.append(c)
        if rest:
            for rec, _ in train_group(rest, store=store, resume=not force, **opts):
                out[rec.run_id] = rec
        return out


def train_group(configs: list[RunConfig], device: str = "cpu", progress: bool = True,
                store: Store | None = None, checkpoint_every: int | None = None,
                checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
                resume: bool = True, on_progress: Callable[[int], None] | None = None
                ) -> list[tuple[Record, dict]]:
    """Train one vectorised group; store each record (and weights) when a store is given.

    With a store the group checkpoints to ``store.checkpoint_path(group_id(configs))`` and,
    when ``resume``, continues from a checkpoint found there (one that cannot be loaded or
    does not match the group is moved to ``corrupt/`` and training starts from scratch).
    The caller holds the runs' locks (see :func:`train`).
    """
    t0 = time.perf_counter()
    trainer = GroupTrainer(configs, device)
    ckpt = store.checkpoint_path(group_id(configs)) if store is not None else None
    resumed_from = None
    if ckpt is not None and resume:
        state = store.load_checkpoint(ckpt)  # weights_only=True; unusable files moved aside
        if state is not None:
            try:
                trainer.load_state(state)
                resumed_from = trainer.step
            except CorruptRecord as e:
                store.quarantine(ckpt, f"checkpoint {e}")
        del state
    trainer.run(progress=progress, checkpoint=ckpt, checkpoint_every=checkpoint_every,
                checkpoint_interval_s=checkpoint_interval_s, on_progress=on_progress)
    wall = getattr(trainer, "elapsed_before", 0.0) + time.perf_counter() - t0
    out = []
    for k, rec in enumerate(trainer.records(wall)):
        rec.meta["resumed_from_step"] = resumed_from
        rec.meta["checkpoint_s"] = sum(trainer.checkpoint_seconds) / trainer.K
        sd = trainer.state_dict(k)
        if store is not None:
            if trainer.snapshot_steps:  # written before the record, which marks the run done
                atomic_torch_save(trainer.run_snapshots(k), snapshots_path(store, rec.run_id))
            store.put(rec, sd)
        out.append((rec, sd))
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    return out


def snapshots_path(store: Store, config_or_id) -> Path:
    """Where a run's weight snapshots are stored: ``runs/<run_id>.snapshots.pt``."""
    return store.record_path(config_or_id).with_suffix(".snapshots.pt")


def load_model(config_or_record, results: str | Path = "results", device: str = "cpu") -> nn.Module:
    """A stored run's final model, in eval mode, weights loaded with weights_only=True."""
    cfg = config_or_record.config if isinstance(config_or_record, Record) else config_or_record
    model = build_model(cfg)
    model.load_state_dict(Store(results).load_weights(cfg))
    return model.to(resolve_device(device)).eval()
