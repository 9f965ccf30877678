#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs CTest on a
# Release build and again on an ASan + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

scripts/build.sh
(cd build && ctest --output-on-failure -j "$jobs")

scripts/build.sh --asan
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j "$jobs")
