/* FlexAttention (ai.onnx.preview, opset 1): attention whose scores and
 * probabilities pass through user subgraphs,
 *
 *   S = scale * Q K^T                 [batch, q_heads, q_len, kv_len]
 *   S = mask_mod(score_mod(S))        each subgraph: one tensor in, one out
 *                                     (or the index form: flex_attention.c)
 *   P = prob_mod(softmax(S))
 *   Y = P V                           K/V heads shared by groups of Q heads
 *
 * The general path (flex_attention.c) materialises S and runs the subgraphs
 * once each over the whole tensor. The fast path recognises the subgraphs
 * a plain attention kernel can compute (flex_attention_match.c) and runs
 * attention_fast() / attention_reference() with no subgraph call. */
#ifndef OGI_OPS_FLEX_ATTENTION_H
#define OGI_OPS_FLEX_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/graph.h"
#include "ogi.h"

/* w_q * q_idx + w_k * kv_idx + c over the [q_len, kv_len] score plane. */
typedef struct flex_affine {
    double w_q, w_k, c;
} flex_affine;

/* What the score subgraphs compute, in the attention kernels' terms:
 *   S' = where(kv_idx <= q_idx or !causal, softcap(mul * S) + bias, -inf)
 * with softcap(x) = cap * tanh(x / cap) when cap > 0, else x. prob_mod is
 * P' = prob_mul * P. */
typedef struct flex_plan {
    double mul, cap;
    flex_affine bias;
    bool causal;
    double prob_mul;
} flex_plan;

/* The plan of no subgraphs: mul 1, no softcap, no bias, not causal,
 * prob_mul 1. */
flex_plan flex_plan_identity(void);

/* Matches score_mod, mask_mod and prob_mod (each NULL when absent) against
 * the recognised patterns: a positive or negative scalar scale (Mul / Div
 * by a constant), softcap (Tanh between a division and a multiplication by
 * the cap), an additive bias affine in q_idx and kv_idx (constants, and the
 * Shape -> Gather -> Range -> Reshape / Unsqueeze index chain, Sub / Add /
 * Mul / Neg / Cast on it), the causal mask (Where(q_idx >= kv_idx, S, -inf)
 * with any of the four comparisons), and prob_mod scaling by a constant.
 * scores_dtype is the dtype the scores and probabilities reach the
 * subgraphs in. Returns true and fills plan when every subgraph matches;
 * false means the general path must run. */
bool flex_attention_match(const graph *score_mod, const graph *mask_mod, const graph *prob_mod,
                          ogi_dtype scores_dtype, flex_plan *plan);

/* How many FlexAttention runs took each path in this process: the fast
 * path's count shows tests that a pattern was recognised. Setting the
 * environment variable OGI_FLEX_ATTENTION=general makes every later run take
 * the general path (tests compare the two). */
typedef struct flex_attention_counts {
    uint64_t fast, general;
} flex_attention_counts;

flex_attention_counts flex_attention_get_counts(void);

#endif
