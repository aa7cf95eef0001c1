"""Course-style reference training loop: the baseline the benchmark compares against.

This is the straightforward way the course trains one model, kept deliberately plain so that
the comparison with :mod:`modarith.runtime.engine` isolates the *training machinery*: the same model
classes (:func:`modarith.models.init_model`), the same data and split, the same loss
(:func:`modarith.core.metrics.get_loss_and_accuracy`), but

- one model at a time, ``torch.optim.AdamW`` and ``clip_grad_norm_``;
- batches from a ``DataLoader`` over a ``TensorDataset`` reshuffled each epoch;
- ``loss.item()`` / ``acc.item()`` every step (a host sync per step);
- evaluation through ``DataLoader``\\ s over the train and validation sets, accumulating
  ``.item()`` per batch, on SPEC's schedule (step 0, every step ≤ 100, every 100, the last).

Not part of the library: benchmarks only.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from modarith.core.data import make_dataset, split_indices
from modarith.core.metrics import get_loss_and_accuracy
from modarith.models import init_model
from modarith.models.config import RunConfig


class ReferenceLoop:
    """One run of ``cfg`` trained the course's way on ``device``."""

    def __init__(self, cfg: RunConfig, device: str = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
        tr, va = split_indices(ds, cfg.r_train, cfg.seed)
        tensors = (ds.source, ds.target, ds.eq_positions, ds.mask)
        self.train_set = TensorDataset(*(t[tr] for t in tensors))
        self.val_set = TensorDataset(*(t[va] for t in tensors))
        g = torch.Generator().manual_seed(cfg.seed)
        self.train_loader = DataLoader(self.train_set, batch_size=cfg.batch_size, shuffle=True,
                                       generator=g)
        self.eval_loaders = {
            "train": DataLoader(self.train_set, batch_size=cfg.batch_size, shuffle=False),
            "val": DataLoader(self.val_set, batch_size=cfg.batch_size, shuffle=False),
        }
        self.model = init_model(cfg).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                           weight_decay=cfg.weight_decay,
                                           betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        self._batches = iter(())
        self.step = 0
        self.history: dict[str, list[float]] = {k: [] for k in (
            "step", "train_loss", "train_acc", "val_loss", "val_acc", "param_norm")}
        self.step_log: list[tuple[float, float]] = []

    def _next_batch(self):
        try:
            return next(self._batches)
        except StopIteration:  # new epoch: the DataLoader reshuffles
            self._batches = iter(self.train_loader)
            return next(self._batches)

    def train_step(self) -> float:
        """One optimizer update; returns the batch loss (``.item()``, as the course logs it)."""
        self.model.train()
        x, y, eq, m = (t.to(self.device) for t in self._next_batch())
        logits, _ = self.model(x)
        loss, acc = get_loss_and_accuracy(logits, y, eq, m)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        self.optimizer.step()
        self.step += 1
        self.step_log.append((loss.item(), acc.item()))
        return self.step_log[-1][0]

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy over the full train and validation sets, batch by batch."""
        self.model.eval()
        out = {"step": self.step}
        for split, loader in self.eval_loaders.items():
            loss_sum, acc_sum, n = 0.0, 0.0, 0
            for batch in loader:
                x, y, eq, m = (t.to(self.device) for t in batch)
                logits, _ = self.model(x)
                loss, acc = get_loss_and_accuracy(logits, y, eq, m, reduction="sum")
                loss_sum += loss.item()
                acc_sum += acc.item()
                n += x.shape[0]
            out[f"{split}_loss"], out[f"{split}_acc"] = loss_sum / n, acc_sum / n
        out["param_norm"] = torch.cat([p.reshape(-1) for p in self.model.parameters()]).norm().item()
        for k, v in out.items():
            self.history[k].append(v)
        return out

    def run(self, steps: int | None = None) -> dict[str, list[float]]:
        """Train to ``steps`` (default: the config's T), evaluating on SPEC's schedule."""
        T = self.cfg.total_steps if steps is None else steps
        schedule = {s for s in self.cfg.eval_steps() if s <= T} | {T}
        t0 = time.perf_counter()
        if self.step in schedule:
            self.evaluate()
        while self.step < T:
            self.train_step()
            if self.step in schedule:
                self.evaluate()
        self.wall_time_s = time.perf_counter() - t0
        return self.history
