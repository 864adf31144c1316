#!/bin/bash
# runtime.sh — model.so artifacts, the runtime library and `nncc run`.
#
# Without the LLVM backend in the loop: tests/runtime/tiny_model.c stands in
# for the generated code; nncc_test_link_model links it through
# artifact_link into a model.so. Checks:
#   - two links (from different temporary directories) give identical bytes;
#   - the .so needs only libc/libm/libpthread/libdl and exports only
#     nncc_model_v1; its weights sit in a read-only section;
#   - examples/run_model loads and runs it;
#   - `nncc run` with .npy inputs writes outputs equal to NumPy's result,
#     --bench prints the documented line, bad use gives exit codes 1 and 2;
#   - 8 threads × 1000 runs, one session each, are bit-identical to one run.
# Env (set by CTest): NNCC NNCC_SRC NNCC_BUILD NNCC_PYTHON.
set -u
src=${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NNCC_BUILD:-$src/build}
nncc=${NNCC:-$build/nncc}
py=${NNCC_PYTHON:-/usr/bin/python3}
cc=${CC:-cc}
link="$build/tests/runtime/nncc_test_link_model"
conc="$build/tests/runtime/nncc_test_concurrency"
run_model="$build/run_model"
for t in "$link" "$conc" "$run_model"; do
  [ -x "$t" ] || { echo "runtime.sh: $t not built"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-runtime-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

$cc -O2 -fPIC -c "$src/tests/runtime/tiny_model.c" -o "$tmp/tiny.o" || { echo "no C compiler"; exit 77; }
mkdir -p "$tmp/t1" "$tmp/t2"
TMPDIR="$tmp/t1" "$link" "$tmp/model.so" "$tmp/tiny.o" "+64bit,+sse2,+cx8" x86-64 || fail "link"
TMPDIR="$tmp/t2" "$link" "$tmp/model2.so" "$tmp/tiny.o" "+64bit,+sse2,+cx8" x86-64 || fail "second link"
if cmp -s "$tmp/model.so" "$tmp/model2.so"; then pass "two links are byte-identical"
else fail "two links differ"; fi
[ -z "$(find "$tmp/t1" "$tmp/t2" -mindepth 1)" ] && pass "no temporary files left" || fail "temporary files left"

# Dependencies: nothing beyond the C library's parts.
needed=$(readelf -d "$tmp/model.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
bad=$(echo "$needed" | grep -v -E '^(libc|libm|libpthread|libdl)\.so\.[0-9]+$|^ld-linux.*\.so\.[0-9]+$|^$')
[ -z "$bad" ] && pass "NEEDED: $(echo $needed)" || fail "unexpected NEEDED libraries: $bad"
exported=$(nm -D --defined-only "$tmp/model.so" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$exported" = "nncc_model_v1 " ] && pass "exports only nncc_model_v1" || fail "exports: $exported"
# The weights blob is in a read-only (non-writable) section, 64-byte aligned.
wsec=$(readelf -S -W "$tmp/model.so" | grep -E ' \.rodata' | head -1)
readelf -s -W "$tmp/model.so" | awk '$8=="nncc_weights"{print $2}' | while read -r addr; do
  [ $((0x$addr % 64)) -eq 0 ] || echo "misaligned" > "$tmp/misaligned"
done
[ -n "$wsec" ] && [ ! -e "$tmp/misaligned" ] && pass "weights read-only and 64-byte aligned" \
  || fail "weights section: $wsec"

# The example application.
out=$("$run_model" "$tmp/model.so" 2>&1)
if echo "$out" | grep -q '^  input 0: x: f32\[64,256\]$' &&
   echo "$out" | grep -q '^  output 1: row_sum: f32\[64\]$' &&
   echo "$out" | grep -q '^top-5 of output_0:$'; then pass "run_model"
else fail "run_model printed:"; echo "$out"; fi

# Many sessions at once.
"$conc" "$tmp/model.so" 8 1000 && pass "concurrency" || fail "concurrency"

# `nncc run`.
if ! "$nncc" run --help 2>&1 | grep -q 'usage: nncc run'; then
  echo "note: this nncc has no 'run' subcommand yet; skipping its checks"
  [ $fails -eq 0 ] && exit 77 || exit 1
fi
if ! "$py" -c 'import numpy' 2> /dev/null; then
  echo "note: no numpy for $py; skipping the nncc run checks"
  [ $fails -eq 0 ] && exit 77 || exit 1
fi
"$py" - "$tmp" <<'PY' || fail "making inputs"
import sys, numpy as np
d = sys.argv[1]
x = ((np.arange(64 * 256).reshape(64, 256) * 37 % 101) / 50.0 - 1.0).astype(np.float32)
np.save(d + "/x.npy", x)
np.save(d + "/x64.npy", x.astype(np.float64))
np.save(d + "/small.npy", x[:3])
PY
"$nncc" run "$tmp/model.so" "$tmp/x.npy" --out-dir "$tmp/out" --threads 3 ||
  fail "nncc run"
"$nncc" run "$tmp/model.so" "x=$tmp/x.npy" --out-dir="$tmp/out1" --threads=1 ||
  fail "nncc run NAME=FILE"
"$py" - "$tmp" <<'PY' && pass "nncc run outputs match NumPy" || fail "nncc run outputs"
import sys, numpy as np, io
d = sys.argv[1]
x = np.load(d + "/x.npy")
w = ((np.arange(256) % 7 - 3) * 0.25).astype(np.float32)
s = x.sum(axis=1, dtype=np.float32)
y = np.load(d + "/out/output_0.npy"); r = np.load(d + "/out/row_sum.npy")
assert y.dtype == np.float32 and y.shape == (64, 256), (y.dtype, y.shape)
assert r.dtype == np.float32 and r.shape == (64,)
assert np.allclose(y, x * w + s[:, None], atol=1e-4), abs(y - (x * w + s[:, None])).max()
assert np.allclose(r, s, atol=1e-4)
# 1 and 3 threads agree bit for bit; the files are what np.save writes.
for name in ("output_0", "row_sum"):
    a = open(d + "/out/%s.npy" % name, "rb").read()
    assert a == open(d + "/out1/%s.npy" % name, "rb").read(), name
    b = io.BytesIO(); np.save(b, np.load(d + "/out/%s.npy" % name))
    assert a == b.getvalue(), name
PY
line=$("$nncc" run "$tmp/model.so" "$tmp/x.npy" --out-dir "$tmp/out2" --bench 5 --threads 2)
if echo "$line" | grep -Eq '^latency_ms min=[0-9]+\.[0-9]{3} median=[0-9]+\.[0-9]{3} max=[0-9]+\.[0-9]{3} runs=5 threads=2$'
then pass "bench line: $line"; else fail "bench line: '$line'"; fi

# Exit codes and messages.
expect() { # CODE MESSAGE-SUBSTRING ARGS...
  local code=$1 msg=$2; shift 2
  err=$("$nncc" run "$@" 2>&1 > /dev/null); rc=$?
  if [ $rc -eq "$code" ] && echo "$err" | grep -qF -- "$msg"; then pass "nncc run $* → $rc"
  else fail "nncc run $*: exit $rc, '$err' (want $code, '$msg')"; fi
}
expect 2 "nncc: error: no model given"
expect 2 "unknown option '--frobnicate'" "$tmp/model.so" --frobnicate
expect 2 "--bench: expected a positive run count, got 'x'" "$tmp/model.so" --bench x
expect 2 "input 0 ('x') not given (use x=FILE.npy)" "$tmp/model.so"
expect 2 "the model has no input named 'y' (inputs: x)" "$tmp/model.so" "y=$tmp/x.npy"
expect 2 "too many inputs (the model has 1)" "$tmp/model.so" "$tmp/x.npy" "$tmp/x.npy"
expect 2 "input 'x' given twice" "$tmp/model.so" "x=$tmp/x.npy" "x=$tmp/x.npy"
expect 1 "input 0 ('x'): dtype f64, the model expects f32[64,256]" "$tmp/model.so" "$tmp/x64.npy"
expect 1 "input 0 ('x'): dim 0 is 3, the model expects 64 (shape [64,256])" "$tmp/model.so" "$tmp/small.npy"
expect 1 "nncc: error: can't open '$tmp/nope.npy'" "$tmp/model.so" "$tmp/nope.npy"
expect 1 "can't load '$tmp/nope.so'" "$tmp/nope.so" "$tmp/x.npy"
expect 1 "can't load '$tmp/tiny.o'" "$tmp/tiny.o" "$tmp/x.npy"

# Symbolic dims through the public API (tests/runtime/symbolic.c): the
# zoo's MLP compiled with a ranged batch and at two fixed batches.
sym="$build/tests/runtime/nncc_test_symbolic"
if "$py" -c 'import torch, torchvision' 2> /dev/null && [ -x "$sym" ]; then
  zoo="${NNCC_BUILD:-${TMPDIR:-/tmp}}/zoo"
  bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" > /dev/null || fail "zoo"
  feat=$(sed -n 's/.*"flag": "input:f32\[4,\([0-9]*\)\]".*/\1/p' "$zoo/mlp.json")
  "$nncc" "$zoo/mlp.pt" -o "$tmp/mlp_b.so" --input "input:f32[b=1..16,$feat]" &&
    "$nncc" "$zoo/mlp.pt" -o "$tmp/mlp_3.so" --input "input:f32[3,$feat]" &&
    "$nncc" "$zoo/mlp.pt" -o "$tmp/mlp_7.so" --input "input:f32[7,$feat]" || fail "compiling mlp"
  "$sym" "$tmp/mlp_b.so" "$tmp/mlp_3.so" "$tmp/mlp_7.so" && pass "symbolic dims: API, plans, errors" \
    || fail "symbolic dims"
  out=$("$nncc" inspect "$tmp/mlp_b.so")
  if echo "$out" | grep -qx "  input 0: input: f32\[b,$feat\]" &&
     echo "$out" | grep -qx "  b: 1..16" &&
     echo "$out" | grep -qx "workspace (arena): planned per input shape"; then
    pass "inspect shows symbolic dims"
  else fail "inspect printed:"; echo "$out"; fi
  "$conc" "$tmp/mlp_b.so" 4 200 && pass "concurrency, symbolic model" || fail "concurrency, symbolic"
else
  echo "note: no torch for $py; skipping the symbolic-dims checks"
fi

[ $fails -eq 0 ] && { echo "runtime.sh: all passed"; exit 0; }
echo "runtime.sh: $fails failed"
exit 1
