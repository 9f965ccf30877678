/* Slicing and joining ops: Slice, Concat, Split, Pad, CenterCropPad,
 * DepthToSpace, SpaceToDepth, ReverseSequence. They move elements only, so
 * they work on any byte-sized dtype by element size. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"
#include "ops/strided.h"

/* ---- helpers ------------------------------------------------------------- */

/* Bytes per element of input i; packed sub-byte and string dtypes have none. */
static ogi_status slice_elem_size(const op_ctx *c, int i, size_t *size)
{
    int s = dtype_size(c->in[i]->dtype);
    if (s == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                        ogi_dtype_name(c->in[i]->dtype));
    *size = (size_t)s;
    return OGI_OK;
}

/* Product of dims [from, to). */
static int64_t slice_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/* Normalises an axis of a tensor that must have rank >= 1. */
static ogi_status slice_axis_of(const op_ctx *c, int64_t axis, int rank, int *out)
{
    if (rank < 1)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got 0");
    return op_normalize_axis(c, axis, rank, out);
}

static int64_t slice_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- Slice -------------------------------------------------------------------- */

typedef struct slice_params {
    int64_t starts[OGI_MAX_RANK], ends[OGI_MAX_RANK], axes[OGI_MAX_RANK], steps[OGI_MAX_RANK];
    int64_t n;
} slice_params;

/* Slice-1 takes starts/ends/axes as attributes; from opset 10 they (and
 * steps) are inputs. */
static ogi_status slice_read_params(const op_ctx *c, slice_params *p)
{
    bool inputs = c->opset >= 10, present;
    int64_t n_ends, n_axes, n_steps;
    ogi_status st =
        op_read_int_list(c, inputs, 1, "starts", p->starts, OGI_MAX_RANK, &p->n, &present);
    if (st == OGI_OK && !present)
        return op_error(c, OGI_ERR_INVALID_MODEL, "no starts");
    if (st == OGI_OK)
        st = op_read_int_list(c, inputs, 2, "ends", p->ends, OGI_MAX_RANK, &n_ends, &present);
    if (st == OGI_OK && (!present || n_ends != p->n))
        return op_error(c, OGI_ERR_RUNTIME, "ends must have as many values as starts");
    if (st == OGI_OK)
        st = op_read_int_list(c, inputs, 3, "axes", p->axes, OGI_MAX_RANK, &n_axes, &present);
    if (st == OGI_OK && !present) {
        n_axes = p->n;
        for (int64_t i = 0; i < p->n; i++)
            p->axes[i] = i;
    }
    if (st == OGI_OK && n_axes != p->n)
        return op_error(c, OGI_ERR_RUNTIME, "axes must have as many values as starts");
    if (st == OGI_OK && inputs)
        st = op_read_int_list(c, true, 4, "steps", p->steps, OGI_MAX_RANK, &n_steps, &present);
    if (st != OGI_OK)
        return st;
    if (!inputs || !present) {
        n_steps = p->n;
        for (int64_t i = 0; i < p->n; i++)
            p->steps[i] = 1;
    }
    if (n_steps != p->n)
        return op_error(c, OGI_ERR_RUNTIME, "steps must have as many values as starts");
    return OGI_OK;
}

/* Clamps one axis's start/end like numpy and returns the element count. */
static int64_t slice_axis(int64_t dim, int64_t *start, int64_t end, int64_t step)
{
    if (dim == 0)
        return 0;
    int64_t s = *start < 0 ? *start + dim : *start;
    int64_t e = end < 0 ? end + dim : end;
    if (step > 0) {
        s = slice_clamp(s, 0, dim);
        e = slice_clamp(e, 0, dim);
        *start = s;
        return e > s ? (e - s - 1) / step + 1 : 0;
    }
    s = slice_clamp(s, 0, dim - 1);
    e = slice_clamp(e, -1, dim - 1);
    *start = s;
    int64_t mag = step == INT64_MIN ? INT64_MAX : -step;
    return s > e ? (s - e - 1) / mag + 1 : 0;
}

static ogi_status slice_slice(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = slice_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    slice_params p;
    if ((st = slice_read_params(c, &p)) != OGI_OK)
        return st;
    int64_t in_strides[OGI_MAX_RANK], offset = 0;
    tensor_strides(x->rank, x->dims, in_strides);
    strided_view v = {.rank = x->rank, .elsize = es};
    bool seen[OGI_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
        v.dims[i] = x->dims[i];
        v.strides[i] = in_strides[i];
    }
    for (int64_t i = 0; i < p.n; i++) {
        int a;
        if ((st = slice_axis_of(c, p.axes[i], x->rank, &a)) != OGI_OK)
            return st;
        if (seen[a])
            return op_error(c, OGI_ERR_RUNTIME, "axis %d is repeated", a);
        if (p.steps[i] == 0)
            return op_error(c, OGI_ERR_RUNTIME, "steps[%lld] is 0", (long long)i);
        seen[a] = true;
        int64_t start = p.starts[i];
        v.dims[a] = slice_axis(x->dims[a], &start, p.ends[i], p.steps[i]);
        v.strides[a] = in_strides[a] * p.steps[i];
        if (v.dims[a] > 0)
            offset += start * in_strides[a];
    }
    if ((st = op_alloc(c, 0, x->dtype, x->rank, v.dims)) != OGI_OK)
        return st;
    if (tensor_numel(c->out[0]) == 0)
        return OGI_OK;
    v.src = (const char *)x->data + offset * (int64_t)es;
    v.dst = c->out[0]->data;
    strided_copy(c->pool, &v);
    return OGI_OK;
}

/* ---- Concat ------------------------------------------------------------------- */

/* Each output row (over the dims before axis) is the inputs' rows in turn. */
typedef struct slice_concat_job {
    int n;
    const char **srcs;
    size_t *row_bytes; /* per input */
    size_t out_row_bytes;
    char *dst;
} slice_concat_job;

static void slice_concat_rows(void *arg, int64_t begin, int64_t end)
{
    const slice_concat_job *j = arg;
    for (int64_t row = begin; row < end; row++) {
        char *dst = j->dst + (size_t)row * j->out_row_bytes;
        for (int i = 0; i < j->n; i++) {
            if (j->row_bytes[i] == 0)
                continue;
            memcpy(dst, j->srcs[i] + (size_t)row * j->row_bytes[i], j->row_bytes[i]);
            dst += j->row_bytes[i];
        }
    }
}

/* Checks every input has input 0's dtype and dims except along axis; sums
 * the axis dims into *total. */
static ogi_status slice_concat_check(const op_ctx *c, int axis, int64_t *total)
{
    const ogi_tensor *x0 = c->in[0];
    *total = 0;
    for (int i = 0; i < c->n_in; i++) {
        ogi_status st = op_require_input(c, i);
        if (st != OGI_OK)
            return st;
        const ogi_tensor *x = c->in[i];
        if (x->dtype != x0->dtype || x->rank != x0->rank)
            return op_error(c, OGI_ERR_RUNTIME, "input %d: dtype or rank differs from input 0", i);
        for (int k = 0; k < x->rank; k++)
            if (k != axis && x->dims[k] != x0->dims[k])
                return op_error(c, OGI_ERR_RUNTIME, "input %d: dim %d is %lld, input 0 has %lld", i,
                                k, (long long)x->dims[k], (long long)x0->dims[k]);
        *total += x->dims[axis];
    }
    return OGI_OK;
}

static ogi_status slice_concat(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = slice_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x0 = c->in[0];
    if (c->opset >= 4 && op_attr(c, "axis") == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute axis is required");
    int axis;
    if ((st = slice_axis_of(c, op_attr_int(c, "axis", 1), x0->rank, &axis)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, x0->dims, sizeof(dims));
    if ((st = slice_concat_check(c, axis, &dims[axis])) != OGI_OK)
        return st;
    if ((st = op_alloc(c, 0, x0->dtype, x0->rank, dims)) != OGI_OK)
        return st;
    int64_t rows = slice_prod(dims, 0, axis), inner = slice_prod(dims, axis + 1, x0->rank);
    if (rows == 0 || inner == 0 || dims[axis] == 0)
        return OGI_OK;
    slice_concat_job job = {.n = c->n_in, .dst = c->out[0]->data};
    job.srcs = malloc((size_t)c->n_in * sizeof(*job.srcs));
    job.row_bytes = malloc((size_t)c->n_in * sizeof(*job.row_bytes));
    if (job.srcs == NULL || job.row_bytes == NULL) {
        free(job.srcs);
        free(job.row_bytes);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; i < c->n_in; i++) {
        job.srcs[i] = c->in[i]->data;
        job.row_bytes[i] = (size_t)(c->in[i]->dims[axis] * inner) * es;
    }
    job.out_row_bytes = (size_t)(dims[axis] * inner) * es;
    int64_t min_rows = 1 + ((int64_t)1 << 16) / (int64_t)job.out_row_bytes;
    threadpool_parallel_for(c->pool, rows, min_rows, slice_concat_rows, &job);
    free(job.srcs);
    free(job.row_bytes);
    return OGI_OK;
}

/* ---- Split --------------------------------------------------------------------- */

/* The split sizes: from input 1 (opset 1 optionally, 13+), the split
 * attribute (opsets 1-12), num_outputs (18+, last part smaller), or equal
 * parts. */
static ogi_status slice_split_sizes(const op_ctx *c, int64_t dim, int64_t *sizes)
{
    int n_out = c->n_out;
    bool present = false;
    int64_t n = 0;
    ogi_status st = OGI_OK;
    if (c->opset >= 13 || (c->opset < 2 && op_has_input(c, 1)))
        st = op_read_int_list(c, true, 1, "split", sizes, n_out, &n, &present);
    else
        st = op_read_int_list(c, false, 1, "split", sizes, n_out, &n, &present);
    if (st != OGI_OK)
        return st;
    present = present && n > 0; /* an empty split input means none */
    int64_t parts = op_attr_int(c, "num_outputs", n_out);
    if (present) {
        if (n != n_out)
            return op_error(c, OGI_ERR_RUNTIME, "split has %lld sizes for %d outputs", (long long)n,
                            n_out);
    } else if (parts != n_out) {
        return op_error(c, OGI_ERR_RUNTIME, "num_outputs is %lld but the node has %d outputs",
                        (long long)parts, n_out);
    } else if (c->opset >= 18 && op_attr(c, "num_outputs") != NULL) {
        int64_t chunk = (dim + n_out - 1) / n_out;
        for (int i = 0; i < n_out; i++)
            sizes[i] = chunk;
        sizes[n_out - 1] = dim - chunk * (n_out - 1);
    } else {
        if (dim % n_out != 0)
            return op_error(c, OGI_ERR_RUNTIME, "dim %lld does not split into %d equal parts",
                            (long long)dim, n_out);
        for (int i = 0; i < n_out; i++)
            sizes[i] = dim / n_out;
    }
    int64_t sum = 0;
    for (int i = 0; i < n_out; i++) {
        if (sizes[i] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "split size %d is %lld", i, (long long)sizes[i]);
        sum += sizes[i];
    }
    if (sum != dim)
        return op_error(c, OGI_ERR_RUNTIME, "split sizes add up to %lld, the axis has %lld",
                        (long long)sum, (long long)dim);
    return OGI_OK;
}

static ogi_status slice_split_outputs(op_ctx *c, int axis, const int64_t *sizes, size_t es)
{
    const ogi_tensor *x = c->in[0];
    int64_t rows = slice_prod(x->dims, 0, axis), inner = slice_prod(x->dims, axis + 1, x->rank);
    size_t in_row = (size_t)(x->dims[axis] * inner) * es, at = 0;
    for (int i = 0; i < c->n_out; i++) {
        size_t part = (size_t)(sizes[i] * inner) * es;
        if (op_output_used(c, i)) {
            int64_t dims[OGI_MAX_RANK];
            memcpy(dims, x->dims, sizeof(dims));
            dims[axis] = sizes[i];
            ogi_status st = op_alloc(c, i, x->dtype, x->rank, dims);
            if (st != OGI_OK)
                return st;
            char *dst = c->out[i]->data;
            for (int64_t r = 0; r < rows && part > 0; r++)
                memcpy(dst + (size_t)r * part, (const char *)x->data + (size_t)r * in_row + at,
                       part);
        }
        at += part;
    }
    return OGI_OK;
}

static ogi_status slice_split(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = slice_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    int axis;
    if ((st = slice_axis_of(c, op_attr_int(c, "axis", 0), c->in[0]->rank, &axis)) != OGI_OK)
        return st;
    if (c->n_out < 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "no outputs");
    int64_t *sizes = malloc((size_t)c->n_out * sizeof(*sizes));
    if (sizes == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    st = slice_split_sizes(c, c->in[0]->dims[axis], sizes);
    if (st == OGI_OK)
        st = slice_split_outputs(c, axis, sizes, es);
    free(sizes);
    return st;
}

/* ---- Pad, CenterCropPad ----------------------------------------------------------- */

typedef enum slice_pad_mode {
    SLICE_PAD_CONSTANT,
    SLICE_PAD_REFLECT,
    SLICE_PAD_EDGE,
    SLICE_PAD_WRAP,
} slice_pad_mode;

/* Input index for padded position i (i outside [0, dim)), or -1 for the
 * constant. dim > 0 unless the mode is constant. */
static int64_t slice_pad_source(int64_t i, int64_t dim, slice_pad_mode mode)
{
    if (i >= 0 && i < dim)
        return i;
    switch (mode) {
    case SLICE_PAD_EDGE:
        return i < 0 ? 0 : dim - 1;
    case SLICE_PAD_WRAP:
        return (i % dim + dim) % dim;
    case SLICE_PAD_REFLECT: {
        if (dim == 1)
            return 0;
        int64_t period = 2 * (dim - 1), m = (i % period + period) % period;
        return m < dim ? m : period - m;
    }
    default:
        return -1;
    }
}

/* One output row (the last dim) of Pad: src_row is the input row, or NULL
 * when the row lies in constant padding. map gives each position's source. */
static void slice_pad_row(char *dst, const char *src_row, const int64_t *map, int64_t n,
                          const char *value, size_t es)
{
    for (int64_t o = 0; o < n; o++) {
        const char *s = src_row != NULL && map[o] >= 0 ? src_row + map[o] * (int64_t)es : value;
        /* copy the run that maps to consecutive input elements at once */
        int64_t run = 1;
        if (s != value)
            while (o + run < n && map[o + run] == map[o] + run)
                run++;
        memcpy(dst + o * (int64_t)es, s, (size_t)run * es);
        o += run - 1;
    }
}

/* out = in padded by begins/ends (negative crops) in the given mode; value
 * is one element of the constant. */
static ogi_status slice_pad_run(op_ctx *c, const int64_t *begins, const int64_t *ends,
                                slice_pad_mode mode, const char *value, size_t es)
{
    const ogi_tensor *x = c->in[0];
    int r = x->rank;
    int64_t dims[OGI_MAX_RANK], total = 0;
    for (int k = 0; k < r; k++) {
        dims[k] = x->dims[k] + begins[k] + ends[k];
        if (dims[k] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "pads make axis %d negative", k);
        if (mode != SLICE_PAD_CONSTANT && x->dims[k] == 0 && dims[k] > 0)
            return op_error(c, OGI_ERR_RUNTIME, "cannot pad empty axis %d in this mode", k);
        total += dims[k];
    }
    ogi_status st = op_alloc(c, 0, x->dtype, r, dims);
    if (st != OGI_OK || tensor_numel(c->out[0]) == 0)
        return st;
    if (r == 0) {
        memcpy(c->out[0]->data, x->data, es);
        return OGI_OK;
    }
    int64_t *maps = malloc((size_t)total * sizeof(*maps));
    if (maps == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t *map[OGI_MAX_RANK], in_strides[OGI_MAX_RANK], coord[OGI_MAX_RANK] = {0};
    for (int64_t k = 0, at = 0; k < r; at += dims[k], k++) {
        map[k] = maps + at;
        for (int64_t o = 0; o < dims[k]; o++)
            map[k][o] = slice_pad_source(o - begins[k], x->dims[k], mode);
    }
    tensor_strides(r, x->dims, in_strides);
    int64_t inner = dims[r - 1], rows = tensor_numel(c->out[0]) / inner;
    char *dst = c->out[0]->data;
    for (int64_t row = 0; row < rows; row++, dst += inner * (int64_t)es) {
        int64_t off = 0;
        bool constant = false;
        for (int k = 0; k < r - 1; k++) {
            constant = constant || map[k][coord[k]] < 0;
            off += map[k][coord[k]] * in_strides[k];
        }
        const char *src = constant ? NULL : (const char *)x->data + off * (int64_t)es;
        slice_pad_row(dst, src, map[r - 1], inner, value, es);
        for (int k = r - 2; k >= 0 && ++coord[k] == dims[k]; k--)
            coord[k] = 0;
    }
    free(maps);
    return OGI_OK;
}

static ogi_status slice_pad_mode_of(const op_ctx *c, slice_pad_mode *mode)
{
    const char *m = op_attr_string(c, "mode", "constant");
    if (strcmp(m, "constant") == 0)
        *mode = SLICE_PAD_CONSTANT;
    else if (strcmp(m, "reflect") == 0)
        *mode = SLICE_PAD_REFLECT;
    else if (strcmp(m, "edge") == 0)
        *mode = SLICE_PAD_EDGE;
    else if (strcmp(m, "wrap") == 0)
        *mode = SLICE_PAD_WRAP;
    else
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute mode='%s' is not supported", m);
    return OGI_OK;
}

/* The constant element: input 2 from opset 11, the float attribute value
 * before; zero bytes by default. */
static ogi_status slice_pad_value(const op_ctx *c, char *value, size_t es)
{
    ogi_dtype dtype = c->in[0]->dtype;
    memset(value, 0, es);
    if (c->opset >= 11) {
        if (!op_has_input(c, 2) || tensor_numel(c->in[2]) == 0)
            return dtype == OGI_FLOAT8E8M0
                       ? op_error(c, OGI_ERR_UNSUPPORTED, "dtype float8e8m0 has no zero")
                       : OGI_OK;
        if (c->in[2]->dtype != dtype)
            return op_error(c, OGI_ERR_RUNTIME, "input 2: dtype differs from input 0");
        memcpy(value, c->in[2]->data, es);
        return OGI_OK;
    }
    float v = op_attr_float(c, "value", 0.0f);
    if (v == 0.0f)
        return OGI_OK;
    if (!dtype_is_float(dtype) && !dtype_is_integer(dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "constant value for dtype %s",
                        ogi_dtype_name(dtype));
    dtype_set_f64(value, dtype, 0, v);
    return OGI_OK;
}

/* Reads pads (begins then ends) into begins/ends for all axes. */
static ogi_status slice_pad_amounts(const op_ctx *c, int64_t *begins, int64_t *ends)
{
    int r = c->in[0]->rank;
    int64_t pads[2 * OGI_MAX_RANK], n, axes[OGI_MAX_RANK], n_axes = r;
    bool present;
    const char *name = c->opset < 2 ? "paddings" : "pads";
    ogi_status st =
        op_read_int_list(c, c->opset >= 11, 1, name, pads, 2 * OGI_MAX_RANK, &n, &present);
    if (st != OGI_OK)
        return st;
    if (!present)
        return op_error(c, OGI_ERR_INVALID_MODEL, "no pads");
    for (int i = 0; i < r; i++)
        axes[i] = i;
    if (c->opset >= 18 && op_has_input(c, 3) &&
        (st = op_read_ints(c, 3, axes, OGI_MAX_RANK, &n_axes)) != OGI_OK)
        return st;
    if (n != 2 * n_axes)
        return op_error(c, OGI_ERR_RUNTIME, "%lld pads for %lld axes", (long long)n,
                        (long long)n_axes);
    for (int i = 0; i < r; i++)
        begins[i] = ends[i] = 0;
    bool seen[OGI_MAX_RANK] = {false};
    for (int64_t i = 0; i < n_axes; i++) {
        int a;
        if ((st = slice_axis_of(c, axes[i], r, &a)) != OGI_OK)
            return st;
        if (seen[a])
            return op_error(c, OGI_ERR_RUNTIME, "axis %d is repeated", a);
        seen[a] = true;
        begins[a] = pads[i];
        ends[a] = pads[i + n_axes];
        if (begins[a] < -((int64_t)1 << 48) || begins[a] > ((int64_t)1 << 48) ||
            ends[a] < -((int64_t)1 << 48) || ends[a] > ((int64_t)1 << 48))
            return op_error(c, OGI_ERR_RUNTIME, "pads for axis %d are too large", a);
    }
    return OGI_OK;
}

static ogi_status slice_pad(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = slice_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    slice_pad_mode mode;
    int64_t begins[OGI_MAX_RANK], ends[OGI_MAX_RANK];
    char value[16];
    if ((st = slice_pad_mode_of(c, &mode)) != OGI_OK ||
        (st = slice_pad_amounts(c, begins, ends)) != OGI_OK ||
        (st = slice_pad_value(c, value, es)) != OGI_OK)
        return st;
    return slice_pad_run(c, begins, ends, mode, value, es);
}

/* CenterCropPad: per listed axis, crop (start at (dim - target) / 2) or
 * zero-pad (begin with (target - dim) / 2) to the target size. */
static ogi_status slice_center_crop_pad(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = slice_elem_size(c, 0, &es)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int r = x->rank;
    int64_t shape[OGI_MAX_RANK], n, axes[OGI_MAX_RANK], n_axes = r;
    bool present;
    if ((st = op_read_ints(c, 1, shape, OGI_MAX_RANK, &n)) != OGI_OK ||
        (st = op_read_int_list(c, false, 0, "axes", axes, OGI_MAX_RANK, &n_axes, &present)) !=
            OGI_OK)
        return st;
    if (!present) {
        n_axes = r;
        for (int i = 0; i < r; i++)
            axes[i] = i;
    }
    if (n != n_axes)
        return op_error(c, OGI_ERR_RUNTIME, "shape has %lld values for %lld axes", (long long)n,
                        (long long)n_axes);
    int64_t begins[OGI_MAX_RANK] = {0}, ends[OGI_MAX_RANK] = {0};
    bool seen[OGI_MAX_RANK] = {false};
    for (int64_t i = 0; i < n; i++) {
        int a;
        if ((st = slice_axis_of(c, axes[i], r, &a)) != OGI_OK)
            return st;
        if (seen[a] || shape[i] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "axis %d is repeated or its size negative", a);
        seen[a] = true;
        int64_t diff = shape[i] - x->dims[a];
        begins[a] = diff >= 0 ? diff / 2 : -((-diff) / 2);
        ends[a] = diff - begins[a];
    }
    char zero[16] = {0};
    if (x->dtype == OGI_FLOAT8E8M0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "dtype float8e8m0 has no zero");
    return slice_pad_run(c, begins, ends, SLICE_PAD_CONSTANT, zero, es);
}

/* ---- DepthToSpace, SpaceToDepth --------------------------------------------------- */

static ogi_status slice_block_input(const op_ctx *c, int64_t *block, size_t *es)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK || (st = slice_elem_size(c, 0, es)) != OGI_OK)
        return st;
    if (c->in[0]->rank != 4)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank 4, got %d", c->in[0]->rank);
    *block = op_attr_int(c, "blocksize", 0);
    if (*block <= 0 || *block > ((int64_t)1 << 20))
        return op_error(c, OGI_ERR_INVALID_MODEL, "blocksize %lld is not positive",
                        (long long)*block);
    return OGI_OK;
}

/* DepthToSpace moves channel blocks into b x b spatial tiles: the output
 * seen as [N, C', H, b, W, b] reads input channel (i * b + j) * C' + c
 * (DCR) or c * b * b + i * b + j (CRD). */
static ogi_status slice_depth_to_space(op_ctx *c)
{
    int64_t b;
    size_t es;
    ogi_status st = slice_block_input(c, &b, &es);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t n = x->dims[0], ch = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (ch % (b * b) != 0)
        return op_error(c, OGI_ERR_RUNTIME, "channels %lld not divisible by blocksize^2",
                        (long long)ch);
    const char *mode = c->opset >= 11 ? op_attr_string(c, "mode", "DCR") : "DCR";
    bool crd = strcmp(mode, "CRD") == 0;
    if (!crd && strcmp(mode, "DCR") != 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute mode='%s' is not supported", mode);
    int64_t co = ch / (b * b), hw = h * w;
    int64_t dims[4] = {n, co, h * b, w * b};
    if ((st = op_alloc(c, 0, x->dtype, 4, dims)) != OGI_OK)
        return st;
    strided_view v = {.rank = 6, .elsize = es, .src = x->data, .dst = c->out[0]->data};
    int64_t vd[6] = {n, co, h, b, w, b};
    int64_t vs[6] = {ch * hw, crd ? b * b * hw : hw, w, crd ? b * hw : b * co * hw,
                     1,       crd ? hw : co * hw};
    memcpy(v.dims, vd, sizeof(vd));
    memcpy(v.strides, vs, sizeof(vs));
    strided_copy(c->pool, &v);
    return OGI_OK;
}

/* SpaceToDepth: output channel (i * b + j) * C + c of tile (h', w') is
 * input [c][h' * b + i][w' * b + j]; the output seen as [N, b, b, C, H', W']. */
static ogi_status slice_space_to_depth(op_ctx *c)
{
    int64_t b;
    size_t es;
    ogi_status st = slice_block_input(c, &b, &es);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t n = x->dims[0], ch = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (h % b != 0 || w % b != 0)
        return op_error(c, OGI_ERR_RUNTIME, "spatial dims not divisible by blocksize %lld",
                        (long long)b);
    int64_t dims[4] = {n, ch * b * b, h / b, w / b};
    if ((st = op_alloc(c, 0, x->dtype, 4, dims)) != OGI_OK)
        return st;
    strided_view v = {.rank = 6, .elsize = es, .src = x->data, .dst = c->out[0]->data};
    int64_t vd[6] = {n, b, b, ch, h / b, w / b};
    int64_t vs[6] = {ch * h * w, w, 1, h * w, b * w, b};
    memcpy(v.dims, vd, sizeof(vd));
    memcpy(v.strides, vs, sizeof(vs));
    strided_copy(c->pool, &v);
    return OGI_OK;
}

/* ---- ReverseSequence --------------------------------------------------------------- */

/* Reverses the first sequence_lens[b] steps along the time axis of each batch
 * entry; later steps are copied unchanged. */
static ogi_status slice_reverse_sequence(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    size_t es;
    if (st != OGI_OK || (st = slice_elem_size(c, 0, &es)) != OGI_OK ||
        (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t time_axis = op_attr_int(c, "time_axis", 0),
            batch_axis = op_attr_int(c, "batch_axis", 1);
    if (x->rank < 2 || time_axis < 0 || time_axis > 1 || batch_axis < 0 || batch_axis > 1 ||
        time_axis == batch_axis)
        return op_error(c, OGI_ERR_RUNTIME, "needs rank >= 2 and time/batch axes 0 and 1");
    int64_t steps = x->dims[time_axis], batch = x->dims[batch_axis];
    int64_t inner = slice_prod(x->dims, 2, x->rank), n;
    int64_t *lens = malloc((size_t)(batch > 0 ? batch : 1) * sizeof(*lens));
    if (lens == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    st = op_read_ints(c, 1, lens, batch, &n);
    for (int64_t b = 0; st == OGI_OK && b < batch; b++)
        if (n != batch || lens[b] < 0 || lens[b] > steps)
            st = op_error(c, OGI_ERR_RUNTIME, "sequence_lens must hold %lld values in [0, %lld]",
                          (long long)batch, (long long)steps);
    if (st == OGI_OK)
        st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    size_t block = (size_t)inner * es;
    for (int64_t t = 0; st == OGI_OK && t < steps; t++) {
        for (int64_t b = 0; b < batch && block > 0; b++) {
            int64_t from = t < lens[b] ? lens[b] - 1 - t : t;
            int64_t dst = time_axis == 0 ? t * batch + b : b * steps + t;
            int64_t src = time_axis == 0 ? from * batch + b : b * steps + from;
            memcpy((char *)c->out[0]->data + (size_t)dst * block,
                   (const char *)x->data + (size_t)src * block, block);
        }
    }
    free(lens);
    return st;
}

const op_kernel op_kernels_slice[] = {
    {"", "Slice", 1, slice_slice},
    {"", "Concat", 1, slice_concat},
    {"", "Split", 1, slice_split},
    {"", "Pad", 1, slice_pad},
    {"", "CenterCropPad", 18, slice_center_crop_pad},
    {"", "DepthToSpace", 1, slice_depth_to_space},
    {"", "SpaceToDepth", 1, slice_space_to_depth},
    {"", "ReverseSequence", 10, slice_reverse_sequence},
    {NULL, NULL, 0, NULL},
};
