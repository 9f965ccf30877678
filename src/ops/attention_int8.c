/* The int8 Attention kernel (see attention.h): SageAttention's quantization
 * on the fast kernel's tiles.
 *
 * Before the tiles, each (batch b, KV head) gets its keys smoothed and
 * quantized: mu = the mean of K over the valid keys, then per block of
 * ATTENTION_INT8_K_BLOCK keys, scale_k = max |K - mu| / 127 and
 * K8 = round((K - mu) / scale_k). Each unit quantizes its rows of scale * Q
 * per query head (scale_q over the head's rows of the unit) and keeps
 * q . mu, so that a score is
 *
 *   s = scale_q scale_k (Q8 . K8) + q . mu
 *
 * (q . mu is the same for every key of a row: softmax would not need it, but
 * softcap does). Q8 . K8 comes from VPDPBUSD, which multiplies unsigned by
 * signed bytes: the keys are stored as K8 + 128 and Q8 . K8 =
 * (K8 + 128) . Q8 - 128 sum(Q8).
 *
 * Keys are packed per head in blocks of 16: for each group of 4 elements,
 * the 16 keys' 4 bytes side by side (64 bytes), so one 512-bit load holds 4
 * elements of 16 keys and VPDPBUSD against a broadcast of 4 bytes of a
 * query row adds them into the row's 16 scores, with no horizontal sums. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attention.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define INT8_X86 1
#endif

/* Keys per packed block: the lanes of one 512-bit vector of int32 scores. */
#define INT8_KEYS 16

/* How P V runs: plain C, AVX512-BF16 dot products, or AVX2 FMAs on the
 * widened bf16 values. All three multiply the same bf16 values. */
enum { INT8_PV_SCALAR, INT8_PV_BF16, INT8_PV_AVX2 };

/* The quantized keys of one call, shared by the workers. */
typedef struct int8_plan {
    const attention_params *p;
    const attention_fast_data *d;
    attention_int8_isa isa;
    int64_t dim4;   /* qk_dim rounded up to a multiple of 4 */
    int64_t blocks; /* packed blocks per head: ceil(total_len / 16) */
    uint8_t *k;     /* [batch * kv_heads][blocks][dim4 / 4][16][4]: K8 + 128 */
    float *k_scale; /* [batch * kv_heads][blocks * 16]: each key's scale_k, 0 past the valid keys */
    float *mean;    /* [batch * kv_heads][qk_dim]: mu */
    int pv;         /* INT8_PV_*: how P V runs */
    int64_t vdim64; /* v_dim rounded up to a multiple of 64 */
    int64_t vpairs; /* pairs of keys per head: ceil(total_len / 2) */
    uint16_t *v;    /* [batch * kv_heads][vpairs][vdim64][2]: V in bf16, 0 past the valid keys */
    atomic_bool failed; /* a worker ran out of memory */
} int8_plan;

/* One worker's quantized query rows (rows_max of each). */
typedef struct int8_rows {
    int8_t *q;     /* Q8, dim4 each, zero-padded */
    float *scale;  /* scale_q */
    int32_t *corr; /* 128 sum(Q8) */
    float *mean;   /* q . mu */
} int8_rows;

/* The scores of `rows` query rows against one packed block of 16 keys
 * (lanes [a, z) of it), written to dst[r * stride + lane - a]. */
typedef void (*int8_dots_fn)(const uint8_t *k, const float *k_scale, int64_t dim4,
                             const int8_rows *q, int64_t rows, int64_t a, int64_t z, float *dst,
                             int64_t stride);

static int64_t int8_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t int8_max(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t int8_round4(int64_t n)
{
    return (n + 3) / 4 * 4;
}

/* max(a, b) for the scales' maxima: a plain comparison (fmaxf's NaN rules
 * keep it from vectorising); a NaN input then spoils only its own block. */
static inline float int8_larger(float a, float b)
{
    return b > a ? b : a;
}

/* x rounded to the nearest integer (ties to even) and clamped to
 * [-127, 127], for |x| <= 2^22: adding and subtracting 1.5 * 2^23 leaves no
 * fraction bits (plain arithmetic, unlike nearbyintf, so it vectorises). */
static inline float int8_round(float x)
{
    const float magic = 12582912.0f;
    const float r = (x + magic) - magic;
    return r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r;
}

/* Bytes 4 g .. 4 g + 3 of a quantized query row, as one int32 to broadcast. */
static inline int32_t int8_quad(const int8_t *row, int64_t g)
{
    int32_t v;
    memcpy(&v, row + 4 * g, sizeof(v));
    return v;
}

/* ---- plain C ------------------------------------------------------------------ */

static void int8_dots_scalar(const uint8_t *k, const float *k_scale, int64_t dim4,
                             const int8_rows *q, int64_t rows, int64_t a, int64_t z, float *dst,
                             int64_t stride)
{
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *x = q->q + r * dim4;
        for (int64_t c = a; c < z; c++) {
            int32_t acc = 0;
            for (int64_t e = 0; e < dim4; e++)
                acc += (int32_t)k[(e / 4) * 64 + c * 4 + e % 4] * x[e];
            const float t = k_scale[c] * q->scale[r];
            dst[r * stride + c - a] = (float)(acc - q->corr[r]) * t + q->mean[r];
        }
    }
}

#ifdef INT8_X86

/* ---- AVX512-VNNI -------------------------------------------------------------- */

#define INT8_AVX512 __attribute__((target("avx512f,avx512vnni")))
#define INT8_AVX512_INLINE                                                                         \
    static inline __attribute__((always_inline, target("avx512f,avx512vnni")))

/* rows (1..8) rows starting at row r0 against one packed block. */
INT8_AVX512_INLINE void int8_dots_rows_avx512(int rows, const uint8_t *k, const float *k_scale,
                                              int64_t dim4, const int8_rows *q, int64_t r0,
                                              int64_t a, int64_t z, float *dst, int64_t stride)
{
    __m512i acc[8];
    for (int i = 0; i < rows; i++)
        acc[i] = _mm512_setzero_si512();
    const int8_t *x = q->q + r0 * dim4;
    const int64_t groups = dim4 / 4;
    for (int64_t g = 0; g < groups; g++) {
        const __m512i kv = _mm512_loadu_si512(k + g * 64);
        for (int i = 0; i < rows; i++)
            acc[i] = _mm512_dpbusd_epi32(acc[i], kv, _mm512_set1_epi32(int8_quad(x + i * dim4, g)));
    }
    const __m512 ks = _mm512_loadu_ps(k_scale);
    const __mmask16 lanes = (__mmask16)(((1u << z) - 1) & ~((1u << a) - 1));
    for (int i = 0; i < rows; i++) {
        const int64_t r = r0 + i;
        const __m512 t = _mm512_mul_ps(ks, _mm512_set1_ps(q->scale[r]));
        const __m512 dot =
            _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i], _mm512_set1_epi32(q->corr[r])));
        const __m512 s = _mm512_fmadd_ps(dot, t, _mm512_set1_ps(q->mean[r]));
        if (a == 0 && z == INT8_KEYS)
            _mm512_storeu_ps(dst + r * stride, s);
        else
            _mm512_mask_storeu_ps(dst + r * stride, (__mmask16)((1u << (z - a)) - 1),
                                  _mm512_maskz_compress_ps(lanes, s));
    }
}

static INT8_AVX512 void int8_dots_avx512(const uint8_t *k, const float *k_scale, int64_t dim4,
                                         const int8_rows *q, int64_t rows, int64_t a, int64_t z,
                                         float *dst, int64_t stride)
{
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8)
        int8_dots_rows_avx512(8, k, k_scale, dim4, q, r, a, z, dst, stride);
    switch (rows - r) {
    case 0:
        break;
    case 1:
        int8_dots_rows_avx512(1, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    case 2:
        int8_dots_rows_avx512(2, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    case 3:
        int8_dots_rows_avx512(3, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    case 4:
        int8_dots_rows_avx512(4, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    case 5:
        int8_dots_rows_avx512(5, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    case 6:
        int8_dots_rows_avx512(6, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    default:
        int8_dots_rows_avx512(7, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    }
}

/* ---- AVX-VNNI ------------------------------------------------------------------- */

#define INT8_AVX2 __attribute__((target("avx2,fma,avxvnni")))
#define INT8_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,avxvnni")))

/* rows (1..4) rows starting at row r0: both 8-key halves of the block. */
INT8_AVX2_INLINE void int8_dots_rows_avx2(int rows, const uint8_t *k, const float *k_scale,
                                          int64_t dim4, const int8_rows *q, int64_t r0, int64_t a,
                                          int64_t z, float *dst, int64_t stride)
{
    __m256i acc[4][2];
    for (int i = 0; i < rows; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const int8_t *x = q->q + r0 * dim4;
    const int64_t groups = dim4 / 4;
    for (int64_t g = 0; g < groups; g++) {
        const __m256i k0 = _mm256_loadu_si256((const __m256i *)(const void *)(k + g * 64));
        const __m256i k1 = _mm256_loadu_si256((const __m256i *)(const void *)(k + g * 64 + 32));
        for (int i = 0; i < rows; i++) {
            const __m256i b = _mm256_set1_epi32(int8_quad(x + i * dim4, g));
            acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], k0, b);
            acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], k1, b);
        }
    }
    for (int i = 0; i < rows; i++) {
        const int64_t r = r0 + i;
        float s[INT8_KEYS];
        for (int h = 0; h < 2; h++) {
            const __m256 t =
                _mm256_mul_ps(_mm256_loadu_ps(k_scale + 8 * h), _mm256_set1_ps(q->scale[r]));
            const __m256 dot =
                _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][h], _mm256_set1_epi32(q->corr[r])));
            _mm256_storeu_ps(s + 8 * h, _mm256_fmadd_ps(dot, t, _mm256_set1_ps(q->mean[r])));
        }
        memcpy(dst + r * stride, s + a, sizeof(float) * (size_t)(z - a));
    }
}

static INT8_AVX2 void int8_dots_avx2(const uint8_t *k, const float *k_scale, int64_t dim4,
                                     const int8_rows *q, int64_t rows, int64_t a, int64_t z,
                                     float *dst, int64_t stride)
{
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
        int8_dots_rows_avx2(4, k, k_scale, dim4, q, r, a, z, dst, stride);
    switch (rows - r) {
    case 0:
        break;
    case 1:
        int8_dots_rows_avx2(1, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    case 2:
        int8_dots_rows_avx2(2, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    default:
        int8_dots_rows_avx2(3, k, k_scale, dim4, q, r, a, z, dst, stride);
        break;
    }
}

#endif /* INT8_X86 */

/* ---- P V in bf16 ------------------------------------------------------------------ */

/* The most keys of one tile (the fast kernel's tiles stop at 512) and the
 * dwords of one row of probability pairs (room for the vector stores). */
#define INT8_PV_TILE 512
#define INT8_PV_ROW (INT8_PV_TILE / 2 + 32)

/* x rounded to bf16 (to nearest, ties to even), as VCVTNE2PS2BF16 does;
 * a NaN stays a (quiet) NaN. */
static inline uint16_t int8_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float int8_bf16_float(uint32_t h)
{
    const uint32_t u = (h & 0xffffu) << 16;
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

/* The probabilities of `rows` rows over keys [j0, j0 + n) as bf16 pairs:
 * dword t of row r holds the keys (j0 & ~1) + 2t (low half) and + 2t + 1,
 * zero outside [j0, j0 + n). */
static void int8_pv_pairs_scalar(const float *p, int64_t p_stride, int64_t rows, int64_t off,
                                 int64_t n, uint32_t *pp)
{
    const int64_t m = off + n;
    for (int64_t r = 0; r < rows; r++) {
        uint32_t *dst = pp + r * INT8_PV_ROW;
        for (int64_t t = 0; 2 * t < m; t++) {
            const int64_t x = 2 * t, y = 2 * t + 1;
            const uint32_t lo = x >= off ? int8_bf16(p[r * p_stride + x - off]) : 0u;
            const uint32_t hi = y < m ? int8_bf16(p[r * p_stride + y - off]) : 0u;
            dst[t] = lo | hi << 16;
        }
    }
}

/* o[r][c] += sum over the tile's pairs t of P~[r][2t] V~[2t][c] +
 * P~[r][2t+1] V~[2t+1][c] (~: bf16), in float32. vb: the tile's first pair
 * of V~, vdim64 columns (pairs of keys side by side) each. */
static void int8_pv_scalar(const uint16_t *vb, int64_t vdim64, int64_t pairs, const uint32_t *pp,
                           int64_t rows, float *o, int64_t o_stride, int64_t v_dim)
{
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t t = 0; t < pairs; t++) {
            const float x0 = int8_bf16_float(pp[r * INT8_PV_ROW + t]);
            const float x1 = int8_bf16_float(pp[r * INT8_PV_ROW + t] >> 16);
            const uint16_t *v = vb + t * vdim64 * 2;
            for (int64_t c = 0; c < v_dim; c++)
                o[r * o_stride + c] +=
                    x1 * int8_bf16_float(v[2 * c + 1]) + x0 * int8_bf16_float(v[2 * c]);
        }
    }
}

#ifdef INT8_X86

/* ---- AVX512-BF16 ---------------------------------------------------------------- */

#define INT8_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define INT8_BF16_INLINE                                                                           \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512bf16")))

/* Lanes a <= l < z of 16. */
static inline __mmask16 int8_lanes(int64_t a, int64_t z)
{
    a = int8_min(int8_max(a, 0), 16);
    z = int8_min(int8_max(z, 0), 16);
    const uint32_t hi = (1u << z) - 1u, lo = (1u << a) - 1u;
    return (__mmask16)(z > a ? hi & ~lo : 0u);
}

static INT8_BF16 void int8_pv_pairs_bf16(const float *p, int64_t p_stride, int64_t rows,
                                         int64_t off, int64_t n, uint32_t *pp)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *src = p + r * p_stride - off; /* lanes before off stay masked */
        for (int64_t x = 0; x < off + n; x += 32) {
            const __m512 lo = _mm512_maskz_loadu_ps(int8_lanes(off - x, off + n - x), src + x);
            const __m512 hi =
                _mm512_maskz_loadu_ps(int8_lanes(off - x - 16, off + n - x - 16), src + x + 16);
            const __m512bh h = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(pp + r * INT8_PV_ROW + x / 2, (__m512i)h);
        }
    }
}

/* 64 columns (c0 ..) of `rows` (1..4) rows. */
INT8_BF16_INLINE void int8_pv_block_bf16(int rows, const uint16_t *vb, int64_t vdim64,
                                         int64_t pairs, const uint32_t *pp, float *o,
                                         int64_t o_stride, int64_t c0, int64_t v_dim)
{
    __m512 acc[4][4];
    __mmask16 m[4];
    for (int c = 0; c < 4; c++)
        m[c] = int8_lanes(0, v_dim - c0 - 16 * c);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 4; c++)
            acc[r][c] = _mm512_maskz_loadu_ps(m[c], o + r * o_stride + c0 + 16 * c);
    for (int64_t t = 0; t < pairs; t++) {
        const uint16_t *v = vb + (t * vdim64 + c0) * 2;
        __m512bh y[4];
        for (int c = 0; c < 4; c++)
            y[c] = (__m512bh)_mm512_loadu_si512(v + 32 * c);
        for (int r = 0; r < rows; r++) {
            const __m512bh w = (__m512bh)_mm512_set1_epi32((int)pp[r * INT8_PV_ROW + t]);
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_dpbf16_ps(acc[r][c], w, y[c]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 4; c++)
            _mm512_mask_storeu_ps(o + r * o_stride + c0 + 16 * c, m[c], acc[r][c]);
}

static INT8_BF16 void int8_pv_bf16(const uint16_t *vb, int64_t vdim64, int64_t pairs,
                                   const uint32_t *pp, int64_t rows, float *o, int64_t o_stride,
                                   int64_t v_dim)
{
    for (int64_t c0 = 0; c0 < v_dim; c0 += 64) {
        switch (rows) {
        case 1:
            int8_pv_block_bf16(1, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        case 2:
            int8_pv_block_bf16(2, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        case 3:
            int8_pv_block_bf16(3, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        default:
            int8_pv_block_bf16(4, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        }
    }
}

/* ---- bf16 products in AVX2 (no AVX512-BF16) ----------------------------------------- */

#define INT8_EMU __attribute__((target("avx2,fma")))
#define INT8_EMU_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* 16 columns (c0 ..) of `rows` (1..4) rows: each bf16 widened by a shift. */
INT8_EMU_INLINE void int8_pv_block_avx2(int rows, const uint16_t *vb, int64_t vdim64, int64_t pairs,
                                        const uint32_t *pp, float *o, int64_t o_stride, int64_t c0,
                                        int64_t v_dim)
{
    float tmp[4][16];
    __m256 acc[4][2];
    const int64_t cols = int8_min(v_dim - c0, 16);
    for (int r = 0; r < rows; r++) {
        memset(tmp[r], 0, sizeof(tmp[r]));
        memcpy(tmp[r], o + r * o_stride + c0, sizeof(float) * (size_t)cols);
        acc[r][0] = _mm256_loadu_ps(tmp[r]);
        acc[r][1] = _mm256_loadu_ps(tmp[r] + 8);
    }
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int64_t t = 0; t < pairs; t++) {
        const uint16_t *v = vb + (t * vdim64 + c0) * 2;
        __m256 ye[2], yo[2];
        for (int c = 0; c < 2; c++) {
            const __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(v + 16 * c));
            ye[c] = _mm256_castsi256_ps(_mm256_slli_epi32(y, 16));
            yo[c] = _mm256_castsi256_ps(_mm256_and_si256(y, high));
        }
        for (int r = 0; r < rows; r++) {
            const __m256i w = _mm256_set1_epi32((int)pp[r * INT8_PV_ROW + t]);
            const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
            const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(w, high));
            for (int c = 0; c < 2; c++)
                acc[r][c] = _mm256_fmadd_ps(we, ye[c], _mm256_fmadd_ps(wo, yo[c], acc[r][c]));
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(tmp[r], acc[r][0]);
        _mm256_storeu_ps(tmp[r] + 8, acc[r][1]);
        memcpy(o + r * o_stride + c0, tmp[r], sizeof(float) * (size_t)cols);
    }
}

static INT8_EMU void int8_pv_avx2(const uint16_t *vb, int64_t vdim64, int64_t pairs,
                                  const uint32_t *pp, int64_t rows, float *o, int64_t o_stride,
                                  int64_t v_dim)
{
    for (int64_t c0 = 0; c0 < v_dim; c0 += 16) {
        switch (rows) {
        case 1:
            int8_pv_block_avx2(1, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        case 2:
            int8_pv_block_avx2(2, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        case 3:
            int8_pv_block_avx2(3, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        default:
            int8_pv_block_avx2(4, vb, vdim64, pairs, pp, o, o_stride, c0, v_dim);
            break;
        }
    }
}

#endif /* INT8_X86 */

/* ---- choosing an instruction set ---------------------------------------------- */

bool attention_int8_isa_supported(attention_int8_isa isa)
{
    switch (isa) {
    case ATTENTION_INT8_AUTO:
    case ATTENTION_INT8_SCALAR:
        return true;
#ifdef INT8_X86
    case ATTENTION_INT8_AVX_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avxvnni");
    case ATTENTION_INT8_AVX512_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return false;
    }
}

const char *attention_int8_isa_name(attention_int8_isa isa)
{
    switch (isa) {
    case ATTENTION_INT8_AUTO:
        return "auto";
    case ATTENTION_INT8_SCALAR:
        return "scalar";
    case ATTENTION_INT8_AVX_VNNI:
        return "avx-vnni";
    case ATTENTION_INT8_AVX512_VNNI:
        return "avx512-vnni";
    }
    return "unknown";
}

/* The concrete instruction set AUTO stands for. */
static attention_int8_isa int8_resolve(attention_int8_isa isa)
{
    if (isa != ATTENTION_INT8_AUTO)
        return isa;
    if (attention_int8_isa_supported(ATTENTION_INT8_AVX512_VNNI))
        return ATTENTION_INT8_AVX512_VNNI;
    if (attention_int8_isa_supported(ATTENTION_INT8_AVX_VNNI))
        return ATTENTION_INT8_AVX_VNNI;
    return ATTENTION_INT8_SCALAR;
}

static int8_dots_fn int8_dots_for(attention_int8_isa isa)
{
#ifdef INT8_X86
    if (isa == ATTENTION_INT8_AVX512_VNNI)
        return int8_dots_avx512;
    if (isa == ATTENTION_INT8_AVX_VNNI)
        return int8_dots_avx2;
#endif
    (void)isa;
    return int8_dots_scalar;
}

/* The float loops (softmax, P V) that go with the int8 ones. */
static attention_isa int8_float_isa(attention_int8_isa isa)
{
    switch (isa) {
    case ATTENTION_INT8_AVX512_VNNI:
        return ATTENTION_ISA_AVX512;
    case ATTENTION_INT8_AVX_VNNI:
        return ATTENTION_ISA_AVX2;
    default:
        return ATTENTION_ISA_SCALAR;
    }
}

/* ---- quantizing K ----------------------------------------------------------------- */

/* The keys of batch b that any query may see (the rest are never read). */
static int64_t int8_valid_keys(const attention_params *p, const attention_fast_data *d, int64_t b)
{
    int64_t n = p->total_len;
    if (d->mask != NULL)
        n = int8_min(n, d->mask_len);
    if (p->kv_valid_len != NULL)
        n = int8_min(n, p->kv_valid_len[b]);
    return int8_max(n, 0);
}

/* Row j of K for (b, h), from whichever piece holds it. */
static const float *int8_key(const attention_fast_data *d, int64_t b, int64_t h, int64_t j)
{
    const attention_view *t = j < d->split ? &d->k[0] : &d->k[1];
    const int64_t at = j < d->split ? j : j - d->split;
    return t->data + b * t->batch_stride + h * t->head_stride + at * t->seq_stride;
}

/* mu of (b, h) over its first n keys. */
static void int8_key_mean(const int8_plan *plan, int64_t b, int64_t h, int64_t n, float *mean)
{
    const int64_t dim = plan->p->qk_dim;
    for (int64_t e = 0; e < dim; e++)
        mean[e] = 0.0f;
    if (n == 0)
        return;
    /* float sums per block of keys, added up in double: cheap and accurate
     * enough for a shift that the scores add back exactly */
    double *sum = calloc((size_t)int8_max(dim, 1), sizeof(double));
    float *part = calloc((size_t)int8_max(dim, 1), sizeof(float));
    if (sum == NULL || part == NULL) {
        free(sum);
        free(part);
        return; /* mu = 0 is still correct, only less accurate */
    }
    for (int64_t j0 = 0; j0 < n; j0 += ATTENTION_INT8_K_BLOCK) {
        const int64_t j1 = int8_min(j0 + ATTENTION_INT8_K_BLOCK, n);
        memset(part, 0, sizeof(float) * (size_t)dim);
        for (int64_t j = j0; j < j1; j++) {
            const float *k = int8_key(plan->d, b, h, j);
            for (int64_t e = 0; e < dim; e++)
                part[e] += k[e];
        }
        for (int64_t e = 0; e < dim; e++)
            sum[e] += part[e];
    }
    for (int64_t e = 0; e < dim; e++)
        mean[e] = (float)(sum[e] / (double)n);
    free(sum);
    free(part);
}

/* Quantizes keys [j0, j1) of (b, h), one scale block, into the packed
 * buffer of the head; row: room for dim4 bytes, all 128. */
static void int8_key_block(const int8_plan *plan, int64_t b, int64_t h, int64_t j0, int64_t j1,
                           const float *mean, uint8_t *row, uint8_t *packed, float *k_scale)
{
    const int64_t dim = plan->p->qk_dim, dim4 = plan->dim4;
    float amax = 0.0f;
    for (int64_t j = j0; j < j1; j++) {
        const float *k = int8_key(plan->d, b, h, j);
        for (int64_t e = 0; e < dim; e++)
            amax = int8_larger(amax, fabsf(k[e] - mean[e]));
    }
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, scale = amax / 127.0f;
    for (int64_t j = j0; j < j1; j++) {
        const float *k = int8_key(plan->d, b, h, j);
        uint8_t *dst = packed + (j / INT8_KEYS) * dim4 * INT8_KEYS + (j % INT8_KEYS) * 4;
        for (int64_t e = 0; e < dim; e++)
            row[e] = (uint8_t)((int)int8_round((k[e] - mean[e]) * inv) + 128);
        for (int64_t g = 0; g < dim4 / 4; g++)
            memcpy(dst + g * 64, row + 4 * g, 4);
        k_scale[j] = scale;
    }
}

/* V of (b, h) in bf16, keys in pairs: element (t, c, i) is V[2t + i][c];
 * keys from n on and columns from v_dim on are zero. */
static void int8_value_pairs(const int8_plan *plan, int64_t b, int64_t h, int64_t n, uint16_t *dst)
{
    const attention_fast_data *d = plan->d;
    const int64_t dv = plan->p->v_dim, w = plan->vdim64;
    memset(dst, 0, sizeof(uint16_t) * (size_t)(plan->vpairs * w * 2));
    for (int64_t j = 0; j < n; j++) {
        const attention_view *t = j < d->split ? &d->v[0] : &d->v[1];
        const int64_t at = j < d->split ? j : j - d->split;
        const float *v = t->data + b * t->batch_stride + h * t->head_stride + at * t->seq_stride;
        uint16_t *row = dst + (j / 2) * w * 2 + j % 2;
        for (int64_t c = 0; c < dv; c++)
            row[2 * c] = int8_bf16(v[c]);
    }
}

/* Smooths and quantizes the keys of heads [begin, end) (b * kv_heads + h). */
static void int8_quantize_keys(void *arg, int64_t begin, int64_t end)
{
    int8_plan *plan = arg;
    const attention_params *p = plan->p;
    const int64_t span = plan->blocks * INT8_KEYS;
    uint8_t *row = malloc((size_t)plan->dim4);
    if (row == NULL) {
        atomic_store(&plan->failed, true);
        return;
    }
    memset(row, 128, (size_t)plan->dim4);
    for (int64_t head = begin; head < end; head++) {
        const int64_t b = head / p->kv_heads, h = head % p->kv_heads;
        uint8_t *packed = plan->k + head * span * plan->dim4;
        float *k_scale = plan->k_scale + head * span;
        float *mean = plan->mean + head * p->qk_dim;
        const int64_t n = int8_valid_keys(p, plan->d, b);
        /* padding (elements past qk_dim, keys past n) reads as K8 = 0 */
        memset(packed, 128, (size_t)(span * plan->dim4));
        memset(k_scale, 0, sizeof(float) * (size_t)span);
        int8_key_mean(plan, b, h, n, mean);
        for (int64_t j0 = 0; j0 < n; j0 += ATTENTION_INT8_K_BLOCK)
            int8_key_block(plan, b, h, j0, int8_min(j0 + ATTENTION_INT8_K_BLOCK, n), mean, row,
                           packed, k_scale);
        int8_value_pairs(plan, b, h, n, plan->v + head * plan->vpairs * plan->vdim64 * 2);
    }
    free(row);
}

/* ---- the scorer ------------------------------------------------------------------ */

static size_t int8_scratch_bytes(const void *ctx, int64_t rows_max)
{
    const int8_plan *plan = ctx;
    const size_t rows = (size_t)rows_max;
    return (size_t)plan->dim4 * rows + 64 + 3 * 4 * rows + 3 * 64;
}

/* The int8_rows views of a worker's scratch. */
static int8_rows int8_rows_of(const int8_plan *plan, void *scratch, int64_t rows_max)
{
    char *base = scratch;
    const size_t rows = (size_t)rows_max;
    const size_t nq = ((size_t)plan->dim4 * rows + 63) & ~(size_t)63;
    const size_t nf = (4 * rows + 63) & ~(size_t)63;
    int8_rows q = {(int8_t *)(void *)base, (float *)(void *)(base + nq),
                   (int32_t *)(void *)(base + nq + nf), (float *)(void *)(base + nq + 2 * nf)};
    return q;
}

/* Quantizes the unit's rows of scale * Q per query head (qn rows each) and
 * computes q . mu. The scratch is laid out for the unit's own row count. */
static void int8_start(const void *ctx, void *scratch, int64_t b, int64_t kv_head, const float *q,
                       int64_t rows, int64_t qn)
{
    const int8_plan *plan = ctx;
    const int64_t dim = plan->p->qk_dim, dim4 = plan->dim4;
    const float *mean = plan->mean + (b * plan->p->kv_heads + kv_head) * dim;
    int8_rows w = int8_rows_of(plan, scratch, rows);
    for (int64_t r0 = 0; r0 < rows; r0 += qn) {
        float amax = 0.0f;
        for (int64_t e = 0; e < qn * dim; e++)
            amax = int8_larger(amax, fabsf(q[r0 * dim + e]));
        const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, scale = amax / 127.0f;
        for (int64_t r = r0; r < r0 + qn; r++) {
            const float *x = q + r * dim;
            int8_t *dst = w.q + r * dim4;
            int32_t sum = 0;
            float dot = 0.0f;
            for (int64_t e = 0; e < dim; e++) {
                dst[e] = (int8_t)int8_round(x[e] * inv);
                sum += dst[e];
                dot += x[e] * mean[e];
            }
            for (int64_t e = dim; e < dim4; e++)
                dst[e] = 0;
            w.scale[r] = scale;
            w.corr[r] = 128 * sum;
            w.mean[r] = dot;
        }
    }
}

static void int8_tile(const void *ctx, void *scratch, int64_t b, int64_t kv_head, int64_t j0,
                      int64_t n, int64_t rows, float *s, int64_t s_stride)
{
    const int8_plan *plan = ctx;
    const int64_t head = b * plan->p->kv_heads + kv_head, span = plan->blocks * INT8_KEYS;
    const uint8_t *packed = plan->k + head * span * plan->dim4;
    const float *k_scale = plan->k_scale + head * span;
    const int8_dots_fn dots = int8_dots_for(plan->isa);
    const int8_rows w = int8_rows_of(plan, scratch, rows);
    for (int64_t kb = j0 / INT8_KEYS * INT8_KEYS; kb < j0 + n; kb += INT8_KEYS) {
        const int64_t a = int8_max(j0 - kb, 0), z = int8_min(j0 + n - kb, INT8_KEYS);
        dots(packed + kb * plan->dim4, k_scale + kb, plan->dim4, &w, rows, a, z, s + (kb + a - j0),
             s_stride);
    }
}

static void int8_pv(const void *ctx, int64_t b, int64_t kv_head, int64_t j0, int64_t n,
                    int64_t rows, const float *p, int64_t p_stride, float *o, int64_t o_stride)
{
    const int8_plan *plan = ctx;
    const int64_t head = b * plan->p->kv_heads + kv_head, off = j0 % 2, pairs = (off + n + 1) / 2;
    const uint16_t *vb = plan->v + (head * plan->vpairs + j0 / 2) * plan->vdim64 * 2;
    uint32_t pp[4 * INT8_PV_ROW];
    for (int64_t r = 0; r < rows; r += 4) {
        const int64_t m = int8_min(rows - r, 4);
        const float *pr = p + r * p_stride;
        float *out = o + r * o_stride;
        switch (plan->pv) {
#ifdef INT8_X86
        case INT8_PV_BF16:
            int8_pv_pairs_bf16(pr, p_stride, m, off, n, pp);
            int8_pv_bf16(vb, plan->vdim64, pairs, pp, m, out, o_stride, plan->p->v_dim);
            break;
        case INT8_PV_AVX2:
            int8_pv_pairs_scalar(pr, p_stride, m, off, n, pp);
            int8_pv_avx2(vb, plan->vdim64, pairs, pp, m, out, o_stride, plan->p->v_dim);
            break;
#endif
        default:
            int8_pv_pairs_scalar(pr, p_stride, m, off, n, pp);
            int8_pv_scalar(vb, plan->vdim64, pairs, pp, m, out, o_stride, plan->p->v_dim);
            break;
        }
    }
}

/* How P V runs for isa: bf16 products everywhere, AVX512-BF16 where the CPU
 * has it. */
static int int8_pv_for(attention_int8_isa isa)
{
#ifdef INT8_X86
    if (isa == ATTENTION_INT8_AVX512_VNNI && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512bf16"))
        return INT8_PV_BF16;
    if (isa != ATTENTION_INT8_SCALAR)
        return INT8_PV_AVX2;
#endif
    (void)isa;
    return INT8_PV_SCALAR;
}

/* ---- the entry point ---------------------------------------------------------------- */

bool attention_int8_supports(const attention_params *p)
{
    return attention_fast_supports(p) && p->qk_dim <= 4096;
}

bool attention_int8_pays(const attention_params *p)
{
    const int64_t group = p->kv_heads > 0 ? p->q_heads / p->kv_heads : 0;
    return p->q_len * group >= 16;
}

ogi_status attention_int8(threadpool *pool, const attention_params *p, const attention_fast_data *d,
                          attention_int8_isa isa)
{
    if (!attention_int8_isa_supported(isa) || !attention_int8_supports(p) || p->batch < 0 ||
        p->kv_heads <= 0 || p->total_len < 0 || p->qk_dim < 0 || p->q_heads % p->kv_heads != 0 ||
        d->split < 0 || d->split > p->total_len)
        return OGI_ERR_INVALID_ARGUMENT;
    if (p->batch == 0 || p->q_heads == 0 || p->q_len == 0)
        return OGI_OK;
    int8_plan plan = {.p = p, .d = d, .isa = int8_resolve(isa)};
    atomic_init(&plan.failed, false);
    plan.dim4 = int8_round4(int8_max(p->qk_dim, 1));
    plan.blocks = (p->total_len + INT8_KEYS - 1) / INT8_KEYS;
    const int64_t heads = p->batch * p->kv_heads, span = plan.blocks * INT8_KEYS;
    plan.k = aligned_alloc(64, (size_t)((heads * span * plan.dim4 + 63) / 64 * 64 + 64));
    plan.k_scale = malloc(sizeof(float) * (size_t)(heads * span + 1));
    plan.mean = malloc(sizeof(float) * (size_t)(heads * int8_max(p->qk_dim, 1)));
    plan.pv = int8_pv_for(plan.isa);
    plan.vdim64 = (int8_max(p->v_dim, 1) + 63) / 64 * 64;
    plan.vpairs = (p->total_len + 1) / 2 + 1;
    plan.v = malloc(sizeof(uint16_t) * (size_t)(heads * plan.vpairs * plan.vdim64 * 2));
    ogi_status st = OGI_ERR_OUT_OF_MEMORY;
    if (plan.k != NULL && plan.k_scale != NULL && plan.mean != NULL && plan.v != NULL) {
        const double work = (double)heads * (double)p->total_len * (double)p->qk_dim;
        threadpool_parallel_for(work < (double)(1 << 18) ? NULL : pool, heads, 1,
                                int8_quantize_keys, &plan);
        const attention_scorer scorer = {&plan, int8_scratch_bytes, int8_start, int8_tile, int8_pv};
        if (!atomic_load(&plan.failed))
            st = attention_fast_scored(pool, p, d, int8_float_isa(plan.isa), &scorer);
    }
    free(plan.k);
    free(plan.k_scale);
    free(plan.mean);
    free(plan.v);
    return st;
}

ogi_status attention_run_chosen(ogi_attention_precision precision, threadpool *pool,
                                const attention_params *p, const attention_fast_data *d)
{
    if (precision == OGI_ATTENTION_INT8 && attention_int8_supports(p) && attention_int8_pays(p))
        return attention_int8(pool, p, d, ATTENTION_INT8_AUTO);
    return attention_fast(pool, p, d, ATTENTION_ISA_AUTO);
}
