#!/usr/bin/env bash
# Runs `ogi conformance` over a folder of ONNX backend tests and checks
# 0 failures and at least FLOOR passes (a floor that only ever rises).
# usage: conformance.sh OGI_BINARY TEST_DIR FLOOR
set -u
ogi=$1 dir=$2 floor=$3
out=$("$ogi" conformance --quiet "$dir")
status=$?
echo "$out" | grep -v '^PASS' | head -50
summary=$(echo "$out" | tail -n 1)
echo "$(basename "$dir"): $summary (floor $floor)"
passed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1/p')
failed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\2/p')
if [ -z "$passed" ] || [ "$failed" != 0 ] || [ "$status" != 0 ]; then
    echo "FAILED: conformance reported failures" >&2
    exit 1
fi
if [ "$passed" -lt "$floor" ]; then
    echo "FAILED: $passed passed, below the floor of $floor" >&2
    exit 1
fi
