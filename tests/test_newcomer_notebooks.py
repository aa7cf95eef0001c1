"""A newcomer's notebooks: Colab opens the training ones on a GPU, says loudly when it will run
the reduced profile or lose the results, 49_fidelity says which store it needs, and an
executed notebook's figures reach every exporter (an ``image/png`` output)."""

import base64
import json
import sys
import types
from pathlib import Path

import pytest

from modarith.reporting import notebook
from modarith.study import protocol

ROOT = Path(__file__).resolve().parents[1]
TRAINING = sorted(e.notebook for e in protocol.EXPERIMENTS.values() if e.trains)


@pytest.mark.parametrize("stem", TRAINING)
def test_training_notebooks_ask_colab_for_a_gpu(stem):
    meta = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["metadata"]
    assert meta["accelerator"] == "GPU" and meta["colab"]["gpuType"]


def _colab(monkeypatch, tmp_path, mount_fails=False):
    colab = types.ModuleType("google.colab")

    def mount(path, **kw):
        if mount_fails:
            raise RuntimeError("mount declined")
        (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)

    colab.drive = types.SimpleNamespace(mount=mount)
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(notebook, "DRIVE_ROOT", tmp_path / "drive")
    monkeypatch.chdir(tmp_path)


def test_colab_without_cuda_says_the_reduced_profile_runs_and_keeps_results_on_drive(tmp_path, monkeypatch, capsys):
    _colab(monkeypatch, tmp_path)
    s = notebook.settings("auto", "cpu", "auto", str(tmp_path / "figs"))
    out = capsys.readouterr().out
    assert s.profile == "quick"
    lines = [ln for ln in out.splitlines() if ln.startswith("***")]
    assert len(lines) == 1 and "reduced 'quick' profile" in lines[0] and "GPU" in lines[0]
    assert s.results == (tmp_path / "drive" / "MyDrive" / "modarith" / "results").resolve()
    notebook.settings("smoke", "cpu", "auto", str(tmp_path / "figs"))  # a profile asked for: no line
    assert "***" not in capsys.readouterr().out


def test_colab_results_off_drive_get_a_loud_warning(tmp_path, monkeypatch, capsys):
    _colab(monkeypatch, tmp_path, mount_fails=True)
    s = notebook.settings("smoke", "cpu", "auto", str(tmp_path / "figs"))
    out = capsys.readouterr().out
    assert "Google Drive could not be mounted" in out and "vanish with this Colab runtime" in out
    assert s.results == (tmp_path / "results").resolve()
    notebook.settings("smoke", "cpu", str(tmp_path / "mine"), str(tmp_path / "figs"))
    assert "vanish with this Colab runtime" in capsys.readouterr().out


def test_outside_colab_nothing_is_said(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    notebook.settings("auto", "cpu", str(tmp_path / "r"), str(tmp_path / "f"))
    assert "***" not in capsys.readouterr().out


def test_a_notebook_that_reads_runs_says_when_the_store_has_none(tmp_path, capsys):
    notebook.settings("smoke", "cpu", str(tmp_path / "empty"), str(tmp_path / "f"), needs_runs=True)
    out = capsys.readouterr().out
    assert "no runs in" in out and "trains nothing" in out
    runs = tmp_path / "full" / "runs"
    runs.mkdir(parents=True)
    (runs / "abc.json").write_text("{}")
    notebook.settings("smoke", "cpu", str(tmp_path / "full"), str(tmp_path / "f"), needs_runs=True)
    assert "no runs in" not in capsys.readouterr().out
    assert "needs_runs=True" in (ROOT / "notebooks" / "49_fidelity.py").read_text()


@pytest.mark.slow
def test_executed_smoke_notebook_has_png_figures(tmp_path):
    """The sanity notebook, executed in the smoke profile: each figure is one display_data with
    ``image/png`` (what PDF/Markdown exporters keep) equal to the PNG file written, and its
    captioned HTML; no cell prints a path."""
    import nbformat

    from modarith.reporting.experiments import run_notebook

    out = run_notebook("sanity", profile="smoke", results=tmp_path / "results", device="cpu",
                       figures=tmp_path / "figures", progress=False)
    outputs = [o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", [])]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    written = sorted((tmp_path / "figures" / "sanity").glob("*.png"))
    assert pngs and len(pngs) == len(written)
    assert all(o["data"]["text/html"].startswith('<figure class="modarith-figure">') for o in pngs)
    assert {base64.b64decode(o["data"]["image/png"]) for o in pngs} == {p.read_bytes() for p in written}
    assert not any("Path(" in str(o.get("data", {}).get("text/plain", "")) for o in outputs
                   if o.get("output_type") == "execute_result")


@pytest.mark.parametrize("stem", sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_the_settings_cell_and_its_machine_paths_stay_out_of_the_report(stem):
    """The settings cell prints this machine's folders (results, figures): useful in Jupyter,
    a stranger's path in the report, so the cell is tagged report-hide."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "notebook.settings(" in "".join(cell["source"]):
            assert "report-hide" in cell["metadata"].get("tags", []), stem
