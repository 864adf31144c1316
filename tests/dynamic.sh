#!/usr/bin/env bash
# dynamic.sh - symbolic input shapes end to end: zoo models compiled by nncc
# with no --input run at several batch sizes, spatial sizes and sequence
# lengths and match PyTorch; shapes outside the declared range or
# inconsistent across inputs are clean errors (tests/dynamic/check_dynamic.py;
# see tests/dynamic/README.md).
#
# Run by CTest with NNCC (the nncc binary), NNCC_SRC (the repository),
# NNCC_BUILD (the build folder) and NNCC_PYTHON (a python3 that may lack
# torch). The zoo in $NNCC_BUILD/zoo is shared with zoo.sh and e2e.sh and
# built or refreshed by tests/zoo/ensure_zoo.sh. Without a python that
# imports torch, torchvision and numpy the test is skipped (77).
#
# By hand:  NNCC_BUILD=build bash tests/dynamic.sh [--nncc PATH] [NAME,...]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
zoo="${NNCC_BUILD:-${TMPDIR:-/tmp}}/zoo"
nncc="${NNCC:-}"
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nncc) nncc="${2:-}"; shift 2 || shift ;;
    --nncc=*) nncc="${1#--nncc=}"; shift ;;
    *) only="$1"; shift ;;
  esac
done

if [ -z "$nncc" ] || [ ! -x "$nncc" ]; then
  echo "dynamic.sh: error: NNCC or --nncc must name the nncc binary" \
       "(got '$nncc')" >&2
  exit 1
fi

. "$src/tests/lib/python.sh"
need_python torch torchvision numpy

bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" || exit 1

if [ -n "$only" ]; then
  exec "$py" "$src/tests/dynamic/check_dynamic.py" --nncc "$nncc" \
       --zoo "$zoo" --jobs 2 --only "$only"
fi
exec "$py" "$src/tests/dynamic/check_dynamic.py" --nncc "$nncc" --zoo "$zoo" \
     --jobs 2
