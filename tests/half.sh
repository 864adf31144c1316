#!/bin/bash
# half.sh — traced models converted with .half() / .to(torch.bfloat16):
# they import, compile (computed in f32 on the CPU), and match PyTorch's
# result for the same half-rounded weights and input.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}" "${NNCC_BUILD:?}"
. "$NNCC_SRC/tests/lib/python.sh"
need_python torch torchvision numpy
dir="$NNCC_BUILD/half"
"$py" "$NNCC_SRC/tests/half/make_half.py" "$dir" || exit 1
cd "$dir" || exit 1
pass=0 fail=0
for name in net_f16 net_bf16 resnet18_f16 resnet18_bf16; do
  flag=$("$py" -c "import json; print(json.load(open('half.json'))['$name'])")
  if "$NNCC" "$name.pt" -o "$name.so" --input "$flag" 2>"$name.err" &&
     grep -q "computes this model in f32" "$name.err" &&
     "$NNCC" run "$name.so" "$name.in0.npy" --out-dir "out_$name" &&
     "$py" - "$name" <<'PY'
import sys, numpy as np
n = sys.argv[1]
a = np.load("out_%s/output_0.npy" % n); b = np.load("%s.out0.npy" % n)
err = float(np.abs(a - b).max()); tol = 1e-4 * max(1.0, float(np.abs(b).max()))
print("%s: max error %.3g (tolerance %.3g)" % (n, err, tol))
sys.exit(0 if a.shape == b.shape and err <= tol else 1)
PY
  then pass=$((pass+1)); echo "PASS $name"; else fail=$((fail+1)); echo "FAIL $name"; cat "$name.err"; fi
done
echo "half: $pass passed, $fail failed"
[ "$fail" = 0 ]
