# Two commands do everything on a fresh Debian machine:
#   make run   - install what is missing, build, and open the app on a local demo store
#   make test  - install what is missing and run every check and test
# The cargo target folder lives outside the clone so CI and later runs reuse the build.

CARGO_TARGET_DIR ?= $(HOME)/.cache/ecrf-target
export CARGO_TARGET_DIR
ECRF := $(CARGO_TARGET_DIR)/debug/ecrf
DEMO := demo/demo.ecrf

.PHONY: run test setup build lint bench bench-pdf demo

setup:
	@bash scripts/setup.sh

build: setup
	cargo build --workspace

run: build
	@if [ ! -f $(DEMO) ]; then $(ECRF) demo --path $(DEMO); fi
	@echo
	@echo "The desktop window is not built yet; here is the demo store through the command line."
	ECRF_STORE=$(DEMO) ECRF_USER=nurse ECRF_PASSWORD=demo-password $(ECRF) subject list
	ECRF_STORE=$(DEMO) ECRF_USER=nurse ECRF_PASSWORD=demo-password $(ECRF) form show 01-0001 DLY#1
	ECRF_STORE=$(DEMO) ECRF_USER=nurse ECRF_PASSWORD=demo-password $(ECRF) --lang zh form show 01-0001 ECMO
	ECRF_STORE=$(DEMO) ECRF_USER=nurse ECRF_PASSWORD=demo-password $(ECRF) audit verify
	@echo
	@echo "More: ECRF_STORE=$(DEMO) ECRF_USER=nurse $(ECRF) --help   (password: demo-password)"

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: lint
	cargo test --workspace

bench: setup
	cargo run --release -p ecrf-cli -- bench

bench-pdf: setup
	cargo run --release -p ecrf-cli -- print bench
