/* TensorScatter (opset 24): writes `update` into a copy of a KV cache along
 * the sequence axis, at write_indices[b] for each batch entry b (0 when the
 * input is omitted). mode "linear" requires the update to fit; "circular"
 * wraps the sequence index modulo the cache length. */
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

/* The cache and update seen as [outer, seq, inner] around the sequence axis;
 * outer runs over the dims before the axis, batch first. */
typedef struct scatter_layout {
    int64_t batch, outer, max_seq, seq, inner;
    size_t elem;
    bool circular;
} scatter_layout;

static ogi_status scatter_check_shapes(const op_ctx *c, int axis)
{
    const ogi_tensor *cache = c->in[0], *update = c->in[1];
    char cs[128], us[128];
    if (update->rank != cache->rank)
        goto mismatch;
    for (int d = 0; d < cache->rank; d++) {
        if (d == axis ? update->dims[d] > cache->dims[d] : update->dims[d] != cache->dims[d])
            goto mismatch;
    }
    return OGI_OK;
mismatch:
    return op_error(c, OGI_ERR_RUNTIME,
                    "update shape %s does not fit past_cache shape %s on sequence axis %d",
                    tensor_shape_str(update->rank, update->dims, us, sizeof(us)),
                    tensor_shape_str(cache->rank, cache->dims, cs, sizeof(cs)), axis);
}

static ogi_status scatter_layout_init(const op_ctx *c, scatter_layout *l)
{
    const ogi_tensor *cache = c->in[0], *update = c->in[1];
    if (cache->rank < 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 0 (past_cache): expected rank >= 2, got %d",
                        cache->rank);
    if (update->dtype != cache->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "update type %s differs from past_cache type %s",
                        ogi_dtype_name(update->dtype), ogi_dtype_name(cache->dtype));
    l->elem = (size_t)dtype_size(cache->dtype);
    if (l->elem == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "past_cache type %s is not supported",
                        ogi_dtype_name(cache->dtype));
    const char *mode = op_attr_string(c, "mode", "linear");
    if (strcmp(mode, "linear") != 0 && strcmp(mode, "circular") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute mode='%s' is not linear or circular",
                        mode);
    l->circular = strcmp(mode, "circular") == 0;
    int axis;
    ogi_status st = op_normalize_axis(c, op_attr_int(c, "axis", -2), cache->rank, &axis);
    if (st != OGI_OK)
        return st;
    if (axis == 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute axis must not be the batch axis 0");
    if ((st = scatter_check_shapes(c, axis)) != OGI_OK)
        return st;
    l->batch = cache->dims[0];
    l->outer = 1;
    l->inner = 1;
    for (int d = 0; d < cache->rank; d++) {
        if (d < axis)
            l->outer *= cache->dims[d];
        else if (d > axis)
            l->inner *= cache->dims[d];
    }
    l->max_seq = cache->dims[axis];
    l->seq = update->dims[axis];
    return OGI_OK;
}

/* Reads write_indices (int64 or int32, shape [batch]) into idx, checking each
 * start against the cache length. */
static ogi_status scatter_read_indices(const op_ctx *c, const scatter_layout *l, int64_t *idx)
{
    if (!op_has_input(c, 2)) {
        memset(idx, 0, sizeof(*idx) * (size_t)l->batch);
        return OGI_OK;
    }
    const ogi_tensor *w = c->in[2];
    if (w->dtype != OGI_INT64 && w->dtype != OGI_INT32)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 2 (write_indices): expected int64, got %s",
                        ogi_dtype_name(w->dtype));
    if (w->rank != 1 || w->dims[0] != l->batch)
        return op_error(
            c, OGI_ERR_RUNTIME,
            "input 2 (write_indices): expected shape [%lld], got rank %d with %lld elements",
            (long long)l->batch, w->rank, (long long)tensor_numel(w));
    for (int64_t b = 0; b < l->batch; b++) {
        idx[b] = dtype_get_i64(w->data, w->dtype, b);
        if (idx[b] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "write_indices[%lld] = %lld is negative",
                            (long long)b, (long long)idx[b]);
        if (!l->circular && idx[b] > l->max_seq - l->seq)
            return op_error(c, OGI_ERR_RUNTIME,
                            "write_indices[%lld] = %lld plus update length %lld exceeds the cache "
                            "length %lld (mode linear)",
                            (long long)b, (long long)idx[b], (long long)l->seq,
                            (long long)l->max_seq);
    }
    return OGI_OK;
}

static void scatter_write(const scatter_layout *l, const int64_t *idx, const char *update,
                          char *out)
{
    const size_t row = (size_t)l->inner * l->elem;
    const int64_t per_batch = l->outer / l->batch;
    for (int64_t o = 0; o < l->outer; o++) {
        /* reduced first so that a huge circular start cannot overflow */
        const int64_t start = l->circular ? idx[o / per_batch] % l->max_seq : idx[o / per_batch];
        for (int64_t s = 0; s < l->seq; s++) {
            int64_t pos = start + s;
            if (l->circular)
                pos %= l->max_seq;
            memcpy(out + (size_t)(o * l->max_seq + pos) * row,
                   update + (size_t)(o * l->seq + s) * row, row);
        }
    }
}

static ogi_status tensor_scatter(op_ctx *c)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    scatter_layout l;
    if ((st = scatter_layout_init(c, &l)) != OGI_OK)
        return st;
    int64_t idx_small[64];
    int64_t *idx = idx_small;
    if (l.batch > 64 && (idx = malloc(sizeof(*idx) * (size_t)l.batch)) == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld write indices",
                        (long long)l.batch);
    st = scatter_read_indices(c, &l, idx);
    if (st == OGI_OK)
        st = op_alloc_inplace(c, 0, 0); /* no copy of the cache when it can be avoided */
    /* an empty batch or empty cache has nothing to write (and outer may be 0) */
    if (st == OGI_OK && l.batch > 0 && l.outer > 0 && l.max_seq > 0)
        scatter_write(&l, idx, c->in[1]->data, c->out[0]->data);
    if (idx != idx_small)
        free(idx);
    return st;
}

const op_kernel op_kernels_tensor_scatter[] = {
    {"", "TensorScatter", 24, tensor_scatter},
    {NULL, NULL, 0, NULL},
};
