#!/bin/bash
# schemas.sh — checks frontend/schemas.def against the schemas registered by
# the local torch (tests/check_schemas.py), then checks that the checker
# itself rejects broken rows, and that the table compiles as the X-macro the
# lowering includes. Needs a python3 that imports torch; exits 77 (skipped)
# when there is none.
#
# Environment: NNCC_SRC (repo root, default: this script's parent folder),
# NNCC_PYTHON (a python3 to try first; may lack torch).

set -u
src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
checker="$src/tests/check_schemas.py"
ops="$src/ir/ops.def"
table="$src/frontend/schemas.def"

. "$src/tests/lib/python.sh"
need_python torch

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0

# 1. The real table.
if ! "$py" "$checker" "$table" "$ops" --coverage; then
  echo "FAIL: schemas.def does not match the local torch"
  fails=$((fails + 1))
fi

# 2. The checker rejects each broken row with a message naming the fault.
# expect_fail NAME MESSAGE ROW: a one-row table must fail and print MESSAGE.
expect_fail() {
  local name="$1" want="$2" row="$3" out
  printf '%s\n' "$row" > "$tmp/$name.def"
  out="$("$py" "$checker" "$tmp/$name.def" "$ops" 2>&1)"
  if [ $? -eq 0 ]; then
    echo "FAIL: checker accepted $name: $row"
    fails=$((fails + 1))
  elif ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: $name: expected \"$want\" in:"
    echo "$out"
    fails=$((fails + 1))
  elif [ "$(tail -n 1 <<<"$out")" != "schemas: 0 passed, 1 failed" ]; then
    echo "FAIL: $name: wrong summary line: $(tail -n 1 <<<"$out")"
    fails=$((fails + 1))
  fi
}
conv='Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=1, int[2] padding=0, int[2] dilation=1'
convmap='input weight bias stride padding dilation transposed=False output_padding=[0] groups'
expect_fail default "groups: default 2, torch has 1" \
  "SCHEMA(\"aten::conv2d\", CONVOLUTION, \"$conv, int groups=2\", \"$convmap\")"
expect_fail kwonly "alpha: keyword-only False, torch says True" \
  'SCHEMA("aten::add", ADD, "Tensor self, Tensor other, Scalar alpha=1", "self other alpha")'
expect_fail argname "argument 1 is 'weights', torch has 'weight'" \
  'SCHEMA("aten::linear", LINEAR, "Tensor input, Tensor weights, Tensor? bias=None", "input weights bias")'
expect_fail type "bias: type 'Tensor', torch has 'Tensor?'" \
  'SCHEMA("aten::linear", LINEAR, "Tensor input, Tensor weight, Tensor bias=None", "input weight bias")'
expect_fail count "mapping has 2 items, LINEAR takes 3 operands" \
  'SCHEMA("aten::linear", LINEAR, "Tensor input, Tensor weight, Tensor? bias=None", "input weight")'
expect_fail unknown "item 'bias2' names no argument" \
  'SCHEMA("aten::linear", LINEAR, "Tensor input, Tensor weight, Tensor? bias=None", "input weight bias2")'
expect_fail label "operand 6 of CONVOLUTION is transposed" \
  "SCHEMA(\"aten::conv2d\", CONVOLUTION, \"$conv, int groups=1\", \"input weight bias stride padding dilation flipped=False output_padding=[0] groups\")"
expect_fail literal "is not a supported literal" \
  'SCHEMA("aten::squeeze", SQUEEZE, "Tensor(a) self", "self dim=nothing")'
expect_fail noop "op NOSUCH is not in ops.def" \
  'SCHEMA("aten::relu", NOSUCH, "Tensor self", "self")'
expect_fail noname "torch registers no op named aten::no_such_op" \
  'SCHEMA("aten::no_such_op", RELU, "Tensor self", "self")'
expect_fail legacy "not in LEGACY_ALLOWLIST" \
  '/* legacy: made up for this test */
SCHEMA("aten::no_such_op", RELU, "Tensor self", "self")'
expect_fail syntax "not a SCHEMA row or comment" \
  'SCHEMA("aten::relu", RELU, "Tensor self" "self")'
printf '%s\n' 'SCHEMA("aten::neg", SCALAR_NEG, "int a", "a")' \
  'SCHEMA("aten::neg", NEG, "Tensor self", "self")' > "$tmp/order.def"
out="$("$py" "$checker" "$tmp/order.def" "$ops" 2>&1)"
if [ $? -eq 0 ] || ! grep -qF "tensor overload after the scalar overload at line 1" <<<"$out"; then
  echo "FAIL: checker accepted a scalar overload before a tensor one:"
  echo "$out"
  fails=$((fails + 1))
fi

# A legacy row whose name torch still registers passes without the
# signature comparison (here: gelu as printed before approximate existed).
printf '%s\n' '/* legacy: gelu before 1.12 had only self */' \
  'SCHEMA("aten::gelu", GELU, "Tensor self", "self approximate=\"none\"")' \
  > "$tmp/legacy_ok.def"
out="$("$py" "$checker" "$tmp/legacy_ok.def" "$ops" 2>&1)"
if [ $? -ne 0 ] || [ "$(tail -n 1 <<<"$out")" != "schemas: 1 passed, 0 failed" ]; then
  echo "FAIL: legacy row rejected:"
  echo "$out"
  fails=$((fails + 1))
fi

# 3. The table compiles as the X-macro the lowering uses, and every op
# names an ops.def row.
cc="$(command -v cc || command -v gcc || true)"
if [ -n "$cc" ]; then
  cat > "$tmp/xmacro.c" <<EOF
#include <stdio.h>
enum {
#define OP(id, name, nin, nout, fusion, flags, shape, lower, doc) NN_OP_##id,
#include "$ops"
#undef OP
  NN_OP_COUNT_
};
static const struct { const char *q; int op; const char *sig, *map; } rows[] = {
#define SCHEMA(q, op, sig, map) { q, NN_OP_##op, sig, map },
#include "$table"
#undef SCHEMA
};
int main(void) {
  printf("%d\n", (int)(sizeof rows / sizeof rows[0]));
  return 0;
}
EOF
  if ! "$cc" -std=c11 -Wall -Werror -o "$tmp/xmacro" "$tmp/xmacro.c" 2>"$tmp/cc.err"; then
    echo "FAIL: schemas.def does not compile as an X-macro:"
    cat "$tmp/cc.err"
    fails=$((fails + 1))
  else
    n="$("$tmp/xmacro")"
    want="$(grep -c '^SCHEMA(' "$table")"
    if [ "$n" != "$want" ]; then
      echo "FAIL: the compiled table has $n rows, the file $want"
      fails=$((fails + 1))
    fi
  fi
fi

if [ "$fails" -ne 0 ]; then
  echo "schemas.sh: $fails check(s) failed"
  exit 1
fi
echo "schemas.sh: all checks passed"
