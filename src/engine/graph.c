/* Builds the graph IR from a decoded ONNX graph: names to value indices,
 * kernels, subgraphs with captured outer values, a topological order that
 * rejects cycles, value lifetimes, constant folding, fusion (fuse.c) and the
 * merging of common subexpressions (cse.c). */
#include "engine/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"
#include "engine/cse.h"
#include "engine/exec.h"
#include "engine/fuse.h"
#include "engine/op.h"
#include "engine/shape_infer.h"
#include "onnx/writer.h"

/* Name → value index, open addressing. */
typedef struct name_map {
    size_t cap; /* power of two */
    const char **keys;
    int *vals;
} name_map;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool name_map_init(name_map *m, size_t expected)
{
    m->cap = 16;
    while (m->cap < expected * 2 + 1)
        m->cap *= 2;
    m->keys = calloc(m->cap, sizeof(char *));
    m->vals = calloc(m->cap, sizeof(int));
    return m->keys != NULL && m->vals != NULL;
}

static void name_map_free(name_map *m)
{
    free(m->keys);
    free(m->vals);
}

static int name_map_get(const name_map *m, const char *key)
{
    for (size_t i = name_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == NULL)
            return -1;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

static bool name_map_put(name_map *m, const char *key, int val)
{
    if (m->cap < 2) /* never: init sizes generously */
        return false;
    for (size_t i = name_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == NULL) {
            m->keys[i] = key;
            m->vals[i] = val;
            return true;
        }
    }
}

/* Build-time state: the map and the value array's capacity (captures from
 * subgraphs append values while the graph is being built). */
typedef struct graph_build_state {
    name_map names;
    int cap_values;
    const graph_options *options;
} graph_build_state;

const char *graph_node_label(const graph_node *n, char *buf, size_t size)
{
    if (n->proto->name[0])
        snprintf(buf, size, "'%s' (%s)", n->proto->name, n->proto->op_type);
    else
        snprintf(buf, size, "%s", n->proto->op_type);
    return buf;
}

const onnx_attr *graph_node_attr(const graph_node *n, const char *name)
{
    return onnx_node_find_attr(n->proto, name);
}

int64_t graph_node_attr_int(const graph_node *n, const char *name, int64_t def)
{
    const onnx_attr *a = graph_node_attr(n, name);
    return a != NULL && a->type == ONNX_ATTR_INT ? a->i : def;
}

int graph_find_value(const graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return i;
    return -1;
}

static ogi_status graph_oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while building the graph");
}

static int graph_add_value(graph *g, const char *name, value_kind kind)
{
    graph_build_state *b = g->build;
    if (g->n_values == b->cap_values) {
        int cap = b->cap_values ? b->cap_values * 2 : 64;
        graph_value *v = realloc(g->values, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return -1;
        g->values = v;
        b->cap_values = cap;
        /* grow the map too when it gets half full */
    }
    if ((size_t)g->n_values * 2 + 2 > b->names.cap) {
        name_map bigger;
        if (!name_map_init(&bigger, b->names.cap))
            return -1;
        for (size_t i = 0; i < b->names.cap; i++)
            if (b->names.keys[i])
                name_map_put(&bigger, b->names.keys[i], b->names.vals[i]);
        name_map_free(&b->names);
        b->names = bigger;
    }
    int idx = g->n_values++;
    graph_value *v = &g->values[idx];
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->kind = kind;
    v->shape.rank = -1;
    v->elems.count = -1;
    v->producer = -1;
    v->last_use = -1;
    v->capture_index = -1;
    name_map_put(&b->names, name, idx);
    return idx;
}

/* Finds name in g, capturing it from enclosing graphs when needed. */
static int graph_resolve(graph *g, const char *name)
{
    int idx = name_map_get(&g->build->names, name);
    if (idx >= 0 || g->parent == NULL)
        return idx;
    int outer = graph_resolve(g->parent, name);
    if (outer < 0)
        return -1;
    idx = graph_add_value(g, name, VALUE_CAPTURED);
    if (idx < 0)
        return -2;
    g->values[idx].capture_index = outer;
    g->values[idx].dtype = g->parent->values[outer].dtype;
    g->values[idx].shape = g->parent->values[outer].shape;
    return idx;
}

static void graph_set_info(graph_value *v, const onnx_value_info *info)
{
    if (info->kind == ONNX_VALUE_SEQUENCE)
        v->type = TENSOR_KIND_SEQUENCE;
    else if (info->kind == ONNX_VALUE_OPTIONAL)
        v->type = TENSOR_KIND_OPTIONAL;
    if (info->kind != ONNX_VALUE_TENSOR)
        return;
    v->dtype = info->elem_type;
    if (info->rank < 0)
        return;
    v->shape.rank = info->rank;
    for (int d = 0; d < info->rank; d++) {
        v->shape.dims[d] = info->dims[d].value;
        v->shape.symbols[d] = info->dims[d].param;
    }
}

static void graph_set_const(graph_value *v, const ogi_tensor *t)
{
    v->constant = t;
    v->dtype = t->dtype;
    v->shape.rank = t->rank;
    for (int d = 0; d < t->rank; d++) {
        v->shape.dims[d] = t->dims[d];
        v->shape.symbols[d] = NULL;
    }
}

static ogi_status graph_build_graph(const onnx_model *model, const onnx_graph *proto, graph *parent,
                                    const graph_options *options, graph **out);

/* ---- values --------------------------------------------------------------- */

static ogi_status graph_add_sources(graph *g, const onnx_graph *p)
{
    for (int i = 0; i < p->n_initializers; i++) {
        const onnx_tensor *t = &p->initializers[i];
        if (name_map_get(&g->build->names, t->name) >= 0)
            return ogi_error(OGI_ERR_INVALID_MODEL, "initializer '%s' is defined twice", t->name);
        int idx = graph_add_value(g, t->name, VALUE_CONST);
        if (idx < 0)
            return graph_oom();
        graph_set_const(&g->values[idx], &t->tensor);
    }
    g->inputs = calloc((size_t)p->n_inputs + 1, sizeof(int));
    if (g->inputs == NULL)
        return graph_oom();
    for (int i = 0; i < p->n_inputs; i++) {
        const onnx_value_info *in = &p->inputs[i];
        /* a subgraph input may omit its type: it takes the type of the value
         * its op binds to it (Scan's state and slices, Loop's carried values) */
        bool untyped_ok = g->parent != NULL && in->kind == ONNX_VALUE_UNKNOWN;
        if (in->kind != ONNX_VALUE_TENSOR && in->kind != ONNX_VALUE_SEQUENCE &&
            in->kind != ONNX_VALUE_OPTIONAL && !untyped_ok)
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "input '%s': only tensor, sequence and optional inputs are "
                             "supported (not map or sparse)",
                             in->name);
        int idx = name_map_get(&g->build->names, in->name);
        if (idx >= 0 && g->values[idx].kind == VALUE_CONST) {
            /* IR < 4: an input with an initializer is an overridable default */
            g->values[idx].kind = VALUE_INPUT;
        } else if (idx >= 0) {
            return ogi_error(OGI_ERR_INVALID_MODEL, "input '%s' is declared twice", in->name);
        } else {
            idx = graph_add_value(g, in->name, VALUE_INPUT);
            if (idx < 0)
                return graph_oom();
            graph_set_info(&g->values[idx], in);
        }
        g->inputs[g->n_inputs++] = idx;
    }
    return OGI_OK;
}

static ogi_status graph_add_node_outputs(graph *g, const onnx_graph *p)
{
    for (int n = 0; n < p->n_nodes; n++) {
        const onnx_node *node = &p->nodes[n];
        for (int o = 0; o < node->n_outputs; o++) {
            const char *name = node->outputs[o];
            if (name[0] == '\0')
                continue;
            if (name_map_get(&g->build->names, name) >= 0)
                return ogi_error(OGI_ERR_INVALID_MODEL,
                                 "value '%s' is produced twice (node '%s' %s)", name, node->name,
                                 node->op_type);
            int idx = graph_add_value(g, name, VALUE_NODE);
            if (idx < 0)
                return graph_oom();
            g->values[idx].producer = n;
        }
    }
    return OGI_OK;
}

/* ---- nodes ---------------------------------------------------------------- */

static ogi_status graph_node_subgraphs(graph *g, graph_node *gn, const graph_options *options)
{
    const onnx_node *p = gn->proto;
    int count = 0;
    for (int a = 0; a < p->n_attrs; a++) {
        if (p->attrs[a].type == ONNX_ATTR_GRAPH)
            count++;
        else if (p->attrs[a].type == ONNX_ATTR_GRAPHS)
            return ogi_error(OGI_ERR_UNSUPPORTED, "attribute '%s': graph lists are not supported",
                             p->attrs[a].name);
    }
    if (count == 0)
        return OGI_OK;
    gn->subgraphs = calloc((size_t)count, sizeof(graph *));
    gn->subgraph_names = calloc((size_t)count, sizeof(char *));
    if (gn->subgraphs == NULL || gn->subgraph_names == NULL)
        return graph_oom();
    for (int a = 0; a < p->n_attrs; a++) {
        if (p->attrs[a].type != ONNX_ATTR_GRAPH || p->attrs[a].g == NULL)
            continue;
        gn->subgraph_names[gn->n_subgraphs] = p->attrs[a].name;
        ogi_status st =
            graph_build_graph(g->model, p->attrs[a].g, g, options, &gn->subgraphs[gn->n_subgraphs]);
        if (st != OGI_OK)
            return ogi_error_prefix(st, "subgraph '%s'", p->attrs[a].name);
        gn->n_subgraphs++;
    }
    return OGI_OK;
}

static ogi_status graph_add_nodes(graph *g, const onnx_graph *p, const graph_options *options)
{
    g->nodes = calloc((size_t)p->n_nodes + 1, sizeof(graph_node));
    if (g->nodes == NULL)
        return graph_oom();
    for (int n = 0; n < p->n_nodes; n++) {
        const onnx_node *node = &p->nodes[n];
        graph_node *gn = &g->nodes[g->n_nodes++];
        gn->proto = node;
        gn->n_inputs = node->n_inputs;
        gn->n_outputs = node->n_outputs;
        gn->inputs = calloc((size_t)node->n_inputs + 1, sizeof(int));
        gn->outputs = calloc((size_t)node->n_outputs + 1, sizeof(int));
        if (gn->inputs == NULL || gn->outputs == NULL)
            return graph_oom();
        char label[256];
        for (int i = 0; i < node->n_inputs; i++) {
            const char *name = node->inputs[i];
            gn->inputs[i] = name[0] ? graph_resolve(g, name) : -1;
            if (gn->inputs[i] == -2)
                return graph_oom();
            if (name[0] && gn->inputs[i] < 0)
                return ogi_error(OGI_ERR_INVALID_MODEL,
                                 "node %s input %d: '%s' is not a graph input, initializer or "
                                 "node output",
                                 graph_node_label(gn, label, sizeof(label)), i, name);
        }
        for (int o = 0; o < node->n_outputs; o++)
            gn->outputs[o] =
                node->outputs[o][0] ? name_map_get(&g->build->names, node->outputs[o]) : -1;
        int64_t opset = onnx_model_opset(g->model, node->domain);
        if (opset == 0 && node->domain[0] == '\0')
            opset = 1;
        gn->opset = opset > 1000000 ? 1000000 : (int)opset;
        gn->kernel = op_find_kernel(node->domain, node->op_type, gn->opset);
        if (gn->kernel == NULL)
            return ogi_error(OGI_ERR_UNSUPPORTED, "no kernel for op %s%s%s (opset %d)",
                             node->domain, node->domain[0] ? "." : "", node->op_type, gn->opset);
        ogi_status st = graph_node_subgraphs(g, gn, options);
        if (st != OGI_OK)
            return ogi_error_prefix(st, "node %s", graph_node_label(gn, label, sizeof(label)));
    }
    return OGI_OK;
}

/* Values a node reads: its inputs, and what its subgraphs capture from this
 * graph (directly or for their own subgraphs). */
static int graph_node_reads(const graph_node *n, int *out, int cap)
{
    int count = 0;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0 && count < cap)
            out[count++] = n->inputs[i];
    for (int s = 0; s < n->n_subgraphs; s++) {
        const graph *sub = n->subgraphs[s];
        for (int v = 0; v < sub->n_values; v++)
            if (sub->values[v].kind == VALUE_CAPTURED && count < cap)
                out[count++] = sub->values[v].capture_index;
    }
    return count;
}

static int graph_node_read_count(const graph_node *n)
{
    int count = n->n_inputs;
    for (int s = 0; s < n->n_subgraphs; s++)
        count += n->subgraphs[s]->n_values;
    return count;
}

/* Kahn's algorithm; the file order is kept where it is already valid. */
static ogi_status graph_sort(graph *g)
{
    int n = g->n_nodes;
    int *pending = calloc((size_t)n + 1, sizeof(int));
    int *order = calloc((size_t)n + 1, sizeof(int));
    int *reads = NULL;
    ogi_status st = OGI_OK;
    if (pending == NULL || order == NULL) {
        st = graph_oom();
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int cap = graph_node_read_count(&g->nodes[i]);
        free(reads);
        reads = calloc((size_t)cap + 1, sizeof(int));
        if (reads == NULL) {
            st = graph_oom();
            goto done;
        }
        int r = graph_node_reads(&g->nodes[i], reads, cap);
        for (int k = 0; k < r; k++)
            if (g->values[reads[k]].kind == VALUE_NODE)
                pending[i]++;
    }
    /* repeated passes in file order: cheap for graphs that are already sorted */
    int done_count = 0;
    bool *done = calloc((size_t)n + 1, sizeof(bool));
    bool *ready = calloc((size_t)g->n_values + 1, sizeof(bool));
    if (done == NULL || ready == NULL) {
        free(done);
        free(ready);
        st = graph_oom();
        goto done;
    }
    for (int v = 0; v < g->n_values; v++)
        ready[v] = g->values[v].kind != VALUE_NODE;
    bool progress = true;
    while (done_count < n && progress) {
        progress = false;
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            int cap = graph_node_read_count(&g->nodes[i]);
            free(reads);
            reads = calloc((size_t)cap + 1, sizeof(int));
            if (reads == NULL) {
                st = graph_oom();
                break;
            }
            int r = graph_node_reads(&g->nodes[i], reads, cap);
            bool ok = true;
            for (int k = 0; k < r && ok; k++)
                ok = ready[reads[k]];
            if (!ok)
                continue;
            done[i] = true;
            order[done_count++] = i;
            progress = true;
            for (int o = 0; o < g->nodes[i].n_outputs; o++)
                if (g->nodes[i].outputs[o] >= 0)
                    ready[g->nodes[i].outputs[o]] = true;
        }
        if (st != OGI_OK)
            break;
    }
    if (st == OGI_OK && done_count < n) {
        char label[256];
        for (int i = 0; i < n; i++)
            if (!done[i]) {
                st = ogi_error(OGI_ERR_INVALID_MODEL,
                               "graph has a cycle: node %s depends on its own output",
                               graph_node_label(&g->nodes[i], label, sizeof(label)));
                break;
            }
    }
    free(done);
    free(ready);
    if (st == OGI_OK) {
        graph_node *sorted = calloc((size_t)n + 1, sizeof(graph_node));
        if (sorted == NULL) {
            st = graph_oom();
            goto done;
        }
        for (int i = 0; i < n; i++)
            sorted[i] = g->nodes[order[i]];
        free(g->nodes);
        g->nodes = sorted;
        for (int i = 0; i < n; i++)
            for (int o = 0; o < sorted[i].n_outputs; o++)
                if (sorted[i].outputs[o] >= 0)
                    g->values[sorted[i].outputs[o]].producer = i;
    }
done:
    free(reads);
    free(pending);
    free(order);
    return st;
}

static ogi_status graph_set_outputs(graph *g, const onnx_graph *p)
{
    g->outputs = calloc((size_t)p->n_outputs + 1, sizeof(int));
    if (g->outputs == NULL)
        return graph_oom();
    for (int i = 0; i < p->n_outputs; i++) {
        int idx = graph_resolve(g, p->outputs[i].name);
        if (idx == -2)
            return graph_oom();
        if (idx < 0)
            return ogi_error(OGI_ERR_INVALID_MODEL, "output '%s' is not produced by the graph",
                             p->outputs[i].name);
        onnx_value_kind kind = p->outputs[i].kind;
        if (kind == ONNX_VALUE_MAP || kind == ONNX_VALUE_SPARSE_TENSOR)
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "output '%s': only tensor, sequence and optional outputs are "
                             "supported",
                             p->outputs[i].name);
        if (kind == ONNX_VALUE_SEQUENCE)
            g->values[idx].type = TENSOR_KIND_SEQUENCE;
        else if (kind == ONNX_VALUE_OPTIONAL)
            g->values[idx].type = TENSOR_KIND_OPTIONAL;
        g->values[idx].is_output = true;
        g->outputs[g->n_outputs++] = idx;
    }
    return OGI_OK;
}

/* Last reader of every value, and the per-node release lists built from it. */
int *graph_reader_counts(const graph *g, const bool *skip)
{
    int *counts = calloc((size_t)g->n_values + 1, sizeof(int));
    if (counts == NULL)
        return NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (skip != NULL && skip[i])
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                counts[n->inputs[k]]++;
        for (int s = 0; s < n->n_subgraphs; s++)
            for (int v = 0; v < n->subgraphs[s]->n_values; v++)
                if (n->subgraphs[s]->values[v].kind == VALUE_CAPTURED)
                    counts[n->subgraphs[s]->values[v].capture_index]++;
    }
    for (int k = 0; k < g->n_outputs; k++)
        counts[g->outputs[k]]++;
    return counts;
}

ogi_status graph_remove_nodes(graph *g, const bool *removed)
{
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        if (!removed[i]) {
            g->nodes[kept++] = *n;
            continue;
        }
        for (int o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] >= 0)
                g->values[n->outputs[o]].producer = -1;
        free(n->inputs);
        free(n->outputs);
        free(n->release);
    }
    g->n_nodes = kept;
    for (int i = 0; i < g->n_nodes; i++)
        for (int o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] >= 0)
                g->values[g->nodes[i].outputs[o]].producer = i;
    return graph_plan_lifetimes(g);
}

ogi_status graph_plan_lifetimes(graph *g)
{
    for (int v = 0; v < g->n_values; v++)
        g->values[v].last_use = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        int cap = graph_node_read_count(n);
        int *reads = calloc((size_t)cap + 1, sizeof(int));
        if (reads == NULL)
            return graph_oom();
        int r = graph_node_reads(n, reads, cap);
        for (int k = 0; k < r; k++)
            g->values[reads[k]].last_use = i;
        free(reads);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].release);
        g->nodes[i].release = NULL;
        g->nodes[i].n_release = 0;
    }
    int *counts = calloc((size_t)g->n_nodes + 1, sizeof(int));
    if (counts == NULL)
        return graph_oom();
    for (int v = 0; v < g->n_values; v++) {
        const graph_value *x = &g->values[v];
        if (x->kind != VALUE_NODE || x->is_output)
            continue;
        int at = x->last_use >= 0 ? x->last_use : x->producer;
        if (at >= 0)
            counts[at]++;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        g->nodes[i].release = calloc((size_t)counts[i] + 1, sizeof(int));
        if (g->nodes[i].release == NULL) {
            free(counts);
            return graph_oom();
        }
    }
    free(counts);
    for (int v = 0; v < g->n_values; v++) {
        const graph_value *x = &g->values[v];
        if (x->kind != VALUE_NODE || x->is_output)
            continue;
        int at = x->last_use >= 0 ? x->last_use : x->producer;
        if (at >= 0) {
            graph_node *n = &g->nodes[at];
            n->release[n->n_release++] = v;
        }
    }
    return OGI_OK;
}

static ogi_status graph_build_graph(const onnx_model *model, const onnx_graph *proto, graph *parent,
                                    const graph_options *options, graph **out)
{
    if (proto->n_sparse_initializers > 0)
        return ogi_error(OGI_ERR_UNSUPPORTED, "sparse initializers are not supported");
    graph *g = calloc(1, sizeof(*g));
    graph_build_state *b = calloc(1, sizeof(*b));
    if (g == NULL || b == NULL) {
        free(g);
        free(b);
        return graph_oom();
    }
    g->build = b;
    g->model = model;
    g->proto = proto;
    g->parent = parent;
    b->options = options;
    ogi_status st = name_map_init(&b->names, 64) ? OGI_OK : graph_oom();
    if (st == OGI_OK)
        st = graph_add_sources(g, proto);
    if (st == OGI_OK)
        st = graph_add_node_outputs(g, proto);
    if (st == OGI_OK)
        st = graph_add_nodes(g, proto, options);
    if (st == OGI_OK)
        st = graph_set_outputs(g, proto);
    if (st == OGI_OK)
        st = graph_sort(g);
    bool fold = options->fold_constants && parent == NULL;
    if (st == OGI_OK && !fold) /* folding infers node by node, seeing what it folded */
        shape_infer_graph(g);
    if (st == OGI_OK)
        st = graph_plan_lifetimes(g);
    if (st == OGI_OK && fold)
        st = graph_fold_constants(g);
    if (st == OGI_OK && parent == NULL)
        st = graph_fuse(g);
    if (st == OGI_OK && parent == NULL)
        st = graph_eliminate_common(g);
    name_map_free(&b->names);
    free(b);
    g->build = NULL;
    if (st != OGI_OK) {
        graph_free(g);
        return st;
    }
    *out = g;
    return OGI_OK;
}

ogi_status graph_build(const onnx_model *model, const graph_options *options, graph **out)
{
    graph_options defaults = {.fold_constants = true};
    if (options == NULL)
        options = &defaults;
    return graph_build_graph(model, model->graph, NULL, options, out);
}

static void graph_node_free(graph_node *n)
{
    free(n->inputs);
    free(n->outputs);
    free(n->release);
    for (int s = 0; s < n->n_subgraphs; s++)
        graph_free(n->subgraphs[s]);
    free(n->subgraphs);
    free(n->subgraph_names);
}

void graph_free(graph *g)
{
    if (g == NULL)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        graph_node_free(&g->nodes[i]);
    free(g->nodes);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    for (int i = 0; i < g->n_owned; i++)
        ogi_tensor_free(g->owned[i]);
    free(g->owned);
    free(g->panels);
    if (g->panel_buffer != NULL)
        munmap(g->panel_buffer, g->panel_bytes);
    free(g);
}
