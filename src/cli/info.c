/* `ogi info MODEL`: opsets, inputs and outputs with symbolic shapes, op
 * histogram, parameter count and bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/graph.h"
#include "onnx/onnx.h"

static void info_shape(const value_shape *s, char *buf, size_t size)
{
    if (s->rank < 0) {
        snprintf(buf, size, "?");
        return;
    }
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < s->rank && used < size; d++) {
        const char *sep = d ? ", " : "";
        if (s->dims[d] >= 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", sep, (long long)s->dims[d]);
        else if (s->symbols[d])
            used += (size_t)snprintf(buf + used, size - used, "%s%s", sep, s->symbols[d]);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s?", sep);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static void info_values(const char *title, const graph *g, const int *list, int n)
{
    printf("%s (%d):\n", title, n);
    for (int i = 0; i < n; i++) {
        const graph_value *v = &g->values[list[i]];
        char shape[512];
        info_shape(&v->shape, shape, sizeof(shape));
        printf("  %-40s %-8s %s\n", v->name, ogi_dtype_name(v->dtype), shape);
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
    graph_options go = {.fold_constants = true};
    graph *g;
    int rc = 0;
    if (graph_build(m, &go, &g) == OGI_OK) {
        info_values("inputs", g, g->inputs, g->n_inputs);
        info_values("outputs", g, g->outputs, g->n_outputs);
        printf("nodes after constant folding: %d (%d folded)\n", g->n_nodes, g->n_folded);
        graph_free(g);
    } else {
        printf("graph: cannot be prepared: %s\n", ogi_last_error());
        rc = 1;
    }
    info_histogram(m->graph);
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
