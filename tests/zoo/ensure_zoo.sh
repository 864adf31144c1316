#!/usr/bin/env bash
# ensure_zoo.sh - make sure ZOODIR holds the model zoo for the current
# make_zoo.py and torch/torchvision versions; shared by zoo.sh and e2e.sh.
#
# Usage: ensure_zoo.sh PYTHON ZOODIR
#
# PYTHON must import torch and torchvision (the callers find one and skip
# when there is none). The zoo is rebuilt only when it is missing or when
# make_zoo.py, the python or the torch/torchvision versions changed: a hash
# of those is kept in ZOODIR/.stamp. The build goes to a temporary folder
# renamed into place, under a lock (ZOODIR.lock), so tests running in
# parallel neither see a half-built zoo nor build it twice.
set -u

py="${1:?usage: ensure_zoo.sh PYTHON ZOODIR}"
zoo="${2:?usage: ensure_zoo.sh PYTHON ZOODIR}"
src="$(cd "$(dirname "$0")/../.." && pwd)"

versions=$("$py" -c 'import torch, torchvision
print(torch.__version__, torchvision.__version__)') || {
  echo "ensure_zoo.sh: error: $py does not import torch and torchvision" >&2
  exit 1
}
stamp=$( { cat "$src/tests/zoo/make_zoo.py"; echo "$py $versions"; } \
         | sha256sum | cut -d' ' -f1)

mkdir -p "$(dirname "$zoo")"
exec 9>"$zoo.lock"
flock 9
if [ "$(cat "$zoo/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "building the zoo in $zoo (torch $versions)"
  tmp="$zoo.tmp.$$"
  rm -rf "$tmp"
  if ! "$py" "$src/tests/zoo/make_zoo.py" "$tmp"; then
    rm -rf "$tmp"
    echo "ensure_zoo.sh: error: make_zoo.py failed" >&2
    exit 1
  fi
  echo "$stamp" > "$tmp/.stamp"
  rm -rf "$zoo"
  mv "$tmp" "$zoo"
fi
exit 0
