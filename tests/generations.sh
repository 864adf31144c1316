#!/bin/bash
# generations.sh — the bundled example archive rewritten in the forms other
# PyTorch releases write (format versions 1-10, .data/version, op_version_set
# headers, classes all named Module, pre-1.7 op spellings, zip64 records):
# each must compile and compute exactly what the original computes. A
# big-endian archive and one with a negative version are refused. Needs python3 (stdlib) and numpy.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
py=""
for c in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$c" ] && "$c" -c "import numpy" 2>/dev/null && { py=$c; break; }
done
[ -n "$py" ] || { echo "skipped: no python3 with numpy"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" "$NNCC_SRC/tests/generations/make_generations.py" "$NNCC_SRC/examples/model_jit.pt" "$work" || exit 1
cp "$NNCC_SRC/examples/model_jit.pt" "$work/original.pt"
cd "$work" || exit 1
"$py" -c "import numpy as np; np.save('x.npy', np.random.RandomState(0).randn(1,1,28,28).astype(np.float32))"
flag='x:f32[1,1,28,28]'
"$NNCC" original.pt -o original.so --input "$flag" && "$NNCC" run original.so x.npy --out-dir out_original || exit 1
pass=0 fail=0
for v in v1 v2 v3 v4 v5 v6 v7 v8 v9 v10 v99 data_version op_version_set module_names old_spellings zip64; do
  if "$NNCC" "$v.pt" -o "$v.so" --input "$flag" && "$NNCC" run "$v.so" x.npy --out-dir "out_$v" &&
     "$py" - "$v" <<'PY'
import sys, numpy as np
v = sys.argv[1]
a = np.load("out_%s/output_0.npy" % v); b = np.load("out_original/output_0.npy")
err = float(np.abs(a - b).max())
sys.exit(0 if a.shape == b.shape and err <= 1e-6 * max(1.0, float(np.abs(b).max())) else 1)
PY
  then pass=$((pass+1)); echo "PASS $v"; else fail=$((fail+1)); echo "FAIL $v"; fi
done
"$NNCC" big_endian.pt -o be.so --input "$flag" 2>be.err
if [ $? = 1 ] && [ ! -e be.so ] && grep -qx "nncc: error: model_jit/byteorder: the archive's tensors are stored big-endian; nncc reads only little-endian archives" be.err; then
  pass=$((pass+1)); echo "PASS big_endian"; else fail=$((fail+1)); echo "FAIL big_endian"; cat be.err; fi
"$NNCC" bad_version.pt -o bv.so --input "$flag" 2>bv.err
if [ $? = 1 ] && [ ! -e bv.so ] && grep -qx "nncc: error: model_jit/version: the version entry is not a format version (a non-negative decimal number)" bv.err; then
  pass=$((pass+1)); echo "PASS bad_version"; else fail=$((fail+1)); echo "FAIL bad_version"; cat bv.err; fi
echo "generations: $pass passed, $fail failed"
[ "$fail" = 0 ]
