"""LaTeX to MathML, offline: the report's formulas need no network and no JavaScript.

:func:`html_math_to_mathml` converts every ``$…$``, ``$$…$$`` and ``\\begin{align}…`` in the
text of an HTML fragment to MathML, leaving tags,
attributes, ``<style>``, ``<script>`` and existing ``<math>`` alone. :func:`protect_math` and
:func:`restore_math` let a Markdown renderer run between the two halves (the formulas are
replaced by placeholders it leaves alone). latex2mathml (the ``report`` extra) is imported
where it is used.
"""

from __future__ import annotations

import html
import re

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


def protect_math(text: str) -> tuple[str, dict[str, str]]:
    """Replace ``$$…$$``, ``\\begin{align}…`` and ``$…$`` by placeholders; return the text and
    the placeholder -> MathML map (for :func:`restore_math`)."""
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


def restore_math(rendered: str, store: dict[str, str]) -> str:
    """Put the MathML of :func:`protect_math` back (a display formula alone in a paragraph
    becomes a ``<div class="display-math">``)."""
    for key, mathml in store.items():
        block = 'display="block"' in mathml[:120]
        if block:
            rendered = rendered.replace(f"<p>{key}</p>", f'<div class="display-math">{mathml}</div>')
        rendered = rendered.replace(key, mathml)
    return rendered


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
            protected, store = protect_math(html.unescape(text))
            text = restore_math(html.escape(protected, quote=False), store)
        out.append(text)
        if i + 1 < len(parts):
            out.append(parts[i + 1])  # the tag (group 1); group 2 (its name) is skipped
        i += 3
    return "".join(out)
