"""Device discipline without a GPU: a group on PyTorch's ``meta`` device (no data, no host
reads possible) trains, evaluates, checkpoints and restores; OOM errors are recognised."""

import io

import pytest
import torch

from modarith.models.config import RunConfig
from modarith.runtime import checkpoint as ckpt
from modarith.runtime import devices
from modarith.runtime.group import GroupTrainer

TINY = dict(p=7, d_model=16, num_layers=1, num_heads=2, steps=12, eval_dense=3, eval_every=5)


def _steps(g: GroupTrainer, n: int) -> None:
    for _ in range(n):
        g.snapshot()
        g.evaluate_if_due()
        g.update()


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("batch_size", [512, 8])  # full batch, and device-side reshuffles
def test_group_lives_on_its_device_with_no_host_reads(model, batch_size):
    """Every tensor of a group on ``meta``: any host/device mixing raises (``Tensor on device
    cpu is not on the expected device meta``), and so does any host read in a step
    (``.item()``, ``int()`` of a meta tensor). The configs are not mutated."""
    cfgs = [RunConfig(model=model, seed=s, batch_size=batch_size, grokfast_alpha=0.9, grokfast_lamb=1.0,
                      snapshot_every=4, **TINY) for s in (0, 1, 2)]
    before = [c.to_dict() for c in cfgs]
    g = GroupTrainer(cfgs, device="meta")
    _steps(g, 6)
    tensors = [g.flat, g.exp_avg, g.exp_avg_sq, g.grad_ema, g.hist, *g.opt_cols.values(), g.data.X, g.data.Y,
               g.data.train_mask, g.data.val_mask, *g.buffers.values()]
    assert {t.device.type for t in tensors} == {"meta"}
    assert [c.to_dict() for c in cfgs] == before
    states = [ckpt.run_state(g, k, 0.0) for k in range(3)]
    buf = io.BytesIO()
    torch.save(states, buf)  # a checkpoint write of meta tensors
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    g2 = GroupTrainer(cfgs, device="meta")
    ckpt.restore(g2, loaded)
    assert g2.step == 6 and g2.flat.device.type == "meta" and len(g2.snapshots) == 2
    _steps(g2, 2)


def test_meta_group_catches_a_host_read():
    """The check above can fail: a host read in the step raises on ``meta``."""
    g = GroupTrainer([RunConfig(**TINY)], device="meta")
    g.update()
    with pytest.raises((RuntimeError, NotImplementedError)):
        float(g.hist.sum())


@pytest.mark.parametrize("text", ["CUDA out of memory. Tried to allocate 2.00 GiB",
                                  "MPS backend out of memory",
                                  "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"])
def test_out_of_memory_errors_are_recognised(text):
    assert devices.is_out_of_memory(RuntimeError(text))
    assert not devices.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not devices.is_out_of_memory(ValueError(text))


def test_add_note_works_without_python_311_add_note():
    class OldError(RuntimeError):  # as on Python 3.10: no add_note
        add_note = property(lambda self: (_ for _ in ()).throw(AttributeError("add_note")))

    e = RuntimeError("out of memory")
    devices.add_note(e, "a hint")
    assert "a hint" in (getattr(e, "__notes__", []) + list(e.args))
    old = OldError("out of memory")
    assert not hasattr(old, "add_note")
    devices.add_note(old, "a hint")
    assert old.args == ("out of memory", "a hint")


def test_configure_on_cpu_changes_nothing(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    devices.configure("cpu", deterministic=True)
    assert "CUBLAS_WORKSPACE_CONFIG" not in __import__("os").environ
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", 3])
def test_bad_device_names(bad):
    with pytest.raises(ValueError, match="device"):
        devices.resolve_device(bad)


def test_plan_times_an_out_of_memory_group_as_its_halves(monkeypatch):
    """An out-of-memory error while timing a group (as on a small GPU) is not fatal: the plan
    times the halves the runner would train; any other error is raised."""
    from modarith.runtime import plan

    cfgs = [RunConfig(seed=s, **TINY) for s in range(4)]
    sizes = []
    orig = GroupTrainer.update

    def update(self):
        sizes.append(self.K)
        if self.K > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        orig(self)

    monkeypatch.setattr(GroupTrainer, "update", update)
    table = plan.plan(cfgs, None, "cpu")
    assert list(table["runs"]) == [4] and table["eta_s"].iloc[0] > 0
    assert set(sizes) == {4, 2, 1}
    monkeypatch.setattr(GroupTrainer, "update", lambda self: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):
        plan.plan(cfgs, None, "cpu")


def test_failed_compilation_warns_once_and_trains_eagerly(monkeypatch):
    """``train(compile=...)``: a compiler that fails at the first call falls back with one
    warning naming the mode, and the numbers are the eager ones."""
    from modarith.runtime.engine import train

    cfg = RunConfig(**TINY)
    eager = train([cfg], results=None, progress=False, device="cpu")[0]
    calls = []

    def broken_compile(fn, mode=None, dynamic=None):
        def run(*a, **k):
            calls.append(mode)
            raise RuntimeError("inductor: no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="reduce-overhead") as caught:
        got = train([cfg], results=None, progress=False, device="cpu", compile="reduce-overhead")[0]
    assert len([w for w in caught if "torch.compile" in str(w.message)]) == 1 and calls == ["reduce-overhead"]
    assert got.history == eager.history
    with pytest.raises(ValueError, match="compile"):
        train([cfg], results=None, compile="fast")
    with pytest.raises(ValueError, match="deterministic"):
        train([cfg], results=None, deterministic="yes")
