#!/usr/bin/env bash
# rtchecks.sh - index values that PyTorch refuses make the compiled model's
# run fail too, with the value, the range, the op and its source; values it
# accepts (negative indices it wraps) give its outputs. The table and the
# rules are in tests/rtchecks/check.py. Skipped (77) without a python3 that
# imports torch and numpy.
set -u
src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
: "${NNCC:?}"
. "$src/tests/lib/python.sh"
need_python torch numpy
work=$(mktemp -d "${TMPDIR:-/tmp}/nncc-rtchecks-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" "$src/tests/rtchecks/check.py" --nncc "$NNCC" --work "$work"
