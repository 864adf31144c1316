#!/bin/bash
# tsan.sh BUILD TSAN_BUILD — the runtime's thread tests under ThreadSanitizer
# (the sanitizer stage of `make test`, after the ASan build).
#
# TSAN_BUILD is configured with -DNNCC_SANITIZE=thread and has only the
# drivers that use the public API built (nncc_test_misuse,
# nncc_test_concurrency: they link the runtime library alone). The models
# are compiled by BUILD's nncc; the model runtime inside them is never
# instrumented (it is compiled into nncc, without sanitizers), so TSan
# watches the runtime library: sessions, the busy flag, model reference
# counts. Any report fails the run.
set -u
build=${1:?usage: tsan.sh BUILD TSAN_BUILD}
tsan=${2:?usage: tsan.sh BUILD TSAN_BUILD}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-tsan-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
ex="$src/examples/model_jit.pt"
"$build/nncc" "$ex" -o "$tmp/static.so" --input 'x:f32[64,1,28,28]' &&
  "$build/nncc" "$ex" -o "$tmp/sym.so" || { echo "tsan.sh: compiling the example failed"; exit 1; }
fails=0
run() {
  if "$@" > "$tmp/log" 2>&1; then
    echo "ok: $(basename "$1") under TSan: $(tail -1 "$tmp/log")"
  else
    echo "FAIL: $* (exit $?)"
    head -60 "$tmp/log"
    fails=$((fails + 1))
  fi
}
run "$tsan/tests/runtime/nncc_test_misuse" "$tmp/static.so" "$tmp/sym.so"
run "$tsan/tests/runtime/nncc_test_concurrency" "$tmp/static.so" 4 40
[ "$fails" = 0 ]
