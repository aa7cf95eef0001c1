"""The benchmark harness runs end to end in tiny mode and writes a complete JSON report.

No timed assertions: only that every number is there and that the derived rates follow from
the measured medians.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modarith.models.config import RunConfig

# bit-exact comparisons: one thread here and in every worker process (conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parent.parent


def test_bench_tiny_writes_expected_json(tmp_path, capfd, monkeypatch):
    from benchmarks.bench import train_flops
    from modarith.reporting.cli import main

    out = tmp_path / "bench.json"
    monkeypatch.chdir(ROOT)  # bench is a script of the repository, run from its root
    assert main(["bench", "--tiny", "--device", "cpu", "--json", str(out)]) == 0  # python -m modarith bench
    report = json.loads(out.read_text())
    data = report
    assert data.keys() >= {"date", "device", "threads", "peak_flops", "results", "projection",
                           "projection_gpu", "fraction_of_fp32_peak", "table"}
    assert "PROJECTION on a GPU" in capfd.readouterr().out
    gpu = data["projection_gpu"]
    assert gpu["fp32"]["flops"] == gpu["bf16"]["flops"] > 0
    assert gpu["fp32"]["projected_s"] > gpu["bf16"]["projected_s"] > 0
    assert data["peak_flops"]["fp32"] > 0
    for model in ("gpt", "lstm"):
        res = data["results"][model]
        assert res["train_flops_per_run_step"] > 0 and res["eval_flops_per_eval"] > 0
        assert set(res["variants"]) == {"reference", "engine K=1", "engine K=2"}
        cfg = RunConfig.from_dict(res["config"])
        assert res["train_flops_per_run_step"] == train_flops(cfg)
        assert res["evals_per_step"] == pytest.approx(len(cfg.eval_steps()) / cfg.total_steps)
        ref = res["variants"]["reference"]
        assert ref["speedup_vs_reference"] == pytest.approx(1.0)
        for name, v in res["variants"].items():
            assert v["K"] == {"reference": 1, "engine K=1": 1, "engine K=2": 2}[name]
            lo, hi = v["update_spread"]
            assert 0 < lo <= v["update_s"] <= hi, (model, name)  # the median lies in its rounds
            assert v["eval_s"] > 0
            # every derived rate follows from the measured medians as the report defines it
            step = (v["update_s"] + res["evals_per_step"] * v["eval_s"]) / v["K"]
            assert v["run_step_s"] == pytest.approx(step, rel=1e-12)
            assert v["run_steps_per_s"] == pytest.approx(1 / step, rel=1e-12)
            assert v["runs_per_hour"] == pytest.approx(3600 / (step * cfg.total_steps), rel=1e-12)
            assert v["train_flops_per_s"] == pytest.approx(v["K"] * train_flops(cfg) / v["update_s"])
            assert v["speedup_vs_reference"] == pytest.approx(ref["run_step_s"] / step, rel=1e-12)
    proj = data["projection"]
    assert set(proj["experiments"]) == {"sanity", "data_size", "orders", "model_size", "compute",
                                        "regularization"}
    assert proj["total_s"] > 0 and proj["total_steps"] > 1_000_000  # SPEC: about 1.5 M steps
    assert "reference" in report["table"]


def test_flop_counts_match_hand_count():
    from benchmarks.bench import forward_flops, train_flops

    gpt = RunConfig()  # d 128, L 2, m 4, S 6, V 36, full batch of 480
    per_token = 2 * (24 * 128 * 128 + 4 * 6 * 128) + 2 * 128 * 36  # L = 2 blocks + classifier
    assert forward_flops(gpt, 1) == per_token * 6
    assert train_flops(gpt) == 3 * per_token * 6 * 480
    lstm = RunConfig(model="lstm")
    assert forward_flops(lstm, 1) == 6 * (2 * 2 * 4 * 128 * 256 + 2 * 128 * 36)


@pytest.mark.parametrize("script", ["benchmarks/gpu_check.sh"])
def test_gpu_check_runs_on_cpu_in_tiny_mode(tmp_path, script):
    env = {"OUT": str(tmp_path), "PYTHON": sys.executable, "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # group == singles bit for bit at one thread
    r = subprocess.run(["bash", str(ROOT / script), "--device", "cpu", "--tiny"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["equality"]["ok"] and data["equality"]["group_vs_single"]
    for case in data["equality"]["group_vs_single"].values():  # a group of K = K singles on the CPU
        assert all(q["worst"] == 0.0 for q in case.values()), case
    assert data["speed"]["gpt"]["variants"]["engine K=2"]["run_steps_per_s"] > 0
    assert data["projection"]["total_s"] > 0


def test_end_to_end_cli_wall_and_table(monkeypatch):
    """One real CLI process timed by the end-to-end harness; the comparison's ratios and table
    line from the four timings (the loop itself is timed by the real bench only)."""
    from benchmarks import bench

    tiny = dict(p=5, d_model=8, num_layers=1, eval_dense=1, eval_every=2)
    assert bench._cli_wall("lstm", 3, (0, 1), 1, 1, "cpu", tiny) > 0
    walls = iter([40.0, 10.0, 30.0, 6.0])  # loop 1 thread, CLI 1 worker, loop all cores, CLI default
    monkeypatch.setattr(bench, "_loop_wall", lambda *a: next(walls))
    monkeypatch.setattr(bench, "_cli_wall", lambda *a: next(walls))
    out = bench.bench_end_to_end(["gpt"], steps=300, device="cpu", log=lambda *a: None)
    r = out["models"]["gpt"]
    assert (r["loop_1_thread_s"], r["cli_1_worker_s"], r["loop_default_threads_s"],
            r["cli_default_workers_s"]) == (40.0, 10.0, 30.0, 6.0)
    assert r["speedup_default"] == 5.0 and r["speedup_1_thread"] == 4.0
    text = bench.table({"peak_flops": {"fp32": 1.0}, "results": {}, "threads": 1, "device_name": "x",
                        "end_to_end": out})
    assert "end to end, 2 seeds x 300 steps, gpt" in text and "= 5.00x" in text and "= 4.00x" in text
