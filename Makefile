# ConsentKit. `make help` lists the targets.
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: demo
demo: ## Run the main job: the support tool's guided demo on a local SQLite file
	$(CARGO) run --quiet -p consentkit-cli -- demo

.PHONY: build
build: build-rust ## Build everything that builds on this machine

.PHONY: build-rust
build-rust: ## Build the Rust crates (core, cli)
	$(CARGO) build --workspace

.PHONY: test
test: test-rust ## Run every test suite

.PHONY: test-rust
test-rust: ## Rust: core unit, integration and property tests, CLI end-to-end tests
	$(CARGO) test --workspace

.PHONY: bench
bench: ## Benchmarks that print ratios (gate check, contention, start-up)
	$(CARGO) bench -p consentkit-core --bench gate -- --warm-up-time 1 --measurement-time 2

.PHONY: lint
lint: ## clippy and rustfmt check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

.PHONY: clean
clean: ## Remove build outputs
	$(CARGO) clean
