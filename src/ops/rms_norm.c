/* RMSNormalization (opset 23): Y = X / sqrt(mean(X^2) + epsilon) * Scale, the
 * mean taken over the dims axis..rank-1. Statistics are computed in double
 * (at least the precision stash_type asks for); the normalized value is
 * rounded to X's type before the scale is applied, as the function body does. */
#include <math.h>
#include <stdlib.h>

#include "ops/families.h"

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
    rms_normalize(x, scale, strides, axis, op_attr_float(c, "epsilon", 1e-5f), c->out[0]);
    return OGI_OK;
}

const op_kernel op_kernels_rms_norm[] = {
    {"", "RMSNormalization", 23, rms_normalization},
    {NULL, NULL, 0, NULL},
};
