/* float32 matrix-product kernels behind MatMul and Gemm:
 *
 *   Y[m, n] (+)= A[m, k] @ B[k, n]      all row-major, leading dims lda/ldb/ldy
 *
 * gemm_small_f32 is for a few rows of A (a decode step multiplies one token
 * per sequence by a weight): it streams B once, row by row, and is bound by
 * memory bandwidth. gemm_packed_f32 is a cache-blocked AVX-512 GEMM for
 * many rows (prefill): it packs A and B into panels for a 14x32 register
 * tile, and also takes B stored transposed ([n, k], as Gemm's transB and a
 * tied LM head have it). Both split Y over the pool's threads; pool may be
 * NULL. Products with k == 0 set Y to 0 (or leave it when accumulating).
 *
 * A constant B (a weight) may also come pre-packed, once at load, as
 * panels of GEMM_PANEL columns: panel p holds B[0..k)[32p .. 32p + 32) as k
 * contiguous rows of 32 floats, zero past column n. Both kernels then read
 * it instead of B: the small-m kernel streams each panel front to back
 * (one sequential run per panel rather than k short rows), and the packed
 * GEMM uses the panel's k blocks as they are, with no packing per call. */
#ifndef OGI_OPS_GEMM_H
#define OGI_OPS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "ogi.h"

typedef struct gemm_f32_args {
    int64_t m, n, k;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float *y;
    int64_t ldy;
    bool accumulate; /* Y += A @ B instead of Y = A @ B */
    bool b_trans;    /* B stored [n, k]: element (p, j) at b[j * ldb + p] */
    /* B pre-packed as panels (see above; 64-byte aligned), or NULL: the
     * panels of B as the product reads it, whichever way b is stored. Only
     * read by the AVX-512 kernels; b stays valid too. */
    const float *b_panels;
    /* the panels are one of a set of weights larger than the caches, each
     * read once per pass: the small-m kernel prefetches them non-temporally
     * so that they do not evict what the rest of the step keeps in cache */
    bool b_stream;
} gemm_f32_args;

/* Columns per panel of a pre-packed B (the packed GEMM's tile width). */
#define GEMM_PANEL 32

/* Floats of the panels of a [k, n] matrix. */
static inline size_t gemm_panels_floats(int64_t k, int64_t n)
{
    return (size_t)((n + GEMM_PANEL - 1) / GEMM_PANEL) * (size_t)k * GEMM_PANEL;
}

/* Writes panels [p0, p1) of B ([k, n], row-major, leading dim ldb) into
 * out, which holds all of B's panels. */
void gemm_pack_panels(const float *b, int64_t k, int64_t n, int64_t ldb, int64_t p0, int64_t p1,
                      float *out);

/* The same for B stored transposed: w is [n, k] (leading dim ldw) and B is
 * its transpose, as MatMulTransposeB reads a tied embedding. */
void gemm_pack_panels_trans(const float *w, int64_t k, int64_t n, int64_t ldw, int64_t p0,
                            int64_t p1, float *out);

/* Instruction sets the kernels come in; gemm_isa_best() is the widest this
 * CPU runs (AVX2 also needs FMA). */
typedef enum gemm_isa { GEMM_ISA_SCALAR = 0, GEMM_ISA_AVX2 = 1, GEMM_ISA_AVX512 = 2 } gemm_isa;

gemm_isa gemm_isa_best(void);

/* Rows of A up to which gemm_small_f32 beats the packed GEMM (measured on
 * one core: at 16 rows by 5 to 20 %, at 24 it loses). */
#define GEMM_SMALL_MAX_M 16

/* Any m works (each group of four rows streams B once more); isa must not
 * be wider than gemm_isa_best(); B may be stored transposed only when it
 * comes in panels. */
void gemm_small_f32(const gemm_f32_args *g, gemm_isa isa, threadpool *pool);

/* Up to GEMM_GROUP_MAX small-m products run as one job on the pool: the
 * projections of one activation by several weights (a layer's Q, K and V),
 * whose panels the threads share out together rather than product by
 * product. Products without panels run one by one on gemm_small_f32. */
#define GEMM_GROUP_MAX 8
void gemm_small_f32_group(const gemm_f32_args *g, int count, threadpool *pool);

/* False (and Y untouched) when the CPU lacks AVX-512 or a buffer cannot be
 * allocated: the caller then uses another path. Buffers per call: a 24 KiB
 * B panel and up to 512 KiB of A's rows per thread. */
bool gemm_packed_f32(const gemm_f32_args *g, threadpool *pool);

/* ---- MatMul's entry points (src/ops/matmul.c), for tests and benchmarks -- */

/* Which implementation runs a float product. MATMUL_AUTO picks by shape
 * and CPU; the others force one (float32 only for the MATMUL_SMALL_* and
 * MATMUL_PACKED kernels, whose instruction set the CPU must have). */
typedef enum matmul_path {
    MATMUL_AUTO = 0,
    MATMUL_REFERENCE = 1,
    MATMUL_BLAS = 2,
    MATMUL_SMALL_SCALAR = 3,
    MATMUL_SMALL_AVX2 = 4,
    MATMUL_SMALL_AVX512 = 5,
    MATMUL_PACKED = 6,
} matmul_path;

/* The shape of MatMul(A, B) under numpy rules; false if they do not fit. */
bool matmul_shape(int a_rank, const int64_t *a_dims, int b_rank, const int64_t *b_dims, int *y_rank,
                  int64_t *y_dims);

/* The path MATMUL_AUTO takes for a float32 product [m, k] x [k, n]. */
matmul_path matmul_auto_path(int64_t m, int64_t n, int64_t k);

/* Y = MatMul(A, B) for float32 or float64 operands of those shapes; false
 * for another dtype or shapes that do not fit. */
bool matmul_float(ogi_dtype dtype, const void *a, int a_rank, const int64_t *a_dims, const void *b,
                  int b_rank, const int64_t *b_dims, void *y, matmul_path path, threadpool *pool);

#endif
