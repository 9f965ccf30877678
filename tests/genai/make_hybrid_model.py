#!/usr/bin/python3
"""Writes a small hybrid decoder with random weights into OUT_DIR, for tests.

Usage: make_hybrid_model.py OUT_DIR TOKENIZER_DIR

Also writes OUT_DIR-bad-state: the same model with a conv state whose channel
dimension is left symbolic, which a pipeline must refuse with a clear error.

Layers 0, 2 and 3 are Gated DeltaNet blocks: one projection to q, k, v, a
CausalConvWithState (SiLU) over the three, L2-normalised q and k, and a
LinearAttention (gated_delta, GQA 4:2) with log-space decay and beta from
projections of the input. Layer 1 is a GQA attention block (RotaryEmbedding,
Attention with past and present keys and values). Every block has a
pre-RMSNormalization and a residual, followed by a SiLU MLP. Opset 27,
ir_version 10 set explicitly, the checker skipped (python3-onnx predates
opset 27).

Graph inputs: input_ids, attention_mask, position_ids, the attention layer's
past_key_values.1.key/value, and per recurrent layer l the states
past_key_values.l.conv_state [batch, 128, 3] and
past_key_values.l.recurrent_state [batch, 2, 16, 16]; the outputs are logits
and the matching present.* names. The tokenizer files come from
TOKENIZER_DIR (vocabulary of 2048).
"""
import json
import os
import shutil
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

VOCAB, D, FF = 2048, 64, 128
HQ, HKV, DK, DV, KCONV = 4, 2, 16, 16, 4
CONV_C = HQ * DK + HKV * DK + HKV * DV
ATT_HQ, ATT_HKV, ATT_D = 4, 2, 16
LAYERS = ["gdn", "attn", "gdn", "gdn"]
MAX_POS = 512
F = TensorProto.FLOAT
I64 = TensorProto.INT64

rng = np.random.default_rng(20261127)
nodes, inits = [], []


def weight(name, shape, scale):
    inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
    return name


def const(name, array):
    inits.append(numpy_helper.from_array(np.asarray(array), name))
    return name


def node(op, inputs, outputs, **attrs):
    nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0] + "_node", **attrs))
    return outputs[0]


def rms(x, name):
    scale = const(name + ".scale", np.ones(D, np.float32))
    return node("RMSNormalization", [x, scale], [name + ".out"], axis=-1, epsilon=1e-5)


def linear(x, name, n_in, n_out):
    return node("MatMul", [x, weight(name + ".w", (n_in, n_out), n_in**-0.5)], [name + ".out"])


def mlp(x, p):
    h = rms(x, p + "mlp_norm")
    up = linear(h, p + "up", D, FF)
    act = node("Mul", [up, node("Sigmoid", [up], [p + "up_sig"])], [p + "up_silu"])
    return node("Add", [x, linear(act, p + "down", FF, D)], [p + "mlp_res"])


def gdn_block(x, l, mask_t):
    p = f"l{l}."
    h = node("Mul", [rms(x, p + "norm"), mask_t], [p + "masked"])  # pads add nothing
    qkv = linear(h, p + "qkv", D, CONV_C)
    conv_in = node("Transpose", [qkv], [p + "conv_in"], perm=[0, 2, 1])
    weight(p + "conv.w", (CONV_C, 1, KCONV), 0.5)
    weight(p + "conv.b", (CONV_C,), 0.1)
    node("CausalConvWithState",
         [conv_in, p + "conv.w", p + "conv.b", f"past_key_values.{l}.conv_state"],
         [p + "conv_out", f"present.{l}.conv_state"], activation="silu")
    conv = node("Transpose", [p + "conv_out"], [p + "conv_t"], perm=[0, 2, 1])
    split = const(p + "split", np.array([HQ * DK, HKV * DK, HKV * DV], np.int64))
    node("Split", [conv, split], [p + "q", p + "k", p + "v"], axis=2)

    def l2(t, heads, dim):
        shape4 = const(t + ".shape4", np.array([0, 0, heads, dim], np.int64))
        shape3 = const(t + ".shape3", np.array([0, 0, heads * dim], np.int64))
        r = node("Reshape", [t, shape4], [t + ".r"])
        n = node("LpNormalization", [r], [t + ".n"], axis=-1, p=2)
        return node("Reshape", [n, shape3], [t + ".l2"])

    q, k = l2(p + "q", HQ, DK), l2(p + "k", HKV, DK)
    # log decay = -softplus(a) * exp(A), per key dimension; beta = sigmoid(b)
    a = node("Add", [linear(h, p + "a", D, HKV * DK), weight(p + "a.bias", (HKV * DK,), 1.0)], [p + "a_b"])
    sp = node("Softplus", [a], [p + "softplus"])
    decay = node("Mul", [sp, const(p + "negA", -np.exp(rng.uniform(-3, 0, HKV * DK)).astype(np.float32))],
                 [p + "decay"])
    # beta 0 at pads: the state is left as it was (zero, before a left-padded prompt)
    beta = node("Mul", [node("Sigmoid", [linear(h, p + "b", D, HKV)], [p + "beta_all"]), mask_t], [p + "beta"])
    node("LinearAttention",
         [q, k, p + "v", f"past_key_values.{l}.recurrent_state", decay, beta],
         [p + "la_out", f"present.{l}.recurrent_state"],
         update_rule="gated_delta", q_num_heads=HQ, kv_num_heads=HKV)
    return node("Add", [x, linear(p + "la_out", p + "o", HQ * DV, D)], [p + "res"])


def attn_block(x, l, mask4):
    p = f"l{l}."
    h = rms(x, p + "norm")

    def heads(t, n):
        shape = const(t + ".shape", np.array([0, 0, n, ATT_D], np.int64))
        return node("Transpose", [node("Reshape", [t, shape], [t + ".r"])], [t + ".h"], perm=[0, 2, 1, 3])

    q = heads(linear(h, p + "wq", D, ATT_HQ * ATT_D), ATT_HQ)
    k = heads(linear(h, p + "wk", D, ATT_HKV * ATT_D), ATT_HKV)
    v = heads(linear(h, p + "wv", D, ATT_HKV * ATT_D), ATT_HKV)
    q = node("RotaryEmbedding", [q, "cos_cache", "sin_cache", "position_ids"], [p + "q_rot"])
    k = node("RotaryEmbedding", [k, "cos_cache", "sin_cache", "position_ids"], [p + "k_rot"])
    node("Attention", [q, k, v, mask4, f"past_key_values.{l}.key", f"past_key_values.{l}.value"],
         [p + "att", f"present.{l}.key", f"present.{l}.value"], is_causal=1)
    att = node("Transpose", [p + "att"], [p + "att_t"], perm=[0, 2, 1, 3])
    flat = node("Reshape", [att, const(p + "flat", np.array([0, 0, ATT_HQ * ATT_D], np.int64))], [p + "att_f"])
    return node("Add", [x, linear(flat, p + "o", ATT_HQ * ATT_D, D)], [p + "res"])


def build(out_dir, symbolic_state=False):
    inv = 1.0 / (10000.0 ** (np.arange(0, ATT_D, 2) / ATT_D))
    ang = np.arange(MAX_POS)[:, None] * inv[None, :]
    const("cos_cache", np.cos(ang).astype(np.float32))
    const("sin_cache", np.sin(ang).astype(np.float32))
    x = node("Gather", [weight("embed", (VOCAB, D), 1.0), "input_ids"], ["embedded"])
    # the mask of the new positions, [batch, seq, 1], and the attention mask [batch, 1, 1, total]
    seq = node("Shape", ["input_ids"], ["seq_len"], start=1, end=2)
    neg = node("Neg", [seq], ["neg_seq"])
    big = const("int64_max", np.array([2**62], np.int64))
    axis1 = const("axis1", np.array([1], np.int64))
    new_mask = node("Slice", ["attention_mask", neg, big, axis1], ["new_mask"])
    mask_t = node("Unsqueeze", [node("Cast", [new_mask], ["new_mask_f"], to=F),
                                const("axis2", np.array([2], np.int64))], ["mask_t"])
    mask4 = node("Unsqueeze", [node("Cast", ["attention_mask"], ["mask_b"], to=TensorProto.BOOL),
                               const("axes12", np.array([1, 2], np.int64))], ["mask4"])
    inputs = [helper.make_tensor_value_info("input_ids", I64, ["batch", "seq"]),
              helper.make_tensor_value_info("attention_mask", I64, ["batch", "total"]),
              helper.make_tensor_value_info("position_ids", I64, ["batch", "seq"])]
    outputs = [helper.make_tensor_value_info("logits", F, ["batch", "seq", VOCAB])]
    for l, kind in enumerate(LAYERS):
        if kind == "attn":
            x = attn_block(x, l, mask4)
            for part in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{l}.{part}", F,
                                                            ["batch", ATT_HKV, "past", ATT_D]))
                outputs.append(helper.make_tensor_value_info(f"present.{l}.{part}", F,
                                                             ["batch", ATT_HKV, "total", ATT_D]))
        else:
            x = gdn_block(x, l, mask_t)
            conv = ["channels" if symbolic_state else CONV_C, KCONV - 1]
            for part, shape in (("conv_state", conv), ("recurrent_state", [HKV, DK, DV])):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{l}.{part}", F, ["batch"] + shape))
                outputs.append(helper.make_tensor_value_info(f"present.{l}.{part}", F, ["batch"] + shape))
        x = mlp(x, f"l{l}.")
    node("MatMul", [rms(x, "final_norm"), weight("lm_head", (D, VOCAB), D**-0.5)], ["logits"])
    graph = helper.make_graph(nodes, "hybrid", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)], producer_name="ogi-tests")
    model.ir_version = 10
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    config = {"model_type": "hybrid-test", "vocab_size": VOCAB, "hidden_size": D,
              "num_hidden_layers": len(LAYERS), "layer_types": LAYERS,
              "max_position_embeddings": MAX_POS, "bos_token_id": 0, "eos_token_id": 0,
              "pad_token_id": 0}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"do_sample": False, "max_new_tokens": 40, "eos_token_id": 0}, f)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out_dir, tok_dir = sys.argv[1], sys.argv[2]
    for path, symbolic in ((out_dir, False), (out_dir + "-bad-state", True)):
        nodes.clear()
        inits.clear()
        build(path, symbolic)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tok_dir, name), os.path.join(path, name))


if __name__ == "__main__":
    main()
