#!/bin/sh
# Builds and installs com.consentkit:consentkit-kotlin into the local Maven repository, then
# compiles the README's Kotlin quick start as a separate client project and runs it (issue #16),
# after the client's own JUnit test of the test-fixtures clock (the README's "Tests of your app").
# Usage: bindings/kotlin/client/run.sh [mvn command, default: mvn]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
MVN=${MVN:-mvn}
# The obvious `mvn install` must not put the debug native library into a repository silently
# (`verify` refuses it). Only the check itself runs here, not a second build.
refusal=$(cd "$here/.." && $MVN -B -q --no-transfer-progress exec:exec@refuse-debug-native 2>&1) \
  && { echo "the default build would install the debug native library without a word:" >&2; echo "$refusal" >&2; exit 1; }
echo "$refusal" | grep -q "DEBUG native library" || { echo "the debug-library refusal does not say why: $refusal" >&2; exit 1; }
# This repository's own client test installs the debug build on purpose, and says so.
(cd "$here/.." && $MVN -B -q --no-transfer-progress install -DskipTests -Dconsentkit.allowDebugNative=true)
# The sources jar a repository requires carries the generated bindings too (issue #16 item 4).
version=$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' "$here/../pom.xml" | head -1)
sources="$here/../target/consentkit-kotlin-$version-sources.jar"
for entry in com/consentkit/ConsentManager.kt com/consentkit/ffi/consentkit_ffi.kt; do
  jar tf "$sources" | grep -qx "$entry" || { echo "the sources jar $sources lacks $entry" >&2; exit 1; }
done
# The POM says MPL-2.0: its text ships at the repository root and in both jars (MPL-2.0 3.1/3.2).
grep -q '^Mozilla Public License Version 2.0' "$repo/LICENSE" || { echo "no MPL-2.0 text in $repo/LICENSE" >&2; exit 1; }
# Maven Central refuses an artifact without a -javadoc jar (Dokka is not in the offline set: it holds
# a README naming the sources jar, as Central allows).
javadoc="$here/../target/consentkit-kotlin-$version-javadoc.jar"
[ -f "$javadoc" ] && jar tf "$javadoc" | grep -qx README.md || { echo "no javadoc jar with a README.md at $javadoc" >&2; exit 1; }
# The hand-set clock's wrapper ships only in the test-fixtures jar, never in the main jar.
main="$here/../target/consentkit-kotlin-$version.jar"
fixtures="$here/../target/consentkit-kotlin-$version-test-fixtures.jar"
! jar tf "$main" | grep -q '^com/consentkit/testing/' || { echo "$main carries the test fixtures (com/consentkit/testing)" >&2; exit 1; }
jar tf "$fixtures" | grep -qx com/consentkit/testing/ManualClock.class || { echo "$fixtures lacks ManualClock" >&2; exit 1; }
for j in "$here/../target/consentkit-kotlin-$version.jar" "$sources" "$javadoc"; do
  jar tf "$j" | grep -qx META-INF/LICENSE || { echo "$j lacks META-INF/LICENSE (the licence text)" >&2; exit 1; }
done
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
rm -rf "$here/target/surefire-reports"
cd "$here" && $MVN -B -q --no-transfer-progress test exec:java
[ -f "$here/target/surefire-reports/TEST-quickstart.ManualClockClientTest.xml" ] || { echo "the client test of the test-fixtures clock did not run" >&2; exit 1; }
