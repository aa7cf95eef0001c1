"""What a visitor of the repository finds: a licence, a citation with the library's version,
and figures/ committed (not ignored)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import modarith

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_mit_as_pyproject_says():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "modarith contributors" in text
    assert re.search(r'license = \{ text = "MIT" \}', (ROOT / "pyproject.toml").read_text())


def test_citation_names_this_version():
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf'^version: "{re.escape(modarith.__version__)}"$', cff, re.M)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_figures_are_not_ignored():
    for path in ("figures/sanity/train_val.png", "figures/fidelity/collapses.png"):
        check = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        if check.returncode == 128:
            pytest.skip("not a git checkout")
        assert check.returncode == 1, f"{path} is ignored by .gitignore"
