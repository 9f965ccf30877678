/* The op families of the differential test: each generator builds one
 * random single-node case (shapes, dtypes, attributes, which inputs are
 * initializers) from the rng it is given, so that a case is reproducible
 * from its seed alone. Values stay where the op is well conditioned (no
 * division by tiny numbers, no log of negatives): the test compares two
 * implementations, not their handling of ill-posed inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "diff_case.h"

/* ---- helpers ----------------------------------------------------------------- */

static bool chance(uint64_t *rng, int percent)
{
    return diff_int(rng, 0, 99) < percent;
}

static int pick(uint64_t *rng, int n)
{
    return (int)diff_int(rng, 0, n - 1);
}

static int rand_shape(uint64_t *rng, int rmin, int rmax, int64_t dmin, int64_t dmax, int64_t *dims)
{
    int r = (int)diff_int(rng, rmin, rmax);
    for (int d = 0; d < r; d++)
        dims[d] = diff_int(rng, dmin, dmax);
    return r;
}

/* A shape that broadcasts to (rank, dims): leading dims dropped, some set to 1. */
static int broadcast_shape(uint64_t *rng, int rank, const int64_t *dims, int64_t *out)
{
    int drop = chance(rng, 25) ? (int)diff_int(rng, 0, rank) : 0;
    int r = rank - drop;
    for (int d = 0; d < r; d++)
        out[d] = chance(rng, 25) ? 1 : dims[drop + d];
    return r;
}

/* Moves values of t with |v| < min out to +-min (denominators). */
static void away_from_zero(ogi_tensor *t, double min)
{
    if (t == NULL)
        return;
    int64_t n = tensor_numel(t);
    for (int64_t e = 0; e < n; e++) {
        if (dtype_is_integer(t->dtype)) {
            if (dtype_get_i64(t->data, t->dtype, e) == 0)
                dtype_set_i64(t->data, t->dtype, e, 1);
            continue;
        }
        double v = dtype_get_f64(t->data, t->dtype, e);
        if (fabs(v) < min)
            dtype_set_f64(t->data, t->dtype, e, v < 0 ? -min : min);
    }
}

/* Values on a grid of step `step` in [lo, hi] (ties for comparisons and arg-max). */
static ogi_tensor *grid_random(uint64_t *rng, ogi_dtype dtype, int rank, const int64_t *dims,
                               int lo, int hi, double step)
{
    ogi_tensor *t = diff_random(rng, OGI_INT64, rank, dims, lo, hi);
    ogi_tensor *f = NULL;
    if (t != NULL && ogi_tensor_create(dtype, rank, dims, &f) == OGI_OK) {
        int64_t n = tensor_numel(t);
        for (int64_t e = 0; e < n; e++)
            dtype_set_f64(f->data, dtype, e, (double)dtype_get_i64(t->data, OGI_INT64, e) * step);
    }
    ogi_tensor_free(t);
    return f;
}

/* Adds t as an input, now and then as an initializer instead of a graph
 * input (the constant-folding paths). */
static void add_in(uint64_t *rng, diff_case *c, ogi_tensor *t)
{
    if (chance(rng, 15))
        diff_in_const(c, t);
    else
        diff_in(c, t);
}

static ogi_dtype pick_dtype(uint64_t *rng, const ogi_dtype *list, int n)
{
    return list[pick(rng, n)];
}

/* A random permutation of 0..n-1. */
static void permutation(uint64_t *rng, int n, int64_t *perm)
{
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = pick(rng, i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---- elementwise ---------------------------------------------------------------- */

static const int elementwise_opsets[] = {17, 21, 23};

static void gen_binary(uint64_t *rng, diff_case *c)
{
    static const char *const ops[] = {"Add",
                                      "Sub",
                                      "Mul",
                                      "Div",
                                      "Pow",
                                      "Max",
                                      "Min",
                                      "Mod",
                                      "Equal",
                                      "Less",
                                      "Greater",
                                      "LessOrEqual",
                                      "GreaterOrEqual",
                                      "And",
                                      "Or",
                                      "Xor",
                                      "BitwiseAnd",
                                      "BitwiseOr",
                                      "BitwiseXor",
                                      "PRelu",
                                      "Sum",
                                      "Mean",
                                      "Where",
                                      "BitShift"};
    const char *op = ops[pick(rng, (int)(sizeof(ops) / sizeof(ops[0])))];
    diff_case_init(c, op, elementwise_opsets[pick(rng, 3)]);
    int64_t out[OGI_MAX_RANK], a[OGI_MAX_RANK], b[OGI_MAX_RANK];
    int rank = rand_shape(rng, 0, 4, 1, 5, out);
    if (rank > 0 && chance(rng, 4))
        out[pick(rng, rank)] = 0;
    int ra = chance(rng, 50) ? rank : broadcast_shape(rng, rank, out, a);
    if (ra == rank)
        memcpy(a, out, sizeof(out));
    int rb = broadcast_shape(rng, rank, out, b);
    if (chance(rng, 50)) { /* either side may be the smaller one */
        int64_t t[OGI_MAX_RANK];
        memcpy(t, a, sizeof(t));
        memcpy(a, b, sizeof(t));
        memcpy(b, t, sizeof(t));
        int tr = ra;
        ra = rb;
        rb = tr;
    }
    static const ogi_dtype arith[] = {OGI_FLOAT32, OGI_FLOAT32, OGI_FLOAT64, OGI_INT32, OGI_INT64};
    static const ogi_dtype ordered[] = {OGI_FLOAT32, OGI_INT32, OGI_INT64};
    static const ogi_dtype bits[] = {OGI_INT32, OGI_INT64, OGI_UINT8, OGI_INT8};
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul")) {
        ogi_dtype t = pick_dtype(rng, arith, 5);
        add_in(rng, c, diff_random(rng, t, ra, a, -100, 100));
        add_in(rng, c, diff_random(rng, t, rb, b, -100, 100));
        diff_out(c, t);
    } else if (!strcmp(op, "Div")) {
        ogi_dtype t = pick_dtype(rng, arith, 5);
        add_in(rng, c, diff_random(rng, t, ra, a, -100, 100));
        ogi_tensor *den = diff_random(rng, t, rb, b, -10, 10);
        away_from_zero(den, 0.5);
        add_in(rng, c, den);
        diff_out(c, t);
    } else if (!strcmp(op, "Pow")) {
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, ra, a, 0.1, 3));
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, rb, b, -2, 2));
        diff_out(c, OGI_FLOAT32);
    } else if (!strcmp(op, "Max") || !strcmp(op, "Min") || !strcmp(op, "Sum") ||
               !strcmp(op, "Mean")) {
        bool any = !strcmp(op, "Max") || !strcmp(op, "Min");
        ogi_dtype t = any ? pick_dtype(rng, ordered, 3) : OGI_FLOAT32;
        int n = (int)diff_int(rng, 1, 3);
        add_in(rng, c, diff_random(rng, t, ra, a, -50, 50));
        if (n >= 2)
            add_in(rng, c, diff_random(rng, t, rb, b, -50, 50));
        if (n == 3)
            add_in(rng, c, diff_random(rng, t, rank, out, -50, 50));
        diff_out(c, t);
    } else if (!strcmp(op, "Mod")) {
        static const ogi_dtype mod[] = {OGI_FLOAT32, OGI_INT32, OGI_INT64};
        ogi_dtype t = pick_dtype(rng, mod, 3);
        int fmod = t == OGI_FLOAT32 ? 1 : (int)diff_int(rng, 0, 1);
        diff_attr_int(c, "fmod", fmod);
        add_in(rng, c, diff_random(rng, t, ra, a, -50, 50));
        ogi_tensor *den = diff_random(rng, t, rb, b, -9, 9);
        away_from_zero(den, 0.5);
        add_in(rng, c, den);
        diff_out(c, t);
    } else if (!strcmp(op, "Equal") || !strcmp(op, "Less") || !strcmp(op, "Greater") ||
               !strcmp(op, "LessOrEqual") || !strcmp(op, "GreaterOrEqual")) {
        ogi_dtype t = pick_dtype(rng, ordered, 3);
        if (t == OGI_FLOAT32) {
            add_in(rng, c, grid_random(rng, t, ra, a, -2, 2, 0.5));
            add_in(rng, c, grid_random(rng, t, rb, b, -2, 2, 0.5));
        } else {
            add_in(rng, c, diff_random(rng, t, ra, a, -2, 2));
            add_in(rng, c, diff_random(rng, t, rb, b, -2, 2));
        }
        diff_out(c, OGI_BOOL);
    } else if (!strcmp(op, "And") || !strcmp(op, "Or") || !strcmp(op, "Xor")) {
        add_in(rng, c, diff_random(rng, OGI_BOOL, ra, a, 0, 1));
        add_in(rng, c, diff_random(rng, OGI_BOOL, rb, b, 0, 1));
        diff_out(c, OGI_BOOL);
    } else if (!strncmp(op, "Bitwise", 7)) {
        c->opset = 18 + pick(rng, 6);
        ogi_dtype t = pick_dtype(rng, bits, 4);
        double lo = t == OGI_UINT8 ? 0 : t == OGI_INT8 ? -128 : -100000;
        double hi = t == OGI_UINT8 ? 255 : t == OGI_INT8 ? 127 : 100000;
        add_in(rng, c, diff_random(rng, t, ra, a, lo, hi));
        add_in(rng, c, diff_random(rng, t, rb, b, lo, hi));
        diff_out(c, t);
    } else if (!strcmp(op, "BitShift")) {
        static const ogi_dtype u[] = {OGI_UINT8, OGI_UINT32, OGI_UINT64};
        ogi_dtype t = pick_dtype(rng, u, 3);
        int width = t == OGI_UINT8 ? 8 : t == OGI_UINT32 ? 32 : 64;
        diff_attr_string(c, "direction", chance(rng, 50) ? "LEFT" : "RIGHT");
        add_in(rng, c, diff_random(rng, t, ra, a, 0, t == OGI_UINT8 ? 255 : 1e9));
        add_in(rng, c, diff_random(rng, t, rb, b, 0, width - 1));
        diff_out(c, t);
    } else if (!strcmp(op, "PRelu")) {
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, rank, out, -3, 3));
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, rb, b, -1, 1));
        diff_out(c, OGI_FLOAT32);
    } else { /* Where */
        static const ogi_dtype w[] = {OGI_FLOAT32, OGI_INT64, OGI_BOOL};
        ogi_dtype t = pick_dtype(rng, w, 3);
        int64_t cd[OGI_MAX_RANK];
        int rc = broadcast_shape(rng, rank, out, cd);
        add_in(rng, c, diff_random(rng, OGI_BOOL, rc, cd, 0, 1));
        add_in(rng, c, diff_random(rng, t, ra, a, -9, 9));
        add_in(rng, c, diff_random(rng, t, rb, b, -9, 9));
        diff_out(c, t);
    }
}

typedef struct unary_op {
    const char *name;
    double lo, hi;
    int opset;     /* the earliest opset with this form */
    bool integers; /* int32 / int64 inputs too */
} unary_op;

static const unary_op unary_ops[] = {
    {"Relu", -3, 3, 14, true},
    {"Sigmoid", -6, 6, 13, false},
    {"Tanh", -4, 4, 13, false},
    {"Exp", -5, 5, 13, false},
    {"Log", 0.01, 10, 13, false},
    {"Sqrt", 0, 10, 13, false},
    {"Neg", -9, 9, 13, true},
    {"Abs", -9, 9, 13, true},
    {"Erf", -3, 3, 13, false},
    {"Softplus", -5, 5, 1, false},
    {"Softsign", -5, 5, 1, false},
    {"Reciprocal", -4, 4, 13, false},
    {"Floor", -10, 10, 13, false},
    {"Ceil", -10, 10, 13, false},
    {"Round", -10, 10, 11, false},
    {"Sin", -6, 6, 7, false},
    {"Cos", -6, 6, 7, false},
    {"Tan", -1.2, 1.2, 7, false},
    {"Asin", -0.95, 0.95, 7, false},
    {"Acos", -0.95, 0.95, 7, false},
    {"Atan", -5, 5, 7, false},
    {"Sinh", -3, 3, 9, false},
    {"Cosh", -3, 3, 9, false},
    {"Asinh", -5, 5, 9, false},
    {"Acosh", 1.05, 5, 9, false},
    {"Atanh", -0.9, 0.9, 9, false},
    {"Sign", -3, 3, 13, true},
    {"Elu", -3, 3, 6, false},
    {"Selu", -3, 3, 6, false},
    {"LeakyRelu", -3, 3, 16, false},
    {"HardSigmoid", -4, 4, 6, false},
    {"HardSwish", -4, 4, 14, false},
    {"Gelu", -4, 4, 20, false},
    {"Mish", -5, 5, 18, false},
    {"ThresholdedRelu", -3, 3, 10, false},
    {"Celu", -3, 3, 12, false},
    {"Clip", -5, 5, 13, true},
    {"Identity", -5, 5, 21, true},
    {"Not", 0, 1, 1, false},
};

static void unary_attrs(uint64_t *rng, diff_case *c, const char *op)
{
    if (!strcmp(op, "Elu") || !strcmp(op, "LeakyRelu") || !strcmp(op, "ThresholdedRelu") ||
        !strcmp(op, "Celu")) {
        if (chance(rng, 70))
            diff_attr_float(c, "alpha", (float)diff_uniform(rng, 0.1, 2));
    } else if (!strcmp(op, "Selu")) {
        if (chance(rng, 50))
            diff_attr_float(c, "alpha", (float)diff_uniform(rng, 1, 2));
        if (chance(rng, 50))
            diff_attr_float(c, "gamma", (float)diff_uniform(rng, 0.5, 1.5));
    } else if (!strcmp(op, "HardSigmoid")) {
        if (chance(rng, 50))
            diff_attr_float(c, "alpha", (float)diff_uniform(rng, 0.1, 0.5));
        if (chance(rng, 50))
            diff_attr_float(c, "beta", (float)diff_uniform(rng, 0.2, 0.8));
    } else if (!strcmp(op, "Gelu")) {
        if (chance(rng, 50))
            diff_attr_string(c, "approximate", chance(rng, 50) ? "tanh" : "none");
    }
}

static void gen_unary(uint64_t *rng, diff_case *c)
{
    const unary_op *u = &unary_ops[pick(rng, (int)(sizeof(unary_ops) / sizeof(unary_ops[0])))];
    diff_case_init(c, u->name, u->opset > 21 ? 23 : elementwise_opsets[pick(rng, 3)]);
    if (c->opset < u->opset)
        c->opset = u->opset;
    int64_t dims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 0, 4, 1, 6, dims);
    if (rank > 0 && chance(rng, 4))
        dims[pick(rng, rank)] = 0;
    static const ogi_dtype ints[] = {OGI_INT32, OGI_INT64};
    ogi_dtype t = !strcmp(u->name, "Not")          ? OGI_BOOL
                  : u->integers && chance(rng, 30) ? pick_dtype(rng, ints, 2)
                                                   : OGI_FLOAT32;
    ogi_tensor *x = diff_random(rng, t, rank, dims, u->lo, u->hi);
    if (!strcmp(u->name, "Reciprocal"))
        away_from_zero(x, 0.25);
    add_in(rng, c, x);
    unary_attrs(rng, c, u->name);
    if (!strcmp(u->name, "Clip")) {
        double lo = diff_uniform(rng, -4, 0), hi = diff_uniform(rng, 0, 4);
        int which = pick(rng, 4); /* none, min, max, both */
        if (which & 1)
            add_in(rng, c, diff_scalar(t, lo));
        else if (which & 2)
            diff_in_none(c);
        if (which & 2)
            add_in(rng, c, diff_scalar(t, hi));
    }
    diff_out(c, t);
}

/* ---- softmax, reductions ---------------------------------------------------- */

static void gen_softmax(uint64_t *rng, diff_case *c)
{
    static const char *const ops[] = {"Softmax", "LogSoftmax", "Hardmax"};
    static const int opsets[] = {13, 23};
    diff_case_init(c, ops[pick(rng, 3)], opsets[pick(rng, 2)]);
    int64_t dims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 7, dims);
    if (chance(rng, 10))
        dims[rank - 1] = diff_int(rng, 30, 70);
    add_in(rng, c, diff_random(rng, OGI_FLOAT32, rank, dims, -5, 5));
    if (chance(rng, 80))
        diff_attr_int(c, "axis", diff_int(rng, -rank, rank - 1));
    diff_out(c, OGI_FLOAT32);
}

/* Distinct random axes (some negative) of a rank-r tensor; returns how many. */
static int random_axes(uint64_t *rng, int rank, int64_t *axes, int min)
{
    int64_t perm[OGI_MAX_RANK];
    permutation(rng, rank, perm);
    int n = (int)diff_int(rng, min, rank);
    for (int i = 0; i < n; i++)
        axes[i] = chance(rng, 30) ? perm[i] - rank : perm[i];
    return n;
}

static void gen_reduce(uint64_t *rng, diff_case *c)
{
    static const char *const ops[] = {
        "ReduceSum", "ReduceMean", "ReduceMax",       "ReduceMin",       "ReduceProd",
        "ReduceL1",  "ReduceL2",   "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum"};
    const char *op = ops[pick(rng, 10)];
    diff_case_init(c, op, chance(rng, 50) ? 18 : 23);
    int64_t dims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 5, dims);
    bool positive = !strcmp(op, "ReduceProd") || !strcmp(op, "ReduceLogSum");
    add_in(rng, c,
           diff_random(rng, OGI_FLOAT32, rank, dims, positive ? 0.5 : -3, positive ? 1.5 : 3));
    int64_t axes[OGI_MAX_RANK];
    int form = pick(rng, 4); /* 0: no axes input, 1: empty axes, 2-3: some axes */
    if (form == 1)
        add_in(rng, c, diff_i64(0, axes));
    else if (form >= 2)
        add_in(rng, c, diff_i64(random_axes(rng, rank, axes, 1), axes));
    if (chance(rng, 60))
        diff_attr_int(c, "keepdims", diff_int(rng, 0, 1));
    if (form <= 1 && chance(rng, 40))
        diff_attr_int(c, "noop_with_empty_axes", diff_int(rng, 0, 1));
    diff_out(c, OGI_FLOAT32);
}

static void gen_argmax(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, chance(rng, 50) ? "ArgMax" : "ArgMin", 13);
    int64_t dims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 6, dims);
    add_in(rng, c, grid_random(rng, OGI_FLOAT32, rank, dims, -3, 3, 1.0)); /* ties */
    if (chance(rng, 80))
        diff_attr_int(c, "axis", diff_int(rng, -rank, rank - 1));
    if (chance(rng, 50))
        diff_attr_int(c, "keepdims", diff_int(rng, 0, 1));
    if (chance(rng, 50))
        diff_attr_int(c, "select_last_index", diff_int(rng, 0, 1));
    diff_out(c, OGI_INT64);
}

/* ---- matrix products ---------------------------------------------------------------- */

static void gen_matmul(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "MatMul", chance(rng, 50) ? 13 : 23);
    int64_t m = chance(rng, 15) ? diff_int(rng, 16, 40) : diff_int(rng, 1, 8);
    int64_t k = chance(rng, 15) ? diff_int(rng, 16, 48) : diff_int(rng, 1, 12);
    int64_t n = chance(rng, 15) ? diff_int(rng, 16, 40) : diff_int(rng, 1, 8);
    int64_t batch[OGI_MAX_RANK], ba[OGI_MAX_RANK], bb[OGI_MAX_RANK];
    int rank = rand_shape(rng, 0, 2, 1, 3, batch);
    int ra = broadcast_shape(rng, rank, batch, ba), rb = broadcast_shape(rng, rank, batch, bb);
    if (chance(rng, 10)) {
        ba[0] = k; /* A is a vector [k] */
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, 1, ba, -1, 1));
    } else {
        ba[ra] = m;
        ba[ra + 1] = k;
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, ra + 2, ba, -1, 1));
    }
    if (chance(rng, 10)) {
        bb[0] = k;
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, 1, bb, -1, 1));
    } else {
        bb[rb] = k;
        bb[rb + 1] = n;
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, rb + 2, bb, -1, 1));
    }
    diff_out(c, OGI_FLOAT32);
}

static void gen_gemm(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Gemm", 13);
    int64_t m = diff_int(rng, 1, 12), k = diff_int(rng, 1, 20), n = diff_int(rng, 1, 12);
    bool ta = chance(rng, 50), tb = chance(rng, 50);
    int64_t a[2] = {ta ? k : m, ta ? m : k}, b[2] = {tb ? n : k, tb ? k : n};
    add_in(rng, c, diff_random(rng, OGI_FLOAT32, 2, a, -1, 1));
    add_in(rng, c, diff_random(rng, OGI_FLOAT32, 2, b, -1, 1));
    int form = pick(rng, 7);
    int64_t cd[2];
    switch (form) {
    case 0:
        break;
    case 1:
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, 0, cd, -1, 1));
        break;
    case 2:
        cd[0] = n;
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, 1, cd, -1, 1));
        break;
    default:
        cd[0] = form == 3 ? 1 : m;
        cd[1] = form == 4 ? 1 : n;
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, 2, cd, -1, 1));
        break;
    }
    if (ta)
        diff_attr_int(c, "transA", 1);
    if (tb)
        diff_attr_int(c, "transB", 1);
    if (chance(rng, 40))
        diff_attr_float(c, "alpha", (float)diff_uniform(rng, -2, 2));
    if (chance(rng, 40))
        diff_attr_float(c, "beta", (float)diff_uniform(rng, -2, 2));
    diff_out(c, OGI_FLOAT32);
}

/* ---- shape ops ------------------------------------------------------------------------- */

static const ogi_dtype any_dtypes[] = {OGI_FLOAT32, OGI_FLOAT32, OGI_INT64, OGI_INT32,
                                       OGI_BOOL,    OGI_FLOAT16, OGI_UINT8, OGI_FLOAT64};

static ogi_tensor *any_random(uint64_t *rng, ogi_dtype t, int rank, const int64_t *dims)
{
    return diff_random(rng, t, rank, dims, t == OGI_UINT8 ? 0 : -50, 50);
}

/* Adds an int64 shape-like input: an initializer half of the time. */
static void add_ints(uint64_t *rng, diff_case *c, int n, const int64_t *v)
{
    if (chance(rng, 50))
        diff_in_const(c, diff_i64(n, v));
    else
        diff_in(c, diff_i64(n, v));
}

static void gen_reshape(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Reshape", chance(rng, 50) ? 14 : 23);
    int64_t in[OGI_MAX_RANK], out[OGI_MAX_RANK];
    int rin = rand_shape(rng, 0, 4, 1, 4, in);
    int64_t numel = 1;
    for (int d = 0; d < rin; d++)
        numel *= in[d];
    /* split numel into a random number of factors */
    int rout = (int)diff_int(rng, 1, 4);
    for (int d = 0; d < rout; d++)
        out[d] = 1;
    int64_t rest = numel;
    for (int64_t f = 2; rest > 1; f++)
        while (rest % f == 0) {
            out[pick(rng, rout)] *= f;
            rest /= f;
        }
    if (chance(rng, 40))
        out[pick(rng, rout)] = -1;
    for (int d = 0; d < rout && d < rin; d++)
        if (out[d] == in[d] && chance(rng, 30))
            out[d] = 0; /* "copy this dim" */
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    add_in(rng, c, any_random(rng, t, rin, in));
    add_ints(rng, c, rout, out);
    diff_out(c, t);
}

static void gen_transpose(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Transpose", chance(rng, 50) ? 13 : 23);
    int64_t dims[OGI_MAX_RANK], perm[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 5, 1, 4, dims);
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    add_in(rng, c, any_random(rng, t, rank, dims));
    if (chance(rng, 80)) {
        permutation(rng, rank, perm);
        diff_attr_ints(c, "perm", rank, perm);
    }
    diff_out(c, t);
}

static void gen_concat(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Concat", chance(rng, 50) ? 13 : 23);
    int64_t dims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 4, dims);
    int axis = pick(rng, rank);
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    int n = (int)diff_int(rng, 1, 4);
    for (int i = 0; i < n; i++) {
        dims[axis] = diff_int(rng, chance(rng, 10) ? 0 : 1, 4);
        add_in(rng, c, any_random(rng, t, rank, dims));
    }
    diff_attr_int(c, "axis", chance(rng, 30) ? axis - rank : axis);
    diff_out(c, t);
}

static int64_t slice_bound(uint64_t *rng, int64_t d)
{
    if (chance(rng, 8))
        return chance(rng, 50) ? INT64_MAX : INT64_MIN;
    return diff_int(rng, -d - 2, d + 2);
}

static void gen_slice(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Slice", chance(rng, 50) ? 13 : 23);
    int64_t dims[OGI_MAX_RANK], axes[OGI_MAX_RANK], starts[OGI_MAX_RANK], ends[OGI_MAX_RANK],
        steps[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 6, dims);
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    add_in(rng, c, any_random(rng, t, rank, dims));
    bool with_axes = chance(rng, 70);
    int n = with_axes ? random_axes(rng, rank, axes, 1) : (int)diff_int(rng, 1, rank);
    for (int i = 0; i < n; i++) {
        int64_t ax = with_axes ? (axes[i] < 0 ? axes[i] + rank : axes[i]) : i;
        starts[i] = slice_bound(rng, dims[ax]);
        ends[i] = slice_bound(rng, dims[ax]);
        steps[i] = diff_int(rng, 1, 3) * (chance(rng, 35) ? -1 : 1);
    }
    bool with_steps = chance(rng, 60);
    for (int i = 0; i < n && !with_steps; i++)
        steps[i] = 1;
    for (int i = 0; i < n; i++)
        if (steps[i] < 0 && ends[i] == INT64_MAX)
            c->ort_deviation = "Slice backwards with end INT64_MAX: the ONNX rule clamps the end "
                               "to dim - 1 (nothing past the start), ORT slices to the beginning";
    add_ints(rng, c, n, starts);
    add_ints(rng, c, n, ends);
    if (with_axes || with_steps) {
        if (with_axes)
            add_ints(rng, c, n, axes);
        else
            diff_in_none(c);
    }
    if (with_steps)
        add_ints(rng, c, n, steps);
    diff_out(c, t);
}

static void gen_gather(uint64_t *rng, diff_case *c)
{
    bool elements = chance(rng, 30);
    diff_case_init(c, elements ? "GatherElements" : "Gather", 13);
    int64_t dims[OGI_MAX_RANK], idims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 5, dims);
    int axis = pick(rng, rank);
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    add_in(rng, c, any_random(rng, t, rank, dims));
    int irank;
    if (elements) {
        irank = rank;
        for (int d = 0; d < rank; d++)
            idims[d] = d == axis ? diff_int(rng, 1, 4) : diff_int(rng, 1, dims[d]);
    } else {
        irank = rand_shape(rng, 0, 3, 0, 4, idims);
    }
    ogi_dtype it = chance(rng, 30) ? OGI_INT32 : OGI_INT64;
    add_in(rng, c, diff_random(rng, it, irank, idims, (double)-dims[axis], (double)dims[axis] - 1));
    if (axis != 0 || chance(rng, 50))
        diff_attr_int(c, "axis", chance(rng, 30) ? axis - rank : axis);
    diff_out(c, t);
}

static void gen_expand(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Expand", chance(rng, 50) ? 13 : 23);
    int64_t dims[OGI_MAX_RANK], shape[OGI_MAX_RANK];
    int rank = rand_shape(rng, 0, 3, 1, 3, dims);
    for (int d = 0; d < rank; d++)
        if (chance(rng, 40))
            dims[d] = 1;
    int lead = (int)diff_int(rng, 0, 2), srank = rank + lead;
    if (chance(rng, 20) && rank > 0) { /* a shape shorter than the input */
        srank = (int)diff_int(rng, 0, rank);
    }
    for (int d = 0; d < srank; d++) {
        int xd = d - (srank - rank);
        int64_t x = xd >= 0 ? dims[xd] : 1;
        shape[d] = x == 1 ? diff_int(rng, 1, 4) : (chance(rng, 30) ? 1 : x);
    }
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    add_in(rng, c, any_random(rng, t, rank, dims));
    add_ints(rng, c, srank, shape);
    diff_out(c, t);
}

static void gen_squeeze(uint64_t *rng, diff_case *c)
{
    bool squeeze = chance(rng, 50);
    diff_case_init(c, squeeze ? "Squeeze" : "Unsqueeze", chance(rng, 50) ? 13 : 23);
    int64_t dims[OGI_MAX_RANK], axes[OGI_MAX_RANK];
    int rank = rand_shape(rng, squeeze ? 1 : 0, 4, 1, 4, dims);
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    int n = 0;
    if (squeeze) {
        for (int d = 0; d < rank; d++)
            if (chance(rng, 50))
                dims[d] = 1;
        for (int d = 0; d < rank; d++)
            if (dims[d] == 1 && chance(rng, 60))
                axes[n++] = chance(rng, 30) ? d - rank : d;
    } else {
        int out_rank = rank + (int)diff_int(rng, 1, 3);
        int64_t perm[OGI_MAX_RANK];
        permutation(rng, out_rank, perm);
        n = out_rank - rank;
        for (int i = 0; i < n; i++)
            axes[i] = chance(rng, 30) ? perm[i] - out_rank : perm[i];
    }
    add_in(rng, c, any_random(rng, t, rank, dims));
    if (!squeeze || n > 0 || chance(rng, 30))
        add_ints(rng, c, n, axes);
    diff_out(c, t);
}

static void gen_misc_shape(uint64_t *rng, diff_case *c)
{
    static const char *const ops[] = {"Flatten", "Tile", "Shape", "Size", "Trilu", "CumSum"};
    const char *op = ops[pick(rng, 6)];
    diff_case_init(c, op, 23);
    int64_t dims[OGI_MAX_RANK], v[OGI_MAX_RANK];
    int rank = rand_shape(rng, !strcmp(op, "Trilu") ? 2 : 1, 4, 1, 5, dims);
    ogi_dtype t = !strcmp(op, "CumSum") ? OGI_FLOAT32 : pick_dtype(rng, any_dtypes, 8);
    if (!strcmp(op, "Trilu") && t == OGI_BOOL)
        t = OGI_INT64; /* ORT has no bool Trilu */
    add_in(rng, c, any_random(rng, t, rank, dims));
    if (!strcmp(op, "Flatten")) {
        diff_attr_int(c, "axis", diff_int(rng, -rank, rank));
        diff_out(c, t);
    } else if (!strcmp(op, "Tile")) {
        for (int d = 0; d < rank; d++)
            v[d] = diff_int(rng, chance(rng, 5) ? 0 : 1, 3);
        add_ints(rng, c, rank, v);
        diff_out(c, t);
    } else if (!strcmp(op, "Shape") || !strcmp(op, "Size")) {
        if (!strcmp(op, "Shape") && chance(rng, 50))
            diff_attr_int(c, "start", diff_int(rng, -rank - 1, rank));
        if (!strcmp(op, "Shape") && chance(rng, 50))
            diff_attr_int(c, "end", diff_int(rng, -rank - 1, rank + 1));
        diff_out(c, OGI_INT64);
    } else if (!strcmp(op, "Trilu")) {
        if (chance(rng, 60))
            diff_in(c, diff_scalar(OGI_INT64, (double)diff_int(rng, -4, 4)));
        if (chance(rng, 60))
            diff_attr_int(c, "upper", diff_int(rng, 0, 1));
        diff_out(c, t);
    } else {
        diff_in(c, diff_scalar(chance(rng, 50) ? OGI_INT64 : OGI_INT32,
                               (double)diff_int(rng, -rank, rank - 1)));
        if (chance(rng, 50))
            diff_attr_int(c, "exclusive", 1);
        if (chance(rng, 50))
            diff_attr_int(c, "reverse", 1);
        diff_out(c, t);
    }
}

static void gen_split(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "Split", 18 + pick(rng, 6));
    int64_t dims[OGI_MAX_RANK], sizes[4];
    int rank = rand_shape(rng, 1, 4, 1, 6, dims);
    int axis = pick(rng, rank);
    ogi_dtype t = pick_dtype(rng, any_dtypes, 8);
    int n = (int)diff_int(rng, 1, 4);
    if (chance(rng, 50)) { /* explicit sizes */
        int64_t total = 0;
        for (int i = 0; i < n; i++)
            total += sizes[i] = diff_int(rng, 0, 3);
        dims[axis] = total;
        add_in(rng, c, any_random(rng, t, rank, dims));
        add_ints(rng, c, n, sizes);
    } else { /* num_outputs: equal chunks, the last one smaller */
        if (dims[axis] < n)
            dims[axis] = n;
        add_in(rng, c, any_random(rng, t, rank, dims));
        diff_attr_int(c, "num_outputs", n);
    }
    diff_attr_int(c, "axis", chance(rng, 30) ? axis - rank : axis);
    for (int i = 0; i < n; i++)
        diff_out(c, t);
}

static void gen_pad(uint64_t *rng, diff_case *c)
{
    static const char *const modes[] = {"constant", "reflect", "edge", "wrap"};
    const char *mode = modes[pick(rng, 4)];
    diff_case_init(c, "Pad", chance(rng, 50) ? 19 : 23);
    int64_t dims[OGI_MAX_RANK], pads[2 * OGI_MAX_RANK], axes[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 2, 5, dims);
    ogi_dtype t = !strcmp(mode, "constant") ? OGI_FLOAT32 : pick_dtype(rng, any_dtypes, 8);
    add_in(rng, c, any_random(rng, t, rank, dims));
    bool with_axes = chance(rng, 40);
    int n = with_axes ? random_axes(rng, rank, axes, 1) : rank;
    for (int i = 0; i < n; i++) {
        int64_t d = dims[with_axes ? (axes[i] + rank) % rank : i];
        /* reflect needs pads < dim; ORT 1.30's wrap goes wrong beyond the dim
         * (numpy's wrap repeats the tensor), so wrap stays within it */
        int64_t most = !strcmp(mode, "reflect") ? d - 1 : !strcmp(mode, "wrap") ? d : 3;
        pads[i] = diff_int(rng, 0, most);
        pads[n + i] = diff_int(rng, 0, most);
        if (!strcmp(mode, "constant") && chance(rng, 15))
            pads[i] = -diff_int(rng, 0, d - 1); /* negative pads crop */
    }
    add_ints(rng, c, 2 * n, pads);
    if (!strcmp(mode, "constant") && chance(rng, 60))
        add_in(rng, c, diff_scalar(t, diff_uniform(rng, -2, 2)));
    else if (with_axes)
        diff_in_none(c);
    if (with_axes)
        add_ints(rng, c, n, axes);
    diff_attr_string(c, "mode", mode);
    diff_out(c, t);
}

static void gen_cast(uint64_t *rng, diff_case *c)
{
    static const struct {
        ogi_dtype from, to;
        double lo, hi;
    } pairs[] = {
        {OGI_FLOAT32, OGI_FLOAT16, -70000, 70000},
        {OGI_FLOAT32, OGI_FLOAT16, -2, 2},
        {OGI_FLOAT32, OGI_BFLOAT16, -100, 100},
        {OGI_FLOAT32, OGI_FLOAT64, -100, 100},
        {OGI_FLOAT32, OGI_INT32, -1000, 1000},
        {OGI_FLOAT32, OGI_INT64, -1000, 1000},
        {OGI_FLOAT32, OGI_INT8, -100, 100},
        {OGI_FLOAT32, OGI_UINT8, 0, 200},
        {OGI_FLOAT32, OGI_INT16, -1000, 1000},
        {OGI_FLOAT32, OGI_BOOL, -1, 1},
        {OGI_INT64, OGI_FLOAT32, -100000, 100000},
        {OGI_INT64, OGI_INT32, -100000, 100000},
        {OGI_INT64, OGI_FLOAT16, -1000, 1000},
        {OGI_INT32, OGI_INT64, -100000, 100000},
        {OGI_INT32, OGI_FLOAT64, -100000, 100000},
        {OGI_BOOL, OGI_FLOAT32, 0, 1},
        {OGI_BOOL, OGI_INT64, 0, 1},
        {OGI_FLOAT16, OGI_FLOAT32, -100, 100},
        {OGI_BFLOAT16, OGI_FLOAT32, -100, 100},
        {OGI_FLOAT64, OGI_FLOAT32, -1e6, 1e6},
        {OGI_UINT8, OGI_FLOAT32, 0, 255},
        {OGI_INT8, OGI_INT64, -128, 127},
        {OGI_FLOAT16, OGI_BFLOAT16, -10, 10},
        {OGI_INT64, OGI_BOOL, -2, 2},
    };
    int k = pick(rng, (int)(sizeof(pairs) / sizeof(pairs[0])));
    diff_case_init(c, "Cast", chance(rng, 50) ? 19 : 23);
    int64_t dims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 0, 3, 1, 6, dims);
    ogi_tensor *x = pairs[k].to == OGI_BOOL && pairs[k].from == OGI_FLOAT32
                        ? grid_random(rng, OGI_FLOAT32, rank, dims, -2, 2, 0.5)
                        : diff_random(rng, pairs[k].from, rank, dims, pairs[k].lo, pairs[k].hi);
    add_in(rng, c, x);
    diff_attr_int(c, "to", pairs[k].to);
    diff_out(c, pairs[k].to);
    c->rtol = c->atol = 0; /* conversions round one way */
}

/* ---- normalization --------------------------------------------------------------------- */

static void gen_rms_norm(uint64_t *rng, diff_case *c)
{
    bool rms = chance(rng, 67);
    diff_case_init(c, rms ? "RMSNormalization" : "LayerNormalization", rms ? 23 : 17);
    int64_t dims[OGI_MAX_RANK], sdims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 1, 4, 1, 5, dims);
    if (chance(rng, 30))
        dims[rank - 1] = diff_int(rng, 16, 64);
    int axis = (int)diff_int(rng, 0, rank - 1);
    if (chance(rng, 50))
        axis = rank - 1;
    add_in(rng, c, diff_random(rng, OGI_FLOAT32, rank, dims, -3, 3));
    int srank = rank - axis;
    for (int d = 0; d < srank; d++)
        sdims[d] = dims[axis + d];
    if (rms && chance(rng, 25)) /* a scale that broadcasts over the normalized dims */
        srank = broadcast_shape(rng, srank, sdims, sdims);
    add_in(rng, c, diff_random(rng, OGI_FLOAT32, srank, sdims, -2, 2));
    if (!rms && chance(rng, 60))
        add_in(rng, c, diff_random(rng, OGI_FLOAT32, srank, sdims, -1, 1));
    if (axis != rank - 1 || chance(rng, 50))
        diff_attr_int(c, "axis", chance(rng, 30) ? axis - rank : axis);
    if (chance(rng, 60))
        diff_attr_float(c, "epsilon", (float)diff_uniform(rng, 1e-6, 1e-2));
    diff_out(c, OGI_FLOAT32);
}

/* ---- rotary embedding ----------------------------------------------------------------- */

/* cos or sin of random angles, shaped dims. */
static ogi_tensor *trig_cache(uint64_t *rng, int rank, const int64_t *dims, bool sine)
{
    ogi_tensor *t = diff_random(rng, OGI_FLOAT32, rank, dims, -3.2, 3.2);
    if (t == NULL)
        return NULL;
    float *v = t->data;
    for (int64_t e = 0; e < tensor_numel(t); e++)
        v[e] = sine ? sinf(v[e]) : cosf(v[e]);
    return t;
}

static void gen_rotary(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "RotaryEmbedding", 23);
    int64_t b = diff_int(rng, 1, 2), h = diff_int(rng, 1, 3), s = diff_int(rng, 1, 5);
    int64_t hd = 2 * diff_int(rng, 1, 8);
    int64_t rot = chance(rng, 30) ? 2 * diff_int(rng, 1, hd / 2) : hd;
    bool three_d = chance(rng, 40), positions = chance(rng, 60);
    int64_t x4[4] = {b, h, s, hd}, x3[3] = {b, s, h * hd};
    add_in(rng, c, diff_random(rng, OGI_FLOAT32, three_d ? 3 : 4, three_d ? x3 : x4, -2, 2));
    int64_t max_pos = s + diff_int(rng, 0, 6);
    int64_t cache2[2] = {max_pos, rot / 2}, cache3[3] = {b, s, rot / 2};
    uint64_t angles = diff_next(rng); /* cos and sin of the same angles */
    uint64_t r1 = angles, r2 = angles;
    add_in(rng, c, trig_cache(&r1, positions ? 2 : 3, positions ? cache2 : cache3, false));
    add_in(rng, c, trig_cache(&r2, positions ? 2 : 3, positions ? cache2 : cache3, true));
    if (positions) {
        int64_t pd[2] = {b, s};
        add_in(rng, c, diff_random(rng, OGI_INT64, 2, pd, 0, (double)max_pos - 1));
    }
    if (three_d || chance(rng, 30))
        diff_attr_int(c, "num_heads", h);
    if (rot != hd || chance(rng, 30))
        diff_attr_int(c, "rotary_embedding_dim", rot == hd && chance(rng, 50) ? 0 : rot);
    if (chance(rng, 50))
        diff_attr_int(c, "interleaved", diff_int(rng, 0, 1));
    diff_out(c, OGI_FLOAT32);
}

/* ---- attention ----------------------------------------------------------------------- */

typedef struct attn_shape {
    int64_t batch, q_heads, kv_heads, q_len, kv_len, past, qk_dim, v_dim;
    bool three_d, has_past;
} attn_shape;

/* Q, K or V as 4D [batch, heads, seq, dim] or 3D [batch, seq, heads * dim]. */
static ogi_tensor *attn_qkv(uint64_t *rng, const attn_shape *a, int64_t heads, int64_t seq,
                            int64_t dim)
{
    int64_t d4[4] = {a->batch, heads, seq, dim}, d3[3] = {a->batch, seq, heads * dim};
    return diff_random(rng, OGI_FLOAT32, a->three_d ? 3 : 4, a->three_d ? d3 : d4, -1, 1);
}

/* attn_mask broadcasting to [batch, q_heads, q_len, total] (opset 24: the
 * last dim may be shorter). */
static void attn_mask(uint64_t *rng, diff_case *c, const attn_shape *a, int64_t total)
{
    int64_t full[4] = {a->batch, a->q_heads, a->q_len, total}, dims[4];
    int rank = (int)diff_int(rng, 2, 4);
    for (int d = 0; d < rank; d++) {
        int64_t f = full[4 - rank + d];
        dims[d] = d < rank - 2 && chance(rng, 40) ? 1 : f;
    }
    if (c->opset >= 24 && chance(rng, 20) && total > 1)
        dims[rank - 1] = diff_int(rng, 1, total - 1);
    bool boolean = chance(rng, 50);
    ogi_tensor *m = diff_random(rng, boolean ? OGI_BOOL : OGI_FLOAT32, rank, dims, boolean ? 0 : -2,
                                boolean ? 1 : 2);
    if (boolean) { /* mostly true, so that rows keep some keys */
        uint8_t *v = m ? m->data : NULL;
        for (int64_t e = 0; v != NULL && e < tensor_numel(m); e++)
            v[e] = chance(rng, 80);
    } else if (m != NULL && chance(rng, 50)) {
        float *v = m->data;
        for (int64_t e = 0; e < tensor_numel(m); e++)
            if (chance(rng, 15))
                v[e] = -INFINITY;
    }
    add_in(rng, c, m);
}

static void gen_attention(uint64_t *rng, diff_case *c, int opset)
{
    diff_case_init(c, "Attention", opset);
    c->label = opset == 23 ? "Attention-23" : "Attention-24";
    attn_shape a = {.batch = diff_int(rng, 1, 2),
                    .kv_heads = diff_int(rng, 1, 3),
                    .q_len = diff_int(rng, 1, 5),
                    .kv_len = diff_int(rng, 1, 6),
                    .qk_dim = diff_int(rng, 1, 8),
                    .three_d = chance(rng, 35)};
    a.q_heads = a.kv_heads * diff_int(rng, 1, 3); /* GQA groups */
    a.v_dim = chance(rng, 30) ? diff_int(rng, 1, 8) : a.qk_dim;
    bool nonpad = opset >= 24 && chance(rng, 35);
    a.has_past = !nonpad && chance(rng, 40);
    a.past = a.has_past ? diff_int(rng, 0, 4) : 0;
    if (a.has_past && chance(rng, 70))
        a.kv_len = a.q_len; /* a decoder step: as many new keys as queries */
    int64_t total = a.past + a.kv_len;
    diff_in(c, attn_qkv(rng, &a, a.q_heads, a.q_len, a.qk_dim));
    diff_in(c, attn_qkv(rng, &a, a.kv_heads, a.kv_len, a.qk_dim));
    diff_in(c, attn_qkv(rng, &a, a.kv_heads, a.kv_len, a.v_dim));
    int mask = pick(rng, 3); /* none, bool/float mask */
    bool want_more = a.has_past || nonpad;
    if (mask)
        attn_mask(rng, c, &a, total);
    else if (want_more)
        diff_in_none(c);
    if (a.has_past) {
        int64_t pk[4] = {a.batch, a.kv_heads, a.past, a.qk_dim};
        int64_t pv[4] = {a.batch, a.kv_heads, a.past, a.v_dim};
        diff_in(c, diff_random(rng, OGI_FLOAT32, 4, pk, -1, 1));
        diff_in(c, diff_random(rng, OGI_FLOAT32, 4, pv, -1, 1));
    } else if (nonpad) {
        diff_in_none(c);
        diff_in_none(c);
    }
    if (nonpad) {
        int64_t bd[1] = {a.batch};
        diff_in(c, diff_random(rng, OGI_INT64, 1, bd, 0, (double)total));
    }
    if (a.three_d) {
        diff_attr_int(c, "q_num_heads", a.q_heads);
        diff_attr_int(c, "kv_num_heads", a.kv_heads);
    }
    bool causal = chance(rng, 40);
    if (causal)
        diff_attr_int(c, "is_causal", 1);
    c->masked_is_lowest = true;
    if (causal && a.has_past && a.q_len != a.kv_len)
        c->ort_deviation = "causal mask with a past and q_len != kv_len: ORT aligns it to the "
                           "bottom right (offset total - q_len), the ONNX reference to the past "
                           "(offset past_len)";
    if (chance(rng, 30))
        diff_attr_float(c, "scale", (float)diff_uniform(rng, 0.1, 1.0));
    if (chance(rng, 25))
        diff_attr_float(c, "softcap", (float)diff_uniform(rng, 0.5, 10));
    bool qk_out = chance(rng, 30);
    if (qk_out && chance(rng, 80))
        diff_attr_int(c, "qk_matmul_output_mode", diff_int(rng, 0, 3));
    if (chance(rng, 10))
        diff_attr_int(c, "softmax_precision", OGI_FLOAT32);
    diff_out(c, OGI_FLOAT32);
    bool presents = a.has_past && chance(rng, 80);
    if (presents || qk_out) {
        if (presents) {
            diff_out(c, OGI_FLOAT32);
            diff_out(c, OGI_FLOAT32);
        } else {
            diff_out_none(c);
            diff_out_none(c);
        }
    }
    if (qk_out)
        diff_out(c, OGI_FLOAT32);
}

static void gen_attention_23(uint64_t *rng, diff_case *c)
{
    gen_attention(rng, c, 23);
}

static void gen_attention_24(uint64_t *rng, diff_case *c)
{
    gen_attention(rng, c, 24);
}

/* ---- TensorScatter -------------------------------------------------------------------- */

static void gen_tensor_scatter(uint64_t *rng, diff_case *c)
{
    diff_case_init(c, "TensorScatter", 24);
    int64_t dims[OGI_MAX_RANK], udims[OGI_MAX_RANK];
    int rank = rand_shape(rng, 3, 5, 1, 4, dims);
    int axis = chance(rng, 50) ? rank - 2 : (int)diff_int(rng, 1, rank - 1);
    dims[axis] = diff_int(rng, 1, 8);
    bool circular = chance(rng, 40);
    memcpy(udims, dims, sizeof(dims));
    udims[axis] = diff_int(rng, 0, dims[axis]);
    static const ogi_dtype types[] = {OGI_FLOAT32, OGI_FLOAT16, OGI_INT64};
    ogi_dtype t = pick_dtype(rng, types, 3);
    diff_in(c, diff_random(rng, t, rank, dims, -9, 9));
    diff_in(c, diff_random(rng, t, rank, udims, -9, 9));
    if (chance(rng, 75)) {
        int64_t bd[1] = {dims[0]};
        double most = circular ? (double)dims[axis] - 1 : (double)(dims[axis] - udims[axis]);
        diff_in(c, diff_random(rng, OGI_INT64, 1, bd, 0, most));
    }
    if (axis != rank - 2 || chance(rng, 30))
        diff_attr_int(c, "axis", chance(rng, 30) ? axis - rank : axis);
    if (circular || chance(rng, 30))
        diff_attr_string(c, "mode", circular ? "circular" : "linear");
    diff_out(c, t);
}

const diff_family diff_families[] = {
    {"elementwise binary", 360, gen_binary},
    {"elementwise unary", 300, gen_unary},
    {"softmax", 60, gen_softmax},
    {"reduce", 120, gen_reduce},
    {"argmax", 40, gen_argmax},
    {"MatMul", 120, gen_matmul},
    {"Gemm", 40, gen_gemm},
    {"Reshape", 60, gen_reshape},
    {"Transpose", 50, gen_transpose},
    {"Concat", 60, gen_concat},
    {"Slice", 100, gen_slice},
    {"Gather", 80, gen_gather},
    {"Expand", 50, gen_expand},
    {"Squeeze/Unsqueeze", 80, gen_squeeze},
    {"Flatten/Tile/Shape/Trilu/CumSum", 100, gen_misc_shape},
    {"Split", 40, gen_split},
    {"Pad", 50, gen_pad},
    {"Cast", 80, gen_cast},
    {"RMS/LayerNormalization", 120, gen_rms_norm},
    {"RotaryEmbedding", 120, gen_rotary},
    {"Attention-23", 200, gen_attention_23},
    {"Attention-24", 200, gen_attention_24},
    {"TensorScatter", 100, gen_tensor_scatter},
};

const size_t diff_n_families = sizeof(diff_families) / sizeof(diff_families[0]);
