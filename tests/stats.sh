#!/bin/bash
# stats.sh — --stats FILE.json carries the fields DESIGN.md §8 promises, with
# values consistent with the compile it describes.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$NNCC" "$NNCC_SRC/examples/model_jit.pt" -o "$work/m.so" --input 'x:f32[1,1,28,28]' \
  --stats "$work/stats.json" || exit 1
"$NNCC" inspect "$work/m.so" >"$work/inspect.txt" || exit 1
python3 - "$work/stats.json" "$work/inspect.txt" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n_pass = n_fail = 0
def check(cond, what):
    global n_pass, n_fail
    print(("PASS " if cond else "FAIL ") + what)
    if cond:
        n_pass += 1
    else:
        n_fail += 1
for k in ["compile_ms", "ops_in", "ops_out", "kernels", "arena_bytes",
          "arena_lower_bound_bytes", "naive_bytes", "weights_bytes"]:
    check(k in s, "field " + k)
check(set(s["compile_ms"]) >= {"import", "passes", "schedule", "codegen", "link", "total"},
      "compile_ms has every phase")
check(abs(sum(v for k, v in s["compile_ms"].items() if k != "total") - s["compile_ms"]["total"]) < 0.01,
      "phases add up to the total")
check(s["ops_in"] == 10, "ops_in counts the example's 10 ops")
check(0 < s["kernels"], "kernels > 0")
check(s["weights_bytes"] >= 4 * (4*9 + 4 + 8*36 + 8 + 392*32 + 32 + 320 + 10), "weights hold every parameter")
check(s["arena_lower_bound_bytes"] <= s["arena_bytes"] <= max(s["naive_bytes"], s["arena_bytes"]),
      "lower bound <= arena <= naive")
# nncc inspect OUT.so describes the same model through the runtime API.
ins = open(sys.argv[2]).read().splitlines()
check("name: model_jit" in ins, "inspect: the model name")
check("  input 0: x: f32[1,1,28,28]" in ins, "inspect: the input")
check("  output 0: output_0: f32[1,10]" in ins, "inspect: the output")
check("workspace (arena): %d bytes per session" % s["arena_bytes"] in ins, "inspect: arena = --stats arena")
check("weights: %d bytes" % s["weights_bytes"] in ins, "inspect: weights = --stats weights")
print("stats: %d passed, %d failed" % (n_pass, n_fail))
sys.exit(0 if n_fail == 0 else 1)
PY
