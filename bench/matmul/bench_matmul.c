/* MatMul throughput on the shapes of small LLMs (SmolLM-135M: hidden 576,
 * MLP 1536, vocabulary 49152; the bundled docstring-llama: 256 and 704),
 * float32, Y[M, N] = A[M, K] @ B[K, N] with B a row-major weight.
 *
 *   decode   M = 1 and 4: GB/s of B read per call. "mem" columns read B
 *            from memory (each call takes the next of several copies that
 *            together dwarf the caches), as a real model's decode does;
 *            %BW is ogi's speed over that of a plain streaming read of the
 *            same bytes on the same threads, timed in the same turns. "hot"
 *            columns reuse one copy (L2/L3-resident).
 *   prefill  M = 128 and 512: GFLOP/s, 2 M N K flops per call.
 *
 * Columns: ogi is the fast kernel (gemm_small for decode, gemm_packed for
 * prefill), panels the same kernel reading B pre-packed as a session packs
 * its weights at load (AVX-512), BLAS OpenBLAS's cblas_sgemm (its own threads), ref the plain
 * reference loop (prefill: timed on 4 rows of A); auto names the path
 * MatMul picks for the shape. All use 2 threads unless --threads N. Each
 * number is a median over calls taken in turns (see bench_time); |diff| is
 * the largest difference of ogi from OpenBLAS relative to the largest |Y|.
 *
 * usage: bench_matmul [--threads N] [--decode | --prefill] [--budget SECONDS] */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "ops/gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

enum { BENCH_MAX_RUNS = 2000, BENCH_MAX_CALLS = 5, BENCH_ROUNDS = 5 };

/* Weights of the "mem" columns: a pool of this many bytes, several times
 * the L3 cache. */
#define BENCH_POOL_BYTES ((size_t)256 << 20)

typedef struct bench_kn {
    int64_t k, n;
} bench_kn;

static const bench_kn bench_kns[] = {{576, 576},   {576, 1536}, {1536, 576},
                                     {576, 49152}, {256, 704},  {704, 256}};
#define BENCH_KNS (int)(sizeof(bench_kns) / sizeof(bench_kns[0]))

typedef struct bench_opts {
    int threads;
    bool decode, prefill;
    double budget; /* seconds per measurement */
} bench_opts;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *bench_alloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(1);
    }
    return p;
}

static void bench_fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(seed >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
    }
}

/* ---- streaming-read bandwidth --------------------------------------------- */

typedef struct bench_bw {
    const float *data;
    int64_t chunk; /* floats per item */
    float sink[64];
} bench_bw;

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f"))) static void bench_bw_read(void *arg, int64_t begin, int64_t end)
{
    bench_bw *bw = arg;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (const float *p = bw->data + begin * bw->chunk, *e = bw->data + end * bw->chunk; p < e;
         p += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + 48));
    }
    s0 = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    bw->sink[begin % 64] = _mm512_reduce_add_ps(s0);
}
#else
static void bench_bw_read(void *arg, int64_t begin, int64_t end)
{
    bench_bw *bw = arg;
    float s = 0;
    for (const float *p = bw->data + begin * bw->chunk, *e = bw->data + end * bw->chunk; p < e; p++)
        s += *p;
    bw->sink[begin % 64] = s;
}
#endif

/* Best of five reads of the whole pool, split over the threads. */
static double bench_bandwidth(const float *data, size_t bytes, threadpool *pool)
{
    bench_bw bw = {.data = data, .chunk = 1 << 16};
    int64_t items = (int64_t)(bytes / sizeof(float)) / bw.chunk;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = bench_now();
        threadpool_parallel_for(pool, items, 1, bench_bw_read, &bw);
        double gbs = (double)items * (double)bw.chunk * sizeof(float) / (bench_now() - t0) * 1e-9;
        best = gbs > best ? gbs : best;
    }
    return best;
}

/* ---- timing --------------------------------------------------------------- */

typedef enum bench_kind {
    BENCH_OGI,    /* matmul_float on `path` */
    BENCH_PANELS, /* the same kernel on B pre-packed as panels (AVX-512) */
    BENCH_BLAS,   /* cblas_sgemm */
    BENCH_READ,   /* no product: a streaming read of B on the pool */
} bench_kind;

/* One product to time: which implementation, and where its operands are. */
typedef struct bench_call {
    int64_t m, k, n;
    const float *a;
    const float *b;      /* first copy */
    const float *panels; /* first copy of B as panels (BENCH_PANELS) */
    int64_t copies;      /* copies of B, K * N floats apart, used in turn */
    float *y;
    matmul_path path;
    bench_kind kind;
    threadpool *pool;
    int64_t next;
} bench_call;

static void bench_run(bench_call *c)
{
    const float *b = c->b + (c->next++ % c->copies) * c->k * c->n;
    if (c->kind == BENCH_READ) {
        bench_bw bw = {.data = b, .chunk = 1024};
        threadpool_parallel_for(c->pool, c->k * c->n / bw.chunk, 1, bench_bw_read, &bw);
        return;
    }
    if (c->kind == BENCH_BLAS) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->m, (int)c->n, (int)c->k,
                    1.0f, c->a, (int)c->k, b, (int)c->n, 0.0f, c->y, (int)c->n);
        return;
    }
    if (c->kind == BENCH_PANELS) {
        gemm_f32_args f = {.m = c->m,
                           .n = c->n,
                           .k = c->k,
                           .a = c->a,
                           .lda = c->k,
                           .b = b,
                           .ldb = c->n,
                           .y = c->y,
                           .ldy = c->n,
                           .b_panels = c->panels + ((c->next - 1) % c->copies) *
                                                       (int64_t)gemm_panels_floats(c->k, c->n)};
        if (c->m <= GEMM_SMALL_MAX_M)
            gemm_small_f32(&f, GEMM_ISA_AVX512, c->pool);
        else if (!gemm_packed_f32(&f, c->pool))
            abort();
        return;
    }
    int64_t a_dims[2] = {c->m, c->k}, b_dims[2] = {c->k, c->n};
    if (!matmul_float(OGI_FLOAT32, c->a, 2, a_dims, b, 2, b_dims, c->y, c->path, c->pool))
        abort();
}

/* OpenBLAS's threads spin for a while after a call; what runs next on the
 * two cores would compete with them. */
static void bench_settle(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Median seconds per call of each of n calls. They take turns, in
 * BENCH_ROUNDS rounds of budget / BENCH_ROUNDS seconds each (at least one
 * call after a warm-up), so that bursts of other work on the machine hit
 * them alike. */
static void bench_time(bench_call *calls, int n, double budget, double *median)
{
    static double times[BENCH_MAX_CALLS][BENCH_MAX_RUNS];
    int count[BENCH_MAX_CALLS] = {0};
    bool after_blas = true;
    for (int round = 0; round < BENCH_ROUNDS; round++) {
        for (int v = 0; v < n; v++) {
            if (after_blas)
                bench_settle();
            bench_run(&calls[v]);
            double spent = 0.0, slice = budget / BENCH_ROUNDS;
            do {
                double t0 = bench_now();
                bench_run(&calls[v]);
                double t = bench_now() - t0;
                spent += t;
                if (count[v] < BENCH_MAX_RUNS)
                    times[v][count[v]++] = t;
            } while (spent < slice);
            after_blas = calls[v].kind == BENCH_BLAS;
        }
    }
    for (int v = 0; v < n; v++) {
        qsort(times[v], (size_t)count[v], sizeof(double), bench_cmp);
        median[v] = times[v][count[v] / 2];
    }
}

/* Largest |x - y| over the largest |y|. */
static double bench_diff(const float *x, const float *y, int64_t n)
{
    double d = 0, top = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)x[i] - y[i]));
        top = fmax(top, fabs((double)y[i]));
    }
    return d / top;
}

/* ---- tables --------------------------------------------------------------- */

typedef struct bench_env {
    bench_opts o;
    threadpool *pool;
    float *weights; /* BENCH_POOL_BYTES of random floats */
    float *panels;  /* the copies of the current shape's B, as panels */
    float *a;       /* 512 x 1536 */
    float *y[3];    /* 512 x 49152 for ogi and BLAS, 16 x 49152 for ref */
    double bandwidth;
} bench_env;

static const char *bench_path_name(matmul_path p)
{
    switch (p) {
    case MATMUL_REFERENCE:
        return "ref";
    case MATMUL_BLAS:
        return "BLAS";
    case MATMUL_PACKED:
        return "packed";
    default:
        return "small";
    }
}

static matmul_path bench_small_path(void)
{
    gemm_isa isa = gemm_isa_best();
    return isa == GEMM_ISA_AVX512 ? MATMUL_SMALL_AVX512
           : isa == GEMM_ISA_AVX2 ? MATMUL_SMALL_AVX2
                                  : MATMUL_SMALL_SCALAR;
}

/* Packs each of the first `copies` copies of a [k, n] B in the pool. */
static void bench_pack(bench_env *e, bench_kn s, int64_t copies)
{
    size_t floats = gemm_panels_floats(s.k, s.n);
    for (int64_t c = 0; c < copies; c++)
        gemm_pack_panels(e->weights + c * s.k * s.n, s.k, s.n, s.n, 0,
                         (s.n + GEMM_PANEL - 1) / GEMM_PANEL, e->panels + (size_t)c * floats);
}

/* Decode: B from memory (ogi, BLAS, ref, ogi on panels), then cached (ogi,
 * BLAS, ogi on panels). */
static void bench_decode_row(bench_env *e, int64_t m, bench_kn s)
{
    size_t b_floats = (size_t)(s.k * s.n);
    int64_t copies = (int64_t)(BENCH_POOL_BYTES / sizeof(float) / b_floats);
    bool panels = gemm_isa_best() == GEMM_ISA_AVX512;
    if (panels)
        bench_pack(e, s, copies);
    double gb = (double)b_floats * sizeof(float) * 1e-9;
    bench_call ogi = {.m = m,
                      .k = s.k,
                      .n = s.n,
                      .a = e->a,
                      .b = e->weights,
                      .copies = copies,
                      .y = e->y[0],
                      .path = bench_small_path(),
                      .pool = e->pool};
    bench_call mem[5] = {ogi, ogi, ogi, ogi, ogi};
    mem[1].kind = BENCH_BLAS;
    mem[1].y = e->y[1];
    mem[2].path = MATMUL_REFERENCE;
    mem[2].y = e->y[2];
    mem[3].kind = BENCH_READ;
    mem[4].kind = BENCH_PANELS;
    mem[4].panels = e->panels;
    mem[4].y = e->y[2];
    double t[5] = {0}, hot[3] = {0};
    bench_time(mem, panels ? 5 : 4, e->o.budget, t);
    bench_call cached[3] = {mem[0], mem[1], mem[4]};
    cached[0].copies = cached[1].copies = cached[2].copies = 1;
    bench_time(cached, panels ? 3 : 2, e->o.budget, hot);
    /* all three products of the cached runs are of the first copy */
    double diff_panels = panels ? bench_diff(e->y[2], e->y[1], m * s.n) : 0;
    double diff = bench_diff(e->y[0], e->y[1], m * s.n);
    diff = diff > diff_panels ? diff : diff_panels;
    printf("%4lld x %5lld x %5lld  %7.1f %7.1f %7.1f %6.2f %6.1f %5.0f%%  %7.1f %7.1f %6.2f  %7.1f "
           "%5.0f%% %7.1f  %-6s %.1e\n",
           (long long)m, (long long)s.k, (long long)s.n, gb / t[0], gb / t[1], gb / t[2],
           t[1] / t[0], t[2] / t[0], 100.0 * t[3] / t[0], gb / hot[0], gb / hot[1], hot[1] / hot[0],
           panels ? gb / t[4] : NAN, panels ? 100.0 * t[3] / t[4] : NAN, panels ? gb / hot[2] : NAN,
           bench_path_name(matmul_auto_path(m, s.n, s.k)), diff);
}

/* Prefill: the packed GEMM, BLAS, and the reference on 4 rows of A. */
static void bench_prefill_row(bench_env *e, int64_t m, bench_kn s)
{
    double flops = 2.0 * (double)m * (double)s.k * (double)s.n;
    bench_call c[4] = {{.m = m,
                        .k = s.k,
                        .n = s.n,
                        .a = e->a,
                        .b = e->weights,
                        .copies = 1,
                        .y = e->y[0],
                        .path = MATMUL_PACKED,
                        .pool = e->pool}};
    c[1] = c[0];
    c[1].kind = BENCH_BLAS;
    c[1].y = e->y[1];
    c[2] = c[0];
    c[2].path = MATMUL_REFERENCE;
    c[2].m = 4;
    c[2].y = e->y[2];
    c[3] = c[0];
    c[3].kind = BENCH_PANELS;
    c[3].panels = e->panels;
    double t[4] = {NAN, NAN, NAN, NAN};
    int first = gemm_isa_best() == GEMM_ISA_AVX512 ? 0 : 1;
    if (!first)
        bench_pack(e, s, 1);
    bench_time(c + first, first ? 2 : 4, e->o.budget, t + first);
    t[2] *= (double)m / 4.0;
    double diff = bench_diff(e->y[0], e->y[1], m * s.n);
    printf("%4lld x %5lld x %5lld  %7.1f %7.1f %7.2f %6.2f %6.1f  %7.1f  %-6s %.1e\n", (long long)m,
           (long long)s.k, (long long)s.n, flops / t[0] * 1e-9, flops / t[1] * 1e-9,
           flops / t[2] * 1e-9, t[1] / t[0], t[2] / t[0], flops / t[3] * 1e-9,
           bench_path_name(matmul_auto_path(m, s.n, s.k)), diff);
}

static void bench_tables(bench_env *e)
{
    if (e->o.decode) {
        printf("\ndecode: GB/s of B (mem: from memory; hot: cached)\n");
        printf(
            "   M x     K x     N      ogi    BLAS     ref   ogi/  ogi/    %%BW      ogi    BLAS  "
            "ogi/   panels    %%BW  panels  auto   |diff|\n");
        printf(
            "                          mem     mem     mem   BLAS   ref    mem      hot     hot  "
            "BLAS      mem    mem     hot\n");
        for (int m = 1; m <= 4; m += 3)
            for (int i = 0; i < BENCH_KNS; i++)
                bench_decode_row(e, m, bench_kns[i]);
    }
    if (e->o.prefill) {
        printf("\nprefill: GFLOP/s\n");
        printf("   M x     K x     N      ogi    BLAS     ref   ogi/   ogi/   panels  auto   "
               "|diff|\n");
        printf("                       packed                  BLAS    ref\n");
        for (int m = 128; m <= 512; m *= 4)
            for (int i = 0; i < BENCH_KNS; i++)
                bench_prefill_row(e, m, bench_kns[i]);
    }
}

static bool bench_parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.threads = 2, .decode = true, .prefill = true, .budget = 0.3};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            o->threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc)
            o->budget = atof(argv[++i]);
        else if (strcmp(argv[i], "--decode") == 0)
            o->prefill = false;
        else if (strcmp(argv[i], "--prefill") == 0)
            o->decode = false;
        else
            return false;
    }
    return o->threads >= 1 && o->budget > 0;
}

int main(int argc, char **argv)
{
    bench_env e = {0};
    if (!bench_parse(argc, argv, &e.o)) {
        fprintf(stderr, "usage: bench_matmul [--threads N] [--decode | --prefill] "
                        "[--budget SECONDS]\n");
        return 2;
    }
    if (threadpool_create(e.o.threads, &e.pool) != OGI_OK)
        return 1;
    openblas_set_num_threads(e.o.threads);
    e.weights = bench_alloc(BENCH_POOL_BYTES);
    e.panels = bench_alloc(BENCH_POOL_BYTES / 8 * 9); /* room for padded panels */
    e.a = bench_alloc(512 * 1536 * sizeof(float));
    e.y[0] = bench_alloc(512 * 49152 * sizeof(float));
    e.y[1] = bench_alloc(512 * 49152 * sizeof(float));
    e.y[2] = bench_alloc(16 * 49152 * sizeof(float));
    bench_fill(e.weights, BENCH_POOL_BYTES / sizeof(float), 1);
    bench_fill(e.a, 512 * 1536, 2);
    memset(e.y[0], 0, 512 * 49152 * sizeof(float));
    memset(e.y[1], 0, 512 * 49152 * sizeof(float));
    threadpool *one;
    if (threadpool_create(1, &one) != OGI_OK)
        return 1;
    double bw1 = bench_bandwidth(e.weights, BENCH_POOL_BYTES, one);
    e.bandwidth = bench_bandwidth(e.weights, BENCH_POOL_BYTES, e.pool);
    threadpool_free(one);
    const char *isa = gemm_isa_best() == GEMM_ISA_AVX512 ? "AVX-512"
                      : gemm_isa_best() == GEMM_ISA_AVX2 ? "AVX2"
                                                         : "scalar";
    printf("bench_matmul: %d threads, %s kernels; streaming read %.1f GB/s (1 thread %.1f)\n",
           e.o.threads, isa, e.bandwidth, bw1);
    bench_tables(&e);
    free(e.weights);
    free(e.panels);
    free(e.a);
    free(e.y[0]);
    free(e.y[1]);
    free(e.y[2]);
    threadpool_free(e.pool);
    return 0;
}
