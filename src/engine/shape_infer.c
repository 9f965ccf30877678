/* Shape inference with symbolic dims. Each value gets a dtype and a shape
 * whose dims are known numbers, named symbols (from the graph's inputs, e.g.
 * "batch", "seq") or unknown. It runs at load, node by node inside constant
 * folding (exec.c), so every rule sees the constants folded before it, and
 * `ogi info` reports what is known. Ops without a rule here leave their
 * outputs unknown, which is always safe: kernels compute real shapes at run
 * time.
 *
 * Besides shapes, it tracks the elements of small integer and bool tensors
 * (value_elems: the shapes, sizes and indices that exporters compute with
 * Shape, Gather, Unsqueeze, Concat, ...): each element is a known number,
 * or unknown, and then possibly a dim (so never negative) with its symbol.
 *
 *  - Shape(x, start, end): x's dims; Size(x): its element count if static.
 *  - Gather of a 1-D value at known indices, Slice with known bounds,
 *    Unsqueeze, Squeeze, Reshape, Identity and Concat keep or move elements.
 *  - Cast to int64/int32 keeps them (int32: when they fit), to bool makes
 *    known numbers 0 or 1.
 *  - Add, Sub, Mul, Div (int64) compute known numbers, and x + 0, x * 1,
 *    x / 1 are x; Equal compares known numbers, and a dim never equals a
 *    negative number (the -1 tests of the legacy exports' expand shapes);
 *    Where picks by a known condition.
 *  - Reshape, Expand and ConstantOfShape take their shape from the elements
 *    of their shape input, known numbers and symbolic dims alike;
 *    TensorGather's axis has `length` positions; reductions keep or drop
 *    their known axes.
 *
 * An unknown element also keeps its origin: the value (and element) that
 * computed it, carried unchanged through the ops that only move elements
 * (Gather, Slice, Concat, Unsqueeze, Squeeze, Reshape, Identity, x + 0).
 * A value whose elements are exactly another value's, in order, is that
 * value (exec.c reads it in its place).
 *
 * Only known numbers are ever folded (exec.c turns an output whose elements
 * are all known into a constant). A symbol only names a dim; two dims with
 * the same symbol are never assumed equal where that would change a value:
 * graph inputs are checked against their known dims at run time, not their
 * symbols. */
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "core/tensor.h"
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

/* ---- element values ------------------------------------------------------------ */

static uint32_t elems_mask(int count)
{
    return count >= 32 ? 0xffffffffu : (1u << count) - 1u;
}

static bool elems_tracked(const value_elems *e)
{
    return e->count >= 0 && e->count <= OGI_MAX_RANK;
}

static bool elems_all_known(const value_elems *e)
{
    return elems_tracked(e) && (e->known & elems_mask(e->count)) == elems_mask(e->count);
}

static bool elems_is_known(const value_elems *e, int i)
{
    return (e->known >> i) & 1u;
}

static bool elems_is_dim(const value_elems *e, int i)
{
    return (e->dim >> i) & 1u;
}

static void elems_set(value_elems *e, int i, int64_t v)
{
    e->known |= 1u << i;
    e->dim &= ~(1u << i);
    e->value[i] = v;
    e->symbol[i] = NULL;
    e->origin[i] = 0;
}

/* A newly computed unknown element: its origin is set when it is stored. */
static void elems_set_unknown(value_elems *e, int i, bool dim, const char *symbol)
{
    e->known &= ~(1u << i);
    e->dim = dim ? e->dim | (1u << i) : e->dim & ~(1u << i);
    e->value[i] = -1;
    e->symbol[i] = dim ? symbol : NULL;
    e->origin[i] = 0;
}

/* Element j of src moved unchanged to element i of dst. */
static void elems_copy(value_elems *dst, int i, const value_elems *src, int j)
{
    if (elems_is_known(src, j)) {
        elems_set(dst, i, src->value[j]);
    } else {
        elems_set_unknown(dst, i, elems_is_dim(src, j), src->symbol[j]);
        dst->origin[i] = src->origin[j];
    }
}

/* What inference knows of v's elements; a constant's are read from its data. */
static value_elems infer_elems(const graph_value *v)
{
    value_elems e = {.count = -1};
    if (v == NULL)
        return e;
    if (v->kind != VALUE_CONST)
        return v->kind == VALUE_NODE ? v->elems : e;
    const ogi_tensor *t = v->constant;
    if (t == NULL || t->kind != TENSOR_KIND_TENSOR || t->rank > 1 ||
        tensor_numel(t) > OGI_MAX_RANK || (tensor_numel(t) > 0 && t->data == NULL))
        return e;
    int count = (int)tensor_numel(t);
    for (int i = 0; i < count; i++) {
        if (t->dtype == OGI_INT64)
            e.value[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == OGI_INT32)
            e.value[i] = ((const int32_t *)t->data)[i];
        else if (t->dtype == OGI_BOOL)
            e.value[i] = ((const uint8_t *)t->data)[i] != 0;
        else
            return e;
    }
    e.count = count;
    e.known = elems_mask(count);
    return e;
}

/* Stores e as out's elements; the unknown ones not copied from elsewhere
 * originate here. */
static void infer_set_elems(graph *g, graph_value *out, const value_elems *e)
{
    if (out == NULL || out->kind != VALUE_NODE || out->elems.count >= 0 || !elems_tracked(e))
        return;
    out->elems = *e;
    const int32_t self = (int32_t)(out - g->values);
    for (int i = 0; i < e->count; i++)
        if (!elems_is_known(e, i) && e->origin[i] == 0 && self < INT32_MAX / OGI_MAX_RANK)
            out->elems.origin[i] = value_origin_make(self, i);
}

/* dims [start, end) of s as elements */
static value_elems infer_elems_of_dims(const value_shape *s, int start, int end)
{
    value_elems e = {.count = end - start};
    for (int d = start; d < end; d++) {
        if (s->dims[d] >= 0)
            elems_set(&e, d - start, s->dims[d]);
        else
            elems_set_unknown(&e, d - start, true, s->symbols[d]);
    }
    return e;
}

/* A shape input's elements as a shape: known numbers as they are (the
 * caller handles Reshape's 0 and -1), dims as symbolic dims. */
static bool infer_shape_of_elems(const value_elems *e, value_shape *s)
{
    if (!elems_tracked(e))
        return false;
    s->rank = e->count;
    for (int d = 0; d < e->count; d++) {
        s->dims[d] = elems_is_known(e, d) ? e->value[d] : -1;
        s->symbols[d] = elems_is_known(e, d) ? NULL : e->symbol[d];
    }
    return true;
}

/* 0..count-1 from a constant or known axes input, or the "axes" attribute;
 * -1 when unknown, 0 when absent. */
static int infer_axes(graph *g, const graph_node *n, int input, int64_t *axes)
{
    if (input < n->n_inputs && n->inputs[input] >= 0) {
        value_elems e = infer_elems(infer_in(g, n, input));
        if (!elems_all_known(&e))
            return -1;
        memcpy(axes, e.value, (size_t)e.count * sizeof(int64_t));
        return e.count;
    }
    const onnx_attr *at = graph_node_attr(n, "axes");
    if (at == NULL || at->type != ONNX_ATTR_INTS)
        return 0;
    if (at->n > OGI_MAX_RANK)
        return -1;
    memcpy(axes, at->ints, (size_t)at->n * sizeof(int64_t));
    return (int)at->n;
}

/* ---- rules ------------------------------------------------------------------ */

/* Output 0 of n gets shape s (NULL: unknown) and, moved as they are, x's
 * elements. */
static void infer_set_moved(graph *g, const graph_node *n, const graph_value *x,
                            const value_shape *s)
{
    infer_set(infer_out(g, n, 0), x->dtype, s);
    value_elems e = infer_elems(x);
    infer_set_elems(g, infer_out(g, n, 0), &e);
}

static void infer_same(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x != NULL)
        infer_set(infer_out(g, n, 0), x->dtype, &x->shape);
}

static void infer_identity(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x != NULL)
        infer_set_moved(g, n, x, &x->shape);
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

/* Element i of an elementwise op's operand e over count outputs (numpy
 * broadcasting of 1-D values: a single element repeats); -1 when e does
 * not broadcast to count. */
static int elems_index(const value_elems *e, int count, int i)
{
    if (e->count == count)
        return i;
    return e->count == 1 ? 0 : -1;
}

/* Add, Sub, Mul, Div of integer elements: known numbers are computed (Div
 * only of non-negative numbers, where truncation and floor agree), x + 0,
 * x - 0, x * 1 and x / 1 are x, and sums and products of dims and
 * non-negative numbers are never negative. */
static void infer_arith_elem(const char *op, const value_elems *a, int i, const value_elems *b,
                             int j, value_elems *out, int k)
{
    bool ka = elems_is_known(a, i), kb = elems_is_known(b, j);
    int64_t x = a->value[i], y = b->value[j], r = 0;
    bool nonneg_a = ka ? x >= 0 : elems_is_dim(a, i), nonneg_b = kb ? y >= 0 : elems_is_dim(b, j);
    bool add = strcmp(op, "Add") == 0, sub = strcmp(op, "Sub") == 0, mul = strcmp(op, "Mul") == 0;
    if (ka && kb) {
        bool overflow = add   ? __builtin_add_overflow(x, y, &r)
                        : sub ? __builtin_sub_overflow(x, y, &r)
                        : mul ? __builtin_mul_overflow(x, y, &r)
                              : !(x >= 0 && y > 0 && (r = x / y, true));
        if (!overflow) {
            elems_set(out, k, r);
            return;
        }
    } else if (kb && ((add || sub) ? y == 0 : y == 1)) {
        elems_copy(out, k, a, i);
        return;
    } else if (ka && ((add && x == 0) || (mul && x == 1))) {
        elems_copy(out, k, b, j);
        return;
    }
    elems_set_unknown(out, k, (add || mul) && nonneg_a && nonneg_b, NULL);
}

/* Equal of elements: known numbers compare; a dim never equals a negative number. */
static void infer_equal_elem(const value_elems *a, int i, const value_elems *b, int j,
                             value_elems *out, int k)
{
    bool ka = elems_is_known(a, i), kb = elems_is_known(b, j);
    if (ka && kb)
        elems_set(out, k, a->value[i] == b->value[j]);
    else if ((ka && a->value[i] < 0 && elems_is_dim(b, j)) ||
             (kb && b->value[j] < 0 && elems_is_dim(a, i)))
        elems_set(out, k, 0);
    else
        elems_set_unknown(out, k, false, NULL);
}

static void infer_binary_elems(graph *g, const graph_node *n, const value_shape *s)
{
    value_elems a = infer_elems(infer_in(g, n, 0)), b = infer_elems(infer_in(g, n, 1));
    graph_value *out = infer_out(g, n, 0);
    if (!elems_tracked(&a) || !elems_tracked(&b) || s->rank > 1 || out == NULL)
        return;
    int count = a.count > b.count ? a.count : b.count;
    const char *op = n->proto->op_type;
    bool equal = strcmp(op, "Equal") == 0;
    if (!equal && strcmp(op, "Add") != 0 && strcmp(op, "Sub") != 0 && strcmp(op, "Mul") != 0 &&
        strcmp(op, "Div") != 0)
        return;
    if (!equal && out->dtype != OGI_INT64) /* int32 would wrap where int64 does not */
        return;
    value_elems e = {.count = count};
    for (int k = 0; k < count; k++) {
        int i = elems_index(&a, count, k), j = elems_index(&b, count, k);
        if (i < 0 || j < 0)
            return;
        if (equal)
            infer_equal_elem(&a, i, &b, j, &e, k);
        else
            infer_arith_elem(op, &a, i, &b, j, &e, k);
    }
    infer_set_elems(g, out, &e);
}

static void infer_binary(graph *g, const graph_node *n, bool to_bool)
{
    graph_value *a = infer_in(g, n, 0), *b = infer_in(g, n, 1);
    if (a == NULL || b == NULL)
        return;
    value_shape s;
    bool known = infer_broadcast(&a->shape, &b->shape, &s);
    infer_set(infer_out(g, n, 0), to_bool ? OGI_BOOL : a->dtype, known ? &s : NULL);
    if (known)
        infer_binary_elems(g, n, &s);
}

static void infer_arith(graph *g, const graph_node *n)
{
    infer_binary(g, n, false);
}

static void infer_compare(graph *g, const graph_node *n)
{
    infer_binary(g, n, true);
}

/* Where picks elements where the condition is known. */
static void infer_where(graph *g, const graph_node *n)
{
    graph_value *c = infer_in(g, n, 0), *x = infer_in(g, n, 1), *y = infer_in(g, n, 2);
    if (c == NULL || x == NULL || y == NULL)
        return;
    value_shape s1, s2;
    bool known = infer_broadcast(&c->shape, &x->shape, &s1) && infer_broadcast(&s1, &y->shape, &s2);
    infer_set(infer_out(g, n, 0), x->dtype, known ? &s2 : NULL);
    value_elems ce = infer_elems(c), xe = infer_elems(x), ye = infer_elems(y);
    if (!known || s2.rank > 1 || !elems_tracked(&ce) || !elems_tracked(&xe) || !elems_tracked(&ye))
        return;
    int count = ce.count > xe.count ? ce.count : xe.count;
    count = ye.count > count ? ye.count : count;
    value_elems e = {.count = count};
    for (int k = 0; k < count; k++) {
        int i = elems_index(&ce, count, k), j = elems_index(&xe, count, k),
            l = elems_index(&ye, count, k);
        if (i < 0 || j < 0 || l < 0)
            return;
        if (!elems_is_known(&ce, i))
            elems_set_unknown(&e, k, elems_is_dim(&xe, j) && elems_is_dim(&ye, l), NULL);
        else if (ce.value[i] != 0)
            elems_copy(&e, k, &xe, j);
        else
            elems_copy(&e, k, &ye, l);
    }
    infer_set_elems(g, infer_out(g, n, 0), &e);
}

/* Cast keeps integer elements that fit the target type; to bool, known
 * numbers become 0 or 1. */
static void infer_cast(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    int64_t to = graph_node_attr_int(n, "to", 0);
    if (x == NULL || !dtype_is_valid((int)to))
        return;
    infer_set(infer_out(g, n, 0), (ogi_dtype)to, &x->shape);
    value_elems e = infer_elems(x);
    if (!elems_tracked(&e) || (to != OGI_INT64 && to != OGI_INT32 && to != OGI_BOOL))
        return;
    for (int i = 0; i < e.count; i++) {
        if (!elems_is_known(&e, i))
            elems_set_unknown(&e, i, to != OGI_BOOL && elems_is_dim(&e, i), e.symbol[i]);
        else if (to == OGI_BOOL)
            elems_set(&e, i, e.value[i] != 0);
        else if (to == OGI_INT32 && (e.value[i] < INT32_MIN || e.value[i] > INT32_MAX))
            elems_set_unknown(&e, i, false, NULL);
    }
    infer_set_elems(g, infer_out(g, n, 0), &e);
}

static int64_t infer_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Shape(x, start, end): the dims of x as elements (known numbers or dims). */
/* The dims [start, end) of a rank-r value that Shape node n gives. */
static void infer_shape_range(const graph_node *n, int64_t r, int64_t *start, int64_t *end)
{
    int64_t s = graph_node_attr_int(n, "start", 0), e = graph_node_attr_int(n, "end", INT64_MAX);
    *start = infer_clamp(s < 0 ? s + r : s, 0, r);
    *end = infer_clamp(e < 0 ? e + r : e, 0, r);
    *end = *end < *start ? *start : *end;
}

static void infer_shape_op(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    value_shape s = {.rank = 1};
    s.dims[0] = -1;
    value_elems e = {.count = -1};
    if (x != NULL && x->shape.rank >= 0) {
        int64_t start, end;
        infer_shape_range(n, x->shape.rank, &start, &end);
        s.dims[0] = end - start;
        e = infer_elems_of_dims(&x->shape, (int)start, (int)end);
    }
    infer_set(infer_out(g, n, 0), OGI_INT64, &s);
    infer_set_elems(g, infer_out(g, n, 0), &e);
}

static void infer_size(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    value_shape s = {.rank = 0};
    infer_set(infer_out(g, n, 0), OGI_INT64, &s);
    if (x == NULL || !shape_is_static(&x->shape))
        return;
    value_elems e = {.count = 1};
    elems_set(&e, 0, tensor_shape_numel(x->shape.rank, x->shape.dims));
    infer_set_elems(g, infer_out(g, n, 0), &e);
}

/* Gather(x, indices, axis): x's dims around the indices' dims; elements of
 * a 1-D x at known indices. */
static void infer_gather(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0), *idx = infer_in(g, n, 1);
    if (x == NULL || idx == NULL)
        return;
    int64_t axis = graph_node_attr_int(n, "axis", 0);
    const value_shape *xs = &x->shape, *is = &idx->shape;
    if (axis < 0 && xs->rank >= 0)
        axis += xs->rank;
    if (xs->rank < 1 || is->rank < 0 || axis < 0 || axis >= xs->rank ||
        xs->rank - 1 + is->rank > OGI_MAX_RANK) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    value_shape s = {.rank = xs->rank - 1 + is->rank};
    int d = 0;
    for (int k = 0; k < axis; k++, d++) {
        s.dims[d] = xs->dims[k];
        s.symbols[d] = xs->symbols[k];
    }
    for (int k = 0; k < is->rank; k++, d++) {
        s.dims[d] = is->dims[k];
        s.symbols[d] = is->symbols[k];
    }
    for (int k = (int)axis + 1; k < xs->rank; k++, d++) {
        s.dims[d] = xs->dims[k];
        s.symbols[d] = xs->symbols[k];
    }
    infer_set(infer_out(g, n, 0), x->dtype, &s);
    value_elems xe = infer_elems(x), ie = infer_elems(idx);
    if (xs->rank != 1 || !elems_tracked(&xe) || !elems_all_known(&ie))
        return;
    value_elems e = {.count = ie.count};
    for (int k = 0; k < ie.count; k++) {
        int64_t i = ie.value[k] < 0 ? ie.value[k] + xe.count : ie.value[k];
        if (i < 0 || i >= xe.count)
            return; /* the kernel reports it */
        elems_copy(&e, k, &xe, (int)i);
    }
    infer_set_elems(g, infer_out(g, n, 0), &e);
}

/* Unsqueeze(x, axes): ones inserted at the axes of the output. */
static void infer_unsqueeze(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    int64_t axes[OGI_MAX_RANK];
    int k = infer_axes(g, n, 1, axes);
    int rank = x->shape.rank + k;
    bool at[OGI_MAX_RANK] = {false};
    bool ok = x->shape.rank >= 0 && k > 0 && rank <= OGI_MAX_RANK;
    for (int i = 0; i < k && ok; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        ok = a >= 0 && a < rank && !at[a];
        if (ok)
            at[a] = true;
    }
    if (!ok) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    value_shape s = {.rank = rank};
    for (int d = 0, from = 0; d < rank; d++) {
        s.dims[d] = at[d] ? 1 : x->shape.dims[from];
        s.symbols[d] = at[d] ? NULL : x->shape.symbols[from];
        from += !at[d];
    }
    infer_set_moved(g, n, x, &s);
}

/* Squeeze(x, axes): the axes removed (all dims of 1 without axes, which
 * needs every dim known). */
static void infer_squeeze(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    int64_t axes[OGI_MAX_RANK];
    int k = infer_axes(g, n, 1, axes);
    const value_shape *xs = &x->shape;
    bool drop[OGI_MAX_RANK] = {false};
    bool ok = xs->rank >= 0 && k >= 0;
    for (int i = 0; i < k && ok; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + xs->rank : axes[i];
        ok = a >= 0 && a < xs->rank && (xs->dims[a] == 1 || xs->dims[a] < 0);
        if (ok)
            drop[a] = true;
    }
    for (int d = 0; d < xs->rank && ok && k == 0; d++) {
        ok = xs->dims[d] >= 0;
        drop[d] = xs->dims[d] == 1;
    }
    if (!ok) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    value_shape s = {.rank = 0};
    for (int d = 0; d < xs->rank; d++)
        if (!drop[d]) {
            s.dims[s.rank] = xs->dims[d];
            s.symbols[s.rank++] = xs->symbols[d];
        }
    infer_set_moved(g, n, x, &s);
}

/* Concat along axis: the axis dims add up; 1-D elements are joined. */
static void infer_concat(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    int rank = x->shape.rank;
    int64_t axis = graph_node_attr_int(n, "axis", INT64_MIN); /* required */
    axis = axis < 0 && axis != INT64_MIN ? axis + rank : axis;
    bool ok = rank >= 1 && axis >= 0 && axis < rank;
    value_shape s = x->shape;
    value_elems e = {.count = 0};
    bool joined = rank == 1;
    for (int i = 1; i < n->n_inputs && ok; i++) {
        graph_value *y = infer_in(g, n, i);
        ok = y != NULL && y->shape.rank == rank;
        for (int d = 0; d < rank && ok; d++) {
            if (d == axis) {
                bool both = s.dims[d] >= 0 && y->shape.dims[d] >= 0;
                s.dims[d] = both ? s.dims[d] + y->shape.dims[d] : -1;
                s.symbols[d] = NULL;
            } else if (s.dims[d] < 0 && y->shape.dims[d] >= 0) {
                s.dims[d] = y->shape.dims[d];
                s.symbols[d] = NULL;
            }
        }
    }
    infer_set(infer_out(g, n, 0), x->dtype, ok ? &s : NULL);
    for (int i = 0; i < n->n_inputs && ok && joined; i++) {
        value_elems y = infer_elems(infer_in(g, n, i));
        joined = elems_tracked(&y) && e.count + y.count <= OGI_MAX_RANK;
        for (int k = 0; k < y.count && joined; k++)
            elems_copy(&e, e.count + k, &y, k);
        e.count += joined ? y.count : 0;
    }
    if (ok && joined)
        infer_set_elems(g, infer_out(g, n, 0), &e);
}

/* The elements Slice takes from a dim of known size: the first index and
 * the count. */
static int64_t infer_slice_range(int64_t dim, int64_t start, int64_t end, int64_t step,
                                 int64_t *first)
{
    if (step > 0) {
        start = infer_clamp(start < 0 ? start + dim : start, 0, dim);
        end = infer_clamp(end < 0 ? end + dim : end, 0, dim);
        *first = start;
        return end > start ? (end - start - 1) / step + 1 : 0;
    }
    start = infer_clamp(start < 0 ? start + dim : start, 0, dim - 1);
    end = infer_clamp(end < 0 ? end + dim : end, -1, dim - 1);
    *first = start;
    return start > end ? (start - end - 1) / -step + 1 : 0;
}

/* Slice (opset >= 10) with known starts, ends, axes and steps. */
static void infer_slice(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    value_elems st = infer_elems(infer_in(g, n, 1)), en = infer_elems(infer_in(g, n, 2));
    value_elems ax = infer_elems(infer_in(g, n, 3)), sp = infer_elems(infer_in(g, n, 4));
    const value_shape *xs = &x->shape;
    bool ok = n->opset >= 10 && xs->rank >= 0 && elems_all_known(&st) && elems_all_known(&en) &&
              st.count == en.count;
    if (ok && infer_in(g, n, 3) != NULL)
        ok = elems_all_known(&ax) && ax.count == st.count;
    if (ok && infer_in(g, n, 4) != NULL)
        ok = elems_all_known(&sp) && sp.count == st.count;
    value_shape s = *xs;
    int64_t first[OGI_MAX_RANK] = {0}, step[OGI_MAX_RANK];
    for (int d = 0; d < OGI_MAX_RANK; d++)
        step[d] = 1;
    for (int i = 0; i < st.count && ok; i++) {
        int64_t a = infer_in(g, n, 3) != NULL ? ax.value[i] : i;
        a = a < 0 ? a + xs->rank : a;
        int64_t k = infer_in(g, n, 4) != NULL ? sp.value[i] : 1;
        ok = a >= 0 && a < xs->rank && k != 0 && k != INT64_MIN;
        if (!ok)
            break;
        step[a] = k;
        s.symbols[a] = NULL;
        if (xs->dims[a] >= 0) {
            s.dims[a] = infer_slice_range(xs->dims[a], st.value[i], en.value[i], k, &first[a]);
        } else if (k == 1 && st.value[i] == 0 && en.value[i] >= INT32_MAX) {
            s.symbols[a] = xs->symbols[a]; /* the whole axis */
        } else {
            s.dims[a] = -1;
        }
    }
    infer_set(infer_out(g, n, 0), x->dtype, ok ? &s : NULL);
    value_elems xe = infer_elems(x);
    if (!ok || xs->rank != 1 || !elems_tracked(&xe) || s.dims[0] < 0)
        return;
    value_elems e = {.count = (int)s.dims[0]};
    for (int k = 0; k < e.count; k++)
        elems_copy(&e, k, &xe, (int)(first[0] + k * step[0]));
    infer_set_elems(g, infer_out(g, n, 0), &e);
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
    const onnx_attr *perm = graph_node_attr(n, "perm");
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

/* Reshape to a target whose elements are known or dims: 0 copies the input
 * dim (unless allowzero), -1 is inferred when the input is static and every
 * other dim a known number; a target element that is a dim of unknown size
 * keeps its symbol. The elements are the input's. */
static void infer_reshape(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    value_elems t = infer_elems(infer_in(g, n, 1));
    value_shape s;
    if (!infer_shape_of_elems(&t, &s)) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    bool allowzero = graph_node_attr_int(n, "allowzero", 0) != 0;
    int infer_at = -1;
    int64_t known = 1;
    for (int d = 0; d < s.rank; d++) {
        if (!elems_is_known(&t, d)) {
            known = -1;
            continue;
        }
        if (t.value[d] == 0 && !allowzero) {
            bool have = d < x->shape.rank;
            s.dims[d] = have ? x->shape.dims[d] : -1;
            s.symbols[d] = have ? x->shape.symbols[d] : NULL;
        } else if (t.value[d] == -1 && infer_at < 0) {
            infer_at = d;
            continue;
        } else if (t.value[d] < 0) {
            infer_set(infer_out(g, n, 0), x->dtype, NULL); /* the kernel reports it */
            return;
        }
        if (s.dims[d] < 0 || known < 0)
            known = -1;
        else if (__builtin_mul_overflow(known, s.dims[d], &known))
            known = -1;
    }
    if (infer_at >= 0) {
        s.dims[infer_at] = -1;
        int64_t total =
            shape_is_static(&x->shape) ? tensor_shape_numel(x->shape.rank, x->shape.dims) : -1;
        if (total >= 0 && known > 0 && total % known == 0)
            s.dims[infer_at] = total / known;
    }
    infer_set_moved(g, n, x, &s);
}

/* Expand(x, shape): x broadcast with the shape's elements. */
static void infer_expand(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    value_elems t = infer_elems(infer_in(g, n, 1));
    value_shape target, s;
    bool ok = infer_shape_of_elems(&t, &target);
    for (int d = 0; d < target.rank && ok; d++)
        ok = target.dims[d] >= -1; /* a known negative dim: the kernel reports it */
    ok = ok && infer_broadcast(&x->shape, &target, &s);
    infer_set(infer_out(g, n, 0), x->dtype, ok ? &s : NULL);
}

/* ConstantOfShape: the shape from the input's elements, the value's dtype. */
static void infer_constant_of_shape(graph *g, const graph_node *n)
{
    const onnx_attr *value = graph_node_attr(n, "value");
    ogi_dtype dtype = value != NULL && value->t != NULL ? value->t->tensor.dtype : OGI_FLOAT32;
    value_elems t = infer_elems(infer_in(g, n, 0));
    value_shape s;
    bool ok = infer_shape_of_elems(&t, &s);
    for (int d = 0; d < s.rank && ok; d++)
        ok = s.dims[d] >= -1 && (s.dims[d] >= 0 || elems_is_dim(&t, d));
    infer_set(infer_out(g, n, 0), dtype, ok ? &s : NULL);
}

/* Flatten(x, axis): [product of dims before axis, product of the rest]. */
static void infer_flatten(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    int rank = x->shape.rank;
    int64_t axis = graph_node_attr_int(n, "axis", 1);
    axis = axis < 0 ? axis + rank : axis;
    if (rank < 0 || axis < 0 || axis > rank) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    value_shape s = {.rank = 2, .dims = {1, 1}};
    for (int d = 0; d < rank; d++) {
        int64_t *p = &s.dims[d < axis ? 0 : 1];
        if (*p >= 0 && (x->shape.dims[d] < 0 || __builtin_mul_overflow(*p, x->shape.dims[d], p)))
            *p = -1;
    }
    infer_set(infer_out(g, n, 0), x->dtype, &s);
}

/* ai.ogi.TensorGather(cache, length, ...): the cache's shape with
 * `length` positions on the axis. */
static void infer_tensor_gather(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    int rank = x->shape.rank;
    int64_t axis = graph_node_attr_int(n, "axis", -2);
    axis = axis < 0 ? axis + rank : axis;
    value_elems len = infer_elems(infer_in(g, n, 1));
    if (rank < 2 || axis < 1 || axis >= rank || !elems_tracked(&len) || len.count != 1) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    value_shape s = x->shape;
    s.dims[axis] = elems_is_known(&len, 0) && len.value[0] >= 0 ? len.value[0] : -1;
    s.symbols[axis] = elems_is_known(&len, 0) ? NULL : len.symbol[0];
    infer_set(infer_out(g, n, 0), x->dtype, &s);
}

/* ReduceMean, ReduceSum, ... over known axes (attribute, or input 1 from
 * opset 18 and ReduceSum 13): the axes become 1 or go (keepdims 0). */
static void infer_reduce(graph *g, const graph_node *n)
{
    graph_value *x = infer_in(g, n, 0);
    if (x == NULL)
        return;
    bool axes_input =
        n->opset >= 18 || (n->opset >= 13 && strcmp(n->proto->op_type, "ReduceSum") == 0);
    int64_t axes[OGI_MAX_RANK];
    int k = infer_axes(g, n, axes_input ? 1 : OGI_MAX_RANK, axes);
    const value_shape *xs = &x->shape;
    bool keep = graph_node_attr_int(n, "keepdims", 1) != 0;
    bool reduce[OGI_MAX_RANK] = {false};
    bool ok = xs->rank >= 0 && k >= 0 &&
              (k > 0 || graph_node_attr_int(n, "noop_with_empty_axes", 0) == 0);
    for (int i = 0; i < k && ok; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + xs->rank : axes[i];
        ok = a >= 0 && a < xs->rank;
        if (ok)
            reduce[a] = true;
    }
    if (!ok) {
        infer_set(infer_out(g, n, 0), x->dtype, NULL);
        return;
    }
    value_shape s = {.rank = 0};
    for (int d = 0; d < xs->rank; d++) {
        bool r = k == 0 || reduce[d];
        if (r && !keep)
            continue;
        s.dims[s.rank] = r ? 1 : xs->dims[d];
        s.symbols[s.rank++] = r ? NULL : xs->symbols[d];
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
    {"Identity", infer_identity},
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
    {"Size", infer_size},
    {"MatMul", infer_matmul},
    {"Transpose", infer_transpose},
    {"Reshape", infer_reshape},
    {"Unsqueeze", infer_unsqueeze},
    {"Squeeze", infer_squeeze},
    {"Concat", infer_concat},
    {"Slice", infer_slice},
    {"Expand", infer_expand},
    {"Gather", infer_gather},
    {"ConstantOfShape", infer_constant_of_shape},
    {"Flatten", infer_flatten},
    {"ReduceMean", infer_reduce},
    {"ReduceSum", infer_reduce},
    {"ReduceMax", infer_reduce},
    {"ReduceMin", infer_reduce},
    {"Attention", infer_passthrough_dtype},
    {"TensorScatter", infer_same},
    {"TensorGather", infer_tensor_gather},
};

void shape_infer_node(graph *g, const graph_node *n)
{
    if (n->proto->domain[0] != '\0' && strcmp(n->proto->domain, "ai.ogi") != 0)
        return;
    /* ai.ogi holds TensorGather; the default domain's TensorScatter shares its name */
    bool ogi = n->proto->domain[0] != '\0';
    if (ogi != (strcmp(n->proto->op_type, "TensorGather") == 0))
        return;
    for (size_t r = 0; r < sizeof(infer_rules) / sizeof(infer_rules[0]); r++)
        if (strcmp(infer_rules[r].op, n->proto->op_type) == 0) {
            infer_rules[r].fn(g, n);
            return;
        }
}

void shape_infer_graph(graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        shape_infer_node(g, &g->nodes[i]);
}

bool shape_elems_known(const value_elems *e)
{
    return elems_all_known(e);
}

bool shape_elem_is_dim(const graph *g, const value_elems *e, int i, int x, int d)
{
    const graph_value *xv = &g->values[x];
    if (elems_is_known(e, i))
        return d < xv->shape.rank && xv->shape.dims[d] >= 0 && e->value[i] == xv->shape.dims[d];
    if (e->origin[i] <= 0)
        return false;
    int from = value_origin_value(e->origin[i]);
    if (from >= g->n_values || g->values[from].producer < 0 || xv->shape.rank < 0)
        return false;
    const graph_node *shape = &g->nodes[g->values[from].producer];
    if (strcmp(shape->proto->op_type, "Shape") != 0 || shape->proto->domain[0] != '\0' ||
        shape->n_inputs != 1 || shape->inputs[0] != x || shape->outputs[0] != from)
        return false;
    int64_t start, end;
    infer_shape_range(shape, xv->shape.rank, &start, &end);
    return start + value_origin_elem(e->origin[i]) == d;
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
