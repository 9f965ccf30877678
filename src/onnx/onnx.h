/* The ONNX reader: protobuf wire format decoded directly over an mmap of the
 * file. Tensor data is never copied (raw_data and external data point into
 * the mappings); everything else lives in one pool freed with the model. */
#ifndef OGI_ONNX_H
#define OGI_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum onnx_attr_type {
    ONNX_ATTR_UNDEFINED = 0,
    ONNX_ATTR_FLOAT = 1,
    ONNX_ATTR_INT = 2,
    ONNX_ATTR_STRING = 3,
    ONNX_ATTR_TENSOR = 4,
    ONNX_ATTR_GRAPH = 5,
    ONNX_ATTR_FLOATS = 6,
    ONNX_ATTR_INTS = 7,
    ONNX_ATTR_STRINGS = 8,
    ONNX_ATTR_TENSORS = 9,
    ONNX_ATTR_GRAPHS = 10,
    ONNX_ATTR_SPARSE_TENSOR = 11,
    ONNX_ATTR_SPARSE_TENSORS = 12,
    ONNX_ATTR_TYPE_PROTO = 13,
    ONNX_ATTR_TYPE_PROTOS = 14,
} onnx_attr_type;

struct onnx_graph;

typedef struct onnx_tensor {
    const char *name;              /* "" when unnamed */
    ogi_tensor tensor;             /* storage TENSOR_BORROWED: mmap or model pool */
    bool external;                 /* data came from an external-data file */
    const char *external_location; /* for external data: file, offset, length */
    uint64_t external_offset, external_length;
} onnx_tensor;

typedef struct onnx_attr {
    const char *name;
    const char *ref_attr_name; /* inside functions; NULL otherwise */
    onnx_attr_type type;
    float f;
    int64_t i;
    const char *s; /* NUL-terminated copy; s_len bytes (may hold NULs) */
    size_t s_len;
    onnx_tensor *t;
    struct onnx_graph *g;
    int64_t n; /* element count of the list below that matches type */
    float *floats;
    int64_t *ints;
    const char **strings;
    onnx_tensor *tensors;
    struct onnx_graph **graphs;
} onnx_attr;

typedef struct onnx_node {
    const char *name; /* "" when unnamed */
    const char *op_type;
    const char *domain; /* "" for the default ONNX domain */
    int n_inputs;
    const char **inputs; /* "" marks an omitted optional input */
    int n_outputs;
    const char **outputs;
    int n_attrs;
    onnx_attr *attrs;
} onnx_node;

typedef enum onnx_value_kind {
    ONNX_VALUE_UNKNOWN = 0,
    ONNX_VALUE_TENSOR,
    ONNX_VALUE_SEQUENCE,
    ONNX_VALUE_MAP,
    ONNX_VALUE_OPTIONAL,
    ONNX_VALUE_SPARSE_TENSOR,
} onnx_value_kind;

typedef struct onnx_dim {
    int64_t value;     /* -1 when unknown or symbolic */
    const char *param; /* symbolic name, or NULL */
} onnx_dim;

typedef struct onnx_value_info {
    const char *name;
    onnx_value_kind kind;
    ogi_dtype elem_type; /* for tensors */
    int rank;            /* -1 when the shape is not given */
    onnx_dim *dims;
} onnx_value_info;

typedef struct onnx_graph {
    const char *name;
    int n_nodes;
    onnx_node *nodes;
    int n_initializers;
    onnx_tensor *initializers;
    int n_sparse_initializers;
    int n_inputs;
    onnx_value_info *inputs;
    int n_outputs;
    onnx_value_info *outputs;
    int n_value_infos;
    onnx_value_info *value_infos;
} onnx_graph;

typedef struct onnx_opset {
    const char *domain;
    int64_t version;
} onnx_opset;

typedef struct onnx_function {
    const char *name;
    const char *domain;
    int n_inputs;
    const char **inputs;
    int n_outputs;
    const char **outputs;
    int n_attr_names;
    const char **attr_names;
    int n_nodes;
    onnx_node *nodes;
    int n_opsets;
    onnx_opset *opsets;
} onnx_function;

typedef struct onnx_model onnx_model;

struct onnx_model {
    int64_t ir_version;
    const char *producer_name;
    const char *producer_version;
    int n_opsets;
    onnx_opset *opsets;
    onnx_graph *graph;
    int n_functions;
    onnx_function *functions;
    const char *path; /* file the model came from ("<memory>" for buffers) */
    struct onnx_private *priv;
};

/* Maps and decodes a model file. External data is resolved relative to the
 * file's directory and must stay inside it. */
ogi_status onnx_model_load(const char *path, onnx_model **out);

/* Like onnx_model_load, but external data is not opened: such tensors keep
 * their location, offset and length and have data NULL (for tools that
 * write the external file, e.g. synthesizing stripped weights). */
ogi_status onnx_model_load_structure(const char *path, onnx_model **out);

/* Decodes a model held in memory (borrowed: must outlive the model).
 * base_dir (may be NULL) is where external data is looked for. */
ogi_status onnx_model_parse(const void *data, size_t size, const char *base_dir, onnx_model **out);

void onnx_model_free(onnx_model *model);

/* Says that tensor data of model's (size bytes at data) will not be read
 * for a while, e.g. after it was copied into another layout: where it lies
 * in one of the model's file mappings, its whole pages leave the process's
 * resident memory (reading them again maps them again from the file).
 * Data elsewhere (a model parsed from a caller's buffer) is left alone. */
void onnx_model_release_data(const onnx_model *model, const void *data, size_t size);

/* Opset version the model imports for domain ("" and "ai.onnx" are the same
 * domain); 0 when not imported. */
int64_t onnx_model_opset(const onnx_model *model, const char *domain);

/* Decodes one serialized TensorProto into a new owned tensor (data copied).
 * *name_out (may be NULL) gets a malloc'ed name or NULL. */
ogi_status onnx_tensor_parse(const void *data, size_t size, ogi_tensor **out, char **name_out);

/* Like onnx_tensor_parse for a value of the given kind: a TensorProto, a
 * SequenceProto or an OptionalProto (the bytes alone do not tell them apart).
 * Items are deep copies owned by *out. Maps and sparse tensors are refused. */
ogi_status onnx_value_parse(const void *data, size_t size, tensor_kind kind, ogi_tensor **out,
                            char **name_out);

#endif
