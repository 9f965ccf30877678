/* RMSNormalization (opset 23): Y = X / sqrt(mean(X^2) + epsilon) * Scale, the
 * mean taken over the dims axis..rank-1. Statistics are computed in double
 * (at least the precision stash_type asks for); the normalized value is
 * rounded to X's type before the scale is applied, as the function body does. */
#include <math.h>
#include <stdlib.h>

#include "ops/families.h"
#include "ops/vecmath.h"

/* Strides of scale over X's dims (0 where scale broadcasts); scale must be
 * unidirectionally broadcastable to X. */
static ogi_status rms_scale_strides(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *scale,
                                    int64_t *strides)
{
    char xs[128], ss[128];
    if (scale->rank > x->rank)
        goto mismatch;
    int64_t stride = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        int sd = d - (x->rank - scale->rank);
        if (sd < 0) {
            strides[d] = 0;
            continue;
        }
        if (scale->dims[sd] != x->dims[d] && scale->dims[sd] != 1)
            goto mismatch;
        strides[d] = scale->dims[sd] == 1 ? 0 : stride;
        stride *= scale->dims[sd];
    }
    return OGI_OK;
mismatch:
    return op_error(c, OGI_ERR_RUNTIME,
                    "input 1 (scale): shape %s does not broadcast to X's shape %s",
                    tensor_shape_str(scale->rank, scale->dims, ss, sizeof(ss)),
                    tensor_shape_str(x->rank, x->dims, xs, sizeof(xs)));
}

/* Element offset into scale of X's element at multi-index idx. */
static int64_t rms_scale_offset(int rank, const int64_t *idx, const int64_t *strides)
{
    int64_t off = 0;
    for (int d = 0; d < rank; d++)
        off += idx[d] * strides[d];
    return off;
}

/* Advances a row-major multi-index over dims by one element. */
static void rms_index_next(int rank, const int64_t *dims, int64_t *idx)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++idx[d] < dims[d])
            return;
        idx[d] = 0;
    }
}

/* v rounded to a float type's precision (the function body's Cast to X's type). */
static double rms_round(double v, ogi_dtype dtype)
{
    switch (dtype) {
    case OGI_FLOAT32:
        return (float)v;
    case OGI_FLOAT16:
        return dtype_f16_to_f32(dtype_f32_to_f16((float)v));
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(dtype_f32_to_bf16((float)v));
    default:
        return v;
    }
}

static void rms_normalize(const ogi_tensor *x, const ogi_tensor *scale, const int64_t *strides,
                          int axis, double epsilon, ogi_tensor *y)
{
    int64_t inner = 1, outer = 1;
    for (int d = 0; d < x->rank; d++)
        *(d < axis ? &outer : &inner) *= x->dims[d];
    if (inner == 0)
        return;
    int64_t idx[OGI_MAX_RANK] = {0};
    for (int64_t r = 0; r < outer; r++) {
        const int64_t base = r * inner;
        double sum = 0.0;
        for (int64_t i = 0; i < inner; i++) {
            double v = dtype_get_f64(x->data, x->dtype, base + i);
            sum += v * v;
        }
        const double inv_rms = 1.0 / sqrt(sum / (double)inner + epsilon);
        for (int64_t i = 0; i < inner; i++) {
            double normalized =
                rms_round(dtype_get_f64(x->data, x->dtype, base + i) * inv_rms, x->dtype);
            double s =
                dtype_get_f64(scale->data, scale->dtype, rms_scale_offset(x->rank, idx, strides));
            dtype_set_f64(y->data, y->dtype, base + i, normalized * s);
            rms_index_next(x->rank, x->dims, idx);
        }
    }
}

/* ---- float32 fast path ------------------------------------------------------
 * X and scale float32, scale either one value or exactly the normalized
 * dims (the models' [hidden] weight): rows are contiguous, the sum of squares
 * runs in float lanes and rows are split over the pool. rms_normalize() is its
 * reference. */

typedef struct rms_f32_job {
    const float *x, *scale;
    float *y;
    int64_t inner;
    bool scalar_scale;
    float epsilon;
} rms_f32_job;

static double rms_sumsq_generic(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

/* y = (float)(x * inv_rms) * scale over one row, written for the vectoriser. */
static void rms_scale_row(const float *x, const float *scale, bool scalar_scale, float inv_rms,
                          float *y, int64_t n)
{
    if (scalar_scale) {
        float s = scale[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * inv_rms * s;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * inv_rms * scale[i];
}

/* A row whose sum of squares overflows float (|x| beyond ~1e19): in double. */
static void rms_row_f64(const float *x, const float *scale, bool scalar_scale, float epsilon,
                        float *y, int64_t n)
{
    double inv_rms = 1.0 / sqrt(rms_sumsq_generic(x, n) / (double)n + epsilon);
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)((double)x[i] * inv_rms) * scale[scalar_scale ? 0 : i];
}

static void rms_f32_rows(void *arg, int64_t begin, int64_t end)
{
    const rms_f32_job *j = arg;
    vecmath_isa isa = vecmath_best_isa();
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->inner;
        float *y = j->y + r * j->inner;
        float sumsq = isa == VECMATH_AVX512 ? vecmath_dot_avx512(x, x, j->inner)
                      : isa == VECMATH_AVX2 ? vecmath_dot_avx2(x, x, j->inner)
                                            : (float)rms_sumsq_generic(x, j->inner);
        if (!isfinite(sumsq)) {
            rms_row_f64(x, j->scale, j->scalar_scale, j->epsilon, y, j->inner);
            continue;
        }
        float inv_rms = (float)(1.0 / sqrt((double)sumsq / (double)j->inner + j->epsilon));
        rms_scale_row(x, j->scale, j->scalar_scale, inv_rms, y, j->inner);
    }
}

/* Runs the fast path when it applies; false leaves the work to rms_normalize(). */
static bool rms_normalize_f32(op_ctx *c, const ogi_tensor *x, const ogi_tensor *scale, int axis,
                              float epsilon, ogi_tensor *y)
{
    if (x->dtype != OGI_FLOAT32 || scale->dtype != OGI_FLOAT32)
        return false;
    int64_t inner = 1, outer = 1, scale_n = tensor_numel(scale);
    for (int d = 0; d < x->rank; d++)
        *(d < axis ? &outer : &inner) *= x->dims[d];
    /* scale is one value, or its dims are X's normalized dims (leading 1s allowed) */
    bool scalar_scale = scale_n == 1;
    if (!scalar_scale) {
        if (scale_n != inner || scale->rank > x->rank)
            return false;
        for (int d = 0; d < scale->rank; d++) {
            int xd = d + x->rank - scale->rank;
            if (scale->dims[d] != x->dims[xd] && !(xd < axis && scale->dims[d] == 1))
                return false;
        }
    }
    if (inner == 0 || outer == 0)
        return true;
    rms_f32_job job = {x->data, scale->data, y->data, inner, scalar_scale, epsilon};
    threadpool_parallel_for(c->pool, outer, 1 + 32768 / inner, rms_f32_rows, &job);
    return true;
}

static ogi_status rms_normalization(op_ctx *c)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *scale = c->in[1];
    if (!dtype_is_float(x->dtype) || !dtype_is_float(scale->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "X (%s) and scale (%s) must be float tensors",
                        ogi_dtype_name(x->dtype), ogi_dtype_name(scale->dtype));
    int64_t stash = op_attr_int(c, "stash_type", 1);
    if (stash != OGI_FLOAT32 && stash != OGI_FLOAT64)
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute stash_type=%lld is not supported",
                        (long long)stash);
    if (x->rank < 1)
        return op_error(c, OGI_ERR_RUNTIME, "input 0 (X): expected rank >= 1, got 0");
    int axis;
    if ((st = op_normalize_axis(c, op_attr_int(c, "axis", -1), x->rank, &axis)) != OGI_OK)
        return st;
    int64_t strides[OGI_MAX_RANK];
    if ((st = rms_scale_strides(c, x, scale, strides)) != OGI_OK)
        return st;
    /* Y is the product of Normalized (X's type) and scale: scale's type */
    if ((st = op_alloc(c, 0, scale->dtype, x->rank, x->dims)) != OGI_OK)
        return st;
    float epsilon = op_attr_float(c, "epsilon", 1e-5f);
    if (!rms_normalize_f32(c, x, scale, axis, epsilon, c->out[0]))
        rms_normalize(x, scale, strides, axis, epsilon, c->out[0]);
    return OGI_OK;
}

/* ai.ogi.RMSNorm(X, scale, epsilon): the RMSNorm that exporters write op by
 * op (Pow, ReduceMean, Add, Sqrt, Div, Mul), fused at load (engine/fuse.c):
 * X float32 normalized over its last axis, times an optional constant scale
 * of one value or X's last dim; epsilon a float32 scalar. */
static ogi_status rms_norm_fused(op_ctx *c)
{
    ogi_status st = op_require_dtype(c, 0, OGI_FLOAT32);
    if (st == OGI_OK)
        st = op_require_dtype(c, 2, OGI_FLOAT32);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    static const float one = 1.0f;
    ogi_tensor unit = {.dtype = OGI_FLOAT32, .rank = 0, .data = (void *)&one};
    const ogi_tensor *scale = op_has_input(c, 1) ? c->in[1] : &unit;
    if (x->rank < 1 || tensor_numel(c->in[2]) != 1 || scale->dtype != OGI_FLOAT32 ||
        scale->rank > 1)
        return op_error(c, OGI_ERR_RUNTIME,
                        "expected X of rank >= 1, a scalar epsilon and a "
                        "float32 scale of rank <= 1");
    int64_t n = x->dims[x->rank - 1], sn = tensor_numel(scale);
    if (sn != 1 && sn != n)
        return op_error(c, OGI_ERR_RUNTIME, "scale has %lld values for rows of %lld", (long long)sn,
                        (long long)n);
    if ((st = op_alloc(c, 0, OGI_FLOAT32, x->rank, x->dims)) != OGI_OK)
        return st;
    float epsilon = *(const float *)c->in[2]->data;
    if (!rms_normalize_f32(c, x, scale, x->rank - 1, epsilon, c->out[0]))
        return op_error(c, OGI_ERR_RUNTIME, "unsupported scale layout");
    return OGI_OK;
}

const op_kernel op_kernels_rms_norm[] = {
    {"", "RMSNormalization", 23, rms_normalization},
    {"ai.ogi", "RMSNorm", 1, rms_norm_fused},
    {NULL, NULL, 0, NULL},
};
