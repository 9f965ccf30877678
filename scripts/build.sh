#!/usr/bin/env bash
# Configures and builds ogi into build/ (Release) or, with --asan, into
# build-asan/ (Debug with AddressSanitizer and UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build type=Release sanitize=OFF
if [ "${1:-}" = "--asan" ]; then
    dir=build-asan type=Debug sanitize=ON
fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=$type -DOGI_SANITIZE=$sanitize >/dev/null
ninja -C "$dir" -j "$(nproc)" | grep -v '^\[' || true
test -x "$dir/ogi"
