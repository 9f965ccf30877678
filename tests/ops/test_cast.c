/* Tests of the element conversions in src/ops/cast.c and src/core/dtype.c:
 * every float8, float4 and float16 bit pattern round-trips through float32,
 * and rounding of random values into float16, bfloat16 and the float8 types
 * agrees with a plain reference that picks the nearest entry of a table of
 * all representable values (ties to the even code). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "ops/cast.h"

static int test_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (test_failures < 20) {                                                              \
                fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                    \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fprintf(stderr, "\n");                                                             \
            }                                                                                      \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

static uint64_t test_rng = 0x9e3779b97f4a7c15ull;

static uint32_t test_random(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (uint32_t)(test_rng >> 16);
}

static float test_f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- the reference: a sorted table of a format's non-negative values ---------- */

typedef struct test_format {
    ogi_dtype dtype;
    int bits; /* 8, 16 or 4 */
    uint32_t sign_bit;
    uint32_t max_code; /* largest finite magnitude code */
    uint32_t overflow; /* +overflow without saturation */
    bool fnuz;
} test_format;

static const test_format test_formats[] = {
    {OGI_FLOAT8E4M3FN, 8, 0x80, 0x7e, 0x7f, false}, {OGI_FLOAT8E4M3FNUZ, 8, 0x80, 0x7f, 0x80, true},
    {OGI_FLOAT8E5M2, 8, 0x80, 0x7b, 0x7c, false},   {OGI_FLOAT8E5M2FNUZ, 8, 0x80, 0x7f, 0x80, true},
    {OGI_FLOAT4E2M1, 4, 0x8, 0x7, 0x7, false},
};

/* Decodes one code of a format with cast_elements (itself checked against
 * known values in test_known_values). */
static double test_decode(ogi_dtype dtype, uint32_t code)
{
    uint8_t byte = (uint8_t)code;
    float f;
    cast_elements(&byte, dtype, 0, &f, OGI_FLOAT32, 0, 1, NULL);
    return f;
}

static uint32_t test_encode(ogi_dtype dtype, double v, bool saturate)
{
    cast_options o = cast_default_options();
    o.saturate = saturate;
    uint8_t byte = 0;
    cast_elements(&v, OGI_FLOAT64, 0, &byte, dtype, 0, 1, &o);
    return byte;
}

/* The code nearest to |v| among table[0..n] (table[n] being the value one
 * step past the largest finite one): ties go to the even code. Returns n for
 * overflow. Plain double arithmetic: midpoints of two table entries are
 * exact. */
static uint32_t test_nearest(const double *table, uint32_t n, double a)
{
    uint32_t lo = 0, hi = n;
    if (a >= table[n])
        return n;
    while (hi - lo > 1) { /* table[lo] <= a < table[hi] */
        uint32_t mid = (lo + hi) / 2;
        if (table[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    double half = (table[lo] + table[hi]) / 2;
    if (a < half)
        return lo;
    if (a > half)
        return hi;
    return (lo & 1) ? hi : lo;
}

/* ---- float8 and float4 --------------------------------------------------------- */

static void test_roundtrip_minifloat(const test_format *f)
{
    uint32_t n_codes = 1u << f->bits;
    for (uint32_t code = 0; code < n_codes; code++) {
        double v = test_decode(f->dtype, code);
        uint32_t back = test_encode(f->dtype, v, false);
        if (isnan(v)) {
            CHECK(isnan(test_decode(f->dtype, back)), "%s: NaN code 0x%x re-encodes to 0x%x",
                  ogi_dtype_name(f->dtype), code, back);
            continue;
        }
        CHECK(back == code, "%s: code 0x%x (%g) re-encodes to 0x%x", ogi_dtype_name(f->dtype), code,
              v, back);
    }
}

static void test_minifloat_table(const test_format *f, double *table)
{
    for (uint32_t code = 0; code <= f->max_code; code++)
        table[code] = test_decode(f->dtype, code);
    double ulp = table[f->max_code] - table[f->max_code - 1];
    table[f->max_code + 1] = table[f->max_code] + ulp;
    for (uint32_t code = 1; code <= f->max_code; code++)
        CHECK(table[code] > table[code - 1], "%s: values not increasing at 0x%x",
              ogi_dtype_name(f->dtype), code);
}

static uint32_t test_reference_minifloat(const test_format *f, const double *table, double v,
                                         bool saturate)
{
    bool neg = signbit(v);
    uint32_t sign = neg ? f->sign_bit : 0;
    uint32_t code = test_nearest(table, f->max_code + 1, fabs(v));
    if (code > f->max_code)
        code = saturate ? f->max_code : f->overflow;
    if (f->fnuz && (code == 0 || code == f->overflow))
        return code;
    return code | sign;
}

static double test_random_value(double max)
{
    uint32_t kind = test_random() % 4;
    if (kind == 0) /* any float32 bit pattern */
        return test_f32_from_bits(test_random());
    double u = (double)test_random() / 4294967296.0 * 2.0 - 1.0;
    if (kind == 1)
        return u * 2.0 * max;
    if (kind == 2) /* near the subnormals */
        return ldexp(u, -(int)(test_random() % 24));
    return (float)(u * max); /* float32, as most inputs are */
}

static void test_rounding_minifloat(const test_format *f)
{
    double table[300];
    test_minifloat_table(f, table);
    double max = table[f->max_code];
    for (uint32_t code = 0; code <= f->max_code; code++) { /* every tie, both signs */
        double mid = (table[code] + table[code + 1]) / 2;
        for (int sat = 0; sat < 2; sat++) {
            for (int neg = 0; neg < 2; neg++) {
                double v = neg ? -mid : mid;
                uint32_t got = test_encode(f->dtype, v, sat);
                uint32_t want = test_reference_minifloat(f, table, v, sat);
                CHECK(got == want, "%s: tie %.17g (saturate=%d) gave 0x%x, want 0x%x",
                      ogi_dtype_name(f->dtype), v, sat, got, want);
            }
        }
    }
    for (int i = 0; i < 200000; i++) {
        double v = test_random_value(max);
        if (isnan(v))
            continue;
        for (int sat = 0; sat < 2; sat++) {
            uint32_t got = test_encode(f->dtype, v, sat);
            uint32_t want = test_reference_minifloat(f, table, v, sat);
            CHECK(got == want, "%s: %.17g (saturate=%d) gave 0x%x, want 0x%x",
                  ogi_dtype_name(f->dtype), v, sat, got, want);
        }
    }
}

/* ---- float16 and bfloat16 -------------------------------------------------------- */

static void test_roundtrip_f16(void)
{
    for (uint32_t code = 0; code < 0x10000; code++) {
        float f = dtype_f16_to_f32((uint16_t)code);
        uint16_t via_f32 = dtype_f32_to_f16(f);
        uint16_t via_f64 = cast_f64_to_f16(f);
        if (isnan(f)) {
            CHECK(isnan(dtype_f16_to_f32(via_f32)) && isnan(dtype_f16_to_f32(via_f64)),
                  "f16 NaN 0x%x lost", code);
            continue;
        }
        CHECK(via_f32 == code && via_f64 == code, "f16 0x%x re-encodes to 0x%x / 0x%x", code,
              via_f32, via_f64);
        uint16_t b = dtype_f32_to_bf16(dtype_bf16_to_f32((uint16_t)code));
        if (!isnan(dtype_bf16_to_f32((uint16_t)code)))
            CHECK(b == code, "bf16 0x%x re-encodes to 0x%x", code, b);
    }
}

/* Table of the non-negative finite values of float16 or bfloat16, plus the
 * value one step past the largest. */
static double *test_half_table(bool bf16, uint32_t *n)
{
    uint32_t max_code = bf16 ? 0x7f7f : 0x7bff;
    double *table = malloc((max_code + 2) * sizeof(double));
    if (table == NULL)
        return NULL;
    for (uint32_t code = 0; code <= max_code; code++)
        table[code] = bf16 ? dtype_bf16_to_f32((uint16_t)code) : dtype_f16_to_f32((uint16_t)code);
    table[max_code + 1] = 2 * table[max_code] - table[max_code - 1];
    *n = max_code + 1;
    return table;
}

static void test_rounding_half(bool bf16)
{
    uint32_t n;
    double *table = test_half_table(bf16, &n);
    CHECK(table != NULL, "out of memory");
    if (table == NULL)
        return;
    for (uint32_t code = 0; code < n; code++) { /* every tie (exact in float32) */
        float x = (float)((table[code] + table[code + 1]) / 2);
        uint32_t want = test_nearest(table, n, x);
        want = want == n ? (bf16 ? 0x7f80u : 0x7c00u) : want;
        uint16_t got = bf16 ? dtype_f32_to_bf16(x) : dtype_f32_to_f16(x);
        CHECK(got == want, "%s(tie %.9g) = 0x%x, want 0x%x", bf16 ? "bf16" : "f16", x, got, want);
    }
    for (int i = 0; i < 1000000; i++) {
        float x = i % 2 ? test_f32_from_bits(test_random())
                        : (float)test_random_value(bf16 ? 3.4e38 : 65504.0);
        if (isnan(x))
            continue;
        uint32_t want = test_nearest(table, n, fabs((double)x));
        want = want == n ? (bf16 ? 0x7f80u : 0x7c00u) : want;
        want |= signbit(x) ? 0x8000u : 0;
        uint16_t got = bf16 ? dtype_f32_to_bf16(x) : dtype_f32_to_f16(x);
        CHECK(got == want, "%s(%.9g) = 0x%x, want 0x%x", bf16 ? "bf16" : "f16", x, got, want);
        if (!bf16) {
            uint16_t got64 = cast_f64_to_f16(x);
            CHECK(got64 == want, "cast_f64_to_f16(%.9g) = 0x%x, want 0x%x", x, got64, want);
        }
    }
    free(table);
}

/* A double that float32 cannot hold rounds once into float16. */
static void test_f64_to_f16_single_rounding(void)
{
    double just_above_tie = 1.0 + ldexp(1.0, -11) + ldexp(1.0, -40); /* float32: the tie */
    CHECK(cast_f64_to_f16(just_above_tie) == 0x3c01, "double rounding to float16");
}

/* ---- values from the ONNX conformance data and the sub-byte integers ------------- */

static void test_known_values(void)
{
    const float in[] = {0.47892547f, 1e6f, 1e-7f, INFINITY, -INFINITY, -0.0f};
    const uint8_t e4m3fn[] = {0x2f, 0x7e, 0x00, 0x7e, 0xfe, 0x80};
    const uint8_t e5m2_nosat[] = {0x38, 0x7c, 0x00, 0x7c, 0xfc, 0x80};
    uint8_t out[6];
    cast_elements(in, OGI_FLOAT32, 0, out, OGI_FLOAT8E4M3FN, 0, 6, NULL);
    CHECK(memcmp(out, e4m3fn, 6) == 0, "float32 to float8e4m3fn");
    cast_options nosat = cast_default_options();
    nosat.saturate = false;
    cast_elements(in, OGI_FLOAT32, 0, out, OGI_FLOAT8E5M2, 0, 6, &nosat);
    CHECK(memcmp(out, e5m2_nosat, 6) == 0, "float32 to float8e5m2 without saturation");

    const float e8_in[] = {0.0f, 0.124f, 0.25f, 1.1f, 2.0f, 8.0f};
    const uint8_t e8_up[] = {0x00, 0x7c, 0x7d, 0x80, 0x80, 0x82};
    cast_elements(e8_in, OGI_FLOAT32, 0, out, OGI_FLOAT8E8M0, 0, 6, NULL);
    CHECK(memcmp(out, e8_up, 6) == 0, "float32 to float8e8m0 (round up)");

    /* int4 wraps: -9 -> 7, 8 -> -8; packed low nibble first */
    const float i4_in[] = {-9.0f, -8.0f, -1.0f, 0.0f, 7.0f, 8.0f, 15.0f};
    uint8_t packed[4];
    memset(packed, 0, sizeof(packed));
    cast_elements(i4_in, OGI_FLOAT32, 0, packed, OGI_INT4, 0, 7, NULL);
    CHECK(packed[0] == 0x87 && packed[1] == 0x0f && packed[2] == 0x87 && packed[3] == 0x0f,
          "float32 to int4: %02x %02x %02x %02x", packed[0], packed[1], packed[2], packed[3]);
    int8_t back[7];
    cast_elements(packed, OGI_INT4, 0, back, OGI_INT8, 0, 7, NULL);
    const int8_t i4_want[] = {7, -8, -1, 0, 7, -8, -1};
    CHECK(memcmp(back, i4_want, 7) == 0, "int4 to int8");

    const uint8_t f4_want[] = {0x1, 0x0, 0x2, 0xe}; /* 0.48, 0.25, 1.05, -3.5 */
    const float f4_in[] = {0.48f, 0.25f, 1.05f, -3.5f};
    memset(packed, 0, sizeof(packed));
    cast_elements(f4_in, OGI_FLOAT32, 0, packed, OGI_FLOAT4E2M1, 0, 4, NULL);
    CHECK(packed[0] == (f4_want[0] | f4_want[1] << 4) &&
              packed[1] == (f4_want[2] | f4_want[3] << 4),
          "float32 to float4e2m1: %02x %02x", packed[0], packed[1]);

    const int64_t big = INT64_MAX;
    float f;
    cast_elements(&big, OGI_INT64, 0, &f, OGI_FLOAT32, 0, 1, NULL);
    CHECK(f == 9223372036854775808.0f, "int64 max to float32");
    const uint64_t ubig = UINT64_MAX;
    double d;
    cast_elements(&ubig, OGI_UINT64, 0, &d, OGI_FLOAT64, 0, 1, NULL);
    CHECK(d == 18446744073709551616.0, "uint64 max to float64");
}

int main(void)
{
    for (size_t i = 0; i < sizeof(test_formats) / sizeof(test_formats[0]); i++) {
        test_roundtrip_minifloat(&test_formats[i]);
        test_rounding_minifloat(&test_formats[i]);
    }
    test_roundtrip_f16();
    test_rounding_half(false);
    test_rounding_half(true);
    test_f64_to_f16_single_rounding();
    test_known_values();
    if (test_failures != 0) {
        fprintf(stderr, "test_cast: %d checks failed\n", test_failures);
        return 1;
    }
    printf("test_cast: all checks passed\n");
    return 0;
}
