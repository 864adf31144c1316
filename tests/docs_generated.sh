#!/bin/bash
# docs_generated.sh — the generated parts of the docs (the op table in
# docs/IR.md, all of docs/OPS.md) match what this nncc prints with
# --list-ops and --list-aten. On a failure it shows the diff and the command
# that regenerates them: python3 tools/gendocs.py build/nncc
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
python3 "$NNCC_SRC/tools/gendocs.py" "$NNCC" --check
