/* RotaryEmbedding (opset 23): rotates pairs of each head's first rot dims by
 * the angles whose cosines and sines are in cos_cache / sin_cache:
 *   (x1, x2) -> (cos * x1 - sin * x2, sin * x1 + cos * x2)
 * with x1, x2 the two halves of the rotated dims, or the even and odd dims
 * when interleaved. The remaining head dims pass through. Input is
 * [batch, heads, seq, head_dim] or [batch, seq, heads * head_dim]; the caches
 * are [batch, seq, rot / 2], or [max_position, rot / 2] gathered by
 * position_ids [batch, seq]. Computed in double, rounded once; float32
 * tensors take a float loop over (batch, seq) rows split across the pool. */
#include "ops/families.h"

typedef struct rotary_layout {
    int64_t batch, heads, seq, head_dim;
    int64_t half;   /* rotary_embedding_dim / 2 */
    bool seq_major; /* 3D input: [batch, seq, heads * head_dim] */
    bool interleaved;
    bool has_positions;
    int64_t max_position; /* cos_cache rows when position_ids is given */
} rotary_layout;

static ogi_status rotary_input_layout(const op_ctx *c, rotary_layout *l)
{
    const ogi_tensor *x = c->in[0];
    int64_t num_heads = op_attr_int(c, "num_heads", 0);
    if (!dtype_is_float(x->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0: expected a float tensor, got %s",
                        ogi_dtype_name(x->dtype));
    if (x->rank == 4) {
        l->seq_major = false;
        l->batch = x->dims[0];
        l->heads = x->dims[1];
        l->seq = x->dims[2];
        l->head_dim = x->dims[3];
        if (num_heads != 0 && num_heads != l->heads)
            return op_error(c, OGI_ERR_RUNTIME,
                            "attribute num_heads=%lld differs from input 0's head dim %lld",
                            (long long)num_heads, (long long)l->heads);
        return OGI_OK;
    }
    if (x->rank != 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank 3 or 4, got %d", x->rank);
    if (num_heads <= 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute num_heads is required (> 0) for a 3D input");
    if (x->dims[2] % num_heads != 0)
        return op_error(c, OGI_ERR_RUNTIME, "hidden size %lld is not divisible by num_heads %lld",
                        (long long)x->dims[2], (long long)num_heads);
    l->seq_major = true;
    l->batch = x->dims[0];
    l->seq = x->dims[1];
    l->heads = num_heads;
    l->head_dim = x->dims[2] / num_heads;
    return OGI_OK;
}

static ogi_status rotary_rot_dim(const op_ctx *c, rotary_layout *l)
{
    int64_t rot = op_attr_int(c, "rotary_embedding_dim", 0);
    if (rot == 0)
        rot = l->head_dim;
    if (rot < 0 || rot > l->head_dim || rot % 2 != 0)
        return op_error(c, OGI_ERR_RUNTIME,
                        "rotary dim %lld must be even and in [0, head size %lld]", (long long)rot,
                        (long long)l->head_dim);
    l->half = rot / 2;
    l->interleaved = op_attr_int(c, "interleaved", 0) != 0;
    return OGI_OK;
}

static ogi_status rotary_check_caches(const op_ctx *c, rotary_layout *l)
{
    const ogi_tensor *cos = c->in[1], *sin = c->in[2];
    char cs[128], ss[128];
    if (!dtype_is_float(cos->dtype) || !dtype_is_float(sin->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "cos_cache and sin_cache must be float tensors");
    if (!tensor_same_shape(cos, sin))
        return op_error(c, OGI_ERR_RUNTIME, "cos_cache shape %s differs from sin_cache shape %s",
                        tensor_shape_str(cos->rank, cos->dims, cs, sizeof(cs)),
                        tensor_shape_str(sin->rank, sin->dims, ss, sizeof(ss)));
    l->has_positions = op_has_input(c, 3);
    bool ok = l->has_positions ? cos->rank == 2 && cos->dims[1] == l->half
                               : cos->rank == 3 && cos->dims[0] == l->batch &&
                                     cos->dims[1] == l->seq && cos->dims[2] == l->half;
    if (!ok)
        return op_error(c, OGI_ERR_RUNTIME,
                        "cos_cache shape %s: expected %s with half the rotary dim (%lld) last",
                        tensor_shape_str(cos->rank, cos->dims, cs, sizeof(cs)),
                        l->has_positions ? "[max_position, rot/2]" : "[batch, seq, rot/2]",
                        (long long)l->half);
    l->max_position = l->has_positions ? cos->dims[0] : 0;
    return OGI_OK;
}

/* Validates position_ids [batch, seq] against the cache rows. */
static ogi_status rotary_check_positions(const op_ctx *c, const rotary_layout *l)
{
    if (!l->has_positions)
        return OGI_OK;
    const ogi_tensor *p = c->in[3];
    if (p->dtype != OGI_INT64 && p->dtype != OGI_INT32)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 3 (position_ids): expected int64, got %s",
                        ogi_dtype_name(p->dtype));
    char ps[128];
    if (p->rank != 2 || p->dims[0] != l->batch || p->dims[1] != l->seq)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 3 (position_ids): expected shape [%lld,%lld], got %s",
                        (long long)l->batch, (long long)l->seq,
                        tensor_shape_str(p->rank, p->dims, ps, sizeof(ps)));
    for (int64_t i = 0; i < l->batch * l->seq; i++) {
        int64_t pos = dtype_get_i64(p->data, p->dtype, i);
        if (pos < 0 || pos >= l->max_position)
            return op_error(c, OGI_ERR_RUNTIME,
                            "position_ids[%lld] = %lld is outside the cache's [0, %lld)",
                            (long long)i, (long long)pos, (long long)l->max_position);
    }
    return OGI_OK;
}

/* Element offset of head dim 0 of (b, h, s) in the input / output. */
static int64_t rotary_offset(const rotary_layout *l, int64_t b, int64_t h, int64_t s)
{
    if (l->seq_major)
        return ((b * l->seq + s) * l->heads + h) * l->head_dim;
    return ((b * l->heads + h) * l->seq + s) * l->head_dim;
}

/* Rotates one head vector of head_dim elements at offset off. */
static void rotary_head(const op_ctx *c, const rotary_layout *l, int64_t off, int64_t cache_row)
{
    const ogi_tensor *x = c->in[0], *cos = c->in[1], *sin = c->in[2];
    ogi_tensor *y = c->out[0];
    for (int64_t k = 0; k < l->half; k++) {
        int64_t i1 = l->interleaved ? 2 * k : k;
        int64_t i2 = l->interleaved ? 2 * k + 1 : k + l->half;
        double x1 = dtype_get_f64(x->data, x->dtype, off + i1);
        double x2 = dtype_get_f64(x->data, x->dtype, off + i2);
        double cv = dtype_get_f64(cos->data, cos->dtype, cache_row * l->half + k);
        double sv = dtype_get_f64(sin->data, sin->dtype, cache_row * l->half + k);
        dtype_set_f64(y->data, y->dtype, off + i1, cv * x1 - sv * x2);
        dtype_set_f64(y->data, y->dtype, off + i2, sv * x1 + cv * x2);
    }
    for (int64_t d = 2 * l->half; d < l->head_dim; d++)
        dtype_set_f64(y->data, y->dtype, off + d, dtype_get_f64(x->data, x->dtype, off + d));
}

static void rotary_apply(const op_ctx *c, const rotary_layout *l)
{
    const ogi_tensor *pos = l->has_positions ? c->in[3] : NULL;
    for (int64_t b = 0; b < l->batch; b++) {
        for (int64_t s = 0; s < l->seq; s++) {
            int64_t bs = b * l->seq + s;
            int64_t row = pos ? dtype_get_i64(pos->data, pos->dtype, bs) : bs;
            for (int64_t h = 0; h < l->heads; h++)
                rotary_head(c, l, rotary_offset(l, b, h, s), row);
        }
    }
}

/* ---- float32 ------------------------------------------------------------------ */

typedef struct rotary_f32_job {
    const rotary_layout *l;
    const float *x, *cos, *sin;
    const ogi_tensor *pos;
    float *y;
} rotary_f32_job;

static void rotary_f32_rows(void *arg, int64_t begin, int64_t end)
{
    const rotary_f32_job *j = arg;
    const rotary_layout *l = j->l;
    const int64_t half = l->half, hd = l->head_dim;
    for (int64_t bs = begin; bs < end; bs++) {
        int64_t b = bs / l->seq, s = bs % l->seq;
        int64_t row = j->pos ? dtype_get_i64(j->pos->data, j->pos->dtype, bs) : bs;
        const float *cv = j->cos + row * half, *sv = j->sin + row * half;
        for (int64_t h = 0; h < l->heads; h++) {
            int64_t off = rotary_offset(l, b, h, s);
            const float *x = j->x + off;
            float *y = j->y + off;
            if (l->interleaved) {
                for (int64_t k = 0; k < half; k++) {
                    float x1 = x[2 * k], x2 = x[2 * k + 1];
                    y[2 * k] = cv[k] * x1 - sv[k] * x2;
                    y[2 * k + 1] = sv[k] * x1 + cv[k] * x2;
                }
            } else {
                for (int64_t k = 0; k < half; k++) {
                    float x1 = x[k], x2 = x[k + half];
                    y[k] = cv[k] * x1 - sv[k] * x2;
                    y[k + half] = sv[k] * x1 + cv[k] * x2;
                }
            }
            for (int64_t d = 2 * half; d < hd; d++)
                y[d] = x[d];
        }
    }
}

static void rotary_apply_f32(op_ctx *c, const rotary_layout *l)
{
    rotary_f32_job j = {l,
                        c->in[0]->data,
                        c->in[1]->data,
                        c->in[2]->data,
                        l->has_positions ? c->in[3] : NULL,
                        c->out[0]->data};
    int64_t per_row = l->heads * l->head_dim;
    threadpool_parallel_for(c->pool, l->batch * l->seq, 1 + 16384 / (per_row > 0 ? per_row : 1),
                            rotary_f32_rows, &j);
}

static ogi_status rotary_embedding(op_ctx *c)
{
    ogi_status st;
    for (int i = 0; i < 3; i++) {
        if ((st = op_require_input(c, i)) != OGI_OK)
            return st;
    }
    rotary_layout l;
    if ((st = rotary_input_layout(c, &l)) != OGI_OK || (st = rotary_rot_dim(c, &l)) != OGI_OK ||
        (st = rotary_check_caches(c, &l)) != OGI_OK ||
        (st = rotary_check_positions(c, &l)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if ((st = op_alloc(c, 0, x->dtype, x->rank, x->dims)) != OGI_OK)
        return st;
    if (x->dtype == OGI_FLOAT32 && c->in[1]->dtype == OGI_FLOAT32 && c->in[2]->dtype == OGI_FLOAT32)
        rotary_apply_f32(c, &l);
    else
        rotary_apply(c, &l);
    return OGI_OK;
}

/* ---- ai.ogi.RotateHalf ------------------------------------------------------------
 * The rotary embedding that exporters write with rotate_half, fused at load
 * (engine/fuse.c):
 *   Y = X * cos + Concat(-X[..., b0:b1], X[..., a0:a1]) * sin
 * with inputs (X, cos, sin, then starts, ends, axes, steps of Slice a and of
 * Slice b), cos and sin broadcast against X as Mul broadcasts them. The
 * slices must be along the last axis with step 1 and their lengths add up
 * to X's last dim (the halves, in exported graphs). */

typedef struct rotary_half_job {
    const op_bcast *b;
    const float *x, *cos, *sin;
    float *y;
    int64_t a0, b0, b_len; /* rot[k] = k < b_len ? -x[b0 + k] : x[a0 + k - b_len] */
} rotary_half_job;

static void rotary_half_rows(void *arg, int64_t begin, int64_t end)
{
    const rotary_half_job *j = arg;
    const op_bcast *b = j->b;
    int last = b->rank - 1;
    int64_t sc = b->strides[1][last], ss = b->strides[2][last], d = b->inner;
    for (int64_t row = begin; row < end; row++) {
        int64_t offs[3];
        op_bcast_row(b, row, offs);
        const float *x = j->x + offs[0], *cv = j->cos + offs[1], *sv = j->sin + offs[2];
        float *y = j->y + row * d;
        for (int64_t k = 0; k < j->b_len; k++)
            y[k] = x[k] * cv[k * sc] - x[j->b0 + k] * sv[k * ss];
        for (int64_t k = j->b_len; k < d; k++)
            y[k] = x[k] * cv[k * sc] + x[j->a0 + k - j->b_len] * sv[k * ss];
    }
}

/* [start, end) of a step-1 slice of one axis of size dim, from inputs
 * first..first+3 (starts, ends, axes, steps); the axis must be rank - 1. */
static ogi_status rotary_half_slice(op_ctx *c, int first, int rank, int64_t dim, int64_t *start,
                                    int64_t *end)
{
    int64_t v[4] = {0, 0, 0, 1}, n;
    for (int k = 0; k < 4; k++) {
        if (!op_has_input(c, first + k)) {
            if (k < 3)
                return op_error(c, OGI_ERR_RUNTIME, "input %d is missing", first + k);
            continue;
        }
        ogi_status st = op_read_ints(c, first + k, &v[k], 1, &n);
        if (st != OGI_OK)
            return st;
        if (n != 1)
            return op_error(c, OGI_ERR_RUNTIME, "input %d: expected one value", first + k);
    }
    int64_t axis = v[2] < 0 ? v[2] + rank : v[2];
    if (axis != rank - 1 || v[3] != 1)
        return op_error(c, OGI_ERR_UNSUPPORTED,
                        "rotate_half slice along axis %lld with step %lld (last axis, step 1 only)",
                        (long long)v[2], (long long)v[3]);
    for (int k = 0; k < 2; k++) {
        if (v[k] < 0)
            v[k] += dim;
        v[k] = v[k] < 0 ? 0 : v[k] > dim ? dim : v[k];
    }
    *start = v[0];
    *end = v[1] > v[0] ? v[1] : v[0];
    return OGI_OK;
}

static ogi_status rotary_rotate_half(op_ctx *c)
{
    ogi_status st;
    for (int i = 0; i < 3; i++)
        if ((st = op_require_dtype(c, i, OGI_FLOAT32)) != OGI_OK)
            return st;
    const ogi_tensor *x = c->in[0];
    if (x->rank < 1)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1");
    int64_t d = x->dims[x->rank - 1], a0, a1, b0, b1;
    if ((st = rotary_half_slice(c, 3, x->rank, d, &a0, &a1)) != OGI_OK ||
        (st = rotary_half_slice(c, 7, x->rank, d, &b0, &b1)) != OGI_OK)
        return st;
    if ((a1 - a0) + (b1 - b0) != d)
        return op_error(c, OGI_ERR_RUNTIME, "slices of %lld and %lld elements do not make %lld",
                        (long long)(a1 - a0), (long long)(b1 - b0), (long long)d);
    op_bcast b;
    if ((st = op_bcast_init(c, &b, 3, c->in)) != OGI_OK)
        return st;
    if (b.rank != x->rank || b.dims[b.rank - 1] != d || b.rows * b.inner != tensor_numel(x))
        return op_error(c, OGI_ERR_UNSUPPORTED, "cos and sin must not broadcast X itself");
    if ((st = op_alloc(c, 0, OGI_FLOAT32, b.rank, b.dims)) != OGI_OK)
        return st;
    if (tensor_numel(x) == 0)
        return OGI_OK;
    rotary_half_job j = {&b, x->data, c->in[1]->data, c->in[2]->data, c->out[0]->data,
                         a0, b0,      b1 - b0};
    threadpool_parallel_for(c->pool, b.rows, 1 + 16384 / (d > 0 ? d : 1), rotary_half_rows, &j);
    return OGI_OK;
}

const op_kernel op_kernels_rotary[] = {
    {"", "RotaryEmbedding", 23, rotary_embedding},
    {"ai.ogi", "RotateHalf", 1, rotary_rotate_half},
    {NULL, NULL, 0, NULL},
};
