/* Reductions over a set of axes (ReduceSum, ReduceMean, ReduceMax, ...),
 * ArgMax/ArgMin, the running CumSum/CumProd, and TopK.
 *
 * Floating types accumulate in double; integer types in 64-bit integers with
 * wrapping arithmetic, so the final narrowing gives the same bits as
 * arithmetic in the narrow type. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

typedef enum reduce_kind {
    REDUCE_SUM,
    REDUCE_MEAN,
    REDUCE_MAX,
    REDUCE_MIN,
    REDUCE_PROD,
    REDUCE_L1,
    REDUCE_L2,
    REDUCE_LOG_SUM,
    REDUCE_LOG_SUM_EXP,
    REDUCE_SUM_SQUARE,
} reduce_kind;

/* An input seen as rows of its last dim; each input element maps to the
 * output element at (row base) + j * out_stride[rank-1]. */
typedef struct reduce_plan {
    int rank;
    int64_t dims[OGI_MAX_RANK];
    bool reduced[OGI_MAX_RANK];
    int64_t out_stride[OGI_MAX_RANK]; /* 0 for reduced dims */
    int64_t out_numel;
    int64_t count; /* input elements folded into one output */
    int out_rank;
    int64_t out_dims[OGI_MAX_RANK];
} reduce_plan;

/* ---- element access ------------------------------------------------------- */

static void reduce_load_f64(const void *data, ogi_dtype t, int64_t start, int64_t n, double *buf)
{
    switch (t) {
    case OGI_FLOAT32:
        for (int64_t j = 0; j < n; j++)
            buf[j] = ((const float *)data)[start + j];
        return;
    case OGI_FLOAT64:
        memcpy(buf, (const double *)data + start, (size_t)n * sizeof(double));
        return;
    default:
        for (int64_t j = 0; j < n; j++)
            buf[j] = dtype_get_f64(data, t, start + j);
        return;
    }
}

static void reduce_load_i64(const void *data, ogi_dtype t, int64_t start, int64_t n, int64_t *buf)
{
    switch (t) {
    case OGI_INT64:
        memcpy(buf, (const int64_t *)data + start, (size_t)n * sizeof(int64_t));
        return;
    case OGI_INT32:
        for (int64_t j = 0; j < n; j++)
            buf[j] = ((const int32_t *)data)[start + j];
        return;
    default:
        for (int64_t j = 0; j < n; j++)
            buf[j] = dtype_get_i64(data, t, start + j);
        return;
    }
}

/* The smallest / largest value of an integer or bool dtype, as int64 bits
 * (uint64's largest is all ones, i.e. -1). */
static int64_t reduce_int_lowest(ogi_dtype t)
{
    switch (t) {
    case OGI_INT8:
        return INT8_MIN;
    case OGI_INT16:
        return INT16_MIN;
    case OGI_INT32:
        return INT32_MIN;
    case OGI_INT64:
        return INT64_MIN;
    default:
        return 0; /* unsigned and bool */
    }
}

static int64_t reduce_int_highest(ogi_dtype t)
{
    switch (t) {
    case OGI_INT8:
        return INT8_MAX;
    case OGI_INT16:
        return INT16_MAX;
    case OGI_INT32:
        return INT32_MAX;
    case OGI_INT64:
        return INT64_MAX;
    case OGI_UINT8:
        return UINT8_MAX;
    case OGI_UINT16:
        return UINT16_MAX;
    case OGI_UINT32:
        return UINT32_MAX;
    case OGI_UINT64:
        return -1;
    default:
        return 1; /* bool */
    }
}

/* a > b in the order of dtype t (uint64 compares unsigned). */
static bool reduce_int_greater(int64_t a, int64_t b, bool is_u64)
{
    return is_u64 ? (uint64_t)a > (uint64_t)b : a > b;
}

/* ---- axes and the plan ---------------------------------------------------- */

/* Reads the axes (from input 1 or the "axes" attribute) into reduced[].
 * *noop is set when the axes are empty and noop_with_empty_axes says so. */
static ogi_status reduce_read_axes(op_ctx *c, bool axes_from_input, int rank, bool *reduced,
                                   bool *noop)
{
    int64_t axes[OGI_MAX_RANK];
    int64_t n = 0;
    if (axes_from_input) {
        if (op_has_input(c, 1)) {
            if (tensor_numel(c->in[1]) > rank)
                return op_error(c, OGI_ERR_RUNTIME, "input 1: %lld axes for a rank-%d input",
                                (long long)tensor_numel(c->in[1]), rank);
            ogi_status st = op_read_ints(c, 1, axes, OGI_MAX_RANK, &n);
            if (st != OGI_OK)
                return st;
        }
    } else {
        const int64_t *vals = NULL;
        op_attr_ints(c, "axes", &vals, &n);
        if (n > rank)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute axes: %lld axes for rank %d",
                            (long long)n, rank);
        for (int64_t i = 0; i < n; i++)
            axes[i] = vals[i];
    }
    *noop = false;
    if (n == 0) {
        *noop = axes_from_input && op_attr_int(c, "noop_with_empty_axes", 0) != 0;
        for (int d = 0; d < rank; d++)
            reduced[d] = !*noop;
        return OGI_OK;
    }
    for (int d = 0; d < rank; d++)
        reduced[d] = false;
    for (int64_t i = 0; i < n; i++) {
        int axis;
        ogi_status st = op_normalize_axis(c, axes[i], rank, &axis);
        if (st != OGI_OK)
            return st;
        if (reduced[axis])
            return op_error(c, OGI_ERR_RUNTIME, "axis %lld appears twice", (long long)axes[i]);
        reduced[axis] = true;
    }
    return OGI_OK;
}

static void reduce_make_plan(const ogi_tensor *x, const bool *reduced, bool keepdims,
                             reduce_plan *p)
{
    p->rank = x->rank;
    p->count = 1;
    p->out_rank = 0;
    for (int d = 0; d < x->rank; d++) {
        p->dims[d] = x->dims[d];
        p->reduced[d] = reduced[d];
        if (reduced[d]) {
            p->count *= x->dims[d];
            if (keepdims)
                p->out_dims[p->out_rank++] = 1;
        } else {
            p->out_dims[p->out_rank++] = x->dims[d];
        }
    }
    int64_t stride = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        p->out_stride[d] = reduced[d] ? 0 : stride;
        if (!reduced[d])
            stride *= x->dims[d];
    }
    p->out_numel = stride;
}

/* Output offset of the start of input row `row` (rows of the last dim). */
static int64_t reduce_row_base(const reduce_plan *p, int64_t row)
{
    int64_t base = 0;
    for (int d = p->rank - 2; d >= 0; d--) {
        int64_t i = row % p->dims[d];
        row /= p->dims[d];
        base += i * p->out_stride[d];
    }
    return base;
}

/* ---- floating-point accumulation ------------------------------------------ */

static double reduce_f64_init(reduce_kind k)
{
    switch (k) {
    case REDUCE_PROD:
        return 1.0;
    case REDUCE_MAX:
        return -INFINITY;
    case REDUCE_MIN:
        return INFINITY;
    default:
        return 0.0;
    }
}

/* Folds n values into acc[j * stride]; shift[] holds LogSumExp's maxima. */
static void reduce_f64_row(reduce_kind k, const double *x, int64_t n, double *acc, int64_t stride,
                           const double *shift)
{
    switch (k) {
    case REDUCE_SUM:
    case REDUCE_MEAN:
    case REDUCE_LOG_SUM:
        for (int64_t j = 0; j < n; j++)
            acc[j * stride] += x[j];
        break;
    case REDUCE_L1:
        for (int64_t j = 0; j < n; j++)
            acc[j * stride] += fabs(x[j]);
        break;
    case REDUCE_L2:
    case REDUCE_SUM_SQUARE:
        for (int64_t j = 0; j < n; j++)
            acc[j * stride] += x[j] * x[j];
        break;
    case REDUCE_PROD:
        for (int64_t j = 0; j < n; j++)
            acc[j * stride] *= x[j];
        break;
    case REDUCE_MAX: /* NaN propagates, as in numpy */
        for (int64_t j = 0; j < n; j++)
            if (x[j] > acc[j * stride] || isnan(x[j]))
                acc[j * stride] = x[j];
        break;
    case REDUCE_MIN:
        for (int64_t j = 0; j < n; j++)
            if (x[j] < acc[j * stride] || isnan(x[j]))
                acc[j * stride] = x[j];
        break;
    case REDUCE_LOG_SUM_EXP:
        for (int64_t j = 0; j < n; j++)
            acc[j * stride] += exp(x[j] - shift[j * stride]);
        break;
    }
}

static double reduce_f64_final(reduce_kind k, double acc, int64_t count, double shift)
{
    switch (k) {
    case REDUCE_MEAN:
        return acc / (double)count;
    case REDUCE_L2:
        return sqrt(acc);
    case REDUCE_LOG_SUM:
        return log(acc);
    case REDUCE_LOG_SUM_EXP:
        return log(acc) + shift;
    default:
        return acc;
    }
}

/* One pass over the input folding every row into acc (out_numel cells). */
static void reduce_f64_pass(const reduce_plan *p, const ogi_tensor *x, reduce_kind k, double *acc,
                            const double *shift, double *row_buf)
{
    int64_t inner = p->rank > 0 ? p->dims[p->rank - 1] : 1;
    int64_t stride = p->rank > 0 ? p->out_stride[p->rank - 1] : 0;
    if (inner == 0)
        return;
    int64_t rows = tensor_numel(x) / inner;
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = reduce_row_base(p, r);
        reduce_load_f64(x->data, x->dtype, r * inner, inner, row_buf);
        reduce_f64_row(k, row_buf, inner, acc + base, stride, shift ? shift + base : NULL);
    }
}

static ogi_status reduce_run_f64(op_ctx *c, const reduce_plan *p, reduce_kind k)
{
    const ogi_tensor *x = c->in[0];
    int64_t inner = p->rank > 0 ? p->dims[p->rank - 1] : 1;
    double *acc = malloc((size_t)(p->out_numel + 1) * sizeof(double));
    double *shift = malloc((size_t)(p->out_numel + 1) * sizeof(double));
    double *row = malloc((size_t)(inner + 1) * sizeof(double));
    if (acc == NULL || shift == NULL || row == NULL) {
        free(acc);
        free(shift);
        free(row);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    bool lse = k == REDUCE_LOG_SUM_EXP;
    for (int64_t i = 0; i < p->out_numel; i++) {
        shift[i] = lse ? -INFINITY : 0.0;
        acc[i] = reduce_f64_init(k);
    }
    if (lse) {
        /* max first, so exp() never overflows; an infinite max shifts by 0 */
        reduce_f64_pass(p, x, REDUCE_MAX, shift, NULL, row);
        for (int64_t i = 0; i < p->out_numel; i++)
            if (!isfinite(shift[i]))
                shift[i] = isnan(shift[i]) ? shift[i] : 0.0;
    }
    reduce_f64_pass(p, x, k, acc, lse ? shift : NULL, row);
    ogi_status st = op_alloc(c, 0, x->dtype, p->out_rank, p->out_dims);
    if (st == OGI_OK) {
        void *y = c->out[0]->data;
        for (int64_t i = 0; i < p->out_numel; i++)
            dtype_set_f64(y, x->dtype, i, reduce_f64_final(k, acc[i], p->count, shift[i]));
    }
    free(acc);
    free(shift);
    free(row);
    return st;
}

/* ---- integer accumulation ------------------------------------------------- */

static void reduce_i64_row(reduce_kind k, const int64_t *x, int64_t n, int64_t *acc, int64_t stride,
                           bool is_u64)
{
    /* unsigned arithmetic wraps without undefined behaviour */
    uint64_t *u = (uint64_t *)acc;
    switch (k) {
    case REDUCE_SUM:
        for (int64_t j = 0; j < n; j++)
            u[j * stride] += (uint64_t)x[j];
        break;
    case REDUCE_L1:
        for (int64_t j = 0; j < n; j++)
            u[j * stride] += (is_u64 || x[j] >= 0) ? (uint64_t)x[j] : 0 - (uint64_t)x[j];
        break;
    case REDUCE_SUM_SQUARE:
        for (int64_t j = 0; j < n; j++)
            u[j * stride] += (uint64_t)x[j] * (uint64_t)x[j];
        break;
    case REDUCE_PROD:
        for (int64_t j = 0; j < n; j++)
            u[j * stride] *= (uint64_t)x[j];
        break;
    case REDUCE_MAX:
        for (int64_t j = 0; j < n; j++)
            if (reduce_int_greater(x[j], acc[j * stride], is_u64))
                acc[j * stride] = x[j];
        break;
    case REDUCE_MIN:
        for (int64_t j = 0; j < n; j++)
            if (reduce_int_greater(acc[j * stride], x[j], is_u64))
                acc[j * stride] = x[j];
        break;
    default:
        break; /* the others run in double */
    }
}

static ogi_status reduce_run_i64(op_ctx *c, const reduce_plan *p, reduce_kind k)
{
    const ogi_tensor *x = c->in[0];
    int64_t inner = p->rank > 0 ? p->dims[p->rank - 1] : 1;
    int64_t stride = p->rank > 0 ? p->out_stride[p->rank - 1] : 0;
    int64_t *acc = malloc((size_t)(p->out_numel + 1) * sizeof(int64_t));
    int64_t *row = malloc((size_t)(inner + 1) * sizeof(int64_t));
    if (acc == NULL || row == NULL) {
        free(acc);
        free(row);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int64_t init = k == REDUCE_PROD  ? 1
                   : k == REDUCE_MAX ? reduce_int_lowest(x->dtype)
                   : k == REDUCE_MIN ? reduce_int_highest(x->dtype)
                                     : 0;
    for (int64_t i = 0; i < p->out_numel; i++)
        acc[i] = init;
    int64_t rows = inner > 0 ? tensor_numel(x) / inner : 0;
    bool is_u64 = x->dtype == OGI_UINT64;
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = reduce_row_base(p, r);
        reduce_load_i64(x->data, x->dtype, r * inner, inner, row);
        reduce_i64_row(k, row, inner, acc + base, stride, is_u64);
    }
    ogi_status st = op_alloc(c, 0, x->dtype, p->out_rank, p->out_dims);
    if (st == OGI_OK)
        for (int64_t i = 0; i < p->out_numel; i++)
            dtype_set_i64(c->out[0]->data, x->dtype, i, acc[i]);
    free(acc);
    free(row);
    return st;
}

/* ---- the Reduce* kernels -------------------------------------------------- */

/* axes_since: the opset from which axes is an input instead of an attribute. */
static ogi_status reduce_run(op_ctx *c, reduce_kind k, int axes_since)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    bool minmax = k == REDUCE_MAX || k == REDUCE_MIN;
    bool is_int = dtype_is_integer(x->dtype) || (minmax && x->dtype == OGI_BOOL);
    if (!dtype_is_float(x->dtype) && !is_int)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    bool reduced[OGI_MAX_RANK];
    bool noop;
    st = reduce_read_axes(c, c->opset >= axes_since, x->rank, reduced, &noop);
    if (st != OGI_OK)
        return st;
    /* noop_with_empty_axes reduces nothing, but the elementwise part of
     * L1/L2/LogSum/SumSquare... still applies (as ONNX's reference and ONNX
     * Runtime do): the plan below simply has no reduced axis */
    (void)noop;
    reduce_plan p;
    reduce_make_plan(x, reduced, op_attr_int(c, "keepdims", 1) != 0, &p);
    bool int_exact =
        k == REDUCE_SUM || k == REDUCE_PROD || minmax || k == REDUCE_L1 || k == REDUCE_SUM_SQUARE;
    if (is_int && int_exact)
        return reduce_run_i64(c, &p, k);
    return reduce_run_f64(c, &p, k);
}

static ogi_status reduce_sum(op_ctx *c)
{
    return reduce_run(c, REDUCE_SUM, 13);
}

static ogi_status reduce_mean(op_ctx *c)
{
    return reduce_run(c, REDUCE_MEAN, 18);
}

static ogi_status reduce_max(op_ctx *c)
{
    return reduce_run(c, REDUCE_MAX, 18);
}

static ogi_status reduce_min(op_ctx *c)
{
    return reduce_run(c, REDUCE_MIN, 18);
}

static ogi_status reduce_prod(op_ctx *c)
{
    return reduce_run(c, REDUCE_PROD, 18);
}

static ogi_status reduce_l1(op_ctx *c)
{
    return reduce_run(c, REDUCE_L1, 18);
}

static ogi_status reduce_l2(op_ctx *c)
{
    return reduce_run(c, REDUCE_L2, 18);
}

static ogi_status reduce_log_sum(op_ctx *c)
{
    return reduce_run(c, REDUCE_LOG_SUM, 18);
}

static ogi_status reduce_log_sum_exp(op_ctx *c)
{
    return reduce_run(c, REDUCE_LOG_SUM_EXP, 18);
}

static ogi_status reduce_sum_square(op_ctx *c)
{
    return reduce_run(c, REDUCE_SUM_SQUARE, 18);
}

/* ---- ArgMax / ArgMin ------------------------------------------------------ */

/* The input as outer x n x inner around `axis`. */
static void reduce_split_at(const ogi_tensor *x, int axis, int64_t *outer, int64_t *n,
                            int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        *inner *= x->dims[d];
    *n = x->dims[axis];
}

/* Does candidate value a beat the current best b? NaN beats numbers (numpy
 * returns the first NaN); ties go to the later index only when `last`. */
static bool reduce_arg_better_f64(double a, double b, bool want_max, bool last)
{
    if (isnan(b))
        return last && isnan(a);
    if (isnan(a))
        return true;
    if (a == b)
        return last;
    return want_max ? a > b : a < b;
}

static bool reduce_arg_better_i64(int64_t a, int64_t b, bool want_max, bool last, bool is_u64)
{
    if (a == b)
        return last;
    return want_max ? reduce_int_greater(a, b, is_u64) : reduce_int_greater(b, a, is_u64);
}

static int64_t reduce_arg_scan(const ogi_tensor *x, int64_t start, int64_t n, int64_t inner,
                               bool want_max, bool last)
{
    int64_t best = 0;
    if (dtype_is_float(x->dtype)) {
        double bv = dtype_get_f64(x->data, x->dtype, start);
        for (int64_t i = 1; i < n; i++) {
            double v = dtype_get_f64(x->data, x->dtype, start + i * inner);
            if (reduce_arg_better_f64(v, bv, want_max, last)) {
                bv = v;
                best = i;
            }
        }
        return best;
    }
    bool is_u64 = x->dtype == OGI_UINT64;
    int64_t bv = dtype_get_i64(x->data, x->dtype, start);
    for (int64_t i = 1; i < n; i++) {
        int64_t v = dtype_get_i64(x->data, x->dtype, start + i * inner);
        if (reduce_arg_better_i64(v, bv, want_max, last, is_u64)) {
            bv = v;
            best = i;
        }
    }
    return best;
}

static ogi_status reduce_arg(op_ctx *c, bool want_max)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype) && !dtype_is_integer(x->dtype) && x->dtype != OGI_BOOL)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (x->rank == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got a scalar");
    int axis;
    st = op_normalize_axis(c, op_attr_int(c, "axis", 0), x->rank, &axis);
    if (st != OGI_OK)
        return st;
    int64_t outer, n, inner;
    reduce_split_at(x, axis, &outer, &n, &inner);
    if (n == 0 && outer * inner > 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: axis %d is empty", axis);
    bool keepdims = op_attr_int(c, "keepdims", 1) != 0;
    bool last = op_attr_int(c, "select_last_index", 0) != 0;
    int64_t dims[OGI_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (d != axis || keepdims)
            dims[rank++] = d == axis ? 1 : x->dims[d];
    st = op_alloc(c, 0, OGI_INT64, rank, dims);
    if (st != OGI_OK)
        return st;
    int64_t *y = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            y[o * inner + i] = reduce_arg_scan(x, o * n * inner + i, n, inner, want_max, last);
    return OGI_OK;
}

static ogi_status reduce_argmax(op_ctx *c)
{
    return reduce_arg(c, true);
}

static ogi_status reduce_argmin(op_ctx *c)
{
    return reduce_arg(c, false);
}

/* ---- CumSum / CumProd ----------------------------------------------------- */

/* Running sum or product along an axis: y[i] folds x[0..i] (x[0..i) when
 * exclusive; from the end when reverse). */
static void reduce_cumulate_column(const ogi_tensor *x, void *y, int64_t start, int64_t n,
                                   int64_t inner, bool product, bool exclusive, bool reverse)
{
    bool is_float = dtype_is_float(x->dtype);
    double fa = product ? 1.0 : 0.0;
    uint64_t ia = product ? 1 : 0;
    for (int64_t t = 0; t < n; t++) {
        int64_t p = start + (reverse ? n - 1 - t : t) * inner;
        if (exclusive) {
            if (is_float)
                dtype_set_f64(y, x->dtype, p, fa);
            else
                dtype_set_i64(y, x->dtype, p, (int64_t)ia);
        }
        if (is_float) {
            double v = dtype_get_f64(x->data, x->dtype, p);
            fa = product ? fa * v : fa + v;
        } else {
            uint64_t v = (uint64_t)dtype_get_i64(x->data, x->dtype, p);
            ia = product ? ia * v : ia + v;
        }
        if (!exclusive) {
            if (is_float)
                dtype_set_f64(y, x->dtype, p, fa);
            else
                dtype_set_i64(y, x->dtype, p, (int64_t)ia);
        }
    }
}

static ogi_status reduce_cumulate(op_ctx *c, bool product)
{
    ogi_status st = op_require_input(c, 0);
    if (st == OGI_OK)
        st = op_require_input(c, 1);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype) && !dtype_is_integer(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (x->rank == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got a scalar");
    int64_t axis_value;
    st = op_read_scalar_i64(c, 1, &axis_value);
    if (st != OGI_OK)
        return st;
    int axis;
    st = op_normalize_axis(c, axis_value, x->rank, &axis);
    if (st != OGI_OK)
        return st;
    st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    bool exclusive = op_attr_int(c, "exclusive", 0) != 0;
    bool reverse = op_attr_int(c, "reverse", 0) != 0;
    int64_t outer, n, inner;
    reduce_split_at(x, axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            reduce_cumulate_column(x, c->out[0]->data, o * n * inner + i, n, inner, product,
                                   exclusive, reverse);
    return OGI_OK;
}

static ogi_status reduce_cumsum(op_ctx *c)
{
    return reduce_cumulate(c, false);
}

static ogi_status reduce_cumprod(op_ctx *c)
{
    return reduce_cumulate(c, true);
}

/* ---- TopK ----------------------------------------------------------------- */

/* A value with its index along the axis. Keys are double for floats, int64
 * bits for integers (compared unsigned for uint64). */
typedef struct topk_item {
    union {
        double f;
        int64_t i;
    } key;
    int64_t index;
} topk_item;

/* Orders by key, NaN above every number, then by lower index: a total order,
 * so qsort's lack of stability does not matter. */
static int topk_cmp_f64(double a, double b)
{
    bool na = isnan(a), nb = isnan(b);
    if (na || nb)
        return na == nb ? 0 : (na ? 1 : -1);
    return a < b ? -1 : a > b ? 1 : 0;
}

static int topk_by_index(const topk_item *a, const topk_item *b)
{
    return a->index < b->index ? -1 : a->index > b->index ? 1 : 0;
}

static int topk_f64_desc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = topk_cmp_f64(b->key.f, a->key.f);
    return r != 0 ? r : topk_by_index(a, b);
}

static int topk_f64_asc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = topk_cmp_f64(a->key.f, b->key.f);
    return r != 0 ? r : topk_by_index(a, b);
}

static int topk_i64_desc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = a->key.i > b->key.i ? -1 : a->key.i < b->key.i ? 1 : 0;
    return r != 0 ? r : topk_by_index(a, b);
}

static int topk_i64_asc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    int r = a->key.i < b->key.i ? -1 : a->key.i > b->key.i ? 1 : 0;
    return r != 0 ? r : topk_by_index(a, b);
}

static int topk_u64_desc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    uint64_t x = (uint64_t)a->key.i, y = (uint64_t)b->key.i;
    int r = x > y ? -1 : x < y ? 1 : 0;
    return r != 0 ? r : topk_by_index(a, b);
}

static int topk_u64_asc(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    uint64_t x = (uint64_t)a->key.i, y = (uint64_t)b->key.i;
    int r = x < y ? -1 : x > y ? 1 : 0;
    return r != 0 ? r : topk_by_index(a, b);
}

typedef int (*topk_cmp_fn)(const void *, const void *);

static topk_cmp_fn topk_comparator(ogi_dtype t, bool largest)
{
    if (dtype_is_float(t))
        return largest ? topk_f64_desc : topk_f64_asc;
    if (t == OGI_UINT64)
        return largest ? topk_u64_desc : topk_u64_asc;
    return largest ? topk_i64_desc : topk_i64_asc;
}

static ogi_status topk_read_k(op_ctx *c, int64_t *k)
{
    if (c->opset < 10) {
        if (op_attr(c, "k") == NULL)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute k is missing");
        *k = op_attr_int(c, "k", 0);
        return OGI_OK;
    }
    ogi_status st = op_require_input(c, 1);
    if (st != OGI_OK)
        return st;
    int64_t n;
    st = op_read_ints(c, 1, k, 1, &n);
    if (st == OGI_OK && n != 1)
        return op_error(c, OGI_ERR_RUNTIME, "input 1: expected one k, got %lld", (long long)n);
    return st;
}

/* Sorts one column into items[] and writes its first k entries. */
static void topk_column(const ogi_tensor *x, topk_item *items, int64_t start, int64_t n,
                        int64_t inner, int64_t k, topk_cmp_fn cmp, void *values, int64_t *indices,
                        int64_t out_start)
{
    bool is_float = dtype_is_float(x->dtype);
    for (int64_t i = 0; i < n; i++) {
        if (is_float)
            items[i].key.f = dtype_get_f64(x->data, x->dtype, start + i * inner);
        else
            items[i].key.i = dtype_get_i64(x->data, x->dtype, start + i * inner);
        items[i].index = i;
    }
    qsort(items, (size_t)n, sizeof(topk_item), cmp);
    int size = dtype_size(x->dtype);
    for (int64_t j = 0; j < k; j++) {
        int64_t src = start + items[j].index * inner;
        int64_t dst = out_start + j * inner;
        memcpy((char *)values + dst * size, (const char *)x->data + src * size, (size_t)size);
        indices[dst] = items[j].index;
    }
}

static ogi_status topk_run(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype) && !dtype_is_integer(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (x->rank == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got a scalar");
    int axis;
    st = op_normalize_axis(c, op_attr_int(c, "axis", -1), x->rank, &axis);
    if (st != OGI_OK)
        return st;
    int64_t k;
    st = topk_read_k(c, &k);
    if (st != OGI_OK)
        return st;
    if (k < 0 || k > x->dims[axis])
        return op_error(c, OGI_ERR_RUNTIME, "k=%lld is outside [0, %lld]", (long long)k,
                        (long long)x->dims[axis]);
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[axis] = k;
    st = op_alloc(c, 0, x->dtype, x->rank, dims);
    if (st == OGI_OK)
        st = op_alloc(c, 1, OGI_INT64, x->rank, dims);
    if (st != OGI_OK)
        return st;
    int64_t outer, n, inner;
    reduce_split_at(x, axis, &outer, &n, &inner);
    topk_item *items = malloc((size_t)(n + 1) * sizeof(topk_item));
    if (items == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    /* largest and sorted arrived in opset 11; unsorted output may be sorted */
    topk_cmp_fn cmp = topk_comparator(x->dtype, op_attr_int(c, "largest", 1) != 0);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            topk_column(x, items, o * n * inner + i, n, inner, k, cmp, c->out[0]->data,
                        c->out[1]->data, o * k * inner + i);
    free(items);
    return OGI_OK;
}

const op_kernel op_kernels_reduce[] = {
    {"", "ReduceSum", 1, reduce_sum},
    {"", "ReduceMean", 1, reduce_mean},
    {"", "ReduceMax", 1, reduce_max},
    {"", "ReduceMin", 1, reduce_min},
    {"", "ReduceProd", 1, reduce_prod},
    {"", "ReduceL1", 1, reduce_l1},
    {"", "ReduceL2", 1, reduce_l2},
    {"", "ReduceLogSum", 1, reduce_log_sum},
    {"", "ReduceLogSumExp", 1, reduce_log_sum_exp},
    {"", "ReduceSumSquare", 1, reduce_sum_square},
    {"", "ArgMax", 1, reduce_argmax},
    {"", "ArgMin", 1, reduce_argmin},
    {"", "CumSum", 11, reduce_cumsum},
    {"", "CumProd", 26, reduce_cumprod},
    {"", "TopK", 1, topk_run},
    {NULL, NULL, 0, NULL},
};
