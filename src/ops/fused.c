/* Kernels for nodes the load-time fusion pass creates (engine/fuse.c), in
 * the ai.ogi domain.
 *
 * MatMulTransposeB: Y[..., M, N] = A[..., M, K] x W[N, K]^T for a constant
 * W. Exporters of models with tied embeddings write the LM head as
 * MatMul(x, Transpose(embedding)): fused, the 2-D weight is read in place
 * (no transposed copy per run), and in decode every output is the dot
 * product of a contiguous weight row with x — the layout that streams a
 * weight at full memory bandwidth. */
#include <cblas.h>
#include <immintrin.h>
#include <string.h>

#include "ops/families.h"
#include "ops/gemm.h"

typedef struct fused_mtb {
    const float *a, *w;
    float *y;
    int64_t m, n, k;
} fused_mtb;

/* Plain reference: one dot product per output. */
static float fused_dot_ref(const float *x, const float *w, int64_t k)
{
    float s = 0;
    for (int64_t i = 0; i < k; i++)
        s += x[i] * w[i];
    return s;
}

__attribute__((target("avx2,fma"))) static float fused_dot_avx2(const float *x, const float *w,
                                                                 int64_t k)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(w + i + 8), s1);
    }
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < k; i++)
        s += x[i] * w[i];
    return s;
}

__attribute__((target("avx512f"))) static float fused_dot_avx512(const float *x, const float *w,
                                                                  int64_t k)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(w + i + 16), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < k; i++)
        s += x[i] * w[i];
    return s;
}

typedef float (*fused_dot_fn)(const float *, const float *, int64_t);

static fused_dot_fn fused_dot(void)
{
    if (__builtin_cpu_supports("avx512f"))
        return fused_dot_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return fused_dot_avx2;
    return fused_dot_ref;
}

/* Outputs [begin, end) of every row of A: each weight row is read once for
 * all (few) rows of A. */
static void fused_mtb_cols(void *arg, int64_t begin, int64_t end)
{
    const fused_mtb *t = arg;
    fused_dot_fn dot = fused_dot();
    for (int64_t j = begin; j < end; j++) {
        const float *wr = t->w + j * t->k;
        for (int64_t r = 0; r < t->m; r++)
            t->y[r * t->n + j] = dot(t->a + r * t->k, wr, t->k);
    }
}

enum { FUSED_GEMV_MAX_ROWS = 8 };

static ogi_status fused_matmul_transpose_b(op_ctx *c)
{
    ogi_status st = op_require_dtype(c, 0, OGI_FLOAT32);
    if (st == OGI_OK)
        st = op_require_dtype(c, 1, OGI_FLOAT32);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0], *w = c->in[1];
    if (a->rank < 1 || w->rank != 2 || a->dims[a->rank - 1] != w->dims[1])
        return op_error(c, OGI_ERR_RUNTIME, "A [..., K] and W [N, K] do not match");
    int64_t k = w->dims[1], n = w->dims[0];
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, a->dims, sizeof(int64_t) * (size_t)a->rank);
    dims[a->rank - 1] = n;
    if ((st = op_alloc(c, 0, OGI_FLOAT32, a->rank, dims)) != OGI_OK)
        return st;
    int64_t m = k > 0 ? tensor_numel(a) / k : 0;
    float *y = c->out[0]->data;
    if (m == 0 || n == 0)
        return OGI_OK;
    if (k == 0) {
        memset(y, 0, c->out[0]->nbytes);
        return OGI_OK;
    }
    fused_mtb t = {a->data, w->data, y, m, n, k};
    if (m <= FUSED_GEMV_MAX_ROWS) {
        threadpool_parallel_for(c->pool, n, 64, fused_mtb_cols, &t);
        return OGI_OK;
    }
    /* prefill: the packed AVX-512 GEMM reads W as stored ([n, k]); OpenBLAS
     * where the CPU lacks AVX-512 */
    gemm_f32_args gargs = {.m = m, .n = n, .k = k, .a = t.a, .lda = k, .b = t.w, .ldb = k,
                           .y = y, .ldy = n, .b_trans = true};
    if (!gemm_packed_f32(&gargs, c->pool))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, t.a,
                    (int)k, t.w, (int)k, 0.0f, y, (int)n);
    return OGI_OK;
}

const op_kernel op_kernels_fused[] = {
    {"ai.ogi", "MatMulTransposeB", 1, fused_matmul_transpose_b},
    {NULL, NULL, 0, NULL},
};
