#!/usr/bin/env bash
# Sourced by the Swift scripts (generate.sh, run-tests.sh, build-xcframework.sh). Sets `root` (the
# workspace) and `target_dir` (cargo's target directory, read from cargo so that
# CARGO_TARGET_DIR and build.target-dir are honoured), and defines `generate_swift_bindings`.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps --offline 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
if [ -z "$target_dir" ]; then
  echo "cannot read cargo's target directory (cargo metadata --format-version 1 --no-deps failed in $root)" >&2
  exit 1
fi

# generate_swift_bindings LIBRARY OUT_DIR: runs uniffi-bindgen (library mode, bindings/uniffi.toml)
# and writes OUT_DIR/ConsentKitFFI.swift and OUT_DIR/ConsentKitFFIC.h. uniffi's own module map is
# not used: ours are written by hand (Sources/ConsentKitFFIC for Linux, build-xcframework.sh for
# the XCFramework).
generate_swift_bindings() {
  local lib="$1" out="$2" gen
  gen="$(mktemp -d)"
  (cd "$root" && cargo run --quiet -p uniffi-bindgen -- generate "$lib" --language swift --no-format --out-dir "$gen") >&2
  # uniffi 0.32.2 applies `[bindings.swift.rename]` to an object's declaration but not to its
  # constructors' return types (uniffi_bindgen src/interface/visit_mut.rs never visits a
  # constructor's self type), so `ConsentKit = "RustConsentKit"` leaves three constructors
  # returning the old name. Finish the rename here, then make sure nothing of the old name is left.
  sed -e 's/-> ConsentKit  {/-> RustConsentKit  {/' -e 's/FfiConverterTypeConsentKit_lift(/FfiConverterTypeRustConsentKit_lift(/' \
    "$gen/ConsentKitFFI.swift" > "$out/ConsentKitFFI.swift"
  if grep -nE -- '-> ConsentKit\b|FfiConverterTypeConsentKit_|class ConsentKit\b' "$out/ConsentKitFFI.swift" >&2; then
    echo "generate: the generated Swift still names the Rust object ConsentKit (lines above); adapt the rename in common.sh" >&2
    rm -rf "$gen"
    return 1
  fi
  cp "$gen/ConsentKitFFIC.h" "$out/ConsentKitFFIC.h"
  rm -rf "$gen"
}
