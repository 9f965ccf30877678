/* LinearAttention (opset 27) kernels, shared by the op (linear_attention.c),
 * its tests and its benchmark. Per KV head a state S [d_k, d_v] runs the
 * recurrence chosen by update_rule (g_t: log-space decay, per key channel or
 * per head; beta_t: per head or one for all heads):
 *
 *   linear:      S_t = S_{t-1} + k_t v_t^T
 *   gated:       S_t = exp(g_t) * S_{t-1} + k_t v_t^T
 *   delta:       S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T
 *   gated_delta: S_t = exp(g_t) * S_{t-1}
 *                      + beta_t k_t (v_t - (exp(g_t) * S_{t-1})^T k_t)^T
 *
 * and every query head of the KV head's group reads o_t = scale * S_t^T q_t
 * (GQA: query head h uses KV head h / (q_heads / kv_heads)). Three paths:
 *
 *  - LINEAR_ATTENTION_REFERENCE: the recurrence as written, one token at a
 *    time, plain loops;
 *  - LINEAR_ATTENTION_RECURRENT: the same recurrence fused into two passes
 *    over S per token, vectorised (the decode path);
 *  - LINEAR_ATTENTION_CHUNKED: chunk-parallel prefill. Within a chunk of C
 *    tokens the outputs are a causal masked (Q K^T ⊙ decay) product plus the
 *    chunk's start state; the delta rules first solve the unit lower
 *    triangular system (I + diag(beta) (K K^T ⊙ decay)_strict) W =
 *    diag(beta) (V - K̂ S_0) for the values actually written (the WY / UT
 *    form), after which they are gated linear attention with V := W.
 *
 * All three run over batch x KV heads on the pool, in float32. */
#ifndef OGI_OPS_LINEAR_ATTENTION_H
#define OGI_OPS_LINEAR_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "ogi.h"

typedef enum linear_attention_rule {
    LINEAR_ATTENTION_LINEAR = 0,
    LINEAR_ATTENTION_GATED,
    LINEAR_ATTENTION_DELTA,
    LINEAR_ATTENTION_GATED_DELTA,
} linear_attention_rule;

typedef enum linear_attention_path {
    LINEAR_ATTENTION_AUTO = 0, /* chunked for prefill, recurrent for short inputs */
    LINEAR_ATTENTION_REFERENCE,
    LINEAR_ATTENTION_RECURRENT,
    LINEAR_ATTENTION_CHUNKED,
} linear_attention_path;

/* Sizes and options of one call. */
typedef struct linear_attention_params {
    int64_t batch, seq_len, q_heads, kv_heads, k_dim, v_dim;
    linear_attention_rule rule;
    float scale;
    bool decay_per_key; /* decay [B, T, kv_heads * k_dim]; else [B, T, kv_heads] */
    bool beta_per_head; /* beta [B, T, kv_heads]; else [B, T, 1] */
    int64_t chunk;      /* chunk length of the chunked path; <= 0: the default */
} linear_attention_params;

/* The tensors, dense row-major float32. */
typedef struct linear_attention_data {
    const float *q;     /* [B, T, q_heads * k_dim] */
    const float *k;     /* [B, T, kv_heads * k_dim] */
    const float *v;     /* [B, T, kv_heads * v_dim] */
    const float *decay; /* as decay_per_key says; read by the gated rules only */
    const float *beta;  /* as beta_per_head says; read by the delta rules only */
    float *state;       /* [B, kv_heads, k_dim, v_dim]: the past state, updated in place */
    float *out;         /* [B, T, q_heads * v_dim] */
} linear_attention_data;

/* Whether the rule reads decay / beta. */
bool linear_attention_gated(linear_attention_rule rule);
bool linear_attention_delta(linear_attention_rule rule);

/* Parses an update_rule attribute value; false when unknown. */
bool linear_attention_parse_rule(const char *name, linear_attention_rule *rule);
const char *linear_attention_path_name(linear_attention_path path);

/* Runs path over pool (NULL: inline). OGI_ERR_OUT_OF_MEMORY when scratch
 * cannot be allocated (outputs then partly written). */
ogi_status linear_attention_run(threadpool *pool, const linear_attention_params *p,
                                const linear_attention_data *d, linear_attention_path path);

#endif
