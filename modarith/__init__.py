"""modarith: grokking in modular arithmetic. The package's layers, bottom up: ``core`` (the
mathematics), ``models`` (the models, their registry and the run config), ``runtime`` (training
and the results store), ``study`` (the protocol as data and what the runs say), ``plotting``
(figures) and ``reporting`` (the report and the command line); ``DESIGN.md`` draws them."""

from modarith.version import __version__  # noqa: F401 (modarith.__version__; written in version.py only)
