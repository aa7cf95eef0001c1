"""The command line as a newcomer meets it: boolean flags parse their words, --version, `list`
names every experiment `run` accepts, `runs` stays narrow and refuses a missing folder."""

from dataclasses import fields

import pandas as pd
import pytest

import modarith
from modarith.models.config import RunConfig
from modarith.reporting.cli import COMPACT_RESULTS, MAX_COLUMNS, compact_runs, main
from modarith.runtime.store import Store
from modarith.study import protocol

TINY = ["train", "--model", "lstm", "--p", "5", "--d-model", "8", "--num-layers", "1",
        "--steps", "3", "--eval-dense", "1", "--eval-every", "3", "--seeds", "0",
        "--device", "cpu", "--no-progress"]
BOOLEAN_FIELDS = [f.name for f in fields(RunConfig) if isinstance(f.default, bool)]


def _code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse exits itself on a bad value
        return e.code


def test_there_are_boolean_fields():
    assert {"orthograd", "record_collapse"} <= set(BOOLEAN_FIELDS)


@pytest.mark.parametrize("word,stored", [("False", False), ("no", False), ("0", False),
                                         ("TRUE", True), ("yes", True), ("1", True)])
def test_boolean_flag_stores_what_it_says(tmp_path, capsys, word, stored):
    res = tmp_path / "results"
    assert _code(TINY + ["--results", str(res), "--record-collapse", word]) == 0
    (record,) = Store(res).records()
    assert record.config.record_collapse is stored


@pytest.mark.parametrize("flags,stored", [(["--orthograd"], True), (["--no-orthograd"], False),
                                          (["--orthograd", "yes"], True), ([], False)])
def test_boolean_switch_forms(tmp_path, capsys, flags, stored):
    res = tmp_path / "results"
    assert _code(TINY + ["--results", str(res), *flags]) == 0
    (record,) = Store(res).records()
    assert record.config.orthograd is stored


def test_orthograd_false_stores_false(tmp_path, capsys):
    res = tmp_path / "results"
    assert _code(TINY + ["--results", str(res), "--orthograd", "False"]) == 0
    (record,) = Store(res).records()
    assert record.config.orthograd is False


@pytest.mark.parametrize("field", BOOLEAN_FIELDS)
@pytest.mark.parametrize("word", ["maybe", "", "2", "on"])
def test_boolean_flag_refuses_other_words(tmp_path, capsys, field, word):
    res = tmp_path / "results"
    assert _code(TINY + ["--results", str(res), f"--{field.replace('_', '-')}", word]) == 2
    err = capsys.readouterr().err
    assert f"--{field.replace('_', '-')}" in err and "true/false/yes/no/1/0" in err
    assert not (res / "runs").exists()  # nothing trained


def test_version(capsys):
    assert _code(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"modarith {modarith.__version__}"


def test_list_names_every_experiment_run_accepts(capsys):
    assert main(["list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert set(protocol.EXPERIMENTS) <= set(names)
    assert {"fidelity", "time_law", "parameter_counts"} <= set(names)


def test_runs_on_a_missing_folder_is_an_error(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert _code(["runs", "--results", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--results" in err and str(missing) in err
    assert not missing.exists()  # not created either


def _many_varying():
    """Summaries of 3 runs that differ in every numeric config field."""
    rows = []
    for k in range(3):
        cfg = RunConfig(p=7 + 4 * k, r_train=0.3 + 0.1 * k, seed=k, num_layers=1 + k, d_model=8 * (k + 1),
                        dropout=0.1 * k, lr=1e-3 * (k + 1), weight_decay=0.5 * k, beta1=0.8 + 0.05 * k,
                        eps=1e-8 * (k + 1), clip_norm=1.0 + k, batch_size=64 * (k + 1), steps=100 + k,
                        eval_dense=10 + k, eval_every=10 + k, warmup_steps=k, orthograd=bool(k % 2))
        rows.append({"run_id": f"r{k}", **cfg.to_dict(), "A_val": 0.5, "tf_A_val": 10, "L_val": 1.0,
                     "A_train": 1.0, "dt_A": 3})
    return pd.DataFrame(rows)


def test_compact_runs_has_at_most_max_columns():
    df = _many_varying()
    view = compact_runs(df)
    assert MAX_COLUMNS == 15 and len(view.columns) <= MAX_COLUMNS
    assert list(view.columns[:3]) == ["run_id", "model", "p"]  # what differs, in field order
    assert list(view.columns[-4:]) == [*COMPACT_RESULTS, "status"]


def test_runs_names_the_fields_it_leaves_out(tmp_path, capsys, monkeypatch):
    df = _many_varying()
    monkeypatch.setattr(Store, "summaries", lambda self: df)
    assert main(["runs", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines[0].split()) <= MAX_COLUMNS
    assert "--all" in lines[-1] and "orthograd" in lines[-1]
    assert main(["runs", "--results", str(tmp_path), "--all"]) == 0
    assert "orthograd" in capsys.readouterr().out.splitlines()[0]
