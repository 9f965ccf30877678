/* Cast, CastLike and BitCast, and the element conversions behind them.
 *
 * Every conversion goes through one of two canonical forms: a double for
 * floating-point sources (exact for all of them) or 64 integer bits for
 * integer and bool sources. Chunks of elements are decoded into the canonical
 * form and encoded into the target, each step a tight loop over one dtype. */
#include "ops/cast.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/dtype.h"
#include "ops/families.h"

#define CAST_CHUNK 256

/* ---- small floating-point formats ------------------------------------------ */

/* A binary format with an implicit leading one, subnormals, and one sign bit
 * above the exponent: float16, the float8 types and float4e2m1. */
typedef struct cast_minifloat {
    int mant_bits;
    int bias;
    int sign_shift;
    double max;             /* largest finite value */
    uint32_t max_code;      /* its code */
    uint32_t overflow_code; /* what overflow gives without saturation (sign added) */
    uint32_t nan_code;      /* the NaN a conversion produces (sign flips it) */
    uint32_t inf_mag;       /* magnitude code of infinity; 0: none */
    uint32_t nan_mag_min;   /* magnitude codes from here up are NaN; 0: none */
    bool fnuz;              /* no negative zero; the single NaN is the sign bit alone */
} cast_minifloat;

enum { CAST_F16, CAST_E4M3FN, CAST_E4M3FNUZ, CAST_E5M2, CAST_E5M2FNUZ, CAST_E2M1 };

/* e2m1 has no inf or NaN: overflow saturates, and NaN becomes the code
 * ml_dtypes uses, 0x8 (-0), flipped by the sign. */
/* clang-format off */
static const cast_minifloat cast_formats[] = {
    /*              mant bias sign max      max_code overflow nan     inf     nan_min fnuz */
    [CAST_F16] =      {10, 15, 15, 65504.0, 0x7bff, 0x7c00,  0x7e00, 0x7c00, 0x7c01, false},
    [CAST_E4M3FN] =   {3,  7,  7,  448.0,   0x7e,   0x7f,    0x7f,   0,      0x7f,   false},
    [CAST_E4M3FNUZ] = {3,  8,  7,  240.0,   0x7f,   0x80,    0x80,   0,      0,      true},
    [CAST_E5M2] =     {2,  15, 7,  57344.0, 0x7b,   0x7c,    0x7e,   0x7c,   0x7d,   false},
    [CAST_E5M2FNUZ] = {2,  16, 7,  57344.0, 0x7f,   0x80,    0x80,   0,      0,      true},
    [CAST_E2M1] =     {1,  1,  3,  6.0,     0x7,    0x7,     0x8,    0,      0,      false},
};
/* clang-format on */

static const cast_minifloat *cast_minifloat_of(ogi_dtype dtype)
{
    switch (dtype) {
    case OGI_FLOAT16:
        return &cast_formats[CAST_F16];
    case OGI_FLOAT8E4M3FN:
        return &cast_formats[CAST_E4M3FN];
    case OGI_FLOAT8E4M3FNUZ:
        return &cast_formats[CAST_E4M3FNUZ];
    case OGI_FLOAT8E5M2:
        return &cast_formats[CAST_E5M2];
    case OGI_FLOAT8E5M2FNUZ:
        return &cast_formats[CAST_E5M2FNUZ];
    case OGI_FLOAT4E2M1:
        return &cast_formats[CAST_E2M1];
    default:
        return NULL;
    }
}

static double cast_minifloat_decode(const cast_minifloat *f, uint32_t code)
{
    uint32_t sign_bit = 1u << f->sign_shift;
    uint32_t mag = code & (sign_bit - 1);
    bool neg = (code & sign_bit) != 0;
    if (f->fnuz && code == sign_bit)
        return NAN;
    if (f->nan_mag_min != 0 && mag >= f->nan_mag_min)
        return neg ? -NAN : NAN;
    if (f->inf_mag != 0 && mag == f->inf_mag)
        return neg ? -INFINITY : INFINITY;
    uint32_t exp = mag >> f->mant_bits;
    uint32_t mant = mag & ((1u << f->mant_bits) - 1);
    double v;
    if (exp == 0)
        v = ldexp((double)mant, 1 - f->bias - f->mant_bits);
    else
        v = ldexp((double)(mant | (1u << f->mant_bits)), (int)exp - f->bias - f->mant_bits);
    return neg ? -v : v;
}

static uint32_t cast_minifloat_overflow(const cast_minifloat *f, uint32_t sign, bool saturate)
{
    if (saturate)
        return f->max_code | sign;
    return f->fnuz ? f->overflow_code : f->overflow_code | sign;
}

/* Rounds v to the nearest representable value, ties to even, as exact
 * arithmetic would (v is scaled by powers of two only, so no step rounds). */
static uint32_t cast_minifloat_encode(const cast_minifloat *f, double v, bool saturate)
{
    uint32_t sign = signbit(v) ? 1u << f->sign_shift : 0;
    if (isnan(v))
        return f->fnuz ? f->nan_code : f->nan_code ^ sign;
    double a = fabs(v);
    if (isinf(a))
        return cast_minifloat_overflow(f, sign, saturate);
    if (a == 0.0)
        return f->fnuz ? 0 : sign;
    int e;
    frexp(a, &e);
    int exp = e - 1; /* a in [2^exp, 2^(exp+1)) */
    int emin = 1 - f->bias;
    if (exp < emin)
        exp = emin;
    double n = nearbyint(ldexp(a, f->mant_bits - exp)); /* in units of the last place */
    if (ldexp(n, exp - f->mant_bits) > f->max)
        return cast_minifloat_overflow(f, sign, saturate);
    double one = ldexp(1.0, f->mant_bits);
    if (n >= 2.0 * one) { /* rounding carried into the next binade */
        n *= 0.5;
        exp++;
    }
    uint32_t mag;
    if (n < one) /* subnormal, exp == emin */
        mag = (uint32_t)n;
    else
        mag = ((uint32_t)(exp + f->bias) << f->mant_bits) | (uint32_t)(n - one);
    if (mag == 0 && f->fnuz)
        return 0;
    return mag | sign;
}

uint16_t cast_f64_to_f16(double v)
{
    return (uint16_t)cast_minifloat_encode(&cast_formats[CAST_F16], v, false);
}

/* float8e8m0 is a bare exponent (bias 127, 0xff NaN, no sign, no zero). The
 * reference converts from float32 bits: the sign is ignored, inf and NaN give
 * 0xff, and the mantissa decides the rounding. */
static uint8_t cast_e8m0_encode(float v, bool saturate, cast_round_mode mode)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint32_t exp = (bits >> 23) & 0xff;
    if (exp == 0xff)
        return 0xff;
    bool up = false;
    if (mode == CAST_ROUND_UP) {
        up = (bits & 0x7fffff) != 0;
    } else if (mode == CAST_ROUND_NEAREST) {
        bool guard = (bits & 0x400000) != 0;
        bool round = (bits & 0x200000) != 0;
        bool sticky = (bits & 0x1fffff) != 0;
        up = guard && (round || sticky || exp > 0);
    }
    if (up && saturate && exp == 0xfe)
        up = false;
    return (uint8_t)(exp + (up ? 1 : 0));
}

static double cast_e8m0_decode(uint8_t code)
{
    return code == 0xff ? NAN : ldexp(1.0, (int)code - 127);
}

/* ---- element access ------------------------------------------------------- */

static bool cast_is_packed(ogi_dtype dtype)
{
    return ogi_dtype_bits(dtype) < 8;
}

static uint32_t cast_get_bits(const void *data, int64_t i, int bits)
{
    const uint8_t *p = data;
    int64_t bit = i * bits;
    return (uint32_t)(p[bit >> 3] >> (bit & 7)) & ((1u << bits) - 1);
}

static void cast_put_bits(void *data, int64_t i, int bits, uint32_t v)
{
    uint8_t *p = data;
    int64_t bit = i * bits;
    uint32_t mask = (1u << bits) - 1;
    int shift = (int)(bit & 7);
    p[bit >> 3] = (uint8_t)((p[bit >> 3] & ~(mask << shift)) | ((v & mask) << shift));
}

static bool cast_is_float_class(ogi_dtype dtype)
{
    return dtype_is_float(dtype) || cast_minifloat_of(dtype) != NULL || dtype == OGI_FLOAT8E8M0;
}

bool cast_dtype_supported(ogi_dtype dtype)
{
    if (!dtype_is_valid((int)dtype))
        return false;
    return dtype != OGI_STRING && dtype != OGI_COMPLEX64 && dtype != OGI_COMPLEX128;
}

cast_options cast_default_options(void)
{
    cast_options o = {true, CAST_ROUND_UP};
    return o;
}

/* ---- decoding into the canonical forms --------------------------------------- */

static void cast_decode_float(const void *src, ogi_dtype t, int64_t at, int64_t n, double *out)
{
    const cast_minifloat *f = cast_minifloat_of(t);
    switch (t) {
    case OGI_FLOAT32:
        for (int64_t k = 0; k < n; k++)
            out[k] = ((const float *)src)[at + k];
        return;
    case OGI_FLOAT64:
        memcpy(out, (const double *)src + at, (size_t)n * sizeof(double));
        return;
    case OGI_FLOAT16:
        for (int64_t k = 0; k < n; k++)
            out[k] = dtype_f16_to_f32(((const uint16_t *)src)[at + k]);
        return;
    case OGI_BFLOAT16:
        for (int64_t k = 0; k < n; k++)
            out[k] = dtype_bf16_to_f32(((const uint16_t *)src)[at + k]);
        return;
    case OGI_FLOAT8E8M0:
        for (int64_t k = 0; k < n; k++)
            out[k] = cast_e8m0_decode(((const uint8_t *)src)[at + k]);
        return;
    case OGI_FLOAT4E2M1:
        for (int64_t k = 0; k < n; k++)
            out[k] = cast_minifloat_decode(f, cast_get_bits(src, at + k, 4));
        return;
    default: /* the float8 types */
        for (int64_t k = 0; k < n; k++)
            out[k] = cast_minifloat_decode(f, ((const uint8_t *)src)[at + k]);
        return;
    }
}

/* Integers sign- or zero-extended to 64 bits; bool as 0 or 1. */
static void cast_decode_int(const void *src, ogi_dtype t, int64_t at, int64_t n, uint64_t *out)
{
    for (int64_t k = 0; k < n; k++) {
        int64_t i = at + k;
        uint64_t v;
        switch (t) {
        case OGI_INT8:
            v = (uint64_t)(int64_t)((const int8_t *)src)[i];
            break;
        case OGI_INT16:
            v = (uint64_t)(int64_t)((const int16_t *)src)[i];
            break;
        case OGI_INT32:
            v = (uint64_t)(int64_t)((const int32_t *)src)[i];
            break;
        case OGI_INT64:
            v = (uint64_t)((const int64_t *)src)[i];
            break;
        case OGI_UINT8:
            v = ((const uint8_t *)src)[i];
            break;
        case OGI_UINT16:
            v = ((const uint16_t *)src)[i];
            break;
        case OGI_UINT32:
            v = ((const uint32_t *)src)[i];
            break;
        case OGI_UINT64:
            v = ((const uint64_t *)src)[i];
            break;
        case OGI_BOOL:
            v = ((const uint8_t *)src)[i] != 0;
            break;
        case OGI_UINT4:
            v = cast_get_bits(src, i, 4);
            break;
        case OGI_UINT2:
            v = cast_get_bits(src, i, 2);
            break;
        case OGI_INT4:
            v = (uint64_t)(((int64_t)cast_get_bits(src, i, 4) ^ 8) - 8);
            break;
        case OGI_INT2:
            v = (uint64_t)(((int64_t)cast_get_bits(src, i, 2) ^ 2) - 2);
            break;
        default:
            v = 0;
            break;
        }
        out[k] = v;
    }
}

/* ---- encoding from the canonical forms ---------------------------------------- */

/* Stores the low bits of v into element i of an integer or bool buffer. */
static void cast_store_int(void *dst, ogi_dtype t, int64_t i, uint64_t v)
{
    switch (t) {
    case OGI_INT8:
    case OGI_UINT8:
        ((uint8_t *)dst)[i] = (uint8_t)v;
        break;
    case OGI_INT16:
    case OGI_UINT16:
        ((uint16_t *)dst)[i] = (uint16_t)v;
        break;
    case OGI_INT32:
    case OGI_UINT32:
        ((uint32_t *)dst)[i] = (uint32_t)v;
        break;
    case OGI_INT64:
    case OGI_UINT64:
        ((uint64_t *)dst)[i] = v;
        break;
    case OGI_BOOL:
        ((uint8_t *)dst)[i] = v != 0;
        break;
    case OGI_INT4:
    case OGI_UINT4:
        cast_put_bits(dst, i, 4, (uint32_t)v);
        break;
    case OGI_INT2:
    case OGI_UINT2:
        cast_put_bits(dst, i, 2, (uint32_t)v);
        break;
    default:
        break;
    }
}

/* Truncation toward zero into an int64 (or int32); NaN and values outside
 * its range give its minimum, as x86's conversion instructions do. */
static int64_t cast_trunc_i64(double d)
{
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return (int64_t)d;
    return INT64_MIN;
}

static int64_t cast_trunc_i32(double d)
{
    if (d > -2147483649.0 && d < 2147483648.0)
        return (int32_t)d;
    return INT32_MIN;
}

/* Float to integer bits as numpy computes them on x86-64 (the reference):
 * types of 32 bits and fewer go through int32, uint32 and int64 through
 * int64, and the result keeps the target's low bits. */
static uint64_t cast_float_to_int_bits(double d, ogi_dtype t)
{
    switch (t) {
    case OGI_INT64:
    case OGI_UINT32:
        return (uint64_t)cast_trunc_i64(d);
    case OGI_UINT64:
        if (d >= 9223372036854775808.0 && d < 18446744073709551616.0)
            return (uint64_t)d;
        return (uint64_t)cast_trunc_i64(d);
    default:
        return (uint64_t)cast_trunc_i32(d);
    }
}

static void cast_encode_from_float(const double *v, int64_t n, void *dst, ogi_dtype t, int64_t at,
                                   const cast_options *o)
{
    const cast_minifloat *f = cast_minifloat_of(t);
    switch (t) {
    case OGI_FLOAT32:
        for (int64_t k = 0; k < n; k++)
            ((float *)dst)[at + k] = (float)v[k];
        return;
    case OGI_FLOAT64:
        memcpy((double *)dst + at, v, (size_t)n * sizeof(double));
        return;
    case OGI_FLOAT16:
        for (int64_t k = 0; k < n; k++)
            ((uint16_t *)dst)[at + k] = cast_f64_to_f16(v[k]);
        return;
    case OGI_BFLOAT16: /* through float32, as ml_dtypes converts */
        for (int64_t k = 0; k < n; k++)
            ((uint16_t *)dst)[at + k] = dtype_f32_to_bf16((float)v[k]);
        return;
    case OGI_FLOAT8E8M0:
        for (int64_t k = 0; k < n; k++)
            ((uint8_t *)dst)[at + k] = cast_e8m0_encode((float)v[k], o->saturate, o->round_mode);
        return;
    case OGI_FLOAT4E2M1:
        for (int64_t k = 0; k < n; k++)
            cast_put_bits(dst, at + k, 4, cast_minifloat_encode(f, v[k], true));
        return;
    case OGI_FLOAT8E4M3FN:
    case OGI_FLOAT8E4M3FNUZ:
    case OGI_FLOAT8E5M2:
    case OGI_FLOAT8E5M2FNUZ:
        for (int64_t k = 0; k < n; k++)
            ((uint8_t *)dst)[at + k] = (uint8_t)cast_minifloat_encode(f, v[k], o->saturate);
        return;
    case OGI_BOOL: /* NaN is true, as in C and numpy */
        for (int64_t k = 0; k < n; k++)
            ((uint8_t *)dst)[at + k] = v[k] != 0.0;
        return;
    default:
        for (int64_t k = 0; k < n; k++)
            cast_store_int(dst, t, at + k, cast_float_to_int_bits(v[k], t));
        return;
    }
}

static void cast_encode_from_int(const uint64_t *v, bool from_u64, int64_t n, void *dst,
                                 ogi_dtype t, int64_t at, const cast_options *o)
{
    if (!cast_is_float_class(t)) {
        for (int64_t k = 0; k < n; k++)
            cast_store_int(dst, t, at + k, v[k]);
        return;
    }
    if (t == OGI_FLOAT32) { /* directly, so large int64 values round once */
        for (int64_t k = 0; k < n; k++)
            ((float *)dst)[at + k] = from_u64 ? (float)v[k] : (float)(int64_t)v[k];
        return;
    }
    double d[CAST_CHUNK];
    for (int64_t k = 0; k < n; k++)
        d[k] = from_u64 ? (double)v[k] : (double)(int64_t)v[k];
    cast_encode_from_float(d, n, dst, t, at, o);
}

/* ---- fast paths for the common float pairs ---------------------------------- */

static void cast_from_f32(const float *s, uint16_t *d, int64_t n, uint16_t (*conv)(float))
{
    for (int64_t k = 0; k < n; k++)
        d[k] = conv(s[k]);
}

static void cast_to_f32(const uint16_t *s, float *d, int64_t n, float (*conv)(uint16_t))
{
    for (int64_t k = 0; k < n; k++)
        d[k] = conv(s[k]);
}

static bool cast_fast_path(const void *src, ogi_dtype st, int64_t sa, void *dst, ogi_dtype dt,
                           int64_t da, int64_t n)
{
    const float *fs = (const float *)src + sa;
    const uint16_t *hs = (const uint16_t *)src + sa;
    float *fd = (float *)dst + da;
    uint16_t *hd = (uint16_t *)dst + da;
    if (st == OGI_FLOAT32 && dt == OGI_FLOAT16)
        cast_from_f32(fs, hd, n, dtype_f32_to_f16);
    else if (st == OGI_FLOAT32 && dt == OGI_BFLOAT16)
        cast_from_f32(fs, hd, n, dtype_f32_to_bf16);
    else if (st == OGI_FLOAT16 && dt == OGI_FLOAT32)
        cast_to_f32(hs, fd, n, dtype_f16_to_f32);
    else if (st == OGI_BFLOAT16 && dt == OGI_FLOAT32)
        cast_to_f32(hs, fd, n, dtype_bf16_to_f32);
    else
        return false;
    return true;
}

void cast_elements(const void *src, ogi_dtype st, int64_t sa, void *dst, ogi_dtype dt, int64_t da,
                   int64_t n, const cast_options *opt)
{
    cast_options defaults = cast_default_options();
    const cast_options *o = opt ? opt : &defaults;
    if (n <= 0)
        return;
    if (st == dt && !cast_is_packed(st)) {
        size_t size = (size_t)dtype_size(st);
        memcpy((char *)dst + (size_t)da * size, (const char *)src + (size_t)sa * size,
               (size_t)n * size);
        return;
    }
    if (cast_fast_path(src, st, sa, dst, dt, da, n))
        return;
    bool from_float = cast_is_float_class(st);
    for (int64_t k = 0; k < n; k += CAST_CHUNK) {
        int64_t len = n - k < CAST_CHUNK ? n - k : CAST_CHUNK;
        if (from_float) {
            double buf[CAST_CHUNK];
            cast_decode_float(src, st, sa + k, len, buf);
            cast_encode_from_float(buf, len, dst, dt, da + k, o);
        } else {
            uint64_t buf[CAST_CHUNK];
            cast_decode_int(src, st, sa + k, len, buf);
            cast_encode_from_int(buf, st == OGI_UINT64, len, dst, dt, da + k, o);
        }
    }
}

/* ---- the kernels ---------------------------------------------------------- */

/* Elements per parallel task: a multiple of 8, so packed outputs never share
 * a byte between tasks. */
#define CAST_TASK 4096

typedef struct cast_job {
    const ogi_tensor *in;
    ogi_tensor *out;
    int64_t n;
    cast_options opt;
} cast_job;

static void cast_job_run(void *arg, int64_t begin, int64_t end)
{
    const cast_job *j = arg;
    int64_t first = begin * CAST_TASK;
    int64_t last = end * CAST_TASK < j->n ? end * CAST_TASK : j->n;
    cast_elements(j->in->data, j->in->dtype, first, j->out->data, j->out->dtype, first,
                  last - first, &j->opt);
}

/* Data type names of Cast-1, whose `to` was a string. */
static ogi_dtype cast_dtype_from_name(const char *name)
{
    static const struct {
        const char *name;
        ogi_dtype dtype;
    } names[] = {
        {"FLOAT", OGI_FLOAT32},     {"UINT8", OGI_UINT8},         {"INT8", OGI_INT8},
        {"UINT16", OGI_UINT16},     {"INT16", OGI_INT16},         {"INT32", OGI_INT32},
        {"INT64", OGI_INT64},       {"STRING", OGI_STRING},       {"BOOL", OGI_BOOL},
        {"FLOAT16", OGI_FLOAT16},   {"DOUBLE", OGI_FLOAT64},      {"UINT32", OGI_UINT32},
        {"UINT64", OGI_UINT64},     {"COMPLEX64", OGI_COMPLEX64}, {"COMPLEX128", OGI_COMPLEX128},
        {"BFLOAT16", OGI_BFLOAT16},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].dtype;
    return OGI_DTYPE_UNDEFINED;
}

static ogi_status cast_read_to(const op_ctx *c, ogi_dtype *out)
{
    const onnx_attr *a = op_attr(c, "to");
    if (a == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute 'to' is required");
    if (a->type == ONNX_ATTR_STRING) {
        *out = cast_dtype_from_name(a->s);
        if (*out == OGI_DTYPE_UNDEFINED)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute to='%s' is not a data type", a->s);
        return OGI_OK;
    }
    if (a->type != ONNX_ATTR_INT || !dtype_is_valid((int)a->i))
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute 'to' is not a valid data type");
    *out = (ogi_dtype)a->i;
    return OGI_OK;
}

/* saturate (opset 19+) and round_mode (opset 24+). */
static ogi_status cast_read_options(const op_ctx *c, cast_options *o)
{
    *o = cast_default_options();
    if (c->opset >= 19)
        o->saturate = op_attr_int(c, "saturate", 1) != 0;
    const char *mode = c->opset >= 24 ? op_attr_string(c, "round_mode", "up") : "up";
    if (strcmp(mode, "up") == 0)
        o->round_mode = CAST_ROUND_UP;
    else if (strcmp(mode, "down") == 0)
        o->round_mode = CAST_ROUND_DOWN;
    else if (strcmp(mode, "nearest") == 0)
        o->round_mode = CAST_ROUND_NEAREST;
    else
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute round_mode='%s' is not valid", mode);
    return OGI_OK;
}

static ogi_status cast_check_dtype(const op_ctx *c, const char *what, ogi_dtype t)
{
    if (t == OGI_STRING)
        return op_error(c, OGI_ERR_UNSUPPORTED, "%s: string tensors are not supported", what);
    if (!cast_dtype_supported(t))
        return op_error(c, OGI_ERR_UNSUPPORTED, "%s: dtype %s is not supported", what,
                        ogi_dtype_name(t));
    return OGI_OK;
}

static ogi_status cast_to(op_ctx *c, ogi_dtype to)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *in = c->in[0];
    cast_options opt;
    if ((st = cast_read_options(c, &opt)) != OGI_OK ||
        (st = cast_check_dtype(c, "input 0", in->dtype)) != OGI_OK ||
        (st = cast_check_dtype(c, "target type", to)) != OGI_OK)
        return st;
    /* to the same type: the values as they are (exported RMSNorms cast
     * float32 to float32 twice per layer) */
    if (to == in->dtype && to != OGI_STRING && !cast_is_packed(to))
        return op_alloc_view(c, 0, 0, to, in->rank, in->dims);
    if ((st = op_alloc(c, 0, to, in->rank, in->dims)) != OGI_OK)
        return st;
    ogi_tensor *out = c->out[0];
    if (cast_is_packed(to) && out->nbytes > 0)
        memset(out->data, 0, out->nbytes); /* defined padding bits */
    cast_job job = {in, out, tensor_numel(in), opt};
    int64_t tasks = (job.n + CAST_TASK - 1) / CAST_TASK;
    threadpool_parallel_for(c->pool, tasks, 16, cast_job_run, &job);
    return OGI_OK;
}

/* Cast: converts input 0 to the dtype of attribute `to`. */
static ogi_status cast_run(op_ctx *c)
{
    ogi_dtype to;
    ogi_status st = cast_read_to(c, &to);
    if (st != OGI_OK)
        return st;
    return cast_to(c, to);
}

/* CastLike: converts input 0 to the dtype of input 1 (whose data is unused). */
static ogi_status castlike_run(op_ctx *c)
{
    ogi_status st = op_require_input(c, 1);
    if (st != OGI_OK)
        return st;
    return cast_to(c, c->in[1]->dtype);
}

/* BitCast: reinterprets the bits of input 0 as a dtype of the same width. */
static ogi_status bitcast_run(op_ctx *c)
{
    ogi_dtype to;
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK || (st = cast_read_to(c, &to)) != OGI_OK)
        return st;
    const ogi_tensor *in = c->in[0];
    if (in->dtype == OGI_STRING || to == OGI_STRING)
        return op_error(c, OGI_ERR_UNSUPPORTED, "string tensors are not supported");
    int bits = ogi_dtype_bits(in->dtype);
    if (bits == 0 || bits != ogi_dtype_bits(to))
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "input 0: cannot bitcast %s (%d bits) to %s (%d bits)",
                        ogi_dtype_name(in->dtype), bits, ogi_dtype_name(to), ogi_dtype_bits(to));
    if ((st = op_alloc(c, 0, to, in->rank, in->dims)) != OGI_OK)
        return st;
    ogi_tensor *out = c->out[0];
    size_t n = in->nbytes < out->nbytes ? in->nbytes : out->nbytes;
    if (n > 0)
        memcpy(out->data, in->data, n);
    return OGI_OK;
}

const op_kernel op_kernels_cast[] = {
    {"", "Cast", 1, cast_run},
    {"", "CastLike", 15, castlike_run},
    {"", "BitCast", 26, bitcast_run},
    {NULL, NULL, 0, NULL},
};
