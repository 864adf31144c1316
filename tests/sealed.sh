#!/bin/bash
# sealed.sh — a model.so fails safe: checked before it is loaded, described
# without being run, and hard to misuse through the API.
#
#   - the compiler writes a sealed file (size note + integrity trailer,
#     abi.h "seal.c") and the seal verifies with every hash code path
#     (NNCC_SEAL_HASH=portable / sse2 / the default);
#   - `nncc run` and `nncc inspect` on a truncated, padded or bit-flipped
#     file: exit 1 and the exact message, no signal;
#   - nncc_test_loader_fuzz: truncations at every 4 KiB boundary and at
#     random offsets, bit flips, byte swaps and appended bytes over the
#     example compiled for the CPU (static and symbolic) and for CUDA (when
#     NVRTC can compile here): every damaged file refused by both
#     nncc_model_open and nncc_model_describe; and the describe reader fed
#     hostile structure with the checksum off, and unsealed files: no crash;
#   - `strace -f nncc inspect OUT.so` shows no executable mapping of the
#     file and no dlopen of it, while `nncc run` (the control) shows one;
#   - nncc_test_misuse: one session from two threads, outputs aliasing
#     inputs, wrong output buffers, a workspace refused under RLIMIT_AS,
#     closing a model before its sessions, sessions of a described model.
# Env (set by CTest): NNCC NNCC_SRC NNCC_BUILD.
set -u
src=${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NNCC_BUILD:-$src/build}
nncc=${NNCC:-$build/nncc}
fuzz="$build/tests/runtime/nncc_test_loader_fuzz"
misuse="$build/tests/runtime/nncc_test_misuse"
for t in "$nncc" "$fuzz" "$misuse"; do
  [ -x "$t" ] || { echo "sealed.sh: $t not built"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-sealed-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }
asan=0
if nm -an "$nncc" 2> /dev/null | grep -q __asan_init; then asan=1; fi
n=${NNCC_LOADER_FUZZ_N:-$([ "$asan" = 1 ] && echo 30 || echo 100)}

ex="$src/examples/model_jit.pt"
"$nncc" "$ex" -o "$tmp/static.so" --input 'x:f32[64,1,28,28]' || { echo "compile failed"; exit 1; }
"$nncc" "$ex" -o "$tmp/sym.so" || { echo "compile failed"; exit 1; }
size=$(stat -c %s "$tmp/static.so")

# ---- the seal -----------------------------------------------------------------
if [ "$(tail -c 64 "$tmp/static.so" | head -c 8)" = NNCCSEAL ]; then
  pass "the compiled file ends with its seal"
else
  fail "no seal at the end of static.so"
fi
if readelf -nW "$tmp/static.so" 2> /dev/null | grep -q "NNCC "; then
  off=$(readelf -lW "$tmp/static.so" | awk '$1 == "NOTE" { print $2 }' | head -1)
  [ -n "$off" ] && [ $((off)) -lt 4096 ] && pass "the size note is in the first page (offset $off)" ||
    fail "the size note is at offset '$off'"
fi
for impl in portable sse2 ""; do
  if NNCC_SEAL_HASH=$impl "$nncc" inspect "$tmp/static.so" > /dev/null 2> "$tmp/err"; then
    pass "the seal verifies with the ${impl:-default} hash path"
  else
    fail "NNCC_SEAL_HASH=$impl: $(cat "$tmp/err")"
  fi
done

# ---- damaged files through the command line ----------------------------------------
expect() { # WANT_RC WANT_MSG CMD...
  local rc msg=$2 want=$1
  shift 2
  "$@" > /dev/null 2> "$tmp/err"
  rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$msg" "$tmp/err"; then
    pass "exit $rc: $msg"
  else
    fail "$*: exit $rc, '$(head -c 300 "$tmp/err")' (want $want, '$msg')"
  fi
}
for cut in 1024 20480 100000 $((size / 2)) $((size - 1)); do
  head -c "$cut" "$tmp/static.so" > "$tmp/cut.so"
  expect 1 "nncc: error: can't load '$tmp/cut.so': truncated (expected $size bytes, found $cut)" \
    "$nncc" run "$tmp/cut.so"
  expect 1 "nncc: error: can't load '$tmp/cut.so': truncated (expected $size bytes, found $cut)" \
    "$nncc" inspect "$tmp/cut.so"
done
cp "$tmp/static.so" "$tmp/flip.so"
printf '\x5a\x5a\x5a\x5a' | dd of="$tmp/flip.so" bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null
cmp -s "$tmp/flip.so" "$tmp/static.so" && fail "the flip changed nothing"
expect 1 "can't load '$tmp/flip.so': corrupted (its contents don't match the checksum nncc recorded when it wrote the file)" \
  "$nncc" run "$tmp/flip.so"
expect 1 "can't load '$tmp/flip.so': corrupted" "$nncc" inspect "$tmp/flip.so"
# the opt-out skips the checksum, not the structure
cat "$tmp/static.so" "$tmp/static.so" > "$tmp/twice.so"
expect 1 "can't load '$tmp/twice.so': corrupted (its integrity record says $size bytes, found $((2 * size)))" \
  "$nncc" run "$tmp/twice.so"
printf 'not an elf' > "$tmp/text.so"
expect 1 "can't load '$tmp/text.so': not a shared object (no ELF header)" "$nncc" inspect "$tmp/text.so"
: > "$tmp/empty.so"
expect 1 "can't load '$tmp/empty.so': the file is empty" "$nncc" run "$tmp/empty.so"

# ---- the corpus ---------------------------------------------------------------------
models=("$tmp/static.so" "$tmp/sym.so")
if "$nncc" "$ex" -o "$tmp/cuda.so" --input 'x:f32[64,1,28,28]' --target cuda > "$tmp/cuda.log" 2>&1; then
  models+=("$tmp/cuda.so")
else
  echo "note: no CUDA model in the corpus (nncc --target cuda: $(head -1 "$tmp/cuda.log"))"
fi
if "$fuzz" -n "$n" "${models[@]}" > "$tmp/fuzz.log" 2>&1; then
  sed "s|$tmp/||g; s/^/  /" "$tmp/fuzz.log"
  pass "loader fuzz"
else
  fail "loader fuzz (exit $?):"
  tail -30 "$tmp/fuzz.log"
fi

# ---- describing never maps the file executable --------------------------------------
if command -v strace > /dev/null && strace -f -o /dev/null true 2> /dev/null; then
  # Every fd that names the model (opened by path or as /proc/self/fd/N),
  # and every executable mapping of one of them.
  exec_maps() { # LOG MODEL
    awk -v m="$2" '
      /openat\(/ && (index($0, "\"" m "\"") || /"\/proc\/self\/fd\/[0-9]+"/) {
        if (match($0, /= [0-9]+$/)) fd[substr($0, RSTART + 2)] = 1 }
      /close\([0-9]+\)/ { if (match($0, /close\([0-9]+/)) delete fd[substr($0, RSTART + 6, RLENGTH - 6)] }
      /mmap\(.*PROT_EXEC/ { n = split($0, a, ", "); if (a[5] in fd) c++ }
      END { print c + 0 }' "$1"
  }
  strace -f -e trace=openat,mmap,close -o "$tmp/inspect.strace" "$nncc" inspect "$tmp/static.so" > /dev/null 2>&1
    # (no inputs: it loads the model, then stops with a usage error)
  strace -f -e trace=openat,mmap,close -o "$tmp/run.strace" "$nncc" run "$tmp/static.so" > /dev/null 2>&1
  ni=$(exec_maps "$tmp/inspect.strace" "$tmp/static.so")
  nr=$(exec_maps "$tmp/run.strace" "$tmp/static.so")
  if [ "$ni" = 0 ] && [ "$nr" -gt 0 ] && ! grep -q '"/proc/self/fd/' "$tmp/inspect.strace"; then
    pass "strace: nncc inspect maps the file executable 0 times (nncc run: $nr)"
  else
    fail "strace: nncc inspect made $ni executable mappings of the file (nncc run: $nr)"
  fi
else
  echo "note: no usable strace; the no-PROT_EXEC check is skipped"
fi

# ---- misuse of the API ------------------------------------------------------------------
if "$misuse" "$tmp/static.so" "$tmp/sym.so" > "$tmp/misuse.log" 2>&1; then
  pass "API misuse: $(tr '\n' ';' < "$tmp/misuse.log")"
else
  fail "API misuse:"
  cat "$tmp/misuse.log"
fi

echo "sealed.sh: $fails failure(s)"
[ "$fails" = 0 ]
