#!/bin/sh
# Run by Maven's `verify` phase (so before `install` and `deploy`): refuses a jar whose native
# library comes from cargo's debug profile, unless the build says that is meant, and a jar whose
# library is not the one in RUST_LIBDIR (a copy left by the other profile's build).
# Usage: check-native-profile.sh RUST_LIBDIR ALLOW_DEBUG(true|false) JAR_LIBDIR
set -eu
libdir=${1%/}
allow=$2
jarlibdir=${3:-}
case "$libdir" in
  */debug)
    if [ "$allow" = true ]; then
      echo "WARNING: consentkit-kotlin carries the DEBUG native library ($libdir), allowed by -Dconsentkit.allowDebugNative=true; do not publish this jar."
    else
      cat >&2 <<MSG
ERROR: consentkit-kotlin would carry the DEBUG native library ($libdir/libconsentkit_ffi.*):
unoptimised, with debug assertions. Refusing to verify, install or deploy it.
  - For a jar to use or publish:  mvn -Prelease install   (builds and tests the release library)
  - To install the debug jar on purpose (local experiments, this repository's own tests):
                                  mvn install -Dconsentkit.allowDebugNative=true
MSG
      exit 1
    fi
    ;;
esac
for name in libconsentkit_ffi.so libconsentkit_ffi.dylib; do
  if [ -n "$jarlibdir" ] && [ -f "$jarlibdir/$name" ] && ! cmp -s "$jarlibdir/$name" "$libdir/$name"; then
    echo "ERROR: the jar's native library $jarlibdir/$name is not $libdir/$name; run 'mvn clean' and build again." >&2
    exit 1
  fi
done
echo "consentkit-kotlin carries the native library from $libdir"
