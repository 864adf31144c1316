#!/bin/bash
# control.sh — scripted models with loops and ifs: static control flow is
# unrolled/folded and matches PyTorch; data-dependent control flow is
# refused with a located error (tests/control/data_dependent.expected).
set -u
: "${NNCC:?}" "${NNCC_SRC:?}" "${NNCC_BUILD:?}"
. "$NNCC_SRC/tests/lib/python.sh"
need_python torch numpy
dir="$NNCC_BUILD/control"
"$py" "$NNCC_SRC/tests/control/make_control.py" "$dir" || exit 1
cd "$dir" || exit 1
pass=0 fail=0
for name in row_product while_break blocks; do
  flags=$("$py" -c "import json; print(' '.join('--input ' + f for f in json.load(open('control.json'))['$name']))")
  # shellcheck disable=SC2086
  if "$NNCC" "$name.pt" -o "$name.so" $flags && "$NNCC" run "$name.so" "$name.in0.npy" --out-dir "out_$name" &&
     "$py" - "$name" <<'PY'
import sys, numpy as np
n = sys.argv[1]
a = np.load("out_%s/output_0.npy" % n); b = np.load("%s.out0.npy" % n)
err = float(np.abs(a - b).max()); tol = 1e-4 * max(1.0, float(np.abs(b).max()))
print("%s: max error %.3g (tolerance %.3g)" % (n, err, tol))
sys.exit(0 if a.shape == b.shape and err <= tol else 1)
PY
  then pass=$((pass+1)); echo "PASS $name"; else fail=$((fail+1)); echo "FAIL $name"; fi
done
# Data-dependent control flow: the exact located error.
"$NNCC" data_dependent.pt -o dd.so --input 'x:f32[2,2]' >/dev/null 2>dd.err
rc=$?
# (the note names the generator script where this checkout has it)
{ echo "exit $rc"; sed "s|$NNCC_SRC/|SRC/|" dd.err; } >dd.actual
[ "${NNCC_UPDATE_GOLDEN:-0}" = 1 ] && cp dd.actual "$NNCC_SRC/tests/control/data_dependent.expected"
if diff -u "$NNCC_SRC/tests/control/data_dependent.expected" dd.actual && [ ! -e dd.so ]; then
  pass=$((pass+1)); echo "PASS data_dependent"; else fail=$((fail+1)); echo "FAIL data_dependent"; fi
echo "control: $pass passed, $fail failed"
[ "$fail" = 0 ]
