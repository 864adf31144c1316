#!/usr/bin/env bash
# legacy.sh - legacy TorchScript archives (model.json, PyTorch 1.0-1.2)
# beyond the few real ones: zoo models saved by PyTorch 1.13 are rewritten
# in the legacy format by tests/legacy/write_legacy.py, checked against the
# real 2019 files' structure, compiled by nncc, run with `nncc run` and
# compared with PyTorch (tests/legacy/run_legacy.py).
#
# Run by CTest with NNCC (the nncc binary), NNCC_SRC (the repository),
# NNCC_BUILD (the build folder), NNCC_PYTHON (a python3 that may lack torch)
# and NNCC_FIXTURES_REAL (the real archives; the structure checks against
# them are left out when the folder is absent). The zoo in $NNCC_BUILD/zoo
# is shared with zoo.sh and e2e.sh (tests/zoo/ensure_zoo.sh). Without a
# python that imports torch, torchvision and numpy the test is skipped (77).
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/legacy.sh [NAME,...]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
zoo="${NNCC_BUILD:-${TMPDIR:-/tmp}}/zoo"
only="${1:-}"

if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "legacy.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi

. "$src/tests/lib/python.sh"
need_python torch torchvision numpy

ref_args=()
real="${NNCC_FIXTURES_REAL:-}"
ref="$real/tch-rs_foo_legacy_2019.pt"
if [ -n "$real" ] && [ -f "$ref" ]; then
  # The checker itself, then every real legacy file against it.
  "$py" "$src/tests/legacy/check_structure.py" --reference "$ref" --self-test || exit 1
  "$py" "$src/tests/legacy/check_structure.py" --reference "$ref" \
        "$real"/*_legacy_20*.pt || exit 1
  ref_args=(--reference "$ref")
else
  echo "note: no real fixtures; the structure checks are left out"
fi

bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" || exit 1

exec "$py" "$src/tests/legacy/run_legacy.py" --nncc "$NNCC" --zoo "$zoo" \
     "${ref_args[@]}" ${only:+--only "$only"}
