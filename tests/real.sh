#!/bin/bash
# real.sh — archives written by real PyTorch releases (1.0 to 1.6, kept in
# ../shared/fixtures/real): what nncc makes of each, compared with
# tests/real/CASE.expected (exit code, stdout, stderr). Skips when the
# fixtures are absent. NNCC_UPDATE_GOLDEN=1 rewrites the expectations.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
dir=${NNCC_FIXTURES_REAL:-}
if [ -z "$dir" ] || [ ! -d "$dir" ]; then echo "skipped: no real fixtures"; exit 77; fi
cd "$dir" || exit 1
pass=0 fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
check() { # NAME ARGS...
  local name=$1; shift
  local exp="$NNCC_SRC/tests/real/$name.expected"
  { "$NNCC" "$@" 2>&1; echo "exit $?"; } >"$tmp"
  if [ "${NNCC_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp" "$exp"; fi
  if diff -u "$exp" "$tmp"; then pass=$((pass+1)); else echo "FAIL $name"; fail=$((fail+1)); fi
}
# PyTorch 1.4, format version 1, six-element persistent ids, every class
# named Module, old addmm(b, x, t(w), beta=1, alpha=1) spelling of Linear.
check linreg_import xta0_linreg_v1_2020.pt --emit=ir --stop-after=import --print-loc
check linreg_shapes xta0_linreg_v1_2020.pt --emit=ir --input 'input:f32[4,1]'
check linreg_inspect inspect xta0_linreg_v1_2020.pt
# PyTorch 1.3: a float scalar input next to a tensor.
check javademo_shapes java-demo_demo-model_v1_2019-11.pt --emit=ir --input 'data:f32[3,5]' --input incr:float
check javademo_inspect inspect java-demo_demo-model_v1_2019-11.pt
# Refused with a clear message: non-tensor inputs, no forward, other formats.
check foo4_tuple_input tch-rs_foo4_v1_2019-12.pt --emit=ir
check foo5_list_input tch-rs_foo5_v1_2019-12.pt --emit=ir
check gotch_no_forward gotch_file_v2_cpp-save_2020.pt --emit=ir
check gotch_inspect inspect gotch_file_v2_cpp-save_2020.pt
# Legacy archives (model.json, PyTorch 1.0-1.2): the raw lowering, inspect,
# and (below) a compile and run checked against what each model computes.
for f in ocaml-torch_foo ocaml-torch_foo2 ocaml-torch_foo3; do
  check "legacy_${f#ocaml-torch_}_ocaml_import" "${f}_legacy_2019-01.pt" --emit=ir --stop-after=import --print-loc
  check "legacy_${f#ocaml-torch_}_ocaml_inspect" inspect "${f}_legacy_2019-01.pt"
done
# The scripted loop unrolls once x's shape is known.
check legacy_foo3_ocaml_shapes ocaml-torch_foo3_legacy_2019-01.pt --emit=ir --input 'x:f32[3,4]'
check legacy_foo3_tch_shapes tch-rs_foo3_legacy_2019.pt --emit=ir --input 'x:f32[3,4]'
for f in tch-rs_foo tch-rs_foo1 tch-rs_foo2 tch-rs_foo3; do
  check "legacy_${f#tch-rs_}_tch_import" "${f}_legacy_2019.pt" --emit=ir --stop-after=import --print-loc
  check "legacy_${f#tch-rs_}_tch_inspect" inspect "${f}_legacy_2019.pt"
done
check pytorch1_container torch-js_test_model_PYTORCH1_2018-11.pt --emit=ir
check torchsave_stream pickle-jl_linear_state_torchsave-legacy_2020.bin --emit=ir
check torchsave_zip mlverse_state_dict_torchsave-zip_2020.pth --emit=ir

# Compile a legacy fixture to a .so, run it on small inputs and compare the
# outputs with numpy's value of what the fixtures README says it computes.
# Needs a python3 with numpy; without one these checks are skipped.
# XFAIL lists models expected to fail for a stated reason: a failure there
# does not count, a pass says "XPASS" (take it off the list).
XFAIL="" # names of run_check cases, space-separated
npy=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import numpy' 2>/dev/null; then npy=$cand; break; fi
done
work=$(mktemp -d)
trap 'rm -f "$tmp"; rm -rf "$work"' EXIT
run_check() { # NAME FILE SHAPE EXPR: inputs x (and y) of SHAPE, outputs = EXPR
  local name=$1 file=$2 shape=$3 expr=$4 w="$work/$1" why=""
  mkdir -p "$w/out"
  "$npy" - "$w" "$shape" <<'PY' || { echo "FAIL $name: could not write inputs"; fail=$((fail+1)); return; }
import sys, numpy as np
w, shape = sys.argv[1], tuple(int(s) for s in sys.argv[2].split(","))
n = int(np.prod(shape))
np.save(w + "/x.npy", (np.arange(n, dtype=np.float32) * 0.37 - 1.1).reshape(shape))
np.save(w + "/y.npy", (np.cos(np.arange(n, dtype=np.float32)) * 1.5).astype(np.float32).reshape(shape))
PY
  local ins=("$w/x.npy") flags=(--input "x:f32[$shape]")
  case $expr in *y*) ins+=("$w/y.npy"); flags+=(--input "y:f32[$shape]") ;; esac
  if ! "$NNCC" "$file" -o "$w/m.so" "${flags[@]}" >"$w/log" 2>&1; then
    why="compile: $(tail -n 3 "$w/log" | tr '\n' ' ')"
  elif ! "$NNCC" run "$w/m.so" "${ins[@]}" --out-dir "$w/out" >"$w/log" 2>&1; then
    why="run: $(tail -n 3 "$w/log" | tr '\n' ' ')"
  else
    why=$("$npy" - "$w" "$expr" <<'PY'
import glob, sys, numpy as np
w, expr = sys.argv[1], sys.argv[2]
x = np.load(w + "/x.npy")
y = np.load(w + "/y.npy")
ref = eval(expr)
ref = ref if isinstance(ref, tuple) else (ref,)
got = sorted(glob.glob(w + "/out/output_*.npy"))
if len(got) != len(ref):
  print("%d outputs, expected %d" % (len(got), len(ref)))
for j, (r, g) in enumerate(zip(ref, got)):
  g = np.load(g)
  if g.shape != r.shape or g.dtype != r.dtype:
    print("output_%d is %s%s, expected %s%s" % (j, g.dtype, list(g.shape), r.dtype, list(r.shape)))
  elif np.max(np.abs(g - r), initial=0) > 1e-5 * max(1, np.max(np.abs(r), initial=0)):
    print("output_%d differs: %s, expected %s" % (j, g.tolist(), r.tolist()))
PY
)
  fi
  local xf=0
  case " $XFAIL " in *" $name "*) xf=1 ;; esac
  if [ -z "$why" ]; then
    pass=$((pass+1))
    if [ $xf = 1 ]; then echo "XPASS $name (take it off XFAIL)"; fi
  elif [ $xf = 1 ]; then
    echo "XFAIL $name: $why"
  else
    echo "FAIL $name: $why"; fail=$((fail+1))
  fi
}
if [ -n "$npy" ]; then
  run_check foo_ocaml ocaml-torch_foo_legacy_2019-01.pt 2,3 'x * 2 + y'
  run_check foo2_ocaml ocaml-torch_foo2_legacy_2019-01.pt 2,3 '(x * 2 + y, x - y)'
  run_check foo3_ocaml ocaml-torch_foo3_legacy_2019-01.pt 3,4 'np.prod(x, axis=0)'
  run_check foo_tch tch-rs_foo_legacy_2019.pt 2,3 '2 * x + y + np.float32(42)'
  run_check foo1_tch tch-rs_foo1_legacy_2019.pt 2,3 '2 * x + y'
  run_check foo2_tch tch-rs_foo2_legacy_2019.pt 2,3 '(2 * x + y, x - y)'
  run_check foo3_tch tch-rs_foo3_legacy_2019.pt 3,4 'np.prod(x, axis=0)'
else
  echo "legacy compile-and-run checks skipped: no python3 with numpy"
fi

# The new-format fixtures, run against PyTorch itself (torch 1.13 loads
# these 1.3/1.4 archives): inputs are written by the script, the reference
# is torch.jit.load(FILE)(*inputs).
tpy=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
  [ -n "$cand" ] && "$cand" -c 'import torch, numpy' 2>/dev/null && { tpy=$cand; break; }
done
torch_check() { # NAME FILE INPUTS (python list of numpy arrays / floats) FLAGS...
  local name=$1 file=$2 inputs=$3 w="$work/$1"; shift 3
  mkdir -p "$w/out"
  "$tpy" - "$w" "$file" "$inputs" <<'PY' || { echo "FAIL $name: reference"; fail=$((fail+1)); return; }
import sys, numpy as np, torch
w, f, spec = sys.argv[1], sys.argv[2], sys.argv[3]
ins = eval(spec, {"np": np})
args = []
for i, a in enumerate(ins):
    np.save("%s/in%d.npy" % (w, i), np.asarray(a))
    args.append(torch.from_numpy(a) if isinstance(a, np.ndarray) else float(a))
out = torch.jit.load(f)(*args)
np.save(w + "/ref.npy", out.detach().numpy())
PY
  local files=("$w"/in*.npy)
  if "$NNCC" "$file" -o "$w/m.so" "$@" >"$w/log" 2>&1 &&
     "$NNCC" run "$w/m.so" "${files[@]}" --out-dir "$w/out" >>"$w/log" 2>&1 &&
     "$tpy" - "$w" <<'PY'
import sys, numpy as np
w = sys.argv[1]
a, b = np.load(w + "/out/output_0.npy"), np.load(w + "/ref.npy")
sys.exit(0 if a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * max(1, np.abs(b).max()) else 1)
PY
  then pass=$((pass+1)); else echo "FAIL $name"; cat "$w/log"; fail=$((fail+1)); fi
}
if [ -n "$tpy" ]; then
  torch_check linreg_run xta0_linreg_v1_2020.pt \
    '[np.linspace(-2, 2, 8, dtype=np.float32).reshape(8, 1)]' --input 'input:f32[8,1]'
  torch_check javademo_run java-demo_demo-model_v1_2019-11.pt \
    '[np.arange(15, dtype=np.float32).reshape(3, 5) * 0.5, np.float64(1.25)]' \
    --input 'data:f32[3,5]' --input incr:float
else
  echo "new-format run checks skipped: no python3 with torch"
fi
echo "real: $pass passed, $fail failed"
[ "$fail" = 0 ]
