#!/usr/bin/env bash
# bench.sh - nncc against libtorch and ONNX Runtime (resnet18, resnet50,
# mobilenet_v2, the seeds' ConvNet, the BERT-style classifier at batch 1 x
# seq 8 and 8 x 128, an MLP, a tiny per-call-overhead model) at 1 and 2
# threads, and nncc's GEMM against OpenBLAS, all timed interleaved in one
# run; writes bench/RESULTS.md.
#
# Usage: bench/bench.sh [--nncc PATH] [--models a,b,...] [--gemm all|none|MxKxN,...]
#                       [--threads 1,2] [--runs N] [--rounds R] [--quick]
#                       [--results FILE|-]
#
# nncc is --nncc, else $NNCC, else build/nncc. The work folder (timers,
# onnxruntime-node, models, compiled .so files) is $NNCC_BENCH_DIR, default
# /tmp/nncc-bench. Builds what it lacks: the libtorch timer against
# Debian's libtorch-dev, the nncc timer against libnncc_runtime.a next to
# nncc, the OpenBLAS timer against libopenblas-dev (missing Debian packages
# are installed with apt-get when running as root), and onnxruntime-node
# with `npm install --ignore-scripts`. Not part of `make test`. See
# bench/README.md.
set -eu

src="$(cd "$(dirname "$0")/.." && pwd)"
work="${NNCC_BENCH_DIR:-${TMPDIR:-/tmp}/nncc-bench}"
nncc="${NNCC:-$src/build/nncc}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nncc) nncc="$2"; shift 2 ;;
    --models|--gemm|--runs|--rounds|--threads|--results)
      args+=("$1" "$2"); shift 2 ;;
    --quick) args+=("$1"); shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ ! -x "$nncc" ]; then
  echo "bench.sh: error: no nncc at '$nncc' (build it or pass --nncc)" >&2
  exit 2
fi
nncc="$(cd "$(dirname "$nncc")" && pwd)/$(basename "$nncc")"
case "$work" in
  "$src"|"$src"/*) echo "bench.sh: error: the work folder must be outside" \
                        "the repository" >&2; exit 2 ;;
esac

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

# need FILE PACKAGE...: installs the Debian packages when FILE is missing.
need() {
  local file="$1"; shift
  [ -e "$file" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null
  else
    echo "bench.sh: error: $* missing; install: sudo apt-get install $*" >&2
    exit 1
  fi
}
need /usr/include/torch/script.h libtorch-dev
need /usr/lib/x86_64-linux-gnu/pkgconfig/openblas.pc libopenblas-dev
command -v npm >/dev/null || need /usr/bin/npm nodejs npm

mkdir -p "$work"
# stale TARGET SOURCE...: true when TARGET is missing or older than a source.
stale() {
  local t="$1"; shift
  [ -x "$t" ] || return 0
  for s in "$@"; do [ "$s" -nt "$t" ] && return 0; done
  return 1
}

timer="$work/libtorch_timer"
if stale "$timer" "$src/bench/libtorch_timer.cpp"; then
  echo "building $timer"
  g++ -O2 -std=c++17 "$src/bench/libtorch_timer.cpp" \
      -I/usr/include/torch/csrc/api/include \
      -ltorch -ltorch_cpu -lc10 -o "$timer.tmp"
  mv "$timer.tmp" "$timer"
fi

gemm_timer="$work/gemm_timer"
if stale "$gemm_timer" "$src/bench/gemm_timer.c"; then
  echo "building $gemm_timer"
  cc -O2 -std=gnu11 "$src/bench/gemm_timer.c" \
     $(pkg-config --cflags --libs openblas) -o "$gemm_timer.tmp"
  mv "$gemm_timer.tmp" "$gemm_timer"
fi

# The nncc timer links the runtime library of the build nncc comes from;
# without it the benchmark falls back on `nncc run --bench`.
nncc_timer="$work/nncc_timer"
rtlib="$(dirname "$nncc")/runtime/libnncc_runtime.a"
timer_args=()
if [ -f "$rtlib" ]; then
  if stale "$nncc_timer" "$src/bench/nncc_timer.c" "$rtlib" \
           "$src/runtime/include/nncc.h"; then
    echo "building $nncc_timer"
    cc -O2 -std=gnu11 -I"$src/runtime/include" "$src/bench/nncc_timer.c" \
       "$rtlib" -ldl -lpthread -lm -o "$nncc_timer.tmp"
    mv "$nncc_timer.tmp" "$nncc_timer"
  fi
  timer_args+=(--nncc-timer "$nncc_timer")
else
  echo "bench.sh: warning: no $rtlib; timing nncc with 'nncc run --bench'" >&2
fi

ort="$work/ort"
if [ ! -f "$ort/node_modules/onnxruntime-node/package.json" ]; then
  echo "installing onnxruntime-node into $ort"
  mkdir -p "$ort"
  # --ignore-scripts: the install script only fetches GPU extras; the CPU
  # library ships in the package.
  (cd "$ort" && npm install --ignore-scripts --no-audit --no-fund \
                    onnxruntime-node >/dev/null)
fi

exec "$py" "$src/bench/bench.py" --nncc "$nncc" --timer "$timer" \
     --work "$work" --gemm-timer "$gemm_timer" \
     --ort-timer "$src/bench/ort_timer.js" --node "$(command -v node)" \
     --node-path "$ort/node_modules" "${timer_args[@]}" "${args[@]}"
