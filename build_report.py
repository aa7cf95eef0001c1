#!/usr/bin/env python
"""Build the report: run every notebook with papermill, write build/report.html and report.pdf.

    python build_report.py [--profile auto|smoke|quick|full] [--device auto|cpu|cuda|mps]
                           [--only 4.3,4.5] [--results DIR] [--out build/] [--figures figures/]

The first printed line names the profile and the device (``auto``: full on CUDA, quick
otherwise). Runs already in the results store are reused, so a second build only re-plots.
Exit code 0 when every notebook ran, 1 when one failed (the report is still written, with the
failing notebook and cell named), 2 for bad options. See ``modarith.reporting.report`` and the README.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from modarith.reporting.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], notebooks_dir=Path(__file__).resolve().parent / "notebooks"))
