/* Out-of-line vecmath loops: float32 dot products, one per instruction set,
 * for the GEMV of the fused MatMulTransposeB and the sum of squares of
 * RMSNormalization, the maximum of a row for Softmax and the attention
 * kernel, and the exp-sum of a vocabulary's logits for the sampler. */
#include "ops/vecmath.h"

#include <immintrin.h>
#include <math.h>

VECMATH_TARGET_AVX2 float vecmath_dot_avx2(const float *x, const float *w, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(w + i + 8), s1);
    }
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++)
        s += x[i] * w[i];
    return s;
}

VECMATH_TARGET_AVX512 float vecmath_dot_avx512(const float *x, const float *w, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(w + i + 16), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++)
        s += x[i] * w[i];
    return s;
}

/* The last partial vector reads -inf past n. */
VECMATH_TARGET_AVX2 float vecmath_max_avx2(const float *x, int64_t n)
{
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
    __m256 m = neg_inf;
    for (int64_t j = 0; j < n; j += 8) {
        const int32_t left = n - j >= 8 ? 8 : (int32_t)(n - j);
        const __m256i k =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        m = _mm256_max_ps(
            m, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + j, k), _mm256_castsi256_ps(k)));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

VECMATH_TARGET_AVX512 float vecmath_max_avx512(const float *x, int64_t n)
{
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    __m512 m = neg_inf;
    for (int64_t j = 0; j < n; j += 16) {
        m = _mm512_max_ps(m, _mm512_mask_loadu_ps(neg_inf, vecmath_mask16(n - j), x + j));
    }
    return _mm512_reduce_max_ps(m);
}

VECMATH_TARGET_AVX512 float vecmath_sum_avx512(const float *x, int64_t n)
{
    __m512 s = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_add_ps(s, _mm512_loadu_ps(x + i));
    float sum = _mm512_reduce_add_ps(s);
    for (; i < n; i++)
        sum += x[i];
    return sum;
}

VECMATH_TARGET_AVX2 float vecmath_sum_avx2(const float *x, int64_t n)
{
    __m256 s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    for (; i < n; i++)
        sum += x[i];
    return sum;
}

enum { VECMATH_EXP_BLOCK = 256 };

/* One block (n <= VECMATH_EXP_BLOCK): the exponentials in a loop the
 * compiler vectorises, then their sum in lanes. */
VECMATH_TARGET_AVX512 static float vecmath_exp_sum_block_avx512(const float *x, int64_t n,
                                                                float max)
{
    float e[VECMATH_EXP_BLOCK];
    for (int64_t i = 0; i < n; i++)
        e[i] = vecmath_expf(x[i] - max);
    return vecmath_sum_avx512(e, n);
}

VECMATH_TARGET_AVX2 static float vecmath_exp_sum_block_avx2(const float *x, int64_t n, float max)
{
    float e[VECMATH_EXP_BLOCK];
    for (int64_t i = 0; i < n; i++)
        e[i] = vecmath_expf(x[i] - max);
    return vecmath_sum_avx2(e, n);
}

static float vecmath_exp_sum_block(const float *x, int64_t n, float max)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += vecmath_expf(x[i] - max);
    return sum;
}

double vecmath_exp_sum(const float *x, int64_t n, float max)
{
    const vecmath_isa isa = vecmath_best_isa();
    double total = 0.0;
    for (int64_t i = 0; i < n; i += VECMATH_EXP_BLOCK) {
        const int64_t len = n - i < VECMATH_EXP_BLOCK ? n - i : VECMATH_EXP_BLOCK;
        total += isa == VECMATH_AVX512 ? vecmath_exp_sum_block_avx512(x + i, len, max)
                 : isa == VECMATH_AVX2 ? vecmath_exp_sum_block_avx2(x + i, len, max)
                                       : vecmath_exp_sum_block(x + i, len, max);
    }
    return total;
}

VECMATH_TARGET_AVX512 static int64_t vecmath_argmax_avx512(const float *x, int64_t n)
{
    const __m512 max = _mm512_set1_ps(vecmath_max_avx512(x, n));
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 hit = _mm512_mask_cmp_ps_mask(
            vecmath_mask16(n - j), _mm512_maskz_loadu_ps(vecmath_mask16(n - j), x + j), max,
            _CMP_EQ_OQ);
        if (hit != 0)
            return j + __builtin_ctz(hit);
    }
    return 0;
}

int64_t vecmath_argmax(const float *x, int64_t n)
{
    if (vecmath_best_isa() == VECMATH_AVX512)
        return vecmath_argmax_avx512(x, n);
    int64_t best = 0;
    for (int64_t v = 1; v < n; v++)
        if (x[v] > x[best])
            best = v;
    return best;
}
