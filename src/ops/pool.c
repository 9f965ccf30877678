/* Pooling over the spatial dims of N x C x D1 x ... x Dn tensors (row-major):
 * MaxPool (with Indices), AveragePool, LpPool, their Global forms, and
 * MaxUnpool. Values compute in float32; every window is visited tap by tap
 * (kernel position x dilation), so dilations and padding need no special
 * paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

#define POOL_MAX_SPATIAL (OGI_MAX_RANK - 2)

typedef enum pool_kind {
    POOL_MAX,
    POOL_AVERAGE,
    POOL_LP,
} pool_kind;

typedef struct pool_geom {
    int nsp; /* spatial rank */
    int64_t batch, channels;
    int64_t in[POOL_MAX_SPATIAL];
    int64_t out[POOL_MAX_SPATIAL];
    int64_t kernel[POOL_MAX_SPATIAL];
    int64_t stride[POOL_MAX_SPATIAL];
    int64_t dilation[POOL_MAX_SPATIAL];
    int64_t pad_begin[POOL_MAX_SPATIAL];
    int64_t pad_end[POOL_MAX_SPATIAL];
    int64_t in_size, out_size, kernel_size; /* products of the above */
} pool_geom;

/* ---- float conversion ------------------------------------------------------ */

static bool pool_is_float(ogi_dtype dt)
{
    return dt == OGI_FLOAT32 || dt == OGI_FLOAT64 || dt == OGI_FLOAT16 || dt == OGI_BFLOAT16;
}

static float pool_get_f32(const void *src, ogi_dtype dt, int64_t i)
{
    switch (dt) {
    case OGI_FLOAT32:
        return ((const float *)src)[i];
    case OGI_FLOAT64:
        return (float)((const double *)src)[i];
    case OGI_FLOAT16:
        return dtype_f16_to_f32(((const uint16_t *)src)[i]);
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(((const uint16_t *)src)[i]);
    case OGI_UINT8:
        return ((const uint8_t *)src)[i];
    case OGI_INT8:
        return ((const int8_t *)src)[i];
    default:
        return 0.0f;
    }
}

/* Integer outputs only ever receive values read from the input (MaxPool). */
static void pool_set_f32(void *dst, ogi_dtype dt, int64_t i, float v)
{
    switch (dt) {
    case OGI_FLOAT32:
        ((float *)dst)[i] = v;
        break;
    case OGI_FLOAT64:
        ((double *)dst)[i] = v;
        break;
    case OGI_FLOAT16:
        ((uint16_t *)dst)[i] = dtype_f32_to_f16(v);
        break;
    case OGI_BFLOAT16:
        ((uint16_t *)dst)[i] = dtype_f32_to_bf16(v);
        break;
    case OGI_UINT8:
        ((uint8_t *)dst)[i] = (uint8_t)v;
        break;
    case OGI_INT8:
        ((int8_t *)dst)[i] = (int8_t)v;
        break;
    default:
        break;
    }
}

/* A float32 copy of t's data (t's own buffer when already float32). */
static ogi_status pool_load(const op_ctx *c, const ogi_tensor *t, const float **p, float **owned)
{
    *owned = NULL;
    *p = t->data;
    if (t->dtype == OGI_FLOAT32)
        return OGI_OK;
    int64_t n = tensor_numel(t);
    *owned = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (*owned == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for a float32 copy of input 0");
    for (int64_t i = 0; i < n; i++)
        (*owned)[i] = pool_get_f32(t->data, t->dtype, i);
    *p = *owned;
    return OGI_OK;
}

static ogi_status pool_check_input(const op_ctx *c, bool allow_int8)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    bool int8 = x->dtype == OGI_UINT8 || x->dtype == OGI_INT8;
    if (!pool_is_float(x->dtype) && !(allow_int8 && int8))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (x->rank < 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 3 (N x C x D...), got %d",
                        x->rank);
    return OGI_OK;
}

/* ---- attributes and shapes -------------------------------------------------- */

/* kernel_shape (required), strides, dilations, pads of a windowed pool. */
static ogi_status pool_read_window(const op_ctx *c, const ogi_tensor *x, pool_geom *g)
{
    memset(g, 0, sizeof(*g));
    g->nsp = x->rank - 2;
    g->batch = x->dims[0];
    g->channels = x->dims[1];
    const int64_t *k;
    int64_t nk;
    if (!op_attr_ints(c, "kernel_shape", &k, &nk))
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute kernel_shape is required");
    int64_t pads[2 * POOL_MAX_SPATIAL];
    ogi_status st;
    if ((st = op_attr_ints_exact(c, "kernel_shape", g->nsp, 1, 1, g->kernel)) != OGI_OK ||
        (st = op_attr_ints_exact(c, "strides", g->nsp, 1, 1, g->stride)) != OGI_OK ||
        (st = op_attr_ints_exact(c, "dilations", g->nsp, 1, 1, g->dilation)) != OGI_OK ||
        (st = op_attr_ints_exact(c, "pads", 2 * g->nsp, 0, 0, pads)) != OGI_OK)
        return st;
    g->in_size = 1;
    g->kernel_size = 1;
    for (int d = 0; d < g->nsp; d++) {
        g->in[d] = x->dims[d + 2];
        g->pad_begin[d] = pads[d];
        g->pad_end[d] = pads[d + g->nsp];
        g->in_size *= g->in[d];
        g->kernel_size *= g->kernel[d];
    }
    return OGI_OK;
}

static int64_t pool_effective_kernel(const pool_geom *g, int d)
{
    return (g->kernel[d] - 1) * g->dilation[d] + 1;
}

/* Output size of one spatial dim under explicit pads: floor (or ceil) of
 * (in + pads - effective kernel) / stride, plus 1; in ceil mode a last
 * window that would start inside the end padding is dropped. */
static ogi_status pool_explicit_size(const op_ctx *c, pool_geom *g, int d, bool ceil_mode)
{
    int64_t span = g->in[d] + g->pad_begin[d] + g->pad_end[d] - pool_effective_kernel(g, d);
    if (span < 0)
        return op_error(c, OGI_ERR_RUNTIME,
                        "spatial dim %d: padded input %lld is smaller than the window %lld", d,
                        (long long)(span + pool_effective_kernel(g, d)),
                        (long long)pool_effective_kernel(g, d));
    int64_t s = g->stride[d];
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= g->in[d] + g->pad_begin[d])
        out--;
    g->out[d] = out;
    return OGI_OK;
}

/* Output sizes from auto_pad (SAME_*: ceil(in / stride) with the padding
 * split around the image; VALID: no padding) or the explicit pads. */
static ogi_status pool_geom_init(const op_ctx *c, const ogi_tensor *x, pool_geom *g)
{
    ogi_status st = pool_read_window(c, x, g);
    if (st != OGI_OK)
        return st;
    const char *ap = op_attr_string(c, "auto_pad", "NOTSET");
    bool same_upper = strcmp(ap, "SAME_UPPER") == 0, same_lower = strcmp(ap, "SAME_LOWER") == 0;
    bool valid = strcmp(ap, "VALID") == 0;
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") != 0 && ap[0] != '\0')
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute auto_pad='%s' is not valid", ap);
    bool ceil_mode = op_attr_int(c, "ceil_mode", 0) != 0;
    g->out_size = 1;
    for (int d = 0; d < g->nsp; d++) {
        if (same_upper || same_lower) {
            int64_t out = (g->in[d] + g->stride[d] - 1) / g->stride[d];
            int64_t total = (out - 1) * g->stride[d] + pool_effective_kernel(g, d) - g->in[d];
            if (total < 0)
                total = 0;
            g->pad_begin[d] = same_upper ? total / 2 : total - total / 2;
            g->pad_end[d] = total - g->pad_begin[d];
            g->out[d] = out;
        } else {
            if (valid)
                g->pad_begin[d] = g->pad_end[d] = 0;
            st = pool_explicit_size(c, g, d, ceil_mode && !valid);
            if (st != OGI_OK)
                return st;
        }
        g->out_size *= g->out[d];
    }
    return OGI_OK;
}

/* ---- the window loop ------------------------------------------------------- */

typedef struct pool_job {
    const pool_geom *g;
    pool_kind kind;
    const int64_t *koff; /* koff[t * nsp + d] = tap t's offset along d */
    const float *x;
    float *y;
    bool want_indices; /* MaxPool's optional second output is read */
    int64_t *indices;  /* its data, set by pool_execute */
    bool column_major; /* storage_order 1: indices count the first dim fastest */
    bool count_pad;    /* AveragePool count_include_pad */
    float p;           /* LpPool exponent */
} pool_job;

/* The flat spatial offset of a position, in the order Indices asks for. */
static int64_t pool_index_offset(const pool_geom *g, const int64_t *pos, bool column_major)
{
    int64_t off = 0;
    if (column_major) {
        for (int d = g->nsp - 1; d >= 0; d--)
            off = off * g->in[d] + pos[d];
    } else {
        for (int d = 0; d < g->nsp; d++)
            off = off * g->in[d] + pos[d];
    }
    return off;
}

/* Reduces the window of output position o over one plane. NaNs are skipped
 * by MaxPool unless the window holds nothing else. */
static void pool_window(const pool_job *j, const float *xp, int64_t o, float *out, int64_t *index)
{
    const pool_geom *g = j->g;
    int nsp = g->nsp;
    int64_t base[POOL_MAX_SPATIAL] = {0}, pos[POOL_MAX_SPATIAL], best_pos[POOL_MAX_SPATIAL];
    for (int d = nsp - 1; d >= 0; d--) {
        base[d] = (o % g->out[d]) * g->stride[d] - g->pad_begin[d];
        o /= g->out[d];
    }
    float acc = j->kind == POOL_MAX ? -INFINITY : 0.0f;
    int64_t count = 0, padded_count = 0;
    bool found = false;
    for (int64_t t = 0; t < g->kernel_size; t++) {
        bool inside = true, in_pad = true;
        int64_t off = 0;
        for (int d = 0; d < nsp; d++) {
            pos[d] = base[d] + j->koff[t * nsp + d];
            inside = inside && pos[d] >= 0 && pos[d] < g->in[d];
            in_pad = in_pad && pos[d] >= -g->pad_begin[d] && pos[d] < g->in[d] + g->pad_end[d];
            off = off * g->in[d] + pos[d];
        }
        padded_count += in_pad;
        if (!inside)
            continue;
        float v = xp[off];
        count++;
        if (j->kind == POOL_AVERAGE) {
            acc += v;
        } else if (j->kind == POOL_LP) {
            acc += powf(fabsf(v), j->p);
        } else if (!found || v > acc || (isnan(acc) && !isnan(v))) {
            acc = v;
            found = true;
            memcpy(best_pos, pos, (size_t)nsp * sizeof(int64_t));
        }
    }
    if (j->kind == POOL_AVERAGE)
        acc /= (float)(j->count_pad ? padded_count : count);
    else if (j->kind == POOL_LP)
        acc = powf(acc, 1.0f / j->p);
    *out = acc;
    if (index != NULL)
        *index = found ? pool_index_offset(g, best_pos, j->column_major) : -1;
}

static void pool_planes(void *arg, int64_t begin, int64_t end)
{
    const pool_job *j = arg;
    const pool_geom *g = j->g;
    for (int64_t plane = begin; plane < end; plane++) {
        const float *xp = j->x + plane * g->in_size;
        float *yp = j->y + plane * g->out_size;
        for (int64_t o = 0; o < g->out_size; o++) {
            int64_t *index = j->indices ? j->indices + plane * g->out_size + o : NULL;
            pool_window(j, xp, o, yp + o, index);
            if (index != NULL && *index >= 0)
                *index += plane * g->in_size;
        }
    }
}

static ogi_status pool_kernel_offsets(const op_ctx *c, const pool_geom *g, int64_t **out)
{
    int64_t *koff = malloc((size_t)(g->kernel_size * g->nsp + 1) * sizeof(int64_t));
    if (koff == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for kernel offsets");
    for (int64_t t = 0; t < g->kernel_size; t++) {
        int64_t rem = t;
        for (int d = g->nsp - 1; d >= 0; d--) {
            koff[t * g->nsp + d] = (rem % g->kernel[d]) * g->dilation[d];
            rem /= g->kernel[d];
        }
    }
    *out = koff;
    return OGI_OK;
}

/* Allocates output 0 (N x C x out...), runs the job over every plane and
 * converts the result to the input's dtype. */
static ogi_status pool_execute(op_ctx *c, pool_job *j)
{
    const pool_geom *g = j->g;
    const ogi_tensor *x = c->in[0];
    int64_t dims[OGI_MAX_RANK] = {g->batch, g->channels};
    memcpy(dims + 2, g->out, (size_t)g->nsp * sizeof(int64_t));
    ogi_status st = op_alloc(c, 0, x->dtype, x->rank, dims);
    if (st != OGI_OK)
        return st;
    if (j->want_indices) {
        if ((st = op_alloc(c, 1, OGI_INT64, x->rank, dims)) != OGI_OK)
            return st;
        j->indices = c->out[1]->data;
    }
    ogi_tensor *y = c->out[0];
    int64_t n = tensor_numel(y);
    float *x_owned = NULL, *yf = y->dtype == OGI_FLOAT32 ? y->data : malloc((size_t)(n + 1) * 4);
    int64_t *koff = NULL;
    st = yf ? OGI_OK : op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for the output");
    if (st == OGI_OK)
        st = pool_load(c, x, &j->x, &x_owned);
    if (st == OGI_OK)
        st = pool_kernel_offsets(c, g, &koff);
    if (st == OGI_OK) {
        j->koff = koff;
        j->y = yf;
        threadpool_parallel_for(c->pool, g->batch * g->channels, 1, pool_planes, j);
        if (y->dtype != OGI_FLOAT32)
            for (int64_t i = 0; i < n; i++)
                pool_set_f32(y->data, y->dtype, i, yf[i]);
    }
    free(koff);
    free(x_owned);
    if (yf != y->data)
        free(yf);
    return st;
}

/* ---- MaxPool, AveragePool, LpPool ------------------------------------------ */

static ogi_status pool_max_run(op_ctx *c)
{
    ogi_status st = pool_check_input(c, true);
    pool_geom g;
    if (st != OGI_OK || (st = pool_geom_init(c, c->in[0], &g)) != OGI_OK)
        return st;
    int64_t order = op_attr_int(c, "storage_order", 0);
    if (order != 0 && order != 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute storage_order=%lld must be 0 or 1",
                        (long long)order);
    pool_job j = {.g = &g,
                  .kind = POOL_MAX,
                  .column_major = order == 1,
                  .want_indices = op_output_used(c, 1)};
    return pool_execute(c, &j);
}

static ogi_status pool_average_run(op_ctx *c)
{
    ogi_status st = pool_check_input(c, false);
    pool_geom g;
    if (st != OGI_OK || (st = pool_geom_init(c, c->in[0], &g)) != OGI_OK)
        return st;
    pool_job j = {
        .g = &g, .kind = POOL_AVERAGE, .count_pad = op_attr_int(c, "count_include_pad", 0) != 0};
    return pool_execute(c, &j);
}

static ogi_status pool_lp_run(op_ctx *c)
{
    ogi_status st = pool_check_input(c, false);
    pool_geom g;
    if (st != OGI_OK || (st = pool_geom_init(c, c->in[0], &g)) != OGI_OK)
        return st;
    float p = op_attr_float(c, "p", 2.0f);
    if (!(p > 0.0f))
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute p=%g must be positive", (double)p);
    pool_job j = {.g = &g, .kind = POOL_LP, .p = p};
    return pool_execute(c, &j);
}

/* ---- Global pools ----------------------------------------------------------- */

/* A window covering the whole image: one output per plane, dims 1. */
static ogi_status pool_global(op_ctx *c, pool_kind kind, float p)
{
    ogi_status st = pool_check_input(c, false);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    pool_geom g = {.nsp = x->rank - 2, .batch = x->dims[0], .channels = x->dims[1]};
    g.in_size = g.out_size = g.kernel_size = 1;
    for (int d = 0; d < g.nsp; d++) {
        g.in[d] = g.kernel[d] = x->dims[d + 2];
        g.out[d] = g.stride[d] = g.dilation[d] = 1;
        g.in_size *= g.in[d];
        g.kernel_size *= g.kernel[d];
    }
    if (g.in_size == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: empty spatial dims");
    pool_job j = {.g = &g, .kind = kind, .p = p};
    return pool_execute(c, &j);
}

static ogi_status pool_global_max_run(op_ctx *c)
{
    return pool_global(c, POOL_MAX, 0.0f);
}

static ogi_status pool_global_average_run(op_ctx *c)
{
    return pool_global(c, POOL_AVERAGE, 0.0f);
}

static ogi_status pool_global_lp_run(op_ctx *c)
{
    float p = op_attr_float(c, "p", 2.0f);
    if (!(p > 0.0f))
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute p=%g must be positive", (double)p);
    return pool_global(c, POOL_LP, p);
}

/* ---- MaxUnpool -------------------------------------------------------------- */

/* The shape MaxPool's indices refer to: per spatial dim
 * (in - 1) * stride + kernel - pads. */
static ogi_status pool_unpool_inferred(const op_ctx *c, const pool_geom *g, int64_t *dims)
{
    dims[0] = g->batch;
    dims[1] = g->channels;
    for (int d = 0; d < g->nsp; d++) {
        dims[d + 2] =
            (g->in[d] - 1) * g->stride[d] + g->kernel[d] - g->pad_begin[d] - g->pad_end[d];
        if (dims[d + 2] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "spatial dim %d: output size is negative", d);
    }
    return OGI_OK;
}

/* Input 2 (output_shape) when given: it may only enlarge the inferred shape,
 * which then sits in its leading corner as the ONNX reference places it. */
static ogi_status pool_unpool_shape(const op_ctx *c, const int64_t *inferred, int64_t *dims)
{
    int rank = c->in[0]->rank;
    if (!op_has_input(c, 2)) {
        memcpy(dims, inferred, (size_t)rank * sizeof(int64_t));
        return OGI_OK;
    }
    int64_t n;
    ogi_status st = op_read_ints(c, 2, dims, OGI_MAX_RANK, &n);
    if (st != OGI_OK)
        return st;
    if (n != rank || dims[0] != inferred[0] || dims[1] != inferred[1])
        return op_error(c, OGI_ERR_RUNTIME, "input 2: output_shape must have rank %d and keep N, C",
                        rank);
    for (int d = 2; d < rank; d++)
        if (dims[d] < inferred[d])
            return op_error(c, OGI_ERR_UNSUPPORTED,
                            "input 2: output_shape dim %d (%lld) below the inferred %lld", d,
                            (long long)dims[d], (long long)inferred[d]);
    return OGI_OK;
}

/* Re-expresses a flat offset into shape `from` as one into the larger `to`. */
static int64_t pool_reindex(int rank, const int64_t *from, const int64_t *to, int64_t i)
{
    int64_t out = 0, scale = 1;
    for (int d = rank - 1; d >= 0; d--) {
        out += (i % from[d]) * scale;
        i /= from[d];
        scale *= to[d];
    }
    return out;
}

/* y = 0, then y[indices[i]] = x[i]: the indices are MaxPool's flat offsets
 * into the whole (inferred) output tensor. */
static ogi_status pool_max_unpool_run(op_ctx *c)
{
    ogi_status st = pool_check_input(c, true);
    if (st != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *ix = c->in[1];
    if (ix->dtype != OGI_INT64 || !tensor_same_shape(x, ix))
        return op_error(c, OGI_ERR_RUNTIME, "input 1: expected int64 indices shaped like input 0");
    pool_geom g;
    int64_t inferred[OGI_MAX_RANK], dims[OGI_MAX_RANK];
    if ((st = pool_read_window(c, x, &g)) != OGI_OK ||
        (st = pool_unpool_inferred(c, &g, inferred)) != OGI_OK ||
        (st = pool_unpool_shape(c, inferred, dims)) != OGI_OK ||
        (st = op_alloc(c, 0, x->dtype, x->rank, dims)) != OGI_OK)
        return st;
    ogi_tensor *y = c->out[0];
    int64_t n_inferred = tensor_shape_numel(x->rank, inferred), n_in = tensor_numel(x);
    int esize = dtype_size(x->dtype);
    memset(y->data, 0, y->nbytes);
    const int64_t *idx = ix->data;
    for (int64_t i = 0; i < n_in; i++) {
        if (idx[i] < 0 || idx[i] >= n_inferred)
            return op_error(c, OGI_ERR_RUNTIME, "input 1: index %lld out of range [0, %lld)",
                            (long long)idx[i], (long long)n_inferred);
        int64_t at = pool_reindex(x->rank, inferred, dims, idx[i]);
        memcpy((char *)y->data + at * esize, (const char *)x->data + i * esize, (size_t)esize);
    }
    return OGI_OK;
}

const op_kernel op_kernels_pool[] = {
    {"", "MaxPool", 1, pool_max_run},
    {"", "AveragePool", 1, pool_average_run},
    {"", "LpPool", 1, pool_lp_run},
    {"", "GlobalMaxPool", 1, pool_global_max_run},
    {"", "GlobalAveragePool", 1, pool_global_average_run},
    {"", "GlobalLpPool", 1, pool_global_lp_run},
    {"", "MaxUnpool", 9, pool_max_unpool_run},
    {NULL, NULL, 0, NULL},
};
