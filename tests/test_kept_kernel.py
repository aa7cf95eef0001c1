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
