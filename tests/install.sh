#!/bin/bash
# install.sh — `cmake --install` and building applications against the
# installed tree (cmake/install.cmake, docs/ABI.md "Installing").
#
# Installs the build into a temporary prefix, then checks:
#   - the files: bin/nncc, include/nncc.h, libnncc_runtime (.a, .so), the
#     pkg-config file and the CMake package; the .so exports nncc_* only;
#   - the installed nncc: --version names nncc, LLVM and NVRTC's state,
#     and it compiles the example model on its own;
#   - examples/run_model.c built with pkg-config (shared and static) and
#     with the installed examples/CMakeLists.txt (find_package(nncc):
#     nncc::runtime, and nncc::runtime_static), each run on the model;
#   - the tree still works after being moved (pkg-config paths are
#     relative to the .pc file, the CMake files to themselves).
# Env (set by CTest): NNCC_SRC NNCC_BUILD.
set -u
src=${NNCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NNCC_BUILD:-$src/build}
cmake=${CMAKE:-cmake}
cc=${CC:-cc}
command -v "$cmake" > /dev/null || { echo "install.sh: no cmake"; exit 77; }
command -v pkg-config > /dev/null || { echo "install.sh: no pkg-config"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# A sanitized build's libraries need the sanitizer runtime in the program.
san=""
case $(sed -n 's/^NNCC_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null) in
  ON) san="-fsanitize=address,undefined" ;;
  thread) san="-fsanitize=thread" ;;
esac

prefix="$tmp/prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "install.sh: cmake --install failed"; exit 1; }
libdir=$(dirname "$(find "$prefix" -name libnncc_runtime.a | head -1)")
missing=""
for f in bin/nncc include/nncc.h; do [ -f "$prefix/$f" ] || missing="$missing $f"; done
for f in libnncc_runtime.a libnncc_runtime.so libnncc_runtime.so.0 pkgconfig/nncc.pc \
         cmake/nncc/nnccConfig.cmake cmake/nncc/nnccConfigVersion.cmake cmake/nncc/nnccTargets.cmake; do
  [ -e "$libdir/$f" ] || missing="$missing ${libdir#$prefix/}/$f"
done
[ -f "$prefix/share/nncc/examples/CMakeLists.txt" ] || missing="$missing share/nncc/examples"
[ -z "$missing" ] && pass "installed: bin/nncc, nncc.h, ${libdir#$prefix/}/libnncc_runtime.{a,so}, nncc.pc, cmake/nncc" \
  || fail "missing:$missing"
other=$(nm -D --defined-only "$libdir/libnncc_runtime.so" | awk '{print $3}' | grep -v '^nncc_' | tr '\n' ' ')
[ -z "$other" ] && pass "libnncc_runtime.so exports nncc_* only" || fail "also exported: $other"

# The installed compiler.
nncc="$prefix/bin/nncc"
ver=$("$nncc" --version)
if echo "$ver" | sed -n 1p | grep -Eq '^nncc [0-9]+\.[0-9]+\.[0-9]+$' &&
   echo "$ver" | sed -n 2p | grep -Eq '^LLVM [0-9]+\.' &&
   echo "$ver" | sed -n 3p | grep -Eq '^NVRTC: (found \(/.*libnvrtc\.so.*, version [0-9]+\.[0-9]+\)|not found \(looked in .*\))$'
then pass "--version: $(echo $ver)"; else fail "--version printed: $ver"; fi
# NVRTC absent: the probe lists where it looked. A set CUDA_HOME decides
# (as for --target cuda): no other toolkit is tried.
ver=$(CUDA_HOME=/nonexistent LD_LIBRARY_PATH= "$nncc" --version | sed -n 3p)
[ "$ver" = "NVRTC: not found (looked in /nonexistent/lib64, /nonexistent/lib)" ] &&
  pass "$ver" || fail "without NVRTC: $ver"
# The search order: $CUDA_HOME/lib64 first, .so.13 before .so.12; a
# library without nvrtcVersion is no NVRTC.
mkdir -p "$tmp/cuda/lib64"
echo 'int nvrtcVersion(int *a, int *b) { *a = 99; *b = 7; return 0; }' > "$tmp/fake.c"
echo 'int not_nvrtc(void) { return 0; }' > "$tmp/notnvrtc.c"
$cc -shared -fPIC -o "$tmp/cuda/lib64/libnvrtc.so.12" "$tmp/fake.c" &&
  $cc -shared -fPIC -o "$tmp/cuda/lib64/libnvrtc.so.13" "$tmp/notnvrtc.c" || fail "fake NVRTC"
ver=$(CUDA_HOME="$tmp/cuda" "$nncc" --version | sed -n 3p)
[ "$ver" = "NVRTC: found ($tmp/cuda/lib64/libnvrtc.so.12, version 99.7)" ] &&
  pass "NVRTC from \$CUDA_HOME, skipping a library that isn't NVRTC" || fail "CUDA_HOME: $ver"
"$nncc" "$src/examples/model_jit.pt" -o "$tmp/m.so" --input 'x:f32[1,1,28,28]' ||
  { echo "install.sh: the installed nncc can't compile the example"; exit 1; }

# Runs an example binary on the model; it must print the top-5 list.
check_run() { # NAME BINARY
  out=$("$2" "$tmp/m.so" 2>&1)
  if echo "$out" | grep -q '^model model_jit (nncc ' && echo "$out" | grep -q '^top-5 of output_0:$'
  then pass "$1"; else fail "$1: $out"; fi
}
# Whether BINARY needs the shared runtime library (from the prefix).
uses_so() { readelf -d "$1" | grep -q 'NEEDED.*libnncc_runtime\.so'; }

# pkg-config, shared and static.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pc_libdir=$(pkg-config --variable=libdir nncc)
# shellcheck disable=SC2046
$cc $san -O2 -o "$tmp/pc_shared" "$src/examples/run_model.c" $(pkg-config --cflags --libs nncc) \
  -Wl,-rpath,"$pc_libdir" || fail "pkg-config: building (shared)"
[ -x "$tmp/pc_shared" ] && uses_so "$tmp/pc_shared" && check_run "pkg-config, shared library" "$tmp/pc_shared"
# shellcheck disable=SC2046
$cc $san -O2 -o "$tmp/pc_static" "$src/examples/run_model.c" $(pkg-config --cflags nncc) \
  "$pc_libdir/libnncc_runtime.a" $(pkg-config --static --libs-only-l nncc | sed 's/-lnncc_runtime//') ||
  fail "pkg-config: building (static)"
[ -x "$tmp/pc_static" ] && ! uses_so "$tmp/pc_static" && check_run "pkg-config, static library" "$tmp/pc_static"

# find_package(nncc) with the installed examples/CMakeLists.txt.
for kind in shared static; do
  flag=OFF; [ $kind = static ] && flag=ON
  if "$cmake" -S "$prefix/share/nncc/examples" -B "$tmp/cm_$kind" -DCMAKE_PREFIX_PATH="$prefix" \
       -DNNCC_STATIC=$flag -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
       > "$tmp/cm_$kind.log" 2>&1 &&
     "$cmake" --build "$tmp/cm_$kind" >> "$tmp/cm_$kind.log" 2>&1; then
    bin="$tmp/cm_$kind/run_model"
    if [ $kind = shared ]; then uses_so "$bin" || fail "cmake shared: not linked to the .so"
    else uses_so "$bin" && fail "cmake static: linked to the .so"; fi
    check_run "find_package(nncc), nncc::runtime$([ $kind = static ] && echo _static)" "$bin"
  else
    fail "find_package(nncc), $kind:"; tail -20 "$tmp/cm_$kind.log"
  fi
done

# A moved tree: pkg-config and find_package still find everything.
mv "$prefix" "$tmp/moved"
libdir="$tmp/moved/${libdir#$prefix/}"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
$cc $san -O2 -o "$tmp/pc_moved" "$src/examples/run_model.c" $(pkg-config --cflags --libs nncc) \
  -Wl,-rpath,"$(pkg-config --variable=libdir nncc)" && check_run "moved tree, pkg-config" "$tmp/pc_moved" ||
  fail "moved tree, pkg-config"
"$cmake" -S "$tmp/moved/share/nncc/examples" -B "$tmp/cm_moved" -DCMAKE_PREFIX_PATH="$tmp/moved" \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" > "$tmp/cm_moved.log" 2>&1 &&
  "$cmake" --build "$tmp/cm_moved" >> "$tmp/cm_moved.log" 2>&1 &&
  check_run "moved tree, find_package(nncc)" "$tmp/cm_moved/run_model" ||
  { fail "moved tree, find_package"; tail -20 "$tmp/cm_moved.log"; }

[ $fails -eq 0 ] && { echo "install.sh: all passed"; exit 0; }
echo "install.sh: $fails failed"
exit 1
