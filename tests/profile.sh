#!/bin/bash
# profile.sh — run-time profiling: per-step times named by kernel, IR ops,
# layer and source line (nncc.h "profiling", docs/ABI.md).
#
# With the bundled example model (examples/model_jit.pt, no PyTorch
# needed), compiled with fixed and with symbolic shapes:
#   - tests/runtime/profile.c: the API (rows, sorting, percentages summing
#     to 100, steps within the run time, a second session unaffected,
#     stop, reset, the report);
#   - `nncc run --bench N --profile`: the latency line, then the table with
#     one row per kernel (--stats "kernels"), sorted, % summing to ~100,
#     every row naming its ops, layer and a code/...py:LINE source;
#   - NNCC_PROFILE=1: the table on stderr when the session ends (run_model,
#     `nncc run`), once; nothing without it, or with NNCC_PROFILE=0;
#   - the generated graph function reads the profiling flag once and calls
#     the hook only behind it (the cost when off: a load and a branch).
# Env (set by CTest): NNCC NNCC_SRC NNCC_BUILD.
set -u
src=${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NNCC_BUILD:-$src/build}
nncc=${NNCC:-$build/nncc}
drv="$build/tests/runtime/nncc_test_profile"
run_model="$build/run_model"
for t in "$nncc" "$drv" "$run_model"; do
  [ -x "$t" ] || { echo "profile.sh: $t not built"; exit 1; }
done
command -v python3 > /dev/null || { echo "profile.sh: no python3"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-profile-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }
unset NNCC_PROFILE

model="$src/examples/model_jit.pt"
"$nncc" "$model" -o "$tmp/m.so" --input 'x:f32[1,1,28,28]' --stats "$tmp/stats.json" ||
  { echo "profile.sh: compiling the example failed"; exit 1; }
"$nncc" "$model" -o "$tmp/any.so" || { echo "profile.sh: compiling (symbolic) failed"; exit 1; }
kernels=$(sed -n 's/.*"kernels": \([0-9]*\).*/\1/p' "$tmp/stats.json")

# The API.
"$drv" "$tmp/m.so" && pass "API, fixed shapes" || fail "API, fixed shapes"
"$drv" "$tmp/any.so" B=3 H=28 W=28 && pass "API, symbolic dims" || fail "API, symbolic dims"

# An input .npy (format 1.0, little-endian f32) without NumPy.
python3 - "$tmp/x.npy" <<'PY'
import struct, sys
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 28, 28), }"
hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<784f", *[((i * 37) % 101) / 50.0 - 1.0 for i in range(784)]))
PY

# Checks a profile table in file $1 (rows start after the column titles):
# $2 rows, sorted by time, % summing to ~100, every row named and located.
check_table() {
  python3 - "$1" "$2" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
want = int(sys.argv[2])
head = [i for i, l in enumerate(lines) if l.startswith("nncc profile: model model_jit")]
assert len(head) == 1, "one header line: %r" % lines
cols = lines[head[0] + 1].split()
assert cols == ["us/run", "%", "cum%", "step", "kernel", "ops", "scope", "source"], cols
rows = [l.split() for l in lines[head[0] + 2:head[0] + 2 + want]]
assert len(rows) == want and all(len(r) == 8 for r in rows), rows
us = [float(r[0]) for r in rows]
assert us == sorted(us, reverse=True), "not sorted: %s" % us
pct = sum(float(r[1].rstrip("%")) for r in rows)
assert abs(pct - 100) < 0.05 * want + 0.2, "percentages sum to %.2f" % pct
assert abs(float(rows[-1][2].rstrip("%")) - 100) < 0.2, "cumulative ends at %s" % rows[-1][2]
assert sorted(int(r[3]) for r in rows) == list(range(want)), "steps"
for r in rows:
    assert re.fullmatch(r"k\d+_\w+", r[4]), r
    assert re.fullmatch(r"[a-z_0-9]+(\+[a-z_0-9]+)*", r[5]), r
    assert r[6] != "-" and re.fullmatch(r"[\w.]+", r[6]), "scope: %s" % r
    assert re.fullmatch(r"model_jit/code/.*\.py:\d+", r[7]), "source: %s" % r
ops = " ".join(r[5] for r in rows)
assert "convolution" in ops and "linear" in ops, ops
m = re.search(r"(\d+) runs?, .*: ([0-9.]+) ms per run, %d steps ([0-9.]+) ms \(([0-9.]+)%%\)" % want,
              lines[head[0]])
assert m, lines[head[0]]
assert float(m.group(4)) <= 100.0, "steps exceed the run time"
print("table: %d rows, %.2f%%, %s runs" % (len(rows), pct, m.group(1)))
PY
}

# nncc run --bench N --profile.
"$nncc" run "$tmp/m.so" "$tmp/x.npy" --out-dir "$tmp/o" --bench 20 --threads 2 --profile \
  > "$tmp/run.txt" 2> "$tmp/run.err" || fail "nncc run --profile"
if head -1 "$tmp/run.txt" | grep -Eq '^latency_ms min=[0-9.]+ median=[0-9.]+ max=[0-9.]+ runs=20 threads=2$' &&
   sed -n 2p "$tmp/run.txt" | grep -q '^nncc profile: model model_jit, 20 runs, 2 threads: '
then pass "nncc run --bench 20 --profile: latency line, then 20 profiled runs"
else fail "nncc run --profile printed:"; cat "$tmp/run.txt"; fi
check_table "$tmp/run.txt" "$kernels" && pass "table: $kernels rows, sorted, ~100%, named" ||
  { fail "table"; cat "$tmp/run.txt"; }
[ -s "$tmp/run.err" ] && fail "stderr: $(cat "$tmp/run.err")"
"$nncc" run "$tmp/any.so" "$tmp/x.npy" --out-dir "$tmp/o" --profile > "$tmp/run1.txt" &&
  grep -q '^nncc profile: model model_jit, 1 run, ' "$tmp/run1.txt" &&
  check_table "$tmp/run1.txt" "$(($(wc -l < "$tmp/run1.txt") - 2))" > /dev/null &&
  pass "nncc run --profile without --bench (symbolic model): one run" || fail "one-run profile"

# NNCC_PROFILE=1 prints the table when the session ends, and only then.
NNCC_PROFILE=1 "$run_model" "$tmp/m.so" > /dev/null 2> "$tmp/env.err" || fail "run_model"
check_table "$tmp/env.err" "$kernels" > /dev/null && grep -q ', 1 run, ' "$tmp/env.err" &&
  pass "NNCC_PROFILE=1: run_model prints the table on stderr" || { fail "NNCC_PROFILE=1"; cat "$tmp/env.err"; }
NNCC_PROFILE=1 "$nncc" run "$tmp/m.so" "$tmp/x.npy" --out-dir "$tmp/o" --bench 5 > "$tmp/b.out" 2> "$tmp/b.err"
[ "$(wc -l < "$tmp/b.out")" -eq 1 ] && grep -q ', 6 runs, ' "$tmp/b.err" &&
  pass "NNCC_PROFILE=1 nncc run --bench 5: the table (warm-up + 5 runs) on stderr" ||
  { fail "NNCC_PROFILE=1 nncc run"; cat "$tmp/b.out" "$tmp/b.err"; }
NNCC_PROFILE=1 "$nncc" run "$tmp/m.so" "$tmp/x.npy" --out-dir "$tmp/o" --profile > "$tmp/p.out" 2> "$tmp/p.err"
[ "$(grep -c '^nncc profile' "$tmp/p.out")" -eq 1 ] && [ ! -s "$tmp/p.err" ] &&
  pass "NNCC_PROFILE=1 with --profile: one table" || fail "NNCC_PROFILE=1 --profile printed twice"
for v in "" 0; do
  NNCC_PROFILE=$v "$run_model" "$tmp/m.so" > /dev/null 2> "$tmp/off.err"
  [ ! -s "$tmp/off.err" ] && pass "NNCC_PROFILE='$v': nothing printed" || fail "NNCC_PROFILE='$v' printed"
done
out=$("$nncc" run "$tmp/m.so" "$tmp/x.npy" --out-dir "$tmp/o" --bench 3 2>&1)
[ "$(echo "$out" | wc -l)" -eq 1 ] && pass "no --profile: the latency line only" || fail "no --profile: $out"

# Off costs a load and a branch: the flag is read once, and every call to
# the hook sits behind a branch on it (--emit=llvm, -O0 so none is folded).
"$nncc" "$model" --emit=llvm -O0 --input 'x:f32[1,1,28,28]' -o "$tmp/m.ll" || fail "--emit=llvm"
python3 - "$tmp/m.ll" "$kernels" <<'PY' && pass "graph function: one flag load, $kernels+1 guarded marks" || fail "graph function IR"
import re, sys
ir = open(sys.argv[1]).read()
want = int(sys.argv[2]) + 1
g = ir[ir.index("@nncc_graph_run("):]
g = g[:g.index("\n}\n")]
assert len(re.findall(r"load i32, i32\* @nncc_rt_profiling", g)) == 1, "flag loads"
calls = re.findall(r"call void @nncc_rt_prof_mark\(i32 (\d+)\)", g)
assert sorted(map(int, calls)) == list(range(want)), calls
# each mark is alone in a block reached only through the flag's branch
blocks = re.split(r"\n(?=[\w.]+:)", g)
for b in blocks:
    if "nncc_rt_prof_mark" in b:
        assert b.startswith("prof"), b[:200]
        assert len(re.findall(r"^\s+\S", b, re.M)) == 2, b  # the call and the branch
assert re.search(r"@nncc_rt_profiling = weak hidden global i32 0", ir), "weak flag"
assert re.search(r"declare extern_weak hidden void @nncc_rt_prof_mark\(i32\)", ir), "weak hook"
PY

[ $fails -eq 0 ] && { echo "profile.sh: all passed"; exit 0; }
echo "profile.sh: $fails failed"
exit 1
