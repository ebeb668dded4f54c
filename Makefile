# Two commands do everything on a fresh Debian machine:
#   make run   - install what is missing, build, and open the desktop app
#   make test  - install what is missing and run every check and test
# The cargo target folder lives outside the clone so CI and later runs reuse the build.

CARGO_TARGET_DIR ?= $(HOME)/.cache/ecrf-target
export CARGO_TARGET_DIR
export PATH := $(HOME)/.cargo/bin:$(PATH)
ECRF := $(CARGO_TARGET_DIR)/debug/ecrf

.PHONY: run test setup ui build lint bench bench-desktop bench-pdf bench-export bench-sync bench-scale bench-web bench-lab bench-laptop demo-cli crash-test fuzz package-windows test-windows package test-packages

setup:
	@bash scripts/setup.sh

ui: setup
	cd ui && npm install --no-audit --no-fund --loglevel=error && npm run build

build: ui
	cargo build --workspace

# Opens the window (on this display; under Xvfb when there is none). On first run it offers
# to set the laptop up or to open a demo store.
run: build
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
	  $(CARGO_TARGET_DIR)/debug/ecrf-desktop; \
	else \
	  echo "No display: starting the app under Xvfb :95 (screenshot: import -display :95 -window root shot.png)"; \
	  Xvfb :95 -screen 0 1280x900x24 & XPID=$$!; sleep 1; \
	  DISPLAY=:95 $(CARGO_TARGET_DIR)/debug/ecrf-desktop; kill $$XPID; \
	fi

# The same demo through the command line.
demo-cli: build
	@[ -f demo/demo.ecrf ] || $(ECRF) demo --path demo/demo.ecrf
	ECRF_STORE=demo/demo.ecrf ECRF_USER=nurse ECRF_PASSWORD=demo-ward-2026 $(ECRF) form show 01-0001 DLY#1

lint: ui
	cd ui && npm run lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Server tests need PostgreSQL: a throwaway cluster is started (and stopped) unless
# DATABASE_URL is set.
test: lint
	bash scripts/pg.sh run cargo test --workspace

# Windows (64-bit), cross-built with mingw-w64 (scripts/setup-windows.sh installs it; `make test`
# never needs it): ecrf.exe, ecrf-desktop.exe and the desktop app's NSIS installer in
# dist/windows/; the Wine test runs ecrf.exe end to end (store, daily log, audit chain, backup
# and restore, PDF, every export format).
package-windows: ui
	@bash scripts/setup-windows.sh
	bash scripts/windows/package.sh all

test-windows: setup
	@bash scripts/setup-windows.sh
	bash scripts/test-windows.sh

# Release (Linux): the desktop app's and the server's Debian packages in target-packages/
# (scripts/package-deb.sh, packaging/linux/), and their install test on this machine (installs,
# runs the server as its unit would against a throwaway PostgreSQL and the app under Xvfb,
# then removes both).
package: ui
	bash scripts/package-deb.sh

test-packages: package
	bash scripts/test-packages.sh

bench: setup
	cargo run --release -p ecrf-cli -- bench

bench-desktop: ui
	cargo build --release -p ecrf-desktop
	bash scripts/bench-desktop.sh $(CARGO_TARGET_DIR)/release/ecrf-desktop

bench-pdf: setup
	cargo run --release -p ecrf-cli -- print bench

bench-export: setup
	cargo run --release -p ecrf-cli -- export-bench
# The crash harness at length: N SIGKILLs of a writer saving daily logs and rewriting key slots
# (the short run, 50 kills, is part of `make test`).
N ?= 1000
crash-test: setup
	ECRF_CRASH_KILLS=$(N) cargo test -p ecrf-cli --test crash -- --nocapture

# Coverage-guided fuzzing of the local parsers (on demand, not part of `make test`):
# FUZZ_SECONDS per target. cargo-fuzz wants nightly flags; RUSTC_BOOTSTRAP=1 allows them here.
FUZZ_SECONDS ?= 60
fuzz: setup
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	for t in lease_csv study_file lab_fhir lab_hl7 lab_csv; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; \
	done
	RUSTC_BOOTSTRAP=1 cargo fuzz run --features store backup_header -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096

# Sync: first full sync of a site, one-item sync, 200 devices at once (throwaway PostgreSQL
# unless DATABASE_URL is set), on a durable cluster as production runs it, then on the tests'
# cluster without fsync for comparison.
bench-sync: setup
	cargo build --release -p ecrf-cli
	@echo "== PostgreSQL durable (fsync, synchronous_commit, full_page_writes on)"
	PG_DURABLE=1 bash scripts/pg.sh run $(CARGO_TARGET_DIR)/release/ecrf bench-sync
	@echo "== PostgreSQL not durable (as the tests run it)"
	PG_DURABLE=0 bash scripts/pg.sh run $(CARGO_TARGET_DIR)/release/ecrf bench-sync

# The server, sync and exports at 1x, 3x and 10x the trial (50 sites, 3,580 subjects, ~5 million
# changes at 10x, sent through the real push path), then one very large site (600 subjects), on
# a durable PostgreSQL; ends with a table of the sizes against a linear extrapolation. The
# allocator setting is for the bench's own process, whose 500 threads stand for 500 laptops
# (see DEVICES_ALLOCATOR in crates/cli/src/bench_scale.rs); the server runs without it.
bench-scale: setup
	cargo build --release -p ecrf-cli
	MIMALLOC_ARENA_EAGER_COMMIT=0 PG_DURABLE=1 bash scripts/pg.sh run $(CARGO_TARGET_DIR)/release/ecrf bench-scale

# The web view's dashboard over ten times the trial (3,580 subjects x 30 daily logs).
bench-web: setup
	cargo build --release -p ecrf-cli
	bash scripts/pg.sh run $(CARGO_TARGET_DIR)/release/ecrf bench-web

# The laptop at scale: one site of 600 subjects x (ECMO + 30 daily logs) in one store: save
# p50/p99 run by run, login and subject list, store size, `ecrf store check`, and the desktop
# app on it (cold start to the subject list, idle memory with its WebKit processes).
bench-laptop: ui
	cargo build --release -p ecrf-cli
	cargo build --release -p ecrf-desktop
	bash scripts/bench-laptop.sh $(CARGO_TARGET_DIR)/release

# Reading and matching a month of laboratory results for 60 patients (~20,000 observations).
bench-lab: setup
	cargo build --release -p ecrf-cli
	$(CARGO_TARGET_DIR)/release/ecrf bench-lab
