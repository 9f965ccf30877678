/* The kernel interface. A kernel reads its inputs, computes the output
 * shapes, asks the executor for output buffers with op_alloc(), and fills
 * them. Kernels live in src/ops/, one op family per file, each file exporting
 * a table of op_kernel entries that src/ops/registry.c lists. */
#ifndef OGI_ENGINE_OP_H
#define OGI_ENGINE_OP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "engine/graph.h"

struct exec_frame;

typedef struct op_ctx {
    const graph_node *node;
    int opset; /* the model's opset version for the node's domain */
    int n_in;
    const ogi_tensor *const *in; /* in[i] == NULL: optional input omitted */
    int n_out;
    ogi_tensor **out;     /* always non-NULL; see op_output_used() */
    const bool *out_used; /* false: the graph omitted or never reads output i */
    threadpool *pool;
    struct exec_frame *frame; /* for op_alloc and subgraphs; owned by the executor */
    int attention;            /* ogi_attention_precision of the session */
} op_ctx;

typedef ogi_status (*op_fn)(op_ctx *c);

typedef struct op_kernel {
    const char *domain; /* "" for ONNX, "ai.onnx.ml", "com.microsoft", ... */
    const char *op_type;
    int since_version; /* the kernel serves opsets >= since_version ... */
    op_fn run;         /* ... up to the next entry of the same op */
} op_kernel;

/* Finds the kernel for (domain, op_type) at opset version `opset`: the entry
 * with the greatest since_version <= opset. NULL when none. */
const op_kernel *op_find_kernel(const char *domain, const char *op_type, int opset);

/* Whether kernel k handles OGI_STRING inputs (a short list in registry.c);
 * the executor never passes a string tensor to any other kernel. */
bool op_kernel_takes_strings(const op_kernel *k);

/* Whether kernel k handles sequence and optional inputs (a short list in
 * registry.c); the executor never passes one to any other kernel. */
bool op_kernel_takes_sequences(const op_kernel *k);

/* Whether kernel k draws random numbers (a list in registry.c): its nodes
 * are never folded nor merged. */
bool op_kernel_is_random(const op_kernel *k);

/* Whether kernel k may update an input's buffer in place (op_alloc_inplace:
 * a KV cache or recurrent state): its nodes are never merged. */
bool op_kernel_updates_in_place(const op_kernel *k);

/* ---- inputs and outputs --------------------------------------------------- */

static inline bool op_has_input(const op_ctx *c, int i)
{
    return i < c->n_in && c->in[i] != NULL;
}

static inline bool op_output_used(const op_ctx *c, int i)
{
    return i < c->n_out && c->out_used[i];
}

/* The panels of input i when it is a weight the session pre-packed at load
 * (engine/pack.c; see ops/gemm.h for the layout), else NULL: the panels of
 * the weight as a MatMul's B, or, for a MatMulTransposeB's W [N, K] and a
 * Gather's table, of its transpose. */
const float *op_input_panels(const op_ctx *c, int i);
/* Whether the session's panels together exceed the last-level cache (read
 * from memory at every step). */
bool op_panels_streamed(const op_ctx *c);

/* Shapes out[i] and gives it an uninitialised buffer. */
ogi_status op_alloc(op_ctx *c, int i, ogi_dtype dtype, int rank, const int64_t *dims);

/* Gives out[i] an owned string tensor of this shape, every element empty,
 * to fill with tensor_string_set. Fails when the caller bound out[i]. */
ogi_status op_alloc_strings(op_ctx *c, int i, int rank, const int64_t *dims);

/* Makes out[i] an owned, empty sequence or optional (room for cap items) to
 * fill with tensor_add_item. Fails when the caller bound out[i]. */
ogi_status op_alloc_container(op_ctx *c, int i, tensor_kind kind, ogi_dtype elem, int64_t cap);

/* Shapes out[i] like t and copies t's data into it (string elements with
 * their bytes). */
ogi_status op_alloc_copy(op_ctx *c, int i, const ogi_tensor *t);

/* out[i] = the bytes of input j under a new dtype/shape of the same size, for
 * ops that only reinterpret (Reshape, Squeeze, Identity, ...). Shares input
 * j's buffer when that is safe — j is not read after this node, or it is a
 * constant or graph input that outlives the run — and copies otherwise. The
 * kernel must not write into out[i]. */
ogi_status op_alloc_view(op_ctx *c, int i, int j, ogi_dtype dtype, int rank, const int64_t *dims);

/* Like op_alloc_view, for a contiguous part of input j: out[i] = the bytes
 * of input j from byte_offset on, under dtype/shape (which may be smaller
 * than the input). Shares the buffer when safe (as op_alloc_view), copies
 * otherwise. */
ogi_status op_alloc_view_at(op_ctx *c, int i, int j, size_t byte_offset, ogi_dtype dtype, int rank,
                            const int64_t *dims);

/* out[i] = a copy of input j that the kernel then updates in place (a cache
 * written by TensorScatter). Takes over j's buffer when nothing reads j after
 * this node, and does nothing when the caller bound out[i] to j's own buffer;
 * copies otherwise. */
ogi_status op_alloc_inplace(op_ctx *c, int i, int j);

/* Records "node 'name' (OpType): <message>" and returns status. */
ogi_status op_error(const op_ctx *c, ogi_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks that input i is present (and has dtype), with a uniform message. */
ogi_status op_require_input(const op_ctx *c, int i);
ogi_status op_require_dtype(const op_ctx *c, int i, ogi_dtype dtype);

/* ---- attributes ----------------------------------------------------------- */

const onnx_attr *op_attr(const op_ctx *c, const char *name);
int64_t op_attr_int(const op_ctx *c, const char *name, int64_t def);
float op_attr_float(const op_ctx *c, const char *name, float def);
/* NUL-terminated; def when absent. */
const char *op_attr_string(const op_ctx *c, const char *name, const char *def);
/* Borrowed list; returns false (and *n = 0) when absent. */
bool op_attr_ints(const op_ctx *c, const char *name, const int64_t **vals, int64_t *n);
bool op_attr_floats(const op_ctx *c, const char *name, const float **vals, int64_t *n);
/* Reads ints attribute `name` of exactly n values, each >= min (kernel
 * shapes, strides, dilations); fills vals with def when it is absent. */
ogi_status op_attr_ints_exact(const op_ctx *c, const char *name, int n, int64_t def, int64_t min,
                              int64_t *vals);

/* ---- reading small index tensors (shapes, axes, indices) ------------------ */

/* Copies an int32/int64 tensor of at most max elements into vals. */
ogi_status op_read_ints(const op_ctx *c, int i, int64_t *vals, int64_t max, int64_t *n);
/* Reads the 1-D int list that old opsets give as attribute `name` and newer
 * ones as input `input` (from_input). *present is false when neither is
 * given. */
ogi_status op_read_int_list(const op_ctx *c, bool from_input, int input, const char *name,
                            int64_t *vals, int64_t max, int64_t *n, bool *present);
/* Reads a scalar (or 1-element) numeric input as double / int64. */
ogi_status op_read_scalar_f64(const op_ctx *c, int i, double *v);
ogi_status op_read_scalar_i64(const op_ctx *c, int i, int64_t *v);

/* Output 0 as a Shape node gives it for a value of shape dims: the int64
 * list of dims [start, end), from its start and end attributes (opset 15
 * on; all dims before), negative ones counted from the end, clamped to
 * [0, rank]; nothing when end is below start. */
ogi_status op_alloc_shape(op_ctx *c, int rank, const int64_t *dims);

/* Normalises axis into [0, rank) (negative counts from the end). */
ogi_status op_normalize_axis(const op_ctx *c, int64_t axis, int rank, int *out);

/* ---- numpy-style broadcasting --------------------------------------------- */

#define OP_BCAST_MAX_INPUTS 8

/* The output shape of broadcasting n inputs, and for each input its strides
 * in elements over the output's dims (0 where the input is broadcast). */
typedef struct op_bcast {
    int rank;
    int64_t dims[OGI_MAX_RANK];
    int n;
    int64_t strides[OP_BCAST_MAX_INPUTS][OGI_MAX_RANK];
    int64_t inner; /* dims[rank-1], or 1 for rank 0 */
    int64_t rows;  /* numel / inner */
} op_bcast;

ogi_status op_bcast_init(const op_ctx *c, op_bcast *b, int n, const ogi_tensor *const *ts);

/* Element offset of each input at the start of output row `row` (the output
 * seen as rows x inner); within a row input k advances by
 * b->strides[k][rank-1] per element. */
void op_bcast_row(const op_bcast *b, int64_t row, int64_t *offsets);

/* ---- subgraphs (If, Loop, Scan) ------------------------------------------- */

/* Runs subgraph g (one of c->node's) with the given inputs bound to its
 * inputs in order; outputs[i] receive new owned tensors (free with
 * ogi_tensor_free). Captured outer values come from the current frame. */
ogi_status op_run_subgraph(op_ctx *c, const graph *g, int n_in, const ogi_tensor *const *inputs,
                           int n_out, ogi_tensor **outputs);

/* The subgraph held by attribute `name`, or NULL. */
const graph *op_subgraph(const op_ctx *c, const char *name);

#endif
