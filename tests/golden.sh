#!/bin/bash
# golden.sh — pass tests as IR text in, IR text out. Each
# tests/golden/PASS/NAME.nnir starts with a line "// RUN: ARGS" (the nncc
# flags, e.g. "--passes=canonicalize"); the expected stdout+stderr and exit
# code are in NAME.expected. NNCC_UPDATE_GOLDEN=1 rewrites the expectations.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
cd "$NNCC_SRC/tests/golden"
pass=0 fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for f in */*.nnir; do
  [ -e "$f" ] || continue
  args=$(sed -n '1s|^// RUN: ||p' "$f")
  exp="${f%.nnir}.expected"
  # shellcheck disable=SC2086
  { "$NNCC" "$f" --emit=ir $args 2>&1; echo "exit $?"; } >"$tmp"
  if [ "${NNCC_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp" "$exp"; fi
  if diff -u "$exp" "$tmp"; then pass=$((pass+1)); else echo "FAIL $f"; fail=$((fail+1)); fi
done
echo "golden: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
