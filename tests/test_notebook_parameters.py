"""List-valued notebook parameters read as users type them (``notebook.int_list``), through the
papermill command line itself."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modarith.reporting.notebook import int_list
from modarith.runtime.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, expected", [
    ([0, 42], [0, 42]), ((0, 42), [0, 42]), (42, [42]), (0, [0]), ("0,42", [0, 42]), ("[0, 42]", [0, 42]),
    (" 42 ", [42]), ("0", [0]), (None, [7, 8]), ("", [7, 8])])
def test_int_list_reads_every_form(value, expected):
    assert int_list("seeds", value, (7, 8)) == expected


@pytest.mark.parametrize("value", ["zero", "[0, 'a']", [0, -1], [True], [], 1.5, "0.5", {"a": 1}])
def test_int_list_names_the_parameter(value):
    with pytest.raises(ValueError, match=r"seeds = .* is invalid: give integers >= 0"):
        int_list("seeds", value, (0,))


def test_int_list_minimum_and_no_default():
    with pytest.raises(ValueError, match="sizes = 0 is invalid: give integers >= 1"):
        int_list("sizes", 0, minimum=1)
    with pytest.raises(ValueError, match="sizes = None is invalid"):
        int_list("sizes", None, minimum=1)


def test_every_seeds_parameter_goes_through_the_reader():
    """No notebook reads ``seeds`` as ``seeds or ...`` (0 is a seed; a string is not a list)."""
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        text = path.read_text()
        if "seeds: list = None" in text:
            assert 'seeds = notebook.int_list("seeds", seeds, knobs.seeds)' in text, path.name


@pytest.mark.slow
@pytest.mark.parametrize("args, seeds", [
    (["-p", "seeds", "[0, 42]"], {0, 42}),
    (["-p", "seeds", "42"], {42}),
    (["-p", "seeds", "0"], {0}),
    (["-p", "seeds", "0,42"], {0, 42}),
    (["-y", "seeds: [0, 42]"], {0, 42}),
])
def test_papermill_runs_the_seeds_asked(args, seeds, tmp_path):
    """``papermill 44_binary_ternary.ipynb … <form>`` in the smoke profile trains exactly the seeds asked."""
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "44_binary_ternary.ipynb"),
           str(tmp_path / "out.ipynb"), "--cwd", str(tmp_path), "-p", "profile", "smoke", "-p", "device", "cpu",
           "-p", "results_dir", str(results), "-p", "figures_dir", str(tmp_path / "figures"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {r.config.seed for r in Store(results).records()} == seeds
