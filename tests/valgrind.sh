#!/bin/bash
# valgrind.sh — memcheck on a compile and on runs of compiled models.
#
#   - `nncc MODEL.pt -o M.so` for the bundled example (the frontend,
#     passes, LLVM code generation and the link) with no error and no leak;
#   - `nncc run` of that model built without --input (symbolic dims: bind,
#     plan, run) and of resnet18 when the zoo is there, both compiled for
#     --mcpu=haswell (valgrind's CPU has no AVX-512), with 2 threads.
# Skipped (77) without valgrind, and under the sanitizer build (valgrind
# and ASan don't mix). Env (set by CTest): NNCC NNCC_SRC NNCC_BUILD.
set -u
src=${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NNCC_BUILD:-$src/build}
nncc=${NNCC:-$build/nncc}
command -v valgrind > /dev/null || { echo "skipped: no valgrind"; exit 77; }
if nm -D "$nncc" 2> /dev/null | grep -q __asan_init; then
  echo "skipped: $nncc is built with AddressSanitizer"; exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-valgrind-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
vg() { # NAME ARGS...: memcheck must find no error and no leak
  local name=$1; shift
  if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       "$@" > "$tmp/out.txt" 2>&1; then
    echo "ok: $name"
  else
    echo "FAIL: $name"; sed -n '1,40p' "$tmp/out.txt"; fails=$((fails + 1))
  fi
}
model="$src/examples/model_jit.pt"
vg "compile the example" "$nncc" "$model" -o "$tmp/m.so" --input 'x:f32[1,1,28,28]'
"$nncc" "$model" -o "$tmp/any.so" --mcpu=haswell || { echo "FAIL: compile"; exit 1; }
vg "run the example with symbolic dims" "$build/run_model" "$tmp/any.so" B=3 H=28 W=28
zoo="$build/zoo"
if [ -f "$zoo/resnet18.pt" ] && [ -f "$zoo/resnet18.in0.npy" ]; then
  flag=$(sed -n 's/.*"flag": "\(x:f32\[[0-9,]*\]\)".*/\1/p' "$zoo/resnet18.json")
  "$nncc" "$zoo/resnet18.pt" -o "$tmp/r18.so" --input "$flag" --mcpu=haswell ||
    { echo "FAIL: compile resnet18"; exit 1; }
  vg "run resnet18, 2 threads" "$nncc" run "$tmp/r18.so" "$zoo/resnet18.in0.npy" --threads 2 \
     --out-dir "$tmp/out"
else
  echo "note: no zoo at $zoo; resnet18 not run"
fi
[ $fails -eq 0 ] && { echo "valgrind.sh: all passed"; exit 0; }
echo "valgrind.sh: $fails failed"; exit 1
