"""The training protocol is part of a run's identity: runs stored under an older protocol
(split by torch.randperm, default LSTM gate init) are never reused; the store says why."""

import json

import pytest

from modarith.models.config import PROTOCOL, RunConfig, run_id
from modarith.runtime.engine import train
from modarith.runtime.store import Store

CFG = RunConfig(model="lstm", p=5, d_model=8, num_layers=1, steps=6, eval_dense=2, eval_every=3)


def test_run_id_depends_on_protocol():
    assert PROTOCOL >= 2
    ids = {run_id(CFG, protocol=v) for v in range(1, PROTOCOL + 1)}
    assert len(ids) == PROTOCOL  # every protocol gives another identity
    assert run_id(CFG) == run_id(CFG, protocol=PROTOCOL)
    with pytest.raises(ValueError, match="protocol"):
        run_id(CFG, protocol=99)


def _make_old_store(path):
    """Train CFG, then relabel its files as a protocol-1 record (no 'protocol' key, old id)."""
    store = Store(path)
    train([CFG], results=path, device="cpu", progress=False)
    new_id, old_id = run_id(CFG), run_id(CFG, protocol=1)
    data = json.loads(store.record_path(new_id).read_text())
    del data["protocol"]
    data["run_id"] = old_id
    store.record_path(old_id).write_text(json.dumps(data))
    store.weights_path(new_id).rename(store.weights_path(old_id))
    store.record_path(new_id).unlink()
    return store, old_id


def test_train_sets_old_run_aside_and_says_why(tmp_path):
    store, old_id = _make_old_store(tmp_path)
    with pytest.warns(UserWarning, match=r"protocol 1 .*not reused, the run is retrained"):
        rec = train([CFG], results=tmp_path, device="cpu", progress=False)[0]
    assert rec.run_id == run_id(CFG) != old_id
    assert not store.record_path(old_id).exists() and not store.weights_path(old_id).exists()
    moved = sorted(p.name for p in store.corrupt.iterdir())
    assert any(n.startswith(f"{old_id}.json") for n in moved)
    assert any(n.startswith(f"{old_id}.pt") for n in moved)
    assert store.get(CFG) is not None


def test_listing_never_returns_old_protocol_records(tmp_path):
    store, old_id = _make_old_store(tmp_path)
    with pytest.warns(UserWarning, match="protocol 1"):
        assert store.records() == []
