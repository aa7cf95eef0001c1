"""The report's own words: figures as a MIME bundle shown once, no machine path under a figure,
headings' math in the table of contents, a title page computed from the configs."""

import re

import matplotlib
import nbformat
import pandas as pd
import pytest

from modarith.plotting import output
from modarith.reporting import export
from modarith.study import protocol

matplotlib.use("Agg")


def _figure_bundle():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    shown = []
    import IPython
    import IPython.display

    real = IPython.get_ipython, IPython.display.display
    IPython.get_ipython = lambda: object()
    IPython.display.display = lambda obj, raw=False: shown.append(obj)
    try:
        paths = output.show(fig, "Loss against steps. Unique caption words.", None, dpi=30)
    finally:
        IPython.get_ipython, IPython.display.display = real
    return shown[0], paths


def _notebook(outputs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("output.show(fig, caption, figures)", outputs=outputs)]
    return nb


def test_bundle_figure_is_shown_once_with_its_caption_in_the_report():
    bundle, _ = _figure_bundle()
    out = nbformat.v4.new_output("display_data", data=bundle)
    page, _ = export.report_exporter().from_notebook_node(_notebook([out]))
    assert page.count('<figure class="modarith-figure">') == 1
    assert page.count("<img") == 1  # the HTML of the bundle, not its PNG as well
    assert page.count("Unique caption words.") == 2  # the figcaption and the image's alt text


@pytest.mark.parametrize("repr_text", ["[PosixPath('/home/builder/figures/regularization/lstm_sweep.png')]",
                                       "PosixPath('/tmp/x.png')", "[WindowsPath('C:/x/y.png')]",
                                       "'/home/builder/figures/x.png'"])
def test_return_values_naming_files_are_not_in_the_report(repr_text):
    out = nbformat.v4.new_output("execute_result", data={"text/plain": repr_text}, execution_count=1)
    kept = nbformat.v4.new_output("execute_result", data={"text/plain": "0.731"}, execution_count=2)
    page, _ = export.report_exporter().from_notebook_node(_notebook([out, kept]))
    assert "Path(" not in page and "/home/builder" not in page and "/tmp/x.png" not in page
    assert "0.731" in page  # an ordinary return value stays


def test_show_returns_paths_that_a_cell_does_not_print(tmp_path):
    from IPython.core.formatters import DisplayFormatter

    _, paths = _figure_bundle()
    assert paths == []
    data, _ = DisplayFormatter().format(output.FigureFiles([tmp_path / "a.png"]))
    assert data == {}  # IPython sends no execute_result for it


def test_table_of_contents_keeps_the_headings_math():
    page = ('<!-- modarith:toc --><h1>Problem 4.5</h1><h2>Best values against '
            '<math><mi>L</mi></math> and against <math><mi>P</mi></math></h2>')
    nav = re.search(r'<nav class="toc".*?</nav>', export.add_toc(page), re.S).group(0)
    assert "Best values against <math><mi>L</mi></math> and against <math><mi>P</mi></math>" in nav


def test_title_page_says_what_the_profile_changes_and_keeps():
    text = export.profile_summary("quick")
    frame = protocol.reductions("quick")
    changed = set(frame["field"]) - {"runs"}
    assert changed and all(f"{f} (in " in text for f in changed)
    kept = text.split("It keeps")[1]
    assert "lr" in kept and not any(re.search(rf"\b{f}\b", kept) for f in changed)
    page = export.front_page([], "quick (reduced)", "quick", "cpu", 1.0)
    assert "not comparable" not in page and "It changes" in page


def test_title_page_follows_the_configs(monkeypatch):
    """Computed, not written: a profile that changed the learning rate says so."""
    fake = pd.DataFrame([{"experiment": "sanity", "model": "both", "field": "lr", "full": "0.001", "quick": "0.01"}])
    monkeypatch.setattr(protocol, "reductions", lambda profile: fake)
    text = export.profile_summary("quick")
    assert "lr (in sanity)" in text and "lr" not in text.split("It keeps")[1].split(", ")
