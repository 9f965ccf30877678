/* Small-m products, Y[i, :] (+)= sum_k A[i, k] * B[k, :]: the matrix-vector
 * products of a decode step, bound by how fast B streams from memory.
 *
 * Y's columns split into strips. Within a strip, four (or eight) rows of B
 * at a time (contiguous runs the hardware prefetchers follow) update up to
 * four rows of Y, which stay in cache; every element of B is read from
 * memory once, and only again from L1 for further groups of rows.
 * Strips go to the pool's threads when B is large enough to repay waking
 * them. AVX-512, AVX2+FMA and scalar versions share this structure; the
 * caller picks one with gemm_isa_best(). */
#include <math.h>
#include <string.h>

#include "ops/gemm.h"
#include "ops/vecmath.h"

#if defined(__x86_64__) || defined(__i386__)
#define GEMM_X86 1
#include <immintrin.h>
#endif

/* Columns per strip (measured): one row of Y takes wide strips, long runs
 * of B being faster to stream from memory; several rows take strips of
 * GEMM_SMALL_STRIP_ROWS / m columns, whose rows of Y stay in L1. */
#define GEMM_SMALL_STRIP_ONE 16384
#define GEMM_SMALL_STRIP_ROWS 2048
#define GEMM_SMALL_STRIP_MIN 256
/* Rows of B per step and rows of Y per group. With AVX-512, one or two rows
 * of Y take eight rows of B per step (about 10 % faster from memory than
 * four); AVX2 has half the vector registers, so it updates two rows of Y at
 * a time, four rows of B per step. */
#define GEMM_SMALL_KU 4
#define GEMM_SMALL_KU_WIDE 8
#define GEMM_SMALL_GROUP 4
#define GEMM_SMALL_GROUP_AVX2 2
/* Below this many bytes of B (times the groups of rows), one thread. On a
 * SmolLM-135M-like decode step with the weights in memory, splitting from
 * 1 MiB measured 25 % faster than from 4 MiB. A small model's weights stay
 * in L3 from step to step, and there two cores read about twice as fast
 * as one: splitting from 64 KiB took docstring-llama's decode step from
 * about 280 to 185 us (its 256 x 704 products from 11 to 6 us), the
 * pool's workers spinning between the step's many products. */
#define GEMM_SMALL_PARALLEL_BYTES ((int64_t)1 << 16)
/* How many rows of B ahead the first group prefetches. */
#define GEMM_SMALL_PREFETCH_ROWS 8

gemm_isa gemm_isa_best(void)
{
#ifdef GEMM_X86
    if (__builtin_cpu_supports("avx512f"))
        return GEMM_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return GEMM_ISA_AVX2;
#endif
    return GEMM_ISA_SCALAR;
}

/* One step: rows [i0, i0 + rows) of Y, columns [j0, j1), rows [k0, k0 + ku)
 * of B. */
typedef struct gemm_small_step {
    const gemm_f32_args *g;
    int64_t i0, k0, j0, j1;
    int rows, ku;
    bool prefetch; /* the first group also prefetches B rows ahead */
} gemm_small_step;

static void gemm_small_step_scalar(const gemm_small_step *s)
{
    const gemm_f32_args *g = s->g;
    for (int r = 0; r < s->rows; r++) {
        const float *a = g->a + (s->i0 + r) * g->lda + s->k0;
        float *y = g->y + (s->i0 + r) * g->ldy;
        for (int u = 0; u < s->ku; u++) {
            const float *b = g->b + (s->k0 + u) * g->ldb;
            for (int64_t j = s->j0; j < s->j1; j++)
                y[j] += a[u] * b[j];
        }
    }
}

#ifdef GEMM_X86

/* The B row `ahead` rows below row k0 + u, or row k0 + u past the end. */
static const float *gemm_small_ahead(const gemm_small_step *s, int u, int ahead)
{
    int64_t k = s->k0 + u + ahead < s->g->k ? s->k0 + u + ahead : s->k0 + u;
    return s->g->b + k * s->g->ldb;
}

/* ---- AVX-512 -------------------------------------------------------------- */

#define GEMM_AVX512 __attribute__((target("avx512f")))
#define GEMM_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* ROWS and KU are constants at each call, so the loops unroll into
 * registers: ROWS * KU broadcasts of A, KU vectors of B. */
GEMM_AVX512_INLINE void gemm_small_block_avx512(const gemm_small_step *s, int ROWS, int KU)
{
    const gemm_f32_args *g = s->g;
    __m512 a[GEMM_SMALL_GROUP][GEMM_SMALL_KU_WIDE];
    const float *b[GEMM_SMALL_KU_WIDE], *pf[GEMM_SMALL_KU_WIDE];
    float *y[GEMM_SMALL_GROUP];
    for (int r = 0; r < ROWS; r++) {
        y[r] = g->y + (s->i0 + r) * g->ldy;
        for (int u = 0; u < KU; u++)
            a[r][u] = _mm512_set1_ps(g->a[(s->i0 + r) * g->lda + s->k0 + u]);
    }
    for (int u = 0; u < KU; u++) {
        b[u] = g->b + (s->k0 + u) * g->ldb;
        pf[u] = gemm_small_ahead(s, u, GEMM_SMALL_PREFETCH_ROWS);
    }
    int64_t j = s->j0;
    for (; j + 16 <= s->j1; j += 16) {
        __m512 bv[GEMM_SMALL_KU_WIDE];
        for (int u = 0; u < KU; u++) {
            bv[u] = _mm512_loadu_ps(b[u] + j);
            if (s->prefetch)
                _mm_prefetch((const char *)(pf[u] + j), _MM_HINT_T0);
        }
        /* all loads of Y before its stores: rows a multiple of 4 KiB apart
         * would otherwise wait on each other's stores (4K aliasing) */
        __m512 acc[GEMM_SMALL_GROUP];
        for (int r = 0; r < ROWS; r++)
            acc[r] = _mm512_loadu_ps(y[r] + j);
        for (int r = 0; r < ROWS; r++)
            for (int u = 0; u < KU; u++)
                acc[r] = _mm512_fmadd_ps(a[r][u], bv[u], acc[r]);
        for (int r = 0; r < ROWS; r++)
            _mm512_storeu_ps(y[r] + j, acc[r]);
    }
    if (j < s->j1) {
        __mmask16 m = vecmath_mask16(s->j1 - j);
        __m512 bv[GEMM_SMALL_KU_WIDE];
        for (int u = 0; u < KU; u++)
            bv[u] = _mm512_maskz_loadu_ps(m, b[u] + j);
        for (int r = 0; r < ROWS; r++) {
            __m512 acc = _mm512_maskz_loadu_ps(m, y[r] + j);
            for (int u = 0; u < KU; u++)
                acc = _mm512_fmadd_ps(a[r][u], bv[u], acc);
            _mm512_mask_storeu_ps(y[r] + j, m, acc);
        }
    }
}

GEMM_AVX512 static void gemm_small_step_avx512(const gemm_small_step *s)
{
    if (s->ku == GEMM_SMALL_KU_WIDE) {
        if (s->rows == 1)
            gemm_small_block_avx512(s, 1, GEMM_SMALL_KU_WIDE);
        else
            gemm_small_block_avx512(s, 2, GEMM_SMALL_KU_WIDE);
        return;
    }
    if (s->ku == GEMM_SMALL_KU) {
        switch (s->rows) {
        case 1:
            gemm_small_block_avx512(s, 1, GEMM_SMALL_KU);
            return;
        case 2:
            gemm_small_block_avx512(s, 2, GEMM_SMALL_KU);
            return;
        case 3:
            gemm_small_block_avx512(s, 3, GEMM_SMALL_KU);
            return;
        default:
            gemm_small_block_avx512(s, 4, GEMM_SMALL_KU);
            return;
        }
    }
    gemm_small_step one = *s;
    one.ku = 1;
    for (int u = 0; u < s->ku; u++, one.k0++) {
        switch (s->rows) {
        case 1:
            gemm_small_block_avx512(&one, 1, 1);
            break;
        case 2:
            gemm_small_block_avx512(&one, 2, 1);
            break;
        case 3:
            gemm_small_block_avx512(&one, 3, 1);
            break;
        default:
            gemm_small_block_avx512(&one, 4, 1);
            break;
        }
    }
}

/* ---- AVX2 + FMA ----------------------------------------------------------- */

#define GEMM_AVX2 __attribute__((target("avx2,fma")))
#define GEMM_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

GEMM_AVX2_INLINE void gemm_small_block_avx2(const gemm_small_step *s, int ROWS, int KU)
{
    const gemm_f32_args *g = s->g;
    __m256 a[GEMM_SMALL_GROUP_AVX2][GEMM_SMALL_KU];
    const float *b[GEMM_SMALL_KU], *pf[GEMM_SMALL_KU];
    float *y[GEMM_SMALL_GROUP_AVX2];
    for (int r = 0; r < ROWS; r++) {
        y[r] = g->y + (s->i0 + r) * g->ldy;
        for (int u = 0; u < KU; u++)
            a[r][u] = _mm256_set1_ps(g->a[(s->i0 + r) * g->lda + s->k0 + u]);
    }
    for (int u = 0; u < KU; u++) {
        b[u] = g->b + (s->k0 + u) * g->ldb;
        pf[u] = gemm_small_ahead(s, u, GEMM_SMALL_PREFETCH_ROWS);
    }
    int64_t j = s->j0;
    for (; j + 8 <= s->j1; j += 8) {
        __m256 bv[GEMM_SMALL_KU];
        for (int u = 0; u < KU; u++) {
            bv[u] = _mm256_loadu_ps(b[u] + j);
            if (s->prefetch && (j & 15) == 0)
                _mm_prefetch((const char *)(pf[u] + j), _MM_HINT_T0);
        }
        __m256 acc[GEMM_SMALL_GROUP_AVX2];
        for (int r = 0; r < ROWS; r++)
            acc[r] = _mm256_loadu_ps(y[r] + j);
        for (int r = 0; r < ROWS; r++)
            for (int u = 0; u < KU; u++)
                acc[r] = _mm256_fmadd_ps(a[r][u], bv[u], acc[r]);
        for (int r = 0; r < ROWS; r++)
            _mm256_storeu_ps(y[r] + j, acc[r]);
    }
    /* the last few columns one by one, in the same order */
    for (; j < s->j1; j++) {
        for (int r = 0; r < ROWS; r++) {
            float acc = y[r][j];
            for (int u = 0; u < KU; u++)
                acc = fmaf(g->a[(s->i0 + r) * g->lda + s->k0 + u], b[u][j], acc);
            y[r][j] = acc;
        }
    }
}

GEMM_AVX2 static void gemm_small_step_avx2(const gemm_small_step *s)
{
    if (s->ku == GEMM_SMALL_KU) {
        if (s->rows == 1)
            gemm_small_block_avx2(s, 1, GEMM_SMALL_KU);
        else
            gemm_small_block_avx2(s, 2, GEMM_SMALL_KU);
        return;
    }
    gemm_small_step one = *s;
    one.ku = 1;
    for (int u = 0; u < s->ku; u++, one.k0++) {
        if (s->rows == 1)
            gemm_small_block_avx2(&one, 1, 1);
        else
            gemm_small_block_avx2(&one, 2, 1);
    }
}

/* ---- pre-packed panels (AVX-512) ------------------------------------------ */

/* Rows of B per block: a block of a panel group (4 panels of 32 columns: 64
 * KiB at 128 rows) stays in L2 while each group of up to four rows of Y
 * runs over it; one row of Y runs all of k as one block. */
#define GEMM_PANEL_KB 128
/* Panels per group: 4 for one row of Y (8 accumulators), 2 for more. */
#define GEMM_PANEL_GROUP_ONE 4
#define GEMM_PANEL_GROUP 2

typedef struct gemm_panel_step {
    const gemm_f32_args *g;
    int64_t i0;     /* first row of Y */
    int64_t p0;     /* first panel */
    int64_t k0, kc; /* rows of B */
    bool first;     /* k0 == 0: start from 0 (or Y when accumulating) */
} gemm_panel_step;

/* Y[i0 .. i0 + ROWS)[32 p0 .. 32 (p0 + PANELS)) (+)= A[., k0 .. k0 + kc) @
 * those panels' rows: ROWS x PANELS x 2 accumulators, one broadcast of A per
 * row and 2 * PANELS loads of B per k, each panel read front to back. The
 * sum runs over k in order, one FMA at a time, as the row-major kernel's. */
GEMM_AVX512_INLINE void gemm_panel_block_avx512(const gemm_panel_step *s, int ROWS, int PANELS,
                                                bool STREAM)
{
    const gemm_f32_args *g = s->g;
    __m512 acc[GEMM_SMALL_GROUP][GEMM_PANEL_GROUP_ONE * 2];
    __mmask16 mask[GEMM_PANEL_GROUP_ONE * 2];
    for (int v = 0; v < PANELS * 2; v++) {
        int64_t col = (s->p0 + v / 2) * GEMM_PANEL + (v % 2) * 16;
        mask[v] = vecmath_mask16(g->n - col);
    }
    for (int r = 0; r < ROWS; r++) {
        float *y = g->y + (s->i0 + r) * g->ldy + s->p0 * GEMM_PANEL;
        for (int v = 0; v < PANELS * 2; v++)
            acc[r][v] = s->first && !g->accumulate ? _mm512_setzero_ps()
                                                   : _mm512_maskz_loadu_ps(mask[v], y + v * 16);
    }
    const float *b[GEMM_PANEL_GROUP_ONE];
    for (int q = 0; q < PANELS; q++)
        b[q] = g->b_panels + ((s->p0 + q) * g->k + s->k0) * GEMM_PANEL;
    const float *a = g->a + s->i0 * g->lda + s->k0;
    for (int64_t p = 0; p < s->kc; p++) {
        __m512 bv[GEMM_PANEL_GROUP_ONE * 2];
        for (int q = 0; q < PANELS; q++) {
            /* 8 KiB ahead over all the panels, whatever their number (16
             * rows of 4, 32 of 2): with 16 rows for 2 panels, batch-4
             * SmolLM2 decode steps were 2-3 % slower (9 alternated pairs) */
            const char *ahead = (const char *)(b[q] + (p + 64 / PANELS) * GEMM_PANEL);
            if (STREAM) { /* the line is read once: keep it out of L2 and L3 */
                _mm_prefetch(ahead, _MM_HINT_NTA);
                _mm_prefetch(ahead + 64, _MM_HINT_NTA);
            } else {
                _mm_prefetch(ahead, _MM_HINT_T0);
                _mm_prefetch(ahead + 64, _MM_HINT_T0);
            }
            bv[2 * q] = _mm512_load_ps(b[q] + p * GEMM_PANEL);
            bv[2 * q + 1] = _mm512_load_ps(b[q] + p * GEMM_PANEL + 16);
        }
        for (int r = 0; r < ROWS; r++) {
            __m512 ar = _mm512_set1_ps(a[r * g->lda + p]);
            for (int v = 0; v < PANELS * 2; v++)
                acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < ROWS; r++) {
        float *y = g->y + (s->i0 + r) * g->ldy + s->p0 * GEMM_PANEL;
        for (int v = 0; v < PANELS * 2; v++)
            _mm512_mask_storeu_ps(y + v * 16, mask[v], acc[r][v]);
    }
}

GEMM_AVX512_INLINE void gemm_panel_steps_avx512(const gemm_panel_step *s, int rows, int panels,
                                                bool STREAM)
{
    if (panels == GEMM_PANEL_GROUP_ONE && rows == 1) {
        gemm_panel_block_avx512(s, 1, GEMM_PANEL_GROUP_ONE, STREAM);
        return;
    }
    gemm_panel_step one = *s;
    for (int q = 0; q < panels; q += GEMM_PANEL_GROUP, one.p0 += GEMM_PANEL_GROUP) {
        bool two = panels - q >= GEMM_PANEL_GROUP;
        switch (rows * 2 + (two ? 1 : 0)) {
        case 2:
            gemm_panel_block_avx512(&one, 1, 1, STREAM);
            break;
        case 3:
            gemm_panel_block_avx512(&one, 1, 2, STREAM);
            break;
        case 4:
            gemm_panel_block_avx512(&one, 2, 1, STREAM);
            break;
        case 5:
            gemm_panel_block_avx512(&one, 2, 2, STREAM);
            break;
        case 6:
            gemm_panel_block_avx512(&one, 3, 1, STREAM);
            break;
        case 7:
            gemm_panel_block_avx512(&one, 3, 2, STREAM);
            break;
        case 8:
            gemm_panel_block_avx512(&one, 4, 1, STREAM);
            break;
        default:
            gemm_panel_block_avx512(&one, 4, 2, STREAM);
            break;
        }
    }
}

GEMM_AVX512 static void gemm_panel_step_avx512(const gemm_panel_step *s, int rows, int panels)
{
    gemm_panel_steps_avx512(s, rows, panels, false);
}

GEMM_AVX512 static void gemm_panel_step_stream_avx512(const gemm_panel_step *s, int rows,
                                                      int panels)
{
    gemm_panel_steps_avx512(s, rows, panels, true);
}

/* Several products (one per weight sharing A, or just one), their units of
 * panels numbered one after the other. */
typedef struct gemm_panel_job {
    const gemm_f32_args *g;
    int group;                              /* panels per unit */
    int64_t first_unit[GEMM_GROUP_MAX + 1]; /* per product; units in all last */
} gemm_panel_job;

/* Units [begin, end): groups of panels, every row of Y, all of k. */
static void gemm_panel_units(void *arg, int64_t begin, int64_t end)
{
    const gemm_panel_job *job = arg;
    int i = 0;
    for (int64_t u = begin; u < end; u++) {
        while (job->first_unit[i + 1] <= u)
            i++;
        const gemm_f32_args *g = &job->g[i];
        int64_t panels = (g->n + GEMM_PANEL - 1) / GEMM_PANEL;
        int64_t kb = g->m == 1 ? g->k : GEMM_PANEL_KB;
        int64_t p0 = (u - job->first_unit[i]) * job->group;
        int n_panels = (int)(panels - p0 < job->group ? panels - p0 : job->group);
        gemm_panel_step s = {.g = g, .p0 = p0};
        for (s.k0 = 0; s.k0 < g->k; s.k0 += kb) {
            s.kc = g->k - s.k0 < kb ? g->k - s.k0 : kb;
            s.first = s.k0 == 0;
            for (s.i0 = 0; s.i0 < g->m; s.i0 += GEMM_SMALL_GROUP) {
                int rows = (int)(g->m - s.i0 < GEMM_SMALL_GROUP ? g->m - s.i0 : GEMM_SMALL_GROUP);
                if (g->b_stream)
                    gemm_panel_step_stream_avx512(&s, rows, n_panels);
                else
                    gemm_panel_step_avx512(&s, rows, n_panels);
            }
        }
    }
}

/* Y (+)= A @ B of each product from B's panels: units of panels go to the
 * threads, all products' in one job. */
static void gemm_small_panels(const gemm_f32_args *g, int count, threadpool *pool)
{
    gemm_panel_job job = {.g = g, .group = GEMM_PANEL_GROUP_ONE};
    int64_t bytes = 0, panels = 0;
    for (int i = 0; i < count; i++) {
        if (g[i].m > 1)
            job.group = GEMM_PANEL_GROUP;
        int64_t passes = (g[i].m + GEMM_SMALL_GROUP - 1) / GEMM_SMALL_GROUP;
        bytes += g[i].k * g[i].n * (int64_t)sizeof(float) * passes;
        panels += g[i].k > 0 && g[i].m > 0 ? (g[i].n + GEMM_PANEL - 1) / GEMM_PANEL : 0;
        for (int64_t r = 0; g[i].k == 0 && !g[i].accumulate && r < g[i].m; r++)
            memset(g[i].y + r * g[i].ldy, 0, (size_t)g[i].n * sizeof(float));
    }
    int threads = threadpool_size(pool);
    bool parallel = threads > 1 && bytes >= GEMM_SMALL_PARALLEL_BYTES;
    /* narrower units when there would be fewer than two per thread (a 128-
     * column K or V projection is four panels) */
    while (parallel && job.group > 1 && (panels + job.group - 1) / job.group < 2 * threads)
        job.group /= 2;
    for (int i = 0; i < count; i++) {
        int64_t n_panels = g[i].k > 0 && g[i].m > 0 ? (g[i].n + GEMM_PANEL - 1) / GEMM_PANEL : 0;
        job.first_unit[i + 1] = job.first_unit[i] + (n_panels + job.group - 1) / job.group;
    }
    int64_t units = job.first_unit[count];
    if (parallel)
        threadpool_parallel_for(pool, units, 1, gemm_panel_units, &job);
    else
        gemm_panel_units(&job, 0, units);
}

#endif /* GEMM_X86 */

void gemm_pack_panels(const float *b, int64_t k, int64_t n, int64_t ldb, int64_t p0, int64_t p1,
                      float *out)
{
    for (int64_t p = p0; p < p1; p++) {
        int64_t j0 = p * GEMM_PANEL;
        int64_t cols = n - j0 < GEMM_PANEL ? n - j0 : GEMM_PANEL;
        float *dst = out + (size_t)p * (size_t)k * GEMM_PANEL;
        if (cols == GEMM_PANEL) { /* a constant size: copied inline */
            for (int64_t r = 0; r < k; r++, dst += GEMM_PANEL)
                memcpy(dst, b + r * ldb + j0, GEMM_PANEL * sizeof(float));
            continue;
        }
        for (int64_t r = 0; r < k; r++, dst += GEMM_PANEL) {
            memcpy(dst, b + r * ldb + j0, (size_t)cols * sizeof(float));
            memset(dst + cols, 0, (size_t)(GEMM_PANEL - cols) * sizeof(float));
        }
    }
}

void gemm_pack_panels_trans(const float *w, int64_t k, int64_t n, int64_t ldw, int64_t p0,
                            int64_t p1, float *out)
{
    for (int64_t p = p0; p < p1; p++) {
        int64_t j0 = p * GEMM_PANEL;
        int64_t cols = n - j0 < GEMM_PANEL ? n - j0 : GEMM_PANEL;
        float *dst = out + (size_t)p * (size_t)k * GEMM_PANEL;
        const float *rows = w + j0 * ldw;
        /* the panel's rows of w, a cache line of each, stay in L1 while
         * their columns are copied out as the panel's rows */
        for (int64_t r = 0; r < k; r++, dst += GEMM_PANEL) {
            for (int64_t c = 0; c < cols; c++)
                dst[c] = rows[c * ldw + r];
            for (int64_t c = cols; c < GEMM_PANEL; c++)
                dst[c] = 0;
        }
    }
}

/* ---- strips and threads --------------------------------------------------- */

typedef struct gemm_small_job {
    const gemm_f32_args *g;
    gemm_isa isa;
    int64_t strip; /* columns per strip, a multiple of 16 */
} gemm_small_job;

static int gemm_small_group(gemm_isa isa)
{
    return isa == GEMM_ISA_AVX2 ? GEMM_SMALL_GROUP_AVX2 : GEMM_SMALL_GROUP;
}

static void gemm_small_run_step(const gemm_small_step *s, gemm_isa isa)
{
#ifdef GEMM_X86
    if (isa == GEMM_ISA_AVX512) {
        gemm_small_step_avx512(s);
        return;
    }
    if (isa == GEMM_ISA_AVX2) {
        gemm_small_step_avx2(s);
        return;
    }
#endif
    (void)isa;
    gemm_small_step_scalar(s);
}

/* Columns [j0, j1) of every row of Y. */
static void gemm_small_strip(const gemm_small_job *job, int64_t j0, int64_t j1)
{
    const gemm_f32_args *g = job->g;
    if (!g->accumulate)
        for (int64_t i = 0; i < g->m; i++)
            memset(g->y + i * g->ldy + j0, 0, (size_t)(j1 - j0) * sizeof(float));
    int group = gemm_small_group(job->isa);
    int step = job->isa == GEMM_ISA_AVX512 && g->m <= 2 ? GEMM_SMALL_KU_WIDE : GEMM_SMALL_KU;
    gemm_small_step s = {.g = g, .j0 = j0, .j1 = j1};
    for (s.k0 = 0; s.k0 < g->k; s.k0 += step) {
        s.ku = g->k - s.k0 < step ? (int)(g->k - s.k0) : step;
        for (s.i0 = 0; s.i0 < g->m; s.i0 += group) {
            s.rows = g->m - s.i0 < group ? (int)(g->m - s.i0) : group;
            s.prefetch = s.i0 == 0;
            gemm_small_run_step(&s, job->isa);
        }
    }
}

static void gemm_small_strips(void *arg, int64_t begin, int64_t end)
{
    const gemm_small_job *job = arg;
    for (int64_t t = begin; t < end; t++) {
        int64_t j0 = t * job->strip;
        int64_t j1 = j0 + job->strip < job->g->n ? j0 + job->strip : job->g->n;
        if (j0 < j1)
            gemm_small_strip(job, j0, j1);
    }
}

void gemm_small_f32(const gemm_f32_args *g, gemm_isa isa, threadpool *pool)
{
    if (g->m <= 0 || g->n <= 0)
        return;
#ifdef GEMM_X86
    if (g->b_panels != NULL && isa == GEMM_ISA_AVX512) {
        gemm_small_panels(g, 1, pool);
        return;
    }
#endif
    int64_t threads = threadpool_size(pool);
    /* each group of four rows of Y costs about one more pass over B */
    int64_t passes = (g->m + GEMM_SMALL_GROUP - 1) / GEMM_SMALL_GROUP;
    bool parallel =
        threads > 1 && g->k * g->n * (int64_t)sizeof(float) * passes >= GEMM_SMALL_PARALLEL_BYTES;
    /* as many strips as needed to keep each under the width, rounded up to
     * a multiple of the thread count so that they balance */
    int64_t widest = g->m == 1 ? GEMM_SMALL_STRIP_ONE : GEMM_SMALL_STRIP_ROWS / g->m;
    widest = widest > GEMM_SMALL_STRIP_MIN ? widest : GEMM_SMALL_STRIP_MIN;
    int64_t strips = (g->n + widest - 1) / widest;
    if (parallel)
        strips = (strips + threads - 1) / threads * threads;
    int64_t width = (g->n + strips - 1) / strips;
    gemm_small_job job = {.g = g, .isa = isa, .strip = (width + 15) / 16 * 16};
    strips = (g->n + job.strip - 1) / job.strip;
    if (parallel)
        threadpool_parallel_for(pool, strips, 1, gemm_small_strips, &job);
    else
        gemm_small_strips(&job, 0, strips);
}

void gemm_small_f32_group(const gemm_f32_args *g, int count, threadpool *pool)
{
#ifdef GEMM_X86
    if (count >= 1 && count <= GEMM_GROUP_MAX && gemm_isa_best() == GEMM_ISA_AVX512) {
        bool panels = true;
        for (int i = 0; i < count; i++)
            panels = panels && g[i].b_panels != NULL && g[i].m > 0 && g[i].n > 0;
        if (panels) {
            gemm_small_panels(g, count, pool);
            return;
        }
    }
#endif
    for (int i = 0; i < count; i++)
        gemm_small_f32(&g[i], gemm_isa_best(), pool);
}
