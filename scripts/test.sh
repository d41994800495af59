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
cargo build -p cria-app --locked
CRIA_APP="$target_dir/debug/cria-app" xvfb-run --auto-servernum --server-args="-screen 0 1100x760x24" \
    node --test tests/e2e/

section "fuzz: the GGUF reader, a bounded smoke run"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz-smoke.sh

section "done"
