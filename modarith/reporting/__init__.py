"""The report and the command line: notebook settings, the notebook executor, the HTML/PDF export
(with its nbconvert template in ``templates/``), the build and ``python -m modarith``."""
