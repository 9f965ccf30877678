/* Load-time fusion: rewrites node patterns of exported graphs into single
 * kernels. Each rule states the pattern it matches; a node is only fused
 * when every value it removes has no other reader.
 *
 *  - MatMul(A, Transpose(W)) with W a constant 2-D float32 matrix becomes
 *    ai.ogi.MatMulTransposeB(A, W): the tied LM head of torch.export models,
 *    which would otherwise transpose (copy) the embedding table every run. */
#include <stdlib.h>
#include <string.h>

#include "engine/exec.h"
#include "engine/fuse.h"
#include "engine/op.h"

/* Readers of each value, counting subgraph captures. */
static int *fuse_reader_counts(const graph *g)
{
    int *counts = calloc((size_t)g->n_values + 1, sizeof(int));
    if (counts == NULL)
        return NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
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

static bool fuse_is(const graph_node *n, const char *op)
{
    return n->proto->domain[0] == '\0' && strcmp(n->proto->op_type, op) == 0;
}

/* The Transpose feeding input 1 of MatMul node n, when the rule applies. */
static graph_node *fuse_transposed_weight(graph *g, const graph_node *n, const int *readers)
{
    if (!fuse_is(n, "MatMul") || n->n_inputs != 2 || n->inputs[1] < 0)
        return NULL;
    const graph_value *t_out = &g->values[n->inputs[1]];
    if (t_out->kind != VALUE_NODE || t_out->producer < 0 || readers[n->inputs[1]] != 1)
        return NULL;
    graph_node *t = &g->nodes[t_out->producer];
    if (!fuse_is(t, "Transpose") || t->n_inputs != 1 || t->inputs[0] < 0)
        return NULL;
    const graph_value *w = &g->values[t->inputs[0]];
    if (w->kind != VALUE_CONST || w->constant->rank != 2 || w->constant->dtype != OGI_FLOAT32)
        return NULL;
    for (int a = 0; a < t->proto->n_attrs; a++) {
        const onnx_attr *perm = &t->proto->attrs[a];
        if (strcmp(perm->name, "perm") == 0 &&
            (perm->n != 2 || perm->ints[0] != 1 || perm->ints[1] != 0))
            return NULL;
    }
    return t;
}

ogi_status graph_fuse(graph *g)
{
    const op_kernel *mtb = op_find_kernel("ai.ogi", "MatMulTransposeB", 1);
    int *readers = fuse_reader_counts(g);
    bool *removed = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (readers == NULL || removed == NULL) {
        free(readers);
        free(removed);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while fusing");
    }
    int fused = 0;
    for (int i = 0; i < g->n_nodes && mtb != NULL; i++) {
        graph_node *n = &g->nodes[i];
        graph_node *t = fuse_transposed_weight(g, n, readers);
        if (t == NULL)
            continue;
        int t_index = (int)(t - g->nodes);
        g->values[n->inputs[1]].producer = -1; /* the transposed copy is never made */
        n->inputs[1] = t->inputs[0];
        n->kernel = mtb;
        removed[t_index] = true;
        fused++;
    }
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (removed[i]) {
            free(g->nodes[i].inputs);
            free(g->nodes[i].outputs);
            free(g->nodes[i].release);
            continue;
        }
        g->nodes[kept++] = g->nodes[i];
    }
    g->n_nodes = kept;
    g->n_fused += fused;
    free(readers);
    free(removed);
    if (fused == 0)
        return OGI_OK;
    for (int i = 0; i < g->n_nodes; i++)
        for (int o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] >= 0)
                g->values[g->nodes[i].outputs[o]].producer = i;
    return graph_plan_lifetimes(g);
}
