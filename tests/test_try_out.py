"""The README's try-out, as a new user runs it in a fresh checkout: a smoke build writes nothing
over the committed files (figures of a profile other than the committed one go to
``figures/<profile>/``), and two builds over the same runs give the same HTML."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modarith.reporting.notebook import COMMITTED_PROFILE, figures_for

ROOT = Path(__file__).resolve().parents[1]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_figures_of_other_profiles_go_to_their_own_folder():
    assert COMMITTED_PROFILE == "quick"
    assert figures_for("figures", "quick") == Path("figures")
    assert figures_for("figures", "smoke") == Path("figures/smoke")
    assert figures_for("/x/figures", "full") == Path("/x/figures/full")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A fresh git repository holding this checkout's files (tracked and new, as the working
    tree has them), committed, so ``git status`` starts clean."""
    dest = tmp_path_factory.mktemp("clone") / "modarith"
    files = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fresh")
    return dest


def _build(checkout: Path, out: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    return subprocess.run([sys.executable, "build_report.py", "--profile", "smoke", "--device", "cpu",
                           "--only", "4.1,4.4", "--no-pdf", "--out", out], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=1200)


def _without_clock(html: str) -> str:
    """The report without the build's own clock readings (the title page's date and wall times)."""
    html = re.sub(r"<th>Date</th><td>[^<]*</td>", "<th>Date</th><td></td>", html)
    return re.sub(r"<td>\d+\.\d s</td>", "<td> s</td>", html)


@pytest.mark.slow
def test_a_smoke_build_leaves_the_checkout_clean_and_rebuilds_the_same_html(checkout):
    """``build_report.py --profile smoke`` with the default folders: ``git status`` stays clean
    (the figures went to the ignored ``figures/smoke/``, not over the committed quick ones); two
    more builds over the same runs write the same HTML, the title page's date and wall times
    aside (the styled tables' ids come from their content, not pandas' random uuid)."""
    first = _build(checkout, "build")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert _git(checkout, "status", "--porcelain", "--untracked-files=all") == ""
    assert list((checkout / "figures" / "smoke" / "orders").glob("*.png"))
    html = []
    for out in ("build", "build"):  # the runs are stored now: both builds only read them
        done = _build(checkout, out)
        assert done.returncode == 0, done.stderr[-3000:]
        html.append((checkout / out / "report.html").read_text(encoding="utf-8"))
    assert 'id="T_' in html[0]  # Table 1 of the sanity notebook is a styled table
    assert _without_clock(html[0]) == _without_clock(html[1])
