"""One vectorised group: K runs that share a :func:`group_key`, trained as one computation.

:class:`GroupData` keeps the data on the device (dataset, each run's split, masks, the RHS
positions the loss reads, prefix plans, batches). :class:`GroupTrainer` stacks the K runs'
parameters into one ``(K, P)`` tensor; one batched forward (:mod:`modarith.core.fast`, or the
hand-written modules under ``torch.vmap`` with ``fast=False``) and one backward give every
run its gradient, then :mod:`modarith.core.optim` applies the run's update per run (Grokfast-EMA
or -MA, clipping, ⊥Grad, coupled L2, Adam(W) with warm-up: :func:`modarith.core.optim.update_`).
The training loss is each run's own (softmax, StableMax or float64-softmax cross-entropy); the history's
losses are softmax cross-entropy for every run (comparable across arms), plus, when
``record_collapse``, the fraction of training samples whose float32 softmax has collapsed.
Nothing in a step reads the device from the host.

Each run's state is its own (:func:`modarith.runtime.checkpoint.run_state`): parameters, moments, filter,
history, evaluation bookkeeping. Its randomness is a pure function of its config: the batch
order of :func:`shuffle_perm` and the dropout masks of :func:`dropout_generators`. So a run
gives the same numbers in any group (bit for bit on the CPU at one thread, ``tests/test_engine.py``).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import hashlib
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from modarith.core import fast as fast_path
from modarith.core import optim
from modarith.core.data import make_dataset, split_indices
from modarith.core.metrics import get_loss_and_accuracy, softmax_collapsed
from modarith.models import registry
from modarith.models.config import RunConfig, run_id
from modarith.models.registry import init_model
from modarith.runtime import devices
from modarith.runtime.devices import to_host

# Fields that may differ between runs of one vectorised group; everything else must match.
PER_RUN_FIELDS = ("seed", "r_train", "lr", "weight_decay", "clip_norm", "steps", "grokfast_alpha",
                  "grokfast_lamb", "optimizer", "warmup_steps", "grokfast_window", "orthograd", "loss")


def group_key(config: RunConfig) -> tuple:
    """Runs with equal keys train together (same architecture, batch size and schedule)."""
    d = config.to_dict()
    for f in PER_RUN_FIELDS:
        d.pop(f)
    d["orders"] = tuple(d["orders"])
    return tuple(sorted(d.items())) + (("total_steps", config.total_steps),)


def shuffle_perm(seed: int, epoch: int, n: int) -> torch.Tensor:
    """Permutation of the training set for (run seed, epoch): a pure function, so resumed or
    regrouped runs draw exactly the same batches."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63 - 1))
    return torch.randperm(n, generator=g)


def dropout_generators(run_ids: list[str], step: int, device: torch.device) -> list[torch.Generator]:
    """One generator per run for the dropout masks of update ``step``, seeded by (run, step):
    a run's masks do not depend on its group, and a resumed run draws what it would have."""
    gens = []
    for rid in run_ids:
        seed = int(hashlib.sha256(f"{rid}:{step}".encode()).hexdigest()[:15], 16)
        gens.append(torch.Generator(device=device).manual_seed(seed))
    return gens


@dataclass
class Flat:
    """Layout of a model's parameters inside one flat vector."""

    names: list[str]
    shapes: list[torch.Size]
    sizes: list[int]

    @classmethod
    def of(cls, model: nn.Module) -> Flat:
        named = list(model.named_parameters())
        return cls([n for n, _ in named], [p.shape for _, p in named], [p.numel() for _, p in named])

    def flatten(self, model: nn.Module) -> torch.Tensor:
        params = dict(model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        # split (one cat in backward), then view each chunk in its shape
        chunks = torch.split(flat, self.sizes, dim=-1)
        return {n: c.view(*c.shape[:-1], *s) for n, c, s in zip(self.names, chunks, self.shapes)}

    def mask(self, keep) -> torch.Tensor:
        """(P,) float mask, 1 on the parameters whose name ``keep(name)`` accepts."""
        return torch.cat([torch.full((n,), float(keep(name))) for name, n in zip(self.names, self.sizes)])


class GroupData:
    """A group's data on its device: the dataset, K splits and masks, RHS positions, prefix
    plans and batches. Set-up reads (sizes, plans) are done on the CPU before the data moves."""

    def __init__(self, configs: list[RunConfig], device: torch.device):
        c0, K = configs[0], len(configs)
        ds = make_dataset(c0.p, c0.operator, c0.orders)  # CPU tensors
        N, S = ds.target.shape
        self.device, self.N = device, N
        train_mask = torch.zeros(K, N)
        self.train_idx = []
        for k, c in enumerate(configs):
            tr, _ = split_indices(ds, c.r_train, c.seed)
            assert len(tr) == c.n_train, (len(tr), c.n_train)
            self.train_idx.append(tr)
            train_mask[k, tr] = 1.0
        self.metric_names = ["train_loss", "train_acc", "val_loss", "val_acc"]
        order_masks = []
        if len(c0.orders) > 1:
            for o in c0.orders:
                order_masks.append((ds.orders == o).float())
                self.metric_names += [f"train_loss_o{o}", f"train_acc_o{o}", f"val_loss_o{o}", f"val_acc_o{o}"]
        self.metric_names += ["param_norm", "param_norm_no_embedding"]
        if c0.record_collapse:
            self.metric_names.append("train_collapse")  # fraction of training samples collapsed
        # the loss reads only the RHS: R positions right after '=' (the result and EOS)
        after_eq = torch.arange(S) > ds.eq_positions[:, None]  # (N, S)
        R = int((after_eq & (ds.mask > 0)).sum(1).max())
        row_start_max = int(ds.eq_positions.min()) + 1  # rows compute every RHS position
        self.plan_eval = fast_path.make_plan(ds.source, N, row_start_max).to(device)
        self.plan_train = fast_path.make_plan(ds.source, min(c0.batch_size, N), row_start_max,
                                              share=c0.dropout == 0).to(device)
        self.X, self.Y = ds.source.to(device), ds.target.to(device)  # (N, S)
        self.EQ, self.M = ds.eq_positions.to(device), ds.mask.to(device)  # (N,), (N, S)
        self.train_mask = train_mask.to(device)  # (K, N)
        self.val_mask = (1.0 - train_mask).to(device)  # (K, N)
        self.order_masks = [m.to(device) for m in order_masks]
        self.rhs_offsets = torch.arange(1, R + 1, device=device)  # (R,)
        self.eval_rhs = self.rhs(self.EQ, self.Y, self.M)
        # batches: full batch when N_train <= B (static), else per-epoch reshuffles
        self.B, self.seeds = c0.batch_size, [c.seed for c in configs]
        self.spe = [c.steps_per_epoch for c in configs]
        self.Bmax = min(self.B, max(c.n_train for c in configs))
        self.full_batch = all(s == 1 for s in self.spe)
        self._perms: dict[int, tuple[int, torch.Tensor]] = {}  # run -> (epoch, device perm)
        if self.full_batch:
            idx, w = torch.zeros(K, self.Bmax, dtype=torch.long), torch.zeros(K, self.Bmax)
            for k, tr in enumerate(self.train_idx):
                idx[k, : len(tr)], w[k, : len(tr)] = tr, 1.0
            self.static_batch = self._gather(idx.to(device), w.to(device))

    def rhs(self, eq: torch.Tensor, y: torch.Tensor, m: torch.Tensor):
        """RHS positions eq+1 … eq+R (…, R), the targets and mask there, and eq = -1, so that
        ``get_loss_and_accuracy`` on the gathered tensors equals it on the full ones."""
        S = y.shape[-1]
        idx = eq.unsqueeze(-1) + self.rhs_offsets  # (…, R)
        valid = (idx < S).to(m.dtype)
        idx = idx.clamp(max=S - 1)
        return idx, y.gather(-1, idx), m.gather(-1, idx) * valid, torch.full_like(eq, -1)

    def _gather(self, idx: torch.Tensor, w: torch.Tensor):
        return self.X[idx], self.Y[idx], self.EQ[idx], self.M[idx], w, idx

    def batch(self, t: int):
        """Batch of update t (0-based): (x, y, eq, mask, weight, rows), each (K, Bmax, ...).
        Each run's epoch permutation goes to the device once per epoch; slicing stays there."""
        if self.full_batch:
            return self.static_batch
        K, B = len(self.spe), self.B
        idx = torch.zeros(K, self.Bmax, dtype=torch.long, device=self.device)
        w = torch.zeros(K, self.Bmax, device=self.device)
        for k in range(K):
            epoch, j = divmod(t, self.spe[k])
            cached = self._perms.get(k)
            if cached is None or cached[0] != epoch:
                perm = self.train_idx[k][shuffle_perm(self.seeds[k], epoch, len(self.train_idx[k]))]
                self._perms[k] = cached = (epoch, perm.to(self.device))
            chunk = cached[1][j * B:(j + 1) * B]
            idx[k, : len(chunk)] = chunk
            w[k, : len(chunk)] = 1.0
        return self._gather(idx, w)


class GroupTrainer:
    """Trains K configs that share a :func:`group_key` as one vectorised computation."""
    # (over 200 lines: the K runs' state and the few things done with it — forward, update,
    # evaluation, snapshots, results — read best in one place; the data is GroupData's)

    def __init__(self, configs: list[RunConfig], device: str = "cpu", fast: bool = True):
        if len({group_key(c) for c in configs}) != 1:
            raise ValueError("GroupTrainer needs configs with one group_key; use group_configs()")
        # the fast path where the model registers one; else the module itself under torch.vmap
        self.configs, self.K = configs, len(configs)
        self.fast = fast and registry.entry(configs[0].model).fast_logits is not None
        self.device = device = torch.device(device)
        devices.check_float64(configs, device)  # StableMax, Grokfast-MA: not where float64 is missing
        c0 = configs[0]
        self.T, self.eval_steps = c0.total_steps, c0.eval_steps()
        self.run_ids = [run_id(c) for c in configs]
        self.data = GroupData(configs, device)
        self.metric_names = self.data.metric_names
        # parameters: K models initialised on the CPU (seeded), stacked there, then moved;
        # the template that functional_call runs is a copy (no input object is mutated)
        models = [init_model(c) for c in configs]
        self.layout = Flat.of(models[0])
        self.flat = torch.stack([self.layout.flatten(m) for m in models]).to(device)  # (K, P)
        self.template = copy.deepcopy(models[0]).to(device)
        self.buffers = dict(self.template.named_buffers())
        self._no_emb = self.layout.mask(lambda n: "embedding" not in n).to(device)  # (P,)
        self.step, self.n_evals_done = 0, 0
        # per-run optimizer settings (K, 1) and state; the filters' state only when a run uses it
        self.opt_cols = optim.hyper_columns(configs, device)
        state = optim.optimizer_state(configs, self.flat)
        self.exp_avg, self.exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        self.grad_ema = state.get("grad_ema")  # Grokfast-EMA (K, P)
        self.ma_window, self.ma_sum = state.get("ma_window"), state.get("ma_sum")  # Grokfast-MA
        self.windows = [c.grokfast_window for c in configs]
        self.segments = optim.tensor_segments(self.layout.sizes, device) if any(c.orthograd for c in configs) \
            else None  # ⊥Grad: which tensor each coordinate belongs to
        # runs whose training loss is not the float32 softmax's: (K,) bool per other loss
        self.other_losses = {name: torch.tensor([c.loss == name for c in configs], device=device)
                             for name in sorted({c.loss for c in configs} - {"softmax"})}
        self.snapshot_steps = c0.snapshot_steps()  # group-wide schedule; [] when off
        self.snapshots: list[torch.Tensor] = []  # (K, P) host copies
        self.hist = torch.full((self.K, len(self.eval_steps), len(self.metric_names)), float("nan"),
                               device=device)
        self.autocast = c0.precision == "bf16"
        self.elapsed_before = 0.0  # wall time of the runs before a resume (their checkpoints)
        # reference path: vmap the module's forward; one autograd backward gives every run its
        # gradient (runs are independent). Dropout there draws from the global RNG.
        self._vtrain_logits = torch.vmap(self._reference_logits,
                                         randomness="different" if c0.dropout > 0 else "error")
        self._vlogits = torch.vmap(self._reference_logits, in_dims=(0, None, None))
        self._vmetrics = torch.vmap(lambda lg, y, eq, m, w: get_loss_and_accuracy(
            lg, y, eq, m, reduction="mean", sample_weight=w))
        self._vother = {name: torch.vmap(lambda lg, y, eq, m, w, name=name: get_loss_and_accuracy(
            lg, y, eq, m, reduction="mean", sample_weight=w, loss=name)) for name in self.other_losses}
        self._vcollapsed = torch.vmap(softmax_collapsed, in_dims=(0, None, None, None))
        self._vsample_metrics = torch.vmap(
            lambda lg, y, eq, m: get_loss_and_accuracy(lg, y, eq, m, reduction="none"), in_dims=(0, None, None, None))

    # ---- forward ------------------------------------------------------------------------------
    def _autocast(self):
        """bf16 autocast for ``precision="bf16"`` (fp32 master weights, loss and optimizer)."""
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _reference_logits(self, flat_k, x, positions):
        params = self.layout.unflatten(flat_k)
        with self._autocast():
            logits = functional_call(self.template, (params, self.buffers), (x,), {"positions": positions})[0]
        return logits.float()  # (B, R, V)

    def logits(self, flat: torch.Tensor, plan, rows: torch.Tensor, positions: torch.Tensor,
               dropout: float = 0.0) -> torch.Tensor:
        """Logits (K, B, R, V) of all K runs at ``positions`` (K, B, R) of dataset rows ``rows``
        (K, B), through :mod:`modarith.core.fast` (shared prefixes, fused kernels)."""
        c0, X = self.configs[0], self.data.X
        params = self.layout.unflatten(flat)  # name -> (K, ...)
        tokens = X[rows][..., plan.row_start:]  # (K, B, S - row_start)
        anc = [a[rows] for a in plan.row_anc]  # (K, B) each
        gens = dropout_generators(self.run_ids, self.step, self.device) if dropout > 0 else None
        with self._autocast():
            out = registry.entry(c0.model).fast_logits(params, self.buffers, plan, tokens, anc, positions, c0,
                                                       dropout, gens)
        return out.float()

    def compile(self, mode: str = "reduce-overhead") -> None:
        """Run :meth:`logits` (forward and backward) under ``torch.compile(mode=...)``;
        ``"reduce-overhead"`` captures CUDA graphs (fewer launches per step on a GPU). A
        compilation that fails warns once and the group goes on eagerly."""
        eager = self.logits
        compiled = torch.compile(eager, mode=mode, dynamic=False)

        def logits(*args, **kwargs):
            try:
                return compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - any compiler failure falls back, with its reason
                warnings.warn(f"torch.compile(mode={mode!r}) failed ({type(e).__name__}: "
                              f"{str(e)[:200]}); this group runs eagerly", RuntimeWarning, stacklevel=2)
                self.logits = eager
                return eager(*args, **kwargs)

        self.logits = logits

    # ---- one update -----------------------------------------------------------------------------
    def gradients(self) -> torch.Tensor:
        """Per-run gradients (K, P) of the training loss on batch number ``self.step``."""
        flat = self.flat.detach().requires_grad_(True)
        batch = self.data.batch(self.step)
        x, y, eq, m, w, rows = batch
        pos, y, m, eq = self.data.rhs(eq, y, m)  # (K, B, R) ×3, (K, B)
        if self.fast:
            logits = self.logits(flat, self.data.plan_train, rows, pos, self.configs[0].dropout)
        else:  # the module itself, one run per vmap lane
            logits = self._vtrain_logits(flat, x, pos)
        loss = self._vmetrics(logits, y, eq, m, w)[0]  # (K,)
        for name, runs in self.other_losses.items():  # StableMax, float64 softmax: their own loss
            loss = torch.where(runs, self._vother[name](logits, y, eq, m, w)[0], loss)
        (g,) = torch.autograd.grad(loss.sum(), flat)  # runs are independent: ∂Σ/∂θ_k = ∂L_k/∂θ_k
        return g

    def optimizer_state(self) -> dict[str, torch.Tensor]:
        """The state tensors :func:`modarith.core.optim.update_` updates in place."""
        state = {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}
        for name in ("grad_ema", "ma_window", "ma_sum"):
            if getattr(self, name) is not None:
                state[name] = getattr(self, name)
        return state

    def update(self) -> None:
        """One optimizer step of every run, per-run settings (:func:`modarith.core.optim.update_`)."""
        g = self.gradients()  # (K, P)
        c0 = self.configs[0]
        optim.update_(self.flat, g, self.optimizer_state(), self.opt_cols, self.step, self.segments,
                      c0.beta1, c0.beta2, c0.eps)
        self.step += 1

    # ---- evaluation and snapshots ---------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> None:
        """Evaluate every run on its full train and validation sets into the history."""
        d = self.data
        pos, y, m, eq = d.eval_rhs  # (N, R) ×3, (N,)
        if self.fast:
            rows = torch.arange(d.N, device=self.device).expand(self.K, d.N)
            logits = self.logits(self.flat, d.plan_eval, rows, pos.expand(self.K, -1, -1))
        else:
            self.template.eval()  # no dropout at evaluation
            try:
                logits = self._vlogits(self.flat, d.X, pos)
            finally:
                self.template.train()
        loss, acc = self._vsample_metrics(logits, y, eq, m)  # (K, N) each
        cols = []
        collapse = []
        if self.configs[0].record_collapse:  # training fraction whose float32 softmax collapsed
            c = self._vcollapsed(logits, y, eq, m)  # (K, N)
            collapse = [(c * d.train_mask).sum(1) / d.train_mask.sum(1).clamp(min=1.0)]
        masks = [(d.train_mask, d.val_mask)] + [(d.train_mask * o, d.val_mask * o) for o in d.order_masks]
        for tm, vm in masks:
            for mask in (tm, vm):
                n = mask.sum(1).clamp(min=1.0)
                cols += [(loss * mask).sum(1) / n, (acc * mask).sum(1) / n]
        cols += [torch.linalg.vector_norm(self.flat, dim=1), torch.linalg.vector_norm(self.flat * self._no_emb, dim=1)]
        cols += collapse
        self.hist[:, self.n_evals_done] = torch.stack(cols, 1)
        self.n_evals_done += 1

    def evaluate_if_due(self) -> bool:
        """Evaluate when ``self.step`` is on the schedule; True when it did."""
        due = self.n_evals_done < len(self.eval_steps) and self.eval_steps[self.n_evals_done] == self.step
        if due:
            self.evaluate()
        return due

    def snapshot(self) -> None:
        """Keep a host copy of the parameters when the current step is a snapshot step."""
        n = len(self.snapshots)
        if n < len(self.snapshot_steps) and self.snapshot_steps[n] == self.step:
            self.snapshots.append(to_host(self.flat))

    # ---- results ----------------------------------------------------------------------------
    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Final weights of run k, as a plain state_dict of the model class (on the CPU)."""
        sd = {n: to_host(t) for n, t in self.layout.unflatten(self.flat[k]).items()}
        sd.update({n: to_host(b) for n, b in self.buffers.items()})
        return sd

    def run_snapshots(self, k: int) -> dict:
        """Snapshots of run k: ``{"steps": (n,) int64, "params": {name: (n, *shape)}}``."""
        steps = torch.tensor(self.snapshot_steps[:len(self.snapshots)], dtype=torch.long)
        flat = torch.stack([s[k] for s in self.snapshots]) if self.snapshots else \
            torch.zeros(0, self.flat.shape[1])  # (n, P)
        return {"steps": steps, "params": {n: t.clone() for n, t in self.layout.unflatten(flat).items()}}

    def history(self, k: int) -> dict[str, list[float]]:
        """Run k's history as plain lists (one host read of the whole group's history)."""
        hist = self.hist.cpu()
        h = {"step": list(self.eval_steps)}
        for j, name in enumerate(self.metric_names):
            h[name] = [float(v) for v in hist[k, :, j]]
        return h


def expected_counts(trainer: GroupTrainer, step: int) -> tuple[int, tuple[int, ...]]:
    """Evaluations done before the update of ``step``, and the snapshot counts a checkpoint at
    that step may hold (the one at ``step`` itself is taken, or not yet)."""
    snaps = trainer.snapshot_steps
    return bisect.bisect_right(trainer.eval_steps, step), (bisect.bisect_left(snaps, step),
                                                           bisect.bisect_right(snaps, step))
