/* `ogi info MODEL`: opsets, inputs and outputs with symbolic shapes, op
 * histogram, parameter count and bytes. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/graph.h"
#include "onnx/onnx.h"

static void info_shape(const onnx_value_info *v, char *buf, size_t size)
{
    if (v->kind != ONNX_VALUE_TENSOR || v->rank < 0) {
        snprintf(buf, size, v->kind == ONNX_VALUE_TENSOR ? "?" : "(not a tensor)");
        return;
    }
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < v->rank && used < size; d++) {
        const char *sep = d ? ", " : "";
        const onnx_dim *dim = &v->dims[d];
        if (dim->value >= 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", sep, (long long)dim->value);
        else if (dim->param)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", sep, dim->param);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s?", sep);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static bool info_is_initializer(const onnx_graph *p, const char *name)
{
    for (int i = 0; i < p->n_initializers; i++)
        if (strcmp(p->initializers[i].name, name) == 0)
            return true;
    return false;
}

static void info_values(const char *title, const onnx_graph *p, const onnx_value_info *vs, int n)
{
    int shown = 0;
    for (int i = 0; i < n; i++)
        shown += !info_is_initializer(p, vs[i].name);
    printf("%s (%d):\n", title, shown);
    for (int i = 0; i < n; i++) {
        if (info_is_initializer(p, vs[i].name))
            continue;
        char shape[512];
        info_shape(&vs[i], shape, sizeof(shape));
        printf("  %-40s %-8s %s\n", vs[i].name, ogi_dtype_name(vs[i].elem_type), shape);
    }
}

typedef struct info_count {
    const char *op;
    int n;
} info_count;

static int info_cmp_count(const void *a, const void *b)
{
    const info_count *x = a, *y = b;
    if (x->n != y->n)
        return y->n - x->n;
    return strcmp(x->op, y->op);
}

static void info_histogram(const onnx_graph *p)
{
    info_count *counts = calloc((size_t)p->n_nodes + 1, sizeof(*counts));
    int n = 0;
    if (counts == NULL)
        return;
    for (int i = 0; i < p->n_nodes; i++) {
        int k = 0;
        while (k < n && strcmp(counts[k].op, p->nodes[i].op_type) != 0)
            k++;
        if (k == n)
            counts[n++].op = p->nodes[i].op_type;
        counts[k].n++;
    }
    qsort(counts, (size_t)n, sizeof(*counts), info_cmp_count);
    printf("ops (%d nodes, %d types):\n", p->n_nodes, n);
    for (int k = 0; k < n; k++)
        printf("  %-28s %d\n", counts[k].op, counts[k].n);
    free(counts);
}

int cli_info(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: ogi info MODEL.onnx\n\nPrints the model's IR version and opsets, its "
                "inputs and outputs with\nsymbolic shapes, an op histogram, and its parameter "
                "count and bytes.\n");
        return argc == 2 ? 0 : 2;
    }
    onnx_model *m;
    if (onnx_model_load(argv[1], &m) != OGI_OK) {
        fprintf(stderr, "ogi info: %s\n", ogi_last_error());
        return 1;
    }
    printf("model: %s\nir_version: %lld\nproducer: %s %s\nopsets:", argv[1],
           (long long)m->ir_version, m->producer_name, m->producer_version);
    for (int i = 0; i < m->n_opsets; i++)
        printf(" %s=%lld", m->opsets[i].domain[0] ? m->opsets[i].domain : "ai.onnx",
               (long long)m->opsets[i].version);
    printf("\n");
    info_values("inputs", m->graph, m->graph->inputs, m->graph->n_inputs);
    info_values("outputs", m->graph, m->graph->outputs, m->graph->n_outputs);
    info_histogram(m->graph);
    graph_options go = {.fold_constants = true};
    graph *g;
    int rc = 0;
    if (graph_build(m, &go, &g) == OGI_OK) {
        printf("prepared: %d nodes to run (%d folded into constants, %d patterns fused, %d "
               "merged into equal nodes)\n",
               g->n_nodes, g->n_folded, g->n_fused, g->n_merged);
        graph_free(g);
    } else {
        printf("cannot be prepared: %s\n", ogi_last_error());
        rc = 1;
    }
    const onnx_graph *p = m->graph;
    long long params = 0;
    unsigned long long bytes = 0, external = 0;
    for (int i = 0; i < p->n_initializers; i++) {
        const ogi_tensor *t = &p->initializers[i].tensor;
        params += (long long)tensor_numel(t);
        bytes += t->nbytes;
        if (p->initializers[i].external)
            external += t->nbytes;
    }
    printf("initializers: %d\nparameters: %lld\nbytes: %llu (%.1f MB, %llu external)\n",
           p->n_initializers, params, bytes, (double)bytes / 1e6, external);
    onnx_model_free(m);
    return rc;
}
