#!/usr/bin/env bash
# Installs what Cria needs to build and run on a Debian or Ubuntu machine, and (with --test)
# what its tests need. Safe to run again: each step checks before it installs.
#
#   scripts/setup.sh          system libraries, the UI's npm packages
#   scripts/setup.sh --test   ...plus tauri-driver, and the real small test model
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for_tests=false
[[ "${1:-}" == "--test" ]] && for_tests=true

say() { printf '\n==> %s\n' "$*"; }

# Build and run: WebKitGTK for the window, a C/C++ toolchain + cmake + libclang for llama.cpp.
packages=(
    build-essential pkg-config curl file cmake clang libclang-dev libssl-dev
    libwebkit2gtk-4.1-dev librsvg2-dev libayatana-appindicator3-dev libxdo-dev
)
# Tests: a virtual display, WebKit's WebDriver, poppler for side-by-side checks, ImageMagick's
# `import` for screenshots of the display, a Korean font so screenshots show Hangul, and for the
# real drag-and-drop test a GTK 3 drag source in Python (PyGObject) moved by xdotool.
$for_tests && packages+=(
    xvfb xauth webkit2gtk-driver poppler-utils imagemagick fonts-nanum
    python3-gi gir1.2-gtk-3.0 xdotool
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    say "installing system packages: ${missing[*]}"
    if ! command -v apt-get >/dev/null; then
        echo "error: this script installs with apt-get (Debian/Ubuntu); install these yourself: ${missing[*]}" >&2
        exit 1
    fi
    sudo_cmd=()
    ((EUID == 0)) || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    say "system packages present"
fi

for tool in cargo node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool is required (Rust from rustup, Node.js 20 or newer)" >&2
        exit 1
    fi
done

say "installing the UI's npm packages"
if [[ ! -d "$root/ui/node_modules" || "$root/ui/package-lock.json" -nt "$root/ui/node_modules/.package-lock.json" ]]; then
    (cd "$root/ui" && npm ci --no-audit --no-fund --loglevel=error)
else
    echo "up to date"
fi

if $for_tests; then
    if ! command -v tauri-driver >/dev/null; then
        say "installing tauri-driver (WebDriver bridge for the end-to-end tests)"
        cargo install tauri-driver --version "^2" --locked --quiet
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz (the bounded fuzz run of the GGUF reader)"
        cargo install cargo-fuzz --version "^0.13" --locked --quiet
    fi
    say "fetching the test model"
    "$root/scripts/fetch-test-models.sh"
fi
