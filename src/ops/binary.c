/* Element-wise ops over numpy-broadcast inputs: Add, Sub, Mul, Div, Pow,
 * Mod, BitShift, bitwise and logical ops, comparisons, Where, the variadic
 * Max, Min, Sum and Mean, and PRelu.
 *
 * The output is walked as rows of the broadcast shape, or as one flat run
 * when no input is replicated along an axis (same shape or one element).
 * Runs are cut into blocks whose values are loaded into a common domain —
 * double for float types, int64 for signed and uint64 for unsigned and bool
 * — combined by the op's block function, and narrowed back on store (so
 * integer arithmetic wraps like the narrow type). float32 Add, Sub, Mul,
 * Div, Pow and all of Where have direct loops: they run on large tensors
 * inside models. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/families.h"

#define ELEM_BLOCK 256
/* Elements per thread task: below this, threading costs more than it saves. */
#define ELEM_MIN_CHUNK 16384

typedef enum elem_domain { ELEM_F64, ELEM_I64, ELEM_U64 } elem_domain;

typedef union elem_block {
    double f[ELEM_BLOCK];
    int64_t i[ELEM_BLOCK];
    uint64_t u[ELEM_BLOCK];
} elem_block;

/* Kinds of element type, as bit flags for the set an op accepts. */
enum {
    ELEM_KIND_FLOAT = 1,
    ELEM_KIND_SIGNED = 2,
    ELEM_KIND_UNSIGNED = 4,
    ELEM_KIND_BOOL = 8,
    ELEM_KIND_INTEGER = ELEM_KIND_SIGNED | ELEM_KIND_UNSIGNED,
    ELEM_KIND_NUMERIC = ELEM_KIND_FLOAT | ELEM_KIND_INTEGER,
};

static unsigned elem_kind(ogi_dtype dt)
{
    if (dtype_is_float(dt))
        return ELEM_KIND_FLOAT;
    if (dtype_is_signed(dt))
        return ELEM_KIND_SIGNED;
    if (dtype_is_integer(dt))
        return ELEM_KIND_UNSIGNED;
    return dt == OGI_BOOL ? ELEM_KIND_BOOL : 0;
}

static elem_domain elem_domain_of(ogi_dtype dt)
{
    if (dtype_is_float(dt))
        return ELEM_F64;
    return dtype_is_signed(dt) ? ELEM_I64 : ELEM_U64;
}

/* Loads n values of t from element off on, stride apart. Unsigned values
 * land as their bits (zero-extended), which the U64 domain reads. */
static void elem_load(const ogi_tensor *t, int64_t off, int64_t stride, int n, elem_domain d,
                      elem_block *dst)
{
    if (d == ELEM_F64 && t->dtype == OGI_FLOAT32) {
        const float *src = (const float *)t->data + off;
        for (int k = 0; k < n; k++)
            dst->f[k] = src[k * stride];
    } else if (d == ELEM_F64) {
        for (int k = 0; k < n; k++)
            dst->f[k] = dtype_get_f64(t->data, t->dtype, off + k * stride);
    } else if (t->dtype == OGI_INT64) {
        const int64_t *src = (const int64_t *)t->data + off;
        for (int k = 0; k < n; k++)
            dst->i[k] = src[k * stride];
    } else {
        for (int k = 0; k < n; k++)
            dst->i[k] = dtype_get_i64(t->data, t->dtype, off + k * stride);
    }
}

/* Stores n contiguous values at element off of t, converting like C. */
static void elem_store(ogi_tensor *t, int64_t off, int n, elem_domain d, const elem_block *src)
{
    if (d == ELEM_F64 && t->dtype == OGI_FLOAT32) {
        float *dst = (float *)t->data + off;
        for (int k = 0; k < n; k++)
            dst[k] = (float)src->f[k];
    } else if (d == ELEM_F64) {
        for (int k = 0; k < n; k++)
            dtype_set_f64(t->data, t->dtype, off + k, src->f[k]);
    } else if (t->dtype == OGI_INT64) {
        memcpy((int64_t *)t->data + off, src->i, sizeof(int64_t) * (size_t)n);
    } else {
        for (int k = 0; k < n; k++)
            dtype_set_i64(t->data, t->dtype, off + k, src->i[k]);
    }
}

/* ---- block functions: y[k] = a[k] op b[k], k < n; y may be a ------------- */

typedef void (*elem_fn)(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                        int n);

/* Integer add/sub/mul go through uint64 so that they wrap instead of
 * overflowing; the store then narrows to the tensor's type. */
static void elem_add(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] + b->f[k];
        else
            y->u[k] = a->u[k] + b->u[k];
    }
}

static void elem_sub(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] - b->f[k];
        else
            y->u[k] = a->u[k] - b->u[k];
    }
}

static void elem_mul(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] * b->f[k];
        else
            y->u[k] = a->u[k] * b->u[k];
    }
}

/* Integer division truncates toward zero like C; x / 0 gives 0 (as numpy
 * does) rather than trapping, and INT64_MIN / -1 wraps. */
static int64_t elem_div_i64(int64_t a, int64_t b)
{
    if (b == 0)
        return 0;
    if (b == -1)
        return (int64_t)(0 - (uint64_t)a);
    return a / b;
}

static void elem_div(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] / b->f[k];
        else if (d == ELEM_I64)
            y->i[k] = elem_div_i64(a->i[k], b->i[k]);
        else
            y->u[k] = b->u[k] ? a->u[k] / b->u[k] : 0;
    }
}

/* C's remainder: the sign of the dividend (Mod with fmod=1). */
static int64_t elem_rem_i64(int64_t a, int64_t b)
{
    return b == 0 || b == -1 ? 0 : a % b;
}

/* Python's remainder: the sign of the divisor (Mod with fmod=0). */
static int64_t elem_mod_i64(int64_t a, int64_t b)
{
    int64_t r = elem_rem_i64(a, b);
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

static double elem_mod_f64(double a, double b)
{
    double r = fmod(a, b);
    if (r != 0 && (r < 0) != (b < 0))
        return r + b;
    return r == 0 ? copysign(0.0, b) : r;
}

static void elem_fmod(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = fmod(a->f[k], b->f[k]);
        else if (d == ELEM_I64)
            y->i[k] = elem_rem_i64(a->i[k], b->i[k]);
        else
            y->u[k] = b->u[k] ? a->u[k] % b->u[k] : 0;
    }
}

static void elem_mod(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = elem_mod_f64(a->f[k], b->f[k]);
        else if (d == ELEM_I64)
            y->i[k] = elem_mod_i64(a->i[k], b->i[k]);
        else
            y->u[k] = b->u[k] ? a->u[k] % b->u[k] : 0;
    }
}

/* Shifts by the type's width or more give 0 (as numpy does); values are
 * zero-extended, so a right shift never brings in stray bits. */
static void elem_shift_left(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                            int n)
{
    (void)d;
    for (int k = 0; k < n; k++)
        y->u[k] = b->u[k] < 64 ? a->u[k] << b->u[k] : 0;
}

static void elem_shift_right(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                             int n)
{
    (void)d;
    for (int k = 0; k < n; k++)
        y->u[k] = b->u[k] < 64 ? a->u[k] >> b->u[k] : 0;
}

/* Bitwise ops serve And/Or/Xor too: bool values load as 0 or 1. */
static void elem_bit_and(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                         int n)
{
    (void)d;
    for (int k = 0; k < n; k++)
        y->u[k] = a->u[k] & b->u[k];
}

static void elem_bit_or(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                        int n)
{
    (void)d;
    for (int k = 0; k < n; k++)
        y->u[k] = a->u[k] | b->u[k];
}

static void elem_bit_xor(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                         int n)
{
    (void)d;
    for (int k = 0; k < n; k++)
        y->u[k] = a->u[k] ^ b->u[k];
}

/* Comparisons write 0 or 1; NaN compares false (unequal). */
static void elem_equal(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                       int n)
{
    for (int k = 0; k < n; k++)
        y->u[k] = d == ELEM_F64 ? a->f[k] == b->f[k] : a->u[k] == b->u[k];
}

static void elem_less(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->u[k] = a->f[k] < b->f[k];
        else if (d == ELEM_I64)
            y->u[k] = a->i[k] < b->i[k];
        else
            y->u[k] = a->u[k] < b->u[k];
    }
}

static void elem_less_equal(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                            int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->u[k] = a->f[k] <= b->f[k];
        else if (d == ELEM_I64)
            y->u[k] = a->i[k] <= b->i[k];
        else
            y->u[k] = a->u[k] <= b->u[k];
    }
}

static void elem_greater(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                         int n)
{
    elem_less(d, b, a, y, n);
}

static void elem_greater_equal(elem_domain d, const elem_block *a, const elem_block *b,
                               elem_block *y, int n)
{
    elem_less_equal(d, b, a, y, n);
}

/* Max and Min propagate NaN, as numpy's maximum and minimum do. */
static void elem_max(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] > b->f[k] || isnan(a->f[k]) ? a->f[k] : b->f[k];
        else if (d == ELEM_I64)
            y->i[k] = a->i[k] > b->i[k] ? a->i[k] : b->i[k];
        else
            y->u[k] = a->u[k] > b->u[k] ? a->u[k] : b->u[k];
    }
}

static void elem_min(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y, int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] < b->f[k] || isnan(a->f[k]) ? a->f[k] : b->f[k];
        else if (d == ELEM_I64)
            y->i[k] = a->i[k] < b->i[k] ? a->i[k] : b->i[k];
        else
            y->u[k] = a->u[k] < b->u[k] ? a->u[k] : b->u[k];
    }
}

/* PRelu: a is x, b the slope. */
static void elem_prelu(elem_domain d, const elem_block *a, const elem_block *b, elem_block *y,
                       int n)
{
    for (int k = 0; k < n; k++) {
        if (d == ELEM_F64)
            y->f[k] = a->f[k] < 0 ? a->f[k] * b->f[k] : a->f[k];
        else if (d == ELEM_I64)
            y->u[k] = a->i[k] < 0 ? a->u[k] * b->u[k] : a->u[k];
        else
            y->u[k] = a->u[k];
    }
}

/* Integer power by squaring, wrapping like repeated multiplication.
 * Negative exponents give the truncated reciprocal (0 unless |base| is 1). */
static int64_t elem_ipow(int64_t base, uint64_t e, bool e_negative)
{
    if (e_negative) {
        if (base == 1)
            return 1;
        if (base == -1)
            return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, b = (uint64_t)base;
    for (; e != 0; e >>= 1) {
        if (e & 1)
            r *= b;
        b *= b;
    }
    return (int64_t)r;
}

/* ---- float32 row loops ---------------------------------------------------- */

/* y[i] = a[i * sa] op b[i * sb]; strides 0 and 1 get loops that vectorise. */
typedef void (*elem_f32_fn)(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                            int64_t n);

static void elem_f32_add(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                         int64_t n)
{
    if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    } else if (sa == 1 && sb == 0) {
        float s = b[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] + s;
    } else if (sa == 0 && sb == 1) {
        float s = a[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = s + b[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i * sa] + b[i * sb];
    }
}

static void elem_f32_sub(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                         int64_t n)
{
    if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] - b[i];
    } else if (sa == 1 && sb == 0) {
        float s = b[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] - s;
    } else if (sa == 0 && sb == 1) {
        float s = a[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = s - b[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i * sa] - b[i * sb];
    }
}

static void elem_f32_mul(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                         int64_t n)
{
    if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] * b[i];
    } else if (sa == 1 && sb == 0) {
        float s = b[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] * s;
    } else if (sa == 0 && sb == 1) {
        float s = a[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = s * b[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i * sa] * b[i * sb];
    }
}

static void elem_f32_div(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                         int64_t n)
{
    if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] / b[i];
    } else if (sa == 1 && sb == 0) {
        float s = b[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i] / s;
    } else if (sa == 0 && sb == 1) {
        float s = a[0];
        for (int64_t i = 0; i < n; i++)
            y[i] = s / b[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i * sa] / b[i * sb];
    }
}

/* x ** 2 (as in layer-norm variances) is a multiply; the rest is powf. */
static void elem_f32_pow(const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                         int64_t n)
{
    if (sb == 0 && b[0] == 2.0f) {
        for (int64_t i = 0; i < n; i++)
            y[i] = a[i * sa] * a[i * sa];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = powf(a[i * sa], b[i * sb]);
}

/* Row loops on bytes (bool And, Or, Xor) and int64 comparisons (the mask
 * arithmetic of exported graphs), written for the vectoriser. */
typedef void (*elem_u8_fn)(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y,
                           int64_t n);

static void elem_u8_and(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y, int64_t n)
{
    const uint8_t *x = a, *z = b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i * sa] & z[i * sb];
}

static void elem_u8_or(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y, int64_t n)
{
    const uint8_t *x = a, *z = b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i * sa] | z[i * sb];
}

static void elem_u8_xor(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y, int64_t n)
{
    const uint8_t *x = a, *z = b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i * sa] ^ z[i * sb];
}

static void elem_i64_less(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y,
                          int64_t n)
{
    const int64_t *x = a, *z = b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i * sa] < z[i * sb];
}

static void elem_i64_less_equal(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y,
                                int64_t n)
{
    const int64_t *x = a, *z = b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i * sa] <= z[i * sb];
}

static void elem_i64_greater(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y,
                             int64_t n)
{
    elem_i64_less(b, sb, a, sa, y, n);
}

static void elem_i64_greater_equal(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y,
                                   int64_t n)
{
    elem_i64_less_equal(b, sb, a, sa, y, n);
}

static void elem_i64_equal(const void *a, int64_t sa, const void *b, int64_t sb, uint8_t *y,
                           int64_t n)
{
    const int64_t *x = a, *z = b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i * sa] == z[i * sb];
}

/* ---- walking the broadcast output ---------------------------------------- */

struct elem_job;

/* Computes n contiguous output elements from element out_off on; input k
 * starts at element offs[k] and advances by strides[k]. */
typedef void (*elem_span_fn)(const struct elem_job *j, const int64_t *offs, const int64_t *strides,
                             int64_t out_off, int64_t n);

typedef struct elem_job {
    const op_bcast *b;
    int n_in;
    const ogi_tensor *const *in;
    ogi_tensor *out;
    elem_span_fn span;
    elem_fn fn;             /* block function, for the generic spans */
    elem_f32_fn f32;        /* row loop, for the float32 span */
    elem_u8_fn u8;          /* row loop, for the byte-output span */
    elem_domain domain;     /* where inputs are loaded and combined */
    elem_domain out_domain; /* what the block function writes */
    bool mean;              /* variadic: divide the sum by n_in */
    bool flat;              /* no input replicated: one run, flat_strides */
    int64_t flat_strides[OP_BCAST_MAX_INPUTS];
} elem_job;

static void elem_worker(void *arg, int64_t begin, int64_t end)
{
    const elem_job *j = arg;
    int64_t offs[OP_BCAST_MAX_INPUTS], strides[OP_BCAST_MAX_INPUTS];
    if (j->flat) {
        for (int k = 0; k < j->n_in; k++)
            offs[k] = begin * j->flat_strides[k];
        j->span(j, offs, j->flat_strides, begin, end - begin);
        return;
    }
    int last = j->b->rank - 1; /* >= 0: a rank-0 output is always flat */
    for (int k = 0; k < j->n_in; k++)
        strides[k] = j->b->strides[k][last];
    for (int64_t row = begin; row < end; row++) {
        op_bcast_row(j->b, row, offs);
        j->span(j, offs, strides, row * j->b->inner, j->b->inner);
    }
}

/* Runs the job's span over the whole output, split across the pool. */
static void elem_execute(op_ctx *c, elem_job *j)
{
    const op_bcast *b = j->b;
    int64_t numel = tensor_shape_numel(b->rank, b->dims);
    if (numel <= 0)
        return;
    j->flat = true;
    for (int k = 0; k < j->n_in; k++) {
        int64_t n = tensor_numel(j->in[k]);
        /* an input with the output's element count has the output's layout */
        j->flat_strides[k] = n == 1 ? 0 : 1;
        if (n != 1 && n != numel)
            j->flat = false;
    }
    if (j->flat) {
        threadpool_parallel_for(c->pool, numel, ELEM_MIN_CHUNK, elem_worker, j);
        return;
    }
    int64_t rows_per_task = ELEM_MIN_CHUNK / b->inner;
    threadpool_parallel_for(c->pool, b->rows, rows_per_task > 0 ? rows_per_task : 1, elem_worker,
                            j);
}

static int elem_block_len(int64_t n, int64_t k0)
{
    return n - k0 < ELEM_BLOCK ? (int)(n - k0) : ELEM_BLOCK;
}

static void elem_binary_span(const elem_job *j, const int64_t *offs, const int64_t *strides,
                             int64_t out_off, int64_t n)
{
    elem_block a, b, y;
    for (int64_t k0 = 0; k0 < n; k0 += ELEM_BLOCK) {
        int m = elem_block_len(n, k0);
        elem_load(j->in[0], offs[0] + k0 * strides[0], strides[0], m, j->domain, &a);
        elem_load(j->in[1], offs[1] + k0 * strides[1], strides[1], m, j->domain, &b);
        j->fn(j->domain, &a, &b, &y, m);
        elem_store(j->out, out_off + k0, m, j->out_domain, &y);
    }
}

static void elem_f32_span(const elem_job *j, const int64_t *offs, const int64_t *strides,
                          int64_t out_off, int64_t n)
{
    const float *a = (const float *)j->in[0]->data + offs[0];
    const float *b = (const float *)j->in[1]->data + offs[1];
    j->f32(a, strides[0], b, strides[1], (float *)j->out->data + out_off, n);
}

static void elem_u8_span(const elem_job *j, const int64_t *offs, const int64_t *strides,
                         int64_t out_off, int64_t n)
{
    size_t es = (size_t)dtype_size(j->in[0]->dtype);
    const char *a = (const char *)j->in[0]->data + (size_t)offs[0] * es;
    const char *b = (const char *)j->in[1]->data + (size_t)offs[1] * es;
    j->u8(a, strides[0], b, strides[1], (uint8_t *)j->out->data + out_off, n);
}

/* Folds inputs left to right with the block function (Max, Min, Sum, Mean). */
static void elem_variadic_span(const elem_job *j, const int64_t *offs, const int64_t *strides,
                               int64_t out_off, int64_t n)
{
    elem_block acc, next;
    for (int64_t k0 = 0; k0 < n; k0 += ELEM_BLOCK) {
        int m = elem_block_len(n, k0);
        elem_load(j->in[0], offs[0] + k0 * strides[0], strides[0], m, j->domain, &acc);
        for (int i = 1; i < j->n_in; i++) {
            elem_load(j->in[i], offs[i] + k0 * strides[i], strides[i], m, j->domain, &next);
            j->fn(j->domain, &acc, &next, &acc, m);
        }
        for (int k = 0; j->mean && k < m; k++)
            acc.f[k] /= j->n_in;
        elem_store(j->out, out_off + k0, m, j->domain, &acc);
    }
}

/* Pow: a float base takes any exponent as double; an integer base raised
 * to a float exponent goes through double and truncates (as the ONNX
 * reference casts numpy's result), to an integer exponent stays exact. */
static void elem_pow_span(const elem_job *j, const int64_t *offs, const int64_t *strides,
                          int64_t out_off, int64_t n)
{
    ogi_dtype exp_dtype = j->in[1]->dtype;
    elem_domain base_d = j->domain;
    elem_domain exp_d = base_d == ELEM_F64 ? ELEM_F64 : elem_domain_of(exp_dtype);
    elem_domain out_d = exp_d == ELEM_F64 ? ELEM_F64 : ELEM_I64;
    elem_block a, b, y;
    for (int64_t k0 = 0; k0 < n; k0 += ELEM_BLOCK) {
        int m = elem_block_len(n, k0);
        elem_load(j->in[0], offs[0] + k0 * strides[0], strides[0], m, base_d, &a);
        elem_load(j->in[1], offs[1] + k0 * strides[1], strides[1], m, exp_d, &b);
        for (int k = 0; k < m; k++) {
            if (base_d == ELEM_F64)
                y.f[k] = pow(a.f[k], b.f[k]);
            else if (exp_d == ELEM_F64)
                y.f[k] = pow((double)a.i[k], b.f[k]);
            else
                y.i[k] = elem_ipow(a.i[k], b.u[k], exp_d == ELEM_I64 && b.i[k] < 0);
        }
        elem_store(j->out, out_off + k0, m, out_d, &y);
    }
}

/* Where on 4-byte elements (float32, int32): the layouts of attention
 * masks — everything contiguous, or one branch a scalar — get loops the
 * compiler vectorises. */
static void elem_where_u32(const uint8_t *cond, int64_t sc, const uint32_t *x, int64_t sx,
                           const uint32_t *y, int64_t sy, uint32_t *out, int64_t n)
{
    if (sc == 1 && sx == 1 && sy == 1) {
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i] ? x[i] : y[i];
    } else if (sc == 1 && sx == 1 && sy == 0) {
        uint32_t yv = y[0];
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i] ? x[i] : yv;
    } else if (sc == 1 && sx == 0 && sy == 1) {
        uint32_t xv = x[0];
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i] ? xv : y[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i * sc] ? x[i * sx] : y[i * sy];
    }
}

/* Where copies elements by size, so it serves every byte-sized dtype. */
static void elem_where_span(const elem_job *j, const int64_t *offs, const int64_t *strides,
                            int64_t out_off, int64_t n)
{
    const uint8_t *cond = (const uint8_t *)j->in[0]->data + offs[0];
    int64_t sc = strides[0], sx = strides[1], sy = strides[2];
    switch (dtype_size(j->out->dtype)) {
    case 1: {
        const uint8_t *x = (const uint8_t *)j->in[1]->data + offs[1];
        const uint8_t *y = (const uint8_t *)j->in[2]->data + offs[2];
        uint8_t *out = (uint8_t *)j->out->data + out_off;
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i * sc] ? x[i * sx] : y[i * sy];
        break;
    }
    case 2: {
        const uint16_t *x = (const uint16_t *)j->in[1]->data + offs[1];
        const uint16_t *y = (const uint16_t *)j->in[2]->data + offs[2];
        uint16_t *out = (uint16_t *)j->out->data + out_off;
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i * sc] ? x[i * sx] : y[i * sy];
        break;
    }
    case 4:
        elem_where_u32(cond, sc, (const uint32_t *)j->in[1]->data + offs[1], sx,
                       (const uint32_t *)j->in[2]->data + offs[2], sy,
                       (uint32_t *)j->out->data + out_off, n);
        break;
    case 8: {
        const uint64_t *x = (const uint64_t *)j->in[1]->data + offs[1];
        const uint64_t *y = (const uint64_t *)j->in[2]->data + offs[2];
        uint64_t *out = (uint64_t *)j->out->data + out_off;
        for (int64_t i = 0; i < n; i++)
            out[i] = cond[i * sc] ? x[i * sx] : y[i * sy];
        break;
    }
    default:
        break;
    }
}

/* ---- validation ------------------------------------------------------------ */

static ogi_status elem_unsupported(op_ctx *c, int i)
{
    return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                    ogi_dtype_name(c->in[i]->dtype));
}

/* Checks inputs [first, first + n) are present and share one dtype. */
static ogi_status elem_check_inputs(op_ctx *c, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        ogi_status st = op_require_input(c, i);
        if (st != OGI_OK)
            return st;
        if (c->in[i]->dtype != c->in[first]->dtype)
            return op_error(
                c, OGI_ERR_INVALID_MODEL, "input %d: dtype %s differs from input %d (%s)", i,
                ogi_dtype_name(c->in[i]->dtype), first, ogi_dtype_name(c->in[first]->dtype));
    }
    return OGI_OK;
}

/* Checks input i is present with a dtype of an accepted kind. */
static ogi_status elem_check_kind(op_ctx *c, int i, unsigned kinds)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    if ((elem_kind(c->in[i]->dtype) & kinds) == 0)
        return elem_unsupported(c, i);
    return OGI_OK;
}

/* Before opset 7, B broadcast to A only under broadcast=1, with B's dims
 * lined up from A's dim `axis` (default: trailing). Rewrites B as a view
 * with trailing 1s so numpy broadcasting gives the same result. */
static ogi_status elem_legacy_view(op_ctx *c, ogi_tensor *view)
{
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    *view = *b;
    if (op_attr_int(c, "broadcast", 0) == 0) {
        if (!tensor_same_shape(a, b))
            return op_error(c, OGI_ERR_RUNTIME, "input shapes differ and broadcast=0");
        return OGI_OK;
    }
    int64_t axis = op_attr_int(c, "axis", a->rank - b->rank);
    if (axis < 0)
        axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute axis=%lld out of range for ranks %d, %d", (long long)axis,
                        a->rank, b->rank);
    view->rank = a->rank - (int)axis;
    for (int d = b->rank; d < view->rank; d++)
        view->dims[d] = 1;
    return OGI_OK;
}

/* ---- the binary ops ---------------------------------------------------------- */

typedef struct bin_op {
    unsigned kinds;      /* accepted dtype kinds (both inputs share the dtype) */
    bool bool_out;       /* comparisons: output is bool */
    bool unidirectional; /* PRelu: only input 1 may be broadcast */
    elem_fn fn;
    elem_f32_fn f32;      /* optional float32 row loop */
    elem_u8_fn bool_rows; /* optional row loop of bool inputs */
    elem_u8_fn i64_rows;  /* optional row loop of int64 inputs (comparisons) */
} bin_op;

static ogi_status bin_run(op_ctx *c, const bin_op *op)
{
    ogi_status st = elem_check_inputs(c, 0, 2);
    if (st != OGI_OK)
        return st;
    if ((st = elem_check_kind(c, 0, op->kinds)) != OGI_OK)
        return st;
    ogi_tensor legacy;
    const ogi_tensor *ins[2] = {c->in[0], c->in[1]};
    if (c->opset < 7 && !op->unidirectional) {
        if ((st = elem_legacy_view(c, &legacy)) != OGI_OK)
            return st;
        ins[1] = &legacy;
    }
    op_bcast b;
    if ((st = op_bcast_init(c, &b, 2, ins)) != OGI_OK)
        return st;
    if (op->unidirectional &&
        (b.rank != ins[0]->rank || memcmp(b.dims, ins[0]->dims, sizeof(int64_t) * b.rank) != 0))
        return op_error(c, OGI_ERR_RUNTIME, "input 1 does not broadcast to the shape of input 0");
    ogi_dtype dt = ins[0]->dtype;
    if ((st = op_alloc(c, 0, op->bool_out ? OGI_BOOL : dt, b.rank, b.dims)) != OGI_OK)
        return st;
    elem_job j = {.b = &b, .n_in = 2, .in = ins, .out = c->out[0], .fn = op->fn, .f32 = op->f32};
    j.domain = elem_domain_of(dt);
    j.out_domain = op->bool_out ? ELEM_U64 : j.domain;
    j.span = dt == OGI_FLOAT32 && op->f32 ? elem_f32_span : elem_binary_span;
    j.u8 = dt == OGI_BOOL ? op->bool_rows : dt == OGI_INT64 ? op->i64_rows : NULL;
    if (j.u8 != NULL)
        j.span = elem_u8_span;
    elem_execute(c, &j);
    return OGI_OK;
}

static ogi_status bin_add(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC, .fn = elem_add, .f32 = elem_f32_add};
    return bin_run(c, &op);
}

static ogi_status bin_sub(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC, .fn = elem_sub, .f32 = elem_f32_sub};
    return bin_run(c, &op);
}

static ogi_status bin_mul(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC, .fn = elem_mul, .f32 = elem_f32_mul};
    return bin_run(c, &op);
}

static ogi_status bin_div(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC, .fn = elem_div, .f32 = elem_f32_div};
    return bin_run(c, &op);
}

static ogi_status bin_mod(op_ctx *c)
{
    static const bin_op c_rem = {.kinds = ELEM_KIND_NUMERIC, .fn = elem_fmod};
    static const bin_op py_mod = {.kinds = ELEM_KIND_NUMERIC, .fn = elem_mod};
    return bin_run(c, op_attr_int(c, "fmod", 0) != 0 ? &c_rem : &py_mod);
}

static ogi_status bin_bit_shift(op_ctx *c)
{
    static const bin_op left = {.kinds = ELEM_KIND_UNSIGNED, .fn = elem_shift_left};
    static const bin_op right = {.kinds = ELEM_KIND_UNSIGNED, .fn = elem_shift_right};
    const char *direction = op_attr_string(c, "direction", "");
    if (strcmp(direction, "LEFT") == 0)
        return bin_run(c, &left);
    if (strcmp(direction, "RIGHT") == 0)
        return bin_run(c, &right);
    return op_error(c, OGI_ERR_INVALID_MODEL, "attribute direction='%s': expected LEFT or RIGHT",
                    direction);
}

static ogi_status bin_bitwise_and(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_INTEGER, .fn = elem_bit_and};
    return bin_run(c, &op);
}

static ogi_status bin_bitwise_or(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_INTEGER, .fn = elem_bit_or};
    return bin_run(c, &op);
}

static ogi_status bin_bitwise_xor(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_INTEGER, .fn = elem_bit_xor};
    return bin_run(c, &op);
}

static ogi_status bin_and(op_ctx *c)
{
    static const bin_op op = {
        .kinds = ELEM_KIND_BOOL, .bool_out = true, .fn = elem_bit_and, .bool_rows = elem_u8_and};
    return bin_run(c, &op);
}

static ogi_status bin_or(op_ctx *c)
{
    static const bin_op op = {
        .kinds = ELEM_KIND_BOOL, .bool_out = true, .fn = elem_bit_or, .bool_rows = elem_u8_or};
    return bin_run(c, &op);
}

static ogi_status bin_xor(op_ctx *c)
{
    static const bin_op op = {
        .kinds = ELEM_KIND_BOOL, .bool_out = true, .fn = elem_bit_xor, .bool_rows = elem_u8_xor};
    return bin_run(c, &op);
}

/* Equal on strings: out[i] = (a[i] == b[i]) byte for byte, with numpy
 * broadcasting (string inputs exist from opset 19; no legacy broadcast). */
static ogi_status bin_equal_strings(op_ctx *c)
{
    ogi_status st = elem_check_inputs(c, 0, 2);
    if (st != OGI_OK)
        return st;
    if (c->opset < 7)
        return op_error(c, OGI_ERR_UNSUPPORTED, "string inputs need opset 7 or later");
    op_bcast b;
    if ((st = op_bcast_init(c, &b, 2, c->in)) != OGI_OK)
        return st;
    if ((st = op_alloc(c, 0, OGI_BOOL, b.rank, b.dims)) != OGI_OK)
        return st;
    const ogi_string *x = c->in[0]->data, *y = c->in[1]->data;
    uint8_t *out = c->out[0]->data;
    int64_t sx = b.rank > 0 ? b.strides[0][b.rank - 1] : 0;
    int64_t sy = b.rank > 0 ? b.strides[1][b.rank - 1] : 0;
    for (int64_t row = 0; row < b.rows; row++) {
        int64_t off[2];
        op_bcast_row(&b, row, off);
        for (int64_t k = 0; k < b.inner; k++)
            out[row * b.inner + k] = tensor_string_equal(&x[off[0] + k * sx], &y[off[1] + k * sy]);
    }
    return OGI_OK;
}

static ogi_status bin_equal(op_ctx *c)
{
    if (op_has_input(c, 0) && c->in[0]->dtype == OGI_STRING)
        return bin_equal_strings(c);
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC | ELEM_KIND_BOOL,
                              .bool_out = true,
                              .fn = elem_equal,
                              .i64_rows = elem_i64_equal};
    return bin_run(c, &op);
}

static ogi_status bin_less(op_ctx *c)
{
    static const bin_op op = {
        .kinds = ELEM_KIND_NUMERIC, .bool_out = true, .fn = elem_less, .i64_rows = elem_i64_less};
    return bin_run(c, &op);
}

static ogi_status bin_less_equal(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC,
                              .bool_out = true,
                              .fn = elem_less_equal,
                              .i64_rows = elem_i64_less_equal};
    return bin_run(c, &op);
}

static ogi_status bin_greater(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC,
                              .bool_out = true,
                              .fn = elem_greater,
                              .i64_rows = elem_i64_greater};
    return bin_run(c, &op);
}

static ogi_status bin_greater_equal(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC,
                              .bool_out = true,
                              .fn = elem_greater_equal,
                              .i64_rows = elem_i64_greater_equal};
    return bin_run(c, &op);
}

static ogi_status bin_prelu(op_ctx *c)
{
    static const bin_op op = {.kinds = ELEM_KIND_NUMERIC, .unidirectional = true, .fn = elem_prelu};
    return bin_run(c, &op);
}

/* Before opset 7 a 1-D slope of x's channel count applies per channel
 * (axis 1), not along the last axis: view it as [C, 1, ..., 1]. */
static ogi_status bin_prelu_legacy(op_ctx *c)
{
    if (!op_has_input(c, 0) || !op_has_input(c, 1))
        return bin_prelu(c);
    const ogi_tensor *x = c->in[0], *slope = c->in[1];
    if (slope->rank != 1 || x->rank < 2 || slope->dims[0] != x->dims[1] || slope->dims[0] == 1)
        return bin_prelu(c);
    ogi_tensor channel = *slope;
    channel.rank = x->rank - 1;
    channel.dims[0] = slope->dims[0];
    for (int d = 1; d < channel.rank; d++)
        channel.dims[d] = 1;
    const ogi_tensor *ins[2] = {x, &channel};
    op_ctx legacy = *c;
    legacy.in = ins;
    return bin_prelu(&legacy);
}

/* Pow's exponent may have its own numeric dtype; the output takes the
 * base's. */
static ogi_status bin_pow(op_ctx *c)
{
    ogi_status st = elem_check_kind(c, 0, ELEM_KIND_FLOAT | ELEM_KIND_SIGNED);
    if (st != OGI_OK)
        return st;
    if ((st = elem_check_kind(c, 1, ELEM_KIND_NUMERIC)) != OGI_OK)
        return st;
    ogi_tensor legacy;
    const ogi_tensor *ins[2] = {c->in[0], c->in[1]};
    if (c->opset < 7) {
        if ((st = elem_legacy_view(c, &legacy)) != OGI_OK)
            return st;
        ins[1] = &legacy;
    }
    op_bcast b;
    if ((st = op_bcast_init(c, &b, 2, ins)) != OGI_OK)
        return st;
    ogi_dtype dt = ins[0]->dtype;
    if ((st = op_alloc(c, 0, dt, b.rank, b.dims)) != OGI_OK)
        return st;
    elem_job j = {.b = &b, .n_in = 2, .in = ins, .out = c->out[0], .f32 = elem_f32_pow};
    j.domain = elem_domain_of(dt);
    bool all_f32 = dt == OGI_FLOAT32 && ins[1]->dtype == OGI_FLOAT32;
    j.span = all_f32 ? elem_f32_span : elem_pow_span;
    elem_execute(c, &j);
    return OGI_OK;
}

/* ---- Where and the variadic ops -------------------------------------------- */

static ogi_status elem_where(op_ctx *c)
{
    ogi_status st = op_require_dtype(c, 0, OGI_BOOL);
    if (st != OGI_OK)
        return st;
    if ((st = elem_check_inputs(c, 1, 2)) != OGI_OK)
        return st;
    ogi_dtype dt = c->in[1]->dtype;
    int size = dtype_size(dt);
    if (dt == OGI_STRING || !(size == 1 || size == 2 || size == 4 || size == 8))
        return elem_unsupported(c, 1);
    op_bcast b;
    if ((st = op_bcast_init(c, &b, 3, c->in)) != OGI_OK)
        return st;
    if ((st = op_alloc(c, 0, dt, b.rank, b.dims)) != OGI_OK)
        return st;
    elem_job j = {.b = &b, .n_in = 3, .in = c->in, .out = c->out[0], .span = elem_where_span};
    elem_execute(c, &j);
    return OGI_OK;
}

static ogi_status elem_variadic(op_ctx *c, elem_fn fn, unsigned kinds, bool mean)
{
    if (c->n_in < 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "expected at least one input");
    ogi_status st = elem_check_inputs(c, 0, c->n_in);
    if (st != OGI_OK)
        return st;
    if ((st = elem_check_kind(c, 0, kinds)) != OGI_OK)
        return st;
    op_bcast b;
    if ((st = op_bcast_init(c, &b, c->n_in, c->in)) != OGI_OK)
        return st;
    ogi_dtype dt = c->in[0]->dtype;
    if ((st = op_alloc(c, 0, dt, b.rank, b.dims)) != OGI_OK)
        return st;
    elem_job j = {.b = &b,
                  .n_in = c->n_in,
                  .in = c->in,
                  .out = c->out[0],
                  .span = elem_variadic_span,
                  .fn = fn,
                  .mean = mean};
    j.domain = elem_domain_of(dt);
    elem_execute(c, &j);
    return OGI_OK;
}

static ogi_status elem_max_op(op_ctx *c)
{
    return elem_variadic(c, elem_max, ELEM_KIND_NUMERIC, false);
}

static ogi_status elem_min_op(op_ctx *c)
{
    return elem_variadic(c, elem_min, ELEM_KIND_NUMERIC, false);
}

static ogi_status elem_sum(op_ctx *c)
{
    return elem_variadic(c, elem_add, ELEM_KIND_FLOAT, false);
}

static ogi_status elem_mean(op_ctx *c)
{
    return elem_variadic(c, elem_add, ELEM_KIND_FLOAT, true);
}

/* One entry per op: versions differ in legacy broadcasting (handled by
 * opset inside bin_run), consumed_inputs (ignored) and the dtypes listed. */
const op_kernel op_kernels_binary[] = {
    {"", "Add", 1, bin_add},
    {"", "Sub", 1, bin_sub},
    {"", "Mul", 1, bin_mul},
    {"", "Div", 1, bin_div},
    {"", "Pow", 1, bin_pow},
    {"", "Mod", 10, bin_mod},
    {"", "BitShift", 11, bin_bit_shift},
    {"", "BitwiseAnd", 18, bin_bitwise_and},
    {"", "BitwiseOr", 18, bin_bitwise_or},
    {"", "BitwiseXor", 18, bin_bitwise_xor},
    {"", "And", 1, bin_and},
    {"", "Or", 1, bin_or},
    {"", "Xor", 1, bin_xor},
    {"", "Equal", 1, bin_equal},
    {"", "Less", 1, bin_less},
    {"", "LessOrEqual", 12, bin_less_equal},
    {"", "Greater", 1, bin_greater},
    {"", "GreaterOrEqual", 12, bin_greater_equal},
    {"", "PRelu", 1, bin_prelu_legacy},
    {"", "PRelu", 7, bin_prelu},
    {"", "Where", 9, elem_where},
    {"", "Max", 1, elem_max_op},
    {"", "Min", 1, elem_min_op},
    {"", "Sum", 1, elem_sum},
    {"", "Mean", 1, elem_mean},
    {NULL, NULL, 0, NULL},
};
