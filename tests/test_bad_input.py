"""Bad input everywhere (configs, train(), the store, the CLI, build_report.py options,
notebook parameters, attention equations): a clear error naming the parameter and the
accepted values, exit code 2 for command lines, and nothing is computed first."""

import subprocess
import sys
from pathlib import Path

import pytest

from modarith.models.config import RunConfig
from modarith.runtime import engine
from modarith.runtime.group import GroupTrainer

ROOT = Path(__file__).resolve().parents[1]
TINY = RunConfig(model="lstm", p=5, d_model=8, num_layers=1, steps=2, eval_dense=1, eval_every=1)


@pytest.fixture(autouse=True)
def no_compute(monkeypatch):
    """Any attempt to train fails the test: validation must come before compute."""
    def boom(*a, **k):
        raise AssertionError("compute started before validation")

    monkeypatch.setattr(GroupTrainer, "__init__", boom)


def _python_api(fn):
    def call(kwargs):
        try:
            fn(**kwargs)
        except ValueError as e:
            return 2, str(e)
        return 0, ""
    return call


def _train(**kw):
    engine.train(kw.pop("configs", [TINY]), **{"results": None, "progress": False, **kw})


def _store(path):
    from modarith.runtime.store import Store

    Store(path)


def _cli(argv, capsys):
    from modarith.reporting.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _build_report(argv, capsys):
    from modarith.reporting import report

    try:
        code = report.main(argv, notebooks_dir=ROOT / "notebooks")
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _notebook(**kw):
    from modarith.reporting import notebook

    notebook.settings(**kw)


def _equation(text):
    from modarith.core.data import Tokenizer
    from modarith.plotting.attention import parse_equation

    parse_equation(text, Tokenizer(31, "+"))


def _experiment(**kw):
    from modarith.reporting import experiments

    experiments.configs(**kw)


# (kind, input, what the message must name, an accepted value it must list)
CASES = [
    # configs
    ("config", {"model": "transformer"}, "RunConfig.model", "lstm"),
    ("config", {"eval_dense": -1}, "RunConfig.eval_dense", ">= 0"),
    ("config", {"beta2": 1.0}, "RunConfig.beta2", "[0.0, 1.0)"),
    ("config", {"orders": "x"}, "RunConfig.orders", "(2, 3)"),
    ("config", {"clip_norm": float("inf")}, "RunConfig.clip_norm", "finite"),
    ("config", {"multiplier": 0}, "RunConfig.multiplier", ">= 1"),
    # train()
    ("train", {"device": "tpu"}, "device", "cuda"),
    ("train", {"results": 123}, "results", "folder path"),
    ("train", {"force": "yes"}, "force", "True or False"),
    ("train", {"progress": None}, "progress", "True or False"),
    ("train", {"max_group_size": 0}, "max_group_size", ">= 1"),
    ("train", {"checkpoint_every": 2.5}, "checkpoint_every", ">= 1"),
    ("train", {"checkpoint_interval_s": -1}, "checkpoint_interval_s", "> 0"),
    ("train", {"configs": ["gpt"]}, "configs", "RunConfig"),
    ("train", {"configs": 5}, "configs", "RunConfig"),
    ("store", {"path": ""}, "results", "folder path"),
    # command line (python -m modarith)
    ("cli", ["train", "--p", "abc"], "--p", "int"),
    ("cli", ["train", "--steps", "0"], "--steps", ">= 1"),
    ("cli", ["train", "--r-train", "1.5"], "--r-train", "between 0 and 1"),
    ("cli", ["train", "--model", "rnn"], "--model", "gpt"),
    ("cli", ["train", "--orders", "2,x"], "--orders", "comma-separated integers"),
    ("cli", ["train", "--orders", "4"], "--orders", "(2, 3)"),
    ("cli", ["train", "--seeds", "-1"], "--seeds", ">= 0"),
    ("cli", ["train", "--device", "tpu"], "--device", "cuda"),
    ("cli", ["train", "--d-model", "30"], "--d-model", "num_heads"),
    ("cli", ["train", "--operator", "^"], "--operator", "'+'"),
    ("cli", ["train", "--results", ""], "--results", "folder path"),
    ("cli", ["train", "--checkpoint-every", "0"], "--checkpoint-every", ">= 1"),
    ("cli", ["run", "sanity", "--profile", "turbo"], "--profile", "quick"),
    ("cli", ["run", "nosuch", "--profile", "smoke", "--device", "cpu"], "experiment", "data_size"),
    ("cli", ["frobnicate"], "COMMAND", "train"),
    # build_report.py options
    ("build_report", ["--profile", "turbo"], "--profile", "quick"),
    ("build_report", ["--device", "tpu"], "--device", "mps"),
    ("build_report", ["--only", "9.9"], "--only", "4.3"),
    ("build_report", ["--results", " "], "--results", "folder path"),
    ("build_report", ["--out", ""], "--out", "folder path"),
    # notebook parameters
    ("notebook", {"profile": "fast"}, "profile", "smoke"),
    ("notebook", {"device": "gpu"}, "device", "cuda"),
    ("notebook", {"results_dir": 3}, "results_dir", "folder path"),
    ("notebook", {"force": "yes"}, "force", "True or False"),
    ("experiments", {"name": "nosuch", "profile": "smoke"}, "experiment", "sanity"),
    ("experiments", {"name": "sanity", "profile": "huge"}, "profile", "quick"),
    # attention explorer equations
    ("equation", {"text": "40 + 3 ="}, "'40'", "0..30"),
    ("equation", {"text": "a + b ="}, "'a'", "vocabulary"),
    ("equation", {"text": "3 * 4 ="}, "'*'", "Accepted form"),
]


def _id(case):
    kind, value, *_ = case
    return f"{kind}-{value}"


@pytest.mark.parametrize("kind,value,field,accepted", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_names_the_parameter(kind, value, field, accepted, capsys):
    if kind in ("cli", "build_report"):
        code, msg = (_cli if kind == "cli" else _build_report)(value, capsys)
    else:
        fn = {"config": lambda **kw: RunConfig(**kw), "train": _train, "store": _store,
              "notebook": _notebook, "equation": _equation, "experiments": _experiment}[kind]
        code, msg = _python_api(fn)(value)
    assert code == 2, (code, msg)
    assert field in msg and accepted in msg, msg


@pytest.mark.parametrize("cmd", [
    [sys.executable, "-m", "modarith", "train", "--r-train", "2", "--results", "{tmp}"],
    [sys.executable, str(ROOT / "build_report.py"), "--only", "4.99", "--out", "{tmp}"],
])
def test_real_processes_exit_2_before_compute(cmd, tmp_path):
    """Through real processes: exit status 2, the flag named, nothing written."""
    cmd = [c.replace("{tmp}", str(tmp_path / "out")) for c in cmd]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert ("--r-train" in proc.stderr) or ("--only" in proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
