/* Float32 math in forms compilers vectorise, shared by the kernels that
 * apply e^x to whole rows (Sigmoid, SiLU, Softmax, the fused SwiGLU).
 *
 * vecmath_expf(): e^x as x = n ln2 + r with |r| <= ln2/2, e^r by the Cephes
 * minimax polynomial (about 1 ulp), 2^n built in the exponent bits.
 * Everything is select-free float math or integer selects on the bits, since
 * GCC will not if-convert float compares under its default -ftrapping-math.
 * |x| is clamped to 87 so 2^n stays normal (e^87 ~ 6e37: sigmoids are
 * unaffected at float precision); below -87 (and at -inf) the result is 0,
 * so masked softmax keys weigh exactly nothing; NaN skips the clamp and
 * propagates. Loops over it are compiled once per
 * instruction set (VECMATH_TARGET_*) and chosen at run time. */
#ifndef OGI_OPS_VECMATH_H
#define OGI_OPS_VECMATH_H

#include <stdint.h>
#include <string.h>

static inline float vecmath_expf(float x)
{
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const uint32_t round_magic_bits = 0x4b400000u, clamp_bits = 0x42ae0000u; /* 87.0f */
    uint32_t xb;
    memcpy(&xb, &x, sizeof(xb));
    uint32_t mag = xb & 0x7fffffffu;
    uint32_t keep = (xb >> 31) != 0 && mag > clamp_bits && mag <= 0x7f800000u ? 0u : ~0u;
    xb = mag > clamp_bits && mag <= 0x7f800000u ? (xb & 0x80000000u) | clamp_bits : xb;
    memcpy(&x, &xb, sizeof(x));
    float t = x * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f; /* ln2 split so n*hi is exact */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    /* n sits in t's low mantissa bits: 2^n = (n + 127) << 23, with no
     * float-to-int conversion (undefined for NaN) */
    uint32_t tb;
    memcpy(&tb, &t, sizeof(tb));
    uint32_t scale_bits = ((tb - round_magic_bits + 127u) << 23) & keep;
    float scale;
    memcpy(&scale, &scale_bits, sizeof(scale));
    return e * scale;
}

/* 1 / (1 + e^-x) */
static inline float vecmath_sigmoidf(float x)
{
    return 1.0f / (1.0f + vecmath_expf(-x));
}

/* Instruction sets a vecmath loop is compiled for. */
typedef enum vecmath_isa {
    VECMATH_GENERIC = 0,
    VECMATH_AVX2,
    VECMATH_AVX512,
} vecmath_isa;

/* The AVX-512 lane mask of the first n of 16 lanes (all for n >= 16, none
 * for n <= 0): the tail of a row that does not fill a vector. */
static inline uint16_t vecmath_mask16(int64_t n)
{
    return n >= 16 ? (uint16_t)0xFFFF : n <= 0 ? (uint16_t)0 : (uint16_t)((1u << n) - 1);
}

static inline vecmath_isa vecmath_best_isa(void)
{
    if (__builtin_cpu_supports("avx512f"))
        return VECMATH_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return VECMATH_AVX2;
    return VECMATH_GENERIC;
}

#define VECMATH_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define VECMATH_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))

/* sum x[i] * w[i] in float lanes (vecmath.c), for CPUs with AVX2+FMA and
 * AVX-512 respectively. */
float vecmath_dot_avx2(const float *x, const float *w, int64_t n);
float vecmath_dot_avx512(const float *x, const float *w, int64_t n);

/* The largest of x[0..n) (-inf for n = 0), for the softmax of a row and of
 * an attention tile. */
float vecmath_max_avx2(const float *x, int64_t n);
float vecmath_max_avx512(const float *x, int64_t n);

/* sum of x[0..n) in float lanes (a softmax row's denominator). */
float vecmath_sum_avx2(const float *x, int64_t n);
float vecmath_sum_avx512(const float *x, int64_t n);

/* sum e^(x[i] - max) over x[0..n), with vecmath_expf: float lanes within
 * blocks of 256, double across them. The denominator of a softmax over a
 * whole vocabulary (the log-probability of a sampled token), vectorised on
 * the widest instruction set the CPU runs. */
double vecmath_exp_sum(const float *x, int64_t n, float max);

/* The first index of the largest of x[0..n) (n >= 1, no NaN): greedy
 * decoding's argmax over a vocabulary, one vectorised pass for the maximum
 * and one to the first element equal to it. */
int64_t vecmath_argmax(const float *x, int64_t n);

#endif
