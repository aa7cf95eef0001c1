"""The command line end to end (in process): train, run, list, runs."""

from modarith.cli import main


def test_cli_train_list_runs(tmp_path, capsys):
    res = str(tmp_path / "results")
    assert main(["train", "--model", "lstm", "--p", "5", "--d-model", "8", "--num-layers", "1",
                 "--steps", "5", "--seeds", "0,1", "--results", res, "--no-progress"]) == 0
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
    assert main(["run", "sanity", "--profile", "smoke", "--results", str(smoke_results),
                 "--figures", str(tmp_path / "figs"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "figs" / "sanity" / "train_val.png").exists()
    assert out.startswith("profile smoke, device cpu") and "nothing to train: every run is stored" in out
    assert "Executed notebook:" in out and (smoke_results / "notebooks" / "41_sanity_check.ipynb").exists()
    assert main(["run", "nope", "--profile", "smoke", "--results", str(tmp_path)]) == 2
    assert "experiment = 'nope'" in capsys.readouterr().err
