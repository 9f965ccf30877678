#include "engine/logits_rewrite.h"

#include <string.h>

#include "core/error.h"

/* Index of the node whose first output is name, or -1. */
static int logits_producer(const onnx_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].n_outputs > 0 && strcmp(g->nodes[i].outputs[0], name) == 0)
            return i;
    return -1;
}

static ogi_status logits_const(onnx_builder *b, onnx_graph *g, const char *name, int64_t value)
{
    ogi_tensor t;
    memset(&t, 0, sizeof(t));
    int64_t dims[1] = {1};
    ogi_status st = tensor_set_shape(&t, OGI_INT64, 1, dims);
    if (st != OGI_OK)
        return st;
    t.data = &value;
    return onnx_builder_add_initializer(b, g, name, &t);
}

ogi_status logits_rewrite(onnx_builder *b, bool *applied)
{
    *applied = false;
    onnx_graph *g = onnx_builder_graph(b);
    bool rank3 = false;
    for (int i = 0; i < g->n_outputs; i++)
        if (strcmp(g->outputs[i].name, "logits") == 0)
            rank3 = g->outputs[i].kind == ONNX_VALUE_TENSOR && g->outputs[i].rank == 3;
    int k = rank3 ? logits_producer(g, "logits") : -1;
    /* MatMul of a rank-3 result with a 2-D weight keeps A's leading dims, so
     * slicing A's axis 1 slices the sequence */
    if (k < 0 || strcmp(g->nodes[k].op_type, "MatMul") != 0 || g->nodes[k].domain[0] != '\0' ||
        g->nodes[k].n_inputs != 2)
        return OGI_OK;
    for (int i = 0; i < g->n_inputs; i++)
        if (strcmp(g->inputs[i].name, LOGITS_FROM_INPUT) == 0)
            return OGI_OK; /* already rewritten */
    const char *hidden = g->nodes[k].inputs[0];
    const char *end = onnx_builder_unique_name(b, "ogi_logits_end");
    const char *axis = onnx_builder_unique_name(b, "ogi_logits_axis");
    const char *sliced = onnx_builder_unique_name(b, "ogi_logits_hidden");
    ogi_status st = logits_const(b, g, LOGITS_FROM_INPUT, 0);
    if (st == OGI_OK)
        st = logits_const(b, g, end, INT64_MAX);
    if (st == OGI_OK)
        st = logits_const(b, g, axis, 1);
    onnx_dim dim = {.value = 1};
    onnx_value_info in = {.name = LOGITS_FROM_INPUT,
                          .kind = ONNX_VALUE_TENSOR,
                          .elem_type = OGI_INT64,
                          .rank = 1,
                          .dims = &dim};
    if (st == OGI_OK)
        st = onnx_builder_add_input(b, g, &in);
    const char *slice_in[4] = {hidden, LOGITS_FROM_INPUT, end, axis};
    onnx_node slice = {.name = onnx_builder_unique_name(b, "ogi_logits_slice"),
                       .op_type = "Slice",
                       .domain = "",
                       .n_inputs = 4,
                       .inputs = slice_in,
                       .n_outputs = 1,
                       .outputs = &sliced};
    if (st == OGI_OK)
        st = onnx_builder_insert_node(b, g, k, &slice, NULL);
    if (st == OGI_OK)
        st = onnx_builder_set_node_input(b, &g->nodes[k + 1], 0, sliced);
    *applied = st == OGI_OK;
    return st;
}
