"""The full protocol on one GPU in one call: check, plan, train what fits, archive.

    python benchmarks/gpu_full.py [--device cuda] [--profile full] [--budget-s 450]
                                  [--workers 3] [--compile auto|none|reduce-overhead]
                                  [--only NAMES] [--out DIR] [--tiny]

Steps, each written under ``--out`` (default ``$OUT``) as soon as it exists:

1. ``gpu_check.json``: :mod:`benchmarks.gpu_check` (equality with tolerances, steps/s eager and
   with CUDA graphs) within ``--check-budget-s``.
2. The plan: every experiment's runs (each run counted in the first experiment that lists
   it, as the build does) grouped as the engine groups them, each group timed on the device
   (:func:`modarith.runtime.plan.time_group`), scheduled over the workers (:func:`modarith.runtime.plan.plan`)
   and × ``--safety`` (workers share one GPU). Whole experiments are chosen, cheapest first,
   while their sum fits the time left (:func:`choose`); the rest are projected.
3. Training: the chosen experiments' runs in one :func:`modarith.runtime.engine.train` call, in a
   child process cut at the budget (whatever it stored by then is kept), with ``--workers``
   worker processes on the one device (groups of different shapes side by side) and
   ``compile="reduce-overhead"`` (CUDA graphs) when the check measured it paying (``auto``).
4. ``records.tar.gz``: the records (``runs/*.json``, no weights) and the workers' timeline;
   ``weights_48.tar.gz``: the records and weights of the runs notebook 48 loads;
   ``timing.csv`` / ``timing.md``: per experiment its runs, groups, estimated and measured
   seconds and whether it was trained or projected; ``gpu_full.json``: the summary.

``--tiny`` is the seconds-long CPU form (smoke profile, ``gpu_check --tiny``), run by the
test suite. Load the archive with ``tar xzf records.tar.gz -C results`` and
``modarith.runtime.store.Store("results")``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
MAX_ARCHIVE_BYTES = 16 * 2**20


def experiment_configs(profile: str, only: list[str] | None = None) -> dict[str, list]:
    """Each experiment's runs still new to the build (a run listed by an earlier experiment of
    :data:`modarith.study.protocol.EXPERIMENTS` counts there), in notebook order; experiments
    without runs are left out."""
    from modarith.study import protocol

    seen: set = set()
    out = {}
    for name in protocol.EXPERIMENTS:
        try:
            cfgs = [c for c in dict.fromkeys(protocol.configs(name, profile)) if c not in seen]
        except (ValueError, KeyError):
            continue
        seen.update(cfgs)
        if cfgs and (only is None or name in only):
            out[name] = cfgs
    return out


def choose(estimates: dict[str, float], budget_s: float) -> list[str]:
    """The largest number of whole experiments whose estimated seconds sum to at most
    ``budget_s``: cheapest first (which maximises the count); NaN estimates are left out."""
    chosen, used = [], 0.0
    known = {name: s for name, s in estimates.items() if not math.isnan(s)}  # NaN is not an order: out first
    for name, s in sorted(known.items(), key=lambda kv: kv[1]):
        if used + s <= budget_s:
            chosen.append(name)
            used += s
    return chosen


def estimate(cfgs: list, device: str, workers: int, safety: float) -> dict:
    """Planned seconds of ``cfgs`` alone over ``workers`` on ``device`` (× ``safety``)."""
    from modarith.runtime.plan import plan

    table = plan(cfgs, None, device, workers=workers)
    return {"runs": int(table["runs"].sum()), "groups": len(table), "run_steps": int(table["run_steps"].sum()),
            "serial_s": float(table["eta_s"].sum()), "estimated_s": float(table["end_s"].max()) * safety}


def compile_pays(check: dict, gain: float = 1.2) -> bool:
    """Whether CUDA graphs paid in the check (``gpu_check.json``'s ``speed``): for both models
    the compiled group (``compile:reduce-overhead K=n``) of the largest size timed ran at
    least ``gain`` × the eager one's (``engine K=n``) run-steps/s."""
    speed = check.get("speed")
    if not isinstance(speed, dict) or not speed:
        return False
    for result in speed.values():
        variants = result.get("variants", {}) if isinstance(result, dict) else {}
        sizes = [v["K"] for name, v in variants.items() if name.startswith("compile:reduce-overhead")]
        if not sizes:
            return False
        k = max(sizes)
        eager, graphs = variants.get(f"engine K={k}"), variants.get(f"compile:reduce-overhead K={k}")
        if not eager or graphs["run_steps_per_s"] < gain * eager["run_steps_per_s"]:
            return False
    return True


def train_child(cfgs: list, results: Path, device: str, workers: int, compile_mode: str | None,
                timeout_s: float) -> dict:
    """Train ``cfgs`` into ``results`` in a child process (its own process group), killed
    at ``timeout_s``; returns its wall time, exit code and whether it was cut."""
    spec = results / "gpu_full_configs.json"
    spec.write_text(json.dumps([c.to_dict() for c in cfgs]))
    code = ("import json, sys; from modarith.models.config import RunConfig; from modarith.runtime.engine import train; "
            "cfgs = [RunConfig.from_dict(d) for d in json.load(open(sys.argv[1]))]; "
            "train(cfgs, results=sys.argv[2], device=sys.argv[3], progress=False, workers=int(sys.argv[4]), "
            "compile=(sys.argv[5] or None))")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, str(spec), str(results), device, str(workers),
                             compile_mode or ""], env=env, start_new_session=True)
    try:
        rc, cut = proc.wait(timeout=max(1.0, timeout_s)), False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        rc, cut = proc.returncode, True
    return {"wall_s": time.monotonic() - start, "returncode": rc, "cut_at_budget": cut}


def archive(out: Path, results: Path, weight_configs: list) -> dict:
    """``records.tar.gz`` (records and timeline, no weights) and ``weights_48.tar.gz`` (the
    records and weights of ``weight_configs`` that are stored); returns their sizes."""
    from modarith.runtime.store import Store

    store = Store(results)
    records = out / "records.tar.gz"
    with tarfile.open(records, "w:gz") as tar:
        for path in sorted(store.runs.glob("*.json")):
            tar.add(path, arcname=f"runs/{path.name}")
        if (results / "timeline.jsonl").exists():
            tar.add(results / "timeline.jsonl", arcname="timeline.jsonl")
    weights = out / "weights_48.tar.gz"
    with tarfile.open(weights, "w:gz") as tar:
        for c in weight_configs:
            for path in (store.record_path(c), store.weights_path(c)):
                if path.exists():
                    tar.add(path, arcname=f"runs/{path.name}")
    sizes = {"records_bytes": records.stat().st_size, "weights_48_bytes": weights.stat().st_size}
    if sizes["records_bytes"] > MAX_ARCHIVE_BYTES:
        print(f"warning: records.tar.gz is {sizes['records_bytes'] / 2**20:.1f} MiB (> 16 MiB)", file=sys.stderr)
    return sizes


def measured_seconds(store, cfgs: list) -> tuple[int, float]:
    """Runs of ``cfgs`` stored, and their groups' summed wall time (each group once)."""
    done, walls = 0, {}
    for c in cfgs:
        rec = store.get(c)
        if rec is not None:
            done += 1
            wall = rec.meta.get("group_wall_time_s") or 0.0
            walls[(wall, rec.meta.get("group_size"))] = wall
    return done, float(sum(walls.values()))


def markdown(rows: list[dict]) -> str:
    """A list of equal-keyed rows as a Markdown table."""
    if not rows:
        return "(no experiments)\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--profile", default="full")
    ap.add_argument("--budget-s", type=float, default=450.0, help="seconds for the whole call (default 450)")
    ap.add_argument("--check-budget-s", type=float, default=100.0, help="seconds for gpu_check (default 100)")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("MODARITH_WORKERS", "3")),
                    help="worker processes on the device (default $MODARITH_WORKERS or 3)")
    ap.add_argument("--compile", default="auto", choices=("auto", "none", "reduce-overhead"))
    ap.add_argument("--safety", type=float, default=1.5, help="factor on the plan (workers share one GPU)")
    ap.add_argument("--only", default=None, help="comma-separated experiments to consider (default all)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_full_out")))
    ap.add_argument("--results", type=Path, default=None,
                    help="results store to train into (default: a fresh temporary folder, outside --out)")
    ap.add_argument("--tiny", action="store_true", help="seconds-long CPU form: smoke profile, device cpu")
    args = ap.parse_args(argv)
    if args.tiny:
        args.device, args.profile = "cpu", "smoke"
    t0 = time.monotonic()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = args.results or Path(tempfile.mkdtemp(prefix="gpu_full_results_"))
    summary: dict = {"device": args.device, "profile": args.profile, "workers": args.workers,
                     "budget_s": args.budget_s, "results": str(results)}

    def save() -> None:
        summary["elapsed_s"] = time.monotonic() - t0
        (out / "gpu_full.json").write_text(json.dumps(summary, indent=1, default=str))

    import torch

    from benchmarks import gpu_check
    from modarith.runtime.store import Store
    from modarith.study import protocol

    if args.device.startswith("cuda"):
        summary["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    check_args = ["--device", args.device, "--out", str(out), "--budget-s", str(args.check_budget_s)]
    summary["gpu_check_rc"] = gpu_check.main(check_args + (["--tiny"] if args.tiny else []))
    check = json.loads((out / "gpu_check.json").read_text())
    compile_mode = {"auto": "reduce-overhead" if compile_pays(check) else None, "none": None,
                    "reduce-overhead": "reduce-overhead"}[args.compile]
    summary["compile"] = compile_mode
    save()

    only = args.only.split(",") if args.only else None
    per_exp = experiment_configs(args.profile, only)
    plans = {name: estimate(cfgs, args.device, args.workers, args.safety) for name, cfgs in per_exp.items()}
    summary["plan_s"] = time.monotonic() - t0
    left = args.budget_s - (time.monotonic() - t0) - 30.0  # archive and margin
    chosen = choose({n: p["estimated_s"] for n, p in plans.items()}, left)
    summary.update(chosen=chosen, projected=[n for n in per_exp if n not in chosen], training_budget_s=left)
    save()

    results.mkdir(parents=True, exist_ok=True)
    todo = [c for n in per_exp if n in chosen for c in per_exp[n]]
    if todo:
        summary["training"] = train_child(todo, results, args.device, args.workers, compile_mode,
                                          args.budget_s - (time.monotonic() - t0) - 20.0)
    save()

    store = Store(results)
    rows = []
    for name, cfgs in per_exp.items():
        done, measured = measured_seconds(store, cfgs)
        rows.append({"experiment": name, "runs": len(cfgs), "groups": plans[name]["groups"],
                     "run_steps": plans[name]["run_steps"], "estimated_s": round(plans[name]["estimated_s"], 1),
                     "stored": done, "group_wall_s": round(measured, 1),
                     "status": "trained" if done == len(cfgs) else ("partial" if done else "projected")})
    import pandas as pd

    table = pd.DataFrame(rows)
    table.to_csv(out / "timing.csv", index=False)
    (out / "timing.md").write_text(markdown(rows))
    weight_configs = list(dict.fromkeys(protocol.configs("interpretability", args.profile)))
    summary["archives"] = archive(out, results, weight_configs)
    summary["table"] = rows
    save()
    print(table.to_string(index=False))
    print(f"done in {time.monotonic() - t0:.0f} s; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
