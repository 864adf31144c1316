#!/usr/bin/env bash
# weights.sh - the --weights test: small models are traced with one set of
# weights, and torch.save files of another instance (zip and legacy state
# dicts, nested checkpoints, float16 copies, broken ones) are loaded with
# `nncc MODEL.pt --weights FILE`; outputs are compared with PyTorch's and
# failures with the exact messages (tests/weights/make_weights.py writes the
# files and cases.json, tests/weights/check_weights.py runs them).
#
# Run by CTest with NNCC (the nncc binary), NNCC_SRC (the repository),
# NNCC_BUILD (the build folder) and NNCC_PYTHON (a python3 that may lack
# torch). Without a python that imports torch and numpy the test is
# skipped (77).
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/weights.sh
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
out="${NNCC_BUILD:-${TMPDIR:-/tmp}}/weights"

if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "weights.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi

# The first python3 on PATH may lack torch: try the configured one, then
# Debian's, then PATH's.
. "$src/tests/lib/python.sh"
need_python torch numpy

rm -rf "$out"
mkdir -p "$out" || exit 1
if ! "$py" "$src/tests/weights/make_weights.py" "$out" 2>"$out/make.log"; then
  echo "weights.sh: error: make_weights.py failed:" >&2
  cat "$out/make.log" >&2
  exit 1
fi
exec "$py" "$src/tests/weights/check_weights.py" --nncc "$NNCC" --dir "$out"
