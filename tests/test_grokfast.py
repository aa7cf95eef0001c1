"""Grokfast-EMA: off by default (run identities unchanged), equal to a plain single-model
loop (torch.optim.AdamW + clip_grad_norm_ + a hand-written EMA), per run inside groups, and
resumed exactly from a checkpoint."""

import hashlib
import json

import pytest
import torch
from test_engine import TINY, _hist, _reference_loop

from modarith.config import OPTIONAL_DEFAULTS, PROTOCOL, RunConfig, identity_dict, run_id
from modarith.engine import group_configs, train
from modarith.group import GroupTrainer

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
                                   dict(snapshot_every=100)])
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
])
def test_bad_grokfast_and_snapshot_fields(kwargs, field):
    with pytest.raises(ValueError, match=f"RunConfig.{field} = "):
        RunConfig(**kwargs)


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
def test_grokfast_group_equals_single_runs(model):
    configs = [
        RunConfig(model=model, seed=0, grokfast_alpha=0.98, grokfast_lamb=2.0, **TINY),
        RunConfig(model=model, seed=0, **TINY),  # filter off inside a group that has it on
        RunConfig(model=model, seed=1, lr=3e-3, grokfast_alpha=0.5, grokfast_lamb=5.0, **TINY),
    ]
    assert len(group_configs(configs)) == 1
    together = train(configs, results=None, progress=False)
    for cfg, rec in zip(configs, together):
        alone = train([cfg], results=None, progress=False)[0]
        torch.testing.assert_close(_hist(rec), _hist(alone), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(_hist(together[0]), _hist(together[1]))


def test_grokfast_state_resumes_exactly(tmp_path):
    cfg = RunConfig(model="gpt", seed=2, grokfast_alpha=0.9, grokfast_lamb=2.0, batch_size=16, **TINY)
    whole = GroupTrainer([cfg])
    whole.run(progress=False)
    first = GroupTrainer([cfg])
    first.run(progress=False, checkpoint=tmp_path / "ckpt.pt", checkpoint_every=7)  # last at 21
    second = GroupTrainer([cfg])
    second.load_state(tmp_path / "ckpt.pt")
    assert second.step == 21 and not torch.equal(second.grad_ema, torch.zeros_like(second.grad_ema))
    second.run(progress=False)
    assert torch.equal(second.flat, whole.flat)
    assert torch.equal(second.grad_ema, whole.grad_ema) and torch.equal(second.hist, whole.hist)


def test_no_grokfast_state_when_off():
    g = GroupTrainer([RunConfig(model="lstm", **TINY)])
    assert g.grad_ema is None and "grad_ema" not in g.state()
