/* Checks every path of MatMul (plain loop, BLAS, the small-m kernels in
 * scalar, AVX2 and AVX-512 form, the packed AVX-512 GEMM, and the automatic
 * choice) against an independent numpy-semantics loop written here, on
 * random shapes: odd sizes, 1- and 0-sized dims, 1-D operands and broadcast
 * batch dims, inline and on a 2-thread pool; a few large fixed shapes cross
 * the kernels' block and threading thresholds. The kernels are also called
 * directly with B stored transposed (packed GEMM, for Gemm's transB) and
 * with Y accumulated (Gemm's C). Exits non-zero on the first mismatch. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "ogi.h"
#include "ops/gemm.h"

static threadpool *test_pool; /* 2 threads; NULL runs inline */

static const struct {
    matmul_path path;
    const char *name;
    bool f64; /* also meaningful for float64 */
} test_paths[] = {
    {MATMUL_REFERENCE, "reference", true},
    {MATMUL_BLAS, "BLAS", true},
    {MATMUL_AUTO, "auto", true},
    {MATMUL_SMALL_SCALAR, "small scalar", false},
    {MATMUL_SMALL_AVX2, "small AVX2", false},
    {MATMUL_SMALL_AVX512, "small AVX-512", false},
    {MATMUL_PACKED, "packed AVX-512", false},
};
#define TEST_PATHS (int)(sizeof(test_paths) / sizeof(test_paths[0]))

/* Whether this CPU runs the path. */
static bool test_path_runs(matmul_path path)
{
    gemm_isa isa = gemm_isa_best();
    if (path == MATMUL_SMALL_AVX2)
        return isa >= GEMM_ISA_AVX2;
    if (path == MATMUL_SMALL_AVX512 || path == MATMUL_PACKED)
        return isa >= GEMM_ISA_AVX512;
    return true;
}

typedef struct test_shape {
    int rank;
    int64_t dims[8];
} test_shape;

static uint64_t test_rng = 0x9e3779b97f4a7c15u;

static uint32_t test_rand(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (uint32_t)(test_rng >> 16);
}

static int64_t test_pick(const int64_t *choices, int n)
{
    return choices[test_rand() % (uint32_t)n];
}

static int64_t test_numel(const test_shape *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->rank; d++)
        n *= s->dims[d];
    return n;
}

static const char *test_shape_str(const test_shape *s, char *buf)
{
    int len = sprintf(buf, "[");
    for (int d = 0; d < s->rank; d++)
        len += sprintf(buf + len, "%s%lld", d ? "," : "", (long long)s->dims[d]);
    sprintf(buf + len, "]");
    return buf;
}

/* Random A and B that fit: batch dims broadcast (some set to 1 on one side),
 * matrix dims odd, 1, 0 or large enough to take the BLAS path. */
static void test_random_shapes(test_shape *a, test_shape *b)
{
    static const int64_t sizes[] = {0, 1, 1, 2, 3, 5, 7, 8, 9, 14, 15, 16, 17, 29, 31, 33, 64, 65};
    static const int64_t batch_sizes[] = {0, 1, 2, 3};
    int n_sizes = (int)(sizeof(sizes) / sizeof(sizes[0]));
    int64_t m = test_pick(sizes, n_sizes), n = test_pick(sizes, n_sizes);
    int64_t k = test_pick(sizes, n_sizes);
    int batch = (int)(test_rand() % 4);
    int64_t bd[4] = {0};
    for (int d = 0; d < batch; d++)
        bd[d] = test_pick(batch_sizes + (test_rand() % 8 == 0 ? 0 : 1), 3);
    int a_batch = batch - (int)(test_rand() % (uint32_t)(batch + 1));
    int b_batch = batch - (int)(test_rand() % (uint32_t)(batch + 1));
    if (test_rand() % 2)
        a_batch = batch;
    else
        b_batch = batch;
    a->rank = 0;
    b->rank = 0;
    for (int d = batch - a_batch; d < batch; d++)
        a->dims[a->rank++] = test_rand() % 3 == 0 ? 1 : bd[d];
    for (int d = batch - b_batch; d < batch; d++)
        b->dims[b->rank++] = test_rand() % 3 == 0 ? 1 : bd[d];
    bool a_vec = batch == 0 && test_rand() % 5 == 0;
    bool b_vec = batch == 0 && test_rand() % 5 == 0;
    if (!a_vec)
        a->dims[a->rank++] = m;
    a->dims[a->rank++] = k;
    b->dims[b->rank++] = k;
    if (!b_vec)
        b->dims[b->rank++] = n;
}

/* Element index of an operand for output batch coordinates `coord` (over
 * out_batch dims), right-aligned, size-1 dims broadcast. */
static int64_t test_batch_index(const test_shape *t, int mat_dims, const int64_t *coord,
                                int out_batch)
{
    int tb = t->rank - mat_dims;
    int64_t idx = 0;
    for (int d = 0; d < tb; d++) {
        int od = d + (out_batch - tb);
        idx = idx * t->dims[d] + (t->dims[d] == 1 ? 0 : coord[od]);
    }
    return idx;
}

/* The plain numpy definition, in double, with the sum of |products| per
 * element as the rounding scale. */
static void test_naive(const test_shape *a, const double *av, const test_shape *b, const double *bv,
                       int y_rank, const int64_t *y_dims, double *y, double *scale)
{
    int am = a->rank >= 2 ? 2 : 1, bm = b->rank >= 2 ? 2 : 1;
    int64_t m = a->rank >= 2 ? a->dims[a->rank - 2] : 1, k = a->dims[a->rank - 1];
    int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int out_batch = y_rank - (a->rank >= 2) - (b->rank >= 2);
    int64_t batches = 1;
    for (int d = 0; d < out_batch; d++)
        batches *= y_dims[d];
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t coord[8], rest = bi;
        for (int d = out_batch - 1; d >= 0; d--) {
            coord[d] = rest % y_dims[d];
            rest /= y_dims[d];
        }
        const double *ap = av + test_batch_index(a, am, coord, out_batch) * m * k;
        const double *bp = bv + test_batch_index(b, bm, coord, out_batch) * k * n;
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                double s = 0.0, sa = 0.0;
                for (int64_t p = 0; p < k; p++) {
                    s += ap[i * k + p] * bp[p * n + j];
                    sa += fabs(ap[i * k + p] * bp[p * n + j]);
                }
                y[(bi * m + i) * n + j] = s;
                scale[(bi * m + i) * n + j] = sa;
            }
        }
    }
}

/* Runs one shape through every path in dtype, compares with the naive loop. */
static bool test_one(ogi_dtype dtype, const test_shape *a, const test_shape *b)
{
    int y_rank;
    int64_t y_dims[8];
    char sa[128], sb[128];
    if (!matmul_shape(a->rank, a->dims, b->rank, b->dims, &y_rank, y_dims)) {
        fprintf(stderr, "matmul_shape rejected %s x %s\n", test_shape_str(a, sa),
                test_shape_str(b, sb));
        return false;
    }
    int64_t na = test_numel(a), nb = test_numel(b), ny = 1;
    for (int d = 0; d < y_rank; d++)
        ny *= y_dims[d];
    size_t es = dtype == OGI_FLOAT32 ? sizeof(float) : sizeof(double);
    double *av = malloc((size_t)(na + 1) * sizeof(double));
    double *bv = malloc((size_t)(nb + 1) * sizeof(double));
    double *want = malloc((size_t)(ny + 1) * sizeof(double));
    double *scale = malloc((size_t)(ny + 1) * sizeof(double));
    void *ab = malloc((size_t)(na + 1) * es), *bb = malloc((size_t)(nb + 1) * es);
    void *y = malloc((size_t)(ny + 1) * es);
    for (int64_t i = 0; i < na; i++) {
        av[i] = (double)(int)(test_rand() % 2001 - 1000) / 256.0;
        if (dtype == OGI_FLOAT32)
            ((float *)ab)[i] = (float)av[i];
        else
            ((double *)ab)[i] = av[i];
    }
    for (int64_t i = 0; i < nb; i++) {
        bv[i] = (double)(int)(test_rand() % 2001 - 1000) / 256.0;
        if (dtype == OGI_FLOAT32)
            ((float *)bb)[i] = (float)bv[i];
        else
            ((double *)bb)[i] = bv[i];
    }
    test_naive(a, av, b, bv, y_rank, y_dims, want, scale);
    bool ok = true;
    for (int p = 0; p < TEST_PATHS * 2 && ok; p++) {
        int pi = p % TEST_PATHS;
        threadpool *pool = p < TEST_PATHS ? NULL : test_pool;
        if ((dtype == OGI_FLOAT64 && !test_paths[pi].f64) || !test_path_runs(test_paths[pi].path))
            continue;
        memset(y, 0xff, (size_t)(ny + 1) * es); /* NaN: catches unwritten elements */
        ok = matmul_float(dtype, ab, a->rank, a->dims, bb, b->rank, b->dims, y, test_paths[pi].path,
                          pool);
        double tol = dtype == OGI_FLOAT32 ? 1e-5 : 1e-12;
        for (int64_t i = 0; ok && i < ny; i++) {
            double got = dtype == OGI_FLOAT32 ? ((float *)y)[i] : ((double *)y)[i];
            if (!(fabs(got - want[i]) <= tol * (scale[i] + 1.0))) {
                fprintf(stderr, "%s path (%s), %s: %s x %s, element %lld: got %g, want %g\n",
                        test_paths[pi].name, pool ? "2 threads" : "inline", ogi_dtype_name(dtype),
                        test_shape_str(a, sa), test_shape_str(b, sb), (long long)i, got, want[i]);
                ok = false;
            }
        }
    }
    free(av);
    free(bv);
    free(want);
    free(scale);
    free(ab);
    free(bb);
    free(y);
    return ok;
}

/* ---- the kernels called directly ----------------------------------------- */

/* One run of a kernel: which, and on which pool. */
typedef struct test_kernel {
    const char *name;
    bool packed;
    gemm_isa isa; /* small kernel's */
    bool panels;  /* B pre-packed into panels (AVX-512 only) */
    bool stream;  /* ... and prefetched non-temporally */
} test_kernel;

static void test_kernel_run(const test_kernel *kern, const gemm_f32_args *g, threadpool *pool)
{
    if (kern->packed) {
        if (!gemm_packed_f32(g, pool))
            abort(); /* only called where the CPU has AVX-512 */
    } else {
        gemm_small_f32(g, kern->isa, pool);
    }
}

/* Y[m, n] (+)= A @ B with B stored [k, n] or [n, k] (b_trans), Y starting
 * from random values when accumulating, through every kernel that takes
 * the case, against the plain sum in double. */
static bool test_kernel_shape(int64_t m, int64_t n, int64_t k, bool b_trans, bool accumulate)
{
    static const test_kernel kernels[] = {
        {"packed", true, GEMM_ISA_AVX512, false, false},
        {"small AVX-512", false, GEMM_ISA_AVX512, false, false},
        {"small AVX2", false, GEMM_ISA_AVX2, false, false},
        {"small scalar", false, GEMM_ISA_SCALAR, false, false},
        {"packed, B in panels", true, GEMM_ISA_AVX512, true, false},
        {"small, B in panels", false, GEMM_ISA_AVX512, true, false},
        {"small, B in panels, streamed", false, GEMM_ISA_AVX512, true, true},
    };
    float *a = malloc((size_t)(m * k + 1) * sizeof(float));
    float *b = malloc((size_t)(k * n + 1) * sizeof(float));
    float *y0 = malloc((size_t)(m * n + 1) * sizeof(float));
    float *y = malloc((size_t)(m * n + 1) * sizeof(float));
    double *want = malloc((size_t)(m * n + 1) * sizeof(double));
    double *scale = malloc((size_t)(m * n + 1) * sizeof(double));
    for (int64_t i = 0; i < m * k; i++)
        a[i] = (float)((int)(test_rand() % 2001) - 1000) / 256.0f;
    for (int64_t i = 0; i < k * n; i++)
        b[i] = (float)((int)(test_rand() % 2001) - 1000) / 256.0f;
    for (int64_t i = 0; i < m * n; i++)
        y0[i] = accumulate ? (float)((int)(test_rand() % 2001) - 1000) / 16.0f : 0.0f;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double sum = y0[i * n + j], abs_sum = fabs(sum);
            for (int64_t p = 0; p < k; p++) {
                double v = (double)a[i * k + p] * b[b_trans ? j * k + p : p * n + j];
                sum += v;
                abs_sum += fabs(v);
            }
            want[i * n + j] = sum;
            scale[i * n + j] = abs_sum;
        }
    }
    gemm_f32_args g = {.m = m,
                       .n = n,
                       .k = k,
                       .a = a,
                       .lda = k,
                       .b = b,
                       .ldb = b_trans ? k : n,
                       .y = y,
                       .ldy = n,
                       .accumulate = accumulate,
                       .b_trans = b_trans};
    /* B's panels, with NaN past the end so that a kernel reading beyond the
     * last panel shows */
    size_t panel_floats = gemm_panels_floats(k, n);
    float *panels = aligned_alloc(64, (panel_floats + GEMM_PANEL * 16) * sizeof(float));
    for (size_t i = 0; i < panel_floats + GEMM_PANEL * 16; i++)
        panels[i] = NAN;
    if (b_trans) /* the panels of B = b^T, as a session packs a tied embedding */
        gemm_pack_panels_trans(b, k, n, k, 0, (n + GEMM_PANEL - 1) / GEMM_PANEL, panels);
    else
        gemm_pack_panels(b, k, n, n, 0, (n + GEMM_PANEL - 1) / GEMM_PANEL, panels);
    bool ok = true;
    for (size_t v = 0; v < sizeof(kernels) / sizeof(kernels[0]) * 2 && ok; v++) {
        const test_kernel *kern = &kernels[v / 2];
        threadpool *pool = v % 2 ? test_pool : NULL;
        if ((kern->packed ? GEMM_ISA_AVX512 : kern->isa) > gemm_isa_best() ||
            (b_trans && !kern->packed && !kern->panels))
            continue;
        for (int64_t i = 0; i < m * n; i++)
            y[i] = accumulate ? y0[i] : NAN; /* NaN: catches unwritten elements */
        g.b_panels = kern->panels ? panels : NULL;
        g.b_stream = kern->stream;
        test_kernel_run(kern, &g, pool);
        for (int64_t i = 0; ok && i < m * n; i++) {
            if (!(fabs(y[i] - want[i]) <= 1e-5 * (scale[i] + 1.0))) {
                fprintf(stderr,
                        "%s kernel (%s), [%lld,%lld] x [%lld,%lld]%s%s, element %lld: got %g, "
                        "want %g\n",
                        kern->name, pool ? "2 threads" : "inline", (long long)m, (long long)k,
                        (long long)k, (long long)n, b_trans ? " (B stored transposed)" : "",
                        accumulate ? " accumulated" : "", (long long)i, y[i], want[i]);
                ok = false;
            }
        }
    }
    free(a);
    free(b);
    free(y0);
    free(y);
    free(want);
    free(scale);
    free(panels);
    return ok;
}

/* Random and fixed shapes, both layouts of B, with and without
 * accumulation; the fixed ones cross the kernels' block sizes. */
/* gemm_small_f32_group: up to GEMM_GROUP_MAX products of one A by weights
 * in panels (a layer's Q, K, V), as one job, against the plain sum; inline
 * and on the pool, every row count the small kernel takes. */
static bool test_group(void)
{
    static const int64_t ns[] = {512, 128, 128, 33, 1, 700, 64, 96};
    for (int iter = 0; iter < 24; iter++) {
        int count = 1 + iter % GEMM_GROUP_MAX;
        int64_t m = 1 + (int64_t)(test_rand() % GEMM_SMALL_MAX_M), k = 1 + test_rand() % 300;
        float *a = malloc((size_t)(m * k) * sizeof(float));
        for (int64_t i = 0; i < m * k; i++)
            a[i] = (float)((int)(test_rand() % 2001) - 1000) / 256.0f;
        gemm_f32_args g[GEMM_GROUP_MAX];
        float *b[GEMM_GROUP_MAX], *panels[GEMM_GROUP_MAX];
        for (int i = 0; i < count; i++) {
            int64_t n = ns[(iter + i) % 8];
            b[i] = malloc((size_t)(k * n) * sizeof(float));
            for (int64_t j = 0; j < k * n; j++)
                b[i][j] = (float)((int)(test_rand() % 2001) - 1000) / 256.0f;
            panels[i] = aligned_alloc(64, gemm_panels_floats(k, n) * sizeof(float) + 64);
            gemm_pack_panels(b[i], k, n, n, 0, (n + GEMM_PANEL - 1) / GEMM_PANEL, panels[i]);
            g[i] = (gemm_f32_args){.m = m,
                                   .n = n,
                                   .k = k,
                                   .a = a,
                                   .lda = k,
                                   .b = b[i],
                                   .ldb = n,
                                   .y = malloc((size_t)(m * n) * sizeof(float)),
                                   .ldy = n,
                                   .b_panels = panels[i],
                                   .b_stream = iter % 3 == 0};
            for (int64_t j = 0; j < m * n; j++)
                g[i].y[j] = NAN;
        }
        gemm_small_f32_group(g, count, iter % 2 ? test_pool : NULL);
        bool ok = true;
        for (int i = 0; i < count && ok; i++)
            for (int64_t r = 0; r < m && ok; r++)
                for (int64_t j = 0; j < g[i].n && ok; j++) {
                    double sum = 0, abs_sum = 0;
                    for (int64_t p = 0; p < k; p++) {
                        double v = (double)a[r * k + p] * b[i][p * g[i].n + j];
                        sum += v;
                        abs_sum += fabs(v);
                    }
                    float got = g[i].y[r * g[i].n + j];
                    if (!(fabs(got - sum) <= 1e-5 * (abs_sum + 1.0))) {
                        fprintf(stderr,
                                "group of %d, product %d [%lld,%lld] x [%lld,%lld], element "
                                "(%lld, %lld): got %g, want %g\n",
                                count, i, (long long)m, (long long)k, (long long)k,
                                (long long)g[i].n, (long long)r, (long long)j, got, sum);
                        ok = false;
                    }
                }
        for (int i = 0; i < count; i++) {
            free(b[i]);
            free(panels[i]);
            free(g[i].y);
        }
        free(a);
        if (!ok)
            return false;
    }
    return true;
}

static bool test_kernels(void)
{
    static const int64_t fixed[][3] = {
        {1, 1, 1},
        {0, 5, 7},
        {5, 0, 7},
        {5, 7, 0},
        {15, 33, 17},
        {16, 64, 16},
        {28, 31, 193},
        {30, 97, 400},
        {200, 40, 33},
        {3, 700, 301},
        {1, 600, 576},
        {13, 35, 385},
        {57, 129, 16},
        {520, 20, 33},
        /* panels: partial groups and panels, k blocks, threaded units */
        {1, 33, 1000},
        {16, 200, 300},
        {7, 1000, 130},
        {1, 4100, 64},
        {4, 97, 257},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        for (int c = 0; c < 4; c++)
            if (!test_kernel_shape(fixed[i][0], fixed[i][1], fixed[i][2], c & 1, c & 2))
                return false;
    static const int64_t sizes[] = {1, 2, 3, 5, 13, 14, 15, 16, 17, 28, 31, 32, 33, 47, 64, 65};
    int n_sizes = (int)(sizeof(sizes) / sizeof(sizes[0]));
    for (int iter = 0; iter < 200; iter++) {
        int64_t m = test_pick(sizes, n_sizes), n = test_pick(sizes, n_sizes);
        int64_t k = test_pick(sizes, n_sizes) * (test_rand() % 4 == 0 ? 7 : 1);
        if (!test_kernel_shape(m, n, k, test_rand() % 2, test_rand() % 2))
            return false;
    }
    return true;
}

/* Shapes that must be rejected. */
static bool test_rejects(void)
{
    static const struct {
        int ar;
        int64_t ad[4];
        int br;
        int64_t bd[4];
    } bad[] = {
        {2, {3, 4}, 2, {5, 6}},       /* inner dims differ */
        {3, {2, 3, 4}, 3, {3, 4, 5}}, /* batch 2 vs 3 */
        {1, {4}, 1, {5}},             /* vector lengths differ */
        {0, {0}, 2, {1, 1}},          /* scalar operand */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int yr;
        int64_t yd[8];
        if (matmul_shape(bad[i].ar, bad[i].ad, bad[i].br, bad[i].bd, &yr, yd)) {
            fprintf(stderr, "matmul_shape accepted bad case %zu\n", i);
            return false;
        }
    }
    return true;
}

/* A few shapes spelled out, so the edge cases run whatever the random draw. */
static bool test_fixed(void)
{
    static const test_shape fixed[][2] = {
        {{1, {7}}, {1, {7}}},                    /* dot product: scalar out */
        {{1, {5}}, {3, {2, 5, 3}}},              /* 1-D A, batched B */
        {{4, {1, 2, 65, 33}}, {1, {33}}},        /* batched A, 1-D B */
        {{3, {3, 1, 17}}, {4, {2, 1, 17, 31}}},  /* m = 1, broadcast both ways */
        {{2, {0, 5}}, {2, {5, 7}}},              /* m = 0 */
        {{2, {6, 0}}, {2, {0, 9}}},              /* k = 0: all zeros */
        {{3, {0, 4, 5}}, {2, {5, 3}}},           /* zero batch */
        {{3, {4, 64, 65}}, {2, {65, 63}}},       /* batches stack into one GEMM */
        {{4, {2, 3, 33, 17}}, {3, {3, 17, 31}}}, /* B broadcast over the outer batch */
        {{3, {1, 1, 576}}, {2, {576, 520}}},     /* decode: B over 1 MiB, threaded strips */
        {{3, {3, 1, 301}}, {2, {301, 1001}}},    /* 3 sequences, odd sizes */
        {{2, {9, 400}}, {2, {400, 700}}},        /* packed: k blocks, many column units */
        {{2, {521, 33}}, {2, {33, 97}}},         /* packed: two row blocks, edge tiles */
        {{2, {40, 1}}, {2, {1, 1000}}},          /* k = 1 */
        {{2, {200, 40}}, {2, {40, 33}}},         /* packed: few panels, threads split rows */
        {{3, {2, 9, 20}}, {3, {2, 20, 70}}},     /* packed per batch matrix */
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (!test_one(OGI_FLOAT32, &fixed[i][0], &fixed[i][1]) ||
            !test_one(OGI_FLOAT64, &fixed[i][0], &fixed[i][1]))
            return false;
    return true;
}

int main(void)
{
    if (threadpool_create(2, &test_pool) != OGI_OK)
        return 1;
    printf("test_matmul: fastest kernels %s\n", gemm_isa_best() == GEMM_ISA_AVX512 ? "AVX-512"
                                                : gemm_isa_best() == GEMM_ISA_AVX2 ? "AVX2"
                                                                                   : "scalar");
    if (!test_rejects() || !test_fixed() || !test_kernels() ||
        (gemm_isa_best() == GEMM_ISA_AVX512 && !test_group()))
        return 1;
    for (int iter = 0; iter < 300; iter++) {
        test_shape a, b;
        test_random_shapes(&a, &b);
        ogi_dtype t = iter % 3 == 0 ? OGI_FLOAT64 : OGI_FLOAT32;
        if (!test_one(t, &a, &b))
            return 1;
    }
    threadpool_free(test_pool);
    printf("test_matmul: ok\n");
    return 0;
}
