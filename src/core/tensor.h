/* The tensor struct behind the public ogi_tensor handle, and its helpers. */
#ifndef OGI_CORE_TENSOR_H
#define OGI_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ogi.h"

/* Who releases `data`. */
typedef enum tensor_storage {
    TENSOR_BORROWED = 0, /* a view: mmap'd weights, caller data */
    TENSOR_OWNED = 1,    /* malloc'ed; freed with the tensor */
    TENSOR_ARENA = 2,    /* from a run's arena; released by the executor */
} tensor_storage;

/* What a value is: a tensor, or a container of owned tensors. */
typedef enum tensor_kind {
    TENSOR_KIND_TENSOR = 0,
    TENSOR_KIND_SEQUENCE = 1, /* items[0..n_items) in order */
    TENSOR_KIND_OPTIONAL = 2, /* n_items 0 (none) or 1 (which may be a sequence) */
} tensor_kind;

struct ogi_tensor {
    tensor_kind kind;
    ogi_dtype dtype;
    int rank;
    int64_t dims[OGI_MAX_RANK];
    void *data;
    size_t nbytes;
    tensor_storage storage;
    /* sequence / optional only: element values, each heap-allocated and
     * owned by this value when storage is TENSOR_OWNED (data stays NULL,
     * nbytes 0, dtype is the element dtype when known) */
    ogi_tensor **items;
    int64_t n_items;
};

/* Number of elements of a shape; -1 if a dim is negative, or if it
 * overflows int64 with no dim 0 (0 when a dim is 0). rank 0 gives 1. */
int64_t tensor_shape_numel(int rank, const int64_t *dims);

/* Bytes to hold numel elements of dtype (sub-byte types rounded up); returns
 * false on overflow or an unsized dtype (string). */
bool tensor_bytes_for(ogi_dtype dtype, int64_t numel, size_t *bytes);

static inline int64_t tensor_numel(const ogi_tensor *t)
{
    return tensor_shape_numel(t->rank, t->dims);
}

/* Sets dtype and shape of t (no allocation). Fails on rank > OGI_MAX_RANK,
 * negative dims or overflow. */
ogi_status tensor_set_shape(ogi_tensor *t, ogi_dtype dtype, int rank, const int64_t *dims);

/* Gives t (shape already set) an owned zeroed buffer of the right size. */
ogi_status tensor_alloc_owned(ogi_tensor *t);

/* Releases an owned buffer (and, for a string tensor, the bytes of each
 * element) and resets t to an empty borrowed tensor. */
void tensor_release(ogi_tensor *t);

/* ---- string tensors ----
 * dtype OGI_STRING has no element size (ogi_dtype_bits is 0), so
 * tensor_set_shape, tensor_bytes_for and everything built on them (op_alloc,
 * views, byte copies) refuse it: a byte copy of the ogi_string array would
 * share element bytes between tensors. Only the functions below make string
 * tensors, and only tensor_release, tensor_clone and kernels that declare
 * string support read them. */

/* Sets t to a string tensor of this shape whose buffer is not yet given:
 * nbytes is numel * sizeof(ogi_string). */
ogi_status tensor_set_string_shape(ogi_tensor *t, int rank, const int64_t *dims);

/* Gives t an owned string tensor of this shape, every element empty. */
ogi_status tensor_alloc_strings(ogi_tensor *t, int rank, const int64_t *dims);

/* Copies len bytes into element i of an owned string tensor (replacing what
 * was there). */
ogi_status tensor_string_set(ogi_tensor *t, int64_t i, const char *bytes, size_t len);

/* Whether two string elements hold the same bytes. */
bool tensor_string_equal(const ogi_string *a, const ogi_string *b);

/* ---- sequences and optionals ----
 * Always heap-owned (TENSOR_OWNED, never a view or an arena block). */

/* Sets t (released) to an owned empty sequence or optional whose items
 * array has room for cap entries; items are appended with tensor_add_item. */
ogi_status tensor_init_container(ogi_tensor *t, tensor_kind kind, ogi_dtype elem, int64_t cap);

/* Appends item (a heap value, ownership taken even on failure) to the
 * container t. */
ogi_status tensor_add_item(ogi_tensor *t, ogi_tensor *item);

/* Deep copy into a new owned tensor (string elements and sequence or
 * optional items included). */
ogi_status tensor_clone(const ogi_tensor *src, ogi_tensor **out);

/* Formats "[2,3,4]" into buf. */
const char *tensor_shape_str(int rank, const int64_t *dims, char *buf, size_t size);

/* Row-major strides in elements. */
void tensor_strides(int rank, const int64_t *dims, int64_t *strides);

bool tensor_same_shape(const ogi_tensor *a, const ogi_tensor *b);

/* Elements [off, off + n) of a float, integer or bool tensor as doubles,
 * and back (float16/bfloat16 rounded to nearest even): kernels that compute
 * in double precision load and store whole runs with these. */
void tensor_load_f64(const ogi_tensor *t, int64_t off, int64_t n, double *dst);
void tensor_store_f64(ogi_tensor *t, int64_t off, int64_t n, const double *src);

/* A malloc'ed float32 copy of a float16 tensor (NULL for NULL; on failure
 * NULL and *oom set), for kernels that compute float16 in float32. */
float *tensor_f16_widen(const ogi_tensor *x, bool *oom);
/* Rounds n float32 values into a float16 buffer. */
void tensor_f16_narrow(const float *f, int64_t n, void *out);

#endif
