#!/bin/bash
# libfuzzer.sh — coverage-guided fuzzing of the readers with libFuzzer.
#
# Builds every tests/fuzz/fuzz_*.c target with clang -fsanitize=fuzzer,
# address,undefined straight from the sources (common/, ir/, frontend/; no
# CMake option needed), seeds each one (the bundled example archive, the real
# archives in NNCC_FIXTURES_REAL when present, the pickles and code files
# inside them, the golden IR files) and runs it for NNCC_FUZZ_SECONDS
# (default 60) with -rss_limit_mb=2048 -timeout=5, the targets side by side
# (NNCC_FUZZ_JOBS at a time, default: the number of CPUs, at most 6).
#
# A crash, a leak, a sanitizer report, an input slower than 5 s or one using
# more than 2 GB fails the target; the reproducer is kept under
# $NNCC_BUILD/libfuzzer/artifacts/ and its path printed. Rerun it with
#   $NNCC_BUILD/libfuzzer/fuzz_X_lf REPRODUCER
# Exits 77 (skipped) when clang cannot build a libFuzzer program.
set -u
: "${NNCC_SRC:?}"
secs=${NNCC_FUZZ_SECONDS:-60}
build=${NNCC_BUILD:-/tmp}/libfuzzer
cc=$(command -v clang-14 || command -v clang || true)
[ -n "$cc" ] || { echo "skipped: no clang"; exit 77; }
mkdir -p "$build/obj" "$build/artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Can this clang link a libFuzzer program (Debian: libclang-rt-14-dev)?
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$work/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" 2>"$work/probe.log"; then
  echo "skipped: $cc cannot build libFuzzer programs (install libclang-rt-14-dev)"
  head -3 "$work/probe.log"
  exit 77
fi

# ---- build: the reader sources once, then one binary per target ----------
flags=(-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -I"$NNCC_SRC"
       -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -DNNCC_VERSION='"fuzz"' -DNNCC_LLVM_VERSION='"none"')
libs=(-lzip -lcjson -lm -lpthread)
objs=()
for src in "$NNCC_SRC"/common/*.c "$NNCC_SRC"/ir/*.c "$NNCC_SRC"/frontend/*.c "$NNCC_SRC"/abi/*.c; do
  rel=${src#"$NNCC_SRC"/}
  obj="$build/obj/${rel//\//_}.o"
  if [ ! -e "$obj" ] || [ -n "$(find "$src" "$NNCC_SRC"/*/*.h "$NNCC_SRC"/*/*.def -newer "$obj" 2>/dev/null | head -1)" ]; then
    "$cc" "${flags[@]}" -c "$src" -o "$obj" || { echo "FAIL build: $rel"; echo "libfuzzer: 0 passed, 1 failed"; exit 1; }
  fi
  objs+=("$obj")
done
targets=()
for src in "$NNCC_SRC"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin="$build/${name}_lf"
  if ! "$cc" "${flags[@]}" -fsanitize=fuzzer "$src" "${objs[@]}" "${libs[@]}" -o "$bin" 2>"$work/$name.build"; then
    echo "FAIL build: $name"; cat "$work/$name.build"; echo "libfuzzer: 0 passed, 1 failed"; exit 1
  fi
  targets+=("$name")
done

# ---- seeds -----------------------------------------------------------------
for t in "${targets[@]}"; do mkdir -p "$work/seed/$t"; done
mkdir -p "$work/zip"
cp "$NNCC_SRC/examples/model_jit.pt" "$work/zip/"
real=${NNCC_FIXTURES_REAL:-}
if [ -n "$real" ] && [ -d "$real" ]; then
  cp "$real"/*.pt "$real"/*.pth "$work/zip/" 2>/dev/null
  cp "$real"/*.bin "$work/seed/fuzz_pickle/" 2>/dev/null
fi
cp "$NNCC_SRC"/tests/golden/*/*.nnir "$work/seed/fuzz_irparse/" 2>/dev/null
# Pickles, code files and model.json out of every archive (python's zipfile,
# no torch needed); each archive also as fuzz_import's container form.
python3 - "$work" <<'PY'
import glob, os, sys, zipfile
work = sys.argv[1]
seed = lambda t, n: os.path.join(work, "seed", t, n)
for i, path in enumerate(sorted(glob.glob(os.path.join(work, "zip", "*")))):
    base = os.path.basename(path)
    for t in ("fuzz_archive", "fuzz_import"):
        if os.path.isdir(os.path.join(work, "seed", t)):
            open(seed(t, base), "wb").write(open(path, "rb").read())
    try:
        z = zipfile.ZipFile(path)
    except Exception:
        continue
    parts = [b"NNZ1"]
    for n in z.namelist():
        try:
            data = z.read(n)
        except Exception:
            continue
        flat = "%d_%s" % (i, n.replace("/", "_"))
        if n.endswith(".pkl"):
            open(seed("fuzz_pickle", flat), "wb").write(data)
        elif n.endswith(".py"):
            open(seed("fuzz_tsparse", flat), "wb").write(data)
        elif n.endswith("model.json") and os.path.isdir(os.path.join(work, "seed", "fuzz_modeljson")):
            open(seed("fuzz_modeljson", flat), "wb").write(data)
        parts.append(b"@@ " + n.encode() + b"\n" + data)
    if os.path.isdir(os.path.join(work, "seed", "fuzz_import")):
        open(seed("fuzz_import", base + ".nnz"), "wb").write(b"\n".join(parts))
PY
# A model.json of the layout fuzz_modeljson packs it with, for when no
# legacy archive is at hand.
if [ -d "$work/seed/fuzz_modeljson" ]; then
  cat >"$work/seed/fuzz_modeljson/min.json" <<'JSON'
{"protoVersion":"3","mainModule":{"torchscriptArena":{"key":"code/m.py"},"name":"m","parameters":[{"name":"w","tensorId":"0","isBuffer":false}]},"producerName":"pytorch","producerVersion":"1.0","tensors":[{"dims":["2","3"],"offset":"0","strides":["3","1"],"requiresGrad":false,"dataType":"FLOAT","data":{"key":"tensors/0"},"device":"cpu"}]}
JSON
fi
# model.so files for fuzz_modelso, when the nncc under test is at hand
if [ -d "$work/seed/fuzz_modelso" ] && [ -x "${NNCC:-}" ]; then
  "$NNCC" "$NNCC_SRC/examples/model_jit.pt" -o "$work/seed/fuzz_modelso/static.so" \
    --input 'x:f32[1,1,28,28]' >/dev/null 2>&1
  "$NNCC" "$NNCC_SRC/examples/model_jit.pt" -o "$work/seed/fuzz_modelso/sym.so" >/dev/null 2>&1
fi
for t in "${targets[@]}"; do
  [ -n "$(ls "$work/seed/$t")" ] || printf 'x' >"$work/seed/$t/empty"
done

# ---- run -------------------------------------------------------------------
jobs=${NNCC_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -gt 6 ] && jobs=6
fuzz() { # TARGET
  local t=$1 art="$build/artifacts/$1/"
  rm -rf "$art"; mkdir -p "$art" "$work/corpus/$t"
  local maxlen=()
  [ "$t" = fuzz_import ] && maxlen=(-max_len=262144)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/${t}_lf" "$work/corpus/$t" "$work/seed/$t" -max_total_time="$secs" \
    -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 "${maxlen[@]}" \
    -artifact_prefix="$art" >"$work/$t.log" 2>&1
  echo $? >"$work/$t.rc"
}
running=0
for t in "${targets[@]}"; do
  fuzz "$t" &
  running=$((running+1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running-1)); fi
done
wait

pass=0 fail=0
for t in "${targets[@]}"; do
  log="$work/$t.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1)
  corpus=$(ls "$work/corpus/$t" | wc -l)
  if [ "$(cat "$work/$t.rc")" = 0 ]; then
    pass=$((pass+1))
    echo "PASS $t: ${runs:-?} execs in ${secs}s, ${cov:-cov: ?}, ${ft:-ft: ?}, $corpus new corpus files"
  else
    fail=$((fail+1))
    echo "FAIL $t (exit $(cat "$work/$t.rc")): reproducer(s):"
    ls -d "$build/artifacts/$t/"* 2>/dev/null | sed 's/^/  /'
    grep -m1 -E 'ERROR|SUMMARY|runtime error|deadly signal|out-of-memory|timeout' "$log" | sed 's/^/  /'
    tail -60 "$log"
  fi
done
echo "libfuzzer: $pass passed, $fail failed"
[ "$fail" = 0 ]
