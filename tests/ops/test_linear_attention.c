/* LinearAttention and CausalConvWithState: the chunked prefill (chunk 1, 7,
 * 64) and the recurrent step against the plain reference recurrence on random
 * inputs, for every update rule, per-key and per-head decay, per-head and
 * shared beta, GQA / MQA, with and without a past state, T up to 2048; decode
 * (T = 1 repeated, the state carried) against one prefill; the fast causal
 * convolution against its reference; then bad inputs through small graphs,
 * each refused with a clear message. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ogi.h"
#include "ops/causal_conv.h"
#include "ops/linear_attention.h"
#include "pb_writer.h"
#include "test_util.h"

static uint64_t test_seed = 0x9e3779b97f4a7c15ull;
static int checks;

static float test_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(test_rand(&test_seed) >> 40) / (float)(1 << 24);
}

static float *test_floats(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (p == NULL)
        abort();
    return p;
}

/* max |a - b| / max |ref| (0 when both are all zero). */
static double test_rel_err(const float *a, const float *ref, int64_t n)
{
    double diff = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)ref[i]));
        mag = fmax(mag, fabs((double)ref[i]));
    }
    if (isnan(diff))
        return INFINITY;
    return mag > 0.0 ? diff / mag : diff;
}

/* ---- LinearAttention: fast paths against the reference ---------------------- */

typedef struct test_la {
    linear_attention_params p;
    bool past;
    float decay_lo; /* decay drawn from [decay_lo, 0] */
    float *q, *k, *v, *decay, *beta, *state0;
} test_la;

static int64_t test_la_state_n(const linear_attention_params *p)
{
    return p->batch * p->kv_heads * p->k_dim * p->v_dim;
}

/* Random inputs: keys L2-normalised (the delta rules need |k| <= 1 to stay
 * stable), beta in (0, 1), log-decays in [decay_lo, 0]. */
static void test_la_fill(test_la *t)
{
    const linear_attention_params *p = &t->p;
    const int64_t bt = p->batch * p->seq_len;
    t->q = test_floats(bt * p->q_heads * p->k_dim);
    t->k = test_floats(bt * p->kv_heads * p->k_dim);
    t->v = test_floats(bt * p->kv_heads * p->v_dim);
    t->decay = test_floats(bt * p->kv_heads * (p->decay_per_key ? p->k_dim : 1));
    t->beta = test_floats(bt * (p->beta_per_head ? p->kv_heads : 1));
    t->state0 = test_floats(test_la_state_n(p));
    for (int64_t i = 0; i < bt * p->q_heads * p->k_dim; i++)
        t->q[i] = test_uniform(-1.0f, 1.0f);
    for (int64_t r = 0; r < bt * p->kv_heads; r++) {
        float *k = t->k + r * p->k_dim, norm = 0.0f;
        for (int64_t i = 0; i < p->k_dim; i++) {
            k[i] = test_uniform(-1.0f, 1.0f);
            norm += k[i] * k[i];
        }
        for (int64_t i = 0; i < p->k_dim; i++)
            k[i] /= sqrtf(norm) + 1e-6f;
    }
    for (int64_t i = 0; i < bt * p->kv_heads * p->v_dim; i++)
        t->v[i] = test_uniform(-1.0f, 1.0f);
    for (int64_t i = 0; i < bt * p->kv_heads * (p->decay_per_key ? p->k_dim : 1); i++)
        t->decay[i] = test_uniform(t->decay_lo, 0.0f);
    for (int64_t i = 0; i < bt * (p->beta_per_head ? p->kv_heads : 1); i++)
        t->beta[i] = test_uniform(0.05f, 0.95f);
    if (t->past)
        for (int64_t i = 0; i < test_la_state_n(p); i++)
            t->state0[i] = test_uniform(-0.5f, 0.5f);
}

static void test_la_free(test_la *t)
{
    free(t->q);
    free(t->k);
    free(t->v);
    free(t->decay);
    free(t->beta);
    free(t->state0);
}

/* Runs one path from state0; out and state receive the results. */
static void test_la_run(threadpool *pool, const test_la *t, const linear_attention_params *p,
                        linear_attention_path path, float *out, float *state)
{
    memcpy(state, t->state0, sizeof(float) * (size_t)test_la_state_n(p));
    const linear_attention_data d = {t->q, t->k, t->v, t->decay, t->beta, state, out};
    ogi_status st = linear_attention_run(pool, p, &d, path);
    checks++;
    TEST_CHECK(st == OGI_OK, "linear_attention_run %s: %s", linear_attention_path_name(path),
               ogi_last_error());
}

static const char *const test_rule_names[4] = {"linear", "gated", "delta", "gated_delta"};

static void test_la_case(threadpool *pool, test_la *t, const char *what)
{
    test_la_fill(t);
    const linear_attention_params *p = &t->p;
    const int64_t n_out = p->batch * p->seq_len * p->q_heads * p->v_dim;
    const int64_t n_state = test_la_state_n(p);
    float *ref_out = test_floats(n_out), *ref_state = test_floats(n_state);
    float *out = test_floats(n_out), *state = test_floats(n_state);
    test_la_run(pool, t, p, LINEAR_ATTENTION_REFERENCE, ref_out, ref_state);
    const struct {
        linear_attention_path path;
        int64_t chunk;
    } runs[] = {{LINEAR_ATTENTION_RECURRENT, 0},
                {LINEAR_ATTENTION_CHUNKED, 1},
                {LINEAR_ATTENTION_CHUNKED, 7},
                {LINEAR_ATTENTION_CHUNKED, 64}};
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        linear_attention_params q = *p;
        q.chunk = runs[r].chunk;
        memset(out, 0xff, sizeof(float) * (size_t)n_out); /* NaN: unwritten rows show */
        test_la_run(pool, t, &q, runs[r].path, out, state);
        const double eo = test_rel_err(out, ref_out, n_out);
        const double es = test_rel_err(state, ref_state, n_state);
        checks++;
        TEST_CHECK(eo <= 1e-4 && es <= 1e-4,
                   "%s: %s B=%lld T=%lld Hq=%lld Hkv=%lld dk=%lld dv=%lld %s-decay %s-beta "
                   "past=%d %s chunk %lld: output error %.3g, state error %.3g",
                   what, test_rule_names[p->rule], (long long)p->batch, (long long)p->seq_len,
                   (long long)p->q_heads, (long long)p->kv_heads, (long long)p->k_dim,
                   (long long)p->v_dim, p->decay_per_key ? "key" : "head",
                   p->beta_per_head ? "head" : "shared", t->past,
                   linear_attention_path_name(runs[r].path), (long long)runs[r].chunk, eo, es);
    }
    free(ref_out);
    free(ref_state);
    free(out);
    free(state);
    test_la_free(t);
}

static void test_la_random(threadpool *pool)
{
    const int64_t heads[][2] = {{1, 1}, {2, 2}, {4, 2}, {3, 1}, {4, 4}};
    const int64_t dims[][2] = {{8, 8}, {5, 11}, {16, 12}, {32, 32}, {1, 3}};
    const int64_t lens[] = {1, 2, 7, 8, 63, 64, 65, 130};
    for (int rule = 0; rule < 4; rule++)
        for (int k = 0; k < 10; k++) {
            test_la t = {0};
            t.p.rule = (linear_attention_rule)rule;
            t.p.batch = 1 + (int64_t)(test_rand(&test_seed) % 2);
            t.p.seq_len = lens[test_rand(&test_seed) % 8];
            const int64_t *h = heads[test_rand(&test_seed) % 5];
            const int64_t *dm = dims[test_rand(&test_seed) % 5];
            t.p.q_heads = h[0];
            t.p.kv_heads = h[1];
            t.p.k_dim = dm[0];
            t.p.v_dim = dm[1];
            t.p.scale = 1.0f / sqrtf((float)dm[0]);
            t.p.decay_per_key = k % 2 == 0;
            t.p.beta_per_head = k % 3 != 0;
            t.past = k % 4 < 2;
            t.decay_lo = -0.5f;
            test_la_case(pool, &t, "random");
        }
}

/* Long inputs, and decays strong enough that a per-key chunk of 64 leaves
 * the factored range (the chunk then runs token by token). */
static void test_la_long(threadpool *pool)
{
#ifdef __OPTIMIZE__
    const int64_t long_len = 2048;
#else
    const int64_t long_len = 512;
#endif
    for (int rule = 0; rule < 4; rule++) {
        test_la t = {0};
        t.p = (linear_attention_params){
            1, long_len, 4, 2, 16, 24, (linear_attention_rule)rule, 0.25f, rule % 2 == 1, true, 0};
        t.past = true;
        t.decay_lo = -0.1f;
        test_la_case(pool, &t, "long");
    }
    for (int per_key = 0; per_key < 2; per_key++) {
        test_la t = {0};
        t.p = (linear_attention_params){2,    200,     2,    2, 8, 8, LINEAR_ATTENTION_GATED_DELTA,
                                        0.5f, per_key, true, 0};
        t.past = true;
        t.decay_lo = -3.0f;
        test_la_case(pool, &t, "strong decay");
    }
}

/* T = 1 steps with the state carried == one prefill of all T tokens. */
static void test_la_decode(threadpool *pool)
{
    for (int rule = 0; rule < 4; rule++) {
        test_la t = {0};
        const int64_t T = 40;
        t.p = (linear_attention_params){2,    T,         4,    2, 8, 6, (linear_attention_rule)rule,
                                        0.3f, rule == 1, true, 0};
        t.past = true;
        t.decay_lo = -0.5f;
        test_la_fill(&t);
        const linear_attention_params *p = &t.p;
        const int64_t n_state = test_la_state_n(p), qw = p->q_heads * p->k_dim;
        const int64_t kw = p->kv_heads * p->k_dim, vw = p->kv_heads * p->v_dim,
                      ow = p->q_heads * p->v_dim;
        const int64_t gw = p->kv_heads * (p->decay_per_key ? p->k_dim : 1),
                      bw = p->beta_per_head ? p->kv_heads : 1;
        float *ref_out = test_floats(p->batch * T * ow), *ref_state = test_floats(n_state);
        test_la_run(pool, &t, p, LINEAR_ATTENTION_AUTO, ref_out, ref_state);
        float *state = test_floats(n_state), *step_out = test_floats(p->batch * ow);
        float *sq = test_floats(p->batch * qw), *sk = test_floats(p->batch * kw);
        float *sv = test_floats(p->batch * vw), *sg = test_floats(p->batch * gw);
        float *sb = test_floats(p->batch * bw), *all = test_floats(p->batch * T * ow);
        memcpy(state, t.state0, sizeof(float) * (size_t)n_state);
        linear_attention_params one = *p;
        one.seq_len = 1;
        for (int64_t s = 0; s < T; s++) {
            for (int64_t b = 0; b < p->batch; b++) {
                const int64_t row = b * T + s;
                memcpy(sq + b * qw, t.q + row * qw, sizeof(float) * (size_t)qw);
                memcpy(sk + b * kw, t.k + row * kw, sizeof(float) * (size_t)kw);
                memcpy(sv + b * vw, t.v + row * vw, sizeof(float) * (size_t)vw);
                memcpy(sg + b * gw, t.decay + row * gw, sizeof(float) * (size_t)gw);
                memcpy(sb + b * bw, t.beta + row * bw, sizeof(float) * (size_t)bw);
            }
            const linear_attention_data d = {sq, sk, sv, sg, sb, state, step_out};
            checks++;
            TEST_CHECK(linear_attention_run(pool, &one, &d, LINEAR_ATTENTION_AUTO) == OGI_OK,
                       "decode step: %s", ogi_last_error());
            for (int64_t b = 0; b < p->batch; b++)
                memcpy(all + (b * T + s) * ow, step_out + b * ow, sizeof(float) * (size_t)ow);
        }
        const double eo = test_rel_err(all, ref_out, p->batch * T * ow);
        const double es = test_rel_err(state, ref_state, n_state);
        checks++;
        TEST_CHECK(eo <= 1e-4 && es <= 1e-4, "%s decode x%lld vs prefill: output %.3g, state %.3g",
                   test_rule_names[rule], (long long)T, eo, es);
        free(ref_out);
        free(ref_state);
        free(state);
        free(step_out);
        free(sq);
        free(sk);
        free(sv);
        free(sg);
        free(sb);
        free(all);
        test_la_free(&t);
    }
}

/* ---- CausalConvWithState ------------------------------------------------------ */

static void test_conv_case(threadpool *pool, causal_conv_params p, bool bias, bool past)
{
    const int64_t n_x = p.batch * p.channels * p.seq_len;
    const int64_t n_s = p.batch * p.channels * (p.kernel - 1);
    float *x = test_floats(n_x), *w = test_floats(p.channels * p.kernel);
    float *b = test_floats(p.channels), *s0 = test_floats(n_s);
    for (int64_t i = 0; i < n_x; i++)
        x[i] = test_uniform(-2.0f, 2.0f);
    for (int64_t i = 0; i < p.channels * p.kernel; i++)
        w[i] = test_uniform(-1.0f, 1.0f);
    for (int64_t i = 0; i < p.channels; i++)
        b[i] = test_uniform(-1.0f, 1.0f);
    for (int64_t i = 0; i < n_s && past; i++)
        s0[i] = test_uniform(-2.0f, 2.0f);
    float *y_ref = test_floats(n_x), *s_ref = test_floats(n_s);
    float *y = test_floats(n_x), *s = test_floats(n_s);
    memcpy(s_ref, s0, sizeof(float) * (size_t)n_s);
    memcpy(s, s0, sizeof(float) * (size_t)n_s);
    const causal_conv_data dr = {x, w, bias ? b : NULL, s_ref, y_ref};
    const causal_conv_data df = {x, w, bias ? b : NULL, s, y};
    checks += 2;
    TEST_CHECK(causal_conv_run(pool, &p, &dr, true) == OGI_OK, "conv reference");
    TEST_CHECK(causal_conv_run(pool, &p, &df, false) == OGI_OK, "conv fast");
    const double ey = test_rel_err(y, y_ref, n_x), es = test_rel_err(s, s_ref, n_s);
    checks++;
    TEST_CHECK(ey <= 1e-5 && es == 0.0,
               "conv B=%lld C=%lld L=%lld K=%lld silu=%d bias=%d past=%d: y %.3g, state %.3g",
               (long long)p.batch, (long long)p.channels, (long long)p.seq_len, (long long)p.kernel,
               p.silu, bias, past, ey, es);
    /* decode: L steps of one column each == the prefill */
    if (p.seq_len > 0) {
        causal_conv_params one = p;
        one.seq_len = 1;
        float *xs = test_floats(p.batch * p.channels), *ys = test_floats(p.batch * p.channels);
        memcpy(s, s0, sizeof(float) * (size_t)n_s);
        double worst = 0.0;
        for (int64_t t = 0; t < p.seq_len; t++) {
            for (int64_t r = 0; r < p.batch * p.channels; r++)
                xs[r] = x[r * p.seq_len + t];
            const causal_conv_data dd = {xs, w, bias ? b : NULL, s, ys};
            causal_conv_run(pool, &one, &dd, false);
            for (int64_t r = 0; r < p.batch * p.channels; r++)
                worst = fmax(worst, fabs((double)ys[r] - (double)y_ref[r * p.seq_len + t]));
        }
        checks++;
        TEST_CHECK(worst <= 1e-5 && test_rel_err(s, s_ref, n_s) == 0.0,
                   "conv decode x%lld K=%lld: worst %.3g", (long long)p.seq_len,
                   (long long)p.kernel, worst);
        free(xs);
        free(ys);
    }
    free(x);
    free(w);
    free(b);
    free(s0);
    free(y_ref);
    free(s_ref);
    free(y);
    free(s);
}

static void test_conv_random(threadpool *pool)
{
    const int64_t lens[] = {0, 1, 2, 3, 5, 37, 300};
    for (int64_t kernel = 1; kernel <= 5; kernel++)
        for (int l = 0; l < 7; l++)
            for (int v = 0; v < 2; v++) {
                causal_conv_params p = {1 + v, 3 + 5 * v, lens[l], kernel, v == 1};
                test_conv_case(pool, p, l % 2 == 0, (l + v) % 3 != 0);
            }
}

/* ---- bad inputs through the op ------------------------------------------------ */

typedef struct test_attr {
    const char *name;
    int64_t i;     /* INT value ... */
    const char *s; /* ... or STRING when non-NULL */
} test_attr;

typedef struct test_input {
    const char *name;
    int rank;
    int64_t dims[4];
} test_input;

static void test_bad_case(const char *dir, const char *op, const test_input *ins, int n_in,
                          const test_attr *attrs, int n_attrs, const char *needle)
{
    pbw g = {0}, node = {0}, model = {0};
    for (int i = 0; i < n_in; i++)
        pbw_string(&node, 1, ins[i].name);
    pbw_string(&node, 2, "out");
    pbw_string(&node, 2, "state");
    pbw_string(&node, 3, "node");
    pbw_string(&node, 4, op);
    for (int a = 0; a < n_attrs; a++) {
        pbw attr = {0};
        pbw_string(&attr, 1, attrs[a].name);
        if (attrs[a].s != NULL) {
            pbw_bytes(&attr, 4, attrs[a].s, strlen(attrs[a].s));
            pbw_int(&attr, 20, 3); /* STRING */
        } else {
            pbw_int(&attr, 3, (uint64_t)attrs[a].i);
            pbw_int(&attr, 20, 2); /* INT */
        }
        pbw_message(&node, 5, &attr);
    }
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "g");
    for (int i = 0; i < n_in; i++)
        if (ins[i].name[0] != '\0')
            pbw_value_info(&g, 11, ins[i].name, OGI_FLOAT32, -1, NULL);
    pbw_value_info(&g, 12, "out", OGI_FLOAT32, -1, NULL);
    pbw_value_info(&g, 12, "state", OGI_FLOAT32, -1, NULL);
    pbw_model(&model, 10, 27, &g);
    char path[512];
    snprintf(path, sizeof(path), "%s/bad.onnx", dir);
    test_write_file(path, model.data, model.len);
    pbw_free(&model);

    ogi_tensor *t[6] = {NULL}, *outs[2] = {NULL, NULL};
    const char *names[6], *out_names[2] = {"out", "state"};
    int n = 0;
    for (int i = 0; i < n_in; i++) {
        if (ins[i].name[0] == '\0')
            continue;
        int64_t count = 1;
        for (int d = 0; d < ins[i].rank; d++)
            count *= ins[i].dims[d];
        float *vals = test_floats(count);
        for (int64_t e = 0; e < count; e++)
            vals[e] = 0.1f;
        t[n] = test_tensor_f32(ins[i].rank, ins[i].dims, vals);
        names[n++] = ins[i].name;
        free(vals);
    }
    ogi_session *s = NULL;
    ogi_status st = ogi_session_open(path, NULL, &s);
    if (st == OGI_OK)
        st = ogi_session_run(s, (size_t)n, names, (const ogi_tensor *const *)t, 2, out_names, outs);
    checks++;
    TEST_CHECK(st != OGI_OK && strstr(ogi_last_error(), needle) != NULL,
               "%s: expected an error with '%s', got %s (%s)", op, needle, ogi_status_name(st),
               st == OGI_OK ? "" : ogi_last_error());
    ogi_tensor_free(outs[0]);
    ogi_tensor_free(outs[1]);
    for (int i = 0; i < n; i++)
        ogi_tensor_free(t[i]);
    ogi_session_free(s);
    remove(path);
}

static void test_bad_inputs(const char *dir)
{
    /* B=1, T=2, Hq=Hkv=2, d=4 */
    const test_input q = {"q", 3, {1, 2, 8}}, k = {"k", 3, {1, 2, 8}}, v = {"v", 3, {1, 2, 8}};
    const test_input decay = {"decay", 3, {1, 2, 8}}, beta = {"beta", 3, {1, 2, 2}};
    const test_input none = {"", 0, {0}};
    const test_attr heads[2] = {{"q_num_heads", 2, NULL}, {"kv_num_heads", 2, NULL}};
    const test_input full[6] = {q, k, v, {"past", 4, {1, 2, 4, 4}}, decay, beta};

    const test_attr gqa_bad[2] = {{"q_num_heads", 3, NULL}, {"kv_num_heads", 2, NULL}};
    const test_input gq[6] = {{"q", 3, {1, 2, 12}}, k, v, none, decay, beta};
    test_bad_case(dir, "LinearAttention", gq, 6, gqa_bad, 2, "not a multiple of kv_num_heads");

    const test_input bad_past[6] = {q, k, v, {"past", 4, {1, 2, 4, 5}}, decay, beta};
    test_bad_case(dir, "LinearAttention", bad_past, 6, heads, 2, "input 3 (past_state)");
    const test_input past_rank[6] = {q, k, v, {"past", 3, {1, 2, 16}}, decay, beta};
    test_bad_case(dir, "LinearAttention", past_rank, 6, heads, 2, "input 3 (past_state)");

    const test_attr bad_rule[3] = {heads[0], heads[1], {"update_rule", 0, "softmax"}};
    test_bad_case(dir, "LinearAttention", full, 6, bad_rule, 3, "update_rule='softmax'");

    const test_input q_rank[6] = {{"q", 2, {2, 8}}, k, v, none, decay, beta};
    test_bad_case(dir, "LinearAttention", q_rank, 6, heads, 2, "input 0 (query): expected rank 3");
    const test_input k_rank[6] = {q, {"k", 4, {1, 2, 2, 4}}, v, none, decay, beta};
    test_bad_case(dir, "LinearAttention", k_rank, 6, heads, 2, "input 1 (key): expected rank 3");
    const test_input k_dim[6] = {q, {"k", 3, {1, 2, 6}}, v, none, decay, beta};
    test_bad_case(dir, "LinearAttention", k_dim, 6, heads, 2, "input 1 (key): last dim");

    const test_input no_decay[6] = {q, k, v, none, none, beta};
    test_bad_case(dir, "LinearAttention", no_decay, 6, heads, 2, "input 4 (decay) is required");
    const test_input bad_decay[6] = {q, k, v, none, {"decay", 3, {1, 2, 5}}, beta};
    test_bad_case(dir, "LinearAttention", bad_decay, 6, heads, 2, "input 4 (decay): last dim");
    const test_input bad_beta[6] = {q, k, v, none, decay, {"beta", 3, {1, 2, 3}}};
    test_bad_case(dir, "LinearAttention", bad_beta, 6, heads, 2, "input 5 (beta): last dim");
    const test_input no_beta[5] = {q, k, v, none, decay};
    test_bad_case(dir, "LinearAttention", no_beta, 5, heads, 2, "input 5 (beta) is required");
    const test_attr no_heads[1] = {{"update_rule", 0, "linear"}};
    test_bad_case(dir, "LinearAttention", full, 3, no_heads, 1, "must be positive");

    const test_input x = {"x", 3, {1, 4, 6}}, w = {"w", 3, {4, 1, 3}};
    const test_input conv_ok[2] = {x, w};
    const test_attr act_bad[1] = {{"activation", 0, "gelu"}};
    test_bad_case(dir, "CausalConvWithState", conv_ok, 2, act_bad, 1, "activation='gelu'");
    const test_input x_rank[2] = {{"x", 2, {4, 6}}, w};
    test_bad_case(dir, "CausalConvWithState", x_rank, 2, NULL, 0, "expected rank 3");
    const test_input w_bad[2] = {x, {"w", 3, {3, 1, 3}}};
    test_bad_case(dir, "CausalConvWithState", w_bad, 2, NULL, 0, "input 1 (weight)");
    const test_input conv_past[4] = {x, w, none, {"past", 3, {1, 4, 3}}};
    test_bad_case(dir, "CausalConvWithState", conv_past, 4, NULL, 0, "input 3 (past_state)");
    const test_input conv_bias[3] = {x, w, {"bias", 1, {5}}};
    test_bad_case(dir, "CausalConvWithState", conv_bias, 3, NULL, 0, "input 2 (bias)");
}

int main(void)
{
    threadpool *pool = NULL;
    if (threadpool_create(3, &pool) != OGI_OK)
        return 1;
    test_la_random(pool);
    test_la_random(NULL);
    test_la_long(pool);
    test_la_decode(pool);
    test_conv_random(pool);
    threadpool_free(pool);
    char dir[] = "/tmp/ogi_linear_attention_XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    test_bad_inputs(dir);
    rmdir(dir);
    return test_finish("test_linear_attention", checks);
}
