#!/bin/bash
# run.sh — builds overhead.c and measures nncc_session_run's fixed cost on a
# traced 4-element add (1 and 2 threads).
#   bench/overhead/run.sh [--nncc build/nncc] [--runs N]
# Needs /usr/bin/python3 with torch (to trace the model) and a built nncc
# tree (libnncc_runtime.a next to the nncc binary, under runtime/).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
NNCC=$SRC/build/nncc
RUNS=1000000
while [ $# -gt 0 ]; do
  case $1 in
    --nncc) NNCC=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
BUILD=$(cd "$(dirname "$NNCC")" && pwd)
WORK=${NNCC_BENCH_DIR:-/tmp/nncc-bench}/overhead
mkdir -p "$WORK"
/usr/bin/python3 - "$WORK/add4.pt" <<'PY'
import sys, torch
class Add(torch.nn.Module):
    def forward(self, x, y):
        return x + y
torch.jit.trace(Add().eval(), (torch.zeros(4), torch.zeros(4))).save(sys.argv[1])
PY
"$NNCC" "$WORK/add4.pt" -o "$WORK/add4.so" --input x:f32[4] --input y:f32[4]
cc -O2 -std=gnu11 -I"$SRC/runtime/include" "$SRC/bench/overhead/overhead.c" \
   "$BUILD/runtime/libnncc_runtime.a" -ldl -lpthread -o "$WORK/overhead"
for t in 1 2; do "$WORK/overhead" "$WORK/add4.so" --runs "$RUNS" --threads "$t"; done
