/* Attention throughput on LLM shapes (batch 1, 32 query heads, 8 KV heads,
 * head size 128): decode (one query over 512 / 2048 / 8192 keys) and causal
 * prefill (512 / 2048 queries over as many keys). Columns, in GFLOP/s
 * counting 4 * batch * heads * q * total * head flops (causal or not):
 *
 *   ref    the reference kernel (double precision; timed on one KV group when
 *          the full shape would take too long: its rate does not depend on
 *          the head count)
 *   fast   the fast kernel, called directly
 *   op     the same through an ogi session running a one-node model
 *   ORT    ONNX Runtime's Attention (opset 23) on that model, loaded with
 *          dlopen from deps/onnxruntime/lib/libonnxruntime.so.1 or
 *          $OGI_ORT_LIBRARY; skipped when missing
 *
 * Each figure is the best of the runs made in about a second. ogi and ORT
 * both use 2 threads (--threads N changes it; --row K runs one row).
 * fast/ORT compares the op column (session against session); |op-ORT| is the
 * largest output difference.
 *
 * A second table puts the int8 kernel (attention_int8.c) beside the fast one
 * on decode and causal prefill up to 8,192 keys, with the cosine similarity
 * of their outputs (--int8 prints only that table). */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "ogi.h"
#include "ops/attention.h"
#include "pb_writer.h"

#ifdef OGI_BENCH_HAVE_ORT_HEADERS
#include "onnxruntime_c_api.h"
#endif

#ifndef OGI_BENCH_ORT_DEFAULT
#define OGI_BENCH_ORT_DEFAULT "deps/onnxruntime/lib/libonnxruntime.so.1"
#endif

enum { BENCH_Q_HEADS = 32, BENCH_KV_HEADS = 8, BENCH_DIM = 128, BENCH_MAX_RUNS = 200 };

typedef struct bench_shape {
    const char *kind;
    int64_t q_len, total;
    bool causal;
} bench_shape;

static const bench_shape bench_shapes[] = {
    {"decode", 1, 512, false},   {"decode", 1, 2048, false},    {"decode", 1, 8192, false},
    {"prefill", 512, 512, true}, {"prefill", 2048, 2048, true},
};

typedef void (*bench_fn)(void *arg);

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The fastest of the calls of fn made over about `budget` seconds (at least
 * 3 after a warm-up, unless one call already exceeds the budget): on a
 * shared machine the best time is the one least disturbed by others. */
static double bench_time(bench_fn fn, void *arg, double budget)
{
    double t0 = bench_now();
    fn(arg);
    const double first = bench_now() - t0;
    if (first > budget)
        return first;
    double best = first, spent = 0.0;
    for (int n = 0; n < BENCH_MAX_RUNS && (spent < budget || n < 3); n++) {
        t0 = bench_now();
        fn(arg);
        const double t = bench_now() - t0;
        best = t < best ? t : best;
        spent += t;
    }
    return best;
}

static float *bench_random(int64_t n, uint64_t *seed)
{
    float *x = calloc((size_t)n, sizeof(float));
    if (x == NULL)
        abort();
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(*seed >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
    }
    return x;
}

/* One shape's inputs, float32 [1, heads, seq, 128]. */
typedef struct bench_inputs {
    const bench_shape *shape;
    float *q, *k, *v;
    int64_t q_dims[4], kv_dims[4];
    threadpool *pool;
} bench_inputs;

static attention_params bench_params(const bench_shape *s, int64_t q_heads, int64_t kv_heads)
{
    attention_params p = attention_default_params();
    p.batch = 1;
    p.q_heads = q_heads;
    p.kv_heads = kv_heads;
    p.q_len = s->q_len;
    p.total_len = s->total;
    p.qk_dim = p.v_dim = BENCH_DIM;
    p.scale = 1.0 / sqrt((double)BENCH_DIM);
    p.causal = s->causal;
    return p;
}

/* ---- ogi's kernels ------------------------------------------------------------ */

typedef struct bench_fast {
    attention_params p;
    attention_fast_data d;
    threadpool *pool;
    bool int8;   /* the int8 kernel instead */
    bool option; /* what the attention=int8 option runs (attention_run_chosen) */
} bench_fast;

static void bench_fast_run(void *arg)
{
    bench_fast *f = arg;
    ogi_status st = f->option ? attention_run_chosen(OGI_ATTENTION_INT8, f->pool, &f->p, &f->d)
                    : f->int8 ? attention_int8(f->pool, &f->p, &f->d, ATTENTION_INT8_AUTO)
                              : attention_fast(f->pool, &f->p, &f->d, ATTENTION_ISA_AUTO);
    if (st != OGI_OK)
        abort();
}

/* which: 0 the fast kernel, 1 the int8 kernel, 2 the attention=int8 option */
static double bench_kernel_seconds(const bench_inputs *in, float *y, int which)
{
    const int64_t q = in->shape->q_len, t = in->shape->total, d = BENCH_DIM;
    bench_fast f = {.p = bench_params(in->shape, BENCH_Q_HEADS, BENCH_KV_HEADS), .pool = in->pool};
    f.d.q = (attention_view){in->q, BENCH_Q_HEADS * q * d, q * d, d};
    f.d.k[0] = f.d.k[1] = (attention_view){in->k, BENCH_KV_HEADS * t * d, t * d, d};
    f.d.v[0] = f.d.v[1] = (attention_view){in->v, BENCH_KV_HEADS * t * d, t * d, d};
    f.d.split = t;
    f.d.y = y;
    f.d.y_strides[0] = BENCH_Q_HEADS * q * d;
    f.d.y_strides[1] = q * d;
    f.d.y_strides[2] = d;
    f.int8 = which == 1;
    f.option = which == 2;
    return bench_time(bench_fast_run, &f, 1.0);
}

static double bench_fast_seconds(const bench_inputs *in, float *y)
{
    return bench_kernel_seconds(in, y, 0);
}

typedef struct bench_ref {
    attention_params p;
    attention_data d;
    threadpool *pool;
} bench_ref;

static void bench_ref_run(void *arg)
{
    bench_ref *r = arg;
    if (attention_reference_run(r->pool, &r->p, &r->d) != OGI_OK)
        abort();
}

static double *bench_doubles(const float *x, int64_t n)
{
    double *y = malloc(sizeof(double) * (size_t)n);
    if (y == NULL)
        abort();
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

/* The reference's GFLOP/s, on one KV group (4 query heads) when the whole
 * shape is over 4 GFLOP; *partial says so. */
static double bench_ref_gflops(const bench_inputs *in, bool *partial)
{
    const int64_t q = in->shape->q_len, t = in->shape->total, d = BENCH_DIM;
    const double full = 4.0 * BENCH_Q_HEADS * (double)q * (double)t * d;
    *partial = full > 4e9;
    const int64_t kv_heads = *partial ? 1 : BENCH_KV_HEADS;
    const int64_t q_heads = kv_heads * (BENCH_Q_HEADS / BENCH_KV_HEADS);
    bench_ref r = {.p = bench_params(in->shape, q_heads, kv_heads), .pool = in->pool};
    double *qd = bench_doubles(in->q, q_heads * q * d),
           *kd = bench_doubles(in->k, kv_heads * t * d);
    double *vd = bench_doubles(in->v, kv_heads * t * d);
    double *yd = malloc(sizeof(double) * (size_t)(q_heads * q * d));
    if (yd == NULL)
        abort();
    r.d = (attention_data){qd, kd, vd, NULL, {0}, t, yd, NULL};
    double seconds = bench_time(bench_ref_run, &r, 2.0);
    free(qd);
    free(kd);
    free(vd);
    free(yd);
    return 4.0 * (double)q_heads * (double)q * (double)t * d / seconds * 1e-9;
}

/* ---- the model, for ogi sessions and ORT ------------------------------------------ */

static void bench_model(const bench_shape *s, pbw *out)
{
    pbw g = {0}, node = {0};
    const int64_t q_dims[4] = {1, BENCH_Q_HEADS, s->q_len, BENCH_DIM};
    const int64_t kv_dims[4] = {1, BENCH_KV_HEADS, s->total, BENCH_DIM};
    const char *in[3] = {"Q", "K", "V"}, *outs[1] = {"Y"};
    pbw_node_begin(&node, "Attention", "attention", 3, in, 1, outs);
    pbw_attr_int(&node, "is_causal", s->causal ? 1 : 0);
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "attention");
    pbw_value_info(&g, 11, "Q", OGI_FLOAT32, 4, q_dims);
    pbw_value_info(&g, 11, "K", OGI_FLOAT32, 4, kv_dims);
    pbw_value_info(&g, 11, "V", OGI_FLOAT32, 4, kv_dims);
    pbw_value_info(&g, 12, "Y", OGI_FLOAT32, 4, q_dims);
    pbw_model(out, 10, 23, &g);
}

typedef struct bench_session {
    ogi_session *s;
    ogi_tensor *in[3];
    float *y; /* a copy of the output when keep (outside the timed runs) */
    size_t y_bytes;
    bool keep;
} bench_session;

static void bench_session_run(void *arg)
{
    bench_session *b = arg;
    static const char *const names[3] = {"Q", "K", "V"}, *out_name = "Y";
    ogi_tensor *y = NULL;
    if (ogi_session_run(b->s, 3, names, (const ogi_tensor *const *)b->in, 1, &out_name, &y) !=
        OGI_OK) {
        fprintf(stderr, "ogi: %s\n", ogi_last_error());
        abort();
    }
    if (b->keep)
        memcpy(b->y, ogi_tensor_data(y), b->y_bytes);
    ogi_tensor_free(y);
}

static ogi_tensor *bench_tensor(const int64_t *dims, const float *data)
{
    ogi_tensor *t;
    if (ogi_tensor_create(OGI_FLOAT32, 4, dims, &t) != OGI_OK)
        abort();
    memcpy(ogi_tensor_data(t), data, ogi_tensor_nbytes(t));
    return t;
}

/* Seconds per run of the model in an ogi session; y gets its output. */
static double bench_session_seconds(const bench_inputs *in, const pbw *model, int threads, float *y)
{
    char path[] = "/tmp/ogi_bench_attention_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, model->data, model->len) != (ssize_t)model->len)
        abort();
    close(fd);
    ogi_session_options o = ogi_session_default_options();
    o.threads = threads;
    bench_session b = {0};
    if (ogi_session_open(path, &o, &b.s) != OGI_OK) {
        fprintf(stderr, "ogi: %s\n", ogi_last_error());
        abort();
    }
    b.in[0] = bench_tensor(in->q_dims, in->q);
    b.in[1] = bench_tensor(in->kv_dims, in->k);
    b.in[2] = bench_tensor(in->kv_dims, in->v);
    b.y = y;
    b.y_bytes = sizeof(float) * BENCH_Q_HEADS * (size_t)(in->shape->q_len * BENCH_DIM);
    double seconds = bench_time(bench_session_run, &b, 1.0);
    b.keep = true;
    bench_session_run(&b);
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(b.in[i]);
    ogi_session_free(b.s);
    remove(path);
    return seconds;
}

/* ---- ONNX Runtime ------------------------------------------------------------------ */

#ifdef OGI_BENCH_HAVE_ORT_HEADERS
typedef struct bench_ort {
    const OrtApi *api;
    OrtEnv *env;
    OrtSession *session;
    OrtValue *in[3];
    float *y; /* a copy of the output when keep (outside the timed runs) */
    size_t y_bytes;
    bool keep;
} bench_ort;

static const OrtApi *bench_ort_api(void)
{
    const char *path = getenv("OGI_ORT_LIBRARY");
    void *lib = dlopen(path != NULL && path[0] ? path : OGI_BENCH_ORT_DEFAULT, RTLD_NOW);
    if (lib == NULL) {
        printf("ONNX Runtime not loaded (%s): its columns are skipped\n", dlerror());
        return NULL;
    }
    const OrtApiBase *(*get_base)(void) =
        (const OrtApiBase *(*)(void))(uintptr_t)dlsym(lib, "OrtGetApiBase");
    const OrtApi *api = get_base != NULL ? get_base()->GetApi(ORT_API_VERSION) : NULL;
    if (api == NULL)
        printf("ONNX Runtime: no API version %d: its columns are skipped\n", ORT_API_VERSION);
    else
        printf("ONNX Runtime %s\n", get_base()->GetVersionString());
    return api;
}

static bool bench_ort_ok(const OrtApi *api, OrtStatus *st)
{
    if (st == NULL)
        return true;
    printf("ONNX Runtime: %s\n", api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    return false;
}

static void bench_ort_run(void *arg)
{
    bench_ort *o = arg;
    static const char *const names[3] = {"Q", "K", "V"}, *out_name = "Y";
    OrtValue *y = NULL;
    if (!bench_ort_ok(o->api, o->api->Run(o->session, NULL, names, (const OrtValue *const *)o->in,
                                          3, &out_name, 1, &y)))
        abort();
    float *data = NULL;
    if (!bench_ort_ok(o->api, o->api->GetTensorMutableData(y, (void **)&data)))
        abort();
    if (o->keep)
        memcpy(o->y, data, o->y_bytes);
    o->api->ReleaseValue(y);
}

static bool bench_ort_session(bench_ort *o, const pbw *model, int threads)
{
    const OrtApi *api = o->api;
    OrtSessionOptions *so = NULL;
    bool ok = bench_ort_ok(api, api->CreateSessionOptions(&so)) &&
              bench_ort_ok(api, api->SetIntraOpNumThreads(so, threads)) &&
              bench_ort_ok(api, api->SetInterOpNumThreads(so, 1)) &&
              bench_ort_ok(api, api->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL)) &&
              bench_ort_ok(api, api->CreateSessionFromArray(o->env, model->data, model->len, so,
                                                            &o->session));
    if (so != NULL)
        api->ReleaseSessionOptions(so);
    return ok;
}

/* Seconds per Run of the model in ORT, or -1 when it cannot run it. */
static double bench_ort_seconds(const OrtApi *api, const bench_inputs *in, const pbw *model,
                                int threads, float *y)
{
    bench_ort o = {.api = api, .y = y};
    o.y_bytes = sizeof(float) * BENCH_Q_HEADS * (size_t)(in->shape->q_len * BENCH_DIM);
    OrtMemoryInfo *mem = NULL;
    double seconds = -1.0;
    const size_t q_bytes = o.y_bytes;
    const size_t kv_bytes = sizeof(float) * BENCH_KV_HEADS * (size_t)(in->shape->total * BENCH_DIM);
    const bool ready =
        bench_ort_ok(api, api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "bench", &o.env)) &&
        bench_ort_session(&o, model, threads) &&
        bench_ort_ok(api, api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem)) &&
        bench_ort_ok(api, api->CreateTensorWithDataAsOrtValue(mem, in->q, q_bytes, in->q_dims, 4,
                                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                              &o.in[0])) &&
        bench_ort_ok(api, api->CreateTensorWithDataAsOrtValue(mem, in->k, kv_bytes, in->kv_dims, 4,
                                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                              &o.in[1])) &&
        bench_ort_ok(api, api->CreateTensorWithDataAsOrtValue(mem, in->v, kv_bytes, in->kv_dims, 4,
                                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                              &o.in[2]));
    if (ready) {
        seconds = bench_time(bench_ort_run, &o, 1.0);
        o.keep = true;
        bench_ort_run(&o);
    }
    for (int i = 0; i < 3; i++)
        if (o.in[i] != NULL)
            api->ReleaseValue(o.in[i]);
    if (mem != NULL)
        api->ReleaseMemoryInfo(mem);
    if (o.session != NULL)
        api->ReleaseSession(o.session);
    if (o.env != NULL)
        api->ReleaseEnv(o.env);
    usleep(100000); /* let ORT's spinning workers go idle before ogi runs again */
    return seconds;
}
#endif

/* ---- the table ------------------------------------------------------------------------ */

static double bench_max_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        worst = d > worst || isnan(d) ? d : worst;
    }
    return worst;
}

/* Random Q, K and V of shape s (the same seed for every table). */
static bench_inputs bench_inputs_random(const bench_shape *s, threadpool *pool)
{
    uint64_t seed = 42;
    const int64_t q = s->q_len, t = s->total, d = BENCH_DIM;
    bench_inputs in = {s,   NULL, NULL, NULL, {1, BENCH_Q_HEADS, q, d}, {1, BENCH_KV_HEADS, t, d},
                       pool};
    in.q = bench_random(BENCH_Q_HEADS * q * d, &seed);
    in.k = bench_random(BENCH_KV_HEADS * t * d, &seed);
    in.v = bench_random(BENCH_KV_HEADS * t * d, &seed);
    return in;
}

static void bench_inputs_free(bench_inputs *in)
{
    free(in->q);
    free(in->k);
    free(in->v);
}

/* A zeroed output of n floats. */
static float *bench_output(int64_t n)
{
    float *y = calloc((size_t)n, sizeof(float));
    if (y == NULL)
        abort();
    return y;
}

/* The row's label: kind, query and key counts, causal. */
static void bench_label(const bench_shape *s, char *label, size_t size)
{
    snprintf(label, size, "%-7s q=%-4lld total=%-4lld%s", s->kind, (long long)s->q_len,
             (long long)s->total, s->causal ? " causal" : "");
}

static void bench_row(const bench_shape *s, threadpool *pool, int threads, const void *ort_api)
{
    const int64_t q = s->q_len, t = s->total, d = BENCH_DIM, ny = BENCH_Q_HEADS * q * d;
    bench_inputs in = bench_inputs_random(s, pool);
    float *y_fast = bench_output(ny), *y_op = bench_output(ny), *y_ort = bench_output(ny);
    const double gflop = 4.0 * BENCH_Q_HEADS * (double)q * (double)t * d * 1e-9;
    pbw model = {0};
    bench_model(s, &model);
    bool partial;
    const double ref = bench_ref_gflops(&in, &partial);
    const double fast = gflop / bench_fast_seconds(&in, y_fast);
    const double op = gflop / bench_session_seconds(&in, &model, threads, y_op);
    double ort = -1.0;
#ifdef OGI_BENCH_HAVE_ORT_HEADERS
    if (ort_api != NULL) {
        double seconds = bench_ort_seconds(ort_api, &in, &model, threads, y_ort);
        ort = seconds > 0.0 ? gflop / seconds : -1.0;
    }
#else
    (void)ort_api;
#endif
    char label[64], ort_col[16] = "       -", ratio[16] = "       -", diff[16] = "        -";
    bench_label(s, label, sizeof(label));
    if (ort > 0.0) {
        snprintf(ort_col, sizeof(ort_col), "%8.1f", ort);
        snprintf(ratio, sizeof(ratio), "%7.2fx", op / ort);
        snprintf(diff, sizeof(diff), "%9.1e", bench_max_diff(y_op, y_ort, ny));
    }
    printf("%-34s %8.2f%s %8.1f %8.1f %s %8.1fx %s %s  |fast-op| %.0e\n", label, ref,
           partial ? "*" : " ", fast, op, ort_col, fast / ref, ratio, diff,
           bench_max_diff(y_fast, y_op, ny));
    pbw_free(&model);
    bench_inputs_free(&in);
    free(y_fast);
    free(y_op);
    free(y_ort);
}

/* ---- int8 against the fast kernel --------------------------------------------------- */

static const bench_shape bench_int8_shapes[] = {
    {"decode", 1, 512, false},   {"decode", 1, 2048, false},    {"decode", 1, 8192, false},
    {"prefill", 512, 512, true}, {"prefill", 2048, 2048, true}, {"prefill", 8192, 8192, true},
};

static double bench_cosine(const float *a, const float *b, int64_t n)
{
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int64_t i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return dot / sqrt(na * nb);
}

static void bench_int8_row(const bench_shape *s, threadpool *pool)
{
    const int64_t q = s->q_len, t = s->total, d = BENCH_DIM, ny = BENCH_Q_HEADS * q * d;
    bench_inputs in = bench_inputs_random(s, pool);
    float *y_fast = bench_output(ny), *y_int8 = bench_output(ny), *y_option = bench_output(ny);
    const double gflop = 4.0 * BENCH_Q_HEADS * (double)q * (double)t * d * 1e-9;
    /* alternating, twice each, best of the two: the load of a shared
     * machine moves within a row's few seconds */
    double fast = 0.0, int8 = 0.0, option = 0.0;
    for (int round = 0; round < 2; round++) {
        fast = fmax(fast, gflop / bench_kernel_seconds(&in, y_fast, 0));
        int8 = fmax(int8, gflop / bench_kernel_seconds(&in, y_int8, 1));
        option = fmax(option, gflop / bench_kernel_seconds(&in, y_option, 2));
    }
    const attention_params p = bench_params(s, BENCH_Q_HEADS, BENCH_KV_HEADS);
    char label[64];
    bench_label(s, label, sizeof(label));
    printf("%-34s %8.1f %8.1f %9.2fx %10.6f %8.1f %9.2fx %6s\n", label, fast, int8, int8 / fast,
           bench_cosine(y_fast, y_int8, ny), option, option / fast,
           attention_int8_pays(&p) ? "int8" : "exact");
    bench_inputs_free(&in);
    free(y_fast);
    free(y_int8);
    free(y_option);
}

static void bench_int8_table(threadpool *pool, int threads)
{
    attention_int8_isa isa = ATTENTION_INT8_SCALAR;
    if (attention_int8_isa_supported(ATTENTION_INT8_AVX512_VNNI))
        isa = ATTENTION_INT8_AVX512_VNNI;
    else if (attention_int8_isa_supported(ATTENTION_INT8_AVX_VNNI))
        isa = ATTENTION_INT8_AVX_VNNI;
    printf("\nint8 kernel (%s) against the fast kernel, %d threads; `option` is what an\n"
           "--attention int8 session runs for the shape (the kernel named under `op`)\n",
           attention_int8_isa_name(isa), threads);
    printf("%-34s %8s %8s %10s %10s %8s %10s %6s\n", "GFLOP/s", "fast", "int8", "int8/fast",
           "cosine", "option", "opt/fast", "op");
    const int n = (int)(sizeof(bench_int8_shapes) / sizeof(bench_int8_shapes[0]));
    for (int i = 0; i < n; i++)
        bench_int8_row(&bench_int8_shapes[i], pool);
}

int main(int argc, char **argv)
{
    int threads = 2, only = -1;
    bool int8_only = false;
    const int n_shapes = (int)(sizeof(bench_shapes) / sizeof(bench_shapes[0]));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--row") == 0 && i + 1 < argc)
            only = atoi(argv[++i]);
        else if (strcmp(argv[i], "--int8") == 0)
            int8_only = true;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--row 0..%d] [--int8]\n", argv[0],
                    n_shapes - 1);
            return 2;
        }
    }
    threadpool *pool;
    if (threads < 1 || threadpool_create(threads, &pool) != OGI_OK)
        return 1;
    if (int8_only) {
        bench_int8_table(pool, threads);
        threadpool_free(pool);
        return 0;
    }
    const void *ort_api = NULL;
#ifdef OGI_BENCH_HAVE_ORT_HEADERS
    ort_api = bench_ort_api();
#else
    printf("built without ONNX Runtime headers (scripts/setup.sh fetches them): ORT skipped\n");
#endif
    printf("Attention, batch 1, %d query heads, %d KV heads, head size %d, %d threads, "
           "fast kernel: %s\n",
           BENCH_Q_HEADS, BENCH_KV_HEADS, BENCH_DIM, threads,
           attention_isa_supported(ATTENTION_ISA_AVX512) ? "avx512"
           : attention_isa_supported(ATTENTION_ISA_AVX2) ? "avx2"
                                                         : "scalar");
    printf("%-34s %9s %8s %8s %8s %9s %8s %9s\n", "GFLOP/s", "ref", "fast", "op", "ORT", "fast/ref",
           "fast/ORT", "|op-ORT|");
    for (int i = 0; i < n_shapes; i++)
        if (only < 0 || only == i)
            bench_row(&bench_shapes[i], pool, threads, ort_api);
    printf("* the reference timed on one KV group (4 of the 32 query heads)\n"
           "fast/ORT: the op column (an ogi session) against ORT's Run\n");
    if (only < 0)
        bench_int8_table(pool, threads);
    threadpool_free(pool);
    return 0;
}
