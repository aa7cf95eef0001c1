"""Calibration of a reduced profile: train candidate settings, then measure what matters.

    python benchmarks/calibrate.py train RESULTS '{"model": "gpt", "lr": 3e-3}' SEEDS STEPS [KEY=V,V …]
    python benchmarks/calibrate.py table RESULTS [CHECKPOINT.pt …]

``train`` trains one vectorised group (one ``train([...])`` call): the base RunConfig fields
(JSON) × the seeds (comma-separated) × every ``KEY=V,V`` grid (a per-run field such as
``weight_decay=1,0.5,0.25`` or ``r_train=0.3,0.4``), T = STEPS, into the store RESULTS.
Run it with ``OMP_NUM_THREADS=1`` and one process at a time: the group's wall time is part
of the measurement.

``table`` prints one row per stored run (and per run of each group checkpoint given, for a
group stopped early): its settings, the first step with A_val ≥ 0.9 and ≥ 0.99, the training
accuracy's collapses (:func:`modarith.core.metrics.count_collapses`) and their rate per 1,000 steps,
the largest relative change of ‖θ‖₂ between two consecutive evaluations, and the wall time
per run. benchmarks/CALIBRATION.md holds the measurements.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from modarith.core.metrics import count_collapses  # noqa: E402
from modarith.models.config import RunConfig  # noqa: E402
from modarith.study.analysis import first_step_at  # noqa: E402

USAGE = __doc__.split("\n\n")[1]


def measure(config: RunConfig, history: dict, wall_s: float | None) -> dict:
    """The calibration row of one run (its history may stop before T)."""
    steps = history["step"]
    norm = np.asarray(history["param_norm"], dtype=float)
    col = count_collapses(history)
    return {"model": config.model, "p": config.p, "d": config.d_model, "L": config.num_layers,
            "lr": config.lr, "wd": config.weight_decay, "r": config.r_train, "seed": config.seed,
            "T": int(steps[-1]), "t(A_val≥0.9)": first_step_at(steps, history["val_acc"], 0.9),
            "t(A_val≥0.99)": first_step_at(steps, history["val_acc"], 0.99),
            "A_val max": float(np.max(history["val_acc"])),
            "first fit": col["first_fit"], "collapses": col["collapses"],
            "per 1k": col["rate_per_1k"],
            "lowest": min((e[2] for e in col["episodes"]), default=float("nan")),
            "‖θ‖ max jump": float(np.max(np.abs(np.diff(norm)) / norm[:-1])),
            "wall s/run": wall_s}


def _checkpoint_rows(path: Path, configs: dict[str, RunConfig]) -> list[dict]:
    """Rows of a checkpoint (a run stopped early): its history up to its step. Reads a
    per-run checkpoint (format 3) and a group checkpoint of the previous format alike."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    n = state["n_evals_done"]
    run_ids = state["run_ids"] if "run_ids" in state else [state["run_id"]]
    hists = state["hist"] if "run_ids" in state else state["hist"].unsqueeze(0)
    rows = []
    for k, rid in enumerate(run_ids):
        config = configs[rid]
        names = ["train_loss", "train_acc", "val_loss", "val_acc", "param_norm"]
        hist = hists[k, :n]
        history = {"step": config.eval_steps()[:n],
                   **{name: hist[:, j].tolist() for j, name in enumerate(names)}}
        rows.append(measure(config, history, state["wall_time_s"] / len(run_ids)))
    return rows


def table(results: str, checkpoints: list[str]) -> pd.DataFrame:
    from modarith.models.config import run_id
    from modarith.runtime.store import Store

    store = Store(results)
    rows = [measure(r.config, r.history, r.meta.get("wall_time_s")) for r in store.records()]
    known = {}
    for path in Path(results, "calibration").glob("*.json"):  # configs of groups in training
        config = RunConfig.from_dict(json.loads(path.read_text()))
        known[run_id(config)] = config
    for path in checkpoints:
        rows += _checkpoint_rows(Path(path), known)
    return pd.DataFrame(rows)


def train_group(results: str, base: dict, seeds: str, steps: str, grids: list[str]) -> None:
    from modarith.models.config import run_id
    from modarith.runtime.engine import train

    axes = [[("seed", int(s)) for s in seeds.split(",")]]
    for grid in grids:
        key, _, values = grid.partition("=")
        axes.append([(key, float(v)) for v in values.split(",")])
    configs = [RunConfig(**{**base, **dict(point), "steps": int(steps)})
               for point in itertools.product(*axes)]
    folder = Path(results, "calibration")
    folder.mkdir(parents=True, exist_ok=True)
    for c in configs:  # lets `table` read a checkpoint of this group if it is stopped early
        (folder / f"{run_id(c)}.json").write_text(json.dumps(c.to_dict()))
    t0 = time.perf_counter()
    train(configs, results=results, device="cpu", progress=False)
    print(f"{len(configs)} runs, {time.perf_counter() - t0:.0f} s wall", flush=True)


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    if len(argv) >= 2 and argv[0] == "table":
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(table(argv[1], argv[2:]).round(3).to_string(index=False))
        return 0
    if len(argv) >= 5 and argv[0] == "train":
        train_group(argv[1], json.loads(argv[2]), argv[3], argv[4], argv[5:])
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
