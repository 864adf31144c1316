#!/bin/bash
# fuzz.sh — runs the standalone fuzz drivers (tests/fuzz/fuzz_*.c built with
# NNCC_FUZZ_STANDALONE) over seed files and deterministic mutations of them.
# Seeds: the bundled example archive, its pickles and code files, the golden
# IR files, the real archives in ../shared/fixtures/real when present, and
# the example compiled to model.so files (fuzz_modelso).
# Under the ASan+UBSan build any memory error fails the run.
set -u
: "${NNCC_BUILD:?}" "${NNCC_SRC:?}"
N=${NNCC_FUZZ_RUNS:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/zip" "$work/pkl" "$work/py" "$work/ir" "$work/json"
cp "$NNCC_SRC/examples/model_jit.pt" "$work/zip/"
real=${NNCC_FIXTURES_REAL:-}
if [ -n "$real" ] && [ -d "$real" ]; then
  cp "$real"/*.pt "$work/zip/" 2>/dev/null
  cp "$real"/*.bin "$work/pkl/" 2>/dev/null
fi
# Pull pickles and code out of every seed archive (python's zipfile: no torch needed).
python3 - "$work" <<'PY'
import sys, zipfile, glob, os
work = sys.argv[1]
for i, path in enumerate(sorted(glob.glob(os.path.join(work, "zip", "*")))):
    try:
        z = zipfile.ZipFile(path)
    except Exception:
        continue
    for n in z.namelist():
        base = "%d_%s" % (i, n.replace("/", "_"))
        if n.endswith(".pkl") or n.endswith(".debug_pkl"):
            open(os.path.join(work, "pkl", base), "wb").write(z.read(n))
        elif n.endswith(".py"):
            open(os.path.join(work, "py", base), "wb").write(z.read(n))
        elif n.endswith("model.json"):
            open(os.path.join(work, "json", base), "wb").write(z.read(n))
PY
cp "$NNCC_SRC"/tests/golden/*/*.nnir "$work/ir/"
pass=0 fail=0
run() { # TARGET DIR
  local bin="$NNCC_BUILD/tests/$1"
  if [ ! -x "$bin" ]; then echo "FAIL $1: not built"; fail=$((fail+1)); return; fi
  if "$bin" -n "$N" "$2"/* >"$work/$1.log" 2>&1; then
    pass=$((pass+1)); echo "PASS $1 ($(ls "$2" | wc -l) seeds x $N mutations)"
  else
    fail=$((fail+1)); echo "FAIL $1"; tail -40 "$work/$1.log"
  fi
}
run fuzz_archive "$work/zip"
run fuzz_pickle "$work/pkl"
run fuzz_tsparse "$work/py"
run fuzz_irparse "$work/ir"
run fuzz_import "$work/zip"
if ls "$work/json"/* >/dev/null 2>&1; then run fuzz_modeljson "$work/json"; fi
# compiled models: the example, static and symbolic
mkdir -p "$work/so"
if "$NNCC_BUILD/nncc" "$NNCC_SRC/examples/model_jit.pt" -o "$work/so/static.so" --input 'x:f32[1,1,28,28]' &&
   "$NNCC_BUILD/nncc" "$NNCC_SRC/examples/model_jit.pt" -o "$work/so/sym.so"; then
  run fuzz_modelso "$work/so"
else
  fail=$((fail+1)); echo "FAIL fuzz_modelso: compiling the seeds failed"
fi
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
