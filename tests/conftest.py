"""Session-wide fixtures: one smoke results store, trained once, and one smoke report build
over it, shared by every test that needs stored runs or executed notebooks (notebooks, CLI,
report)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """A results store holding the smoke runs of every experiment (trained once per session,
    on the CPU). Notebooks and commands run against it with ``profile="smoke"`` train nothing."""
    from modarith.runtime.engine import train
    from modarith.study import protocol

    root = tmp_path_factory.mktemp("smoke") / "results"
    runs = dict.fromkeys(c for name in protocol.EXPERIMENTS for c in protocol.configs(name, "smoke"))
    train(list(runs), results=root, device="cpu", progress=False)
    return root


@pytest.fixture(scope="session")
def smoke_build(smoke_results):
    """The smoke report built once per session (``build_report.py --profile smoke``) over
    :func:`smoke_results`, so nothing trains: returns (out dir, work dir, stdout, seconds).
    Its executed notebooks are :func:`smoke_notebooks`; figures land in ``work/figures``.
    ``$MODARITH_REPORT_BUILD`` names the out dir to keep (e.g. ``build/``)."""
    import os
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    work = smoke_results.parent
    base = os.environ.get("MODARITH_REPORT_BUILD")
    out = Path(base).resolve() if base else work / "build"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(root / "build_report.py"), "--profile", "smoke", "--device", "cpu",
         "--out", str(out), "--results", str(smoke_results), "--figures", str(work / "figures")],
        capture_output=True, text=True, cwd=root, timeout=1500)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"smoke build failed:\n{proc.stdout}\n{proc.stderr[-5000:]}"
    return out, work, proc.stdout, seconds


@pytest.fixture(scope="session")
def smoke_notebooks(smoke_build) -> dict[str, Path]:
    """Every notebook as the session's smoke build executed it (papermill, smoke profile,
    against :func:`smoke_results`): notebook stem -> executed copy."""
    out = smoke_build[0]
    return {p.stem: p for p in sorted((out / "notebooks").glob("*.ipynb"))}


@pytest.fixture
def one_thread(monkeypatch):
    """One intra-op thread for the test and for every worker process ``train(workers=n)``
    starts (as each worker runs on a 2-core host): a group and its single runs, or a run and
    its resume, are bit-identical on the CPU at one thread; with several, the LSTM's batched
    matmuls may split their work differently and differ in the last bits. Restores the
    previous thread count (whatever ``OMP_NUM_THREADS`` the suite was started with)."""
    import torch

    from modarith.runtime import workers

    monkeypatch.setattr(workers, "cpu_cores", lambda: 1)  # threads per worker: max(1, 1 // n) = 1
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
