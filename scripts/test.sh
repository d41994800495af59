#!/usr/bin/env bash
# Cria's whole test suite, in the order CI runs it. Sets up what it needs first.
# Any failure stops the run with a non-zero exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
started=$SECONDS

section() { printf '\n======== %s (%ds) ========\n' "$*" "$((SECONDS - started))"; }

section "setup"
scripts/setup.sh --test

section "ui: type check, unit tests, build"
(cd ui && npm run --silent check && npm run --silent test && npm run --silent build)

section "rust: format"
cargo fmt --all --check

section "rust: clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "rust: tests"
cargo test --workspace --locked

section "end-to-end: the built app under Xvfb"
# Same package selection and targets as the test build above, so Cargo resolves the same
# features and reuses everything (a `-p cria-app` build would rebuild llama.cpp).
cargo build --workspace --all-targets --locked
CRIA_APP="$target_dir/debug/cria-app" CRIA_FIXTURE_WRITER="$target_dir/debug/examples/llama4_fixture" \
    xvfb-run --auto-servernum --server-args="-screen 0 1100x760x24" \
    node --test --test-concurrency=1 tests/e2e/

section "fuzz: the GGUF reader, a bounded smoke run"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz-smoke.sh

section "done"
