#!/usr/bin/env bash
# ops.sh - the single-op test: every case of tests/ops/make_ops.py is
# compiled by nncc into a .so, run with `nncc run` and compared with
# PyTorch's outputs (tests/ops/check_ops.py; see tests/ops/README.md).
#
# Run by CTest with NNCC (the nncc binary), NNCC_SRC (the repository),
# NNCC_BUILD (the build folder) and NNCC_PYTHON (a python3 that may lack
# torch). The cases are generated with PyTorch into $NNCC_BUILD/ops, again
# only when make_ops.py or the torch version changed (a hash stamp in that
# folder). Without a python that imports torch and numpy the test is
# skipped (77).
#
# Every case is checked with fixed shapes, then with symbolic dims at other
# shapes (check_ops.py --symbolic); then tests/ops/coverage.py checks that
# every torch.nn class and torch.nn.functional function is covered by a
# case, out of scope or a listed gap, and that docs/COVERAGE.md is current.
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/ops.sh [SUBSTR]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
ops="${NNCC_BUILD:-${TMPDIR:-/tmp}}/ops"
only="${1:-}"

if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "ops.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi

. "$src/tests/lib/python.sh"
need_python torch numpy
version=$("$py" -c 'import torch, numpy
print(torch.__version__, numpy.__version__)')

stamp=$( { cat "$src/tests/ops/make_ops.py"; echo "$py $version"; } \
         | sha256sum | cut -d' ' -f1)
mkdir -p "$(dirname "$ops")"
exec 9>"$ops.lock"
flock 9
if [ "$(cat "$ops/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "generating the op cases in $ops (torch $version)"
  tmp="$ops.tmp.$$"
  rm -rf "$tmp"
  if ! "$py" "$src/tests/ops/make_ops.py" "$tmp"; then
    rm -rf "$tmp"
    echo "ops.sh: error: make_ops.py failed" >&2
    exit 1
  fi
  echo "$stamp" > "$tmp/.stamp"
  rm -rf "$ops"
  mv "$tmp" "$ops"
fi
exec 9>&-

# every case twice: with the traced shapes fixed, then with symbolic dims
# on the case's inputs and on its alternates at other shapes
sel=()
[ -n "$only" ] && sel=(--only "$only")
"$py" "$src/tests/ops/check_ops.py" --nncc "$NNCC" --dir "$ops" "${sel[@]}"
static=$?
"$py" "$src/tests/ops/check_ops.py" --nncc "$NNCC" --dir "$ops" "${sel[@]}" --symbolic
symbolic=$?
# the coverage table of torch.nn (docs/COVERAGE.md must be current); the
# known gaps are allowed and counted
coverage=0
if [ -z "$only" ]; then
  "$py" "$src/tests/ops/coverage.py" "$ops" --allow-gaps --check "$src/docs/COVERAGE.md"
  coverage=$?
fi
[ "$static" = 0 ] && [ "$symbolic" = 0 ] && [ "$coverage" = 0 ]
