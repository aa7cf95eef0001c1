"""Results store: round trip, atomic files, and every kind of corrupt or foreign file is
reported (path + reason), moved to corrupt/ (never deleted) and retrained, never used."""

import json
import os
import pickle
import time
import warnings

import pytest
import torch

from modarith.models.config import RunConfig, run_id
from modarith.runtime import checkpoint as ckpt
from modarith.runtime.engine import train
from modarith.runtime.group import GroupTrainer
from modarith.runtime.store import SCHEMA, CorruptRecord, Store, atomic_torch_save, load_model

TINY = dict(model="lstm", p=5, d_model=8, num_layers=1, steps=6, eval_dense=2, eval_every=3)
CFG = RunConfig(seed=0, **TINY)


@pytest.fixture
def stored(tmp_path):
    """A results folder with CFG trained; returns (store, record)."""
    rec = train([CFG], results=tmp_path, progress=False, device="cpu")[0]
    return Store(tmp_path), rec


def _corrupt_files(store):
    return sorted(p.name for p in store.corrupt.iterdir()) if store.corrupt.exists() else []


def _retrained_after(store, reason, names=(".json",)):
    """train() warns with the path and reason, moves the file(s) aside and retrains."""
    rpath = store.record_path(CFG)
    with pytest.warns(UserWarning) as caught:
        rec = train([CFG], results=store.path, progress=False, device="cpu")[0]
    messages = [str(w.message) for w in caught]
    assert any(str(rpath.parent) in m and reason in m for m in messages), messages
    moved = _corrupt_files(store)
    assert any(n.startswith(f"{run_id(CFG)}{names[0]}") for n in moved), moved
    assert rec.history == train([CFG], results=None, progress=False, device="cpu")[0].history
    assert store.get(CFG) is not None  # the retrained record is stored and valid
    return moved


def test_round_trip_and_meta(stored):
    store, rec = stored
    again = store.get(CFG)
    assert again.history == rec.history and again.config == CFG
    assert again.meta["schema"] == SCHEMA and again.meta["weights_bytes"] > 0
    assert len(again.meta["weights_sha256"]) == 64
    model = load_model(CFG, store.path)
    assert set(model.state_dict()) == set(store.load_weights(CFG))
    assert len(store.summaries()) == 1
    assert not list(store.path.rglob(".*.tmp"))


def _edit_json(store, fn):
    path = store.record_path(CFG)
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


CASES = {
    "truncated": (lambda s: s.record_path(CFG).write_bytes(s.record_path(CFG).read_bytes()[:200]),
                  "not valid JSON"),
    "garbage": (lambda s: s.record_path(CFG).write_bytes(os.urandom(300)), "not valid JSON"),
    "not an object": (lambda s: s.record_path(CFG).write_text("[1, 2, 3]"), "not a JSON object"),
    "older schema": (lambda s: _edit_json(s, lambda d: d.update(schema=0)), "older"),
    "newer schema": (lambda s: _edit_json(s, lambda d: d.update(schema=SCHEMA + 1)), "newer"),
    "no schema": (lambda s: _edit_json(s, lambda d: d.pop("schema")), "not a modarith record"),
    "config edited": (lambda s: _edit_json(s, lambda d: d["config"].update(lr=0.5)), "does not match"),
    "unknown config field": (lambda s: _edit_json(s, lambda d: d["config"].update(foo=1)),
                             "unknown RunConfig field"),
    "invalid config value": (lambda s: _edit_json(s, lambda d: d["config"].update(p=1)), "RunConfig.p"),
    "history short": (lambda s: _edit_json(s, lambda d: d["history"]["val_loss"].pop()), "entries"),
    "history non-number": (lambda s: _edit_json(s, lambda d: d["history"]["val_acc"].__setitem__(0, "x")),
                           "non-numbers"),
    "missing key": (lambda s: _edit_json(s, lambda d: d.pop("summary")), "missing keys"),
    "weights missing": (lambda s: s.weights_path(CFG).unlink(), "weights file"),
    "weights truncated": (lambda s: s.weights_path(CFG).write_bytes(s.weights_path(CFG).read_bytes()[:100]),
                          "truncated or replaced"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_record_is_moved_aside_and_retrained(stored, case):
    store, _ = stored
    damage, reason = CASES[case]
    damage(store)
    moved = _retrained_after(store, reason)
    if case == "weights truncated":  # the weights file is moved aside too
        assert any(n.startswith(f"{run_id(CFG)}.pt") for n in moved), moved


def test_records_skips_and_reports_corrupt(stored):
    store, _ = stored
    train([RunConfig(seed=1, **TINY)], results=store.path, progress=False, device="cpu")
    store.record_path(CFG).write_text("{")
    with pytest.warns(UserWarning, match="not valid JSON"):
        recs = store.records()
    assert [r.config.seed for r in recs] == [1]
    assert len(_corrupt_files(store)) == 1


def test_weights_replaced_detected_at_load(stored):
    """Same size, other content: the sha256 in the record catches it when weights are loaded."""
    store, _ = stored
    sd = GroupTrainer([RunConfig(seed=1, **TINY)]).state_dict(0)
    atomic_torch_save(sd, store.weights_path(CFG))
    with pytest.warns(UserWarning, match="sha256"), pytest.raises(CorruptRecord, match="sha256"):
        load_model(CFG, store.path)
    assert store.get(CFG) is None  # record and weights both moved aside: the run is retrained
    assert len(_corrupt_files(store)) == 2
    train([CFG], results=store.path, progress=False, device="cpu")
    load_model(CFG, store.path)


class Evil:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("fmt", ["torch", "pickle"])
def test_malicious_weights_refused(stored, tmp_path, fmt):
    store, _ = stored
    marker = tmp_path / "pwned"
    path = store.weights_path(CFG)
    if fmt == "torch":
        torch.save({"w": Evil(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"w": Evil(marker)}))
    # no size/hash in the record (e.g. written by hand): torch.load(weights_only=True) must refuse
    _edit_json(store, lambda d: [d["meta"].pop(k) for k in ("weights_bytes", "weights_sha256")])
    with pytest.warns(UserWarning, match="cannot be loaded safely"), pytest.raises(CorruptRecord):
        load_model(CFG, store.path)
    assert not marker.exists()
    assert any(n.startswith(f"{run_id(CFG)}.pt") for n in _corrupt_files(store))
    assert not path.exists()


def _checkpoint(store, configs):
    return store.checkpoint_path(run_id(configs[0]))


def test_malicious_checkpoint_refused_and_training_restarts(tmp_path):
    store = Store(tmp_path)
    marker = tmp_path / "pwned"
    ck = _checkpoint(store, [CFG])
    ck.parent.mkdir(parents=True)
    torch.save({"format": 3, "flat": Evil(marker)}, ck)
    with pytest.warns(UserWarning, match="checkpoint cannot be loaded safely"):
        rec = train([CFG], results=tmp_path, progress=False, device="cpu")[0]
    assert not marker.exists()
    assert rec.meta["resumed_from_step"] is None
    assert rec.history == train([CFG], results=None, progress=False, device="cpu")[0].history
    assert any(n.startswith(ck.name) for n in _corrupt_files(store))


def _make_checkpoint(configs, steps=3):
    """The checkpoint of the first run after `steps` updates, evaluated on schedule (as fit() does)."""
    g = GroupTrainer(configs)
    for t in range(steps + 1):
        g.evaluate_if_due()
        if t < steps:
            g.update()
    return {"format": ckpt.FORMAT, **ckpt.run_state(g, 0, 0.0)}


CKPT_CASES = {
    "garbage": (lambda ck: ck.write_bytes(os.urandom(500)), "cannot be loaded safely"),
    "truncated": (lambda ck: (atomic_torch_save(_make_checkpoint([CFG]), ck),
                              ck.write_bytes(ck.read_bytes()[:300])), "cannot be loaded safely"),
    "foreign group": (lambda ck: atomic_torch_save(_make_checkpoint([RunConfig(seed=9, **TINY)]), ck),
                      "belongs to run"),
    "old format": (lambda ck: atomic_torch_save({**_make_checkpoint([CFG]), "format": 1}, ck), "format"),
    "wrong shape": (lambda ck: atomic_torch_save({**_make_checkpoint([CFG]), "flat": torch.zeros(3)}, ck),
                    "shape"),
    "bad bookkeeping": (lambda ck: atomic_torch_save({**_make_checkpoint([CFG]), "n_evals_done": 1}, ck),
                        "evaluations done"),
    "not a dict": (lambda ck: torch.save([1, 2], ck), "not a dict"),
}


@pytest.mark.parametrize("case", list(CKPT_CASES))
def test_corrupt_checkpoint_quarantined_and_restarted(tmp_path, case):
    store = Store(tmp_path)
    ck = _checkpoint(store, [CFG])
    ck.parent.mkdir(parents=True)
    damage, reason = CKPT_CASES[case]
    damage(ck)
    with pytest.warns(UserWarning) as caught:
        rec = train([CFG], results=tmp_path, progress=False, device="cpu")[0]
    assert any(str(ck) in str(w.message) and reason in str(w.message) for w in caught), \
        [str(w.message) for w in caught]
    assert rec.meta["resumed_from_step"] is None
    assert rec.history == train([CFG], results=None, progress=False, device="cpu")[0].history
    assert any(n.startswith(ck.name) for n in _corrupt_files(store))


def test_valid_checkpoint_is_resumed_in_process(tmp_path):
    store = Store(tmp_path)
    ck = _checkpoint(store, [CFG])
    atomic_torch_save(_make_checkpoint([CFG], steps=4), ck)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = train([CFG], results=tmp_path, progress=False, device="cpu")[0]
    assert rec.meta["resumed_from_step"] == 4
    ref = train([CFG], results=None, progress=False, device="cpu")[0]
    assert rec.history == ref.history
    assert not ck.exists()


def test_force_ignores_stored_records_and_checkpoints(stored):
    store, rec = stored
    ck = _checkpoint(store, [CFG])
    atomic_torch_save(_make_checkpoint([CFG], steps=4), ck)
    again = train([CFG], results=store.path, progress=False, device="cpu", force=True)[0]
    assert again.meta["resumed_from_step"] is None and again.history == rec.history


def test_stale_temporary_files_ignored_then_cleaned(stored):
    store, _ = stored
    old = store.runs / f".{run_id(CFG)}.json.abc123.tmp"
    young = store.runs / ".other.json.def456.tmp"
    ck_tmp = store.checkpoints / ".x.pt.zzz.tmp"
    for p in (old, young, ck_tmp):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{half a rec")
    os.utime(old, (time.time() - 7200,) * 2)
    os.utime(ck_tmp, (time.time() - 7200,) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # readers never look at temporary files
        assert len(store.records()) == 1
        train([CFG], results=store.path, progress=False, device="cpu")
    assert not old.exists() and not ck_tmp.exists() and young.exists()


def test_quarantine_never_overwrites_and_skips_replaced_files(tmp_path):
    store = Store(tmp_path)
    p = tmp_path / "runs" / "x.json"
    p.parent.mkdir(parents=True)
    for i in range(3):
        p.write_text(str(i))
        with pytest.warns(UserWarning, match="broken"):
            store.quarantine(p, "broken")
    assert sorted(q.read_text() for q in store.corrupt.iterdir()) == ["0", "1", "2"]
    p.write_text("old")
    st = p.stat()
    os.replace(tmp_path / "runs" / "x.json", tmp_path / "keep")
    (tmp_path / "runs" / "x.json").write_text("new, valid, written by another process")
    assert store.quarantine(p, "stale decision", expect=st) is None and p.exists()
