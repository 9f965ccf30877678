/* Attention: the fast kernel against the reference on random shapes (odd
 * head sizes, q_len 1, total length 1 to thousands, GQA / MQA / MHA, 3D and
 * 4D layouts, past caches, broadcast float and bool masks, short masks,
 * causal, softcap, nonpad_kv_seqlen, windows, key splits, keys read in
 * place from fixed-size caches), for every instruction set this machine
 * runs, with and without threads; then the opset-25 windows through the
 * op, against key sets derived from the spec. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ogi.h"
#include "ops/attention.h"
#include "pb_writer.h"
#include "test_util.h"

static uint64_t test_seed = 0x2545f4914f6cdd1dull;
static int checks;

static int64_t test_pick(const int64_t *choices, int n)
{
    return choices[test_rand(&test_seed) % (uint64_t)n];
}

static bool test_chance(int percent)
{
    return (int)(test_rand(&test_seed) % 100) < percent;
}

static float test_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(test_rand(&test_seed) >> 40) / (float)(1 << 24);
}

/* ---- one random problem ----------------------------------------------------- */

enum { TEST_MASK_NONE, TEST_MASK_FLOAT, TEST_MASK_BOOL };

typedef struct test_case {
    int64_t batch, q_heads, kv_heads, q_len, past_len, kv_len, qk_dim, v_dim;
    bool seq_major; /* Q, K, V, Y as [batch, seq, heads * dim] */
    int mask_kind, mask_rank;
    int64_t mask_dims[4]; /* right-aligned onto [batch, q_heads, q_len, total] */
    bool causal, nonpad;
    double softcap, scale;
    int64_t left, right;
    /* > 0: every key (past and new) in one fixed-size cache of this many
     * positions per head, as the engine's in-place KV caches are read; the
     * positions from the total length on hold NaN */
    int64_t cache_len;
} test_case;

/* The problem's tensors: doubles for the reference, float32 in the case's
 * layout for the fast kernel (the same values). */
typedef struct test_problem {
    attention_params p;
    int64_t offset[8], valid[8];
    double *q, *k, *v, *mask, *y_ref;
    float *qf, *kf, *vf, *pkf, *pvf, *maskf, *yf;
    float *ckf, *cvf; /* the caches when cache_len > 0 */
    int64_t mask_strides[4], mask_len;
} test_problem;

static void test_problem_free(test_problem *t)
{
    free(t->q);
    free(t->k);
    free(t->v);
    free(t->mask);
    free(t->y_ref);
    free(t->qf);
    free(t->kf);
    free(t->vf);
    free(t->pkf);
    free(t->pvf);
    free(t->ckf);
    free(t->cvf);
    free(t->maskf);
    free(t->yf);
}

static void *test_alloc(int64_t n, size_t size)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (p == NULL)
        abort();
    return p;
}

/* Element offset of (b, h, s, e) in a [batch, heads, seq, dim] tensor laid
 * out 4D, or 3D seq-major. */
static int64_t test_at(bool seq_major, int64_t heads, int64_t seq, int64_t dim, int64_t b,
                       int64_t h, int64_t s, int64_t e)
{
    return seq_major ? ((b * seq + s) * heads + h) * dim + e
                     : ((b * heads + h) * seq + s) * dim + e;
}

/* Fills q / k / v (doubles, 4D) and their float32 copies in the case's
 * layout: past positions in pkf / pvf (4D), new ones in kf / vf. */
static void test_fill_qkv(const test_case *c, test_problem *t)
{
    const int64_t total = c->past_len + c->kv_len;
    t->q = test_alloc(c->batch * c->q_heads * c->q_len * c->qk_dim, sizeof(double));
    t->k = test_alloc(c->batch * c->kv_heads * total * c->qk_dim, sizeof(double));
    t->v = test_alloc(c->batch * c->kv_heads * total * c->v_dim, sizeof(double));
    t->qf = test_alloc(c->batch * c->q_heads * c->q_len * c->qk_dim, sizeof(float));
    t->kf = test_alloc(c->batch * c->kv_heads * c->kv_len * c->qk_dim, sizeof(float));
    t->vf = test_alloc(c->batch * c->kv_heads * c->kv_len * c->v_dim, sizeof(float));
    t->pkf = test_alloc(c->batch * c->kv_heads * c->past_len * c->qk_dim, sizeof(float));
    t->pvf = test_alloc(c->batch * c->kv_heads * c->past_len * c->v_dim, sizeof(float));
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->q_heads; h++)
            for (int64_t i = 0; i < c->q_len; i++)
                for (int64_t e = 0; e < c->qk_dim; e++) {
                    float x = test_uniform(-1.5f, 1.5f);
                    t->q[test_at(false, c->q_heads, c->q_len, c->qk_dim, b, h, i, e)] = x;
                    t->qf[test_at(c->seq_major, c->q_heads, c->q_len, c->qk_dim, b, h, i, e)] = x;
                }
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->kv_heads; h++)
            for (int64_t j = 0; j < total; j++) {
                bool past = j < c->past_len;
                int64_t s = past ? j : j - c->past_len, len = past ? c->past_len : c->kv_len;
                bool major = !past && c->seq_major;
                for (int64_t e = 0; e < c->qk_dim; e++) {
                    float x = test_uniform(-1.5f, 1.5f);
                    t->k[test_at(false, c->kv_heads, total, c->qk_dim, b, h, j, e)] = x;
                    (past ? t->pkf
                          : t->kf)[test_at(major, c->kv_heads, len, c->qk_dim, b, h, s, e)] = x;
                }
                for (int64_t e = 0; e < c->v_dim; e++) {
                    float x = test_uniform(-1.0f, 1.0f);
                    t->v[test_at(false, c->kv_heads, total, c->v_dim, b, h, j, e)] = x;
                    (past ? t->pvf
                          : t->vf)[test_at(major, c->kv_heads, len, c->v_dim, b, h, s, e)] = x;
                }
            }
}

/* Copies every key and value (past, then new) into the fixed-size caches,
 * 4D [batch, kv_heads, cache_len, dim]; NaN past the total length. */
static void test_fill_caches(const test_case *c, test_problem *t)
{
    const int64_t total = c->past_len + c->kv_len, n = c->cache_len;
    t->ckf = test_alloc(c->batch * c->kv_heads * n * c->qk_dim, sizeof(float));
    t->cvf = test_alloc(c->batch * c->kv_heads * n * c->v_dim, sizeof(float));
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->kv_heads; h++)
            for (int64_t j = 0; j < n; j++) {
                for (int64_t e = 0; e < c->qk_dim; e++)
                    t->ckf[test_at(false, c->kv_heads, n, c->qk_dim, b, h, j, e)] =
                        j < total
                            ? (float)t->k[test_at(false, c->kv_heads, total, c->qk_dim, b, h, j, e)]
                            : NAN;
                for (int64_t e = 0; e < c->v_dim; e++)
                    t->cvf[test_at(false, c->kv_heads, n, c->v_dim, b, h, j, e)] =
                        j < total
                            ? (float)t->v[test_at(false, c->kv_heads, total, c->v_dim, b, h, j, e)]
                            : NAN;
            }
}

/* The mask over its own dims, with the strides that broadcast it. */
static void test_fill_mask(const test_case *c, test_problem *t)
{
    const int64_t total = c->past_len + c->kv_len;
    t->mask_len = total;
    if (c->mask_kind == TEST_MASK_NONE)
        return;
    int64_t n = 1, stride = 1;
    for (int d = 0; d < c->mask_rank; d++)
        n *= c->mask_dims[d];
    for (int a = 3; a >= 0; a--) {
        int md = a - (4 - c->mask_rank);
        t->mask_strides[a] = 0;
        if (md < 0)
            continue;
        if (c->mask_dims[md] != 1 || (a == 3 && total != 1))
            t->mask_strides[a] = stride;
        stride *= c->mask_dims[md];
    }
    const int64_t last = c->mask_dims[c->mask_rank - 1];
    if (last == 1 && total != 1)
        t->mask_strides[3] = 0; /* a broadcast key axis */
    else
        t->mask_len = last;
    t->mask = test_alloc(n, sizeof(double));
    t->maskf = test_alloc(n, sizeof(float));
    for (int64_t e = 0; e < n; e++) {
        float x;
        if (c->mask_kind == TEST_MASK_BOOL)
            x = test_chance(80) ? 0.0f : -INFINITY;
        else
            x = test_chance(10) ? -INFINITY : test_uniform(-2.0f, 2.0f);
        t->mask[e] = x;
        t->maskf[e] = x;
    }
}

/* Offsets as the op derives them: past_len with a past, else
 * nonpad_kv_seqlen - q_len for an external cache, else 0. */
static void test_fill_params(const test_case *c, test_problem *t)
{
    const int64_t total = c->past_len + c->kv_len;
    attention_params *p = &t->p;
    *p = attention_default_params();
    p->batch = c->batch;
    p->q_heads = c->q_heads;
    p->kv_heads = c->kv_heads;
    p->q_len = c->q_len;
    p->total_len = total;
    p->qk_dim = c->qk_dim;
    p->v_dim = c->v_dim;
    p->scale = c->scale;
    p->softcap = c->softcap;
    p->causal = c->causal;
    p->left_window = c->left;
    p->right_window = c->right;
    for (int64_t b = 0; b < c->batch; b++) {
        t->valid[b] = (int64_t)(test_rand(&test_seed) % (uint64_t)(total + 1));
        if (test_chance(40))
            t->valid[b] = total;
        t->offset[b] = c->nonpad && c->past_len == 0 ? t->valid[b] - c->q_len : c->past_len;
    }
    p->kv_valid_len = c->nonpad ? t->valid : NULL;
    p->query_offset = t->offset;
}

static void test_problem_init(const test_case *c, test_problem *t)
{
    memset(t, 0, sizeof(*t));
    test_fill_qkv(c, t);
    if (c->cache_len > 0)
        test_fill_caches(c, t);
    test_fill_mask(c, t);
    test_fill_params(c, t);
    t->y_ref = test_alloc(c->batch * c->q_heads * c->q_len * c->v_dim, sizeof(double));
    t->yf = test_alloc(c->batch * c->q_heads * c->q_len * c->v_dim, sizeof(float));
}

static attention_view test_view(const float *data, bool seq_major, int64_t heads, int64_t seq,
                                int64_t dim)
{
    attention_view v = {data, heads * seq * dim, seq * dim, dim};
    if (seq_major) {
        v.head_stride = dim;
        v.seq_stride = heads * dim;
    }
    return v;
}

static attention_fast_data test_fast_data(const test_case *c, test_problem *t)
{
    attention_fast_data d;
    memset(&d, 0, sizeof(d));
    d.q = test_view(t->qf, c->seq_major, c->q_heads, c->q_len, c->qk_dim);
    d.k[1] = test_view(t->kf, c->seq_major, c->kv_heads, c->kv_len, c->qk_dim);
    d.v[1] = test_view(t->vf, c->seq_major, c->kv_heads, c->kv_len, c->v_dim);
    d.k[0] =
        c->past_len > 0 ? test_view(t->pkf, false, c->kv_heads, c->past_len, c->qk_dim) : d.k[1];
    d.v[0] =
        c->past_len > 0 ? test_view(t->pvf, false, c->kv_heads, c->past_len, c->v_dim) : d.v[1];
    d.split = c->past_len > 0 ? c->past_len : c->past_len + c->kv_len;
    if (c->cache_len > 0) {
        d.k[0] = d.k[1] = test_view(t->ckf, false, c->kv_heads, c->cache_len, c->qk_dim);
        d.v[0] = d.v[1] = test_view(t->cvf, false, c->kv_heads, c->cache_len, c->v_dim);
        d.split = c->past_len + c->kv_len;
    }
    d.mask = t->maskf;
    memcpy(d.mask_strides, t->mask_strides, sizeof(d.mask_strides));
    d.mask_len = t->mask_len;
    d.y = t->yf;
    d.y_strides[0] = c->q_heads * c->q_len * c->v_dim;
    d.y_strides[1] = c->seq_major ? c->v_dim : c->q_len * c->v_dim;
    d.y_strides[2] = c->seq_major ? c->q_heads * c->v_dim : c->v_dim;
    return d;
}

static const char *test_case_str(const test_case *c, char *buf, size_t size)
{
    snprintf(buf, size,
             "b%lld hq%lld hkv%lld q%lld past%lld new%lld dk%lld dv%lld %s mask%d/r%d causal%d "
             "nonpad%d softcap%g window(%lld,%lld) cache%lld",
             (long long)c->batch, (long long)c->q_heads, (long long)c->kv_heads,
             (long long)c->q_len, (long long)c->past_len, (long long)c->kv_len,
             (long long)c->qk_dim, (long long)c->v_dim, c->seq_major ? "3D" : "4D", c->mask_kind,
             c->mask_rank, c->causal, c->nonpad, c->softcap, (long long)c->left,
             (long long)c->right, (long long)c->cache_len);
    return buf;
}

/* The output against the reference: the largest |fast - reference| (Y is a
 * convex combination of V rows) and the cosine similarity (1 when both are
 * zero: rows that see no key). */
typedef struct test_diff {
    double worst, cosine;
} test_diff;

static test_diff test_compare(const test_case *c, const test_problem *t)
{
    double worst = 0.0, dot = 0.0, n1 = 0.0, n2 = 0.0;
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->q_heads; h++)
            for (int64_t i = 0; i < c->q_len; i++)
                for (int64_t e = 0; e < c->v_dim; e++) {
                    double ref =
                        t->y_ref[test_at(false, c->q_heads, c->q_len, c->v_dim, b, h, i, e)];
                    double got =
                        t->yf[test_at(c->seq_major, c->q_heads, c->q_len, c->v_dim, b, h, i, e)];
                    double err = fabs(got - ref);
                    if (!(err <= worst))
                        worst = isnan(err) ? INFINITY : err;
                    dot += ref * got;
                    n1 += ref * ref;
                    n2 += got * got;
                }
    test_diff d = {worst, n1 == 0.0 && n2 == 0.0 ? 1.0 : dot / sqrt(n1 * n2)};
    return d;
}

static const attention_isa test_isas[] = {ATTENTION_ISA_SCALAR, ATTENTION_ISA_AVX2,
                                          ATTENTION_ISA_AVX512};
static double test_worst[3]; /* the largest error seen per instruction set */

static const attention_int8_isa test_int8_isas[] = {ATTENTION_INT8_SCALAR, ATTENTION_INT8_AVX_VNNI,
                                                    ATTENTION_INT8_AVX512_VNNI};
static double test_int8_worst[3];  /* largest |int8 - scalar int8| per instruction set */
static double test_int8_cos = 1.0; /* smallest cosine of int8 against the reference */

/* The int8 kernel for each instruction set, inline and on pool: the same
 * quantization everywhere; against the exact reference, a cosine of 0.999.
 * P V multiplies P and V rounded to bf16, and which way a probability
 * rounds depends on the running max (tiles, key splits) and on the last
 * bit of exp, so runs agree only to the bf16 bound: each output is within
 * (2^-8 + 2^-16) max |V| of the float32 P V of its own probabilities,
 * which agree within 1e-5 across runs. */
static void test_run_int8(const test_case *c, test_problem *t, threadpool *pool)
{
    char desc[256];
    const int64_t n = c->batch * c->q_heads * c->q_len * c->v_dim;
    attention_fast_data fd = test_fast_data(c, t);
    float *scalar = test_alloc(n, sizeof(float));
    double vmax = 0.0;
    for (int64_t e = 0; e < c->batch * c->kv_heads * (c->past_len + c->kv_len) * c->v_dim; e++)
        vmax = fmax(vmax, fabs(t->v[e]));
    const double tol = 2.0 * (1.0 / 256 + 1.0 / 65536) * vmax + 1e-5;
    for (size_t k = 0; k < sizeof(test_int8_isas) / sizeof(test_int8_isas[0]); k++) {
        if (!attention_int8_isa_supported(test_int8_isas[k]))
            continue;
        for (int threaded = 0; threaded < 2; threaded++) {
            for (int64_t e = 0; e < n; e++)
                t->yf[e] = NAN;
            ogi_status st = attention_int8(threaded ? pool : NULL, &t->p, &fd, test_int8_isas[k]);
            const double cos = test_compare(c, t).cosine;
            test_int8_cos = cos < test_int8_cos ? cos : test_int8_cos;
            checks++;
            TEST_CHECK(st == OGI_OK && cos >= 0.999, "int8 %s %s: status %d, cosine %.6f",
                       attention_int8_isa_name(test_int8_isas[k]),
                       test_case_str(c, desc, sizeof(desc)), (int)st, cos);
            if (k == 0 && threaded == 0) {
                memcpy(scalar, t->yf, sizeof(float) * (size_t)n);
                continue;
            }
            double err = 0.0; /* both in the case's layout */
            for (int64_t e = 0; e < n; e++) {
                const double d = fabs((double)t->yf[e] - (double)scalar[e]);
                if (!(d <= err))
                    err = isnan(d) ? INFINITY : d;
            }
            test_int8_worst[k] = err > test_int8_worst[k] ? err : test_int8_worst[k];
            checks++;
            TEST_CHECK(err <= tol, "int8 %s %s: max difference from scalar int8 %.3g",
                       attention_int8_isa_name(test_int8_isas[k]),
                       test_case_str(c, desc, sizeof(desc)), err);
        }
    }
    free(scalar);
}

/* Runs c through the reference and, for each instruction set, the fast
 * kernel inline and on pool. */
static void test_run_case(const test_case *c, threadpool *pool)
{
    test_problem t;
    char desc[256];
    test_problem_init(c, &t);
    attention_data d = {t.q, t.k, t.v, t.mask, {0}, t.mask_len, t.y_ref, NULL};
    memcpy(d.mask_strides, t.mask_strides, sizeof(d.mask_strides));
    ogi_status st = attention_reference(&t.p, &d);
    TEST_CHECK(st == OGI_OK, "reference failed on %s", test_case_str(c, desc, sizeof(desc)));
    attention_fast_data fd = test_fast_data(c, &t);
    for (size_t k = 0; k < sizeof(test_isas) / sizeof(test_isas[0]); k++) {
        if (!attention_isa_supported(test_isas[k]))
            continue;
        for (int threaded = 0; threaded < 2; threaded++) {
            for (int64_t e = 0; e < c->batch * c->q_heads * c->q_len * c->v_dim; e++)
                t.yf[e] = NAN;
            st = attention_fast(threaded ? pool : NULL, &t.p, &fd, test_isas[k]);
            double err = test_compare(c, &t).worst;
            test_worst[k] = err > test_worst[k] ? err : test_worst[k];
            checks++;
            TEST_CHECK(st == OGI_OK && err <= 1e-5, "%s %s: status %d, max error %.3g",
                       attention_isa_name(test_isas[k]), test_case_str(c, desc, sizeof(desc)),
                       (int)st, err);
        }
    }
    test_run_int8(c, &t, pool);
    test_problem_free(&t);
}

/* ---- random cases -------------------------------------------------------------- */

static void test_random_mask(test_case *c)
{
    const int64_t total = c->past_len + c->kv_len;
    c->mask_kind = test_chance(50)   ? TEST_MASK_NONE
                   : test_chance(50) ? TEST_MASK_FLOAT
                                     : TEST_MASK_BOOL;
    c->mask_rank = 1 + (int)(test_rand(&test_seed) % 4);
    const int64_t full[4] = {c->batch, c->q_heads, c->q_len, total};
    for (int d = 0; d < c->mask_rank; d++) {
        int a = d + 4 - c->mask_rank;
        c->mask_dims[d] = test_chance(40) ? 1 : full[a];
    }
    int64_t *last = &c->mask_dims[c->mask_rank - 1];
    if (test_chance(60))
        *last = total;
    else if (total > 1 && test_chance(60))
        *last =
            1 + (int64_t)(test_rand(&test_seed) % (uint64_t)total); /* short: padded with -inf */
}

static void test_random_case(test_case *c, int64_t max_total)
{
    static const int64_t dims[] = {1, 3, 8, 16, 17, 32, 64, 80, 96, 128, 256};
    static const int64_t groups[] = {1, 1, 2, 3, 4, 8};
    memset(c, 0, sizeof(*c));
    c->batch = 1 + (int64_t)(test_rand(&test_seed) % 2);
    c->kv_heads = 1 + (int64_t)(test_rand(&test_seed) % 3);
    c->q_heads = c->kv_heads * test_pick(groups, 6);
    c->q_len = test_chance(35) ? 1 : 1 + (int64_t)(test_rand(&test_seed) % 40);
    c->past_len = test_chance(40) ? (int64_t)(test_rand(&test_seed) % (uint64_t)max_total) : 0;
    c->kv_len = test_chance(50) ? c->q_len : 1 + (int64_t)(test_rand(&test_seed) % 70);
    c->qk_dim = test_pick(dims, 11);
    c->v_dim = test_chance(70) ? c->qk_dim : test_pick(dims, 11);
    c->seq_major = test_chance(40);
    c->causal = test_chance(50);
    c->nonpad = test_chance(30);
    c->softcap = test_chance(25) ? test_uniform(0.5f, 30.0f) : 0.0;
    c->scale = test_chance(30) ? test_uniform(0.05f, 1.0f) : 1.0 / sqrt((double)c->qk_dim);
    c->left = test_chance(30) ? (int64_t)(test_rand(&test_seed) % 50) : -1;
    c->right = test_chance(20) ? (int64_t)(test_rand(&test_seed) % 50) : -1;
    test_random_mask(c);
}

/* A case without mask, softcap, window or padding. */
static test_case test_plain(int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t q_len,
                            int64_t past_len, int64_t kv_len, int64_t dim)
{
    test_case c;
    memset(&c, 0, sizeof(c));
    c.batch = batch;
    c.q_heads = q_heads;
    c.kv_heads = kv_heads;
    c.q_len = q_len;
    c.past_len = past_len;
    c.kv_len = kv_len;
    c.qk_dim = c.v_dim = dim;
    c.scale = 1.0 / sqrt((double)(dim > 0 ? dim : 1));
    c.left = c.right = -1;
    return c;
}

/* The cases named in the issue, beside the random ones. */
static void test_edge_cases(threadpool *pool)
{
    static const int64_t dims[] = {1, 3, 17, 80, 96, 128, 256};
    test_case c;
    for (size_t k = 0; k < sizeof(dims) / sizeof(dims[0]); k++) {
        c = test_plain(1, 8, 2, 1, 300, 1, dims[k]); /* GQA decode, causal with a past */
        c.causal = true;
        test_run_case(&c, pool);
        c = test_plain(2, 3, 3, 37, 0, 37, dims[k]); /* MHA prefill, 3D, softcap */
        c.seq_major = c.causal = true;
        c.softcap = 20.0;
        test_run_case(&c, pool);
    }
    c = test_plain(1, 4, 1, 1, 0, 1, 16); /* total length 1 */
    test_run_case(&c, pool);
    c = test_plain(1, 4, 2, 3, 0, 0, 16); /* no keys at all */
    c.v_dim = 8;
    test_run_case(&c, pool);
    c = test_plain(1, 2, 2, 3, 0, 5, 0); /* head size 0 */
    c.v_dim = 8;
    test_run_case(&c, pool);
    c = test_plain(1, 4, 1, 1, 4095, 1, 64); /* MQA decode: key ranges split, then merged */
    c.causal = true;
    test_run_case(&c, pool);
    c = test_plain(1, 2, 1, 1, 3000, 1, 32); /* the same with a window, a mask and padding */
    c.seq_major = c.causal = c.nonpad = true;
    c.mask_kind = TEST_MASK_BOOL;
    c.mask_rank = 2;
    c.mask_dims[0] = 1;
    c.mask_dims[1] = 3001;
    c.left = 700;
    c.right = 0;
    test_run_case(&c, pool);
    c = test_plain(1, 8, 2, 1, 4095, 1, 128); /* big enough to run on the threads */
    c.causal = true;
    test_run_case(&c, pool);
#ifdef __OPTIMIZE__
    c = test_plain(1, 32, 8, 1, 8191, 1, 128); /* the benchmark's decode */
    c.causal = true;
    test_run_case(&c, pool);
    c = test_plain(1, 8, 2, 1024, 0, 1024, 128); /* a smaller causal prefill */
    c.causal = true;
    test_run_case(&c, pool);
#endif
}

static void test_random_cases(threadpool *pool, int n, int64_t max_total)
{
    for (int k = 0; k < n; k++) {
        test_case c;
        test_random_case(&c, max_total);
        test_run_case(&c, pool);
    }
}

/* docstring-llama's decode: 8 query heads of 32 on 4 KV heads, keys in
 * caches of 512 positions, a causal mask that sees every key; then with an
 * additive mask over the keys. */
static void test_small_head_decode(threadpool *pool)
{
    static const int64_t totals[] = {1, 7, 128, 192, 255, 512};
    for (size_t k = 0; k < sizeof(totals) / sizeof(totals[0]); k++) {
        test_case c = test_plain(1, 8, 4, 1, totals[k] - 1, 1, 32);
        c.causal = true;
        c.cache_len = 512;
        test_run_case(&c, pool);
        c.mask_kind = TEST_MASK_FLOAT;
        c.mask_rank = 2;
        c.mask_dims[0] = 1;
        c.mask_dims[1] = totals[k];
        test_run_case(&c, pool);
    }
}

/* Random cases with every key in a fixed-size cache, most of them decode
 * (1 to 3 new positions). */
static void test_random_cached_cases(threadpool *pool, int n, int64_t max_total)
{
    for (int k = 0; k < n; k++) {
        test_case c;
        test_random_case(&c, max_total);
        if (test_chance(70))
            c.q_len = c.kv_len = 1 + (int64_t)(test_rand(&test_seed) % 3);
        c.cache_len = c.past_len + c.kv_len + (int64_t)(test_rand(&test_seed) % 64);
        if (c.cache_len == 0)
            c.cache_len = 1;
        test_random_mask(&c); /* over the new total length */
        test_run_case(&c, pool);
    }
}

/* ---- the op: opset-25 windows against the spec ---------------------------------- */

/* A one-node Attention model at `opset` with int attributes, every value's
 * shape left open; "" inputs / outputs are omitted. */
static void test_build_model(pbw *out, int opset, int n_in, const char *const *in, int n_out,
                             const char *const *outs, int n_attr, const char *const *names,
                             const int64_t *values)
{
    pbw g = {0}, node = {0};
    for (int i = 0; i < n_in; i++)
        pbw_string(&node, 1, in[i]);
    for (int i = 0; i < n_out; i++)
        pbw_string(&node, 2, outs[i]);
    pbw_string(&node, 3, "attention");
    pbw_string(&node, 4, "Attention");
    for (int a = 0; a < n_attr; a++) {
        pbw attr = {0};
        pbw_string(&attr, 1, names[a]);
        pbw_int(&attr, 3, (uint64_t)values[a]);
        pbw_int(&attr, 20, 2); /* AttributeProto.INT */
        pbw_message(&node, 5, &attr);
    }
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "g");
    for (int i = 0; i < n_in; i++)
        if (in[i][0] != '\0')
            pbw_value_info(&g, 11, in[i], i == 6 ? OGI_INT64 : OGI_FLOAT32, -1, NULL);
    for (int i = 0; i < n_out; i++)
        if (outs[i][0] != '\0')
            pbw_value_info(&g, 12, outs[i], OGI_FLOAT32, -1, NULL);
    pbw_model(out, 10, opset, &g);
}

/* One window case: Q = 0 makes every allowed key equally likely and V row j
 * is the one-hot e_j, so Y[b, 0, i] shows query i's key set: 1/n on each of
 * its n keys. allowed[b * q_len + i] spells that set ("0110" = keys 1, 2),
 * worked out by hand from the spec: query i sits at p = offset + i (offset:
 * past length with a past cache, nonpad_kv_seqlen[b] - q_len for an
 * external one, else 0) and sees key j iff p - left <= j <= p + right (a
 * side of -1 is unbounded), j <= p under is_causal, j < nonpad_kv_seqlen[b]. */
typedef struct test_window {
    const char *what;
    int64_t batch, q_len, past_len, kv_len;
    int64_t causal, left, right;
    int64_t nonpad[2]; /* 0: no nonpad_kv_seqlen input */
    const char *allowed[6];
} test_window;

enum { TEST_WINDOW_DIM = 4 };

/* Q (zeros), K (ones), V (one-hot rows), past and nonpad inputs of w. */
static int test_window_inputs(const test_window *w, ogi_tensor **t, const char **names)
{
    const int64_t total = w->past_len + w->kv_len, D = TEST_WINDOW_DIM;
    const int64_t qd[4] = {w->batch, 1, w->q_len, D}, kd[4] = {w->batch, 1, w->kv_len, D};
    const int64_t vd[4] = {w->batch, 1, w->kv_len, total};
    const int64_t pkd[4] = {w->batch, 1, w->past_len, D},
                  pvd[4] = {w->batch, 1, w->past_len, total};
    int n = 0;
    names[n] = "Q";
    t[n++] = test_tensor_f32(4, qd, NULL);
    names[n] = "K";
    t[n] = test_tensor_f32(4, kd, NULL);
    for (int64_t e = 0; e < w->batch * w->kv_len * D; e++)
        ((float *)ogi_tensor_data(t[n]))[e] = 1.0f;
    n++;
    names[n] = "V";
    t[n] = test_tensor_f32(4, vd, NULL);
    for (int64_t b = 0; b < w->batch; b++)
        for (int64_t s = 0; s < w->kv_len; s++)
            ((float *)ogi_tensor_data(t[n]))[(b * w->kv_len + s) * total + w->past_len + s] = 1.0f;
    n++;
    if (w->past_len > 0) {
        names[n] = "past_key";
        t[n++] = test_tensor_f32(4, pkd, NULL);
        names[n] = "past_value";
        t[n] = test_tensor_f32(4, pvd, NULL);
        for (int64_t b = 0; b < w->batch; b++)
            for (int64_t s = 0; s < w->past_len; s++)
                ((float *)ogi_tensor_data(t[n]))[(b * w->past_len + s) * total + s] = 1.0f;
        n++;
    }
    if (w->nonpad[0] > 0) {
        names[n] = "nonpad";
        t[n++] = test_tensor_i64(1, (int64_t[]){w->batch}, w->nonpad);
    }
    return n;
}

/* Y against w->allowed. */
static void test_window_check(const test_window *w, const char *path_name, const ogi_tensor *y)
{
    const int64_t total = w->past_len + w->kv_len;
    const float *yv = ogi_tensor_data((ogi_tensor *)y);
    for (int64_t r = 0; r < w->batch * w->q_len; r++) {
        int n = 0;
        for (int64_t j = 0; j < total; j++)
            n += w->allowed[r][j] == '1';
        for (int64_t j = 0; j < total; j++) {
            float want = w->allowed[r][j] == '1' ? 1.0f / (float)n : 0.0f;
            checks++;
            TEST_CHECK(fabsf(yv[r * total + j] - want) < 1e-6f,
                       "%s (%s): row %lld key %lld: got %g, want %g", w->what, path_name,
                       (long long)r, (long long)j, yv[r * total + j], want);
        }
    }
}

/* Runs w through the op twice: Y alone (the fast kernel) and with
 * qk_matmul_output (the reference). */
static void test_window_run(const test_window *w, const char *dir)
{
    const char *in[7] = {"Q", "K", "V", "", "", "", ""};
    int n_in = 3;
    if (w->past_len > 0) {
        in[4] = "past_key";
        in[5] = "past_value";
        n_in = 6;
    }
    if (w->nonpad[0] > 0) {
        in[6] = "nonpad";
        n_in = 7;
    }
    const char *names[3] = {"is_causal", "left_window_size", "right_window_size"};
    const int64_t values[3] = {w->causal, w->left, w->right};
    for (int with_qk = 0; with_qk < 2; with_qk++) {
        const char *outs[4] = {"Y", "", "", with_qk ? "qk" : ""};
        pbw m = {0};
        test_build_model(&m, 25, n_in, in, with_qk ? 4 : 1, outs, 3, names, values);
        char path[512];
        snprintf(path, sizeof(path), "%s/window.onnx", dir);
        test_write_file(path, m.data, m.len);
        pbw_free(&m);
        ogi_session *s = NULL;
        ogi_tensor *t[7] = {NULL}, *y = NULL;
        const char *in_names[7], *out_name = "Y";
        int n = test_window_inputs(w, t, in_names);
        ogi_status st = ogi_session_open(path, NULL, &s);
        if (st == OGI_OK)
            st = ogi_session_run(s, (size_t)n, in_names, (const ogi_tensor *const *)t, 1, &out_name,
                                 &y);
        checks++;
        TEST_CHECK(st == OGI_OK, "%s: %s", w->what, ogi_last_error());
        if (st == OGI_OK)
            test_window_check(w, with_qk ? "reference" : "fast", y);
        ogi_tensor_free(y);
        for (int i = 0; i < n; i++)
            ogi_tensor_free(t[i]);
        ogi_session_free(s);
        remove(path);
    }
}

static void test_windows(const char *dir)
{
    /* clang-format off */
    static const test_window cases[] = {
        /* what, batch, q_len, past, new keys, is_causal, left, right, nonpad, allowed */
        {"left window + is_causal", 1, 6, 0, 6, 1, 2, -1, {0},
         {"100000", "110000", "111000", "011100", "001110", "000111"}},
        {"left window + past cache", 1, 2, 4, 2, 1, 2, -1, {0}, {"001110", "000111"}},
        {"left window + nonpad_kv_seqlen", 2, 2, 0, 8, 1, 1, -1, {5, 8},
         {"00110000", "00011000", "00000110", "00000011"}},
        {"two-sided window", 1, 4, 0, 4, 0, 1, 1, {0}, {"1100", "1110", "0111", "0011"}},
        {"right window 0 + nonpad_kv_seqlen", 1, 2, 0, 6, 0, -1, 0, {4}, {"111000", "111100"}},
        {"window before the cache: empty row", 1, 2, 0, 4, 0, 0, 0, {1}, {"0000", "1000"}},
        {"window of 0 + past, not causal", 1, 2, 3, 2, 0, 0, 0, {0}, {"00010", "00001"}},
    };
    /* clang-format on */
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        test_window_run(&cases[k], dir);
}

/* Window attributes before opset 25, or below -1, are invalid models. */
static void test_window_errors(const char *dir)
{
    const char *in[3] = {"Q", "K", "V"}, *outs[1] = {"Y"};
    const struct {
        int opset;
        const char *name;
        int64_t value;
        const char *needle;
    } bad[] = {
        {24, "left_window_size", 2, "needs opset 25"},
        {25, "right_window_size", -2, "below -1"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        pbw m = {0};
        test_build_model(&m, bad[k].opset, 3, in, 1, outs, 1, &bad[k].name, &bad[k].value);
        char path[512];
        snprintf(path, sizeof(path), "%s/bad_window.onnx", dir);
        test_write_file(path, m.data, m.len);
        pbw_free(&m);
        test_window cfg = {"bad", 1, 1, 0, 2, 0, -1, -1, {0}, {NULL}};
        ogi_tensor *t[7] = {NULL}, *y = NULL;
        const char *in_names[7], *out_name = "Y";
        int n = test_window_inputs(&cfg, t, in_names);
        ogi_session *s = NULL;
        ogi_status st = ogi_session_open(path, NULL, &s);
        if (st == OGI_OK)
            st = ogi_session_run(s, (size_t)n, in_names, (const ogi_tensor *const *)t, 1, &out_name,
                                 &y);
        checks++;
        TEST_CHECK(st == OGI_ERR_INVALID_MODEL && strstr(ogi_last_error(), bad[k].needle),
                   "%s=%lld at opset %d: %s (%s)", bad[k].name, (long long)bad[k].value,
                   bad[k].opset, ogi_status_name(st), ogi_last_error());
        ogi_tensor_free(y);
        for (int i = 0; i < n; i++)
            ogi_tensor_free(t[i]);
        ogi_session_free(s);
        remove(path);
    }
}

int main(void)
{
    threadpool *pool = NULL;
    if (threadpool_create(3, &pool) != OGI_OK)
        return 1;
    for (size_t k = 0; k < sizeof(test_isas) / sizeof(test_isas[0]); k++)
        printf("isa %s: %s\n", attention_isa_name(test_isas[k]),
               attention_isa_supported(test_isas[k]) ? "tested" : "not supported here");
    test_edge_cases(pool);
#ifdef __OPTIMIZE__
    test_random_cases(pool, 300, 3000);
    test_small_head_decode(pool);
    test_random_cached_cases(pool, 100, 1000);
#else
    test_random_cases(pool, 120, 600);
    test_small_head_decode(pool);
    test_random_cached_cases(pool, 40, 600);
#endif
    threadpool_free(pool);
    for (size_t k = 0; k < sizeof(test_isas) / sizeof(test_isas[0]); k++)
        printf("isa %s: largest error %.2g\n", attention_isa_name(test_isas[k]), test_worst[k]);
    for (size_t k = 0; k < sizeof(test_int8_isas) / sizeof(test_int8_isas[0]); k++)
        printf("int8 %s: %s, largest difference from scalar int8 %.2g\n",
               attention_int8_isa_name(test_int8_isas[k]),
               attention_int8_isa_supported(test_int8_isas[k]) ? "tested" : "not supported here",
               test_int8_worst[k]);
    printf("int8: smallest cosine against the reference %.6f\n", test_int8_cos);
    char dir[] = "/tmp/ogi_test_attention_XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    test_windows(dir);
    test_window_errors(dir);
    rmdir(dir);
    return test_finish("test_attention", checks);
}
