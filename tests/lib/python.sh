# python.sh — finding a python that imports what a test needs (sourced by
# the test scripts, not run).

# need_python MODULE... — sets $py to the first of $NNCC_PYTHON,
# /usr/bin/python3 and python3 that imports every MODULE; when none does,
# says so and exits 77 (CTest's "skipped").
need_python() {
  local mods cand
  mods=$(echo "$*" | sed 's/ /, /g')
  py=""
  for cand in "${NNCC_PYTHON:-}" /usr/bin/python3 python3; do
    [ -n "$cand" ] || continue
    if "$cand" -c "import $mods" 2>/dev/null; then
      py="$cand"
      return 0
    fi
  done
  echo "skipped: no python3 that imports $mods" \
       "(tried NNCC_PYTHON='${NNCC_PYTHON:-}', /usr/bin/python3, python3)"
  exit 77
}
