"""Session-wide fixtures: one smoke results store, trained once, shared by every test that
needs stored runs (notebooks, CLI, report)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """A results store holding the smoke runs of every experiment (trained once per session,
    on the CPU). Notebooks and commands run against it with ``profile="smoke"`` train nothing."""
    from modarith import protocol
    from modarith.engine import train

    root = tmp_path_factory.mktemp("smoke") / "results"
    runs = dict.fromkeys(c for name in protocol.EXPERIMENTS for c in protocol.configs(name, "smoke"))
    train(list(runs), results=root, device="cpu", progress=False)
    return root


@pytest.fixture(scope="session")
def smoke_notebooks(smoke_results) -> dict[str, Path]:
    """Every notebook executed once with papermill in the smoke profile against
    :func:`smoke_results`: notebook stem -> executed copy (beside the store, in
    ``executed/``); figures in ``figures/`` beside the store."""
    from modarith import experiments, protocol

    root = smoke_results.parent
    out = {}
    for name, e in protocol.EXPERIMENTS.items():
        out[e.notebook] = experiments.run_notebook(
            name, profile="smoke", results=smoke_results, device="cpu", figures=root / "figures",
            progress=False, output=root / "executed" / f"{e.notebook}.ipynb",
            parameters={"interactive": False} if name == "interpretability" else None)
    source = experiments.PACKAGE_ROOT / "notebooks" / "00_parameter_counts.ipynb"
    out[source.stem] = experiments.execute(source, root / "executed" / source.name, progress=False)
    return out
