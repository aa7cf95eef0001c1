"""Benchmark: the vectorised engine against the course-style reference loop, in one process.

    python -m modarith bench [--device cpu|cuda] [--json PATH] [--tiny] [--threads N]
                             [--sizes 1,2,8,18] [--models gpt,lstm] [--compile] [--end-to-end 300]
    (or python benchmarks/bench.py ...)

For each model (GPT, LSTM at SPEC defaults: d 128, L 2, p 31, r_train 0.5, full batch of 480)
it builds every variant first — the reference loop (:mod:`benchmarks.reference_loop`, one
run) and our engine with groups of K runs — then times them *interleaved* in rounds (warm-up
first), so machine noise hits all variants alike, and keeps medians over rounds. Each round
times ``n`` training updates and one full evaluation; the per run-step time **includes the
evaluation schedule**: ``(t_update + n_evals/T · t_eval) / K`` with SPEC's schedule
(201 evaluations in T = 10 001 steps).

The same run measures the fp32 (and bf16) matmul peak, counts model FLOPs per step, reports
the fraction of peak, prints a table of ratios, writes JSON (``--json``) and projects the
full protocol's wall time on this device from the measured group step times and the
experiment registry (``modarith.reporting.experiments.configs(name, "full")``; SPEC's grid if the
registry is absent). ``--tiny`` shrinks everything to a seconds-long smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.reference_loop import ReferenceLoop  # noqa: E402
from modarith.models.config import RunConfig  # noqa: E402
from modarith.runtime.devices import resolve_device  # noqa: E402
from modarith.runtime.engine import group_configs  # noqa: E402
from modarith.runtime.group import GroupTrainer  # noqa: E402

EXPERIMENT_NAMES = ("sanity", "data_size", "orders", "model_size", "compute", "regularization")
SEEDS = (0, 42)


# ---------------------------------------------------------------------------------------------
# FLOP and byte counts
# ---------------------------------------------------------------------------------------------
def forward_flops(cfg: RunConfig, rows: int, seq_len: int | None = None) -> int:
    """Matmul FLOPs (2 per multiply-add) of one forward pass over ``rows`` sequences.

    GPT per token and block: Q, K, V, O projections 4·2d², attention scores and mixing
    2·2·S·d (the full S×S product is computed, then masked), FFN 2·2·m·d²; classifier 2·d·V.
    LSTM per token and layer: 2·4H·(d_in + H); classifier 2·H·V. Elementwise work is not
    counted (it is memory-bound, see NOTES.md).
    """
    S = seq_len or cfg.seq_len
    d, L, V = cfg.d_model, cfg.num_layers, cfg.vocab_size
    if cfg.model == "gpt":
        per_token = L * (8 * d * d + 4 * S * d + 4 * cfg.multiplier * d * d) + 2 * d * V
    else:
        per_token = 2 * 4 * d * (d + d) * L + 2 * d * V
    return per_token * rows * S


def train_flops(cfg: RunConfig) -> int:
    """FLOPs of one training update (forward + backward ≈ 3 × forward) on one batch."""
    return 3 * forward_flops(cfg, min(cfg.batch_size, cfg.n_train))


def eval_flops(cfg: RunConfig) -> int:
    """FLOPs of one evaluation: a forward pass over the whole dataset (train + validation)."""
    n = round(cfg.n_train / cfg.r_train) if cfg.orders == (2,) else None
    if n is None:
        from modarith.models.config import n_equations

        n = sum(n_equations(cfg.p, cfg.operator, o) for o in cfg.orders)
    return forward_flops(cfg, n)


def n_params(cfg: RunConfig) -> int:
    from modarith.models import build_model

    return sum(p.numel() for p in build_model(cfg).parameters())


def step_bytes(cfg: RunConfig) -> dict[str, int]:
    """Rough fp32 byte traffic of one update of one run (see NOTES.md for the derivation).

    optimizer: params, grad, two moments read and written by ~6 elementwise passes;
    activations: the tensors autograd saves in the forward pass (written once, read once).
    """
    P = n_params(cfg)
    B, S, d, L = min(cfg.batch_size, cfg.n_train), cfg.seq_len, cfg.d_model, cfg.num_layers
    if cfg.model == "gpt":
        H, m = cfg.num_heads, cfg.multiplier
        per_layer = B * S * d * 14 + B * S * m * d * 2 + B * H * S * S * 3
    else:
        per_layer = B * S * d * 4 * 3
    act = (per_layer * L + B * S * cfg.vocab_size * 2) * 4
    return {"params": P, "optimizer_bytes": 6 * 2 * 4 * P, "activation_bytes": 2 * act}


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, n: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / n


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float | None:
    """Best sustained FLOP/s of an (n × n) @ (n × n) matmul; None if the dtype is unsupported."""
    try:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b
    except RuntimeError:
        return None
    k = max(1, int(2e10 / (2 * n**3))) if device.type == "cuda" else 2
    best = min(_timed(lambda: a @ b, k, device) for _ in range(repeats))
    return 2 * n**3 / best


# ---------------------------------------------------------------------------------------------
# variants
# ---------------------------------------------------------------------------------------------
class _Variant:
    def __init__(self, name: str, K: int, step, evaluate):
        self.name, self.K, self.step, self.evaluate = name, K, step, evaluate
        self.t_update: list[float] = []
        self.t_eval: list[float] = []


def _engine_variant(cfg: RunConfig, K: int, device: str, compile_mode: str | None = None,
                    fast: bool = True) -> _Variant:
    """Engine group of K runs: fast path (default), the vmapped reference modules
    (``fast=False``, labelled "vmap"), or the fast path under ``torch.compile``."""
    configs = [replace(cfg, seed=s) for s in range(K)]
    g = GroupTrainer(configs, device, fast=fast)
    label = "engine" if fast else "vmap"
    if compile_mode:
        g.logits = torch.compile(g.logits, mode=compile_mode, dynamic=False)
        label = "compile" if compile_mode == "default" else f"compile:{compile_mode}"
    return _Variant(f"{label} K={K}", K, g.update, g.evaluate)


def bench_model(cfg: RunConfig, sizes: list[int], device: str, rounds: int, n_steps: int,
                reference: bool = True, compile_modes: tuple[str, ...] = (), log=print,
                vmap_sizes: tuple[int, ...] = ()) -> dict:
    """Per run-step times of the reference loop and engine groups for one workload
    (``vmap_sizes``: also the engine without its fast path, for what the fast path gains)."""
    dev = torch.device(device)
    variants: list[_Variant] = []
    if reference:
        ref = ReferenceLoop(cfg, device)
        variants.append(_Variant("reference", 1, ref.train_step, ref.evaluate))
    for K in vmap_sizes:
        variants.append(_engine_variant(cfg, K, device, fast=False))
    for K in sizes:
        variants.append(_engine_variant(cfg, K, device))
        for mode in compile_modes:  # compile time measured; a failure is logged, not fatal
            t0 = time.perf_counter()
            try:
                v = _engine_variant(cfg, K, device, compile_mode=mode)
                v.step()
                v.evaluate()
                _sync(dev)
            except Exception as e:
                log(f"  torch.compile mode={mode} K={K} failed: {type(e).__name__}: {e}"[:400])
                continue
            v.compile_s = time.perf_counter() - t0
            variants.append(v)
    for v in variants:  # warm-up (allocator, kernels, autotuning)
        v.step()
        v.evaluate()
    for r in range(rounds):
        for v in variants:
            v.t_update.append(_timed(v.step, n_steps, dev))
            v.t_eval.append(_timed(v.evaluate, 1, dev))
        log(f"  {cfg.model}: round {r + 1}/{rounds} done")
    T = cfg.total_steps
    f_eval = len(cfg.eval_steps()) / T
    fl_train, fl_eval = train_flops(cfg), eval_flops(cfg)
    out = {"config": cfg.to_dict(), "evals_per_step": f_eval,
           "train_flops_per_run_step": fl_train, "eval_flops_per_eval": fl_eval,
           "bytes_per_run_step": step_bytes(cfg), "variants": {}}
    for v in variants:
        tu, te = statistics.median(v.t_update), statistics.median(v.t_eval)
        per_run_step = (tu + f_eval * te) / v.K
        out["variants"][v.name] = {
            "K": v.K, "update_s": tu, "eval_s": te, "group_step_s": tu + f_eval * te,
            "run_step_s": per_run_step, "update_spread": [min(v.t_update), max(v.t_update)],
            "train_flops_per_s": v.K * fl_train / tu,
            "run_steps_per_s": 1.0 / per_run_step,
            "runs_per_hour": 3600.0 / (per_run_step * T),
            "compile_s": getattr(v, "compile_s", None)}
    ref_t = out["variants"].get("reference", {}).get("run_step_s")
    for v in out["variants"].values():
        v["speedup_vs_reference"] = ref_t / v["run_step_s"] if ref_t else None
    return out


# ---------------------------------------------------------------------------------------------
# end to end: the CLI against the course-style loop (default: SPEC's models, 2 seeds x 300 steps)
# ---------------------------------------------------------------------------------------------
def _wall(cmd: list[str], threads: int | None, timeout: float | None) -> float:
    """Wall seconds of a fresh Python process (``threads``: OMP/MKL threads, None = torch's
    default); ``inf`` when it runs past ``timeout``."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MODARITH_WORKERS"):
        env.pop(var, None)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    try:
        subprocess.run([sys.executable] + cmd, check=True, env=env, cwd=root, capture_output=True,
                       timeout=timeout)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter() - t0


def _cli_wall(model: str, steps: int, seeds: tuple[int, ...], workers: int | None, threads: int | None,
              device: str, overrides: dict | None = None, timeout: float | None = None) -> float:
    """Wall seconds of ``python -m modarith train`` (a fresh process, a fresh results folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["-m", "modarith", "train", "--model", model, "--steps", str(steps),
               "--seeds", ",".join(map(str, seeds)), "--results", tmp, "--no-progress", "--device", device]
        if workers:
            cmd += ["--workers", str(workers)]
        for k, v in (overrides or {}).items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        return _wall(cmd, threads, timeout)


_LOOP = """
import sys, json
from benchmarks.reference_loop import ReferenceLoop
from modarith.models.config import RunConfig
model, steps, seeds, device, overrides = json.loads(sys.argv[1])
for s in seeds:
    ReferenceLoop(RunConfig(model=model, seed=s, steps=steps, **overrides), device).run()
"""


def _loop_wall(model: str, steps: int, seeds: tuple[int, ...], threads: int | None, device: str,
               overrides: dict | None = None, timeout: float | None = None) -> float:
    """Wall seconds of the course-style loop training ``seeds`` one after another, in a fresh
    process like the CLI (``threads`` None: torch's default, all cores)."""
    arg = json.dumps([model, steps, list(seeds), device, overrides or {}])
    return _wall(["-c", _LOOP, arg], threads, timeout)


def bench_end_to_end(models: list[str], steps: int = 300, seeds: tuple[int, ...] = SEEDS,
                     device: str = "cpu", log=print, overrides: dict | None = None,
                     timeout: float | None = None) -> dict:
    """``len(seeds)`` runs × ``steps`` updates at SPEC settings (changed by ``overrides``, e.g.
    for a test), wall seconds, in this order: loop at 1 thread, CLI with 1 worker (1 thread),
    loop at all cores, CLI with its default workers. Ratios: CLI default vs loop default, CLI
    1 worker vs loop 1 thread. Each is a fresh process (startup included); one that runs
    past ``timeout`` seconds counts as ``inf``."""
    from modarith.runtime.devices import cpu_cores

    cores = cpu_cores()
    out = {"steps": steps, "seeds": list(seeds), "cores": cores, "models": {}}
    for model in models:
        r = {}
        r["loop_1_thread_s"] = _loop_wall(model, steps, seeds, 1, device, overrides, timeout)
        r["cli_1_worker_s"] = _cli_wall(model, steps, seeds, 1, 1, device, overrides, timeout)
        r["loop_default_threads_s"] = _loop_wall(model, steps, seeds, None, device, overrides, timeout)
        r["cli_default_workers_s"] = _cli_wall(model, steps, seeds, None, None, device, overrides, timeout)
        r["speedup_default"] = r["loop_default_threads_s"] / r["cli_default_workers_s"]
        r["speedup_1_thread"] = r["loop_1_thread_s"] / r["cli_1_worker_s"]
        log(f"  end to end {model}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
        out["models"][model] = r
    return out


# Nominal dense peaks of one NVIDIA H200 (SXM), for a FLOP-bound projection only.
GPU_PEAK = {"name": "H200 (nominal)", "fp32": 67e12, "bf16": 989e12}


def project_flops(profile: str, peak: float) -> dict:
    """Projection: the protocol's useful training + evaluation FLOPs / a peak (a lower bound)."""
    configs, source = protocol_configs(profile)
    flops = 0
    for cfgs in configs.values():
        for c in cfgs:
            flops += c.total_steps * train_flops(c) + len(c.eval_steps()) * eval_flops(c)
    return {"source": source, "profile": profile, "flops": flops, "peak_flops": peak,
            "projected_s": flops / peak}


# ---------------------------------------------------------------------------------------------
# protocol projection
# ---------------------------------------------------------------------------------------------
def spec_grid() -> dict[str, list[RunConfig]]:
    """SPEC's experiment grid (used when ``modarith.reporting.experiments`` is not available)."""
    both = ("gpt", "lstm")
    out: dict[str, list[RunConfig]] = {n: [] for n in EXPERIMENT_NAMES}
    for m in both:
        for s in SEEDS:
            out["sanity"].append(RunConfig(model=m, seed=s))
            out["data_size"] += [RunConfig(model=m, seed=s, r_train=r / 10) for r in range(1, 10)]
            out["orders"].append(RunConfig(model=m, seed=s, p=11, orders=(2, 3)))
            out["model_size"] += [RunConfig(model=m, seed=s, num_layers=L, d_model=d)
                                  for L in (1, 2, 3) for d in (64, 128, 256)]
            out["compute"] += [RunConfig(model=m, seed=s, batch_size=2**b, steps=20_001)
                               for b in range(5, 10)]
    out["regularization"] = [RunConfig(model="lstm", seed=s, weight_decay=w, steps=40_001)
                             for s in SEEDS for w in (0.25, 0.5, 0.75, 1.0)]
    return out


def protocol_configs(profile: str = "full") -> tuple[dict[str, list[RunConfig]], str]:
    """Configs of every experiment: from the registry if present, else SPEC's grid."""
    try:
        from modarith.reporting import experiments

        return {n: list(experiments.configs(n, profile)) for n in EXPERIMENT_NAMES}, "registry"
    except Exception as e:  # registry absent or incomplete
        if profile != "full":
            raise
        return spec_grid(), f"SPEC grid (registry unavailable: {type(e).__name__})"


def _fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares a + b·K through (K, group step time); b ≥ 0, a ≥ 0."""
    if len(points) == 1:
        return 0.0, points[0][1] / points[0][0]
    n = len(points)
    mk = sum(k for k, _ in points) / n
    mt = sum(t for _, t in points) / n
    var = sum((k - mk) ** 2 for k, _ in points)
    b = max(sum((k - mk) * (t - mt) for k, t in points) / var, 0.0) if var else mt / mk
    a = max(mt - b * mk, 0.0)
    return a, b


def project(results: dict, profile: str = "full", max_group_size: int | None = None) -> dict:
    """Projected wall time of every experiment's groups on this device.

    Group step time for K runs of the benchmarked default architecture is fitted as a + b·K
    from the measured engine sizes (evaluation schedule included); another architecture or
    batch size scales the per-run term b by its FLOP ratio to the default (the fixed
    per-step overhead a does not scale). Each group costs T · (a + b·K·ratio).
    """
    configs, source = protocol_configs(profile)
    fits = {}
    for model, res in results.items():
        pts = [(v["K"], v["group_step_s"]) for name, v in res["variants"].items()
               if name.startswith("engine K=")]
        base = RunConfig.from_dict(res["config"])
        fits[model] = (*_fit_line(pts), train_flops(base) + res["evals_per_step"] * eval_flops(base))
    out = {"source": source, "profile": profile, "experiments": {}, "total_s": 0.0,
           "total_steps": 0, "fit": {m: {"a_s": a, "b_s": b} for m, (a, b, _) in fits.items()}}
    for name, cfgs in configs.items():
        secs, steps, n_groups = 0.0, 0, 0
        for group in group_configs(cfgs, max_group_size):
            c = group[0]
            if c.model not in fits:
                continue
            a, b, base_flops = fits[c.model]
            ratio = (train_flops(c) + len(c.eval_steps()) / c.total_steps * eval_flops(c)) / base_flops
            secs += c.total_steps * (a + b * len(group) * ratio)
            steps += c.total_steps * len(group)
            n_groups += 1
        out["experiments"][name] = {"runs": len(cfgs), "groups": n_groups, "run_steps": steps,
                                    "projected_s": secs}
        out["total_s"] += secs
        out["total_steps"] += steps
    return out


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def _fmt_s(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.1f} s"


def table(report: dict) -> str:
    """The ratios table as text."""
    lines = []
    peak = report["peak_flops"]["fp32"]
    hdr = (f"{'model':5} {'variant':22} {'K':>3} {'update':>10} {'eval':>10} {'run-step':>10} "
           f"{'vs ref':>7} {'GFLOP/s':>8} {'%fp32pk':>7}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for model, res in report["results"].items():
        for name, v in res["variants"].items():
            sp = v["speedup_vs_reference"]
            lines.append(f"{model:5} {name:22} {v['K']:>3} {_fmt_s(v['update_s']):>10} "
                         f"{_fmt_s(v['eval_s']):>10} {_fmt_s(v['run_step_s']):>10} "
                         f"{(f'{sp:.2f}x' if sp else '-'):>7} {v['train_flops_per_s'] / 1e9:>8.1f} "
                         f"{100 * v['train_flops_per_s'] / peak:>6.1f}%")
    pk = report["peak_flops"]
    lines.append(f"matmul peak: fp32 {pk['fp32'] / 1e9:.0f} GFLOP/s"
                 + (f", bf16 {pk['bf16'] / 1e9:.0f} GFLOP/s" if pk.get("bf16") else "")
                 + f"  (threads {report['threads']}, device {report['device_name']})")
    if pk.get("bf16"):
        lines.append("fraction of bf16 peak (fp32 run): " + ", ".join(
            f"{m} {n} {100 * f:.1f}%" for m, r in report.get("fraction_of_bf16_peak", {}).items()
            for n, f in r.items() if n.startswith("engine")))
    e2e = report.get("end_to_end")
    if e2e:
        for m, r in e2e["models"].items():
            lines.append(f"end to end, {len(e2e['seeds'])} seeds x {e2e['steps']} steps, {m}: loop "
                         f"{r['loop_default_threads_s']:.1f} s ({e2e['cores']} threads) vs CLI "
                         f"{r['cli_default_workers_s']:.1f} s (default workers) = {r['speedup_default']:.2f}x; "
                         f"loop {r['loop_1_thread_s']:.1f} s (1 thread) vs CLI {r['cli_1_worker_s']:.1f} s "
                         f"(1 worker) = {r['speedup_1_thread']:.2f}x")
    gp = report.get("projection_gpu")
    if gp:
        lines.append(f"PROJECTION on a GPU ({GPU_PEAK['name']}), FLOPs / peak, a lower bound: full protocol "
                     f"{_fmt_s(gp['fp32']['projected_s'])} fp32, {_fmt_s(gp['bf16']['projected_s'])} bf16 "
                     f"({gp['fp32']['flops'] / 1e15:.1f} PFLOP)")
    for key in ("projection", "projection_quick"):
        pr = report.get(key)
        if pr:
            parts = ", ".join(f"{n} {_fmt_s(e['projected_s'])}" for n, e in pr["experiments"].items())
            lines.append(f"projected {pr['profile']} protocol ({pr['source']}): "
                         f"{_fmt_s(pr['total_s'])} for {pr['total_steps']:,} run-steps [{parts}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog=os.environ.get("MODARITH_BENCH_PROG"),  # as `python -m modarith bench`
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    ap.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    ap.add_argument("--tiny", action="store_true", help="seconds-long smoke mode (for tests)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (CPU; default: all)")
    ap.add_argument("--sizes", default=None, help="engine group sizes (default 1,2,8,18; +36 on GPU)")
    ap.add_argument("--models", default="gpt,lstm")
    ap.add_argument("--config", type=json.loads, default={}, metavar="JSON",
                    help='RunConfig fields over the workload, e.g. \'{"d_model": 64, "steps": 3000}\'')
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (median over them)")
    ap.add_argument("--steps", type=int, default=None, help="updates per timed round")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference loop")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd groups")
    ap.add_argument("--compile-mode", default="default",
                    help="comma-separated torch.compile modes for --compile (e.g. default,reduce-overhead)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="engine precision for the timed workloads (default fp32)")
    ap.add_argument("--no-projection", action="store_true")
    ap.add_argument("--vmap-sizes", default=None,
                    help="also time the engine without its fast path for these K (default 2; tiny: none)")
    ap.add_argument("--e2e-timeout", type=float, default=None, metavar="S",
                    help="end to end: a process running past S seconds counts as infinitely slow")
    ap.add_argument("--e2e-models", default=None, help="end to end: models (default --models)")
    ap.add_argument("--end-to-end", type=int, default=None, metavar="STEPS",
                    help="also time 2 seeds x STEPS updates: CLI (default workers, 1 worker) vs the loop "
                         "(all cores, 1 thread), each in a fresh process (default: 300; 0 = skip; tiny: 0)")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    dev = torch.device(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        base = dict(p=7, d_model=16, num_layers=1, num_heads=2)
        sizes = [1, 2]
        rounds, n_steps, mm = 1, 1, 256
    else:
        base = {}
        sizes = [1, 2, 8, 18] + ([36] if dev.type == "cuda" else [])
        rounds, n_steps, mm = 5, (3 if dev.type == "cpu" else 10), (2048 if dev.type == "cpu" else 8192)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    rounds = args.rounds or rounds
    n_steps = args.steps or n_steps
    vmap = args.vmap_sizes if args.vmap_sizes is not None else ("" if args.tiny else "2")  # "": none
    vmap_sizes = tuple(int(k) for k in vmap.split(",") if k)
    e2e_steps = args.end_to_end if args.end_to_end is not None else (0 if args.tiny else 300)

    def log(*a):
        print(*a, file=sys.stderr, flush=True)

    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "tiny": args.tiny, "rounds": rounds, "steps_per_round": n_steps, "sizes": sizes,
        "precision": args.precision,
    }
    log("matmul peak ...")
    report["peak_flops"] = {"fp32": matmul_peak(dev, torch.float32, mm, 3),
                            "bf16": matmul_peak(dev, torch.bfloat16, mm, 3)}
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    results = {}
    for model in args.models.split(","):
        cfg = RunConfig(**{"model": model, "precision": args.precision, **base, **args.config})
        log(f"{model}: building {len(sizes)} engine groups" + ("" if args.no_reference else " + reference"))
        results[model] = bench_model(cfg, sizes, device, rounds, n_steps,
                                     reference=not args.no_reference, log=log,
                                     vmap_sizes=vmap_sizes, compile_modes=tuple(args.compile_mode.split(",")) if args.compile else ())
    report["results"] = results
    # fraction of peak of the single-run engine step (the Exp-1 workload) and the best group
    pk = report["peak_flops"]["fp32"]
    report["fraction_of_fp32_peak"] = {
        m: {n: v["train_flops_per_s"] / pk for n, v in r["variants"].items()} for m, r in results.items()}
    pk16 = report["peak_flops"]["bf16"]
    if pk16:
        report["fraction_of_bf16_peak"] = {
            m: {n: v["train_flops_per_s"] / pk16 for n, v in r["variants"].items()} for m, r in results.items()}
    if e2e_steps:
        log(f"end to end: {len(SEEDS)} seeds x {e2e_steps} steps, CLI vs loop")
        report["end_to_end"] = bench_end_to_end((args.e2e_models or args.models).split(","), e2e_steps,
                                                SEEDS, device, log, timeout=args.e2e_timeout)
    if not args.no_projection:
        report["projection"] = project(results, "full")
        report["projection_gpu"] = {k: project_flops("full", GPU_PEAK[k]) for k in ("fp32", "bf16")}
        try:
            report["projection_quick"] = project(results, "quick")
        except Exception as e:
            report["projection_quick"] = None
            log(f"no quick-profile projection: {type(e).__name__}: {e}")
    text = table(report)
    print(text)
    report["table"] = text
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
