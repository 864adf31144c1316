#!/usr/bin/env bash
# bench.sh - nncc against libtorch on one thread: resnet18, the seeds'
# ConvNet and the MLP at batch 1 / 4, timed interleaved in one run.
#
# Usage: bench/bench.sh [--nncc PATH] [--models a,b,...] [--runs N]
#                       [--rounds R] [--threads T]
#
# nncc is --nncc, else $NNCC, else build/nncc. The work folder (the
# libtorch timer, traced models, compiled .so files) is $NNCC_BENCH_DIR,
# default /tmp/nncc-bench. The timer (bench/libtorch_timer.cpp) is built
# against Debian's libtorch-dev; when its headers are missing this script
# installs the package with apt-get (large; root only). Not part of
# `make test`. See bench/README.md.
set -eu

src="$(cd "$(dirname "$0")/.." && pwd)"
work="${NNCC_BENCH_DIR:-${TMPDIR:-/tmp}/nncc-bench}"
nncc="${NNCC:-$src/build/nncc}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nncc) nncc="$2"; shift 2 ;;
    --models|--runs|--rounds|--threads) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ ! -x "$nncc" ]; then
  echo "bench.sh: error: no nncc at '$nncc' (build it or pass --nncc)" >&2
  exit 2
fi
nncc="$(cd "$(dirname "$nncc")" && pwd)/$(basename "$nncc")"

py=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import torch, torchvision, numpy' 2>/dev/null; then
    py="$cand"
    break
  fi
done
if [ -z "$py" ]; then
  echo "bench.sh: error: no python3 that imports torch, torchvision, numpy" >&2
  exit 1
fi

if [ ! -f /usr/include/torch/script.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing libtorch-dev (headers for the libtorch timer)"
    apt-get install -y libtorch-dev
  else
    echo "bench.sh: error: libtorch-dev is missing;" \
         "install it: sudo apt-get install libtorch-dev" >&2
    exit 1
  fi
fi

mkdir -p "$work"
timer="$work/libtorch_timer"
if [ ! -x "$timer" ] || [ "$src/bench/libtorch_timer.cpp" -nt "$timer" ]; then
  echo "building $timer"
  g++ -O2 -std=c++17 "$src/bench/libtorch_timer.cpp" \
      -I/usr/include/torch/csrc/api/include \
      -ltorch -ltorch_cpu -lc10 -o "$timer.tmp"
  mv "$timer.tmp" "$timer"
fi

exec "$py" "$src/bench/bench.py" --nncc "$nncc" --timer "$timer" \
     --work "$work" "${args[@]}"
