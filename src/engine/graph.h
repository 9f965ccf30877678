/* The engine's graph IR: values (tensors with dtype and, where known, a
 * shape whose dims may be symbolic) and nodes in topological order. Built
 * from a decoded onnx_graph; subgraphs (If/Loop/Scan bodies) are graphs whose
 * free names are captured from the enclosing graph. */
#ifndef OGI_ENGINE_GRAPH_H
#define OGI_ENGINE_GRAPH_H

#include <stdbool.h>

#include "onnx/onnx.h"

struct op_kernel;

typedef enum value_kind {
    VALUE_INPUT,    /* graph input fed by the caller */
    VALUE_CONST,    /* initializer or folded constant */
    VALUE_NODE,     /* produced by a node */
    VALUE_CAPTURED, /* taken from the enclosing graph at run time */
} value_kind;

/* A shape as shape inference knows it: rank -1 when unknown; a dim is a
 * concrete value (>= 0), or -1 with an optional symbol name. */
typedef struct value_shape {
    int rank;
    int64_t dims[OGI_MAX_RANK];
    const char *symbols[OGI_MAX_RANK];
} value_shape;

/* The elements of a small integer or bool tensor (a shape, or a size or
 * index computed from shapes) as shape inference knows them: count -1 when
 * not tracked, else the tensor's element count (at most OGI_MAX_RANK).
 * Element i is the number value[i] when bit i of known is set; otherwise it
 * is unknown, and when bit i of dim is set it is a dim of some tensor (never
 * negative), named symbol[i] when that dim has a symbol. An unknown element
 * also records where it was computed: origin[i] - 1 is value * OGI_MAX_RANK
 * + element of the value that first held it (itself, or the value it was
 * copied from by Shape-chain ops that only move elements); 0 when not
 * recorded. Two elements with the same origin are the same number at run
 * time. */
typedef struct value_elems {
    int count;
    uint32_t known;
    uint32_t dim;
    int64_t value[OGI_MAX_RANK];
    const char *symbol[OGI_MAX_RANK];
    int32_t origin[OGI_MAX_RANK];
} value_elems;

/* An origin: element elem of value value (value_origin_make), and back. */
static inline int32_t value_origin_make(int value, int elem)
{
    return value * OGI_MAX_RANK + elem + 1;
}

static inline int value_origin_value(int32_t origin)
{
    return (origin - 1) / OGI_MAX_RANK;
}

static inline int value_origin_elem(int32_t origin)
{
    return (origin - 1) % OGI_MAX_RANK;
}

typedef struct graph_value {
    const char *name;
    value_kind kind;
    tensor_kind type; /* tensor, sequence or optional, as declared */
    ogi_dtype dtype;  /* OGI_DTYPE_UNDEFINED when unknown */
    value_shape shape;
    value_elems elems;          /* for node outputs; constants are read directly */
    const ogi_tensor *constant; /* VALUE_CONST: borrowed from the model or owned by the graph */
    int producer;               /* node index for VALUE_NODE, else -1 */
    int last_use;               /* last node index reading it, -1 if none */
    bool is_output;             /* a graph output: never released during a run */
    int capture_index;          /* VALUE_CAPTURED: value index in the parent graph */
} graph_value;

typedef struct graph_node {
    const onnx_node *proto; /* name, op_type, domain, attributes */
    int opset;              /* the model's opset version for the node's domain */
    int n_inputs;
    int *inputs; /* value index, -1 for an omitted optional input */
    int n_outputs;
    int *outputs; /* value index, -1 for an omitted output */
    const struct op_kernel *kernel;
    int n_subgraphs;
    struct graph **subgraphs;    /* in attribute order */
    const char **subgraph_names; /* attribute name of each subgraph */
    int n_release;
    int *release; /* values whose last reader is this node: freed after it runs */
} graph_node;

typedef struct graph {
    int n_values;
    graph_value *values;
    int n_nodes;
    graph_node *nodes; /* topological order */
    int n_inputs;
    int *inputs; /* value indices of the caller-fed inputs, in order */
    int n_outputs;
    int *outputs; /* value indices of the outputs, in order */
    struct graph *parent;
    const onnx_model *model; /* borrowed */
    const onnx_graph *proto; /* borrowed */
    int n_owned;
    ogi_tensor **owned; /* constants created at load by folding */
    /* per value: the weight pre-packed as panels for MatMul (engine/pack.c),
     * or NULL; all of them live in one anonymous mapping */
    const float **panels;
    void *panel_buffer;
    size_t panel_bytes;
    bool panels_stream;              /* more panels than the last-level cache holds */
    int n_folded;                    /* nodes removed by constant folding */
    int n_fused;                     /* patterns replaced by fused kernels */
    int n_merged;                    /* nodes merged into an equal earlier node */
    struct graph_build_state *build; /* only while building */
} graph;

typedef struct graph_options {
    bool fold_constants;
} graph_options;

/* Builds the IR of the model's main graph: resolves names, kernels and
 * subgraphs, sorts topologically (rejecting cycles), infers shapes and folds
 * constants. Errors name the node and input at fault. */
ogi_status graph_build(const onnx_model *model, const graph_options *options, graph **out);
void graph_free(graph *g);

/* Readers of each value (n_values + 1 entries, to free): the inputs of the
 * nodes not marked in skip (NULL: every node), subgraph captures and graph
 * outputs. NULL when out of memory. */
int *graph_reader_counts(const graph *g, const bool *skip);

/* Drops the nodes marked in removed (freeing their lists), keeps the others
 * in order, points each value at its producer's new index (-1 for the
 * dropped nodes' outputs) and replans value lifetimes. */
ogi_status graph_remove_nodes(graph *g, const bool *removed);

/* Node n's attribute `name` (the first of that name, as kernels read it),
 * or NULL. */
const onnx_attr *graph_node_attr(const graph_node *n, const char *name);
/* Its value when it is an int attribute, else def. */
int64_t graph_node_attr_int(const graph_node *n, const char *name, int64_t def);

/* Index of the value named name, or -1. */
int graph_find_value(const graph *g, const char *name);

/* Name of a node for messages: its name, or "#index (OpType)". */
const char *graph_node_label(const graph_node *n, char *buf, size_t size);

#endif
