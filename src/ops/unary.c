/* Element-wise math functions, y = f(x) with y shaped like x: Abs, Neg,
 * Sign, rounding, Sqrt, Exp, Log, Erf, trigonometric and hyperbolic
 * functions, IsNaN, IsInf, Not, BitwiseNot.
 *
 * float32, float16 and bfloat16 compute in float (half types round once at
 * the end), float64 in double; integer types in int64, unsigned ones as
 * their bit pattern, narrowed back on store. */
#include <math.h>
#include <stdint.h>

#include "ops/families.h"

/* Elements per thread task: below this, threading costs more than it saves. */
#define UNARY_MIN_CHUNK 16384

/* The function of one op for each kind of element type; NULL where the op
 * does not accept that kind. Unsigned functions take and return the value's
 * bits in an int64. */
typedef struct unary_math {
    float (*f32)(float);
    double (*f64)(double);
    int64_t (*s64)(int64_t);
    int64_t (*u64)(int64_t);
} unary_math;

typedef struct unary_job {
    const ogi_tensor *x;
    ogi_tensor *y;
    const unary_math *m;
} unary_job;

static void unary_float_range(void *arg, int64_t begin, int64_t end)
{
    const unary_job *j = arg;
    const unary_math *m = j->m;
    switch (j->x->dtype) {
    case OGI_FLOAT32: {
        const float *x = j->x->data;
        float *y = j->y->data;
        for (int64_t i = begin; i < end; i++)
            y[i] = m->f32(x[i]);
        break;
    }
    case OGI_FLOAT64: {
        const double *x = j->x->data;
        double *y = j->y->data;
        for (int64_t i = begin; i < end; i++)
            y[i] = m->f64(x[i]);
        break;
    }
    case OGI_FLOAT16: {
        const uint16_t *x = j->x->data;
        uint16_t *y = j->y->data;
        for (int64_t i = begin; i < end; i++)
            y[i] = dtype_f32_to_f16(m->f32(dtype_f16_to_f32(x[i])));
        break;
    }
    case OGI_BFLOAT16: {
        const uint16_t *x = j->x->data;
        uint16_t *y = j->y->data;
        for (int64_t i = begin; i < end; i++)
            y[i] = dtype_f32_to_bf16(m->f32(dtype_bf16_to_f32(x[i])));
        break;
    }
    default:
        break;
    }
}

static void unary_int_range(void *arg, int64_t begin, int64_t end)
{
    const unary_job *j = arg;
    ogi_dtype dt = j->x->dtype;
    int64_t (*fn)(int64_t) = dtype_is_signed(dt) ? j->m->s64 : j->m->u64;
    for (int64_t i = begin; i < end; i++)
        dtype_set_i64(j->y->data, dt, i, fn(dtype_get_i64(j->x->data, dt, i)));
}

static bool unary_accepts(const unary_math *m, ogi_dtype dt)
{
    if (dtype_is_float(dt))
        return m->f32 != NULL;
    if (dtype_is_signed(dt))
        return m->s64 != NULL;
    if (dtype_is_integer(dt))
        return m->u64 != NULL;
    return false;
}

/* Runs y = f(x) over the whole tensor, split across the pool. */
static ogi_status unary_run(op_ctx *c, const unary_math *m)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!unary_accepts(m, x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    unary_job job = {x, c->out[0], m};
    threadpool_fn fn = dtype_is_float(x->dtype) ? unary_float_range : unary_int_range;
    threadpool_parallel_for(c->pool, tensor_numel(x), UNARY_MIN_CHUNK, fn, &job);
    return OGI_OK;
}

/* ---- scalar functions libm does not provide -------------------------------- */

static float unary_negf(float x)
{
    return -x;
}

static double unary_neg(double x)
{
    return -x;
}

static int64_t unary_neg_s64(int64_t x)
{
    return (int64_t)(0 - (uint64_t)x); /* wraps for INT64_MIN like C narrow types */
}

static int64_t unary_abs_s64(int64_t x)
{
    return x < 0 ? unary_neg_s64(x) : x;
}

static int64_t unary_identity_u64(int64_t x)
{
    return x;
}

static float unary_reciprocalf(float x)
{
    return 1.0f / x;
}

static double unary_reciprocal(double x)
{
    return 1.0 / x;
}

/* Sign keeps NaN (as numpy does); zero of either sign gives 0. */
static float unary_signf(float x)
{
    return x > 0 ? 1.0f : x < 0 ? -1.0f : x == 0 ? 0.0f : x;
}

static double unary_sign(double x)
{
    return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x;
}

static int64_t unary_sign_s64(int64_t x)
{
    return (x > 0) - (x < 0);
}

static int64_t unary_sign_u64(int64_t x)
{
    return x != 0;
}

static int64_t unary_bitnot(int64_t x)
{
    return ~x;
}

/* ---- the ops ---------------------------------------------------------------- */

static ogi_status unary_abs(op_ctx *c)
{
    static const unary_math m = {fabsf, fabs, unary_abs_s64, unary_identity_u64};
    return unary_run(c, &m);
}

static ogi_status unary_neg_op(op_ctx *c)
{
    static const unary_math m = {unary_negf, unary_neg, unary_neg_s64, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_sign_op(op_ctx *c)
{
    static const unary_math m = {unary_signf, unary_sign, unary_sign_s64, unary_sign_u64};
    return unary_run(c, &m);
}

static ogi_status unary_ceil(op_ctx *c)
{
    static const unary_math m = {ceilf, ceil, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_floor(op_ctx *c)
{
    static const unary_math m = {floorf, floor, NULL, NULL};
    return unary_run(c, &m);
}

/* nearbyint in the default rounding mode rounds halves to even. */
static ogi_status unary_round(op_ctx *c)
{
    static const unary_math m = {nearbyintf, nearbyint, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_reciprocal_op(op_ctx *c)
{
    static const unary_math m = {unary_reciprocalf, unary_reciprocal, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_sqrt(op_ctx *c)
{
    static const unary_math m = {sqrtf, sqrt, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_exp(op_ctx *c)
{
    static const unary_math m = {expf, exp, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_log(op_ctx *c)
{
    static const unary_math m = {logf, log, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_erf(op_ctx *c)
{
    static const unary_math m = {erff, erf, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_tanh(op_ctx *c)
{
    static const unary_math m = {tanhf, tanh, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_sin(op_ctx *c)
{
    static const unary_math m = {sinf, sin, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_cos(op_ctx *c)
{
    static const unary_math m = {cosf, cos, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_tan(op_ctx *c)
{
    static const unary_math m = {tanf, tan, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_asin(op_ctx *c)
{
    static const unary_math m = {asinf, asin, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_acos(op_ctx *c)
{
    static const unary_math m = {acosf, acos, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_atan(op_ctx *c)
{
    static const unary_math m = {atanf, atan, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_sinh(op_ctx *c)
{
    static const unary_math m = {sinhf, sinh, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_cosh(op_ctx *c)
{
    static const unary_math m = {coshf, cosh, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_asinh(op_ctx *c)
{
    static const unary_math m = {asinhf, asinh, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_acosh(op_ctx *c)
{
    static const unary_math m = {acoshf, acosh, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_atanh(op_ctx *c)
{
    static const unary_math m = {atanhf, atanh, NULL, NULL};
    return unary_run(c, &m);
}

static ogi_status unary_bitwise_not(op_ctx *c)
{
    static const unary_math m = {NULL, NULL, unary_bitnot, unary_bitnot};
    return unary_run(c, &m);
}

static ogi_status unary_not(op_ctx *c)
{
    ogi_status st = op_require_dtype(c, 0, OGI_BOOL);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    st = op_alloc(c, 0, OGI_BOOL, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    const uint8_t *px = x->data;
    uint8_t *py = c->out[0]->data;
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        py[i] = !px[i];
    return OGI_OK;
}

/* ---- IsNaN and IsInf ---------------------------------------------------------- */

/* The class of one value: 0 finite, 1 NaN, 2 +inf, 3 -inf. */
enum { UNARY_FINITE, UNARY_NAN, UNARY_POS_INF, UNARY_NEG_INF };

/* float8 formats have no conversion helper; their NaN and infinity codes
 * are fixed bit patterns (only E5M2 has infinities). */
static int unary_class_f8(uint8_t v, ogi_dtype dt)
{
    switch (dt) {
    case OGI_FLOAT8E4M3FN:
        return (v & 0x7f) == 0x7f ? UNARY_NAN : UNARY_FINITE;
    case OGI_FLOAT8E4M3FNUZ:
    case OGI_FLOAT8E5M2FNUZ:
        return v == 0x80 ? UNARY_NAN : UNARY_FINITE;
    case OGI_FLOAT8E5M2:
        if ((v & 0x7c) != 0x7c)
            return UNARY_FINITE;
        if ((v & 0x03) != 0)
            return UNARY_NAN;
        return (v & 0x80) ? UNARY_NEG_INF : UNARY_POS_INF;
    default:
        return UNARY_FINITE;
    }
}

static bool unary_is_f8(ogi_dtype dt)
{
    return dt == OGI_FLOAT8E4M3FN || dt == OGI_FLOAT8E4M3FNUZ || dt == OGI_FLOAT8E5M2 ||
           dt == OGI_FLOAT8E5M2FNUZ;
}

static int unary_class(const ogi_tensor *x, int64_t i)
{
    if (unary_is_f8(x->dtype))
        return unary_class_f8(((const uint8_t *)x->data)[i], x->dtype);
    double v = dtype_get_f64(x->data, x->dtype, i); /* exact for every float type */
    if (isnan(v))
        return UNARY_NAN;
    if (isinf(v))
        return v > 0 ? UNARY_POS_INF : UNARY_NEG_INF;
    return UNARY_FINITE;
}

/* unary_class() of float32 values on the bits, a loop the compiler
 * vectorises (IsNaN runs over attention-sized tensors in exported graphs). */
static void unary_classify_f32(const float *x, uint8_t *y, int64_t n, unsigned classes)
{
    const uint32_t *bits = (const uint32_t *)x;
    uint8_t nan = (classes >> UNARY_NAN) & 1, pos = (classes >> UNARY_POS_INF) & 1,
            neg = (classes >> UNARY_NEG_INF) & 1;
    for (int64_t i = 0; i < n; i++) {
        uint32_t mag = bits[i] & 0x7fffffffu, sign = bits[i] >> 31;
        uint32_t is_inf = mag == 0x7f800000u, is_nan = mag > 0x7f800000u;
        y[i] = (uint8_t)((is_nan & nan) | (is_inf & ((sign & neg) | (~sign & pos))));
    }
}

/* y[i] = true where the class of x[i] is flagged in `classes` (bit per class). */
static ogi_status unary_classify(op_ctx *c, unsigned classes)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype) && !unary_is_f8(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    st = op_alloc(c, 0, OGI_BOOL, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    uint8_t *y = c->out[0]->data;
    int64_t n = tensor_numel(x);
    if (x->dtype == OGI_FLOAT32) {
        unary_classify_f32(x->data, y, n, classes);
        return OGI_OK;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = (classes >> unary_class(x, i)) & 1;
    return OGI_OK;
}

static ogi_status unary_isnan(op_ctx *c)
{
    return unary_classify(c, 1u << UNARY_NAN);
}

static ogi_status unary_isinf(op_ctx *c)
{
    unsigned classes = 0;
    if (op_attr_int(c, "detect_positive", 1) != 0)
        classes |= 1u << UNARY_POS_INF;
    if (op_attr_int(c, "detect_negative", 1) != 0)
        classes |= 1u << UNARY_NEG_INF;
    return unary_classify(c, classes);
}

/* Older versions differ only in consumed_inputs (ignored) and the dtypes
 * they list, so one entry per op serves every opset. */
const op_kernel op_kernels_unary[] = {
    {"", "Abs", 1, unary_abs},
    {"", "Neg", 1, unary_neg_op},
    {"", "Sign", 9, unary_sign_op},
    {"", "Ceil", 1, unary_ceil},
    {"", "Floor", 1, unary_floor},
    {"", "Round", 11, unary_round},
    {"", "Reciprocal", 1, unary_reciprocal_op},
    {"", "Sqrt", 1, unary_sqrt},
    {"", "Exp", 1, unary_exp},
    {"", "Log", 1, unary_log},
    {"", "Erf", 9, unary_erf},
    {"", "Tanh", 1, unary_tanh},
    {"", "Sin", 7, unary_sin},
    {"", "Cos", 7, unary_cos},
    {"", "Tan", 7, unary_tan},
    {"", "Asin", 7, unary_asin},
    {"", "Acos", 7, unary_acos},
    {"", "Atan", 7, unary_atan},
    {"", "Sinh", 9, unary_sinh},
    {"", "Cosh", 9, unary_cosh},
    {"", "Asinh", 9, unary_asinh},
    {"", "Acosh", 9, unary_acosh},
    {"", "Atanh", 9, unary_atanh},
    {"", "IsNaN", 9, unary_isnan},
    {"", "IsInf", 10, unary_isinf},
    {"", "Not", 1, unary_not},
    {"", "BitwiseNot", 18, unary_bitwise_not},
    {NULL, NULL, 0, NULL},
};
