"""Provenance: the commit a record was made with, for a checkout and for a git install."""

import json
from pathlib import Path

import pytest

from modarith import version


class _Dist:
    def __init__(self, direct_url, root):
        self.direct_url, self.root = direct_url, root

    def read_text(self, name):
        return json.dumps(self.direct_url) if name == "direct_url.json" and self.direct_url is not None else None

    def locate_file(self, path):
        return Path(self.root) / path


@pytest.fixture
def installed(monkeypatch):
    """Fake what pip left (``direct_url.json``) and no git checkout around the package."""
    version.code_version.cache_clear()
    monkeypatch.setattr(version, "_checkout_commit", lambda: "")

    def use(direct_url, root=Path(version.__file__).parents[1]):
        monkeypatch.setattr(version.metadata, "distribution", lambda name: _Dist(direct_url, root))
    yield use
    version.code_version.cache_clear()


def test_a_git_install_names_its_commit(installed):
    installed({"url": "https://github.com/modarith/modarith", "vcs_info": {
        "vcs": "git", "requested_revision": "v0.1.0", "commit_id": "0123456789abcdef0123456789abcdef01234567"}})
    assert version.code_version() == f"{version.__version__}+g0123456"


@pytest.mark.parametrize("direct_url", [None, {"url": "file:///x", "dir_info": {"editable": True}}, ["junk"]])
def test_no_commit_known_gives_the_version(installed, direct_url):
    installed(direct_url)
    assert version.code_version() == version.__version__


def test_another_copy_installed_is_not_this_ones_commit(installed, tmp_path):
    installed({"vcs_info": {"vcs": "git", "commit_id": "f" * 40}}, root=tmp_path)
    assert version.code_version() == version.__version__


def test_a_checkout_names_its_commit():
    version.code_version.cache_clear()
    assert version.code_version().startswith(f"{version.__version__}+g")  # this repository is a git checkout
