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
check legacy_model_json tch-rs_foo_legacy_2019.pt --emit=ir
check pytorch1_container torch-js_test_model_PYTORCH1_2018-11.pt --emit=ir
check torchsave_stream pickle-jl_linear_state_torchsave-legacy_2020.bin --emit=ir
check torchsave_zip mlverse_state_dict_torchsave-zip_2020.pth --emit=ir
echo "real: $pass passed, $fail failed"
[ "$fail" = 0 ]
