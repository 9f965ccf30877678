/* Sequence and optional ops: SequenceEmpty, SequenceConstruct, SequenceAt,
 * SequenceLength, SequenceInsert, SequenceErase, SplitToSequence,
 * ConcatFromSequence, Optional, OptionalHasElement, OptionalGetElement.
 * A sequence or optional owns its items (see core/tensor.h); every kernel
 * here copies the items it reads, so no two values share a buffer. */
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "ops/families.h"

/* ---- helpers ------------------------------------------------------------- */

static ogi_status seq_require(const op_ctx *c, int i, tensor_kind kind)
{
    static const char *const kinds[] = {"a tensor", "a sequence", "an optional"};
    if (!op_has_input(c, i))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d is required", i);
    if (c->in[i]->kind != kind)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d must be %s, got %s", i, kinds[kind],
                        kinds[c->in[i]->kind]);
    return OGI_OK;
}

/* Appends a deep copy of t to the container out[0]. */
static ogi_status seq_add_copy(op_ctx *c, const ogi_tensor *t)
{
    ogi_tensor *item;
    ogi_status st = tensor_clone(t, &item);
    if (st == OGI_OK)
        st = tensor_add_item(c->out[0], item);
    return st == OGI_OK ? OGI_OK : op_error(c, st, "%s", ogi_last_error());
}

/* Reads position input i (scalar int32/int64) and normalises it into
 * [0, n) — or [0, n] when inserting. */
static ogi_status seq_position(const op_ctx *c, int i, int64_t n, bool insert, int64_t *pos)
{
    int64_t p;
    ogi_status st = op_read_scalar_i64(c, i, &p);
    if (st != OGI_OK)
        return st;
    int64_t hi = insert ? n : n - 1;
    if (p < -n || p > hi)
        return op_error(c, OGI_ERR_RUNTIME, "position %lld outside [%lld, %lld]", (long long)p,
                        (long long)-n, (long long)hi);
    *pos = p < 0 ? p + n : p;
    return OGI_OK;
}

/* ---- SequenceEmpty, SequenceConstruct, SequenceAt, SequenceLength ---------- */

static ogi_status seq_empty(op_ctx *c)
{
    ogi_dtype dtype = (ogi_dtype)op_attr_int(c, "dtype", OGI_FLOAT32);
    return op_alloc_container(c, 0, TENSOR_KIND_SEQUENCE, dtype, 0);
}

static ogi_status seq_construct(op_ctx *c)
{
    for (int i = 0; i < c->n_in; i++) {
        ogi_status st = seq_require(c, i, TENSOR_KIND_TENSOR);
        if (st != OGI_OK)
            return st;
        if (c->in[i]->dtype != c->in[0]->dtype)
            return op_error(c, OGI_ERR_INVALID_MODEL, "input %d is %s, input 0 is %s", i,
                            ogi_dtype_name(c->in[i]->dtype), ogi_dtype_name(c->in[0]->dtype));
    }
    ogi_dtype dtype = c->n_in > 0 ? c->in[0]->dtype : OGI_DTYPE_UNDEFINED;
    ogi_status st = op_alloc_container(c, 0, TENSOR_KIND_SEQUENCE, dtype, c->n_in);
    for (int i = 0; i < c->n_in && st == OGI_OK; i++)
        st = seq_add_copy(c, c->in[i]);
    return st;
}

static ogi_status seq_at(op_ctx *c)
{
    ogi_status st = seq_require(c, 0, TENSOR_KIND_SEQUENCE);
    int64_t pos;
    if (st == OGI_OK)
        st = seq_position(c, 1, c->in[0]->n_items, false, &pos);
    if (st != OGI_OK)
        return st;
    return op_alloc_copy(c, 0, c->in[0]->items[pos]);
}

static ogi_status seq_length(op_ctx *c)
{
    ogi_status st = seq_require(c, 0, TENSOR_KIND_SEQUENCE);
    if (st == OGI_OK)
        st = op_alloc(c, 0, OGI_INT64, 0, NULL);
    if (st == OGI_OK)
        *(int64_t *)c->out[0]->data = c->in[0]->n_items;
    return st;
}

/* ---- SequenceInsert, SequenceErase ------------------------------------------ */

static ogi_status seq_insert(op_ctx *c)
{
    ogi_status st = seq_require(c, 0, TENSOR_KIND_SEQUENCE);
    if (st == OGI_OK)
        st = seq_require(c, 1, TENSOR_KIND_TENSOR);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *s = c->in[0], *x = c->in[1];
    if (s->dtype != OGI_DTYPE_UNDEFINED && s->dtype != x->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "cannot insert a %s tensor into a %s sequence",
                        ogi_dtype_name(x->dtype), ogi_dtype_name(s->dtype));
    int64_t n = s->n_items, pos = n;
    if (op_has_input(c, 2) && (st = seq_position(c, 2, n, true, &pos)) != OGI_OK)
        return st;
    st = op_alloc_container(c, 0, TENSOR_KIND_SEQUENCE, x->dtype, n + 1);
    for (int64_t k = 0; k <= n && st == OGI_OK; k++)
        st = seq_add_copy(c, k == pos ? x : s->items[k < pos ? k : k - 1]);
    return st;
}

static ogi_status seq_erase(op_ctx *c)
{
    ogi_status st = seq_require(c, 0, TENSOR_KIND_SEQUENCE);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *s = c->in[0];
    int64_t n = s->n_items, pos = n - 1;
    if (n == 0)
        return op_error(c, OGI_ERR_RUNTIME, "cannot erase from an empty sequence");
    if (op_has_input(c, 1) && (st = seq_position(c, 1, n, false, &pos)) != OGI_OK)
        return st;
    st = op_alloc_container(c, 0, TENSOR_KIND_SEQUENCE, s->dtype, n - 1);
    for (int64_t k = 0; k < n && st == OGI_OK; k++)
        if (k != pos)
            st = seq_add_copy(c, s->items[k]);
    return st;
}

/* ---- SplitToSequence, ConcatFromSequence ------------------------------------ */

/* Copies rows [start, start + len) along axis of x into a new tensor whose
 * axis dim is len (dropped when squeeze). x is outer x dim x inner. */
static ogi_status seq_slice(const op_ctx *c, const ogi_tensor *x, int axis, int64_t start,
                            int64_t len, bool squeeze, ogi_tensor **out)
{
    int64_t dims[OGI_MAX_RANK], outer = 1, inner = dtype_size(x->dtype);
    int rank = 0;
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            outer *= x->dims[d];
        else if (d > axis)
            inner *= x->dims[d];
        if (d != axis)
            dims[rank++] = x->dims[d];
        else if (!squeeze)
            dims[rank++] = len;
    }
    ogi_status st = ogi_tensor_create(x->dtype, rank, dims, out);
    if (st != OGI_OK)
        return op_error(c, st, "%s", ogi_last_error());
    size_t row = (size_t)(len * inner);
    for (int64_t o = 0; o < outer && row > 0; o++)
        memcpy((char *)(*out)->data + (size_t)o * row,
               (const char *)x->data + (size_t)((o * x->dims[axis] + start) * inner), row);
    return OGI_OK;
}

/* The split lengths: one per row when split is absent, chunks of a scalar
 * split (the last one shorter), or the 1-D list given. */
static ogi_status seq_split_lengths(const op_ctx *c, int64_t dim, int64_t **lens, int64_t *n)
{
    int64_t chunk = 1;
    const ogi_tensor *s = op_has_input(c, 1) ? c->in[1] : NULL;
    if (s != NULL && s->rank == 1) {
        *lens = malloc(((size_t)tensor_numel(s) + 1) * sizeof(int64_t));
        if (*lens == NULL)
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
        ogi_status st = op_read_ints(c, 1, *lens, tensor_numel(s), n);
        int64_t total = 0;
        for (int64_t k = 0; k < *n && st == OGI_OK; k++) {
            if ((*lens)[k] < 0)
                st = op_error(c, OGI_ERR_RUNTIME, "split %lld is negative", (long long)(*lens)[k]);
            total += (*lens)[k];
        }
        if (st == OGI_OK && total != dim)
            st = op_error(c, OGI_ERR_RUNTIME, "splits sum to %lld, the axis is %lld",
                          (long long)total, (long long)dim);
        return st;
    }
    if (s != NULL) {
        ogi_status st = op_read_scalar_i64(c, 1, &chunk);
        if (st != OGI_OK)
            return st;
        if (chunk <= 0)
            return op_error(c, OGI_ERR_RUNTIME, "split %lld must be positive", (long long)chunk);
    }
    *n = (dim + chunk - 1) / chunk;
    *lens = malloc(((size_t)*n + 1) * sizeof(int64_t));
    if (*lens == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t k = 0; k < *n; k++)
        (*lens)[k] = k == *n - 1 ? dim - k * chunk : chunk;
    return OGI_OK;
}

static ogi_status seq_split(op_ctx *c)
{
    ogi_status st = seq_require(c, 0, TENSOR_KIND_TENSOR);
    const ogi_tensor *x = c->in[0];
    int axis = 0;
    if (st == OGI_OK && dtype_size(x->dtype) == 0)
        st =
            op_error(c, OGI_ERR_UNSUPPORTED, "dtype %s is not supported", ogi_dtype_name(x->dtype));
    if (st == OGI_OK)
        st = op_normalize_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis);
    if (st != OGI_OK)
        return st;
    /* keepdims only applies when split is absent (each piece is one row) */
    bool squeeze = !op_has_input(c, 1) && op_attr_int(c, "keepdims", 1) == 0;
    int64_t *lens = NULL, n = 0, start = 0;
    st = seq_split_lengths(c, x->dims[axis], &lens, &n);
    if (st == OGI_OK)
        st = op_alloc_container(c, 0, TENSOR_KIND_SEQUENCE, x->dtype, n);
    for (int64_t k = 0; k < n && st == OGI_OK; k++) {
        ogi_tensor *piece;
        st = seq_slice(c, x, axis, start, lens[k], squeeze, &piece);
        if (st == OGI_OK && (st = tensor_add_item(c->out[0], piece)) != OGI_OK)
            st = op_error(c, st, "%s", ogi_last_error());
        start += lens[k];
    }
    free(lens);
    return st;
}

/* Output shape of ConcatFromSequence: items agree on every dim but axis
 * (new_axis: on every dim, and a new dim of n is inserted at axis). */
static ogi_status seq_concat_shape(const op_ctx *c, const ogi_tensor *s, bool new_axis, int *axis,
                                   int *rank, int64_t *dims)
{
    const ogi_tensor *first = s->items[0];
    *rank = first->rank + (new_axis ? 1 : 0);
    ogi_status st = op_normalize_axis(c, op_attr_int(c, "axis", 0), *rank, axis);
    if (st != OGI_OK)
        return st;
    int64_t total = 0;
    for (int64_t k = 0; k < s->n_items; k++) {
        const ogi_tensor *t = s->items[k];
        bool ok =
            t->kind == TENSOR_KIND_TENSOR && t->dtype == first->dtype && t->rank == first->rank;
        for (int d = 0; ok && d < t->rank; d++)
            ok = t->dims[d] == first->dims[d] || (!new_axis && d == *axis);
        if (!ok)
            return op_error(c, OGI_ERR_RUNTIME, "item %lld does not match item 0's shape",
                            (long long)k);
        total += new_axis ? 1 : t->dims[*axis];
    }
    for (int d = 0; d < *rank; d++) {
        int src = new_axis && d > *axis ? d - 1 : d;
        dims[d] = d == *axis ? total : first->dims[src];
    }
    return OGI_OK;
}

static ogi_status seq_concat(op_ctx *c)
{
    ogi_status st = seq_require(c, 0, TENSOR_KIND_SEQUENCE);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *s = c->in[0];
    bool new_axis = op_attr_int(c, "new_axis", 0) != 0;
    if (s->n_items == 0)
        return op_error(c, OGI_ERR_RUNTIME, "cannot concatenate an empty sequence");
    if (dtype_size(s->items[0]->dtype) == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype %s is not supported",
                        ogi_dtype_name(s->items[0]->dtype));
    int axis, rank;
    int64_t dims[OGI_MAX_RANK + 1];
    if (s->items[0]->rank + (new_axis ? 1 : 0) > OGI_MAX_RANK)
        return op_error(c, OGI_ERR_UNSUPPORTED, "rank over %d", OGI_MAX_RANK);
    if ((st = seq_concat_shape(c, s, new_axis, &axis, &rank, dims)) != OGI_OK)
        return st;
    if ((st = op_alloc(c, 0, s->items[0]->dtype, rank, dims)) != OGI_OK)
        return st;
    int64_t outer = 1, inner = dtype_size(s->items[0]->dtype);
    for (int d = 0; d < rank; d++) {
        if (d < axis)
            outer *= dims[d];
        else if (d > axis)
            inner *= dims[d];
    }
    char *dst = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < s->n_items; k++) {
            const ogi_tensor *t = s->items[k];
            size_t row = (size_t)((new_axis ? 1 : t->dims[axis]) * inner);
            if (row > 0)
                memcpy(dst, (const char *)t->data + (size_t)o * row, row);
            dst += row;
        }
    return OGI_OK;
}

/* ---- Optional, OptionalHasElement, OptionalGetElement ----------------------- */

static ogi_status seq_optional(op_ctx *c)
{
    const ogi_tensor *x = op_has_input(c, 0) ? c->in[0] : NULL;
    if (x != NULL && x->kind == TENSOR_KIND_OPTIONAL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0 is already an optional");
    ogi_status st =
        op_alloc_container(c, 0, TENSOR_KIND_OPTIONAL, x ? x->dtype : OGI_DTYPE_UNDEFINED, 1);
    if (st == OGI_OK && x != NULL)
        st = seq_add_copy(c, x);
    return st;
}

static ogi_status seq_optional_has(op_ctx *c)
{
    const ogi_tensor *x = op_has_input(c, 0) ? c->in[0] : NULL;
    ogi_status st = op_alloc(c, 0, OGI_BOOL, 0, NULL);
    if (st == OGI_OK)
        *(bool *)c->out[0]->data = x != NULL && (x->kind != TENSOR_KIND_OPTIONAL || x->n_items > 0);
    return st;
}

static ogi_status seq_optional_get(op_ctx *c)
{
    if (!op_has_input(c, 0))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0 is required");
    const ogi_tensor *x = c->in[0];
    if (x->kind != TENSOR_KIND_OPTIONAL)
        return op_alloc_copy(c, 0, x); /* opset 18: a tensor or sequence is its own element */
    if (x->n_items == 0)
        return op_error(c, OGI_ERR_RUNTIME, "the optional input is empty");
    return op_alloc_copy(c, 0, x->items[0]);
}

const op_kernel op_kernels_sequence[] = {
    {"", "SequenceEmpty", 11, seq_empty},
    {"", "SequenceConstruct", 11, seq_construct},
    {"", "SequenceAt", 11, seq_at},
    {"", "SequenceLength", 11, seq_length},
    {"", "SequenceInsert", 11, seq_insert},
    {"", "SequenceErase", 11, seq_erase},
    {"", "SplitToSequence", 11, seq_split},
    {"", "ConcatFromSequence", 11, seq_concat},
    {"", "Optional", 15, seq_optional},
    {"", "OptionalHasElement", 15, seq_optional_has},
    {"", "OptionalGetElement", 15, seq_optional_get},
    {NULL, NULL, 0, NULL},
};
