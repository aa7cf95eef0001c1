"""bf16 autocast against fp32 through grokking, from stored runs (issue: speed).

Compares, for every stored run with ``precision="bf16"``, its fp32 twin (the same config with
``precision="fp32"``) on the seed's observables: best A_val and its first step t_f(A_val), the first
step with A_val >= 0.9 (t_gen), best L_val on a log scale, and the validation-loss curve
(largest |log10 ratio| after step 500), against the fp32 seed-to-seed spread of the same
quantities (the noise any verdict must clear). Nothing is trained here.

    python benchmarks/bf16_check.py --results results
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

import numpy as np

from modarith.runtime.store import Store


def first_step(history: dict, key: str, at_least: float) -> float:
    for s, v in zip(history["step"], history[key]):
        if v >= at_least:
            return float(s)
    return math.nan


def observables(rec) -> dict:
    h, s = rec.history, rec.summary
    return {"A_val": s["A_val"], "tf_A_val": s["tf_A_val"], "t_gen(A_val>=0.9)": first_step(h, "val_acc", 0.9),
            "log10 L_val": math.log10(s["L_val"]), "log10 L_train": math.log10(s["L_train"])}


def curve_gap(a, b, after: int = 500) -> float:
    """Largest |log10(val_loss_a / val_loss_b)| over evaluations after ``after``."""
    sa = np.asarray(a.history["step"])
    la, lb = np.asarray(a.history["val_loss"]), np.asarray(b.history["val_loss"])
    keep = sa > after
    return float(np.max(np.abs(np.log10(la[keep]) - np.log10(lb[keep]))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    args = ap.parse_args(argv)
    store = Store(args.results)
    recs = store.records()
    pairs = []
    for r in recs:
        if r.config.precision != "bf16":
            continue
        twin = store.get(dataclasses.replace(r.config, precision="fp32"))
        if twin is not None:
            pairs.append((r, twin))
    if not pairs:
        print("no bf16 run with a stored fp32 twin", file=sys.stderr)
        return 1
    by_model: dict[str, list] = {}
    for b, f in pairs:
        by_model.setdefault(b.config.model, []).append((b, f))
    for model, ps in by_model.items():
        print(f"## {model}: bf16 vs fp32, seeds {[b.config.seed for b, _ in ps]}, T {ps[0][0].config.steps}")
        fp = [observables(f) for _, f in ps]
        keys = list(fp[0])
        print("| observable | " + " | ".join(f"seed {b.config.seed} fp32 → bf16" for b, _ in ps)
              + " | fp32 seed spread (max − min) |")
        print("|---|" + "---|" * (len(ps) + 1))
        for k in keys:
            cells = []
            for (b, f) in ps:
                ob, of = observables(b)[k], observables(f)[k]
                cells.append(f"{of:.4g} → {ob:.4g}")
            vals = [o[k] for o in fp]
            spread = max(vals) - min(vals) if len(vals) > 1 else math.nan
            print(f"| {k} | " + " | ".join(cells) + f" | {spread:.3g} |")
        gaps = [curve_gap(b, f) for b, f in ps]
        seed_gap = curve_gap(ps[0][1], ps[1][1]) if len(ps) > 1 else math.nan
        walls = [(f.meta.get("wall_time_share_s"), b.meta.get("wall_time_share_s")) for b, f in ps]
        print("| max |log10 L_val ratio| after step 500 | " + " | ".join(f"{g:.3g}" for g in gaps)
              + f" | fp32 seed vs seed: {seed_gap:.3g} |")
        print(f"wall time share (fp32, bf16) s: {walls}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
