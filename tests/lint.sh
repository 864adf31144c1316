#!/bin/bash
# lint.sh — the three static gates over the C sources:
#   clang-format  every tracked .c/.h is formatted as .clang-format says
#                 (--dry-run --Werror: nothing is rewritten);
#   clang-tidy    the checks of .clang-tidy over every file of the compile
#                 database ($NNCC_BUILD/compile_commands.json, which CMake
#                 writes), each file once, two at a time;
#   cppcheck      over the same database, with the reasoned suppressions of
#                 tests/cppcheck-suppressions.txt.
# All three run; the test fails when any of them finds something. Skips (77)
# when a tool, git or the compile database is absent. LINT_JOBS sets the
# parallelism (default 2).
set -u
export LC_ALL=C # one sort order for comm
: "${NNCC_SRC:?}" "${NNCC_BUILD:?}"
for tool in clang-format clang-tidy cppcheck git; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not found"; exit 77; }
done
db="$NNCC_BUILD/compile_commands.json"
[ -f "$db" ] || { echo "skipped: no $db (configure with CMake first)"; exit 77; }
git -C "$NNCC_SRC" rev-parse --git-dir >/dev/null 2>&1 ||
  { echo "skipped: $NNCC_SRC is not a git checkout"; exit 77; }
jobs=${LINT_JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# ---- clang-format ---------------------------------------------------------
# The style is pinned to clang-format 14 (Debian bookworm's); other releases
# break some lines differently, so with them this part is skipped.
cd "$NNCC_SRC" || exit 1
git ls-files -z -- '*.c' '*.h' >"$work/sources"
cf_major=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$cf_major" != 14 ]; then
  echo "clang-format: skipped (version $cf_major; .clang-format is checked with 14)"
elif ! xargs -0 clang-format --style=file --dry-run --Werror <"$work/sources" \
    >"$work/format.log" 2>&1; then
  echo "clang-format: these files differ from .clang-format's style" \
       "(fix with: clang-format -i FILE):"
  grep -o '^[^:]*\.[ch]:' "$work/format.log" | sort -u | sed 's/:$//; s/^/  /'
  head -n 40 "$work/format.log"
  fail=1
else
  echo "clang-format: $(tr -cd '\0' <"$work/sources" | wc -c) files clean"
fi

# ---- clang-tidy -------------------------------------------------------------
# The source files of the database that git tracks, each once (runtime files
# are compiled twice, for the static and the shared library).
sed -n 's/^ *"file": "\(.*\)",\{0,1\}$/\1/p' "$db" | sort -u >"$work/db_files"
# (the database names them under the source path as CMake saw it, which
# may or may not be the symlink-free one)
{ git ls-files -- '*.c' | sed "s|^|$NNCC_SRC/|"
  git ls-files -- '*.c' | sed "s|^|$(pwd -P)/|"; } | sort -u >"$work/tracked"
comm -12 "$work/db_files" "$work/tracked" >"$work/tidy_files"
ntidy=$(wc -l <"$work/tidy_files")
[ "$ntidy" -gt 0 ] || { echo "clang-tidy: no tracked files in $db"; exit 1; }
start=$(date +%s)
if ! xargs -P "$jobs" -n 4 clang-tidy -p "$NNCC_BUILD" --quiet <"$work/tidy_files" \
    >"$work/tidy.log" 2>"$work/tidy.err"; then
  echo "clang-tidy: findings (.clang-tidy; fix, or NOLINT with a reason):"
  grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$work/tidy.log" | sort -u
  grep -E 'error:' "$work/tidy.err" | grep -v 'warnings treated as errors' | head -n 20
  fail=1
else
  echo "clang-tidy: $ntidy files clean ($(($(date +%s) - start))s)"
fi

# ---- cppcheck ---------------------------------------------------------------
start=$(date +%s)
if ! cppcheck --project="$db" --quiet --error-exitcode=1 -j "$jobs" \
    --enable=warning,performance,portability --inline-suppr \
    --suppressions-list="$NNCC_SRC/tests/cppcheck-suppressions.txt" \
    --cppcheck-build-dir="$work" \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    >"$work/cppcheck.log" 2>&1; then
  echo "cppcheck: findings (fix, or suppress with a reason in" \
       "tests/cppcheck-suppressions.txt):"
  cat "$work/cppcheck.log"
  fail=1
else
  echo "cppcheck: clean ($(($(date +%s) - start))s)"
fi

exit $fail
