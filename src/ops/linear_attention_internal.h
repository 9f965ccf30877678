/* Shared between linear_attention.c and linear_attention_fast.c: one
 * (batch, KV head) unit's view of the tensors. */
#ifndef OGI_OPS_LINEAR_ATTENTION_INTERNAL_H
#define OGI_OPS_LINEAR_ATTENTION_INTERNAL_H

#include "ops/linear_attention.h"

typedef struct la_head {
    const linear_attention_params *p;
    const linear_attention_data *d;
    int64_t b, h; /* batch entry, KV head */
} la_head;

/* Row t of key / value, row t of query head g of the group, the output row of
 * query head g, the decay row (k_dim values, or one), beta, the state. */
static inline const float *la_k(const la_head *x, int64_t t)
{
    const linear_attention_params *p = x->p;
    return x->d->k + ((x->b * p->seq_len + t) * p->kv_heads + x->h) * p->k_dim;
}

static inline const float *la_v(const la_head *x, int64_t t)
{
    const linear_attention_params *p = x->p;
    return x->d->v + ((x->b * p->seq_len + t) * p->kv_heads + x->h) * p->v_dim;
}

static inline int64_t la_q_head(const la_head *x, int64_t g)
{
    return x->h * (x->p->q_heads / x->p->kv_heads) + g;
}

static inline const float *la_q(const la_head *x, int64_t g, int64_t t)
{
    const linear_attention_params *p = x->p;
    return x->d->q + ((x->b * p->seq_len + t) * p->q_heads + la_q_head(x, g)) * p->k_dim;
}

static inline float *la_out(const la_head *x, int64_t g, int64_t t)
{
    const linear_attention_params *p = x->p;
    return x->d->out + ((x->b * p->seq_len + t) * p->q_heads + la_q_head(x, g)) * p->v_dim;
}

static inline const float *la_decay(const la_head *x, int64_t t)
{
    const linear_attention_params *p = x->p;
    const int64_t row = (x->b * p->seq_len + t) * p->kv_heads + x->h;
    return x->d->decay + (p->decay_per_key ? row * p->k_dim : row);
}

static inline float la_beta(const la_head *x, int64_t t)
{
    const linear_attention_params *p = x->p;
    const int64_t bt = x->b * p->seq_len + t;
    return x->d->beta[p->beta_per_head ? bt * p->kv_heads + x->h : bt];
}

static inline float *la_state(const la_head *x)
{
    const linear_attention_params *p = x->p;
    return x->d->state + (x->b * p->kv_heads + x->h) * p->k_dim * p->v_dim;
}

/* The recurrent (chunked false) or chunked path over pool; p->chunk >= 1. */
ogi_status linear_attention_fast(threadpool *pool, const linear_attention_params *p,
                                 const linear_attention_data *d, bool chunked);

#endif
