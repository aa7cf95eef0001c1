"""The command line end to end (in process): train, run, list, runs."""

from modarith.cli import main


def test_cli_train_list_run_runs(tmp_path, capsys):
    res = str(tmp_path / "results")
    assert main(["train", "--model", "lstm", "--p", "5", "--d-model", "8", "--num-layers", "1",
                 "--steps", "5", "--seeds", "0,1", "--results", res, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "A_val" in out and out.count("lstm") == 2
    assert main(["runs", "--results", res]) == 0
    assert len([ln for ln in capsys.readouterr().out.splitlines() if "lstm" in ln]) == 2
    assert main(["list"]) == 0
    assert "data_size" in capsys.readouterr().out
    assert main(["run", "sanity", "--profile", "smoke", "--results", res,
                 "--figures", str(tmp_path / "figs"), "--no-progress"]) == 0
    assert (tmp_path / "figs" / "sanity" / "train_val.png").exists()
    assert main([]) == 0  # no command: help
