"""Which code produced a result: the library version (written here only) plus the git commit of
the source tree.

Kept apart from the training engine so that the engine (each record's ``meta``), the report (its
title page), the command line (``--version``) and the packaging (``pyproject.toml``) read one
definition without importing each other.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

__version__ = "0.1.0"


@lru_cache(maxsize=1)
def code_version() -> str:
    """``"<version>+g<short commit>"`` when the package lies in a git checkout, else the version."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__
