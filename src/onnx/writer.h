/* The ONNX writer and builder.
 *
 * The writer serializes a decoded onnx_model (onnx.h) back to a ModelProto:
 * a file, optionally with large tensors in an external data file beside it,
 * or a malloc'ed buffer. Tensor data is always written as raw_data.
 *
 * The builder owns an editable onnx_model: start empty or from a copy of a
 * loaded model, add and remove nodes, attributes, initializers and graph
 * inputs/outputs, then hand onnx_builder_model() to the writer. Every string
 * and array lives in the builder's pool and is freed with it.
 *
 * Only what the reader decodes is written: doc strings, metadata, sparse
 * initializers, type-proto attributes, function attribute defaults and the
 * element types of non-tensor values (sequence, map, optional) are lost. */
#ifndef OGI_ONNX_WRITER_H
#define OGI_ONNX_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx/onnx.h"

/* ---- writing ---------------------------------------------------------------- */

typedef struct onnx_write_options {
    /* Tensors of more than external_threshold bytes go to one external data
     * file in the model's directory (offsets aligned to 64 bytes), the rest
     * inline. Only onnx_model_write can do this. */
    bool external_data;        /* default false */
    size_t external_threshold; /* default 1024 */
    const char *external_name; /* file name (no '/'); NULL: "<model file name>.data" */
} onnx_write_options;

onnx_write_options onnx_write_default_options(void);

/* Writes m to path (opts may be NULL for the defaults). The files are
 * written under temporary names and renamed at the end, so a model can be
 * written over the file it was loaded from. Fails when the model would pass
 * protobuf's 2 GiB message limit: use external data then. */
ogi_status onnx_model_write(const onnx_model *m, const char *path, const onnx_write_options *opts);

/* Serializes m into a new malloc'ed buffer (*data, *size; free with free()).
 * All data inline: opts (may be NULL) must not ask for external data. */
ogi_status onnx_model_write_buffer(const onnx_model *m, const onnx_write_options *opts, void **data,
                                   size_t *size);

/* ---- looking things up in a graph -------------------------------------------- */

/* Index of the node of g that outputs `value`, or -1. */
int onnx_graph_producer(const onnx_graph *g, const char *value);
/* Index of the node named `name`, or -1. */
int onnx_graph_find_node(const onnx_graph *g, const char *name);
/* Index of the initializer named `name`, or -1. */
int onnx_graph_find_initializer(const onnx_graph *g, const char *name);
/* The attribute of n named `name`, or NULL. */
onnx_attr *onnx_node_find_attr(const onnx_node *n, const char *name);

/* ---- building and editing ------------------------------------------------------ */

typedef struct onnx_builder onnx_builder;

/* An empty model: ir_version 10, producer "ogi", one empty graph "main",
 * no opset imports (add them with onnx_builder_set_opset). */
ogi_status onnx_builder_create(onnx_builder **out);

/* A deep copy of m to edit. Tensor data is borrowed, not copied: m must
 * outlive the builder (or at least its last write). */
ogi_status onnx_builder_from_model(const onnx_model *m, onnx_builder **out);

void onnx_builder_free(onnx_builder *b);

/* The model being built (borrowed). Its fields may be read and scalar fields
 * (ir_version, names, a node's inputs[i]) set directly, with strings from
 * onnx_builder_string; arrays grow only through the builder's functions.
 * A pointer into an array (a node, an attribute) stays valid until the next
 * call that adds to or removes from that array. */
onnx_model *onnx_builder_model(onnx_builder *b);
/* The main graph. Subgraphs (a node's attrs[k].g) may be passed wherever a
 * function below takes a graph. */
onnx_graph *onnx_builder_graph(onnx_builder *b);

/* A copy of s owned by the builder; NULL when out of memory. */
const char *onnx_builder_string(onnx_builder *b, const char *s);

/* "<prefix>_<n>", a name used by no value and no node in the model
 * (subgraphs included) and not returned before. Names are collected at the
 * first call; later ones are seen when they come through the builder's
 * functions, not when written straight into the structs. NULL when out of
 * memory. */
const char *onnx_builder_unique_name(onnx_builder *b, const char *prefix);

/* Imports domain at version, replacing an existing import of the domain
 * ("" and "ai.onnx" are the same domain). */
ogi_status onnx_builder_set_opset(onnx_builder *b, const char *domain, int64_t version);
ogi_status onnx_builder_set_producer(onnx_builder *b, const char *name, const char *version);

/* Inserts a deep copy of `node` (attributes, their tensor data and
 * subgraphs included) at index 0..g->n_nodes (g->n_nodes appends). NULL
 * name or domain mean "". *out (may be NULL) receives the new node. */
ogi_status onnx_builder_insert_node(onnx_builder *b, onnx_graph *g, int index,
                                    const onnx_node *node, onnx_node **out);
/* Appends; the same as inserting at g->n_nodes. */
ogi_status onnx_builder_add_node(onnx_builder *b, onnx_graph *g, const onnx_node *node,
                                 onnx_node **out);
/* A new node with no attributes, appended: op_type in domain ("" for ONNX). */
ogi_status onnx_builder_add_simple_node(onnx_builder *b, onnx_graph *g, const char *op_type,
                                        const char *domain, int n_in, const char *const *inputs,
                                        int n_out, const char *const *outputs, onnx_node **out);
/* Removes the node at index; later nodes move down by one. */
ogi_status onnx_builder_remove_node(onnx_builder *b, onnx_graph *g, int index);

/* Sets input / output i of n to name ("" omits an optional input), growing
 * the list with "" entries when i is past its end. */
ogi_status onnx_builder_set_node_input(onnx_builder *b, onnx_node *n, int i, const char *name);
ogi_status onnx_builder_set_node_output(onnx_builder *b, onnx_node *n, int i, const char *name);

/* Sets an attribute (a deep copy of a; tensor data copied), replacing one of
 * the same name. */
ogi_status onnx_builder_set_attr(onnx_builder *b, onnx_node *n, const onnx_attr *a);
ogi_status onnx_builder_set_attr_int(onnx_builder *b, onnx_node *n, const char *name, int64_t v);
ogi_status onnx_builder_set_attr_float(onnx_builder *b, onnx_node *n, const char *name, float v);
ogi_status onnx_builder_set_attr_string(onnx_builder *b, onnx_node *n, const char *name,
                                        const char *v);
ogi_status onnx_builder_set_attr_ints(onnx_builder *b, onnx_node *n, const char *name,
                                      const int64_t *v, int64_t count);
ogi_status onnx_builder_set_attr_floats(onnx_builder *b, onnx_node *n, const char *name,
                                        const float *v, int64_t count);
ogi_status onnx_builder_set_attr_tensor(onnx_builder *b, onnx_node *n, const char *name,
                                        const ogi_tensor *t);
ogi_status onnx_builder_set_attr_graph(onnx_builder *b, onnx_node *n, const char *name,
                                       const onnx_graph *g);
/* Returns whether n had the attribute. */
bool onnx_builder_remove_attr(onnx_builder *b, onnx_node *n, const char *name);

/* Adds initializer `name` holding a copy of t's data, replacing one of the
 * same name. The _ref variant borrows t's data instead: it must outlive the
 * builder's last write. */
ogi_status onnx_builder_add_initializer(onnx_builder *b, onnx_graph *g, const char *name,
                                        const ogi_tensor *t);
ogi_status onnx_builder_add_initializer_ref(onnx_builder *b, onnx_graph *g, const char *name,
                                            const ogi_tensor *t);
bool onnx_builder_remove_initializer(onnx_builder *b, onnx_graph *g, const char *name);

/* Appends a deep copy of v to the graph's inputs / outputs / value_info,
 * replacing an entry of the same name in that list. A tensor value:
 *     onnx_dim dims[] = {{1, NULL}, {-1, "seq"}};
 *     onnx_value_info v = {"x", ONNX_VALUE_TENSOR, OGI_FLOAT32, 2, dims}; */
ogi_status onnx_builder_add_input(onnx_builder *b, onnx_graph *g, const onnx_value_info *v);
ogi_status onnx_builder_add_output(onnx_builder *b, onnx_graph *g, const onnx_value_info *v);
ogi_status onnx_builder_add_value_info(onnx_builder *b, onnx_graph *g, const onnx_value_info *v);
/* Each returns whether the name was in the list. */
bool onnx_builder_remove_input(onnx_builder *b, onnx_graph *g, const char *name);
bool onnx_builder_remove_output(onnx_builder *b, onnx_graph *g, const char *name);
bool onnx_builder_remove_value_info(onnx_builder *b, onnx_graph *g, const char *name);

/* Appends a deep copy of a model-local function. */
ogi_status onnx_builder_add_function(onnx_builder *b, const onnx_function *f);

/* Makes every node input named old_name (in g and, as captured values, in
 * its subgraphs) read new_name instead. Graph outputs keep their names.
 * *count (may be NULL) receives the number of inputs changed. */
ogi_status onnx_builder_replace_uses(onnx_builder *b, onnx_graph *g, const char *old_name,
                                     const char *new_name, int *count);

/* Orders g's nodes topologically, keeping the existing order where it is
 * already valid. Fails on a cycle. */
ogi_status onnx_builder_sort(onnx_builder *b, onnx_graph *g);

/* Sorts g, then removes the nodes whose outputs reach no graph output and
 * the initializers nothing reads (graph inputs are kept). */
ogi_status onnx_builder_prune(onnx_builder *b, onnx_graph *g);

#endif
