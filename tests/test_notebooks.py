"""The notebooks: jupytext pairs in sync, committed without outputs, ruff-clean; parameters,
Colab install cell and badge as documented; the Colab path with fakes (``google.colab``, its
``drive.mount``, pip); the grid each notebook builds equals the protocol's; and every notebook
executed once in the smoke profile (papermill) shows its figures and answers."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from modarith.models.config import RunConfig
from modarith.reporting import notebook
from modarith.study import protocol
from modarith.version import RELEASE_REF

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
STEMS = sorted(p.stem for p in NB_DIR.glob("*.ipynb"))
EXPERIMENT_OF = {e.notebook: name for name, e in protocol.EXPERIMENTS.items() if e.models}  # they train
COMMON = ("profile", "device", "results_dir", "figures_dir", "force")
# Seed figures each experiment reproduces (SPEC, "The experiments").
SEED_FIGURES = {"sanity": range(1, 2), "data_size": range(2, 6), "orders": range(6, 9),
                "model_size": range(9, 19), "compute": range(19, 23),
                "regularization": range(23, 25), "interpretability": range(25, 28)}


def _nb(stem):
    return nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4)


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_every_experiment_has_a_notebook_and_every_notebook_a_source():
    assert sorted(e.notebook for e in protocol.EXPERIMENTS.values()) == STEMS  # one registry, every notebook
    assert set(EXPERIMENT_OF) <= set(STEMS)
    assert STEMS == sorted(p.stem for p in NB_DIR.glob("*.py"))
    assert "00_parameter_counts" in STEMS and not (NB_DIR / "_make_notebooks.py").exists()


@pytest.mark.parametrize("stem", STEMS)
def test_pair_in_sync_and_outputs_stripped(stem):
    nb = _nb(stem)
    nbformat.validate(nb)
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    import jupytext  # the "test" extra must install it: CI checks the pairs

    py = jupytext.read(NB_DIR / f"{stem}.py")
    assert [(c.cell_type, c.source, _tags(c)) for c in py.cells] == \
        [(c.cell_type, c.source, _tags(c)) for c in nb.cells], \
        f"{stem}: .py and .ipynb differ; run `jupytext --sync notebooks/{stem}.py`"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{stem}: outputs committed"


def test_notebook_sources_are_ruff_clean():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", *sorted(map(str, NB_DIR.glob("*.py")))],
                          capture_output=True, text=True, cwd=ROOT)
    if "No module named ruff" in ruff.stderr:
        pytest.skip("ruff is not installed")
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def _literal_assignments(source: str) -> dict[str, object]:
    """name -> value of a parameters cell; fails unless every statement is a commented literal."""
    tree = ast.parse(source)
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), f"a parameter without its type: {ast.dump(node)}"
        values[node.target.id] = ast.literal_eval(node.value)
        assert node.end_lineno in comments, f"{node.target.id} has no comment"
    for line in source.splitlines():
        assert line.count("=") == 1, f"papermill cannot parse {line!r}"
    return values


@pytest.mark.parametrize("stem", STEMS)
def test_parameters_cell(stem):
    import papermill

    cells = [c for c in _nb(stem).cells if "parameters" in _tags(c)]
    assert len(cells) == 1
    values = _literal_assignments(cells[0].source)
    inspected = papermill.inspect_notebook(str(NB_DIR / f"{stem}.ipynb"))
    assert list(inspected) == list(values) and all(p["help"] for p in inspected.values())
    assert all(p["inferred_type_name"] != "None" for p in inspected.values())  # --help-notebook shows types
    if stem in EXPERIMENT_OF:
        assert tuple(values)[:len(COMMON)] == COMMON
        assert values["profile"] == values["device"] == values["results_dir"] == "auto"
        assert values["force"] is False
        assert re.search(r"^results_dir: str = .*# .*\bdrive: Google Drive", cells[0].source, re.M)
        text = "".join(c.source for c in _nb(stem).cells if c.cell_type == "markdown")
        assert 'results_dir = "drive"' in text and "Google Drive" in text


def _fake_colab(monkeypatch, mount_root=None):
    """A fake ``google.colab`` in ``sys.modules`` whose ``drive.mount(path)`` creates
    ``path/MyDrive`` (the Drive's root), as Colab's does; returns the mount calls."""
    import types

    mounted = []

    def mount(path, **kw):
        mounted.append(path)
        (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)

    google, colab = types.ModuleType("google"), types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    if mount_root is not None:
        monkeypatch.setattr(notebook, "DRIVE_ROOT", Path(mount_root))
    return mounted


def _fake_pip(monkeypatch, returncode=0, stderr=""):
    """Replace pip under ``subprocess.run`` (the install cell's) by a recorder; other commands
    (git, for the records' code version) still run. Returns pip's calls."""
    calls, real = [], subprocess.run

    def run(cmd, **kw):
        if list(cmd[1:3]) != ["-m", "pip"]:
            return real(cmd, **kw)
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    monkeypatch.setattr(subprocess, "run", run)
    return calls


def _run_cell(source: str, namespace: dict | None = None) -> dict:
    namespace = {} if namespace is None else namespace
    exec(compile(source, "cell", "exec"), namespace)  # noqa: S102 - our own notebook's cell
    return namespace


@pytest.mark.parametrize("stem", STEMS)
def test_title_badge_and_colab_install_cell(stem, monkeypatch):
    nb = _nb(stem)
    first, install = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    owner_name = protocol.REPO_URL.removeprefix("https://github.com/")
    badge = (f"https://colab.research.google.com/github/{owner_name}/blob/{protocol.REPO_REF}"
             f"/notebooks/{stem}.ipynb")
    assert badge in first.source
    assert install.cell_type == "code" and "report-hide" in _tags(install)
    assert install.source == _nb(STEMS[0]).cells[1].source  # it cannot import modarith: one copy per notebook, all equal
    assert f'"MODARITH_REPO_URL", "{protocol.REPO_URL}"' in install.source
    # it pins the release of modarith.__version__ (it cannot import it: a test keeps the two equal)
    assert re.findall(r"\bv\d+\.\d+\.\d+\b", install.source) == [RELEASE_REF]
    assert len(install.source.splitlines()) <= 8
    urls = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", "".join(c.source for c in nb.cells)))
    assert urls <= {protocol.REPO_URL}, urls  # one repository URL everywhere
    # outside Colab the cell installs nothing
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = _fake_pip(monkeypatch)
    assert "url" not in _run_cell(install.source) and calls == []
    # on Colab (faked) it runs pip in the kernel's interpreter: the release ...
    _fake_colab(monkeypatch)
    monkeypatch.delenv("MODARITH_REPO_URL", raising=False)
    monkeypatch.delenv("MODARITH_REF", raising=False)
    _run_cell(install.source)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q",
                      f"modarith[notebook] @ git+{protocol.REPO_URL}@{RELEASE_REF}"]]
    # ... or a fork at a ref
    monkeypatch.setenv("MODARITH_REPO_URL", "https://example.org/fork")
    monkeypatch.setenv("MODARITH_REF", "v9.9.9")
    _run_cell(install.source)
    assert calls[-1][-1] == "modarith[notebook] @ git+https://example.org/fork@v9.9.9"


def test_colab_install_says_what_it_installs_and_installs_only_the_ref_asked_for(monkeypatch, capsys):
    """A ref that cannot be installed stops the cell with one message naming it: no silent
    install of the default branch in its place."""
    install = _nb(STEMS[0]).cells[1]
    _fake_colab(monkeypatch)
    monkeypatch.delenv("MODARITH_REPO_URL", raising=False)
    monkeypatch.setenv("MODARITH_REF", "no-such-tag")
    calls = _fake_pip(monkeypatch, returncode=1, stderr="  error: pathspec 'no-such-tag' did not match\n")
    with pytest.raises(SystemExit) as stop:
        _run_cell(install.source)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q",
                      f"modarith[notebook] @ git+{protocol.REPO_URL}@no-such-tag"]]
    assert f"installing modarith from {protocol.REPO_URL}@no-such-tag" in capsys.readouterr().out
    message = str(stop.value)
    assert f"{protocol.REPO_URL}@no-such-tag" in message and "MODARITH_REF" in message
    assert "error: pathspec 'no-such-tag' did not match" in message and "\n" not in message


def test_colab_install_failure_stops_with_one_message(monkeypatch):
    """pip fails (no such repository): the cell stops with one SystemExit naming
    MODARITH_REPO_URL and pip's reason, before any import of modarith."""
    install = _nb(STEMS[0]).cells[1]
    _fake_colab(monkeypatch)
    monkeypatch.delenv("MODARITH_REPO_URL", raising=False)
    monkeypatch.delenv("MODARITH_REF", raising=False)
    _fake_pip(monkeypatch, returncode=1, stderr=(
        "  error: subprocess-exited-with-error\n  fatal: repository not found\n"
        "  note: This error originates from a subprocess\n"))
    with pytest.raises(SystemExit) as stop:
        _run_cell(install.source)
    message = str(stop.value)
    assert "MODARITH_REPO_URL" in message and protocol.REPO_URL in message
    assert "error: subprocess-exited-with-error" in message and "\n" not in message


def test_colab_drive_keeps_runs_on_the_drive_and_a_rerun_loads_them(tmp_path, monkeypatch, capsys):
    """41_sanity_check's first cells on a faked Colab with results_dir = "drive": pip is
    called, Drive is mounted, the runs are stored under MyDrive/modarith/, and running the
    cells again (a new runtime after a disconnect) loads the stored runs instead of training."""
    nb = _nb("41_sanity_check")
    mounted = _fake_colab(monkeypatch, tmp_path / "content" / "drive")
    calls = _fake_pip(monkeypatch)
    last = next(i for i, c in enumerate(nb.cells) if "records = train(" in c.source)
    cells = [c for c in nb.cells[:last + 1] if c.cell_type == "code"]
    monkeypatch.chdir(tmp_path)

    def run_notebook_cells():
        ns: dict = {}
        for cell in cells:
            _run_cell(cell.source, ns)
            if "parameters" in _tags(cell):
                ns.update(profile="smoke", device="cpu", results_dir="drive")
        return ns

    first = run_notebook_cells()
    drive = tmp_path / "content" / "drive" / "MyDrive" / "modarith"
    assert len(calls) == 1 and mounted == [str(tmp_path / "content" / "drive")]
    assert first["settings"].results == drive / "results"
    assert first["settings"].figures == drive / "figures" / "smoke"  # not over the quick figures
    stored = sorted((drive / "results").rglob("*.json"))
    assert len(first["records"]) == len(protocol.configs("sanity", "smoke")) and stored
    mtimes = {p: p.stat().st_mtime_ns for p in stored}
    capsys.readouterr()
    second = run_notebook_cells()
    assert "nothing to train: every run is stored" in capsys.readouterr().out
    assert [r.meta["created"] for r in second["records"]] == [r.meta["created"] for r in first["records"]]
    assert {p: p.stat().st_mtime_ns for p in sorted((drive / "results").rglob("*.json"))} == mtimes


def _grid_cell(stem):
    cells = [c for c in _nb(stem).cells if c.cell_type == "code" and "configs = " in c.source]
    assert len(cells) == 1, f"{stem}: expected one cell that builds `configs`"
    return cells[0].source.split("print(plan_text")[0]


@pytest.mark.parametrize("profile", protocol.PROFILES)
@pytest.mark.parametrize("stem", sorted(EXPERIMENT_OF))
def test_grid_in_sight_equals_the_protocol(stem, profile, capsys):
    """The list comprehension a reader sees builds exactly protocol.configs(...)."""
    name = EXPERIMENT_OF[stem]
    namespace = {"RunConfig": RunConfig, "knobs": protocol.knobs(name, profile), "seeds": None, "notebook": notebook}
    exec(compile(_grid_cell(stem), stem, "exec"), namespace)  # noqa: S102 - our own cell
    assert namespace["configs"] == protocol.configs(name, profile)


@pytest.mark.parametrize("stem", sorted(EXPERIMENT_OF))
def test_seeds_parameter_builds_every_grid_point_per_seed(stem):
    """`seeds` (a parameter; None = the profile's) gives every grid point of the protocol once
    per seed asked for, nothing else changed."""
    name = EXPERIMENT_OF[stem]
    values = _literal_assignments([c for c in _nb(stem).cells if "parameters" in _tags(c)][0].source)
    if "seeds" not in values:
        pytest.skip(f"{stem} has no seed grid")
    assert values["seeds"] is None
    namespace = {"RunConfig": RunConfig, "knobs": protocol.knobs(name, "quick"), "seeds": "[0, 1, 2, 3]",
                 "notebook": notebook}  # seeds as papermill passes -p seeds '[0, 1, 2, 3]'
    exec(compile(_grid_cell(stem), stem, "exec"), namespace)  # noqa: S102 - our own cell
    base = {replace(c, seed=0) for c in protocol.configs(name, "quick")}
    got = namespace["configs"]
    assert len(got) == 4 * len(base) and {replace(c, seed=0) for c in got} == base
    assert sorted({c.seed for c in got}) == [0, 1, 2, 3]


@pytest.mark.parametrize("stem", sorted(EXPERIMENT_OF))
def test_one_cell_per_seed_figure_and_question(stem):
    nb = _nb(stem)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    figure_cells = [s for s in code if "output.show(" in s]
    assert all(s.count("output.show(") == 1 for s in figure_cells)
    if EXPERIMENT_OF[stem] in protocol.reproduced():  # an experiment beyond the seed cites no seed figure
        assert all("Seed: Figure" in s for s in figure_cells)
    answers = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "print(" in c.source
               and i > max(j for j, d in enumerate(nb.cells) if "output.show(" in d.source)]
    assert answers, f"{stem}: no answer cell after the figures"
    assert nb.cells[-1].cell_type == "markdown" or "report-hide" in _tags(nb.cells[-1])


def _outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    html, text = [], []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                raise AssertionError(f"{path.name}: {o['ename']}: {o['evalue']}")
            if "data" in o and "text/html" in o["data"]:
                html.append(o["data"]["text/html"])
            if o.get("name") == "stdout":
                text.append(o["text"])
    return html, "".join(text)


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(EXPERIMENT_OF))
def test_smoke_execution_figures_and_answers(stem, smoke_notebooks, smoke_results):
    name = EXPERIMENT_OF[stem]
    html, text = _outputs(smoke_notebooks[stem])
    n = len(protocol.configs(name, "smoke"))
    assert f"{n} runs (" in text and "nothing to train: every run is stored" in text
    figures = [h for h in html if h.startswith('<figure class="modarith-figure"><img src="data:image/png;base64,')]
    captions = [re.search(r"<figcaption>(.*)</figcaption>", h, re.S).group(1) for h in figures]
    assert captions and all("smoke profile" in c for c in captions)
    numbers = {int(m) for c in captions for m in re.findall(r"Seed: Figure (\d+)\.", c)}
    expected = set(SEED_FIGURES.get(name, ()))  # none beyond the seed
    if name == "model_size":  # one figure per depth of the grid (the smoke grid has fewer)
        depths = len(protocol.knobs(name, "smoke").grid["num_layers"])
        expected = {9 + i for i in range(depths)} | {12 + i for i in range(depths)} | set(range(15, 19))
    assert numbers == expected
    written = sorted((smoke_results.parent / "figures" / name).iterdir())
    assert len(written) == len(figures)  # PNG only: the build writes SVG with --svg
    assert {p.suffix for p in written} == {".png"} and all(p.stat().st_size > 1000 for p in written)
    last = text.split("every run is stored.")[-1]
    assert last.strip(), f"{stem}: no computed answer printed"


@pytest.mark.slow
def test_smoke_parameter_counts_and_table1(smoke_notebooks):
    _, text = _outputs(smoke_notebooks["00_parameter_counts"])
    assert "every count equals its closed form" in text
    html, _ = _outputs(smoke_notebooks["41_sanity_check"])
    table = [h for h in html if "<table" in h]
    assert len(table) == 1 and "Table 1." in table[0] and "9100" in table[0]


# --------------------------------------------------------------------------- settings
def test_settings_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"profile = 'fast'.*smoke"):
        notebook.settings(profile="fast")
    with pytest.raises(ValueError, match=r"device = 'tpu'.*cuda"):
        notebook.settings(device="tpu")
    with pytest.raises(ValueError, match="force"):
        notebook.settings(force="yes")
    with pytest.raises(ValueError, match="results_dir"):
        notebook.settings(results_dir="")


def test_settings_drive_outside_colab_names_the_parameter(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setitem(sys.modules, "google", None)  # no google package at all
    with pytest.raises(ValueError, match="results_dir = 'drive' needs Google Colab"):
        notebook.settings(device="cpu", results_dir="drive")


def test_settings_resolve(tmp_path, monkeypatch):
    s = notebook.settings("smoke", "cpu", str(tmp_path / "r"), str(tmp_path / "f"))
    assert (s.profile, s.device, s.results) == ("smoke", "cpu", tmp_path / "r")
    assert s.figures.is_dir() and "smoke profile" in s.caption()
    assert notebook.settings("auto", "cpu", str(tmp_path), str(tmp_path)).profile == "quick"
    monkeypatch.chdir(NB_DIR)  # Jupyter opens the notebooks here: auto = the checkout's folders
    auto = notebook.settings("smoke", "cpu", figures_dir=str(tmp_path))
    assert auto.results == ROOT / "results"


def test_printed_best_values_equal_the_stored_records(smoke_notebooks, smoke_results):
    """The numbers 41_sanity_check prints (best train and validation accuracy, their t_f) are
    the store's records: smoke trains one seed, so each mean is that run's summary value,
    formatted here by hand (4 decimals, whole steps) rather than by the notebook's helper."""
    import re

    from modarith.runtime.store import Store

    _, text = _outputs(smoke_notebooks["41_sanity_check"])
    line = re.compile(r"(LSTM|GPT): best train accuracy (\S+) first reached at t_f = (\d+), "
                      r"best validation accuracy (\S+) at t_f = (\d+)")
    printed = {m.group(1): m.groups()[1:] for m in line.finditer(text)}
    assert sorted(printed) == ["GPT", "LSTM"], text[-2000:]
    store = Store(smoke_results)
    for c in protocol.configs("sanity", "smoke"):
        s = store.get(c).summary
        expected = (f"{s['A_train']:.4f}", f"{round(s['tf_A_train'])}", f"{s['A_val']:.4f}", f"{round(s['tf_A_val'])}")
        assert printed[c.model.upper()] == expected, (c.model, printed, s)
