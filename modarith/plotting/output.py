"""A figure leaves a notebook through :func:`show`: saved as PNG (SVG too on request) and displayed
once, with its caption, as one MIME bundle (:func:`figure_bundle`)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt


def figure_html(png: bytes, caption: str) -> str:
    """``<figure class="modarith-figure">`` with the PNG inlined (base64) and its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="modarith-figure"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(caption[:120])}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


#: Environment variable naming the files :func:`show` writes per figure (``png``, ``svg``,
#: comma-separated; default PNG only). ``build_report.py --svg`` sets it to ``png,svg``.
FORMATS_ENV = "MODARITH_FIGURE_FORMATS"
FORMATS = ("png", "svg")


def figure_formats(formats: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The file formats :func:`show` writes: ``formats`` (a sequence or ``"png,svg"``), else
    ``$MODARITH_FIGURE_FORMATS``, else PNG only. An unknown format raises ``ValueError``."""
    name = "formats"
    if formats is None:
        name, formats = FORMATS_ENV, os.environ.get(FORMATS_ENV) or "png"
    chosen = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ValueError(f"{name} = {formats!r} is invalid: expected some of {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(chosen))


class FigureFiles(list):
    """The paths :func:`show` wrote. As a cell's last value it displays nothing, so no
    machine's path is printed under a figure (in Jupyter or in the report)."""

    def _ipython_display_(self) -> None:
        pass


def figure_bundle(png: bytes, caption: str) -> dict[str, str]:
    """The MIME bundle :func:`show` displays: ``image/png`` (base64, what nbconvert's PDF,
    Markdown and LaTeX exporters, scrapbook and sanitising viewers keep), ``text/html`` (the
    captioned :func:`figure_html`, what Jupyter and the report's HTML show, once: HTML
    outranks PNG there) and ``text/plain`` (the caption)."""
    return {"image/png": base64.b64encode(png).decode("ascii"), "text/html": figure_html(png, caption),
            "text/plain": caption}


def show(fig, caption: str, save_dir: str | Path | None = None, name: str = "figure",
         dpi: int = 120, formats: str | Sequence[str] | None = None) -> FigureFiles:
    """Display ``fig`` with its caption as one MIME bundle (:func:`figure_bundle`: the PNG,
    and one self-contained HTML ``<figure class="modarith-figure">``; outside IPython: print
    the caption and the paths), save it as ``save_dir/name.png`` (and ``.svg`` when
    :func:`figure_formats` says so; nothing when ``save_dir`` is None), close it, and return
    the paths written (a :class:`FigureFiles`, which a cell does not print). The PNG is
    rendered once, for the page and the file."""
    import io

    formats = figure_formats(formats)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    paths = FigureFiles()
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            path = Path(save_dir) / f"{name}.{fmt}"
            if fmt == "png":
                path.write_bytes(buffer.getvalue())
            else:
                fig.savefig(path, format=fmt)
            paths.append(path)
    plt.close(fig)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(figure_bundle(buffer.getvalue(), caption), raw=True)
    else:
        print(caption + "".join(f"\n  {p}" for p in paths))
    return paths
