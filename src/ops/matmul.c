/* Matrix products: MatMul, Gemm, MatMulInteger, QLinearMatMul and Einsum.
 *
 * MatMul follows numpy: a 1-D A is a row [1, K], a 1-D B a column [K, 1]
 * (the added dim is dropped from the result), and the leading batch dims
 * broadcast. float32 products with a few rows of A (decode) use the
 * streaming kernel of gemm_small.c, larger ones the AVX-512 GEMM of
 * gemm_packed.c where it beats OpenBLAS, and OpenBLAS otherwise; float64
 * goes to OpenBLAS; products too small for either run a plain loop.
 * float16/bfloat16 are widened to float32; integer types use the plain loop
 * with wrapping 64-bit accumulation. Every fast path has the plain-loop
 * reference beside it (tests/ops/test_matmul.c compares them). */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"
#include "ops/gemm.h"

/* Below this many multiply-adds the plain loop beats BLAS's call overhead. */
#define MATMUL_BLAS_MIN_WORK 32768

/* ---- shapes --------------------------------------------------------------- */

/* A @ B as `batch` products of [m, k] x [k, n]; the strides (in matrices)
 * say which A and B matrix each batch coordinate uses (0: broadcast). */
typedef struct matmul_plan {
    int64_t m, n, k;
    int batch_rank;
    int64_t batch_dims[OGI_MAX_RANK];
    int64_t a_strides[OGI_MAX_RANK], b_strides[OGI_MAX_RANK];
    int64_t batch, a_batch, b_batch; /* matrix counts of Y, A, B */
    int y_rank;
    int64_t y_dims[OGI_MAX_RANK];
} matmul_plan;

/* Strides in matrices of one operand's batch dims, right-aligned against
 * the output's batch dims. False when a dim neither matches nor is 1. */
static bool matmul_batch_strides(int rank, const int64_t *dims, const matmul_plan *p,
                                 int64_t *strides, int64_t *count)
{
    int64_t s = 1;
    for (int d = p->batch_rank - 1; d >= 0; d--) {
        int od = d - (p->batch_rank - rank);
        int64_t dim = od >= 0 ? dims[od] : 1;
        if (dim != 1 && dim != p->batch_dims[d])
            return false;
        strides[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
    *count = s;
    return true;
}

static bool matmul_plan_init(int a_rank, const int64_t *a_dims, int b_rank, const int64_t *b_dims,
                             matmul_plan *p)
{
    if (a_rank < 1 || b_rank < 1)
        return false;
    memset(p, 0, sizeof(*p));
    p->m = a_rank >= 2 ? a_dims[a_rank - 2] : 1;
    p->k = a_dims[a_rank - 1];
    p->n = b_rank >= 2 ? b_dims[b_rank - 1] : 1;
    if ((b_rank >= 2 ? b_dims[b_rank - 2] : b_dims[0]) != p->k)
        return false;
    int ab = a_rank > 2 ? a_rank - 2 : 0, bb = b_rank > 2 ? b_rank - 2 : 0;
    p->batch_rank = ab > bb ? ab : bb;
    p->batch = 1;
    for (int d = 0; d < p->batch_rank; d++) {
        int da = d - (p->batch_rank - ab), db = d - (p->batch_rank - bb);
        int64_t x = da >= 0 ? a_dims[da] : 1, y = db >= 0 ? b_dims[db] : 1;
        if (x != y && x != 1 && y != 1)
            return false;
        p->batch_dims[d] = x == 1 ? y : x;
        p->batch *= p->batch_dims[d];
    }
    if (!matmul_batch_strides(ab, a_dims, p, p->a_strides, &p->a_batch) ||
        !matmul_batch_strides(bb, b_dims, p, p->b_strides, &p->b_batch))
        return false;
    p->y_rank = 0;
    for (int d = 0; d < p->batch_rank; d++)
        p->y_dims[p->y_rank++] = p->batch_dims[d];
    if (a_rank >= 2)
        p->y_dims[p->y_rank++] = p->m;
    if (b_rank >= 2)
        p->y_dims[p->y_rank++] = p->n;
    return true;
}

bool matmul_shape(int a_rank, const int64_t *a_dims, int b_rank, const int64_t *b_dims, int *y_rank,
                  int64_t *y_dims)
{
    matmul_plan p;
    if (!matmul_plan_init(a_rank, a_dims, b_rank, b_dims, &p))
        return false;
    *y_rank = p.y_rank;
    memcpy(y_dims, p.y_dims, sizeof(int64_t) * (size_t)p.y_rank);
    return true;
}

/* Which A and B matrices output matrix `i` multiplies. */
static void matmul_batch_operands(const matmul_plan *p, int64_t i, int64_t *ai, int64_t *bi)
{
    *ai = 0;
    *bi = 0;
    for (int d = p->batch_rank - 1; d >= 0; d--) {
        int64_t c = i % p->batch_dims[d];
        i /= p->batch_dims[d];
        *ai += c * p->a_strides[d];
        *bi += c * p->b_strides[d];
    }
}

/* Inputs ia and ib must both be present. */
static ogi_status matmul_require_pair(op_ctx *c, int ia, int ib)
{
    ogi_status st = op_require_input(c, ia);
    return st != OGI_OK ? st : op_require_input(c, ib);
}

static ogi_status matmul_plan_for(op_ctx *c, const ogi_tensor *a, const ogi_tensor *b,
                                  matmul_plan *p)
{
    if (matmul_plan_init(a->rank, a->dims, b->rank, b->dims, p))
        return OGI_OK;
    char sa[128], sb[128];
    return op_error(c, OGI_ERR_RUNTIME, "inputs: shapes %s and %s do not fit a matrix product",
                    tensor_shape_str(a->rank, a->dims, sa, sizeof(sa)),
                    tensor_shape_str(b->rank, b->dims, sb, sizeof(sb)));
}

/* ---- one product: Y (+)= alpha * op(A) @ op(B) ---------------------------- */

typedef struct gemm_args {
    int64_t m, n, k;
    bool trans_a, trans_b; /* A stored [k, m], B stored [n, k] */
    double alpha;
    bool accumulate; /* add to Y instead of overwriting it */
} gemm_args;

static bool gemm_fits_blas(const gemm_args *g)
{
    return g->m <= INT_MAX && g->n <= INT_MAX && g->k <= INT_MAX && g->m > 0 && g->n > 0 &&
           g->k > 0;
}

static bool gemm_use_blas(const gemm_args *g, matmul_path path)
{
    if (!gemm_fits_blas(g) || path == MATMUL_REFERENCE)
        return false;
    return path == MATMUL_BLAS ||
           (double)g->m * (double)g->n * (double)g->k >= MATMUL_BLAS_MIN_WORK;
}

/* Element (i, p) of op(A) and (p, j) of op(B). */
static inline int64_t gemm_a_at(const gemm_args *g, int64_t i, int64_t p)
{
    return g->trans_a ? p * g->m + i : i * g->k + p;
}

static inline int64_t gemm_b_at(const gemm_args *g, int64_t p, int64_t j)
{
    return g->trans_b ? j * g->k + p : p * g->n + j;
}

static void gemm_ref_f32(const gemm_args *g, const float *a, const float *b, float *y)
{
    for (int64_t i = 0; i < g->m; i++) {
        for (int64_t j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < g->k; p++)
                acc += (double)a[gemm_a_at(g, i, p)] * b[gemm_b_at(g, p, j)];
            float v = (float)(g->alpha * acc);
            y[i * g->n + j] = g->accumulate ? y[i * g->n + j] + v : v;
        }
    }
}

static void gemm_ref_f64(const gemm_args *g, const double *a, const double *b, double *y)
{
    for (int64_t i = 0; i < g->m; i++) {
        for (int64_t j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < g->k; p++)
                acc += a[gemm_a_at(g, i, p)] * b[gemm_b_at(g, p, j)];
            double v = g->alpha * acc;
            y[i * g->n + j] = g->accumulate ? y[i * g->n + j] + v : v;
        }
    }
}

/* Integers multiply and add in uint64, which wraps like the narrow types. */
static void gemm_ref_i64(const gemm_args *g, const int64_t *a, const int64_t *b, int64_t *y)
{
    for (int64_t i = 0; i < g->m; i++) {
        for (int64_t j = 0; j < g->n; j++) {
            uint64_t acc = g->accumulate ? (uint64_t)y[i * g->n + j] : 0;
            for (int64_t p = 0; p < g->k; p++)
                acc += (uint64_t)a[gemm_a_at(g, i, p)] * (uint64_t)b[gemm_b_at(g, p, j)];
            y[i * g->n + j] = (int64_t)acc;
        }
    }
}

/* A few rows of A stream B through the small-m kernel. Beyond, the packed
 * GEMM beats OpenBLAS (Debian's, AVX2) from 32 columns on: measured about
 * 1.4x at 48 columns and 1.8x to 2x from 64 on one core; they tie at 16. */
matmul_path matmul_auto_path(int64_t m, int64_t n, int64_t k)
{
    gemm_isa isa = gemm_isa_best();
    if (m <= GEMM_SMALL_MAX_M)
        return isa == GEMM_ISA_AVX512 ? MATMUL_SMALL_AVX512
               : isa == GEMM_ISA_AVX2 ? MATMUL_SMALL_AVX2
                                      : MATMUL_SMALL_SCALAR;
    gemm_args g = {.m = m, .n = n, .k = k};
    if (!gemm_use_blas(&g, MATMUL_AUTO))
        return MATMUL_REFERENCE;
    return n >= 32 && isa == GEMM_ISA_AVX512 ? MATMUL_PACKED : MATMUL_BLAS;
}

/* The fast float32 kernels, for Y (+)= A @ B without scaling and with A not
 * transposed (B may be, for the packed GEMM). False when path (or, for
 * MATMUL_AUTO, the shape) does not pick one. */
static bool gemm_fast_f32(const gemm_args *g, const float *a, const float *b, float *y,
                          matmul_path path, threadpool *pool)
{
    if (g->trans_a || g->alpha != 1.0)
        return false;
    gemm_f32_args f = {.m = g->m,
                       .n = g->n,
                       .k = g->k,
                       .a = a,
                       .lda = g->k,
                       .b = b,
                       .ldb = g->trans_b ? g->k : g->n,
                       .y = y,
                       .ldy = g->n,
                       .accumulate = g->accumulate,
                       .b_trans = g->trans_b};
    if (path == MATMUL_AUTO)
        path = matmul_auto_path(g->m, g->n, g->k);
    if (g->trans_b && path != MATMUL_PACKED)
        return false;
    switch (path) {
    case MATMUL_SMALL_SCALAR:
        gemm_small_f32(&f, GEMM_ISA_SCALAR, pool);
        return true;
    case MATMUL_SMALL_AVX2:
        gemm_small_f32(&f, GEMM_ISA_AVX2, pool);
        return true;
    case MATMUL_SMALL_AVX512:
        gemm_small_f32(&f, GEMM_ISA_AVX512, pool);
        return true;
    case MATMUL_PACKED:
        return gemm_packed_f32(&f, pool); /* out of memory: OpenBLAS instead */
    default:
        return false;
    }
}

/* With k == 0 the product is empty: Y is 0 (or unchanged when accumulating). */
static void gemm_f32(const gemm_args *g, const float *a, const float *b, float *y, matmul_path path,
                     threadpool *pool)
{
    if (g->m == 0 || g->n == 0)
        return;
    if (gemm_fast_f32(g, a, b, y, path, pool))
        return;
    if (!gemm_use_blas(g, path)) {
        gemm_ref_f32(g, a, b, y);
        return;
    }
    cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                g->trans_b ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n, (int)g->k,
                (float)g->alpha, a, (int)(g->trans_a ? g->m : g->k), b,
                (int)(g->trans_b ? g->k : g->n), g->accumulate ? 1.0f : 0.0f, y, (int)g->n);
}

static void gemm_f64(const gemm_args *g, const double *a, const double *b, double *y,
                     matmul_path path)
{
    if (g->m == 0 || g->n == 0)
        return;
    if (!gemm_use_blas(g, path)) {
        gemm_ref_f64(g, a, b, y);
        return;
    }
    cblas_dgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                g->trans_b ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n, (int)g->k, g->alpha,
                a, (int)(g->trans_a ? g->m : g->k), b, (int)(g->trans_b ? g->k : g->n),
                g->accumulate ? 1.0 : 0.0, y, (int)g->n);
}

/* ---- MatMul --------------------------------------------------------------- */

/* When B is one matrix shared by every batch and A's batches are all
 * distinct, the batches stack into one [batch * m, k] x [k, n] product. */
static bool matmul_stacks(const matmul_plan *p)
{
    return p->b_batch == 1 && p->a_batch == p->batch;
}

bool matmul_float(ogi_dtype dtype, const void *a, int a_rank, const int64_t *a_dims, const void *b,
                  int b_rank, const int64_t *b_dims, void *y, matmul_path path, threadpool *pool)
{
    matmul_plan p;
    if ((dtype != OGI_FLOAT32 && dtype != OGI_FLOAT64) ||
        !matmul_plan_init(a_rank, a_dims, b_rank, b_dims, &p))
        return false;
    gemm_args g = {.m = p.m, .n = p.n, .k = p.k, .alpha = 1.0};
    int64_t count = p.batch;
    if (matmul_stacks(&p) && p.batch > 0) {
        g.m *= p.batch;
        count = 1;
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t ai, bi;
        matmul_batch_operands(&p, i, &ai, &bi);
        int64_t ao = ai * p.m * p.k, bo = bi * p.k * p.n, yo = i * p.m * p.n;
        if (dtype == OGI_FLOAT32)
            gemm_f32(&g, (const float *)a + ao, (const float *)b + bo, (float *)y + yo, path, pool);
        else
            gemm_f64(&g, (const double *)a + ao, (const double *)b + bo, (double *)y + yo, path);
    }
    return true;
}

/* A float16/bfloat16 tensor widened to a new float32 buffer. */
static float *matmul_widen(const ogi_tensor *t)
{
    int64_t n = tensor_numel(t);
    float *f = malloc((size_t)(n + 1) * sizeof(float));
    if (f == NULL)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)dtype_get_f64(t->data, t->dtype, i);
    return f;
}

/* A numeric tensor as a new int64 buffer. */
static int64_t *matmul_to_i64(const ogi_tensor *t)
{
    int64_t n = tensor_numel(t);
    int64_t *v = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (v == NULL)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        v[i] = dtype_get_i64(t->data, t->dtype, i);
    return v;
}

static ogi_status matmul_half(op_ctx *c, const ogi_tensor *a, const ogi_tensor *b)
{
    ogi_tensor *y = c->out[0];
    int64_t n = tensor_numel(y);
    float *fa = matmul_widen(a), *fb = matmul_widen(b);
    float *fy = malloc((size_t)(n + 1) * sizeof(float));
    ogi_status st = OGI_OK;
    if (fa == NULL || fb == NULL || fy == NULL)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    else
        matmul_float(OGI_FLOAT32, fa, a->rank, a->dims, fb, b->rank, b->dims, fy, MATMUL_AUTO,
                     c->pool);
    for (int64_t i = 0; st == OGI_OK && i < n; i++)
        dtype_set_f64(y->data, y->dtype, i, fy[i]);
    free(fa);
    free(fb);
    free(fy);
    return st;
}

/* Every batch's integer product, Y = A @ B over whole int64 tensors. */
static void matmul_batched_i64(const matmul_plan *p, const int64_t *a, const int64_t *b, int64_t *y)
{
    gemm_args g = {.m = p->m, .n = p->n, .k = p->k, .alpha = 1.0};
    for (int64_t i = 0; i < p->batch; i++) {
        int64_t ai, bi;
        matmul_batch_operands(p, i, &ai, &bi);
        gemm_ref_i64(&g, a + ai * p->m * p->k, b + bi * p->k * p->n, y + i * p->m * p->n);
    }
}

static ogi_status matmul_int(op_ctx *c, const ogi_tensor *a, const ogi_tensor *b,
                             const matmul_plan *p)
{
    ogi_tensor *y = c->out[0];
    int64_t n = tensor_numel(y);
    int64_t *ia = matmul_to_i64(a), *ib = matmul_to_i64(b);
    int64_t *iy = malloc((size_t)(n + 1) * sizeof(int64_t));
    ogi_status st = OGI_OK;
    if (ia == NULL || ib == NULL || iy == NULL) {
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        matmul_batched_i64(p, ia, ib, iy);
        for (int64_t i = 0; i < n; i++)
            dtype_set_i64(y->data, y->dtype, i, iy[i]);
    }
    free(ia);
    free(ib);
    free(iy);
    return st;
}

/* Y = A @ B for A [..., K] (its batches stacked into rows) and a 2-D
 * weight B [K, N], with B's panels when the session packed it. */
static gemm_f32_args matmul_weight_args(const ogi_tensor *a, const ogi_tensor *b, float *y,
                                        const float *panels, bool stream)
{
    int64_t k = b->dims[0], n = b->dims[1];
    return (gemm_f32_args){.m = k > 0 ? (int64_t)tensor_numel(a) / k : 0,
                           .n = n,
                           .k = k,
                           .a = a->data,
                           .lda = k,
                           .b = b->data,
                           .ldb = n,
                           .y = y,
                           .ldy = n,
                           .b_panels = panels,
                           .b_stream = stream};
}

/* A product whose B is in panels: the small-m kernel or the packed GEMM.
 * False when the packed GEMM cannot allocate its buffers (the caller then
 * takes the plain path). */
static bool matmul_panels(const gemm_f32_args *f, threadpool *pool)
{
    if (f->m == 0)
        return true;
    if (f->m <= GEMM_SMALL_MAX_M) {
        gemm_small_f32(f, GEMM_ISA_AVX512, pool);
        return true;
    }
    return gemm_packed_f32(f, pool);
}

/* ai.ogi.MatMulGroup(A, B1, ..., Bn) -> Y1, ..., Yn: MatMul of one A by
 * several weights that the session packed at load (engine/pack.c groups the
 * MatMul nodes that share A, as a layer's Q, K and V projections). Decode
 * rows run as one job on the pool (gemm_small_f32_group); longer prefills,
 * and any weight without panels, product by product. */
static ogi_status matmul_group_run(op_ctx *c)
{
    int count = c->n_in - 1;
    if (count < 1 || count > GEMM_GROUP_MAX || c->n_out != count)
        return op_error(c, OGI_ERR_INVALID_MODEL, "expected 1 to %d weights and as many outputs",
                        GEMM_GROUP_MAX);
    ogi_status st = op_require_dtype(c, 0, OGI_FLOAT32);
    for (int i = 1; i <= count && st == OGI_OK; i++)
        st = op_require_dtype(c, i, OGI_FLOAT32);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0];
    gemm_f32_args f[GEMM_GROUP_MAX];
    bool all_panels = true;
    for (int i = 0; i < count; i++) {
        const ogi_tensor *b = c->in[1 + i];
        if (a->rank < 1 || b->rank != 2 || a->dims[a->rank - 1] != b->dims[0])
            return op_error(c, OGI_ERR_RUNTIME, "A [..., K] and weight %d [K, N] do not match",
                            i + 1);
        int64_t dims[OGI_MAX_RANK];
        memcpy(dims, a->dims, sizeof(int64_t) * (size_t)a->rank);
        dims[a->rank - 1] = b->dims[1];
        if ((st = op_alloc(c, i, OGI_FLOAT32, a->rank, dims)) != OGI_OK)
            return st;
        f[i] = matmul_weight_args(a, b, c->out[i]->data, op_input_panels(c, 1 + i),
                                  op_panels_streamed(c));
        all_panels = all_panels && f[i].b_panels != NULL;
    }
    if (all_panels && f[0].m > 0 && f[0].m <= GEMM_SMALL_MAX_M) {
        gemm_small_f32_group(f, count, c->pool);
        return OGI_OK;
    }
    for (int i = 0; i < count; i++) {
        const ogi_tensor *b = c->in[1 + i];
        if (f[i].b_panels == NULL || !matmul_panels(&f[i], c->pool))
            matmul_float(OGI_FLOAT32, a->data, a->rank, a->dims, b->data, b->rank, b->dims, f[i].y,
                         MATMUL_AUTO, c->pool);
    }
    return OGI_OK;
}

static ogi_status matmul_run(op_ctx *c)
{
    ogi_status st = matmul_require_pair(c, 0, 1);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype != b->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "inputs: dtypes %s and %s differ",
                        ogi_dtype_name(a->dtype), ogi_dtype_name(b->dtype));
    if (!dtype_is_float(a->dtype) && !dtype_is_integer(a->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(a->dtype));
    matmul_plan p;
    st = matmul_plan_for(c, a, b, &p);
    if (st == OGI_OK)
        st = op_alloc(c, 0, a->dtype, p.y_rank, p.y_dims);
    if (st != OGI_OK)
        return st;
    /* the pack pass only packs 2-D float32 weights, on CPUs with AVX-512 */
    const float *panels = a->dtype == OGI_FLOAT32 && b->rank == 2 ? op_input_panels(c, 1) : NULL;
    if (panels != NULL && a->rank >= 1 && a->dims[a->rank - 1] == b->dims[0]) {
        gemm_f32_args f = matmul_weight_args(a, b, c->out[0]->data, panels, op_panels_streamed(c));
        if (matmul_panels(&f, c->pool))
            return OGI_OK;
    }
    if (a->dtype == OGI_FLOAT32 || a->dtype == OGI_FLOAT64) {
        matmul_float(a->dtype, a->data, a->rank, a->dims, b->data, b->rank, b->dims,
                     c->out[0]->data, MATMUL_AUTO, c->pool);
        return OGI_OK;
    }
    if (dtype_is_float(a->dtype))
        return matmul_half(c, a, b);
    return matmul_int(c, a, b, &p);
}

/* ---- Gemm ----------------------------------------------------------------- */

/* Y [m, n] = beta * C, C broadcast from a scalar, [n], [1, n], [m, 1], ... */
static ogi_status gemm_fill_c(op_ctx *c, const ogi_tensor *t, double beta, int64_t m, int64_t n,
                              double *y)
{
    int64_t rows = t->rank == 2 ? t->dims[0] : 1;
    int64_t cols = t->rank >= 1 ? t->dims[t->rank - 1] : 1;
    if (t->rank > 2 || (rows != 1 && rows != m) || (cols != 1 && cols != n)) {
        char s[128];
        return op_error(c, OGI_ERR_RUNTIME, "input 2: shape %s does not broadcast to [%lld,%lld]",
                        tensor_shape_str(t->rank, t->dims, s, sizeof(s)), (long long)m,
                        (long long)n);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            y[i * n + j] = beta * dtype_get_f64(t->data, t->dtype,
                                                (rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j));
    return OGI_OK;
}

/* Float Gemm through a float32 or float64 work buffer. */
static ogi_status gemm_float(op_ctx *c, gemm_args *g, const double *cfill)
{
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    ogi_tensor *y = c->out[0];
    int64_t n = g->m * g->n;
    bool wide = a->dtype == OGI_FLOAT64;
    if (wide) {
        double *yd = y->data;
        for (int64_t i = 0; cfill && i < n; i++)
            yd[i] = cfill[i];
        gemm_f64(g, a->data, b->data, yd, MATMUL_AUTO);
        return OGI_OK;
    }
    bool narrow = a->dtype != OGI_FLOAT32;
    float *fa = narrow ? matmul_widen(a) : a->data;
    float *fb = narrow ? matmul_widen(b) : b->data;
    float *fy = narrow ? malloc((size_t)(n + 1) * sizeof(float)) : y->data;
    ogi_status st = OGI_OK;
    if (fa == NULL || fb == NULL || fy == NULL) {
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        for (int64_t i = 0; cfill && i < n; i++)
            fy[i] = (float)cfill[i];
        gemm_f32(g, fa, fb, fy, MATMUL_AUTO, c->pool);
        for (int64_t i = 0; narrow && i < n; i++)
            dtype_set_f64(y->data, y->dtype, i, fy[i]);
    }
    if (narrow) {
        free(fa);
        free(fb);
        free(fy);
    }
    return st;
}

/* Integer Gemm: exact when alpha and beta are 1, else through double (as the
 * float-scaled result truncated back). */
static ogi_status gemm_int(op_ctx *c, gemm_args *g, const double *cfill, double beta)
{
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    ogi_tensor *y = c->out[0];
    int64_t n = g->m * g->n;
    int64_t *ia = matmul_to_i64(a), *ib = matmul_to_i64(b);
    int64_t *iy = malloc((size_t)(n + 1) * sizeof(int64_t));
    ogi_status st = OGI_OK;
    if (ia == NULL || ib == NULL || iy == NULL) {
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        gemm_args gi = *g;
        gi.accumulate = false;
        gemm_ref_i64(&gi, ia, ib, iy);
        bool exact = g->alpha == 1.0 && (cfill == NULL || beta == 1.0);
        for (int64_t i = 0; i < n; i++) {
            if (exact)
                dtype_set_i64(
                    y->data, y->dtype, i,
                    (int64_t)((uint64_t)iy[i] + (uint64_t)(cfill ? (int64_t)cfill[i] : 0)));
            else
                dtype_set_f64(y->data, y->dtype, i,
                              g->alpha * (double)iy[i] + (cfill ? cfill[i] : 0.0));
        }
    }
    free(ia);
    free(ib);
    free(iy);
    return st;
}

/* Y = alpha * op(A) @ op(B) + beta * C. */
static ogi_status gemm_run(op_ctx *c)
{
    ogi_status st = matmul_require_pair(c, 0, 1);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype != b->dtype || (!dtype_is_float(a->dtype) && !dtype_is_integer(a->dtype)))
        return op_error(c, OGI_ERR_UNSUPPORTED, "inputs: dtypes %s and %s are not supported",
                        ogi_dtype_name(a->dtype), ogi_dtype_name(b->dtype));
    if (a->rank != 2 || b->rank != 2)
        return op_error(c, OGI_ERR_RUNTIME, "inputs: expected rank 2, got %d and %d", a->rank,
                        b->rank);
    gemm_args g = {.trans_a = op_attr_int(c, "transA", 0) != 0,
                   .trans_b = op_attr_int(c, "transB", 0) != 0,
                   .alpha = op_attr_float(c, "alpha", 1.0f)};
    g.m = a->dims[g.trans_a ? 1 : 0];
    g.k = a->dims[g.trans_a ? 0 : 1];
    g.n = b->dims[g.trans_b ? 0 : 1];
    if (b->dims[g.trans_b ? 1 : 0] != g.k)
        return op_error(c, OGI_ERR_RUNTIME, "inputs: inner dims %lld and %lld differ",
                        (long long)g.k, (long long)b->dims[g.trans_b ? 1 : 0]);
    double beta = op_attr_float(c, "beta", 1.0f);
    int64_t dims[2] = {g.m, g.n};
    st = op_alloc(c, 0, a->dtype, 2, dims);
    if (st != OGI_OK)
        return st;
    /* as the reference does, beta == 0 ignores C altogether */
    double *cfill = NULL;
    if (op_has_input(c, 2) && beta != 0.0) {
        cfill = malloc((size_t)(g.m * g.n + 1) * sizeof(double));
        if (cfill == NULL)
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
        st = gemm_fill_c(c, c->in[2], beta, g.m, g.n, cfill);
    }
    g.accumulate = cfill != NULL;
    if (st == OGI_OK)
        st = dtype_is_float(a->dtype) ? gemm_float(c, &g, cfill) : gemm_int(c, &g, cfill, beta);
    free(cfill);
    return st;
}

/* ---- MatMulInteger and QLinearMatMul -------------------------------------- */

/* A quantisation parameter (zero point or scale) of one operand: one value,
 * one per row of A / column of B, or one per row/column of each batch
 * matrix. */
typedef struct quant_param {
    const ogi_tensor *t; /* NULL: absent (zero) */
    int64_t per;         /* 1, rows (or cols), or batch matrices * rows */
} quant_param;

static ogi_status quant_param_init(op_ctx *c, int i, int64_t lines, int64_t matrices,
                                   quant_param *q)
{
    q->t = op_has_input(c, i) ? c->in[i] : NULL;
    q->per = 1;
    if (q->t == NULL)
        return OGI_OK;
    int64_t n = tensor_numel(q->t);
    if (n == 1 || n == lines || n == lines * matrices) {
        q->per = n;
        return OGI_OK;
    }
    return op_error(c, OGI_ERR_UNSUPPORTED,
                    "input %d: %lld values is neither per tensor nor per row/column", i,
                    (long long)n);
}

/* The value for line `line` of batch matrix `matrix`. */
static double quant_param_f64(const quant_param *q, int64_t lines, int64_t matrix, int64_t line)
{
    if (q->t == NULL)
        return 0.0;
    int64_t idx = q->per == 1 ? 0 : q->per == lines ? line : matrix * lines + line;
    return dtype_get_f64(q->t->data, q->t->dtype, idx);
}

static bool quant_is_8bit(const ogi_tensor *t)
{
    return t->dtype == OGI_INT8 || t->dtype == OGI_UINT8;
}

/* Integer products sum((a - a_zero) * (b - b_zero)) of every batch, as int64. */
static ogi_status quant_products(op_ctx *c, const ogi_tensor *a, const ogi_tensor *b,
                                 const matmul_plan *p, const quant_param *za, const quant_param *zb,
                                 int64_t *acc)
{
    int64_t *ia = matmul_to_i64(a), *ib = matmul_to_i64(b);
    if (ia == NULL || ib == NULL) {
        free(ia);
        free(ib);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t bi = 0; bi < p->a_batch; bi++)
        for (int64_t i = 0; i < p->m; i++)
            for (int64_t kk = 0; kk < p->k; kk++)
                ia[(bi * p->m + i) * p->k + kk] -= (int64_t)quant_param_f64(za, p->m, bi, i);
    for (int64_t bi = 0; bi < p->b_batch; bi++)
        for (int64_t kk = 0; kk < p->k; kk++)
            for (int64_t j = 0; j < p->n; j++)
                ib[(bi * p->k + kk) * p->n + j] -= (int64_t)quant_param_f64(zb, p->n, bi, j);
    matmul_batched_i64(p, ia, ib, acc);
    free(ia);
    free(ib);
    return OGI_OK;
}

/* Y (int32) = (A - a_zero_point) @ (B - b_zero_point). */
static ogi_status matmul_integer_run(op_ctx *c)
{
    ogi_status st = matmul_require_pair(c, 0, 1);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    if (!quant_is_8bit(a) || !quant_is_8bit(b))
        return op_error(c, OGI_ERR_UNSUPPORTED, "inputs: dtypes %s and %s are not supported",
                        ogi_dtype_name(a->dtype), ogi_dtype_name(b->dtype));
    matmul_plan p;
    st = matmul_plan_for(c, a, b, &p);
    quant_param za, zb;
    if (st == OGI_OK)
        st = quant_param_init(c, 2, p.m, p.a_batch, &za);
    if (st == OGI_OK)
        st = quant_param_init(c, 3, p.n, p.b_batch, &zb);
    if (st == OGI_OK)
        st = op_alloc(c, 0, OGI_INT32, p.y_rank, p.y_dims);
    if (st != OGI_OK)
        return st;
    int64_t n = p.batch * p.m * p.n;
    int64_t *acc = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (acc == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    st = quant_products(c, a, b, &p, &za, &zb, acc);
    for (int64_t i = 0; st == OGI_OK && i < n; i++)
        ((int32_t *)c->out[0]->data)[i] = (int32_t)acc[i];
    free(acc);
    return st;
}

/* Rounds v to the scale dtype's precision, as the reference computes the
 * combined scale in that dtype. */
static double quant_round_to(ogi_dtype t, double v)
{
    switch (t) {
    case OGI_FLOAT32:
        return (float)v;
    case OGI_FLOAT16:
        return dtype_f16_to_f32(dtype_f32_to_f16((float)v));
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(dtype_f32_to_bf16((float)v));
    default:
        return v;
    }
}

typedef struct qlinear_params {
    quant_param a_scale, a_zero, b_scale, b_zero;
    double y_scale, y_zero;
    ogi_dtype scale_dtype;
} qlinear_params;

static ogi_status qlinear_params_init(op_ctx *c, const matmul_plan *p, qlinear_params *q)
{
    for (int i = 1; i <= 7; i++) {
        ogi_status st = op_require_input(c, i);
        if (st != OGI_OK)
            return st;
    }
    q->scale_dtype = c->in[1]->dtype;
    if (!dtype_is_float(q->scale_dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 1: scale dtype %s is not a float",
                        ogi_dtype_name(q->scale_dtype));
    if (tensor_numel(c->in[6]) != 1 || tensor_numel(c->in[7]) != 1)
        return op_error(c, OGI_ERR_UNSUPPORTED,
                        "inputs 6 and 7: only per-tensor output "
                        "quantisation is supported");
    ogi_status st = quant_param_init(c, 1, p->m, p->a_batch, &q->a_scale);
    if (st == OGI_OK)
        st = quant_param_init(c, 2, p->m, p->a_batch, &q->a_zero);
    if (st == OGI_OK)
        st = quant_param_init(c, 4, p->n, p->b_batch, &q->b_scale);
    if (st == OGI_OK)
        st = quant_param_init(c, 5, p->n, p->b_batch, &q->b_zero);
    q->y_scale = dtype_get_f64(c->in[6]->data, c->in[6]->dtype, 0);
    q->y_zero = dtype_get_f64(c->in[7]->data, c->in[7]->dtype, 0);
    return st;
}

/* y = saturate(rint(acc * (a_scale * b_scale / y_scale)) + y_zero_point). */
static void qlinear_store(const qlinear_params *q, const matmul_plan *p, const int64_t *acc,
                          ogi_tensor *y)
{
    double lo = y->dtype == OGI_INT8 ? -128.0 : 0.0, hi = y->dtype == OGI_INT8 ? 127.0 : 255.0;
    for (int64_t bi = 0; bi < p->batch; bi++) {
        int64_t ai, bb;
        matmul_batch_operands(p, bi, &ai, &bb);
        for (int64_t i = 0; i < p->m; i++) {
            for (int64_t j = 0; j < p->n; j++) {
                double sa = quant_param_f64(&q->a_scale, p->m, ai, i);
                double sb = quant_param_f64(&q->b_scale, p->n, bb, j);
                double scale = quant_round_to(q->scale_dtype, sa * sb);
                scale = quant_round_to(q->scale_dtype, scale / q->y_scale);
                int64_t e = (bi * p->m + i) * p->n + j;
                double v = nearbyint((double)acc[e] * scale) + q->y_zero;
                v = v < lo ? lo : v > hi ? hi : v;
                dtype_set_f64(y->data, y->dtype, e, v);
            }
        }
    }
}

static ogi_status qlinear_matmul_run(op_ctx *c)
{
    ogi_status st = matmul_require_pair(c, 0, 3);
    if (st == OGI_OK)
        st = op_require_input(c, 7);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0], *b = c->in[3];
    if (!quant_is_8bit(a) || !quant_is_8bit(b) || !quant_is_8bit(c->in[7]))
        return op_error(c, OGI_ERR_UNSUPPORTED, "inputs: dtypes %s, %s -> %s are not supported",
                        ogi_dtype_name(a->dtype), ogi_dtype_name(b->dtype),
                        ogi_dtype_name(c->in[7]->dtype));
    matmul_plan p;
    qlinear_params q;
    st = matmul_plan_for(c, a, b, &p);
    if (st == OGI_OK)
        st = qlinear_params_init(c, &p, &q);
    if (st == OGI_OK)
        st = op_alloc(c, 0, c->in[7]->dtype, p.y_rank, p.y_dims);
    if (st != OGI_OK)
        return st;
    int64_t n = p.batch * p.m * p.n;
    int64_t *acc = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (acc == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    st = quant_products(c, a, b, &p, &q.a_zero, &q.b_zero, acc);
    if (st == OGI_OK)
        qlinear_store(&q, &p, acc, c->out[0]);
    free(acc);
    return st;
}

/* ---- Einsum --------------------------------------------------------------- */

/* Labels: 'A'-'Z' are 0-25, 'a'-'z' 26-51 (so label order is ASCII order),
 * and the dims an ellipsis covers are 52 onwards, right-aligned. */
#define EINSUM_LETTERS 52
#define EINSUM_LABELS (EINSUM_LETTERS + OGI_MAX_RANK)
#define EINSUM_MAX_INPUTS 16

typedef struct einsum_term {
    int n; /* labels, one per dim */
    int labels[OGI_MAX_RANK];
} einsum_term;

typedef struct einsum_plan {
    int n_in;
    einsum_term in[EINSUM_MAX_INPUTS];
    einsum_term out;
    int ellipsis_rank;           /* dims the ellipsis spans (the widest input's) */
    int64_t size[EINSUM_LABELS]; /* -1: label unused */
} einsum_plan;

static int einsum_letter(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return 26 + (ch - 'a');
    return -1;
}

/* Parses one term (spaces removed) against a tensor rank; rank < 0 for the
 * output, whose ellipsis spans ellipsis_rank dims. The ellipsis dims get
 * labels EINSUM_LETTERS + 0, 1, ...; the caller right-aligns them. Returns
 * false if the term is malformed or does not fit the rank. */
static bool einsum_parse_term(const char *s, size_t len, int rank, int ellipsis_rank,
                              einsum_term *t, int *ellipsis_dims)
{
    int letters = 0;
    bool has_ellipsis = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (has_ellipsis || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return false;
            has_ellipsis = true;
            i += 2;
        } else if (einsum_letter(s[i]) < 0) {
            return false;
        } else {
            letters++;
        }
    }
    int span = rank < 0 ? (has_ellipsis ? ellipsis_rank : 0) : rank - letters;
    if (span < 0 || (!has_ellipsis && span != 0) || letters + span > OGI_MAX_RANK)
        return false;
    t->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            for (int e = 0; e < span; e++)
                t->labels[t->n++] = EINSUM_LETTERS + e;
            i += 2;
        } else {
            t->labels[t->n++] = einsum_letter(s[i]);
        }
    }
    *ellipsis_dims = span;
    return true;
}

/* Implicit output: the ellipsis dims, then the labels used exactly once, in
 * ASCII order. False when that makes more than OGI_MAX_RANK dims. */
static bool einsum_implicit_output(einsum_plan *p)
{
    int uses[EINSUM_LETTERS] = {0};
    for (int i = 0; i < p->n_in; i++)
        for (int d = 0; d < p->in[i].n; d++)
            if (p->in[i].labels[d] < EINSUM_LETTERS)
                uses[p->in[i].labels[d]]++;
    p->out.n = 0;
    for (int e = 0; e < p->ellipsis_rank; e++)
        p->out.labels[p->out.n++] = EINSUM_LETTERS + e;
    for (int l = 0; l < EINSUM_LETTERS; l++) {
        if (uses[l] != 1)
            continue;
        if (p->out.n == OGI_MAX_RANK)
            return false;
        p->out.labels[p->out.n++] = l;
    }
    return true;
}

/* Splits the equation (spaces dropped) into terms. */
static ogi_status einsum_parse(op_ctx *c, const char *eq, einsum_plan *p)
{
    char buf[512];
    size_t len = 0;
    for (const char *s = eq; *s; s++) {
        if (*s == ' ')
            continue;
        if (len + 1 >= sizeof(buf))
            return op_error(c, OGI_ERR_UNSUPPORTED, "equation is too long");
        buf[len++] = *s;
    }
    buf[len] = '\0';
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : len;
    p->n_in = 0;
    p->ellipsis_rank = 0;
    size_t start = 0;
    int spans[EINSUM_MAX_INPUTS];
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && buf[i] != ',')
            continue;
        int k = p->n_in;
        if (k >= c->n_in || k >= EINSUM_MAX_INPUTS || c->in[k] == NULL)
            return op_error(c, OGI_ERR_INVALID_MODEL, "equation '%s': more terms than inputs", eq);
        if (!einsum_parse_term(buf + start, i - start, c->in[k]->rank, 0, &p->in[k], &spans[k]))
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "equation '%s': term %d does not fit input rank %d", eq, k,
                            c->in[k]->rank);
        if (spans[k] > p->ellipsis_rank)
            p->ellipsis_rank = spans[k];
        p->n_in++;
        start = i + 1;
    }
    if (p->n_in != c->n_in)
        return op_error(c, OGI_ERR_INVALID_MODEL, "equation '%s': %d terms for %d inputs", eq,
                        p->n_in, c->n_in);
    /* re-label the ellipsis dims right-aligned to the widest span */
    for (int k = 0; k < p->n_in; k++)
        for (int d = 0; d < p->in[k].n; d++)
            if (p->in[k].labels[d] >= EINSUM_LETTERS)
                p->in[k].labels[d] += p->ellipsis_rank - spans[k];
    if (arrow == NULL) {
        if (!einsum_implicit_output(p))
            return op_error(c, OGI_ERR_UNSUPPORTED, "equation '%s': output rank exceeds %d", eq,
                            OGI_MAX_RANK);
        return OGI_OK;
    }
    int span;
    if (!einsum_parse_term(arrow + 2, strlen(arrow + 2), -1, p->ellipsis_rank, &p->out, &span))
        return op_error(c, OGI_ERR_INVALID_MODEL, "equation '%s': bad output term", eq);
    return OGI_OK;
}

/* Label sizes from the inputs: equal, or 1 (broadcast). */
static ogi_status einsum_sizes(op_ctx *c, einsum_plan *p)
{
    for (int l = 0; l < EINSUM_LABELS; l++)
        p->size[l] = -1;
    for (int k = 0; k < p->n_in; k++) {
        for (int d = 0; d < p->in[k].n; d++) {
            int l = p->in[k].labels[d];
            int64_t dim = c->in[k]->dims[d];
            if (p->size[l] < 0 || p->size[l] == 1)
                p->size[l] = dim;
            else if (dim != 1 && dim != p->size[l])
                return op_error(c, OGI_ERR_RUNTIME, "input %d: dim %d is %lld, expected %lld", k, d,
                                (long long)dim, (long long)p->size[l]);
        }
    }
    bool seen[EINSUM_LABELS] = {false};
    for (int d = 0; d < p->out.n; d++) {
        int l = p->out.labels[d];
        if (seen[l] || p->size[l] < 0)
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "equation: output label %d repeated or not in any input", d);
        seen[l] = true;
    }
    return OGI_OK;
}

/* The loop nest: output labels first, then the summed ones; per input the
 * element stride of each loop (summed over repeats: diagonals). */
typedef struct einsum_loops {
    int n_out, n; /* output loops, all loops */
    int64_t size[EINSUM_LABELS];
    int64_t in_stride[EINSUM_MAX_INPUTS][EINSUM_LABELS];
    int64_t out_numel, sum_numel;
} einsum_loops;

static void einsum_make_loops(const op_ctx *c, const einsum_plan *p, einsum_loops *lp)
{
    int order[EINSUM_LABELS];
    bool in_out[EINSUM_LABELS] = {false};
    lp->n = 0;
    for (int d = 0; d < p->out.n; d++) {
        order[lp->n++] = p->out.labels[d];
        in_out[p->out.labels[d]] = true;
    }
    lp->n_out = lp->n;
    for (int l = 0; l < EINSUM_LABELS; l++)
        if (p->size[l] >= 0 && !in_out[l])
            order[lp->n++] = l;
    lp->out_numel = 1;
    lp->sum_numel = 1;
    for (int i = 0; i < lp->n; i++) {
        lp->size[i] = p->size[order[i]];
        *(i < lp->n_out ? &lp->out_numel : &lp->sum_numel) *= lp->size[i];
    }
    for (int k = 0; k < p->n_in; k++) {
        const ogi_tensor *t = c->in[k];
        int64_t strides[OGI_MAX_RANK];
        tensor_strides(t->rank, t->dims, strides);
        for (int i = 0; i < lp->n; i++) {
            lp->in_stride[k][i] = 0;
            for (int d = 0; d < p->in[k].n; d++)
                if (p->in[k].labels[d] == order[i] && t->dims[d] != 1)
                    lp->in_stride[k][i] += strides[d];
        }
    }
}

/* Advances loops [first, last) like an odometer, keeping offsets in step. */
static void einsum_step(const einsum_loops *lp, int first, int last, int n_in, int64_t *coord,
                        int64_t *off)
{
    for (int i = last - 1; i >= first; i--) {
        for (int k = 0; k < n_in; k++)
            off[k] += lp->in_stride[k][i];
        if (++coord[i] < lp->size[i])
            return;
        for (int k = 0; k < n_in; k++)
            off[k] -= coord[i] * lp->in_stride[k][i];
        coord[i] = 0;
    }
}

/* Every output element sums, over the summed loops, the product of the
 * inputs' elements; values are double (floats) or wrapping int64. */
static void einsum_compute(const einsum_loops *lp, int n_in, void *const *vals, bool is_float,
                           void *y)
{
    int64_t coord[EINSUM_LABELS] = {0};
    int64_t off[EINSUM_MAX_INPUTS] = {0};
    for (int64_t o = 0; o < lp->out_numel; o++) {
        double fsum = 0.0;
        uint64_t isum = 0;
        for (int64_t s = 0; s < lp->sum_numel; s++) {
            double fp = 1.0;
            uint64_t ip = 1;
            for (int k = 0; k < n_in; k++) {
                if (is_float)
                    fp *= ((const double *)vals[k])[off[k]];
                else
                    ip *= (uint64_t)((const int64_t *)vals[k])[off[k]];
            }
            fsum += fp;
            isum += ip;
            einsum_step(lp, lp->n_out, lp->n, n_in, coord, off);
        }
        if (is_float)
            ((double *)y)[o] = fsum;
        else
            ((int64_t *)y)[o] = (int64_t)isum;
        einsum_step(lp, 0, lp->n_out, n_in, coord, off);
    }
}

static ogi_status einsum_execute(op_ctx *c, const einsum_plan *p, const einsum_loops *lp)
{
    ogi_dtype t = c->in[0]->dtype;
    bool is_float = dtype_is_float(t);
    int64_t dims[OGI_MAX_RANK];
    for (int d = 0; d < p->out.n; d++)
        dims[d] = p->size[p->out.labels[d]];
    ogi_status st = op_alloc(c, 0, t, p->out.n, dims);
    if (st != OGI_OK)
        return st;
    void *vals[EINSUM_MAX_INPUTS] = {NULL};
    void *acc = malloc((size_t)(lp->out_numel + 1) * 8);
    bool ok = acc != NULL;
    for (int k = 0; k < p->n_in && ok; k++) {
        const ogi_tensor *in = c->in[k];
        int64_t n = tensor_numel(in);
        vals[k] = malloc((size_t)(n + 1) * 8);
        ok = vals[k] != NULL;
        for (int64_t i = 0; ok && i < n; i++) {
            if (is_float)
                ((double *)vals[k])[i] = dtype_get_f64(in->data, in->dtype, i);
            else
                ((int64_t *)vals[k])[i] = dtype_get_i64(in->data, in->dtype, i);
        }
    }
    if (ok) {
        einsum_compute(lp, p->n_in, vals, is_float, acc);
        for (int64_t i = 0; i < lp->out_numel; i++) {
            if (is_float)
                dtype_set_f64(c->out[0]->data, t, i, ((double *)acc)[i]);
            else
                dtype_set_i64(c->out[0]->data, t, i, ((int64_t *)acc)[i]);
        }
    }
    for (int k = 0; k < p->n_in; k++)
        free(vals[k]);
    free(acc);
    return ok ? OGI_OK : op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
}

static ogi_status einsum_run(op_ctx *c)
{
    if (c->n_in < 1 || c->n_in > EINSUM_MAX_INPUTS)
        return op_error(c, OGI_ERR_UNSUPPORTED, "%d inputs: expected 1 to %d", c->n_in,
                        EINSUM_MAX_INPUTS);
    for (int k = 0; k < c->n_in; k++) {
        ogi_status st = op_require_input(c, k);
        if (st != OGI_OK)
            return st;
        ogi_dtype t = c->in[k]->dtype;
        if (t != c->in[0]->dtype || (!dtype_is_float(t) && !dtype_is_integer(t)))
            return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", k,
                            ogi_dtype_name(t));
    }
    const char *eq = op_attr_string(c, "equation", NULL);
    if (eq == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute equation is missing");
    einsum_plan p;
    ogi_status st = einsum_parse(c, eq, &p);
    if (st == OGI_OK)
        st = einsum_sizes(c, &p);
    if (st != OGI_OK)
        return st;
    einsum_loops lp;
    einsum_make_loops(c, &p, &lp);
    return einsum_execute(c, &p, &lp);
}

const op_kernel op_kernels_matmul[] = {
    {"", "MatMul", 1, matmul_run},
    {"", "Gemm", 1, gemm_run},
    {"", "MatMulInteger", 10, matmul_integer_run},
    {"", "QLinearMatMul", 10, qlinear_matmul_run},
    {"", "Einsum", 12, einsum_run},
    {"ai.ogi", "MatMulGroup", 1, matmul_group_run},
    {NULL, NULL, 0, NULL},
};
