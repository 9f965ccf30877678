#!/usr/bin/env bash
# Measures int8 attention (--attention int8) against exact attention, for
# docs/int8-attention.md:
#  1. captured Attention inputs: docstring-llama on its held-out text (the
#     CTest test_attention_int8_models), and the SmolLM2-135M-shaped graph with
#     synthesized weights on random ids at 512 / 2048 / 8192 tokens (every
#     10th layer);
#  2. docstring-llama's perplexity on the whole held-out file, both ways;
#  3. docstring-llama's greedy goldens: free-running greedy generation with
#     int8, and each golden token predicted from the prompt plus the golden
#     tokens before it (a prefill of at least 8 tokens, so that int8 runs in
#     every layer), with the top-2 log-probability margin where they differ.
# Usage: scripts/int8_attention_report.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shared=${OGI_SHARED_DIR:-../shared}
model=$shared/models/docstring-llama/onnx-dynamo-op23
smol=${OGI_SMOL_DIR:-/tmp/ogi-int8-smol}

echo "== 1. captured Attention inputs"
"$build/tests/test_attention_int8_models"
if [ ! -f "$smol/model.onnx.data" ]; then
    "$build/ogi" synth-weights "$shared/models/graphs/smollm2-135m-shape-dynamo-op23" --out "$smol" >/dev/null
fi
for n in 512 2048 8192; do
    "$build/tests/test_attention_int8_models" "$smol" "$n" 10
done

echo "== 2. perplexity of docstring-llama on heldout_docstrings.txt"
for a in exact int8; do
    printf '%-6s ' "$a"
    "$build/ogi" perplexity "$model" "$shared/models/docstring-llama/heldout_docstrings.txt" \
        --attention "$a" | tail -1
done

echo "== 3. greedy goldens"
python3 - "$build/ogi" "$model" <<'EOF'
import json, subprocess, sys
ogi, model = sys.argv[1], sys.argv[2]
golden = json.load(open(model + "/golden.json"))

def run(ids, n, attention):
    out = subprocess.run([ogi, "run", model, "--prompt-ids", ",".join(map(str, ids)),
                          "--max-new-tokens", str(n), "--greedy", "--json", "--logprobs", "2",
                          "--attention", attention], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)

for p in golden["prompts"]:
    prompt, want = p["prompt_ids"], p["greedy_ids"]
    free = run(prompt, len(want), "int8")["ids"]
    first = next((i for i, (a, b) in enumerate(zip(free, want)) if a != b), None)
    print(f"prompt {p['prompt']!r}: free-running int8 greedy "
          + ("matches all %d golden tokens" % len(want) if first is None and len(free) == len(want)
             else f"differs first at step {first}"))
    forced_diffs = []
    for t in range(len(want)):
        ctx = prompt + want[:t]
        r = run(ctx, 1, "int8")
        top = r["top_logprobs"][0]
        if r["ids"][0] != want[t]:
            forced_diffs.append((t, len(ctx), want[t], r["ids"][0], top[0]["logprob"] - top[1]["logprob"]))
    short = sum(1 for t in range(len(want)) if len(prompt) + t < 8)
    print(f"  teacher-forced: {len(want) - len(forced_diffs)}/{len(want)} golden tokens are int8's "
          f"argmax ({short} contexts under 8 tokens ran exact)")
    for t, n, w, g, m in forced_diffs:
        ex = run(prompt + want[:t], 1, "exact")["top_logprobs"][0]
        print(f"  step {t} (context {n}): golden {w}, int8 {g}, int8 top-2 margin {m:.4f}, "
              f"exact top-2 margin {ex[0]['logprob'] - ex[1]['logprob']:.4f}")
EOF
