"""The device check in one call: correctness, speed and the projected full-protocol time.

    python benchmarks/gpu_check.py [--device cuda|cpu] [--tiny] [--out DIR] [--budget-s 450]

Writes ``DIR/gpu_check.json`` after every measurement (a call cut short by its time limit
keeps what it measured), and stops starting new measurements once ``--budget-s`` seconds
have gone. Sections, in order:

1. ``equality``: a group of K = 3 against 3 single runs on the device; the fast path against
   the reference modules (gradients, one evaluation); the device against the CPU over 200
   steps (``--tiny``: 20). Each quantity has its own tolerance (losses relative, accuracies in
   flipped samples, ‖θ‖ relative), stated in the JSON beside the measured worst difference.
2. ``speed``: run-steps/s of groups of K ∈ {1, 2, 18} at SPEC's model, GPT and LSTM, eager
   and (CUDA) with the forward under ``torch.compile(mode="reduce-overhead")`` (CUDA graphs).
3. ``projection``: the full protocol's wall time on this device from the measured steps.

It installs nothing by itself; ``--install`` first runs the project's own install
(``pip install -e ".[test]"``, keeping the torch already installed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from modarith.models.config import RunConfig  # noqa: E402

# tolerance per quantity: (kind, value); "rel": |a-b| / max(|b|, 1e-6), "flips": samples
TOLERANCES = {"loss": ("rel", 1e-3), "acc": ("flips", 2), "param_norm": ("rel", 1e-4), "grad": ("rel", 1e-4)}
DRIFT_TOLERANCES = {"loss": ("rel", 5e-2), "acc": ("flips", 0.05), "param_norm": ("rel", 1e-2)}


def _worst(a: dict, b: dict, n_val: int, tol: dict) -> dict:
    """Worst difference per quantity between two histories, and whether it is within ``tol``
    (accuracy differences counted in samples of the validation set; a float tolerance below
    1 is a fraction of them)."""
    out = {}
    for q, keys in (("loss", ("train_loss", "val_loss")), ("acc", ("train_acc", "val_acc")),
                    ("param_norm", ("param_norm",))):
        x = torch.tensor([a[k] for k in keys], dtype=torch.float64)
        y = torch.tensor([b[k] for k in keys], dtype=torch.float64)
        kind, limit = tol[q]
        if kind == "rel":
            worst = float(((x - y).abs() / y.abs().clamp(min=1e-6)).max())
        else:
            worst = float((x - y).abs().max() * n_val)
            limit = limit * n_val if limit < 1 else limit
        out[q] = {"worst": worst, "tolerance": limit, "kind": kind, "ok": worst <= limit}
    return out


def check_equality(device: str, tiny: bool) -> dict:
    from modarith.runtime.engine import train
    from modarith.runtime.group import GroupTrainer

    small = dict(p=5, d_model=16, num_layers=1, num_heads=2, steps=8, eval_dense=2, eval_every=4) if tiny \
        else dict(p=11, d_model=32, num_layers=2, num_heads=2, steps=60, eval_dense=10, eval_every=20)
    out = {"group_vs_single": {}, "fast_vs_reference": {}, "device_vs_cpu": {}}
    for model in ("gpt", "lstm"):
        for bs in (512, 16):
            cfgs = [RunConfig(model=model, seed=s, lr=lr, weight_decay=wd, batch_size=bs, **small)
                    for s, lr, wd in ((0, 1e-3, 1.0), (42, 3e-3, 0.25), (7, 2e-3, 0.5))]
            n_val = len(cfgs[0].eval_steps()) and (cfgs[0].p ** 2 - cfgs[0].n_train)
            together = train(cfgs, results=None, device=device, progress=False)
            for c, rec in zip(cfgs, together):
                alone = train([c], results=None, device=device, progress=False)[0]
                out["group_vs_single"][f"{model} B={bs} seed={c.seed}"] = _worst(
                    rec.history, alone.history, n_val, TOLERANCES)
        g = GroupTrainer([RunConfig(model=model, seed=s, orders=(2, 3), batch_size=40, **small) for s in (0, 1)],
                         device)
        g.step = 3
        grads = []
        for fast in (True, False):
            g.fast = fast
            grads.append(g.gradients().double())
        rel = float((grads[0] - grads[1]).norm() / grads[1].norm())
        out["fast_vs_reference"][model] = {"grad": {"worst": rel, "tolerance": TOLERANCES["grad"][1],
                                                    "kind": "rel (norm)", "ok": rel <= TOLERANCES["grad"][1]}}
        c = RunConfig(model=model, seed=0, **{**small, "steps": 20 if tiny else 200})
        n_val = c.p ** 2 - c.n_train
        here = train([c], results=None, device=device, progress=False)[0]
        cpu = train([c], results=None, device="cpu", progress=False)[0]
        out["device_vs_cpu"][model] = _worst(here.history, cpu.history, n_val, DRIFT_TOLERANCES)
    flat = [q for sec in out.values() for case in sec.values() for q in case.values()]
    out["ok"] = all(q["ok"] for q in flat)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("gpu_check_out"))
    ap.add_argument("--budget-s", type=float, default=450.0)
    ap.add_argument("--install", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_check.json"
    report: dict = {"device": args.device, "tiny": args.tiny, "torch": torch.__version__,
                    "cuda": torch.cuda.is_available() and torch.cuda.get_device_name(0)}

    def save(section: str, value) -> None:
        report[section] = value
        report["elapsed_s"] = time.monotonic() - t0
        path.write_text(json.dumps(report, indent=1, default=str))
        print(f"[{report['elapsed_s']:.0f} s] {section} written", file=sys.stderr, flush=True)

    if args.install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", ".[test]"], check=True)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    save("equality", check_equality(args.device, args.tiny))
    from benchmarks import bench

    base = dict(p=7, d_model=16, num_layers=1, num_heads=2) if args.tiny else {}
    sizes = [1, 2] if args.tiny else [1, 2, 18]
    modes = ("reduce-overhead",) if args.device.startswith("cuda") else ()
    speed = {}
    for model in ("gpt", "lstm"):
        if time.monotonic() - t0 > args.budget_s:
            speed[model] = "not measured: time budget spent"
            continue
        cfg = RunConfig(model=model, **base)
        speed[model] = bench.bench_model(cfg, sizes, args.device, rounds=1 if args.tiny else 3,
                                         n_steps=1 if args.tiny else 10, reference=False,
                                         compile_modes=modes, log=lambda *a: None)
        save("speed", speed)
    measured = {m: r for m, r in speed.items() if isinstance(r, dict)}
    if measured and set(measured) == {"gpt", "lstm"}:
        save("projection", bench.project(measured, "full"))
    return 0 if report["equality"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
