#!/usr/bin/env bash
# Chooses where cargo and Maven get their dependencies, and prints that folder (empty: the public
# registries). Order: $OFFLINE_DEPS if set (a folder holding crates/ and maven/); the public
# registries if crates.io answers; else shared/deps beside the checkout (or beside a folder above it); else fail.
# Used by the Makefile (`make deps`) and by .ci/run. Prints nothing else on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
check() {
  [ -d "$1/crates" ] && [ -d "$1/maven" ] || { echo "OFFLINE_DEPS=$1 holds no crates/ and maven/ folders" >&2; exit 2; }
  (cd "$1" && pwd)
}
if [ -n "${OFFLINE_DEPS:-}" ]; then check "$OFFLINE_DEPS"; exit 0; fi
# The registries answer? Where they are unreachable, the host does not resolve and this fails at once.
if curl -fsS --max-time 10 -o /dev/null https://index.crates.io/config.json 2>/dev/null \
   && curl -fsS --max-time 10 -o /dev/null https://repo.maven.apache.org/maven2/ 2>/dev/null; then
  echo ""; exit 0
fi
# A shared/deps folder beside the checkout or beside any folder above it (CI lays shared/ beside the clone).
dir="$root"
while [ "$dir" != "/" ]; do
  dir="$(dirname "$dir")"
  d="$dir/shared/deps"
  if [ -d "$d/crates" ]; then check "$d"; exit 0; fi
done
echo "no package registry answers and no offline set was found: set OFFLINE_DEPS=DIR (a folder with crates/ and maven/)" >&2
echo "__unavailable__"
