/* Shape inference of small integer values and the folding built on it
 * (engine/shape_infer.c, exec.c): graphs over an input X whose first dim is
 * the symbol "s" (and, in one case, the last dim too), each computing shapes
 * the way exporters do. The test checks which values became constants at
 * load, how many nodes are left, and every output against the plain
 * computation for random run-time sizes, including what must not fold: a
 * Gather of a symbolic dim, a dim that differs from run to run, and a Where
 * whose condition is not one truth value. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/graph.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* ---- graph writing ----------------------------------------------------------- */

static void node1(pbw *g, const char *op, const char *in, const char *out)
{
    pbw_node(g, op, out, 1, &in, 1, &out);
}

static void node2(pbw *g, const char *op, const char *a, const char *b, const char *out)
{
    pbw_node(g, op, out, 2, (const char *[]){a, b}, 1, &out);
}

/* A node with one integer attribute. */
static void node_attr(pbw *g, const char *op, int n_in, const char *const *in, const char *out,
                      const char *attr, int64_t v)
{
    pbw n = {0};
    pbw_node_begin(&n, op, out, n_in, in, 1, &out);
    pbw_attr_int(&n, attr, v);
    pbw_message(g, 1, &n);
}

static void node1_attr(pbw *g, const char *op, const char *in, const char *out, const char *attr,
                       int64_t v)
{
    node_attr(g, op, 1, &in, out, attr, v);
}

/* Concat along axis 0. */
static void concat(pbw *g, int n_in, const char *const *in, const char *out)
{
    node_attr(g, "Concat", n_in, in, out, "axis", 0);
}

/* The int64 constants the cases read: scalars and [1] lists, and ones = [1, 1]. */
static void int_constants(pbw *g)
{
    static const struct {
        const char *name;
        int rank;
        int64_t v;
    } c[] = {{"two", 0, 2},    {"i0", 0, 0},    {"i2", 0, 2},      {"one0", 0, 1}, {"one1", 1, 1},
             {"three1", 1, 3}, {"zero1", 1, 0}, {"minus1", 1, -1}, {"c24", 1, 24}};
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        pbw_tensor_raw(g, 5, c[i].name, 7, c[i].rank, c[i].rank ? (int64_t[]){1} : NULL, &c[i].v,
                       sizeof(int64_t));
    const int64_t ones[2] = {1, 1};
    pbw_tensor_raw(g, 5, "ones", 7, 1, (int64_t[]){2}, ones, sizeof(ones));
}

/* X: float32 [s, 6, last], last a number or (last_symbolic) the symbol "d". */
static void x_input(pbw *g, int64_t last, bool last_symbolic)
{
    pbw shape = {0}, tensor = {0}, type = {0}, vi = {0}, dim = {0};
    pbw_string(&dim, 2, "s");
    pbw_message(&shape, 1, &dim);
    pbw_int(&dim, 1, 6);
    pbw_message(&shape, 1, &dim);
    if (last_symbolic)
        pbw_string(&dim, 2, "d");
    else
        pbw_int(&dim, 1, (uint64_t)last);
    pbw_message(&shape, 1, &dim);
    pbw_int(&tensor, 1, 1);
    pbw_message(&tensor, 2, &shape);
    pbw_message(&type, 1, &tensor);
    pbw_string(&vi, 1, "X");
    pbw_message(&vi, 2, &type);
    pbw_message(g, 11, &vi);
}

/* Saves g, which reads X (x_input) and the constants of int_constants, into
 * path (TEST_PATH_SIZE bytes). */
static void save(pbw *g, int64_t last, bool last_symbolic, char *path)
{
    x_input(g, last, last_symbolic);
    int_constants(g);
    pbw_string(g, 2, "g");
    test_save_graph(g, 10, 17, path);
}

/* ---- load-time checks ------------------------------------------------------------ */

/* Loads path and checks, for each of the n values names[i], whether it is a
 * constant (folded) or computed at run time as constant[i] says, and how
 * many nodes are left. */
static void check_load(const char *path, const char *what, int n, const char *const *names,
                       const bool *constant, int nodes)
{
    test_graph l;
    bool ok = test_graph_load(path, &l);
    TEST_CHECK(ok, "%s: %s", path, ogi_last_error());
    checks++;
    if (!ok)
        return;
    for (int i = 0; i < n; i++) {
        int v = graph_find_value(l.g, names[i]);
        bool is_const = v >= 0 && l.g->values[v].kind == VALUE_CONST;
        TEST_CHECK(v >= 0 && is_const == constant[i], "%s: '%s' %s", what, names[i],
                   constant[i] ? "did not fold" : "folded though it is only known at run time");
        checks++;
    }
    TEST_CHECK(l.g->n_nodes == nodes, "%s: %d nodes left, expected %d", what, l.g->n_nodes, nodes);
    checks++;
    test_graph_free(&l);
}

/* ---- run-time checks ------------------------------------------------------------- */

static ogi_tensor *random_x(uint64_t *rng, int64_t s, int64_t last)
{
    ogi_tensor *t = test_tensor_f32(3, (int64_t[]){s, 6, last}, NULL);
    float *v = ogi_tensor_data(t);
    for (int64_t i = 0; i < s * 6 * last; i++)
        v[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 400.0f;
    return t;
}

/* Runs path on X; outs[i] receive the named outputs. */
static bool run_model(const char *path, ogi_tensor *x, int n_out, const char *const *names,
                      ogi_tensor **outs)
{
    const char *in = "X";
    checks += 2; /* open and run */
    return test_run_model(path, 0, 1, &in, &x, n_out, names, outs, path);
}

static void check_ints(const char *what, const ogi_tensor *t, int64_t n, const int64_t *want)
{
    bool ok = t != NULL && ogi_tensor_dtype(t) == OGI_INT64 && ogi_tensor_numel(t) == n;
    const int64_t *got = ok ? ogi_tensor_data((ogi_tensor *)t) : NULL;
    for (int64_t i = 0; i < n && ok; i++)
        ok = got[i] == want[i];
    TEST_CHECK(ok, "%s: wrong values", what);
    checks++;
}

/* out holds x's elements with shape dims. */
static void check_reshaped(const char *what, const ogi_tensor *out, const ogi_tensor *x, int rank,
                           const int64_t *dims)
{
    bool ok = out != NULL && ogi_tensor_rank(out) == rank;
    for (int d = 0; d < rank && ok; d++)
        ok = ogi_tensor_dims(out)[d] == dims[d];
    ok = ok && ogi_tensor_numel(out) == ogi_tensor_numel(x) &&
         memcmp(ogi_tensor_data((ogi_tensor *)out), ogi_tensor_data((ogi_tensor *)x),
                sizeof(float) * (size_t)ogi_tensor_numel(x)) == 0;
    TEST_CHECK(ok, "%s: wrong shape or values", what);
    checks++;
}

/* ---- cases --------------------------------------------------------------------- */

/* The head-dim chain of the legacy exports, Unsqueeze(Cast(Div(Gather(
 * Shape(X), 2), 2))), folds when dim 2 is a number; Gather(Shape(X), 0)
 * (the symbol s) stays. Y = Reshape(X, Concat(s, -1, half)) and T, the
 * Concat itself, are checked at run time. With last_symbolic, dim 2 is "d"
 * and nothing folds. */
static void case_head_dim(uint64_t *rng, bool last_symbolic)
{
    pbw g = {0};
    node1(&g, "Shape", "X", "S");
    node2(&g, "Gather", "S", "i2", "G2");
    node2(&g, "Div", "G2", "two", "D");
    node1_attr(&g, "Cast", "D", "C", "to", 7);
    node2(&g, "Unsqueeze", "C", "zero1", "half");
    node2(&g, "Gather", "S", "i0", "G0");
    node2(&g, "Unsqueeze", "G0", "zero1", "U0");
    concat(&g, 3, (const char *[]){"U0", "minus1", "half"}, "T");
    node2(&g, "Reshape", "X", "T", "Y");
    pbw_value_info(&g, 12, "Y", 1, -1, NULL);
    pbw_value_info(&g, 12, "T", 7, -1, NULL);
    char path[TEST_PATH_SIZE];
    save(&g, 4, last_symbolic, path);
    const char *what = last_symbolic ? "head dim, symbolic" : "head dim";
    /* Shape, Gather, Unsqueeze, Concat, Reshape (+ Gather, Div, Unsqueeze: the
     * Cast to int64 of an int64 is read through) */
    check_load(path, what, 5, (const char *[]){"half", "G2", "G0", "U0", "S"},
               (bool[]){!last_symbolic, !last_symbolic, false, false, false},
               last_symbolic ? 8 : 5);
    for (int round = 0; round < 3; round++) {
        int64_t s = 1 + (int64_t)(test_rand(rng) % 5);
        int64_t last = last_symbolic ? 2 * (1 + (int64_t)(test_rand(rng) % 4)) : 4;
        ogi_tensor *x = random_x(rng, s, last), *outs[2] = {NULL, NULL};
        const char *names[2] = {"Y", "T"};
        if (run_model(path, x, 2, names, outs)) {
            int64_t half = last / 2;
            check_reshaped(what, outs[0], x, 3, (int64_t[]){s, 6 * last / half, half});
            check_ints(what, outs[1], 3, (int64_t[]){s, -1, half});
        }
        ogi_tensor_free(x);
        ogi_tensor_free(outs[0]);
        ogi_tensor_free(outs[1]);
    }
    unlink(path);
}

/* Shape(X, start=1) and Slice(Shape(X), 1, 3) are [6, 4]; Gather(Shape(X),
 * 1) is 6. All fold, and the Shape(X) they read, unread now, is dropped:
 * only Z = Reshape(X, Concat(-1, 6, 1)) is left. */
static void case_slices(uint64_t *rng)
{
    pbw g = {0};
    node1(&g, "Shape", "X", "S");
    pbw_node(&g, "Slice", "SL", 3, (const char *[]){"S", "one1", "three1"}, 1,
             (const char *[]){"SL"});
    node1_attr(&g, "Shape", "X", "SS", "start", 1);
    node2(&g, "Mul", "SL", "SS", "M"); /* [36, 16] */
    node2(&g, "Gather", "S", "one0", "G1");
    node2(&g, "Unsqueeze", "G1", "zero1", "U1");
    concat(&g, 3, (const char *[]){"minus1", "U1", "one1"}, "T");
    node2(&g, "Reshape", "X", "T", "Z");
    node2(&g, "Add", "M", "zero1", "W");
    pbw_value_info(&g, 12, "Z", 1, -1, NULL);
    pbw_value_info(&g, 12, "W", 7, -1, NULL);
    char path[TEST_PATH_SIZE];
    save(&g, 4, false, path);
    /* the Reshape is left; W, of constants, folds as always */
    check_load(path, "slices", 3, (const char *[]){"SL", "SS", "T"}, (bool[]){true, true, true}, 1);
    int64_t s = 1 + (int64_t)(test_rand(rng) % 5);
    ogi_tensor *x = random_x(rng, s, 4), *outs[2] = {NULL, NULL};
    const char *names[2] = {"Z", "W"};
    if (run_model(path, x, 2, names, outs)) {
        check_reshaped("slices", outs[0], x, 3, (int64_t[]){s * 4, 6, 1});
        check_ints("slices", outs[1], 2, (int64_t[]){36, 16});
    }
    ogi_tensor_free(x);
    ogi_tensor_free(outs[0]);
    ogi_tensor_free(outs[1]);
    unlink(path);
}

/* The legacy exports' expand shape: V = Reshape(X, Where(Equal(T, -1), 1, T))
 * with T = Concat(s, 24) (or, with_minus1, Concat(s, -1)). A dim never
 * equals -1, so Equal folds to all false and the Where is dropped: the
 * Expand reads T itself. With -1 in T the
 * condition is [false, true]: the Where stays and gives [s, 1]. */
static void case_where(uint64_t *rng, bool with_minus1)
{
    pbw g = {0};
    node1(&g, "Shape", "X", "S");
    node2(&g, "Gather", "S", "i0", "G0");
    node2(&g, "Unsqueeze", "G0", "zero1", "U0");
    concat(&g, 2, (const char *[]){"U0", with_minus1 ? "minus1" : "c24"}, "T");
    node2(&g, "Equal", "T", "minus1", "E");
    pbw_node(&g, "Where", "W", 3, (const char *[]){"E", "ones", "T"}, 1, (const char *[]){"W"});
    pbw_node(&g, "Expand", "V", 2, (const char *[]){"X1", "W"}, 1, (const char *[]){"V"});
    node2(&g, "Reshape", "X", "T", "X1");
    pbw_value_info(&g, 12, "V", 1, -1, NULL);
    char path[TEST_PATH_SIZE];
    save(&g, 4, false, path);
    const char *what = with_minus1 ? "where, -1" : "where";
    /* Shape, Gather, Unsqueeze, Concat, Reshape, Expand (+ Where) */
    check_load(path, what, 2, (const char *[]){"E", "T"}, (bool[]){true, false},
               with_minus1 ? 7 : 6);
    int64_t s = 1 + (int64_t)(test_rand(rng) % 5);
    ogi_tensor *x = random_x(rng, s, 4), *v = NULL;
    const char *name = "V";
    if (run_model(path, x, 1, &name, &v))
        check_reshaped(what, v, x, 2, (int64_t[]){s, 24});
    ogi_tensor_free(x);
    ogi_tensor_free(v);
    unlink(path);
}

/* Elements that are the same number at run time: P = Slice(Shape(X), 0, 1)
 * + 1 (a run-time [1]) is concatenated into two shape lists and sliced back
 * out of each (as a KV rewrite's past length is re-read from every layer's
 * cache shape). Both slices are read as P itself, their Concats go unread,
 * the two Squeezes of P merge, the Adds of that and s merge though their
 * operands come in either order, and so do the Unsqueezes: of 15 nodes 8 are
 * left, and R = [2s + 1, 2s + 1] at run time. A Concat(P, P) is not P (its
 * second element sits at another place than P's), and stays. */
static void case_same_elements(uint64_t *rng)
{
    pbw g = {0};
    node1(&g, "Shape", "X", "S");
    pbw_node(&g, "Slice", "L", 3, (const char *[]){"S", "zero1", "one1"}, 1, (const char *[]){"L"});
    node2(&g, "Add", "L", "one1", "P");
    concat(&g, 3, (const char *[]){"c24", "P", "three1"}, "C");
    pbw_node(&g, "Slice", "Q", 3, (const char *[]){"C", "one1", "minus1"}, 1,
             (const char *[]){"Q"});
    concat(&g, 2, (const char *[]){"P", "c24"}, "C2");
    pbw_node(&g, "Slice", "Q2", 3, (const char *[]){"C2", "zero1", "one1"}, 1,
             (const char *[]){"Q2"});
    node2(&g, "Squeeze", "Q", "zero1", "A");
    node2(&g, "Squeeze", "Q2", "zero1", "B");
    node2(&g, "Gather", "S", "i0", "G0");
    node2(&g, "Add", "A", "G0", "E1");
    node2(&g, "Add", "G0", "B", "E2");
    node2(&g, "Unsqueeze", "E1", "zero1", "U1");
    node2(&g, "Unsqueeze", "E2", "zero1", "U2");
    concat(&g, 2, (const char *[]){"U1", "U2"}, "R");
    concat(&g, 2, (const char *[]){"P", "P"}, "PP");
    pbw_node(&g, "Slice", "PS", 3, (const char *[]){"PP", "one1", "three1"}, 1,
             (const char *[]){"PS"});
    pbw_value_info(&g, 12, "R", 7, -1, NULL);
    pbw_value_info(&g, 12, "PS", 7, -1, NULL);
    char path[TEST_PATH_SIZE];
    save(&g, 4, false, path);
    /* Shape, Slice, Add, Squeeze, Gather, Add, Unsqueeze, Concat (R), and
     * Concat (PP), Slice (PS) */
    check_load(path, "same elements", 2, (const char *[]){"P", "R"}, (bool[]){false, false}, 10);
    for (int round = 0; round < 3; round++) {
        int64_t s = 1 + (int64_t)(test_rand(rng) % 5);
        ogi_tensor *x = random_x(rng, s, 4), *outs[2] = {NULL, NULL};
        const char *names[2] = {"R", "PS"};
        if (run_model(path, x, 2, names, outs)) {
            check_ints("same elements", outs[0], 2, (int64_t[]){2 * s + 1, 2 * s + 1});
            check_ints("same elements", outs[1], 1, (int64_t[]){s + 1});
        }
        ogi_tensor_free(x);
        ogi_tensor_free(outs[0]);
        ogi_tensor_free(outs[1]);
    }
    unlink(path);
}

int main(void)
{
    uint64_t rng = 0x5a17e5ull;
    for (int round = 0; round < 2; round++) {
        case_head_dim(&rng, false);
        case_head_dim(&rng, true);
        case_slices(&rng);
        case_where(&rng, false);
        case_where(&rng, true);
        case_same_elements(&rng);
    }
    return test_finish("test_shape_fold", checks);
}
