/* `ogi bench MODEL_DIR [--backend native,ort]`: load time, prefill and
 * decode speed, peak memory, for each backend side by side, against the
 * memory-bandwidth roofline of batch-1 decoding. Each backend runs in a
 * child process so that its peak RSS is its own. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cli/cli.h"
#include "onnx/onnx.h"
#include "ogi.h"

enum { BENCH_MAX_BACKENDS = 4, BENCH_METRICS = 6 };

static const char *const bench_metric_names[BENCH_METRICS] = {
    "load_s",          "prefill_tok_s_128", "prefill_tok_s_512",
    "decode_tok_s_b1", "decode_tok_s_b4",   "peak_rss_mb"};

typedef struct bench_opts {
    const char *dir;
    int repeats;
    int threads;
    int new_tokens;
    ogi_attention_precision attention;
} bench_opts;

/* median, min, max of each metric */
typedef struct bench_result {
    bool ok;
    char error[256];
    double med[BENCH_METRICS], min[BENCH_METRICS], max[BENCH_METRICS];
} bench_result;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_summarise(double *samples, int n, double *med, double *min, double *max)
{
    qsort(samples, (size_t)n, sizeof(double), bench_cmp);
    *min = samples[0];
    *max = samples[n - 1];
    *med = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

/* Deterministic prompt ids spread over the vocabulary. */
static void bench_prompt(int32_t *ids, size_t n, size_t vocab)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % (vocab > 3 ? vocab - 3 : 1) + 3);
}

/* Tokens per second of one prefill of n tokens. */
static ogi_status bench_prefill(ogi_pipeline *p, size_t n, size_t vocab, double *tok_s)
{
    int32_t *ids = malloc(n * sizeof(int32_t));
    if (ids == NULL)
        return OGI_ERR_OUT_OF_MEMORY;
    bench_prompt(ids, n, vocab);
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.max_new_tokens = 1;
    ogi_generator *g;
    ogi_status st = ogi_generator_create(p, &cfg, 1, &g);
    if (st == OGI_OK)
        st = ogi_generator_append(g, 0, ids, n);
    double start = bench_now();
    if (st == OGI_OK)
        st = ogi_generator_step(g);
    *tok_s = (double)n / (bench_now() - start);
    ogi_generator_free(g);
    free(ids);
    return st;
}

/* Aggregate decode tokens per second: `batch` sequences of a 128-token
 * prompt, then new_tokens steps (the prefill is not timed). */
static ogi_status bench_decode(ogi_pipeline *p, size_t batch, int new_tokens, size_t vocab,
                               double *tok_s)
{
    int32_t ids[128];
    bench_prompt(ids, 128, vocab);
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.max_new_tokens = new_tokens + 1;
    cfg.n_eos_token_ids = 0;
    ogi_generator *g;
    ogi_status st = ogi_generator_create(p, &cfg, batch, &g);
    for (size_t b = 0; b < batch && st == OGI_OK; b++)
        st = ogi_generator_append(g, b, ids, 128);
    if (st == OGI_OK)
        st = ogi_generator_step(g); /* prefill */
    double start = bench_now();
    for (int i = 0; i < new_tokens && st == OGI_OK; i++)
        st = ogi_generator_step(g);
    *tok_s = (double)(batch * (size_t)new_tokens) / (bench_now() - start);
    ogi_generator_free(g);
    return st;
}

static size_t bench_vocab(ogi_pipeline *p)
{
    int32_t id = 3;
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.max_new_tokens = 1;
    ogi_generator *g;
    size_t vocab = 0;
    if (ogi_generator_create(p, &cfg, 1, &g) != OGI_OK)
        return 0;
    if (ogi_generator_append(g, 0, &id, 1) == OGI_OK && ogi_generator_step(g) == OGI_OK)
        ogi_generator_logits(g, 0, &vocab);
    ogi_generator_free(g);
    return vocab;
}

/* Runs in the child: one repeat of one backend; the samples land in r's
 * med (min and max unused). */
static void bench_child(const bench_opts *o, const char *backend, bench_result *r)
{
    int n = 1;
    double samples[BENCH_METRICS][1];
    memset(r, 0, sizeof(*r));
    ogi_pipeline_options po = ogi_pipeline_default_options();
    po.backend = backend;
    po.threads = o->threads;
    po.attention = o->attention;
    ogi_status st = OGI_OK;
    for (int rep = 0; rep < n && st == OGI_OK; rep++) {
        ogi_pipeline *p;
        double start = bench_now();
        st = ogi_pipeline_open(o->dir, &po, &p);
        samples[0][rep] = bench_now() - start;
        if (st != OGI_OK)
            break;
        size_t vocab = bench_vocab(p);
        if (vocab == 0)
            st = OGI_ERR_RUNTIME;
        /* what does not fit the model's context is not measured (NaN):
         * the tokens a sequence holds for metrics 1-4 */
        const size_t context = ogi_pipeline_context_length(p),
                     tokens[5] = {0, 128, 512, 128 + (size_t)o->new_tokens,
                                  128 + (size_t)o->new_tokens};
        bool fits[5];
        for (int m = 1; m <= 4; m++) {
            fits[m] = context == 0 || tokens[m] <= context;
            samples[m][rep] = NAN;
        }
        if (st == OGI_OK && fits[1])
            st = bench_prefill(p, 128, vocab, &samples[1][rep]);
        if (st == OGI_OK && fits[2])
            st = bench_prefill(p, 512, vocab, &samples[2][rep]);
        if (st == OGI_OK && fits[3])
            st = bench_decode(p, 1, o->new_tokens, vocab, &samples[3][rep]);
        if (st == OGI_OK && fits[4])
            st = bench_decode(p, 4, o->new_tokens, vocab, &samples[4][rep]);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        samples[5][rep] = (double)ru.ru_maxrss / 1024.0;
        ogi_pipeline_free(p);
    }
    if (st != OGI_OK) {
        snprintf(r->error, sizeof(r->error), "%s", ogi_last_error());
        return;
    }
    for (int m = 0; m < BENCH_METRICS; m++)
        r->med[m] = samples[m][0];
    r->ok = true;
}

static void bench_run_backend(const bench_opts *o, const char *backend, bench_result *r)
{
    int fds[2];
    memset(r, 0, sizeof(*r));
    if (pipe(fds) != 0) {
        snprintf(r->error, sizeof(r->error), "pipe failed");
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        bench_result child;
        bench_child(o, backend, &child);
        ssize_t w = write(fds[1], &child, sizeof(child));
        _exit(w == (ssize_t)sizeof(child) ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = pid > 0 ? read(fds[0], r, sizeof(*r)) : -1;
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    if (got != (ssize_t)sizeof(*r))
        snprintf(r->error, sizeof(r->error), "the benchmark process failed");
}

/* Streaming read bandwidth (GB/s) over a buffer much larger than the
 * caches, every core reading its own part. Plain loads (XOR-reducing 64-bit
 * words, which the compiler vectorises) read less than this machine gives:
 * 40-56 GB/s where 512-bit loads of four lines at a time read 44-79 GB/s in
 * the same minute. The probe takes the best of the plain loop and, where the
 * CPU has AVX-512, unrolled 512-bit loads with and without non-temporal
 * prefetching, so that the roofline is what a kernel can read, not what one
 * loop happens to. */
typedef struct bench_bw_part {
    const uint64_t *data;
    size_t n; /* a multiple of 32 words */
    int method;
    uint64_t sink;
} bench_bw_part;

enum { BENCH_BW_PLAIN, BENCH_BW_WIDE, BENCH_BW_WIDE_PREFETCH, BENCH_BW_METHODS };

static uint64_t bench_bw_plain(const uint64_t *data, size_t n)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc ^= data[i];
    return acc;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t bench_bw_wide(const uint64_t *data, size_t n,
                                                                 bool prefetch)
{
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    for (size_t i = 0; i < n; i += 32) {
        if (prefetch && i + 256 + 32 <= n) /* 2 KiB ahead */
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)(data + i + 256 + 8 * l), _MM_HINT_NTA);
        for (int l = 0; l < 4; l++)
            acc[l] = _mm512_xor_si512(acc[l], _mm512_load_si512(data + i + 8 * l));
    }
    __m512i all =
        _mm512_xor_si512(_mm512_xor_si512(acc[0], acc[1]), _mm512_xor_si512(acc[2], acc[3]));
    return (uint64_t)_mm512_reduce_or_epi64(all);
}
#define BENCH_BW_WIDE_OK __builtin_cpu_supports("avx512f")
#else
static uint64_t bench_bw_wide(const uint64_t *data, size_t n, bool prefetch)
{
    (void)prefetch;
    return bench_bw_plain(data, n);
}
#define BENCH_BW_WIDE_OK false
#endif

static void *bench_bw_read(void *arg)
{
    bench_bw_part *p = arg;
    p->sink = p->method == BENCH_BW_PLAIN
                  ? bench_bw_plain(p->data, p->n)
                  : bench_bw_wide(p->data, p->n, p->method == BENCH_BW_WIDE_PREFETCH);
    return NULL;
}

/* The buffer is the probe's own, freed before the next backend's process
 * forks (a child would count its pages in its peak RSS). */
static double bench_bandwidth(int threads)
{
    size_t words = ((size_t)512 << 20) / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(64, words * sizeof(uint64_t));
    if (buf == NULL)
        return 0;
    for (size_t i = 0; i < words; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    if (threads < 1 || threads > 64)
        threads = 1;
    int methods = BENCH_BW_WIDE_OK ? BENCH_BW_METHODS : BENCH_BW_WIDE;
    size_t per = words / (size_t)threads / 32 * 32;
    double best = 0;
    for (int rep = 0; rep < 2; rep++)
        for (int method = 0; method < methods; method++) {
            pthread_t tid[64];
            bench_bw_part parts[64];
            double start = bench_now();
            for (int t = 0; t < threads; t++) {
                parts[t] =
                    (bench_bw_part){.data = buf + per * (size_t)t, .n = per, .method = method};
                pthread_create(&tid[t], NULL, bench_bw_read, &parts[t]);
            }
            for (int t = 0; t < threads; t++)
                pthread_join(tid[t], NULL);
            double gbs =
                (double)(per * (size_t)threads * sizeof(uint64_t)) / (bench_now() - start) / 1e9;
            best = gbs > best ? gbs : best;
        }
    free(buf);
    return best;
}

/* Bytes of weights a decode step reads: every initializer of the graph but
 * the tables read only as Gather's data, of which a step reads one row per
 * token (the embedding of an export whose LM head is a weight of its own). */
static double bench_weight_bytes(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    onnx_model *m;
    if (onnx_model_load_structure(path, &m) != OGI_OK)
        return 0;
    const onnx_graph *g = m->graph;
    double bytes = 0;
    for (int i = 0; i < g->n_initializers; i++) {
        const onnx_tensor *t = &g->initializers[i];
        bool table = t->tensor.rank >= 1 && t->tensor.dims[0] > 0, read = false;
        for (int n = 0; n < g->n_nodes && table; n++)
            for (int k = 0; k < g->nodes[n].n_inputs && table; k++)
                if (strcmp(g->nodes[n].inputs[k], t->name) == 0) {
                    read = true;
                    table = k == 0 && strcmp(g->nodes[n].op_type, "Gather") == 0 &&
                            g->nodes[n].domain[0] == '\0';
                }
        for (int o = 0; o < g->n_outputs && table; o++)
            table = strcmp(g->outputs[o].name, t->name) != 0;
        bytes += table && read ? (double)t->tensor.nbytes / (double)t->tensor.dims[0]
                               : (double)t->tensor.nbytes;
    }
    onnx_model_free(m);
    return bytes;
}

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: ogi bench MODEL_DIR [--backend native,ort] [--repeats N] [--threads N]\n"
               "                 [--new-tokens N] [--attention exact|int8] [--json]\n\n"
               "Prints load time, prefill tokens/s (prompts of 128 and 512), decode tokens/s\n"
               "(batch 1 and 4, N new tokens after a 128-token prompt; default 128) and peak\n"
               "RSS as medians over repeats (default 3) with min-max, each backend side by\n"
               "side with its ratio to the first, and the bandwidth roofline of batch-1\n"
               "decoding (weight bytes per token against measured read bandwidth).\n");
}

int cli_bench(int argc, char **argv)
{
    bench_opts o = {.repeats = 3, .threads = 0, .new_tokens = 128};
    char backends_arg[256] = "native";
    bool json = false;
    long value;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            bench_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            snprintf(backends_arg, sizeof(backends_arg), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc &&
                   cli_parse_long(argv[i + 1], 1, 64, &value)) {
            o.repeats = (int)value;
            i++;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc &&
                   cli_parse_long(argv[i + 1], 0, 256, &value)) {
            o.threads = (int)value;
            i++;
        } else if (strcmp(argv[i], "--new-tokens") == 0 && i + 1 < argc &&
                   cli_parse_long(argv[i + 1], 1, 1 << 20, &value)) {
            o.new_tokens = (int)value;
            i++;
        } else if (strcmp(argv[i], "--attention") == 0 && i + 1 < argc &&
                   cli_parse_attention(argv[i + 1], &o.attention)) {
            i++;
        } else if (argv[i][0] != '-' && o.dir == NULL) {
            o.dir = argv[i];
        } else {
            bench_usage(stderr);
            return 2;
        }
    }
    if (o.dir == NULL) {
        bench_usage(stderr);
        return 2;
    }
    const char *names[BENCH_MAX_BACKENDS];
    int n_backends = 0;
    for (char *tok = strtok(backends_arg, ","); tok && n_backends < BENCH_MAX_BACKENDS;
         tok = strtok(NULL, ","))
        names[n_backends++] = tok;
    /* backends alternate repeat by repeat, so that the machine's drift (its
     * bandwidth moves by up to 2x over minutes) hits them alike */
    bench_result results[BENCH_MAX_BACKENDS];
    static double samples[BENCH_MAX_BACKENDS][BENCH_METRICS][64];
    memset(results, 0, sizeof(results));
    for (int b = 0; b < n_backends; b++)
        results[b].ok = true;
    /* the bandwidth is probed after every round of repeats, for the same
     * reason; the roofline takes the median */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double bw_samples[64], bandwidth = 0, bw_min = 0, bw_max = 0;
    for (int rep = 0; rep < o.repeats; rep++) {
        for (int b = 0; b < n_backends; b++) {
            bench_result one;
            if (!results[b].ok)
                continue;
            bench_run_backend(&o, names[b], &one);
            if (!one.ok) {
                results[b] = one;
                continue;
            }
            for (int m = 0; m < BENCH_METRICS; m++)
                samples[b][m][rep] = one.med[m];
        }
        bw_samples[rep] = bench_bandwidth(o.threads > 0 ? o.threads : (int)cores);
    }
    bench_summarise(bw_samples, o.repeats, &bandwidth, &bw_min, &bw_max);
    for (int b = 0; b < n_backends; b++)
        for (int m = 0; results[b].ok && m < BENCH_METRICS; m++)
            bench_summarise(samples[b][m], o.repeats, &results[b].med[m], &results[b].min[m],
                            &results[b].max[m]);
    double weights = bench_weight_bytes(o.dir);
    int failed = 0; /* the exit status: 1 when a backend could not be measured */
    for (int b = 0; b < n_backends; b++)
        failed |= !results[b].ok;
    double roofline = weights > 0 ? bandwidth * 1e9 / weights : 0;
    if (json) {
        json_t *root = json_pack("{s:f, s:f, s:f, s:{}}", "roofline_decode_tok_s", roofline,
                                 "bandwidth_gb_s", bandwidth, "weight_bytes", weights, "backends");
        json_t *all = json_object_get(root, "backends");
        for (int b = 0; b < n_backends; b++) {
            json_t *o_b = json_object();
            if (!results[b].ok)
                json_object_set_new(o_b, "error", json_string(results[b].error));
            for (int m = 0; results[b].ok && m < BENCH_METRICS; m++)
                json_object_set_new(o_b, bench_metric_names[m],
                                    isnan(results[b].med[m]) ? json_null()
                                                             : json_real(results[b].med[m]));
            json_object_set_new(all, names[b], o_b);
        }
        char *s = json_dumps(root, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(root);
        return failed;
    }
    printf("model: %s (%.1f MB of weights), %d repeats, threads %d\n", o.dir, weights / 1e6,
           o.repeats, o.threads);
    printf("%-20s", "metric");
    for (int b = 0; b < n_backends; b++)
        printf(" %26s", names[b]);
    if (n_backends > 1)
        printf(" %8s", "ratio");
    printf("\n");
    for (int m = 0; m < BENCH_METRICS; m++) {
        printf("%-20s", bench_metric_names[m]);
        for (int b = 0; b < n_backends; b++) {
            char cell[64];
            if (results[b].ok && !isnan(results[b].med[m]))
                snprintf(cell, sizeof(cell), "%.4g (%.4g-%.4g)", results[b].med[m],
                         results[b].min[m], results[b].max[m]);
            else
                snprintf(cell, sizeof(cell), "-");
            printf(" %26s", cell);
        }
        if (n_backends > 1 && results[0].ok && results[1].ok && results[1].med[m] > 0 &&
            !isnan(results[0].med[m]))
            printf(" %7.2fx", results[0].med[m] / results[1].med[m]);
        printf("\n");
    }
    for (int b = 0; b < n_backends; b++)
        if (!results[b].ok)
            fprintf(stderr, "ogi bench: %s: %s\n", names[b], results[b].error);
    printf("roofline: %.1f GB/s read bandwidth (%.1f-%.1f) / %.1f MB per token = %.1f tok/s "
           "batch-1 decode",
           bandwidth, bw_min, bw_max, weights / 1e6, roofline);
    if (results[0].ok && roofline > 0 && !isnan(results[0].med[3]))
        printf("; %s reaches %.0f%%", names[0], 100.0 * results[0].med[3] / roofline);
    printf("\n");
    return failed;
}
