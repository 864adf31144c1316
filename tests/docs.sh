#!/bin/bash
# docs.sh — every command the docs show runs. The convention, for README.md
# and docs/*.md:
#
#   ```sh       a block of shell commands: run with bash -e (a failing line
#               fails the block), from a scratch folder where build/nncc is
#               the nncc under test and examples/ is the source tree's;
#   ```python   run with the torch interpreter (Debian's python3-torch);
#   anything else (``` alone, ```c, ```console) is shown, never run.
#
# A block right after the line <!-- docs-test: skip REASON --> is not run
# (`make test` itself, for one). Blocks run in document order, README.md
# first, all in the one scratch folder, so a tour may build on its earlier
# steps (trace resnet18.pt, then compile it). Skips (77) without a torch
# interpreter, which the tour needs to trace its model.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
py=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3; do
  [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import torch, torchvision' 2>/dev/null && { py=$cand; break; }
done
[ -n "$py" ] || { echo "skipped: no python3 with torch and torchvision"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/run/build" "$work/blocks"
ln -s "$(readlink -f "$NNCC")" "$work/run/build/nncc"
ln -s "$NNCC_SRC/examples" "$work/run/examples"

# Extract the blocks: blocks/NNN.sh or .py, and an index "NNN.ext FILE:LINE".
"$py" - "$NNCC_SRC" "$work/blocks" <<'PY' || exit 1
import glob, os, re, sys
src, out = sys.argv[1], sys.argv[2]
docs = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
index = []
for path in docs:
    lines = open(path).read().split("\n")
    i, prev = 0, ""
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            if lines[i].strip():
                prev = lines[i].strip()
            i += 1
            continue
        lang, start = m.group(1), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        skip = prev.startswith("<!-- docs-test: skip")
        if lang in ("sh", "python") and not skip:
            name = "%03d.%s" % (len(index), "sh" if lang == "sh" else "py")
            with open(os.path.join(out, name), "w") as f:
                f.write("\n".join(lines[start:j]) + "\n")
            index.append("%s %s:%d" % (name, os.path.relpath(path, src), start))
        prev, i = "", j + 1
with open(os.path.join(out, "index"), "w") as f:
    f.write("\n".join(index) + "\n")
PY

pass=0 fail=0
has_dot=1
command -v dot >/dev/null || has_dot=0
while read -r name where; do
  [ -n "$name" ] || continue
  block="$work/blocks/$name"
  if [ $has_dot = 0 ] && grep -q '\bdot -T' "$block"; then
    echo "SKIP $where (needs Graphviz's dot)"
    continue
  fi
  start=$(date +%s)
  if [ "${name##*.}" = py ]; then
    (cd "$work/run" && "$py" "$block") >"$work/out" 2>&1
  else
    (cd "$work/run" && bash -e -o pipefail "$block") >"$work/out" 2>&1
  fi
  rc=$?
  if [ $rc = 0 ]; then
    echo "PASS $where ($(( $(date +%s) - start ))s)"
    pass=$((pass+1))
  else
    echo "FAIL $where: exit $rc"
    sed 's/^/    /' "$block"
    echo "  output:"
    tail -20 "$work/out" | sed 's/^/    /'
    fail=$((fail+1))
  fi
done <"$work/blocks/index"
echo "docs: $pass passed, $fail failed"
[ $fail = 0 ]
