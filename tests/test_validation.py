"""The numbers the report is about, checked independently of the engine.

After training, the stored final weights are loaded into the plain model; the loss and accuracy
are recomputed with ``get_loss_and_accuracy`` on the train split and on the validation split
(from ``data.split_indices``, not from the engine) and compared with the last history entry,
for both models, for mixed orders, and for the per-order columns.
"""

import pytest
import torch

from modarith.core.data import make_dataset, split_indices
from modarith.core.metrics import get_loss_and_accuracy
from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.store import load_model

TINY = dict(p=5, d_model=16, num_layers=1, num_heads=2, steps=40, eval_dense=0, eval_every=20,
            lr=1e-2, r_train=0.5)


def _metrics(model, ds, idx):
    with torch.no_grad():
        logits = model(ds.source[idx])[0]  # (n, S, V), the plain full forward
    loss, acc = get_loss_and_accuracy(logits, ds.target[idx], ds.eq_positions[idx], ds.mask[idx])
    return float(loss), float(acc)


@pytest.mark.parametrize("model", ["gpt", "lstm"])
@pytest.mark.parametrize("orders", [(2,), (2, 3)])
def test_last_history_entry_equals_independent_metrics(tmp_path, model, orders):
    configs = [RunConfig(model=model, orders=orders, seed=s, **TINY) for s in (0, 3)]
    records = train(configs, results=tmp_path, device="cpu", progress=False)
    ds = make_dataset(5, "+", orders)
    for cfg, rec in zip(configs, records):
        net = load_model(cfg, tmp_path, device="cpu")
        tr, va = split_indices(ds, cfg.r_train, cfg.seed)
        last = {k: v[-1] for k, v in rec.history.items()}
        assert last["step"] == cfg.total_steps
        checks = {"train": tr, "val": va}
        if len(orders) > 1:
            for o in orders:
                checks[f"train_o{o}"] = tr[ds.orders[tr] == o]
                checks[f"val_o{o}"] = va[ds.orders[va] == o]
        for name, idx in checks.items():
            split, _, suffix = name.partition("_")
            loss, acc = _metrics(net, ds, idx)
            key = f"{split}_loss" + (f"_{suffix}" if suffix else "")
            assert last[key] == pytest.approx(loss, rel=1e-4, abs=1e-6), (cfg.seed, key)
            assert last[key.replace("loss", "acc")] == pytest.approx(acc, abs=1e-6), (cfg.seed, key)
        # train and validation differ (else a swapped or shared mask would pass unnoticed)
        assert last["train_loss"] != pytest.approx(last["val_loss"], rel=1e-3)
