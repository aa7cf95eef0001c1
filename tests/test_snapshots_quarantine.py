"""A corrupt or foreign weight-snapshots file is moved to ``results/corrupt/`` with a warning that
says why, together with the run's record, so that a rerun trains the run and rewrites it."""

import re

import pytest
import torch

from modarith.models.config import RunConfig
from modarith.runtime.engine import train
from modarith.runtime.store import CorruptRecord, Store, snapshots_path
from modarith.study.progress_measures import load_snapshots

CFG = RunConfig(model="gpt", p=5, d_model=8, num_layers=1, num_heads=2, steps=12, eval_dense=2,
                eval_every=6, snapshots_log=3)
OTHER = RunConfig(model="gpt", p=5, d_model=8, num_layers=1, num_heads=2, steps=12, eval_dense=2,
                  eval_every=6, snapshot_every=4)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def _garbage(path, good):
    path.write_bytes(b"not a torch file")


def _truncated(path, good):
    path.write_bytes(path.read_bytes()[:100])


def _code(path, good):
    torch.save({"steps": _RunsCode(), "params": {}}, path)


def _foreign(path, good):  # another run's snapshot schedule
    torch.save({"steps": torch.tensor(OTHER.snapshot_steps()), "params": good["params"]}, path)


def _missing_param(path, good):
    params = dict(good["params"])
    params.pop(next(iter(params)))
    torch.save({"steps": good["steps"], "params": params}, path)


def _wrong_shape(path, good):
    params = {n: t[:, None] for n, t in good["params"].items()}
    torch.save({"steps": good["steps"], "params": params}, path)


@pytest.mark.parametrize("damage,why", [
    (_garbage, "cannot be loaded safely"),
    (_truncated, "cannot be loaded safely"),
    (_code, "cannot be loaded safely"),
    (_foreign, "hold steps other than the config's snapshot steps"),
    (_missing_param, "do not hold exactly the model's parameters"),
    (_wrong_shape, "have the wrong shape"),
])
def test_corrupt_snapshots_are_set_aside_and_retrained(tmp_path, capsys, damage, why):
    train([CFG], results=tmp_path, device="cpu", progress=False)
    store = Store(tmp_path)
    path = snapshots_path(store, CFG)
    good = load_snapshots(CFG, tmp_path)
    damage(path, good)
    with pytest.warns(UserWarning) as caught, pytest.raises(CorruptRecord, match="train the run again"):
        load_snapshots(CFG, tmp_path)
    said = [str(w.message) for w in caught]
    assert any(re.search(f"{re.escape(path.name)} is unusable \\(weight snapshots {why}", t) for t in said), said
    assert any(f"its weight snapshots {path.name} are unusable" in t for t in said), said
    assert "this must never run" not in capsys.readouterr().out
    assert not path.exists() and store.get(CFG) is None  # the record went with it: a rerun retrains
    moved = sorted(p.name for p in store.corrupt.iterdir())
    assert any(n.startswith(path.name) for n in moved) and any(n.startswith(f"{store.record_path(CFG).name}.")
                                                               for n in moved)
    train([CFG], results=tmp_path, device="cpu", progress=False)
    again = load_snapshots(CFG, tmp_path)  # rewritten, the same numbers (CPU)
    assert again["steps"].tolist() == good["steps"].tolist() == CFG.snapshot_steps()
    for name, t in good["params"].items():
        assert torch.equal(again["params"][name], t)


def test_missing_snapshots_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="snapshots_log or snapshot_every"):
        load_snapshots(CFG, tmp_path)
