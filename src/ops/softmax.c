/* Softmax, LogSoftmax and Hardmax along one axis.
 *
 * Opsets before 13 flatten the input to 2-D at `axis` (default 1) and
 * normalise each row of the flattened view; from 13 on the ops work along
 * the single dimension `axis` (default -1). Either way the input is seen as
 * outer x n x inner and each of the outer * inner columns of n values is
 * normalised on its own, in double after subtracting the column's max. */
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "ops/families.h"
#include "ops/vecmath.h"

typedef enum softmax_kind {
    SOFTMAX_SOFT,
    SOFTMAX_LOG,
    SOFTMAX_HARD,
} softmax_kind;

typedef struct softmax_job {
    const ogi_tensor *x;
    ogi_tensor *y;
    softmax_kind kind;
    int64_t n, inner;
    atomic_bool failed; /* a worker could not get its scratch buffer */
} softmax_job;

static void softmax_load(const ogi_tensor *x, int64_t start, int64_t n, int64_t inner, double *v)
{
    if (x->dtype == OGI_FLOAT32) {
        const float *p = (const float *)x->data + start;
        for (int64_t i = 0; i < n; i++)
            v[i] = p[i * inner];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = dtype_get_f64(x->data, x->dtype, start + i * inner);
}

static void softmax_store(ogi_tensor *y, int64_t start, int64_t n, int64_t inner, const double *v)
{
    if (y->dtype == OGI_FLOAT32) {
        float *p = (float *)y->data + start;
        for (int64_t i = 0; i < n; i++)
            p[i * inner] = (float)v[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dtype_set_f64(y->data, y->dtype, start + i * inner, v[i]);
}

/* Rewrites v[0..n) in place. */
static void softmax_column(softmax_kind kind, double *v, int64_t n)
{
    double max = -INFINITY;
    int64_t arg = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] > max || (isnan(v[i]) && !isnan(max))) {
            max = v[i];
            arg = i;
        }
    }
    if (kind == SOFTMAX_HARD) {
        for (int64_t i = 0; i < n; i++)
            v[i] = i == arg ? 1.0 : 0.0;
        return;
    }
    /* an all -inf column is left unshifted (gives NaN, as the math does) */
    double shift = isinf(max) ? 0.0 : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp(v[i] - shift);
    if (kind == SOFTMAX_LOG) {
        double log_sum = log(sum);
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] - shift - log_sum;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = exp(v[i] - shift) / sum;
}

/* The common case, a contiguous float32 row: libm's expf in float, the sum
 * in double. softmax_column() is its reference. */
static void softmax_row_f32_scalar(softmax_kind kind, const float *x, float *y, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i] > max || isnan(x[i]) ? x[i] : max;
    float shift = isinf(max) ? 0.0f : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - shift);
        sum += e;
        if (kind == SOFTMAX_SOFT)
            y[i] = e;
    }
    if (kind == SOFTMAX_LOG) {
        float log_sum = (float)log(sum);
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] - shift - log_sum;
        return;
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        y[i] *= inv;
}

/* Softmax of a float32 row with vecmath_expf, vectorised: y = e^(x - max)
 * (the exp loop is written for the compiler; max and sum take explicit
 * lanes), then y *= 1 / sum. A NaN reaches every output through the sum, as
 * in the scalar row. The max is returned for the caller to check: an
 * infinite one (all -inf or some +inf) leaves the row to the scalar code. */
VECMATH_TARGET_AVX2 static void softmax_exp_avx2(const float *x, float *y, int64_t n, float max)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = vecmath_expf(x[i] - max);
}

VECMATH_TARGET_AVX512 static void softmax_exp_avx512(const float *x, float *y, int64_t n, float max)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = vecmath_expf(x[i] - max);
}

/* Returns false, leaving y to the scalar row, where the vector path does not apply. */
static bool softmax_row_f32_vector(const float *x, float *y, int64_t n)
{
    vecmath_isa isa = vecmath_best_isa();
    if (isa == VECMATH_GENERIC)
        return false;
    float max = isa == VECMATH_AVX512 ? vecmath_max_avx512(x, n) : vecmath_max_avx2(x, n);
    if (isinf(max))
        return false;
    float sum;
    if (isa == VECMATH_AVX512) {
        softmax_exp_avx512(x, y, n, max);
        sum = vecmath_sum_avx512(y, n);
    } else {
        softmax_exp_avx2(x, y, n, max);
        sum = vecmath_sum_avx2(y, n);
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++)
        y[i] *= inv;
    return true;
}

static void softmax_row_f32(softmax_kind kind, const float *x, float *y, int64_t n)
{
    if (kind == SOFTMAX_SOFT && softmax_row_f32_vector(x, y, n))
        return;
    softmax_row_f32_scalar(kind, x, y, n);
}
/* Columns [begin, end) of the outer * inner columns. */
static void softmax_columns(void *arg, int64_t begin, int64_t end)
{
    softmax_job *job = arg;
    if (job->inner == 1 && job->x->dtype == OGI_FLOAT32 && job->kind != SOFTMAX_HARD) {
        for (int64_t row = begin; row < end; row++)
            softmax_row_f32(job->kind, (const float *)job->x->data + row * job->n,
                            (float *)job->y->data + row * job->n, job->n);
        return;
    }
    double *v = malloc((size_t)(job->n + 1) * sizeof(double));
    if (v == NULL) {
        atomic_store(&job->failed, true);
        return;
    }
    for (int64_t col = begin; col < end; col++) {
        int64_t o = col / job->inner, i = col % job->inner;
        int64_t start = o * job->n * job->inner + i;
        softmax_load(job->x, start, job->n, job->inner, v);
        softmax_column(job->kind, v, job->n);
        softmax_store(job->y, start, job->n, job->inner, v);
    }
    free(v);
}

static ogi_status softmax_run(op_ctx *c, softmax_kind kind)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    bool flatten = c->opset < 13;
    int rank = x->rank;
    int64_t axis_attr = op_attr_int(c, "axis", flatten ? 1 : -1);
    int axis = rank;
    /* the 2-D view of axis == rank is [numel, 1]: the old default for 1-D */
    if (!flatten || (axis_attr != rank && rank > 0)) {
        st = op_normalize_axis(c, axis_attr, rank > 0 ? rank : 1, &axis);
        if (st != OGI_OK)
            return st;
    }
    softmax_job job = {.x = x, .kind = kind, .n = 1, .inner = 1};
    atomic_init(&job.failed, false);
    int64_t outer = 1;
    for (int d = 0; d < rank; d++) {
        if (d < axis)
            outer *= x->dims[d];
        else if (d == axis || flatten)
            job.n *= x->dims[d];
        else
            job.inner *= x->dims[d];
    }
    st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    job.y = c->out[0];
    int64_t columns = outer * job.inner;
    if (columns == 0 || job.n == 0)
        return OGI_OK;
    int64_t min_chunk = 1 + 4096 / job.n;
    threadpool_parallel_for(c->pool, columns, min_chunk, softmax_columns, &job);
    if (atomic_load(&job.failed))
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    return OGI_OK;
}

static ogi_status softmax_soft(op_ctx *c)
{
    return softmax_run(c, SOFTMAX_SOFT);
}

static ogi_status softmax_log(op_ctx *c)
{
    return softmax_run(c, SOFTMAX_LOG);
}

static ogi_status softmax_hard(op_ctx *c)
{
    return softmax_run(c, SOFTMAX_HARD);
}

const op_kernel op_kernels_softmax[] = {
    {"", "Softmax", 1, softmax_soft},
    {"", "LogSoftmax", 1, softmax_log},
    {"", "Hardmax", 1, softmax_hard},
    {NULL, NULL, 0, NULL},
};
