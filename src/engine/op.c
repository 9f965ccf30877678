/* Helpers shared by kernels: attributes, errors, index inputs, broadcasting. */
#include "engine/op.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ogi_status op_error(const op_ctx *c, ogi_status status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const onnx_node *n = c->node->proto;
    return ogi_error(status, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

ogi_status op_require_input(const op_ctx *c, int i)
{
    if (!op_has_input(c, i))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d is required", i);
    return OGI_OK;
}

ogi_status op_require_dtype(const op_ctx *c, int i, ogi_dtype dtype)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    if (c->in[i]->dtype != dtype)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected %s, got %s", i,
                        ogi_dtype_name(dtype), ogi_dtype_name(c->in[i]->dtype));
    return OGI_OK;
}

/* Each element's bytes are copied: out[i] owns its own. */
static ogi_status op_alloc_copy_strings(op_ctx *c, int i, const ogi_tensor *t)
{
    ogi_status st = op_alloc_strings(c, i, t->rank, t->dims);
    const ogi_string *s = t->data;
    int64_t n = tensor_numel(t);
    for (int64_t k = 0; k < n && st == OGI_OK; k++)
        st = tensor_string_set(c->out[i], k, s[k].data, s[k].len);
    return st == OGI_OK ? OGI_OK : op_error(c, st, "output %d: %s", i, ogi_last_error());
}

/* Deep copy of a sequence or optional: every item cloned. */
static ogi_status op_alloc_copy_container(op_ctx *c, int i, const ogi_tensor *t)
{
    ogi_status st = op_alloc_container(c, i, t->kind, t->dtype, t->n_items);
    for (int64_t k = 0; k < t->n_items && st == OGI_OK; k++) {
        ogi_tensor *item;
        st = tensor_clone(t->items[k], &item);
        if (st == OGI_OK)
            st = tensor_add_item(c->out[i], item);
    }
    return st == OGI_OK ? OGI_OK : op_error(c, st, "output %d: %s", i, ogi_last_error());
}

ogi_status op_alloc_copy(op_ctx *c, int i, const ogi_tensor *t)
{
    if (t->kind != TENSOR_KIND_TENSOR)
        return op_alloc_copy_container(c, i, t);
    if (t->dtype == OGI_STRING)
        return op_alloc_copy_strings(c, i, t);
    ogi_status st = op_alloc(c, i, t->dtype, t->rank, t->dims);
    if (st == OGI_OK && t->nbytes)
        memcpy(c->out[i]->data, t->data, t->nbytes);
    return st;
}

/* ---- attributes ----------------------------------------------------------- */

const onnx_attr *op_attr(const op_ctx *c, const char *name)
{
    return graph_node_attr(c->node, name);
}

int64_t op_attr_int(const op_ctx *c, const char *name, int64_t def)
{
    return graph_node_attr_int(c->node, name, def);
}

float op_attr_float(const op_ctx *c, const char *name, float def)
{
    const onnx_attr *a = op_attr(c, name);
    if (a && a->type == ONNX_ATTR_FLOAT)
        return a->f;
    if (a && a->type == ONNX_ATTR_INT)
        return (float)a->i;
    return def;
}

const char *op_attr_string(const op_ctx *c, const char *name, const char *def)
{
    const onnx_attr *a = op_attr(c, name);
    return a && a->type == ONNX_ATTR_STRING ? a->s : def;
}

bool op_attr_ints(const op_ctx *c, const char *name, const int64_t **vals, int64_t *n)
{
    const onnx_attr *a = op_attr(c, name);
    if (a == NULL || a->type != ONNX_ATTR_INTS) {
        *vals = NULL;
        *n = 0;
        return false;
    }
    *vals = a->ints;
    *n = a->n;
    return true;
}

bool op_attr_floats(const op_ctx *c, const char *name, const float **vals, int64_t *n)
{
    const onnx_attr *a = op_attr(c, name);
    if (a == NULL || a->type != ONNX_ATTR_FLOATS) {
        *vals = NULL;
        *n = 0;
        return false;
    }
    *vals = a->floats;
    *n = a->n;
    return true;
}

ogi_status op_attr_ints_exact(const op_ctx *c, const char *name, int n, int64_t def, int64_t min,
                              int64_t *vals)
{
    const int64_t *a;
    int64_t count;
    if (!op_attr_ints(c, name, &a, &count)) {
        for (int i = 0; i < n; i++)
            vals[i] = def;
        return OGI_OK;
    }
    if (count != n)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s: expected %d values, got %lld",
                        name, n, (long long)count);
    for (int i = 0; i < n; i++) {
        if (a[i] < min)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s: value %lld below %lld", name,
                            (long long)a[i], (long long)min);
        vals[i] = a[i];
    }
    return OGI_OK;
}

/* ---- small index tensors -------------------------------------------------- */

ogi_status op_read_ints(const op_ctx *c, int i, int64_t *vals, int64_t max, int64_t *n)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *t = c->in[i];
    if (t->dtype != OGI_INT64 && t->dtype != OGI_INT32)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected int64 or int32, got %s", i,
                        ogi_dtype_name(t->dtype));
    int64_t count = tensor_numel(t);
    if (count > max)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: %lld values, at most %lld allowed", i,
                        (long long)count, (long long)max);
    for (int64_t k = 0; k < count; k++)
        vals[k] = dtype_get_i64(t->data, t->dtype, k);
    *n = count;
    return OGI_OK;
}

ogi_status op_read_int_list(const op_ctx *c, bool from_input, int input, const char *name,
                            int64_t *vals, int64_t max, int64_t *n, bool *present)
{
    *n = 0;
    *present = false;
    if (from_input) {
        if (!op_has_input(c, input))
            return OGI_OK;
        *present = true;
        return op_read_ints(c, input, vals, max, n);
    }
    const int64_t *list;
    int64_t count;
    if (!op_attr_ints(c, name, &list, &count))
        return OGI_OK;
    if (count > max)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s: %lld values, at most %lld", name,
                        (long long)count, (long long)max);
    if (count > 0)
        memcpy(vals, list, (size_t)count * sizeof(*vals));
    *n = count;
    *present = true;
    return OGI_OK;
}

ogi_status op_read_scalar_f64(const op_ctx *c, int i, double *v)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *t = c->in[i];
    if (tensor_numel(t) != 1 || dtype_size(t->dtype) == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected a numeric scalar", i);
    *v = dtype_get_f64(t->data, t->dtype, 0);
    return OGI_OK;
}

ogi_status op_read_scalar_i64(const op_ctx *c, int i, int64_t *v)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *t = c->in[i];
    if (tensor_numel(t) != 1 || dtype_size(t->dtype) == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected a numeric scalar", i);
    *v = dtype_get_i64(t->data, t->dtype, 0);
    return OGI_OK;
}

static int64_t op_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

ogi_status op_alloc_shape(op_ctx *c, int rank, const int64_t *dims)
{
    int64_t start = 0, end = rank;
    if (c->opset >= 15) {
        int64_t s = op_attr_int(c, "start", 0), e = op_attr_int(c, "end", rank);
        start = op_clamp(s < 0 ? s + rank : s, 0, rank);
        end = op_clamp(e < 0 ? e + rank : e, 0, rank);
    }
    int64_t n = end > start ? end - start : 0;
    ogi_status st = op_alloc(c, 0, OGI_INT64, 1, &n);
    for (int64_t i = 0; i < n && st == OGI_OK; i++)
        ((int64_t *)c->out[0]->data)[i] = dims[start + i];
    return st;
}

ogi_status op_normalize_axis(const op_ctx *c, int64_t axis, int rank, int *out)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)(rank ? rank : 1))
        return op_error(c, OGI_ERR_RUNTIME, "axis %lld out of range for rank %d", (long long)axis,
                        rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return OGI_OK;
}

/* ---- broadcasting --------------------------------------------------------- */

ogi_status op_bcast_init(const op_ctx *c, op_bcast *b, int n, const ogi_tensor *const *ts)
{
    if (n < 1 || n > OP_BCAST_MAX_INPUTS)
        return op_error(c, OGI_ERR_UNSUPPORTED, "broadcast of %d inputs", n);
    /* only the first n rows of strides and rank dims are used (and set
     * below): no memset of the whole struct, which is a kilobyte */
    b->rank = 0;
    b->n = n;
    for (int k = 0; k < n; k++)
        if (ts[k]->rank > b->rank)
            b->rank = ts[k]->rank;
    for (int d = 0; d < b->rank; d++)
        b->dims[d] = 1;
    for (int k = 0; k < n; k++) {
        int off = b->rank - ts[k]->rank;
        for (int d = 0; d < ts[k]->rank; d++) {
            int64_t x = ts[k]->dims[d];
            int64_t *o = &b->dims[off + d];
            if (x == *o || x == 1)
                continue;
            if (*o != 1) {
                char s1[128], s2[128];
                return op_error(c, OGI_ERR_RUNTIME, "shapes %s and %s do not broadcast",
                                tensor_shape_str(ts[0]->rank, ts[0]->dims, s1, sizeof(s1)),
                                tensor_shape_str(ts[k]->rank, ts[k]->dims, s2, sizeof(s2)));
            }
            *o = x;
        }
    }
    for (int k = 0; k < n; k++) {
        int off = b->rank - ts[k]->rank;
        int64_t s = 1;
        for (int d = b->rank - 1; d >= 0; d--) {
            int64_t x = d >= off ? ts[k]->dims[d - off] : 1;
            b->strides[k][d] = x == 1 ? 0 : s;
            s *= x;
        }
    }
    b->inner = b->rank ? b->dims[b->rank - 1] : 1;
    int64_t numel = tensor_shape_numel(b->rank, b->dims);
    b->rows = b->inner ? numel / b->inner : 0;
    return OGI_OK;
}

void op_bcast_row(const op_bcast *b, int64_t row, int64_t *offsets)
{
    for (int k = 0; k < b->n; k++)
        offsets[k] = 0;
    for (int d = b->rank - 2; d >= 0 && row > 0; d--) {
        int64_t idx = row % b->dims[d];
        row /= b->dims[d];
        for (int k = 0; k < b->n; k++)
            offsets[k] += idx * b->strides[k][d];
    }
}

const graph *op_subgraph(const op_ctx *c, const char *name)
{
    for (int i = 0; i < c->node->n_subgraphs; i++)
        if (strcmp(c->node->subgraph_names[i], name) == 0)
            return c->node->subgraphs[i];
    return NULL;
}
