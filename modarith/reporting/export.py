"""Executed notebooks -> one self-contained HTML page (nbconvert), its table of contents, and
the PDF printed from it by headless Chromium.

:func:`assemble_html` merges the executed notebooks behind a title page and exports them with
nbconvert's HTML exporter and our template (``modarith/reporting/templates/modarith_report``): code
hidden, ``report-hide`` cells removed, figures embedded as data URIs and numbered, LaTeX as
MathML (:mod:`modarith.reporting.mathml`), so that the page needs no network and no JavaScript.
:func:`html_to_pdf` prints it. nbconvert, nbformat and jinja2 (the ``report`` extra) are
imported where they are used.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import modarith
from modarith.models.config import RunConfig
from modarith.reporting.mathml import html_math_to_mathml, protect_math, restore_math
from modarith.study import protocol
from modarith.study.protocol import reductions
from modarith.version import code_version

HIDE_TAG = "report-hide"  # cell removed from the report (setup, parameters, settings)
#: Cells removed from the report: ours, and papermill's parameter cells.
REMOVED_TAGS = (HIDE_TAG, "parameters", "injected-parameters")
TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data: our nbconvert template
TEMPLATE_NAME = "modarith_report"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\((https?://[^)\s]+)[^)]*\)")
_FIGURE_REPR = re.compile(r"<(Figure|Axes|matplotlib)[^>]*>")


@dataclass
class NotebookRun:
    """One executed notebook, as the page shows it."""

    file: str  # file name under notebooks/
    title: str  # heading shown when the executed copy is missing
    output: Path  # executed copy
    seconds: float
    ok: bool
    error: str = ""  # failing cell and error, when not ok
    plan: str = ""  # what it trained / loaded (the build plan's line)


def _source(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


# ----------------------------------------------------------------------------- nbconvert
def unlink_remote_images(nb, resources):
    """Preprocessor: a Markdown image with a remote URL (the Colab badge) becomes a plain link,
    so that the page fetches nothing."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _REMOTE_IMAGE.sub(lambda m: f"[{m.group(1) or 'link'}]", _source(cell.source))
    return nb, resources


def drop_widgets(nb, resources):
    """Preprocessor: drop live widgets (the notebooks display a static fallback as well)."""
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = [out for out in cell.outputs if WIDGET_MIME not in out.get("data", {})]
    return nb, resources


_PATH_REPR = re.compile(r"(Posix|Windows|Pure\w*)?Path\(|^\[?\s*'?/")


def drop_path_results(nb, resources):
    """Preprocessor: drop a cell's return value (``execute_result``) that is only text and
    names a file, e.g. ``[PosixPath('/home/…/figure.png')]``: a path of the building machine
    says nothing to a reader. Tables and other rich return values stay."""
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = [out for out in cell.outputs if not (
                out.get("output_type") == "execute_result" and set(out.get("data", {})) <= {"text/plain"}
                and _PATH_REPR.search(_source(out.get("data", {}).get("text/plain", ""))))]
    return nb, resources


def report_exporter():
    """nbconvert's HTMLExporter with our template (``modarith/reporting/templates/modarith_report``,
    built on ``classic``): code inputs and prompts hidden, cells tagged ``report-hide`` or
    papermill's parameters removed, remote Markdown images unlinked, Markdown images
    embedded, widgets and return values naming files dropped, math converted to MathML (Markdown cells and outputs through
    ``markdown2html``; HTML, stdout and text outputs through the ``mathml`` filter)."""
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    class ReportExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            protected, store = protect_math(source)
            return restore_math(super().markdown2html(context, protected), store)

    exporter = ReportExporter(
        template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
        exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True,
        exclude_anchor_links=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=set(REMOVED_TAGS)), enabled=True)
    exporter.register_preprocessor(unlink_remote_images, enabled=True)
    exporter.register_preprocessor(drop_widgets, enabled=True)
    exporter.register_preprocessor(drop_path_results, enabled=True)
    exporter.register_filter("mathml", html_math_to_mathml)
    exporter.register_filter("is_figure_repr", lambda text: bool(_FIGURE_REPR.fullmatch(str(text).strip())))
    return exporter


_HEADING = re.compile(r"<h([1-3])(\s[^>]*)?>(.*?)</h\1>", re.S)


_MATH = re.compile(r"(<math\b.*?</math>)", re.S)


def _toc_label(inner: str) -> str:
    """A heading's inner HTML as its table-of-contents entry: the text without its tags
    (links, emphasis), its MathML kept as it is, so the entry reads as the heading does."""
    parts = _MATH.split(inner)
    label = "".join(part if k % 2 else re.sub(r"<[^>]+>", "", part) for k, part in enumerate(parts))
    return re.sub(r"\s+", " ", label).strip()


def add_toc(page: str, marker: str = "<!-- modarith:toc -->") -> str:
    """Give every ``<h1>``–``<h3>`` a unique id and replace ``marker`` by a table of contents
    (each notebook's ``<h1>``, with its ``<h2>`` below; an entry keeps its heading's math)."""
    used: set[str] = set()
    entries: list[tuple[int, str, str]] = []

    def anchor(match: re.Match) -> str:
        level, attrs, inner = int(match.group(1)), match.group(2) or "", match.group(3)
        text = re.sub(r"\s+", " ", re.sub(r"<math\b.*?</math>|<[^>]+>", "", inner, flags=re.S)).strip()
        shown = _toc_label(inner)
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
        slug, n = base, 1
        while slug in used:
            n += 1
            slug = f"{base}-{n}"
        used.add(slug)
        if 'class="toc-skip"' not in attrs and level <= 2:
            entries.append((level, slug, shown))
        attrs = re.sub(r'\sid="[^"]*"', "", attrs)
        return f'<h{level} id="{slug}"{attrs}>{inner}</h{level}>'

    page = _HEADING.sub(anchor, page)
    items, open_sub = [], False
    for level, slug, text in entries:
        link = f'<a href="#{slug}">{text}</a>'
        if level == 1:
            items.append(("</ol>" if open_sub else "") + ("</li>" if items else "") + f"<li>{link}")
            open_sub = False
        else:
            items.append(("" if open_sub else "<ol>") + f"<li>{link}</li>")
            open_sub = True
    body = "".join(items) + ("</ol>" if open_sub else "") + ("</li>" if items else "")
    toc = f'<nav class="toc" id="contents"><h1 class="toc-skip">Contents</h1><ol>{body}</ol></nav>'
    return page.replace(marker, toc, 1)


# ----------------------------------------------------------------------------- the page
def reductions_html(profile: str) -> str:
    """The table of the reduced profile's departures from the protocol (empty for ``full``)."""
    if profile == "full":
        return ""
    try:  # the library's protocol data

        frame = reductions(profile)
    except Exception as error:  # noqa: BLE001 - the table is informative, not essential
        return f'<p class="note">(table of reductions unavailable: {html.escape(str(error))})</p>'
    note = (" The <code>smoke</code> profile shrinks everything further, for CI only: its numbers "
            "carry no meaning.") if profile == "smoke" else ""
    return (f'<h2 class="toc-skip">How the {profile} profile reduces the protocol</h2><p class="note">How '
            f"the <code>{profile}</code> profile departs from the seed's protocol (<code>full</code>), "
            f"per experiment and model.{note}</p>"
            + html_math_to_mathml(frame.to_html(index=False, classes="reductions", border=0)))


def profile_summary(profile: str) -> str:
    """What ``profile`` changes from the course protocol (``full``) and what it keeps, in one
    paragraph computed from the configurations the two profiles expand to
    (:func:`modarith.study.protocol.reductions`): the changed fields with the experiments they change
    in, then the settings kept everywhere (fields switched off in both, such as Grokfast, left
    unnamed)."""
    from dataclasses import fields as dc_fields


    frame = protocol.reductions(profile)
    frame = frame[frame["field"] != "runs"]
    changed: dict[str, list[str]] = {}
    for field, experiment in zip(frame["field"], frame["experiment"]):
        changed.setdefault(field, [])
        if experiment not in changed[field]:
            changed[field].append(experiment)
    configs = [c for name in protocol.reproduced() for p in ("full", profile) for c in protocol.configs(name, p)]
    kept = [f.name for f in dc_fields(RunConfig) if f.name not in changed and f.name != "model"
            and any(getattr(c, f.name) for c in configs)]
    n = len(protocol.reproduced())
    what = "; ".join(f"{field} (in {', '.join(exps) if len(exps) < n else 'every experiment'})"
                     for field, exps in changed.items())
    return (f"This report was built with the {profile} profile. It changes, from the course protocol "
            f"(profile full): {what or 'nothing'} (table below). It keeps every other setting as the "
            f"course protocol sets it: {', '.join(kept)}.")


def front_page(runs: list[NotebookRun], profile_line: str, profile: str, device: str,
               total_seconds: float) -> str:
    """The title page: profile (``profile_line``), device, version and commit, date, wall time
    and status per notebook, the table of the protocol's reductions; then the table of
    contents' marker."""
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    meta = [
        ("Profile", html.escape(profile_line)),
        ("Device", html.escape(device)),
        ("modarith version", html.escape(code_version())),
        ("Date", html.escape(now)),
        ("Total wall time", f"{total_seconds:.1f} s"),
    ]
    meta_rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in meta)
    rows = "".join(
        f"<tr><td>{html.escape(r.file)}</td><td>{r.seconds:.1f} s</td><td>{html.escape(r.plan)}</td>"
        f'<td class="status-{"ok" if r.ok else "failed"}">{"ok" if r.ok else "FAILED"}</td></tr>'
        for r in runs)
    reduced = f'<p class="reduced">{html.escape(profile_summary(profile))}</p>' if profile != "full" else ""
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
        anchor = re.sub(r"[^a-z0-9]+", "-", run.file.lower())
        merged.cells.append(raw(f'<div class="notebook-start" id="nb-{anchor}"></div>'))
        if not run.ok:
            merged.cells.append(raw(f'<div class="notebook-failed"><strong>This notebook failed.</strong> '
                                    f"{html.escape(run.error)}</div>"))
        if not run.output.exists():
            merged.cells.append(nbformat.v4.new_markdown_cell(f"# {run.title}"))
            continue
        merged.cells.extend(nbformat.read(run.output, as_version=4).cells)
    for k, cell in enumerate(merged.cells):
        cell["id"] = f"cell-{k}"  # ids repeat across notebooks
    return merged


def assemble_html(runs: list[NotebookRun], profile_line: str, profile: str, device: str,
                  total_seconds: float) -> str:
    """The whole report page from executed notebooks (``profile``/``device`` resolved)."""
    front = front_page(runs, profile_line, profile, device, total_seconds)
    merged = merge_notebooks(runs, front, f"modarith report — profile {profile}")
    resources = {"modarith": {"version": modarith.__version__}}
    body, _ = report_exporter().from_notebook_node(merged, resources=resources)
    return add_toc(body)


# ----------------------------------------------------------------------------- Chromium (PDF)
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio",
                  "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")
#: Where browsers live off ``PATH``, per platform (``sys.platform``): macOS's applications,
#: Ubuntu's snap, Windows' program folders.
BROWSER_PATHS = {
    "darwin": ("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
               "/Applications/Chromium.app/Contents/MacOS/Chromium",
               "~/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
               "~/Applications/Chromium.app/Contents/MacOS/Chromium"),
    "linux": ("/snap/bin/chromium", "/usr/lib/chromium/chromium", "/opt/google/chrome/chrome"),
    "win32": (r"C:\Program Files\Google\Chrome\Application\chrome.exe",
              r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe"),
}
_HINTS = {
    "darwin": "install Google Chrome (https://www.google.com/chrome/) or `brew install --cask chromium`",
    "linux": "install Chromium (Debian: `sudo apt-get install chromium`; Ubuntu: `sudo snap install chromium`)",
    "win32": "install Google Chrome (https://www.google.com/chrome/)",
}


def install_hint(platform: str | None = None) -> str:
    """How to get a browser for the PDF on this platform (``sys.platform`` by default)."""
    what = _HINTS.get(platform or sys.platform, "install Chromium or Google Chrome")
    return f"{what}, or set MODARITH_CHROMIUM to a Chrome/Chromium executable"


INSTALL_HINT = install_hint()  # this platform's


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_chromium(platform: str | None = None) -> str | None:
    """Path of a Chromium/Chrome executable: ``$MODARITH_CHROMIUM`` first, then ``PATH``
    (:data:`BROWSER_NAMES`), then the platform's usual places (:data:`BROWSER_PATHS`: macOS's
    ``/Applications/Google Chrome.app``, ``Chromium.app``, Ubuntu's snap); None when none is
    found (also when ``$MODARITH_CHROMIUM`` names nothing that exists)."""
    explicit = os.environ.get("MODARITH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    for path in BROWSER_PATHS.get(platform or sys.platform, ()):
        path = os.path.expanduser(path)
        if _executable(path):
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
