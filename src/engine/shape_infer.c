/* Shape inference with symbolic dims. Each value gets a dtype and a shape
 * whose dims are known numbers, named symbols (from the graph's inputs, e.g.
 * "batch", "seq") or unknown. It runs at load, before folding: a Shape or
 * Size of a fully known shape becomes a constant, and `ogi info` reports
 * what is known. Ops without a rule here leave their outputs unknown, which
 * is always safe: kernels compute real shapes at run time. */
#include <string.h>

#include "core/dtype.h"
#include "engine/graph.h"
#include "engine/shape_infer.h"

typedef void (*infer_fn)(graph *g, const graph_node *n);

static graph_value *infer_in(graph *g, const graph_node *n, int i)
{
    if (i >= n->n_inputs || n->inputs[i] < 0)
        return NULL;
    return &g->values[n->inputs[i]];
}

static graph_value *infer_out(graph *g, const graph_node *n, int i)
{
    if (i >= n->n_outputs || n->outputs[i] < 0)
        return NULL;
    return &g->values[n->outputs[i]];
}

/* Sets an output's dtype and shape. Only graph inputs and initializers seed
 * inference (inputs are checked against their declaration at run time), so
 * an inferred static shape is a fact that folding may rely on. */
static void infer_set(graph_value *out, ogi_dtype dtype, const value_shape *shape)
{
    if (out == NULL)
        return;
    if (out->dtype == OGI_DTYPE_UNDEFINED)
        out->dtype = dtype;
    if (out->shape.rank < 0 && shape != NULL)
        out->shape = *shape;
}

static const ogi_tensor *infer_const(graph *g, const graph_node *n, int i)
{
    graph_value *v = infer_in(g, n, i);
    return v && v->kind == VALUE_CONST ? v->constant : NULL;
}

static int64_t infer_attr_int(const graph_node *n, const char *name, int64_t def)
{
    for (int a = 0; a < n->proto->n_attrs; a++)
        if (strcmp(n->proto->attrs[a].name, name) == 0 && n->proto->attrs[a].type == ONNX_ATTR_INT)
            return n->proto->attrs[a].i;
    return def;
}

/* ---- rules ------------------------------------------------------------------ */

static void infer_same(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x != NULL)
        infer_set(infer_out(g, n, 0), x->dtype, &x->shape);
}

static void infer_same_bool(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x != NULL)
        infer_set(infer_out(g, n, 0), OGI_BOOL, &x->shape);
}

static bool infer_dim_eq(const value_shape *a, int i, const value_shape *b, int j)
{
    if (a->dims[i] >= 0 || b->dims[j] >= 0)
        return a->dims[i] == b->dims[j];
    return a->symbols[i] && b->symbols[j] && strcmp(a->symbols[i], b->symbols[j]) == 0;
}

/* numpy broadcasting over known and symbolic dims */
static bool infer_broadcast(const value_shape *a, const value_shape *b, value_shape *out)
{
    if (a->rank < 0 || b->rank < 0)
        return false;
    int rank = a->rank > b->rank ? a->rank : b->rank;
    out->rank = rank;
    for (int d = 0; d < rank; d++) {
        int i = d - (rank - a->rank), j = d - (rank - b->rank);
        out->dims[d] = -1;
        out->symbols[d] = NULL;
        if (i < 0 || (j >= 0 && a->dims[i] == 1)) {
            out->dims[d] = b->dims[j];
            out->symbols[d] = b->symbols[j];
        } else if (j < 0 || b->dims[j] == 1 || infer_dim_eq(a, i, b, j)) {
            out->dims[d] = a->dims[i];
            out->symbols[d] = a->symbols[i];
        } else if (a->dims[i] > 1) {
            out->dims[d] = a->dims[i];
        } else if (b->dims[j] > 1) {
            out->dims[d] = b->dims[j];
        }
    }
    return true;
}

static void infer_binary(graph *g, const graph_node *n, bool to_bool)
{
    graph_value *a = infer_in(g, n, 0), *b = infer_in(g, n, 1);
    if (a == NULL || b == NULL)
        return;
    value_shape s;
    bool known = infer_broadcast(&a->shape, &b->shape, &s);
    infer_set(infer_out(g, n, 0), to_bool ? OGI_BOOL : a->dtype, known ? &s : NULL);
}

static void infer_arith(graph *g, const graph_node *n)
{
    infer_binary(g, n, false);
}

static void infer_compare(graph *g, const graph_node *n)
{
    infer_binary(g, n, true);
}

static void infer_where(graph *g, const graph_node *n)
{
    graph_value *c = infer_in(g, n, 0), *x = infer_in(g, n, 1), *y = infer_in(g, n, 2);
    if (c == NULL || x == NULL || y == NULL)
        return;
    value_shape s1, s2;
    bool known = infer_broadcast(&c->shape, &x->shape, &s1) && infer_broadcast(&s1, &y->shape, &s2);
    infer_set(infer_out(g, n, 0), x->dtype, known ? &s2 : NULL);
}

static void infer_cast(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    int64_t to = infer_attr_int(n, "to", 0);
    if (x != NULL && dtype_is_valid((int)to))
        infer_set(infer_out(g, n, 0), (ogi_dtype)to, &x->shape);
}

static void infer_shape_op(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    value_shape s = {.rank = 1};
    s.dims[0] = -1;
    if (x != NULL && x->shape.rank >= 0 && infer_attr_int(n, "start", 0) == 0 &&
        infer_attr_int(n, "end", INT64_MAX) == INT64_MAX)
        s.dims[0] = x->shape.rank;
    infer_set(infer_out(g, n, 0), OGI_INT64, &s);
}

static void infer_matmul(graph *g, const graph_node *n)
{
    graph_value *a = infer_in(g, n, 0), *b = infer_in(g, n, 1);
    if (a == NULL || b == NULL)
        return;
    const value_shape *sa = &a->shape, *sb = &b->shape;
    if (sa->rank < 2 || sb->rank < 2) {
        infer_set(infer_out(g, n, 0), a->dtype, NULL);
        return;
    }
    value_shape ba = *sa, bb = *sb, s;
    ba.rank -= 2;
    bb.rank -= 2;
    if (!infer_broadcast(&ba, &bb, &s)) {
        infer_set(infer_out(g, n, 0), a->dtype, NULL);
        return;
    }
    s.dims[s.rank] = sa->dims[sa->rank - 2];
    s.symbols[s.rank] = sa->symbols[sa->rank - 2];
    s.dims[s.rank + 1] = sb->dims[sb->rank - 1];
    s.symbols[s.rank + 1] = sb->symbols[sb->rank - 1];
    s.rank += 2;
    infer_set(infer_out(g, n, 0), a->dtype, &s);
}

static void infer_transpose(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    value_shape s = x->shape;
    const onnx_attr *perm = NULL;
    for (int a = 0; a < n->proto->n_attrs; a++)
        if (strcmp(n->proto->attrs[a].name, "perm") == 0)
            perm = &n->proto->attrs[a];
    if (s.rank >= 0) {
        if (perm != NULL && perm->n != s.rank) {
            infer_set(infer_out(g, n, 0), x->dtype, NULL);
            return;
        }
        for (int d = 0; d < s.rank; d++) {
            int64_t from = perm ? perm->ints[d] : s.rank - 1 - d;
            if (from < 0 || from >= s.rank) {
                infer_set(infer_out(g, n, 0), x->dtype, NULL);
                return;
            }
            s.dims[d] = x->shape.dims[from];
            s.symbols[d] = x->shape.symbols[from];
        }
    }
    infer_set(infer_out(g, n, 0), x->dtype, &s);
}

/* Reshape with a constant target: 0 copies the input dim (unless allowzero),
 * -1 is inferred when every other dim is a known number. */
static void infer_reshape(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    const ogi_tensor *shape = infer_const(g, n, 1);
    if (x == NULL)
        return;
    if (shape == NULL || shape->dtype != OGI_INT64 || shape->rank != 1 ||
        shape->dims[0] > OGI_MAX_RANK) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    const int64_t *want = shape->data;
    bool allowzero = infer_attr_int(n, "allowzero", 0) != 0;
    value_shape s = {.rank = (int)shape->dims[0]};
    for (int d = 0; d < s.rank; d++) {
        s.dims[d] = want[d] == -1 ? -1 : want[d];
        s.symbols[d] = NULL;
        if (want[d] == 0 && !allowzero) {
            bool have = d < x->shape.rank;
            s.dims[d] = have ? x->shape.dims[d] : -1;
            s.symbols[d] = have ? x->shape.symbols[d] : NULL;
        }
    }
    infer_set(infer_out(g, n, 0), x->dtype, &s);
}

static void infer_passthrough_dtype(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x != NULL)
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
}

static const struct {
    const char *op;
    infer_fn fn;
} infer_rules[] = {
    {"Identity", infer_same},
    {"Relu", infer_same},
    {"Sigmoid", infer_same},
    {"Tanh", infer_same},
    {"Neg", infer_same},
    {"Sqrt", infer_same},
    {"Reciprocal", infer_same},
    {"Exp", infer_same},
    {"Log", infer_same},
    {"Sin", infer_same},
    {"Cos", infer_same},
    {"Abs", infer_same},
    {"Erf", infer_same},
    {"Gelu", infer_same},
    {"Softmax", infer_same},
    {"LogSoftmax", infer_same},
    {"LayerNormalization", infer_same},
    {"RMSNormalization", infer_same},
    {"RotaryEmbedding", infer_same},
    {"Add", infer_arith},
    {"Sub", infer_arith},
    {"Mul", infer_arith},
    {"Div", infer_arith},
    {"Pow", infer_arith},
    {"Max", infer_arith},
    {"Min", infer_arith},
    {"Equal", infer_compare},
    {"Less", infer_compare},
    {"Greater", infer_compare},
    {"LessOrEqual", infer_compare},
    {"GreaterOrEqual", infer_compare},
    {"And", infer_compare},
    {"Or", infer_compare},
    {"Not", infer_same},
    {"IsNaN", infer_same_bool},
    {"IsInf", infer_same_bool},
    {"Where", infer_where},
    {"Cast", infer_cast},
    {"Shape", infer_shape_op},
    {"MatMul", infer_matmul},
    {"Transpose", infer_transpose},
    {"Reshape", infer_reshape},
    {"Unsqueeze", infer_passthrough_dtype},
    {"Squeeze", infer_passthrough_dtype},
    {"Concat", infer_passthrough_dtype},
    {"Slice", infer_passthrough_dtype},
    {"Expand", infer_passthrough_dtype},
    {"Gather", infer_passthrough_dtype},
    {"Attention", infer_passthrough_dtype},
    {"TensorScatter", infer_same},
    {"TensorGather", infer_passthrough_dtype},
};

void shape_infer_graph(graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->proto->domain[0] != '\0' && strcmp(n->proto->domain, "ai.ogi") != 0)
            continue;
        for (size_t r = 0; r < sizeof(infer_rules) / sizeof(infer_rules[0]); r++)
            if (strcmp(infer_rules[r].op, n->proto->op_type) == 0) {
                infer_rules[r].fn(g, n);
                break;
            }
    }
}

bool shape_is_static(const value_shape *s)
{
    if (s->rank < 0)
        return false;
    for (int d = 0; d < s->rank; d++)
        if (s->dims[d] < 0)
            return false;
    return true;
}
