#!/usr/bin/env bash
# The full protocol on one GPU in one call (benchmarks/gpu_full.py): gpu_check, the plan,
# the experiments that fit the budget (the rest projected), the archives, all under $OUT.
# Sized for one 8-minute device call: the Python budget is 450 s and the whole script is cut at 480 s.
#   usage: benchmarks/gpu_full.sh [--workers N] [--compile auto|none|reduce-overhead] [--tiny]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_full_out}"; mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
timeout 480 "${PYTHON:-python}" benchmarks/gpu_full.py --out "$OUT" --budget-s 450 "$@" 2> >(tee "$OUT/gpu_full.log" >&2)
