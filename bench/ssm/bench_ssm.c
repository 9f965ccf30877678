/* Throughput of the state-space / linear-attention kernels on layer shapes:
 *
 *   LinearAttention   B = 1, 16 query and KV heads, d_k = d_v = 128, for each
 *                     update rule (gated: per-key decay as in GLA;
 *                     gated_delta: per-head decay as in Gated DeltaNet):
 *                     prefill of T = 4096 tokens, and a decode step (T = 1)
 *                     on a carried state
 *   CausalConv        B = 1, 4096 channels, kernel 4, SiLU: prefill of 4096
 *                     columns, and a decode step
 *
 * Columns: the reference (plain recurrence / plain loops) and the fast path
 * (chunked prefill / vectorised recurrent decode) called directly, each on
 * the same thread pool (2 threads; --threads N changes it); milliseconds per
 * call and tokens per second, best of the runs made in about a second (the
 * reference prefill runs once). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "ogi.h"
#include "ops/causal_conv.h"
#include "ops/linear_attention.h"

enum { BENCH_HEADS = 16, BENCH_DIM = 128, BENCH_LEN = 4096, BENCH_CHANNELS = 4096 };

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t bench_seed = 0x853c49e6748fea9bull;

static float bench_uniform(float lo, float hi)
{
    bench_seed ^= bench_seed >> 12;
    bench_seed ^= bench_seed << 25;
    bench_seed ^= bench_seed >> 27;
    const uint64_t r = bench_seed * 0x2545f4914f6cdd1dull;
    return lo + (hi - lo) * (float)(r >> 40) / (float)(1 << 24);
}

static float *bench_floats(int64_t n, float lo, float hi)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = bench_uniform(lo, hi);
    return p;
}

typedef ogi_status (*bench_fn)(void *arg);

/* Seconds per call: best of the runs made in about budget seconds (at least
 * one). */
static double bench_time(bench_fn fn, void *arg, double budget)
{
    double best = INFINITY, start = bench_now();
    do {
        double t0 = bench_now();
        if (fn(arg) != OGI_OK) {
            fprintf(stderr, "run failed: %s\n", ogi_last_error());
            exit(1);
        }
        double dt = bench_now() - t0;
        best = dt < best ? dt : best;
    } while (bench_now() - start < budget);
    return best;
}

typedef struct bench_la {
    threadpool *pool;
    linear_attention_params p;
    linear_attention_data d;
    linear_attention_path path;
} bench_la;

static ogi_status bench_la_run(void *arg)
{
    bench_la *b = arg;
    return linear_attention_run(b->pool, &b->p, &b->d, b->path);
}

typedef struct bench_cc {
    threadpool *pool;
    causal_conv_params p;
    causal_conv_data d;
    bool reference;
} bench_cc;

static ogi_status bench_cc_run(void *arg)
{
    bench_cc *b = arg;
    return causal_conv_run(b->pool, &b->p, &b->d, b->reference);
}

static void bench_row(const char *op, const char *kind, int64_t tokens, double ref, double fast)
{
    printf("| %-28s | %-7s | %6lld | %10.3f | %10.0f | %10.3f | %10.0f | %6.1fx |\n", op, kind,
           (long long)tokens, ref * 1e3, (double)tokens / ref, fast * 1e3, (double)tokens / fast,
           ref / fast);
}

static void bench_linear_attention(threadpool *pool, linear_attention_rule rule, const char *name)
{
    const int64_t H = BENCH_HEADS, D = BENCH_DIM, T = BENCH_LEN;
    linear_attention_params p = {
        1, T, H, H, D, D, rule, 1.0f / sqrtf((float)D), rule == LINEAR_ATTENTION_GATED, true, 0};
    float *q = bench_floats(T * H * D, -1.0f, 1.0f);
    float *k = bench_floats(T * H * D, -1.0f, 1.0f);
    for (int64_t r = 0; r < T * H; r++) { /* unit keys keep the delta rules stable */
        float norm = 0.0f;
        for (int64_t i = 0; i < D; i++)
            norm += k[r * D + i] * k[r * D + i];
        for (int64_t i = 0; i < D; i++)
            k[r * D + i] /= sqrtf(norm);
    }
    float *v = bench_floats(T * H * D, -1.0f, 1.0f);
    float *decay = bench_floats(T * H * D, p.decay_per_key ? -0.1f : -0.5f, 0.0f);
    float *beta = bench_floats(T * H, 0.1f, 0.9f);
    float *state = bench_floats(H * D * D, -0.1f, 0.1f);
    float *out = bench_floats(T * H * D, 0.0f, 0.0f);
    bench_la b = {pool, p, {q, k, v, decay, beta, state, out}, LINEAR_ATTENTION_REFERENCE};
    const double ref = bench_time(bench_la_run, &b, 0.0);
    b.path = LINEAR_ATTENTION_CHUNKED;
    const double fast = bench_time(bench_la_run, &b, 1.0);
    char op[64];
    snprintf(op, sizeof(op), "LinearAttention %s", name);
    bench_row(op, "prefill", T, ref, fast);
    b.p.seq_len = 1;
    b.path = LINEAR_ATTENTION_REFERENCE;
    const double dref = bench_time(bench_la_run, &b, 0.5);
    b.path = LINEAR_ATTENTION_RECURRENT;
    const double dfast = bench_time(bench_la_run, &b, 0.5);
    bench_row(op, "decode", 1, dref, dfast);
    free(q);
    free(k);
    free(v);
    free(decay);
    free(beta);
    free(state);
    free(out);
}

static void bench_causal_conv(threadpool *pool)
{
    const int64_t C = BENCH_CHANNELS, L = BENCH_LEN, K = 4;
    float *x = bench_floats(C * L, -1.0f, 1.0f), *w = bench_floats(C * K, -0.5f, 0.5f);
    float *bias = bench_floats(C, -0.1f, 0.1f), *state = bench_floats(C * (K - 1), -1.0f, 1.0f);
    float *y = bench_floats(C * L, 0.0f, 0.0f);
    bench_cc b = {pool, {1, C, L, K, true}, {x, w, bias, state, y}, true};
    const double ref = bench_time(bench_cc_run, &b, 0.5);
    b.reference = false;
    const double fast = bench_time(bench_cc_run, &b, 0.5);
    bench_row("CausalConvWithState C=4096 K=4", "prefill", L, ref, fast);
    b.p.seq_len = 1;
    b.reference = true;
    const double dref = bench_time(bench_cc_run, &b, 0.5);
    b.reference = false;
    const double dfast = bench_time(bench_cc_run, &b, 0.5);
    bench_row("CausalConvWithState C=4096 K=4", "decode", 1, dref, dfast);
    free(x);
    free(w);
    free(bias);
    free(state);
    free(y);
}

int main(int argc, char **argv)
{
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--threads N]\n", argv[0]);
            return 2;
        }
    }
    threadpool *pool = NULL;
    if (threadpool_create(threads, &pool) != OGI_OK)
        return 1;
    printf("B=1, %d heads, d_k = d_v = %d, T = %d; %d threads\n\n", BENCH_HEADS, BENCH_DIM,
           BENCH_LEN, threads);
    printf("| %-28s | %-7s | %6s | %10s | %10s | %10s | %10s | %7s |\n", "op", "kind", "tokens",
           "ref ms", "ref tok/s", "fast ms", "fast tok/s", "speedup");
    printf("|------------------------------|---------|--------|------------|------------|---------"
           "---|------------|---------|\n");
    static const char *const names[4] = {"linear", "gated", "delta", "gated_delta"};
    for (int r = 0; r < 4; r++)
        bench_linear_attention(pool, (linear_attention_rule)r, names[r]);
    bench_causal_conv(pool);
    threadpool_free(pool);
    return 0;
}
