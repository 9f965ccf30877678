/* FlexAttention (ai.onnx.preview): one-node models with score_mod / mask_mod
 * / prob_mod subgraphs on random shapes (GQA, odd head sizes, q_len 1,
 * zero-length sequences), float32 / float16 / double inputs. Each case runs
 * twice — as the op chooses (the fast path for the recognised patterns,
 * which the run counters must show) and with OGI_FLEX_ATTENTION=general —
 * and both are compared with a plain loop written here. Then bad inputs and
 * bad subgraphs, each of which must fail with a clear message. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "ogi.h"
#include "ops/flex_attention.h"
#include "pb_writer.h"
#include "test_util.h"

static uint64_t test_seed = 0x9e3779b97f4a7c15ull;
static int checks;
static char test_dir[] = "/tmp/ogi_test_flex_XXXXXX";

static int64_t test_pick(const int64_t *choices, int n)
{
    return choices[test_rand(&test_seed) % (uint64_t)n];
}

static double test_uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(test_rand(&test_seed) >> 11) / 9007199254740992.0;
}

/* ---- the modifiers -------------------------------------------------------------- */

typedef enum test_mod {
    MOD_NONE,
    MOD_CAUSAL,      /* Where(Reshape(Range) >= Reshape(Range), x, -inf), as the ONNX tests */
    MOD_CAUSAL_UNSQ, /* the same with Unsqueeze, a 1-D key range and LessOrEqual(k, q) */
    MOD_REL,         /* x + Cast(q_idx - kv_idx) * 0.25 */
    MOD_SOFTCAP,     /* Mul(Tanh(Div(x, 3)), 3) */
    MOD_DIV,         /* x / 2.5 */
    MOD_SQUARE,      /* x * x: not recognised */
    MOD_HEAD_BIAS,   /* x + a [1, heads, 1, 1] constant: not recognised */
    MOD_COUNT,
} test_mod;

typedef enum test_prob {
    PROB_NONE,
    PROB_HALF,   /* p * 0.5 */
    PROB_SQUARE, /* p * p: not recognised */
    PROB_COUNT,
} test_prob;

static const double test_rel_alpha = 0.25, test_cap = 3.0, test_div = 2.5;

/* Whether the fast path serves m: a per-head bias of one head is a scalar. */
static bool test_mod_recognised(test_mod m, int64_t heads)
{
    return m != MOD_SQUARE && (m != MOD_HEAD_BIAS || heads == 1);
}

static double test_head_bias(int64_t h)
{
    return 0.3 * (double)h - 0.5;
}

/* The plain loop's modifier of score s at (h, i, j). */
static double test_apply_mod(test_mod m, int64_t h, int64_t i, int64_t j, double s)
{
    switch (m) {
    case MOD_CAUSAL:
    case MOD_CAUSAL_UNSQ:
        return j <= i ? s : -INFINITY;
    case MOD_REL:
        return s + test_rel_alpha * (double)(i - j);
    case MOD_SOFTCAP:
        return test_cap * tanh(s / test_cap);
    case MOD_DIV:
        return s / test_div;
    case MOD_SQUARE:
        return s * s;
    case MOD_HEAD_BIAS:
        return s + test_head_bias(h);
    default:
        return s;
    }
}

static double test_apply_prob(test_prob m, double p)
{
    return m == PROB_HALF ? 0.5 * p : m == PROB_SQUARE ? p * p : p;
}

/* ---- writing models --------------------------------------------------------------- */

/* A fixed32 field (AttributeProto.f): the key, then the float's 4 bytes,
 * appended to the writer's public buffer. */
/* A node with up to three inputs (NULL: fewer), one output and optionally
 * one int attribute (attr NULL: none). */
static void test_node(pbw *g, const char *op, const char *in0, const char *in1, const char *in2,
                      const char *out, const char *attr, int64_t value)
{
    pbw n = {0};
    const char *in[3] = {in0, in1, in2};
    int n_in = 0;
    while (n_in < 3 && in[n_in] != NULL)
        n_in++;
    pbw_node_begin(&n, op, out, n_in, in, 1, &out);
    if (attr != NULL)
        pbw_attr_int(&n, attr, value);
    pbw_message(g, 1, &n);
}

static void test_init_i64(pbw *g, const char *name, int rank, const int64_t *dims,
                          const int64_t *vals)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    pbw_tensor_raw(g, 5, name, OGI_INT64, rank, dims, vals, (size_t)n * sizeof(int64_t));
}

static void test_init_scalar_i64(pbw *g, const char *name, int64_t v)
{
    test_init_i64(g, name, 0, NULL, &v);
}

/* A float constant of dtype (float32 or double) and shape dims. */
static void test_init_float(pbw *g, const char *name, ogi_dtype dtype, int rank,
                            const int64_t *dims, const double *vals)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    size_t es = dtype == OGI_FLOAT64 ? 8 : 4;
    uint8_t *raw = malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
        if (dtype == OGI_FLOAT64) {
            memcpy(raw + i * 8, &vals[i], 8);
        } else {
            float f = (float)vals[i];
            memcpy(raw + i * 4, &f, 4);
        }
    }
    pbw_tensor_raw(g, 5, name, dtype, rank, dims, raw, (size_t)n * es);
    free(raw);
}

static void test_init_scalar_float(pbw *g, const char *name, ogi_dtype dtype, double v)
{
    test_init_float(g, name, dtype, 0, NULL, &v);
}

/* Shape(x) -> the query and key index ranges qr, kr. */
static void test_index_ranges(pbw *g)
{
    test_init_scalar_i64(g, "zero", 0);
    test_init_scalar_i64(g, "one", 1);
    test_init_scalar_i64(g, "two", 2);
    test_init_scalar_i64(g, "three", 3);
    test_node(g, "Shape", "x", NULL, NULL, "shape", NULL, 0);
    test_node(g, "Gather", "shape", "two", NULL, "L", "axis", 0);
    test_node(g, "Gather", "shape", "three", NULL, "S", "axis", 0);
    test_node(g, "Range", "zero", "L", "one", "qr", NULL, 0);
    test_node(g, "Range", "zero", "S", "one", "kr", NULL, 0);
}

/* The modifier subgraph: input x of dtype, output y. */
static void test_mod_graph(pbw *g, test_mod m, ogi_dtype dtype, int64_t heads)
{
    switch (m) {
    case MOD_CAUSAL: {
        static const int64_t qs[4] = {1, 1, -1, 1}, ks[4] = {1, 1, 1, -1}, four = 4;
        test_index_ranges(g);
        test_init_i64(g, "qs", 1, &four, qs);
        test_init_i64(g, "ks", 1, &four, ks);
        test_init_scalar_float(g, "ninf", dtype, -INFINITY);
        test_node(g, "Reshape", "qr", "qs", NULL, "qi", NULL, 0);
        test_node(g, "Reshape", "kr", "ks", NULL, "ki", NULL, 0);
        test_node(g, "GreaterOrEqual", "qi", "ki", NULL, "mask", NULL, 0);
        test_node(g, "Where", "mask", "x", "ninf", "y", NULL, 0);
        break;
    }
    case MOD_CAUSAL_UNSQ: {
        static const int64_t axis = 1, one = 1;
        test_index_ranges(g);
        test_init_i64(g, "axes", 1, &one, &axis);
        test_init_scalar_float(g, "ninf", dtype, -INFINITY);
        test_node(g, "Unsqueeze", "qr", "axes", NULL, "qi", NULL, 0);
        test_node(g, "LessOrEqual", "kr", "qi", NULL, "mask", NULL, 0);
        test_node(g, "Where", "mask", "x", "ninf", "y", NULL, 0);
        break;
    }
    case MOD_REL: {
        static const int64_t qs[2] = {-1, 1}, ks[2] = {1, -1}, two = 2;
        test_index_ranges(g);
        test_init_i64(g, "qs", 1, &two, qs);
        test_init_i64(g, "ks", 1, &two, ks);
        test_init_scalar_float(g, "alpha", dtype, test_rel_alpha);
        test_node(g, "Reshape", "qr", "qs", NULL, "qi", NULL, 0);
        test_node(g, "Reshape", "kr", "ks", NULL, "ki", NULL, 0);
        test_node(g, "Sub", "qi", "ki", NULL, "rel", NULL, 0);
        test_node(g, "Cast", "rel", NULL, NULL, "relf", "to", dtype);
        test_node(g, "Mul", "relf", "alpha", NULL, "bias", NULL, 0);
        test_node(g, "Add", "x", "bias", NULL, "y", NULL, 0);
        break;
    }
    case MOD_SOFTCAP:
        test_init_scalar_float(g, "cap", dtype, test_cap);
        test_node(g, "Div", "x", "cap", NULL, "t", NULL, 0);
        test_node(g, "Tanh", "t", NULL, NULL, "u", NULL, 0);
        test_node(g, "Mul", "u", "cap", NULL, "y", NULL, 0);
        break;
    case MOD_DIV:
        test_init_scalar_float(g, "d", dtype, test_div);
        test_node(g, "Div", "x", "d", NULL, "y", NULL, 0);
        break;
    case MOD_SQUARE:
        test_node(g, "Mul", "x", "x", NULL, "y", NULL, 0);
        break;
    case MOD_HEAD_BIAS: {
        int64_t dims[4] = {1, heads, 1, 1};
        double *vals = malloc((size_t)heads * sizeof(double));
        for (int64_t h = 0; h < heads; h++)
            vals[h] = test_head_bias(h);
        test_init_float(g, "hb", dtype, 4, dims, vals);
        free(vals);
        test_node(g, "Add", "x", "hb", NULL, "y", NULL, 0);
        break;
    }
    default:
        test_node(g, "Identity", "x", NULL, NULL, "y", NULL, 0);
        break;
    }
}

/* A graph attribute `name` holding g (freed). */
/* What one model holds. */
typedef struct test_model {
    ogi_dtype qk_dtype, v_dtype, scores_dtype;
    bool has_scale;
    double scale;
    test_mod score_mod, mask_mod;
    test_prob prob_mod;
    int64_t heads;    /* for MOD_HEAD_BIAS */
    int bad_subgraph; /* 0: none; else which malformed score_mod (test_bad_subgraphs) */
    /* 1: the subgraphs take the index form (MOD_REL, MOD_CAUSAL, PROB_HALF
     * only); 2: the same with a mask_mod giving float32, not bool */
    int index_form;
} test_model;

static void test_bad_score_mod(pbw *g, int kind, ogi_dtype dtype)
{
    switch (kind) {
    case 1: /* two outputs */
        test_node(g, "Identity", "x", NULL, NULL, "y", NULL, 0);
        test_node(g, "Identity", "x", NULL, NULL, "y2", NULL, 0);
        pbw_value_info(g, 12, "y2", dtype, -1, NULL);
        break;
    case 2: /* wrong shape: the dims reversed */
        test_node(g, "Transpose", "x", NULL, NULL, "y", NULL, 0);
        break;
    case 3: /* wrong dtype */
        test_node(g, "Cast", "x", NULL, NULL, "y", "to",
                  dtype == OGI_FLOAT64 ? OGI_FLOAT32 : OGI_FLOAT64);
        break;
    case 4: /* two inputs */
        test_node(g, "Add", "x", "x2", NULL, "y", NULL, 0);
        pbw_value_info(g, 11, "x2", dtype, -1, NULL);
        break;
    default: /* a failing op inside: Reshape to a size that cannot hold it */
    {
        static const int64_t one = 1, shape = 7;
        test_init_i64(g, "shape", 1, &one, &shape);
        test_node(g, "Reshape", "x", "shape", NULL, "y", NULL, 0);
        break;
    }
    }
}

/* Subgraph k (score_mod, mask_mod, prob_mod) in the index form:
 * (x, batch, head, q_idx, kv_idx), or (batch, head, q_idx, kv_idx) giving
 * a bool keep-mask for mask_mod. */
static void test_index_form_graph(pbw *g, int k, const test_model *tm)
{
    if (k == 0) {
        test_init_scalar_float(g, "alpha", tm->scores_dtype, test_rel_alpha);
        test_node(g, "Sub", "qi", "ki", NULL, "rel", NULL, 0);
        test_node(g, "Cast", "rel", NULL, NULL, "relf", "to", tm->scores_dtype);
        test_node(g, "Mul", "relf", "alpha", NULL, "bias", NULL, 0);
        test_node(g, "Add", "x", "bias", NULL, "y", NULL, 0);
    } else if (k == 1) {
        const char *keep = tm->index_form == 2 ? "keep" : "y";
        test_node(g, "GreaterOrEqual", "qi", "ki", NULL, keep, NULL, 0);
        if (tm->index_form == 2)
            test_node(g, "Cast", "keep", NULL, NULL, "y", "to", OGI_FLOAT32);
    } else {
        test_init_scalar_float(g, "half", tm->scores_dtype, 0.5);
        test_node(g, "Mul", "x", "half", NULL, "y", NULL, 0);
    }
    if (k != 1)
        pbw_value_info(g, 11, "x", tm->scores_dtype, -1, NULL);
    const char *idx[4] = {"b", "h", "qi", "ki"};
    for (int i = 0; i < 4; i++)
        pbw_value_info(g, 11, idx[i], OGI_INT64, -1, NULL);
    pbw_value_info(g, 12, "y",
                   k != 1                ? tm->scores_dtype
                   : tm->index_form == 2 ? OGI_FLOAT32
                                         : OGI_BOOL,
                   -1, NULL);
}

static void test_write_model(const test_model *tm, const char *path)
{
    pbw node = {0}, g = {0}, m = {0};
    const char *in[3] = {"Q", "K", "V"}, *out[1] = {"Y"};
    pbw_node_begin(&node, "FlexAttention", "flex", 3, in, 1, out);
    pbw_string(&node, 7, "ai.onnx.preview");
    if (tm->has_scale)
        pbw_attr_float(&node, "scale", (float)tm->scale);
    const char *names[3] = {"score_mod", "mask_mod", "prob_mod"};
    for (int k = 0; k < 3; k++) {
        bool present = k == 0   ? tm->score_mod != MOD_NONE || tm->bad_subgraph
                       : k == 1 ? tm->mask_mod != MOD_NONE
                                : tm->prob_mod != PROB_NONE;
        if (!present)
            continue;
        pbw sub = {0};
        pbw_string(&sub, 2, names[k]);
        if (tm->index_form && !(k == 0 && tm->bad_subgraph)) {
            test_index_form_graph(&sub, k, tm);
            pbw_attr_graph(&node, names[k], &sub);
            continue;
        }
        if (k == 0 && tm->bad_subgraph)
            test_bad_score_mod(&sub, tm->bad_subgraph, tm->scores_dtype);
        else if (k == 2)
            test_node(&sub, "Mul", "x", tm->prob_mod == PROB_HALF ? "half" : "x", NULL, "y", NULL,
                      0);
        else
            test_mod_graph(&sub, k == 0 ? tm->score_mod : tm->mask_mod, tm->scores_dtype,
                           tm->heads);
        if (k == 2 && tm->prob_mod == PROB_HALF)
            test_init_scalar_float(&sub, "half", tm->scores_dtype, 0.5);
        pbw_value_info(&sub, 11, "x", tm->scores_dtype, -1, NULL);
        pbw_value_info(&sub, 12, "y", tm->scores_dtype, -1, NULL);
        pbw_attr_graph(&node, names[k], &sub);
    }
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "flex");
    pbw_value_info(&g, 11, "Q", tm->qk_dtype, -1, NULL);
    pbw_value_info(&g, 11, "K", tm->qk_dtype, -1, NULL);
    pbw_value_info(&g, 11, "V", tm->v_dtype, -1, NULL);
    pbw_value_info(&g, 12, "Y", tm->v_dtype, -1, NULL);
    pbw_model(&m, 10, 21, &g);
    pbw_opset_import(&m, "ai.onnx.preview", 1);
    test_write_file(path, m.data, m.len);
    pbw_free(&m);
}

/* ---- running ------------------------------------------------------------------------ */

/* A tensor of dtype holding vals (rounded to dtype). */
static ogi_tensor *test_tensor(ogi_dtype dtype, const int64_t *dims, const double *vals)
{
    ogi_tensor *t = NULL;
    if (ogi_tensor_create(dtype, 4, dims, &t) != OGI_OK)
        return NULL;
    int64_t n = dims[0] * dims[1] * dims[2] * dims[3];
    for (int64_t i = 0; i < n; i++)
        dtype_set_f64(ogi_tensor_data(t), dtype, i, vals[i]);
    return t;
}

/* Runs the model at path on q, k, v; *y gets the output (NULL on failure). */
static ogi_status test_run(const char *path, ogi_tensor *const in[3], ogi_tensor **y)
{
    const char *names[3] = {"Q", "K", "V"}, *out = "Y";
    ogi_session *s = NULL;
    *y = NULL;
    ogi_status st = ogi_session_open(path, NULL, &s);
    if (st == OGI_OK)
        st = ogi_session_run(s, 3, names, (const ogi_tensor *const *)in, 1, &out, y);
    ogi_session_free(s);
    return st;
}

/* ---- one random case ----------------------------------------------------------------- */

typedef struct test_case {
    int64_t batch, q_heads, kv_heads, q_len, kv_len, qk_dim, v_dim;
    test_model m;
} test_case;

/* Y by the plain loop, in double, from the (already rounded) inputs. */
static void test_reference(const test_case *c, const double *q, const double *k, const double *v,
                           double *y)
{
    const int64_t group = c->q_heads / c->kv_heads;
    const double scale = c->m.has_scale ? (double)(float)c->m.scale : 1.0 / sqrt((double)c->qk_dim);
    double *s = malloc((size_t)(c->kv_len + 1) * sizeof(double));
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->q_heads; h++)
            for (int64_t i = 0; i < c->q_len; i++) {
                const double *qi = q + ((b * c->q_heads + h) * c->q_len + i) * c->qk_dim;
                const int64_t kvh = b * c->kv_heads + h / group;
                double max = -INFINITY, sum = 0;
                for (int64_t j = 0; j < c->kv_len; j++) {
                    const double *kj = k + (kvh * c->kv_len + j) * c->qk_dim;
                    double dot = 0;
                    for (int64_t e = 0; e < c->qk_dim; e++)
                        dot += qi[e] * kj[e];
                    s[j] = test_apply_mod(c->m.score_mod, h, i, j, scale * dot);
                    s[j] = test_apply_mod(c->m.mask_mod, h, i, j, s[j]);
                    max = s[j] > max ? s[j] : max;
                }
                for (int64_t j = 0; j < c->kv_len; j++)
                    sum += s[j] = exp(s[j] - max);
                double *yi = y + ((b * c->q_heads + h) * c->q_len + i) * c->v_dim;
                for (int64_t e = 0; e < c->v_dim; e++)
                    yi[e] = 0;
                for (int64_t j = 0; j < c->kv_len; j++) {
                    double p = test_apply_prob(c->m.prob_mod, s[j] / sum);
                    const double *vj = v + (kvh * c->kv_len + j) * c->v_dim;
                    for (int64_t e = 0; e < c->v_dim; e++)
                        yi[e] += p * vj[e];
                }
            }
    free(s);
}

static double test_tolerance(ogi_dtype dtype)
{
    return dtype == OGI_FLOAT64 ? 1e-9 : dtype == OGI_FLOAT16 ? 4e-3 : 5e-5;
}

/* Compares y (as the op gave it) with the reference, relative to 1 + |ref|. */
static void test_compare(const test_case *c, const char *what, const ogi_tensor *y,
                         const double *ref, int64_t n)
{
    checks++;
    TEST_CHECK(y != NULL && ogi_tensor_dtype(y) == c->m.v_dtype, "%s: no output or wrong dtype",
               what);
    if (y == NULL)
        return;
    /* the least precise of the input types sets the tolerance */
    ogi_dtype least = c->m.qk_dtype == OGI_FLOAT16 || c->m.v_dtype == OGI_FLOAT16   ? OGI_FLOAT16
                      : c->m.qk_dtype == OGI_FLOAT64 && c->m.v_dtype == OGI_FLOAT64 ? OGI_FLOAT64
                                                                                    : OGI_FLOAT32;
    const double tol = test_tolerance(least);
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double got = dtype_get_f64(y->data, c->m.v_dtype, i);
        double err = fabs(got - ref[i]) / (1.0 + fabs(ref[i]));
        if (!(err <= worst)) {
            worst = isnan(err) ? INFINITY : err;
            at = i;
        }
    }
    checks++;
    TEST_CHECK(worst <= tol,
               "%s: [%lld,%lld->%lld,%lld,%lld,%lld,%lld] %s mods %d/%d/%d: error %g at %lld "
               "(tolerance %g)",
               what, (long long)c->batch, (long long)c->q_heads, (long long)c->kv_heads,
               (long long)c->q_len, (long long)c->kv_len, (long long)c->qk_dim, (long long)c->v_dim,
               ogi_dtype_name(c->m.qk_dtype), c->m.score_mod, c->m.mask_mod, c->m.prob_mod, worst,
               (long long)at, tol);
}

static double *test_random_values(int64_t n, double lo, double hi)
{
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        v[i] = test_uniform(lo, hi);
    return v;
}

/* Rounds vals to what dtype holds. */
static void test_round(double *vals, int64_t n, ogi_dtype dtype)
{
    for (int64_t i = 0; i < n; i++) {
        if (dtype == OGI_FLOAT32)
            vals[i] = (float)vals[i];
        else if (dtype == OGI_FLOAT16)
            vals[i] = dtype_f16_to_f32(dtype_f32_to_f16((float)vals[i]));
    }
}

static void test_run_case(const test_case *c)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/flex.onnx", test_dir);
    test_write_model(&c->m, path);
    int64_t qd[4] = {c->batch, c->q_heads, c->q_len, c->qk_dim};
    int64_t kd[4] = {c->batch, c->kv_heads, c->kv_len, c->qk_dim};
    int64_t vd[4] = {c->batch, c->kv_heads, c->kv_len, c->v_dim};
    int64_t nq = qd[0] * qd[1] * qd[2] * qd[3], nk = kd[0] * kd[1] * kd[2] * kd[3];
    int64_t nv = vd[0] * vd[1] * vd[2] * vd[3], ny = c->batch * c->q_heads * c->q_len * c->v_dim;
    double *q = test_random_values(nq, -1.5, 1.5), *k = test_random_values(nk, -1.5, 1.5);
    double *v = test_random_values(nv, -1, 1);
    test_round(q, nq, c->m.qk_dtype);
    test_round(k, nk, c->m.qk_dtype);
    test_round(v, nv, c->m.v_dtype);
    double *ref = malloc((size_t)(ny > 0 ? ny : 1) * sizeof(double));
    test_reference(c, q, k, v, ref);
    ogi_tensor *in[3] = {test_tensor(c->m.qk_dtype, qd, q), test_tensor(c->m.qk_dtype, kd, k),
                         test_tensor(c->m.v_dtype, vd, v)};
    bool fast = !c->m.index_form && test_mod_recognised(c->m.score_mod, c->q_heads) &&
                test_mod_recognised(c->m.mask_mod, c->q_heads) && c->m.prob_mod != PROB_SQUARE;
    for (int general = 0; general < 2; general++) {
        if (general)
            setenv("OGI_FLEX_ATTENTION", "general", 1);
        flex_attention_counts before = flex_attention_get_counts();
        ogi_tensor *y = NULL;
        ogi_status st = test_run(path, in, &y);
        flex_attention_counts after = flex_attention_get_counts();
        unsetenv("OGI_FLEX_ATTENTION");
        checks++;
        TEST_CHECK(st == OGI_OK, "run failed: %s", ogi_last_error());
        bool took_fast = after.fast == before.fast + 1 && after.general == before.general;
        bool took_general = after.general == before.general + 1 && after.fast == before.fast;
        checks++;
        TEST_CHECK(general || !fast ? took_general : took_fast,
                   "mods %d/%d/%d: expected the %s path (fast %llu -> %llu, general %llu -> %llu)",
                   c->m.score_mod, c->m.mask_mod, c->m.prob_mod,
                   general || !fast ? "general" : "fast", (unsigned long long)before.fast,
                   (unsigned long long)after.fast, (unsigned long long)before.general,
                   (unsigned long long)after.general);
        if (st == OGI_OK)
            test_compare(c, general ? "general" : fast ? "fast" : "general (auto)", y, ref, ny);
        ogi_tensor_free(y);
    }
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(in[i]);
    free(q);
    free(k);
    free(v);
    free(ref);
    remove(path);
}

static void test_random_case(test_case *c)
{
    static const int64_t heads[][2] = {{1, 1}, {2, 2}, {4, 2}, {6, 3}, {8, 1}, {3, 1}};
    static const int64_t lens[] = {1, 2, 3, 7, 16, 33, 64};
    static const int64_t dims[] = {1, 3, 8, 16, 19, 64};
    memset(c, 0, sizeof(*c));
    int hk = (int)(test_rand(&test_seed) % 6);
    c->batch = 1 + (int64_t)(test_rand(&test_seed) % 2);
    c->q_heads = heads[hk][0];
    c->kv_heads = heads[hk][1];
    c->q_len = test_pick(lens, 7);
    c->kv_len = test_rand(&test_seed) % 3 == 0 ? c->q_len : test_pick(lens, 7);
    c->qk_dim = test_pick(dims, 6);
    c->v_dim = test_rand(&test_seed) % 2 ? c->qk_dim : test_pick(dims, 6);
    c->m.qk_dtype = c->m.v_dtype = OGI_FLOAT32;
    c->m.has_scale = test_rand(&test_seed) % 3 == 0;
    c->m.scale = test_uniform(0.05, 0.6);
    c->m.heads = c->q_heads;
    /* score_mod any; mask_mod a causal form or nothing */
    c->m.score_mod = (test_mod)(test_rand(&test_seed) % MOD_COUNT);
    uint64_t r = test_rand(&test_seed) % 4;
    c->m.mask_mod = r == 0 ? MOD_CAUSAL : r == 1 ? MOD_CAUSAL_UNSQ : MOD_NONE;
    c->m.prob_mod = (test_prob)(test_rand(&test_seed) % PROB_COUNT);
}

static void test_random_cases(int n)
{
    for (int k = 0; k < n; k++) {
        test_case c;
        test_random_case(&c);
        int d = k % 5;
        if (d == 3) {
            c.m.qk_dtype = c.m.v_dtype = OGI_FLOAT16;
        } else if (d == 4) {
            c.m.qk_dtype = c.m.v_dtype = OGI_FLOAT64;
        }
        c.m.scores_dtype = c.m.qk_dtype == OGI_FLOAT64 ? OGI_FLOAT64 : OGI_FLOAT32;
        test_run_case(&c);
    }
}

/* Every modifier on one fixed GQA shape, and the zero-length and mixed
 * dtype corners. */
static void test_fixed_cases(void)
{
    for (int mod = 0; mod < MOD_COUNT; mod++)
        for (int prob = 0; prob < PROB_COUNT; prob++) {
            test_case c = {2, 6, 2, 5, 9, 8, 5, {0}};
            c.m.qk_dtype = c.m.v_dtype = c.m.scores_dtype = OGI_FLOAT32;
            c.m.score_mod = (test_mod)mod;
            c.m.mask_mod = mod == MOD_REL ? MOD_CAUSAL : MOD_NONE;
            c.m.prob_mod = (test_prob)prob;
            c.m.heads = c.q_heads;
            test_run_case(&c);
        }
    /* zero-length sequences and empty heads, without index subgraphs (an
     * empty Range cannot be reshaped with -1) */
    static const int64_t zeros[][7] = {
        {1, 2, 2, 0, 4, 8, 8}, {1, 2, 1, 3, 0, 8, 4}, {0, 2, 2, 3, 3, 4, 4}, {1, 2, 2, 3, 3, 0, 4}};
    for (int z = 0; z < 4; z++) {
        test_case c = {zeros[z][0], zeros[z][1], zeros[z][2], zeros[z][3],
                       zeros[z][4], zeros[z][5], zeros[z][6], {0}};
        c.m.qk_dtype = c.m.v_dtype = c.m.scores_dtype = OGI_FLOAT32;
        c.m.has_scale = c.qk_dim == 0;
        c.m.scale = 0.5;
        c.m.score_mod = z % 2 ? MOD_SOFTCAP : MOD_NONE;
        c.m.prob_mod = PROB_HALF;
        test_run_case(&c);
    }
    /* float16 Q / K with float32 V, and double Q / K with float32 V */
    test_case mixed = {1, 4, 2, 6, 7, 16, 8, {0}};
    mixed.m.qk_dtype = OGI_FLOAT16;
    mixed.m.v_dtype = OGI_FLOAT32;
    mixed.m.scores_dtype = OGI_FLOAT32;
    mixed.m.score_mod = MOD_REL;
    mixed.m.mask_mod = MOD_CAUSAL;
    test_run_case(&mixed);
    /* the index form of the subgraphs, on the general path; GQA */
    static const int64_t shapes[][7] = {
        {2, 4, 2, 5, 5, 8, 4}, {1, 3, 1, 1, 9, 16, 16}, {1, 2, 2, 7, 3, 5, 3}};
    for (int k = 0; k < 3; k++) {
        test_case c = {shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3],
                       shapes[k][4], shapes[k][5], shapes[k][6], {0}};
        c.m.qk_dtype = c.m.v_dtype = c.m.scores_dtype = k == 2 ? OGI_FLOAT64 : OGI_FLOAT32;
        c.m.index_form = 1;
        c.m.score_mod = k == 1 ? MOD_NONE : MOD_REL;
        c.m.mask_mod = MOD_CAUSAL;
        c.m.prob_mod = k == 0 ? PROB_HALF : PROB_NONE;
        test_run_case(&c);
    }
}

/* ---- timing ------------------------------------------------------------------------------- */

static double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints one larger problem's time on each path (informational: no check
 * depends on it). */
static void test_timing(void)
{
    test_model tm = {OGI_FLOAT32, OGI_FLOAT32, OGI_FLOAT32, false, 0, MOD_SOFTCAP,
                     MOD_CAUSAL,  PROB_NONE,   8,           0,     0};
    char path[600];
    snprintf(path, sizeof(path), "%s/timing.onnx", test_dir);
    test_write_model(&tm, path);
    const int64_t qd[4] = {1, 8, 256, 64}, kd[4] = {1, 2, 256, 64};
    double *vals = test_random_values(8 * 256 * 64, -1, 1);
    ogi_tensor *in[3] = {test_tensor(OGI_FLOAT32, qd, vals), test_tensor(OGI_FLOAT32, kd, vals),
                         test_tensor(OGI_FLOAT32, kd, vals)};
    double ms[2] = {0, 0};
    ogi_session *s = NULL;
    const char *names[3] = {"Q", "K", "V"}, *out = "Y";
    ogi_status st = ogi_session_open(path, NULL, &s);
    for (int general = 0; general < 2 && st == OGI_OK; general++) {
        if (general)
            setenv("OGI_FLEX_ATTENTION", "general", 1);
        for (int rep = 0; rep < 3 && st == OGI_OK; rep++) {
            ogi_tensor *y = NULL;
            double t0 = test_now();
            st = ogi_session_run(s, 3, names, (const ogi_tensor *const *)in, 1, &out, &y);
            double t = 1e3 * (test_now() - t0);
            ms[general] = rep == 0 || t < ms[general] ? t : ms[general];
            ogi_tensor_free(y);
        }
        unsetenv("OGI_FLEX_ATTENTION");
    }
    checks++;
    TEST_CHECK(st == OGI_OK, "timing run: %s", ogi_last_error());
    printf("softcap + causal, Q [1,8,256,64], K/V [1,2,256,64]: fast %.2f ms, general %.2f ms "
           "(best of 3)\n",
           ms[0], ms[1]);
    ogi_session_free(s);
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(in[i]);
    free(vals);
    remove(path);
}

/* ---- the ONNX node tests' models take the fast path ----------------------------------- */

/* Each non-expanded test_flexattention* model runs on its test data with
 * the fast path (none of them needs a subgraph run), and the general path
 * gives the same output. */
static void test_onnx_models(void)
{
    static const char *const names[] = {
        "test_flexattention",
        "test_flexattention_causal_mask",
        "test_flexattention_diff_head_sizes",
        "test_flexattention_double",
        "test_flexattention_fp16",
        "test_flexattention_gqa",
        "test_flexattention_prob_mod",
        "test_flexattention_relative_positional",
        "test_flexattention_scaled",
        "test_flexattention_score_mod",
        "test_flexattention_soft_cap",
    };
    for (size_t m = 0; m < sizeof(names) / sizeof(names[0]); m++) {
        char dir[600], path[700];
        snprintf(dir, sizeof(dir), "%s/onnx-backend-tests/node/%s", test_shared_dir(), names[m]);
        ogi_tensor *in[3] = {NULL, NULL, NULL}, *expected = NULL, *y[2] = {NULL, NULL};
        bool ok = true;
        for (int i = 0; i < 3 && ok; i++) {
            snprintf(path, sizeof(path), "%s/test_data_set_0/input_%d.pb", dir, i);
            ok = ogi_tensor_read_pb(path, &in[i], NULL) == OGI_OK;
        }
        snprintf(path, sizeof(path), "%s/test_data_set_0/output_0.pb", dir);
        ok = ok && ogi_tensor_read_pb(path, &expected, NULL) == OGI_OK;
        checks++;
        TEST_CHECK(ok, "%s: cannot read its test data: %s", names[m], ogi_last_error());
        snprintf(path, sizeof(path), "%s/model.onnx", dir);
        for (int general = 0; general < 2 && ok; general++) {
            if (general)
                setenv("OGI_FLEX_ATTENTION", "general", 1);
            flex_attention_counts before = flex_attention_get_counts();
            ogi_status st = test_run(path, in, &y[general]);
            flex_attention_counts after = flex_attention_get_counts();
            unsetenv("OGI_FLEX_ATTENTION");
            checks++;
            TEST_CHECK(st == OGI_OK, "%s: %s", names[m], ogi_last_error());
            checks++;
            TEST_CHECK(general ? after.general == before.general + 1
                               : after.fast == before.fast + 1 && after.general == before.general,
                       "%s: did not take the %s path", names[m], general ? "general" : "fast");
        }
        if (ok && y[0] != NULL && y[1] != NULL) {
            int64_t n = tensor_numel(expected);
            double worst = 0;
            for (int64_t i = 0; i < n; i++)
                for (int k = 0; k < 2; k++) {
                    double want = dtype_get_f64(expected->data, expected->dtype, i);
                    double got = dtype_get_f64(y[k]->data, y[k]->dtype, i);
                    double err = fabs(got - want) / (1.0 + fabs(want));
                    worst = err > worst || isnan(err) ? err : worst;
                }
            checks++;
            TEST_CHECK(worst <= (expected->dtype == OGI_FLOAT16 ? 2e-3 : 1e-5),
                       "%s: error %g against output_0.pb", names[m], worst);
        }
        for (int i = 0; i < 3; i++)
            ogi_tensor_free(in[i]);
        ogi_tensor_free(expected);
        ogi_tensor_free(y[0]);
        ogi_tensor_free(y[1]);
    }
}

/* ---- bad inputs and bad subgraphs ----------------------------------------------------- */

static void test_expect_error(const char *what, const test_model *tm, const int64_t *qd,
                              const int64_t *kd, const int64_t *vd, const char *needle)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/bad.onnx", test_dir);
    test_write_model(tm, path);
    const int64_t *dims[3] = {qd, kd, vd};
    ogi_dtype dtypes[3] = {tm->qk_dtype, tm->qk_dtype, tm->v_dtype};
    ogi_tensor *in[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        int rank = dims[i][4] > 0 ? (int)dims[i][4] : 4; /* dims[4]: rank override */
        ogi_tensor_create(dtypes[i], rank, dims[i], &in[i]);
        if (in[i] != NULL)
            memset(ogi_tensor_data(in[i]), 0, ogi_tensor_nbytes(in[i]));
    }
    for (int general = 0; general < 2; general++) {
        if (general)
            setenv("OGI_FLEX_ATTENTION", "general", 1);
        ogi_tensor *y = NULL;
        ogi_status st = test_run(path, in, &y);
        unsetenv("OGI_FLEX_ATTENTION");
        const char *msg = st != OGI_OK ? ogi_last_error() : "";
        checks++;
        TEST_CHECK(st != OGI_OK && y == NULL && strstr(msg, needle) != NULL,
                   "%s: expected an error mentioning \"%s\", got status %d: %s", what, needle, st,
                   msg);
        ogi_tensor_free(y);
    }
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(in[i]);
    remove(path);
}

static void test_bad_inputs(void)
{
    test_model tm = {OGI_FLOAT32, OGI_FLOAT32, OGI_FLOAT32, false, 0, MOD_NONE,
                     MOD_NONE,    PROB_NONE,   2,           0,     0};
    /* dims[4] is the rank (0: 4) */
    const int64_t q[5] = {1, 2, 3, 8, 0}, k[5] = {1, 2, 4, 8, 0}, v[5] = {1, 2, 4, 5, 0};
    const int64_t q3[5] = {2, 3, 8, 1, 3};
    test_expect_error("rank-3 Q", &tm, q3, k, v, "input 0 (Q): expected rank 4, got 3");
    const int64_t q_odd[5] = {1, 3, 3, 8, 0};
    test_expect_error("3 query heads over 2", &tm, q_odd, k, v, "not a multiple");
    const int64_t k_dim[5] = {1, 2, 4, 7, 0};
    const int64_t v_dim[5] = {1, 2, 4, 7, 0};
    test_expect_error("head sizes differ", &tm, q, k_dim, v_dim, "head size of Q is 8 but of K 7");
    const int64_t v_len[5] = {1, 2, 5, 5, 0};
    test_expect_error("K and V lengths differ", &tm, q, k, v_len, "heads of 4 keys but V");
    const int64_t k_batch[5] = {2, 2, 4, 8, 0}, v_batch[5] = {2, 2, 4, 5, 0};
    test_expect_error("batch differs", &tm, q, k_batch, v_batch, "batch sizes differ");
    test_model ints = tm;
    ints.qk_dtype = OGI_INT32;
    test_expect_error("int32 Q and K", &ints, q, k, v, "expected a float type, got int32");

    static const struct {
        int kind;
        const char *what, *needle;
    } subs[] = {
        {1, "score_mod with two outputs", "score_mod takes 1 inputs and gives 2 outputs"},
        {2, "score_mod of the wrong shape", "score_mod gave a float32 tensor of shape [8,3,2,1]"},
        {3, "score_mod of the wrong dtype", "score_mod gave a float64 tensor"},
        {4, "score_mod with two inputs", "score_mod takes 2 inputs and gives 1 outputs"},
        {6, "index-form mask_mod giving float32",
         "mask_mod gave a float32 tensor of shape [1,1,3,8]; it must give bool"},
        {5, "score_mod whose Reshape fails", "in subgraph of node 'flex'"},
    };
    for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++) {
        test_model bad = tm;
        bad.bad_subgraph = subs[s].kind == 6 ? 0 : subs[s].kind;
        if (subs[s].kind == 6) {
            bad.index_form = 2;
            bad.mask_mod = MOD_CAUSAL;
        }
        const int64_t kb[5] = {1, 2, 8, 8, 0}, vb[5] = {1, 2, 8, 5, 0};
        test_expect_error(subs[s].what, &bad, q, kb, vb, subs[s].needle);
    }
}

int main(void)
{
    if (mkdtemp(test_dir) == NULL)
        return 1;
    test_fixed_cases();
    test_onnx_models();
    test_random_cases(200);
    test_bad_inputs();
    test_timing();
    rmdir(test_dir);
    return test_finish("test_flex_attention", checks);
}
