/* CausalConvWithState (opset 27) kernels, shared by the op (causal_conv.c),
 * its tests and its benchmark: the stateful causal depthwise 1-D convolution
 * of Mamba / Gated DeltaNet layers with an optional fused SiLU. */
#ifndef OGI_OPS_CAUSAL_CONV_H
#define OGI_OPS_CAUSAL_CONV_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "ogi.h"

/* y[b, c, t] = act(bias[c] + sum_j w[c, j] * xp[b, c, t + j]), xp = the
 * past state [B, C, K-1] followed by x [B, C, L]; the new state is the last
 * K-1 columns of xp. */
typedef struct causal_conv_params {
    int64_t batch, channels, seq_len, kernel;
    bool silu;
} causal_conv_params;

typedef struct causal_conv_data {
    const float *x;      /* [B, C, L] */
    const float *weight; /* [C, K] */
    const float *bias;   /* [C] or NULL */
    float *state;        /* [B, C, K-1]: the past state, updated in place */
    float *y;            /* [B, C, L] */
} causal_conv_data;

/* reference: plain loops over a materialised xp; else the fast path. */
ogi_status causal_conv_run(threadpool *pool, const causal_conv_params *p, const causal_conv_data *d,
                           bool reference);

#endif
