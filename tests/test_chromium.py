"""The PDF's browser is found where each desktop keeps it (a fake file system: nothing on PATH,
only the paths given exist), and the hint names the platform's way to install one."""

import os

import pytest

from modarith.reporting import export

MAC_CHROME = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
MAC_CHROMIUM = "/Applications/Chromium.app/Contents/MacOS/Chromium"


@pytest.fixture
def only(monkeypatch):
    """Make exactly the given paths exist as executables; nothing is on PATH."""
    monkeypatch.delenv("MODARITH_CHROMIUM", raising=False)
    monkeypatch.setattr(export.shutil, "which", lambda name: None)

    def use(*paths):
        monkeypatch.setattr(export, "_executable", lambda p: p in paths)
    return use


@pytest.mark.parametrize("platform, present, found", [
    ("darwin", [MAC_CHROME], MAC_CHROME),
    ("darwin", [MAC_CHROMIUM], MAC_CHROMIUM),
    ("darwin", [os.path.expanduser("~/Applications/Chromium.app/Contents/MacOS/Chromium")],
     os.path.expanduser("~/Applications/Chromium.app/Contents/MacOS/Chromium")),
    ("linux", ["/snap/bin/chromium"], "/snap/bin/chromium"),
    ("linux", [MAC_CHROME], None),  # another platform's place is not looked at
    ("darwin", [], None),
])
def test_browser_found_in_the_platforms_places(only, platform, present, found):
    only(*present)
    assert export.find_chromium(platform) == found


def test_path_comes_first(only, monkeypatch):
    only(MAC_CHROME)
    monkeypatch.setattr(export.shutil, "which", lambda name: "/usr/bin/chromium" if name == "chromium" else None)
    assert export.find_chromium("darwin") == "/usr/bin/chromium"


@pytest.mark.parametrize("platform, words", [("darwin", "brew install --cask chromium"),
                                             ("linux", "snap install chromium"),
                                             ("win32", "Google Chrome")])
def test_hint_per_platform(platform, words):
    hint = export.install_hint(platform)
    assert words in hint and "MODARITH_CHROMIUM" in hint
    assert platform == "linux" or "apt-get" not in hint
