"""Which code produced a result: the library version (written here only) plus the git commit of
the source tree.

Kept apart from the training engine so that the engine (each record's ``meta``), the report (its
title page), the command line (``--version``) and the packaging (``pyproject.toml``) read one
definition without importing each other.
"""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__version__ = "0.1.0"
#: The git tag of this version's release: what the notebooks' Colab install cell installs by
#: default (``tests/test_notebooks.py`` keeps the cell's default equal to it).
RELEASE_REF = f"v{__version__}"


def installed_commit() -> str:
    """The commit pip installed this package from (``pip install git+URL@ref``): the
    ``vcs_info.commit_id`` of its ``direct_url.json`` (PEP 610), when that distribution's files are
    this very module; "" otherwise (a checkout, an editable or an index install)."""
    try:
        dist = metadata.distribution("modarith")
        if Path(dist.locate_file("modarith/version.py")).resolve() != Path(__file__).resolve():
            return ""  # another copy of modarith is installed; this one runs from elsewhere
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, OSError, ValueError, TypeError):
        return ""
    return str(info.get("vcs_info", {}).get("commit_id", "")) if isinstance(info, dict) else ""


def _checkout_commit() -> str:
    """The short commit of the git checkout holding this file, or ""."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def code_version() -> str:
    """``"<version>+g<short commit>"``: the commit pip installed from (a git install, e.g. the
    Colab install cell: :func:`installed_commit`), else the git checkout's; the version alone
    when neither is known."""
    sha = installed_commit()[:7] or _checkout_commit()
    return f"{__version__}+g{sha}" if sha else __version__
