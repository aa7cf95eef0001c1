"""The benchmark harness runs end to end in tiny mode and writes a complete JSON report.

No timed assertions: only that every number is there and positive.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modarith.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def test_bench_tiny_writes_expected_json(tmp_path):
    from benchmarks.bench import main

    out = tmp_path / "bench.json"
    report = main(["--tiny", "--device", "cpu", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data.keys() >= {"date", "device", "threads", "peak_flops", "results", "projection",
                           "fraction_of_fp32_peak", "table"}
    assert data["peak_flops"]["fp32"] > 0
    for model in ("gpt", "lstm"):
        res = data["results"][model]
        assert res["train_flops_per_run_step"] > 0 and res["eval_flops_per_eval"] > 0
        assert set(res["variants"]) == {"reference", "engine K=1", "engine K=2"}
        for v in res["variants"].values():
            for key in ("update_s", "eval_s", "run_step_s", "train_flops_per_s", "speedup_vs_reference"):
                assert v[key] > 0, (model, key)
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
    env = {"OUT": str(tmp_path), "PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["bash", str(ROOT / script), "--device", "cpu", "--tiny"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["results"]["gpt"]["variants"]
    assert (tmp_path / "equality.txt").read_text().strip().endswith("OK")
