"""The command line end to end (in process): train, run, list, runs."""

import importlib.util
import os
from pathlib import Path

import pytest

from modarith.reporting.cli import main


def test_cli_train_list_runs(tmp_path, capsys):
    res = str(tmp_path / "results")
    assert main(["train", "--model", "lstm", "--p", "5", "--d-model", "8", "--num-layers", "1",
                 "--steps", "5", "--seeds", "0,1", "--results", res, "--device", "cpu",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "A_val" in out and out.count("lstm") == 2
    assert main(["runs", "--results", res]) == 0
    assert len([ln for ln in capsys.readouterr().out.splitlines() if "lstm" in ln]) == 2
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "data_size" in out and "runs_smoke" in out and "all (distinct runs)" in out
    assert main([]) == 0  # no command: help


def test_cli_run_executes_the_notebook(smoke_results, tmp_path, capsys):
    """`run` executes the experiment's notebook headless against the shared smoke store."""
    assert main(["run", "sanity", "--profile", "smoke", "--device", "cpu", "--results", str(smoke_results),
                 "--figures", str(tmp_path / "figs"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "figs" / "sanity" / "train_val.png").exists()
    assert out.startswith("profile smoke, device cpu") and "nothing to train: every run is stored" in out
    assert "Executed notebook:" in out and (smoke_results / "notebooks" / "41_sanity_check.ipynb").exists()
    assert main(["run", "nope", "--profile", "smoke", "--results", str(tmp_path)]) == 2
    assert "experiment = 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------ workers and executors
TINY_FLAGS = ["train", "--model", "lstm", "--p", "5", "--d-model", "8", "--num-layers", "1",
              "--steps", "5", "--no-progress"]


def _code(argv) -> int:
    """main's exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("flags,named", [
    (["--workers", "0"], "--workers"),
    (["--workers", "-2"], "--workers"),
    (["--workers", "two"], "--workers"),
    (["--executor", "kubernetes"], "--executor"),
    (["--executor", "slurm", "--time", "-5"], "--time"),
    (["--executor", "slurm", "--gpus", "-1"], "--gpus"),
    (["--executor", "slurm", "--workers", "2"], "--workers"),
])
def test_bad_worker_and_executor_flags_exit_2_before_training(tmp_path, capsys, flags, named):
    res = tmp_path / "results"
    assert _code(TINY_FLAGS + ["--results", str(res)] + flags) == 2
    assert named in capsys.readouterr().err
    assert not (res / "runs").exists()  # nothing trained


def test_slurm_without_submitit_exits_2(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a))
    res = tmp_path / "results"
    assert main(TINY_FLAGS + ["--results", str(res), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "--executor" in err and "submitit" in err and "pip install" in err
    assert not (res / "runs").exists()


def test_submitit_local_executor_submits_one_job_per_group_and_a_rerun_collects(tmp_path, monkeypatch, capsys):
    """The cluster code path with submitit's local executor: jobs train into the shared store
    (--no-wait returns at once), a rerun submits nothing and collects the records."""
    from modarith.models.config import RunConfig
    from modarith.runtime.cluster import submit

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]) + os.pathsep
                       + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    res = tmp_path / "results"
    tiny = dict(p=5, d_model=8, num_layers=1, steps=5, eval_dense=2, eval_every=5)
    cfgs = [RunConfig(model=m, seed=s, **tiny) for m in ("lstm", "gpt") for s in (0, 1)]
    sub = submit(cfgs, res, executor="submitit-local", wait=False)
    assert len(sub.jobs) == 2 and len(sub.missing) == 4  # one job per group, returned at once
    for job in sub.jobs:
        assert len(job.result()) == 2  # each job trained its group of two
    again = submit(cfgs, res, executor="submitit-local")
    assert again.jobs == [] and again.missing == [] and len(again.records) == 4
    # the CLI on the same folder: nothing left to submit, prints the table
    assert main(TINY_FLAGS + ["--seeds", "0,1", "--eval-dense", "2", "--eval-every", "5",
                              "--results", str(res), "--executor", "submitit-local"]) == 0
    assert capsys.readouterr().out.count("lstm") == 2
