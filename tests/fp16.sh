#!/usr/bin/env bash
# fp16.sh - --precision fp16|bf16 end to end: zoo models compiled in fp32,
# fp16 and bf16 run and match PyTorch's f32 result within the bounds stated
# in tests/fp16/compare.py, and a 16-bit .so stores its weights in at most
# 55% of the fp32 one's weight bytes (`nncc inspect --json`: weights_bytes;
# the code's size depends on the build host's CPU, so the whole .so is
# printed, not checked).
#
# Run by CTest with NNCC, NNCC_SRC, NNCC_BUILD and NNCC_PYTHON like zoo.sh;
# the zoo comes from tests/zoo/ensure_zoo.sh. Skipped (77) without a python
# that imports torch and torchvision.
#
# By hand:  NNCC=build/nncc NNCC_BUILD=build bash tests/fp16.sh [NAME,...]
set -u

src="${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
build="${NNCC_BUILD:-${TMPDIR:-/tmp}}"
zoo="$build/zoo"
if [ -z "${NNCC:-}" ] || [ ! -x "$NNCC" ]; then
  echo "fp16.sh: error: NNCC must name the nncc binary (got '${NNCC:-}')" >&2
  exit 1
fi
. "$src/tests/lib/python.sh"
need_python torch torchvision numpy
bash "$src/tests/zoo/ensure_zoo.sh" "$py" "$zoo" || exit 1

# Models, and those whose weights must shrink to <= 55% (every one: the
# weights of a model named by hand are checked only when it is listed).
models="${1:-convnet mlp resnet18 mobilenet_v2 bert}"
models="${models//,/ }"
sized=" convnet mlp resnet18 mobilenet_v2 bert "

out="$build/fp16"
rm -rf "$out"
mkdir -p "$out"
pass=0 fail=0
for m in $models; do
  flags=$("$py" -c "import json, sys
print(' '.join('--input=' + i['flag'] for i in json.load(open(sys.argv[1]))['inputs']))" \
          "$zoo/$m.json") || { echo "FAIL $m: no $m.json"; fail=$((fail+1)); continue; }
  ins=$(ls "$zoo/$m".in*.npy | sort -V)
  declare -A size=() wbytes=()
  for p in fp32 fp16 bf16; do
    so="$out/$m.$p.so"
    # shellcheck disable=SC2086
    if ! "$NNCC" "$zoo/$m.pt" -o "$so" $flags --precision "$p" 2>"$out/$m.$p.err"; then
      echo "FAIL $m $p: compile"; cat "$out/$m.$p.err"; fail=$((fail+1)); continue
    fi
    size[$p]=$(stat -c %s "$so")
    wbytes[$p]=$("$NNCC" inspect "$so" --json | sed -n 's/.*"weights_bytes": \([0-9]*\).*/\1/p')
    # shellcheck disable=SC2086
    if ! "$NNCC" run "$so" $ins --out-dir "$out/$m.$p.out" >"$out/$m.$p.log" 2>&1; then
      echo "FAIL $m $p: run"; cat "$out/$m.$p.log"; fail=$((fail+1)); continue
    fi
    if "$py" "$src/tests/fp16/compare.py" "$zoo" "$m" "$p" "$out/$m.$p.out"; then
      pass=$((pass+1))
    else
      echo "FAIL $m $p: accuracy"; fail=$((fail+1))
    fi
  done
  for p in fp16 bf16; do
    [ -n "${wbytes[fp32]:-}" ] && [ -n "${wbytes[$p]:-}" ] || continue
    ratio=$(awk -v a="${wbytes[$p]}" -v b="${wbytes[fp32]}" 'BEGIN { printf "%.3f", a / b }')
    whole=$(awk -v a="${size[$p]}" -v b="${size[fp32]}" 'BEGIN { printf "%.3f", a / b }')
    line="$m $p weights ${wbytes[$p]} / ${wbytes[fp32]} bytes = $ratio (.so $whole)"
    if [[ "$sized" == *" $m "* ]]; then
      if awk -v r="$ratio" 'BEGIN { exit !(r <= 0.55) }'; then
        echo "$line <= 0.55 ok"; pass=$((pass+1))
      else
        echo "FAIL $line > 0.55"; fail=$((fail+1))
      fi
    else
      echo "$line (not checked)"
    fi
  done
  unset size wbytes
done
echo "fp16: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
