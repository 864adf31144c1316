#!/bin/bash
# hostile.sh — hostile model files are refused cleanly, quickly and within
# bounded memory.
#
# tests/hostile/make_cases.py writes the cases (truncated zips, lying
# headers, zip bombs, overlapping entries, pickles nested a million deep,
# tensors outside their storage, a million nested parentheses, ...) from the
# bundled example archive. Each runs through `nncc CASE.pt --emit=ir` under
# `timeout 5` and a 2 GB address-space limit (ulimit -v; skipped under ASan,
# which reserves far more than that), and must
#   - exit with the expected status (1 for every hostile case, 0 for the
#     control cases that check the case writer itself), no crash or kill,
#   - print exactly the expected first stderr line,
#   - use at most NNCC_HOSTILE_SECONDS of CPU time (default 1; 4 under ASan).
# The expected "exit N" and first stderr line are in tests/hostile/CASE.expected;
# NNCC_UPDATE_GOLDEN=1 rewrites them.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$NNCC_SRC/tests/hostile/make_cases.py" "$NNCC_SRC/examples/model_jit.pt" "$work/cases" || exit 1

# A sanitizer build reserves terabytes of shadow memory: no ulimit -v there,
# and more time per case.
asan=0
if nm -an "$NNCC" 2>/dev/null | grep -q __asan_init; then asan=1; fi
limit_s=${NNCC_HOSTILE_SECONDS:-$([ "$asan" = 1 ] && echo 4 || echo 1)}

cd "$work"
TIMEFORMAT='%3U %3S'
pass=0 fail=0
for path in "$work"/cases/*.pt; do
  name=$(basename "$path" .pt)
  exp="$NNCC_SRC/tests/hostile/$name.expected"
  # CPU time (user + system), not wall time: ctest runs tests side by side.
  { time { (
    [ "$asan" = 1 ] || ulimit -v 2000000
    exec timeout 5 "$NNCC" "$path" --emit=ir --input 'x:f32[1,1,28,28]' -o out.nnir
  ) >stdout.txt 2>stderr.txt; }; } 2>time.txt
  rc=$?
  read -r user sys <time.txt
  ms=$(( 10#${user/./} + 10#${sys/./} ))
  # Messages name the file by the path given; make it stable.
  { echo "exit $rc"; head -1 stderr.txt | sed "s|$work/cases/||g"; } >actual.txt
  rm -f out.nnir
  if [ "${NNCC_UPDATE_GOLDEN:-0}" = 1 ]; then cp actual.txt "$exp"; fi
  why=""
  if [ "$rc" -ge 124 ]; then why="killed or timed out (exit $rc)"
  elif [ "$ms" -gt $((limit_s * 1000)) ]; then why="took ${ms} ms of CPU time (limit ${limit_s} s)"
  elif [ ! -e "$exp" ]; then why="no $exp (NNCC_UPDATE_GOLDEN=1 writes it)"
  elif ! diff -u "$exp" actual.txt >diff.txt 2>&1; then why="unexpected status or message:
$(cat diff.txt)"
  fi
  if [ -z "$why" ]; then
    pass=$((pass+1)); echo "PASS $name (${ms} ms CPU): $(sed -n 2p actual.txt)"
  else
    fail=$((fail+1)); echo "FAIL $name: $why"; head -5 stderr.txt | cut -c1-300
  fi
done
echo "hostile: $pass passed, $fail failed"
[ "$fail" = 0 ]
