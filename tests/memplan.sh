#!/usr/bin/env bash
# memplan.sh - the memory plan of every zoo model is near the lower bound.
#
# Each model is scheduled with `nncc --emit=kernels`; the dump ends with
#   memory: arena A bytes, lower bound L, naive N
# and the test asserts L <= A <= 1.10 * L and A <= N, printing one line per
# model with the three numbers. Reuse correctness (that kernels sharing
# bytes still compute the right outputs) is what e2e.sh and ops.sh check.
#
# Run by CTest with NNCC, NNCC_SRC, NNCC_BUILD and NNCC_PYTHON like zoo.sh;
# the zoo comes from tests/zoo/ensure_zoo.sh. Without a python that imports
# torch and torchvision the test is skipped (77).
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/memplan.sh [NAME...]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
zoo="${NNCC_BUILD:-${TMPDIR:-/tmp}}/zoo"

if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "memplan.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi

. "$src/tests/lib/python.sh"
need_python torch torchvision

bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -gt 0 ]; then
  models="$*"
else
  models=$(cd "$zoo" && ls *.json | sed 's/\.json$//')
fi

pass=0
fail=0
for m in $models; do
  # the --input flags the model was traced with
  mapfile -t flags < <("$py" -c 'import json, sys
for i in json.load(open(sys.argv[1]))["inputs"]:
    print("--input"); print(i["flag"])' "$zoo/$m.json")
  if ! "$NNCC" "$zoo/$m.pt" "${flags[@]}" --emit=kernels -o "$work/$m.txt" \
       2>"$work/$m.err"; then
    echo "FAIL $m: nncc --emit=kernels failed:"
    sed 's/^/  /' "$work/$m.err" | head -5
    fail=$((fail + 1))
    continue
  fi
  line=$(grep '^memory: ' "$work/$m.txt" | tail -1)
  read -r a l n < <(echo "$line" |
    sed -n 's/^memory: arena \([0-9]*\) bytes, lower bound \([0-9]*\), naive \([0-9]*\)$/\1 \2 \3/p')
  if [ -z "${n:-}" ]; then
    echo "FAIL $m: no 'memory:' summary line in the dump"
    fail=$((fail + 1))
    continue
  fi
  ratio=$(awk -v a="$a" -v l="$l" 'BEGIN { printf "%.3f", l ? a / l : 1 }')
  if [ "$l" -le "$a" ] && [ $((a * 10)) -le $((l * 11)) ] && [ "$a" -le "$n" ]; then
    echo "PASS $m: arena $a, lower bound $l (x$ratio), naive $n"
    pass=$((pass + 1))
  else
    echo "FAIL $m: arena $a, lower bound $l (x$ratio), naive $n:" \
         "want lower bound <= arena <= 1.10 x lower bound and arena <= naive"
    fail=$((fail + 1))
  fi
  unset a l n
done
echo "memplan: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
