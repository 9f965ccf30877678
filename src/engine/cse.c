/* Common-subexpression elimination at load, after folding and fusion.
 * Exporters repeat work per layer: the rotary cos/sin recomputed for every
 * attention, Shape/Gather/Unsqueeze/Concat chains rebuilt from the same
 * values, constants written once per use with the same bytes.
 *
 *  - Small constants (up to CSE_MAX_CONST_BYTES) with equal dtype, shape and
 *    bytes are one value: readers of the later ones read the first.
 *  - Two nodes with the same kernel and opset, the same inputs (after the
 *    step above and after earlier merges), the same outputs present and
 *    equal attributes compute the same values: the later one is dropped and
 *    its readers read the earlier one's outputs. One pass in topological
 *    order reaches the fixed point, since a node's inputs are rewritten
 *    before it is compared. The inputs of commutative ops are put in one
 *    order first.
 *
 * Never merged: nodes with subgraphs, random ops, kernels that update an
 * input in place (TensorScatter on a KV cache, recurrent states). A node
 * that produces a graph output is kept (a caller may bind each output to its
 * own buffer), though later equal nodes may merge into it. */
#include "engine/cse.h"

#include <stdlib.h>
#include <string.h>

#include "engine/exec.h"
#include "engine/op.h"

enum { CSE_MAX_CONST_BYTES = 4096 };

static uint64_t cse_mix(uint64_t h, uint64_t x)
{
    return (h ^ x) * 1099511628211ull;
}

static uint64_t cse_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = cse_mix(h, p[i]);
    return h;
}

static bool cse_same_tensor(const ogi_tensor *a, const ogi_tensor *b)
{
    if (a->kind != TENSOR_KIND_TENSOR || b->kind != TENSOR_KIND_TENSOR || a->dtype != b->dtype ||
        a->dtype == OGI_STRING || !tensor_same_shape(a, b) || a->nbytes != b->nbytes)
        return false;
    return a->nbytes == 0 ||
           (a->data != NULL && b->data != NULL && memcmp(a->data, b->data, a->nbytes) == 0);
}

static bool cse_same_attr(const onnx_attr *a, const onnx_attr *b)
{
    if (a->type != b->type || strcmp(a->name, b->name) != 0)
        return false;
    if ((a->ref_attr_name == NULL) != (b->ref_attr_name == NULL) ||
        (a->ref_attr_name != NULL && strcmp(a->ref_attr_name, b->ref_attr_name) != 0))
        return false;
    switch (a->type) {
    case ONNX_ATTR_FLOAT:
        return memcmp(&a->f, &b->f, sizeof(a->f)) == 0; /* bitwise: NaN and -0 kept apart */
    case ONNX_ATTR_INT:
        return a->i == b->i;
    case ONNX_ATTR_STRING:
        return a->s_len == b->s_len && memcmp(a->s, b->s, a->s_len) == 0;
    case ONNX_ATTR_TENSOR:
        return a->t != NULL && b->t != NULL && cse_same_tensor(&a->t->tensor, &b->t->tensor);
    case ONNX_ATTR_FLOATS:
        return a->n == b->n &&
               (a->n == 0 || memcmp(a->floats, b->floats, sizeof(float) * (size_t)a->n) == 0);
    case ONNX_ATTR_INTS:
        return a->n == b->n &&
               (a->n == 0 || memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n) == 0);
    case ONNX_ATTR_STRINGS:
        if (a->n != b->n)
            return false;
        for (int64_t k = 0; k < a->n; k++)
            if (strcmp(a->strings[k], b->strings[k]) != 0)
                return false;
        return true;
    default: /* graphs, sparse tensors, type protos: not compared, never equal */
        return false;
    }
}

static bool cse_same_attrs(const onnx_node *a, const onnx_node *b)
{
    if (a->n_attrs != b->n_attrs)
        return false;
    for (int i = 0; i < a->n_attrs; i++) {
        const onnx_attr *match = NULL;
        for (int j = 0; j < b->n_attrs && match == NULL; j++)
            if (strcmp(a->attrs[i].name, b->attrs[j].name) == 0)
                match = &b->attrs[j];
        if (match == NULL || !cse_same_attr(&a->attrs[i], match))
            return false;
    }
    return true;
}

static bool cse_same_node(const graph_node *a, const graph_node *b)
{
    if (a->kernel != b->kernel || a->opset != b->opset || a->n_inputs != b->n_inputs ||
        a->n_outputs != b->n_outputs)
        return false;
    for (int i = 0; i < a->n_inputs; i++)
        if (a->inputs[i] != b->inputs[i])
            return false;
    for (int o = 0; o < a->n_outputs; o++)
        if ((a->outputs[o] < 0) != (b->outputs[o] < 0))
            return false;
    return cse_same_attrs(a->proto, b->proto);
}

static uint64_t cse_hash_node(const graph_node *n)
{
    uint64_t h = cse_mix(1469598103934665603ull, (uint64_t)(uintptr_t)n->kernel);
    h = cse_mix(h, (uint64_t)n->opset);
    for (int i = 0; i < n->n_inputs; i++)
        h = cse_mix(h, (uint64_t)(int64_t)n->inputs[i]);
    for (int o = 0; o < n->n_outputs; o++)
        h = cse_mix(h, n->outputs[o] >= 0);
    return h;
}

/* Whether node n may be merged with an equal node at all ... */
static bool cse_pure(const graph_node *n)
{
    return n->n_subgraphs == 0 && !op_kernel_is_random(n->kernel) &&
           !op_kernel_updates_in_place(n->kernel);
}

/* ... and whether it may be the one dropped: it produces no graph output. */
static bool cse_removable(const graph *g, const graph_node *n)
{
    for (int o = 0; o < n->n_outputs; o++)
        if (n->outputs[o] >= 0 && g->values[n->outputs[o]].is_output)
            return false;
    return true;
}

/* An open-addressed table of indices (constants' values or nodes) by hash. */
typedef struct cse_table {
    size_t cap; /* power of two */
    int *slots; /* -1 when empty */
    uint64_t *hashes;
} cse_table;

static bool cse_table_init(cse_table *t, int expected)
{
    t->cap = 16;
    while (t->cap < (size_t)expected * 2 + 1)
        t->cap *= 2;
    t->slots = malloc(sizeof(int) * t->cap);
    t->hashes = malloc(sizeof(uint64_t) * t->cap);
    if (t->slots == NULL || t->hashes == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        t->slots[i] = -1;
    return true;
}

static void cse_table_free(cse_table *t)
{
    free(t->slots);
    free(t->hashes);
}

/* Finds an entry with hash h for which same(ctx, entry, key) holds, or adds
 * key; returns the entry found, or -1 when key was added. */
static int cse_table_find_or_add(cse_table *t, uint64_t h, int key, const void *ctx,
                                 bool (*same)(const void *, int, int))
{
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i] < 0) {
            t->slots[i] = key;
            t->hashes[i] = h;
            return -1;
        }
        if (t->hashes[i] == h && same(ctx, t->slots[i], key))
            return t->slots[i];
    }
}

static bool cse_same_const(const void *ctx, int a, int b)
{
    const graph *g = ctx;
    return cse_same_tensor(g->values[a].constant, g->values[b].constant);
}

static bool cse_same_node_at(const void *ctx, int a, int b)
{
    const graph *g = ctx;
    return cse_same_node(&g->nodes[a], &g->nodes[b]);
}

/* canon[v] = the first constant equal to v (v itself when none). */
static bool cse_constants(const graph *g, int *canon)
{
    cse_table t;
    if (!cse_table_init(&t, g->n_values)) {
        cse_table_free(&t);
        return false;
    }
    for (int v = 0; v < g->n_values; v++) {
        const graph_value *x = &g->values[v];
        const ogi_tensor *c = x->constant;
        if (x->kind != VALUE_CONST || c == NULL || c->kind != TENSOR_KIND_TENSOR ||
            c->dtype == OGI_STRING || c->nbytes > CSE_MAX_CONST_BYTES ||
            (c->nbytes > 0 && c->data == NULL))
            continue;
        uint64_t h = cse_mix(1469598103934665603ull, (uint64_t)c->dtype);
        h = cse_hash_bytes(h, c->dims, sizeof(int64_t) * (size_t)c->rank);
        h = cse_hash_bytes(cse_mix(h, (uint64_t)c->rank), c->data, c->nbytes);
        int first = cse_table_find_or_add(&t, h, v, g, cse_same_const);
        if (first >= 0)
            canon[v] = first;
    }
    cse_table_free(&t);
    return true;
}

/* Orders the two inputs of a commutative op (by value index), so that
 * Add(a, b) and Add(b, a) hash and compare alike: the exporters add a
 * layer's past length and the new length in either order. Broadcasting
 * and the output's dtype do not depend on the order, and neither does the
 * result (IEEE addition and multiplication commute exactly). */
static void cse_order_inputs(graph_node *n)
{
    static const char *const commutative[] = {"Add", "Mul", "And", "Or", "Xor", "Equal"};
    if (n->n_inputs != 2 || n->inputs[0] <= n->inputs[1] || n->proto->domain[0] != '\0')
        return;
    for (size_t i = 0; i < sizeof(commutative) / sizeof(commutative[0]); i++)
        if (strcmp(n->proto->op_type, commutative[i]) == 0) {
            int a = n->inputs[0];
            n->inputs[0] = n->inputs[1];
            n->inputs[1] = a;
            return;
        }
}

/* Merges nodes in order; removed[i] marks the dropped ones. */
static int cse_nodes(graph *g, int *canon, bool *removed, cse_table *t)
{
    int merged = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                n->inputs[k] = canon[n->inputs[k]];
        for (int s = 0; s < n->n_subgraphs; s++) {
            graph *sub = n->subgraphs[s];
            for (int v = 0; v < sub->n_values; v++)
                if (sub->values[v].kind == VALUE_CAPTURED)
                    sub->values[v].capture_index = canon[sub->values[v].capture_index];
        }
        if (!cse_pure(n))
            continue;
        cse_order_inputs(n);
        int first = cse_table_find_or_add(t, cse_hash_node(n), i, g, cse_same_node_at);
        if (first < 0 || !cse_removable(g, n))
            continue;
        const graph_node *keep = &g->nodes[first];
        for (int o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] >= 0) {
                canon[n->outputs[o]] = keep->outputs[o];
                g->values[n->outputs[o]].producer = -1;
            }
        removed[i] = true;
        merged++;
    }
    return merged;
}

ogi_status graph_eliminate_common(graph *g)
{
    int *canon = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    bool *removed = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    cse_table t = {0};
    bool ok = canon != NULL && removed != NULL && cse_table_init(&t, g->n_nodes);
    if (ok) {
        for (int v = 0; v < g->n_values; v++)
            canon[v] = v;
        ok = cse_constants(g, canon);
    }
    int merged = ok ? cse_nodes(g, canon, removed, &t) : 0;
    cse_table_free(&t);
    free(canon);
    if (!ok) {
        free(removed);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while merging common nodes");
    }
    ogi_status st = graph_remove_nodes(g, removed);
    free(removed);
    g->n_merged += merged;
    return st;
}
