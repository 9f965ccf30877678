/* Common-subexpression elimination at load (engine/cse.c): small graphs over
 * a random-shaped input X, each built so that some nodes compute the same
 * values. The test counts the nodes merged at load and checks every output
 * against the plain computation, including the cases where nothing may be
 * merged: different attributes, different constants, graph outputs, an
 * in-place TensorScatter; and a duplicate read by an If branch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/graph.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* ---- graph writing and checks -------------------------------------------------- */

static void node1(pbw *g, const char *op, const char *name, const char *in, const char *out)
{
    pbw_node(g, op, name, 1, &in, 1, &out);
}

static void node2(pbw *g, const char *op, const char *name, const char *a, const char *b,
                  const char *out)
{
    pbw_node(g, op, name, 2, (const char *[]){a, b}, 1, &out);
}

static void x_input(pbw *g, int64_t rows, int64_t cols)
{
    pbw_value_info(g, 11, "X", 1, 2, (int64_t[]){rows, cols});
}

/* Nodes merged at load (-1 when the graph does not build). */
static int merged_nodes(const char *path)
{
    test_graph t;
    if (!test_graph_load(path, &t))
        return -1;
    int n = t.g->n_merged;
    test_graph_free(&t);
    return n;
}

/* Saves g into path (TEST_PATH_SIZE bytes) and checks that want nodes merge
 * at load. */
static void save_and_count(pbw *g, int opset, int want, const char *what, char *path)
{
    test_save_graph(g, 10, opset, path);
    int merged = merged_nodes(path);
    TEST_CHECK(merged == want, "%s: %d merged, expected %d", what, merged, want);
    checks++;
}

/* Runs path on the inputs; outs[i] receive the named outputs. */
static bool run_model(const char *path, int n_in, const char *const *names, ogi_tensor *const *in,
                      int n_out, const char *const *out_names, ogi_tensor **outs)
{
    checks += 2; /* open and run */
    return test_run_model(path, 2, n_in, names, in, n_out, out_names, outs, path);
}

static ogi_tensor *random_x(uint64_t *rng, int64_t rows, int64_t cols)
{
    ogi_tensor *t = test_tensor_f32(2, (int64_t[]){rows, cols}, NULL);
    float *v = ogi_tensor_data(t);
    for (int64_t i = 0; i < rows * cols; i++)
        v[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 400.0f;
    return t;
}

/* Checks out (numel n) against want, element by element. */
static void check_close(const char *what, const ogi_tensor *out, const float *want, int64_t n)
{
    TEST_CHECK(out != NULL && ogi_tensor_numel(out) == n, "%s: %lld elements", what,
               out ? (long long)ogi_tensor_numel(out) : -1LL);
    checks++;
    if (out == NULL || ogi_tensor_numel(out) != n)
        return;
    const float *got = ogi_tensor_data((ogi_tensor *)out);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-5f * (1.0f + fabsf(want[i]))))
            bad = i;
    TEST_CHECK(bad < 0, "%s: element %lld is %g, expected %g", what, (long long)bad,
               bad >= 0 ? got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
    checks++;
}

/* The plain computation of a case's Y from X [r, c] (flag: the case's variant). */
typedef void reference_fn(const float *x, int64_t r, int64_t c, bool flag, float *want);

/* Runs path on a random X [r, c], checks Y (n elements) against ref and
 * removes path. */
static void check_y(const char *path, uint64_t *rng, int64_t r, int64_t c, int64_t n,
                    reference_fn *ref, bool flag, const char *what)
{
    ogi_tensor *x = random_x(rng, r, c), *y = NULL;
    const char *in = "X", *out = "Y";
    if (run_model(path, 1, &in, &x, 1, &out, &y)) {
        float *want = calloc((size_t)(n + 1), sizeof(float));
        ref(ogi_tensor_data(x), r, c, flag, want);
        check_close(what, y, want, n);
        free(want);
    }
    unlink(path);
    ogi_tensor_free(x);
    ogi_tensor_free(y);
}

/* ---- cases --------------------------------------------------------------------- */

/* Y = Cos(X) + Cos(X): one Cos. */
static void twice_reference(const float *x, int64_t r, int64_t c, bool flag, float *want)
{
    (void)flag;
    for (int64_t i = 0; i < r * c; i++)
        want[i] = cosf(x[i]) + cosf(x[i]);
}

static void case_twice(uint64_t *rng, int64_t r, int64_t c)
{
    pbw g = {0};
    node1(&g, "Cos", "a", "X", "A");
    node1(&g, "Cos", "b", "X", "B");
    node2(&g, "Add", "y", "A", "B", "Y");
    pbw_string(&g, 2, "g");
    x_input(&g, r, c);
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 17, 1, "twice", path);
    check_y(path, rng, r, c, r * c, twice_reference, false, "twice");
}

/* Neg(Unsqueeze(X, a1)) + Neg(Unsqueeze(X, a2)) with a1, a2 two constants
 * holding the same axis: the constants merge, then the Unsqueezes, then the
 * Negs (3 nodes) when equal is set; with a1 != a2 (broadcasting [1,r,c]
 * against [r,1,c]) nothing merges. */
static void chain_reference(const float *x, int64_t r, int64_t c, bool equal, float *want)
{
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) {
            if (equal) {
                want[i * c + j] = -x[i * c + j] - x[i * c + j];
                continue;
            }
            /* [1,r,c] + [r,1,c] -> [r,r,c]: element (k, i, j) = -x[i,j] - x[k,j] */
            for (int64_t k = 0; k < r; k++)
                want[(k * r + i) * c + j] = -x[i * c + j] - x[k * c + j];
        }
}

static void case_chain(uint64_t *rng, int64_t r, int64_t c, bool equal)
{
    pbw g = {0};
    node2(&g, "Unsqueeze", "u1", "X", "a1", "U1");
    node2(&g, "Unsqueeze", "u2", "X", "a2", "U2");
    node1(&g, "Neg", "n1", "U1", "N1");
    node1(&g, "Neg", "n2", "U2", "N2");
    node2(&g, "Add", "y", "N1", "N2", "Y");
    pbw_string(&g, 2, "g");
    int64_t a1 = 0, a2 = equal ? 0 : 1;
    pbw_tensor_raw(&g, 5, "a1", 7, 1, (int64_t[]){1}, &a1, sizeof(a1));
    pbw_tensor_raw(&g, 5, "a2", 7, 1, (int64_t[]){1}, &a2, sizeof(a2));
    x_input(&g, r, c);
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    const char *what = equal ? "chain" : "chain, different axes";
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 17, equal ? 2 : 0, what, path);
    check_y(path, rng, r, c, equal ? r * c : r * r * c, chain_reference, equal, what);
}

/* Softmax(X, axis=0) + Softmax(X, axis=1): attributes differ, nothing merges;
 * same_axis makes both axis 1 (one merge). */
static void attributes_reference(const float *x, int64_t r, int64_t c, bool same_axis, float *want)
{
    for (int axis = 0; axis < 2; axis++) {
        int a = axis == 0 && same_axis ? 1 : axis;
        int64_t outer = a == 0 ? c : r, len = a == 0 ? r : c;
        for (int64_t o = 0; o < outer; o++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t k = 0; k < len; k++) {
                int64_t at = a == 0 ? k * c + o : o * c + k;
                mx = fmax(mx, x[at]);
            }
            for (int64_t k = 0; k < len; k++)
                sum += exp(x[a == 0 ? k * c + o : o * c + k] - mx);
            for (int64_t k = 0; k < len; k++) {
                int64_t at = a == 0 ? k * c + o : o * c + k;
                want[at] += (float)(exp(x[at] - mx) / sum);
            }
        }
    }
}

static void case_attributes(uint64_t *rng, int64_t r, int64_t c, bool same_axis)
{
    pbw g = {0}, s0 = {0}, s1 = {0};
    const char *x = "X", *out0 = "S0", *out1 = "S1";
    pbw_node_begin(&s0, "Softmax", "s0", 1, &x, 1, &out0);
    pbw_attr_int(&s0, "axis", same_axis ? 1 : 0);
    pbw_message(&g, 1, &s0);
    pbw_node_begin(&s1, "Softmax", "s1", 1, &x, 1, &out1);
    pbw_attr_int(&s1, "axis", 1);
    pbw_message(&g, 1, &s1);
    node2(&g, "Add", "y", "S0", "S1", "Y");
    pbw_string(&g, 2, "g");
    x_input(&g, r, c);
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    const char *what = same_axis ? "attributes, same axis" : "attributes";
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 17, same_axis ? 1 : 0, what, path);
    check_y(path, rng, r, c, r * c, attributes_reference, same_axis, what);
}

/* Mul(X, 2) + Mul(X, 3): different constants, nothing merges. */
static void constants_reference(const float *x, int64_t r, int64_t c, bool flag, float *want)
{
    (void)flag;
    for (int64_t i = 0; i < r * c; i++)
        want[i] = x[i] * 2.0f + x[i] * 3.0f;
}

static void case_constants(uint64_t *rng, int64_t r, int64_t c)
{
    pbw g = {0};
    node2(&g, "Mul", "m2", "X", "two", "M2");
    node2(&g, "Mul", "m3", "X", "three", "M3");
    node2(&g, "Add", "y", "M2", "M3", "Y");
    pbw_string(&g, 2, "g");
    float two = 2.0f, three = 3.0f;
    pbw_tensor_raw(&g, 5, "two", 1, 0, NULL, &two, sizeof(two));
    pbw_tensor_raw(&g, 5, "three", 1, 0, NULL, &three, sizeof(three));
    x_input(&g, r, c);
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 17, 0, "constants", path);
    check_y(path, rng, r, c, r * c, constants_reference, false, "constants");
}

/* Y = Cos(X) and Z = Cos(X) are both graph outputs: neither merges. W =
 * Cos(X), read by V = Neg(W), is not an output and merges into Y's node. */
static void case_outputs(uint64_t *rng, int64_t r, int64_t c)
{
    pbw g = {0};
    node1(&g, "Cos", "y", "X", "Y");
    node1(&g, "Cos", "z", "X", "Z");
    node1(&g, "Cos", "w", "X", "W");
    node1(&g, "Neg", "v", "W", "V");
    pbw_string(&g, 2, "g");
    x_input(&g, r, c);
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    pbw_value_info(&g, 12, "Z", 1, -1, NULL);
    pbw_value_info(&g, 12, "V", 1, -1, NULL);
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 17, 1, "outputs", path);
    ogi_tensor *x = random_x(rng, r, c), *outs[3] = {NULL, NULL, NULL};
    const char *in = "X", *names[3] = {"Y", "Z", "V"};
    if (run_model(path, 1, &in, &x, 3, names, outs)) {
        float *cos_x = malloc(sizeof(float) * (size_t)(r * c + 1));
        float *neg_cos = malloc(sizeof(float) * (size_t)(r * c + 1));
        const float *xv = ogi_tensor_data(x);
        for (int64_t i = 0; i < r * c; i++) {
            cos_x[i] = cosf(xv[i]);
            neg_cos[i] = -cos_x[i];
        }
        check_close("outputs Y", outs[0], cos_x, r * c);
        check_close("outputs Z", outs[1], cos_x, r * c);
        check_close("outputs V", outs[2], neg_cos, r * c);
        TEST_CHECK(outs[0] != NULL && outs[1] != NULL &&
                       ogi_tensor_data(outs[0]) != ogi_tensor_data(outs[1]),
                   "outputs: Y and Z share a buffer");
        checks++;
        free(cos_x);
        free(neg_cos);
    }
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(outs[i]);
    unlink(path);
    ogi_tensor_free(x);
}

/* Two TensorScatters of the same cache, update and indices: they update in
 * place and are never merged (Y = T1 + T2 is still twice the scatter). */
static void case_inplace(uint64_t *rng, int64_t len, int64_t d)
{
    pbw g = {0};
    const char *in[3] = {"P", "U", "I"};
    const char *t1 = "T1", *t2 = "T2";
    pbw_node(&g, "TensorScatter", "s1", 3, in, 1, &t1);
    pbw_node(&g, "TensorScatter", "s2", 3, in, 1, &t2);
    node2(&g, "Add", "y", "T1", "T2", "Y");
    pbw_string(&g, 2, "g");
    pbw_value_info(&g, 11, "P", 1, 4, (int64_t[]){1, 1, len, d});
    pbw_value_info(&g, 11, "U", 1, 4, (int64_t[]){1, 1, 1, d});
    pbw_value_info(&g, 11, "I", 7, 1, (int64_t[]){1});
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 24, 0, "in place", path);
    ogi_tensor *p = test_tensor_f32(4, (int64_t[]){1, 1, len, d}, NULL);
    ogi_tensor *u = test_tensor_f32(4, (int64_t[]){1, 1, 1, d}, NULL);
    int64_t at = (int64_t)(test_rand(rng) % (uint64_t)len);
    ogi_tensor *idx = test_tensor_i64(1, (int64_t[]){1}, &at), *y = NULL;
    float *pv = ogi_tensor_data(p), *uv = ogi_tensor_data(u);
    for (int64_t i = 0; i < len * d; i++)
        pv[i] = (float)i;
    for (int64_t i = 0; i < d; i++)
        uv[i] = -1.0f - (float)i;
    const char *names[3] = {"P", "U", "I"}, *out = "Y";
    ogi_tensor *ins[3] = {p, u, idx};
    if (run_model(path, 3, names, ins, 1, &out, &y)) {
        float *want = malloc(sizeof(float) * (size_t)(len * d));
        for (int64_t i = 0; i < len * d; i++)
            want[i] = 2.0f * (i / d == at ? uv[i % d] : (float)i);
        check_close("in place", y, want, len * d);
        free(want);
    }
    unlink(path);
    ogi_tensor_free(p);
    ogi_tensor_free(u);
    ogi_tensor_free(idx);
    ogi_tensor_free(y);
}

/* A = Cos(X), B = Cos(X) merged, B read only inside If's branches:
 * Y = A + If(cond, B, Neg(B)). */
static void case_subgraph(uint64_t *rng, int64_t r, int64_t c)
{
    pbw g = {0}, then_g = {0}, else_g = {0}, node = {0};
    node1(&then_g, "Identity", "t", "B", "R_then");
    pbw_string(&then_g, 2, "then");
    pbw_value_info(&then_g, 12, "R_then", 1, -1, NULL);
    node1(&else_g, "Neg", "e", "B", "R_else");
    pbw_string(&else_g, 2, "else");
    pbw_value_info(&else_g, 12, "R_else", 1, -1, NULL);
    node1(&g, "Cos", "a", "X", "A");
    node1(&g, "Cos", "b", "X", "B");
    const char *cond = "cond", *r_out = "R";
    pbw_node_begin(&node, "If", "if", 1, &cond, 1, &r_out);
    pbw_attr_graph(&node, "then_branch", &then_g);
    pbw_attr_graph(&node, "else_branch", &else_g);
    pbw_message(&g, 1, &node);
    node2(&g, "Add", "y", "A", "R", "Y");
    pbw_string(&g, 2, "g");
    x_input(&g, r, c);
    pbw_value_info(&g, 11, "cond", 9, 0, NULL);
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    char path[TEST_PATH_SIZE];
    save_and_count(&g, 17, 1, "subgraph", path);
    ogi_tensor *x = random_x(rng, r, c);
    for (int branch = 0; branch < 2; branch++) {
        ogi_tensor *cond = NULL, *y = NULL;
        ogi_tensor_create(OGI_BOOL, 0, NULL, &cond);
        *(bool *)ogi_tensor_data(cond) = branch == 0;
        const char *names[2] = {"X", "cond"}, *out = "Y";
        ogi_tensor *ins[2] = {x, cond};
        if (run_model(path, 2, names, ins, 1, &out, &y)) {
            float *want = calloc((size_t)(r * c + 1), sizeof(float));
            if (branch == 0) /* else: Cos(X) - Cos(X) */
                twice_reference(ogi_tensor_data(x), r, c, false, want);
            check_close(branch == 0 ? "subgraph then" : "subgraph else", y, want, r * c);
            free(want);
        }
        ogi_tensor_free(cond);
        ogi_tensor_free(y);
    }
    unlink(path);
    ogi_tensor_free(x);
}

int main(void)
{
    uint64_t rng = 0x5eed0c5eull;
    for (int round = 0; round < 4; round++) {
        int64_t r = 1 + (int64_t)(test_rand(&rng) % 7), c = 1 + (int64_t)(test_rand(&rng) % 9);
        case_twice(&rng, r, c);
        case_chain(&rng, r, c, true);
        case_chain(&rng, r, c, false);
        case_attributes(&rng, r, c, false);
        case_attributes(&rng, r, c, true);
        case_constants(&rng, r, c);
        case_outputs(&rng, r, c);
        case_inplace(&rng, 1 + r, c);
        case_subgraph(&rng, r, c);
    }
    return test_finish("test_cse", checks);
}
