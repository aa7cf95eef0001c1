"""The command line where a user meets its edges: a reader that stops early, ``bench --help``,
flags' help and checks, ``run --seeds``, and a notebook that fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modarith.reporting import cli, experiments
from modarith.runtime.store import Store

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """``runs --json | head``: the pipe's reader is gone before the command writes (its read end
    closed first), so every write fails with EPIPE; the command ends quietly."""
    (tmp_path / "results").mkdir()
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "modarith", "runs", "--json", "--results",
                               str(tmp_path / "results")], stdout=write, stderr=subprocess.PIPE, text=True,
                              env=ENV, timeout=300)
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_bench_help_names_the_command(capfd, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    assert cli.main(["bench", "--help"]) == 0
    assert capfd.readouterr().out.startswith("usage: python -m modarith bench")


def test_orders_help_shows_what_the_flag_takes():
    train = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["train"]
    text = " ".join(train.format_help().split())
    assert "2,3 mixed (default 2)" in text and "(2,)" not in text


@pytest.mark.parametrize("command", [["train"], ["run", "sanity"]])
@pytest.mark.parametrize("device", ["gpu", "cuda:x", "mps:0"])
def test_device_is_checked_while_parsing(command, device, capsys, monkeypatch):
    """A mistyped device stops at the flags, naming the flag and the accepted names, before any work."""
    def no_work(*a, **k):
        raise AssertionError("work started")
    monkeypatch.setattr(experiments, "run_notebook", no_work)
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--device", device])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --device: expected one of auto, cpu, cuda, mps or cuda:N" in err and repr(device) in err


def test_run_refuses_seeds_where_the_notebook_has_none(capsys, tmp_path):
    assert cli.main(["run", "interpretability", "--seeds", "0", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--seeds: seeds is not a parameter of 48_interpretability.ipynb" in err


@pytest.mark.slow
def test_run_passes_the_seeds(tmp_path, capsys):
    assert cli.main(["run", "orders", "--profile", "smoke", "--device", "cpu", "--seeds", "0,42", "--results",
                     str(tmp_path / "results"), "--figures", str(tmp_path / "figures"), "--no-progress"]) == 0
    assert {r.config.seed for r in Store(tmp_path / "results").records()} == {0, 42}


def test_a_failing_notebook_is_one_line(monkeypatch, capsys, tmp_path):
    import papermill

    def fails(*args, **kwargs):
        raise papermill.PapermillExecutionError(3, 4, "\nrecords = train(configs)\nmore", "ValueError",
                                                "RunConfig.p = 1 is invalid", ["Traceback …", "  frames …"])
    monkeypatch.setattr(experiments, "run_notebook", fails)
    assert cli.main(["run", "sanity", "--results", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "python -m modarith run: 41_sanity_check.ipynb failed: cell 4 of the executed copy (In [4]: "
        "`records = train(configs)`) raised ValueError: RunConfig.p = 1 is invalid"]
