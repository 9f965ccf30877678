/* The fast Attention kernel (see attention.h): float32, FlashAttention-style.
 *
 * Work is split into units of (batch b, KV head, block of query positions,
 * key range). A unit stacks the query rows of every query head of its GQA
 * group (row r = g * qn + i: head kv_head * group + g, position i0 + i), so
 * each K/V tile it reads serves all of them, and walks its keys in tiles:
 *
 *   S = (scale Q) K_tile^T        scores of the tile, rows x key_tile
 *   S = softcap(S) + mask         -inf outside each row's key range
 *   m' = max(m, rowmax S)         online softmax: running max m, sum l and
 *   P = exp(S - m'), l = l e^(m - m') + sum P,   unnormalised output O
 *   O = O e^(m - m') + P V_tile
 *
 * and finally Y = O / l. A row's key range [lo, hi) gathers the causal bound,
 * the window, the key padding (nonpad_kv_seqlen) and a short mask, so tiles
 * outside every row's range are skipped (half the work of causal prefill).
 * When the units are too few for the threads (decode with few heads), each
 * (b, head, query block) is also split over key ranges whose partial (O, m,
 * l) are merged at the end.
 *
 * The inner loops (Q K^T, P V, row max, exp-and-sum, softcap) exist as plain
 * C and as AVX2 / AVX-512 versions chosen at run time. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attention.h"
#include "ops/vecmath.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ATTENTION_X86 1
#endif

/* The inner loops of one instruction set.
 *   qk:      s[r][j] = dot(q row r, k row j)     r < rows, j < keys, over dim
 *   pv:      o[r] += sum_j p[r][j] v row j        over dim columns
 *   max:     the largest of x[0..n)
 *   exp_sum: x[j] = exp(x[j] - max), 0 for -inf; returns their sum
 *   softcap: x[j] = cap * tanh(x[j] / cap) */
typedef struct attention_ops {
    void (*qk)(const float *q, int64_t q_stride, int64_t rows, const float *k, int64_t k_stride,
               int64_t keys, int64_t dim, float *s, int64_t s_stride);
    void (*pv)(const float *p, int64_t p_stride, int64_t rows, const float *v, int64_t v_stride,
               int64_t keys, int64_t dim, float *o, int64_t o_stride);
    float (*max)(const float *x, int64_t n);
    float (*exp_sum)(float *x, int64_t n, float max);
    void (*softcap)(float *x, int64_t n, float cap);
} attention_ops;

/* ---- plain C ---------------------------------------------------------------- */

static void attention_qk_scalar(const float *q, int64_t q_stride, int64_t rows, const float *k,
                                int64_t k_stride, int64_t keys, int64_t dim, float *s,
                                int64_t s_stride)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < keys; j++) {
            const float *a = q + r * q_stride, *b = k + j * k_stride;
            /* eight partial sums: shorter chains, and rounding like the
             * vector versions' lanes */
            float part[8] = {0};
            for (int64_t e = 0; e < dim; e++)
                part[e % 8] += a[e] * b[e];
            s[r * s_stride + j] = ((part[0] + part[4]) + (part[1] + part[5])) +
                                  ((part[2] + part[6]) + (part[3] + part[7]));
        }
}

static void attention_pv_scalar(const float *p, int64_t p_stride, int64_t rows, const float *v,
                                int64_t v_stride, int64_t keys, int64_t dim, float *o,
                                int64_t o_stride)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < keys; j++) {
            const float w = p[r * p_stride + j], *x = v + j * v_stride;
            float *y = o + r * o_stride;
            for (int64_t e = 0; e < dim; e++)
                y[e] += w * x[e];
        }
}

static float attention_max_scalar(const float *x, int64_t n)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

static float attention_exp_sum_scalar(float *x, int64_t n, float max)
{
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        x[j] = expf(x[j] - max);
        sum += x[j];
    }
    return sum;
}

static void attention_softcap_scalar(float *x, int64_t n, float cap)
{
    for (int64_t j = 0; j < n; j++)
        x[j] = cap * tanhf(x[j] / cap);
}

static const attention_ops attention_ops_scalar = {
    attention_qk_scalar,      attention_pv_scalar,      attention_max_scalar,
    attention_exp_sum_scalar, attention_softcap_scalar,
};

#ifdef ATTENTION_X86

/* exp(x) and tanh(x) below follow Cephes' expf / tanhf: exp(x) = 2^n exp(r)
 * with r = x - n ln 2 in [-ln2/2, ln2/2] and a degree-5 polynomial for
 * (exp(r) - 1 - r) / r^2; tanh by an odd polynomial below 0.625, else
 * 1 - 2 / (exp(2x) + 1). About 1 ulp; exp gives 0 below -87.3 (and for -inf). */
#define ATTENTION_EXP_MIN -87.33654f
#define ATTENTION_EXP_MAX 88.37626f

/* How far ahead (in rows) the first pass over a K / V tile prefetches: decode
 * streams K and V from memory once, faster than the hardware prefetchers
 * alone fetch them. Later passes find the tile in cache. */
#define ATTENTION_PREFETCH_K_ROWS 16
#define ATTENTION_PREFETCH_V_ROWS 32
/* ---- AVX-512 ------------------------------------------------------------------ */

#define ATTENTION_AVX512 __attribute__((target("avx512f")))
#define ATTENTION_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

ATTENTION_AVX512_INLINE __m512 attention_exp_avx512(__m512 x)
{
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(ATTENTION_EXP_MIN), _CMP_LT_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(ATTENTION_EXP_MAX));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps((__mmask16)~tiny, _mm512_scalef_ps(p, n));
}

ATTENTION_AVX512_INLINE __m512 attention_tanh_avx512(__m512 x)
{
    const __m512 ax = _mm512_abs_ps(x), z = _mm512_mul_ps(x, x);
    __m512 small = _mm512_set1_ps(-5.70498872745e-3f);
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(2.06390887954e-2f));
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(-5.37397155531e-2f));
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(1.33314422036e-1f));
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(-3.33332819422e-1f));
    small = _mm512_fmadd_ps(_mm512_mul_ps(small, z), x, x);
    const __m512 e = attention_exp_avx512(_mm512_add_ps(ax, ax));
    __m512 large =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    /* copy x's sign onto large: tanh is odd */
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
    large = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(large), sign));
    const __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(is_small, large, small);
}

/* Horizontal sums of 16 vectors: lane q of the result is the sum of acc[q].
 * Four folds (256-bit halves, 128-bit lanes, then 32- and 64-bit elements)
 * each halve the vector count; fed in the order pos[], every sum lands in
 * its own lane. */
ATTENTION_AVX512_INLINE __m512 attention_reduce16_avx512(const __m512 *acc)
{
    static const int pos[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};
    __m512 t[8], u[4], v[2];
    for (int i = 0; i < 8; i++) {
        const __m512 a = acc[pos[i]], b = acc[pos[i + 8]];
        t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[i], t[i + 4], 0x88),
                             _mm512_shuffle_f32x4(t[i], t[i + 4], 0xDD));
    for (int i = 0; i < 2; i++)
        v[i] =
            _mm512_add_ps(_mm512_unpacklo_ps(u[i], u[i + 2]), _mm512_unpackhi_ps(u[i], u[i + 2]));
    const __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(v[0]), _mm512_castps_pd(v[1]));
    const __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(v[0]), _mm512_castps_pd(v[1]));
    return _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
}

/* acc[r * (16 / rows) + c] += q[r][e..e+16) * k[c][e..e+16) for `rows` (1, 2
 * or 4) rows (q_stride apart) and 16 / rows keys (k_stride apart; the
 * ones from n on repeat key 0), each key loaded once for all the rows
 * (lanes outside m are 0); prefetches the keys pf elements further when
 * prefetch is set. */
ATTENTION_AVX512_INLINE void attention_fma_tile_avx512(int rows, const float *q, int64_t q_stride,
                                                       const float *k, int64_t k_stride, int64_t n,
                                                       int64_t e, __mmask16 m, bool prefetch,
                                                       int64_t pf, __m512 *acc)
{
    const int keys = 16 / rows;
    __m512 x[4];
    for (int r = 0; r < rows; r++)
        x[r] = _mm512_maskz_loadu_ps(m, q + r * q_stride + e);
    for (int c = 0; c < keys; c++) {
        const float *kc = k + (c < n ? c : 0) * k_stride + e;
        const __m512 y = _mm512_maskz_loadu_ps(m, kc);
        if (prefetch)
            _mm_prefetch((const char *)(kc + pf), _MM_HINT_T0);
        for (int r = 0; r < rows; r++)
            acc[r * keys + c] = _mm512_fmadd_ps(x[r], y, acc[r * keys + c]);
    }
}

/* Lane r * (16 / rows) + c: dot(q row r, k row c). */
ATTENTION_AVX512_INLINE __m512 attention_dot_tile_avx512(int rows, const float *q, int64_t q_stride,
                                                         const float *k, int64_t k_stride,
                                                         int64_t n, int64_t dim, bool prefetch,
                                                         int64_t pf)
{
    __m512 acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_setzero_ps();
    int64_t e = 0;
    for (; e + 16 <= dim; e += 16)
        attention_fma_tile_avx512(rows, q, q_stride, k, k_stride, n, e, (__mmask16)0xFFFF, prefetch,
                                  pf, acc);
    if (e < dim)
        attention_fma_tile_avx512(rows, q, q_stride, k, k_stride, n, e, vecmath_mask16(dim - e),
                                  prefetch, pf, acc);
    return attention_reduce16_avx512(acc);
}

/* Stores the n first of the 16 / rows scores of each row. */
ATTENTION_AVX512_INLINE void attention_store_tile_avx512(int rows, __m512 dots, int64_t n, float *s,
                                                         int64_t s_stride)
{
    const int width = 16 / rows;
    if (rows == 1) {
        _mm512_mask_storeu_ps(s, vecmath_mask16(n), dots);
    } else if (n < width) {
        float tmp[16];
        _mm512_storeu_ps(tmp, dots);
        for (int r = 0; r < rows; r++)
            memcpy(s + r * s_stride, tmp + r * width, sizeof(float) * (size_t)n);
    } else if (rows == 2) {
        _mm256_storeu_ps(s, _mm512_castps512_ps256(dots));
        _mm256_storeu_ps(s + s_stride,
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dots), 1)));
    } else {
        _mm_storeu_ps(s, _mm512_castps512_ps128(dots));
        _mm_storeu_ps(s + s_stride, _mm512_extractf32x4_ps(dots, 1));
        _mm_storeu_ps(s + 2 * s_stride, _mm512_extractf32x4_ps(dots, 2));
        _mm_storeu_ps(s + 3 * s_stride, _mm512_extractf32x4_ps(dots, 3));
    }
}

/* Scores of `rows` (1, 2 or 4) rows of q against all the keys, 16 / rows
 * keys at a time. */
ATTENTION_AVX512_INLINE void attention_qk_tile_avx512(int rows, const float *q, int64_t q_stride,
                                                      const float *k, int64_t k_stride,
                                                      int64_t keys, int64_t dim, bool prefetch,
                                                      float *s, int64_t s_stride)
{
    const int width = 16 / rows;
    const int64_t pf = (rows == 1 ? 2 : 1) * ATTENTION_PREFETCH_K_ROWS * k_stride;
    int64_t j = 0;
    for (; j + width <= keys; j += width) {
        const __m512 dots = attention_dot_tile_avx512(rows, q, q_stride, k + j * k_stride, k_stride,
                                                      width, dim, prefetch, pf);
        attention_store_tile_avx512(rows, dots, width, s + j, s_stride);
    }
    if (j < keys) {
        const __m512 dots = attention_dot_tile_avx512(rows, q, q_stride, k + j * k_stride, k_stride,
                                                      keys - j, dim, prefetch, pf);
        attention_store_tile_avx512(rows, dots, keys - j, s + j, s_stride);
    }
}

/* Rows in groups of 4 against keys in groups of 4, then a pair of rows
 * against 8 keys, then a last row against 16: every K row is loaded once per
 * group of rows. Only the first pass over the keys prefetches ahead. */
static ATTENTION_AVX512 void attention_qk_avx512(const float *q, int64_t q_stride, int64_t rows,
                                                 const float *k, int64_t k_stride, int64_t keys,
                                                 int64_t dim, float *s, int64_t s_stride)
{
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
        attention_qk_tile_avx512(4, q + r * q_stride, q_stride, k, k_stride, keys, dim, r == 0,
                                 s + r * s_stride, s_stride);
    if (r + 2 <= rows) {
        attention_qk_tile_avx512(2, q + r * q_stride, q_stride, k, k_stride, keys, dim, r == 0,
                                 s + r * s_stride, s_stride);
        r += 2;
    }
    if (r < rows)
        attention_qk_tile_avx512(1, q + r * q_stride, q_stride, k, k_stride, keys, dim, r == 0,
                                 s + r * s_stride, s_stride);
}

/* 16 floats from p: the lanes in m, or all when full (no mask register in
 * the hot loop). */
ATTENTION_AVX512_INLINE __m512 attention_load16_avx512(const float *p, __mmask16 m, bool full)
{
    return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

ATTENTION_AVX512_INLINE void attention_store16_avx512(float *p, __mmask16 m, bool full, __m512 x)
{
    if (full)
        _mm512_storeu_ps(p, x);
    else
        _mm512_mask_storeu_ps(p, m, x);
}

/* o[r][0..16 * cols) += sum_j p[r][j] v[j][0..16 * cols) for `rows` (1..4)
 * rows and `cols` (1, 2 or 4) vectors of 16 columns; unless full, only the
 * lanes in m[]. Each accumulator is a chain of FMAs, one per key: when the
 * rows and columns make fewer than 8 chains, the keys go round-robin to 2
 * or 4 sets of accumulators, summed at the end, so that the chains'
 * latency does not bound the loop. Prefetches v pf elements ahead (0:
 * not at all). */
ATTENTION_AVX512_INLINE void attention_pv_block_avx512(int rows, int cols, bool full,
                                                       const float *p, int64_t p_stride,
                                                       const float *v, int64_t v_stride,
                                                       int64_t keys, const __mmask16 *m, int64_t pf,
                                                       float *o, int64_t o_stride)
{
    const int sets = rows * cols <= 4 ? 4 : rows * cols <= 8 ? 2 : 1;
    __m512 acc[4][4][4]; /* [set][row][column vector] */
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            acc[0][r][c] = attention_load16_avx512(o + r * o_stride + 16 * c, m[c], full);
            for (int t = 1; t < sets; t++)
                acc[t][r][c] = _mm512_setzero_ps();
        }
    int64_t j = 0;
    for (; j + sets <= keys; j += sets)
        for (int t = 0; t < sets; t++) {
            const float *x = v + (j + t) * v_stride;
            __m512 y[4];
            for (int c = 0; c < cols; c++) {
                y[c] = attention_load16_avx512(x + 16 * c, m[c], full);
                if (pf != 0)
                    _mm_prefetch((const char *)(x + pf + 16 * c), _MM_HINT_T0);
            }
            for (int r = 0; r < rows; r++) {
                const __m512 w = _mm512_set1_ps(p[r * p_stride + j + t]);
                for (int c = 0; c < cols; c++)
                    acc[t][r][c] = _mm512_fmadd_ps(w, y[c], acc[t][r][c]);
            }
        }
    for (; j < keys; j++) {
        const float *x = v + j * v_stride;
        for (int c = 0; c < cols; c++) {
            const __m512 y = attention_load16_avx512(x + 16 * c, m[c], full);
            for (int r = 0; r < rows; r++)
                acc[0][r][c] =
                    _mm512_fmadd_ps(_mm512_set1_ps(p[r * p_stride + j]), y, acc[0][r][c]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            __m512 sum = acc[0][r][c];
            if (sets == 2)
                sum = _mm512_add_ps(sum, acc[1][r][c]);
            else if (sets == 4)
                sum = _mm512_add_ps(_mm512_add_ps(sum, acc[1][r][c]),
                                    _mm512_add_ps(acc[2][r][c], acc[3][r][c]));
            attention_store16_avx512(o + r * o_stride + 16 * c, m[c], full, sum);
        }
}

/* One block of `rows` (1..4) rows and `cols` column vectors: 64 columns
 * (all of them unless masked), or the last 32 or 16 (masked). */
ATTENTION_AVX512_INLINE void attention_pv_rows_avx512(int cols, bool full, int64_t rows,
                                                      const float *p, int64_t p_stride,
                                                      const float *v, int64_t v_stride,
                                                      int64_t keys, const __mmask16 *m, int64_t pf,
                                                      float *o, int64_t o_stride)
{
    switch (rows) {
    case 1:
        attention_pv_block_avx512(1, cols, full, p, p_stride, v, v_stride, keys, m, pf, o,
                                  o_stride);
        break;
    case 2:
        attention_pv_block_avx512(2, cols, full, p, p_stride, v, v_stride, keys, m, pf, o,
                                  o_stride);
        break;
    case 3:
        attention_pv_block_avx512(3, cols, full, p, p_stride, v, v_stride, keys, m, pf, o,
                                  o_stride);
        break;
    default:
        attention_pv_block_avx512(4, cols, full, p, p_stride, v, v_stride, keys, m, pf, o,
                                  o_stride);
        break;
    }
}

/* Columns in blocks of 64; a last block of up to 32 (or 16) columns takes
 * as many vectors. Rows in groups of 4 within each block. */
static ATTENTION_AVX512 void attention_pv_avx512(const float *p, int64_t p_stride, int64_t rows,
                                                 const float *v, int64_t v_stride, int64_t keys,
                                                 int64_t dim, float *o, int64_t o_stride)
{
    for (int64_t c0 = 0; c0 < dim; c0 += 64) {
        const __mmask16 m[4] = {vecmath_mask16(dim - c0), vecmath_mask16(dim - c0 - 16),
                                vecmath_mask16(dim - c0 - 32), vecmath_mask16(dim - c0 - 48)};
        const int64_t width = dim - c0;
        for (int64_t r = 0; r < rows; r += 4) {
            const int64_t n = rows - r < 4 ? rows - r : 4;
            const int64_t pf = r == 0 ? ATTENTION_PREFETCH_V_ROWS * v_stride : 0;
            const float *pr = p + r * p_stride, *vc = v + c0;
            float *out = o + r * o_stride + c0;
            if (width >= 64)
                attention_pv_rows_avx512(4, true, n, pr, p_stride, vc, v_stride, keys, m, pf, out,
                                         o_stride);
            else if (width > 32)
                attention_pv_rows_avx512(4, false, n, pr, p_stride, vc, v_stride, keys, m, pf, out,
                                         o_stride);
            else if (width > 16)
                attention_pv_rows_avx512(2, false, n, pr, p_stride, vc, v_stride, keys, m, pf, out,
                                         o_stride);
            else
                attention_pv_rows_avx512(1, false, n, pr, p_stride, vc, v_stride, keys, m, pf, out,
                                         o_stride);
        }
    }
}

/* Two vectors a step into two sums (independent chains, no mask), then
 * the tail one masked vector at a time. */
static ATTENTION_AVX512 float attention_exp_sum_avx512(float *x, int64_t n, float max)
{
    const __m512 mv = _mm512_set1_ps(max);
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        const __m512 e0 = attention_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv));
        const __m512 e1 = attention_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j + 16), mv));
        _mm512_storeu_ps(x + j, e0);
        _mm512_storeu_ps(x + j + 16, e1);
        sum0 = _mm512_add_ps(sum0, e0);
        sum1 = _mm512_add_ps(sum1, e1);
    }
    for (; j < n; j += 16) {
        const __mmask16 m = vecmath_mask16(n - j);
        const __m512 e = attention_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), mv));
        _mm512_mask_storeu_ps(x + j, m, e);
        sum0 = _mm512_mask_add_ps(sum0, m, sum0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}

static ATTENTION_AVX512 void attention_softcap_avx512(float *x, int64_t n, float cap)
{
    const __m512 c = _mm512_set1_ps(cap), inv = _mm512_set1_ps(1.0f / cap);
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = vecmath_mask16(n - j);
        const __m512 t = attention_tanh_avx512(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), inv));
        _mm512_mask_storeu_ps(x + j, m, _mm512_mul_ps(c, t));
    }
}

static const attention_ops attention_ops_avx512 = {
    attention_qk_avx512,      attention_pv_avx512,      vecmath_max_avx512,
    attention_exp_sum_avx512, attention_softcap_avx512,
};

/* ---- AVX2 + FMA ------------------------------------------------------------------ */

#define ATTENTION_AVX2 __attribute__((target("avx2,fma")))
#define ATTENTION_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* Lanes below n set, for maskload / maskstore. */
ATTENTION_AVX2_INLINE __m256i attention_mask8(int64_t n)
{
    const int32_t k = n >= 8 ? 8 : n <= 0 ? 0 : (int32_t)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

ATTENTION_AVX2_INLINE __m256 attention_exp_avx2(__m256 x)
{
    const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(ATTENTION_EXP_MIN), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(ATTENTION_EXP_MAX));
    x = _mm256_max_ps(x, _mm256_set1_ps(ATTENTION_EXP_MIN));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n through the exponent field; n is in [-126, 128) after the clamps */
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

ATTENTION_AVX2_INLINE __m256 attention_tanh_avx2(__m256 x)
{
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign_bit, x), z = _mm256_mul_ps(x, x);
    __m256 small = _mm256_set1_ps(-5.70498872745e-3f);
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(2.06390887954e-2f));
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(-5.37397155531e-2f));
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(1.33314422036e-1f));
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(-3.33332819422e-1f));
    small = _mm256_fmadd_ps(_mm256_mul_ps(small, z), x, x);
    const __m256 e = attention_exp_avx2(_mm256_add_ps(ax, ax));
    __m256 large =
        _mm256_sub_ps(_mm256_set1_ps(1.0f),
                      _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    large = _mm256_or_ps(large, _mm256_and_ps(sign_bit, x));
    const __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm256_blendv_ps(large, small, is_small);
}

/* Lane q: the sum of acc[q]. */
ATTENTION_AVX2_INLINE __m256 attention_reduce8_avx2(const __m256 *acc)
{
    const __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]), t1 = _mm256_hadd_ps(acc[2], acc[3]);
    const __m256 t2 = _mm256_hadd_ps(acc[4], acc[5]), t3 = _mm256_hadd_ps(acc[6], acc[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* 8 floats from p, only the lanes in m unless full. */
ATTENTION_AVX2_INLINE __m256 attention_load8_avx2(const float *p, __m256i m, bool full)
{
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

/* acc[r * 2 + c] += q[r][e..e+8) * k[c][e..e+8); prefetches the keys pf
 * elements further. */
ATTENTION_AVX2_INLINE void attention_fma4x2_avx2(const float *const *q, const float *const *k,
                                                 int64_t e, __m256i m, bool full, int64_t pf,
                                                 __m256 *acc)
{
    __m256 x[4], y[2];
    for (int r = 0; r < 4; r++)
        x[r] = attention_load8_avx2(q[r] + e, m, full);
    for (int c = 0; c < 2; c++) {
        y[c] = attention_load8_avx2(k[c] + e, m, full);
        _mm_prefetch((const char *)(k[c] + e + pf), _MM_HINT_T0);
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 2; c++)
            acc[r * 2 + c] = _mm256_fmadd_ps(x[r], y[c], acc[r * 2 + c]);
}

/* Lane r * 2 + c: dot(q[r], k[c]) for 4 rows and 2 keys. */
ATTENTION_AVX2_INLINE __m256 attention_dot4x2_avx2(const float *const *q, const float *const *k,
                                                   int64_t dim, int64_t pf)
{
    __m256 acc[8];
    for (int i = 0; i < 8; i++)
        acc[i] = _mm256_setzero_ps();
    const __m256i all = _mm256_set1_epi32(-1);
    int64_t e = 0;
    for (; e + 8 <= dim; e += 8)
        attention_fma4x2_avx2(q, k, e, all, true, pf, acc);
    if (e < dim)
        attention_fma4x2_avx2(q, k, e, attention_mask8(dim - e), false, pf, acc);
    return attention_reduce8_avx2(acc);
}

/* acc[c] += q[e..e+8) * k[c][e..e+8); prefetches the keys pf further. */
ATTENTION_AVX2_INLINE void attention_fma1x8_avx2(const float *q, const float *const *k, int64_t e,
                                                 __m256i m, bool full, int64_t pf, __m256 *acc)
{
    const __m256 x = attention_load8_avx2(q + e, m, full);
    for (int c = 0; c < 8; c++) {
        acc[c] = _mm256_fmadd_ps(x, attention_load8_avx2(k[c] + e, m, full), acc[c]);
        _mm_prefetch((const char *)(k[c] + e + pf), _MM_HINT_T0);
    }
}

/* Lane c: dot(q, k[c]) for 8 keys. */
ATTENTION_AVX2_INLINE __m256 attention_dot1x8_avx2(const float *q, const float *const *k,
                                                   int64_t dim, int64_t pf)
{
    __m256 acc[8];
    for (int i = 0; i < 8; i++)
        acc[i] = _mm256_setzero_ps();
    const __m256i all = _mm256_set1_epi32(-1);
    int64_t e = 0;
    for (; e + 8 <= dim; e += 8)
        attention_fma1x8_avx2(q, k, e, all, true, pf, acc);
    if (e < dim)
        attention_fma1x8_avx2(q, k, e, attention_mask8(dim - e), false, pf, acc);
    return attention_reduce8_avx2(acc);
}

/* Rows in groups of 4 against keys in pairs; leftover rows one at a time
 * against 8 keys. The first pass over the keys prefetches ahead. */
static ATTENTION_AVX2 void attention_qk_avx2(const float *q, int64_t q_stride, int64_t rows,
                                             const float *k, int64_t k_stride, int64_t keys,
                                             int64_t dim, float *s, int64_t s_stride)
{
    const int64_t pf = ATTENTION_PREFETCH_K_ROWS * k_stride;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *qr[4] = {q + r * q_stride, q + (r + 1) * q_stride, q + (r + 2) * q_stride,
                              q + (r + 3) * q_stride};
        float *sr = s + r * s_stride;
        for (int64_t j = 0; j < keys; j += 2) {
            const int64_t n = keys - j < 2 ? keys - j : 2;
            const float *kr[2] = {k + j * k_stride, k + (j + n - 1) * k_stride};
            float tmp[8];
            _mm256_storeu_ps(tmp, attention_dot4x2_avx2(qr, kr, dim, r == 0 ? 2 * pf : 0));
            for (int rr = 0; rr < 4; rr++)
                memcpy(sr + rr * s_stride + j, tmp + 2 * rr, sizeof(float) * (size_t)n);
        }
    }
    for (; r < rows; r++) {
        for (int64_t j = 0; j < keys; j += 8) {
            const int64_t n = keys - j < 8 ? keys - j : 8;
            const float *kr[8];
            for (int c = 0; c < 8; c++)
                kr[c] = k + (j + (c < n ? c : 0)) * k_stride;
            const __m256 dots =
                attention_dot1x8_avx2(q + r * q_stride, kr, dim, r == 0 ? 2 * pf : 0);
            _mm256_maskstore_ps(s + r * s_stride + j, attention_mask8(n), dots);
        }
    }
}

/* o[r][c0 + 0..16) += sum_j p[r][j] v[j][c0 + 0..16) for `rows` (1..4) rows,
 * only the lanes in m0 / m1 unless full; prefetches v pf elements ahead. */
ATTENTION_AVX2_INLINE void attention_pv_block_avx2(int rows, const float *p, int64_t p_stride,
                                                   const float *v, int64_t v_stride, int64_t keys,
                                                   __m256i m0, __m256i m1, bool full, int64_t pf,
                                                   float *o, int64_t o_stride)
{
    __m256 acc[4][2];
    for (int r = 0; r < rows; r++) {
        acc[r][0] = attention_load8_avx2(o + r * o_stride, m0, full);
        acc[r][1] = attention_load8_avx2(o + r * o_stride + 8, m1, full);
    }
    for (int64_t j = 0; j < keys; j++) {
        const __m256 y0 = attention_load8_avx2(v + j * v_stride, m0, full);
        const __m256 y1 = attention_load8_avx2(v + j * v_stride + 8, m1, full);
        _mm_prefetch((const char *)(v + j * v_stride + pf), _MM_HINT_T0);
        for (int r = 0; r < rows; r++) {
            const __m256 w = _mm256_broadcast_ss(p + r * p_stride + j);
            acc[r][0] = _mm256_fmadd_ps(w, y0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w, y1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++) {
        if (full) {
            _mm256_storeu_ps(o + r * o_stride, acc[r][0]);
            _mm256_storeu_ps(o + r * o_stride + 8, acc[r][1]);
        } else {
            _mm256_maskstore_ps(o + r * o_stride, m0, acc[r][0]);
            _mm256_maskstore_ps(o + r * o_stride + 8, m1, acc[r][1]);
        }
    }
}

/* One 16-column block of rows r0 .. r0 + rows (1..4). */
ATTENTION_AVX2_INLINE void attention_pv_rows_avx2(int64_t rows, const float *p, int64_t p_stride,
                                                  const float *v, int64_t v_stride, int64_t keys,
                                                  __m256i m0, __m256i m1, bool full, int64_t pf,
                                                  float *o, int64_t o_stride)
{
    switch (rows) {
    case 1:
        attention_pv_block_avx2(1, p, p_stride, v, v_stride, keys, m0, m1, full, pf, o, o_stride);
        break;
    case 2:
        attention_pv_block_avx2(2, p, p_stride, v, v_stride, keys, m0, m1, full, pf, o, o_stride);
        break;
    case 3:
        attention_pv_block_avx2(3, p, p_stride, v, v_stride, keys, m0, m1, full, pf, o, o_stride);
        break;
    default:
        attention_pv_block_avx2(4, p, p_stride, v, v_stride, keys, m0, m1, full, pf, o, o_stride);
        break;
    }
}

static ATTENTION_AVX2 void attention_pv_avx2(const float *p, int64_t p_stride, int64_t rows,
                                             const float *v, int64_t v_stride, int64_t keys,
                                             int64_t dim, float *o, int64_t o_stride)
{
    for (int64_t c0 = 0; c0 < dim; c0 += 16) {
        const __m256i m0 = attention_mask8(dim - c0), m1 = attention_mask8(dim - c0 - 8);
        for (int64_t r = 0; r < rows; r += 4) {
            const int64_t n = rows - r < 4 ? rows - r : 4;
            const int64_t pf = r == 0 ? ATTENTION_PREFETCH_V_ROWS * v_stride : 0;
            if (c0 + 16 <= dim)
                attention_pv_rows_avx2(n, p + r * p_stride, p_stride, v + c0, v_stride, keys, m0,
                                       m1, true, pf, o + r * o_stride + c0, o_stride);
            else
                attention_pv_rows_avx2(n, p + r * p_stride, p_stride, v + c0, v_stride, keys, m0,
                                       m1, false, pf, o + r * o_stride + c0, o_stride);
        }
    }
}

ATTENTION_AVX2_INLINE float attention_hsum_avx2(__m256 s)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

static ATTENTION_AVX2 float attention_exp_sum_avx2(float *x, int64_t n, float max)
{
    const __m256 mv = _mm256_set1_ps(max);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j += 8) {
        const __m256i k = attention_mask8(n - j);
        const __m256 e = attention_exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + j, k), mv));
        _mm256_maskstore_ps(x + j, k, e);
        sum = _mm256_add_ps(sum, _mm256_and_ps(e, _mm256_castsi256_ps(k)));
    }
    return attention_hsum_avx2(sum);
}

static ATTENTION_AVX2 void attention_softcap_avx2(float *x, int64_t n, float cap)
{
    const __m256 c = _mm256_set1_ps(cap), inv = _mm256_set1_ps(1.0f / cap);
    for (int64_t j = 0; j < n; j += 8) {
        const __m256i k = attention_mask8(n - j);
        const __m256 t = attention_tanh_avx2(_mm256_mul_ps(_mm256_maskload_ps(x + j, k), inv));
        _mm256_maskstore_ps(x + j, k, _mm256_mul_ps(c, t));
    }
}

static const attention_ops attention_ops_avx2 = {
    attention_qk_avx2,      attention_pv_avx2,      vecmath_max_avx2,
    attention_exp_sum_avx2, attention_softcap_avx2,
};

#endif /* ATTENTION_X86 */

/* ---- choosing an instruction set --------------------------------------------- */

bool attention_isa_supported(attention_isa isa)
{
    switch (isa) {
    case ATTENTION_ISA_AUTO:
    case ATTENTION_ISA_SCALAR:
        return true;
#ifdef ATTENTION_X86
    case ATTENTION_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ATTENTION_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return false;
    }
}

const char *attention_isa_name(attention_isa isa)
{
    switch (isa) {
    case ATTENTION_ISA_AUTO:
        return "auto";
    case ATTENTION_ISA_SCALAR:
        return "scalar";
    case ATTENTION_ISA_AVX2:
        return "avx2";
    case ATTENTION_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

/* The inner loops for isa, NULL when this machine lacks it. */
static const attention_ops *attention_ops_for(attention_isa isa)
{
    if (!attention_isa_supported(isa))
        return NULL;
#ifdef ATTENTION_X86
    if (isa == ATTENTION_ISA_AUTO)
        isa = attention_isa_supported(ATTENTION_ISA_AVX512) ? ATTENTION_ISA_AVX512
              : attention_isa_supported(ATTENTION_ISA_AVX2) ? ATTENTION_ISA_AVX2
                                                            : ATTENTION_ISA_SCALAR;
    if (isa == ATTENTION_ISA_AVX512)
        return &attention_ops_avx512;
    if (isa == ATTENTION_ISA_AVX2)
        return &attention_ops_avx2;
#endif
    return &attention_ops_scalar;
}

/* ---- the tiled kernel ------------------------------------------------------------ */

/* How one call is cut into units. */
typedef struct attention_plan {
    const attention_params *p;
    const attention_fast_data *d;
    const attention_ops *ops;
    const attention_scorer *scorer; /* NULL: float32 scores from ops->qk */
    int64_t group;                  /* query heads per KV head */
    int64_t q_block;                /* query positions per unit */
    int64_t q_blocks;               /* ceil(q_len / q_block) */
    int64_t rows_max;               /* group * q_block */
    int64_t key_tile;               /* keys per tile */
    int64_t items;                  /* batch * kv_heads * q_blocks */
    int64_t splits;                 /* key ranges per item */
    int64_t split_len;              /* keys per range (a multiple of key_tile) */
    float *partial;                 /* splits > 1: per unit, rows_max x (v_dim + 2): O, m, l */
    atomic_bool failed;             /* a worker could not allocate its scratch */
} attention_plan;

/* One worker's buffers, each rows_max rows. */
typedef struct attention_scratch {
    float *q; /* the unit's query rows times scale, qk_dim each */
    float *s; /* scores / probabilities of a tile, key_tile each */
    float *o; /* unnormalised output rows, v_dim each */
    float *m, *l;
    int64_t *lo, *hi; /* each row's key range [lo, hi) */
    void *extra;      /* the scorer's scratch, or NULL */
    void *heap;       /* the block of the buffers when allocated, else NULL */
} attention_scratch;

/* Bytes of scratch a worker keeps on its stack: a decode unit's buffers
 * (a few query rows, one tile of scores) fit, and a call then allocates
 * nothing; larger ones are allocated. */
#define ATTENTION_STACK_SCRATCH 16384

/* Where one unit works. */
typedef struct attention_unit {
    int64_t b, kv_head, i0, qn, rows; /* rows = group * qn */
    int64_t key_begin, key_end;       /* this unit's key range */
} attention_unit;

static size_t attention_round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static void attention_scratch_free(attention_scratch *w)
{
    free(w->heap);
    free(w->extra);
}

/* One block of memory cut into the buffers: `stack` (stack_bytes, 64-byte
 * aligned) when they fit, else allocated; false when out of memory. */
static bool attention_scratch_alloc(const attention_plan *plan, char *stack, size_t stack_bytes,
                                    attention_scratch *w)
{
    const size_t rows = (size_t)plan->rows_max;
    const size_t nq = attention_round64(sizeof(float) * rows * (size_t)plan->p->qk_dim);
    const size_t ns = attention_round64(sizeof(float) * rows * (size_t)plan->key_tile);
    const size_t no = attention_round64(sizeof(float) * rows * (size_t)plan->p->v_dim);
    const size_t nr = attention_round64(sizeof(float) * rows);
    const size_t ni = attention_round64(sizeof(int64_t) * rows);
    const size_t total = nq + ns + no + 2 * nr + 2 * ni + 64;
    char *block = stack;
    w->heap = NULL;
    if (total > stack_bytes) {
        if ((block = aligned_alloc(64, total)) == NULL)
            return false;
        w->heap = block;
    }
    w->extra = NULL;
    if (plan->scorer != NULL) {
        const size_t n = plan->scorer->scratch_bytes(plan->scorer->ctx, plan->rows_max);
        if ((w->extra = aligned_alloc(64, attention_round64(n > 0 ? n : 1))) == NULL) {
            free(w->heap);
            return false;
        }
    }
    w->q = (void *)block;
    w->s = (void *)(block + nq);
    w->o = (void *)(block + nq + ns);
    w->m = (void *)(block + nq + ns + no);
    w->l = (void *)(block + nq + ns + no + nr);
    w->lo = (void *)(block + nq + ns + no + 2 * nr);
    w->hi = (void *)(block + nq + ns + no + 2 * nr + ni);
    return true;
}

static int64_t attention_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t attention_max(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The keys query position i of batch b may see: [lo, hi), before the mask
 * values themselves. */
static void attention_key_range(const attention_plan *plan, int64_t b, int64_t i, int64_t *lo,
                                int64_t *hi)
{
    const attention_params *p = plan->p;
    int64_t l = 0, h = p->total_len;
    if (plan->d->mask != NULL)
        h = attention_min(h, plan->d->mask_len);
    if (p->kv_valid_len != NULL)
        h = attention_min(h, p->kv_valid_len[b]);
    const int64_t pos = i + (p->query_offset != NULL ? p->query_offset[b] : 0);
    if (p->causal)
        h = attention_min(h, pos + 1);
    if (p->right_window >= 0 && p->right_window < h - pos)
        h = pos + p->right_window + 1;
    if (p->left_window >= 0 && pos - l > p->left_window)
        l = pos - p->left_window;
    *lo = l;
    *hi = h;
}

/* Copies the unit's query rows, times scale, into w->q and sets each row's
 * key range (clipped to the unit's) and the running max, sum and output. */
static void attention_unit_start(const attention_plan *plan, const attention_unit *u,
                                 attention_scratch *w)
{
    const attention_params *p = plan->p;
    const attention_view *q = &plan->d->q;
    const float scale = (float)p->scale;
    for (int64_t r = 0; r < u->rows; r++) {
        const int64_t h = u->kv_head * plan->group + r / u->qn, i = u->i0 + r % u->qn;
        const float *src =
            q->data + u->b * q->batch_stride + h * q->head_stride + i * q->seq_stride;
        float *dst = w->q + r * p->qk_dim;
        for (int64_t e = 0; e < p->qk_dim; e++)
            dst[e] = src[e] * scale;
        int64_t lo, hi;
        attention_key_range(plan, u->b, i, &lo, &hi);
        w->lo[r] = attention_max(lo, u->key_begin);
        w->hi[r] = attention_min(hi, u->key_end);
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    memset(w->o, 0, sizeof(float) * (size_t)(u->rows * p->v_dim));
    if (plan->scorer != NULL)
        plan->scorer->start(plan->scorer->ctx, w->extra, u->b, u->kv_head, w->q, u->rows, u->qn);
}

/* Adds row r's mask values for keys [j0 + a, j0 + z) to x[a..z). */
static void attention_add_mask(const attention_plan *plan, const attention_unit *u, int64_t r,
                               int64_t j0, float *x, int64_t a, int64_t z)
{
    const attention_fast_data *d = plan->d;
    const int64_t h = u->kv_head * plan->group + r / u->qn, i = u->i0 + r % u->qn;
    const int64_t *s = d->mask_strides;
    const float *m = d->mask + u->b * s[0] + h * s[1] + i * s[2];
    if (s[3] == 0) {
        for (int64_t j = a; j < z; j++)
            x[j] += m[0];
        return;
    }
    for (int64_t j = a; j < z; j++)
        x[j] += m[(j0 + j) * s[3]];
}

/* Turns row r's scores over the tile's n keys (from j0) into probabilities
 * against the updated running max, rescaling its sum and output. */
static void attention_row_softmax(const attention_plan *plan, const attention_unit *u,
                                  attention_scratch *w, int64_t r, int64_t j0, int64_t n)
{
    const attention_params *p = plan->p;
    float *x = w->s + r * plan->key_tile;
    const int64_t a = attention_max(w->lo[r] - j0, 0);
    const int64_t z = attention_min(w->hi[r] - j0, n);
    if (a >= z) {
        memset(x, 0, sizeof(float) * (size_t)n);
        return;
    }
    memset(x, 0, sizeof(float) * (size_t)a);
    memset(x + z, 0, sizeof(float) * (size_t)(n - z));
    if (p->softcap > 0.0)
        plan->ops->softcap(x + a, z - a, (float)p->softcap);
    if (plan->d->mask != NULL)
        attention_add_mask(plan, u, r, j0, x, a, z);
    const float tile_max = plan->ops->max(x + a, z - a);
    if (tile_max == -INFINITY) {
        memset(x + a, 0, sizeof(float) * (size_t)(z - a));
        return;
    }
    const float old_max = w->m[r], new_max = tile_max > old_max ? tile_max : old_max;
    const float sum = plan->ops->exp_sum(x + a, z - a, new_max);
    if (old_max != -INFINITY && new_max != old_max) {
        const float alpha = expf(old_max - new_max);
        float *o = w->o + r * p->v_dim;
        for (int64_t e = 0; e < p->v_dim; e++)
            o[e] *= alpha;
        w->l[r] *= alpha;
    }
    w->l[r] += sum;
    w->m[r] = new_max;
}

/* Row `seq` of the K- or V-like pair (k[0]/k[1] split at `split`) for batch
 * b and head h. */
static const float *attention_kv_row(const attention_view *pair, int64_t split, int64_t b,
                                     int64_t h, int64_t seq)
{
    const attention_view *t = seq < split ? &pair[0] : &pair[1];
    const int64_t at = seq < split ? seq : seq - split;
    return t->data + b * t->batch_stride + h * t->head_stride + at * t->seq_stride;
}

/* Keys [j0, j0 + n), all in one piece of the K / V pairs. */
static void attention_tile(const attention_plan *plan, const attention_unit *u,
                           attention_scratch *w, int64_t j0, int64_t n)
{
    const attention_params *p = plan->p;
    const attention_fast_data *d = plan->d;
    const int piece = j0 < d->split ? 0 : 1;
    const float *k = attention_kv_row(d->k, d->split, u->b, u->kv_head, j0);
    const float *v = attention_kv_row(d->v, d->split, u->b, u->kv_head, j0);
    if (plan->scorer != NULL)
        plan->scorer->tile(plan->scorer->ctx, w->extra, u->b, u->kv_head, j0, n, u->rows, w->s,
                           plan->key_tile);
    else
        plan->ops->qk(w->q, p->qk_dim, u->rows, k, d->k[piece].seq_stride, n, p->qk_dim, w->s,
                      plan->key_tile);
    for (int64_t r = 0; r < u->rows; r++)
        attention_row_softmax(plan, u, w, r, j0, n);
    if (plan->scorer != NULL && plan->scorer->pv != NULL)
        plan->scorer->pv(plan->scorer->ctx, u->b, u->kv_head, j0, n, u->rows, w->s, plan->key_tile,
                         w->o, p->v_dim);
    else
        plan->ops->pv(w->s, plan->key_tile, u->rows, v, d->v[piece].seq_stride, n, p->v_dim, w->o,
                      p->v_dim);
}

/* Whether some row's key range meets [j0, j1). */
static bool attention_tile_needed(const attention_scratch *w, int64_t rows, int64_t j0, int64_t j1)
{
    for (int64_t r = 0; r < rows; r++) {
        if (w->lo[r] < j1 && w->hi[r] > j0 && w->lo[r] < w->hi[r])
            return true;
    }
    return false;
}

/* Walks the keys the unit's rows see, tile by tile; a tile never straddles
 * the past / new boundary. */
static void attention_unit_keys(const attention_plan *plan, const attention_unit *u,
                                attention_scratch *w)
{
    int64_t begin = u->key_end, end = u->key_begin;
    for (int64_t r = 0; r < u->rows; r++) {
        if (w->lo[r] < w->hi[r]) {
            begin = attention_min(begin, w->lo[r]);
            end = attention_max(end, w->hi[r]);
        }
    }
    const int64_t split = plan->d->split;
    for (int64_t j0 = begin; j0 < end;) {
        int64_t j1 = attention_min(j0 + plan->key_tile, end);
        if (j0 < split && j1 > split)
            j1 = split;
        if (attention_tile_needed(w, u->rows, j0, j1))
            attention_tile(plan, u, w, j0, j1 - j0);
        j0 = j1;
    }
}

/* Y rows = O / l; a row that saw no key gets zeros. */
static void attention_unit_store(const attention_plan *plan, const attention_unit *u,
                                 const attention_scratch *w)
{
    const attention_params *p = plan->p;
    const attention_fast_data *d = plan->d;
    for (int64_t r = 0; r < u->rows; r++) {
        const int64_t h = u->kv_head * plan->group + r / u->qn, i = u->i0 + r % u->qn;
        float *y = d->y + u->b * d->y_strides[0] + h * d->y_strides[1] + i * d->y_strides[2];
        const float *o = w->o + r * p->v_dim;
        const float inv = w->m[r] == -INFINITY ? 0.0f : 1.0f / w->l[r];
        for (int64_t e = 0; e < p->v_dim; e++)
            y[e] = o[e] * inv;
    }
}

/* Saves a split unit's O, m and l for attention_merge. */
static void attention_unit_save(const attention_plan *plan, int64_t unit, const attention_unit *u,
                                const attention_scratch *w)
{
    const int64_t dv = plan->p->v_dim, width = dv + 2;
    float *dst = plan->partial + unit * plan->rows_max * width;
    for (int64_t r = 0; r < u->rows; r++) {
        memcpy(dst + r * width, w->o + r * dv, sizeof(float) * (size_t)dv);
        dst[r * width + dv] = w->m[r];
        dst[r * width + dv + 1] = w->l[r];
    }
}

static void attention_unit_locate(const attention_plan *plan, int64_t unit, attention_unit *u)
{
    const attention_params *p = plan->p;
    const int64_t split = unit % plan->splits, item = unit / plan->splits;
    /* the last query blocks see the most keys under a causal mask: run them
     * first so the cheap ones fill the gaps at the end */
    const int64_t block = plan->q_blocks - 1 - item % plan->q_blocks;
    const int64_t bh = item / plan->q_blocks;
    u->b = bh / p->kv_heads;
    u->kv_head = bh % p->kv_heads;
    u->i0 = block * plan->q_block;
    u->qn = attention_min(plan->q_block, p->q_len - u->i0);
    u->rows = plan->group * u->qn;
    u->key_begin = split * plan->split_len;
    u->key_end = attention_min(p->total_len, u->key_begin + plan->split_len);
}

static void attention_units(void *arg, int64_t begin, int64_t end)
{
    attention_plan *plan = arg;
    _Alignas(64) char stack[ATTENTION_STACK_SCRATCH];
    attention_scratch w;
    if (!attention_scratch_alloc(plan, stack, sizeof(stack), &w)) {
        atomic_store(&plan->failed, true);
        return;
    }
    for (int64_t unit = begin; unit < end; unit++) {
        attention_unit u;
        attention_unit_locate(plan, unit, &u);
        attention_unit_start(plan, &u, &w);
        attention_unit_keys(plan, &u, &w);
        if (plan->splits > 1)
            attention_unit_save(plan, unit, &u, &w);
        else
            attention_unit_store(plan, &u, &w);
    }
    attention_scratch_free(&w);
}

/* Combines the splits of each item: with M the largest of the partial maxima,
 * Y = sum_s O_s e^(m_s - M) / sum_s l_s e^(m_s - M). */
static void attention_merge(void *arg, int64_t begin, int64_t end)
{
    const attention_plan *plan = arg;
    const attention_params *p = plan->p;
    const attention_fast_data *d = plan->d;
    const int64_t dv = p->v_dim, width = dv + 2;
    for (int64_t item = begin; item < end; item++) {
        attention_unit u;
        attention_unit_locate(plan, item * plan->splits, &u);
        const float *part = plan->partial + item * plan->splits * plan->rows_max * width;
        for (int64_t r = 0; r < u.rows; r++) {
            const int64_t h = u.kv_head * plan->group + r / u.qn, i = u.i0 + r % u.qn;
            float *y = d->y + u.b * d->y_strides[0] + h * d->y_strides[1] + i * d->y_strides[2];
            float max = -INFINITY, sum = 0.0f;
            for (int64_t s = 0; s < plan->splits; s++)
                max = fmaxf(max, part[(s * plan->rows_max + r) * width + dv]);
            for (int64_t e = 0; e < dv; e++)
                y[e] = 0.0f;
            if (max == -INFINITY)
                continue;
            for (int64_t s = 0; s < plan->splits; s++) {
                const float *row = part + (s * plan->rows_max + r) * width;
                if (row[dv] == -INFINITY)
                    continue;
                const float f = expf(row[dv] - max);
                sum += row[dv + 1] * f;
                for (int64_t e = 0; e < dv; e++)
                    y[e] += row[e] * f;
            }
            for (int64_t e = 0; e < dv; e++)
                y[e] /= sum;
        }
    }
}

/* Query block and key tile sizes, and the key splits that give every
 * thread work. */
static void attention_plan_sizes(attention_plan *plan, int threads)
{
    const attention_params *p = plan->p;
    plan->group = p->q_heads / p->kv_heads;
    /* about 64 stacked rows: K/V tiles are reused across them */
    plan->q_block = attention_min(attention_max(64 / plan->group, 1), p->q_len);
    plan->q_blocks = (p->q_len + plan->q_block - 1) / plan->q_block;
    plan->rows_max = plan->group * plan->q_block;
    /* a 32 KB K tile stays in L1 across the rows of a prefill block; decode
     * rows are few, so longer tiles only cut per-tile overhead */
    const int64_t dim = attention_max(attention_max(p->qk_dim, p->v_dim), 16);
    int64_t tile = plan->rows_max >= 16 ? 8192 / dim : 256;
    tile = attention_min(attention_max(tile / 16 * 16, 16), 512);
    plan->key_tile = attention_max(attention_min(tile, p->total_len), 1);
    plan->items = p->batch * p->kv_heads * plan->q_blocks;
    plan->splits = 1;
    plan->split_len = attention_max(p->total_len, 1);
    if (plan->items < 2 * (int64_t)threads && p->total_len >= 2048) {
        int64_t splits = (2 * (int64_t)threads + plan->items - 1) / plan->items;
        splits = attention_min(splits, p->total_len / 1024);
        const int64_t len = (p->total_len + splits - 1) / splits;
        plan->split_len = (len + plan->key_tile - 1) / plan->key_tile * plan->key_tile;
        plan->splits = (p->total_len + plan->split_len - 1) / plan->split_len;
    }
}

bool attention_fast_supports(const attention_params *p)
{
    return p->softmax_dtype != OGI_FLOAT16 && p->softmax_dtype != OGI_BFLOAT16;
}

static bool attention_fast_valid(const attention_params *p, const attention_fast_data *d)
{
    if (p->batch < 0 || p->q_heads < 0 || p->kv_heads <= 0 || p->q_heads % p->kv_heads != 0 ||
        p->q_len < 0 || p->total_len < 0 || p->qk_dim < 0 || p->v_dim < 0)
        return false;
    if (p->left_window < -1 || p->right_window < -1 || d->split < 0 || d->split > p->total_len)
        return false;
    return attention_fast_supports(p);
}

ogi_status attention_fast(threadpool *pool, const attention_params *p, const attention_fast_data *d,
                          attention_isa isa)
{
    return attention_fast_scored(pool, p, d, isa, NULL);
}

ogi_status attention_fast_scored(threadpool *pool, const attention_params *p,
                                 const attention_fast_data *d, attention_isa isa,
                                 const attention_scorer *scorer)
{
    const attention_ops *ops = attention_ops_for(isa);
    if (ops == NULL || !attention_fast_valid(p, d))
        return OGI_ERR_INVALID_ARGUMENT;
    if (p->batch == 0 || p->q_heads == 0 || p->q_len == 0)
        return OGI_OK;
    /* Below a few microseconds of work, one thread: the pool's fork-join
     * costs about 0.3 us, and its caller never waits for a worker that has
     * not started (it runs the chunks itself). From 2^16 multiply-adds up
     * (docstring-llama's decode step over 128 keys: 8 heads of 32) two
     * threads measured 6.6 -> 5.1 us a call; the earlier bound, 2^23, was
     * set for a pool whose caller waited for every worker to check in. */
    const double work = (double)(p->batch * p->q_heads * p->q_len) * (double)p->total_len *
                        (double)(p->qk_dim + p->v_dim);
    if (work < (double)(1 << 16))
        pool = NULL;
    attention_plan plan = {.p = p, .d = d, .ops = ops, .scorer = scorer};
    atomic_init(&plan.failed, false);
    attention_plan_sizes(&plan, threadpool_size(pool));
    const int64_t units = plan.items * plan.splits;
    if (plan.splits > 1) {
        const size_t n = (size_t)(units * plan.rows_max * (p->v_dim + 2));
        if ((plan.partial = malloc(sizeof(float) * n)) == NULL)
            return OGI_ERR_OUT_OF_MEMORY;
    }
    /* A few units of one query block cost about the same: one run of them
     * per thread (decode: 4 KV heads on 2 threads) spares claims and scratch
     * set-ups, 1.36 -> 1.28 us a docstring-llama decode call over 192 keys.
     * Query blocks differ under a causal mask, and many units balance
     * better one at a time. */
    const int threads = threadpool_size(pool);
    const int64_t chunk = plan.q_blocks == 1 && units <= 2 * threads ? units / threads : 1;
    threadpool_parallel_for(pool, units, chunk, attention_units, &plan);
    if (plan.splits > 1 && !atomic_load(&plan.failed))
        threadpool_parallel_for(pool, plan.items, 1, attention_merge, &plan);
    free(plan.partial);
    return atomic_load(&plan.failed) ? OGI_ERR_OUT_OF_MEMORY : OGI_OK;
}
