/* FlexAttention (ai.onnx.preview, opset 1); see flex_attention.h for the
 * math. Q, K: [batch, q_heads | kv_heads, len, head_size] of one float type;
 * V: [batch, kv_heads, kv_len, v_head_size] of any float type, which Y
 * takes. q_heads must be a multiple of kv_heads (grouped-query attention:
 * query head h reads K/V head h / (q_heads / kv_heads)). scale defaults to
 * 1 / sqrt(head_size).
 *
 * The scores and probabilities reach the subgraphs in float32 for float32,
 * float16 and bfloat16 inputs and in double for double ones (the dtype the
 * function body runs its Softmax in), or in the float dtype a subgraph
 * declares for its input. Each subgraph takes that one tensor, of shape
 * [batch, q_heads, q_len, kv_len], and must give one of the same dtype and
 * shape (the form the ONNX node tests use). The index form of a later
 * draft of the spec is served as well, vectorised: score_mod and prob_mod
 * take (tensor, batch, head, q_idx, kv_idx) and mask_mod (batch, head,
 * q_idx, kv_idx), the indices as int64 tensors [B,1,1,1], [1,H,1,1],
 * [1,1,L,1], [1,1,1,S]; they give a tensor that broadcasts to the scores
 * (mask_mod: bool, false masks the score to -inf). Always on the general
 * path.
 *
 * Two paths compute it:
 *  - general: S materialised in double, each subgraph run once over the
 *    whole tensor (the executor's op_run_subgraph, as If/Loop bodies run),
 *    softmax in double, P V in double;
 *  - fast: when flex_attention_match() recognises the subgraphs, the
 *    attention kernels of attention.h with causal / softcap / additive bias
 *    options (attention_fast in float32, the double reference for double
 *    inputs) and Y scaled by prob_mod's factor; no subgraph runs. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "ops/attention.h"
#include "ops/families.h"
#include "ops/flex_attention.h"

enum { FLEX_Q, FLEX_K, FLEX_V };

static atomic_ullong flex_fast_runs, flex_general_runs;

flex_attention_counts flex_attention_get_counts(void)
{
    flex_attention_counts n = {atomic_load(&flex_fast_runs), atomic_load(&flex_general_runs)};
    return n;
}

/* Sizes of one call. */
typedef struct flex_dims {
    int64_t batch, q_heads, kv_heads, q_len, kv_len, qk_dim, v_dim;
    double scale;
    ogi_dtype scores_dtype; /* float32 or double: the softmax precision */
} flex_dims;

/* ---- checking the inputs ---------------------------------------------------- */

static ogi_status flex_check_input(const op_ctx *c, int i, const char *name)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *t = c->in[i];
    if (t->rank != 4)
        return op_error(c, OGI_ERR_INVALID_ARGUMENT, "input %d (%s): expected rank 4, got %d", i,
                        name, t->rank);
    if (!dtype_is_float(t->dtype))
        return op_error(c, OGI_ERR_INVALID_ARGUMENT, "input %d (%s): expected a float type, got %s",
                        i, name, ogi_dtype_name(t->dtype));
    return OGI_OK;
}

static ogi_status flex_read_dims(const op_ctx *c, flex_dims *d)
{
    static const char *const names[] = {"Q", "K", "V"};
    for (int i = 0; i < 3; i++) {
        ogi_status st = flex_check_input(c, i, names[i]);
        if (st != OGI_OK)
            return st;
    }
    const ogi_tensor *q = c->in[FLEX_Q], *k = c->in[FLEX_K], *v = c->in[FLEX_V];
    if (k->dtype != q->dtype)
        return op_error(c, OGI_ERR_INVALID_ARGUMENT, "Q is %s but K is %s (they must match)",
                        ogi_dtype_name(q->dtype), ogi_dtype_name(k->dtype));
    if (k->dims[0] != q->dims[0] || v->dims[0] != q->dims[0])
        return op_error(c, OGI_ERR_INVALID_ARGUMENT, "batch sizes differ: Q %lld, K %lld, V %lld",
                        (long long)q->dims[0], (long long)k->dims[0], (long long)v->dims[0]);
    if (v->dims[1] != k->dims[1] || v->dims[2] != k->dims[2])
        return op_error(c, OGI_ERR_INVALID_ARGUMENT,
                        "K has %lld heads of %lld keys but V has %lld of %lld",
                        (long long)k->dims[1], (long long)k->dims[2], (long long)v->dims[1],
                        (long long)v->dims[2]);
    if (k->dims[3] != q->dims[3])
        return op_error(c, OGI_ERR_INVALID_ARGUMENT, "head size of Q is %lld but of K %lld",
                        (long long)q->dims[3], (long long)k->dims[3]);
    if (k->dims[1] == 0 || q->dims[1] % k->dims[1] != 0)
        return op_error(c, OGI_ERR_INVALID_ARGUMENT,
                        "Q's %lld heads are not a multiple of K's and V's %lld",
                        (long long)q->dims[1], (long long)k->dims[1]);
    d->batch = q->dims[0];
    d->q_heads = q->dims[1];
    d->kv_heads = k->dims[1];
    d->q_len = q->dims[2];
    d->kv_len = k->dims[2];
    d->qk_dim = q->dims[3];
    d->v_dim = v->dims[3];
    d->scores_dtype = q->dtype == OGI_FLOAT64 ? OGI_FLOAT64 : OGI_FLOAT32;
    const onnx_attr *scale = op_attr(c, "scale");
    if (scale != NULL) {
        d->scale = scale->f;
    } else if (d->qk_dim == 0) {
        return op_error(c, OGI_ERR_INVALID_ARGUMENT,
                        "head size 0 gives no default scale (1 / sqrt(head_size))");
    } else {
        d->scale = 1.0 / sqrt((double)d->qk_dim);
    }
    /* the score tensor must be addressable */
    int64_t sdims[4] = {d->batch, d->q_heads, d->q_len, d->kv_len};
    if (tensor_shape_numel(4, sdims) < 0)
        return op_error(c, OGI_ERR_INVALID_ARGUMENT, "the score tensor's size overflows");
    return OGI_OK;
}

/* Whether g takes the index form: (scores or probabilities, batch, head,
 * q_idx, kv_idx) for score_mod and prob_mod, (batch, head, q_idx, kv_idx)
 * giving a bool keep-mask for mask_mod. */
static bool flex_index_form(const char *name, const graph *g)
{
    return g->n_inputs == (strcmp(name, "mask_mod") == 0 ? 4 : 5);
}

/* The subgraph of attribute name (NULL when absent) after checking its
 * signature: one tensor in, or the index form; one out. */
static ogi_status flex_modifier(const op_ctx *c, const char *name, const graph **out)
{
    const graph *g = op_subgraph(c, name);
    *out = g;
    if (g == NULL)
        return OGI_OK;
    bool mask = strcmp(name, "mask_mod") == 0;
    if ((g->n_inputs != 1 && !flex_index_form(name, g)) || g->n_outputs != 1)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "%s takes %d inputs and gives %d outputs; it must take the %s (or %s) "
                        "and give one tensor",
                        name, g->n_inputs, g->n_outputs,
                        strcmp(name, "prob_mod") == 0 ? "probabilities" : "scores",
                        mask ? "batch, head, q_idx, kv_idx" : "them, batch, head, q_idx, kv_idx");
    const graph_value *in = &g->values[g->inputs[0]];
    if (!(mask && g->n_inputs == 4) && in->dtype != OGI_DTYPE_UNDEFINED &&
        !dtype_is_float(in->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "%s: input '%s' is declared %s, but it receives float scores", name,
                        in->name, ogi_dtype_name(in->dtype));
    return OGI_OK;
}

/* The dtype subgraph g receives the scores in: what it declares, else the
 * softmax's (a mask_mod of the index form receives none). */
static ogi_dtype flex_modifier_dtype(const graph *g, ogi_dtype scores_dtype)
{
    ogi_dtype declared = g->values[g->inputs[0]].dtype;
    return declared == OGI_DTYPE_UNDEFINED || !dtype_is_float(declared) ? scores_dtype : declared;
}

/* ---- loading and storing ------------------------------------------------------ */

/* t's elements as doubles in a new buffer (*out; free it). */
static ogi_status flex_load_f64(const op_ctx *c, const ogi_tensor *t, double **out)
{
    int64_t n = tensor_numel(t);
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (*out == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    tensor_load_f64(t, 0, n, *out);
    return OGI_OK;
}

/* t's elements as float32: t's own buffer when it is float32 (*owned NULL),
 * else a converted copy in *owned. */
static ogi_status flex_load_f32(const op_ctx *c, const ogi_tensor *t, const float **data,
                                float **owned)
{
    *owned = NULL;
    if (t->dtype == OGI_FLOAT32) {
        *data = t->data;
        return OGI_OK;
    }
    int64_t n = tensor_numel(t);
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (f == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    const uint16_t *h = t->data;
    for (int64_t i = 0; i < n; i++)
        f[i] = t->dtype == OGI_FLOAT16    ? dtype_f16_to_f32(h[i])
               : t->dtype == OGI_BFLOAT16 ? dtype_bf16_to_f32(h[i])
                                          : (float)dtype_get_f64(t->data, t->dtype, i);
    *data = *owned = f;
    return OGI_OK;
}

/* ---- the general path ----------------------------------------------------------- */

/* The general path's buffers, all dense row-major doubles. */
typedef struct flex_general {
    const flex_dims *d;
    const double *q, *k, *v;
    double *s; /* [batch, q_heads, q_len, kv_len] scores, then probabilities */
    double *y; /* [batch, q_heads, q_len, v_dim] */
} flex_general;

/* Row r of the scores (b, h, i) and the offset of its K/V head. */
static int64_t flex_kv_head_offset(const flex_dims *d, int64_t r, int64_t dim)
{
    int64_t b = r / (d->q_heads * d->q_len);
    int64_t h = (r / d->q_len) % d->q_heads;
    int64_t kvh = h / (d->q_heads / d->kv_heads);
    return (b * d->kv_heads + kvh) * d->kv_len * dim;
}

/* S = scale * Q K^T for score rows [begin, end). */
static void flex_scores_rows(void *arg, int64_t begin, int64_t end)
{
    const flex_general *w = arg;
    const flex_dims *d = w->d;
    for (int64_t r = begin; r < end; r++) {
        const double *q = w->q + r * d->qk_dim;
        const double *k = w->k + flex_kv_head_offset(d, r, d->qk_dim);
        double *s = w->s + r * d->kv_len;
        for (int64_t j = 0; j < d->kv_len; j++) {
            double dot = 0;
            for (int64_t e = 0; e < d->qk_dim; e++)
                dot += q[e] * k[j * d->qk_dim + e];
            s[j] = d->scale * dot;
        }
    }
}

/* softmax over each row; an all -inf row gives NaN, as Softmax does. */
static void flex_softmax_rows(void *arg, int64_t begin, int64_t end)
{
    const flex_general *w = arg;
    const int64_t n = w->d->kv_len;
    for (int64_t r = begin; r < end; r++) {
        double *s = w->s + r * n;
        double max = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            max = s[j] > max || isnan(s[j]) ? s[j] : max;
        double shift = isinf(max) ? 0.0 : max;
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            s[j] = exp(s[j] - shift);
            sum += s[j];
        }
        for (int64_t j = 0; j < n; j++)
            s[j] /= sum;
    }
}

/* Y = P V for rows [begin, end). */
static void flex_pv_rows(void *arg, int64_t begin, int64_t end)
{
    const flex_general *w = arg;
    const flex_dims *d = w->d;
    for (int64_t r = begin; r < end; r++) {
        const double *p = w->s + r * d->kv_len;
        const double *v = w->v + flex_kv_head_offset(d, r, d->v_dim);
        double *y = w->y + r * d->v_dim;
        for (int64_t e = 0; e < d->v_dim; e++)
            y[e] = 0;
        for (int64_t j = 0; j < d->kv_len; j++)
            for (int64_t e = 0; e < d->v_dim; e++)
                y[e] += p[j] * v[j * d->v_dim + e];
    }
}

/* The index form's inputs: int64 batch [B,1,1,1], head [1,H,1,1], q_idx
 * [1,1,L,1] and kv_idx [1,1,1,S], each broadcasting over the scores. */
static ogi_status flex_index_tensors(const op_ctx *c, const flex_dims *d, ogi_tensor *idx[4])
{
    const int64_t sizes[4] = {d->batch, d->q_heads, d->q_len, d->kv_len};
    for (int a = 0; a < 4; a++) {
        int64_t dims[4] = {1, 1, 1, 1};
        dims[a] = sizes[a];
        if (ogi_tensor_create(OGI_INT64, 4, dims, &idx[a]) != OGI_OK)
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t i = 0; i < sizes[a]; i++)
            ((int64_t *)idx[a]->data)[i] = i;
    }
    return OGI_OK;
}

/* Strides over the scores' dims of a subgraph output t that must
 * broadcast to them (rank <= 4, each dim equal or 1). */
static bool flex_broadcast_strides(const ogi_tensor *t, const int64_t *dims, int64_t *strides)
{
    if (t->kind != TENSOR_KIND_TENSOR || t->rank > 4)
        return false;
    int64_t stride = 1;
    for (int a = 3; a >= 0; a--) {
        int ta = a - (4 - t->rank);
        int64_t n = ta >= 0 ? t->dims[ta] : 1;
        if (n != dims[a] && n != 1)
            return false;
        strides[a] = n == 1 ? 0 : stride;
        stride *= n;
    }
    return true;
}

/* s = out (keep: s where out is true, -inf elsewhere), out broadcast over
 * the scores at strides. */
static void flex_take_output(const ogi_tensor *out, const int64_t *dims, const int64_t *strides,
                             bool keep, double *s)
{
    int64_t e = 0;
    for (int64_t b = 0; b < dims[0]; b++)
        for (int64_t h = 0; h < dims[1]; h++)
            for (int64_t i = 0; i < dims[2]; i++)
                for (int64_t j = 0; j < dims[3]; j++, e++) {
                    int64_t o = b * strides[0] + h * strides[1] + i * strides[2] + j * strides[3];
                    if (!keep)
                        s[e] = dtype_get_f64(out->data, out->dtype, o);
                    else if (((const uint8_t *)out->data)[o] == 0)
                        s[e] = -INFINITY;
                }
}

/* Runs modifier g (attribute name) over the n values in s, in place: they
 * travel to it as a [batch, q_heads, q_len, kv_len] tensor of the dtype it
 * receives (with the index tensors in the index form), and its output,
 * checked, comes back. */
static ogi_status flex_run_modifier(op_ctx *c, const char *name, const graph *g, const flex_dims *d,
                                    double *s)
{
    int64_t dims[4] = {d->batch, d->q_heads, d->q_len, d->kv_len};
    int64_t n = tensor_shape_numel(4, dims);
    ogi_dtype dtype = flex_modifier_dtype(g, d->scores_dtype);
    bool keep = g->n_inputs == 4; /* mask_mod's index form gives a keep-mask */
    ogi_tensor *in[5] = {NULL}, *out = NULL;
    ogi_status st = OGI_OK;
    if (!keep && ogi_tensor_create(dtype, 4, dims, &in[0]) != OGI_OK)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "%s: cannot create its input", name);
    if (st == OGI_OK && g->n_inputs > 1)
        st = flex_index_tensors(c, d, keep ? in : in + 1);
    if (st == OGI_OK) {
        if (!keep)
            tensor_store_f64(in[0], 0, n, s);
        st = op_run_subgraph(c, g, g->n_inputs, (const ogi_tensor *const *)in, 1, &out);
    }
    for (int i = 0; i < 5; i++)
        ogi_tensor_free(in[i]);
    if (st != OGI_OK)
        return st;
    int64_t strides[4];
    ogi_dtype want_dtype = keep ? OGI_BOOL : dtype;
    /* the one-tensor form gives the scores' own shape; the index form may
     * give any shape that broadcasts to it */
    bool shape_ok =
        flex_broadcast_strides(out, dims, strides) && (g->n_inputs > 1 || out->rank == 4);
    for (int a = 0; a < 4 && shape_ok && g->n_inputs == 1; a++)
        shape_ok = out->dims[a] == dims[a];
    if (out->dtype != want_dtype || !shape_ok) {
        char want[128], got[128];
        st = op_error(
            c, OGI_ERR_INVALID_MODEL, "%s gave a %s tensor of shape %s; it must give %s %s%s", name,
            ogi_dtype_name(out->dtype), tensor_shape_str(out->rank, out->dims, got, sizeof(got)),
            ogi_dtype_name(want_dtype), tensor_shape_str(4, dims, want, sizeof(want)),
            g->n_inputs > 1 ? " (or a shape that broadcasts to it)" : "");
    } else {
        flex_take_output(out, dims, strides, keep, s);
    }
    ogi_tensor_free(out);
    return st;
}

static ogi_status flex_general_run(op_ctx *c, const flex_dims *d, const graph *const mods[3])
{
    static const char *const names[3] = {"score_mod", "mask_mod", "prob_mod"};
    flex_general w = {.d = d};
    double *q = NULL, *k = NULL, *v = NULL;
    const int64_t rows = d->batch * d->q_heads * d->q_len;
    ogi_status st = flex_load_f64(c, c->in[FLEX_Q], &q);
    if (st == OGI_OK)
        st = flex_load_f64(c, c->in[FLEX_K], &k);
    if (st == OGI_OK)
        st = flex_load_f64(c, c->in[FLEX_V], &v);
    if (st == OGI_OK) {
        w.s = malloc((size_t)(rows * d->kv_len > 0 ? rows * d->kv_len : 1) * sizeof(double));
        w.y = malloc((size_t)(rows * d->v_dim > 0 ? rows * d->v_dim : 1) * sizeof(double));
        if (w.s == NULL || w.y == NULL)
            st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld x %lld scores",
                          (long long)rows, (long long)d->kv_len);
    }
    w.q = q;
    w.k = k;
    w.v = v;
    int64_t chunk = 1 + 4096 / (1 + d->kv_len * (d->qk_dim + d->v_dim));
    if (st == OGI_OK)
        threadpool_parallel_for(c->pool, rows, chunk, flex_scores_rows, &w);
    for (int m = 0; m < 2 && st == OGI_OK; m++)
        if (mods[m] != NULL)
            st = flex_run_modifier(c, names[m], mods[m], d, w.s);
    if (st == OGI_OK)
        threadpool_parallel_for(c->pool, rows, chunk, flex_softmax_rows, &w);
    if (st == OGI_OK && mods[2] != NULL)
        st = flex_run_modifier(c, names[2], mods[2], d, w.s);
    if (st == OGI_OK) {
        threadpool_parallel_for(c->pool, rows, chunk, flex_pv_rows, &w);
        tensor_store_f64(c->out[0], 0, rows * d->v_dim, w.y);
    }
    free(q);
    free(k);
    free(v);
    free(w.s);
    free(w.y);
    return st;
}

/* ---- the fast path ---------------------------------------------------------------- */

static attention_params flex_attention_params(const flex_dims *d, const flex_plan *plan)
{
    attention_params p = attention_default_params();
    p.batch = d->batch;
    p.q_heads = d->q_heads;
    p.kv_heads = d->kv_heads;
    p.q_len = d->q_len;
    p.total_len = d->kv_len;
    p.qk_dim = d->qk_dim;
    p.v_dim = d->v_dim;
    p.scale = d->scale * plan->mul;
    p.softcap = plan->cap;
    p.causal = plan->causal;
    return p;
}

static bool flex_has_bias(const flex_plan *plan)
{
    return plan->bias.w_q != 0 || plan->bias.w_k != 0 || plan->bias.c != 0;
}

static double flex_bias_at(const flex_plan *plan, int64_t i, int64_t j)
{
    return plan->bias.w_q * (double)i + plan->bias.w_k * (double)j + plan->bias.c;
}

/* The bias plane [q_len, kv_len] in float32 (f32) or double. */
static ogi_status flex_bias_plane(const op_ctx *c, const flex_dims *d, const flex_plan *plan,
                                  bool f32, void **out)
{
    int64_t n = d->q_len * d->kv_len;
    *out = malloc((size_t)(n > 0 ? n : 1) * (f32 ? sizeof(float) : sizeof(double)));
    if (*out == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < d->q_len; i++)
        for (int64_t j = 0; j < d->kv_len; j++) {
            double b = flex_bias_at(plan, i, j);
            if (f32)
                ((float *)*out)[i * d->kv_len + j] = (float)b;
            else
                ((double *)*out)[i * d->kv_len + j] = b;
        }
    return OGI_OK;
}

static attention_view flex_view(const float *data, int64_t heads, int64_t len, int64_t dim)
{
    attention_view v = {data, heads * len * dim, len * dim, dim};
    return v;
}

/* float32 scores: attention_fast over float32 copies of what is not. */
static ogi_status flex_fast_f32(op_ctx *c, const flex_dims *d, const flex_plan *plan)
{
    const float *q, *k, *v;
    float *qo = NULL, *ko = NULL, *vo = NULL, *yo = NULL;
    void *bias = NULL;
    ogi_tensor *y = c->out[0];
    const int64_t ny = tensor_numel(y);
    ogi_status st = flex_load_f32(c, c->in[FLEX_Q], &q, &qo);
    if (st == OGI_OK)
        st = flex_load_f32(c, c->in[FLEX_K], &k, &ko);
    if (st == OGI_OK)
        st = flex_load_f32(c, c->in[FLEX_V], &v, &vo);
    if (st == OGI_OK && flex_has_bias(plan))
        st = flex_bias_plane(c, d, plan, true, &bias);
    float *yf = y->data;
    if (st == OGI_OK && y->dtype != OGI_FLOAT32) {
        yf = yo = malloc((size_t)(ny > 0 ? ny : 1) * sizeof(float));
        if (yo == NULL)
            st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (st == OGI_OK) {
        attention_params p = flex_attention_params(d, plan);
        attention_fast_data fd = {0};
        fd.q = flex_view(q, d->q_heads, d->q_len, d->qk_dim);
        fd.k[0] = fd.k[1] = flex_view(k, d->kv_heads, d->kv_len, d->qk_dim);
        fd.v[0] = fd.v[1] = flex_view(v, d->kv_heads, d->kv_len, d->v_dim);
        fd.split = d->kv_len;
        if (bias != NULL) {
            fd.mask = bias;
            fd.mask_strides[2] = d->kv_len;
            fd.mask_strides[3] = 1;
            fd.mask_len = d->kv_len;
        }
        fd.y = yf;
        fd.y_strides[0] = d->q_heads * d->q_len * d->v_dim;
        fd.y_strides[1] = d->q_len * d->v_dim;
        fd.y_strides[2] = d->v_dim;
        st = attention_fast(c->pool, &p, &fd, ATTENTION_ISA_AUTO);
        if (st != OGI_OK)
            st = op_error(c, st, "the attention kernel failed (%s)",
                          st == OGI_ERR_OUT_OF_MEMORY ? "out of memory" : "bad sizes");
    }
    if (st == OGI_OK && plan->prob_mul != 1.0)
        for (int64_t i = 0; i < ny; i++)
            yf[i] = (float)(plan->prob_mul * yf[i]);
    if (st == OGI_OK && yo != NULL)
        for (int64_t i = 0; i < ny; i++)
            dtype_set_f64(y->data, y->dtype, i, yo[i]);
    free(qo);
    free(ko);
    free(vo);
    free(yo);
    free(bias);
    return st;
}

/* double scores: the attention reference, which works in double. */
static ogi_status flex_fast_f64(op_ctx *c, const flex_dims *d, const flex_plan *plan)
{
    double *q = NULL, *k = NULL, *v = NULL, *y = NULL;
    void *bias = NULL;
    const int64_t ny = tensor_numel(c->out[0]);
    ogi_status st = flex_load_f64(c, c->in[FLEX_Q], &q);
    if (st == OGI_OK)
        st = flex_load_f64(c, c->in[FLEX_K], &k);
    if (st == OGI_OK)
        st = flex_load_f64(c, c->in[FLEX_V], &v);
    if (st == OGI_OK && flex_has_bias(plan))
        st = flex_bias_plane(c, d, plan, false, &bias);
    if (st == OGI_OK && (y = malloc((size_t)(ny > 0 ? ny : 1) * sizeof(double))) == NULL)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == OGI_OK) {
        attention_params p = flex_attention_params(d, plan);
        attention_data ad = {.q = q, .k = k, .v = v, .y = y};
        if (bias != NULL) {
            ad.mask = bias;
            ad.mask_strides[2] = d->kv_len;
            ad.mask_strides[3] = 1;
            ad.mask_len = d->kv_len;
        }
        st = attention_reference_run(c->pool, &p, &ad);
        if (st != OGI_OK)
            st = op_error(c, st, "out of memory");
    }
    if (st == OGI_OK) {
        for (int64_t i = 0; i < ny; i++)
            y[i] *= plan->prob_mul;
        tensor_store_f64(c->out[0], 0, ny, y);
    }
    free(q);
    free(k);
    free(v);
    free(y);
    free(bias);
    return st;
}

/* ---- the op ---------------------------------------------------------------------- */

static bool flex_force_general(void)
{
    const char *mode = getenv("OGI_FLEX_ATTENTION");
    return mode != NULL && strcmp(mode, "general") == 0;
}

static ogi_status flex_attention_op(op_ctx *c)
{
    flex_dims d;
    ogi_status st = flex_read_dims(c, &d);
    const graph *mods[3] = {NULL, NULL, NULL};
    static const char *const names[3] = {"score_mod", "mask_mod", "prob_mod"};
    for (int m = 0; m < 3 && st == OGI_OK; m++)
        st = flex_modifier(c, names[m], &mods[m]);
    if (st != OGI_OK)
        return st;
    int64_t ydims[4] = {d.batch, d.q_heads, d.q_len, d.v_dim};
    if ((st = op_alloc(c, 0, c->in[FLEX_V]->dtype, 4, ydims)) != OGI_OK)
        return st;
    /* the fast path needs every subgraph to see the softmax's dtype */
    bool same_dtype = true;
    for (int m = 0; m < 3; m++)
        if (mods[m] != NULL && flex_modifier_dtype(mods[m], d.scores_dtype) != d.scores_dtype)
            same_dtype = false;
    flex_plan plan;
    if (same_dtype && !flex_force_general() &&
        flex_attention_match(mods[0], mods[1], mods[2], d.scores_dtype, &plan)) {
        atomic_fetch_add(&flex_fast_runs, 1);
        return d.scores_dtype == OGI_FLOAT64 ? flex_fast_f64(c, &d, &plan)
                                             : flex_fast_f32(c, &d, &plan);
    }
    atomic_fetch_add(&flex_general_runs, 1);
    return flex_general_run(c, &d, mods);
}

const op_kernel op_kernels_flex[] = {
    {"ai.onnx.preview", "FlexAttention", 1, flex_attention_op},
    {NULL, NULL, 0, NULL},
};
