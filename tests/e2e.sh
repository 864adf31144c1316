#!/usr/bin/env bash
# e2e.sh - the end-to-end test: every zoo model is compiled by nncc into a
# .so, run with `nncc run` on the inputs it was traced with, and compared
# with PyTorch's outputs (tests/e2e/run_e2e.py; see tests/e2e/README.md).
#
# Run by CTest with NNCC (the nncc binary), NNCC_SRC (the repository),
# NNCC_BUILD (the build folder) and NNCC_PYTHON (a python3 that may lack
# torch). The zoo in $NNCC_BUILD/zoo is shared with zoo.sh and built or
# refreshed by tests/zoo/ensure_zoo.sh. Without a python that imports
# torch, torchvision and numpy the test is skipped (77).
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/e2e.sh [NAME,...]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
zoo="${NNCC_BUILD:-${TMPDIR:-/tmp}}/zoo"
only="${1:-}"

if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "e2e.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi

. "$src/tests/lib/python.sh"
need_python torch torchvision numpy

bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" || exit 1

if [ -n "$only" ]; then
  exec "$py" "$src/tests/e2e/run_e2e.py" --nncc "$NNCC" --zoo "$zoo" \
       --only "$only"
fi
exec "$py" "$src/tests/e2e/run_e2e.py" --nncc "$NNCC" --zoo "$zoo"
