#!/bin/bash
# load.sh - what the integrity check of nncc_model_open costs.
#
#   bench/load.sh [--nncc build/nncc] [--models resnet50,resnet18] [--rounds N]
#
# Compiles each model (the benchmark's, bench/make_models.py, in
# $NNCC_BENCH_DIR, default /tmp/nncc-bench) with the nncc given, builds
# bench/load_timer.c against the runtime library of the same build, and
# prints, per model, the median times of nncc_model_open with the checksum
# and without (NNCC_OPEN_NO_VERIFY), alone and with a session and the first
# run, with the file in the page cache (warm) and evicted from it (cold).
# The ratio column is checked / unchecked. Say which CPU gave the figures:
# the script prints it.
set -eu
src="$(cd "$(dirname "$0")/.." && pwd)"
work="${NNCC_BENCH_DIR:-${TMPDIR:-/tmp}/nncc-bench}"
nncc="${NNCC:-$src/build/nncc}"
models=resnet50
rounds=7
while [ $# -gt 0 ]; do
  case "$1" in
    --nncc) nncc="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "load.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$nncc" ] || { echo "load.sh: error: no nncc at '$nncc'" >&2; exit 2; }
build="$(cd "$(dirname "$nncc")" && pwd)"
lib="$build/runtime/libnncc_runtime.a"
[ -f "$lib" ] || { echo "load.sh: error: no $lib" >&2; exit 2; }
py=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$cand" ] && "$cand" -c 'import torch, torchvision' 2> /dev/null && { py=$cand; break; }
done
[ -n "$py" ] || { echo "load.sh: error: no python3 that imports torch and torchvision" >&2; exit 1; }
mkdir -p "$work/models" "$work/load"
cc -O2 -o "$work/load/load_timer" "$src/bench/load_timer.c" -I"$src/runtime/include" "$lib" \
  -ldl -lpthread
echo "cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
IFS=, read -r -a names <<< "$models"
for m in "${names[@]}"; do
  "$py" "$src/bench/make_models.py" "$work/models" "$m" > /dev/null
  flag=$("$py" -c 'import json,sys; print(" ".join("--input=" + i["flag"] for i in json.load(open(sys.argv[1]))["inputs"]))' "$work/models/$m.json")
  # shellcheck disable=SC2086
  "$nncc" "$work/models/$m.pt" -o "$work/load/$m.so" $flag
  echo "== $m: $(stat -c %s "$work/load/$m.so") bytes, $rounds rounds"
  "$work/load/load_timer" "$work/load/$m.so" "$rounds"
done
