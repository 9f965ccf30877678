#!/usr/bin/env bash
# `ogi synth-weights` and `ogi bench` end to end: a tiny llama export with its
# weights stripped (written to external data by Debian's python3-onnx, the
# data file then removed) gets seeded weights that are the same for the same
# seed, norms near 1, and that run; `ogi bench --json` measures it; a
# truncated model gives a clear error and exit status 1 from both commands,
# and numeric options that are not whole numbers in range a usage error.
# usage: bench_synth.sh OGI_BINARY SHARED_DIR
set -u
ogi=$1 shared=$2
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() { # name command...
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name"
    fi
}
src="$shared/models/tiny/llama-dynamo-op23"
mkdir -p "$work/stripped"
cp "$src/config.json" "$work/stripped/"
$py - "$src/model.onnx" "$work/stripped" <<'PY'
import os, sys, onnx
m = onnx.load(sys.argv[1])
out = os.path.join(sys.argv[2], "model.onnx")
onnx.save_model(m, out, save_as_external_data=True, all_tensors_to_one_file=True,
                location="model.onnx.data", size_threshold=1024)
os.remove(out + ".data")
PY
check "stripped graph has no data" test ! -e "$work/stripped/model.onnx.data"
"$ogi" synth-weights "$work/stripped" --out "$work/a" --seed 7 >/dev/null
check "synth-weights writes the data" test -s "$work/a/model.onnx.data"
"$ogi" synth-weights "$work/stripped" --out "$work/b" --seed 7 >/dev/null
"$ogi" synth-weights "$work/stripped" --out "$work/c" --seed 8 >/dev/null
check "same seed, same weights" cmp -s "$work/a/model.onnx.data" "$work/b/model.onnx.data"
check "other seed, other weights" bash -c "! cmp -s '$work/a/model.onnx.data' '$work/c/model.onnx.data'"
check "norms near 1, other weights small" $py - "$work/a/model.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
norms = [numpy_helper.to_array(t) for t in m.graph.initializer if "norm" in t.name]
big = [numpy_helper.to_array(t) for t in m.graph.initializer
       if "norm" not in t.name and t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2]
ok = len(norms) > 0 and len(big) > 0
ok = ok and all(abs(float(n.mean()) - 1) < 0.1 for n in norms)
ok = ok and all(np.isfinite(w).all() and 0 < float(np.abs(w).mean()) < 0.5 for w in big)
sys.exit(0 if ok else 1)
PY
ids=$("$ogi" run "$work/a" --prompt-ids 1,2,3,4 --max-new-tokens 5 --greedy --print-ids 2>&1)
check "the synthesized model generates 5 ids" test "$(echo "$ids" | wc -w)" = 5
json=$("$ogi" bench "$work/a" --backend native --repeats 1 --new-tokens 4 --json)
check "bench exits 0" test $? = 0
check "bench --json has the metrics" $py - "$json" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
n = r["backends"]["native"]
ok = r["roofline_decode_tok_s"] > 0 and r["bandwidth_gb_s"] > 0 and r["weight_bytes"] > 0
for k in ("load_s", "prefill_tok_s_128", "decode_tok_s_b1", "decode_tok_s_b4", "peak_rss_mb"):
    ok = ok and n[k] > 0
# the model's context is 256 tokens: a 512-token prompt is not measured
ok = ok and "prefill_tok_s_512" in n and n["prefill_tok_s_512"] is None
sys.exit(0 if ok else 1)
PY
mkdir -p "$work/truncated"
cp "$work/a/config.json" "$work/truncated/"
head -c 3000 "$work/a/model.onnx" >"$work/truncated/model.onnx"
"$ogi" synth-weights "$work/truncated" >"$work/out" 2>&1
status=$?
check "synth-weights on a truncated model fails cleanly" test $status = 1
check "synth-weights says why" test -s "$work/out"
"$ogi" bench "$work/truncated" --backend native --repeats 1 --new-tokens 2 >"$work/out" 2>&1
status=$?
check "bench on a truncated model exits 1" test $status = 1
check "bench says why" grep -q "ogi bench: native:" "$work/out"
# numbers that are not whole numbers in range: a usage error (exit 2)
exits() { # status command...
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    test $? = "$want"
}
check "bench --threads abc" exits 2 "$ogi" bench "$work/a" --threads abc
check "bench --repeats 0" exits 2 "$ogi" bench "$work/a" --repeats 0
check "bench --new-tokens 12x" exits 2 "$ogi" bench "$work/a" --new-tokens 12x
check "synth-weights --seed -1" exits 2 "$ogi" synth-weights "$work/stripped" --seed -1
check "synth-weights --seed 7x" exits 2 "$ogi" synth-weights "$work/stripped" --seed 7x
echo "bench_synth: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
