/* A tiny protobuf writer for tests that build ONNX models byte by byte
 * (including malformed ones). */
#ifndef OGI_TEST_PB_WRITER_H
#define OGI_TEST_PB_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct pbw {
    uint8_t *data;
    size_t len, cap;
} pbw;

void pbw_free(pbw *b);
void pbw_varint(pbw *b, uint64_t v);
void pbw_key(pbw *b, uint32_t field, uint32_t wire);
void pbw_int(pbw *b, uint32_t field, uint64_t v);
/* A float field (wire type 5: four bytes, little-endian). */
void pbw_fixed32(pbw *b, uint32_t field, float v);
void pbw_bytes(pbw *b, uint32_t field, const void *data, size_t n);
void pbw_string(pbw *b, uint32_t field, const char *s);
/* Appends sub as a length-delimited field and frees sub. */
void pbw_message(pbw *b, uint32_t field, pbw *sub);

/* ONNX pieces. dims may be NULL for rank 0. */
void pbw_tensor_raw(pbw *b, uint32_t field, const char *name, int dtype, int rank,
                    const int64_t *dims, const void *raw, size_t raw_len);
void pbw_value_info(pbw *b, uint32_t field, const char *name, int dtype, int rank,
                    const int64_t *dims);
/* A node with up to 4 inputs and outputs ("" for omitted). */
void pbw_node(pbw *b, const char *op, const char *name, int n_in, const char *const *in, int n_out,
              const char *const *out);
/* The same node left open in n for attributes (pbw_attr_*); the caller then
 * appends it to the graph with pbw_message(graph, 1, n). */
void pbw_node_begin(pbw *n, const char *op, const char *name, int n_in, const char *const *in,
                    int n_out, const char *const *out);
/* Attributes of an open node: an int, a float, a list of ints, a string, a
 * graph (which it frees). */
void pbw_attr_int(pbw *n, const char *name, int64_t v);
void pbw_attr_float(pbw *n, const char *name, float v);
void pbw_attr_ints(pbw *n, const char *name, int count, const int64_t *v);
void pbw_attr_string(pbw *n, const char *name, const char *s);
void pbw_attr_graph(pbw *n, const char *name, pbw *sub);
/* ModelProto around a finished GraphProto. */
void pbw_model(pbw *out, int64_t ir_version, int64_t opset, pbw *graph);
/* One more opset import of a finished ModelProto (e.g. "ai.ogi", 1). */
void pbw_opset_import(pbw *model, const char *domain, int64_t version);

#endif
