"""Grokfast-EMA: off by default (run identities unchanged), equal to a plain single-model
loop (torch.optim.AdamW + clip_grad_norm_ + a hand-written EMA), per run inside groups, and
resumed exactly from a checkpoint."""

import hashlib
import json

import pytest
import torch
from test_engine import TINY, _hist, _reference_loop

from modarith.models.config import OPTIONAL_DEFAULTS, PROTOCOL, RunConfig, identity_dict, run_id
from modarith.runtime.engine import group_configs, train
from modarith.runtime.group import GroupTrainer

# the fields RunConfig had before the optional features: their hash is the old identity
LEGACY_FIELDS = {"model", "p", "operator", "orders", "r_train", "seed", "num_layers", "d_model",
                 "num_heads", "multiplier", "dropout", "non_linearity", "lr", "weight_decay",
                 "beta1", "beta2", "eps", "clip_norm", "batch_size", "steps", "eval_dense",
                 "eval_every", "precision"}


def _legacy_run_id(cfg: RunConfig) -> str:
    """run_id as it was before the optional fields existed (protocol + the legacy fields)."""
    d = {"protocol": PROTOCOL, **{k: v for k, v in cfg.to_dict().items() if k in LEGACY_FIELDS}}
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


@pytest.mark.parametrize("cfg", [RunConfig(), RunConfig(model="lstm", seed=42, lr=3e-3)])
def test_default_run_id_unchanged(cfg):
    assert set(identity_dict(cfg)) == LEGACY_FIELDS
    assert run_id(cfg) == _legacy_run_id(cfg)


@pytest.mark.parametrize("extra", [dict(grokfast_alpha=0.98, grokfast_lamb=2.0), dict(snapshots_log=5),
                                   dict(snapshot_every=100), dict(optimizer="adam"), dict(warmup_steps=10),
                                   dict(grokfast_window=100, grokfast_lamb=5.0), dict(orthograd=True),
                                   dict(loss="stablemax"), dict(record_collapse=True)])
def test_optional_fields_enter_identity_when_set(extra):
    cfg = RunConfig(**extra)
    assert set(identity_dict(cfg)) == LEGACY_FIELDS | set(extra)
    assert run_id(cfg) != run_id(RunConfig())
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert set(OPTIONAL_DEFAULTS) >= set(extra)


@pytest.mark.parametrize("kwargs, field", [
    (dict(grokfast_alpha=1.0, grokfast_lamb=2.0), "grokfast_alpha"),
    (dict(grokfast_alpha=-0.1, grokfast_lamb=2.0), "grokfast_alpha"),
    (dict(grokfast_alpha=0.9, grokfast_lamb=-1.0), "grokfast_lamb"),
    (dict(grokfast_alpha=0.9, grokfast_lamb=float("inf")), "grokfast_lamb"),
    (dict(grokfast_alpha=0.9), "grokfast_lamb"),
    (dict(grokfast_lamb=2.0), "grokfast_alpha"),
    (dict(snapshots_log=-1), "snapshots_log"),
    (dict(snapshot_every=1.5), "snapshot_every"),
    (dict(grokfast_window=-1), "grokfast_window"),
    (dict(grokfast_window=10), "grokfast_lamb"),
    (dict(grokfast_window=10, grokfast_lamb=2.0, grokfast_alpha=0.9), "grokfast_alpha"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(loss="sparsemax"), "loss"),
    (dict(warmup_steps=-1), "warmup_steps"),
    (dict(orthograd=1), "orthograd"),
    (dict(record_collapse="yes"), "record_collapse"),
    (dict(clip_norm=-1.0), "clip_norm"),
    (dict(clip_norm=float("inf")), "clip_norm"),
])
def test_bad_grokfast_and_snapshot_fields(kwargs, field):
    with pytest.raises(ValueError, match=f"RunConfig.{field} = "):
        RunConfig(**kwargs)


def test_clip_norm_zero_means_off_and_ma_is_not_ema():
    assert RunConfig(clip_norm=0).clip_norm == 0.0
    ma = RunConfig(grokfast_window=50, grokfast_lamb=5.0)
    assert ma.grokfast_ma and not ma.grokfast
    ema = RunConfig(grokfast_alpha=0.98, grokfast_lamb=2.0)
    assert ema.grokfast and not ema.grokfast_ma


class HandEMA:
    """The Grokfast paper's ``gradfilter_ema``, one model: ema = grad at the first step."""

    def __init__(self, alpha: float, lamb: float):
        self.alpha, self.lamb, self.ema = alpha, lamb, {}

    def __call__(self, model: torch.nn.Module) -> None:
        for n, p in model.named_parameters():
            if n not in self.ema:
                self.ema[n] = p.grad.detach().clone()
            else:
                self.ema[n] = self.ema[n] * self.alpha + p.grad.detach() * (1 - self.alpha)
            p.grad = p.grad + self.ema[n] * self.lamb


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("batch_size", [512, 20])
def test_grokfast_matches_plain_loop_with_hand_ema(model, batch_size):
    cfg = RunConfig(model=model, seed=3, lr=3e-3, weight_decay=0.5, clip_norm=0.5,
                    batch_size=batch_size, grokfast_alpha=0.9, grokfast_lamb=3.0, **TINY)
    n = 12
    ref_model, _ = _reference_loop(cfg, n, filter_grads=HandEMA(cfg.grokfast_alpha, cfg.grokfast_lamb))
    plain_model, _ = _reference_loop(cfg, n)
    g = GroupTrainer([cfg])
    for _ in range(n):
        g.update()
    ours = g.state_dict(0)
    differs = False
    for name, p in ref_model.named_parameters():
        if name.endswith("W_K.bias"):  # true gradient 0: rounding noise (see test_engine)
            continue
        torch.testing.assert_close(ours[name], p.detach(), rtol=1e-4, atol=2e-6, msg=name)
        differs |= not torch.allclose(p, dict(plain_model.named_parameters())[name], atol=1e-4)
    assert differs, "the filter must change the trajectory"


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_grokfast_group_equals_single_runs(model, one_thread):
    configs = [
        RunConfig(model=model, seed=0, grokfast_alpha=0.98, grokfast_lamb=2.0, **TINY),
        RunConfig(model=model, seed=0, **TINY),  # filter off inside a group that has it on
        RunConfig(model=model, seed=1, lr=3e-3, grokfast_alpha=0.5, grokfast_lamb=5.0, **TINY),
    ]
    assert len(group_configs(configs)) == 1
    together = train(configs, results=None, device="cpu", progress=False)
    for cfg, rec in zip(configs, together):
        alone = train([cfg], results=None, device="cpu", progress=False)[0]
        torch.testing.assert_close(_hist(rec), _hist(alone), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(_hist(together[0]), _hist(together[1]))


def crash_after_checkpoint(monkeypatch, configs, results, at: int, every: int) -> None:
    """Train ``configs`` into ``results`` with a checkpoint every ``every`` updates and an
    in-process crash at update ``at`` (the next train() call resumes them)."""
    orig = GroupTrainer.update

    def crash(self):
        if self.step == at:
            raise KeyboardInterrupt
        orig(self)

    monkeypatch.setattr(GroupTrainer, "update", crash)
    with pytest.raises(KeyboardInterrupt):
        train(configs, results=results, progress=False, device="cpu", checkpoint_every=every)
    monkeypatch.setattr(GroupTrainer, "update", orig)


@pytest.mark.parametrize("extra", [dict(grokfast_alpha=0.9, grokfast_lamb=2.0),
                                   dict(grokfast_window=4, grokfast_lamb=3.0)])
def test_filter_state_resumes_exactly_in_any_group(tmp_path, monkeypatch, extra):
    """A run crashes after its checkpoint at step 7; rerun inside a group whose other run has
    a larger MA window, it resumes from its own filter state and equals an uninterrupted run."""
    cfg = RunConfig(model="gpt", seed=2, batch_size=16, **TINY, **extra)
    other = RunConfig(model="gpt", seed=5, batch_size=16, grokfast_window=6, grokfast_lamb=1.0, **TINY)
    expected = train([cfg], results=None, progress=False, device="cpu")[0]
    crash_after_checkpoint(monkeypatch, [cfg], tmp_path, at=9, every=7)
    got, _ = train([cfg, other], results=tmp_path, progress=False, device="cpu", checkpoint_every=7)
    assert got.meta["resumed_from_step"] == 7
    assert got.history == expected.history


def test_no_filter_state_when_off():
    from modarith.runtime import checkpoint

    g = GroupTrainer([RunConfig(model="lstm", **TINY)])
    assert g.grad_ema is None and g.ma_window is None
    assert not {"grad_ema", "ma_window", "ma_sum"} & set(checkpoint.run_state(g, 0, 0.0))


# ---- the other switches inside the trainer -------------------------------------------------------
def _switch_loop(cfg: RunConfig, n_steps: int):
    """A plain single-model loop of the switches, from their authors' formulas:
    gradfilter_ma (window, λ; warm-up) or gradfilter_ema, OrthoGrad's per-tensor projection,
    torch.optim.Adam (coupled L2) or AdamW with the paper's LambdaLR warm-up, clipping when
    clip_norm > 0, StableMax cross-entropy when asked."""
    from collections import deque

    from test_engine import _shuffle_perm

    from modarith.core.data import make_dataset, split_indices
    from modarith.core.metrics import get_loss_and_accuracy
    from modarith.models import init_model

    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    tr, _ = split_indices(ds, cfg.r_train, cfg.seed)
    model = init_model(cfg)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    opt = cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2),
              eps=cfg.eps)
    W = cfg.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: 1 if u > W else u / W) if W else None
    window = {n: deque(maxlen=cfg.grokfast_window) for n, _ in model.named_parameters()}
    ema = {}
    spe = cfg.steps_per_epoch
    for t in range(n_steps):
        epoch, j = divmod(t, spe)
        order = tr[_shuffle_perm(cfg.seed, epoch, len(tr))] if spe > 1 else tr
        idx = order[j * cfg.batch_size:(j + 1) * cfg.batch_size]
        logits, _ = model(ds.source[idx])
        loss, _ = get_loss_and_accuracy(logits, ds.target[idx], ds.eq_positions[idx], ds.mask[idx],
                                        loss=cfg.loss)
        opt.zero_grad()
        loss.backward()
        for n, p in model.named_parameters():
            if cfg.grokfast_ma:
                window[n].append(p.grad.detach().clone())
                if len(window[n]) == cfg.grokfast_window:
                    p.grad = p.grad + cfg.grokfast_lamb * sum(window[n]) / len(window[n])
            elif cfg.grokfast:
                ema[n] = p.grad.detach().clone() if n not in ema else \
                    ema[n] * cfg.grokfast_alpha + p.grad.detach() * (1 - cfg.grokfast_alpha)
                p.grad = p.grad + cfg.grokfast_lamb * ema[n]
        if cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        if cfg.orthograd:
            with torch.no_grad():
                for p in model.parameters():
                    w, g = p.view(-1), p.grad.view(-1)
                    g_orth = g - torch.dot(w, g) / (torch.dot(w, w) + 1e-30) * w
                    p.grad.copy_((g_orth * (g.norm() / (g_orth.norm() + 1e-30))).view_as(p))
        opt.step()
        if sched is not None:
            sched.step()
    return model


SWITCHES = [
    dict(optimizer="adam", weight_decay=0.005, beta2=0.98, warmup_steps=4, clip_norm=0.0,
         grokfast_alpha=0.98, grokfast_lamb=2.0),  # the Grokfast paper's recipe
    dict(grokfast_window=5, grokfast_lamb=4.0),  # Grokfast-MA
    dict(orthograd=True, clip_norm=0.5),  # ⊥Grad
    dict(loss="stablemax"),  # StableMax
]


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("extra", SWITCHES)
def test_switches_match_their_plain_loop(model, extra):
    cfg = RunConfig(model=model, seed=3, lr=3e-3, batch_size=20, **{**TINY, **extra})
    n = 12
    ref = _switch_loop(cfg, n)
    g = GroupTrainer([cfg])
    for _ in range(n):
        g.update()
    ours = g.state_dict(0)
    for name, p in ref.named_parameters():
        if name.endswith("W_K.bias"):  # true gradient 0: rounding noise (see test_engine)
            continue
        torch.testing.assert_close(ours[name], p.detach(), rtol=1e-4, atol=3e-6, msg=name)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_switches_group_equals_single_runs(model, one_thread):
    configs = [RunConfig(model=model, seed=s, batch_size=20, record_collapse=True,
                         **{**TINY, **{k: v for k, v in x.items() if k != "beta2"}})  # β₂: group-wide
               for s, x in enumerate([{}, *SWITCHES])]
    assert len(group_configs(configs)) == 1  # per-run switches share one vectorised group
    together = train(configs, results=None, progress=False, device="cpu")
    keys = ("train_loss", "val_loss", "train_acc", "val_acc", "param_norm", "train_collapse")
    for cfg, rec in zip(configs, together):
        alone = train([cfg], results=None, progress=False, device="cpu")[0]
        torch.testing.assert_close(_hist(rec, keys), _hist(alone, keys), rtol=1e-4, atol=1e-5)
        assert all(0.0 <= v <= 1.0 for v in rec.history["train_collapse"])
    assert "train_collapse" not in train([RunConfig(model=model, **TINY)], results=None, progress=False)[0].history


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_collapse_fraction_is_recorded_from_the_runs_logits(model):
    """At initialisation no training sample has collapsed; once the run fits its training
    samples and its weights are scaled up, the logits spread and the recorded fraction
    equals softmax_collapsed on the model's own logits, over the run's training samples."""
    from modarith.core.metrics import softmax_collapsed
    from modarith.study.progress_measures import model_at

    cfg = RunConfig(model=model, lr={"gpt": 1e-3, "lstm": 1e-2}[model], record_collapse=True, **TINY)
    g = GroupTrainer([cfg], "cpu")
    col = g.metric_names.index("train_collapse")
    g.evaluate()
    assert g.hist[0, 0, col] == 0.0
    for _ in range(150):
        g.update()
    g.flat *= 40.0
    g.evaluate()
    got = float(g.hist[0, 1, col])
    d = g.data
    with torch.no_grad():
        logits = model_at(cfg, g.state_dict(0))(d.X)[0]
    c = softmax_collapsed(logits, d.Y, d.EQ, d.M)
    want = float((c * d.train_mask[0]).sum() / d.train_mask[0].sum())
    assert got == pytest.approx(want, abs=1e-6) and got > 0.0


def test_switches_read_nothing_from_the_device_and_checkpoint():
    """Every switch on PyTorch's ``meta`` device (any host read raises), with checkpoints of
    the filter state written and restored."""
    import io

    from modarith.runtime import checkpoint

    cfgs = [RunConfig(model="gpt", seed=s, batch_size=8, record_collapse=True,
                      **{**TINY, **{k: v for k, v in x.items() if k != "beta2"}}) for s, x in enumerate(SWITCHES)]
    g = GroupTrainer(cfgs, device="meta")
    for _ in range(3):
        g.evaluate_if_due()
        g.update()
    g.evaluate_if_due()  # a checkpoint follows the step's evaluation
    buf = io.BytesIO()
    torch.save([checkpoint.run_state(g, k, 0.0) for k in range(len(cfgs))], buf)
    buf.seek(0)
    g2 = GroupTrainer(cfgs, device="meta")
    checkpoint.restore(g2, torch.load(buf, weights_only=True))
    assert g2.step == 3 and g2.ma_window.device.type == "meta"
    g2.update()
