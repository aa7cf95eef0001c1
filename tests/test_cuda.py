"""CUDA paths, run as is wherever a GPU exists (skipped without one).

Covered: the engine against a plain ``torch.optim.AdamW`` loop on the GPU, the fast path
against the reference modules, bf16 autocast against fp32, resume from a checkpoint with
dropout (the CUDA random stream saved and restored), ``device="auto"`` and one worker per
GPU. GPU kernels are not bit-reproducible across code paths, so comparisons use tolerances.
Only the public API is used: :func:`modarith.runtime.engine.train`, :class:`GroupTrainer`
(``gradients``, ``update``, ``step``) and the store.
"""

import dataclasses
import math

import pytest
import torch

from modarith.core.data import make_dataset, split_indices
from modarith.core.metrics import get_loss_and_accuracy
from modarith.models import init_model
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.group import GroupTrainer
from modarith.runtime.store import Store

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# N_train = 24 <= B: every step is the whole training set, so the plain loop needs no shuffle
TINY = dict(p=7, d_model=16, num_layers=1, num_heads=2, steps=25, eval_dense=25, eval_every=25)
METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "param_norm")


def _hist(rec) -> torch.Tensor:
    return torch.tensor([rec.history[k] for k in METRICS], dtype=torch.float64)


def _plain_adamw_loop(cfg: RunConfig, device: str):
    """The course's loop on ``device``: one model, torch.optim.AdamW, clip_grad_norm_; returns
    the model and the training loss before each update."""
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    tr, _ = split_indices(ds, cfg.r_train, cfg.seed)
    assert len(tr) <= cfg.batch_size
    x, y, eq, m = (t[tr].to(device) for t in (ds.source, ds.target, ds.eq_positions, ds.mask))
    model = init_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    losses = []
    for _ in range(cfg.total_steps):
        loss, _ = get_loss_and_accuracy(model(x)[0], y, eq, m)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_engine_matches_plain_adamw_loop_on_cuda(model, tmp_path):
    cfg = RunConfig(model=model, seed=3, lr=3e-3, weight_decay=0.5, clip_norm=0.05, **TINY)
    ref, ref_losses = _plain_adamw_loop(cfg, "cuda")
    rec = train([cfg], results=tmp_path, device="cuda", progress=False, workers=1)[0]
    assert rec.meta["device"].startswith("cuda")
    h = rec.history
    assert h["step"] == list(range(cfg.total_steps + 1))
    # train_loss at step t is the loss before update t, as in the loop
    torch.testing.assert_close(torch.tensor(h["train_loss"][:-1]), torch.tensor(ref_losses),
                               rtol=1e-4, atol=1e-5)
    ours = Store(tmp_path).load_weights(cfg)
    for name, p in ref.named_parameters():
        if name.endswith("W_K.bias"):  # softmax ignores a key bias: its gradient is rounding noise
            continue
        torch.testing.assert_close(ours[name], p.detach().cpu(), rtol=1e-3, atol=1e-4, msg=name)
    norm = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in ref.parameters()))
    assert h["param_norm"][-1] == pytest.approx(norm, rel=1e-4)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_fast_path_equals_reference_modules_on_cuda(model):
    """Same configs, same initial weights: gradients of the fast path and of the reference
    modules (``fast=False``) on the GPU; mixed orders, so padding is exercised."""
    cfgs = [RunConfig(model=model, p=5, orders=(2, 3), d_model=16, num_layers=2, num_heads=2,
                      batch_size=40, seed=s) for s in (0, 42)]
    fast, ref = GroupTrainer(cfgs, "cuda", fast=True), GroupTrainer(cfgs, "cuda", fast=False)
    assert fast.flat.is_cuda and torch.equal(fast.flat, ref.flat)
    for _ in range(3):  # a few steps (other batches), so the weights are no longer the initial ones
        gf, gr = fast.gradients(), ref.gradients()
        assert gf.is_cuda and gf.shape == fast.flat.shape
        torch.testing.assert_close(gf, gr, rtol=1e-4, atol=1e-6)
        assert gf.abs().sum() > 0
        fast.update()
        ref.update()
        assert fast.step == ref.step
        # the same weights again: Adam turns the rounding noise of gradients that are 0 in
        # exact arithmetic (a key bias) into lr-sized steps, so the updates are not compared
        with torch.no_grad():
            ref.flat.copy_(fast.flat)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_bf16_autocast_tracks_fp32_on_cuda(model):
    base = dict(model=model, p=7, d_model=32, num_layers=1, num_heads=2, steps=200, lr=3e-3,
                eval_dense=0, eval_every=50)
    fp32 = train(RunConfig(**base), results=None, device="cuda", progress=False, workers=1)[0].history
    bf16 = train(RunConfig(**base, precision="bf16"), results=None, device="cuda", progress=False,
                 workers=1)[0].history
    assert fp32["train_loss"] != bf16["train_loss"]  # autocast is engaged
    l0, b0 = fp32["train_loss"][0], bf16["train_loss"][0]
    assert abs(b0 - l0) / l0 < 5e-3, (l0, b0)
    assert abs(fp32["train_acc"][-1] - bf16["train_acc"][-1]) <= 0.1
    assert 0.5 < bf16["train_loss"][-1] / fp32["train_loss"][-1] < 2.0
    assert bf16["train_loss"][-1] < 0.1 * b0
    as_bf16 = torch.tensor(bf16["train_loss"]).bfloat16().float()
    assert not torch.equal(as_bf16, torch.tensor(bf16["train_loss"])), "losses are bf16-rounded"


class _Killed(Exception):
    pass


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_resume_with_dropout_from_a_checkpoint_on_cuda(model, tmp_path, monkeypatch):
    """A run killed after its checkpoint at step 20 resumes there and ends as an uninterrupted
    run does: the dropout masks after the resume come from the restored CUDA random stream."""
    cfg = RunConfig(model=model, seed=1, dropout=0.2, lr=3e-3,
                    **{**TINY, "num_layers": 2, "steps": 40, "eval_dense": 5, "eval_every": 5})
    # (2 layers: the LSTM applies dropout between layers only)
    whole = train([cfg], results=None, device="cuda", progress=False, workers=1)[0]
    no_dropout = train([dataclasses.replace(cfg, dropout=0.0)], results=None, device="cuda",
                       progress=False, workers=1)[0]
    assert not torch.allclose(_hist(whole), _hist(no_dropout), rtol=1e-3)  # dropout is on

    update = GroupTrainer.update

    def killed_at_25(self):
        if self.step == 25:
            raise _Killed
        update(self)

    monkeypatch.setattr(GroupTrainer, "update", killed_at_25)
    with pytest.raises(_Killed):
        train([cfg], results=tmp_path, device="cuda", progress=False, workers=1, checkpoint_every=10)
    monkeypatch.setattr(GroupTrainer, "update", update)
    assert Store(tmp_path).get(cfg) is None  # nothing stored: the run was interrupted
    resumed = train([cfg], results=tmp_path, device="cuda", progress=False, workers=1,
                    checkpoint_every=10)[0]
    assert resumed.meta["resumed_from_step"] == 20
    assert resumed.history["step"] == whole.history["step"]
    torch.testing.assert_close(_hist(resumed), _hist(whole), rtol=1e-4, atol=1e-5)


def test_auto_device_is_cuda(tmp_path):
    cfg = RunConfig(model="gpt", **TINY)
    rec = train([cfg], results=tmp_path, device="auto", progress=False, workers=1)[0]
    assert rec.meta["device"].startswith("cuda")


def test_one_worker_per_gpu(tmp_path):
    n = torch.cuda.device_count()
    # long enough (a few seconds a group) that every worker has started before one is idle
    cfgs = [RunConfig(model="lstm", seed=s, **{**TINY, "steps": 400, "eval_dense": 0, "eval_every": 100})
            for s in range(2 * n)]
    recs = train(cfgs, results=tmp_path, device="cuda", progress=False, workers=n)
    devices = {r.meta["device"] for r in recs}
    if n > 1:  # each worker process trained on its own GPU
        assert devices == {f"cuda:{i}" for i in range(n)}
    assert all(d.startswith("cuda") for d in devices)
    alone = train(cfgs, results=None, device="cuda", progress=False, workers=1)
    for r, a in zip(recs, alone):
        assert r.run_id == a.run_id
        torch.testing.assert_close(_hist(r), _hist(a), rtol=1e-4, atol=1e-5)
