#!/usr/bin/env bash
# One-call device check (issue 5): on a CUDA machine, in under 6 minutes,
#   (a) group == individual runs on the device (equality of histories),
#   (b) the bench table for groups up to 36 runs, eager and torch.compile'd (plain, and
#       mode=reduce-overhead = CUDA graphs), plus a bf16 row,
#   (c) the projected full-protocol wall time (inside the bench JSON / table).
# Everything is written under $OUT (default ./gpu_check_out).
#   usage: benchmarks/gpu_check.sh [--device cuda|cpu] [--tiny]
# `--device cpu --tiny` is the seconds-long CI form of the same script.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
TINY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY="--tiny"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
status=0
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/gpu_check.log"; }

log "device=$DEVICE tiny=${TINY:-no} python=$PY"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" \
  2>&1 | tee -a "$OUT/gpu_check.log"
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

# (a) group == individual on the device
log "(a) group == individual"
timeout 150 "$PY" - "$DEVICE" "${TINY:-full}" > "$OUT/equality.txt" 2>&1 <<'PYEOF'
import sys, torch
from modarith.config import RunConfig
from modarith.engine import train
device, mode = sys.argv[1], sys.argv[2]
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
if mode == "--tiny":
    tiny = dict(p=5, d_model=16, num_layers=1, num_heads=2, steps=8, eval_dense=2, eval_every=4)
else:
    tiny = dict(p=11, d_model=32, num_layers=2, num_heads=2, steps=60, eval_dense=10, eval_every=20)
worst = 0.0
for model in ("gpt", "lstm"):
    for bs in (512, 16):
        cfgs = [RunConfig(model=model, seed=s, lr=lr, weight_decay=wd, batch_size=bs, **tiny)
                for s, lr, wd in ((0, 1e-3, 1.0), (42, 3e-3, 0.25), (7, 2e-3, 0.5))]
        together = train(cfgs, results=None, device=device, progress=False)
        for c, rec in zip(cfgs, together):
            alone = train([c], results=None, device=device, progress=False)[0]
            keys = ("train_loss", "val_loss", "train_acc", "val_acc", "param_norm")
            a = torch.tensor([rec.history[k] for k in keys])
            b = torch.tensor([alone.history[k] for k in keys])
            err = ((a - b).abs() / (b.abs() + 1e-3)).max().item()
            worst = max(worst, err)
            print(f"{model} B={bs} seed={c.seed}: max rel diff {err:.2e}")
print(f"worst relative difference {worst:.2e}")
print("OK" if worst < 1e-3 else "FAIL")
PYEOF
cat "$OUT/equality.txt"
tail -1 "$OUT/equality.txt" | grep -q '^OK$' || status=1

# (b)+(c) the bench: eager groups up to 36 (+ reference loop, projection)
if [ -n "$TINY" ]; then
  log "(b) bench, tiny"
  timeout 120 "$PY" benchmarks/bench.py --device "$DEVICE" --tiny --json "$OUT/bench.json" \
    2>>"$OUT/gpu_check.log" | tee "$OUT/bench.txt" || status=1
  if [ -n "${GPU_CHECK_COMPILE:-}" ]; then  # CPU inductor needs minutes of C++ builds
    timeout 300 "$PY" benchmarks/bench.py --device "$DEVICE" --tiny --no-reference --sizes 2 \
      --compile --no-projection --json "$OUT/bench_compile.json" 2>>"$OUT/gpu_check.log" \
      | tee "$OUT/bench_compile.txt" || status=1
  fi
else
  log "(b) bench eager, sizes 1,2,8,18,36"
  timeout 150 "$PY" benchmarks/bench.py --device "$DEVICE" --sizes 1,2,8,18,36 --json "$OUT/bench.json" \
    2>>"$OUT/gpu_check.log" | tee "$OUT/bench.txt" || status=1
  log "(b) bench torch.compile (default, then reduce-overhead = CUDA graphs), sizes 8,36"
  timeout 150 "$PY" benchmarks/bench.py --device "$DEVICE" --sizes 8,36 --no-reference --compile \
    --compile-mode default,reduce-overhead --no-projection --rounds 3 --json "$OUT/bench_compile.json" \
    2>>"$OUT/gpu_check.log" | tee "$OUT/bench_compile.txt" || status=1
  log "(b) bench bf16 autocast, size 36"
  timeout 60 "$PY" benchmarks/bench.py --device "$DEVICE" --sizes 36 --no-reference --precision bf16 \
    --no-projection --rounds 3 --json "$OUT/bench_bf16.json" \
    2>>"$OUT/gpu_check.log" | tee "$OUT/bench_bf16.txt" || status=1
fi
log "done, status $status; files in $OUT"
exit $status
