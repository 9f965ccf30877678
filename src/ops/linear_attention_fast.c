/* LinearAttention's fast paths (see linear_attention.h): the fused recurrent
 * step (decode) and the chunk-parallel prefill, one (batch, KV head) state at
 * a time. The loops are written so that the compiler vectorises them without
 * reassociating float sums (every inner loop is y[j] += a * x[j] over a
 * contiguous row); one generic body is compiled for AVX-512, AVX2 + FMA and
 * baseline x86-64, and the CPU picks at run time.
 *
 * Chunked form, for a chunk of n tokens starting from state S0 (G_t: the
 * log-decay summed from the chunk start through token t, per key channel or
 * per head; all products below are masked to s <= t or s < t):
 *
 *   decay(t, s)  = exp(G_t - G_s)
 *   W            = V                                          (no delta rule)
 *   W            : W_t = beta_t (V_t - exp(G_t) k_t^T S0
 *                        - sum_{s<t} (k_t . k_s decay(t, s)) W_s)   (delta)
 *   O_t          = scale (exp(G_t) q_t^T S0 + sum_{s<=t} (q_t . k_s decay(t, s)) W_s)
 *   S_n          = exp(G_n) S0 + sum_s exp(G_n - G_s) k_s W_s^T
 *
 * With a per-head decay the masked dot products are computed raw and scaled
 * by exp(G_t - G_s) <= 1. With a per-key decay they factor as (q_t exp(G_t))
 * . (k_s exp(-G_s)), which stays in range only while |G| is moderate; a chunk
 * whose |G| exceeds LA_FACTOR_LIMIT runs the recurrent step instead. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops/linear_attention.h"
#include "ops/linear_attention_internal.h"
#include "ops/vecmath.h"

#if defined(__x86_64__) || defined(__i386__)
#define LA_X86 1
#include <immintrin.h>
#endif

/* Largest |G| (natural log) a factored per-key chunk may reach: exp(60) is
 * 1e26, far from float overflow even after the dot products. */
#define LA_FACTOR_LIMIT 60.0f

/* Rows per block of the masked (lower-triangular) chunk products. */
#define LA_ROW_BLOCK 16

/* Rows per block of the delta rule's forward substitution. */
#define LA_SUB_BLOCK 8

#define LA_INLINE static inline __attribute__((always_inline))

/* ---- vector helpers (inlined into each instruction-set body) -------------- */

LA_INLINE void la_axpy(float *restrict y, float a, const float *restrict x, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        y[j] += a * x[j];
}

LA_INLINE void la_scal(float *restrict y, float a, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        y[j] *= a;
}

/* Y[m, n] (+)= A[m, k] B[k, n], row-major with leading dims; element (i, p)
 * of A at a[i * lda + p * acs] (acs = 1: row-major, lda = 1: A stored
 * transposed). acc: accumulate into Y, else overwrite it. Four rows of Y
 * share each row of B. */
LA_INLINE void la_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int64_t acs,
                       const float *b, int64_t ldb, float *y, int64_t ldy, bool acc)
{
    if (!acc)
        for (int64_t i = 0; i < m; i++)
            memset(y + i * ldy, 0, sizeof(float) * (size_t)n);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        float *restrict y0 = y + i * ldy, *restrict y1 = y0 + ldy, *restrict y2 = y1 + ldy,
                        *restrict y3 = y2 + ldy;
        const float *a0 = a + i * lda;
        for (int64_t p = 0; p < k; p++) {
            const float *restrict bp = b + p * ldb;
            const float c0 = a0[p * acs], c1 = a0[lda + p * acs], c2 = a0[2 * lda + p * acs],
                        c3 = a0[3 * lda + p * acs];
            for (int64_t j = 0; j < n; j++) {
                const float x = bp[j];
                y0[j] += c0 * x;
                y1[j] += c1 * x;
                y2[j] += c2 * x;
                y3[j] += c3 * x;
            }
        }
    }
    for (; i < m; i++)
        for (int64_t p = 0; p < k; p++)
            la_axpy(y + i * ldy, a[i * lda + p * acs], b + p * ldb, n);
}

#ifdef LA_X86
/* ROWS rows x 32 columns of Y accumulated over k in 2 * ROWS zmm registers
 * (partial column tiles masked). */
#define LA_TILE(ROWS)                                                                              \
    do {                                                                                           \
        __m512 c0[ROWS], c1[ROWS];                                                                 \
        for (int r = 0; r < ROWS; r++) {                                                           \
            c0[r] = acc ? _mm512_maskz_loadu_ps(m0, y0 + r * ldy) : _mm512_setzero_ps();           \
            c1[r] = acc ? _mm512_maskz_loadu_ps(m1, y0 + r * ldy + 16) : _mm512_setzero_ps();      \
        }                                                                                          \
        for (int64_t p = 0; p < k; p++) {                                                          \
            const float *bp = b + p * ldb + j;                                                     \
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, bp),                                       \
                         b1 = _mm512_maskz_loadu_ps(m1, bp + 16);                                  \
            for (int r = 0; r < ROWS; r++) {                                                       \
                const __m512 x = _mm512_set1_ps(a0[r * lda + p * acs]);                            \
                c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);                                             \
                c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);                                             \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < ROWS; r++) {                                                           \
            _mm512_mask_storeu_ps(y0 + r * ldy, m0, c0[r]);                                        \
            _mm512_mask_storeu_ps(y0 + r * ldy + 16, m1, c1[r]);                                   \
        }                                                                                          \
    } while (0)

/* la_gemm with the tile in registers: 8 (then 4, then 1) rows x 32 columns
 * of Y per tile. */
__attribute__((target("avx512f"))) static void
la_gemm_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int64_t acs,
               const float *b, int64_t ldb, float *y, int64_t ldy, bool acc)
{
    for (int64_t j = 0; j < n; j += 32) {
        const int64_t left = n - j;
        const __mmask16 m0 = vecmath_mask16(left), m1 = vecmath_mask16(left - 16);
        int64_t i = 0;
        for (; i + 8 <= m; i += 8) {
            float *y0 = y + i * ldy + j;
            const float *a0 = a + i * lda;
            LA_TILE(8);
        }
        for (; i + 4 <= m; i += 4) {
            float *y0 = y + i * ldy + j;
            const float *a0 = a + i * lda;
            LA_TILE(4);
        }
        for (; i < m; i++) {
            float *y0 = y + i * ldy + j;
            const float *a0 = a + i * lda;
            LA_TILE(1);
        }
    }
}
#undef LA_TILE
#endif

/* Y (+)= A B (see la_gemm) through the register-tiled kernel when wide (a
 * constant in each instruction-set body), else the generic loops. */
LA_INLINE void la_mm(bool wide, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                     int64_t acs, const float *b, int64_t ldb, float *y, int64_t ldy, bool acc)
{
#ifdef LA_X86
    if (wide) {
        la_gemm_avx512(m, n, k, a, lda, acs, b, ldb, y, ldy, acc);
        return;
    }
#else
    (void)wide;
#endif
    la_gemm(m, n, k, a, lda, acs, b, ldb, y, ldy, acc);
}

/* dst[i * ldd + s] = src[s * k + i] for s < n, i < k (src contiguous). */
#ifdef LA_X86
/* 16 rows at a time: one gather per column of the block. */
__attribute__((target("avx512f"))) static inline void
la_transpose_avx512(const float *src, int64_t n, int64_t k, float *dst, int64_t ldd)
{
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                           _mm512_set1_epi32((int)k));
    for (int64_t s0 = 0; s0 < n; s0 += 16) {
        const int64_t left = n - s0;
        const __mmask16 m = vecmath_mask16(left);
        const float *base = src + s0 * k;
        for (int64_t i = 0; i < k; i++) {
            const __m512 x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, base + i, 4);
            _mm512_mask_storeu_ps(dst + i * ldd + s0, m, x);
        }
    }
}
#endif

LA_INLINE void la_transpose(bool wide, const float *src, int64_t n, int64_t k, float *dst,
                            int64_t ldd)
{
#ifdef LA_X86
    if (wide && k <= INT32_MAX / 16) {
        la_transpose_avx512(src, n, k, dst, ldd);
        return;
    }
#else
    (void)wide;
#endif
    for (int64_t s = 0; s < n; s++)
        for (int64_t i = 0; i < k; i++)
            dst[i * ldd + s] = src[s * k + i];
}

/* ---- the recurrent step ----------------------------------------------------- */

/* One token t of head h: two passes over S (decay fused with the read-back
 * S^T k, then the write fused with the query reads). scratch: 2 * v_dim +
 * k_dim floats. */
LA_INLINE void la_step_body(const la_head *h, int64_t t, float *S, float *scratch)
{
    const linear_attention_params *p = h->p;
    const int64_t dk = p->k_dim, dv = p->v_dim;
    const bool gated = linear_attention_gated(p->rule), delta = linear_attention_delta(p->rule);
    float *r = scratch, *w = scratch + dv, *dexp = scratch + 2 * dv;
    const float *k = la_k(h, t), *v = la_v(h, t);
    if (gated) {
        if (p->decay_per_key) {
            const float *g = la_decay(h, t);
            for (int64_t i = 0; i < dk; i++)
                dexp[i] = expf(g[i]);
        } else {
            const float e = expf(*la_decay(h, t));
            for (int64_t i = 0; i < dk; i++)
                dexp[i] = e;
        }
    }
    if (delta) {
        memset(r, 0, sizeof(float) * (size_t)dv);
        for (int64_t i = 0; i < dk; i++) {
            float *row = S + i * dv;
            if (gated)
                la_scal(row, dexp[i], dv);
            la_axpy(r, k[i], row, dv);
        }
        const float beta = la_beta(h, t);
        for (int64_t j = 0; j < dv; j++)
            w[j] = beta * (v[j] - r[j]);
    } else {
        if (gated)
            for (int64_t i = 0; i < dk; i++)
                la_scal(S + i * dv, dexp[i], dv);
        memcpy(w, v, sizeof(float) * (size_t)dv);
    }
    const int64_t group = p->q_heads / p->kv_heads;
    for (int64_t g = 0; g < group; g++)
        memset(la_out(h, g, t), 0, sizeof(float) * (size_t)dv);
    for (int64_t i = 0; i < dk; i++) {
        float *row = S + i * dv;
        la_axpy(row, k[i], w, dv);
        for (int64_t g = 0; g < group; g++)
            la_axpy(la_out(h, g, t), la_q(h, g, t)[i], row, dv);
    }
    for (int64_t g = 0; g < group; g++)
        la_scal(la_out(h, g, t), p->scale, dv);
}

/* ---- the chunked prefill ---------------------------------------------------- */

/* Scratch of one chunk (c: the chunk capacity). */
typedef struct la_chunk_buf {
    float *gam;  /* [c, k_dim] (per-key decay) or [c]: cumulative log decay G */
    float *egam; /* exp(G), same layout */
    float *einv; /* exp(-G) (per-key decay) */
    float *khat; /* [c, k_dim]: k_t exp(G_t) */
    float *qhat; /* [c, k_dim]: q_t exp(G_t) */
    float *rt;   /* [k_dim, c]: k_s (exp(-G_s) for a per-key decay), transposed */
    float *ktil; /* [c, k_dim]: k_s exp(G_n - G_s) */
    float *edec; /* [c, c]: exp(G_t - G_s) for a per-head decay */
    float *m;    /* [c, c]: masked k_t . k_s decay(t, s) */
    float *a;    /* [c, c]: masked q_t . k_s decay(t, s) */
    float *w;    /* [c, v_dim]: the values written */
    float *step; /* recurrent step scratch */
} la_chunk_buf;

/* Cumulative decays of tokens t0..t0+n-1; false when a per-key chunk would
 * leave the factorable range. */
LA_INLINE bool la_chunk_decay(const la_head *h, int64_t t0, int64_t n, la_chunk_buf *b)
{
    const int64_t dk = h->p->k_dim;
    if (!h->p->decay_per_key) {
        float acc = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            b->gam[t] = acc += *la_decay(h, t0 + t);
            b->egam[t] = vecmath_expf(acc);
        }
        return true;
    }
    /* |G| maxima per channel (in einv until the exponentials), kept
     * elementwise so that the loops vectorise */
    float *most = b->einv;
    for (int64_t t = 0; t < n; t++) {
        const float *g = la_decay(h, t0 + t);
        float *row = b->gam + t * dk;
        if (t == 0) {
            for (int64_t i = 0; i < dk; i++) {
                row[i] = g[i];
                most[i] = fabsf(g[i]);
            }
            continue;
        }
        for (int64_t i = 0; i < dk; i++) {
            row[i] = row[i - dk] + g[i];
            const float a = fabsf(row[i]);
            most[i] = a > most[i] ? a : most[i];
        }
    }
    float worst = 0.0f;
    for (int64_t i = 0; i < dk; i++)
        worst = most[i] > worst ? most[i] : worst;
    if (worst > LA_FACTOR_LIMIT)
        return false;
    for (int64_t j = 0; j < n * dk; j++) {
        b->egam[j] = vecmath_expf(b->gam[j]);
        b->einv[j] = vecmath_expf(-b->gam[j]);
    }
    return true;
}

/* exp(G_t) for channel i (1 without gating). */
LA_INLINE float la_gexp(const la_head *h, const la_chunk_buf *b, bool gated, int64_t t, int64_t i)
{
    if (!gated)
        return 1.0f;
    return h->p->decay_per_key ? b->egam[t * h->p->k_dim + i] : b->egam[t];
}

/* rows[t, :] = scale x_t exp(G_t) for t < n (x: q of query head qh, or k
 * when qh < 0). */
LA_INLINE void la_chunk_scaled(const la_head *h, const la_chunk_buf *b, bool gated, int64_t t0,
                               int64_t n, int64_t qh, float scale, float *rows)
{
    const int64_t dk = h->p->k_dim;
    for (int64_t t = 0; t < n; t++) {
        const float *x = qh < 0 ? la_k(h, t0 + t) : la_q(h, qh, t0 + t);
        float *row = rows + t * dk;
        if (!gated) {
            for (int64_t i = 0; i < dk; i++)
                row[i] = x[i] * scale;
        } else if (h->p->decay_per_key) {
            const float *e = b->egam + t * dk;
            for (int64_t i = 0; i < dk; i++)
                row[i] = x[i] * e[i] * scale;
        } else {
            const float e = b->egam[t] * scale;
            for (int64_t i = 0; i < dk; i++)
                row[i] = x[i] * e;
        }
    }
}

/* out[t, s] (s <= t, or s < t when strict) = left[t, :] . rt[:, s], times
 * edec[t, s] for a per-head decay; entries above the mask are zeroed. The
 * product runs through the tiled kernel: more multiply-adds than
 * of the triangle, at several times their speed, by row blocks that stop
 * at the block's last column. */
LA_INLINE void la_chunk_scores(bool wide, const la_head *h, const la_chunk_buf *b, bool gated,
                               int64_t n, int64_t c, const float *left, int64_t ldl, bool strict,
                               float *out)
{
    const int64_t dk = h->p->k_dim;
    /* row blocks against the columns up to their end: about the triangle;
     * the columns past a block's end are zeroed by the mask below */
    for (int64_t r0 = 0; r0 < n; r0 += LA_ROW_BLOCK) {
        const int64_t end = r0 + LA_ROW_BLOCK < n ? r0 + LA_ROW_BLOCK : n;
        la_mm(wide, end - r0, end, dk, left + r0 * ldl, ldl, 1, b->rt, c, out + r0 * c, c, false);
    }
    for (int64_t t = 0; t < n; t++) {
        float *row = out + t * c;
        const int64_t len = strict ? t : t + 1;
        if (gated && !h->p->decay_per_key)
            for (int64_t s = 0; s < len; s++)
                row[s] *= b->edec[t * c + s];
        for (int64_t s = len; s < n; s++)
            row[s] = 0.0f;
    }
}

/* Starts loading quarter `part` (0..3) of the rows of the chunk at t0 (keys,
 * values, queries, per-key decays, output rows) while this chunk computes:
 * with many heads the rows lie a multiple of 4 KiB apart, past the hardware
 * prefetchers. Spread over the chunk's phases so as not to stall on a burst. */
LA_INLINE void la_chunk_prefetch(const la_head *h, int64_t next, int part)
{
    const linear_attention_params *p = h->p;
    const int64_t n = p->seq_len - next < p->chunk ? p->seq_len - next : p->chunk;
    const int64_t t0 = next + n * part / 4, t1 = next + n * (part + 1) / 4;
    const int64_t group = p->q_heads / p->kv_heads, line = 64 / (int64_t)sizeof(float);
    for (int64_t t = t0; t < t1; t++) {
        for (int64_t i = 0; i < p->k_dim; i += line) {
            __builtin_prefetch(la_k(h, t) + i);
            for (int64_t g = 0; g < group; g++)
                __builtin_prefetch(la_q(h, g, t) + i);
            if (linear_attention_gated(p->rule) && p->decay_per_key)
                __builtin_prefetch(la_decay(h, t) + i);
        }
        for (int64_t j = 0; j < p->v_dim; j += line) {
            __builtin_prefetch(la_v(h, t) + j);
            for (int64_t g = 0; g < group; g++)
                __builtin_prefetch(la_out(h, g, t) + j, 1);
        }
    }
}

/* One chunk of n tokens from t0, S updated. Keys, values and queries are
 * read in place with their row strides where no scaled copy is needed; the
 * output scale is folded into the query rows. */
LA_INLINE void la_chunk_body(bool wide, const la_head *h, int64_t t0, int64_t n, float *S,
                             la_chunk_buf *b)
{
    const linear_attention_params *p = h->p;
    const int64_t dk = p->k_dim, dv = p->v_dim, c = p->chunk;
    const int64_t ldk = p->kv_heads * dk, ldv = p->kv_heads * dv, ldo = p->q_heads * dv;
    const bool gated = linear_attention_gated(p->rule), delta = linear_attention_delta(p->rule);
    if (gated && !la_chunk_decay(h, t0, n, b)) {
        for (int64_t t = 0; t < n; t++)
            la_step_body(h, t0 + t, S, b->step);
        return;
    }
    la_chunk_prefetch(h, t0 + n, 0);
    const bool per_key = gated && p->decay_per_key;
    const float *k0 = la_k(h, t0);
    /* rt: the right factor of the masked products, transposed [k_dim, c];
     * ktil: the state update's left factor, row-major [n, k_dim] (copied:
     * the inputs' row stride, a multiple of 4 KiB with many heads, would
     * make the products' rows collide in the cache) */
    if (per_key) {
        for (int64_t s = 0; s < n; s++) {
            const float *k = k0 + s * ldk, *einv = b->einv + s * dk;
            float *row = b->ktil + s * dk;
            for (int64_t i = 0; i < dk; i++)
                row[i] = k[i] * einv[i];
        }
        la_transpose(wide, b->ktil, n, dk, b->rt, c);
        const float *elast = b->egam + (n - 1) * dk;
        for (int64_t s = 0; s < n; s++) {
            float *row = b->ktil + s * dk;
            for (int64_t i = 0; i < dk; i++)
                row[i] *= elast[i];
        }
    } else {
        for (int64_t s = 0; s < n; s++)
            memcpy(b->ktil + s * dk, k0 + s * ldk, sizeof(float) * (size_t)dk);
        la_transpose(wide, b->ktil, n, dk, b->rt, c);
        if (gated)
            /* per head: exp(G_n - G_s) directly, as exp(G_s) may underflow */
            for (int64_t s = 0; s < n; s++)
                la_scal(b->ktil + s * dk, vecmath_expf(b->gam[n - 1] - b->gam[s]), dk);
    }
    if (gated && !p->decay_per_key)
        for (int64_t t = 0; t < n; t++)
            for (int64_t s = 0; s <= t; s++)
                b->edec[t * c + s] = vecmath_expf(b->gam[t] - b->gam[s]);

    /* W: the values written, copied to contiguous rows (the inputs' row
     * stride, a multiple of 4 KiB with many heads, would make the products'
     * rows collide in the cache) */
    for (int64_t t = 0; t < n; t++)
        memcpy(b->w + t * dv, la_v(h, t0) + t * ldv, sizeof(float) * (size_t)dv);
    const float *w = b->w;
    const int64_t ldw = dv;
    if (delta) {
        /* khat = -K̂; the masked products from negated keys give -M */
        la_chunk_scaled(h, b, gated, t0, n, -1, -1.0f, b->khat);
        const float *left = b->khat;
        if (gated && !per_key) { /* raw keys, the decay applied afterwards (edec) */
            la_chunk_scaled(h, b, false, t0, n, -1, -1.0f, b->qhat);
            left = b->qhat;
        }
        la_chunk_scores(wide, h, b, gated, n, c, left, dk, true, b->m);
        /* R = V - K̂ S0, then W_t = beta_t (R_t - sum_{s<t} M_ts W_s) by row
         * blocks: the earlier blocks' part as one product, then the rows */
        la_mm(wide, n, dv, dk, b->khat, dk, 1, S, dv, b->w, dv, true);
        for (int64_t r0 = 0; r0 < n; r0 += LA_SUB_BLOCK) {
            const int64_t end = r0 + LA_SUB_BLOCK < n ? r0 + LA_SUB_BLOCK : n;
            if (r0 > 0)
                la_mm(wide, end - r0, dv, r0, b->m + r0 * c, c, 1, b->w, dv, b->w + r0 * dv, dv,
                      true);
            for (int64_t t = r0; t < end; t++) {
                float *wt = b->w + t * dv;
                for (int64_t s = r0; s < t; s++)
                    la_axpy(wt, b->m[t * c + s], b->w + s * dv, dv);
                la_scal(wt, la_beta(h, t0 + t), dv);
            }
        }
    }

    la_chunk_prefetch(h, t0 + n, 1);
    /* outputs of every query head of the group, the scale in the queries */
    const int64_t group = p->q_heads / p->kv_heads;
    for (int64_t g = 0; g < group; g++) {
        la_chunk_scaled(h, b, gated, t0, n, g, p->scale, b->qhat);
        const float *left = b->qhat;
        if (gated && !per_key) { /* raw queries against raw keys, decay from edec */
            la_chunk_scaled(h, b, false, t0, n, g, p->scale, b->khat);
            left = b->khat;
        }
        la_chunk_scores(wide, h, b, gated, n, c, left, dk, false, b->a);
        float *o = la_out(h, g, t0);
        if (g == 0)
            la_chunk_prefetch(h, t0 + n, 2);
        la_mm(wide, n, dv, dk, b->qhat, dk, 1, S, dv, o, ldo, false);
        /* a is zero above the diagonal: each row block stops at its end */
        for (int64_t r0 = 0; r0 < n; r0 += LA_ROW_BLOCK) {
            const int64_t end = r0 + LA_ROW_BLOCK < n ? r0 + LA_ROW_BLOCK : n;
            la_mm(wide, end - r0, dv, end, b->a + r0 * c, c, 1, w, ldw, o + r0 * ldo, ldo, true);
        }
    }

    la_chunk_prefetch(h, t0 + n, 3);
    /* S_n = exp(G_n) S0 + ktil^T W (ktil read transposed) */
    if (gated)
        for (int64_t i = 0; i < dk; i++)
            la_scal(S + i * dv, la_gexp(h, b, gated, n - 1, i), dv);
    la_mm(wide, dk, dv, n, b->ktil, 1, dk, w, ldw, S, dv, true);
}

LA_INLINE void la_head_body(bool wide, const la_head *h, bool chunked, la_chunk_buf *b)
{
    const linear_attention_params *p = h->p;
    float *S = la_state(h);
    if (!chunked) {
        for (int64_t t = 0; t < p->seq_len; t++)
            la_step_body(h, t, S, b->step);
        return;
    }
    for (int64_t t0 = 0; t0 < p->seq_len; t0 += p->chunk) {
        const int64_t n = p->seq_len - t0 < p->chunk ? p->seq_len - t0 : p->chunk;
        la_chunk_body(wide, h, t0, n, S, b);
    }
}

/* ---- one body per instruction set ------------------------------------------ */

static void la_head_generic(const la_head *h, bool chunked, la_chunk_buf *b)
{
    la_head_body(false, h, chunked, b);
}

#ifdef LA_X86
__attribute__((target("avx2,fma"))) static void la_head_avx2(const la_head *h, bool chunked,
                                                             la_chunk_buf *b)
{
    la_head_body(false, h, chunked, b);
}

__attribute__((target("avx512f"))) static void la_head_avx512(const la_head *h, bool chunked,
                                                              la_chunk_buf *b)
{
    la_head_body(true, h, chunked, b);
}
#endif

typedef void (*la_head_fn)(const la_head *, bool, la_chunk_buf *);

static la_head_fn la_pick_body(void)
{
#ifdef LA_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return la_head_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return la_head_avx2;
#endif
    return la_head_generic;
}

/* ---- threads ---------------------------------------------------------------- */

typedef struct la_fast_job {
    const linear_attention_params *p;
    const linear_attention_data *d;
    bool chunked;
    la_head_fn body;
    int failed;
} la_fast_job;

static void la_fast_range(void *arg, int64_t begin, int64_t end)
{
    la_fast_job *job = arg;
    const linear_attention_params *p = job->p;
    const int64_t dk = p->k_dim, dv = p->v_dim, c = p->chunk;
    size_t floats = (size_t)(2 * dv + dk);
    if (job->chunked)
        floats += (size_t)(c * dk * 7 + dk * c * 2 + c * c * 3 + c * dv);
    float *mem = malloc(sizeof(float) * floats);
    if (mem == NULL) {
        __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    la_chunk_buf b = {0};
    b.step = mem;
    if (job->chunked) {
        float *q = mem + 2 * dv + dk;
        b.khat = q, q += c * dk;
        b.qhat = q, q += c * dk;
        b.gam = q, q += c * dk;
        b.egam = q, q += c * dk;
        b.einv = q, q += c * dk;
        b.rt = q, q += dk * c;
        b.ktil = q, q += dk * c;
        b.edec = q, q += c * c;
        b.m = q, q += c * c;
        b.a = q, q += c * c;
        b.w = q;
    }
    for (int64_t u = begin; u < end; u++) {
        const la_head h = {p, job->d, u / p->kv_heads, u % p->kv_heads};
        job->body(&h, job->chunked, &b);
    }
    free(mem);
}

ogi_status linear_attention_fast(threadpool *pool, const linear_attention_params *p,
                                 const linear_attention_data *d, bool chunked)
{
    la_fast_job job = {p, d, chunked, la_pick_body(), 0};
    threadpool_parallel_for(pool, p->batch * p->kv_heads, 1, la_fast_range, &job);
    return job.failed
               ? ogi_error(OGI_ERR_OUT_OF_MEMORY, "LinearAttention: out of memory for scratch")
               : OGI_OK;
}
