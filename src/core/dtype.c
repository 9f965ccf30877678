#include "core/dtype.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    int bits;
} dtype_table[OGI_DTYPE_COUNT] = {
    [OGI_DTYPE_UNDEFINED] = {"undefined", 0},
    [OGI_FLOAT32] = {"float32", 32},
    [OGI_UINT8] = {"uint8", 8},
    [OGI_INT8] = {"int8", 8},
    [OGI_UINT16] = {"uint16", 16},
    [OGI_INT16] = {"int16", 16},
    [OGI_INT32] = {"int32", 32},
    [OGI_INT64] = {"int64", 64},
    [OGI_STRING] = {"string", 0},
    [OGI_BOOL] = {"bool", 8},
    [OGI_FLOAT16] = {"float16", 16},
    [OGI_FLOAT64] = {"float64", 64},
    [OGI_UINT32] = {"uint32", 32},
    [OGI_UINT64] = {"uint64", 64},
    [OGI_COMPLEX64] = {"complex64", 64},
    [OGI_COMPLEX128] = {"complex128", 128},
    [OGI_BFLOAT16] = {"bfloat16", 16},
    [OGI_FLOAT8E4M3FN] = {"float8e4m3fn", 8},
    [OGI_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8},
    [OGI_FLOAT8E5M2] = {"float8e5m2", 8},
    [OGI_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8},
    [OGI_UINT4] = {"uint4", 4},
    [OGI_INT4] = {"int4", 4},
    [OGI_FLOAT4E2M1] = {"float4e2m1", 4},
    [OGI_FLOAT8E8M0] = {"float8e8m0", 8},
    [OGI_UINT2] = {"uint2", 2},
    [OGI_INT2] = {"int2", 2},
};

bool dtype_is_valid(int dtype)
{
    return dtype > 0 && dtype < OGI_DTYPE_COUNT;
}

const char *ogi_dtype_name(ogi_dtype dtype)
{
    if (!dtype_is_valid((int)dtype))
        return "undefined";
    return dtype_table[dtype].name;
}

int ogi_dtype_bits(ogi_dtype dtype)
{
    if (!dtype_is_valid((int)dtype))
        return 0;
    return dtype_table[dtype].bits;
}

int dtype_size(ogi_dtype dtype)
{
    int bits = ogi_dtype_bits(dtype);
    return bits % 8 == 0 ? bits / 8 : 0;
}

bool dtype_is_float(ogi_dtype dtype)
{
    return dtype == OGI_FLOAT32 || dtype == OGI_FLOAT16 || dtype == OGI_FLOAT64 ||
           dtype == OGI_BFLOAT16;
}

bool dtype_is_signed(ogi_dtype dtype)
{
    return dtype == OGI_INT8 || dtype == OGI_INT16 || dtype == OGI_INT32 || dtype == OGI_INT64;
}

bool dtype_is_integer(ogi_dtype dtype)
{
    return dtype_is_signed(dtype) || dtype == OGI_UINT8 || dtype == OGI_UINT16 ||
           dtype == OGI_UINT32 || dtype == OGI_UINT64;
}

float dtype_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* subnormal: value = mant * 2^-24 */
        float f = (float)mant * 0x1p-24f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

uint16_t dtype_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or NaN (keep NaN quiet) */
        return (uint16_t)(sign | 0x7c00 |
                          (absx > 0x7f800000u ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) {
        /* result is subnormal or zero: scale so the integer part is the
         * mantissa, and let the FPU round to nearest even */
        float a;
        memcpy(&a, &absx, 4);
        float scaled = a * 0x1p24f;
        uint32_t m = (uint32_t)nearbyintf(scaled);
        return (uint16_t)(sign | m);
    }
    uint32_t mant = absx & 0x7fffff;
    uint32_t exp = (absx >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float dtype_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t dtype_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    uint32_t rounding = 0x7fff + ((x >> 16) & 1);
    return (uint16_t)((x + rounding) >> 16);
}

double dtype_get_f64(const void *data, ogi_dtype dtype, int64_t i)
{
    switch (dtype) {
    case OGI_FLOAT32:
        return ((const float *)data)[i];
    case OGI_FLOAT64:
        return ((const double *)data)[i];
    case OGI_FLOAT16:
        return dtype_f16_to_f32(((const uint16_t *)data)[i]);
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(((const uint16_t *)data)[i]);
    case OGI_INT8:
        return ((const int8_t *)data)[i];
    case OGI_INT16:
        return ((const int16_t *)data)[i];
    case OGI_INT32:
        return ((const int32_t *)data)[i];
    case OGI_INT64:
        return (double)((const int64_t *)data)[i];
    case OGI_UINT8:
        return ((const uint8_t *)data)[i];
    case OGI_UINT16:
        return ((const uint16_t *)data)[i];
    case OGI_UINT32:
        return ((const uint32_t *)data)[i];
    case OGI_UINT64:
        return (double)((const uint64_t *)data)[i];
    case OGI_BOOL:
        return ((const uint8_t *)data)[i] ? 1.0 : 0.0;
    default:
        return NAN;
    }
}

int64_t dtype_get_i64(const void *data, ogi_dtype dtype, int64_t i)
{
    switch (dtype) {
    case OGI_INT8:
        return ((const int8_t *)data)[i];
    case OGI_INT16:
        return ((const int16_t *)data)[i];
    case OGI_INT32:
        return ((const int32_t *)data)[i];
    case OGI_INT64:
        return ((const int64_t *)data)[i];
    case OGI_UINT8:
        return ((const uint8_t *)data)[i];
    case OGI_UINT16:
        return ((const uint16_t *)data)[i];
    case OGI_UINT32:
        return ((const uint32_t *)data)[i];
    case OGI_UINT64:
        return (int64_t)((const uint64_t *)data)[i];
    case OGI_BOOL:
        return ((const uint8_t *)data)[i] ? 1 : 0;
    default: {
        double v = dtype_get_f64(data, dtype, i);
        if (!(v > -9.2e18 && v < 9.2e18))
            return v > 0 ? INT64_MAX : INT64_MIN;
        return (int64_t)v;
    }
    }
}

void dtype_set_f64(void *data, ogi_dtype dtype, int64_t i, double v)
{
    switch (dtype) {
    case OGI_FLOAT32:
        ((float *)data)[i] = (float)v;
        break;
    case OGI_FLOAT64:
        ((double *)data)[i] = v;
        break;
    case OGI_FLOAT16:
        ((uint16_t *)data)[i] = dtype_f32_to_f16((float)v);
        break;
    case OGI_BFLOAT16:
        ((uint16_t *)data)[i] = dtype_f32_to_bf16((float)v);
        break;
    case OGI_BOOL:
        ((uint8_t *)data)[i] = v != 0.0;
        break;
    default:
        if (dtype_is_integer(dtype)) {
            int64_t x = isnan(v)       ? 0
                        : v >= 9.2e18  ? INT64_MAX
                        : v <= -9.2e18 ? INT64_MIN
                                       : (int64_t)v;
            dtype_set_i64(data, dtype, i, x);
        }
        break; /* other types need the converters in ops/cast.h */
    }
}

void dtype_set_i64(void *data, ogi_dtype dtype, int64_t i, int64_t v)
{
    switch (dtype) {
    case OGI_INT8:
        ((int8_t *)data)[i] = (int8_t)v;
        break;
    case OGI_INT16:
        ((int16_t *)data)[i] = (int16_t)v;
        break;
    case OGI_INT32:
        ((int32_t *)data)[i] = (int32_t)v;
        break;
    case OGI_INT64:
        ((int64_t *)data)[i] = v;
        break;
    case OGI_UINT8:
        ((uint8_t *)data)[i] = (uint8_t)v;
        break;
    case OGI_UINT16:
        ((uint16_t *)data)[i] = (uint16_t)v;
        break;
    case OGI_UINT32:
        ((uint32_t *)data)[i] = (uint32_t)v;
        break;
    case OGI_UINT64:
        ((uint64_t *)data)[i] = (uint64_t)v;
        break;
    case OGI_BOOL:
        ((uint8_t *)data)[i] = v != 0;
        break;
    default:
        if (dtype_is_float(dtype))
            dtype_set_f64(data, dtype, i, (double)v);
        break; /* other types need the converters in ops/cast.h */
    }
}
