/* LinearAttention (opset 27): linear attention with a recurrent state per KV
 * head, for decode (T = 1) and prefill (T > 1); the math and the three
 * kernels are in linear_attention.h. Inputs: query [B, T, H_q * d_k], key
 * [B, T, H_kv * d_k], value [B, T, H_kv * d_v], past_state [B, H_kv, d_k,
 * d_v] (zeros when omitted), decay [B, T, H_kv * d_k] or [B, T, H_kv] (gated
 * rules), beta [B, T, H_kv] or [B, T, 1] (delta rules). Outputs: output [B,
 * T, H_q * d_v] and present_state. float16 is computed in float32. The state
 * is updated in place in present_state, which takes over past_state's buffer
 * when nothing else reads it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "ops/families.h"
#include "ops/linear_attention.h"
#include "ops/linear_attention_internal.h"

/* Chunk length of the chunked path, and the shortest input it takes. */
#define LA_DEFAULT_CHUNK 32
#define LA_CHUNKED_MIN_LEN 16

bool linear_attention_gated(linear_attention_rule rule)
{
    return rule == LINEAR_ATTENTION_GATED || rule == LINEAR_ATTENTION_GATED_DELTA;
}

bool linear_attention_delta(linear_attention_rule rule)
{
    return rule == LINEAR_ATTENTION_DELTA || rule == LINEAR_ATTENTION_GATED_DELTA;
}

bool linear_attention_parse_rule(const char *name, linear_attention_rule *rule)
{
    static const char *const names[] = {"linear", "gated", "delta", "gated_delta"};
    for (int r = 0; r < 4; r++)
        if (strcmp(name, names[r]) == 0) {
            *rule = (linear_attention_rule)r;
            return true;
        }
    return false;
}

const char *linear_attention_path_name(linear_attention_path path)
{
    switch (path) {
    case LINEAR_ATTENTION_AUTO:
        return "auto";
    case LINEAR_ATTENTION_REFERENCE:
        return "reference";
    case LINEAR_ATTENTION_RECURRENT:
        return "recurrent";
    case LINEAR_ATTENTION_CHUNKED:
        return "chunked";
    }
    return "unknown";
}

/* ---- the reference ---------------------------------------------------------- */

/* The recurrence as the spec writes it, for one (batch, KV head); w: v_dim
 * floats of scratch. */
static void la_reference_head(const la_head *h, float *w)
{
    const linear_attention_params *p = h->p;
    const int64_t dk = p->k_dim, dv = p->v_dim, group = p->q_heads / p->kv_heads;
    float *S = la_state(h);
    for (int64_t t = 0; t < p->seq_len; t++) {
        const float *k = la_k(h, t), *v = la_v(h, t);
        if (linear_attention_gated(p->rule)) {
            const float *g = la_decay(h, t);
            for (int64_t i = 0; i < dk; i++) {
                const float e = expf(p->decay_per_key ? g[i] : g[0]);
                for (int64_t j = 0; j < dv; j++)
                    S[i * dv + j] *= e;
            }
        }
        if (linear_attention_delta(p->rule)) {
            /* w = beta (v - S^T k) */
            memset(w, 0, sizeof(float) * (size_t)dv);
            for (int64_t i = 0; i < dk; i++)
                for (int64_t j = 0; j < dv; j++)
                    w[j] += S[i * dv + j] * k[i];
            for (int64_t j = 0; j < dv; j++)
                w[j] = la_beta(h, t) * (v[j] - w[j]);
        } else {
            memcpy(w, v, sizeof(float) * (size_t)dv);
        }
        for (int64_t i = 0; i < dk; i++)
            for (int64_t j = 0; j < dv; j++)
                S[i * dv + j] += k[i] * w[j];
        for (int64_t g = 0; g < group; g++) {
            const float *q = la_q(h, g, t);
            float *o = la_out(h, g, t);
            memset(o, 0, sizeof(float) * (size_t)dv);
            for (int64_t i = 0; i < dk; i++)
                for (int64_t j = 0; j < dv; j++)
                    o[j] += q[i] * S[i * dv + j];
            for (int64_t j = 0; j < dv; j++)
                o[j] *= p->scale;
        }
    }
}

typedef struct la_ref_job {
    const linear_attention_params *p;
    const linear_attention_data *d;
    int failed;
} la_ref_job;

static void la_reference_range(void *arg, int64_t begin, int64_t end)
{
    la_ref_job *job = arg;
    float *w = malloc(sizeof(float) * (size_t)(job->p->v_dim > 0 ? job->p->v_dim : 1));
    if (w == NULL) {
        __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t u = begin; u < end; u++) {
        const la_head h = {job->p, job->d, u / job->p->kv_heads, u % job->p->kv_heads};
        la_reference_head(&h, w);
    }
    free(w);
}

ogi_status linear_attention_run(threadpool *pool, const linear_attention_params *p,
                                const linear_attention_data *d, linear_attention_path path)
{
    if (p->batch * p->kv_heads == 0 || p->seq_len == 0)
        return OGI_OK;
    linear_attention_params q = *p;
    if (q.chunk <= 0)
        q.chunk = LA_DEFAULT_CHUNK;
    if (path == LINEAR_ATTENTION_AUTO)
        path = p->seq_len >= LA_CHUNKED_MIN_LEN ? LINEAR_ATTENTION_CHUNKED
                                                : LINEAR_ATTENTION_RECURRENT;
    if (path != LINEAR_ATTENTION_REFERENCE)
        return linear_attention_fast(pool, &q, d, path == LINEAR_ATTENTION_CHUNKED);
    la_ref_job job = {&q, d, 0};
    threadpool_parallel_for(pool, p->batch * p->kv_heads, 1, la_reference_range, &job);
    return job.failed ? ogi_error(OGI_ERR_OUT_OF_MEMORY, "LinearAttention: out of memory") : OGI_OK;
}

/* ---- the op ----------------------------------------------------------------- */

static const char *const la_input_names[6] = {"query",      "key",   "value",
                                              "past_state", "decay", "beta"};

/* Checks input i is rank 3 [B, T, *] with query's dtype; *last = its last dim. */
static ogi_status la_check_packed(const op_ctx *c, int i, int64_t batch, int64_t seq, int64_t *last)
{
    const ogi_tensor *x = c->in[i];
    char s[128];
    if (x->dtype != c->in[0]->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d (%s): type %s differs from query's %s",
                        i, la_input_names[i], ogi_dtype_name(x->dtype),
                        ogi_dtype_name(c->in[0]->dtype));
    if (x->rank != 3 || (i > 0 && (x->dims[0] != batch || x->dims[1] != seq)))
        return op_error(c, OGI_ERR_RUNTIME,
                        "input %d (%s): expected rank 3 [batch %lld, seq %lld, *], got %s", i,
                        la_input_names[i], (long long)batch, (long long)seq,
                        tensor_shape_str(x->rank, x->dims, s, sizeof(s)));
    *last = x->dims[2];
    return OGI_OK;
}

/* Reads the attributes and checks every input's shape against them. */
static ogi_status la_read_params(const op_ctx *c, linear_attention_params *p)
{
    memset(p, 0, sizeof(*p));
    const char *rule = op_attr_string(c, "update_rule", "gated_delta");
    if (!linear_attention_parse_rule(rule, &p->rule))
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute update_rule='%s' is not linear, gated, delta or gated_delta",
                        rule);
    p->q_heads = op_attr_int(c, "q_num_heads", 0);
    p->kv_heads = op_attr_int(c, "kv_num_heads", 0);
    if (p->q_heads <= 0 || p->kv_heads <= 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attributes q_num_heads (%lld) and kv_num_heads (%lld) must be positive",
                        (long long)p->q_heads, (long long)p->kv_heads);
    if (p->q_heads % p->kv_heads != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "q_num_heads (%lld) is not a multiple of kv_num_heads (%lld)",
                        (long long)p->q_heads, (long long)p->kv_heads);
    ogi_status st;
    for (int i = 0; i < 3; i++)
        if ((st = op_require_input(c, i)) != OGI_OK)
            return st;
    const ogi_tensor *q = c->in[0];
    if (q->dtype != OGI_FLOAT32 && q->dtype != OGI_FLOAT16)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0 (query): type %s is not supported",
                        ogi_dtype_name(q->dtype));
    int64_t qd, kd, vd;
    if ((st = la_check_packed(c, 0, 0, 0, &qd)) != OGI_OK)
        return st;
    p->batch = q->dims[0];
    p->seq_len = q->dims[1];
    if ((st = la_check_packed(c, 1, p->batch, p->seq_len, &kd)) != OGI_OK ||
        (st = la_check_packed(c, 2, p->batch, p->seq_len, &vd)) != OGI_OK)
        return st;
    if (qd % p->q_heads != 0 || vd % p->kv_heads != 0)
        return op_error(c, OGI_ERR_RUNTIME,
                        "query's last dim %lld is not a multiple of q_num_heads %lld, or value's "
                        "%lld of kv_num_heads %lld",
                        (long long)qd, (long long)p->q_heads, (long long)vd,
                        (long long)p->kv_heads);
    p->k_dim = qd / p->q_heads;
    p->v_dim = vd / p->kv_heads;
    if (kd != p->kv_heads * p->k_dim)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 1 (key): last dim %lld is not kv_num_heads %lld x d_k %lld",
                        (long long)kd, (long long)p->kv_heads, (long long)p->k_dim);
    const float scale = op_attr_float(c, "scale", 0.0f);
    p->scale = scale != 0.0f ? scale : 1.0f / sqrtf((float)(p->k_dim > 0 ? p->k_dim : 1));
    if (op_has_input(c, 3)) {
        const ogi_tensor *s = c->in[3];
        const int64_t want[4] = {p->batch, p->kv_heads, p->k_dim, p->v_dim};
        char got[128], exp[128];
        if (s->dtype != q->dtype)
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "input 3 (past_state): type %s differs from query's %s",
                            ogi_dtype_name(s->dtype), ogi_dtype_name(q->dtype));
        if (s->rank != 4 || memcmp(s->dims, want, sizeof(want)) != 0)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 3 (past_state): expected shape %s [batch, kv_heads, d_k, d_v], "
                            "got %s",
                            tensor_shape_str(4, want, exp, sizeof(exp)),
                            tensor_shape_str(s->rank, s->dims, got, sizeof(got)));
    }
    if (linear_attention_gated(p->rule)) {
        int64_t last;
        if (!op_has_input(c, 4))
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "input 4 (decay) is required by update_rule '%s'", rule);
        if ((st = la_check_packed(c, 4, p->batch, p->seq_len, &last)) != OGI_OK)
            return st;
        if (last != p->kv_heads * p->k_dim && last != p->kv_heads)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 4 (decay): last dim %lld is neither kv_num_heads x d_k (%lld) "
                            "nor kv_num_heads (%lld)",
                            (long long)last, (long long)(p->kv_heads * p->k_dim),
                            (long long)p->kv_heads);
        p->decay_per_key = last == p->kv_heads * p->k_dim;
    }
    if (linear_attention_delta(p->rule)) {
        int64_t last;
        if (!op_has_input(c, 5))
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "input 5 (beta) is required by update_rule '%s'", rule);
        if ((st = la_check_packed(c, 5, p->batch, p->seq_len, &last)) != OGI_OK)
            return st;
        if (last != p->kv_heads && last != 1)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 5 (beta): last dim %lld is neither kv_num_heads (%lld) nor 1",
                            (long long)last, (long long)p->kv_heads);
        p->beta_per_head = last == p->kv_heads;
    }
    return OGI_OK;
}

/* A float32 copy of a float16 input (NULL input: NULL). */
static ogi_status la_run_f32(op_ctx *c, const linear_attention_params *p, linear_attention_data *d)
{
    const int64_t sdims[4] = {p->batch, p->kv_heads, p->k_dim, p->v_dim};
    ogi_status st;
    if (op_has_input(c, 3)) {
        st = op_alloc_inplace(c, 1, 3); /* the state is updated where it lies */
    } else {
        st = op_alloc(c, 1, OGI_FLOAT32, 4, sdims);
        if (st == OGI_OK)
            memset(c->out[1]->data, 0, c->out[1]->nbytes);
    }
    if (st != OGI_OK)
        return st;
    d->state = c->out[1]->data;
    d->q = c->in[0]->data;
    d->k = c->in[1]->data;
    d->v = c->in[2]->data;
    d->decay = linear_attention_gated(p->rule) ? c->in[4]->data : NULL;
    d->beta = linear_attention_delta(p->rule) ? c->in[5]->data : NULL;
    d->out = c->out[0]->data;
    return linear_attention_run(c->pool, p, d, LINEAR_ATTENTION_AUTO);
}

static ogi_status la_run_f16(op_ctx *c, const linear_attention_params *p, linear_attention_data *d)
{
    const int64_t sdims[4] = {p->batch, p->kv_heads, p->k_dim, p->v_dim};
    const int64_t n_state = p->batch * p->kv_heads * p->k_dim * p->v_dim;
    const int64_t n_out = tensor_numel(c->out[0]);
    bool oom = false;
    float *q = tensor_f16_widen(c->in[0], &oom), *k = tensor_f16_widen(c->in[1], &oom);
    float *v = tensor_f16_widen(c->in[2], &oom);
    float *decay = linear_attention_gated(p->rule) ? tensor_f16_widen(c->in[4], &oom) : NULL;
    float *beta = linear_attention_delta(p->rule) ? tensor_f16_widen(c->in[5], &oom) : NULL;
    float *state = op_has_input(c, 3) ? tensor_f16_widen(c->in[3], &oom)
                                      : calloc((size_t)(n_state > 0 ? n_state : 1), sizeof(float));
    float *out = malloc(sizeof(float) * (size_t)(n_out > 0 ? n_out : 1));
    ogi_status st = OGI_OK;
    if (oom || state == NULL || out == NULL)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for float32 copies");
    if (st == OGI_OK) {
        *d = (linear_attention_data){q, k, v, decay, beta, state, out};
        st = linear_attention_run(c->pool, p, d, LINEAR_ATTENTION_AUTO);
    }
    if (st == OGI_OK)
        st = op_alloc(c, 1, OGI_FLOAT16, 4, sdims);
    if (st == OGI_OK) {
        tensor_f16_narrow(out, n_out, c->out[0]->data);
        tensor_f16_narrow(state, n_state, c->out[1]->data);
    }
    free(q);
    free(k);
    free(v);
    free(decay);
    free(beta);
    free(state);
    free(out);
    return st;
}

static ogi_status linear_attention_op(op_ctx *c)
{
    linear_attention_params p;
    ogi_status st = la_read_params(c, &p);
    if (st != OGI_OK)
        return st;
    const ogi_dtype dtype = c->in[0]->dtype;
    const int64_t odims[3] = {p.batch, p.seq_len, p.q_heads * p.v_dim};
    if ((st = op_alloc(c, 0, dtype, 3, odims)) != OGI_OK)
        return st;
    linear_attention_data d;
    return dtype == OGI_FLOAT32 ? la_run_f32(c, &p, &d) : la_run_f16(c, &p, &d);
}

const op_kernel op_kernels_linear_attention[] = {
    {"", "LinearAttention", 27, linear_attention_op},
    {NULL, NULL, 0, NULL},
};
