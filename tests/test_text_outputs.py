"""Styled tables as a kernel displays them after ``notebook.readable_tables()``: plain text a
person can read, and an HTML table id made from the content (the same in every build)."""

import pandas as pd
import pytest

from modarith.reporting import notebook


@pytest.fixture
def shell():
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or get_ipython()  # one shell per test session
    ip.display_formatter.formatters["text/html"].enabled = True  # as in a Jupyter kernel
    notebook.readable_tables()
    return ip


def _table(bold_first=False):
    frame = pd.DataFrame({"model": ["LSTM", "GPT"], "L_val": ["1.0e-3", "2.0e-3"]})
    styles = frame.replace(dict.fromkeys(frame.to_numpy().ravel(), "")).astype(object)
    styles.iloc[0, 1] = "font-weight: bold" if bold_first else ""
    return frame.style.apply(lambda _: styles, axis=None).hide(axis="index").set_caption("Table 1.")


def test_a_styled_table_reads_as_text(shell):
    data, _ = shell.display_formatter.format(_table())
    assert "Styler at 0x" not in data["text/plain"]
    assert data["text/plain"].splitlines() == ["Table 1.", "model  L_val", " LSTM 1.0e-3", "  GPT 2.0e-3"]


def test_table_ids_come_from_the_content(shell):
    first, again, bold = (shell.display_formatter.format(t)[0]["text/html"] for t in
                          (_table(), _table(), _table(bold_first=True)))
    assert first == again and 'id="T_' in first
    assert bold != first  # another table (here its style) gets another id
    assert pd.DataFrame({"a": [1]}).style._repr_html_() != pd.DataFrame({"a": [1]}).style._repr_html_()
