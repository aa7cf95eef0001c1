#!/usr/bin/env bash
# One-call device check: correctness with per-quantity tolerances, steps/s for
# K = 1, 2, 18 (eager and CUDA graphs), the projected full-protocol time; JSON written as it
# goes (benchmarks/gpu_check.py). Fits one 8-minute call: the Python budget is 450 s and
# the whole script is cut at 470 s.
#   usage: benchmarks/gpu_check.sh [--device cuda|cpu] [--tiny] [--install]
# `--device cpu --tiny` is the seconds-long CI form of the same script. Output under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
timeout 470 "$PY" benchmarks/gpu_check.py --out "$OUT" --budget-s 450 "$@" 2> >(tee "$OUT/gpu_check.log" >&2)
