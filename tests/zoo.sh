#!/usr/bin/env bash
# zoo.sh - the model zoo test: nncc imports every zoo model with the right
# ops, infers the traced output shapes, and round-trips the final IR.
#
# Run by CTest with NNCC (the nncc binary), NNCC_SRC (the repository),
# NNCC_BUILD (the build folder) and NNCC_PYTHON (a python3 that may lack
# torch). The zoo is built with PyTorch into $NNCC_BUILD/zoo, and rebuilt
# only when it is missing or when make_zoo.py or the torch/torchvision
# versions changed (tests/zoo/ensure_zoo.sh, shared with e2e.sh). Without
# a python that imports torch and torchvision the test is skipped (77).
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/zoo.sh [NAME,...]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
zoo="${NNCC_BUILD:-${TMPDIR:-/tmp}}/zoo"
only="${1:-}"

if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "zoo.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi

. "$src/tests/lib/python.sh"
need_python torch torchvision

"$py" "$src/tests/zoo/check_zoo.py" --self-test || exit 1

bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" || exit 1

if [ -n "$only" ]; then
  exec "$py" "$src/tests/zoo/check_zoo.py" --nncc "$NNCC" --zoo "$zoo" \
       --only "$only"
fi
exec "$py" "$src/tests/zoo/check_zoo.py" --nncc "$NNCC" --zoo "$zoo"
