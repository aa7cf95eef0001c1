"""Training engine: vectorised groups equal single runs, equal a plain torch loop, and learn."""

import math

import pytest
import torch

from modarith.core.data import make_dataset, split_indices
from modarith.core.metrics import get_loss_and_accuracy
from modarith.models import init_model
from modarith.models.config import RunConfig, run_id
from modarith.runtime.devices import resolve_device
from modarith.runtime.engine import group_configs, train
from modarith.runtime.group import GroupTrainer, group_key
from modarith.runtime.group import shuffle_perm as _shuffle_perm

# bit-exact comparisons: one thread here and in every worker process (conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(p=7, d_model=16, num_layers=1, num_heads=2, steps=25, eval_dense=5, eval_every=10)


def _hist(rec, keys=("train_loss", "val_loss", "train_acc", "val_acc", "param_norm")):
    return torch.tensor([rec.history[k] for k in keys])


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("batch_size", [512, 16])  # full batch, and reshuffled mini-batches
def test_group_equals_individual_runs(model, batch_size):
    configs = [
        RunConfig(model=model, seed=0, lr=1e-3, weight_decay=1.0, r_train=0.5, batch_size=batch_size, **TINY),
        RunConfig(model=model, seed=42, lr=3e-3, weight_decay=0.25, r_train=0.5, batch_size=batch_size, **TINY),
        RunConfig(model=model, seed=7, lr=2e-3, weight_decay=0.5, r_train=0.6, batch_size=batch_size,
                  clip_norm=0.5, **TINY),
    ]
    groups = group_configs(configs)
    assert len(groups) == 1 and len(groups[0]) == 3
    together = train(configs, results=None, progress=False, device="cpu")
    for cfg, rec in zip(configs, together):
        alone = train([cfg], results=None, progress=False, device="cpu")[0]
        assert rec.history["step"] == alone.history["step"]
        torch.testing.assert_close(_hist(rec), _hist(alone), rtol=1e-4, atol=1e-5)
    # the runs really differ from each other (per-run seed, lr, wd and split are honoured)
    assert not torch.allclose(_hist(together[0]), _hist(together[1]))


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("batch_size", [512, 16])
def test_run_with_dropout_in_a_group_equals_it_alone_bit_for_bit(model, batch_size, one_thread):
    """A run's numbers never depend on its group: dropout 0.3, a group of 3 against the run
    alone, on the CPU at one thread, exactly (every evaluation of the history, ‖θ‖₂ included)."""
    configs = [RunConfig(model=model, seed=s, lr=lr, dropout=0.3, batch_size=batch_size,
                         **{**TINY, "num_layers": 2}) for s, lr in ((0, 1e-3), (1, 3e-3), (2, 2e-3))]
    together = train(configs, results=None, progress=False, device="cpu")
    for cfg, rec in zip(configs, together):
        alone = train([cfg], results=None, progress=False, device="cpu")[0]
        assert rec.history == alone.history
    assert together[0].history != together[1].history
    # and dropout is on: the same run without dropout trains differently
    no_drop = train([RunConfig(**{**configs[0].to_dict(), "orders": (2,), "dropout": 0.0})], results=None,
                    progress=False, device="cpu")[0]
    assert no_drop.history["train_loss"] != together[0].history["train_loss"]


def _reference_loop(cfg: RunConfig, n_steps: int, filter_grads=None):
    """The course's straightforward loop: one model, torch.optim.AdamW, clip_grad_norm_
    (``filter_grads(model)``, when given, edits the gradients before clipping)."""
    ds = make_dataset(cfg.p, cfg.operator, cfg.orders)
    tr, _ = split_indices(ds, cfg.r_train, cfg.seed)
    model = init_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    losses = []
    spe = cfg.steps_per_epoch
    for t in range(n_steps):
        epoch, j = divmod(t, spe)
        order = tr[_shuffle_perm(cfg.seed, epoch, len(tr))] if spe > 1 else tr
        idx = order[j * cfg.batch_size:(j + 1) * cfg.batch_size]
        logits, _ = model(ds.source[idx])
        loss, _ = get_loss_and_accuracy(logits, ds.target[idx], ds.eq_positions[idx], ds.mask[idx])
        opt.zero_grad()
        loss.backward()
        if filter_grads is not None:
            filter_grads(model)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("batch_size", [512, 20])
def test_engine_matches_plain_torch_adamw_loop(model, batch_size):
    cfg = RunConfig(model=model, seed=3, lr=3e-3, weight_decay=0.5, clip_norm=0.05,
                    batch_size=batch_size, **TINY)
    n = 12
    ref_model, ref_losses = _reference_loop(cfg, n)
    g = GroupTrainer([cfg])
    for _ in range(n):
        g.update()
    ours = g.state_dict(0)
    for name, p in ref_model.named_parameters():
        if name.endswith("W_K.bias"):
            # softmax is invariant to a key bias: its true gradient is 0, what autograd returns is
            # rounding noise that Adam normalises to lr-sized steps, differently in any two codes.
            continue
        torch.testing.assert_close(ours[name], p.detach(), rtol=1e-4, atol=2e-6, msg=name)


def test_same_config_same_numbers():
    cfg = RunConfig(model="gpt", seed=5, batch_size=16, **TINY)
    a = train([cfg], results=None, progress=False, device="cpu")[0]
    b = train([cfg], results=None, progress=False, device="cpu")[0]
    assert a.history == b.history


def test_history_schedule_and_per_order_metrics():
    cfg = RunConfig(model="lstm", p=5, orders=(2, 3), d_model=8, num_layers=1, steps=12,
                    eval_dense=3, eval_every=5)
    rec = train([cfg], results=None, progress=False, device="cpu")[0]
    assert rec.history["step"] == [0, 1, 2, 3, 5, 10, 12]
    for k in ("train_loss_o2", "val_acc_o3", "param_norm"):
        assert len(rec.history[k]) == 7
    # the per-order accuracies average back to the overall accuracy, weighted by counts
    n2, n3 = round(0.5 * 25), round(0.5 * 125)
    for i in range(7):
        mix = (n2 * rec.history["train_acc_o2"][i] + n3 * rec.history["train_acc_o3"][i]) / (n2 + n3)
        assert math.isclose(mix, rec.history["train_acc"][i], abs_tol=1e-5)
    assert rec.summary["tf_A_train"] in rec.history["step"]


def test_total_steps_round_up_to_whole_epochs():
    cfg = RunConfig(p=31, r_train=0.9, batch_size=512, steps=10_001)  # 865 train rows: 2 steps/epoch
    assert cfg.steps_per_epoch == 2 and cfg.total_steps == 10_002
    assert RunConfig(p=31, r_train=0.5).total_steps == 10_001


@pytest.mark.parametrize("model,steps,lr", [("gpt", 800, 3e-3), ("lstm", 400, 3e-3)])
def test_learns_p11(model, steps, lr):
    """A small model on p = 11 fits its training set (memorisation) within a bounded budget."""
    cfg = RunConfig(model=model, p=11, d_model=32, num_layers=1, num_heads=2, lr=lr,
                    weight_decay=0.1, steps=steps, eval_every=50, eval_dense=0)
    rec = train([cfg], results=None, progress=False, device="cpu")[0]
    assert rec.summary["A_train"] >= 0.99, rec.summary
    assert rec.history["train_loss"][-1] < 0.1 * rec.history["train_loss"][0]


def test_bad_device_and_configs():
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="RunConfig"):
        train(["not a config"], results=None)


# ------------------------------------------------------------------------------- precision
@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_bf16_tracks_fp32_and_keeps_fp32_losses(model):
    """bf16 autocast for 200 steps against fp32: it is really on (histories differ), the
    initial loss agrees to bf16 matmul precision, both fit the training set, and the logged
    losses are fp32 numbers (a loss computed from un-upcast bf16 logits would be bf16-valued)."""
    base = dict(model=model, p=7, d_model=32, num_layers=1, num_heads=2, steps=200, lr=3e-3,
                eval_dense=0, eval_every=50)
    fp32 = train(RunConfig(**base), results=None, progress=False, device="cpu")[0].history
    bf16 = train(RunConfig(**base, precision="bf16"), results=None, progress=False, device="cpu")[0].history
    assert fp32["train_loss"] != bf16["train_loss"]  # autocast is engaged
    l0, b0 = fp32["train_loss"][0], bf16["train_loss"][0]
    assert abs(b0 - l0) / l0 < 5e-3, (l0, b0)
    assert abs(fp32["train_acc"][-1] - bf16["train_acc"][-1]) <= 0.1
    assert 0.5 < bf16["train_loss"][-1] / fp32["train_loss"][-1] < 2.0  # same training curve
    assert bf16["train_loss"][-1] < 0.1 * b0  # and it does train
    as_bf16 = torch.tensor(bf16["train_loss"]).bfloat16().float()
    assert not torch.equal(as_bf16, torch.tensor(bf16["train_loss"])), "losses are bf16-rounded"


# ------------------------------------------------------------------------------ checkpoints
def test_time_based_checkpoints_actually_save(tmp_path, monkeypatch):
    """Default cadence (checkpoint_every=None) with a tiny interval (and no cost back-off):
    a save at every eval_every multiple, each run's file loadable into a fresh group."""
    from modarith.runtime import checkpoint as ckpt
    from modarith.runtime import loop, runner
    from modarith.runtime.store import Store

    monkeypatch.setattr(runner, "CHECKPOINT_COST_FACTOR", 0.0)
    cfg = RunConfig(model="lstm", p=5, d_model=8, num_layers=1, steps=40, eval_dense=0, eval_every=5)
    store = Store(tmp_path)
    g = GroupTrainer([cfg], device="cpu")
    saver = runner.Checkpointer(store, every=None, interval_s=1e-9)
    saved = []
    orig = saver.save
    monkeypatch.setattr(saver, "save", lambda t: saved.append((t.step, [p.stat().st_size for p in orig(t)])))
    loop.fit(g, [saver])
    steps = [s for s, _ in saved]
    assert steps == list(range(5, 40, 5)), steps  # every eval_every multiple before the end
    assert all(n > 0 for _, sizes in saved for n in sizes)
    assert len(saver.seconds) == len(saved)
    fresh = GroupTrainer([cfg], device="cpu")
    ckpt.restore(fresh, [ckpt.load(store, run_id(cfg))])
    assert fresh.step == steps[-1]


# --------------------------------------------------------------------------------- workers
def test_split_groups_gives_every_worker_work():
    from modarith.runtime.engine import split_groups

    cfgs = [RunConfig(seed=s, **TINY) for s in range(5)] + [RunConfig(model="lstm", seed=0, **TINY)]
    groups = group_configs(cfgs)
    assert [len(g) for g in groups] == [5, 1]
    split = split_groups(groups, 4)
    assert len(split) == 4 and sorted(len(g) for g in split) == [1, 1, 2, 2]
    assert sorted(run_id(c) for g in split for c in g) == sorted(run_id(c) for c in cfgs)
    assert all(len({group_key(c) for c in g}) == 1 for g in split)
    assert len(split_groups(groups, 10)) == 6  # never more groups than runs
    assert split_groups(groups, 1) == [groups[0], groups[1]]


def test_default_workers(monkeypatch):
    from modarith.runtime import engine

    monkeypatch.delenv("MODARITH_WORKERS", raising=False)
    small = [[RunConfig(**TINY)], [RunConfig(model="gpt", p=11, d_model=32, num_layers=1, steps=800)]]
    big = [[RunConfig(steps=300, seed=s) for s in (0, 42)]]  # bench.py's end-to-end workload: 2 seeds x 300 steps
    assert engine.spec_equivalent_run_steps(big) == 600
    assert engine.default_workers("cpu", small) == 1  # process start would cost more
    assert engine.default_workers("cpu", big) == engine.cpu_cores()
    monkeypatch.setenv("MODARITH_WORKERS", "3")
    assert engine.default_workers("cpu", small) == 3
    monkeypatch.setenv("MODARITH_WORKERS", "0")
    with pytest.raises(ValueError, match="MODARITH_WORKERS"):
        engine.default_workers("cpu", big)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_workers(bad):
    with pytest.raises(ValueError, match="workers"):
        train([RunConfig(**TINY)], results=None, workers=bad)


def test_workers_over_shared_store_equal_in_process(tmp_path, capsys):
    """Two worker processes (a group of 2 split in two) give the in-process group's numbers,
    store every run, show one overall bar, and a rerun loads instead of training."""
    cfgs = [RunConfig(model="gpt", seed=s, batch_size=16, **TINY) for s in (0, 42)]
    alone = train(cfgs, results=None, progress=False, device="cpu", workers=1)
    got = train(cfgs, results=tmp_path, progress=True, device="cpu", workers=2)
    err = capsys.readouterr().err
    assert "2 groups, 2 workers" in err and "run-step" in err
    for a, b in zip(alone, got):
        assert a.run_id == b.run_id and b.meta["group_size"] == 1 and a.meta["group_size"] == 2
        assert a.history["step"] == b.history["step"]
        torch.testing.assert_close(_hist(b), _hist(a), rtol=1e-4, atol=1e-5)
        assert b.meta["group_wall_time_s"] == b.meta["wall_time_share_s"] > 0
    assert math.isclose(alone[0].meta["wall_time_share_s"] * 2, alone[0].meta["group_wall_time_s"])
    again = train(cfgs, results=tmp_path, progress=False, device="cpu", workers=2)
    assert [r.history for r in again] == [r.history for r in got]
    assert [r.meta["created"] for r in again] == [r.meta["created"] for r in got]  # loaded


def test_cpu_groups_are_capped_evenly_by_default():
    """On the CPU a shape's runs train in the fewest groups of at most CPU_MAX_GROUP, as even as
    possible; elsewhere, and with an explicit cap, as asked; every run in exactly one group."""
    from modarith.runtime.engine import CPU_MAX_GROUP, engine_groups

    cfgs = [RunConfig(model="lstm", p=7, d_model=8, num_layers=1, steps=2, seed=s) for s in range(20)]
    assert CPU_MAX_GROUP == 9
    groups, n = engine_groups(cfgs, "cpu", workers=1)
    assert [len(g) for g in groups] == [7, 7, 6] and n == 1
    assert sorted(run_id(c) for g in groups for c in g) == sorted(run_id(c) for c in cfgs)
    assert [len(g) for g in engine_groups(cfgs, "cuda", workers=1)[0]] == [20]
    assert [len(g) for g in engine_groups(cfgs, "cpu", workers=1, max_group_size=20)[0]] == [20]
    assert [len(g) for g in group_configs(cfgs, 6)] == [5, 5, 5, 5]
