/* Fused kernels against plain loops: MatMul(A, Transpose(W)) with W a
 * constant becomes ai.ogi.MatMulTransposeB at load (folding is off here so
 * that the Transpose is not folded away first). Random shapes cover the
 * decode path (few rows: vectorised dot products) and the GEMM path.
 *
 * Fused against unfused graphs: the op-by-op attention is run once as it
 * is (fused at load) and once with its probabilities also a graph output,
 * which keeps every node; the two outputs must agree. The same for RMSNorm
 * written op by op and for the SwiGLU gate Mul(Mul(g, Sigmoid(g)), u), and
 * for rotate_half rotary embeddings, and for Attention with a bool mask (run
 * in causal mode when the mask is
 * causal), whose unfused twin also asks for present_key. Attention over K
 * and V gathered from KV caches (TensorGather) reads the caches in place:
 * AttentionCausalMask and the legacy export's op-by-op attention with its
 * GQA repeat built from Shape(gathered K, V), against the same graphs
 * unfused, with the cases where the caches must not be read in place. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/graph.h"
#include "engine/op.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* With tied, W is also the table of a Gather (a tied embedding), and the
 * session packs W^T into panels for the product (when it packs at all:
 * pack off runs the plain kernels); the rows the Gather reads must be W's. */
static void run_case(uint64_t *rng, int64_t m, int64_t n, int64_t k, int batch, bool tied,
                     bool pack)
{
    float *w = malloc(sizeof(float) * (size_t)(n * k + 1));
    float *a = malloc(sizeof(float) * (size_t)(batch * m * k + 1));
    for (int64_t i = 0; i < n * k; i++)
        w[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 1000.0f;
    for (int64_t i = 0; i < batch * m * k; i++)
        a[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 1000.0f;
    pbw g = {0};
    const char *t_in[1] = {"W"}, *t_out[1] = {"Wt"}, *mm_in[2] = {"A", "Wt"}, *mm_out[1] = {"Y"};
    pbw_node(&g, "Transpose", "t", 1, t_in, 1, t_out);
    pbw_node(&g, "MatMul", "mm", 2, mm_in, 1, mm_out);
    const int64_t ids[2] = {n - 1, 0};
    if (tied)
        pbw_node(&g, "Gather", "gather", 2, (const char *[]){"W", "ids"}, 1, (const char *[]){"E"});
    pbw_string(&g, 2, "g");
    pbw_tensor_raw(&g, 5, "W", 1, 2, (int64_t[]){n, k}, w, sizeof(float) * (size_t)(n * k));
    if (tied)
        pbw_tensor_raw(&g, 5, "ids", 7, 1, (int64_t[]){2}, ids, sizeof(ids));
    pbw_value_info(&g, 11, "A", 1, 3, (int64_t[]){batch, m, k});
    pbw_value_info(&g, 12, "Y", 1, 3, (int64_t[]){batch, m, n});
    if (tied)
        pbw_value_info(&g, 12, "E", 1, 2, (int64_t[]){2, k});
    ogi_session_options o = ogi_session_default_options();
    o.fold_constants = 0;
    o.threads = 2;
    o.pack_weights = pack;
    ogi_session *s = test_open_graph(&g, 8, 17, &o);
    checks++;
    if (s != NULL) {
        ogi_tensor *in = test_tensor_f32(3, (int64_t[]){batch, m, k}, a), *out = NULL;
        const char *in_name = "A", *out_name = "Y";
        ogi_status st =
            ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 1, &out_name, &out);
        TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
        checks++;
        double worst = 0;
        for (int64_t r = 0; st == OGI_OK && r < batch * m; r++)
            for (int64_t j = 0; j < n; j++) {
                double want = 0;
                for (int64_t i = 0; i < k; i++)
                    want += (double)a[r * k + i] * (double)w[j * k + i];
                double got = ((const float *)ogi_tensor_data(out))[r * n + j];
                double err = fabs(got - want) / (1.0 + fabs(want));
                worst = err > worst ? err : worst;
            }
        TEST_CHECK(worst < 1e-5, "m %lld n %lld k %lld batch %d%s%s: relative error %g",
                   (long long)m, (long long)n, (long long)k, batch, tied ? ", tied" : "",
                   pack ? "" : ", not packed", worst);
        checks++;
        if (tied) {
            const char *e_name = "E";
            ogi_tensor *e = NULL;
            st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 1, &e_name, &e);
            TEST_CHECK(
                st == OGI_OK &&
                    memcmp(ogi_tensor_data(e), w + (n - 1) * k, sizeof(float) * (size_t)k) == 0 &&
                    memcmp((const float *)ogi_tensor_data(e) + k, w, sizeof(float) * (size_t)k) ==
                        0,
                "m %lld n %lld k %lld: the Gather of a packed W read other rows", (long long)m,
                (long long)n, (long long)k);
            checks++;
            ogi_tensor_free(e);
        }
        ogi_tensor_free(in);
        ogi_tensor_free(out);
        ogi_session_free(s);
    }
    free(w);
    free(a);
}

/* ---- op-by-op attention ---------------------------------------------------- */

/* A node with one ints attribute (n_ints values) or, with n_ints < 0, one
 * int attribute ints[0]. */
static void node_attr(pbw *g, const char *op, const char *name, int n_in, const char *const *in,
                      const char *out, const char *attr, const int64_t *ints, int n_ints)
{
    pbw n = {0};
    pbw_node_begin(&n, op, name, n_in, in, 1, &out);
    if (attr != NULL && n_ints < 0)
        pbw_attr_int(&n, attr, ints[0]);
    else if (attr != NULL)
        pbw_attr_ints(&n, attr, n_ints, ints);
    pbw_message(g, 1, &n);
}

/* K and V read through the GQA repeat Reshape(Expand(Unsqueeze(X, axes), s5[i]),
 * s4[i]) of X = XK, XV, with axes the constant [2]; with allowzero, the
 * Reshapes carry allowzero = 1. */
static void gqa_repeat(pbw *g, const char *axes, const char *const *s5, const char *const *s4,
                       bool allowzero)
{
    const char *xs[2] = {"XK", "XV"}, *us[2] = {"UK", "UV"}, *es[2] = {"EK", "EV"},
               *rs[2] = {"K", "V"};
    const int64_t one = 1, two = 2;
    pbw_tensor_raw(g, 5, axes, 7, 1, (int64_t[]){1}, &two, sizeof(two));
    for (int i = 0; i < 2; i++) {
        pbw_node(g, "Unsqueeze", us[i], 2, (const char *[]){xs[i], axes}, 1, &us[i]);
        pbw_node(g, "Expand", es[i], 2, (const char *[]){us[i], s5[i]}, 1, &es[i]);
        node_attr(g, "Reshape", rs[i], 2, (const char *[]){es[i], s4[i]}, rs[i],
                  allowzero ? "allowzero" : NULL, &one, -1);
    }
}

typedef struct attn_case {
    int64_t qd[4], kd[4], vd[4], md[4];
    int mask_rank;   /* 0: no mask */
    bool nan_where;  /* Where(IsNaN(P), 0, P) before the second MatMul */
    bool div_scores; /* Div(scores, c) instead of Mul(Q, c) and Mul(K^T, c) */
    /* K and V through the GQA repeat Reshape(Expand(Unsqueeze(X, [2]), S5), S4)
     * of XK [xkd], XV [xvd] with run-time shapes s5k, s4k, s5v, s4v */
    bool repeat;
    int64_t xkd[4], xvd[4], s5k[5], s4k[4], s5v[5], s4v[4];
    /* K^T as torch.export writes it at opset 18, a 3-D transpose between two
     * Reshapes whose shapes come from Shape(K) (K's dims symbolic) */
    bool kt3d;
    bool allowzero; /* the repeat's Reshapes with allowzero = 1 */
    /* the repeat's shapes built in the graph from Shape(XK), Shape(XV) (their
     * dims symbolic), as exporters build them, instead of given as inputs */
    bool shapes_in_graph;
} attn_case;

/* A float32 input of rank 4 whose dims are the symbols d0..d3. */
static void symbolic_input(pbw *g, const char *name)
{
    pbw shape = {0}, tensor = {0}, type = {0}, vi = {0};
    const char *syms[4] = {"d0", "d1", "d2", "d3"};
    for (int i = 0; i < 4; i++) {
        pbw dim = {0};
        pbw_string(&dim, 2, syms[i]);
        pbw_message(&shape, 1, &dim);
    }
    pbw_int(&tensor, 1, 1);
    pbw_message(&tensor, 2, &shape);
    pbw_message(&type, 1, &tensor);
    pbw_string(&vi, 1, name);
    pbw_message(&vi, 2, &type);
    pbw_message(g, 11, &vi);
}

/* Kt = Reshape(Transpose(Reshape(K, [-1, T, D]), [0, 2, 1]), [B, H, D, T])
 * with B, H, T, D sliced from Shape(K, start=0). */
static void kt_3d(pbw *g)
{
    const int64_t start = 0, perm[3] = {0, 2, 1}, axis = 0;
    node_attr(g, "Shape", "ks", 1, (const char *[]){"K"}, "KS", "start", &start, -1);
    pbw_node(g, "Slice", "kst", 3, (const char *[]){"KS", "i2", "i3"}, 1, (const char *[]){"KT"});
    pbw_node(g, "Slice", "ksd", 3, (const char *[]){"KS", "i3", "i4"}, 1, (const char *[]){"KD"});
    pbw_node(g, "Slice", "ksb", 3, (const char *[]){"KS", "i0", "i2"}, 1, (const char *[]){"KBH"});
    node_attr(g, "Concat", "ka", 3, (const char *[]){"im1", "KT", "KD"}, "KA", "axis", &axis, -1);
    pbw_node(g, "Reshape", "kr1", 2, (const char *[]){"K", "KA"}, 1, (const char *[]){"KR1"});
    node_attr(g, "Transpose", "kt3", 1, (const char *[]){"KR1"}, "KT3", "perm", perm, 3);
    node_attr(g, "Concat", "kb", 3, (const char *[]){"KBH", "KD", "KT"}, "KB", "axis", &axis, -1);
    pbw_node(g, "Reshape", "kr2", 2, (const char *[]){"KT3", "KB"}, 1, (const char *[]){"Kt"});
}

/* The int64 [1] constants kt_3d and gqa_shapes read: i0..i4, im1 (-1),
 * rep and heads. */
static void shape_constants(pbw *g, int64_t rep, int64_t heads)
{
    const int64_t v[8] = {0, 1, 2, 3, 4, -1, rep, heads};
    const char *names[8] = {"i0", "i1", "i2", "i3", "i4", "im1", "rep", "heads"};
    for (int i = 0; i < 8; i++)
        pbw_tensor_raw(g, 5, names[i], 7, 1, (int64_t[]){1}, &v[i], sizeof(int64_t));
}

/* The repeat's shapes from X = XK, XV ([b, kv, t, d]): S5 = [b, kv, rep,
 * t, d], S4 = [b, heads, t, d]. */
static void gqa_shapes(pbw *g)
{
    const char *xs[2] = {"XK", "XV"}, *sx[2] = {"SXK", "SXV"}, *s01[2] = {"SXK01", "SXV01"},
               *s0[2] = {"SXK0", "SXV0"}, *s23[2] = {"SXK23", "SXV23"}, *s5[2] = {"S5K", "S5V"},
               *s4[2] = {"S4K", "S4V"};
    const int64_t axis = 0;
    for (int i = 0; i < 2; i++) {
        pbw_node(g, "Shape", sx[i], 1, &xs[i], 1, &sx[i]);
        pbw_node(g, "Slice", s01[i], 3, (const char *[]){sx[i], "i0", "i2"}, 1, &s01[i]);
        pbw_node(g, "Slice", s0[i], 3, (const char *[]){sx[i], "i0", "i1"}, 1, &s0[i]);
        pbw_node(g, "Slice", s23[i], 3, (const char *[]){sx[i], "i2", "i4"}, 1, &s23[i]);
        node_attr(g, "Concat", s5[i], 3, (const char *[]){s01[i], "rep", s23[i]}, s5[i], "axis",
                  &axis, -1);
        node_attr(g, "Concat", s4[i], 3, (const char *[]){s0[i], "heads", s23[i]}, s4[i], "axis",
                  &axis, -1);
    }
}

/* Saves the graph into path; keep_p also makes P an output (nothing is fused). */
static void attn_model(const attn_case *ac, bool keep_p, char *path)
{
    pbw g = {0};
    const int64_t perm[4] = {0, 1, 3, 2}, axis = -1;
    if (ac->repeat)
        gqa_repeat(&g, "axes", (const char *[]){"S5K", "S5V"}, (const char *[]){"S4K", "S4V"},
                   ac->allowzero);
    if (ac->kt3d || ac->shapes_in_graph)
        shape_constants(&g, ac->repeat ? ac->s5k[2] : 1, ac->qd[1]);
    if (ac->shapes_in_graph)
        gqa_shapes(&g);
    if (ac->kt3d)
        kt_3d(&g);
    else
        node_attr(&g, "Transpose", "t", 1, (const char *[]){"K"}, "Kt", "perm", perm, 4);
    if (ac->div_scores) {
        pbw_node(&g, "MatMul", "qk", 2, (const char *[]){"Q", "Kt"}, 1, (const char *[]){"S0"});
        pbw_node(&g, "Div", "div", 2, (const char *[]){"S0", "c"}, 1, (const char *[]){"S"});
    } else {
        pbw_node(&g, "Mul", "mq", 2, (const char *[]){"Q", "c"}, 1, (const char *[]){"Qs"});
        pbw_node(&g, "Mul", "mk", 2, (const char *[]){"c", "Kt"}, 1, (const char *[]){"Kts"});
        pbw_node(&g, "MatMul", "qk", 2, (const char *[]){"Qs", "Kts"}, 1, (const char *[]){"S"});
    }
    const char *scores = "S";
    if (ac->mask_rank > 0) {
        pbw_node(&g, "Add", "add", 2, (const char *[]){"M", "S"}, 1, (const char *[]){"A"});
        scores = "A";
    }
    node_attr(&g, "Softmax", "softmax", 1, &scores, "P", "axis", &axis, -1);
    const char *probs = "P";
    if (ac->nan_where) {
        pbw_node(&g, "IsNaN", "isnan", 1, (const char *[]){"P"}, 1, (const char *[]){"N"});
        pbw_node(&g, "Where", "where", 3, (const char *[]){"N", "zero", "P"}, 1,
                 (const char *[]){"Z"});
        probs = "Z";
    }
    pbw_node(&g, "MatMul", "pv", 2, (const char *[]){probs, "V"}, 1, (const char *[]){"Y"});
    pbw_string(&g, 2, "g");
    float c = ac->div_scores ? 5.6568542f : 0.42044820f, zero = 0.0f;
    pbw_tensor_raw(&g, 5, "c", 1, 0, NULL, &c, sizeof(c));
    pbw_tensor_raw(&g, 5, "zero", 1, 1, (int64_t[]){1}, &zero, sizeof(zero));
    pbw_value_info(&g, 11, "Q", 1, 4, ac->qd);
    if (ac->repeat && ac->shapes_in_graph) {
        symbolic_input(&g, "XK");
        symbolic_input(&g, "XV");
    } else if (ac->repeat) {
        pbw_value_info(&g, 11, "XK", 1, 4, ac->xkd);
        pbw_value_info(&g, 11, "XV", 1, 4, ac->xvd);
        const char *shapes[4] = {"S5K", "S4K", "S5V", "S4V"};
        for (int i = 0; i < 4; i++)
            pbw_value_info(&g, 11, shapes[i], 7, 1, (int64_t[]){i % 2 ? 4 : 5});
    } else {
        if (ac->kt3d)
            symbolic_input(&g, "K");
        else
            pbw_value_info(&g, 11, "K", 1, 4, ac->kd);
        pbw_value_info(&g, 11, "V", 1, 4, ac->vd);
    }
    if (ac->mask_rank > 0)
        pbw_value_info(&g, 11, "M", 1, ac->mask_rank, ac->md + (4 - ac->mask_rank));
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    if (keep_p)
        pbw_value_info(&g, 12, "P", 1, -1, NULL);
    test_save_graph(&g, 8, 17, path);
}

/* Patterns fused in the prepared graph of path (-1 on failure); *nodes (when
 * not NULL) gets how many nodes it runs. */
static int fused_patterns_nodes(const char *path, int *nodes)
{
    test_graph t;
    if (!test_graph_load(path, &t))
        return -1;
    int n = t.g->n_fused;
    if (nodes != NULL)
        *nodes = t.g->n_nodes;
    test_graph_free(&t);
    return n;
}

static int fused_patterns(const char *path)
{
    return fused_patterns_nodes(path, NULL);
}

/* Output Y of path run on the inputs (NULL when it fails). */
static ogi_tensor *attn_run(const char *path, const char *const *names, ogi_tensor *const *in,
                            int n_in)
{
    ogi_tensor *y = NULL;
    const char *out = "Y";
    if (!test_run_model(path, 2, n_in, names, in, 1, &out, &y, path)) {
        ogi_tensor_free(y);
        return NULL;
    }
    return y;
}

static ogi_tensor *random_tensor(uint64_t *rng, int rank, const int64_t *dims, bool mask)
{
    ogi_tensor *t = test_tensor_f32(rank, dims, NULL);
    float *v = ogi_tensor_data(t);
    int64_t n = (int64_t)(ogi_tensor_nbytes(t) / sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        v[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 500.0f;
        if (mask && test_rand(rng) % 4 == 0)
            v[i] = -INFINITY;
    }
    if (mask && n > 0 && dims[rank - 1] > 0) /* one fully masked row */
        for (int64_t j = 0; j < dims[rank - 1]; j++)
            v[j] = -INFINITY;
    return t;
}

/* Checks the fused output yf against the unfused yp, NaN for NaN, within
 * 1e-5: their sizes and elements (the caller counts the checks). Returns
 * yp's NaN count. */
static int64_t check_same_or_nan(const ogi_tensor *yf, const ogi_tensor *yp, const char *what)
{
    bool same_size = ogi_tensor_nbytes(yf) == ogi_tensor_nbytes(yp);
    TEST_CHECK(same_size, "%s: output sizes differ", what);
    const float *a = ogi_tensor_data((ogi_tensor *)yf), *b = ogi_tensor_data((ogi_tensor *)yp);
    int64_t n = (int64_t)(ogi_tensor_nbytes(yp) / sizeof(float)), bad = -1, nans = 0;
    for (int64_t i = 0; i < n && bad < 0 && same_size; i++) {
        nans += isnan(b[i]);
        if (isnan(a[i]) != isnan(b[i]) || (!isnan(b[i]) && fabsf(a[i] - b[i]) > 1e-5f))
            bad = i;
    }
    TEST_CHECK(bad < 0, "%s: element %lld fused %g unfused %g", what, (long long)bad,
               bad < 0 ? 0.0 : (double)a[bad], bad < 0 ? 0.0 : (double)b[bad]);
    return nans;
}

/* A bool mask md = [b, 1, q, keys]: causal (query i sees the keys up to
 * i + keys - q) or, with random, two keys in three visible at random. */
static ogi_tensor *bool_mask(uint64_t *rng, const int64_t *md, bool random)
{
    ogi_tensor *t = NULL;
    ogi_tensor_create(OGI_BOOL, 4, md, &t);
    uint8_t *m = ogi_tensor_data(t);
    int64_t q = md[2], keys = md[3];
    for (int64_t r = 0; r < md[0] * q; r++)
        for (int64_t j = 0; j < keys; j++)
            m[r * keys + j] = random ? test_rand(rng) % 3 != 0 : j <= r % q + keys - q;
    return t;
}

/* Removes a case's two models and frees its n_in inputs. */
static void case_done(char (*paths)[TEST_PATH_SIZE], int n_in, ogi_tensor **in)
{
    unlink(paths[0]);
    unlink(paths[1]);
    for (int i = 0; i < n_in; i++)
        ogi_tensor_free(in[i]);
}

static void run_attention_case(uint64_t *rng, const attn_case *ac)
{
    ogi_tensor *in[8] = {random_tensor(rng, 4, ac->qd, false),
                         random_tensor(rng, 4, ac->repeat ? ac->xkd : ac->kd, false),
                         random_tensor(rng, 4, ac->repeat ? ac->xvd : ac->vd, false)};
    const char *names[8] = {"Q", ac->repeat ? "XK" : "K", ac->repeat ? "XV" : "V"};
    int n_in = 3;
    if (ac->mask_rank > 0) {
        names[n_in] = "M";
        in[n_in++] = random_tensor(rng, ac->mask_rank, ac->md + (4 - ac->mask_rank), true);
    }
    if (ac->repeat && !ac->shapes_in_graph) {
        const int64_t *shapes[4] = {ac->s5k, ac->s4k, ac->s5v, ac->s4v};
        const char *shape_names[4] = {"S5K", "S4K", "S5V", "S4V"};
        for (int i = 0; i < 4; i++) {
            names[n_in] = shape_names[i];
            in[n_in++] = test_tensor_i64(1, (int64_t[]){i % 2 ? 4 : 5}, shapes[i]);
        }
    }
    char paths[2][TEST_PATH_SIZE], what[160];
    attn_model(ac, false, paths[0]);
    attn_model(ac, true, paths[1]);
    snprintf(
        what, sizeof(what),
        "q [%lld,%lld,%lld,%lld] k [%lld,%lld,%lld,%lld] mask rank %d nan_where %d div %d kt3d %d "
        "allowzero %d",
        (long long)ac->qd[0], (long long)ac->qd[1], (long long)ac->qd[2], (long long)ac->qd[3],
        (long long)ac->kd[0], (long long)ac->kd[1], (long long)ac->kd[2], (long long)ac->kd[3],
        ac->mask_rank, ac->nan_where, ac->div_scores, ac->kt3d, ac->allowzero);
    TEST_CHECK(fused_patterns(paths[0]) == 1 && fused_patterns(paths[1]) == 0,
               "%s: fused patterns: %d and %d", what, fused_patterns(paths[0]),
               fused_patterns(paths[1]));
    int nodes = 0;
    fused_patterns_nodes(paths[0], &nodes);
    /* all fused into one node; the repeat's shapes, when the graph builds
     * them, are its inputs (Shape, three Slices and two Concats for K and V) */
    int want_nodes = ac->shapes_in_graph ? 13 : 1;
    TEST_CHECK(!(ac->repeat || ac->kt3d) || nodes == want_nodes, "%s: %d nodes left, expected %d",
               what, nodes, want_nodes);
    checks += 2;
    ogi_tensor *yf = attn_run(paths[0], names, in, n_in), *yp = attn_run(paths[1], names, in, n_in);
    checks += 2;
    if (yf != NULL && yp != NULL) {
        int64_t nans = check_same_or_nan(yf, yp, what);
        /* a fully masked row exists: NaN without the Where, none with it */
        TEST_CHECK(ac->mask_rank == 0 || (nans > 0) == !ac->nan_where, "%s: NaN rows: %lld", what,
                   (long long)nans);
        checks += 2;
    }
    ogi_tensor_free(yf);
    ogi_tensor_free(yp);
    case_done(paths, n_in, in);
}

/* kind 0: the plain repeat; 1: 0 and -1 in the Reshape shapes; 2: V from a
 * batch-1 tensor expanded over the batch (materialised, K read as GQA); 3,
 * 4, 5: the plain repeat with K^T as opset-18 exports write it (3), with
 * Reshapes of allowzero = 1 (5), or both (4). */
static void attention_repeat_case(uint64_t *rng, int kind)
{
    bool kt3d = kind == 3 || kind == 4, allowzero = kind == 4 || kind == 5;
    if (kind >= 3)
        kind = 0;
    int64_t b = kind == 2 ? 2 : 1 + (int64_t)(test_rand(rng) % 2);
    int64_t kv = 1 + (int64_t)(test_rand(rng) % 3), rep = 1 + (int64_t)(test_rand(rng) % 3);
    int64_t q = 1 + (int64_t)(test_rand(rng) % 30), t = q + (int64_t)(test_rand(rng) % 30);
    int64_t d = 32, h = kv * rep;
    attn_case ac = {.nan_where = true,
                    .repeat = true,
                    .mask_rank = 4,
                    .kt3d = kt3d,
                    .allowzero = allowzero,
                    .shapes_in_graph = kt3d};
    memcpy(ac.qd, (int64_t[]){b, h, q, d}, sizeof(ac.qd));
    memcpy(ac.md, (int64_t[]){b, 1, q, t}, sizeof(ac.md));
    memcpy(ac.xkd, (int64_t[]){b, kv, t, d}, sizeof(ac.xkd));
    memcpy(ac.xvd, (int64_t[]){kind == 2 ? 1 : b, kv, t, d}, sizeof(ac.xvd));
    memcpy(ac.s5k, (int64_t[]){b, kv, rep, t, d}, sizeof(ac.s5k));
    memcpy(ac.s5v, ac.s5k, sizeof(ac.s5v));
    memcpy(ac.s4k, (int64_t[]){b, h, t, d}, sizeof(ac.s4k));
    memcpy(ac.s4v, ac.s4k, sizeof(ac.s4v));
    if (kind == 1) {
        ac.s4k[0] = 0;
        ac.s4k[2] = -1;
        ac.s4v[3] = -1;
    }
    run_attention_case(rng, &ac);
}

static void attention_cases(uint64_t *rng)
{
    for (int i = 0; i < 18; i++)
        attention_repeat_case(rng, i % 6);
    for (int i = 0; i < 24; i++) {
        attn_case ac = {.nan_where = i % 2, .div_scores = (i / 2) % 2};
        int64_t b = 1 + (int64_t)(test_rand(rng) % 2), h = 1 + (int64_t)(test_rand(rng) % 4);
        int64_t q = 1 + (int64_t)(test_rand(rng) % 40), t = 1 + (int64_t)(test_rand(rng) % 70);
        int64_t d = (int64_t[]){1, 7, 16, 32, 33}[test_rand(rng) % 5];
        int64_t dv = (int64_t[]){1, 8, 32, 40}[test_rand(rng) % 4];
        bool kv_shared = i % 5 == 4; /* K and V with one head for every query head */
        memcpy(ac.qd, (int64_t[]){b, h, q, d}, sizeof(ac.qd));
        memcpy(ac.kd, (int64_t[]){b, kv_shared ? 1 : h, t, d}, sizeof(ac.kd));
        memcpy(ac.vd, (int64_t[]){b, kv_shared ? 1 : h, t, dv}, sizeof(ac.vd));
        ac.mask_rank = (int)((i / 4) % 3) * 2; /* 0, 2 or 4 */
        ac.kt3d = i % 3 == 1;
        if (ac.mask_rank == 4)
            memcpy(ac.md, (int64_t[]){b, 1, q, t}, sizeof(ac.md));
        else
            memcpy(ac.md, (int64_t[]){1, 1, q, t}, sizeof(ac.md));
        run_attention_case(rng, &ac);
    }
}

/* ---- RMSNorm and SwiGLU ---------------------------------------------------- */

/* Runs both models on the same inputs and compares output Y; checks first
 * that fused has want_fused patterns fused and plain one fewer (want_fused
 * < 0: no check). */
static void compare_models(const char *fused, const char *plain, int n_in, const char *const *names,
                           ogi_tensor *const *in, int want_fused, const char *what)
{
    TEST_CHECK(want_fused < 0 ||
                   (fused_patterns(fused) == want_fused && fused_patterns(plain) == want_fused - 1),
               "%s: fused patterns %d and %d", what, fused_patterns(fused), fused_patterns(plain));
    checks++;
    ogi_tensor *y[2] = {NULL, NULL};
    const char *paths[2] = {fused, plain}, *out = "Y";
    for (int k = 0; k < 2; k++)
        test_run_model(paths[k], 2, n_in, names, in, 1, &out, &y[k], what);
    checks++;
    if (y[0] != NULL && y[1] != NULL) {
        int64_t n = (int64_t)(ogi_tensor_nbytes(y[1]) / sizeof(float)), bad = -1;
        TEST_CHECK(ogi_tensor_nbytes(y[0]) == ogi_tensor_nbytes(y[1]), "%s: sizes differ", what);
        const float *a = ogi_tensor_data(y[0]), *b = ogi_tensor_data(y[1]);
        for (int64_t i = 0; i < n && bad < 0 && ogi_tensor_nbytes(y[0]) == ogi_tensor_nbytes(y[1]);
             i++)
            if (fabsf(a[i] - b[i]) > 1e-5f * (1.0f + fabsf(b[i])))
                bad = i;
        TEST_CHECK(bad < 0, "%s: element %lld fused %g unfused %g", what, (long long)bad,
                   bad < 0 ? 0.0 : (double)a[bad], bad < 0 ? 0.0 : (double)b[bad]);
        checks++;
    }
    ogi_tensor_free(y[0]);
    ogi_tensor_free(y[1]);
}

/* variant bits: 1 Mul(x, x) for the square, 2 Reciprocal, 4 Div(x, sqrt),
 * 8 an identity Cast, 16 no weight, 32 weight on the right, 64 scalar weight,
 * 128 axes as an attribute (opset 17) */
static void rms_case(uint64_t *rng, int64_t rows, int64_t n, int variant)
{
    char paths[2][TEST_PATH_SIZE];
    int opset = variant & 128 ? 17 : 18;
    float *w = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 700.0f;
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        const int64_t axes[1] = {-1}, to = 1;
        if (variant & 1)
            pbw_node(&g, "Mul", "sq", 2, (const char *[]){"X", "X"}, 1, (const char *[]){"P"});
        else
            pbw_node(&g, "Pow", "sq", 2, (const char *[]){"X", "two"}, 1, (const char *[]){"P"});
        if (opset == 17)
            node_attr(&g, "ReduceMean", "mean", 1, (const char *[]){"P"}, "M", "axes", axes, 1);
        else
            pbw_node(&g, "ReduceMean", "mean", 2, (const char *[]){"P", "axes"}, 1,
                     (const char *[]){"M"});
        pbw_node(&g, "Add", "add", 2, (const char *[]){"M", "eps"}, 1, (const char *[]){"E"});
        pbw_node(&g, "Sqrt", "sqrt", 1, (const char *[]){"E"}, 1, (const char *[]){"S"});
        if (variant & 4) {
            pbw_node(&g, "Div", "div", 2, (const char *[]){"X", "S"}, 1, (const char *[]){"N"});
        } else {
            if (variant & 2)
                pbw_node(&g, "Reciprocal", "inv", 1, (const char *[]){"S"}, 1,
                         (const char *[]){"R"});
            else
                pbw_node(&g, "Div", "inv", 2, (const char *[]){"one", "S"}, 1,
                         (const char *[]){"R"});
            pbw_node(&g, "Mul", "norm", 2, (const char *[]){"X", "R"}, 1, (const char *[]){"N"});
        }
        const char *normed = "N";
        if (variant & 8) {
            node_attr(&g, "Cast", "cast", 1, (const char *[]){"N"}, "C", "to", &to, -1);
            normed = "C";
        }
        if (variant & 16)
            pbw_node(&g, "Identity", "id", 1, &normed, 1, (const char *[]){"Y"});
        else if (variant & 32)
            pbw_node(&g, "Mul", "w", 2, (const char *[]){normed, "W"}, 1, (const char *[]){"Y"});
        else
            pbw_node(&g, "Mul", "w", 2, (const char *[]){"W", normed}, 1, (const char *[]){"Y"});
        pbw_string(&g, 2, "g");
        float two = 2.0f, one = 1.0f, eps = 1e-5f;
        int64_t ax = -1;
        pbw_tensor_raw(&g, 5, "two", 1, 0, NULL, &two, sizeof(two));
        pbw_tensor_raw(&g, 5, "one", 1, 0, NULL, &one, sizeof(one));
        pbw_tensor_raw(&g, 5, "eps", 1, 0, NULL, &eps, sizeof(eps));
        pbw_tensor_raw(&g, 5, "axes", 7, 1, (int64_t[]){1}, &ax, sizeof(ax));
        if (variant & 64)
            pbw_tensor_raw(&g, 5, "W", 1, 1, (int64_t[]){1}, w, sizeof(float));
        else
            pbw_tensor_raw(&g, 5, "W", 1, 1, (int64_t[]){n}, w, sizeof(float) * (size_t)n);
        pbw_value_info(&g, 11, "X", 1, 3, (int64_t[]){1, rows, n});
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "S", 1, -1, NULL);
        test_save_graph(&g, 8, opset, paths[keep]);
    }
    ogi_tensor *x = random_tensor(rng, 3, (int64_t[]){1, rows, n}, false);
    const char *names[1] = {"X"};
    char what[64];
    snprintf(what, sizeof(what), "rms variant %d [%lld, %lld]", variant, (long long)rows,
             (long long)n);
    /* the bare core (no weight) is one pattern; with (16) an Identity after it */
    compare_models(paths[0], paths[1], 1, names, &x, 1, what);
    /* the weight's Mul goes into the same node: only RMSNorm is left (and,
     * without a weight, the Identity giving the output) */
    int nodes = -1, want = variant & 16 ? 2 : 1;
    fused_patterns_nodes(paths[0], &nodes);
    TEST_CHECK(nodes == want, "%s: %d nodes left, want %d", what, nodes, want);
    checks++;
    case_done(paths, 1, &x);
    free(w);
}

static void silu_case(uint64_t *rng, int64_t rows, int64_t n, int variant)
{
    char paths[2][TEST_PATH_SIZE];
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        pbw_node(&g, "Sigmoid", "sig", 1, (const char *[]){"G"}, 1, (const char *[]){"S"});
        if (variant & 1)
            pbw_node(&g, "Mul", "silu", 2, (const char *[]){"S", "G"}, 1, (const char *[]){"A"});
        else
            pbw_node(&g, "Mul", "silu", 2, (const char *[]){"G", "S"}, 1, (const char *[]){"A"});
        if (variant & 2)
            pbw_node(&g, "Mul", "gate", 2, (const char *[]){"U", "A"}, 1, (const char *[]){"Y"});
        else
            pbw_node(&g, "Mul", "gate", 2, (const char *[]){"A", "U"}, 1, (const char *[]){"Y"});
        pbw_string(&g, 2, "g");
        pbw_value_info(&g, 11, "G", 1, 2, (int64_t[]){rows, n});
        if (variant & 4)
            pbw_value_info(&g, 11, "U", 1, 1, (int64_t[]){n});
        else
            pbw_value_info(&g, 11, "U", 1, 2, (int64_t[]){rows, n});
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "A", 1, -1, NULL);
        test_save_graph(&g, 8, 17, paths[keep]);
    }
    ogi_tensor *in[2] = {random_tensor(rng, 2, (int64_t[]){rows, n}, false),
                         variant & 4 ? random_tensor(rng, 1, (int64_t[]){n}, false)
                                     : random_tensor(rng, 2, (int64_t[]){rows, n}, false)};
    float *gv = ogi_tensor_data(in[0]);
    if (rows * n > 2) { /* past the exp clamp both ways */
        gv[0] = 100.0f;
        gv[1] = -100.0f;
    }
    const char *names[2] = {"G", "U"};
    char what[64];
    snprintf(what, sizeof(what), "silu variant %d [%lld, %lld]", variant, (long long)rows,
             (long long)n);
    compare_models(paths[0], paths[1], 2, names, in, 1, what);
    case_done(paths, 2, in);
}

static void norm_and_gate_cases(uint64_t *rng)
{
    const int64_t ns[] = {1, 7, 16, 33, 256, 577};
    for (int v = 0; v < 256; v += 7) {
        int variant = v;
        if ((variant & 4) && (variant & 2))
            variant &= ~2; /* Div(x, sqrt) has no reciprocal */
        rms_case(rng, 1 + (int64_t)(test_rand(rng) % 40), ns[test_rand(rng) % 6], variant);
    }
    for (int v = 0; v < 8; v++)
        silu_case(rng, 1 + (int64_t)(test_rand(rng) % 40), ns[test_rand(rng) % 6], v);
    silu_case(rng, 300, 704, 0); /* threaded */
}

/* ---- Attention with a bool mask --------------------------------------------- */

/* Declares Attention's inputs: Q [qd], k [kd], v [vd] and the bool mask M,
 * of rank mrank (the last dims of md). */
static void attention_inputs(pbw *g, const int64_t *qd, const char *k, const int64_t *kd,
                             const char *v, const int64_t *vd, int mrank, const int64_t *md)
{
    pbw_value_info(g, 11, "Q", 1, 4, qd);
    pbw_value_info(g, 11, k, 1, 4, kd);
    pbw_value_info(g, 11, v, 1, 4, vd);
    pbw_value_info(g, 11, "M", 9, mrank, md + (4 - mrank));
}

/* kind 0: causal; 1: causal with a padded key; 2: random; mask of rank mrank */
static void causal_case(uint64_t *rng, int64_t b, int64_t hq, int64_t hk, int64_t q, int64_t t,
                        int64_t d, int kind, int mrank)
{
    char paths[2][TEST_PATH_SIZE];
    int64_t qd[4] = {b, hq, q, d}, kd[4] = {b, hk, t, d}, md[4] = {b, 1, q, t};
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        pbw_node(&g, "Attention", "attn", 4, (const char *[]){"Q", "K", "V", "M"}, keep ? 2 : 1,
                 (const char *[]){"Y", "PK"});
        pbw_string(&g, 2, "g");
        attention_inputs(&g, qd, "K", kd, "V", kd, mrank, md);
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "PK", 1, -1, NULL);
        test_save_graph(&g, 8, 23, paths[keep]);
    }
    ogi_tensor *in[4] = {random_tensor(rng, 4, qd, false), random_tensor(rng, 4, kd, false),
                         random_tensor(rng, 4, kd, false), NULL};
    ogi_tensor_create(OGI_BOOL, mrank, md + (4 - mrank), &in[3]);
    uint8_t *m = ogi_tensor_data(in[3]);
    int64_t rows = (int64_t)ogi_tensor_nbytes(in[3]) / (t > 0 ? t : 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < t; j++) {
            int64_t i = r % q;
            m[r * t + j] = kind == 2 ? test_rand(rng) % 3 != 0 : j <= i + t - q;
            if (kind == 1 && j == 0 && i + t - q > 0)
                m[r * t + j] = 0; /* a padded first key */
        }
    const char *names[4] = {"Q", "K", "V", "M"};
    char what[96];
    snprintf(what, sizeof(what), "attention b %lld h %lld/%lld q %lld t %lld kind %d mask rank %d",
             (long long)b, (long long)hq, (long long)hk, (long long)q, (long long)t, kind, mrank);
    compare_models(paths[0], paths[1], 4, names, in, 1, what);
    case_done(paths, 4, in);
}

static void causal_cases(uint64_t *rng)
{
    for (int i = 0; i < 18; i++) {
        int64_t hk = 1 + (int64_t)(test_rand(rng) % 3),
                hq = hk * (1 + (int64_t)(test_rand(rng) % 3));
        int64_t q = 1 + (int64_t)(test_rand(rng) % 40), t = q + (int64_t)(test_rand(rng) % 30);
        causal_case(rng, 1 + (int64_t)(test_rand(rng) % 2), hq, hk, q, t,
                    (int64_t[]){8, 32, 33}[i % 3], i % 3, 2 + 2 * (i % 2));
    }
    causal_case(rng, 1, 8, 4, 256, 256, 32, 0, 4); /* prefill-sized, threaded */
    causal_case(rng, 1, 8, 4, 1, 300, 32, 0, 4);   /* decode: one query, every key visible */
}

/* Attention reading K and V through Reshape(Expand(Unsqueeze(X, [2]), s5), s4)
 * with s5, s4 graph inputs; kind 0: the plain GQA repeat, 1: the same with
 * 0 and -1 in s4, 2: a repeat along the keys instead (s4 = [b, kv, rep*T, d]),
 * 3: plain with allowzero = 1; 4: plain with a random (not causal) mask */
static void repeat_case(uint64_t *rng, int64_t b, int64_t kv, int64_t rep, int64_t q, int64_t t,
                        int64_t d, int kind)
{
    char paths[2][TEST_PATH_SIZE];
    int64_t hq = kv * rep, qd[4] = {b, hq, q, d}, xd[4] = {b, kv, t, d}, md[4] = {b, 1, q, t};
    int64_t s5[5] = {b, kv, rep, t, d}, s4[4] = {b, hq, t, d};
    if (kind == 1) {
        s4[0] = 0;
        s4[2] = -1;
    } else if (kind == 2) {
        s4[1] = kv;
        s4[2] = rep * t;
        md[3] = rep * t;
    }
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        gqa_repeat(&g, "axes", (const char *[]){"S5", "S5"}, (const char *[]){"S4", "S4"},
                   kind == 3);
        pbw_node(&g, "Attention", "attn", 4, (const char *[]){"Q", "K", "V", "M"}, keep ? 2 : 1,
                 (const char *[]){"Y", "PK"});
        pbw_string(&g, 2, "g");
        attention_inputs(&g, qd, "XK", xd, "XV", xd, 4, md);
        pbw_value_info(&g, 11, "S5", 7, 1, (int64_t[]){5});
        pbw_value_info(&g, 11, "S4", 7, 1, (int64_t[]){4});
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "PK", 1, -1, NULL);
        test_save_graph(&g, 8, 23, paths[keep]);
    }
    ogi_tensor *in[6] = {
        random_tensor(rng, 4, qd, false),       random_tensor(rng, 4, xd, false),
        random_tensor(rng, 4, xd, false),       NULL,
        test_tensor_i64(1, (int64_t[]){5}, s5), test_tensor_i64(1, (int64_t[]){4}, s4)};
    in[3] = bool_mask(rng, md, kind == 4);
    const char *names[6] = {"Q", "XK", "XV", "M", "S5", "S4"};
    char what[96];
    snprintf(what, sizeof(what), "repeat kind %d b %lld kv %lld rep %lld q %lld t %lld", kind,
             (long long)b, (long long)kv, (long long)rep, (long long)q, (long long)t);
    compare_models(paths[0], paths[1], 6, names, in, 1, what);
    int nodes = 0;
    fused_patterns_nodes(paths[0], &nodes);
    TEST_CHECK(nodes == 1, "%s: %d nodes left, expected the fused Attention alone", what, nodes);
    checks++;
    case_done(paths, 6, in);
}

static void repeat_cases(uint64_t *rng)
{
    for (int i = 0; i < 15; i++) {
        int64_t q = 1 + (int64_t)(test_rand(rng) % 20);
        repeat_case(rng, 1 + (int64_t)(test_rand(rng) % 2), 1 + (int64_t)(test_rand(rng) % 3),
                    1 + (int64_t)(test_rand(rng) % 3), q, q + (int64_t)(test_rand(rng) % 20),
                    (int64_t[]){8, 32}[i % 2], i % 5);
    }
}

/* ---- attention reading the KV caches in place ------------------------------------- */

/* Shape(in) with start / end attributes (INT64_MIN: not written). */
static void shape_node(pbw *g, const char *name, const char *in, const char *out, int64_t start,
                       int64_t end)
{
    pbw n = {0};
    pbw_node_begin(&n, "Shape", name, 1, &in, 1, &out);
    if (start != INT64_MIN)
        pbw_attr_int(&n, "start", start);
    if (end != INT64_MIN)
        pbw_attr_int(&n, "end", end);
    pbw_message(g, 1, &n);
}

/* Nodes of the prepared graph of path whose kernel is op_type (-1 on
 * failure); *inputs (when not NULL) gets the input count of the last. */
static int kernel_nodes(const char *path, const char *op_type, int *inputs)
{
    test_graph t;
    if (!test_graph_load(path, &t))
        return -1;
    int n = 0;
    for (int i = 0; i < t.g->n_nodes; i++) {
        const graph_node *node = &t.g->nodes[i];
        if (node->kernel != NULL && strcmp(node->kernel->op_type, op_type) == 0) {
            n++;
            if (inputs != NULL)
                *inputs = node->n_inputs;
        }
    }
    test_graph_free(&t);
    return n;
}

/* The GQA repeat's shapes of X (S5<x>, S4<x>) built from Shape(X) as the
 * legacy export builds them: style 0 Gather(Shape(X), 0 and 2) unsqueezed
 * and concatenated with constants; 1 Shape(X) with start / end; 2 as 1 but
 * the Reshape to [b, kv, -1, d] (a repeat along the keys). */
static void sdpa_repeat_shapes(pbw *g, const char *x, int style)
{
    char n[16][24];
    for (int i = 0; i < 16; i++)
        snprintf(n[i], sizeof(n[i]), "%s_%d", x, i);
    char s5[8], s4[8];
    snprintf(s5, sizeof(s5), "S5%s", x);
    snprintf(s4, sizeof(s4), "S4%s", x);
    const int64_t zero = 0;
    if (style == 0) {
        shape_node(g, n[0], x, n[1], INT64_MIN, INT64_MIN);
        pbw_node(g, "Gather", n[2], 2, (const char *[]){n[1], "I0"}, 1, (const char *[]){n[3]});
        pbw_node(g, "Gather", n[4], 2, (const char *[]){n[1], "I2"}, 1, (const char *[]){n[5]});
        pbw_node(g, "Unsqueeze", n[6], 2, (const char *[]){n[3], "AX0"}, 1, (const char *[]){n[7]});
        pbw_node(g, "Unsqueeze", n[8], 2, (const char *[]){n[5], "AX0"}, 1, (const char *[]){n[9]});
        node_attr(g, "Concat", n[10], 5, (const char *[]){n[7], "KVC", "REPC", n[9], "DC"}, s5,
                  "axis", &zero, -1);
        node_attr(g, "Concat", n[11], 4, (const char *[]){n[7], "HQC", n[9], "DC"}, s4, "axis",
                  &zero, -1);
        return;
    }
    shape_node(g, n[0], x, n[1], INT64_MIN, 2); /* [b, kv] */
    shape_node(g, n[2], x, n[3], 2, INT64_MIN); /* [t, d] */
    shape_node(g, n[4], x, n[5], INT64_MIN, 1); /* [b] */
    shape_node(g, n[6], x, n[7], -2, -1);       /* [t] */
    node_attr(g, "Concat", n[8], 3, (const char *[]){n[1], "REPC", n[3]}, s5, "axis", &zero, -1);
    if (style == 1)
        node_attr(g, "Concat", n[9], 4, (const char *[]){n[5], "HQC", n[7], "DC"}, s4, "axis",
                  &zero, -1);
    else
        node_attr(g, "Concat", n[9], 3, (const char *[]){n[1], "M1", "DC"}, s4, "axis", &zero, -1);
}

/* Node op of domain ai.ogi with attributes axis (int) and mode (string). */
static void gather_node(pbw *g, const char *name, const char *data, const char *len,
                        const char *out, const char *mode)
{
    pbw n = {0};
    pbw_node_begin(&n, "TensorGather", name, 2, (const char *[]){data, len}, 1, &out);
    pbw_string(&n, 7, "ai.ogi");
    pbw_attr_int(&n, "axis", 2);
    pbw_attr_string(&n, "mode", mode);
    pbw_message(g, 1, &n);
}

/* test_save_graph with the ai.ogi domain imported too. */
static void save_ogi(pbw *g, int opset, char *path)
{
    pbw model = {0};
    pbw_model(&model, 8, opset, g);
    pbw_opset_import(&model, "ai.ogi", 1);
    test_save_model(&model, path);
}

/* Attention(Q, K, V, M) with K, V read from caches CK, CV [b, kv, cap, d]
 * by TensorGather(C, LEN); kind 0: directly, causal mask; 1: through the
 * plain GQA repeat, causal; 2: a repeat along the keys (materialised);
 * 3: plain repeat, random mask; 4: directly, random mask (both run the
 * Attention kernel); 5: V gathered with a second length input LEN2 (same
 * value): not read in place; 6: circular mode: not read in place; 7: the
 * plain repeat with both shapes built from Shape(gathered K) (which then
 * reads the cache). The twin also outputs the gathered K, which keeps its
 * TensorGather. */
static void cache_case(uint64_t *rng, int64_t b, int64_t kv, int64_t rep, int64_t q, int64_t t,
                       int64_t cap, int64_t d, int kind)
{
    char paths[2][TEST_PATH_SIZE];
    bool repeat = kind == 1 || kind == 2 || kind == 3 || kind == 7;
    bool causal = kind != 3 && kind != 4;
    int64_t hq = kv * rep, qd[4] = {b, hq, q, d}, cd[4] = {b, kv, cap, d}, md[4] = {b, 1, q, t};
    int64_t s5[5] = {b, kv, rep, t, d}, s4[4] = {b, hq, t, d};
    if (kind == 2) {
        s4[1] = kv;
        s4[2] = rep * t;
        md[3] = rep * t;
    }
    if (!repeat)
        qd[1] = hq = kv;
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        const char *mode = kind == 6 ? "circular" : "linear";
        gather_node(&g, "gk", "CK", "LEN", "XK", mode);
        gather_node(&g, "gv", "CV", kind == 5 ? "LEN2" : "LEN", "XV", mode);
        const char *s5 = kind == 7 ? "S5XK" : "S5", *s4 = kind == 7 ? "S4XK" : "S4";
        if (kind == 7)
            sdpa_repeat_shapes(&g, "XK", 1);
        if (repeat)
            gqa_repeat(&g, "axes", (const char *[]){s5, s5}, (const char *[]){s4, s4}, false);
        pbw_node(&g, "Attention", "attn", 4,
                 (const char *[]){"Q", repeat ? "K" : "XK", repeat ? "V" : "XV", "M"}, 1,
                 (const char *[]){"Y"});
        pbw_string(&g, 2, "g");
        attention_inputs(&g, qd, "CK", cd, "CV", cd, 4, md);
        pbw_value_info(&g, 11, "LEN", 7, 1, (int64_t[]){1});
        if (kind == 5)
            pbw_value_info(&g, 11, "LEN2", 7, 1, (int64_t[]){1});
        if (repeat && kind != 7) {
            pbw_value_info(&g, 11, "S5", 7, 1, (int64_t[]){5});
            pbw_value_info(&g, 11, "S4", 7, 1, (int64_t[]){4});
        }
        pbw_tensor_raw(&g, 5, "REPC", 7, 1, (int64_t[]){1}, &rep, sizeof(rep));
        pbw_tensor_raw(&g, 5, "HQC", 7, 1, (int64_t[]){1}, &hq, sizeof(hq));
        pbw_tensor_raw(&g, 5, "DC", 7, 1, (int64_t[]){1}, &d, sizeof(d));
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "XK", 1, -1, NULL);
        save_ogi(&g, 23, paths[keep]);
    }
    ogi_tensor *in[8] = {random_tensor(rng, 4, qd, false), random_tensor(rng, 4, cd, false),
                         random_tensor(rng, 4, cd, false), NULL,
                         test_tensor_i64(1, (int64_t[]){1}, &t)};
    const char *names[8] = {"Q", "CK", "CV", "M", "LEN"};
    int n_in = 5;
    if (kind == 5) {
        names[n_in] = "LEN2";
        in[n_in++] = test_tensor_i64(1, (int64_t[]){1}, &t);
    }
    if (repeat && kind != 7) {
        names[n_in] = "S5";
        in[n_in++] = test_tensor_i64(1, (int64_t[]){5}, s5);
        names[n_in] = "S4";
        in[n_in++] = test_tensor_i64(1, (int64_t[]){4}, s4);
    }
    in[3] = bool_mask(rng, md, !causal);
    char what[112];
    snprintf(what, sizeof(what), "cache kind %d b %lld kv %lld rep %lld q %lld t %lld cap %lld",
             kind, (long long)b, (long long)kv, (long long)rep, (long long)q, (long long)t,
             (long long)cap);
    bool in_place = kind <= 4 || kind == 7;
    if (in_place) {
        compare_models(paths[0], paths[1], n_in, names, in, 2, what);
        int nodes = 0;
        fused_patterns_nodes(paths[0], &nodes);
        /* kind 7: and the shapes, Shape(XK) read as TensorGatherShape */
        int shapes = kernel_nodes(paths[0], "TensorGatherShape", NULL);
        TEST_CHECK(kind == 7 ? shapes > 0 && kernel_nodes(paths[0], "TensorGather", NULL) == 0 &&
                                   kernel_nodes(paths[0], "Shape", NULL) == 0
                             : nodes == 1,
                   "%s: %d nodes left (%d TensorGatherShape), expected the fused Attention alone",
                   what, nodes, shapes);
    } else { /* the gathers stay: both graphs fuse the same */
        TEST_CHECK(fused_patterns(paths[0]) == fused_patterns(paths[1]),
                   "%s: fused patterns %d and %d", what, fused_patterns(paths[0]),
                   fused_patterns(paths[1]));
        checks++;
        compare_models(paths[0], paths[1], n_in, names, in, -1, what);
    }
    checks++;
    case_done(paths, n_in, in);
}

static void cache_cases(uint64_t *rng)
{
    for (int i = 0; i < 24; i++) {
        int64_t q = 1 + (int64_t)(test_rand(rng) % 6), t = q + (int64_t)(test_rand(rng) % 20);
        int64_t cap = t + (i % 4 == 0 ? 0 : 1 + (int64_t)(test_rand(rng) % 9)); /* full or not */
        cache_case(rng, 1 + (int64_t)(test_rand(rng) % 2), 1 + (int64_t)(test_rand(rng) % 3),
                   1 + (int64_t)(test_rand(rng) % 3), q, t, cap, (int64_t[]){8, 32}[i % 2], i % 8);
    }
    cache_case(rng, 1, 4, 2, 1, 200, 512, 32, 1); /* decode, the exported model's shapes */
    cache_case(rng, 1, 4, 2, 1, 0, 16, 32, 0);    /* no keys yet */
}

/* ---- the legacy export's attention reading the KV caches in place ------------------- */

/* The op-by-op attention of the legacy export (ai.ogi.ScaledDotProductAttention
 * once fused) over K and V read from caches CK, CV [b, kv, cap, d] by
 * TensorGather(C, LEN), through the GQA repeat whose shapes come from
 * Shape(gathered K or V). kind 0: the plain repeat, shapes as the export
 * writes them, Where(IsNaN); 1: plain, Shape start / end, a batch dim not
 * known at load, no Where; 2: a repeat along the keys (the window copied);
 * 3: no repeat (K and V of Q's heads); 4: V from a batch-1 cache expanded
 * over the batch, both repeats' shapes from K (both materialised). Not read
 * in place: 5: V gathered with a second length LEN2 (same value); 6: the
 * gathered K also read by Size; 7: circular mode. The twin also outputs the
 * probabilities, which keeps every node. */
static void sdpa_cache_case(uint64_t *rng, int64_t b, int64_t kv, int64_t rep, int64_t q, int64_t t,
                            int64_t cap, int64_t d, int kind)
{
    char paths[2][TEST_PATH_SIZE];
    bool repeat = kind != 3, nan_where = kind != 1, in_place = kind <= 4;
    int style = kind == 1 ? 1 : kind == 2 ? 2 : 0;
    int64_t hq = repeat && kind != 2 ? kv * rep : kv, bv = kind == 4 ? 1 : b;
    int64_t qd[4] = {b, hq, q, d}, ckd[4] = {b, kv, cap, d}, cvd[4] = {bv, kv, cap, d};
    int64_t md[4] = {b, 1, q, kind == 2 ? rep * t : t};
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        const int64_t perm[4] = {0, 1, 3, 2}, axis = -1;
        const char *mode = kind == 7 ? "circular" : "linear";
        gather_node(&g, "gk", "CK", "LEN", "XK", mode);
        gather_node(&g, "gv", "CV", kind == 5 ? "LEN2" : "LEN", "XV", mode);
        if (repeat) {
            sdpa_repeat_shapes(&g, "XK", style);
            if (kind != 4)
                sdpa_repeat_shapes(&g, "XV", style);
            gqa_repeat(&g, "AX2", (const char *[]){"S5XK", kind == 4 ? "S5XK" : "S5XV"},
                       (const char *[]){"S4XK", kind == 4 ? "S4XK" : "S4XV"}, false);
        }
        if (kind == 6)
            pbw_node(&g, "Size", "size", 1, (const char *[]){"XK"}, 1, (const char *[]){"NK"});
        node_attr(&g, "Transpose", "t", 1, (const char *[]){repeat ? "K" : "XK"}, "Kt", "perm",
                  perm, 4);
        pbw_node(&g, "Mul", "mq", 2, (const char *[]){"Q", "c"}, 1, (const char *[]){"Qs"});
        pbw_node(&g, "Mul", "mk", 2, (const char *[]){"Kt", "c"}, 1, (const char *[]){"Kts"});
        pbw_node(&g, "MatMul", "qk", 2, (const char *[]){"Qs", "Kts"}, 1, (const char *[]){"S"});
        pbw_node(&g, "Add", "add", 2, (const char *[]){"S", "M"}, 1, (const char *[]){"A"});
        node_attr(&g, "Softmax", "softmax", 1, (const char *[]){"A"}, "P", "axis", &axis, -1);
        if (nan_where) {
            pbw_node(&g, "IsNaN", "isnan", 1, (const char *[]){"P"}, 1, (const char *[]){"N"});
            pbw_node(&g, "Where", "where", 3, (const char *[]){"N", "zero", "P"}, 1,
                     (const char *[]){"Z"});
        }
        pbw_node(&g, "MatMul", "pv", 2,
                 (const char *[]){nan_where ? "Z" : "P", repeat ? "V" : "XV"}, 1,
                 (const char *[]){"Y"});
        pbw_string(&g, 2, "g");
        float c = 1.0f / sqrtf(sqrtf((float)d)), zero = 0.0f;
        const int64_t i0 = 0, i2 = 2, ax0 = 0, m1 = -1;
        pbw_tensor_raw(&g, 5, "c", 1, 0, NULL, &c, sizeof(c));
        pbw_tensor_raw(&g, 5, "zero", 1, 1, (int64_t[]){1}, &zero, sizeof(zero));
        pbw_tensor_raw(&g, 5, "I0", 7, 0, NULL, &i0, sizeof(i0));
        pbw_tensor_raw(&g, 5, "I2", 7, 0, NULL, &i2, sizeof(i2));
        pbw_tensor_raw(&g, 5, "AX0", 7, 1, (int64_t[]){1}, &ax0, sizeof(ax0));
        pbw_tensor_raw(&g, 5, "M1", 7, 1, (int64_t[]){1}, &m1, sizeof(m1));
        pbw_tensor_raw(&g, 5, "KVC", 7, 1, (int64_t[]){1}, &kv, sizeof(kv));
        pbw_tensor_raw(&g, 5, "REPC", 7, 1, (int64_t[]){1}, &rep, sizeof(rep));
        pbw_tensor_raw(&g, 5, "HQC", 7, 1, (int64_t[]){1}, &hq, sizeof(hq));
        pbw_tensor_raw(&g, 5, "DC", 7, 1, (int64_t[]){1}, &d, sizeof(d));
        int64_t declared[2][4]; /* kind 1: the batch dim not known at load */
        memcpy(declared[0], ckd, sizeof(ckd));
        memcpy(declared[1], cvd, sizeof(cvd));
        if (kind == 1)
            declared[0][0] = declared[1][0] = -1;
        pbw_value_info(&g, 11, "Q", 1, 4, qd);
        pbw_value_info(&g, 11, "CK", 1, 4, declared[0]);
        pbw_value_info(&g, 11, "CV", 1, 4, declared[1]);
        pbw_value_info(&g, 11, "M", 1, 4, md);
        pbw_value_info(&g, 11, "LEN", 7, 1, (int64_t[]){1});
        if (kind == 5)
            pbw_value_info(&g, 11, "LEN2", 7, 1, (int64_t[]){1});
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (kind == 6)
            pbw_value_info(&g, 12, "NK", 7, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "P", 1, -1, NULL);
        save_ogi(&g, 17, paths[keep]);
    }
    ogi_tensor *in[6] = {random_tensor(rng, 4, qd, false),       random_tensor(rng, 4, ckd, false),
                         random_tensor(rng, 4, cvd, false),      random_tensor(rng, 4, md, true),
                         test_tensor_i64(1, (int64_t[]){1}, &t), NULL};
    const char *names[6] = {"Q", "CK", "CV", "M", "LEN", "LEN2"};
    int n_in = 5;
    if (kind == 5)
        in[n_in++] = test_tensor_i64(1, (int64_t[]){1}, &t);
    char what[112];
    snprintf(what, sizeof(what),
             "sdpa cache kind %d b %lld kv %lld rep %lld q %lld t %lld cap %lld", kind,
             (long long)b, (long long)kv, (long long)rep, (long long)q, (long long)t,
             (long long)cap);
    /* fused: the attention and its cache read (two patterns), no gather and
     * no Shape left, 15 inputs; not in place: the gathers stay */
    int sdpa_in = 0, want_gathers = in_place ? 0 : 2;
    int sdpa = kernel_nodes(
        paths[0], nan_where ? "ScaledDotProductAttentionZeroMasked" : "ScaledDotProductAttention",
        &sdpa_in);
    int gathers = kernel_nodes(paths[0], "TensorGather", NULL);
    int shapes = kernel_nodes(paths[0], "Shape", NULL);
    int gather_shapes = kernel_nodes(paths[0], "TensorGatherShape", NULL);
    TEST_CHECK(fused_patterns(paths[0]) == (in_place ? 2 : 1) && fused_patterns(paths[1]) == 0,
               "%s: fused patterns %d and %d", what, fused_patterns(paths[0]),
               fused_patterns(paths[1]));
    TEST_CHECK(sdpa == 1 &&
                   sdpa_in == (in_place ? 15
                               : repeat ? 14
                                        : 10) &&
                   gathers == want_gathers && kernel_nodes(paths[1], "TensorGather", NULL) == 2,
               "%s: %d attention nodes of %d inputs, %d gathers (%d unfused)", what, sdpa, sdpa_in,
               gathers, kernel_nodes(paths[1], "TensorGather", NULL));
    TEST_CHECK(in_place ? shapes == 0 && (gather_shapes > 0) == repeat : gather_shapes == 0,
               "%s: %d Shape and %d TensorGatherShape nodes", what, shapes, gather_shapes);
    checks += 3;
    ogi_tensor *yf = attn_run(paths[0], names, in, n_in), *yp = attn_run(paths[1], names, in, n_in);
    checks += 2;
    if (yf != NULL && yp != NULL) {
        int64_t nans = check_same_or_nan(yf, yp, what);
        int64_t n = (int64_t)(ogi_tensor_nbytes(yp) / sizeof(float));
        /* a fully masked row exists: NaN without the Where, none with it */
        TEST_CHECK(n == 0 || md[3] == 0 || (nans > 0) == !nan_where, "%s: NaN rows: %lld", what,
                   (long long)nans);
        checks += 2;
    }
    ogi_tensor_free(yf);
    ogi_tensor_free(yp);
    case_done(paths, n_in, in);
}

static void sdpa_cache_cases(uint64_t *rng)
{
    for (int i = 0; i < 24; i++) {
        int kind = i % 8;
        int64_t q = 1 + (int64_t)(test_rand(rng) % 6), t = q + (int64_t)(test_rand(rng) % 20);
        int64_t cap = t + (i % 3 == 0 ? 0 : 1 + (int64_t)(test_rand(rng) % 9)); /* full or not */
        int64_t b = kind == 4 ? 2 : 1 + (int64_t)(test_rand(rng) % 2);
        sdpa_cache_case(rng, b, 1 + (int64_t)(test_rand(rng) % 3),
                        1 + (int64_t)(test_rand(rng) % 3), q, t, cap, (int64_t[]){8, 32}[i % 2],
                        kind);
    }
    for (int kind = 0; kind < 2; kind++) { /* decode, the exported model's shapes */
        sdpa_cache_case(rng, 1, 4, 2, 1, 200, 512, 32, kind);
        sdpa_cache_case(rng, 1, 4, 2, 1, 1, 512, 32, kind);
    }
    /* no keys yet (without the repeat: its Reshape reads a 0 as "keep the
     * dim", so the exported repeat cannot give zero keys) */
    sdpa_cache_case(rng, 1, 4, 1, 1, 0, 16, 32, 3);
    sdpa_cache_case(rng, 2, 2, 1, 3, 0, 8, 8, 3);
}

/* ---- rotate_half ---------------------------------------------------------------- */

/* Y = X * C + Concat(Neg(Slice(X, HS, END, axes)), Slice(X, ZERO, HE, axes)) * S,
 * slice bounds HS/HE graph inputs; kind 0: halves, axes [-1], steps given;
 * 1: halves, axes [3], no steps, cos of batch 1; 2: a = everything,
 * b = nothing (rot = X). */
static void rotate_half_case(uint64_t *rng, int64_t b, int64_t h, int64_t seq, int64_t d, int kind)
{
    char paths[2][TEST_PATH_SIZE];
    int64_t xd[4] = {b, h, seq, d}, cd[4] = {kind == 1 ? 1 : b, 1, seq, d};
    for (int keep = 0; keep < 2; keep++) {
        pbw g = {0};
        const int64_t axis = -1;
        const char *sa_in[5] = {"X", "ZERO", "HE", "AX", "ST"},
                   *sb_in[5] = {"X", "HS", "END", "AX", "ST"};
        pbw_node(&g, "Mul", "mc", 2, (const char *[]){"X", "C"}, 1, (const char *[]){"XC"});
        pbw_node(&g, "Slice", "sa", kind == 1 ? 4 : 5, sa_in, 1, (const char *[]){"A"});
        pbw_node(&g, "Slice", "sb", kind == 1 ? 4 : 5, sb_in, 1, (const char *[]){"B"});
        pbw_node(&g, "Neg", "neg", 1, (const char *[]){"B"}, 1, (const char *[]){"NB"});
        node_attr(&g, "Concat", "cat", 2, (const char *[]){"NB", "A"}, "R", "axis", &axis, -1);
        pbw_node(&g, "Mul", "ms", 2, (const char *[]){"S", "R"}, 1, (const char *[]){"RS"});
        pbw_node(&g, "Add", "add", 2, (const char *[]){"RS", "XC"}, 1, (const char *[]){"Y"});
        pbw_string(&g, 2, "g");
        int64_t zero = 0, end = INT64_MAX, ax = kind == 1 ? 3 : -1, st = 1;
        pbw_tensor_raw(&g, 5, "ZERO", 7, 1, (int64_t[]){1}, &zero, sizeof(zero));
        pbw_tensor_raw(&g, 5, "END", 7, 1, (int64_t[]){1}, &end, sizeof(end));
        pbw_tensor_raw(&g, 5, "AX", 7, 1, (int64_t[]){1}, &ax, sizeof(ax));
        pbw_tensor_raw(&g, 5, "ST", 7, 1, (int64_t[]){1}, &st, sizeof(st));
        pbw_value_info(&g, 11, "X", 1, 4, xd);
        pbw_value_info(&g, 11, "C", 1, 4, cd);
        pbw_value_info(&g, 11, "S", 1, 4, cd);
        pbw_value_info(&g, 11, "HS", 7, 1, (int64_t[]){1});
        pbw_value_info(&g, 11, "HE", 7, 1, (int64_t[]){1});
        pbw_value_info(&g, 12, "Y", 1, -1, NULL);
        if (keep)
            pbw_value_info(&g, 12, "NB", 1, -1, NULL);
        test_save_graph(&g, 8, 17, paths[keep]);
    }
    int64_t hs = kind == 2 ? d : d / 2, he = kind == 2 ? INT64_MAX : d / 2;
    ogi_tensor *in[5] = {random_tensor(rng, 4, xd, false), random_tensor(rng, 4, cd, false),
                         random_tensor(rng, 4, cd, false), test_tensor_i64(1, (int64_t[]){1}, &hs),
                         test_tensor_i64(1, (int64_t[]){1}, &he)};
    const char *names[5] = {"X", "C", "S", "HS", "HE"};
    char what[96];
    snprintf(what, sizeof(what), "rotate_half kind %d [%lld, %lld, %lld, %lld]", kind, (long long)b,
             (long long)h, (long long)seq, (long long)d);
    compare_models(paths[0], paths[1], 5, names, in, 1, what);
    case_done(paths, 5, in);
}

static void rotate_half_cases(uint64_t *rng)
{
    for (int i = 0; i < 12; i++)
        rotate_half_case(rng, 1 + (int64_t)(test_rand(rng) % 2), 1 + (int64_t)(test_rand(rng) % 5),
                         1 + (int64_t)(test_rand(rng) % 40),
                         2 * (1 + (int64_t)(test_rand(rng) % 40)), i % 3);
    rotate_half_case(rng, 1, 9, 300, 64, 0); /* threaded */
}

int main(void)
{
    uint64_t rng = 0x1234567887654321ull;
    const int64_t ks[] = {1, 3, 16, 17, 31, 32, 33, 64, 100, 577};
    for (int i = 0; i < 40; i++) {
        int64_t m = 1 + (int64_t)(test_rand(&rng) % 12);
        int64_t n = 1 + (int64_t)(test_rand(&rng) % 300);
        int64_t k = ks[test_rand(&rng) % (sizeof(ks) / sizeof(ks[0]))];
        run_case(&rng, m, n, k, 1 + (int)(test_rand(&rng) % 2), i % 2 == 1, i % 4 != 3);
    }
    run_case(&rng, 0, 5, 7, 1, false, true);     /* no rows */
    run_case(&rng, 4, 2048, 256, 1, true, true); /* a tied LM head, decode at batch 4 */
    run_case(&rng, 9, 1000, 577, 2, true, true); /* prefill: the packed GEMM on panels */
    attention_cases(&rng);
    norm_and_gate_cases(&rng);
    causal_cases(&rng);
    repeat_cases(&rng);
    cache_cases(&rng);
    sdpa_cache_cases(&rng);
    rotate_half_cases(&rng);
    return test_finish("test_fused", checks);
}
