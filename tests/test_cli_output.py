"""CLI output a person can read: the compact `runs` table, machine formats, suggestions."""

import io
import json

import pandas as pd
import pytest

from modarith.models.config import RunConfig
from modarith.reporting.cli import COMPACT_RESULTS, main
from modarith.runtime.engine import train

TINY = dict(model="lstm", p=5, d_model=8, num_layers=1, steps=5, eval_dense=1, eval_every=5)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    res = tmp_path_factory.mktemp("runs")
    # two runs differing in seed and lr only
    train([RunConfig(seed=0, lr=1e-3, **TINY), RunConfig(seed=1, lr=2e-3, **TINY)],
          results=res, device="cpu", progress=False)
    return str(res)


def test_compact_table_shows_what_differs(results, capsys):
    assert main(["runs", "--results", results]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header == ["run_id", "model", "seed", "lr", *COMPACT_RESULTS, "status"]
    assert len(lines) == 3 and all(ln.rstrip().endswith("done") for ln in lines[1:])


def test_all_csv_json_give_every_column(results, capsys):
    assert main(["runs", "--results", results, "--all"]) == 0
    assert "d_model" in capsys.readouterr().out.splitlines()[0]
    assert main(["runs", "--results", results, "--csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(df) == 2 and {"d_model", "eval_every", "A_train", "dt_A"} <= set(df.columns)
    assert main(["runs", "--results", results, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["seed"] for r in rows) == [0, 1]


def test_in_progress_groups_are_listed(tmp_path, capsys):
    cfg = RunConfig(seed=0, **{**TINY, "steps": 40})
    train([cfg], results=tmp_path, progress=False, checkpoint_every=3)  # finished: no checkpoint
    from modarith.runtime import checkpoint as ckpt
    from modarith.runtime.group import GroupTrainer
    from modarith.runtime.store import Store

    store = Store(tmp_path)
    for c in (RunConfig(seed=5, **TINY), cfg):  # unfinished, and an orphan (of a stored run)
        trainer = GroupTrainer([c])
        trainer.update()
        ckpt.save(store, ckpt.run_state(trainer, 0, 0.0))
    assert main(["runs", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "unfinished (checkpoint at step 1)" in out
    assert out.count("done") == 1 and "orphaned checkpoint" in out


@pytest.mark.parametrize("argv, hint", [
    (["runs", "--resluts", "x"], "did you mean '--results'?"),
    (["train", "--d-modle", "3"], "did you mean '--d-model'?"),
    (["trian"], "did you mean 'train'?"),
    (["train", "--model", "gtp", "--steps", "1"], "did you mean 'gpt'?"),
])
def test_typos_get_suggestions_and_exit_2(argv, hint, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        code = main([*argv, "--results", str(tmp_path / "r")] if argv[0] == "train" else argv)
        raise SystemExit(code)
    assert e.value.code == 2
    assert hint in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_record_field_suggests():
    with pytest.raises(ValueError, match=r"did you mean 'd_model'\?"):
        RunConfig.from_dict({"d_modle": 8})


def test_unknown_experiment_and_only_key_get_suggestions(capsys):
    assert main(["run", "data_sise", "--profile", "smoke"]) == 2
    assert "did you mean 'data_size'?" in capsys.readouterr().err
    from modarith.reporting.report import select_notebooks

    with pytest.raises(ValueError, match=r"--only.*did you mean '4\.3'\?"):
        select_notebooks("4.33")
