#!/bin/sh
# Builds and installs com.consentkit:consentkit-kotlin into the local Maven repository, then
# compiles the README's Kotlin quick start as a separate client project and runs it (issue #16).
# Usage: bindings/kotlin/client/run.sh [mvn command, default: mvn]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
MVN=${MVN:-mvn}
(cd "$here/.." && $MVN -B -q --no-transfer-progress install -DskipTests)
mkdir -p "$here/target/quickstart"
out="$here/target/quickstart/QuickStart.kt"
awk '/<!-- quick-start-kotlin:begin -->/{on=1; next} /<!-- quick-start-kotlin:end -->/{on=0} on && !/^```/' "$repo/README.md" > "$here/target/quickstart/block.txt"
{
  echo "package quickstart"
  echo
  grep '^import ' "$here/target/quickstart/block.txt"
  echo
  echo "fun quickStart(filesDir: String, userId: String, scope: kotlinx.coroutines.CoroutineScope, sendAnalytics: () -> Unit) {"
  grep -v '^import ' "$here/target/quickstart/block.txt" | sed 's/^/    /'
  echo "}"
} > "$out"
cd "$here" && $MVN -B -q --no-transfer-progress compile exec:java
