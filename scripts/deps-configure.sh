#!/usr/bin/env bash
# Writes the build's own cargo and Maven settings for the dependency source chosen by
# deps-source.sh, and prints the one line that says which source this build uses.
#   $1: the offline folder (crates/ + maven/), or empty for the public registries.
# The user's own ~/.cargo and ~/.m2 are never touched: the offline build gets target/offline-cargo-home
# (CARGO_HOME, set by the Makefile) and target/offline-settings.xml (mvn -s) with a local repository
# of its own.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deps="${1:-}"
if [ "$deps" = "__unavailable__" ]; then
  echo "dependencies: none reachable (no registry answers and no offline set): set OFFLINE_DEPS=DIR" >&2
  exit 2
fi
if [ -z "$deps" ]; then
  echo "dependencies: public registries (crates.io, Maven Central)"
  exit 0
fi
if [ ! -d "$deps/crates" ] || [ ! -d "$deps/maven" ]; then
  echo "OFFLINE_DEPS=$deps holds no crates/ and maven/ folders" >&2
  exit 2
fi
deps="$(cd "$deps" && pwd)"
home="$root/target/offline-cargo-home"
mkdir -p "$home" "$root/target/offline-m2"
cat > "$home/config.toml" <<CFG
# Written by scripts/deps-configure.sh: every crate comes from the offline set.
[source.crates-io]
replace-with = "offline"
[source.offline]
local-registry = "$deps/crates"
CFG
cat > "$root/target/offline-settings.xml" <<XML
<!-- Written by scripts/deps-configure.sh: every Maven repository is the offline set. -->
<settings>
  <localRepository>$root/target/offline-m2</localRepository>
  <offline>false</offline>
  <mirrors><mirror><id>offline</id><mirrorOf>*</mirrorOf><url>file://$deps/maven</url></mirror></mirrors>
</settings>
XML
echo "dependencies: offline set at $deps (crates/ as a cargo local registry, maven/ as a Maven mirror)"
