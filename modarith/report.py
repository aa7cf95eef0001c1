"""The report build: notebook registry, plan, execution with progress, HTML and PDF.

``python build_report.py`` (a thin wrapper around :func:`main`) prints the build's plan (runs
to train and to load per notebook, and the estimated time), executes the notebooks of
``notebooks/`` with papermill while showing each training group's step and ETA, and turns the
executed copies into one self-contained ``build/report.html`` with nbconvert's HTML exporter
and our template (``modarith/templates/modarith_report``): code hidden, ``report-hide`` cells
removed, figures embedded as data URIs and numbered, LaTeX converted to MathML so that the page
needs no network and no JavaScript. ``build/report.pdf`` is printed from the same HTML by
headless Chromium. This module adds only what nbconvert does not do: merging the notebooks,
the front page, the table of contents, math to MathML, the PDF, and the progress display.

papermill, nbconvert, nbformat, jinja2, traitlets and latex2mathml (the ``report`` extra) are
imported where they are used, so that importing this module needs only the library.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import modarith

# --------------------------------------------------------------------------------------
# Notebooks, profile and device
# --------------------------------------------------------------------------------------

PROFILE_CHOICES = ("auto", "smoke", "quick", "full")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class NotebookInfo:
    """One notebook of the report: its file, title, experiment and ``--only`` keys."""

    file: str  # file name under notebooks/
    title: str  # title (first heading of the notebook)
    experiment: str | None  # key of modarith.protocol.EXPERIMENTS (its runs), or None
    keys: tuple[str, ...]  # what --only accepts for it (problem numbers, experiment name)


NOTEBOOKS: tuple[NotebookInfo, ...] = (
    NotebookInfo("00_parameter_counts.ipynb",
                 "Problems 1, 2.6 and 2.10 — Parameter counts",
                 None, ("1", "2.6", "2.10", "params", "parameter_counts")),
    NotebookInfo("41_sanity_check.ipynb",
                 "Problems 4.1 and 4.2 — Sanity check",
                 "sanity", ("4.1", "4.2", "sanity")),
    NotebookInfo("43_data_size.ipynb",
                 "Problem 4.3 — Scaling the data size",
                 "data_size", ("4.3", "data_size")),
    NotebookInfo("44_binary_ternary.ipynb",
                 "Problem 4.4 — Binary and ternary operations",
                 "orders", ("4.4", "orders")),
    NotebookInfo("45_model_size.ipynb",
                 "Problem 4.5 — Scaling the model size",
                 "model_size", ("4.5", "model_size")),
    NotebookInfo("46_compute.ipynb",
                 "Problem 4.6 — Scaling the compute",
                 "compute", ("4.6", "compute")),
    NotebookInfo("47_regularization.ipynb",
                 "Problem 4.7 — Regularization",
                 "regularization", ("4.7", "regularization")),
    NotebookInfo("48_interpretability.ipynb",
                 "Problem 4.8 — Interpretability: attention maps",
                 "interpretability", ("4.8", "interpretability")),
    NotebookInfo("49_fidelity.ipynb",
                 "Fidelity — the seed's claims against our runs",
                 None, ("fidelity",)),
    NotebookInfo("50_beyond.ipynb",
                 "Beyond the report — why and when it groks",
                 None, ("5", "beyond", "grokking")),
)


def select_notebooks(only: str | None) -> list[NotebookInfo]:
    """Notebooks chosen by ``--only`` (comma-separated keys, e.g. ``"4.3,4.5"``); all if None.

    Raises ``ValueError`` naming ``--only`` and the accepted keys for an unknown key.
    """
    if only is None or not only.strip():
        return list(NOTEBOOKS)
    wanted = [key.strip() for key in only.split(",") if key.strip()]
    known = {key: info for info in NOTEBOOKS for key in info.keys}
    unknown = [key for key in wanted if key not in known]
    if unknown:
        from modarith.config import did_you_mean

        accepted = ", ".join(key for info in NOTEBOOKS for key in info.keys)
        hints = "".join(did_you_mean(key, known) for key in unknown)
        raise ValueError(f"--only: unknown key(s) {', '.join(map(repr, unknown))}{hints}; accepted: {accepted}")
    chosen = {known[key].file for key in wanted}
    return [info for info in NOTEBOOKS if info.file in chosen]


def _check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not accepted; choose one of {', '.join(choices)}")
    return value


def describe_profile(profile: str, device: str, requested_profile: str = "auto",
                     requested_device: str = "auto") -> str:
    """The line that says which profile runs on which device (first line of a build)."""
    how_p = " (auto: full on CUDA, quick otherwise)" if requested_profile == "auto" else ""
    how_d = " (auto)" if requested_device == "auto" else ""
    if profile == "full":
        note = "the seed's protocol"
    elif profile == "quick":
        note = ("a REDUCED protocol (the seed's model and Exp 1 at SPEC's exact protocol; elsewhere fewer "
                "grid points, steps and seeds and a larger lr; the report's title page lists every reduction)")
    else:
        note = "a REDUCED smoke protocol for CI (seconds per experiment; numbers are not meaningful)"
    return f"profile {profile}{how_p} on device {device}{how_d}: {note}"


def resolve(profile: str = "auto", device: str = "auto") -> tuple[str, str]:
    """Validate ``profile``/``device`` and resolve ``auto`` (device first, then profile)."""
    _check_choice("profile", profile, PROFILE_CHOICES)
    _check_choice("device", device, DEVICE_CHOICES)
    from modarith.devices import resolve_device

    try:
        resolved_device = str(resolve_device(device))
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"device={device!r} cannot be used here: {error}") from error
    resolved_device = resolved_device.split(":")[0]
    from modarith.protocol import resolve_profile

    return resolve_profile(profile, resolved_device), resolved_device


# --------------------------------------------------------------------------------------
# Markdown and math -> HTML (offline: LaTeX becomes MathML)
# --------------------------------------------------------------------------------------

_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?!\s)((?:[^$\n]|\n(?![ \t]*\n))+?)(?<![\s\\])\$(?![\w$])")
_ENV_MATH = re.compile(r"\\begin\{(equation\*?|align\*?)\}(.+?)\\end\{\1\}", re.S)


def latex_to_mathml(latex: str, display: bool = False) -> str:
    """MathML for a LaTeX formula (latex2mathml); on failure the escaped source in a ``<code>``."""
    from latex2mathml.converter import convert

    source = latex.strip()
    # latex2mathml does not know a few spacing/operator commands; map them to ones it knows.
    source = re.sub(r"\\(?:displaystyle|textstyle|limits|nolimits)\b", "", source)
    source = source.replace(r"\dots", r"\ldots").replace(r"\lVert", r"\|").replace(r"\rVert", r"\|")
    try:
        mathml = convert(source, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any parser failure falls back to visible source
        return f'<code class="math-error">{html.escape(latex)}</code>'
    return mathml


def _protect_math(text: str) -> tuple[str, dict[str, str]]:
    """Replace ``$$…$$``, ``\\begin{align}…`` and ``$…$`` by placeholders -> MathML map."""
    store: dict[str, str] = {}

    def keep(mathml: str) -> str:
        key = f"MATHPLACEHOLDER{len(store):05d}X"
        store[key] = mathml
        return key

    text = _ENV_MATH.sub(lambda m: keep(latex_to_mathml(_align_to_aligned(m), True)), text)
    text = _DISPLAY_MATH.sub(lambda m: keep(latex_to_mathml(m.group(1), True)), text)
    text = _INLINE_MATH.sub(lambda m: keep(latex_to_mathml(m.group(1), False)), text)
    return text, store


def _align_to_aligned(match: re.Match) -> str:
    body = match.group(2)
    if match.group(1).startswith("align"):
        return r"\begin{aligned}" + body + r"\end{aligned}"
    return body


def _restore_math(rendered: str, store: dict[str, str]) -> str:
    for key, mathml in store.items():
        block = 'display="block"' in mathml[:120]
        if block:
            rendered = rendered.replace(f"<p>{key}</p>", f'<div class="display-math">{mathml}</div>')
        rendered = rendered.replace(key, mathml)
    return rendered


def math_to_mathml(text: str) -> str:
    """Convert every ``$…$``/``$$…$$`` in a string (HTML or plain text) to MathML."""
    protected, store = _protect_math(text)
    return _restore_math(protected, store)


_TAG_OR_TEXT = re.compile(r"(<(style|script|math)\b.*?</\2>|<[^>]*>)", re.S | re.I)


def html_math_to_mathml(page: str) -> str:
    """Convert ``$…$``/``$$…$$`` in the text of an HTML fragment to MathML; tags, attributes,
    ``<style>``, ``<script>`` and existing ``<math>`` are left alone (the ``mathml`` filter of
    the report template, for HTML, stdout and plain-text outputs)."""
    if "$" not in str(page):
        return page
    parts = _TAG_OR_TEXT.split(str(page))
    out, i = [], 0
    while i < len(parts):
        text = parts[i]
        if "$" in text:
            protected, store = _protect_math(html.unescape(text))
            text = _restore_math(html.escape(protected, quote=False), store)
        out.append(text)
        if i + 1 < len(parts):
            out.append(parts[i + 1])  # the tag (group 1); group 2 (its name) is skipped
        i += 3
    return "".join(out)


# --------------------------------------------------------------------------------------
# Executed notebooks -> one HTML page (nbconvert)
# --------------------------------------------------------------------------------------

HIDE_TAG = "report-hide"  # cell removed from the report (setup, parameters, settings)
#: Cells removed from the report: ours, and papermill's parameter cells.
REMOVED_TAGS = (HIDE_TAG, "parameters", "injected-parameters")
TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data: our nbconvert template
TEMPLATE_NAME = "modarith_report"
_REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\((https?://[^)\s]+)[^)]*\)")
_FIGURE_REPR = re.compile(r"<(Figure|Axes|matplotlib)[^>]*>")


def _source(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def unlink_remote_images(nb, resources):
    """Preprocessor: a Markdown image with a remote URL (the Colab badge) becomes a plain link,
    so that the page fetches nothing."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _REMOTE_IMAGE.sub(lambda m: f"[{m.group(1) or 'link'}]", _source(cell.source))
    return nb, resources


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def drop_widgets(nb, resources):
    """Preprocessor: drop live widgets (the notebooks display a static fallback as well)."""
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = [out for out in cell.outputs if WIDGET_MIME not in out.get("data", {})]
    return nb, resources


def report_exporter():
    """nbconvert's HTMLExporter with our template (``modarith/templates/modarith_report``,
    built on ``classic``): code inputs and prompts hidden, cells tagged ``report-hide`` or
    papermill's parameters removed, remote Markdown images unlinked, Markdown images
    embedded, widgets dropped, math converted to MathML (Markdown cells and outputs through
    ``markdown2html``; HTML, stdout and text outputs through the ``mathml`` filter)."""
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    class ReportExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            protected, store = _protect_math(source)
            return _restore_math(super().markdown2html(context, protected), store)

    exporter = ReportExporter(
        template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
        exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True,
        exclude_anchor_links=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=set(REMOVED_TAGS)), enabled=True)
    exporter.register_preprocessor(unlink_remote_images, enabled=True)
    exporter.register_preprocessor(drop_widgets, enabled=True)
    exporter.register_filter("mathml", html_math_to_mathml)
    exporter.register_filter("is_figure_repr", lambda text: bool(_FIGURE_REPR.fullmatch(str(text).strip())))
    return exporter


_HEADING = re.compile(r"<h([1-3])(\s[^>]*)?>(.*?)</h\1>", re.S)


def add_toc(page: str, marker: str = "<!-- modarith:toc -->") -> str:
    """Give every ``<h1>``–``<h3>`` a unique id and replace ``marker`` by a table of contents
    (each notebook's ``<h1>``, with its ``<h2>`` below)."""
    used: set[str] = set()
    entries: list[tuple[int, str, str]] = []

    def anchor(match: re.Match) -> str:
        level, attrs, inner = int(match.group(1)), match.group(2) or "", match.group(3)
        text = re.sub(r"\s+", " ", re.sub(r"<math\b.*?</math>|<[^>]+>", "", inner, flags=re.S)).strip()
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
        slug, n = base, 1
        while slug in used:
            n += 1
            slug = f"{base}-{n}"
        used.add(slug)
        if 'class="toc-skip"' not in attrs and level <= 2:
            entries.append((level, slug, text))
        attrs = re.sub(r'\sid="[^"]*"', "", attrs)
        return f'<h{level} id="{slug}"{attrs}>{inner}</h{level}>'

    page = _HEADING.sub(anchor, page)
    items, open_sub = [], False
    for level, slug, text in entries:
        link = f'<a href="#{slug}">{html.escape(text)}</a>'
        if level == 1:
            items.append(("</ol>" if open_sub else "") + ("</li>" if items else "") + f"<li>{link}")
            open_sub = False
        else:
            items.append(("" if open_sub else "<ol>") + f"<li>{link}</li>")
            open_sub = True
    body = "".join(items) + ("</ol>" if open_sub else "") + ("</li>" if items else "")
    toc = f'<nav class="toc" id="contents"><h1 class="toc-skip">Contents</h1><ol>{body}</ol></nav>'
    return page.replace(marker, toc, 1)


@dataclass
class NotebookRun:
    """Outcome of one executed notebook."""

    info: NotebookInfo
    output: Path  # executed copy
    seconds: float
    ok: bool
    error: str = ""  # failing cell and error, when not ok
    plan: str = ""  # what it trained / loaded (NotebookPlan.describe())


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def reductions_html(profile: str) -> str:
    """The table of the reduced profile's departures from the protocol (empty for ``full``)."""
    if profile == "full":
        return ""
    try:  # the library's protocol data
        from modarith.protocol import reductions

        shown, frame = profile, reductions(profile)
    except Exception as error:  # noqa: BLE001 - the table is informative, not essential
        return f'<p class="note">(table of reductions unavailable: {html.escape(str(error))})</p>'
    note = (" The <code>smoke</code> profile shrinks everything further, for CI only: its numbers "
            "carry no meaning.") if profile == "smoke" else ""
    return (f'<h2 class="toc-skip">How the {shown} profile reduces the protocol</h2><p class="note">How '
            f"the <code>{shown}</code> profile departs from the seed's protocol (<code>full</code>), "
            f"per experiment and model.{note}</p>"
            + html_math_to_mathml(frame.to_html(index=False, classes="reductions", border=0)))


def front_page(runs: list[NotebookRun], profile: str, device: str, total_seconds: float,
               requested_profile: str = "auto", requested_device: str = "auto") -> str:
    """The title page: profile, device, version and commit, date, wall time and status per
    notebook, the table of the protocol's reductions; then the table of contents' marker."""
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    commit = _git_commit()
    meta = [
        ("Profile", html.escape(describe_profile(profile, device, requested_profile, requested_device))),
        ("Device", html.escape(device)),
        ("modarith version", html.escape(modarith.__version__) + (f" (git {commit})" if commit else "")),
        ("Date", html.escape(now)),
        ("Total wall time", f"{total_seconds:.1f} s"),
    ]
    meta_rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in meta)
    rows = "".join(
        f"<tr><td>{html.escape(r.info.file)}</td><td>{r.seconds:.1f} s</td><td>{html.escape(r.plan)}</td>"
        f'<td class="status-{"ok" if r.ok else "failed"}">{"ok" if r.ok else "FAILED"}</td></tr>'
        for r in runs)
    reduced = ""
    if profile != "full":
        reduced = (f'<p class="reduced"><strong>Reduced protocol.</strong> This report was built with the '
                   f"<code>{html.escape(profile)}</code> profile, not the seed's protocol: fewer grid "
                   "points, steps and seeds (table below). Numbers and step counts are not comparable "
                   "one to one with the seed's.</p>")
    return f"""<section class="title-page" id="title">
<h1 class="toc-skip">Grokking modular arithmetic with an LSTM and a small GPT</h1>
<p class="subtitle">A reproduction, with the <code>modarith</code> library, of the practical part
of IFT6135 (Université de Montréal, winter 2025) homework 2: two hand-written sequence models
trained on <em>a</em> ∘ <em>b</em> = <em>r</em> mod <em>p</em>. Every number, figure and
conclusion below was computed by this build; nothing is copied from the seed report.</p>
<table class="meta">{meta_rows}</table>
{reduced}
<h2 class="toc-skip">Notebooks</h2>
<table><tr><th>notebook</th><th>wall time</th><th>runs</th><th>status</th></tr>{rows}</table>
{reductions_html(profile)}
</section>
<!-- modarith:toc -->"""


def merge_notebooks(runs: list[NotebookRun], front: str, title: str = "modarith report"):
    """One notebook: the front page, then every executed notebook (a failed one opens with a
    note naming the failing cell), each starting on a new page."""
    import nbformat

    def raw(source: str):
        return nbformat.v4.new_raw_cell(source, metadata={"raw_mimetype": "text/html"})

    merged = nbformat.v4.new_notebook(metadata={"language_info": {"name": "python"}, "title": title})
    merged.cells.append(raw(front))
    for run in runs:
        anchor = re.sub(r"[^a-z0-9]+", "-", run.info.file.lower())
        merged.cells.append(raw(f'<div class="notebook-start" id="nb-{anchor}"></div>'))
        if not run.ok:
            merged.cells.append(raw(f'<div class="notebook-failed"><strong>This notebook failed.</strong> '
                                    f"{html.escape(run.error)}</div>"))
        nb = nbformat.read(run.output, as_version=4) if run.output.exists() else None
        if nb is None:
            merged.cells.append(nbformat.v4.new_markdown_cell(f"# {run.info.title}"))
            continue
        merged.cells.extend(nb.cells)
    for k, cell in enumerate(merged.cells):
        cell["id"] = f"cell-{k}"  # ids repeat across notebooks
    return merged


def assemble_html(runs: list[NotebookRun], profile: str, device: str, total_seconds: float,
                  requested_profile: str = "auto", requested_device: str = "auto") -> str:
    """The whole report page from executed notebooks (``profile``/``device`` resolved)."""
    front = front_page(runs, profile, device, total_seconds, requested_profile, requested_device)
    merged = merge_notebooks(runs, front, f"modarith report — profile {profile}")
    resources = {"modarith": {"version": modarith.__version__}}
    body, _ = report_exporter().from_notebook_node(merged, resources=resources)
    return add_toc(body)


# --------------------------------------------------------------------------------------
# Chromium (PDF)
# --------------------------------------------------------------------------------------

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio",
                  "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")
INSTALL_HINT = ("install Chromium (Debian/Ubuntu: `apt-get install chromium`), or set "
                "MODARITH_CHROMIUM to a Chrome/Chromium executable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$MODARITH_CHROMIUM`` first), or None."""
    explicit = os.environ.get("MODARITH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def html_to_pdf(html_path: Path, pdf_path: Path, chromium: str, timeout: float = 180) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium (no network: proxy to port 9)."""
    pdf_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="modarith-chromium-") as profile_dir:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--no-pdf-header-footer",
               "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
               f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise RuntimeError(f"Chromium did not write {pdf_path} (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")


def pdf_page_count(path: Path) -> int:
    """Number of pages of a PDF (pypdf when installed, else a scan of the page objects)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        data = Path(path).read_bytes()
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    return len(PdfReader(str(path)).pages)


# --------------------------------------------------------------------------------------
# Execution with progress, and the build
# --------------------------------------------------------------------------------------

#: The kernel's own log stays quiet: jupyter_client interrupts every kernel before shutting it
#: down, which ipykernel may log as "KeyboardInterrupt caught in kernel". Cell errors still
#: reach the notebook and the build's output.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


def _kernel_config(folder: str):
    """Kernel over IPC sockets in a private folder instead of localhost TCP: nothing to
    eavesdrop on, and no "Kernel is running over TCP without encryption" warning."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(folder) / "kernel")
    # a loaded machine may take a few seconds to stop a kernel: wait rather than interrupt it
    config.KernelManager.shutdown_wait_time = 30.0
    return config


def execute_notebook(info: NotebookInfo, source_dir: Path, out_dir: Path, parameters: dict,
                     prefix: str = "", planned_groups: int | None = None) -> NotebookRun:
    """Run one notebook with papermill; the executed copy is kept even when a cell fails.

    The kernel imports the same modarith as this process (its folder first on
    ``PYTHONPATH``) and appends its training progress to a file this process displays
    (:class:`modarith.events.BuildProgress`).
    """
    import threading

    import papermill

    from modarith.events import ENV, BuildProgress

    source, output = source_dir / info.file, out_dir / info.file
    root = Path(modarith.__file__).resolve().parent.parent
    saved = {name: os.environ.get(name) for name in (ENV, "PYTHONPATH")}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modarith-kernel-") as scratch:
        events = Path(scratch) / "progress.jsonl"
        os.environ[ENV] = str(events)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), saved["PYTHONPATH"]) if p)
        tty = sys.stdout.isatty() and shutil.get_terminal_size((0, 0)).columns >= 40  # room for a bar
        shown = BuildProgress(events, prefix or info.file, planned_groups, tty)
        stop = threading.Event()

        def watch():
            while not stop.wait(0.25):
                shown.poll()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            papermill.execute_notebook(str(source), str(output), parameters=parameters, cwd=str(source_dir),
                                       progress_bar=False, log_output=False, kernel_name="python3",
                                       config=_kernel_config(scratch), extra_arguments=KERNEL_ARGUMENTS)
        except papermill.PapermillExecutionError as error:
            first = next((line for line in error.source.splitlines() if line.strip()), "")
            message = (f"cell {error.cell_index + 1} of the executed copy (In [{error.exec_count}]: "
                       f"`{first.strip()}`) raised {error.ename}: {error.evalue}")
            return NotebookRun(info, output, time.perf_counter() - start, False, message)
        except Exception as error:  # noqa: BLE001 - kernel death, missing kernel, bad notebook …
            return NotebookRun(info, output, time.perf_counter() - start, False,
                               f"{type(error).__name__}: {error}")
        finally:
            stop.set()
            watcher.join()
            shown.close()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return NotebookRun(info, output, time.perf_counter() - start, True)


def notebook_configs(info: NotebookInfo, profile: str) -> list:
    """The run configs a notebook trains in ``profile`` (the library's protocol data)."""
    from modarith.protocol import configs

    return [] if info.experiment is None else configs(info.experiment, profile)


@dataclass
class NotebookPlan:
    """What a notebook will train and load (:func:`build_plan`)."""

    runs: int  # distinct runs of the notebook
    earlier: int  # of them, trained or loaded by an earlier notebook of the build
    groups: object  # modarith.protocol.plan()'s frame: one row per vectorised group to train

    @property
    def to_train(self) -> int:
        """Runs that will train (the others load)."""
        return int(self.groups["runs"].sum())

    @property
    def run_steps(self) -> int:
        """Σ T over the runs that will train."""
        return int(self.groups["run_steps"].sum())

    @property
    def seconds(self) -> float:
        """Estimated training time (NaN when a group could not be timed)."""
        return float(self.groups["eta_s"].sum(min_count=1)) if len(self.groups) else 0.0

    def describe(self) -> str:
        """One line: runs to train / to load, groups, run-steps and the estimated time."""
        from modarith.events import format_seconds

        if self.runs == 0:
            return "no training"
        n = len(self.groups)
        text = f"{self.runs} run{'s' * (self.runs != 1)}: {self.to_train} to train"
        if n:
            text += f" in {n} group{'s' * (n > 1)} ({self.run_steps:,} run-steps)"
        text += f", {self.runs - self.to_train} to load"
        if self.earlier:
            text += f" ({self.earlier} shared with an earlier notebook)"
        if n:
            text += f"; estimated {format_seconds(self.seconds)}"
        return text


def build_plan(chosen: list[NotebookInfo], profile: str, device: str, results: Path) -> list[NotebookPlan]:
    """Per notebook, its :class:`NotebookPlan`, from :func:`modarith.protocol.plan`: runs stored
    in ``results`` are loaded, the groups to train are timed on ``device``. A run shared
    between notebooks is trained or loaded by the first one and counts as ``earlier`` in the
    others."""
    from modarith.config import run_id
    from modarith.protocol import plan

    seen: set[str] = set()
    plans = []
    for info in chosen:
        distinct = list(dict.fromkeys(notebook_configs(info, profile)))
        fresh = [c for c in distinct if run_id(c) not in seen]
        try:
            groups = plan(fresh, results, device)
        except Exception:  # noqa: BLE001 - an estimate that fails must not stop the build
            groups = plan(fresh, results, device, measure=False)
        plans.append(NotebookPlan(len(distinct), len(distinct) - len(fresh), groups))
        seen.update(run_id(c) for c in distinct)
    return plans


def describe_build_plan(chosen: list[NotebookInfo], plans: list[NotebookPlan], device: str) -> str:
    """The lines printed before the build: totals, then one line per notebook."""
    from modarith.events import format_seconds

    runs = sum(p.runs - p.earlier for p in plans)
    train = sum(p.to_train for p in plans)
    groups = sum(len(p.groups) for p in plans)
    steps = sum(p.run_steps for p in plans)
    total = sum(p.seconds for p in plans)
    head = f"Plan: {len(chosen)} notebook{'s' * (len(chosen) > 1)}, {runs} distinct runs: "
    if train:
        head += (f"{train} to train in {groups} group{'s' * (groups != 1)} ({steps:,} run-steps), "
                 f"{runs - train} stored; estimated training time "
                 f"{format_seconds(total)} on {device} (each group timed "
                 "for a few steps here), plus kernel start-up and plotting per notebook")
    else:
        head += "all stored, nothing to train (the notebooks load the runs and plot)"
    lines = [head]
    width = max(len(info.file) for info in chosen)
    for i, (info, plan) in enumerate(zip(chosen, plans), 1):
        lines.append(f"  [{i}/{len(chosen)}] {info.file:<{width}}  {plan.describe()}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build_report.py",
        description="Execute the notebooks with papermill and build build/report.html and report.pdf.")
    parser.add_argument("--profile", default="auto", choices=PROFILE_CHOICES,
                        help="experiment protocol: auto (full on CUDA, quick otherwise), smoke, quick, full")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="training device; auto = cuda, then mps, then cpu")
    parser.add_argument("--only", default=None, metavar="KEYS",
                        help="comma-separated notebooks to build, e.g. 4.3,4.5 (keys: "
                             + ", ".join(info.keys[0] for info in NOTEBOOKS) + ")")
    parser.add_argument("--results", default="results", metavar="DIR",
                        help="results store (runs already stored are reused)")
    parser.add_argument("--out", default="build", metavar="DIR",
                        help="output folder: report.html, report.pdf, notebooks/")
    parser.add_argument("--figures", default="figures", metavar="DIR", help="folder for figure files")
    parser.add_argument("--no-pdf", action="store_true", help="write the HTML only")
    return parser


def main(argv: list[str] | None = None, notebooks_dir: Path | None = None) -> int:
    """Command line of ``build_report.py``; returns the exit code (0 ok, 1 a notebook failed, 2 usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        chosen = select_notebooks(args.only)
    except ValueError as error:
        parser.error(str(error))
    for option in ("results", "out", "figures"):
        if not getattr(args, option).strip():
            parser.error(f"--{option}: give a folder path")
    try:
        profile, device = resolve(args.profile, args.device)
    except ValueError as error:
        parser.error(f"--{str(error).split('=')[0]}: {error}")
    print(describe_profile(profile, device, args.profile, args.device), flush=True)

    source_dir = (notebooks_dir or Path(__file__).resolve().parent.parent / "notebooks").resolve()
    missing = [info.file for info in chosen if not (source_dir / info.file).exists()]
    if missing:
        print(f"error: notebooks not found in {source_dir}: {', '.join(missing)}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser().resolve()
    executed = out / "notebooks"
    executed.mkdir(parents=True, exist_ok=True)
    results = Path(args.results).expanduser().resolve()
    parameters = {
        "profile": profile,
        "device": device,
        "results_dir": str(results),
        "figures_dir": str(Path(args.figures).expanduser().resolve()),
        "interactive": False,
    }

    start = time.perf_counter()
    plans = build_plan(chosen, profile, device, results)
    print(describe_build_plan(chosen, plans, device), flush=True)
    runs: list[NotebookRun] = []
    for i, (info, plan) in enumerate(zip(chosen, plans), 1):
        prefix = f"[{i}/{len(chosen)}] {info.file}"
        print(f"{prefix}: running — {plan.describe()}", flush=True)
        wanted = _notebook_parameters(source_dir / info.file)
        run = execute_notebook(info, source_dir, executed, {k: v for k, v in parameters.items() if k in wanted},
                               prefix, len(plan.groups))
        run.plan = plan.describe()
        runs.append(run)
        if run.ok:
            print(f"{prefix}: ok ({run.seconds:.1f} s)", flush=True)
        else:
            print(f"{prefix}: FAILED ({run.seconds:.1f} s)", flush=True)
            print(f"  {info.file}: {run.error}\n  executed copy with the error: {run.output}", flush=True)
    total = time.perf_counter() - start

    t_html = time.perf_counter()
    html_path = out / "report.html"
    html_path.write_text(assemble_html(runs, profile, device, total, args.profile, args.device),
                         encoding="utf-8")
    print(f"wrote {html_path} ({html_path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t_html:.1f} s)",
          flush=True)

    if not args.no_pdf:
        chromium = find_chromium()
        pdf_path = out / "report.pdf"
        if chromium is None:
            print(f"warning: no PDF engine: Chromium/Chrome not found; {INSTALL_HINT}. "
                  f"The HTML report is complete.", file=sys.stderr)
        else:
            t_pdf = time.perf_counter()
            try:
                html_to_pdf(html_path, pdf_path, chromium)
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                print(f"warning: PDF not written: {error}", file=sys.stderr)
            else:
                print(f"wrote {pdf_path} ({pdf_page_count(pdf_path)} pages, {time.perf_counter() - t_pdf:.1f} s)",
                      flush=True)

    failed = [run for run in runs if not run.ok]
    print(f"done in {time.perf_counter() - start:.1f} s: {len(runs) - len(failed)} notebook(s) ok"
          + (f", {len(failed)} FAILED: {', '.join(r.info.file for r in failed)}" if failed else ""),
          flush=True)
    return 1 if failed else 0


def _notebook_parameters(path: Path) -> set[str]:
    """Names assigned in a notebook's ``parameters`` cell (so we only pass what it declares)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = _source(cell["source"])
            return set(re.findall(r"^(\w+)\s*(?::[^=]*)?=", source, re.M))
    return set()
