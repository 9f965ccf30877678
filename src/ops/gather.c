/* Indexing ops: Gather, GatherElements, GatherND, ScatterElements (and the
 * deprecated Scatter), ScatterND, OneHot, NonZero, Compress, Unique. Moves
 * work on any byte-sized dtype; scatter reductions and Unique's ordering need
 * numeric types. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"
#include "ops/gemm.h"

/* ---- helpers ------------------------------------------------------------- */

/* Bytes per element of input i; packed sub-byte and string dtypes have none. */
static ogi_status gather_elem_size(const op_ctx *c, int i, size_t *size)
{
    int s = dtype_size(c->in[i]->dtype);
    if (s == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                        ogi_dtype_name(c->in[i]->dtype));
    *size = (size_t)s;
    return OGI_OK;
}

/* Normalises an axis of a tensor that must have rank >= 1. */
static ogi_status gather_axis(const op_ctx *c, int64_t axis, int rank, int *out)
{
    if (rank < 1)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got 0");
    return op_normalize_axis(c, axis, rank, out);
}

static int64_t gather_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/* Element i of a byte-sized numeric tensor as int64 (floats truncate),
 * read through a copy so that unaligned buffers are fine. */
static int64_t gather_get_i64(const ogi_tensor *t, int64_t i)
{
    /* the index dtypes, read directly: an index per element of GatherND's
     * decode-step masks */
    if (t->dtype == OGI_INT64)
        return ((const int64_t *)t->data)[i];
    if (t->dtype == OGI_INT32)
        return ((const int32_t *)t->data)[i];
    size_t es = (size_t)dtype_size(t->dtype);
    union {
        int64_t i;
        double d;
        unsigned char b[16];
    } u;
    memcpy(u.b, (const char *)t->data + (size_t)i * es, es);
    return dtype_get_i64(u.b, t->dtype, 0);
}

static ogi_status gather_require_index_dtype(const op_ctx *c, int i)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    if (c->in[i]->dtype != OGI_INT32 && c->in[i]->dtype != OGI_INT64)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected int32 or int64 indices, got %s", i,
                        ogi_dtype_name(c->in[i]->dtype));
    return OGI_OK;
}

/* Index j of indices input i, made non-negative against dim; an error when
 * outside [-dim, dim - 1]. */
static ogi_status gather_index(const op_ctx *c, int i, int64_t j, int64_t dim, int64_t *out)
{
    int64_t v = gather_get_i64(c->in[i], j);
    if (v < -dim || v >= dim)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input %d: index %lld at position %lld is out of "
                        "range [%lld, %lld]",
                        i, (long long)v, (long long)j, (long long)-dim, (long long)dim - 1);
    *out = v < 0 ? v + dim : v;
    return OGI_OK;
}

/* All of indices input i normalised against dim into a new array. */
static ogi_status gather_read_indices(const op_ctx *c, int i, int64_t dim, int64_t **out)
{
    int64_t n = tensor_numel(c->in[i]);
    int64_t *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof(*idx));
    if (idx == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t j = 0; j < n; j++) {
        ogi_status st = gather_index(c, i, j, dim, &idx[j]);
        if (st != OGI_OK) {
            free(idx);
            return st;
        }
    }
    *out = idx;
    return OGI_OK;
}

/* ---- Gather --------------------------------------------------------------- */

/* out viewed as [outer, n_idx, row] = data[outer, idx[k], row]. */
typedef struct gather_job {
    const char *src;
    char *dst;
    const int64_t *idx;
    int64_t n_idx, axis_dim;
    size_t row_bytes;
} gather_job;

static inline void gather_copy_rows(const gather_job *j, int64_t begin, int64_t end, size_t rb)
{
    for (int64_t item = begin; item < end; item++) {
        int64_t o = item / j->n_idx, k = item % j->n_idx;
        memcpy(j->dst + (size_t)item * rb, j->src + (size_t)(o * j->axis_dim + j->idx[k]) * rb, rb);
    }
}

static void gather_rows(void *arg, int64_t begin, int64_t end)
{
    const gather_job *j = arg;
    /* constant sizes let the compiler turn small copies into moves */
    switch (j->row_bytes) {
    case 4:
        gather_copy_rows(j, begin, end, 4);
        break;
    case 8:
        gather_copy_rows(j, begin, end, 8);
        break;
    default:
        gather_copy_rows(j, begin, end, j->row_bytes);
        break;
    }
}

static ogi_status gather_gather(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = gather_elem_size(c, 0, &es)) != OGI_OK ||
        (st = gather_require_index_dtype(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *ind = c->in[1];
    int axis;
    if ((st = gather_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis)) != OGI_OK)
        return st;
    int rank = x->rank - 1 + ind->rank;
    if (rank > OGI_MAX_RANK)
        return op_error(c, OGI_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, OGI_MAX_RANK);
    int64_t dims[OGI_MAX_RANK];
    int r = 0;
    for (int k = 0; k < axis; k++)
        dims[r++] = x->dims[k];
    for (int k = 0; k < ind->rank; k++)
        dims[r++] = ind->dims[k];
    for (int k = axis + 1; k < x->rank; k++)
        dims[r++] = x->dims[k];
    int64_t *idx;
    if ((st = gather_read_indices(c, 1, x->dims[axis], &idx)) != OGI_OK)
        return st;
    st = op_alloc(c, 0, x->dtype, rank, dims);
    gather_job job = {
        .src = x->data,
        .idx = idx,
        .n_idx = tensor_numel(ind),
        .axis_dim = x->dims[axis],
        .row_bytes = (size_t)gather_prod(x->dims, axis + 1, x->rank) * es,
    };
    int64_t items = gather_prod(x->dims, 0, axis) * job.n_idx;
    /* a tied embedding that the session packed as the panels of its
     * transpose (engine/pack.c): its rows are read from the panels, and the
     * file's pages, released at load, stay out of the resident set (the
     * kernel maps 64 KiB around each page a lookup faults in) */
    const float *panels = op_input_panels(c, 0);
    if (st == OGI_OK && panels != NULL && axis == 0 && x->rank == 2 && x->dtype == OGI_FLOAT32) {
        int64_t k = x->dims[1];
        float *y = c->out[0]->data;
        for (int64_t i = 0; i < job.n_idx; i++) {
            const float *col = panels + (size_t)(idx[i] / GEMM_PANEL) * (size_t)k * GEMM_PANEL +
                               idx[i] % GEMM_PANEL;
            for (int64_t e = 0; e < k; e++)
                y[i * k + e] = col[e * GEMM_PANEL];
        }
    } else if (st == OGI_OK && items > 0 && job.row_bytes > 0) {
        job.dst = c->out[0]->data;
        int64_t min_items = 1 + ((int64_t)1 << 16) / (int64_t)job.row_bytes;
        threadpool_parallel_for(c->pool, items, min_items, gather_rows, &job);
    }
    free(idx);
    return st;
}

/* ---- GatherElements -------------------------------------------------------- */

/* Checks indices input i has data's rank and fits it on every axis but
 * `axis` (so that the other coordinates index data directly). */
static ogi_status gather_check_elements(const op_ctx *c, int i, const ogi_tensor *data, int axis)
{
    const ogi_tensor *ind = c->in[i];
    if (ind->rank != data->rank)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: rank %d differs from the data's %d", i,
                        ind->rank, data->rank);
    for (int k = 0; k < data->rank; k++)
        if (k != axis && ind->dims[k] > data->dims[k])
            return op_error(c, OGI_ERR_RUNTIME, "input %d: dim %d is %lld, the data has %lld", i, k,
                            (long long)ind->dims[k], (long long)data->dims[k]);
    return OGI_OK;
}

/* Element offsets in data for each position of an indices-shaped tensor,
 * with the index replacing the coordinate along axis. */
static ogi_status gather_element_offsets(const op_ctx *c, int i, const ogi_tensor *data, int axis,
                                         int64_t **out)
{
    const ogi_tensor *ind = c->in[i];
    int64_t *offs;
    ogi_status st = gather_read_indices(c, i, data->dims[axis], &offs);
    if (st != OGI_OK)
        return st;
    int64_t strides[OGI_MAX_RANK], coord[OGI_MAX_RANK] = {0}, n = tensor_numel(ind);
    tensor_strides(data->rank, data->dims, strides);
    for (int64_t j = 0; j < n; j++) {
        int64_t off = offs[j] * strides[axis];
        for (int k = 0; k < ind->rank; k++)
            if (k != axis)
                off += coord[k] * strides[k];
        offs[j] = off;
        for (int k = ind->rank - 1; k >= 0 && ++coord[k] == ind->dims[k]; k--)
            coord[k] = 0;
    }
    *out = offs;
    return OGI_OK;
}

static ogi_status gather_elements(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = gather_elem_size(c, 0, &es)) != OGI_OK ||
        (st = gather_require_index_dtype(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *ind = c->in[1];
    int axis;
    int64_t *offs;
    if ((st = gather_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis)) != OGI_OK ||
        (st = gather_check_elements(c, 1, x, axis)) != OGI_OK ||
        (st = gather_element_offsets(c, 1, x, axis, &offs)) != OGI_OK)
        return st;
    st = op_alloc(c, 0, x->dtype, ind->rank, ind->dims);
    int64_t n = tensor_numel(ind);
    for (int64_t j = 0; st == OGI_OK && j < n; j++)
        memcpy((char *)c->out[0]->data + (size_t)j * es,
               (const char *)x->data + (size_t)offs[j] * es, es);
    free(offs);
    return st;
}

/* ---- GatherND, ScatterND ---------------------------------------------------- */

/* The index tuples of GatherND/ScatterND resolved to element offsets in
 * data: indices [..., m] address slices of data dims [b + m, r) within
 * each of the b leading batch dims. */
typedef struct gather_nd {
    int64_t n_tuples; /* positions of indices.shape[:-1] */
    int64_t slice;    /* elements per addressed slice */
    int64_t *offsets; /* n_tuples element offsets into data */
} gather_nd;

static ogi_status gather_nd_check(const op_ctx *c, int i, const ogi_tensor *data, int b, int64_t *m)
{
    const ogi_tensor *ind = c->in[i];
    if (ind->rank < 1 || data->rank < 1 || b < 0 || b >= ind->rank || b >= data->rank)
        return op_error(c, OGI_ERR_RUNTIME, "batch_dims %d needs indices and data of larger rank",
                        b);
    *m = ind->dims[ind->rank - 1];
    if (*m < 1 || *m > data->rank - b)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: last dim %lld outside [1, %d]", i,
                        (long long)*m, data->rank - b);
    for (int k = 0; k < b; k++)
        if (ind->dims[k] != data->dims[k])
            return op_error(c, OGI_ERR_RUNTIME, "input %d: batch dim %d is %lld, the data has %lld",
                            i, k, (long long)ind->dims[k], (long long)data->dims[k]);
    return OGI_OK;
}

static ogi_status gather_nd_resolve(const op_ctx *c, int i, const ogi_tensor *data, int b,
                                    gather_nd *nd)
{
    int64_t m;
    ogi_status st = gather_nd_check(c, i, data, b, &m);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *ind = c->in[i];
    int64_t strides[OGI_MAX_RANK];
    tensor_strides(data->rank, data->dims, strides);
    nd->n_tuples = m > 0 ? tensor_numel(ind) / m : 0;
    nd->slice = gather_prod(data->dims, b + (int)m, data->rank);
    int64_t per_batch = gather_prod(ind->dims, b, ind->rank - 1);
    int64_t batch_stride = gather_prod(data->dims, b, data->rank);
    nd->offsets = malloc((size_t)(nd->n_tuples > 0 ? nd->n_tuples : 1) * sizeof(int64_t));
    if (nd->offsets == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t t = 0; t < nd->n_tuples; t++) {
        int64_t off = (per_batch > 0 ? t / per_batch : 0) * batch_stride;
        for (int64_t j = 0; j < m; j++) {
            int64_t v;
            if ((st = gather_index(c, i, t * m + j, data->dims[b + j], &v)) != OGI_OK) {
                free(nd->offsets);
                return st;
            }
            off += v * strides[b + j];
        }
        nd->offsets[t] = off;
    }
    return OGI_OK;
}

static ogi_status gather_nd_op(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = gather_elem_size(c, 0, &es)) != OGI_OK ||
        (st = gather_require_index_dtype(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *ind = c->in[1];
    int b = (int)op_attr_int(c, "batch_dims", 0);
    gather_nd nd;
    if ((st = gather_nd_resolve(c, 1, x, b, &nd)) != OGI_OK)
        return st;
    int64_t m = ind->dims[ind->rank - 1], dims[OGI_MAX_RANK];
    int rank = 0;
    for (int k = 0; k < ind->rank - 1; k++)
        dims[rank++] = ind->dims[k];
    for (int k = b + (int)m; k < x->rank; k++)
        dims[rank++] = x->dims[k];
    st = op_alloc(c, 0, x->dtype, rank, dims);
    size_t bytes = (size_t)nd.slice * es;
    char *out = st == OGI_OK ? c->out[0]->data : NULL;
    const char *in = x->data;
    if (out != NULL && bytes == 1) /* single bytes (bool masks): no call per element */
        for (int64_t t = 0; t < nd.n_tuples; t++)
            out[t] = in[nd.offsets[t]];
    else
        for (int64_t t = 0; out != NULL && bytes > 0 && t < nd.n_tuples; t++)
            memcpy(out + (size_t)t * bytes, in + (size_t)nd.offsets[t] * es, bytes);
    free(nd.offsets);
    return st;
}

/* ---- scatter reductions ------------------------------------------------------ */

typedef enum gather_reduction {
    GATHER_NONE,
    GATHER_ADD,
    GATHER_MUL,
    GATHER_MAX,
    GATHER_MIN,
} gather_reduction;

/* The reduction attribute (opset 16: none/add/mul, 18: also max/min). */
static ogi_status gather_reduction_of(const op_ctx *c, ogi_dtype dtype, gather_reduction *red)
{
    const char *s = c->opset >= 16 ? op_attr_string(c, "reduction", "none") : "none";
    if (strcmp(s, "none") == 0)
        *red = GATHER_NONE;
    else if (strcmp(s, "add") == 0)
        *red = GATHER_ADD;
    else if (strcmp(s, "mul") == 0)
        *red = GATHER_MUL;
    else if (strcmp(s, "max") == 0 && c->opset >= 18)
        *red = GATHER_MAX;
    else if (strcmp(s, "min") == 0 && c->opset >= 18)
        *red = GATHER_MIN;
    else
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute reduction='%s' is not supported", s);
    if (*red != GATHER_NONE && !dtype_is_float(dtype) && !dtype_is_integer(dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "reduction '%s' on dtype %s", s,
                        ogi_dtype_name(dtype));
    return OGI_OK;
}

static double gather_combine_f64(double a, double b, gather_reduction red)
{
    switch (red) {
    case GATHER_ADD:
        return a + b;
    case GATHER_MUL:
        return a * b;
    case GATHER_MAX:
        return isnan(a) || a >= b ? a : b;
    case GATHER_MIN:
        return isnan(a) || a <= b ? a : b;
    default:
        return b;
    }
}

static int64_t gather_combine_i64(int64_t a, int64_t b, gather_reduction red, bool is_unsigned)
{
    bool a_greater = is_unsigned ? (uint64_t)a > (uint64_t)b : a > b;
    switch (red) {
    case GATHER_ADD:
        return (int64_t)((uint64_t)a + (uint64_t)b);
    case GATHER_MUL:
        return (int64_t)((uint64_t)a * (uint64_t)b);
    case GATHER_MAX:
        return a_greater ? a : b;
    case GATHER_MIN:
        return a_greater ? b : a;
    default:
        return b;
    }
}

/* dst[i] = dst[i] (red) src[i] for n elements; both may be unaligned. */
static void gather_apply(char *dst, const char *src, int64_t n, ogi_dtype dtype, size_t es,
                         gather_reduction red)
{
    if (n == 0)
        return;
    if (red == GATHER_NONE) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    bool is_float = dtype_is_float(dtype), is_unsigned = !dtype_is_signed(dtype);
    for (int64_t i = 0; i < n; i++) {
        union {
            int64_t i;
            double d;
            unsigned char b[8];
        } a, b;
        char *d = dst + (size_t)i * es;
        memcpy(a.b, d, es);
        memcpy(b.b, src + (size_t)i * es, es);
        if (is_float) {
            double v =
                gather_combine_f64(dtype_get_f64(a.b, dtype, 0), dtype_get_f64(b.b, dtype, 0), red);
            dtype_set_f64(a.b, dtype, 0, v);
        } else {
            int64_t v = gather_combine_i64(dtype_get_i64(a.b, dtype, 0),
                                           dtype_get_i64(b.b, dtype, 0), red, is_unsigned);
            dtype_set_i64(a.b, dtype, 0, v);
        }
        memcpy(d, a.b, es);
    }
}

/* ---- ScatterElements, Scatter, ScatterND --------------------------------------- */

static ogi_status gather_scatter_inputs(const op_ctx *c, size_t *es, gather_reduction *red)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK || (st = gather_elem_size(c, 0, es)) != OGI_OK ||
        (st = gather_require_index_dtype(c, 1)) != OGI_OK ||
        (st = op_require_input(c, 2)) != OGI_OK)
        return st;
    if (c->in[2]->dtype != c->in[0]->dtype)
        return op_error(c, OGI_ERR_RUNTIME, "input 2: dtype %s differs from the data's %s",
                        ogi_dtype_name(c->in[2]->dtype), ogi_dtype_name(c->in[0]->dtype));
    return gather_reduction_of(c, c->in[0]->dtype, red);
}

/* out = data, then out[idx-replaced coordinate] (red)= updates for each
 * element of updates (shaped like indices). */
static ogi_status gather_scatter_elements(op_ctx *c)
{
    size_t es;
    gather_reduction red;
    ogi_status st = gather_scatter_inputs(c, &es, &red);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    if (!tensor_same_shape(ind, upd))
        return op_error(c, OGI_ERR_RUNTIME, "updates and indices differ in shape");
    int axis;
    int64_t *offs;
    if ((st = gather_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis)) != OGI_OK ||
        (st = gather_check_elements(c, 1, x, axis)) != OGI_OK ||
        (st = gather_element_offsets(c, 1, x, axis, &offs)) != OGI_OK)
        return st;
    st = op_alloc_copy(c, 0, x);
    int64_t n = tensor_numel(ind);
    for (int64_t j = 0; st == OGI_OK && j < n; j++)
        gather_apply((char *)c->out[0]->data + (size_t)offs[j] * es,
                     (const char *)upd->data + (size_t)j * es, 1, x->dtype, es, red);
    free(offs);
    return st;
}

static ogi_status gather_scatter_nd(op_ctx *c)
{
    size_t es;
    gather_reduction red;
    ogi_status st = gather_scatter_inputs(c, &es, &red);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    gather_nd nd;
    if ((st = gather_nd_resolve(c, 1, x, 0, &nd)) != OGI_OK)
        return st;
    /* updates must be indices.shape[:-1] + data.shape[m:] */
    int64_t m = ind->dims[ind->rank - 1];
    bool ok = upd->rank == ind->rank - 1 + x->rank - (int)m;
    for (int k = 0; ok && k < upd->rank; k++) {
        int64_t want = k < ind->rank - 1 ? ind->dims[k] : x->dims[m + k - (ind->rank - 1)];
        ok = upd->dims[k] == want;
    }
    st = ok ? op_alloc_copy(c, 0, x)
            : op_error(c, OGI_ERR_RUNTIME, "updates shape does not match indices and data");
    for (int64_t t = 0; st == OGI_OK && t < nd.n_tuples; t++)
        gather_apply((char *)c->out[0]->data + (size_t)nd.offsets[t] * es,
                     (const char *)upd->data + (size_t)(t * nd.slice) * es, nd.slice, x->dtype, es,
                     red);
    free(nd.offsets);
    return st;
}

/* ---- OneHot -------------------------------------------------------------------- */

/* out[..., d, ...] (d at axis) = values[1] where indices == d, else values[0].
 * From opset 11 negative indices count from depth. */
static ogi_status gather_one_hot(op_ctx *c)
{
    ogi_status st;
    size_t es;
    for (int i = 0; i < 3; i++)
        if ((st = op_require_input(c, i)) != OGI_OK)
            return st;
    const ogi_tensor *ind = c->in[0], *vals = c->in[2];
    if (dtype_size(ind->dtype) == 0 || ind->dtype == OGI_BOOL)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: dtype %s is not numeric",
                        ogi_dtype_name(ind->dtype));
    if ((st = gather_elem_size(c, 2, &es)) != OGI_OK)
        return st;
    if (tensor_numel(vals) != 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 2: expected [off, on], got %lld values",
                        (long long)tensor_numel(vals));
    double depth_f;
    if ((st = op_read_scalar_f64(c, 1, &depth_f)) != OGI_OK)
        return st;
    if (!(depth_f >= 1 && depth_f < 1e15))
        return op_error(c, OGI_ERR_RUNTIME, "depth %g is not positive", depth_f);
    int64_t depth = (int64_t)depth_f;
    int axis, rank = ind->rank + 1;
    if (rank > OGI_MAX_RANK)
        return op_error(c, OGI_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, OGI_MAX_RANK);
    if ((st = op_normalize_axis(c, op_attr_int(c, "axis", -1), rank, &axis)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    for (int k = 0, j = 0; k < rank; k++)
        dims[k] = k == axis ? depth : ind->dims[j++];
    if ((st = op_alloc(c, 0, vals->dtype, rank, dims)) != OGI_OK)
        return st;
    int64_t outer = gather_prod(ind->dims, 0, axis),
            inner = gather_prod(ind->dims, axis, ind->rank);
    const char *off = vals->data, *on = off + es;
    char *dst = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t v = gather_get_i64(ind, o * inner + i);
            if (v < 0 && c->opset >= 11)
                v += depth;
            for (int64_t d = 0; d < depth; d++)
                memcpy(dst + (size_t)((o * depth + d) * inner + i) * es, d == v ? on : off, es);
        }
    }
    return OGI_OK;
}

/* ---- NonZero, Compress ------------------------------------------------------------ */

/* Whether the element at p is non-zero (NaN counts; -0.0 does not). */
static bool gather_is_nonzero(const unsigned char *p, ogi_dtype dtype, size_t es)
{
    switch (dtype) {
    case OGI_FLOAT32: {
        float f;
        memcpy(&f, p, 4);
        return f != 0.0f;
    }
    case OGI_FLOAT64: {
        double d;
        memcpy(&d, p, 8);
        return d != 0.0;
    }
    case OGI_COMPLEX64:
        return gather_is_nonzero(p, OGI_FLOAT32, 4) || gather_is_nonzero(p + 4, OGI_FLOAT32, 4);
    case OGI_COMPLEX128:
        return gather_is_nonzero(p, OGI_FLOAT64, 8) || gather_is_nonzero(p + 8, OGI_FLOAT64, 8);
    case OGI_FLOAT16:
    case OGI_BFLOAT16:
        return ((p[0] | (p[1] << 8)) & 0x7fff) != 0;
    case OGI_FLOAT8E4M3FN:
    case OGI_FLOAT8E5M2:
        return (p[0] & 0x7f) != 0;
    case OGI_FLOAT8E8M0:
        return true; /* no encoding of zero */
    default:
        for (size_t i = 0; i < es; i++)
            if (p[i] != 0)
                return true;
        return false;
    }
}

/* NonZero: [rank, count] coordinates of the non-zero elements, row-major;
 * a scalar gives shape [0, count]. */
static ogi_status gather_non_zero(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = gather_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t n = tensor_numel(x), count = 0;
    const unsigned char *p = x->data;
    for (int64_t i = 0; i < n; i++)
        count += gather_is_nonzero(p + (size_t)i * es, x->dtype, es);
    int64_t dims[2] = {x->rank, count};
    if ((st = op_alloc(c, 0, OGI_INT64, 2, dims)) != OGI_OK)
        return st;
    int64_t *out = c->out[0]->data, coord[OGI_MAX_RANK] = {0}, at = 0;
    for (int64_t i = 0; i < n && x->rank > 0; i++) {
        if (gather_is_nonzero(p + (size_t)i * es, x->dtype, es)) {
            for (int k = 0; k < x->rank; k++)
                out[k * count + at] = coord[k];
            at++;
        }
        for (int k = x->rank - 1; k >= 0 && ++coord[k] == x->dims[k]; k--)
            coord[k] = 0;
    }
    return OGI_OK;
}

/* Compress keeps the slices along axis (of the flattened input without an
 * axis) whose condition entry is true; a shorter condition drops the rest. */
static ogi_status gather_compress(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es, cs;
    if (st != OGI_OK || (st = gather_elem_size(c, 0, &es)) != OGI_OK ||
        (st = op_require_input(c, 1)) != OGI_OK || (st = gather_elem_size(c, 1, &cs)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *cond = c->in[1];
    if (cond->rank != 1)
        return op_error(c, OGI_ERR_RUNTIME, "input 1: expected rank 1, got %d", cond->rank);
    bool flat = op_attr(c, "axis") == NULL;
    int axis = 0;
    if (!flat && (st = gather_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis)) != OGI_OK)
        return st;
    int64_t numel = tensor_numel(x);
    int64_t dim = flat ? numel : x->dims[axis], n = cond->dims[0], kept = 0;
    const unsigned char *cp = cond->data;
    for (int64_t i = 0; i < n; i++) {
        if (!gather_is_nonzero(cp + (size_t)i * cs, cond->dtype, cs))
            continue;
        if (i >= dim)
            return op_error(c, OGI_ERR_RUNTIME, "condition selects index %lld of %lld",
                            (long long)i, (long long)dim);
        kept++;
    }
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, x->dims, sizeof(dims));
    dims[axis] = kept;
    if ((st = op_alloc(c, 0, x->dtype, flat ? 1 : x->rank, dims)) != OGI_OK)
        return st;
    int64_t outer = flat ? 1 : gather_prod(x->dims, 0, axis);
    size_t row = flat ? es : (size_t)gather_prod(x->dims, axis + 1, x->rank) * es;
    char *dst = c->out[0]->data;
    for (int64_t o = 0; o < outer && row > 0; o++)
        for (int64_t i = 0; i < n && i < dim; i++)
            if (gather_is_nonzero(cp + (size_t)i * cs, cond->dtype, cs)) {
                memcpy(dst, (const char *)x->data + (size_t)(o * dim + i) * row, row);
                dst += row;
            }
    return OGI_OK;
}

/* ---- Unique -------------------------------------------------------------------------- */

/* The input seen as [outer, n, inner]: Unique compares the n slices
 * [:, i, :] lexicographically. */
typedef struct gather_unique {
    const ogi_tensor *x;
    size_t es;
    int64_t outer, n, inner;
} gather_unique;

static int gather_compare_elems(const gather_unique *u, int64_t a, int64_t b)
{
    union {
        int64_t i;
        double d;
        unsigned char b[8];
    } ua, ub;
    memcpy(ua.b, (const char *)u->x->data + (size_t)a * u->es, u->es);
    memcpy(ub.b, (const char *)u->x->data + (size_t)b * u->es, u->es);
    ogi_dtype dt = u->x->dtype;
    if (dtype_is_float(dt)) {
        double x = dtype_get_f64(ua.b, dt, 0), y = dtype_get_f64(ub.b, dt, 0);
        if (isnan(x) || isnan(y)) /* NaNs sort last and equal one another */
            return isnan(x) - isnan(y);
        return (x > y) - (x < y);
    }
    int64_t x = dtype_get_i64(ua.b, dt, 0), y = dtype_get_i64(ub.b, dt, 0);
    if (dt == OGI_UINT64)
        return ((uint64_t)x > (uint64_t)y) - ((uint64_t)x < (uint64_t)y);
    return (x > y) - (x < y);
}

static int gather_compare_slices(const gather_unique *u, int64_t a, int64_t b)
{
    for (int64_t o = 0; o < u->outer; o++)
        for (int64_t i = 0; i < u->inner; i++) {
            int64_t base = o * u->n * u->inner + i;
            int r = gather_compare_elems(u, base + a * u->inner, base + b * u->inner);
            if (r != 0)
                return r;
        }
    return 0;
}

/* Stable merge sort of slice ids by slice value; tmp holds n ids. */
static void gather_sort(const gather_unique *u, int64_t *ids, int64_t *tmp, int64_t n)
{
    if (n < 2)
        return;
    int64_t h = n / 2;
    gather_sort(u, ids, tmp, h);
    gather_sort(u, ids + h, tmp, n - h);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = gather_compare_slices(u, ids[j], ids[i]) < 0 ? ids[j++] : ids[i++];
    while (i < h)
        tmp[k++] = ids[i++];
    while (j < n)
        tmp[k++] = ids[j++];
    memcpy(ids, tmp, (size_t)n * sizeof(*ids));
}

/* Groups equal slices: order[] sorted (stable) slice ids; fills group[id]
 * and first[g] (first occurrence), counts[g]; returns the group count. */
static int64_t gather_unique_groups(const gather_unique *u, const int64_t *order, int64_t *group,
                                    int64_t *first, int64_t *counts)
{
    int64_t g = -1;
    for (int64_t i = 0; i < u->n; i++) {
        if (i == 0 || gather_compare_slices(u, order[i - 1], order[i]) != 0) {
            g++;
            first[g] = order[i];
            counts[g] = 0;
        }
        group[order[i]] = g;
        counts[g]++;
    }
    return g + 1;
}

static ogi_status gather_unique_outputs(op_ctx *c, const gather_unique *u, int axis, bool flat,
                                        int64_t n_groups, const int64_t *out_group,
                                        const int64_t *position, const int64_t *group,
                                        const int64_t *first, const int64_t *counts)
{
    const ogi_tensor *x = u->x;
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, x->dims, sizeof(dims));
    dims[flat ? 0 : axis] = n_groups;
    ogi_status st = op_alloc(c, 0, x->dtype, flat ? 1 : x->rank, dims);
    if (st != OGI_OK)
        return st;
    size_t row = (size_t)u->inner * u->es;
    for (int64_t o = 0; o < u->outer && row > 0; o++)
        for (int64_t k = 0; k < n_groups; k++)
            memcpy((char *)c->out[0]->data + (size_t)(o * n_groups + k) * row,
                   (const char *)x->data + (size_t)(o * u->n + first[out_group[k]]) * row, row);
    for (int out = 1; out <= 3; out++) {
        if (!op_output_used(c, out))
            continue;
        int64_t len = out == 2 ? u->n : n_groups;
        if ((st = op_alloc(c, out, OGI_INT64, 1, &len)) != OGI_OK)
            return st;
        int64_t *p = c->out[out]->data;
        for (int64_t k = 0; k < len; k++)
            p[k] = out == 1   ? first[out_group[k]]
                   : out == 2 ? position[group[k]]
                              : counts[out_group[k]];
    }
    return OGI_OK;
}

static ogi_status gather_unique_op(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = gather_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    ogi_dtype dt = x->dtype;
    if (!dtype_is_float(dt) && !dtype_is_integer(dt) && dt != OGI_BOOL)
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype %s is not supported", ogi_dtype_name(dt));
    bool flat = op_attr(c, "axis") == NULL, sorted = op_attr_int(c, "sorted", 1) != 0;
    int axis = 0;
    if (!flat && (st = gather_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis)) != OGI_OK)
        return st;
    gather_unique u = {.x = x, .es = es, .outer = 1, .n = tensor_numel(x), .inner = 1};
    if (!flat) {
        u.outer = gather_prod(x->dims, 0, axis);
        u.n = x->dims[axis];
        u.inner = gather_prod(x->dims, axis + 1, x->rank);
    }
    size_t words = (size_t)(u.n > 0 ? u.n : 1);
    int64_t *buf = malloc(6 * words * sizeof(int64_t));
    if (buf == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t *order = buf, *tmp = buf + words, *group = buf + 2 * words;
    int64_t *first = buf + 3 * words, *counts = buf + 4 * words, *out_group = buf + 5 * words;
    for (int64_t i = 0; i < u.n; i++)
        order[i] = i;
    gather_sort(&u, order, tmp, u.n);
    int64_t n_groups = gather_unique_groups(&u, order, group, first, counts);
    /* output order: sorted groups as they are; otherwise by first occurrence,
     * which is the order groups are met scanning slice ids upwards */
    int64_t k = 0;
    for (int64_t g = 0; g < n_groups && sorted; g++)
        out_group[k++] = g;
    for (int64_t i = 0; i < u.n && !sorted; i++)
        if (first[group[i]] == i)
            out_group[k++] = group[i];
    int64_t *position = tmp; /* output position of each group */
    for (k = 0; k < n_groups; k++)
        position[out_group[k]] = k;
    st = gather_unique_outputs(c, &u, axis, flat, n_groups, out_group, position, group, first,
                               counts);
    free(buf);
    return st;
}

const op_kernel op_kernels_gather[] = {
    {"", "Gather", 1, gather_gather},
    {"", "GatherElements", 11, gather_elements},
    {"", "GatherND", 11, gather_nd_op},
    {"", "Scatter", 9, gather_scatter_elements},
    {"", "ScatterElements", 11, gather_scatter_elements},
    {"", "ScatterND", 11, gather_scatter_nd},
    {"", "OneHot", 9, gather_one_hot},
    {"", "NonZero", 9, gather_non_zero},
    {"", "Compress", 9, gather_compress},
    {"", "Unique", 11, gather_unique_op},
    {NULL, NULL, 0, NULL},
};
