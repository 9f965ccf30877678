/* Activation functions, y = f(x) element-wise with y shaped like x: Relu,
 * LeakyRelu, Elu, Selu, Celu, Sigmoid, HardSigmoid, HardSwish, Softplus,
 * Softsign, Gelu, Mish, ThresholdedRelu, Shrink, Swish and Clip.
 *
 * Values are computed in double over small blocks (float16 and bfloat16
 * round once, on store). float32 Relu and Sigmoid have direct loops: they
 * run on large tensors inside models. Integer inputs (Relu, Clip) compute
 * exactly in int64. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/families.h"
#include "ops/vecmath.h"

#define ACT_BLOCK 256
/* Elements per thread task: below this, threading costs more than it saves. */
#define ACT_MIN_CHUNK 16384

typedef struct act_params {
    double alpha, beta, gamma;
} act_params;

/* Applies an activation in place to n values. */
typedef void (*act_fn)(double *v, int64_t n, const act_params *p);

typedef struct act_job {
    const ogi_tensor *x;
    ogi_tensor *y;
    act_fn fn;
    act_params p;
} act_job;

static void act_range(void *arg, int64_t begin, int64_t end)
{
    const act_job *j = arg;
    double buf[ACT_BLOCK];
    for (int64_t start = begin; start < end; start += ACT_BLOCK) {
        int64_t n = end - start < ACT_BLOCK ? end - start : ACT_BLOCK;
        tensor_load_f64(j->x, start, n, buf);
        j->fn(buf, n, &j->p);
        tensor_store_f64(j->y, start, n, buf);
    }
}

static ogi_status act_unsupported(op_ctx *c, const ogi_tensor *x)
{
    return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                    ogi_dtype_name(x->dtype));
}

/* Checks input 0 and allocates output 0 like it. */
static ogi_status act_prepare(op_ctx *c, const ogi_tensor **x)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    *x = c->in[0];
    return op_alloc(c, 0, (*x)->dtype, (*x)->rank, (*x)->dims);
}

/* Runs fn over a float tensor (or, with any_numeric, an integer one: the
 * result is truncated back to its type, as the ONNX reference does). */
static ogi_status act_run(op_ctx *c, act_fn fn, const act_params *p, bool any_numeric)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype) && !(any_numeric && dtype_is_integer(x->dtype)))
        return act_unsupported(c, x);
    if ((st = act_prepare(c, &x)) != OGI_OK)
        return st;
    act_job job = {x, c->out[0], fn, *p};
    threadpool_parallel_for(c->pool, tensor_numel(x), ACT_MIN_CHUNK, act_range, &job);
    return OGI_OK;
}

/* ---- float32 fast paths --------------------------------------------------- */

typedef struct act_f32_job {
    const float *x;
    float *y;
} act_f32_job;

static void act_relu_f32_range(void *arg, int64_t begin, int64_t end)
{
    const act_f32_job *j = arg;
    for (int64_t i = begin; i < end; i++)
        j->y[i] = j->x[i] > 0.0f ? j->x[i] : 0.0f;
}

static void act_sigmoid_f32_generic(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = vecmath_sigmoidf(x[i]);
}

VECMATH_TARGET_AVX2 static void act_sigmoid_f32_avx2(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = vecmath_sigmoidf(x[i]);
}

VECMATH_TARGET_AVX512 static void act_sigmoid_f32_avx512(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = vecmath_sigmoidf(x[i]);
}

static void act_sigmoid_f32_range(void *arg, int64_t begin, int64_t end)
{
    const act_f32_job *j = arg;
    switch (vecmath_best_isa()) {
    case VECMATH_AVX512:
        act_sigmoid_f32_avx512(j->x + begin, j->y + begin, end - begin);
        break;
    case VECMATH_AVX2:
        act_sigmoid_f32_avx2(j->x + begin, j->y + begin, end - begin);
        break;
    default:
        act_sigmoid_f32_generic(j->x + begin, j->y + begin, end - begin);
    }
}

/* Runs a float32 range function over input 0 (checked to be float32). */
static ogi_status act_run_f32(op_ctx *c, threadpool_fn fn)
{
    const ogi_tensor *x;
    ogi_status st = act_prepare(c, &x);
    if (st != OGI_OK)
        return st;
    act_f32_job job = {x->data, c->out[0]->data};
    threadpool_parallel_for(c->pool, tensor_numel(x), ACT_MIN_CHUNK, fn, &job);
    return OGI_OK;
}

/* ---- the functions, in double ---------------------------------------------- */

static void act_relu_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] > 0 ? v[k] : 0.0;
}

static void act_leaky_relu_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] < 0 ? p->alpha * v[k] : v[k];
}

static void act_elu_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] < 0 ? p->alpha * expm1(v[k]) : v[k];
}

static void act_selu_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] > 0 ? p->gamma * v[k] : p->gamma * p->alpha * expm1(v[k]);
}

static void act_celu_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] > 0 ? v[k] : p->alpha * expm1(v[k] / p->alpha);
}

static double act_sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static void act_sigmoid_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    for (int64_t k = 0; k < n; k++)
        v[k] = act_sigmoid(v[k]);
}

static void act_hard_sigmoid_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = fmax(0.0, fmin(1.0, p->alpha * v[k] + p->beta));
}

static void act_hard_swish_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] * fmax(0.0, fmin(1.0, v[k] / 6.0 + 0.5));
}

/* log(1 + e^x) without overflow for large x. */
static double act_softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

static void act_softplus_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    for (int64_t k = 0; k < n; k++)
        v[k] = act_softplus(v[k]);
}

static void act_softsign_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] / (1.0 + fabs(v[k]));
}

static void act_gelu_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    const double inv_sqrt2 = 0.70710678118654752440;
    for (int64_t k = 0; k < n; k++)
        v[k] = 0.5 * v[k] * (1.0 + erf(v[k] * inv_sqrt2));
}

static void act_gelu_tanh_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    const double sqrt_2_over_pi = 0.79788456080286535588;
    for (int64_t k = 0; k < n; k++) {
        double x = v[k];
        v[k] = 0.5 * x * (1.0 + tanh(sqrt_2_over_pi * (x + 0.044715 * x * x * x)));
    }
}

static void act_mish_fn(double *v, int64_t n, const act_params *p)
{
    (void)p;
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] * tanh(act_softplus(v[k]));
}

static void act_thresholded_relu_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] > p->alpha ? v[k] : 0.0;
}

/* alpha = lambd, beta = bias. */
static void act_shrink_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++) {
        double x = v[k];
        v[k] = x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0.0;
    }
}

static void act_swish_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++)
        v[k] = v[k] * act_sigmoid(p->alpha * v[k]);
}

/* alpha = min, beta = max; NaN passes through. min > max gives max. */
static void act_clip_fn(double *v, int64_t n, const act_params *p)
{
    for (int64_t k = 0; k < n; k++) {
        double x = v[k] < p->alpha ? p->alpha : v[k];
        v[k] = x > p->beta ? p->beta : x;
    }
}

/* ---- the ops ------------------------------------------------------------------ */

static ogi_status act_relu_int(op_ctx *c)
{
    const ogi_tensor *x;
    ogi_status st = act_prepare(c, &x);
    if (st != OGI_OK)
        return st;
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = dtype_get_i64(x->data, x->dtype, i);
        dtype_set_i64(c->out[0]->data, x->dtype, i, v > 0 ? v : 0);
    }
    return OGI_OK;
}

static ogi_status act_relu(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    ogi_dtype dt = c->in[0]->dtype;
    if (dt == OGI_FLOAT32)
        return act_run_f32(c, act_relu_f32_range);
    if (dtype_is_signed(dt))
        return act_relu_int(c);
    act_params p = {0};
    return act_run(c, act_relu_fn, &p, false);
}

static ogi_status act_sigmoid_op(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    if (c->in[0]->dtype == OGI_FLOAT32)
        return act_run_f32(c, act_sigmoid_f32_range);
    act_params p = {0};
    return act_run(c, act_sigmoid_fn, &p, false);
}

static ogi_status act_leaky_relu(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 0.01f)};
    return act_run(c, act_leaky_relu_fn, &p, false);
}

static ogi_status act_elu(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 1.0f)};
    return act_run(c, act_elu_fn, &p, false);
}

static ogi_status act_selu(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 1.67326319217681884765625f),
                    .gamma = op_attr_float(c, "gamma", 1.05070102214813232421875f)};
    return act_run(c, act_selu_fn, &p, false);
}

static ogi_status act_celu(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 1.0f)};
    if (p.alpha == 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute alpha must not be 0");
    return act_run(c, act_celu_fn, &p, false);
}

static ogi_status act_hard_sigmoid(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 0.2f),
                    .beta = op_attr_float(c, "beta", 0.5f)};
    return act_run(c, act_hard_sigmoid_fn, &p, false);
}

static ogi_status act_hard_swish(op_ctx *c)
{
    act_params p = {0};
    return act_run(c, act_hard_swish_fn, &p, false);
}

static ogi_status act_softplus_op(op_ctx *c)
{
    act_params p = {0};
    return act_run(c, act_softplus_fn, &p, false);
}

static ogi_status act_softsign(op_ctx *c)
{
    act_params p = {0};
    return act_run(c, act_softsign_fn, &p, false);
}

static ogi_status act_gelu(op_ctx *c)
{
    const char *approximate = op_attr_string(c, "approximate", "none");
    act_params p = {0};
    if (strcmp(approximate, "none") == 0)
        return act_run(c, act_gelu_fn, &p, false);
    if (strcmp(approximate, "tanh") == 0)
        return act_run(c, act_gelu_tanh_fn, &p, false);
    return op_error(c, OGI_ERR_UNSUPPORTED, "attribute approximate='%s' is not supported",
                    approximate);
}

static ogi_status act_mish(op_ctx *c)
{
    act_params p = {0};
    return act_run(c, act_mish_fn, &p, false);
}

static ogi_status act_thresholded_relu(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 1.0f)};
    return act_run(c, act_thresholded_relu_fn, &p, false);
}

static ogi_status act_shrink(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "lambd", 0.5f),
                    .beta = op_attr_float(c, "bias", 0.0f)};
    return act_run(c, act_shrink_fn, &p, true);
}

static ogi_status act_swish(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "alpha", 1.0f)};
    return act_run(c, act_swish_fn, &p, false);
}

/* ---- Clip ----------------------------------------------------------------------- */

/* Clip 1 and 6: bounds are float attributes, defaulting to float's range. */
static ogi_status act_clip_attrs(op_ctx *c)
{
    act_params p = {.alpha = op_attr_float(c, "min", -FLT_MAX),
                    .beta = op_attr_float(c, "max", FLT_MAX)};
    return act_run(c, act_clip_fn, &p, false);
}

/* Bound input i (min or max) must be a one-element tensor of x's dtype. */
static ogi_status act_clip_bound(op_ctx *c, int i)
{
    const ogi_tensor *t = c->in[i];
    if (t->dtype != c->in[0]->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d: dtype %s differs from input 0 (%s)", i,
                        ogi_dtype_name(t->dtype), ogi_dtype_name(c->in[0]->dtype));
    if (tensor_numel(t) != 1)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected a scalar, got %lld elements", i,
                        (long long)tensor_numel(t));
    return OGI_OK;
}

static void act_clip_signed(const ogi_tensor *x, ogi_tensor *y, int64_t lo, int64_t hi)
{
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = dtype_get_i64(x->data, x->dtype, i);
        v = v < lo ? lo : v;
        dtype_set_i64(y->data, x->dtype, i, v > hi ? hi : v);
    }
}

/* Unsigned values travel as their bits in an int64 (uint64 above
 * INT64_MAX included), so compare them as uint64. */
static void act_clip_unsigned(const ogi_tensor *x, ogi_tensor *y, uint64_t lo, uint64_t hi)
{
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = (uint64_t)dtype_get_i64(x->data, x->dtype, i);
        v = v < lo ? lo : v;
        dtype_set_i64(y->data, x->dtype, i, (int64_t)(v > hi ? hi : v));
    }
}

static ogi_status act_clip_int(op_ctx *c, bool has_min, bool has_max)
{
    const ogi_tensor *x;
    ogi_status st = act_prepare(c, &x);
    if (st != OGI_OK)
        return st;
    int64_t lo = has_min ? dtype_get_i64(c->in[1]->data, x->dtype, 0) : 0;
    int64_t hi = has_max ? dtype_get_i64(c->in[2]->data, x->dtype, 0) : 0;
    if (dtype_is_signed(x->dtype))
        act_clip_signed(x, c->out[0], has_min ? lo : INT64_MIN, has_max ? hi : INT64_MAX);
    else
        act_clip_unsigned(x, c->out[0], has_min ? (uint64_t)lo : 0,
                          has_max ? (uint64_t)hi : UINT64_MAX);
    return OGI_OK;
}

/* Clip 11 and later: optional scalar inputs min and max. */
static ogi_status act_clip_inputs(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    bool has_min = op_has_input(c, 1), has_max = op_has_input(c, 2);
    if (has_min && (st = act_clip_bound(c, 1)) != OGI_OK)
        return st;
    if (has_max && (st = act_clip_bound(c, 2)) != OGI_OK)
        return st;
    ogi_dtype dt = c->in[0]->dtype;
    if (dtype_is_integer(dt))
        return act_clip_int(c, has_min, has_max);
    act_params p = {
        .alpha = has_min ? dtype_get_f64(c->in[1]->data, dt, 0) : -INFINITY,
        .beta = has_max ? dtype_get_f64(c->in[2]->data, dt, 0) : INFINITY,
    };
    return act_run(c, act_clip_fn, &p, false);
}

/* Versions before those listed differ only in consumed_inputs (ignored) and
 * the dtypes they list; Clip changed from attributes to inputs at 11. */
const op_kernel op_kernels_activation[] = {
    {"", "Relu", 1, act_relu},
    {"", "LeakyRelu", 1, act_leaky_relu},
    {"", "Elu", 1, act_elu},
    {"", "Selu", 1, act_selu},
    {"", "Celu", 12, act_celu},
    {"", "Sigmoid", 1, act_sigmoid_op},
    {"", "HardSigmoid", 1, act_hard_sigmoid},
    {"", "HardSwish", 14, act_hard_swish},
    {"", "Softplus", 1, act_softplus_op},
    {"", "Softsign", 1, act_softsign},
    {"", "Gelu", 20, act_gelu},
    {"", "Mish", 18, act_mish},
    {"", "ThresholdedRelu", 10, act_thresholded_relu},
    {"", "Shrink", 9, act_shrink},
    {"", "Swish", 24, act_swish},
    {"", "Clip", 1, act_clip_attrs},
    {"", "Clip", 11, act_clip_inputs},
    {NULL, NULL, 0, NULL},
};
