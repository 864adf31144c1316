#!/bin/sh
# ensure-packages.sh PKG... — installs the Debian packages that are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
missing=""
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
cmd="apt-get update && apt-get install -y$missing"
if [ "$(id -u)" = 0 ]; then
  echo "nncc: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q$missing
else
  echo "nncc: missing Debian packages:$missing" >&2
  echo "nncc: run as root:  $cmd" >&2
  exit 1
fi
