"""build_report.py: options, math, failure handling, and the smoke report end to end.

The end-to-end test runs ``python build_report.py --profile smoke`` (papermill on every
notebook, into a temporary folder — or into ``$MODARITH_REPORT_BUILD`` when set, e.g.
``build/`` in CI to keep the artefacts), then opens ``report.html`` in headless Chromium over
the DevTools protocol (``--remote-debugging-pipe``, standard library only) and checks that
the page made no network request, that every image loaded, that the math rendered as MathML
with no raw ``$`` left, and saves screenshots. The browser parts are skipped, with the reason,
when no Chromium is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import html as html_lib
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

from modarith import report

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- fast checks

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
    assert "[1/" not in proc.stdout  # nothing ran


def test_select_notebooks():
    assert [i.file for i in report.select_notebooks("4.5, 4.3")] == ["43_data_size.ipynb", "45_model_size.ipynb"]
    assert len(report.select_notebooks(None)) == len(report.NOTEBOOKS)
    assert report.select_notebooks("2.6")[0].file == "00_parameter_counts.ipynb"


def test_markdown_math_becomes_mathml():
    out = report.markdown_to_html("Inline $x_{i}^2$ and\n$$P = 4 (d^2 + b\\, d)$$\nand $a$\nb $c$ d.")
    assert out.count("<math") == 4
    assert "$" not in re.sub(r"<math.*?</math>", "", out, flags=re.S)
    assert 'display="block"' in out
    assert report.math_to_mathml("costs 5 dollars") == "costs 5 dollars"


def test_outputs_render_offline():
    png = base64.b64encode(b"\x89PNG fake").decode()
    fig = report._render_output({"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Figure>"}})
    assert f"data:image/png;base64,{png}" in fig
    widget = {"output_type": "display_data", "data": {report.WIDGET_MIME: {}, "text/plain": "VBox()"}}
    assert report._render_output(widget) == ""
    assert report._render_output({"output_type": "stream", "name": "stderr", "text": "50%|###"}) == ""
    md = report._render_output({"output_type": "display_data", "data": {"text/markdown": "**A** $\\alpha$"}})
    assert "<math" in md and "<strong>A</strong>" in md


def test_failing_notebook_is_named_and_kept(tmp_path, capsys):
    """A failing cell: named with its notebook, executed copy kept, report still written, exit 1."""
    info = report.select_notebooks("1")[0]
    nb = nbformat.read(ROOT / "notebooks" / info.file, as_version=4)
    nb.cells.insert(5, nbformat.v4.new_code_cell('raise RuntimeError("boom in a cell")'))
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nbformat.write(nb, nbdir / info.file)
    out = tmp_path / "out"
    code = report.main(["--only", "1", "--profile", "smoke", "--device", "cpu", "--out", str(out),
                        "--results", str(tmp_path / "results"), "--figures", str(tmp_path / "figures"),
                        "--no-pdf"], notebooks_dir=nbdir)
    printed = capsys.readouterr().out
    assert code == 1
    assert info.file in printed and "RuntimeError: boom in a cell" in printed and "cell 6" in printed
    executed = nbformat.read(out / "notebooks" / info.file, as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code"
               for o in c.outputs)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "This notebook failed" in page and "FAILED" in page


# ----------------------------------------------------------------------------- smoke build

@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory):
    """Run the smoke build once for the module: returns (out dir, stdout, seconds)."""
    base = os.environ.get("MODARITH_REPORT_BUILD")
    root = Path(base).resolve() if base else tmp_path_factory.mktemp("report")
    out = root / "build" if base is None else root
    work = root if base is None else tmp_path_factory.mktemp("report-work")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "build_report.py"), "--profile", "smoke", "--device", "cpu",
         "--out", str(out), "--results", str(work / "results"), "--figures", str(work / "figures")],
        capture_output=True, text=True, cwd=ROOT, timeout=1500)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"smoke build failed:\n{proc.stdout}\n{proc.stderr[-5000:]}"
    return out, work, proc.stdout, seconds


@pytest.mark.slow
def test_smoke_build_outputs(smoke_build):
    out, work, stdout, seconds = smoke_build
    first = stdout.splitlines()[0]
    assert first.startswith("profile smoke") and "device cpu" in first and "REDUCED" in first
    for info in report.NOTEBOOKS:
        assert re.search(rf"\] {re.escape(info.file)}: ok \(", stdout)
        executed = nbformat.read(out / "notebooks" / info.file, as_version=4)
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        if info.experiment is not None:  # the build passes profile, device and folders
            assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    assert any((work / "figures").rglob("*.png")), "figures must land in --figures"
    print(f"smoke build: {seconds:.0f} s")


def _visible_text(page: str) -> str:
    page = re.sub(r"<(style|script|math)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
def test_smoke_report_html_is_self_contained(smoke_build):
    out = smoke_build[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<section class=\"notebook\"") == len(report.NOTEBOOKS)
    # nothing to fetch: no remote src, stylesheet, script or CSS url
    assert not re.search(r"""\bsrc\s*=\s*(?!["']?data:)""", page), "every src must be a data: URI"
    assert not re.search(r"<link\b|<script\b|@import|url\(\s*['\"]?(?:https?:)?//", page, re.I)
    assert "<math" in page and "$" not in _visible_text(page)
    assert 'class="math-error"' not in page, "a formula latex2mathml could not convert"
    assert "Problem 2.10" in page and "nav class=\"toc\"" in page
    assert "import " not in _visible_text(page), "code cells must be hidden"
    for field in ("Profile", "Device", "modarith version", "Date", "wall time"):
        assert field in page
    assert page.count("<img") >= 10, "figures and attention heatmaps embedded"


@pytest.mark.slow
def test_smoke_report_pdf(smoke_build):
    if report.find_chromium() is None:
        pytest.skip(f"no Chromium: {report.INSTALL_HINT}")
    pdf = smoke_build[0] / "report.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")
    assert report.pdf_page_count(pdf) >= 1


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
            [chromium, *report.CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile_dir}",
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
    chromium = report.find_chromium()
    if chromium is None:
        pytest.skip(f"no Chromium for the browser check: {report.INSTALL_HINT}")
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
