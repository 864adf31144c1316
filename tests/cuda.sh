#!/usr/bin/env bash
# cuda.sh - the CUDA backend's test (backends/cuda/, tests/cuda/).
#
# No GPU is needed for most of it:
#  1. emulation: every op case (tests/ops/make_ops.py) and the small zoo
#     models are emitted as CUDA C (--target cuda --emit=cuda), compiled as
#     host C++ against tests/cuda/cuda_emu.h, and every step's output is
#     compared with the reference interpreter's (--emit=cuda-emucheck):
#     within 1e-4 relative for fp32, 5e-3 relative to max(1,|ref|) for fp16;
#     in fp16 the GEMM op cases (linear_2d, mm, bmm) and the zoo models
#     (mlp, convnet, bert; resnet18 with NNCC_CUDA_FULL=1) must run every
#     GEMM on tensor cores (the summary's "gemm G (wmma G)");
#  2. NVRTC (skipped when NVRTC is absent): every zoo model, fp32 and fp16,
#     compiles to a cubin for each arch of CUDA_ARCHS (default 70 80 90;
#     70 is replaced by 75 when this NVRTC has no sm_70, as CUDA 13) and
#     PTX for the newest; each cubin must be a CUDA ELF of its arch with
#     one .text section per kernel of the source, and ptxas must accept the
#     PTX; in fp16, every GEMM of mlp, convnet, bert and resnet18 must be a
#     tensor-core GEMM and the PTX must have wmma.mma.sync (m16n16k16, f32
#     accumulation); one model is linked into a model.so;
#  3. NVRTC hidden (CUDA_HOME=/nowhere, LD_LIBRARY_PATH empty): --target
#     cuda must fail with exit 1, a message naming what's missing and where
#     it looked, and no OUT.so;
#  4. on a machine with a CUDA driver and GPU: the zoo .so files run with
#     `nncc run --device cuda` and match the zoo's PyTorch outputs; without
#     one, `nncc run --device cuda` must fail cleanly (exit 1, a message
#     about the driver) - never crash;
#  5. device-memory tensors (tests/cuda/device_io.c): refused by a CPU
#     model with the documented messages; on a GPU, a CUDA model run on
#     device memory matches its host-memory run bit for bit.
# Exits 77 when nothing could run (no C++ compiler and no NVRTC).
#
# Run by CTest with NNCC, NNCC_SRC, NNCC_BUILD, NNCC_PYTHON. By hand:
#   NNCC=build/nncc NNCC_BUILD=build bash tests/cuda.sh [emu|nvrtc|hidden|run|device]...
# Env: CUDA_TEST_JOBS (parallel cases, default nproc), CUDA_ARCHS,
# NNCC_CUDA_FULL=1 for every case (about 20 minutes on 2 cores). By default
# a sample keeps the test near two minutes: every third op case in fp32 and
# every sixth in fp16, convnet, mlp and bert in both precisions; NVRTC for
# convnet, mlp, bert and resnet18 in both precisions. (resnet18's fp16
# emulation alone takes about three minutes: full runs only.)
set -u
src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
build="${NNCC_BUILD:-${TMPDIR:-/tmp}}"
parts="${*:-emu nvrtc hidden run device}"
if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "cuda.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi
NNCC=$(cd "$(dirname "$NNCC")" && pwd)/$(basename "$NNCC")
export NNCC NNCC_SRC="$src"
work=$(mktemp -d "${TMPDIR:-/tmp}/nncc-cuda-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs="${CUDA_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}"
fails=0 passes=0 skips=0 ran=0
t_start=$(date +%s)

# torch (only to build the zoo and the op cases when they are missing)
py=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import torch, torchvision, numpy' 2>/dev/null; then py="$cand"; break; fi
done
zoo="$build/zoo"
if [ ! -f "$zoo/convnet.pt" ] && [ -n "$py" ]; then
  bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" >/dev/null || true
fi
ops="$build/ops"
if ! ls "$ops"/*.pt >/dev/null 2>&1; then
  ops="$build/cuda-ops"
  if ! ls "$ops"/*.pt >/dev/null 2>&1 && [ -n "$py" ]; then
    "$py" "$src/tests/ops/make_ops.py" "$ops" >/dev/null 2>&1 || true
  fi
fi

tally() { # reads case lines, prints them, counts
  while IFS= read -r line; do
    echo "  $line"
    case $line in
      PASS*) passes=$((passes + 1));;
      FAIL*) fails=$((fails + 1));;
      SKIP*) skips=$((skips + 1));;
    esac
  done
}

# ---- 1. emulation ---------------------------------------------------------------
CXX=""
for c in "${CXX_EMU:-}" g++ c++ clang++; do
  [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && { CXX=$c; break; }
done
export CXX
full="${NNCC_CUDA_FULL:-0}"
small_zoo="convnet mlp bert tensor_ops list_out losses shufflenet_v2_x0_5 mnasnet0_5 resnet18"
export CUDA_WMMA_CASES="linear_2d mm bmm mlp convnet bert resnet18"
# op cases always run (both precisions), whatever the sample: each kernel
# form of the emitter (cuda_emit.c) is hit by one of them - the row form of
# reductions (softmax, log_softmax, layer_norm, mean/sum/max over rows and
# over everything), float4 elementwise loops (add, relu, gelu) and tiled
# GEMMs (linear, mm, bmm), which in fp16 are tensor-core GEMMs: for the
# CUDA target the lowering keeps 16-bit GEMMs (the CPU target expands
# them into loops), and the emitter takes f16 ones to wmma.
always="softmax_last log_softmax_last layernorm_last layernorm_2dims mean_last mean_all
        sum_all max_all add relu gelu_erf linear_2d mm bmm"
always=$(echo $always)
[ "$full" = 1 ] || small_zoo="convnet mlp bert"
if [[ " $parts " == *" emu "* ]]; then
  if [ -z "$CXX" ]; then
    echo "emulation: skipped (no C++ compiler)"
  else
    t0=$(date +%s)
    list="$work/emu.list"
    : >"$list"
    k=0
    for pt in "$ops"/*.pt; do
      [ -f "$pt" ] || continue
      k=$((k + 1))
      for prec in fp32 fp16; do
        if [ "$full" = 1 ] || { [ $prec = fp32 ] && [ $((k % 3)) = 0 ]; } ||
           [ $((k % 6)) = 0 ] || [[ " $always " == *" $(basename "$pt" .pt) "* ]]; then
          echo "emu $pt ${pt%.pt}.json $prec $work" >>"$list"
        fi
      done
    done
    for m in $small_zoo; do
      [ -f "$zoo/$m.pt" ] || continue
      for prec in fp32 fp16; do echo "emu $zoo/$m.pt $zoo/$m.json $prec $work" >>"$list"; done
    done
    echo "emulation: $(wc -l <"$list") cases ($jobs at a time)"
    before_p=$passes before_f=$fails
    tally < <(xargs -P "$jobs" -L 1 bash "$src/tests/cuda/case.sh" <"$list" | sort -k2,3)
    echo "emulation: $((passes - before_p)) passed, $((fails - before_f)) failed in $(( $(date +%s) - t0 ))s"
    ran=1
  fi
fi

# ---- 2. NVRTC -------------------------------------------------------------------
have_nvrtc=0
probe="$zoo/mlp.pt"
[ -f "$probe" ] || probe=$(ls "$ops"/*.pt 2>/dev/null | head -1)
if [ -n "$probe" ]; then
  pflags=$(python3 -c 'import json, sys
print(" ".join("--input=" + i["flag"] for i in json.load(open(sys.argv[1]))["inputs"]))' "${probe%.pt}.json")
  mkdir -p "$work/probe"
  # shellcheck disable=SC2086
  if "$NNCC" "$probe" $pflags --target cuda --cuda-arch=sm_80 --emit=cuda-images \
       -o "$work/probe" >"$work/probe.log" 2>&1; then
    have_nvrtc=1
  elif ! grep -q "needs NVRTC" "$work/probe.log"; then
    echo "NVRTC probe failed:"; cat "$work/probe.log"; fails=$((fails + 1))
  fi
fi
archs="${CUDA_ARCHS:-70 80 90}"
if [ "$have_nvrtc" = 1 ] && [[ " $archs " == *" 70 "* ]]; then
  # shellcheck disable=SC2086
  if ! "$NNCC" "$probe" $pflags --target cuda --cuda-arch=sm_70 --emit=cuda-images \
       -o "$work/probe" >"$work/probe70.log" 2>&1; then
    if grep -Eq "^nncc: error: --cuda-arch sm_70: the NVRTC found \(CUDA [0-9]+\.[0-9]+\) can't compile for it; its lowest arch is sm_[0-9]+ \(it supports sm_[0-9]+ to sm_[0-9]+\)\. Older GPUs need an older CUDA toolkit \(set CUDA_HOME\)$" \
         "$work/probe70.log"; then
      echo "  PASS sm_70 refused: $(head -c 160 "$work/probe70.log")..."
      passes=$((passes + 1))
      echo "note: this NVRTC has no sm_70 (CUDA 13 dropped it); checking sm_75 instead"
      archs=$(echo " $archs " | sed 's/ 70 / 75 /')
    else
      echo "  FAIL sm_70 refused without the documented message: $(cat "$work/probe70.log")"
      fails=$((fails + 1))
    fi
  fi
fi
export CUDA_ARCHS="$archs"
PTXAS=""
for c in "${CUDA_HOME:-/usr/local/cuda}/bin/ptxas" /usr/local/cuda/bin/ptxas ptxas; do
  command -v "$c" >/dev/null 2>&1 && { PTXAS=$c; break; }
done
export PTXAS
if [[ " $parts " == *" nvrtc "* ]]; then
  if [ "$have_nvrtc" = 0 ]; then
    echo "nvrtc: skipped (NVRTC not found)"
  else
    t0=$(date +%s)
    list="$work/nvrtc.list"
    : >"$list"
    for pt in "$zoo"/*.pt; do
      [ -f "$pt" ] || continue
      case " convnet mlp bert resnet18 " in
        *" $(basename "$pt" .pt) "*) ;;
        *) [ "$full" = 1 ] || continue;;
      esac
      for prec in fp32 fp16; do echo "nvrtc $pt ${pt%.pt}.json $prec $work" >>"$list"; done
    done
    echo "nvrtc: $(wc -l <"$list") compiles for archs $archs${PTXAS:+, ptxas $PTXAS} ($jobs at a time)"
    before_p=$passes before_f=$fails
    tally < <(xargs -P "$jobs" -L 1 bash "$src/tests/cuda/case.sh" <"$list" | sort -k2,3)
    # one linked model.so
    if "$NNCC" "$zoo/convnet.pt" --input=x:f32[1,1,28,28] --target cuda -o "$work/convnet.so" \
         >"$work/link.log" 2>&1 && [ -f "$work/convnet.so" ]; then
      echo "  PASS link convnet model.so ($(stat -c %s "$work/convnet.so") bytes)"
      passes=$((passes + 1))
    else
      echo "  FAIL link convnet: $(head -c 300 "$work/link.log")"
      fails=$((fails + 1))
    fi
    echo "nvrtc: $((passes - before_p)) passed, $((fails - before_f)) failed in $(( $(date +%s) - t0 ))s"
    ran=1
  fi
fi

# ---- 3. NVRTC hidden ----------------------------------------------------------------
if [[ " $parts " == *" hidden "* ]] && [ -f "$zoo/convnet.pt" ]; then
  CUDA_HOME=/nowhere LD_LIBRARY_PATH="" "$NNCC" "$zoo/convnet.pt" --input=x:f32[1,1,28,28] \
    --target cuda -o "$work/hidden.so" >"$work/hidden.log" 2>&1
  rc=$?
  if [ "$rc" = 1 ] && grep -q "needs NVRTC.*CUDA_HOME=/nowhere.*LD_LIBRARY_PATH (empty)" "$work/hidden.log" &&
     [ ! -e "$work/hidden.so" ]; then
    echo "  PASS hidden: exit 1, $(head -c 120 "$work/hidden.log")..."
    passes=$((passes + 1))
  else
    echo "  FAIL hidden: exit $rc: $(cat "$work/hidden.log")"
    fails=$((fails + 1))
  fi
  ran=1
fi

# ---- 4. running ------------------------------------------------------------------------
if [[ " $parts " == *" run "* ]] && [ "$have_nvrtc" = 1 ] && [ -f "$zoo/convnet.pt" ]; then
  [ -f "$work/convnet.so" ] ||
    "$NNCC" "$zoo/convnet.pt" --input=x:f32[1,1,28,28] --target cuda -o "$work/convnet.so" >/dev/null 2>&1
  "$NNCC" run "$work/convnet.so" "$zoo/convnet.in0.npy" --device cuda --out-dir "$work/out" \
    >"$work/run.log" 2>&1
  rc=$?
  if grep -q "CUDA driver" "$work/run.log" && [ "$rc" = 1 ]; then
    echo "  PASS run without a GPU: exit 1, $(head -c 160 "$work/run.log")..."
    passes=$((passes + 1))
    echo "run on a GPU: skipped (no CUDA driver/GPU here)"
  elif [ "$rc" = 0 ] && [ -n "$py" ]; then
    # a GPU: every zoo model against PyTorch's outputs
    for pt in "$zoo"/*.pt; do
      m=$(basename "$pt" .pt)
      fl=$(python3 -c 'import json, sys
print(" ".join("--input=" + i["flag"] for i in json.load(open(sys.argv[1]))["inputs"]))' "$zoo/$m.json")
      ins=$(ls "$zoo/$m".in*.npy 2>/dev/null | sort -V)
      # shellcheck disable=SC2086
      if "$NNCC" "$pt" $fl --target cuda -o "$work/$m.so" >/dev/null 2>&1 &&
         "$NNCC" run "$work/$m.so" $ins --device cuda --out-dir "$work/out.$m" >/dev/null 2>&1 &&
         "$py" - "$zoo" "$m" "$work/out.$m" <<'PYEOF'
import glob, os, sys, numpy as np
zoo, m, out = sys.argv[1:]
refs = sorted(glob.glob(os.path.join(zoo, m + ".out*.npy")))
got = sorted(glob.glob(os.path.join(out, "*.npy")))
ok = len(refs) == len(got) and len(refs) > 0
for r, g in zip(refs, got):
    a, b = np.load(r).astype(np.float64), np.load(g).astype(np.float64)
    ok = ok and a.shape == b.shape and np.all(np.abs(a - b) <= 1e-3 * np.maximum(1, np.abs(a)))
sys.exit(0 if ok else 1)
PYEOF
      then echo "  PASS gpu $m"; passes=$((passes + 1))
      else echo "  FAIL gpu $m"; fails=$((fails + 1))
      fi
    done
  else
    echo "  FAIL run --device cuda: exit $rc: $(head -c 300 "$work/run.log")"
    fails=$((fails + 1))
  fi
  ran=1
fi

# ---- 5. device-memory tensors (NNCC_TENSOR_DEVICE) ---------------------------------
# tests/cuda/device_io.c against the runtime library: a CPU model refuses
# device tensors and unknown flag bits with the documented messages; on a
# GPU, a CUDA model run on device memory gives the host run's outputs.
rtlib="$build/runtime"
if [[ " $parts " == *" device "* ]] && [ -f "$zoo/mlp.pt" ] && [ -f "$rtlib/libnncc_runtime.so" ]; then
  dio="$work/device_io"
  if ! ${CC:-cc} -std=gnu11 -Wall -Wextra -Werror -I"$src/runtime/include" \
       "$src/tests/cuda/device_io.c" -o "$dio" -L"$rtlib" -lnncc_runtime -ldl \
       -Wl,-rpath,"$rtlib" >"$work/dio.log" 2>&1; then
    echo "  FAIL device_io does not build: $(head -c 300 "$work/dio.log")"
    fails=$((fails + 1))
  else
    mflags=$(python3 -c 'import json, sys
print(" ".join("--input=" + i["flag"] for i in json.load(open(sys.argv[1]))["inputs"]))' "$zoo/mlp.json")
    # shellcheck disable=SC2086
    "$NNCC" "$zoo/mlp.pt" $mflags -o "$work/mlp_cpu.so" >"$work/dio.log" 2>&1
    if "$dio" refuse "$work/mlp_cpu.so" >>"$work/dio.log" 2>&1; then
      echo "  PASS device tensors refused by a CPU model ($(grep -c '^ok' "$work/dio.log") checks)"
      passes=$((passes + 1))
    else
      echo "  FAIL device tensors on a CPU model:"; sed 's/^/    /' "$work/dio.log"
      fails=$((fails + 1))
    fi
    if [ "$have_nvrtc" = 1 ]; then
      # shellcheck disable=SC2086
      "$NNCC" "$zoo/mlp.pt" $mflags --target cuda -o "$work/mlp_cuda.so" >"$work/dio2.log" 2>&1
      "$dio" gpu "$work/mlp_cuda.so" >>"$work/dio2.log" 2>&1
      rc=$?
      if [ "$rc" = 77 ]; then echo "device memory on a GPU: skipped ($(tail -1 "$work/dio2.log"))"
      elif [ "$rc" = 0 ]; then echo "  PASS device memory on a GPU"; passes=$((passes + 1))
      else echo "  FAIL device memory on a GPU:"; sed 's/^/    /' "$work/dio2.log"; fails=$((fails + 1))
      fi
    fi
  fi
  ran=1
fi

echo "cuda: $passes passed, $fails failed, $skips skipped in $(( $(date +%s) - t_start ))s"
[ "$ran" = 1 ] || { echo "skipped: no C++ compiler and no NVRTC"; exit 77; }
[ "$fails" = 0 ]
