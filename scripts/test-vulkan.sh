#!/usr/bin/env bash
# Cria's Vulkan backend built and exercised without a GPU: llama.cpp with GGML_VULKAN in a
# separate target folder, then the engine's GPU-path tests (tests/integration/gpu.rs, with
# CRIA_TEST_VULKAN=1) and the CLI on the first Vulkan device, which on a machine without a GPU is
# Mesa's lavapipe (llvmpipe), a CPU implementation of Vulkan. Prints a summary; exits non-zero
# if any step failed.
#
# NOT run by CI: the Vulkan build of llama.cpp (337 C/C++ units, 155 compute shaders compiled
# with glslc) took 73 min on 2 busy cores the first time, and on lavapipe each worker spends
# minutes compiling shader pipelines before its first token. Run it by hand after engine changes
# that touch offload or devices.
#
# Needs (Debian/Ubuntu): apt-get install -y libvulkan-dev glslc glslang-tools mesa-vulkan-drivers
# vulkan-tools. Debian 12's Vulkan headers (1.3.239) are too old for this llama.cpp's ggml-vulkan
# (it uses vk::LayerSettingEXT from VK_EXT_layer_settings unconditionally; no CMake option avoids
# it): when the system headers lack that extension, this script fetches Debian 13's
# libvulkan-dev and spirv-headers packages with `apt-get download` (a private apt configuration,
# the system's sources untouched), unpacks them with `dpkg -x` into
# ~/.cache/cria/vulkan-headers, and points llama.cpp's CMake at them (VULKAN_SDK,
# CMAKE_PREFIX_PATH). The Vulkan loader stays the system's.
#
# Usage: scripts/test-vulkan.sh
#   CRIA_VULKAN_TARGET_DIR=DIR   cargo target folder (default target-vulkan/ in the repository)
#   CRIA_VULKAN_HEADERS=DIR      where Debian 13's headers are fetched and unpacked (default
#                                ~/.cache/cria/vulkan-headers)
#   CRIA_DEBIAN_MIRROR=URL       Debian archive to fetch them from (default: the first one in this
#                                machine's apt sources)
#   GGML_VK_VISIBLE_DEVICES=N    Vulkan device(s) to use; unset and only CPU-type devices present
#                                (lavapipe), it is set to 0, since ggml skips CPU-type devices
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CRIA_VULKAN_TARGET_DIR:-$root/target-vulkan}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cria"
started=$SECONDS
summary=()
failed=0

die() {
    echo "test-vulkan: $*" >&2
    exit 1
}
section() { printf '\n======== %s (%ds) ========\n' "$*" "$((SECONDS - started))"; }
record() {
    # record STATUS TEXT
    summary+=("$(printf '%-4s %s' "$1" "$2")")
    [[ "$1" == ok ]] || failed=1
}

section "prerequisites"
for tool in cargo glslc vulkaninfo dpkg apt-get; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "needs '$tool' (apt-get install -y libvulkan-dev glslc glslang-tools mesa-vulkan-drivers vulkan-tools)"
done
[[ -f /usr/include/vulkan/vulkan_core.h ]] || die "no Vulkan headers (apt-get install -y libvulkan-dev)"
mkdir -p "$cache_root"
vulkaninfo --summary >"$cache_root/vulkaninfo.txt" 2>&1 || true
grep -q 'deviceName' "$cache_root/vulkaninfo.txt" ||
    die "the Vulkan loader finds no device (apt-get install -y mesa-vulkan-drivers for lavapipe); see $cache_root/vulkaninfo.txt"
grep -E 'deviceType|deviceName' "$cache_root/vulkaninfo.txt" | sed 's/^[[:space:]]*/  /'

# --- Vulkan headers new enough for ggml-vulkan ----------------------------------------------------
headers_ok() { grep -q 'VK_EXT_layer_settings' "$1/include/vulkan/vulkan_core.h" 2>/dev/null; }
spirv_ok() { [[ -f "$1/share/cmake/SPIRV-Headers/SPIRV-HeadersConfig.cmake" ]]; }
if headers_ok /usr && spirv_ok /usr; then
    echo "test-vulkan: system Vulkan headers are new enough"
else
    private="${CRIA_VULKAN_HEADERS:-$cache_root/vulkan-headers}"
    prefix="$private/root/usr"
    if ! headers_ok "$prefix" || ! spirv_ok "$prefix"; then
        echo "test-vulkan: system Vulkan headers ($(awk '/define VK_HEADER_VERSION /{print "1.x." $3}' /usr/include/vulkan/vulkan_core.h)) lack VK_EXT_layer_settings or SPIRV-Headers; fetching Debian 13's into $private" >&2
        keyring=/usr/share/keyrings/debian-archive-trixie-stable.gpg
        [[ -f "$keyring" ]] || die "no $keyring to verify Debian 13 packages (apt-get install debian-archive-keyring)"
        mkdir -p "$private/lists/partial" "$private/cache/archives/partial" "$private/debs"
        # The Debian archive this machine already uses (its apt sources), for Debian 13's suite.
        mirror="${CRIA_DEBIAN_MIRROR:-$(
            {
                sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
                awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
                    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
            } | tr ' ' '\n' | grep -v -e security -e '^$' | head -n 1
        )}"
        [[ -n "$mirror" ]] || die "no Debian archive in this machine's apt sources; set CRIA_DEBIAN_MIRROR"
        echo "deb [signed-by=$keyring] $mirror trixie main" >"$private/sources.list"
        apt_private=(-o "Dir::Etc::SourceList=$private/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$private/lists" -o "Dir::Cache=$private/cache")
        apt-get "${apt_private[@]}" update >"$private/apt.log" 2>&1 || die "apt-get update failed; see $private/apt.log"
        (cd "$private/debs" && apt-get "${apt_private[@]}" download libvulkan-dev spirv-headers >>"$private/apt.log" 2>&1) ||
            die "apt-get download failed; see $private/apt.log"
        rm -rf "$private/root"
        for deb in "$private"/debs/*.deb; do dpkg -x "$deb" "$private/root"; done
        headers_ok "$prefix" && spirv_ok "$prefix" || die "the downloaded packages lack the headers; see $private"
    fi
    export VULKAN_SDK="$prefix" CMAKE_PREFIX_PATH="$prefix"
    echo "test-vulkan: using Vulkan headers from $prefix (VK_HEADER_VERSION $(awk '/define VK_HEADER_VERSION /{print $3}' "$prefix/include/vulkan/vulkan_core.h"))"
fi

# --- lavapipe -------------------------------------------------------------------------------------
# Not exported: llama-cpp-sys-2 rebuilds llama.cpp when any GGML_* variable in cargo's
# environment changes. The CLI gets it directly, the tests as CRIA_TEST_VULKAN_DEVICES (they pass
# it on to their workers).
visible="${GGML_VK_VISIBLE_DEVICES:-}"
unset GGML_VK_VISIBLE_DEVICES
if [[ -z "$visible" ]] && ! grep 'deviceType' "$cache_root/vulkaninfo.txt" | grep -qv 'PHYSICAL_DEVICE_TYPE_CPU'; then
    visible=0
    echo "test-vulkan: only CPU-type Vulkan devices (lavapipe): GGML_VK_VISIBLE_DEVICES=0 for the engine"
fi
on_device=(env ${visible:+GGML_VK_VISIBLE_DEVICES=$visible})

# --- build ----------------------------------------------------------------------------------------
# One selection for the build and the tests, so cargo resolves the same features and the tests
# reuse the build (a different selection rebuilds llama.cpp).
selection=(--locked -p cria-cli -p cria-engine -p cria-tests --features cria-cli/vulkan)
export CARGO_TARGET_DIR="$target_dir" CARGO_INCREMENTAL=0
section "build with Vulkan (first time: over an hour on 2 busy cores)"
build_started=$SECONDS
if nice -n 10 cargo build "${selection[@]}" --all-targets; then
    record ok "build with --features cria-cli/vulkan ($((SECONDS - build_started)) s)"
else
    record FAIL "build with --features cria-cli/vulkan"
    printf '%s\n' "${summary[@]}"
    exit 1
fi
cria="$target_dir/debug/cria"

section "cria devices"
if "${on_device[@]}" "$cria" devices | tee "$target_dir/devices.txt" && grep -qE '^Vulkan[0-9]+ +i?gpu ' "$target_dir/devices.txt"; then
    record ok "cria devices lists $(grep -E '^Vulkan[0-9]+ ' "$target_dir/devices.txt" | head -n 1 | awk '{print $1}') with its memory"
else
    record FAIL "cria devices lists no Vulkan GPU"
fi

gemma="$root/models/gemma-3-270m-q4_k_m.gguf"
section "cria chat on Vulkan (gemma 3 270M)"
if [[ -f "$gemma" ]]; then
    if "${on_device[@]}" timeout 900 "$cria" chat -m "$gemma" -t 2 --ctx 512 --max-tokens 8 --temperature 0 \
        "Name three colours of the rainbow." >"$target_dir/chat.out" 2>"$target_dir/chat.err"; then
        cat "$target_dir/chat.err" "$target_dir/chat.out"
        if grep -q 'layers on Vulkan' "$target_dir/chat.err"; then
            record ok "cria chat: $(grep 'layers on' "$target_dir/chat.err" | head -n 1 | sed 's/^cria: //')"
        else
            record FAIL "cria chat ran but did not report layers on Vulkan: $(cat "$target_dir/chat.err")"
        fi
    else
        record FAIL "cria chat on Vulkan: $(tail -n 3 "$target_dir/chat.err")"
    fi
else
    record skip "cria chat: no $gemma (scripts/fetch-test-models.sh)"
fi

section "engine GPU-path tests (CRIA_TEST_VULKAN=1)"
if CRIA_TEST_VULKAN=1 CRIA_TEST_VULKAN_DEVICES="$visible" timeout 3600 cargo test "${selection[@]}" --test integration -- gpu:: \
    2>&1 | tee "$target_dir/tests.log"; then
    record ok "tests: $(grep -E '^test result:' "$target_dir/tests.log" | tail -n 1)"
else
    record FAIL "tests: $(grep -E '^test result:|FAILED|panicked' "$target_dir/tests.log" | tail -n 3 | tr '\n' ' ')"
fi

section "summary"
printf '%s\n' "${summary[@]}"
echo "headers: ${VULKAN_SDK:-system}; devices: GGML_VK_VISIBLE_DEVICES=${visible:-all}; target: $target_dir"
exit "$failed"
