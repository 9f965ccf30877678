#!/usr/bin/env bash
# The command line against transformers' goldens: `ogi run --prompt-ids ...
# --greedy --print-ids` must print exactly golden.json's greedy ids for every
# tiny model, and `ogi run -p TEXT --greedy` the golden text of docstring-llama.
# usage: run_goldens.sh OGI_BINARY SHARED_DIR [BACKEND]
set -u
ogi=$1 shared=$2 backend=${3:-native}
py=/usr/bin/python3
passed=0 failed=0
check() { # name expected actual
    if [ "$2" == "$3" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $1: expected '$2', got '$3'"
    fi
}
for dir in "$shared"/models/tiny/*/; do
    name=$(basename "$dir")
    prompt=$($py -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['greedy']['prompt'])))" "$dir/golden.json")
    want=$($py -c "import json,sys; print(' '.join(map(str, json.load(open(sys.argv[1]))['greedy']['output'])))" "$dir/golden.json")
    got=$("$ogi" run "$dir" --backend "$backend" --prompt-ids "$prompt" --max-new-tokens 24 --greedy --print-ids 2>/dev/null)
    check "$name ids" "$want" "$got"
done
for export in onnx-dynamo-op23 onnx-legacy-op17; do
    dir="$shared/models/docstring-llama/$export"
    for i in 0 1 2 3; do
        prompt=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['prompts'][int(sys.argv[2])]['prompt'])" "$dir/golden.json" $i)
        want=$($py -c "import json,sys; print(' '.join(map(str, json.load(open(sys.argv[1]))['prompts'][int(sys.argv[2])]['greedy_ids'])))" "$dir/golden.json" $i)
        got=$("$ogi" run "$dir" --backend "$backend" -p "$prompt" --max-new-tokens 40 --greedy --print-ids 2>/dev/null)
        check "$export prompt $i ids" "$want" "$got"
        want_text=$($py -c "import json,sys; e=json.load(open(sys.argv[1]))['prompts'][int(sys.argv[2])]; print(e['prompt'] + e['greedy_text'])" "$dir/golden.json" $i)
        got_text=$("$ogi" run "$dir" --backend "$backend" -p "$prompt" --max-new-tokens 40 --greedy 2>/dev/null)
        check "$export prompt $i text" "$want_text" "$got_text"
    done
done
# ogi perplexity: every window of perplexity_golden.json within 1e-3, and the
# token count of the whole file
golden="$shared/models/docstring-llama/perplexity_golden.json"
text="$shared/models/docstring-llama/heldout_docstrings.txt"
for export in onnx-dynamo-op23 onnx-legacy-op17; do
    dir="$shared/models/docstring-llama/$export"
    for w in 0 1 2; do
        read -r start length want < <($py -c "import json,sys; w=json.load(open(sys.argv[1]))['windows'][int(sys.argv[2])]; print(w['start'], w['length'], w['mean_cross_entropy'])" "$golden" $w)
        out=$("$ogi" perplexity "$dir" "$text" --backend "$backend" --start "$start" --window "$length" --windows 1 --json 2>/dev/null)
        verdict=$($py -c "import json,sys; d=json.loads(sys.argv[1]); g=json.load(open(sys.argv[3])); ok=abs(d['windows'][0]['mean_ce']-float(sys.argv[2]))<=1e-3 and d['tokens']==g['tokenizer_ids_count']; print('ok' if ok else 'mismatch %s' % d['windows'][0]['mean_ce'])" "$out" "$want" "$golden" 2>&1)
        check "$export perplexity window $start+$length" "ok" "$verdict"
    done
done
echo "run_goldens ($backend): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
