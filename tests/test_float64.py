"""Training without float64 (Apple's MPS has none), checked without a Mac: a group on PyTorch's
``meta`` device builds, updates and evaluates under a dispatch mode that raises on any float64
operation off the host (the models are initialised on the CPU, as on every device). Every
registered model, with every switch; the switches that need float64 (StableMax's loss, the
Grokfast-MA running sum) are refused before training where float64 is missing."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from modarith.core import optim
from modarith.models import registry
from modarith.models.config import RunConfig
from modarith.runtime import devices
from modarith.runtime.group import GroupTrainer, group_key

TINY = dict(p=7, d_model=16, num_layers=1, num_heads=2, steps=4, eval_dense=2, eval_every=2)
SWITCHES = {  # every optimizer and loss switch that runs where float64 is missing
    "plain": {},
    "⊥Grad": {"orthograd": True},
    "Grokfast-EMA": {"grokfast_alpha": 0.9, "grokfast_lamb": 2.0},
    "warm-up": {"warmup_steps": 3},
    "Adam (coupled L2)": {"optimizer": "adam"},
    "collapse record": {"record_collapse": True},
}
NEEDS_FLOAT64 = {"StableMax": ({"loss": "stablemax"}, "loss"),
                 "Grokfast-MA": ({"grokfast_lamb": 2.0, "grokfast_window": 3}, "grokfast_window")}


class NoFloat64(TorchDispatchMode):
    """Raises on any operation that reads or makes a float64 tensor off the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves((args, kwargs, out)):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.device.type != "cpu":
                raise AssertionError(f"float64 on {t.device.type} in {func}")
        return out


def _one_update(configs):
    g = GroupTrainer(configs, device="meta")
    g.evaluate()
    g.update()
    g.update()  # the second update: Grokfast's and the warm-up's non-first branches
    g.evaluate()


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("model", list(registry.REGISTRY))
def test_no_float64_in_training(model, switch):
    """One group (two runs, one with the switch) trains and evaluates with no float64 op on the device."""
    configs = [RunConfig(model=model, seed=0, **TINY), RunConfig(model=model, seed=1, **TINY, **SWITCHES[switch])]
    if group_key(configs[0]) != group_key(configs[1]):  # a group-wide switch: both runs
        configs[0] = RunConfig(model=model, seed=0, **TINY, **SWITCHES[switch])
    with NoFloat64():
        _one_update(configs)


def test_the_guard_can_fail():
    """The guard sees a float64 operation on the device (here StableMax's loss, allowed where float64 exists)."""
    with pytest.raises(AssertionError, match="float64 on meta"), NoFloat64():
        _one_update([RunConfig(**TINY, loss="stablemax")])


@pytest.mark.parametrize("switch", NEEDS_FLOAT64)
def test_float64_switches_are_refused_before_training(switch, monkeypatch):
    """Where float64 is missing, StableMax and Grokfast-MA stop with the field and the device named."""
    monkeypatch.setattr(devices, "has_float64", lambda device: False)
    fields, name = NEEDS_FLOAT64[switch]
    with pytest.raises(ValueError, match=f"RunConfig.{name} = .* needs float64.*'meta'"):
        GroupTrainer([RunConfig(**TINY, **fields)], device="meta")


def test_mps_lacks_float64():
    assert not devices.has_float64("mps") and devices.has_float64("cpu") and devices.has_float64("cuda:1")


def test_warmup_factor_is_the_float64_factor():
    """The float32 warm-up factor equals the float64 computation it replaces, rounded to float32
    (so stored runs with a warm-up are unchanged): every update of warm-ups up to 1,000 steps."""
    W = torch.arange(0, 1001, dtype=torch.float32)[:, None]  # (1001, 1)
    for update in range(0, 1002):
        w64 = W.to(torch.float64)
        ref = torch.where(w64 > 0, (update / w64.clamp(min=1.0)).clamp(max=1.0), torch.ones_like(w64)).float()
        got = optim.warmup_factor(update, W)
        assert got.dtype == torch.float32 and torch.equal(got, ref), update
