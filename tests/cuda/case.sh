#!/usr/bin/env bash
# case.sh - one case of tests/cuda.sh, run in parallel by xargs:
#   case.sh emu MODEL.pt JSON PRECISION WORKDIR    emulation check
#   case.sh nvrtc MODEL.pt JSON PRECISION WORKDIR  NVRTC + cubin/PTX checks
# Prints one line "PASS|FAIL|SKIP <kind> <name> <precision> <detail>";
# details of a failure go to WORKDIR/<name>.<precision>.<kind>.log. Needs
# NNCC, NNCC_SRC, CXX, CUDA_ARCHS (e.g. "75 80 90"), PTXAS (or empty), and
# optionally CUDA_WMMA_CASES: names whose fp16 build must run every GEMM on
# tensor cores (the emulation's summary must count "gemm G (wmma G)" with
# G > 0; the NVRTC case must find tensor-core GEMMs in the source and
# wmma.mma.sync in the PTX).
# The NVRTC case also checks that the PTX keeps the kernel forms: 128-bit
# accesses for float4 loops, warp shuffles for row reductions, mma for
# tensor-core GEMMs.
set -u
kind=$1 pt=$2 json=$3 prec=$4 work=$5
name=$(basename "$pt" .pt)
tag="$name.$prec.$kind"
log="$work/$tag.log"
flags=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join("--input=" + i["flag"] for i in d["inputs"] if "flag" in i))' "$json" 2>/dev/null)
case $prec in fp32) pflag=;; *) pflag="--precision=$prec";; esac
t0=$(date +%s.%N)
want_tc=0
[ "$prec" = fp16 ] && [[ " ${CUDA_WMMA_CASES:-} " == *" $name "* ]] && want_tc=1
elapsed() { python3 -c "import sys; print('%.1fs' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)"; }

if [ "$kind" = emu ]; then
  # shellcheck disable=SC2086
  if ! "$NNCC" "$pt" $flags $pflag --target cuda --emit=cuda -o "$work/$tag.cu" >"$log" 2>&1; then
    if grep -q "not supported\|no code generation\|can't be compiled" "$log"; then
      echo "SKIP emu $name $prec (the CPU backend can't compile it either)"
    else
      echo "FAIL emu $name $prec (emit: $(head -c 200 "$log" | tr '\n' ' '))"
    fi
    exit 0
  fi
  if ! $CXX -std=c++17 -O1 -fPIC -shared -ffp-contract=off -fwrapv -w \
       -include "$NNCC_SRC/tests/cuda/cuda_emu.h" -x c++ "$work/$tag.cu" \
       -x c++ "$NNCC_SRC/tests/cuda/cuda_emu.cc" -o "$work/$tag.so" >>"$log" 2>&1; then
    echo "FAIL emu $name $prec (the generated CUDA C does not compile as host C++)"
    exit 0
  fi
  # shellcheck disable=SC2086
  if out=$("$NNCC" "$pt" $flags $pflag --target cuda --emit=cuda-emucheck \
           --cuda-emu-lib "$work/$tag.so" 2>>"$log"); then
    if [ "$want_tc" = 1 ]; then
      # "gemm G (wmma W)": every GEMM of the model on tensor cores
      g=$(echo "$out" | sed -n 's/.* gemm \([0-9]*\) (wmma \([0-9]*\)).*/\1 \2/p' | tail -1)
      if [ -z "$g" ] || [ "${g% *}" = 0 ] || [ "${g% *}" != "${g#* }" ]; then
        echo "$out" >>"$log"
        echo "FAIL emu $name $prec not every GEMM on tensor cores: $(echo "$out" | tail -1)"
        exit 0
      fi
    fi
    echo "PASS emu $name $prec $(elapsed) ${out#emucheck: }"
    rm -f "$work/$tag.so" "$work/$tag.cu" "$log"
  else
    echo "$out" >>"$log"
    echo "FAIL emu $name $prec $(echo "$out" | tail -1)"
  fi
  exit 0
fi

# nvrtc: one compile for every arch, then check each image
dir="$work/$tag.d"
mkdir -p "$dir"
archs=$(for a in $CUDA_ARCHS; do printf 'sm_%s,' "$a"; done)
# shellcheck disable=SC2086
if ! "$NNCC" "$pt" $flags $pflag --target cuda --emit=cuda -o "$dir/model.cu" >"$log" 2>&1 ||
   ! "$NNCC" "$pt" $flags $pflag --target cuda --cuda-arch="${archs%,}" --emit=cuda-images \
       -o "$dir" >>"$log" 2>&1; then
  if grep -q "not supported" "$log"; then
    echo "SKIP nvrtc $name $prec (not supported by the backends)"
  else
    echo "FAIL nvrtc $name $prec ($(grep -m1 error "$log" | head -c 300))"
  fi
  exit 0
fi
want=$(grep -c '^extern "C" __global__' "$dir/model.cu")
bad=""
newest=""
for a in $CUDA_ARCHS; do
  c="$dir/sm_$a.cubin"
  newest=$a
  hdr=$(readelf -h "$c" 2>/dev/null)
  echo "$hdr" | grep -q "NVIDIA CUDA" || { bad="$bad sm_$a:not-a-cuda-elf"; continue; }
  flags_hex=$(echo "$hdr" | awk '/Flags:/ {print $2}')
  got_arch=$(( (flags_hex >> 8) & 0xff ))
  [ "$got_arch" = "$a" ] || bad="$bad sm_$a:elf-arch-$got_arch"
  have=$(readelf -SW "$c" 2>/dev/null | grep -c ' \.text\.nncc_')
  [ "$have" = "$want" ] || bad="$bad sm_$a:$have-of-$want-kernels"
done
# the forms must survive into the PTX: float4 loops as 128-bit accesses,
# reductions as warp shuffles, tensor-core GEMMs as mma instructions
ptx="$dir/compute_$newest.ptx"
if grep -q ', float4 \*/$' "$dir/model.cu"; then
  grep -Eq '(ld|st)\.global(\.nc)?\.v4\.(f32|b32|u32)' "$ptx" || bad="$bad no-128-bit-access"
fi
if grep -q 'a block per row' "$dir/model.cu"; then
  grep -q 'shfl\.sync\.bfly' "$ptx" || bad="$bad no-shfl.sync.bfly"
fi
if grep -q 'tensor-core GEMM' "$dir/model.cu"; then
  grep -Eq 'wmma\.mma\.sync|mma\.sync' "$ptx" || bad="$bad no-mma.sync"
fi
ntc=$(grep -c 'tensor-core GEMM (wmma) \*/$' "$dir/model.cu")
ngemm=$(grep -c ': tiled GEMM' "$dir/model.cu")
if [ "$want_tc" = 1 ]; then
  [ "$ntc" -gt 0 ] && [ "$ntc" = "$ngemm" ] || bad="$bad $ntc-of-$ngemm-gemms-on-tensor-cores"
  grep -q 'wmma\.mma\.sync\.aligned\.row\.row\.m16n16k16\.f32\.f32' "$ptx" ||
    bad="$bad no-wmma.mma.sync.m16n16k16.f32.f32"
fi
if [ -n "$PTXAS" ]; then
  "$PTXAS" -arch="sm_$newest" "$dir/compute_$newest.ptx" -o "$dir/ptxas.cubin" >>"$log" 2>&1 ||
    bad="$bad ptxas-sm_$newest"
fi
if [ -z "$bad" ]; then
  echo "PASS nvrtc $name $prec $(elapsed) $want kernels ($ntc on tensor cores), archs $CUDA_ARCHS + PTX compute_$newest"
  rm -rf "$dir" "$log"
else
  echo "FAIL nvrtc $name $prec:$bad"
fi
