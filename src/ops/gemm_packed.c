/* Cache-blocked AVX-512 GEMM, Y[m, n] (+)= A[m, k] @ B[k, n], for products
 * with many rows of A (prompt prefill).
 *
 * The register tile is 14 rows x 32 columns of Y: 28 accumulators, two
 * vectors of B and one broadcast of A out of 32 registers, 28 FMAs per 16
 * loads. k splits into blocks of at most GEMM_KC. For each block of rows
 * (as many as fit GEMM_A_BYTES):
 *   - the rows of A are copied, k block after k block, with a padded
 *     stride and zero rows filling the last tile (this stays in L2);
 *   - for each 32-column panel of B, k block after k block, the panel's
 *     rows are packed to [kc][32] (in L1) and every 14-row tile runs
 *     against them, its Y tile staying in cache across the k blocks. The
 *     first tile prefetches the B rows the next packing reads.
 * Threads take ranges of panels (and of rows when the panels are few); each
 * copies its rows of A and packs its panels of B itself, which costs about
 * 4 / (columns per range) + 2 / (rows per range) of the multiply work. A B
 * pre-packed at load (g->b_panels) is read where it lies: its panels' k
 * blocks are already [kc][32]. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "ops/vecmath.h"

#if defined(__x86_64__) || defined(__i386__)
#define GEMM_X86 1
#include <immintrin.h>
#endif

#define GEMM_MR 14
#define GEMM_NR GEMM_PANEL
/* A B panel of kc x 32 floats (24 KiB at 192) plus a 14-row strip of A fit
 * L1; the copied rows of A (all of k) take at most GEMM_A_BYTES of L2. */
#define GEMM_KC 192
#define GEMM_A_BYTES ((int64_t)512 << 10)
/* Row stride of the copied A block: GEMM_KC plus a cache line, so that the
 * 14 rows a tile reads do not share L1 sets; a constant, so that the tile
 * addresses them all from one register. */
#define GEMM_A_STRIDE (GEMM_KC + 16)
/* Smallest column range (in panels) a thread takes, so that copying A stays
 * cheap next to the products, and smallest row range, so that packing B
 * does. */
#define GEMM_MIN_PANELS 4
#define GEMM_MIN_ROWS (4 * GEMM_MR)

#ifdef GEMM_X86

typedef struct gemm_packed_job {
    const gemm_f32_args *g;
    /* units of work: col_units ranges of the panels of 32 columns, times
     * row_units ranges of the 14-row tiles */
    int64_t panels, col_units, row_units;
    int64_t kc, mc; /* block sizes, balanced over k and m */
    int64_t k_blocks;
    /* one slot per thread: a packed B panel, then the copied A block */
    float *buffers;
    size_t slot_floats;
    atomic_int *busy;
    int slots;
} gemm_packed_job;

/* The memory the next packing reads, `rows` runs of `bytes` bytes from
 * base, `stride` bytes apart: a tile's k step p prefetches two cache lines
 * of it, row after row, then the next 128 bytes of every row, and so on. */
typedef struct gemm_prefetch {
    const char *base;
    int64_t stride, rows, bytes;
} gemm_prefetch;

/* The B block packed after columns [j, j + 32) and rows [k0, k0 + kc) of
 * the column range [j, j1): the next k block, else the next panel's first.
 * Stored [k, n], that is kc runs of up to 32 floats; stored [n, k] (b_trans),
 * up to 32 runs of kc floats. */
static gemm_prefetch gemm_next_block(const gemm_packed_job *job, int64_t j, int64_t j1, int64_t k0)
{
    const gemm_f32_args *g = job->g;
    gemm_prefetch pf = {.base = (const char *)g->b};
    if (k0 + job->kc < g->k) {
        k0 += job->kc;
    } else if (j + GEMM_NR < j1) {
        j += GEMM_NR;
        k0 = 0;
    } else {
        return pf; /* nothing: rows = 0 */
    }
    int64_t cols = j1 - j < GEMM_NR ? j1 - j : GEMM_NR;
    int64_t kc = g->k - k0 < job->kc ? g->k - k0 : job->kc;
    pf.stride = g->ldb * (int64_t)sizeof(float);
    if (g->b_panels != NULL) { /* the next block is one run */
        pf.base = (const char *)(g->b_panels + ((j / GEMM_NR) * g->k + k0) * GEMM_NR);
        pf.stride = 0;
        pf.rows = 1;
        pf.bytes = kc * GEMM_NR * (int64_t)sizeof(float);
    } else if (g->b_trans) {
        pf.base = (const char *)(g->b + j * g->ldb + k0);
        pf.rows = cols;
        pf.bytes = kc * (int64_t)sizeof(float);
    } else {
        pf.base = (const char *)(g->b + k0 * g->ldb + j);
        pf.rows = kc;
        pf.bytes = cols * (int64_t)sizeof(float);
    }
    return pf;
}

/* One register tile: Y[0..rows)[0..cols) (+)= A strip @ B panel over kc. */
typedef struct gemm_tile {
    int64_t kc;
    const float *a; /* 14 rows, GEMM_A_STRIDE apart (zero past rows) */
    const float *b; /* packed panel, [kc][32] */
    float *y;
    int64_t ldy;
    int rows;
    int64_t cols;
    bool add; /* Y += instead of Y = */
    gemm_prefetch pf;
} gemm_tile;

#define GEMM_AVX512 __attribute__((target("avx512f")))
#define GEMM_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* One k step of a tile: c[i][..] += A[i][p] * B[p][0..32) for i < ROWS. */
GEMM_AVX512_INLINE void gemm_tile_step(const float *a, const float *b, int64_t p,
                                       __m512 c[GEMM_MR][2], int ROWS)
{
    __m512 b0 = _mm512_load_ps(b + p * GEMM_NR);
    __m512 b1 = _mm512_load_ps(b + p * GEMM_NR + 16);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
        __m512 ai = _mm512_set1_ps(a[i * GEMM_A_STRIDE + p]);
        c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
        c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
    }
}

/* The tile for a constant ROWS >= t->rows (rows past t->rows are computed
 * from A's zero padding, not stored). While it runs, it prefetches the rows
 * of B the next packing reads, so that their memory latency hides behind
 * the arithmetic. */
GEMM_AVX512_INLINE void gemm_tile_rows(const gemm_tile *t, int ROWS)
{
    __m512 c[GEMM_MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
        c[i][0] = _mm512_setzero_ps();
        c[i][1] = _mm512_setzero_ps();
    }
    int64_t p = 0, row = 0, offset = 0;
    for (; p < t->kc && row < t->pf.rows && offset < t->pf.bytes; p++) {
        const char *line = t->pf.base + row * t->pf.stride + offset;
        _mm_prefetch(line, _MM_HINT_T0);
        if (offset + 64 < t->pf.bytes)
            _mm_prefetch(line + 64, _MM_HINT_T0);
        if (++row == t->pf.rows) {
            row = 0;
            offset += 128;
        }
        gemm_tile_step(t->a, t->b, p, c, ROWS);
    }
    for (; p < t->kc; p++)
        gemm_tile_step(t->a, t->b, p, c, ROWS);
    __mmask16 m0 = vecmath_mask16(t->cols), m1 = vecmath_mask16(t->cols - 16);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
        if (i >= t->rows)
            break;
        float *yr = t->y + i * t->ldy;
        __m512 v0 = c[i][0], v1 = c[i][1];
        if (t->add) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, yr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, yr + 16));
        }
        _mm512_mask_storeu_ps(yr, m0, v0);
        _mm512_mask_storeu_ps(yr + 16, m1, v1);
    }
}

/* A short last tile costs about its share of rows: rounded up to even. */
GEMM_AVX512 static void gemm_tile_avx512(const gemm_tile *t)
{
    switch ((t->rows + 1) / 2) {
    case 1:
        gemm_tile_rows(t, 2);
        return;
    case 2:
        gemm_tile_rows(t, 4);
        return;
    case 3:
        gemm_tile_rows(t, 6);
        return;
    case 4:
        gemm_tile_rows(t, 8);
        return;
    case 5:
        gemm_tile_rows(t, 10);
        return;
    case 6:
        gemm_tile_rows(t, 12);
        return;
    default:
        gemm_tile_rows(t, GEMM_MR);
        return;
    }
}

/* bp[p][0..32) = B[k0 + p][j0 .. j0 + cols), zero past cols. */
GEMM_AVX512 static void gemm_pack_b_avx512(const gemm_f32_args *g, int64_t k0, int64_t kc,
                                           int64_t j0, int64_t cols, float *bp)
{
    __mmask16 m0 = vecmath_mask16(cols), m1 = vecmath_mask16(cols - 16);
    for (int64_t p = 0; p < kc; p++) {
        const float *row = g->b + (k0 + p) * g->ldb + j0;
        _mm512_store_ps(bp + p * GEMM_NR, _mm512_maskz_loadu_ps(m0, row));
        _mm512_store_ps(bp + p * GEMM_NR + 16, _mm512_maskz_loadu_ps(m1, row + 16));
    }
}

/* Transposes the 16 x 16 floats of r[] in place: r[i][j] becomes r[j][i].
 * Unpacks pair rows, 64-bit shuffles make columns of 4 rows within each
 * 128-bit lane, and two lane shuffles gather the four lanes. */
GEMM_AVX512_INLINE void gemm_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[4i + c], lane l: rows 4i .. 4i + 3 of column 4l + c */
    __m512 u[16];
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

/* As gemm_pack_b_avx512 for B stored [n, k]: the panel's up to 32 rows of
 * B^T, 16 x 16 blocks at a time, transposed. */
GEMM_AVX512 static void gemm_pack_bt_avx512(const gemm_f32_args *g, int64_t k0, int64_t kc,
                                            int64_t j0, int64_t cols, float *bp)
{
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
        int64_t depth = kc - p0 < 16 ? kc - p0 : 16;
        __mmask16 m = vecmath_mask16(depth);
        for (int half = 0; half < 2; half++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                int64_t c = half * 16 + i;
                r[i] = c < cols ? _mm512_maskz_loadu_ps(m, g->b + (j0 + c) * g->ldb + k0 + p0)
                                : _mm512_setzero_ps();
            }
            gemm_transpose16(r);
            for (int64_t q = 0; q < depth; q++)
                _mm512_store_ps(bp + (p0 + q) * GEMM_NR + half * 16, r[q]);
        }
    }
}

/* Rows [i0, i0 + rows) of A, every k, as k blocks one after the other:
 * block b holds ap[i][0..kc) = A[i0 + i][b * kc ...] with stride
 * GEMM_A_STRIDE; rows past m are zero up to a multiple of 14. */
static void gemm_copy_a(const gemm_packed_job *job, int64_t i0, int64_t rows, float *ap)
{
    const gemm_f32_args *g = job->g;
    int64_t padded = (rows + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    for (int64_t k0 = 0; k0 < g->k; k0 += job->kc, ap += padded * GEMM_A_STRIDE) {
        int64_t kc = g->k - k0 < job->kc ? g->k - k0 : job->kc;
        for (int64_t i = 0; i < padded; i++) {
            if (i < rows)
                memcpy(ap + i * GEMM_A_STRIDE, g->a + (i0 + i) * g->lda + k0,
                       (size_t)kc * sizeof(float));
            else
                memset(ap + i * GEMM_A_STRIDE, 0, (size_t)kc * sizeof(float));
        }
    }
}

/* Rows [m0, m1) and columns [j0, j1) of Y: per block of rows of A, every
 * panel of B over all of k, so that the panel's Y tiles stay in cache
 * across the k blocks. */
static void gemm_packed_block(const gemm_packed_job *job, int64_t m0, int64_t m1, int64_t j0,
                              int64_t j1, float *ap, float *bp)
{
    const gemm_f32_args *g = job->g;
    for (int64_t i0 = m0; i0 < m1; i0 += job->mc) {
        int64_t rows = m1 - i0 < job->mc ? m1 - i0 : job->mc;
        int64_t padded = (rows + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
        gemm_copy_a(job, i0, rows, ap);
        for (int64_t j = j0; j < j1; j += GEMM_NR) {
            int64_t cols = j1 - j < GEMM_NR ? j1 - j : GEMM_NR;
            const float *a_block = ap;
            for (int64_t k0 = 0; k0 < g->k; k0 += job->kc, a_block += padded * GEMM_A_STRIDE) {
                int64_t kc = g->k - k0 < job->kc ? g->k - k0 : job->kc;
                const float *panel = bp;
                if (g->b_panels != NULL)
                    panel = g->b_panels + ((j / GEMM_NR) * g->k + k0) * GEMM_NR;
                else if (g->b_trans)
                    gemm_pack_bt_avx512(g, k0, kc, j, cols, bp);
                else
                    gemm_pack_b_avx512(g, k0, kc, j, cols, bp);
                gemm_tile t = {.kc = kc,
                               .b = panel,
                               .ldy = g->ldy,
                               .cols = cols,
                               .add = g->accumulate || k0 > 0,
                               .pf = gemm_next_block(job, j, j1, k0)};
                for (int64_t i = 0; i < rows; i += GEMM_MR) {
                    t.a = a_block + i * GEMM_A_STRIDE;
                    t.y = g->y + (i0 + i) * g->ldy + j;
                    t.rows = rows - i < GEMM_MR ? (int)(rows - i) : GEMM_MR;
                    gemm_tile_avx512(&t);
                    t.pf.rows = 0; /* the first tile prefetched it all */
                }
            }
        }
    }
}

/* Units [begin, end) of panels. At most one call per pool thread runs at a
 * time, so a free buffer slot is always there to claim. */
static void gemm_packed_units(void *arg, int64_t begin, int64_t end)
{
    const gemm_packed_job *job = arg;
    const gemm_f32_args *g = job->g;
    int s = 0;
    while (atomic_exchange(&job->busy[s], 1) != 0)
        s = (s + 1) % job->slots;
    float *bp = job->buffers + (size_t)s * job->slot_floats;
    float *ap = bp + (size_t)job->kc * GEMM_NR;
    int64_t tiles = (g->m + GEMM_MR - 1) / GEMM_MR;
    for (int64_t u = begin; u < end; u++) {
        int64_t ru = u / job->col_units, cu = u % job->col_units;
        int64_t p0 = cu * job->panels / job->col_units;
        int64_t p1 = (cu + 1) * job->panels / job->col_units;
        int64_t m0 = ru * tiles / job->row_units * GEMM_MR;
        int64_t m1 = (ru + 1) * tiles / job->row_units * GEMM_MR;
        gemm_packed_block(job, m0, m1 < g->m ? m1 : g->m, p0 * GEMM_NR,
                          p1 * GEMM_NR < g->n ? p1 * GEMM_NR : g->n, ap, bp);
    }
    atomic_store(&job->busy[s], 0);
}

/* Splits n into blocks of at most max, all about the same size (a multiple
 * of `align`). */
static int64_t gemm_balanced_block(int64_t n, int64_t max, int64_t align)
{
    int64_t blocks = (n + max - 1) / max;
    int64_t size = (n + blocks - 1) / blocks;
    return (size + align - 1) / align * align;
}

#endif /* GEMM_X86 */

bool gemm_packed_f32(const gemm_f32_args *g, threadpool *pool)
{
#ifdef GEMM_X86
    if (gemm_isa_best() != GEMM_ISA_AVX512)
        return false;
    if (g->m <= 0 || g->n <= 0)
        return true;
    if (g->k == 0) {
        for (int64_t i = 0; !g->accumulate && i < g->m; i++)
            memset(g->y + i * g->ldy, 0, (size_t)g->n * sizeof(float));
        return true;
    }
    gemm_packed_job job = {.g = g,
                           .panels = (g->n + GEMM_NR - 1) / GEMM_NR,
                           .kc = gemm_balanced_block(g->k, GEMM_KC, 1)};
    job.k_blocks = (g->k + job.kc - 1) / job.kc;
    int64_t mc = GEMM_A_BYTES / (job.k_blocks * GEMM_A_STRIDE * (int64_t)sizeof(float));
    job.mc = gemm_balanced_block(g->m, mc > GEMM_MR ? mc / GEMM_MR * GEMM_MR : GEMM_MR, GEMM_MR);
    /* a few units per thread balance a machine shared with other work;
     * split the columns, and the rows too when there are few columns */
    int threads = threadpool_size(pool);
    int64_t want = threads > 1 ? threads * 3 : 1;
    int64_t most = (job.panels + GEMM_MIN_PANELS - 1) / GEMM_MIN_PANELS;
    job.col_units = want < most ? want : most;
    most = (g->m + GEMM_MIN_ROWS - 1) / GEMM_MIN_ROWS;
    job.row_units = (want + job.col_units - 1) / job.col_units;
    job.row_units = job.row_units < most ? job.row_units : most;
    int64_t units = job.col_units * job.row_units;
    job.slots = threads < units ? threads : (int)units;
    size_t a_rows = (size_t)((job.mc + GEMM_MR - 1) / GEMM_MR * GEMM_MR);
    job.slot_floats = (size_t)job.kc * GEMM_NR + a_rows * GEMM_A_STRIDE * (size_t)job.k_blocks;
    job.slot_floats = (job.slot_floats + 15) / 16 * 16; /* B panels stay 64-byte aligned */
    job.buffers = aligned_alloc(64, (size_t)job.slots * job.slot_floats * sizeof(float));
    job.busy = calloc((size_t)job.slots, sizeof(atomic_int));
    bool ok = job.buffers != NULL && job.busy != NULL;
    if (ok)
        threadpool_parallel_for(pool, units, 1, gemm_packed_units, &job);
    free(job.buffers);
    free(job.busy);
    return ok;
#else
    (void)g;
    (void)pool;
    return false;
#endif
}
