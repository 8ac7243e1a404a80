#!/usr/bin/env bash
# Runs the Swift package's XCTests against the host library, or says in one line why it cannot.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v swift >/dev/null 2>&1; then
  echo "Swift tests SKIPPED: no Swift toolchain on PATH (install one, e.g. swift.org's Linux toolchain, to run them)"
  exit 0
fi
"$here/generate.sh"
libdir="$(cd "$here/../.." && pwd)/target/debug"
cd "$here"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" DYLD_LIBRARY_PATH="$libdir" CONSENTKIT_LIB_DIR="$libdir" swift test
