"""Static checks of the report's notebooks (fast: nothing is executed here).

Execution is covered by tests/test_report.py, which builds the smoke report with papermill.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import io
import tokenize
from pathlib import Path

import nbformat
import pytest

from modarith import report

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
COMMON = ("profile", "device", "results_dir", "figures_dir", "force")


def _generator():
    spec = importlib.util.spec_from_file_location("_make_notebooks", NB_DIR / "_make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(info):
    return nbformat.read(NB_DIR / info.file, as_version=4)


def _parameters_cells(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


IDS = [info.file for info in report.NOTEBOOKS]


def test_registry_matches_folder():
    on_disk = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
    assert on_disk == sorted(IDS), "every notebook must be registered in modarith.report.NOTEBOOKS"
    assert IDS == sorted(IDS), "file names must sort in report order"


@pytest.mark.parametrize("info", report.NOTEBOOKS, ids=IDS)
def test_valid_and_without_outputs(info):
    nb = _read(info)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{info.file}: committed with outputs"
            assert cell.execution_count is None, f"{info.file}: committed with execution counts"


@pytest.mark.parametrize("info", report.NOTEBOOKS, ids=IDS)
def test_title_badge_and_colab_setup(info):
    nb = _read(info)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {info.title}\n")
    assert report.colab_badge(info.file) in first.source
    assert report.colab_url(info.file).startswith("https://colab.research.google.com/github/")
    setup = nb.cells[1]
    assert setup.cell_type == "code"
    assert '"google.colab" in sys.modules' in setup.source
    assert report.pip_target() in setup.source
    # outside Colab the setup cell does nothing (and installs nothing)
    namespace: dict = {}
    exec(compile(setup.source, "setup", "exec"), namespace)  # noqa: S102 - our own generated cell
    assert "subprocess" not in namespace


def _literal_assignments(source: str) -> dict[str, object]:
    """name -> value of a parameters cell; fails unless every statement is a commented literal."""
    tree = ast.parse(source)
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    values = {}
    for node in tree.body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"not an assignment: {ast.dump(node)}"
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        assert len(targets) == 1 and isinstance(targets[0], ast.Name), "one plain name per line"
        assert node.value is not None, f"{targets[0].id} has no value"
        values[targets[0].id] = ast.literal_eval(node.value)  # literals only
        assert node.end_lineno in comments, f"{targets[0].id} has no comment"
        if isinstance(node, ast.AnnAssign):  # the annotation is evaluated in the notebook
            assert isinstance(node.annotation, ast.Name) and hasattr(builtins, node.annotation.id)
    for line in source.splitlines():
        if line.strip():  # papermill skips lines holding more than one "="
            assert line.count("=") == 1, f"papermill cannot parse {line!r}"
    return values


@pytest.mark.parametrize("info", report.NOTEBOOKS, ids=IDS)
def test_one_parameters_cell_of_commented_literals(info):
    import papermill

    nb = _read(info)
    cells = _parameters_cells(nb)
    assert len(cells) == 1, f"{info.file}: expected exactly one cell tagged 'parameters'"
    values = _literal_assignments(cells[0].source)
    inspected = papermill.inspect_notebook(str(NB_DIR / info.file))
    assert list(inspected) == list(values), "papermill must see every parameter"
    assert all(p["help"] for p in inspected.values()), "every parameter documented"
    if info.experiment is not None:
        assert tuple(values)[: len(COMMON)] == COMMON
        assert values["profile"] == "auto" and values["device"] == "auto"
        # the cell after the parameters validates them
        index = nb.cells.index(cells[0])
        assert "notebook_settings(" in nb.cells[index + 1].source
        assert f'run_experiment("{info.experiment}"' in "".join(c.source for c in nb.cells)


@pytest.mark.parametrize("info", report.NOTEBOOKS, ids=IDS)
def test_code_cells_parse_and_ids_unique(info):
    nb = _read(info)
    for cell in nb.cells:
        if cell.cell_type == "code":
            ast.parse(cell.source)
    ids = [cell.id for cell in nb.cells]
    assert len(ids) == len(set(ids))


def _paired(info) -> bool:
    """True for a notebook kept as a jupytext percent-format source beside it (``.py``)."""
    return (NB_DIR / info.file).with_suffix(".py").exists()


def test_notebooks_are_up_to_date_with_generator():
    generator = _generator()
    stale = [info.file for info in report.NOTEBOOKS if not _paired(info)
             and (NB_DIR / info.file).read_text(encoding="utf-8") != generator.render(info)]
    assert not stale, f"run `python notebooks/_make_notebooks.py`; stale: {stale}"


@pytest.mark.parametrize("info", [i for i in report.NOTEBOOKS if _paired(i)],
                         ids=[i.file for i in report.NOTEBOOKS if _paired(i)])
def test_paired_notebooks_match_their_source(info):
    import jupytext

    source = jupytext.read(NB_DIR / info.file.replace(".ipynb", ".py"))
    nb = _read(info)
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in source.cells], \
        f"run `jupytext --sync notebooks/{info.file}`"


def test_repository_url_written_once():
    sources = {(NB_DIR / i.file).with_suffix(".py") for i in report.NOTEBOOKS}  # badge, like the .ipynb
    holders = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")
               if ".venv" not in p.parts and "build" not in p.parts and p not in sources
               and report.REPO_URL in p.read_text(encoding="utf-8", errors="ignore")]
    assert holders == ["modarith/report.py"]


def test_settings_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"profile='fast'.*auto, smoke, quick, full"):
        report.notebook_settings(profile="fast")
    with pytest.raises(ValueError, match=r"device='tpu'.*auto, cpu, cuda, mps"):
        report.notebook_settings(device="tpu")
    with pytest.raises(ValueError, match="force"):
        report.notebook_settings(force="yes")
    with pytest.raises(ValueError, match="results_dir"):
        report.notebook_settings(results_dir="")


def test_settings_resolve(tmp_path):
    settings = report.notebook_settings(profile="smoke", device="cpu", results_dir=str(tmp_path / "r"),
                                        figures_dir=str(tmp_path / "f"))
    assert (settings.profile, settings.device) == ("smoke", "cpu")
    assert settings.figures.is_dir() and settings.results.is_absolute()
    assert "REDUCED" in settings.describe()
    auto = report.notebook_settings(profile="auto", device="cpu", results_dir=str(tmp_path),
                                    figures_dir=str(tmp_path))
    assert auto.profile == "quick"


def test_auto_folders_follow_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(NB_DIR)  # Jupyter opens the notebooks here
    assert report.default_dir("results") == ROOT / "results"
    monkeypatch.chdir(tmp_path)  # outside a checkout (Colab): the working directory
    assert report.default_dir("results") == tmp_path.resolve() / "results"
