/* Attention (opset 23; 24 adds nonpad_kv_seqlen; 25 adds left_window_size
 * and right_window_size): scaled dot-product attention
 *   Y = softmax(softcap(scale * Q K^T) + bias) V
 * over Q [batch, q_heads, q_len, qk_dim], K [batch, kv_heads, kv_len, qk_dim],
 * V [batch, kv_heads, kv_len, v_dim] (or 3D [batch, seq, heads * dim] with the
 * head counts as attributes). past_key / past_value are concatenated before
 * the new keys on the sequence axis (present_*), query head h reads KV head
 * h / (q_heads / kv_heads) (GQA), and the bias gathers the attention mask, the
 * bottom-right aligned causal mask, the sliding window and the
 * nonpad_kv_seqlen padding mask. A row whose keys are all masked gets
 * probabilities 0.
 *
 * Two kernels (attention.h): the double-precision reference, which serves
 * every mode and is what the fast kernel is tested against, and the fast
 * float32 kernel (attention_fast.c), used whenever qk_matmul_output is not
 * wanted and no float16 / bfloat16 softmax rounding is asked for. A session
 * with int8 attention runs the int8 kernel (attention_int8.c) instead of the
 * fast one where it pays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attention.h"
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

attention_params attention_default_params(void)
{
    attention_params p = {0};
    p.scale = 1.0;
    p.left_window = -1;
    p.right_window = -1;
    return p;
}

/* Whether key j is outside the causal bound or the window of query i. */
static bool attention_out_of_reach(const attention_params *p, int64_t b, int64_t i, int64_t j)
{
    const int64_t pos = i + (p->query_offset != NULL ? p->query_offset[b] : 0);
    if (p->causal && j > pos)
        return true;
    if (p->left_window >= 0 && pos - j > p->left_window)
        return true;
    return p->right_window >= 0 && j - pos > p->right_window;
}

/* The bias on key j for query i of batch b, head h. */
static double attention_bias(const attention_params *p, const attention_data *d, int64_t b,
                             int64_t h, int64_t i, int64_t j)
{
    if (attention_out_of_reach(p, b, i, j))
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

ogi_status attention_reference_run(threadpool *pool, const attention_params *p,
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

/* left_window_size / right_window_size (opset 25): -1 leaves that side
 * unbounded, n >= 0 lets a query see n keys on that side of its own
 * position. */
static ogi_status attention_read_windows(const op_ctx *c, attention_params *p)
{
    static const char *const names[2] = {"left_window_size", "right_window_size"};
    int64_t *sizes[2] = {&p->left_window, &p->right_window};
    for (int s = 0; s < 2; s++) {
        *sizes[s] = -1;
        if (op_attr(c, names[s]) == NULL)
            continue;
        if (c->opset < 25)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s needs opset 25", names[s]);
        *sizes[s] = op_attr_int(c, names[s], -1);
        if (*sizes[s] < -1)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s=%lld is below -1", names[s],
                            (long long)*sizes[s]);
    }
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
    p->causal = op_attr_int(c, "is_causal", 0) != 0;
    return attention_read_windows(c, p);
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
                                         int64_t *strides, int64_t *mask_len)
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
    *mask_len = pad ? last : p->total_len;
    int64_t stride = 1;
    for (int a = 3; a >= 0; a--) {
        int md = a - (4 - m->rank);
        strides[a] = 0;
        if (md < 0)
            continue;
        if (a < 3 && m->dims[md] != full[a] && m->dims[md] != 1)
            goto mismatch;
        if (m->dims[md] != 1 || (a == 3 && pad))
            strides[a] = stride;
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
    ogi_status st = attention_mask_strides(c, p, d->mask_strides, &d->mask_len);
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
 * query offset that the causal mask and the windows are aligned to (bottom
 * right): past_len with a past, else nonpad_kv_seqlen[b] - q_len with an
 * external cache, else 0. arrays holds 2 * batch int64s. */
static ogi_status attention_load_batch_arrays(const op_ctx *c, const attention_layout *l,
                                              attention_params *p, int64_t *arrays)
{
    int64_t *valid = arrays, *offset = arrays + p->batch;
    p->kv_valid_len = NULL;
    p->query_offset = NULL;
    bool has_nonpad = op_has_input(c, ATTN_IN_NONPAD);
    if (has_nonpad) {
        ogi_status st = attention_load_nonpad(c, p, valid);
        if (st != OGI_OK)
            return st;
        p->kv_valid_len = valid;
    }
    if (!p->causal && p->left_window < 0 && p->right_window < 0)
        return OGI_OK;
    for (int64_t b = 0; b < p->batch; b++) {
        bool external = has_nonpad && !op_has_input(c, ATTN_IN_PAST_KEY);
        offset[b] = external ? valid[b] - p->q_len : l->past_len;
    }
    p->query_offset = offset;
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
    if (attention_reference_run(c->pool, p, &d) != OGI_OK)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for attention scores");
    return attention_store(c, l, p, w);
}

/* ---- the fast kernel's path ---------------------------------------------- */

/* Float32 copies of float16 / bfloat16 inputs and output, freed together. */
typedef struct attention_floats {
    float *q, *k, *v, *past_k, *past_v, *mask, *y;
    int64_t *batch_arrays;
} attention_floats;

static void attention_floats_free(attention_floats *f)
{
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->past_k);
    free(f->past_v);
    free(f->mask);
    free(f->y);
    free(f->batch_arrays);
}

static bool attention_fast_dtype(ogi_dtype dtype)
{
    return dtype == OGI_FLOAT32 || dtype == OGI_FLOAT16 || dtype == OGI_BFLOAT16;
}

/* The fast kernel serves float32 (and float16 / bfloat16 through float32)
 * without the qk_matmul_output output and softmax_precision rounding. */
static bool attention_fast_eligible(const op_ctx *c, const attention_layout *l,
                                    const attention_params *p)
{
    return !op_output_used(c, ATTN_OUT_QK) && attention_fast_supports(p) &&
           attention_fast_dtype(l->dtype_qk) && attention_fast_dtype(l->dtype_v);
}

/* A float32 buffer of n elements (at least one), NULL on overflow or when
 * out of memory. */
static float *attention_alloc_f32(int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return NULL;
    return malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
}

/* t's elements as float32 (t: float32, float16 or bfloat16): t's own buffer,
 * or a converted copy left in *copy. NULL when out of memory. */
static const float *attention_as_f32(const ogi_tensor *t, float **copy)
{
    *copy = NULL;
    if (t->dtype == OGI_FLOAT32)
        return t->data;
    const int64_t n = tensor_numel(t);
    if ((*copy = attention_alloc_f32(n)) == NULL)
        return NULL;
    const uint16_t *h = t->data;
    for (int64_t e = 0; e < n; e++)
        (*copy)[e] = t->dtype == OGI_FLOAT16 ? dtype_f16_to_f32(h[e]) : dtype_bf16_to_f32(h[e]);
    return *copy;
}

/* The view of a Q/K/V-like input (see attention_layout) over data. */
static attention_view attention_view_of(const ogi_tensor *t, const float *data, bool seq_major,
                                        int64_t heads)
{
    int64_t n[4];
    attention_dims4(t, seq_major, heads, n);
    attention_view v = {data, n[1] * n[2] * n[3], n[2] * n[3], n[3]};
    if (seq_major) {
        v.head_stride = n[3];
        v.seq_stride = n[1] * n[3];
    }
    return v;
}

/* The mask as additive float32 (bool true -> 0, false -> -inf): the input
 * itself when float32, else a copy in *copy. */
static ogi_status attention_fast_mask(const op_ctx *c, const attention_params *p,
                                      attention_fast_data *d, float **copy)
{
    *copy = NULL;
    d->mask = NULL;
    if (!op_has_input(c, ATTN_IN_MASK))
        return OGI_OK;
    const ogi_tensor *m = c->in[ATTN_IN_MASK];
    if (m->dtype != OGI_BOOL && !dtype_is_float(m->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "input 3 (attn_mask): expected bool or float, got %s",
                        ogi_dtype_name(m->dtype));
    ogi_status st = attention_mask_strides(c, p, d->mask_strides, &d->mask_len);
    if (st != OGI_OK)
        return st;
    if (m->dtype == OGI_FLOAT32) {
        d->mask = m->data;
        return OGI_OK;
    }
    const int64_t n = tensor_numel(m);
    if ((*copy = attention_alloc_f32(n)) == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for the attention mask");
    for (int64_t e = 0; e < n; e++) {
        double v = dtype_get_f64(m->data, m->dtype, e);
        (*copy)[e] = m->dtype == OGI_BOOL ? (v != 0.0 ? 0.0f : -INFINITY) : (float)v;
    }
    d->mask = *copy;
    return OGI_OK;
}

/* Q, K, V and the past as float32 views; keys and values in two pieces
 * when there is a past. */
static ogi_status attention_fast_inputs(const op_ctx *c, const attention_layout *l,
                                        const attention_params *p, attention_fast_data *d,
                                        attention_floats *f)
{
    const float *q = attention_as_f32(c->in[ATTN_IN_Q], &f->q);
    const float *k = attention_as_f32(c->in[ATTN_IN_K], &f->k);
    const float *v = attention_as_f32(c->in[ATTN_IN_V], &f->v);
    if (q == NULL || k == NULL || v == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for attention inputs");
    d->q = attention_view_of(c->in[ATTN_IN_Q], q, l->seq_major, p->q_heads);
    d->k[0] = d->k[1] = attention_view_of(c->in[ATTN_IN_K], k, l->seq_major, p->kv_heads);
    d->v[0] = d->v[1] = attention_view_of(c->in[ATTN_IN_V], v, l->seq_major, p->kv_heads);
    d->split = 0;
    if (l->past_len == 0)
        return OGI_OK;
    const float *pk = attention_as_f32(c->in[ATTN_IN_PAST_KEY], &f->past_k);
    const float *pv = attention_as_f32(c->in[ATTN_IN_PAST_VALUE], &f->past_v);
    if (pk == NULL || pv == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for the attention cache");
    d->k[0] = attention_view_of(c->in[ATTN_IN_PAST_KEY], pk, false, p->kv_heads);
    d->v[0] = attention_view_of(c->in[ATTN_IN_PAST_VALUE], pv, false, p->kv_heads);
    d->split = l->past_len;
    return OGI_OK;
}

/* present = concat(past, cur) on the sequence axis, copied as raw elements
 * (all three share a dtype). past may be NULL. */
static void attention_concat(const ogi_tensor *past, const ogi_tensor *cur, bool seq_major,
                             int64_t heads, ogi_tensor *present)
{
    const size_t size = (size_t)dtype_size(present->dtype);
    int64_t n[4];
    attention_dims4(cur, seq_major, heads, n);
    const int64_t past_len = past != NULL ? past->dims[2] : 0, total = past_len + n[2];
    const size_t row = size * (size_t)n[3];
    for (int64_t b = 0; b < n[0]; b++)
        for (int64_t h = 0; h < n[1]; h++) {
            char *dst = (char *)present->data + (size_t)((b * n[1] + h) * total) * row;
            if (past_len > 0)
                memcpy(dst, (const char *)past->data + (size_t)((b * n[1] + h) * past_len) * row,
                       (size_t)past_len * row);
            for (int64_t s = 0; s < n[2]; s++) {
                int64_t src = seq_major ? (b * n[2] + s) * n[1] + h : (b * n[1] + h) * n[2] + s;
                memcpy(dst + (size_t)(past_len + s) * row,
                       (const char *)cur->data + (size_t)src * row, row);
            }
        }
}

static ogi_status attention_fast_present(op_ctx *c, const attention_layout *l,
                                         const attention_params *p)
{
    const int64_t kd[4] = {p->batch, p->kv_heads, p->total_len, p->qk_dim};
    const int64_t vd[4] = {p->batch, p->kv_heads, p->total_len, p->v_dim};
    const int outs[2] = {ATTN_OUT_PRESENT_KEY, ATTN_OUT_PRESENT_VALUE};
    const int ins[2] = {ATTN_IN_K, ATTN_IN_V}, pasts[2] = {ATTN_IN_PAST_KEY, ATTN_IN_PAST_VALUE};
    for (int i = 0; i < 2; i++) {
        if (!op_output_used(c, outs[i]))
            continue;
        ogi_status st = op_alloc(c, outs[i], c->in[ins[i]]->dtype, 4, i == 0 ? kd : vd);
        if (st != OGI_OK)
            return st;
        const ogi_tensor *past = l->past_len > 0 ? c->in[pasts[i]] : NULL;
        attention_concat(past, c->in[ins[i]], l->seq_major, p->kv_heads, c->out[outs[i]]);
    }
    return OGI_OK;
}

/* Allocates Y and points d->y at it (or at a float32 buffer for float16 /
 * bfloat16, converted by attention_fast_finish). */
static ogi_status attention_fast_output(op_ctx *c, const attention_layout *l,
                                        const attention_params *p, attention_fast_data *d,
                                        attention_floats *f)
{
    const int64_t yd[4] = {p->batch, p->q_heads, p->q_len, p->v_dim};
    const int64_t y3[3] = {p->batch, p->q_len, p->q_heads * p->v_dim};
    ogi_status st =
        op_alloc(c, ATTN_OUT_Y, l->dtype_qk, l->seq_major ? 3 : 4, l->seq_major ? y3 : yd);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *y = c->out[ATTN_OUT_Y];
    d->y = y->data;
    if (l->dtype_qk != OGI_FLOAT32) {
        if ((f->y = attention_alloc_f32(tensor_numel(y))) == NULL)
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for the attention output");
        d->y = f->y;
    }
    d->y_strides[0] = p->q_heads * p->q_len * p->v_dim;
    d->y_strides[1] = l->seq_major ? p->v_dim : p->q_len * p->v_dim;
    d->y_strides[2] = l->seq_major ? p->q_heads * p->v_dim : p->v_dim;
    return OGI_OK;
}

static void attention_fast_finish(op_ctx *c, const attention_floats *f)
{
    ogi_tensor *y = c->out[ATTN_OUT_Y];
    if (f->y == NULL)
        return;
    const int64_t n = tensor_numel(y);
    uint16_t *h = y->data;
    for (int64_t e = 0; e < n; e++)
        h[e] = y->dtype == OGI_FLOAT16 ? dtype_f32_to_f16(f->y[e]) : dtype_f32_to_bf16(f->y[e]);
}

static ogi_status attention_fast_compute(op_ctx *c, const attention_layout *l, attention_params *p,
                                         attention_floats *f)
{
    attention_fast_data d = {0};
    ogi_status st;
    if ((f->batch_arrays = malloc(sizeof(int64_t) * (size_t)(2 * p->batch + 1))) == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = attention_load_batch_arrays(c, l, p, f->batch_arrays)) != OGI_OK ||
        (st = attention_fast_mask(c, p, &d, &f->mask)) != OGI_OK ||
        (st = attention_fast_inputs(c, l, p, &d, f)) != OGI_OK ||
        (st = attention_fast_present(c, l, p)) != OGI_OK ||
        (st = attention_fast_output(c, l, p, &d, f)) != OGI_OK)
        return st;
    if (l->past_len == 0)
        d.split = p->total_len;
    st = attention_run_chosen((ogi_attention_precision)c->attention, c->pool, p, &d);
    if (st == OGI_ERR_OUT_OF_MEMORY)
        return op_error(c, st, "out of memory for attention scratch");
    if (st != OGI_OK)
        return op_error(c, OGI_ERR_RUNTIME, "attention: inconsistent sizes");
    attention_fast_finish(c, f);
    return OGI_OK;
}

static ogi_status attention_op(op_ctx *c)
{
    attention_layout l = {0};
    attention_params p = attention_default_params();
    ogi_status st = attention_prepare(c, &l, &p);
    if (st != OGI_OK)
        return st;
    if (attention_fast_eligible(c, &l, &p)) {
        attention_floats f = {0};
        st = attention_fast_compute(c, &l, &p, &f);
        attention_floats_free(&f);
        return st;
    }
    attention_buffers w = {0};
    st = attention_compute(c, &l, &p, &w);
    attention_buffers_free(&w);
    return st;
}

/* One function for every version: it checks c->opset for nonpad_kv_seqlen
 * (24) and the windows (25). */
const op_kernel op_kernels_attention[] = {
    {"", "Attention", 23, attention_op},
    {"", "Attention", 25, attention_op},
    {NULL, NULL, 0, NULL},
};
