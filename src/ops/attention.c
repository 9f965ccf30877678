/* Attention (opset 23, and 24 with nonpad_kv_seqlen): scaled dot-product
 * attention
 *   Y = softmax(softcap(scale * Q K^T) + bias) V
 * over Q [batch, q_heads, q_len, qk_dim], K [batch, kv_heads, kv_len, qk_dim],
 * V [batch, kv_heads, kv_len, v_dim] (or 3D [batch, seq, heads * dim] with the
 * head counts as attributes). past_key / past_value are concatenated before
 * the new keys on the sequence axis (present_*), query head h reads KV head
 * h / (q_heads / kv_heads) (GQA), and the bias gathers the attention mask, the
 * bottom-right aligned causal mask and the nonpad_kv_seqlen padding mask. A
 * row whose keys are all masked gets probabilities 0.
 *
 * attention_reference() is the plain-loop kernel, in double precision, that
 * faster kernels are tested against; the op converts its inputs to the
 * reference's layout and back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

enum {
    ATTN_IN_Q,
    ATTN_IN_K,
    ATTN_IN_V,
    ATTN_IN_MASK,
    ATTN_IN_PAST_KEY,
    ATTN_IN_PAST_VALUE,
    ATTN_IN_NONPAD
};
enum { ATTN_OUT_Y, ATTN_OUT_PRESENT_KEY, ATTN_OUT_PRESENT_VALUE, ATTN_OUT_QK };

/* What qk_matmul_output holds. */
typedef enum attention_qk_mode {
    ATTENTION_QK_RAW = 0,     /* scale * Q K^T */
    ATTENTION_QK_SOFTCAP = 1, /* after softcap */
    ATTENTION_QK_BIASED = 2,  /* after softcap and the mask bias */
    ATTENTION_QK_SOFTMAX = 3, /* the probabilities */
} attention_qk_mode;

/* Sizes and options of one attention call. */
typedef struct attention_params {
    int64_t batch, q_heads, kv_heads; /* q_heads is a multiple of kv_heads */
    int64_t q_len, total_len;         /* total_len: past + new keys */
    int64_t qk_dim, v_dim;
    double scale;   /* on Q K^T (the spec's sqrt(scale) on Q and on K) */
    double softcap; /* 0: none */
    /* causal: query i of batch b sees keys j <= i + causal_offset[b] */
    const int64_t *causal_offset; /* [batch], NULL when not causal */
    const int64_t *kv_valid_len;  /* [batch]: keys j >= it are masked; NULL: none */
    attention_qk_mode qk_mode;
    /* float16 / bfloat16: softmax inputs and outputs are rounded to it;
     * anything else: full precision */
    ogi_dtype softmax_dtype;
} attention_params;

/* The tensors of one call, all dense row-major doubles. */
typedef struct attention_data {
    const double *q; /* [batch, q_heads, q_len, qk_dim] */
    const double *k; /* [batch, kv_heads, total_len, qk_dim] */
    const double *v; /* [batch, kv_heads, total_len, v_dim] */
    /* additive mask or NULL; element (b, h, i, j) at the dot product of
     * mask_strides with it (0 strides broadcast); keys j >= mask_len get -inf */
    const double *mask;
    int64_t mask_strides[4];
    int64_t mask_len;
    double *y;  /* [batch, q_heads, q_len, v_dim] */
    double *qk; /* [batch, q_heads, q_len, total_len], or NULL */
} attention_data;

ogi_status attention_reference(const attention_params *p, const attention_data *d);

/* ---- the reference kernel ------------------------------------------------ */

static double attention_round(double x, ogi_dtype dtype)
{
    switch (dtype) {
    case OGI_FLOAT32:
        return (float)x;
    case OGI_FLOAT16:
        return dtype_f16_to_f32(dtype_f32_to_f16((float)x));
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(dtype_f32_to_bf16((float)x));
    default:
        return x;
    }
}

/* The bias on key j for query i of batch b, head h. */
static double attention_bias(const attention_params *p, const attention_data *d, int64_t b,
                             int64_t h, int64_t i, int64_t j)
{
    if (p->causal_offset != NULL && j > i + p->causal_offset[b])
        return -INFINITY;
    if (p->kv_valid_len != NULL && j >= p->kv_valid_len[b])
        return -INFINITY;
    if (d->mask == NULL)
        return 0.0;
    if (j >= d->mask_len)
        return -INFINITY;
    const int64_t *s = d->mask_strides;
    return d->mask[b * s[0] + h * s[1] + i * s[2] + j * s[3]];
}

/* scores[j] = the biased score of key j for query row `row`; fills the
 * qk output's raw, softcap and biased modes on the way. */
static void attention_scores(const attention_params *p, const attention_data *d, int64_t row,
                             double *scores)
{
    const int64_t i = row % p->q_len, h = row / p->q_len % p->q_heads;
    const int64_t b = row / p->q_len / p->q_heads;
    const int64_t kv_head = h / (p->q_heads / p->kv_heads);
    const double *q = d->q + row * p->qk_dim;
    const double *k = d->k + (b * p->kv_heads + kv_head) * p->total_len * p->qk_dim;
    double *qk = d->qk != NULL ? d->qk + row * p->total_len : NULL;
    for (int64_t j = 0; j < p->total_len; j++) {
        double s = 0.0;
        for (int64_t e = 0; e < p->qk_dim; e++)
            s += q[e] * k[j * p->qk_dim + e];
        s *= p->scale;
        if (qk != NULL && p->qk_mode == ATTENTION_QK_RAW)
            qk[j] = s;
        if (p->softcap > 0.0)
            s = p->softcap * tanh(s / p->softcap);
        if (qk != NULL && p->qk_mode == ATTENTION_QK_SOFTCAP)
            qk[j] = s;
        s += attention_bias(p, d, b, h, i, j);
        if (qk != NULL && p->qk_mode == ATTENTION_QK_BIASED)
            qk[j] = s;
        scores[j] = s;
    }
}

/* Softmax over n scores in place; all -inf (every key masked) gives 0s. */
static void attention_softmax(double *x, int64_t n, ogi_dtype dtype)
{
    double max = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        x[j] = attention_round(x[j], dtype);
        if (x[j] > max)
            max = x[j];
    }
    if (max == -INFINITY) {
        for (int64_t j = 0; j < n; j++)
            x[j] = 0.0;
        return;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        x[j] = exp(x[j] - max);
        sum += x[j];
    }
    for (int64_t j = 0; j < n; j++)
        x[j] = attention_round(x[j] / sum, dtype);
}

/* Computes query row `row` (b, h, i flattened) of Y and qk; scratch holds
 * total_len doubles. */
static void attention_row(const attention_params *p, const attention_data *d, int64_t row,
                          double *scratch)
{
    attention_scores(p, d, row, scratch);
    attention_softmax(scratch, p->total_len, p->softmax_dtype);
    if (d->qk != NULL && p->qk_mode == ATTENTION_QK_SOFTMAX)
        memcpy(d->qk + row * p->total_len, scratch, sizeof(double) * (size_t)p->total_len);
    const int64_t h = row / p->q_len % p->q_heads, b = row / p->q_len / p->q_heads;
    const int64_t kv_head = h / (p->q_heads / p->kv_heads);
    const double *v = d->v + (b * p->kv_heads + kv_head) * p->total_len * p->v_dim;
    double *y = d->y + row * p->v_dim;
    for (int64_t e = 0; e < p->v_dim; e++)
        y[e] = 0.0;
    for (int64_t j = 0; j < p->total_len; j++) {
        for (int64_t e = 0; e < p->v_dim; e++)
            y[e] += scratch[j] * v[j * p->v_dim + e];
    }
}

/* The reference: every query row in turn. Fails only when out of memory. */
ogi_status attention_reference(const attention_params *p, const attention_data *d)
{
    double *scratch = malloc(sizeof(double) * (size_t)(p->total_len > 0 ? p->total_len : 1));
    if (scratch == NULL)
        return OGI_ERR_OUT_OF_MEMORY;
    const int64_t rows = p->batch * p->q_heads * p->q_len;
    for (int64_t row = 0; row < rows; row++)
        attention_row(p, d, row, scratch);
    free(scratch);
    return OGI_OK;
}

/* The same rows split over the thread pool: worker t computes slice t of
 * the rows with its own scratch. */
typedef struct attention_job {
    const attention_params *p;
    const attention_data *d;
    int64_t rows, slices;
    double *scratch; /* slices * total_len */
} attention_job;

static void attention_slices(void *arg, int64_t begin, int64_t end)
{
    const attention_job *job = arg;
    for (int64_t t = begin; t < end; t++) {
        double *scratch = job->scratch + t * job->p->total_len;
        for (int64_t row = job->rows * t / job->slices; row < job->rows * (t + 1) / job->slices;
             row++)
            attention_row(job->p, job->d, row, scratch);
    }
}

static ogi_status attention_run_parallel(threadpool *pool, const attention_params *p,
                                         const attention_data *d)
{
    const int64_t rows = p->batch * p->q_heads * p->q_len;
    const int64_t work = rows * p->total_len * (p->qk_dim + p->v_dim);
    int64_t slices = threadpool_size(pool);
    if (slices > rows)
        slices = rows;
    if (slices <= 1 || work < (1 << 16))
        return attention_reference(p, d);
    attention_job job = {p, d, rows, slices, NULL};
    job.scratch = malloc(sizeof(double) * (size_t)(slices * (p->total_len > 0 ? p->total_len : 1)));
    if (job.scratch == NULL)
        return OGI_ERR_OUT_OF_MEMORY;
    threadpool_parallel_for(pool, slices, 1, attention_slices, &job);
    free(job.scratch);
    return OGI_OK;
}

/* ---- the op: validation and layout conversion --------------------------- */

/* The inputs' layout: each of Q, K, V (and Y) is [batch, heads, seq, dim], or
 * [batch, seq, heads * dim] when seq_major (3D inputs). */
typedef struct attention_layout {
    bool seq_major;
    int64_t kv_len, past_len;
    ogi_dtype dtype_qk, dtype_v;
} attention_layout;

/* dims of a Q/K/V-like tensor as [batch, heads, seq, dim]. */
static void attention_dims4(const ogi_tensor *t, bool seq_major, int64_t heads, int64_t *dims)
{
    if (seq_major) {
        dims[0] = t->dims[0];
        dims[1] = heads;
        dims[2] = t->dims[1];
        dims[3] = heads > 0 ? t->dims[2] / heads : 0;
    } else {
        memcpy(dims, t->dims, sizeof(int64_t) * 4);
    }
}

static const char *const attention_input_names[] = {
    "Q", "K", "V", "attn_mask", "past_key", "past_value", "nonpad_kv_seqlen",
};

static ogi_status attention_check_float(const op_ctx *c, int i, ogi_dtype want)
{
    ogi_dtype got = c->in[i]->dtype;
    if (got != OGI_FLOAT32 && got != OGI_FLOAT16 && got != OGI_BFLOAT16 && got != OGI_FLOAT64)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d (%s): expected a float tensor, got %s",
                        i, attention_input_names[i], ogi_dtype_name(got));
    if (want != OGI_DTYPE_UNDEFINED && got != want)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d (%s): type %s differs from %s", i,
                        attention_input_names[i], ogi_dtype_name(got), ogi_dtype_name(want));
    return OGI_OK;
}

/* Head count of a 3D input from its attribute, checking it divides hidden. */
static ogi_status attention_heads_3d(const op_ctx *c, int i, const char *attr, int64_t *heads)
{
    *heads = op_attr_int(c, attr, 0);
    if (*heads <= 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s is required (> 0) for 3D inputs",
                        attr);
    if (c->in[i]->dims[2] % *heads != 0)
        return op_error(
            c, OGI_ERR_RUNTIME, "input %d (%s): hidden size %lld is not divisible by %s=%lld", i,
            attention_input_names[i], (long long)c->in[i]->dims[2], attr, (long long)*heads);
    return OGI_OK;
}

/* Head counts for 4D inputs come from the shapes; the attributes, when
 * given, must agree. */
static ogi_status attention_heads_4d(const op_ctx *c, int i, const char *attr, int64_t *heads)
{
    *heads = c->in[i]->dims[1];
    int64_t a = op_attr_int(c, attr, 0);
    if (a != 0 && a != *heads)
        return op_error(c, OGI_ERR_RUNTIME,
                        "attribute %s=%lld differs from input %d (%s)'s head dim %lld", attr,
                        (long long)a, i, attention_input_names[i], (long long)*heads);
    return OGI_OK;
}

static ogi_status attention_read_heads(const op_ctx *c, attention_layout *l, attention_params *p)
{
    const int rank = c->in[ATTN_IN_Q]->rank;
    if (rank != 3 && rank != 4)
        return op_error(c, OGI_ERR_RUNTIME, "input 0 (Q): expected rank 3 or 4, got %d", rank);
    for (int i = ATTN_IN_K; i <= ATTN_IN_V; i++) {
        if (c->in[i]->rank != rank)
            return op_error(c, OGI_ERR_RUNTIME, "input %d (%s): rank %d differs from Q's rank %d",
                            i, attention_input_names[i], c->in[i]->rank, rank);
    }
    l->seq_major = rank == 3;
    int64_t v_heads;
    ogi_status st;
    if (l->seq_major) {
        if ((st = attention_heads_3d(c, ATTN_IN_Q, "q_num_heads", &p->q_heads)) != OGI_OK ||
            (st = attention_heads_3d(c, ATTN_IN_K, "kv_num_heads", &p->kv_heads)) != OGI_OK ||
            (st = attention_heads_3d(c, ATTN_IN_V, "kv_num_heads", &v_heads)) != OGI_OK)
            return st;
    } else {
        if ((st = attention_heads_4d(c, ATTN_IN_Q, "q_num_heads", &p->q_heads)) != OGI_OK ||
            (st = attention_heads_4d(c, ATTN_IN_K, "kv_num_heads", &p->kv_heads)) != OGI_OK ||
            (st = attention_heads_4d(c, ATTN_IN_V, "kv_num_heads", &v_heads)) != OGI_OK)
            return st;
    }
    if (v_heads != p->kv_heads)
        return op_error(c, OGI_ERR_RUNTIME, "V has %lld heads, K has %lld", (long long)v_heads,
                        (long long)p->kv_heads);
    if (p->kv_heads == 0 || p->q_heads % p->kv_heads != 0)
        return op_error(c, OGI_ERR_RUNTIME,
                        "q_num_heads %lld is not a multiple of kv_num_heads %lld",
                        (long long)p->q_heads, (long long)p->kv_heads);
    return OGI_OK;
}

/* Batch, sequence and head sizes of Q, K and V. */
static ogi_status attention_read_qkv(const op_ctx *c, attention_layout *l, attention_params *p)
{
    ogi_status st = attention_read_heads(c, l, p);
    if (st != OGI_OK)
        return st;
    int64_t q[4], k[4], v[4];
    attention_dims4(c->in[ATTN_IN_Q], l->seq_major, p->q_heads, q);
    attention_dims4(c->in[ATTN_IN_K], l->seq_major, p->kv_heads, k);
    attention_dims4(c->in[ATTN_IN_V], l->seq_major, p->kv_heads, v);
    if (k[0] != q[0] || v[0] != q[0])
        return op_error(c, OGI_ERR_RUNTIME, "batch sizes differ: Q %lld, K %lld, V %lld",
                        (long long)q[0], (long long)k[0], (long long)v[0]);
    if (k[2] != v[2])
        return op_error(c, OGI_ERR_RUNTIME, "K has %lld positions, V has %lld", (long long)k[2],
                        (long long)v[2]);
    if (k[3] != q[3])
        return op_error(c, OGI_ERR_RUNTIME, "K head size %lld differs from Q head size %lld",
                        (long long)k[3], (long long)q[3]);
    p->batch = q[0];
    p->q_len = q[2];
    p->qk_dim = q[3];
    p->v_dim = v[3];
    l->kv_len = k[2];
    return OGI_OK;
}

/* past_key [batch, kv_heads, past, qk_dim] and past_value [..., past, v_dim]. */
static ogi_status attention_read_past(const op_ctx *c, attention_layout *l,
                                      const attention_params *p)
{
    bool has_k = op_has_input(c, ATTN_IN_PAST_KEY), has_v = op_has_input(c, ATTN_IN_PAST_VALUE);
    l->past_len = 0;
    if (!has_k && !has_v)
        return OGI_OK;
    if (has_k != has_v)
        return op_error(c, OGI_ERR_INVALID_MODEL, "past_key and past_value must be given together");
    const ogi_tensor *pk = c->in[ATTN_IN_PAST_KEY], *pv = c->in[ATTN_IN_PAST_VALUE];
    char ks[128], vs[128];
    ogi_status st;
    if ((st = attention_check_float(c, ATTN_IN_PAST_KEY, l->dtype_qk)) != OGI_OK ||
        (st = attention_check_float(c, ATTN_IN_PAST_VALUE, l->dtype_v)) != OGI_OK)
        return st;
    if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != p->batch || pk->dims[1] != p->kv_heads ||
        pk->dims[3] != p->qk_dim || pv->dims[0] != p->batch || pv->dims[1] != p->kv_heads ||
        pv->dims[2] != pk->dims[2] || pv->dims[3] != p->v_dim)
        return op_error(
            c, OGI_ERR_RUNTIME,
            "past_key %s / past_value %s: expected [%lld,%lld,past,%lld] / [%lld,%lld,past,%lld]",
            tensor_shape_str(pk->rank, pk->dims, ks, sizeof(ks)),
            tensor_shape_str(pv->rank, pv->dims, vs, sizeof(vs)), (long long)p->batch,
            (long long)p->kv_heads, (long long)p->qk_dim, (long long)p->batch,
            (long long)p->kv_heads, (long long)p->v_dim);
    l->past_len = pk->dims[2];
    return OGI_OK;
}

static ogi_status attention_read_attrs(const op_ctx *c, attention_params *p)
{
    p->scale = op_attr_float(c, "scale", 0.0f);
    if (op_attr(c, "scale") == NULL)
        p->scale = p->qk_dim > 0 ? 1.0 / sqrt((double)p->qk_dim) : 1.0;
    p->softcap = op_attr_float(c, "softcap", 0.0f);
    if (p->softcap < 0.0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute softcap=%g must not be negative",
                        p->softcap);
    int64_t mode = op_attr_int(c, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute qk_matmul_output_mode=%lld is not 0, 1, 2 or 3",
                        (long long)mode);
    p->qk_mode = (attention_qk_mode)mode;
    int64_t sp = op_attr_int(c, "softmax_precision", 0);
    if (sp != 0 && sp != OGI_FLOAT32 && sp != OGI_FLOAT16 && sp != OGI_BFLOAT16 &&
        sp != OGI_FLOAT64)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute softmax_precision=%lld is not a float type", (long long)sp);
    /* float32 is no rounding beyond what the float32 output gets anyway */
    p->softmax_dtype =
        (sp == OGI_FLOAT16 || sp == OGI_BFLOAT16) ? (ogi_dtype)sp : OGI_DTYPE_UNDEFINED;
    return OGI_OK;
}

/* Validates inputs and attributes and fills p (except the per-batch arrays)
 * and l. */
static ogi_status attention_prepare(const op_ctx *c, attention_layout *l, attention_params *p)
{
    ogi_status st;
    for (int i = ATTN_IN_Q; i <= ATTN_IN_V; i++) {
        if ((st = op_require_input(c, i)) != OGI_OK)
            return st;
    }
    if (c->opset < 24 && op_has_input(c, ATTN_IN_NONPAD))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 6 (nonpad_kv_seqlen) needs opset 24");
    l->dtype_qk = c->in[ATTN_IN_Q]->dtype;
    l->dtype_v = c->in[ATTN_IN_V]->dtype;
    if ((st = attention_check_float(c, ATTN_IN_Q, OGI_DTYPE_UNDEFINED)) != OGI_OK ||
        (st = attention_check_float(c, ATTN_IN_K, l->dtype_qk)) != OGI_OK ||
        (st = attention_check_float(c, ATTN_IN_V, OGI_DTYPE_UNDEFINED)) != OGI_OK)
        return st;
    if ((st = attention_read_qkv(c, l, p)) != OGI_OK ||
        (st = attention_read_past(c, l, p)) != OGI_OK)
        return st;
    p->total_len = l->past_len + l->kv_len;
    return attention_read_attrs(c, p);
}

/* ---- masks ---------------------------------------------------------------- */

/* Strides of the mask over [batch, q_heads, q_len, total_len] after numpy
 * broadcasting (right-aligned); its last dim is total_len, 1 (opset 23,
 * broadcast) or, in opset 24, shorter (the rest padded with -inf). */
static ogi_status attention_mask_strides(const op_ctx *c, const attention_params *p,
                                         attention_data *d)
{
    const ogi_tensor *m = c->in[ATTN_IN_MASK];
    const int64_t full[4] = {p->batch, p->q_heads, p->q_len, p->total_len};
    char ms[128], fs[128];
    if (m->rank < 1 || m->rank > 4)
        goto mismatch;
    const int64_t last = m->dims[m->rank - 1];
    bool pad = c->opset >= 24 && last < p->total_len;
    if (last != p->total_len && !pad && last != 1) {
        if (last < p->total_len)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 3 (attn_mask): last dim %lld is shorter than the total sequence "
                            "length %lld (padding needs opset 24)",
                            (long long)last, (long long)p->total_len);
        goto mismatch;
    }
    d->mask_len = pad ? last : p->total_len;
    int64_t stride = 1;
    for (int a = 3; a >= 0; a--) {
        int md = a - (4 - m->rank);
        d->mask_strides[a] = 0;
        if (md < 0)
            continue;
        if (a < 3 && m->dims[md] != full[a] && m->dims[md] != 1)
            goto mismatch;
        if (m->dims[md] != 1 || (a == 3 && pad))
            d->mask_strides[a] = stride;
        stride *= m->dims[md];
    }
    return OGI_OK;
mismatch:
    return op_error(c, OGI_ERR_RUNTIME, "input 3 (attn_mask): shape %s does not broadcast to %s",
                    tensor_shape_str(m->rank, m->dims, ms, sizeof(ms)),
                    tensor_shape_str(4, full, fs, sizeof(fs)));
}

/* The mask as additive doubles: bool true -> 0, false -> -inf. */
static ogi_status attention_load_mask(const op_ctx *c, const attention_params *p, attention_data *d,
                                      double **buf)
{
    *buf = NULL;
    d->mask = NULL;
    if (!op_has_input(c, ATTN_IN_MASK))
        return OGI_OK;
    const ogi_tensor *m = c->in[ATTN_IN_MASK];
    if (m->dtype != OGI_BOOL && !dtype_is_float(m->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "input 3 (attn_mask): expected bool or float, got %s",
                        ogi_dtype_name(m->dtype));
    ogi_status st = attention_mask_strides(c, p, d);
    if (st != OGI_OK)
        return st;
    const int64_t n = tensor_numel(m);
    if ((*buf = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1))) == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for the attention mask");
    for (int64_t e = 0; e < n; e++) {
        double v = dtype_get_f64(m->data, m->dtype, e);
        (*buf)[e] = m->dtype == OGI_BOOL ? (v != 0.0 ? 0.0 : -INFINITY) : v;
    }
    d->mask = *buf;
    return OGI_OK;
}

/* nonpad_kv_seqlen [batch] (int64), each in [0, total_len]. */
static ogi_status attention_load_nonpad(const op_ctx *c, const attention_params *p, int64_t *valid)
{
    const ogi_tensor *t = c->in[ATTN_IN_NONPAD];
    if (t->dtype != OGI_INT64 && t->dtype != OGI_INT32)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "input 6 (nonpad_kv_seqlen): expected int64, got %s",
                        ogi_dtype_name(t->dtype));
    if (t->rank != 1 || t->dims[0] != p->batch)
        return op_error(
            c, OGI_ERR_RUNTIME,
            "input 6 (nonpad_kv_seqlen): expected shape [%lld], got rank %d with %lld elements",
            (long long)p->batch, t->rank, (long long)tensor_numel(t));
    for (int64_t b = 0; b < p->batch; b++) {
        valid[b] = dtype_get_i64(t->data, t->dtype, b);
        if (valid[b] < 0 || valid[b] > p->total_len)
            return op_error(c, OGI_ERR_RUNTIME,
                            "nonpad_kv_seqlen[%lld] = %lld is outside [0, %lld]", (long long)b,
                            (long long)valid[b], (long long)p->total_len);
    }
    return OGI_OK;
}

/* Fills the per-batch arrays: valid lengths (nonpad_kv_seqlen) and the
 * causal offset, past_len with a past, else nonpad_kv_seqlen[b] - q_len with
 * an external cache, else 0. arrays holds 2 * batch int64s. */
static ogi_status attention_load_batch_arrays(const op_ctx *c, const attention_layout *l,
                                              attention_params *p, int64_t *arrays)
{
    int64_t *valid = arrays, *offset = arrays + p->batch;
    p->kv_valid_len = NULL;
    p->causal_offset = NULL;
    bool has_nonpad = op_has_input(c, ATTN_IN_NONPAD);
    if (has_nonpad) {
        ogi_status st = attention_load_nonpad(c, p, valid);
        if (st != OGI_OK)
            return st;
        p->kv_valid_len = valid;
    }
    if (op_attr_int(c, "is_causal", 0) == 0)
        return OGI_OK;
    for (int64_t b = 0; b < p->batch; b++) {
        bool external = has_nonpad && !op_has_input(c, ATTN_IN_PAST_KEY);
        offset[b] = external ? valid[b] - p->q_len : l->past_len;
    }
    p->causal_offset = offset;
    return OGI_OK;
}

/* ---- layout conversion ---------------------------------------------------- */

/* Copies t (Q/K/V-like, see attention_layout) into dst [batch, heads, len,
 * dim] at sequence offset `at`. */
static void attention_gather(const ogi_tensor *t, bool seq_major, int64_t heads, double *dst,
                             int64_t len, int64_t at)
{
    int64_t n[4];
    attention_dims4(t, seq_major, heads, n);
    for (int64_t b = 0; b < n[0]; b++)
        for (int64_t h = 0; h < n[1]; h++)
            for (int64_t s = 0; s < n[2]; s++) {
                int64_t src = seq_major ? ((b * n[2] + s) * n[1] + h) * n[3]
                                        : ((b * n[1] + h) * n[2] + s) * n[3];
                double *row = dst + ((b * n[1] + h) * len + at + s) * n[3];
                for (int64_t e = 0; e < n[3]; e++)
                    row[e] = dtype_get_f64(t->data, t->dtype, src + e);
            }
}

/* Writes src [batch, heads, seq, dim] into t laid out as 4D or seq-major 3D. */
static void attention_scatter(const double *src, const int64_t *n, bool seq_major, ogi_tensor *t)
{
    for (int64_t b = 0; b < n[0]; b++)
        for (int64_t h = 0; h < n[1]; h++)
            for (int64_t s = 0; s < n[2]; s++) {
                int64_t dst = seq_major ? ((b * n[2] + s) * n[1] + h) * n[3]
                                        : ((b * n[1] + h) * n[2] + s) * n[3];
                const double *row = src + ((b * n[1] + h) * n[2] + s) * n[3];
                for (int64_t e = 0; e < n[3]; e++)
                    dtype_set_f64(t->data, t->dtype, dst + e, row[e]);
            }
}

/* Allocates n doubles (at least one), or NULL on overflow / out of memory. */
static double *attention_alloc(int rank, const int64_t *dims)
{
    int64_t n = tensor_shape_numel(rank, dims);
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(double))
        return NULL;
    return malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
}

/* Working buffers of one call, freed together. */
typedef struct attention_buffers {
    double *q, *k, *v, *mask, *y, *qk;
    int64_t *batch_arrays;
} attention_buffers;

static void attention_buffers_free(attention_buffers *w)
{
    free(w->q);
    free(w->k);
    free(w->v);
    free(w->mask);
    free(w->y);
    free(w->qk);
    free(w->batch_arrays);
}

/* Converts Q, past + K, past + V into the reference layout. */
static ogi_status attention_load(const op_ctx *c, const attention_layout *l,
                                 const attention_params *p, attention_buffers *w)
{
    const int64_t qd[4] = {p->batch, p->q_heads, p->q_len, p->qk_dim};
    const int64_t kd[4] = {p->batch, p->kv_heads, p->total_len, p->qk_dim};
    const int64_t vd[4] = {p->batch, p->kv_heads, p->total_len, p->v_dim};
    const int64_t yd[4] = {p->batch, p->q_heads, p->q_len, p->v_dim};
    w->q = attention_alloc(4, qd);
    w->k = attention_alloc(4, kd);
    w->v = attention_alloc(4, vd);
    w->y = attention_alloc(4, yd);
    if (!w->q || !w->k || !w->v || !w->y)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for attention buffers");
    attention_gather(c->in[ATTN_IN_Q], l->seq_major, p->q_heads, w->q, p->q_len, 0);
    if (l->past_len > 0) {
        attention_gather(c->in[ATTN_IN_PAST_KEY], false, p->kv_heads, w->k, p->total_len, 0);
        attention_gather(c->in[ATTN_IN_PAST_VALUE], false, p->kv_heads, w->v, p->total_len, 0);
    }
    attention_gather(c->in[ATTN_IN_K], l->seq_major, p->kv_heads, w->k, p->total_len, l->past_len);
    attention_gather(c->in[ATTN_IN_V], l->seq_major, p->kv_heads, w->v, p->total_len, l->past_len);
    return OGI_OK;
}

/* Allocates the used outputs and writes them from the reference's buffers. */
static ogi_status attention_store(op_ctx *c, const attention_layout *l, const attention_params *p,
                                  const attention_buffers *w)
{
    const int64_t yd[4] = {p->batch, p->q_heads, p->q_len, p->v_dim};
    const int64_t y3[3] = {p->batch, p->q_len, p->q_heads * p->v_dim};
    ogi_status st =
        op_alloc(c, ATTN_OUT_Y, l->dtype_qk, l->seq_major ? 3 : 4, l->seq_major ? y3 : yd);
    if (st != OGI_OK)
        return st;
    attention_scatter(w->y, yd, l->seq_major, c->out[ATTN_OUT_Y]);
    const int64_t kd[4] = {p->batch, p->kv_heads, p->total_len, p->qk_dim};
    const int64_t vd[4] = {p->batch, p->kv_heads, p->total_len, p->v_dim};
    const int64_t qkd[4] = {p->batch, p->q_heads, p->q_len, p->total_len};
    const struct {
        int out;
        ogi_dtype dtype;
        const int64_t *dims;
        const double *data;
    } rest[3] = {
        {ATTN_OUT_PRESENT_KEY, l->dtype_qk, kd, w->k},
        {ATTN_OUT_PRESENT_VALUE, l->dtype_v, vd, w->v},
        {ATTN_OUT_QK, l->dtype_qk, qkd, w->qk},
    };
    for (int i = 0; i < 3; i++) {
        if (!op_output_used(c, rest[i].out))
            continue;
        if ((st = op_alloc(c, rest[i].out, rest[i].dtype, 4, rest[i].dims)) != OGI_OK)
            return st;
        attention_scatter(rest[i].data, rest[i].dims, false, c->out[rest[i].out]);
    }
    return OGI_OK;
}

static ogi_status attention_compute(op_ctx *c, const attention_layout *l, attention_params *p,
                                    attention_buffers *w)
{
    attention_data d = {0};
    ogi_status st;
    if ((st = attention_load_mask(c, p, &d, &w->mask)) != OGI_OK)
        return st;
    w->batch_arrays = malloc(sizeof(int64_t) * (size_t)(2 * p->batch + 1));
    if (w->batch_arrays == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = attention_load_batch_arrays(c, l, p, w->batch_arrays)) != OGI_OK ||
        (st = attention_load(c, l, p, w)) != OGI_OK)
        return st;
    if (op_output_used(c, ATTN_OUT_QK)) {
        const int64_t qkd[4] = {p->batch, p->q_heads, p->q_len, p->total_len};
        if ((w->qk = attention_alloc(4, qkd)) == NULL)
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for qk_matmul_output");
    }
    d.q = w->q;
    d.k = w->k;
    d.v = w->v;
    d.y = w->y;
    d.qk = w->qk;
    if (attention_run_parallel(c->pool, p, &d) != OGI_OK)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for attention scores");
    return attention_store(c, l, p, w);
}

static ogi_status attention_op(op_ctx *c)
{
    attention_layout l;
    attention_params p;
    ogi_status st = attention_prepare(c, &l, &p);
    if (st != OGI_OK)
        return st;
    attention_buffers w = {0};
    st = attention_compute(c, &l, &p, &w);
    attention_buffers_free(&w);
    return st;
}

const op_kernel op_kernels_attention[] = {
    {"", "Attention", 23, attention_op},
    {NULL, NULL, 0, NULL},
};
