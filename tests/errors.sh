#!/bin/bash
# errors.sh — bad input gives a located "nncc: error:" message, exit code 1,
# no crash and no output file; where the archive has debug info, a note names
# the user's own file and line. -Wall remarks are checked here too. Each
# case's expected stderr and exit code are in tests/errors/CASE.expected
# (first line "exit N"); NNCC_UPDATE_GOLDEN=1 rewrites them.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
py=python3
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" "$NNCC_SRC/tests/errors/make_cases.py" "$NNCC_SRC/examples/model_jit.pt" "$work" || exit 1
cp "$NNCC_SRC/examples/model_jit.pt" "$work/model.pt"
cd "$work"
pass=0 fail=0
check() { # NAME ARGS...
  local name=$1; shift
  local exp="$NNCC_SRC/tests/errors/$name.expected"
  "$NNCC" "$@" -o out.nnir >stdout.txt 2>stderr.txt
  local rc=$?
  { echo "exit $rc"; cat stderr.txt; } >actual.txt
  if [ -e out.nnir ] && [ "$rc" != 0 ]; then echo "FAIL $name: output file left behind"; fail=$((fail+1)); rm -f out.nnir; return; fi
  rm -f out.nnir
  if [ "${NNCC_UPDATE_GOLDEN:-0}" = 1 ]; then cp actual.txt "$exp"; fi
  if diff -u "$exp" actual.txt >diff.txt 2>&1; then pass=$((pass+1)); echo "PASS $name";
  else fail=$((fail+1)); echo "FAIL $name"; cat diff.txt; fi
}
check not_zip not_zip.pt --emit=ir --input 'x:f32[1,1,28,28]'
check truncated truncated.pt --emit=ir --input 'x:f32[1,1,28,28]'
check evil_global evil_global.pt --emit=ir --input 'x:f32[1,1,28,28]'
check syntax_error syntax_error.pt --emit=ir --input 'x:f32[1,1,28,28]'
check unsupported_ops unsupported_ops.pt --emit=ir --input 'x:f32[1,1,28,28]'
check near_miss near_miss.pt --emit=ir --input 'x:f32[1,1,28,28]'
check bad_debug_pkl bad_debug_pkl.pt --emit=ir --input 'x:f32[1,1,28,28]'
check no_debug_pkl no_debug_pkl.pt --emit=ir --input 'x:f32[1,1,28,28]'
check inplace_remark inplace.pt --emit=ir --input 'x:f32[1,1,28,28]' -Wall -Werror
check inplace_quiet inplace.pt --emit=ir --input 'x:f32[1,1,28,28]' -Werror
check weights_only weights_only.pt --emit=ir --input 'x:f32[1,1,28,28]'
check missing_storage missing_storage.pt --emit=ir --input 'x:f32[1,1,28,28]'
check missing_file no_such_file.pt --emit=ir
check cannot_infer cannot_infer.pt --emit=ir
check bad_input_flag model.pt --emit=ir --input 'x:f99[1]'
check unknown_input model.pt --emit=ir --input 'x:f32[1,1,28,28]' --input 'y:f32[1]'
check bad_shape model.pt --emit=ir --input 'x:f32[1,1,27,28]'
check huge_input model.pt -o m.so --input 'x:f32[4611686018427387904,1,28,28]'
check stop_before_shapes model.pt -o m.so --stop-after=canonicalize
check unknown_option model.pt --frobnicate
echo "errors: $pass passed, $fail failed"
[ "$fail" = 0 ]
