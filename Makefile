# ConsentKit. `make help` lists the targets.
.DEFAULT_GOAL := help
# bash with pipefail: a benchmark piped into scripts/bench-section.sh fails the target when it fails.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
CARGO ?= cargo
MVN ?= mvn
ROOT := $(abspath .)
KOTLIN := bindings/kotlin
SWIFT_DIR := bindings/swift
# The Swift toolchain's `swift`. `make test SWIFT=skip` leaves the Swift suite out, saying so loudly.
SWIFT ?= swift
# The host's shared-library suffix (the release cdylib the benchmarks load).
DYLIB_EXT := $(if $(filter Darwin,$(shell uname)),dylib,so)

# ----- dependencies: the public registries, or an offline set -----
# OFFLINE_DEPS=DIR builds from DIR/crates (a cargo local registry) and DIR/maven (a Maven file
# repository), for air-gapped CI. Unset, scripts/deps-source.sh chooses: the public registries when
# they answer, else ../shared/deps beside the checkout. Set but empty: the public registries.
# Chosen once (`:=`) and exported, so every recipe and sub-make sees the same choice.
ifeq ($(origin OFFLINE_DEPS),undefined)
OFFLINE_DEPS := $(shell scripts/deps-source.sh)
endif
export OFFLINE_DEPS
ifneq ($(filter-out __unavailable__,$(strip $(OFFLINE_DEPS))),)
export CARGO_HOME := $(ROOT)/target/offline-cargo-home
MVN := $(MVN) -s $(ROOT)/target/offline-settings.xml
endif

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-18s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Say which dependency source this build uses (and write its cargo/Maven settings)
	@scripts/deps-configure.sh "$(OFFLINE_DEPS)"

.PHONY: demo
demo: deps ## Run the main job: the support tool's guided demo on a local SQLite file
	$(CARGO) run --quiet -p consentkit-cli -- demo

# ----- build -----

.PHONY: build
build: build-rust build-kotlin build-swift ## Build everything that builds on this machine (Rust, Kotlin, Swift)

.PHONY: build-rust
build-rust: deps ## Rust: core, FFI cdylib, support tool
	$(CARGO) build --workspace

.PHONY: build-staticlib
build-staticlib: deps ## Rust: the FFI staticlib (what iOS links; large in debug)
	$(CARGO) rustc -p consentkit-ffi --lib --crate-type staticlib --release

.PHONY: build-kotlin
build-kotlin: deps tools-kotlin ## Kotlin: build the cdylib, generate bindings, compile (Maven)
	cd $(KOTLIN) && $(MVN) -B -q compile

.PHONY: build-swift
build-swift: deps ## Swift: generate bindings, build the package and the iOS sample (Linux or macOS)
	@libdir="$$($(SWIFT_DIR)/generate.sh)" && for p in $(SWIFT_DIR) ios-sample; do \
		(cd $$p && $(SWIFT) build -Xlinker -L"$$libdir" -Xlinker -rpath -Xlinker "$$libdir") || exit 1; done

.PHONY: xcframework
xcframework: deps ## Swift: ConsentKitFFI.xcframework (iOS device, iOS simulator, macOS); a Mac with Xcode only
	$(SWIFT_DIR)/build-xcframework.sh

# ----- test -----

.PHONY: test
test: test-rust test-cli-install test-server test-kotlin test-swift ## Run every test suite (Rust, server on PostgreSQL, Kotlin, Swift, the conformance scenarios in each)

.PHONY: test-rust
test-rust: deps ## Rust: core unit/integration/property tests, FFI conformance runner, CLI end-to-end tests
	$(CARGO) test --workspace --exclude consentkit-server
	@# The size benchmark's interface-floor generator (its own workspace, as bench/size-baseline).
	CARGO_TARGET_DIR=$(ROOT)/target/bench-size/interface-gen-target $(CARGO) test --quiet --manifest-path bench/size-interface-gen/Cargo.toml

.PHONY: tools-postgres
tools-postgres: ## Server: make sure PostgreSQL 15 is there (installs Debian's postgresql-15 if missing and root)
	@scripts/ensure-postgres.sh

.PHONY: tools-chromium
tools-chromium: ## Console: make sure Chromium and chromedriver are there (installs Debian's if missing and root)
	@scripts/ensure-chromium.sh

.PHONY: test-server
test-server: deps tools-postgres tools-chromium ## Server: the ledger on a real PostgreSQL 15 the tests start (initdb in a temp folder), the console in headless Chromium
	$(CARGO) test -p consentkit-server

.PHONY: test-cli-install
test-cli-install: deps ## CLI: `cargo install --path cli` works; the installed `consentkit --version` is the workspace version
	rm -rf target/install-check
	$(CARGO) install --quiet --locked --debug --path cli --root target/install-check --target-dir target
	@want="consentkit $$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"; \
	got="$$(target/install-check/bin/consentkit --version)"; \
	if [ "$$got" = "$$want" ]; then echo "cargo install --path cli: $$got"; else echo "installed '$$got', expected '$$want'"; exit 1; fi

.PHONY: tools-kotlin
tools-kotlin: ## Kotlin: make sure a JDK and Maven are there (installs Debian's if missing and root)
	@command -v $(MVN) >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq maven default-jdk-headless >/dev/null; \
		else echo "the Kotlin suite needs a JDK 17+ and Maven on PATH"; exit 1; fi; }

.PHONY: test-kotlin
test-kotlin: deps tools-kotlin ## Kotlin: JUnit on the desktop JVM through JNA, incl. the conformance runner; then the README quick start and its test-fixtures clock test as a client of the installed package
	@# The bindings are generated anew each build: classes of types since removed must not linger.
	rm -rf $(KOTLIN)/target/classes/com/consentkit/ffi
	cd $(KOTLIN) && $(MVN) -B --no-transfer-progress test
	MVN="$(MVN)" $(KOTLIN)/client/run.sh

.PHONY: test-swift
test-swift: deps ## Swift: XCTest of the package (incl. conformance, version) and of the iOS sample, the README quick start as a separate client package, the release manifest; fails without swift
ifeq ($(SWIFT),skip)
	@echo "********************************************************************"
	@echo "*** Swift suite SKIPPED on request (SWIFT=skip): nothing of the  ***"
	@echo "*** Swift package or the iOS sample was built or tested.         ***"
	@echo "********************************************************************"
else
	SWIFT="$(SWIFT)" $(SWIFT_DIR)/run-tests.sh
endif

.PHONY: test-conformance
test-conformance: deps ## Only the cross-language conformance scenarios (Rust and Kotlin runners)
	$(CARGO) test -p consentkit-ffi --test conformance
	cd $(KOTLIN) && $(MVN) -B --no-transfer-progress test -Dtest=ConformanceTest

# ----- bench -----

.PHONY: bench
bench: bench-rust bench-kotlin bench-swift bench-size bench-server bench-cli ## Benchmarks that print ratios and write BENCHMARKS.md

.PHONY: bench-cli
bench-cli: deps ## CLI: verify on 1 M events vs a bare SQLite scan, and its peak memory at 100 k and 1 M events
	$(CARGO) build --release -p consentkit-cli --bin consentkit --example bench_verify
	target/release/examples/bench_verify target/release/consentkit $(BENCH_EVENTS) | scripts/bench-section.sh cli

.PHONY: bench-size
bench-size: deps ## Size: our share of the stripped release cdylib against a uniffi + SQLite baseline
	scripts/bench-size.sh | scripts/bench-section.sh size

.PHONY: bench-rust
bench-rust: deps ## Rust: check, durable record, open, history, erasures, bytes/event, each vs a reference (ROWS=key: only those, not written)
	$(CARGO) bench -p consentkit-core --bench perf -- $(ROWS) > target/bench-rust.md
	@cat target/bench-rust.md
	@if [ -z "$(ROWS)" ]; then scripts/bench-section.sh rust < target/bench-rust.md; fi

.PHONY: bench-server
bench-server: deps tools-postgres ## Server: ingest events/s and p99 at a fixed rate, state/check p99 at 1M events, export, vs bare SQL
	$(CARGO) bench -p consentkit-server --bench server_load | scripts/bench-section.sh server

.PHONY: bench-kotlin
bench-kotlin: deps ## Kotlin: cached gate vs a HashMap get, uncached check vs a no-argument uniffi call, durable write and read vs a plain Kotlin store (release cdylib)
	$(CARGO) rustc --quiet --release -p consentkit-ffi --lib --crate-type cdylib # as shipped: a plain build of this lib + cdylib crate skips LTO (rust-lang/cargo#9672)
	cd $(KOTLIN) && $(MVN) -B -q test-compile exec:java -Dexec.mainClass=com.consentkit.bench.CheckBenchKt -Dexec.classpathScope=test \
		-Duniffi.component.consentkit_ffi.libraryOverride=$(ROOT)/target/release/libconsentkit_ffi.$(DYLIB_EXT) \
		-Dconsentkit.bench.out=$(ROOT)/target/bench-kotlin.md
	scripts/bench-section.sh kotlin < target/bench-kotlin.md

.PHONY: bench-swift
bench-swift: deps ## Swift: cached gate vs a Dictionary lookup, uncached call vs a no-argument uniffi call (release builds)
	SWIFT="$(SWIFT)" $(SWIFT_DIR)/bench.sh > target/bench-swift.md
	@cat target/bench-swift.md
	scripts/bench-section.sh swift < target/bench-swift.md

# ----- upkeep -----

.PHONY: lint
lint: deps ## clippy and rustfmt check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

.PHONY: clean
clean: ## Remove build outputs
	$(CARGO) clean
	rm -rf $(KOTLIN)/target $(KOTLIN)/client/target $(SWIFT_DIR)/.build ios-sample/.build
	rm -f $(SWIFT_DIR)/Sources/ConsentKitFFI/ConsentKitFFI.swift $(SWIFT_DIR)/Sources/ConsentKitFFIC/ConsentKitFFIC.h
