/* Shape ops: reinterpretations that copy the bytes (Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, Dropout), element movers (Transpose, Expand,
 * Tile, Trilu) and small generators (Constant, Shape, Size, ConstantOfShape,
 * Range, EyeLike). Movers work on any byte-sized dtype by element size. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"
#include "ops/strided.h"

/* ---- helpers ------------------------------------------------------------- */

/* Bytes per element of input i; packed sub-byte and string dtypes have none. */
static ogi_status shape_elem_size(const op_ctx *c, int i, size_t *size)
{
    int s = dtype_size(c->in[i]->dtype);
    if (s == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                        ogi_dtype_name(c->in[i]->dtype));
    *size = (size_t)s;
    return OGI_OK;
}

/* out[0] = the bytes of in[0] under a new shape of the same element count;
 * a view of in[0]'s buffer whenever the executor can share it. */
static ogi_status shape_view_as(op_ctx *c, int rank, const int64_t *dims)
{
    const ogi_tensor *x = c->in[0];
    if (tensor_shape_numel(rank, dims) != tensor_numel(x)) {
        char a[256], b[256];
        return op_error(c, OGI_ERR_RUNTIME, "cannot reshape %s to %s",
                        tensor_shape_str(x->rank, x->dims, a, sizeof(a)),
                        tensor_shape_str(rank, dims, b, sizeof(b)));
    }
    return op_alloc_view(c, 0, 0, x->dtype, rank, dims);
}

/* Writes value v into element i of a numeric or bool buffer. float8 types
 * have no conversion here and report false. */
static bool shape_set_number(void *data, ogi_dtype dtype, int64_t i, double v)
{
    if (!dtype_is_float(dtype) && !dtype_is_integer(dtype) && dtype != OGI_BOOL)
        return false;
    dtype_set_f64(data, dtype, i, v);
    return true;
}

/* ---- Constant, Identity, Dropout ------------------------------------------- */

static ogi_status shape_constant_list(op_ctx *c, const onnx_attr *a, ogi_dtype dtype, bool scalar)
{
    onnx_attr_type want = dtype == OGI_FLOAT32 ? (scalar ? ONNX_ATTR_FLOAT : ONNX_ATTR_FLOATS)
                                               : (scalar ? ONNX_ATTR_INT : ONNX_ATTR_INTS);
    if (a->type != want)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s has the wrong type", a->name);
    int64_t n = scalar ? 1 : a->n;
    ogi_status st = op_alloc(c, 0, dtype, scalar ? 0 : 1, &n);
    if (st != OGI_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        if (dtype == OGI_FLOAT32)
            ((float *)c->out[0]->data)[i] = scalar ? a->f : a->floats[i];
        else
            ((int64_t *)c->out[0]->data)[i] = scalar ? a->i : a->ints[i];
    }
    return OGI_OK;
}

/* Constant: the tensor held by whichever value attribute is set. */
static ogi_status shape_constant(op_ctx *c)
{
    const onnx_attr *a;
    if ((a = op_attr(c, "value")) != NULL) {
        if (a->type != ONNX_ATTR_TENSOR || a->t == NULL)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute value: expected a tensor");
        if (ogi_dtype_bits(a->t->tensor.dtype) == 0 && a->t->tensor.dtype != OGI_STRING)
            return op_error(c, OGI_ERR_UNSUPPORTED, "attribute value: dtype %s is not supported",
                            ogi_dtype_name(a->t->tensor.dtype));
        return op_alloc_copy(c, 0, &a->t->tensor);
    }
    if ((a = op_attr(c, "value_float")) != NULL)
        return shape_constant_list(c, a, OGI_FLOAT32, true);
    if ((a = op_attr(c, "value_floats")) != NULL)
        return shape_constant_list(c, a, OGI_FLOAT32, false);
    if ((a = op_attr(c, "value_int")) != NULL)
        return shape_constant_list(c, a, OGI_INT64, true);
    if ((a = op_attr(c, "value_ints")) != NULL)
        return shape_constant_list(c, a, OGI_INT64, false);
    if (op_attr(c, "value_string") != NULL || op_attr(c, "value_strings") != NULL)
        return op_error(c, OGI_ERR_UNSUPPORTED, "string constants are not supported");
    if (op_attr(c, "sparse_value") != NULL)
        return op_error(c, OGI_ERR_UNSUPPORTED, "sparse constants are not supported");
    return op_error(c, OGI_ERR_INVALID_MODEL, "no value attribute");
}

static ogi_status shape_identity(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    /* a view would share the bytes each element owns, or the items */
    if (x->dtype == OGI_STRING || x->kind != TENSOR_KIND_TENSOR)
        return op_alloc_copy(c, 0, x);
    return op_alloc_view(c, 0, 0, x->dtype, x->rank, x->dims);
}

/* Whether this Dropout runs in training mode (random masking). */
static ogi_status shape_dropout_training(const op_ctx *c, bool *training, double *ratio)
{
    *ratio = 0.5;
    *training = false;
    if (c->opset < 12) {
        *ratio = op_attr_float(c, "ratio", 0.5f);
        *training = c->opset < 7 && op_attr_int(c, "is_test", 0) == 0;
        return OGI_OK;
    }
    ogi_status st;
    if (op_has_input(c, 1) && (st = op_read_scalar_f64(c, 1, ratio)) != OGI_OK)
        return st;
    if (op_has_input(c, 2)) {
        int64_t mode;
        if ((st = op_read_scalar_i64(c, 2, &mode)) != OGI_OK)
            return st;
        *training = mode != 0;
    }
    return OGI_OK;
}

/* Dropout at inference is the identity; the mask is all kept. Training with
 * ratio 0 is the identity too (scale 1 / (1 - 0)). */
static ogi_status shape_dropout(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    bool training;
    double ratio;
    if ((st = shape_dropout_training(c, &training, &ratio)) != OGI_OK)
        return st;
    if (training && ratio != 0.0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "training mode with ratio %g is not supported",
                        ratio);
    const ogi_tensor *x = c->in[0];
    if ((st = op_alloc_copy(c, 0, x)) != OGI_OK)
        return st;
    if (!op_output_used(c, 1))
        return OGI_OK;
    /* before opset 10 the mask has the data's type */
    ogi_dtype mask_type = c->opset < 10 ? x->dtype : OGI_BOOL;
    if ((st = op_alloc(c, 1, mask_type, x->rank, x->dims)) != OGI_OK)
        return st;
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        if (!shape_set_number(c->out[1]->data, mask_type, i, 1.0))
            return op_error(c, OGI_ERR_UNSUPPORTED, "mask of dtype %s is not supported",
                            ogi_dtype_name(mask_type));
    return OGI_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ----------------------------------- */

/* Resolves a Reshape target: 0 copies the input dim (unless allowzero), one
 * -1 is inferred from the element count. */
static ogi_status shape_reshape_dims(const op_ctx *c, int64_t *dims, int n, bool allowzero)
{
    const ogi_tensor *x = c->in[0];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return op_error(c, OGI_ERR_RUNTIME, "shape[%d] = 0 but the input has rank %d", i,
                                x->rank);
            dims[i] = x->dims[i];
        }
        if (dims[i] == -1) {
            if (infer >= 0)
                return op_error(c, OGI_ERR_RUNTIME, "shape has more than one -1");
            infer = i;
            continue;
        }
        if (dims[i] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "shape[%d] = %lld is negative", i,
                            (long long)dims[i]);
        if (dims[i] > 0 && known > ((int64_t)1 << 48) / dims[i])
            return op_error(c, OGI_ERR_RUNTIME, "shape has too many elements");
        known *= dims[i];
    }
    if (infer >= 0) {
        int64_t numel = tensor_numel(x);
        if (known == 0 || numel % known != 0)
            return op_error(c, OGI_ERR_RUNTIME, "cannot infer the -1 dim: %lld elements over %lld",
                            (long long)numel, (long long)known);
        dims[infer] = numel / known;
    }
    return OGI_OK;
}

static ogi_status shape_reshape(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK], n;
    bool present;
    st = op_read_int_list(c, c->opset >= 5, 1, "shape", dims, OGI_MAX_RANK, &n, &present);
    if (st != OGI_OK)
        return st;
    if (!present)
        return op_error(c, OGI_ERR_INVALID_MODEL, "no target shape");
    bool allowzero = c->opset >= 14 && op_attr_int(c, "allowzero", 0) != 0;
    if ((st = shape_reshape_dims(c, dims, (int)n, allowzero)) != OGI_OK)
        return st;
    return shape_view_as(c, (int)n, dims);
}

static ogi_status shape_flatten(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t axis = op_attr_int(c, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return op_error(c, OGI_ERR_INVALID_MODEL, "axis %lld outside [%d, %d]", (long long)axis,
                        -x->rank, x->rank);
    if (axis < 0)
        axis += x->rank;
    int64_t dims[2] = {tensor_shape_numel((int)axis, x->dims),
                       tensor_shape_numel(x->rank - (int)axis, x->dims + axis)};
    return shape_view_as(c, 2, dims);
}

/* Marks each listed axis of a rank-`rank` shape; rejects repeats. */
static ogi_status shape_mark_axes(const op_ctx *c, const int64_t *axes, int64_t n, int rank,
                                  bool *marked)
{
    for (int i = 0; i < rank; i++)
        marked[i] = false;
    for (int64_t i = 0; i < n; i++) {
        int a;
        ogi_status st = op_normalize_axis(c, axes[i], rank, &a);
        if (st != OGI_OK)
            return st;
        if (marked[a])
            return op_error(c, OGI_ERR_RUNTIME, "axis %lld is repeated", (long long)axes[i]);
        marked[a] = true;
    }
    return OGI_OK;
}

static ogi_status shape_squeeze(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t axes[OGI_MAX_RANK], n;
    bool present, marked[OGI_MAX_RANK];
    st = op_read_int_list(c, c->opset >= 13, 1, "axes", axes, OGI_MAX_RANK, &n, &present);
    if (st != OGI_OK)
        return st;
    if ((st = shape_mark_axes(c, axes, n, x->rank, marked)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    int rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (n > 0 && marked[i] && x->dims[i] != 1)
            return op_error(c, OGI_ERR_RUNTIME, "cannot squeeze axis %d of size %lld", i,
                            (long long)x->dims[i]);
        bool drop = n > 0 ? marked[i] : x->dims[i] == 1;
        if (!drop)
            dims[rank++] = x->dims[i];
    }
    return shape_view_as(c, rank, dims);
}

static ogi_status shape_unsqueeze(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t axes[OGI_MAX_RANK], n;
    bool present, marked[OGI_MAX_RANK];
    st = op_read_int_list(c, c->opset >= 13, 1, "axes", axes, OGI_MAX_RANK, &n, &present);
    if (st != OGI_OK)
        return st;
    if (!present)
        return op_error(c, OGI_ERR_INVALID_MODEL, "no axes");
    int rank = x->rank + (int)n;
    if (rank > OGI_MAX_RANK)
        return op_error(c, OGI_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, OGI_MAX_RANK);
    if ((st = shape_mark_axes(c, axes, n, rank, marked)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    for (int i = 0, j = 0; i < rank; i++)
        dims[i] = marked[i] ? 1 : x->dims[j++];
    return shape_view_as(c, rank, dims);
}

/* ---- Shape, Size ------------------------------------------------------------ */

static int64_t shape_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static ogi_status shape_shape(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    return op_alloc_shape(c, c->in[0]->rank, c->in[0]->dims);
}

static ogi_status shape_size(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st == OGI_OK)
        st = op_alloc(c, 0, OGI_INT64, 0, NULL);
    if (st == OGI_OK)
        *(int64_t *)c->out[0]->data = tensor_numel(c->in[0]);
    return st;
}

/* ---- Transpose ---------------------------------------------------------------- */

static ogi_status shape_transpose(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = shape_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    const int64_t *perm_attr;
    int64_t n, perm[OGI_MAX_RANK];
    if (op_attr_ints(c, "perm", &perm_attr, &n)) {
        if (n != x->rank)
            return op_error(c, OGI_ERR_RUNTIME, "perm has %lld entries for rank %d", (long long)n,
                            x->rank);
        if (n > 0)
            memcpy(perm, perm_attr, (size_t)n * sizeof(*perm));
    } else {
        for (int i = 0; i < x->rank; i++)
            perm[i] = x->rank - 1 - i;
    }
    bool seen[OGI_MAX_RANK] = {false};
    strided_view v = {.rank = x->rank, .elsize = es, .src = x->data};
    int64_t in_strides[OGI_MAX_RANK];
    tensor_strides(x->rank, x->dims, in_strides);
    for (int i = 0; i < x->rank; i++) {
        if (perm[i] < 0 || perm[i] >= x->rank || seen[perm[i]])
            return op_error(c, OGI_ERR_RUNTIME, "perm is not a permutation of [0, %d)", x->rank);
        seen[perm[i]] = true;
        v.dims[i] = x->dims[perm[i]];
        v.strides[i] = in_strides[perm[i]];
    }
    /* the axes longer than 1 keep their order (a decode step's seq = 1
     * moving past the heads): the bytes stay where they are */
    int64_t last = -1;
    bool in_order = true;
    for (int i = 0; i < x->rank && in_order; i++) {
        if (v.dims[i] == 1)
            continue;
        in_order = perm[i] > last;
        last = perm[i];
    }
    if (in_order)
        return op_alloc_view(c, 0, 0, x->dtype, x->rank, v.dims);
    if ((st = op_alloc(c, 0, x->dtype, x->rank, v.dims)) != OGI_OK)
        return st;
    v.dst = c->out[0]->data;
    strided_copy(c->pool, &v);
    return OGI_OK;
}

/* ---- Expand, Tile ------------------------------------------------------------------- */

static ogi_status shape_expand(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = shape_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t shape[OGI_MAX_RANK], n;
    if ((st = op_read_ints(c, 1, shape, OGI_MAX_RANK, &n)) != OGI_OK)
        return st;
    int rank = x->rank > (int)n ? x->rank : (int)n;
    int64_t in_strides[OGI_MAX_RANK];
    tensor_strides(x->rank, x->dims, in_strides);
    strided_view v = {.rank = rank, .elsize = es, .src = x->data};
    for (int i = 0; i < rank; i++) {
        int xi = i - (rank - x->rank), si = i - (rank - (int)n);
        int64_t xd = xi >= 0 ? x->dims[xi] : 1, sd = si >= 0 ? shape[si] : 1;
        if (sd < 0 || (xd != sd && xd != 1 && sd != 1))
            return op_error(c, OGI_ERR_RUNTIME, "cannot expand dim %lld to %lld (axis %d)",
                            (long long)xd, (long long)sd, i);
        v.dims[i] = xd == 1 ? sd : xd;
        v.strides[i] = xd == 1 ? 0 : in_strides[xi];
    }
    if ((st = op_alloc(c, 0, x->dtype, rank, v.dims)) != OGI_OK)
        return st;
    v.dst = c->out[0]->data;
    strided_copy(c->pool, &v);
    return OGI_OK;
}

/* Tile: out[o] = in[o mod in.dims], built a row (last dim) at a time. */
static ogi_status shape_tile_run(op_ctx *c, const int64_t *repeats)
{
    const ogi_tensor *x = c->in[0];
    size_t es;
    ogi_status st = shape_elem_size(c, 0, &es);
    if (st != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        if (repeats[i] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "repeats[%d] = %lld is negative", i,
                            (long long)repeats[i]);
        if (x->dims[i] > 0 && repeats[i] > ((int64_t)1 << 48) / x->dims[i])
            return op_error(c, OGI_ERR_RUNTIME, "repeats[%d] is too large", i);
        dims[i] = x->dims[i] * repeats[i];
    }
    if ((st = op_alloc(c, 0, x->dtype, x->rank, dims)) != OGI_OK)
        return st;
    int64_t numel = tensor_numel(c->out[0]);
    if (numel == 0)
        return OGI_OK;
    if (x->rank == 0) {
        memcpy(c->out[0]->data, x->data, es);
        return OGI_OK;
    }
    int r = x->rank;
    int64_t in_strides[OGI_MAX_RANK], coord[OGI_MAX_RANK] = {0};
    tensor_strides(r, x->dims, in_strides);
    size_t row_bytes = (size_t)x->dims[r - 1] * es;
    char *dst = c->out[0]->data;
    for (int64_t row = 0; row < numel / dims[r - 1]; row++) {
        int64_t off = 0;
        for (int k = 0; k < r - 1; k++)
            off += coord[k] % x->dims[k] * in_strides[k];
        for (int64_t t = 0; t < repeats[r - 1]; t++, dst += row_bytes)
            memcpy(dst, (const char *)x->data + off * (int64_t)es, row_bytes);
        for (int k = r - 2; k >= 0 && ++coord[k] == dims[k]; k--)
            coord[k] = 0;
    }
    return OGI_OK;
}

static ogi_status shape_tile(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    int64_t repeats[OGI_MAX_RANK], n;
    if ((st = op_read_ints(c, 1, repeats, OGI_MAX_RANK, &n)) != OGI_OK)
        return st;
    if (n != c->in[0]->rank)
        return op_error(c, OGI_ERR_RUNTIME, "input 1: %lld repeats for rank %d", (long long)n,
                        c->in[0]->rank);
    return shape_tile_run(c, repeats);
}

/* Tile-1: `tiles` copies along the single axis given by input 2. */
static ogi_status shape_tile_v1(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    int64_t tiles, axis;
    if (st != OGI_OK || (st = op_read_scalar_i64(c, 1, &tiles)) != OGI_OK ||
        (st = op_read_scalar_i64(c, 2, &axis)) != OGI_OK)
        return st;
    int a;
    if ((st = op_normalize_axis(c, axis, c->in[0]->rank, &a)) != OGI_OK)
        return st;
    int64_t repeats[OGI_MAX_RANK];
    for (int i = 0; i < c->in[0]->rank; i++)
        repeats[i] = i == a ? tiles : 1;
    return shape_tile_run(c, repeats);
}

/* ---- ConstantOfShape, Range, EyeLike --------------------------------------------------- */

/* Fills nbytes of dst with the packed element of a 2- or 4-bit dtype. */
static void shape_fill_packed(void *dst, size_t nbytes, int bits, uint8_t v)
{
    uint8_t b = bits == 4 ? (uint8_t)((v & 0xf) * 0x11) : (uint8_t)((v & 0x3) * 0x55);
    memset(dst, b, nbytes);
}

static ogi_status shape_constant_of_shape(op_ctx *c)
{
    int64_t dims[OGI_MAX_RANK], n;
    ogi_status st = op_read_ints(c, 0, dims, OGI_MAX_RANK, &n);
    if (st != OGI_OK)
        return st;
    float zero = 0.0f;
    const void *value = &zero;
    ogi_dtype dtype = OGI_FLOAT32;
    const onnx_attr *a = op_attr(c, "value");
    if (a != NULL) {
        if (a->type != ONNX_ATTR_TENSOR || a->t == NULL || tensor_numel(&a->t->tensor) != 1)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute value: expected one element");
        dtype = a->t->tensor.dtype;
        value = a->t->tensor.data;
    }
    int bits = ogi_dtype_bits(dtype);
    if (bits == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype %s is not supported", ogi_dtype_name(dtype));
    if ((st = op_alloc(c, 0, dtype, (int)n, dims)) != OGI_OK)
        return st;
    char *dst = c->out[0]->data;
    if (bits < 8) {
        if (c->out[0]->nbytes > 0)
            shape_fill_packed(dst, c->out[0]->nbytes, bits, *(const uint8_t *)value);
        return OGI_OK;
    }
    size_t es = (size_t)bits / 8;
    int64_t numel = tensor_numel(c->out[0]);
    for (int64_t i = 0; i < numel; i++)
        memcpy(dst + (size_t)i * es, value, es);
    return OGI_OK;
}

/* Element count of Range over integers: ceil((limit - start) / delta),
 * computed without overflow. */
static int64_t shape_range_count_int(int64_t start, int64_t limit, int64_t delta)
{
    uint64_t diff, step;
    if (delta > 0) {
        if (limit <= start)
            return 0;
        diff = (uint64_t)limit - (uint64_t)start;
        step = (uint64_t)delta;
    } else {
        if (limit >= start)
            return 0;
        diff = (uint64_t)start - (uint64_t)limit;
        step = (uint64_t)0 - (uint64_t)delta;
    }
    uint64_t n = diff / step + (diff % step != 0);
    return n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* Range: out[i] = start + i * delta for i < ceil((limit - start) / delta). */
static ogi_status shape_range(op_ctx *c)
{
    for (int i = 0; i < 3; i++) {
        ogi_status st = op_require_input(c, i);
        if (st != OGI_OK)
            return st;
        if (tensor_numel(c->in[i]) != 1 || c->in[i]->dtype != c->in[0]->dtype)
            return op_error(c, OGI_ERR_RUNTIME, "input %d: expected a scalar of input 0's dtype",
                            i);
    }
    ogi_dtype dtype = c->in[0]->dtype;
    bool is_int = dtype_is_integer(dtype);
    if (!is_int && !dtype_is_float(dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype %s is not supported", ogi_dtype_name(dtype));
    int64_t n;
    if (is_int) {
        int64_t s = dtype_get_i64(c->in[0]->data, dtype, 0);
        int64_t l = dtype_get_i64(c->in[1]->data, dtype, 0);
        int64_t d = dtype_get_i64(c->in[2]->data, dtype, 0);
        if (d == 0)
            return op_error(c, OGI_ERR_RUNTIME, "delta is 0");
        n = shape_range_count_int(s, l, d);
    } else {
        double s = dtype_get_f64(c->in[0]->data, dtype, 0);
        double l = dtype_get_f64(c->in[1]->data, dtype, 0);
        double d = dtype_get_f64(c->in[2]->data, dtype, 0);
        double count = ceil((l - s) / d);
        if (d == 0 || !isfinite(count))
            return op_error(c, OGI_ERR_RUNTIME, "start, limit and delta give no finite count");
        n = count > 0 ? (count > 9e18 ? INT64_MAX : (int64_t)count) : 0;
    }
    ogi_status st = op_alloc(c, 0, dtype, 1, &n);
    if (st != OGI_OK)
        return st;
    void *out = c->out[0]->data;
    if (is_int) {
        int64_t s = dtype_get_i64(c->in[0]->data, dtype, 0);
        int64_t d = dtype_get_i64(c->in[2]->data, dtype, 0);
        for (int64_t i = 0; i < n; i++)
            dtype_set_i64(out, dtype, i, (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d));
    } else {
        double s = dtype_get_f64(c->in[0]->data, dtype, 0);
        double d = dtype_get_f64(c->in[2]->data, dtype, 0);
        for (int64_t i = 0; i < n; i++)
            dtype_set_f64(out, dtype, i, s + (double)i * d);
    }
    return OGI_OK;
}

static ogi_status shape_eye_like(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (x->rank != 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank 2, got %d", x->rank);
    int64_t dt = op_attr_int(c, "dtype", x->dtype);
    if (!dtype_is_valid((int)dt))
        return op_error(c, OGI_ERR_INVALID_MODEL, "dtype %lld is not valid", (long long)dt);
    ogi_dtype dtype = (ogi_dtype)dt;
    if (!dtype_is_float(dtype) && !dtype_is_integer(dtype) && dtype != OGI_BOOL)
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype %s is not supported", ogi_dtype_name(dtype));
    int64_t k = op_attr_int(c, "k", 0);
    if ((st = op_alloc(c, 0, dtype, 2, x->dims)) != OGI_OK)
        return st;
    int64_t rows = x->dims[0], cols = x->dims[1];
    if (rows == 0 || cols == 0)
        return OGI_OK;
    memset(c->out[0]->data, 0, c->out[0]->nbytes);
    for (int64_t i = 0; i < rows; i++) {
        /* compare before adding: k may be near the int64 limits */
        if ((k >= 0 && k < cols - i) || (k < 0 && -k <= i))
            shape_set_number(c->out[0]->data, dtype, i * cols + i + k, 1.0);
    }
    return OGI_OK;
}

/* ---- Trilu ---------------------------------------------------------------------------- */

/* Trilu keeps out[i][j] where j - i >= k (upper) or j - i <= k (lower) in
 * each of the trailing matrices, zero elsewhere. */
static ogi_status shape_trilu(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = shape_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (x->rank < 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 2, got %d", x->rank);
    if (x->dtype == OGI_FLOAT8E8M0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype float8e8m0 has no zero");
    int64_t k = 0;
    if (op_has_input(c, 1) && (st = op_read_scalar_i64(c, 1, &k)) != OGI_OK)
        return st;
    bool upper = op_attr_int(c, "upper", 1) != 0;
    if ((st = op_alloc(c, 0, x->dtype, x->rank, x->dims)) != OGI_OK)
        return st;
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    if (cols == 0 || rows == 0)
        return OGI_OK;
    int64_t total_rows = tensor_numel(x) / cols;
    k = shape_clamp(k, -rows - cols, rows + cols);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    for (int64_t r = 0; r < total_rows; r++) {
        int64_t i = r % rows;
        /* columns [lo, hi) are kept */
        int64_t lo = upper ? shape_clamp(i + k, 0, cols) : 0;
        int64_t hi = upper ? cols : shape_clamp(i + k + 1, 0, cols);
        size_t row = (size_t)(r * cols) * es;
        memset(dst + row, 0, (size_t)cols * es);
        if (hi > lo)
            memcpy(dst + row + (size_t)lo * es, src + row + (size_t)lo * es,
                   (size_t)(hi - lo) * es);
    }
    return OGI_OK;
}

const op_kernel op_kernels_shape[] = {
    {"", "Constant", 1, shape_constant},   {"", "Identity", 1, shape_identity},
    {"", "Dropout", 1, shape_dropout},     {"", "Reshape", 1, shape_reshape},
    {"", "Flatten", 1, shape_flatten},     {"", "Squeeze", 1, shape_squeeze},
    {"", "Unsqueeze", 1, shape_unsqueeze}, {"", "Shape", 1, shape_shape},
    {"", "Size", 1, shape_size},           {"", "Transpose", 1, shape_transpose},
    {"", "Expand", 8, shape_expand},       {"", "Tile", 1, shape_tile_v1},
    {"", "Tile", 6, shape_tile},           {"", "ConstantOfShape", 9, shape_constant_of_shape},
    {"", "Range", 11, shape_range},        {"", "EyeLike", 9, shape_eye_like},
    {"", "Trilu", 14, shape_trilu},        {NULL, NULL, 0, NULL},
};
