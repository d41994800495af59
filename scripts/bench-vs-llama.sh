#!/usr/bin/env bash
# Cria's engine side by side with llama.cpp's own `llama-bench`: pp512 and tg128 on the same GGUF,
# the same threads and the same llama.cpp source, interleaved rounds, medians and ratios.
#
# NOT run by CI: it builds llama-bench (25 min on 2 busy cores the first time) and measures for
# several minutes. Run it by hand on an otherwise idle machine; results go to docs/benchmarks.md.
#
# llama-bench is built from the llama.cpp source Cria links (the copy vendored in the cargo
# registry by llama-cpp-sys-2, the version in Cargo.lock), in a folder outside the repository
# (default ~/.cache/cria/llama-bench-build, reused). That vendored copy is stripped: its
# tools/llama-bench holds only a README. The benchmark program's own sources (tools/llama-bench,
# three files) then come from a complete llama.cpp tree: LLAMA_BENCH_TOOL_SRC (a folder with
# llama-bench's CMakeLists.txt), or LLAMA_CPP_COMPLETE (a complete llama.cpp checkout), or else
# the source distribution of the Python package llama-cpp-python (which vendors a complete
# llama.cpp) fetched once with `pip download`. Only that program comes from there; ggml and
# libllama, the code being measured, are compiled from the vendored copy Cria links.
#
# ggml is configured the way llama-cpp-sys-2 configures it for Cria's default build
# (GGML_NATIVE=OFF: the AVX2 level, OpenMP on, CURL off, static), so the comparison measures the
# engine, not compiler flags. LLAMA_BENCH_NATIVE=1 builds a -march=native llama-bench instead
# (a separate build folder) to show what a native build of ggml gains on this CPU.
#
# Usage: scripts/bench-vs-llama.sh
#   CRIA_BIN=target/release/cria   the cria binary to measure (default target/debug/cria;
#                                  llama.cpp is optimised in both profiles)
#   BENCH_THREADS=2                threads for both (default: nproc)
#   BENCH_ROUNDS=3                 interleaved rounds (default 3), each best of BENCH_REPS runs
#   BENCH_REPS=3                   runs per test inside one round (default 3)
#   LLAMA_BENCH_BUILD=DIR          build folder (default ~/.cache/cria/llama-bench-build)
#   BENCH_MODELS="a.gguf b.gguf"   models (default: gemma3 270M and the tiny Llama 4 fixture)
#   BENCH_OMP_WAIT_POLICY=PASSIVE  OpenMP wait policy for both engines. Unset, each runs as users
#                                  get it: Cria's worker with PASSIVE (its supervisor sets it),
#                                  llama-bench with OpenMP's default (threads spin at barriers,
#                                  which collapses speed when other programs use the cores)
#   BENCH_PEERS=node-llama-cpp     peers measured beside llama-bench (default node-llama-cpp;
#                                  BENCH_PEERS=none skips them)
#   NODE_LLAMA_CPP_DIR=DIR         where node-llama-cpp is installed (default
#                                  ~/.cache/cria/node-llama-cpp-bench; outside the repository)
#   BENCH_PEER_TIMEOUT=900         seconds one peer run may take before it is stopped and its
#                                  figures are left out (the rest of the run goes on)
#
# node-llama-cpp (pinned to NODE_LLAMA_CPP_VERSION, default 3.21.1) is installed with npm on first
# use, with its prebuilt CPU binary for this platform only: NODE_LLAMA_CPP_SKIP_DOWNLOAD and
# --ignore-scripts stop it from downloading or compiling llama.cpp, and the measuring script
# (scripts/node-llama-cpp-bench.mjs) asks it never to build. It bundles its own llama.cpp release
# (printed with the table), so its column compares a different llama.cpp build, not just a binding.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() {
    echo "bench-vs-llama: $*" >&2
    exit 1
}

for tool in cmake c++ python3 awk; do
    command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH"
done

if [[ -n "${BENCH_OMP_WAIT_POLICY:-}" ]]; then
    export OMP_WAIT_POLICY="$BENCH_OMP_WAIT_POLICY"
fi
cria_bin="${CRIA_BIN:-$root/target/debug/cria}"
threads="${BENCH_THREADS:-$(nproc)}"
rounds="${BENCH_ROUNDS:-3}"
reps="${BENCH_REPS:-3}"
native="${LLAMA_BENCH_NATIVE:-0}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cria"
if [[ "$native" == 1 ]]; then
    build_dir="${LLAMA_BENCH_BUILD:-$cache_root/llama-bench-build-native}"
else
    build_dir="${LLAMA_BENCH_BUILD:-$cache_root/llama-bench-build}"
fi
[[ -x "$cria_bin" ]] || die "no cria binary at $cria_bin (build it: cargo build --workspace --all-targets --locked, or set CRIA_BIN)"
peers="${BENCH_PEERS-node-llama-cpp}"
[[ "$peers" == none || "$peers" == 0 ]] && peers=""
for peer in $peers; do
    [[ "$peer" == node-llama-cpp ]] || die "unknown peer '$peer' in BENCH_PEERS (known: node-llama-cpp, or none)"
done
peer_timeout="${BENCH_PEER_TIMEOUT:-900}"

# --- the llama.cpp source Cria links -------------------------------------------------------------
sys_version="$(awk '/^name = "llama-cpp-sys-2"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
[[ -n "$sys_version" ]] || die "llama-cpp-sys-2 is not in Cargo.lock"
shopt -s nullglob
vendored=("${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"llama-cpp-sys-2-$sys_version"/llama.cpp)
shopt -u nullglob
((${#vendored[@]} > 0)) || die "llama-cpp-sys-2 $sys_version's llama.cpp is not in the cargo registry; run 'cargo fetch --locked' (or build Cria once) first"
llama_src="${vendored[0]}"
[[ -f "$llama_src/CMakeLists.txt" && -d "$llama_src/ggml" ]] || die "$llama_src is not a llama.cpp source tree"

# --- llama-bench's own sources (tools/llama-bench) ------------------------------------------------
find_bench_tool() {
    if [[ -f "$llama_src/tools/llama-bench/llama-bench.cpp" ]]; then
        echo "$llama_src/tools/llama-bench"
    elif [[ -n "${LLAMA_BENCH_TOOL_SRC:-}" ]]; then
        [[ -f "$LLAMA_BENCH_TOOL_SRC/CMakeLists.txt" ]] || die "LLAMA_BENCH_TOOL_SRC=$LLAMA_BENCH_TOOL_SRC has no CMakeLists.txt"
        echo "$LLAMA_BENCH_TOOL_SRC"
    elif [[ -n "${LLAMA_CPP_COMPLETE:-}" ]]; then
        [[ -f "$LLAMA_CPP_COMPLETE/tools/llama-bench/CMakeLists.txt" ]] || die "LLAMA_CPP_COMPLETE=$LLAMA_CPP_COMPLETE has no tools/llama-bench"
        echo "$LLAMA_CPP_COMPLETE/tools/llama-bench"
    else
        local version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
        local downloads="$cache_root/src"
        local tool="$downloads/llama_cpp_python-$version/vendor/llama.cpp/tools/llama-bench"
        if [[ ! -f "$tool/CMakeLists.txt" ]]; then
            mkdir -p "$downloads"
            local sdist="$downloads/llama_cpp_python-$version.tar.gz"
            if [[ ! -f "$sdist" ]]; then
                echo "bench-vs-llama: fetching llama-cpp-python $version's source distribution for tools/llama-bench" >&2
                python3 -m pip download --quiet --no-deps --no-binary :all: \
                    "llama-cpp-python==$version" -d "$downloads" >&2 ||
                    die "could not download llama-cpp-python $version; set LLAMA_CPP_COMPLETE to a complete llama.cpp tree"
            fi
            tar -xzf "$sdist" -C "$downloads" "llama_cpp_python-$version/vendor/llama.cpp/tools/llama-bench" ||
                die "$sdist has no vendor/llama.cpp/tools/llama-bench"
        fi
        echo "$tool"
    fi
}
bench_tool="$(find_bench_tool)"

# --- build llama-bench (reused when up to date) ---------------------------------------------------
# A small wrapper project: ggml, libllama and llama-common from the vendored tree (configured like
# llama-cpp-sys-2 does), then llama-bench's own CMakeLists on top.
mkdir -p "$build_dir/wrapper"
cat >"$build_dir/wrapper/CMakeLists.txt.new" <<EOF
cmake_minimum_required(VERSION 3.14)
project(cria_llama_bench C CXX)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY \${CMAKE_BINARY_DIR}/bin)
add_subdirectory("$llama_src" llama.cpp)
add_subdirectory("$bench_tool" llama-bench)
EOF
if ! cmp -s "$build_dir/wrapper/CMakeLists.txt.new" "$build_dir/wrapper/CMakeLists.txt"; then
    mv "$build_dir/wrapper/CMakeLists.txt.new" "$build_dir/wrapper/CMakeLists.txt"
    rm -f "$build_dir/out/CMakeCache.txt"
else
    rm "$build_dir/wrapper/CMakeLists.txt.new"
fi
if [[ "$native" == 1 ]]; then native_flag=ON; else native_flag=OFF; fi
if [[ ! -f "$build_dir/out/CMakeCache.txt" ]]; then
    echo "bench-vs-llama: configuring llama-bench in $build_dir (llama.cpp from $llama_src)" >&2
    cmake -S "$build_dir/wrapper" -B "$build_dir/out" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE="$native_flag" -DGGML_OPENMP=ON \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_TOOLS_INSTALL=OFF >"$build_dir/configure.log" 2>&1 ||
        die "cmake configure failed; see $build_dir/configure.log"
fi
echo "bench-vs-llama: building llama-bench (first time ~25 min on 2 busy cores, then seconds)" >&2
cmake --build "$build_dir/out" --target llama-bench -j "$(nproc)" >"$build_dir/build.log" 2>&1 ||
    die "building llama-bench failed; see $build_dir/build.log"
llama_bench="$build_dir/out/bin/llama-bench"
[[ -x "$llama_bench" ]] || die "the build left no $llama_bench"

# --- node-llama-cpp (a peer; installed once outside the repository) ------------------------------
nlc_dir="${NODE_LLAMA_CPP_DIR:-$cache_root/node-llama-cpp-bench}"
nlc_version="${NODE_LLAMA_CPP_VERSION:-3.21.1}"
if [[ " $peers " == *" node-llama-cpp "* ]]; then
    for tool in node npm timeout; do
        command -v "$tool" >/dev/null 2>&1 || die "the node-llama-cpp peer needs '$tool' on PATH (or BENCH_PEERS=none)"
    done
    # The prebuilt package for this machine: linux-x64, linux-arm64, mac-arm64-metal, mac-x64, ...
    nlc_platform="$(node -p 'const os = {linux: "linux", darwin: "mac", win32: "win"}[process.platform] ?? process.platform; os + "-" + process.arch + (os === "mac" && process.arch === "arm64" ? "-metal" : "")')"
    nlc_installed="$(node -p "try { require('$nlc_dir/node_modules/node-llama-cpp/package.json').version } catch { '' }" 2>/dev/null || true)"
    if [[ "$nlc_installed" != "$nlc_version" || ! -d "$nlc_dir/node_modules/@node-llama-cpp/$nlc_platform/bins" ]]; then
        echo "bench-vs-llama: installing node-llama-cpp $nlc_version with its prebuilt $nlc_platform binary into $nlc_dir" >&2
        mkdir -p "$nlc_dir"
        [[ -f "$nlc_dir/package.json" ]] || echo '{"name": "cria-node-llama-cpp-bench", "private": true}' >"$nlc_dir/package.json"
        (cd "$nlc_dir" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true timeout 900 npm install --no-audit --no-fund \
            --omit=optional --ignore-scripts "node-llama-cpp@$nlc_version" \
            "@node-llama-cpp/$nlc_platform@$nlc_version" >"$nlc_dir/install.log" 2>&1) ||
            die "installing node-llama-cpp failed; see $nlc_dir/install.log (or BENCH_PEERS=none)"
    fi
    nlc_release="$(node -p "require('$nlc_dir/node_modules/node-llama-cpp/llama/binariesGithubRelease.json').release")"
fi

# --- models ---------------------------------------------------------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ -n "${BENCH_MODELS:-}" ]]; then
    read -r -a models <<<"$BENCH_MODELS"
else
    gemma="$root/models/gemma-3-270m-q4_k_m.gguf"
    [[ -f "$gemma" ]] || die "no $gemma (scripts/fetch-test-models.sh fetches it)"
    writer="${CRIA_FIXTURE_WRITER:-$root/target/debug/examples/llama4_fixture}"
    [[ -x "$writer" ]] || die "no fixture writer at $writer (cargo build --workspace --all-targets --locked)"
    llama4="$("$writer" "$work/llama4")"
    models=("$gemma" "$llama4")
fi

# --- measure --------------------------------------------------------------------------------------
# One line per measurement: model, test, engine, tok/s. Each is the best of $reps runs, as
# `cria bench` reports it (llama-bench's best sample likewise), so a stray slow run in one engine
# does not decide the ratio; rounds alternate the engines so drift hits both.
results="$work/results.tsv"
: >"$results"
for ((round = 1; round <= rounds; round++)); do
    for model in "${models[@]}"; do
        name="$(basename "$model" .gguf)"
        echo "bench-vs-llama: round $round/$rounds, $name" >&2
        "$cria_bin" bench -m "$model" -t "$threads" -p 512 -n 128 -r "$reps" --json >"$work/cria.json" ||
            die "cria bench failed on $model"
        python3 - "$work/cria.json" "$name" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}\tpp512\tcria\t{r['pp_tokens_per_second']:.3f}")
print(f"{sys.argv[2]}\ttg128\tcria\t{r['tg_tokens_per_second']:.3f}")
EOF
        "$llama_bench" -m "$model" -t "$threads" -p 512 -n 128 -r "$reps" -o json \
            >"$work/llama.json" 2>"$work/llama.log" ||
            die "llama-bench failed on $model: $(tail -n 5 "$work/llama.log")"
        python3 - "$work/llama.json" "$name" >>"$results" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1])):
    test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
    print(f"{sys.argv[2]}\t{test}\tllama-bench\t{max(r['samples_ts']):.3f}")
EOF
        if [[ " $peers " == *" node-llama-cpp "* ]]; then
            # Bounded: a peer that hangs or fails loses its figures for this round, nothing more.
            if timeout --kill-after=10 "$peer_timeout" node "$root/scripts/node-llama-cpp-bench.mjs" \
                --package-dir "$nlc_dir" --model "$model" --threads "$threads" --n-prompt 512 \
                --n-gen 128 --reps "$reps" >"$work/nlc.json" 2>"$work/nlc.log"; then
                python3 - "$work/nlc.json" "$name" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}\tpp512\tnode-llama-cpp\t{r['pp_tokens_per_second']:.3f}")
print(f"{sys.argv[2]}\ttg128\tnode-llama-cpp\t{r['tg_tokens_per_second']:.3f}")
EOF
            else
                echo "bench-vs-llama: node-llama-cpp failed or timed out on $name (round $round): $(tail -n 3 "$work/nlc.log")" >&2
            fi
        fi
    done
done

echo
echo "threads $threads, $rounds rounds (each best of $reps), cria: $cria_bin"
echo "OMP_WAIT_POLICY: ${OMP_WAIT_POLICY:-unset (Cria's worker PASSIVE, llama-bench OpenMP's default)}"
echo "llama.cpp: $llama_src (llama-bench GGML_NATIVE=$native_flag)"
if [[ " $peers " == *" node-llama-cpp "* ]]; then
    echo "node-llama-cpp $nlc_version: prebuilt $nlc_platform CPU binary, its own llama.cpp release $nlc_release"
fi
python3 - "$results" <<'EOF'
import statistics, sys
from collections import defaultdict
values = defaultdict(list)
order = []
for line in open(sys.argv[1]):
    model, test, engine, rate = line.rstrip("\n").split("\t")
    if (model, test) not in order:
        order.append((model, test))
    values[(model, test, engine)].append(float(rate))
peer = any(engine == "node-llama-cpp" for (_, _, engine) in values)
header = "| model | test | Cria tok/s (median) | llama-bench tok/s (median) | ratio |"
rule = "|---|---|---|---|---|"
if peer:
    header += " node-llama-cpp tok/s (median) | node-llama-cpp / llama-bench |"
    rule += "---|---|"
print(header)
print(rule)
for model, test in order:
    cria = statistics.median(values[(model, test, "cria")])
    llama = statistics.median(values[(model, test, "llama-bench")])
    line = f"| {model} | {test} | {cria:.1f} | {llama:.1f} | {cria / llama:.2f} |"
    if peer:
        runs = values.get((model, test, "node-llama-cpp"), [])
        if runs:
            node = statistics.median(runs)
            line += f" {node:.1f} ({len(runs)} runs) | {node / llama:.2f} |"
        else:
            line += " failed | - |"
    print(line)
EOF
