#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` and `llama-batched-bench` natively (GGML_NATIVE, CPU only) from the
# source that node-llama-cpp ships as a git bundle, into ~/.cache/tllm/llama.cpp-<commit> (outside the
# repository; never committed). Idempotent: exits at once when both binaries already exist.
# Prints the directory holding the binaries on its last line.
# Usage: scripts/build-llama-cpp.sh [JOBS]   (JOBS defaults to the number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$ROOT/node_modules/node-llama-cpp/llama/gitRelease.bundle"
JOBS="${1:-$(nproc)}"

if [[ ! -f "$BUNDLE" ]]; then
  echo "build-llama-cpp: $BUNDLE not found (npm install node-llama-cpp first)" >&2
  exit 1
fi

COMMIT="$(git bundle list-heads "$BUNDLE" | awk '$2 == "HEAD" { print $1 }' | head -n1)"
if [[ -z "$COMMIT" ]]; then
  COMMIT="$(git bundle list-heads "$BUNDLE" | head -n1 | awk '{ print $1 }')"
fi
CACHE="${TLLM_CACHE_DIR:-$HOME/.cache/tllm}/llama.cpp-${COMMIT:0:12}"
SRC="$CACHE/src"
BUILD="$CACHE/build"
BIN="$BUILD/bin"

if [[ -x "$BIN/llama-bench" && -x "$BIN/llama-batched-bench" ]]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE"
if [[ ! -d "$SRC/.git" ]]; then
  rm -rf "$SRC"
  git clone --quiet "$BUNDLE" "$SRC"
  git -C "$SRC" checkout --quiet "$COMMIT"
fi

cmake -S "$SRC" -B "$BUILD" \
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release \
  >"$CACHE/cmake-configure.log" 2>&1 || { tail -n 30 "$CACHE/cmake-configure.log" >&2; exit 1; }
cmake --build "$BUILD" --config Release -j "$JOBS" --target llama-bench llama-batched-bench \
  >"$CACHE/cmake-build.log" 2>&1 || { tail -n 30 "$CACHE/cmake-build.log" >&2; exit 1; }

echo "$BIN"
