/* Kernels for nodes the load-time fusion pass creates (engine/fuse.c), in
 * the ai.ogi domain.
 *
 * MatMulTransposeB: Y[..., M, N] = A[..., M, K] x W[N, K]^T for a constant
 * W. Exporters of models with tied embeddings write the LM head as
 * MatMul(x, Transpose(embedding)): fused, the 2-D weight is read in place
 * (no transposed copy per run), and in decode every output is the dot
 * product of a contiguous weight row with x — the layout that streams a
 * weight at full memory bandwidth.
 *
 * SiLUMul: Y = G * sigmoid(G) * U (broadcast as Mul broadcasts), the SwiGLU
 * gate of Llama-style MLPs that exporters write as Sigmoid and two Muls. */
#include <cblas.h>
#include <string.h>

#include "ops/families.h"
#include "ops/gemm.h"
#include "ops/vecmath.h"

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

typedef float (*fused_dot_fn)(const float *, const float *, int64_t);

static fused_dot_fn fused_dot(void)
{
    if (__builtin_cpu_supports("avx512f"))
        return vecmath_dot_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return vecmath_dot_avx2;
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
    /* W^T packed at load (engine/pack.c): the panel kernels, which read
     * each weight element once for up to four rows of A */
    gemm_f32_args gargs = {.m = m,
                           .n = n,
                           .k = k,
                           .a = t.a,
                           .lda = k,
                           .b = t.w,
                           .ldb = k,
                           .y = y,
                           .ldy = n,
                           .b_trans = true,
                           .b_panels = op_input_panels(c, 1),
                           .b_stream = op_panels_streamed(c)};
    if (gargs.b_panels != NULL && m <= GEMM_SMALL_MAX_M) {
        gemm_small_f32(&gargs, GEMM_ISA_AVX512, c->pool);
        return OGI_OK;
    }
    if (gargs.b_panels == NULL && m <= FUSED_GEMV_MAX_ROWS) {
        threadpool_parallel_for(c->pool, n, 64, fused_mtb_cols, &t);
        return OGI_OK;
    }
    /* prefill: the packed AVX-512 GEMM reads W's panels, or W as stored
     * ([n, k]); OpenBLAS where the CPU lacks AVX-512 */
    if (!gemm_packed_f32(&gargs, c->pool))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, t.a,
                    (int)k, t.w, (int)k, 0.0f, y, (int)n);
    return OGI_OK;
}

/* ---- SiLUMul ----------------------------------------------------------------- */

typedef struct fused_silu_job {
    const float *g, *u;
    float *y;
    const op_bcast *b; /* NULL: g and u have y's shape */
} fused_silu_job;

static void fused_silu_mul_generic(const float *g, int64_t sg, const float *u, int64_t su, float *y,
                                   int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i * sg] * vecmath_sigmoidf(g[i * sg]) * u[i * su];
}

VECMATH_TARGET_AVX2 static void fused_silu_mul_avx2(const float *g, const float *u, float *y,
                                                    int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i] * vecmath_sigmoidf(g[i]) * u[i];
}

VECMATH_TARGET_AVX512 static void fused_silu_mul_avx512(const float *g, const float *u, float *y,
                                                        int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i] * vecmath_sigmoidf(g[i]) * u[i];
}

static void fused_silu_range(void *arg, int64_t begin, int64_t end)
{
    const fused_silu_job *j = arg;
    if (j->b != NULL) { /* rows of the broadcast output */
        int last = j->b->rank - 1;
        int64_t sg = last >= 0 ? j->b->strides[0][last] : 0;
        int64_t su = last >= 0 ? j->b->strides[1][last] : 0;
        for (int64_t row = begin; row < end; row++) {
            int64_t offs[2];
            op_bcast_row(j->b, row, offs);
            fused_silu_mul_generic(j->g + offs[0], sg, j->u + offs[1], su, j->y + row * j->b->inner,
                                   j->b->inner);
        }
        return;
    }
    switch (vecmath_best_isa()) {
    case VECMATH_AVX512:
        fused_silu_mul_avx512(j->g + begin, j->u + begin, j->y + begin, end - begin);
        break;
    case VECMATH_AVX2:
        fused_silu_mul_avx2(j->g + begin, j->u + begin, j->y + begin, end - begin);
        break;
    default:
        fused_silu_mul_generic(j->g + begin, 1, j->u + begin, 1, j->y + begin, end - begin);
    }
}

static ogi_status fused_silu_mul(op_ctx *c)
{
    ogi_status st = op_require_dtype(c, 0, OGI_FLOAT32);
    if (st == OGI_OK)
        st = op_require_dtype(c, 1, OGI_FLOAT32);
    if (st != OGI_OK)
        return st;
    op_bcast b;
    if ((st = op_bcast_init(c, &b, 2, c->in)) != OGI_OK)
        return st;
    if ((st = op_alloc(c, 0, OGI_FLOAT32, b.rank, b.dims)) != OGI_OK)
        return st;
    int64_t numel = tensor_numel(c->out[0]);
    fused_silu_job j = {c->in[0]->data, c->in[1]->data, c->out[0]->data, NULL};
    if (tensor_numel(c->in[0]) == numel && tensor_numel(c->in[1]) == numel) {
        threadpool_parallel_for(c->pool, numel, 16384, fused_silu_range, &j);
        return OGI_OK;
    }
    j.b = &b;
    if (numel > 0)
        threadpool_parallel_for(c->pool, b.rows, 1 + 16384 / b.inner, fused_silu_range, &j);
    return OGI_OK;
}

const op_kernel op_kernels_fused[] = {
    {"ai.ogi", "MatMulTransposeB", 1, fused_matmul_transpose_b},
    {"ai.ogi", "SiLUMul", 1, fused_silu_mul},
    {NULL, NULL, 0, NULL},
};
