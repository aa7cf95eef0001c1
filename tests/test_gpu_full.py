"""benchmarks/gpu_full.py: its --tiny CPU form writes every output, the archive
loads as records; the choice of experiments and of CUDA graphs from injected numbers."""

import json
import math
import tarfile

from benchmarks import gpu_full
from modarith.models.config import run_id
from modarith.runtime.store import Store, parse_record
from modarith.study import protocol


def test_choose_takes_the_most_whole_experiments_that_fit():
    est = {"a": 100.0, "b": 250.0, "c": 40.0, "d": 90.0, "e": math.nan}
    assert gpu_full.choose(est, 240.0) == ["c", "d", "a"]  # 230 s; b would not fit
    assert gpu_full.choose(est, 30.0) == []
    assert gpu_full.choose(est, 1e9) == ["c", "d", "a", "b"]  # a NaN estimate is never chosen


def test_a_nan_estimate_does_not_stop_two_that_fit():
    """Sorting with a NaN key is no order: here it put x (100 s) before y and z, so the budget
    went to x alone, where y and z (110 s) both fit."""
    assert gpu_full.choose({"x": 100.0, "n": math.nan, "y": 60.0, "z": 50.0}, 115.0) == ["z", "y"]


def test_compile_pays_only_when_graphs_beat_eager_for_both_models():
    def model(eager, graphs):
        return {"variants": {"engine K=1": {"K": 1, "run_steps_per_s": 10.0},
                             "engine K=18": {"K": 18, "run_steps_per_s": eager},
                             "compile:reduce-overhead K=18": {"K": 18, "run_steps_per_s": graphs}}}

    assert gpu_full.compile_pays({"speed": {"gpt": model(100, 150), "lstm": model(100, 130)}})
    assert not gpu_full.compile_pays({"speed": {"gpt": model(100, 150), "lstm": model(100, 110)}})
    assert not gpu_full.compile_pays({"speed": {"gpt": {"variants": {"engine K=18": {"K": 18}}}}})
    assert not gpu_full.compile_pays({"speed": {"gpt": "not measured: time budget spent"}})


def test_gpu_full_tiny_writes_records_weights_and_timing(tmp_path):
    out, results = tmp_path / "out", tmp_path / "results"
    assert gpu_full.main(["--tiny", "--out", str(out), "--results", str(results), "--only", "sanity,orders",
                          "--workers", "1", "--budget-s", "600"]) == 0
    summary = json.loads((out / "gpu_full.json").read_text())
    assert summary["chosen"] and set(summary["chosen"]) | set(summary["projected"]) == {"sanity", "orders"}
    assert json.loads((out / "gpu_check.json").read_text())["equality"]["ok"]
    rows = {r["experiment"]: r for r in summary["table"]}
    assert (out / "timing.csv").read_text().splitlines()[0].startswith("experiment,runs,groups")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out / "records.tar.gz") as tar:
        names = tar.getnames()
        tar.extractall(unpacked)
    assert names and not any(n.endswith(".pt") for n in names)
    # records without weights: parse_record reads them (a Store wants each run's weights)
    records = {r.run_id: r for r in (parse_record(json.loads(p.read_text()), expected_id=p.stem)
                                     for p in (unpacked / "runs").glob("*.json"))}
    for name in summary["chosen"]:
        cfgs = gpu_full.experiment_configs("smoke", [name])[name]
        assert rows[name]["status"] == "trained" and rows[name]["stored"] == len(cfgs)
        assert all(records[run_id(c)].history["val_acc"] for c in cfgs)
    with tarfile.open(out / "weights_48.tar.gz") as tar:
        weights = [n for n in tar.getnames() if n.endswith(".pt")]
    picks = [c for c in protocol.configs("interpretability", "smoke") if Store(results).get(c) is not None]
    assert picks and len(weights) == len(picks)
