"""A kept kernel (one kernel, several notebooks in turn) gives each notebook the state a fresh
one would: matplotlib's rcParams, pandas' options and the random generators are reset."""

import json

import nbformat

PROBE = ("import json, random\nimport matplotlib, numpy, pandas, torch\n"
         "print(json.dumps([matplotlib.rcParams['lines.linewidth'], matplotlib.rcParams['figure.dpi'],\n"
         "                  pandas.get_option('display.max_rows'), random.random(),\n"
         "                  float(numpy.random.rand()), float(torch.rand(1))]))")
MESS = ("import random\nimport matplotlib, numpy, pandas, torch\n"
        "matplotlib.rcParams['lines.linewidth'] = 7.5\nmatplotlib.rcParams['figure.dpi'] = 33\n"
        "pandas.set_option('display.max_rows', 3)\n"
        "random.random(); numpy.random.rand(5); torch.rand(5)")


def _write(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _probe(path):
    cell = nbformat.read(path, as_version=4).cells[0]
    return json.loads(cell.outputs[0]["text"])


def test_kept_kernel_resets_rcparams_pandas_options_and_seeds(tmp_path):
    from modarith.reporting.experiments import Kernel, execute

    _write(tmp_path / "first.ipynb", PROBE, MESS)
    _write(tmp_path / "second.ipynb", PROBE)
    with Kernel(tmp_path) as kernel:
        for name in ("first", "second"):
            execute(tmp_path / f"{name}.ipynb", tmp_path / "out" / f"{name}.ipynb", progress=False, kernel=kernel)
    first, second = _probe(tmp_path / "out" / "first.ipynb"), _probe(tmp_path / "out" / "second.ipynb")
    assert second[:3] != [7.5, 33, 3]  # the first notebook's settings did not leak
    assert second == first  # same rcParams, pandas options and random draws as the first notebook saw


SPAWN = ("import multiprocessing\n"
         "with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
         "    print(pool.map(abs, [-3]))")


def test_a_later_notebook_in_a_kept_kernel_can_start_worker_processes(tmp_path):
    """The engine's workers start with ``spawn``, which reads ``__main__.__spec__``: the namespace
    reset between notebooks must leave it (a notebook that trained with workers after another
    failed with "module '__main__' has no attribute '__spec__'")."""
    from modarith.reporting.experiments import Kernel, execute

    _write(tmp_path / "first.ipynb", "x = 1")
    _write(tmp_path / "second.ipynb", SPAWN)
    with Kernel(tmp_path) as kernel:
        for name in ("first", "second"):
            execute(tmp_path / f"{name}.ipynb", tmp_path / "out" / f"{name}.ipynb", progress=False, kernel=kernel)
    cell = nbformat.read(tmp_path / "out" / "second.ipynb", as_version=4).cells[0]
    assert cell.outputs[0]["text"].strip() == "[3]"
