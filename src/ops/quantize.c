/* QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear.
 *
 * Scales and zero points apply per tensor, per axis, or per block of
 * block_size elements along one axis. x is seen as [outer, axis, inner]; the
 * scale of an element is found through three strides (0 where the scale does
 * not vary), and x is processed in chunks converted by cast_elements. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "ops/cast.h"
#include "ops/families.h"

#define QUANT_CHUNK 256
/* Chunks per parallel task. */
#define QUANT_TASK_CHUNKS 16

typedef struct quant_map {
    int64_t outer, axis_len, inner;
    int64_t block;                    /* elements along the axis per scale */
    int64_t s_outer, s_axis, s_inner; /* scale strides */
    int64_t n_scales;
} quant_map;

static int64_t quant_scale_index(const quant_map *m, int64_t o, int64_t a, int64_t in)
{
    return o * m->s_outer + (a / m->block) * m->s_axis + in * m->s_inner;
}

static void quant_map_per_tensor(quant_map *m, int64_t numel)
{
    *m = (quant_map){1, 1, numel, 1, 0, 0, 0, 1};
}

static void quant_map_split(quant_map *m, const ogi_tensor *x, int axis)
{
    m->outer = 1;
    m->inner = 1;
    for (int d = 0; d < axis; d++)
        m->outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        m->inner *= x->dims[d];
    m->axis_len = x->dims[axis];
}

static ogi_status quant_map_blocked(const op_ctx *c, quant_map *m, const ogi_tensor *x,
                                    const ogi_tensor *s, int axis, int64_t block)
{
    if (s->rank != x->rank)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 1: blocked scale must have the rank of x (%d), got %d", x->rank,
                        s->rank);
    int64_t blocks = (x->dims[axis] + block - 1) / block;
    for (int d = 0; d < x->rank; d++) {
        int64_t want = d == axis ? blocks : x->dims[d];
        if (s->dims[d] != want)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 1: blocked scale dim %d must be %lld, got %lld", d,
                            (long long)want, (long long)s->dims[d]);
    }
    quant_map_split(m, x, axis);
    m->block = block;
    m->s_outer = blocks * m->inner;
    m->s_axis = m->inner;
    m->s_inner = 1;
    m->n_scales = tensor_numel(s);
    return OGI_OK;
}

/* Works out the granularity from the scale's shape: one element is per
 * tensor, a vector per axis, and with block_size a tensor of x's rank. */
static ogi_status quant_map_init(const op_ctx *c, quant_map *m, const ogi_tensor *x,
                                 const ogi_tensor *s, const ogi_tensor *zp)
{
    int64_t n_s = tensor_numel(s);
    int64_t block = c->opset >= 21 ? op_attr_int(c, "block_size", 0) : 0;
    if (block < 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute block_size=%lld must be >= 0",
                        (long long)block);
    if (zp != NULL && (tensor_numel(zp) != n_s || (n_s != 1 && !tensor_same_shape(s, zp))))
        return op_error(c, OGI_ERR_RUNTIME, "input 2: zero point shape differs from the scale's");
    ogi_status st;
    if (n_s == 1) {
        quant_map_per_tensor(m, tensor_numel(x));
        return OGI_OK;
    }
    int axis;
    if ((st = op_normalize_axis(c, op_attr_int(c, "axis", 1), x->rank, &axis)) != OGI_OK)
        return st;
    if (block > 0)
        return quant_map_blocked(c, m, x, s, axis, block);
    if (s->rank != 1 || s->dims[0] != x->dims[axis])
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 1: per-axis scale must be a vector of %lld elements (axis %d)",
                        (long long)x->dims[axis], axis);
    quant_map_split(m, x, axis);
    m->block = 1;
    m->s_outer = 0;
    m->s_axis = 1;
    m->s_inner = 0;
    m->n_scales = n_s;
    return OGI_OK;
}

/* Scale and zero point as doubles (exact for every dtype); zp is all zeros
 * when absent. The caller frees *scale (one allocation holds both). */
static ogi_status quant_load_params(const op_ctx *c, const ogi_tensor *s, const ogi_tensor *zp,
                                    int64_t n, double **scale, double **zero)
{
    double *buf = calloc((size_t)(2 * n), sizeof(double));
    if (buf == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld scales", (long long)n);
    cast_elements(s->data, s->dtype, 0, buf, OGI_FLOAT64, 0, n, NULL);
    if (zp != NULL)
        cast_elements(zp->data, zp->dtype, 0, buf + n, OGI_FLOAT64, 0, n, NULL);
    *scale = buf;
    *zero = buf + n;
    return OGI_OK;
}

/* Walks the [outer, axis, inner] coordinates of consecutive elements. */
typedef struct quant_cursor {
    int64_t o, a, in;
} quant_cursor;

static quant_cursor quant_cursor_at(const quant_map *m, int64_t i)
{
    quant_cursor q;
    q.in = m->inner > 0 ? i % m->inner : 0;
    int64_t row = m->inner > 0 ? i / m->inner : 0;
    q.a = m->axis_len > 0 ? row % m->axis_len : 0;
    q.o = m->axis_len > 0 ? row / m->axis_len : 0;
    return q;
}

static void quant_cursor_next(const quant_map *m, quant_cursor *q)
{
    if (++q->in < m->inner)
        return;
    q->in = 0;
    if (++q->a < m->axis_len)
        return;
    q->a = 0;
    q->o++;
}

/* Runs fn over x's elements in chunks, the chunks spread over the pool. */
typedef void (*quant_chunk_fn)(const void *job, int64_t first, int64_t len);

typedef struct quant_tasks {
    quant_chunk_fn fn;
    const void *job;
    int64_t n;
} quant_tasks;

static void quant_tasks_run(void *arg, int64_t begin, int64_t end)
{
    const quant_tasks *t = arg;
    int64_t step = QUANT_CHUNK * QUANT_TASK_CHUNKS;
    int64_t stop = end * step < t->n ? end * step : t->n;
    for (int64_t i = begin * step; i < stop; i += QUANT_CHUNK)
        t->fn(t->job, i, stop - i < QUANT_CHUNK ? stop - i : QUANT_CHUNK);
}

static void quant_parallel(threadpool *pool, int64_t n, quant_chunk_fn fn, const void *job)
{
    quant_tasks t = {fn, job, n};
    int64_t step = QUANT_CHUNK * QUANT_TASK_CHUNKS;
    threadpool_parallel_for(pool, (n + step - 1) / step, 1, quant_tasks_run, &t);
}

/* ---- QuantizeLinear -------------------------------------------------------- */

typedef struct quant_job {
    const ogi_tensor *x;
    ogi_tensor *y;
    quant_map map;
    const double *scale, *zero;
    ogi_dtype precision; /* dtype of the division */
    cast_options opt;
    int64_t n;
} quant_job;

static bool quant_is_integer(ogi_dtype t)
{
    switch (t) {
    case OGI_UINT8:
    case OGI_INT8:
    case OGI_UINT16:
    case OGI_INT16:
    case OGI_UINT4:
    case OGI_INT4:
    case OGI_UINT2:
    case OGI_INT2:
        return true;
    default:
        return false;
    }
}

static bool quant_is_float8(ogi_dtype t)
{
    return t == OGI_FLOAT8E4M3FN || t == OGI_FLOAT8E4M3FNUZ || t == OGI_FLOAT8E5M2 ||
           t == OGI_FLOAT8E5M2FNUZ;
}

static void quant_int_range(ogi_dtype t, double *lo, double *hi)
{
    int bits = ogi_dtype_bits(t);
    bool is_signed = t == OGI_INT8 || t == OGI_INT16 || t == OGI_INT4 || t == OGI_INT2;
    double span = ldexp(1.0, bits);
    *lo = is_signed ? -span / 2 : 0;
    *hi = is_signed ? span / 2 - 1 : span - 1;
}

/* v rounded to a float dtype, returned as a double. */
static double quant_round_to(double v, ogi_dtype t)
{
    switch (t) {
    case OGI_FLOAT64:
        return v;
    case OGI_FLOAT16:
        return dtype_f16_to_f32(cast_f64_to_f16(v));
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(dtype_f32_to_bf16((float)v));
    default:
        return (float)v;
    }
}

/* x / scale in the precision dtype: both operands are rounded to it, divided
 * in float32 (float64 for doubles), and the quotient rounded to it again. */
static double quant_divide(double x, double s, ogi_dtype prec)
{
    if (prec == OGI_FLOAT64)
        return x / s;
    float q = (float)quant_round_to(x, prec) / (float)quant_round_to(s, prec);
    return quant_round_to(q, prec);
}

static void quant_chunk(const void *arg, int64_t first, int64_t len)
{
    const quant_job *j = arg;
    double v[QUANT_CHUNK];
    int64_t iv[QUANT_CHUNK];
    ogi_dtype yt = j->y->dtype;
    bool integer = quant_is_integer(yt);
    double lo = 0, hi = 0;
    if (integer)
        quant_int_range(yt, &lo, &hi);
    cast_elements(j->x->data, j->x->dtype, first, v, OGI_FLOAT64, 0, len, NULL);
    quant_cursor cur = quant_cursor_at(&j->map, first);
    for (int64_t k = 0; k < len; k++, quant_cursor_next(&j->map, &cur)) {
        int64_t si = quant_scale_index(&j->map, cur.o, cur.a, cur.in);
        double q = quant_divide(v[k], j->scale[si], j->precision);
        double zp = j->zero[si];
        if (integer) {
            /* NaN lands on the low end, as the reference's int32 conversion does */
            double r = isnan(q) ? lo : nearbyint(q) + zp;
            iv[k] = (int64_t)(r < lo ? lo : r > hi ? hi : r);
        } else if (quant_is_float8(yt)) {
            v[k] = zp != 0.0 ? q + zp : q; /* adding +0 would lose a -0 */
        } else {
            v[k] = quant_round_to(q + zp, j->precision);
        }
    }
    if (integer)
        cast_elements(iv, OGI_INT64, 0, j->y->data, yt, first, len, NULL);
    else
        cast_elements(v, OGI_FLOAT64, 0, j->y->data, yt, first, len, &j->opt);
}

static bool quant_is_scale_type(ogi_dtype t)
{
    return dtype_is_float(t);
}

/* The quantized dtype: the zero point's, else output_dtype, else uint8. */
static ogi_status quant_output_type(const op_ctx *c, const ogi_tensor *zp, ogi_dtype *out)
{
    int64_t attr = c->opset >= 21 ? op_attr_int(c, "output_dtype", 0) : 0;
    ogi_dtype t = zp ? zp->dtype : attr != 0 ? (ogi_dtype)attr : OGI_UINT8;
    if (zp != NULL && attr != 0 && attr != (int64_t)zp->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute output_dtype=%lld differs from the zero point's %s",
                        (long long)attr, ogi_dtype_name(zp->dtype));
    if (!quant_is_integer(t) && !quant_is_float8(t) && t != OGI_FLOAT4E2M1)
        return op_error(c, OGI_ERR_UNSUPPORTED, "cannot quantize to %s",
                        dtype_is_valid((int)t) ? ogi_dtype_name(t) : "an unknown dtype");
    *out = t;
    return OGI_OK;
}

/* The division's dtype: the precision attribute, else the scale's. int32 x
 * divides in float64, as the reference's numpy promotion does. */
static ogi_status quant_precision(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *s,
                                  ogi_dtype *out)
{
    int64_t p = c->opset >= 23 ? op_attr_int(c, "precision", 0) : 0;
    if (p != 0) {
        if (!dtype_is_valid((int)p) || !dtype_is_float((ogi_dtype)p))
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "attribute precision=%lld is not a float type", (long long)p);
        *out = (ogi_dtype)p;
        return OGI_OK;
    }
    *out = x->dtype == OGI_INT32 ? OGI_FLOAT64 : s->dtype;
    return OGI_OK;
}

static ogi_status quant_check_inputs(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *s)
{
    if (!dtype_is_float(x->dtype) && x->dtype != OGI_INT32)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: cannot quantize %s",
                        ogi_dtype_name(x->dtype));
    if (!quant_is_scale_type(s->dtype))
        return op_error(c, OGI_ERR_RUNTIME, "input 1: scale must be a float type, got %s",
                        ogi_dtype_name(s->dtype));
    return OGI_OK;
}

/* QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point). */
static ogi_status quantize_linear_run(op_ctx *c)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *s = c->in[1];
    const ogi_tensor *zp = op_has_input(c, 2) ? c->in[2] : NULL;
    quant_job job = {.x = x, .n = tensor_numel(x), .opt = cast_default_options()};
    ogi_dtype yt;
    if ((st = quant_check_inputs(c, x, s)) != OGI_OK ||
        (st = quant_output_type(c, zp, &yt)) != OGI_OK ||
        (st = quant_precision(c, x, s, &job.precision)) != OGI_OK ||
        (st = quant_map_init(c, &job.map, x, s, zp)) != OGI_OK)
        return st;
    if (c->opset >= 19)
        job.opt.saturate = op_attr_int(c, "saturate", 1) != 0;
    double *scale, *zero;
    if ((st = quant_load_params(c, s, zp, job.map.n_scales, &scale, &zero)) != OGI_OK)
        return st;
    job.scale = scale;
    job.zero = zero;
    if ((st = op_alloc(c, 0, yt, x->rank, x->dims)) == OGI_OK) {
        job.y = c->out[0];
        if (job.y->nbytes > 0)
            memset(job.y->data, 0, job.y->nbytes); /* padding bits of packed types */
        quant_parallel(c->pool, job.n, quant_chunk, &job);
    }
    free(scale);
    return st;
}

/* ---- DequantizeLinear ------------------------------------------------------- */

typedef struct dequant_job {
    const ogi_tensor *x;
    ogi_tensor *y;
    quant_map map;
    const double *scale, *zero;
    bool in_double; /* else float32 arithmetic, as the reference */
    int64_t n;
} dequant_job;

static void dequant_chunk(const void *arg, int64_t first, int64_t len)
{
    const dequant_job *j = arg;
    double v[QUANT_CHUNK];
    cast_elements(j->x->data, j->x->dtype, first, v, OGI_FLOAT64, 0, len, NULL);
    quant_cursor cur = quant_cursor_at(&j->map, first);
    for (int64_t k = 0; k < len; k++, quant_cursor_next(&j->map, &cur)) {
        int64_t si = quant_scale_index(&j->map, cur.o, cur.a, cur.in);
        double d = v[k] - j->zero[si]; /* exact: both are small integers or float8 */
        if (j->in_double)
            v[k] = d * j->scale[si];
        else
            v[k] = (float)d * (float)j->scale[si];
    }
    cast_elements(v, OGI_FLOAT64, 0, j->y->data, j->y->dtype, first, len, NULL);
}

static bool dequant_is_input_type(ogi_dtype t)
{
    return quant_is_integer(t) || quant_is_float8(t) || t == OGI_FLOAT4E2M1 || t == OGI_INT32;
}

static ogi_status dequant_output_type(const op_ctx *c, const ogi_tensor *s, ogi_dtype *out)
{
    int64_t attr = c->opset >= 23 ? op_attr_int(c, "output_dtype", 0) : 0;
    ogi_dtype t = attr != 0 ? (ogi_dtype)attr : s->dtype;
    if (!dtype_is_valid((int)t) || !dtype_is_float(t))
        return op_error(c, OGI_ERR_INVALID_MODEL, "output_dtype=%lld is not a float type",
                        (long long)attr);
    *out = t;
    return OGI_OK;
}

/* DequantizeLinear: y = (x - zero_point) * scale. */
static ogi_status dequantize_linear_run(op_ctx *c)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *s = c->in[1];
    const ogi_tensor *zp = op_has_input(c, 2) ? c->in[2] : NULL;
    if (!dequant_is_input_type(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: cannot dequantize %s",
                        ogi_dtype_name(x->dtype));
    if (!quant_is_scale_type(s->dtype))
        return op_error(c, OGI_ERR_RUNTIME, "input 1: scale must be a float type, got %s",
                        ogi_dtype_name(s->dtype));
    if (zp != NULL && zp->dtype != x->dtype)
        return op_error(c, OGI_ERR_RUNTIME, "input 2: zero point is %s, x is %s",
                        ogi_dtype_name(zp->dtype), ogi_dtype_name(x->dtype));
    dequant_job job = {.x = x, .n = tensor_numel(x)};
    ogi_dtype yt;
    if ((st = dequant_output_type(c, s, &yt)) != OGI_OK ||
        (st = quant_map_init(c, &job.map, x, s, zp)) != OGI_OK)
        return st;
    job.in_double = x->dtype == OGI_INT32 || s->dtype == OGI_FLOAT64;
    double *scale, *zero;
    if ((st = quant_load_params(c, s, zp, job.map.n_scales, &scale, &zero)) != OGI_OK)
        return st;
    job.scale = scale;
    job.zero = zero;
    if ((st = op_alloc(c, 0, yt, x->rank, x->dims)) == OGI_OK) {
        job.y = c->out[0];
        quant_parallel(c->pool, job.n, dequant_chunk, &job);
    }
    free(scale);
    return st;
}

/* ---- DynamicQuantizeLinear ---------------------------------------------------- */

/* The uint8 scale and zero point covering [min(x, 0), max(x, 0)], in float32
 * arithmetic as the reference; an all-zero x gets scale 1. */
static void dynquant_params(const float *x, int64_t n, float *scale, float *zero_point)
{
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    *scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    float zp = 0.0f - lo / *scale;
    zp = zp < 0.0f ? 0.0f : zp > 255.0f ? 255.0f : zp;
    *zero_point = nearbyintf(zp);
}

/* DynamicQuantizeLinear: uint8 quantization of x with a scale and zero point
 * computed from its range. */
static ogi_status dynamic_quantize_linear_run(op_ctx *c)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK ||
        (st = op_require_dtype(c, 0, OGI_FLOAT32)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t n = tensor_numel(x);
    const float *xs = x->data;
    float scale, zp;
    dynquant_params(xs, n, &scale, &zp);
    if ((st = op_alloc(c, 0, OGI_UINT8, x->rank, x->dims)) != OGI_OK ||
        (st = op_alloc(c, 1, OGI_FLOAT32, 0, NULL)) != OGI_OK ||
        (st = op_alloc(c, 2, OGI_UINT8, 0, NULL)) != OGI_OK)
        return st;
    uint8_t *y = c->out[0]->data;
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(xs[i] / scale) + zp;
        y[i] = (uint8_t)(isnan(q) ? 0.0f : q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
    }
    *(float *)c->out[1]->data = scale;
    *(uint8_t *)c->out[2]->data = (uint8_t)zp;
    return OGI_OK;
}

const op_kernel op_kernels_quantize[] = {
    {"", "QuantizeLinear", 10, quantize_linear_run},
    {"", "DequantizeLinear", 10, dequantize_linear_run},
    {"", "DynamicQuantizeLinear", 11, dynamic_quantize_linear_run},
    {NULL, NULL, 0, NULL},
};
