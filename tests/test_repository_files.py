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
    assert re.search(r'^license = "MIT"$', (ROOT / "pyproject.toml").read_text(), re.M)  # SPDX (PEP 639)


def test_the_package_metadata_says_mit_and_links_the_repository(tmp_path):
    """The built metadata (setuptools in this environment, which must be >= 77, as
    ``[build-system] requires`` says): ``License-Expression: MIT`` and the project's URLs."""
    pytest.importorskip("setuptools", minversion="77")
    import sys

    done = subprocess.run([sys.executable, "-c", "from setuptools.build_meta import prepare_metadata_for_build_wheel "
                           f"as p; print(p({str(tmp_path)!r}))"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = (tmp_path / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: MIT" in meta and "Project-URL: Source, https://github.com/modarith/modarith" in meta


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


def test_the_conda_environment_takes_torch_from_conda():
    """Not pip's torch (on Linux the CUDA build, GBs): conda-forge's ``pytorch``, which is CPU-only
    on a machine without a GPU driver."""
    env = (ROOT / "environment.yml").read_text()
    conda, _, pip = env.partition("  - pip:\n")
    assert re.search(r"^  - pytorch\b", conda, re.M) and "conda-forge" in conda
    assert not re.search(r"^\s+- torch\b", pip, re.M)
