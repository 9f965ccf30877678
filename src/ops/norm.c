/* Normalisations: LayerNormalization, BatchNormalization, InstanceNormalization,
 * GroupNormalization, LpNormalization, MeanVarianceNormalization and LRN.
 *
 * Every op computes its statistics in double (two passes: mean, then the
 * mean of squared deviations) and rounds once when storing. Parameters
 * (scale, bias, running mean/var) are read into double vectors first. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

/* ---- shared helpers ------------------------------------------------------- */

static ogi_status norm_require_float(op_ctx *c, int i)
{
    ogi_status st = op_require_input(c, i);
    if (st != OGI_OK)
        return st;
    if (!dtype_is_float(c->in[i]->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                        ogi_dtype_name(c->in[i]->dtype));
    return OGI_OK;
}

/* Reads float input i, which must hold n elements, into a new double array
 * (free with free()). An omitted optional input gives `fill` everywhere. */
static ogi_status norm_read_vector(op_ctx *c, int i, int64_t n, bool optional, double fill,
                                   double **out)
{
    *out = NULL;
    if (!op_has_input(c, i) && !optional)
        return op_require_input(c, i);
    if (op_has_input(c, i)) {
        ogi_status st = norm_require_float(c, i);
        if (st != OGI_OK)
            return st;
        if (tensor_numel(c->in[i]) != n)
            return op_error(c, OGI_ERR_RUNTIME, "input %d: expected %lld elements, got %lld", i,
                            (long long)n, (long long)tensor_numel(c->in[i]));
    }
    double *v = malloc((size_t)(n + 1) * sizeof(double));
    if (v == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t j = 0; j < n; j++)
        v[j] = op_has_input(c, i) ? dtype_get_f64(c->in[i]->data, c->in[i]->dtype, j) : fill;
    *out = v;
    return OGI_OK;
}

static void norm_load(const ogi_tensor *x, int64_t start, int64_t n, double *v)
{
    if (x->dtype == OGI_FLOAT32) {
        const float *p = (const float *)x->data + start;
        for (int64_t i = 0; i < n; i++)
            v[i] = p[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = dtype_get_f64(x->data, x->dtype, start + i);
}

static void norm_store(ogi_tensor *y, int64_t start, int64_t n, const double *v)
{
    if (y->dtype == OGI_FLOAT32) {
        float *p = (float *)y->data + start;
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)v[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dtype_set_f64(y->data, y->dtype, start + i, v[i]);
}

/* Mean and population variance of v[0..n). */
static void norm_moments(const double *v, int64_t n, double *mean, double *var)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += v[i];
    double m = n > 0 ? sum / (double)n : 0.0;
    double sq = 0.0;
    for (int64_t i = 0; i < n; i++)
        sq += (v[i] - m) * (v[i] - m);
    *mean = m;
    *var = n > 0 ? sq / (double)n : 0.0;
}

/* Mean and variance of a strided run of a tensor; v is n doubles of scratch. */
static void norm_moments_of(const ogi_tensor *x, int64_t start, int64_t n, double *v, double *mean,
                            double *var)
{
    norm_load(x, start, n, v);
    norm_moments(v, n, mean, var);
}

/* ---- LayerNormalization --------------------------------------------------- */

/* Scale or bias broadcast against X: each dim right-aligned, 1 or equal. */
typedef struct norm_param {
    const ogi_tensor *t;           /* NULL when absent */
    int64_t strides[OGI_MAX_RANK]; /* over X's dims; 0 where broadcast */
    double *row;                   /* the values over one row, when they are the
                                      same for every row; else NULL */
} norm_param;

static ogi_status norm_param_init(op_ctx *c, int i, const ogi_tensor *x, int axis, norm_param *p)
{
    memset(p, 0, sizeof(*p));
    if (!op_has_input(c, i))
        return OGI_OK;
    ogi_status st = norm_require_float(c, i);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *t = c->in[i];
    if (t->rank > x->rank)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: rank %d exceeds the input's %d", i, t->rank,
                        x->rank);
    int64_t stride = 1;
    bool varies_by_row = false;
    for (int d = x->rank - 1; d >= 0; d--) {
        int td = d - (x->rank - t->rank);
        int64_t dim = td >= 0 ? t->dims[td] : 1;
        if (dim != 1 && dim != x->dims[d])
            return op_error(c, OGI_ERR_RUNTIME,
                            "input %d: dim %d is %lld, not broadcastable to %lld", i, td,
                            (long long)dim, (long long)x->dims[d]);
        p->strides[d] = dim == 1 ? 0 : stride;
        stride *= dim;
        varies_by_row |= d < axis && p->strides[d] != 0;
    }
    p->t = t;
    if (varies_by_row)
        return OGI_OK;
    int64_t inner = 1;
    for (int d = axis; d < x->rank; d++)
        inner *= x->dims[d];
    p->row = malloc((size_t)(inner + 1) * sizeof(double));
    if (p->row == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    return OGI_OK;
}

/* The parameter's values over row `row` (dims before axis) into out[inner]. */
static void norm_param_expand(const norm_param *p, const ogi_tensor *x, int axis, int64_t row,
                              double *out, int64_t inner)
{
    int64_t base = 0;
    for (int d = axis - 1; d >= 0; d--) {
        base += (row % x->dims[d]) * p->strides[d];
        row /= x->dims[d];
    }
    int64_t coord[OGI_MAX_RANK] = {0};
    int64_t off = base;
    for (int64_t j = 0; j < inner; j++) {
        out[j] = dtype_get_f64(p->t->data, p->t->dtype, off);
        for (int d = x->rank - 1; d >= axis; d--) {
            off += p->strides[d];
            if (++coord[d] < x->dims[d])
                break;
            off -= coord[d] * p->strides[d];
            coord[d] = 0;
        }
    }
}

typedef struct layer_norm_job {
    const ogi_tensor *x;
    ogi_tensor *y, *mean, *inv_std; /* mean, inv_std NULL when unused */
    int axis;
    int64_t inner;
    double epsilon;
    norm_param scale, bias;
    atomic_bool failed;
} layer_norm_job;

static void layer_norm_row(layer_norm_job *job, int64_t r, double *v, double *s, double *b)
{
    int64_t n = job->inner;
    double mean, var;
    norm_moments_of(job->x, r * n, n, v, &mean, &var);
    double inv = 1.0 / sqrt(var + job->epsilon);
    const double *sr = job->scale.row, *br = job->bias.row;
    if (sr == NULL) {
        norm_param_expand(&job->scale, job->x, job->axis, r, s, n);
        sr = s;
    }
    if (job->bias.t != NULL && br == NULL) {
        norm_param_expand(&job->bias, job->x, job->axis, r, b, n);
        br = b;
    }
    for (int64_t j = 0; j < n; j++)
        v[j] = (v[j] - mean) * inv * sr[j] + (br ? br[j] : 0.0);
    norm_store(job->y, r * n, n, v);
    if (job->mean)
        dtype_set_f64(job->mean->data, job->mean->dtype, r, mean);
    if (job->inv_std)
        dtype_set_f64(job->inv_std->data, job->inv_std->dtype, r, inv);
}

static void layer_norm_rows(void *arg, int64_t begin, int64_t end)
{
    layer_norm_job *job = arg;
    double *v = malloc((size_t)(3 * job->inner + 1) * sizeof(double));
    if (v == NULL) {
        atomic_store(&job->failed, true);
        return;
    }
    for (int64_t r = begin; r < end; r++)
        layer_norm_row(job, r, v, v + job->inner, v + 2 * job->inner);
    free(v);
}

static ogi_status layer_norm_outputs(op_ctx *c, layer_norm_job *job)
{
    const ogi_tensor *x = job->x;
    ogi_status st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    job->y = c->out[0];
    int64_t stash = op_attr_int(c, "stash_type", 1);
    if (stash != OGI_FLOAT32 && stash != OGI_BFLOAT16 && stash != OGI_FLOAT16 &&
        stash != OGI_FLOAT64)
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute stash_type=%lld is not supported",
                        (long long)stash);
    int64_t dims[OGI_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        dims[d] = d < job->axis ? x->dims[d] : 1;
    for (int i = 1; i <= 2; i++) {
        if (!op_output_used(c, i))
            continue;
        st = op_alloc(c, i, (ogi_dtype)stash, x->rank, dims);
        if (st != OGI_OK)
            return st;
        if (i == 1)
            job->mean = c->out[1];
        else
            job->inv_std = c->out[2];
    }
    return OGI_OK;
}

/* Y = (X - mean) / sqrt(var + epsilon) * Scale + B over the dims from axis. */
static ogi_status layer_norm_run(op_ctx *c)
{
    ogi_status st = norm_require_float(c, 0);
    if (st == OGI_OK)
        st = norm_require_float(c, 1);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (x->rank == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got a scalar");
    layer_norm_job job = {.x = x, .epsilon = op_attr_float(c, "epsilon", 1e-5f)};
    atomic_init(&job.failed, false);
    st = op_normalize_axis(c, op_attr_int(c, "axis", -1), x->rank, &job.axis);
    if (st != OGI_OK)
        return st;
    job.inner = 1;
    for (int d = job.axis; d < x->rank; d++)
        job.inner *= x->dims[d];
    st = norm_param_init(c, 1, x, job.axis, &job.scale);
    if (st == OGI_OK)
        st = norm_param_init(c, 2, x, job.axis, &job.bias);
    if (st == OGI_OK)
        st = layer_norm_outputs(c, &job);
    if (st == OGI_OK && job.inner > 0) {
        if (job.scale.row)
            norm_param_expand(&job.scale, x, job.axis, 0, job.scale.row, job.inner);
        if (job.bias.row)
            norm_param_expand(&job.bias, x, job.axis, 0, job.bias.row, job.inner);
        int64_t rows = tensor_numel(x) / job.inner;
        threadpool_parallel_for(c->pool, rows, 1 + 16384 / job.inner, layer_norm_rows, &job);
        if (atomic_load(&job.failed))
            st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    free(job.scale.row);
    free(job.bias.row);
    return st;
}

/* ---- BatchNormalization --------------------------------------------------- */

/* X as N x C x S (S: product of the spatial dims; rank 1 is N x 1 x 1). */
static void norm_channel_split(const ogi_tensor *x, int64_t *n, int64_t *ch, int64_t *s)
{
    *n = x->dims[0];
    *ch = x->rank >= 2 ? x->dims[1] : 1;
    *s = 1;
    for (int d = 2; d < x->rank; d++)
        *s *= x->dims[d];
}

/* Per-channel mean and variance over N and S (training mode). */
static ogi_status batch_norm_batch_stats(op_ctx *c, int64_t n, int64_t ch, int64_t s, double *mean,
                                         double *var)
{
    const ogi_tensor *x = c->in[0];
    double *v = malloc((size_t)(s + 1) * sizeof(double));
    if (v == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t k = 0; k < ch; k++) {
        double sum = 0.0, sq = 0.0;
        for (int64_t b = 0; b < n; b++) {
            norm_load(x, (b * ch + k) * s, s, v);
            for (int64_t i = 0; i < s; i++)
                sum += v[i];
        }
        double m = n * s > 0 ? sum / (double)(n * s) : 0.0;
        for (int64_t b = 0; b < n; b++) {
            norm_load(x, (b * ch + k) * s, s, v);
            for (int64_t i = 0; i < s; i++)
                sq += (v[i] - m) * (v[i] - m);
        }
        mean[k] = m;
        var[k] = n * s > 0 ? sq / (double)(n * s) : 0.0;
    }
    free(v);
    return OGI_OK;
}

/* Running statistics: input * momentum + batch * (1 - momentum). */
static ogi_status batch_norm_running(op_ctx *c, int out, const double *input, const double *batch,
                                     int64_t ch, double momentum)
{
    if (!op_output_used(c, out))
        return OGI_OK;
    const ogi_tensor *like = c->in[out == 1 ? 3 : 4];
    ogi_status st = op_alloc(c, out, like->dtype, like->rank, like->dims);
    if (st != OGI_OK)
        return st;
    for (int64_t k = 0; k < ch; k++)
        dtype_set_f64(c->out[out]->data, like->dtype, k,
                      input[k] * momentum + batch[k] * (1.0 - momentum));
    return OGI_OK;
}

/* y = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a; the
 * parameters hold one value per channel, or (old per-activation mode) one
 * per channel and spatial position. */
static ogi_status batch_norm_apply(op_ctx *c, const double *scale, const double *bias,
                                   const double *mean, const double *var, int64_t per_channel)
{
    const ogi_tensor *x = c->in[0];
    int64_t n, ch, s;
    norm_channel_split(x, &n, &ch, &s);
    double eps = op_attr_float(c, "epsilon", 1e-5f);
    ogi_status st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    double *v = malloc((size_t)(s + 1) * sizeof(double));
    if (v == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t b = 0; b < n; b++) {
        for (int64_t k = 0; k < ch; k++) {
            int64_t start = (b * ch + k) * s;
            norm_load(x, start, s, v);
            for (int64_t i = 0; i < s; i++) {
                int64_t p = per_channel ? k : k * s + i;
                v[i] = (v[i] - mean[p]) / sqrt(var[p] + eps) * scale[p] + bias[p];
            }
            norm_store(c->out[0], start, s, v);
        }
    }
    free(v);
    return OGI_OK;
}

static ogi_status batch_norm_run(op_ctx *c)
{
    ogi_status st = norm_require_float(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (x->rank == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 1, got a scalar");
    bool training = c->opset >= 14 && op_attr_int(c, "training_mode", 0) != 0;
    if (c->opset < 14 && (op_output_used(c, 1) || op_output_used(c, 2) || op_output_used(c, 3) ||
                          op_output_used(c, 4)))
        return op_error(c, OGI_ERR_UNSUPPORTED,
                        "training outputs are not supported before "
                        "opset 14");
    int64_t n, ch, s;
    norm_channel_split(x, &n, &ch, &s);
    /* opsets before 9: spatial=0 gives parameters per channel and position */
    int64_t per = ch;
    bool per_channel = c->opset >= 9 || op_attr_int(c, "spatial", 1) != 0;
    if (!per_channel)
        per = ch * s;
    double *p[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4 && st == OGI_OK; i++)
        st = norm_read_vector(c, i + 1, per, false, 0.0, &p[i]);
    if (st == OGI_OK && training) {
        if (!per_channel) {
            st = op_error(c, OGI_ERR_UNSUPPORTED, "training with spatial=0 is not supported");
        } else {
            double momentum = op_attr_float(c, "momentum", 0.9f);
            double *bm = malloc((size_t)(2 * ch + 1) * sizeof(double));
            st = bm ? batch_norm_batch_stats(c, n, ch, s, bm, bm + ch)
                    : op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
            if (st == OGI_OK)
                st = batch_norm_apply(c, p[0], p[1], bm, bm + ch, true);
            if (st == OGI_OK)
                st = batch_norm_running(c, 1, p[2], bm, ch, momentum);
            if (st == OGI_OK)
                st = batch_norm_running(c, 2, p[3], bm + ch, ch, momentum);
            free(bm);
        }
    } else if (st == OGI_OK) {
        st = batch_norm_apply(c, p[0], p[1], p[2], p[3], per_channel);
    }
    for (int i = 0; i < 4; i++)
        free(p[i]);
    return st;
}

/* ---- InstanceNormalization and GroupNormalization ------------------------- */

/* Normalises X (N x C x S) over groups of C / groups channels and all of S;
 * scale and bias hold one value per channel, or per group when per_group. */
static ogi_status norm_groups(op_ctx *c, int64_t groups, const double *scale, const double *bias,
                              bool per_group, double eps)
{
    const ogi_tensor *x = c->in[0];
    int64_t n, ch, s;
    norm_channel_split(x, &n, &ch, &s);
    int64_t gc = ch / groups; /* channels per group */
    ogi_status st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    double *v = malloc((size_t)(gc * s + 1) * sizeof(double));
    if (v == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t b = 0; b < n; b++) {
        for (int64_t g = 0; g < groups; g++) {
            int64_t start = (b * ch + g * gc) * s;
            double mean, var;
            norm_moments_of(x, start, gc * s, v, &mean, &var);
            double inv = 1.0 / sqrt(var + eps);
            for (int64_t i = 0; i < gc * s; i++) {
                int64_t p = per_group ? g : g * gc + i / s;
                v[i] = (v[i] - mean) * inv * scale[p] + bias[p];
            }
            norm_store(c->out[0], start, gc * s, v);
        }
    }
    free(v);
    return OGI_OK;
}

/* Reads scale and bias (per group or per channel) and runs norm_groups. */
static ogi_status norm_groups_run(op_ctx *c, int64_t groups, bool per_group)
{
    int64_t per = per_group ? groups : c->in[0]->dims[1];
    double *scale = NULL, *bias = NULL;
    ogi_status st = norm_read_vector(c, 1, per, false, 0.0, &scale);
    if (st == OGI_OK)
        st = norm_read_vector(c, 2, per, false, 0.0, &bias);
    if (st == OGI_OK)
        st = norm_groups(c, groups, scale, bias, per_group, op_attr_float(c, "epsilon", 1e-5f));
    free(scale);
    free(bias);
    return st;
}

/* Input 0 is a float N x C x ... tensor. */
static ogi_status norm_require_channels(op_ctx *c)
{
    ogi_status st = norm_require_float(c, 0);
    if (st != OGI_OK)
        return st;
    if (c->in[0]->rank < 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 2, got %d", c->in[0]->rank);
    return OGI_OK;
}

static ogi_status instance_norm_run(op_ctx *c)
{
    ogi_status st = norm_require_channels(c);
    return st != OGI_OK ? st : norm_groups_run(c, c->in[0]->dims[1], true);
}

/* Opset 18 takes scale and bias per group; opset 21 per channel. */
static ogi_status group_norm_run(op_ctx *c)
{
    ogi_status st = norm_require_channels(c);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (op_attr(c, "num_groups") == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute num_groups is missing");
    int64_t groups = op_attr_int(c, "num_groups", 1);
    if (groups <= 0 || x->dims[1] % groups != 0)
        return op_error(c, OGI_ERR_RUNTIME, "num_groups=%lld does not divide %lld channels",
                        (long long)groups, (long long)x->dims[1]);
    return norm_groups_run(c, groups, c->opset < 21);
}

/* ---- LpNormalization ------------------------------------------------------ */

/* y = x / ||x||_p along axis (p is 1 or 2); a zero norm gives zeros. */
static ogi_status lp_norm_run(op_ctx *c)
{
    ogi_status st = norm_require_float(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t p = op_attr_int(c, "p", 2);
    if (p != 1 && p != 2)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute p=%lld: expected 1 or 2",
                        (long long)p);
    int axis;
    st = op_normalize_axis(c, op_attr_int(c, "axis", -1), x->rank > 0 ? x->rank : 1, &axis);
    if (st != OGI_OK)
        return st;
    int64_t outer = 1, n = x->rank > 0 ? x->dims[axis] : 1, inner = 1;
    for (int d = 0; d < x->rank; d++)
        if (d != axis)
            *(d < axis ? &outer : &inner) *= x->dims[d];
    st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t start = o * n * inner + i;
            double norm = 0.0;
            for (int64_t k = 0; k < n; k++) {
                double v = dtype_get_f64(x->data, x->dtype, start + k * inner);
                norm += p == 1 ? fabs(v) : v * v;
            }
            norm = p == 1 ? norm : sqrt(norm);
            for (int64_t k = 0; k < n; k++) {
                double v = dtype_get_f64(x->data, x->dtype, start + k * inner);
                dtype_set_f64(c->out[0]->data, x->dtype, start + k * inner,
                              norm != 0.0 ? v / norm : 0.0);
            }
        }
    }
    return OGI_OK;
}

/* ---- MeanVarianceNormalization -------------------------------------------- */

/* Output-group index of each element: elements that differ only along the
 * reduced axes share a group. */
static void mvn_group_index(const ogi_tensor *x, const bool *reduced, int64_t *group)
{
    int64_t numel = tensor_numel(x);
    int64_t coord[OGI_MAX_RANK] = {0};
    int64_t stride[OGI_MAX_RANK] = {0};
    int64_t s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        stride[d] = reduced[d] ? 0 : s;
        s *= reduced[d] ? 1 : x->dims[d];
    }
    int64_t g = 0;
    for (int64_t e = 0; e < numel; e++) {
        group[e] = g;
        for (int d = x->rank - 1; d >= 0; d--) {
            g += stride[d];
            if (++coord[d] < x->dims[d])
                break;
            g -= coord[d] * stride[d];
            coord[d] = 0;
        }
    }
}

static ogi_status mvn_read_axes(op_ctx *c, int rank, bool *reduced)
{
    static const int64_t default_axes[] = {0, 2, 3};
    const int64_t *axes = default_axes;
    int64_t n = 3;
    if (!op_attr_ints(c, "axes", &axes, &n)) {
        axes = default_axes;
        n = 3;
    }
    for (int d = 0; d < rank; d++)
        reduced[d] = false;
    for (int64_t i = 0; i < n; i++) {
        int axis;
        ogi_status st = op_normalize_axis(c, axes[i], rank, &axis);
        if (st != OGI_OK)
            return st;
        reduced[axis] = true;
    }
    return OGI_OK;
}

/* y = (x - mean) / (sqrt(var) + 1e-9) with statistics over `axes`. */
static ogi_status mvn_run(op_ctx *c)
{
    ogi_status st = norm_require_float(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    bool reduced[OGI_MAX_RANK];
    st = mvn_read_axes(c, x->rank, reduced);
    if (st != OGI_OK)
        return st;
    int64_t numel = tensor_numel(x), groups = 1;
    for (int d = 0; d < x->rank; d++)
        groups *= reduced[d] ? 1 : x->dims[d];
    int64_t count = groups > 0 ? numel / groups : 0;
    int64_t *group = malloc((size_t)(numel + 1) * sizeof(int64_t));
    double *acc = calloc((size_t)(2 * groups + 1), sizeof(double));
    if (group == NULL || acc == NULL) {
        free(group);
        free(acc);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    double *mean = acc, *sq = acc + groups;
    mvn_group_index(x, reduced, group);
    for (int64_t e = 0; e < numel; e++)
        mean[group[e]] += dtype_get_f64(x->data, x->dtype, e);
    for (int64_t g = 0; g < groups; g++)
        mean[g] /= (double)count;
    for (int64_t e = 0; e < numel; e++) {
        double dv = dtype_get_f64(x->data, x->dtype, e) - mean[group[e]];
        sq[group[e]] += dv * dv;
    }
    st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    for (int64_t e = 0; st == OGI_OK && e < numel; e++) {
        double std = sqrt(sq[group[e]] / (double)count);
        double v = dtype_get_f64(x->data, x->dtype, e) - mean[group[e]];
        dtype_set_f64(c->out[0]->data, x->dtype, e, v / (std + 1e-9));
    }
    free(group);
    free(acc);
    return st;
}

/* ---- LRN ------------------------------------------------------------------ */

/* y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta,
 * the window spanning [c - floor((size-1)/2), c + ceil((size-1)/2)]. */
static ogi_status lrn_run(op_ctx *c)
{
    ogi_status st = norm_require_channels(c);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    int64_t size = op_attr_int(c, "size", 0);
    if (size <= 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute size must be positive");
    double alpha = op_attr_float(c, "alpha", 1e-4f), beta = op_attr_float(c, "beta", 0.75f);
    double bias = op_attr_float(c, "bias", 1.0f);
    int64_t n, ch, s;
    norm_channel_split(x, &n, &ch, &s);
    st = op_alloc(c, 0, x->dtype, x->rank, x->dims);
    if (st != OGI_OK)
        return st;
    int64_t before = (size - 1) / 2, after = size - 1 - before;
    for (int64_t b = 0; b < n; b++) {
        for (int64_t k = 0; k < ch; k++) {
            int64_t lo = k - before < 0 ? 0 : k - before;
            int64_t hi = k + after >= ch ? ch - 1 : k + after;
            for (int64_t i = 0; i < s; i++) {
                double sum = 0.0;
                for (int64_t j = lo; j <= hi; j++) {
                    double v = dtype_get_f64(x->data, x->dtype, (b * ch + j) * s + i);
                    sum += v * v;
                }
                int64_t e = (b * ch + k) * s + i;
                double v = dtype_get_f64(x->data, x->dtype, e);
                dtype_set_f64(c->out[0]->data, x->dtype, e,
                              v / pow(bias + alpha / (double)size * sum, beta));
            }
        }
    }
    return OGI_OK;
}

const op_kernel op_kernels_norm[] = {
    {"", "LayerNormalization", 17, layer_norm_run},
    {"", "BatchNormalization", 1, batch_norm_run},
    {"", "InstanceNormalization", 1, instance_norm_run},
    {"", "GroupNormalization", 18, group_norm_run},
    {"", "LpNormalization", 1, lp_norm_run},
    {"", "MeanVarianceNormalization", 9, mvn_run},
    {"", "LRN", 1, lrn_run},
    {NULL, NULL, 0, NULL},
};
