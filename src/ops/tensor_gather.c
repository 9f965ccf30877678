/* TensorGather (ai.ogi, version 1): reads `length` consecutive positions of
 * a KV cache along its sequence axis, starting at read_indices[b] for each
 * batch entry b (0 when the input is omitted) — the inverse of TensorScatter.
 * mode "linear" requires the segment to fit; "circular" wraps the sequence
 * index modulo the cache length. The spec is docs/ops/TensorGather.md. */
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

/* The cache seen as [outer, max_seq, inner] around the sequence axis and the
 * output as [outer, length, inner]; outer runs over the dims before the
 * axis, batch first. */
typedef struct gather_layout {
    int axis;
    int64_t batch, outer, max_seq, length, inner;
    int bits; /* per element */
    bool circular;
} gather_layout;

static ogi_status gather_attrs(const op_ctx *c, gather_layout *l)
{
    const ogi_tensor *data = c->in[0];
    if (data->rank < 2)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 0 (data): expected rank >= 2 (batch and sequence), got %d",
                        data->rank);
    l->bits = ogi_dtype_bits(data->dtype);
    if (l->bits == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "data type %s is not supported",
                        ogi_dtype_name(data->dtype));
    const char *mode = op_attr_string(c, "mode", "linear");
    if (strcmp(mode, "linear") != 0 && strcmp(mode, "circular") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute mode='%s' is not linear or circular",
                        mode);
    l->circular = strcmp(mode, "circular") == 0;
    ogi_status st = op_normalize_axis(c, op_attr_int(c, "axis", -2), data->rank, &l->axis);
    if (st != OGI_OK)
        return st;
    if (l->axis == 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute axis must not be the batch axis 0");
    return OGI_OK;
}

/* length: an int64 scalar (or one-element 1-D tensor) in [0, max_seq]. */
static ogi_status gather_length(const op_ctx *c, gather_layout *l)
{
    if (!op_has_input(c, 1))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 1 (length) is required");
    const ogi_tensor *t = c->in[1];
    if (t->dtype != OGI_INT64)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 1 (length): expected int64, got %s",
                        ogi_dtype_name(t->dtype));
    if (t->rank > 1 || tensor_numel(t) != 1) {
        char s[128];
        return op_error(c, OGI_ERR_RUNTIME, "input 1 (length): expected a scalar, got shape %s",
                        tensor_shape_str(t->rank, t->dims, s, sizeof(s)));
    }
    l->length = ((const int64_t *)t->data)[0];
    if (l->length < 0)
        return op_error(c, OGI_ERR_RUNTIME, "length %lld is negative", (long long)l->length);
    if (l->length > l->max_seq)
        return op_error(c, OGI_ERR_RUNTIME, "length %lld exceeds the sequence axis %d of size %lld",
                        (long long)l->length, l->axis, (long long)l->max_seq);
    return OGI_OK;
}

static ogi_status gather_layout_init(const op_ctx *c, gather_layout *l)
{
    ogi_status st = gather_attrs(c, l);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *data = c->in[0];
    l->batch = data->dims[0];
    l->max_seq = data->dims[l->axis];
    l->outer = 1;
    l->inner = 1;
    for (int d = 0; d < data->rank; d++) {
        if (d < l->axis)
            l->outer *= data->dims[d];
        else if (d > l->axis)
            l->inner *= data->dims[d];
    }
    return gather_length(c, l);
}

/* Reads read_indices (int64, shape [batch]) into idx, checking each start. */
static ogi_status gather_read_indices(const op_ctx *c, const gather_layout *l, int64_t *idx)
{
    if (!op_has_input(c, 2)) {
        memset(idx, 0, sizeof(*idx) * (size_t)l->batch);
        return OGI_OK;
    }
    const ogi_tensor *r = c->in[2];
    if (r->dtype != OGI_INT64)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 2 (read_indices): expected int64, got %s",
                        ogi_dtype_name(r->dtype));
    if (r->rank != 1 || r->dims[0] != l->batch) {
        char s[128];
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 2 (read_indices): expected shape [%lld] (the batch size), got %s",
                        (long long)l->batch, tensor_shape_str(r->rank, r->dims, s, sizeof(s)));
    }
    for (int64_t b = 0; b < l->batch; b++) {
        idx[b] = ((const int64_t *)r->data)[b];
        if (idx[b] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "read_indices[%lld] = %lld is negative",
                            (long long)b, (long long)idx[b]);
        if (!l->circular && idx[b] > l->max_seq - l->length)
            return op_error(c, OGI_ERR_RUNTIME,
                            "read_indices[%lld] = %lld plus length %lld exceeds the sequence "
                            "length %lld (mode linear)",
                            (long long)b, (long long)idx[b], (long long)l->length,
                            (long long)l->max_seq);
    }
    return OGI_OK;
}

/* Whether the gathered segment is one contiguous run of data's elements,
 * i.e. the output could be a view of data at *elem_offset: true when it is
 * empty, or when no batch entry wraps and either a single row precedes the
 * axis (outer == 1: batch 1, axis the outermost non-batch dim) or the
 * segment is the whole axis. starts[b] must already be checked (>= 0; in
 * linear mode start + length <= max_seq). */
bool tensor_gather_is_contiguous(int rank, const int64_t *dims, int axis, int64_t length,
                                 const int64_t *starts, bool circular, int64_t *elem_offset)
{
    int64_t outer = 1, inner = 1, max_seq = dims[axis];
    for (int d = 0; d < rank; d++) {
        if (d < axis)
            outer *= dims[d];
        else if (d > axis)
            inner *= dims[d];
    }
    *elem_offset = 0;
    if (outer == 0 || inner == 0 || length == 0)
        return true;
    int64_t first = 0;
    for (int64_t b = 0; b < dims[0]; b++) {
        int64_t s = circular ? starts[b] % max_seq : starts[b];
        if (s > max_seq - length)
            return false; /* wraps around the end of the axis */
        if (b == 0)
            first = s;
    }
    if (outer == 1) {
        *elem_offset = first * inner;
        return true;
    }
    return length == max_seq; /* then every start is 0: the whole cache */
}

/* Element i of a packed sub-byte buffer (low bits first) copied to j of dst. */
static void gather_copy_bits(const uint8_t *src, int64_t i, uint8_t *dst, int64_t j, int bits)
{
    int per = 8 / bits, mask = (1 << bits) - 1;
    int v = (src[i / per] >> ((i % per) * bits)) & mask;
    int shift = (int)(j % per) * bits;
    dst[j / per] = (uint8_t)((dst[j / per] & ~(mask << shift)) | (v << shift));
}

/* The reference path: element by element, for every element size. */
static void gather_elements(const gather_layout *l, const int64_t *idx, const void *data, void *out)
{
    const int64_t per_batch = l->outer / l->batch;
    const size_t bytes = (size_t)l->bits / 8;
    for (int64_t o = 0; o < l->outer; o++) {
        const int64_t start = l->circular ? idx[o / per_batch] % l->max_seq : idx[o / per_batch];
        for (int64_t s = 0; s < l->length; s++) {
            int64_t pos = start + s;
            if (pos >= l->max_seq) /* only in circular mode */
                pos -= l->max_seq;
            for (int64_t e = 0; e < l->inner; e++) {
                int64_t from = (o * l->max_seq + pos) * l->inner + e;
                int64_t to = (o * l->length + s) * l->inner + e;
                if (l->bits < 8)
                    gather_copy_bits(data, from, out, to, l->bits);
                else
                    memcpy((char *)out + (size_t)to * bytes,
                           (const char *)data + (size_t)from * bytes, bytes);
            }
        }
    }
}

/* Byte-sized elements: one or two memcpy per outer row (two when it wraps). */
static void gather_rows(const gather_layout *l, const int64_t *idx, const char *data, char *out)
{
    const size_t row = (size_t)l->inner * (size_t)(l->bits / 8);
    const int64_t per_batch = l->outer / l->batch;
    for (int64_t o = 0; o < l->outer; o++) {
        const int64_t start = l->circular ? idx[o / per_batch] % l->max_seq : idx[o / per_batch];
        const int64_t first = start + l->length <= l->max_seq ? l->length : l->max_seq - start;
        const char *src = data + (size_t)(o * l->max_seq) * row;
        char *dst = out + (size_t)(o * l->length) * row;
        memcpy(dst, src + (size_t)start * row, (size_t)first * row);
        memcpy(dst + (size_t)first * row, src, (size_t)(l->length - first) * row);
    }
}

static ogi_status gather_run(op_ctx *c, const gather_layout *l, const int64_t *idx)
{
    const ogi_tensor *data = c->in[0];
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, data->dims, sizeof(int64_t) * (size_t)data->rank);
    dims[l->axis] = l->length;
    int64_t offset;
    bool contiguous = tensor_gather_is_contiguous(data->rank, data->dims, l->axis, l->length, idx,
                                                  l->circular, &offset);
    /* a contiguous segment is a view of the cache, not a copy (the executor
     * copies when sharing would be unsafe) */
    if (contiguous && l->bits >= 8)
        return op_alloc_view_at(c, 0, 0, (size_t)offset * (size_t)(l->bits / 8), data->dtype,
                                data->rank, dims);
    ogi_status st = op_alloc(c, 0, data->dtype, data->rank, dims);
    if (st != OGI_OK || c->out[0]->nbytes == 0)
        return st;
    if (l->bits < 8) {
        memset(c->out[0]->data, 0, c->out[0]->nbytes); /* pad bits of the last byte */
        gather_elements(l, idx, data->data, c->out[0]->data);
    } else {
        gather_rows(l, idx, data->data, c->out[0]->data);
    }
    return OGI_OK;
}

static ogi_status tensor_gather(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    gather_layout l;
    if ((st = gather_layout_init(c, &l)) != OGI_OK)
        return st;
    int64_t idx_small[64];
    int64_t *idx = idx_small;
    if (l.batch > 64 && (idx = malloc(sizeof(*idx) * (size_t)l.batch)) == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld read indices",
                        (long long)l.batch);
    st = gather_read_indices(c, &l, idx);
    if (st == OGI_OK)
        st = gather_run(c, &l, idx);
    if (idx != idx_small)
        free(idx);
    return st;
}

/* ai.ogi.TensorGatherShape(data, length), with Shape's attributes:
 * Shape(TensorGather(data, length)) of a linear gather along axis 2 without
 * read_indices, computed without the gather. engine/fuse.c writes it for
 * the Shape nodes reading a KV-cache window that the attention then reads
 * in place. length is checked as TensorGather checks it. */
static ogi_status tensor_gather_shape(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *data = c->in[0];
    if (data->rank < 3)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 0 (data): expected rank >= 3 (a gather along axis 2), got %d",
                        data->rank);
    if (ogi_dtype_bits(data->dtype) == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "data type %s is not supported",
                        ogi_dtype_name(data->dtype));
    gather_layout l = {.axis = 2, .max_seq = data->dims[2]};
    if ((st = gather_length(c, &l)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, data->dims, sizeof(int64_t) * (size_t)data->rank);
    dims[2] = l.length;
    return op_alloc_shape(c, data->rank, dims);
}

const op_kernel op_kernels_tensor_gather[] = {
    {"ai.ogi", "TensorGather", 1, tensor_gather},
    {"ai.ogi", "TensorGatherShape", 1, tensor_gather_shape},
    {NULL, NULL, 0, NULL},
};
