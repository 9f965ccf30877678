#!/usr/bin/env bash
# ogi run on the hybrid test model (tests/genai/make_hybrid_model.py): greedy
# text is the same whether the prompt runs whole, in chunks or token by token
# with the recurrent state carried.
# Usage: run_hybrid.sh OGI MODEL_DIR SHARED_DIR
set -u
ogi=$1 model=$2 shared=$3
prompt=$(head -c 900 "$shared/models/docstring-llama/heldout_docstrings.txt")
fail=0
whole=$("$ogi" run "$model" --threads 2 --max-new-tokens 30 -p "$prompt") || fail=1
[ -n "$whole" ] || { echo "FAIL: no text generated"; fail=1; }
for chunk in 1 7 64; do
    out=$("$ogi" run "$model" --threads 2 --max-new-tokens 30 --prefill-chunk "$chunk" -p "$prompt") || fail=1
    if [ "$out" == "$whole" ]; then
        echo "PASS: --prefill-chunk $chunk gives the same text"
    else
        echo "FAIL: --prefill-chunk $chunk: '$out' instead of '$whole'"
        fail=1
    fi
done
exit $fail
