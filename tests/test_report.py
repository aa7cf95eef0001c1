"""build_report.py: options, the nbconvert export, progress, the build's plan and its union
training, failure handling, the build without Chromium, and the smoke report end to end.

The end-to-end tests share one session-scoped smoke build (``python build_report.py --profile
smoke`` into a temporary folder, or into ``$MODARITH_REPORT_BUILD`` when set, e.g. ``build/``
in CI to keep the artefacts) over the suite's shared smoke results store (``smoke_results`` of
``tests/conftest.py`` when it exists, else a store of its own). The browser test opens
``report.html`` in headless Chromium over the DevTools protocol (``--remote-debugging-pipe``,
standard library only) and checks that the page made no network request, that every image
loaded, that the math rendered as MathML with no raw ``$`` left, and saves screenshots. The
browser and PDF parts are skipped, with the reason, when no Chromium is installed (CI installs
Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from modarith.models.config import RunConfig, run_id
from modarith.reporting import export, report
from modarith.runtime import events
from modarith.study import protocol

ROOT = Path(__file__).resolve().parent.parent


def _visible_text(page: str) -> str:
    page = re.sub(r"<(style|script|math)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


# ----------------------------------------------------------------------------- options

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "build_report.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args, option, accepted", [
    (("--profile", "fast"), "--profile", "quick"),
    (("--device", "tpu"), "--device", "cuda"),
    (("--only", "4.3,9.9"), "--only", "4.5"),
])
def test_bad_options_exit_2_naming_the_option(args, option, accepted):
    proc = _cli(*args)
    assert proc.returncode == 2
    assert option in proc.stderr and accepted in proc.stderr
    assert "[1/" not in proc.stdout and "Plan:" not in proc.stdout  # nothing planned or ran


def test_device_cuda_without_cuda_exits_2(monkeypatch, capsys, tmp_path):
    """--device cuda on a machine without CUDA (patched, so the test is the same everywhere)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--device", "cuda", "--out", str(tmp_path / "out")], notebooks_dir=ROOT / "notebooks")
    err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "--device" in err.err and "'cpu'" in err.err
    assert "Plan:" not in err.out and not (tmp_path / "out").exists()


def test_select_notebooks():
    assert report.select_notebooks("4.5, 4.3") == ["data_size", "model_size"]  # report order
    assert report.select_notebooks(None) == list(protocol.EXPERIMENTS)
    assert report.notebook_file(report.select_notebooks("2.6")[0]) == "00_parameter_counts.ipynb"
    assert report.select_notebooks("time_law,fidelity") == ["fidelity", "time_law"]
    with pytest.raises(ValueError, match=r"--only: unknown key\(s\) '9\.9'.*accepted: .*4\.3"):
        report.select_notebooks("4.3,9.9")


# ----------------------------------------------------------------------------- dependencies

IMPORT_TO_PACKAGE = {"IPython": "ipython"}  # import name -> distribution name, where they differ
PLATFORM_MODULES = {"google"}  # google.colab: imported only inside Colab, which provides it


def _requirements() -> dict[str, set[str]]:
    """pyproject.toml's dependencies: {"core": names, "<extra>": names} (bare lower-case names)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the test extra installs tomli, the same parser
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(reqs):
        return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in reqs}

    return {"core": names(project["dependencies"]),
            **{k: names(v) for k, v in project["optional-dependencies"].items()}}


def test_every_runtime_import_is_declared():
    """Every package modarith imports (at module level or lazily) is a dependency of the core
    or of an extra (the checkout's own folders, e.g. benchmarks/, aside), and environment.yml
    lists the core, notebook, report and test ones."""
    import ast

    reqs = _requirements()
    declared = set().union(*reqs.values())
    local = {p.stem for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
             or (p.is_dir() and any(p.glob("*.py")))}
    imported = set()
    for path in (ROOT / "modarith").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {IMPORT_TO_PACKAGE.get(m, m).lower() for m in imported
                   if m not in sys.stdlib_module_names | PLATFORM_MODULES | local}
    assert third_party - declared == set(), "imported but not declared in pyproject.toml"
    env = (ROOT / "environment.yml").read_text(encoding="utf-8")
    listed = {m.group(1).lower() for m in re.finditer(r"^\s+- ([A-Za-z0-9_.-]+)", env, re.M)}
    wanted = (reqs["core"] | reqs["notebook"] | reqs["report"] | reqs["test"]) - {"torch", "modarith"}
    assert {re.sub(r"\[.*", "", w) for w in wanted} - listed == set(), "missing from environment.yml"


# ----------------------------------------------------------------------------- nbconvert export

PNG = base64.b64encode(b"\x89PNG fake").decode()
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/o/n/blob/main/notebooks/x.ipynb)")


def _output(kind, **kw):
    return nbformat.v4.new_output(kind, **kw)


def _notebook_with_every_kind_of_cell():
    new_code, new_md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        new_md(f"# A notebook\n\n{BADGE}\n\nInline $x_{{i}}^2$ and\n$$P = 4 (d^2 + b\\, d)$$\n\n"
               "## Part\n\ntext\n\n## Part\n\ncosts 5 dollars"),
        new_code("SECRET_SETUP = 1", metadata={"tags": ["report-hide"]},
                 outputs=[_output("stream", name="stdout", text="hidden output\n")]),
        new_code('profile = "smoke"', metadata={"tags": ["parameters"]}),
        new_code("print('shown')", outputs=[
            _output("stream", name="stdout", text="the bound $a_1$ holds\n"),
            _output("stream", name="stderr", text="50%|#####     | progress bar\n"),
            _output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m"},
                                          "text/plain": "VBox(children=())"}),
            _output("display_data", data={"text/html": (
                f'<figure class="modarith-figure"><img src="data:image/png;base64,{PNG}">'
                "<figcaption>Loss against $r_{train}$.</figcaption></figure>")}),
            _output("display_data", data={"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}),
            _output("display_data", data={"text/markdown": "**Best values** for $\\alpha$.",
                                          "text/plain": "<IPython.core.display.Markdown object>"}),
            _output("execute_result", data={"text/plain": "<Figure size 640x480 with 1 Axes>"},
                    execution_count=1),
        ]),
    ]
    return nb


def test_export_hides_code_converts_math_and_numbers_figures():
    page, _ = export.report_exporter().from_notebook_node(_notebook_with_every_kind_of_cell())
    visible = _visible_text(page)
    # removed: report-hide and parameters cells, every input, stderr, widgets, figure reprs
    for absent in ("SECRET_SETUP", "hidden output", 'profile = "smoke"', "print(", "progress bar",
                   "VBox", "<Figure size"):
        assert absent not in page, absent
    # offline: no script, stylesheet link or remote image; the Colab badge became a link
    assert not re.search(r"<script\b|<link\b|@import", page, re.I)
    assert not re.search(r"""\bsrc\s*=\s*(?!["']?data:)""", page)
    assert "colab-badge.svg" not in page and 'href="https://colab.research.google.com/github/o/n' in page
    # math: x_i^2, P = …, a_1 (stdout), r_train (HTML figure caption), alpha (Markdown output)
    assert page.count("<math") == 5 and page.count('<math display="block"') == 1
    assert "$" not in visible and "costs 5 dollars" in visible
    assert re.search(r"<strong>Best values</strong> for <math", page)
    # the figure keeps its <figure class="modarith-figure"> (numbered by the CSS counter)
    assert page.count('<figure class="modarith-figure">') == 1
    assert re.search(r"<figcaption>Loss against <math", page)
    assert "counter-increment: figure" in page and 'content: "Figure " counter(figure)' in page


def test_table_of_contents_has_unique_anchors():
    page, _ = export.report_exporter().from_notebook_node(_notebook_with_every_kind_of_cell())
    page = export.add_toc(page.replace("<main", "<!-- modarith:toc --><main", 1))
    ids = re.findall(r'<h[1-3] id="([^"]+)"', page)
    assert ids == ["a-notebook", "part", "part-2"]
    nav = re.search(r'<nav class="toc".*?</nav>', page, re.S).group(0)
    assert re.findall(r'href="#([^"]+)"', nav) == ids
    assert "<ol><li><a href=\"#part\">" in nav  # the h2 entries nest under their h1


# ----------------------------------------------------------------------------- progress and plan

def test_engine_writes_progress_events(tmp_path, monkeypatch):
    from modarith.runtime.engine import train

    log = tmp_path / "events.jsonl"
    monkeypatch.setenv(events.ENV, str(log))
    monkeypatch.setattr(events, "WRITE_EVERY_S", 0.0)
    configs = [RunConfig(model="gpt", p=5, d_model=8, num_layers=1, num_heads=2, steps=6, seed=s,
                         eval_dense=2, eval_every=2) for s in (0, 1)]
    train(configs, results=None, device="cpu", progress=False, workers=1)  # one group, in this process
    seen = events.ProgressTail(log).read()
    assert [e["event"] for e in seen] == ["group"] + ["step"] * 6 + ["end"]
    assert [e["step"] for e in seen if e["event"] == "step"] == list(range(1, 7))
    assert {(e["runs"], e["total"]) for e in seen} == {(2, configs[0].total_steps)}


@pytest.mark.parametrize("tty", [False, True])
def test_build_progress_lines(tmp_path, monkeypatch, tty):
    """Plain lines (not a TTY) name the notebook, the group, the step and the ETA; on a TTY
    one tqdm line updates in place."""
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv(events.ENV, str(log))
    monkeypatch.setattr(events, "WRITE_EVERY_S", 0.0)
    shown_to = io.StringIO()
    shown = events.BuildProgress(log, "[2/8] 43_data_size.ipynb", 3, tty=tty, stream=shown_to,
                                 plain_every_s=0.0)
    writer = events.writer("gpt L=2 d=64 ×4", 4, 100, 0)
    shown.poll()
    writer.update(40)
    shown.poll()
    writer.close(100)
    shown.close()
    text = shown_to.getvalue()
    assert "[2/8] 43_data_size.ipynb group 1/3 gpt L=2 d=64 ×4 (4 runs)" in text
    if tty:
        assert "\r" in text and "40/100" in text and "100/100" in text
    else:
        lines = text.splitlines()
        assert lines[0].endswith("step 0/100 …")
        assert re.search(r"step 40/100 \(40 %\), [\d.]+ steps/s, ETA ", lines[1])
        assert re.search(r"done, step 100/100 in ", lines[2]) and len(lines) == 3


def test_format_seconds():
    assert [events.format_seconds(s) for s in (0.25, 12, 125, 3725, None, float("nan"))] == \
        ["0.2 s", "12 s", "2 min 05 s", "1 h 02 min", "unknown", "unknown"]


def test_kept_kernel_runs_each_notebook_in_a_fresh_namespace(tmp_path):
    """Two notebooks in one kept kernel: the second sees none of the first's names and
    numbers its cells from 1, but the modules the first imported are still imported."""
    from modarith.reporting.experiments import Kernel, execute

    first, second = nbformat.v4.new_notebook(), nbformat.v4.new_notebook()
    first.cells = [nbformat.v4.new_code_cell("import colorsys\nleft_over = 1")]
    second.cells = [nbformat.v4.new_code_cell("import sys\nprint('left_over' in dir(), 'colorsys' in sys.modules)")]
    for name, nb in (("first", first), ("second", second)):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    with Kernel(tmp_path) as kernel:
        for name in ("first", "second"):
            execute(tmp_path / f"{name}.ipynb", tmp_path / "out" / f"{name}.ipynb", progress=False, kernel=kernel)
        assert kernel.alive()
    cell = nbformat.read(tmp_path / "out" / "second.ipynb", as_version=4).cells[-1]
    assert cell.outputs[0]["text"] == "False True\n" and cell.execution_count == 1
    assert not kernel.alive()


# ----------------------------------------------------------------------------- failures

def test_failing_notebook_is_named_kept_and_marked(tmp_path, capsys):
    """A notebook whose runs the build trains first, then fails in its last cell: the plan
    line and the training's progress lines, the notebook and the failing cell named, the
    executed copy kept, the report still written with the notebook marked, exit 1."""
    file = report.notebook_file("sanity")
    nb = nbformat.read(ROOT / "notebooks" / file, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('raise RuntimeError("boom in a cell")'))
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nbformat.write(nb, nbdir / file)
    out = tmp_path / "out"
    code = report.main(["--only", "4.1", "--profile", "smoke", "--device", "cpu", "--out", str(out),
                        "--results", str(tmp_path / "results"), "--figures", str(tmp_path / "figures"),
                        "--no-pdf"], notebooks_dir=nbdir)
    printed = capsys.readouterr().out
    assert code == 1
    configs = protocol.configs("sanity", "smoke")
    runs, steps = len(configs), sum(c.total_steps for c in configs)
    assert re.search(rf"\[1/1\] {re.escape(file)}\s+{runs} runs \({steps} run-steps\): {runs} to train", printed)
    assert re.search(r"^training group 1/\d+ .*: step 0/\d+ …", printed, re.M)
    assert re.search(r"^training group \d+/\d+ .*: done, step (\d+)/\1 in ", printed, re.M)
    assert f"cell {len(nb.cells) + 1} " in printed  # + papermill's injected-parameters cell
    assert file in printed and "RuntimeError: boom in a cell" in printed
    executed = nbformat.read(out / "notebooks" / file, as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code"
               for o in c.outputs)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<div class="notebook-failed"><strong>This notebook failed.</strong>' in page
    assert '<td class="status-failed">FAILED</td>' in page and "boom in a cell" in page


def test_without_chromium_one_line_html_and_exit_0(tmp_path, smoke_results):
    """No Chromium (MODARITH_CHROMIUM names nothing, PATH holds only Python): one line says
    so, the HTML is written, no PDF, exit 0. With --svg the figures are written as SVG too."""
    env = {**os.environ, "MODARITH_CHROMIUM": str(tmp_path / "no-chromium"),
           "PATH": str(Path(sys.executable).parent)}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "build_report.py"), "--only", "4.1", "--profile", "smoke",
                           "--device", "cpu", "--results", str(smoke_results), "--out", str(out),
                           "--figures", str(tmp_path / "figures"), "--svg"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "Chromium" in line]
    assert len(said) == 1 and said[0].startswith("no PDF: Chromium/Chrome not found"), said
    assert "MODARITH_CHROMIUM" in said[0] and "Traceback" not in proc.stderr
    assert (out / "report.html").stat().st_size > 10_000 and not (out / "report.pdf").exists()
    written = sorted(p.name for p in (tmp_path / "figures" / "sanity").iterdir())
    assert written == ["train_val.png", "train_val.svg"]


# ----------------------------------------------------------------------------- smoke build

@pytest.fixture(scope="session")
def report_results(smoke_results) -> Path:
    """The suite's shared smoke store (conftest.py), which the session's smoke build used."""
    return smoke_results


@pytest.mark.slow
def test_smoke_build_outputs(smoke_build):
    out, work, stdout, seconds = smoke_build
    lines = stdout.splitlines()
    names = list(protocol.EXPERIMENTS)
    assert lines[0].startswith("profile smoke") and "device cpu" in lines[0] and "REDUCED" in lines[0]
    # the plan: totals, then one line per notebook, before anything runs
    assert lines[1].startswith(f"Plan: {len(names)} notebooks, ")
    distinct = {run_id(c) for name in names for c in protocol.configs(name, "smoke")}
    assert f" {len(distinct)} distinct runs: " in lines[1]
    for i, name in enumerate(names, 1):
        file = report.notebook_file(name)
        assert lines[1 + i].startswith(f"  [{i}/{len(names)}] {file}")
        assert re.search(rf"\] {re.escape(file)}: ok \(", stdout)
        executed = nbformat.read(out / "notebooks" / file, as_version=4)
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        if protocol.EXPERIMENTS[name].models:  # the build passes profile, device and folders
            assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    assert "without encryption" not in stdout
    assert any((work / "figures").rglob("*.png")), "figures must land in --figures"
    assert not any((work / "figures").rglob("*.svg")), "SVG only with --svg"
    print(f"smoke build: {seconds:.0f} s")


@pytest.mark.slow
def test_build_plan_agrees_with_each_notebooks_plan_line(smoke_build):
    """Per notebook, the build's plan line counts the runs and run-steps the executed
    notebook's own plan line (plan.plan_text) counts."""
    out, _, stdout, _ = smoke_build
    for name in protocol.trained():
        file = report.notebook_file(name)
        build_line = next(line for line in stdout.splitlines() if line.startswith("  [") and file in line)
        counted = re.search(r"(\d+) runs \(([\d,]+) run-steps\)", build_line).group(0)
        printed = "".join(o.get("text", "") for c in nbformat.read(out / "notebooks" / file, as_version=4).cells
                          if c.cell_type == "code" for o in c.outputs if o.get("name") == "stdout")
        assert f"{counted}; to train: 0 runs" in printed, (name, counted)


@pytest.mark.slow
def test_plan_counts_stored_runs(smoke_build, report_results, tmp_path):
    """After the smoke build every run is stored: the plan trains nothing; an empty store
    trains the union, in the engine's groups, each shared run counted once, in the first
    notebook that lists it."""
    from modarith.runtime.engine import group_configs

    chosen = report.select_notebooks("4.1,4.8")  # 4.8 loads the sanity check's GPT
    sanity, picks = (protocol.configs(name, "smoke") for name in chosen)
    shared = len(set(sanity) & set(picks))
    assert shared > 0
    stored = report.build_plan(chosen, "smoke", "cpu", report_results)
    assert [(p.runs, p.earlier, p.to_train) for p in stored.notebooks] == [(len(sanity), 0, 0),
                                                                           (len(picks), shared, 0)]
    assert stored.todo == [] and "nothing to train" in stored.describe("cpu").splitlines()[0]
    fresh = report.build_plan(chosen, "smoke", "cpu", tmp_path / "empty")
    union = set(sanity) | set(picks)
    assert [p.to_train for p in fresh.notebooks] == [len(sanity), len(picks) - shared]
    assert set(fresh.todo) == union and len(fresh.groups) == len(group_configs(list(union)))
    assert fresh.notebooks[0].train_steps == sum(c.total_steps for c in sanity)
    assert fresh.seconds > 0 and sum(p.seconds for p in fresh.notebooks) == pytest.approx(fresh.serial_seconds)
    assert "to train first" in fresh.describe("cpu").splitlines()[0]


@pytest.mark.slow
def test_smoke_report_html_is_self_contained(smoke_build):
    out = smoke_build[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('class="notebook-start"') == len(protocol.EXPERIMENTS)
    # nothing to fetch: no remote src, stylesheet, script or CSS url
    assert not re.search(r"""\bsrc\s*=\s*(?!["']?data:)""", page), "every src must be a data: URI"
    assert not re.search(r"<link\b|<script\b|@import|url\(\s*['\"]?(?:https?:)?//", page, re.I)
    visible = _visible_text(page)
    assert "<math" in page and "$" not in visible
    assert 'class="math-error"' not in page, "a formula latex2mathml could not convert"
    assert "import " not in visible, "code cells must be hidden"
    for field in ("Profile", "Device", "modarith version", "Date", "Total wall time"):
        assert f"<th>{field}</th>" in page
    assert 'class="dataframe reductions"' in page, "the table of the profile's reductions"
    # table of contents: one entry per notebook title, each pointing at an anchor of the page
    nav = re.search(r'<nav class="toc".*?</nav>', page, re.S).group(0)
    targets = re.findall(r'href="#([^"]+)"', nav)
    assert len(targets) >= len(protocol.EXPERIMENTS) and all(f'id="{t}"' in page for t in targets)
    assert "Problem 2.10" in nav
    # figures: every figure is a numbered <figure class="modarith-figure">
    assert page.count('<figure class="modarith-figure">') >= 10
    assert 'content: "Figure " counter(figure)' in page
    assert page.count("<img") >= 10, "figures and attention heatmaps embedded"


@pytest.mark.slow
def test_smoke_report_pdf(smoke_build):
    if export.find_chromium() is None:
        pytest.skip(f"no Chromium: {export.INSTALL_HINT}")
    from pypdf import PdfReader

    out = smoke_build[0]
    pdf = out / "report.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")
    figures = (out / "report.html").read_text(encoding="utf-8").count('<figure class="modarith-figure">')
    text = "\n".join(page.extract_text() for page in PdfReader(str(pdf)).pages)
    # the CSS counter numbers the figures 1 … n across the whole report
    numbers = [int(n) for n in re.findall(r"Figure (\d+)\. ", text)]
    assert numbers[:1] == [1] and max(numbers) == figures, (numbers, figures)


# ----------------------------------------------------------------------------- browser (CDP)

class Browser:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4, NUL-framed JSON)."""

    def __init__(self, chromium: str, profile_dir: Path):
        cmd_read, self._cmd_write = os.pipe()  # we write commands, Chromium reads fd 3
        self._evt_read, evt_write = os.pipe()  # Chromium writes fd 4, we read

        def child_fds():
            a, b = os.dup(cmd_read), os.dup(evt_write)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, *export.CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile_dir}",
             "--hide-scrollbars", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child_fds)
        os.close(cmd_read)
        os.close(evt_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._evt_read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._evt_read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: bool = True, timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def open(self, url: str, width: int = 1280, height: int = 1600) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", timeout=120)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_write)
        os.close(self._evt_read)


PAGE_STATE = """
Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() => {
  const maths = Array.from(document.querySelectorAll('math'));
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('math, style, script').forEach(e => e.remove());
  return {
    images: document.images.length,
    broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                 .map(i => i.src.slice(0, 60)),
    maths: maths.length,
    mathsDrawn: maths.filter(m => m.getBoundingClientRect().width > 0).length,
    mathml: maths.length ? (maths[0].namespaceURI === 'http://www.w3.org/1998/Math/MathML') : false,
    dollars: (clone.textContent.match(/\\$/g) || []).length,
    title: document.title,
  };
})
"""


@pytest.mark.slow
def test_report_in_headless_chromium(smoke_build):
    chromium = export.find_chromium()
    if chromium is None:
        pytest.skip(f"no Chromium for the browser check: {export.INSTALL_HINT}")
    out = smoke_build[0]
    profile_dir = out / ".chromium-profile"
    browser = Browser(chromium, profile_dir)
    try:
        browser.open((out / "report.html").as_uri())
        state = browser.evaluate(PAGE_STATE)
        browser.screenshot(out / "report_screenshot.png")
        browser.evaluate("document.images[0].scrollIntoView(); true")
        browser.screenshot(out / "report_screenshot_figure.png")
        browser.evaluate("document.querySelector('math[display=block]').scrollIntoView(); true")
        browser.screenshot(out / "report_screenshot_math.png")
    finally:
        browser.close()
        shutil.rmtree(profile_dir, ignore_errors=True)
    requests = [e["params"]["request"]["url"] for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"]
    remote = [url for url in requests if not url.startswith(("file:", "data:", "about:"))]
    assert not remote, f"the report made network requests: {remote}"
    assert state["images"] >= 10 and state["broken"] == [], state
    assert state["maths"] > 0 and state["mathml"] and state["mathsDrawn"] == state["maths"], state
    assert state["dollars"] == 0, "raw $ left in the rendered page"
    assert (out / "report_screenshot.png").stat().st_size > 10_000
