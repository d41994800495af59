#!/usr/bin/env bash
# Fuzzes the GGUF reader for a bounded time (default 60 s, at most 60 s unless FUZZ_SECONDS says
# otherwise for a long local run), seeded with the Llama 4 fixtures.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`, about 3.5 min on 2 cores) and a C++
# compiler. Works on the stable toolchain: with `-s none` (no sanitizer; the reader forbids unsafe
# code, so AddressSanitizer would add nothing) cargo-fuzz 0.13 passes no nightly-only flags.
# First build about 2 min on 2 cores, then ~4,500 runs/s with the 1.3 MB fixture in the corpus.
#
# Usage: scripts/fuzz-smoke.sh            # 60 s smoke run (CI)
#        FUZZ_SECONDS=3600 scripts/fuzz-smoke.sh   # a longer local run
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
corpus=corpus/read_gguf

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz is not installed; run: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

mkdir -p "fuzz/$corpus"
cargo run --quiet -p cria-gguf --example fuzz_seeds -- "fuzz/$corpus"

# Run from the fuzz crate: it is its own workspace.
cd fuzz
cargo fuzz run -s none --release read_gguf "$corpus" -- \
    -max_total_time="$seconds" -max_len=2000000 -rss_limit_mb=2048 -timeout=10
