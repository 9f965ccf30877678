/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 *
 * Input is [N, C, d1..dk] (scores, or log-probabilities for NLL), target is
 * [N, d1..dk] class indices and weight an optional [C]. Seen as [N, C, D]
 * with D = d1 * .. * dk, each position (n, d) with class t = target[n, d]
 * loses -input[n, t, d] * weight[t], or nothing (and weighs nothing) when t
 * equals ignore_index. "mean" divides the sum by the total weight of the
 * positions not ignored (1 each without weight), as the ONNX reference does.
 * SoftmaxCrossEntropyLoss first takes log_softmax over C, which it can also
 * return as its second output. Everything is computed in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

typedef enum loss_reduction {
    LOSS_NONE,
    LOSS_SUM,
    LOSS_MEAN,
} loss_reduction;

typedef struct loss_problem {
    const ogi_tensor *input, *target, *weight; /* weight may be NULL */
    int64_t n, classes, d;                     /* input seen as [n, classes, d] */
    bool has_ignore;
    int64_t ignore_index;
    loss_reduction reduction;
} loss_problem;

static ogi_status loss_read_reduction(const op_ctx *c, loss_reduction *out)
{
    const char *r = op_attr_string(c, "reduction", "mean");
    if (strcmp(r, "none") == 0)
        *out = LOSS_NONE;
    else if (strcmp(r, "sum") == 0)
        *out = LOSS_SUM;
    else if (strcmp(r, "mean") == 0)
        *out = LOSS_MEAN;
    else
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute reduction='%s' is not none, sum or mean", r);
    return OGI_OK;
}

static ogi_status loss_check_target(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *t)
{
    char xs[128], ts[128];
    if (t->dtype != OGI_INT32 && t->dtype != OGI_INT64)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "input 1 (target): expected int32 or int64, got %s",
                        ogi_dtype_name(t->dtype));
    bool ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 1; ok && i < t->rank; i++)
        ok = t->dims[i] == x->dims[i + 1];
    if (!ok)
        return op_error(c, OGI_ERR_RUNTIME, "input 1 (target): shape %s does not match input %s",
                        tensor_shape_str(t->rank, t->dims, ts, sizeof(ts)),
                        tensor_shape_str(x->rank, x->dims, xs, sizeof(xs)));
    return OGI_OK;
}

static ogi_status loss_check_weight(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *w)
{
    if (w->dtype != x->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 2 (weight): type %s differs from input %s",
                        ogi_dtype_name(w->dtype), ogi_dtype_name(x->dtype));
    if (w->rank != 1 || w->dims[0] != x->dims[1])
        return op_error(c, OGI_ERR_RUNTIME, "input 2 (weight): expected shape [%lld]",
                        (long long)x->dims[1]);
    return OGI_OK;
}

static ogi_status loss_problem_init(const op_ctx *c, loss_problem *p)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    memset(p, 0, sizeof(*p));
    p->input = c->in[0];
    p->target = c->in[1];
    p->weight = op_has_input(c, 2) ? c->in[2] : NULL;
    const ogi_tensor *x = p->input;
    if (!dtype_is_float(x->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0: expected a float type, got %s",
                        ogi_dtype_name(x->dtype));
    if (x->rank < 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 2, got %d", x->rank);
    if ((st = loss_check_target(c, x, p->target)) != OGI_OK)
        return st;
    if (p->weight && (st = loss_check_weight(c, x, p->weight)) != OGI_OK)
        return st;
    if ((st = loss_read_reduction(c, &p->reduction)) != OGI_OK)
        return st;
    p->has_ignore = op_attr(c, "ignore_index") != NULL;
    p->ignore_index = op_attr_int(c, "ignore_index", 0);
    p->n = x->dims[0];
    p->classes = x->dims[1];
    p->d = 1;
    for (int i = 2; i < x->rank; i++)
        p->d *= x->dims[i];
    return OGI_OK;
}

/* Fills loss (N * D values, may be NULL) and the sums from log-probabilities
 * logp laid out [N, C, D]. */
static ogi_status loss_nll(const op_ctx *c, const loss_problem *p, const double *logp, double *loss,
                           double *sum, double *weight_sum)
{
    *sum = 0.0;
    *weight_sum = 0.0;
    for (int64_t n = 0; n < p->n; n++) {
        for (int64_t d = 0; d < p->d; d++) {
            int64_t pos = n * p->d + d;
            int64_t t = dtype_get_i64(p->target->data, p->target->dtype, pos);
            double l = 0.0, w = 0.0;
            if (!(p->has_ignore && t == p->ignore_index)) {
                if (t < 0 || t >= p->classes)
                    return op_error(c, OGI_ERR_RUNTIME, "target value %lld out of range [0, %lld)",
                                    (long long)t, (long long)p->classes);
                w = p->weight ? dtype_get_f64(p->weight->data, p->weight->dtype, t) : 1.0;
                l = -logp[(n * p->classes + t) * p->d + d] * w;
            }
            if (loss)
                loss[pos] = l;
            *sum += l;
            *weight_sum += w;
        }
    }
    return OGI_OK;
}

/* Computes the reduction of the loss over log-probabilities logp and writes
 * output 0. */
static ogi_status loss_finish(op_ctx *c, const loss_problem *p, const double *logp)
{
    const ogi_tensor *t = p->target;
    ogi_dtype dtype = p->input->dtype;
    ogi_status st;
    double sum, weight_sum;
    if (p->reduction != LOSS_NONE) {
        if ((st = loss_nll(c, p, logp, NULL, &sum, &weight_sum)) != OGI_OK)
            return st;
        if ((st = op_alloc(c, 0, dtype, 0, NULL)) != OGI_OK)
            return st;
        /* no position counted: 0 / 0 gives NaN, as the reference does */
        dtype_set_f64(c->out[0]->data, dtype, 0, p->reduction == LOSS_SUM ? sum : sum / weight_sum);
        return OGI_OK;
    }
    int64_t count = p->n * p->d;
    double *loss = malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
    if (loss == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld losses",
                        (long long)count);
    st = loss_nll(c, p, logp, loss, &sum, &weight_sum);
    if (st == OGI_OK)
        st = op_alloc(c, 0, dtype, t->rank, t->dims);
    if (st == OGI_OK)
        for (int64_t i = 0; i < count; i++)
            dtype_set_f64(c->out[0]->data, dtype, i, loss[i]);
    free(loss);
    return st;
}

/* The input as doubles, or NULL when out of memory. */
static double *loss_load(const ogi_tensor *x, int64_t numel)
{
    double *v = malloc((size_t)(numel > 0 ? numel : 1) * sizeof(double));
    if (v == NULL)
        return NULL;
    for (int64_t i = 0; i < numel; i++)
        v[i] = dtype_get_f64(x->data, x->dtype, i);
    return v;
}

static ogi_status nll_loss(op_ctx *c)
{
    loss_problem p;
    ogi_status st = loss_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    double *logp = loss_load(p.input, tensor_numel(p.input));
    if (logp == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for the input");
    st = loss_finish(c, &p, logp);
    free(logp);
    return st;
}

/* Replaces v ([N, C, D]) by its log_softmax over C. */
static void loss_log_softmax(const loss_problem *p, double *v)
{
    for (int64_t n = 0; n < p->n; n++) {
        for (int64_t d = 0; d < p->d; d++) {
            double *col = v + n * p->classes * p->d + d;
            double max = -INFINITY;
            for (int64_t k = 0; k < p->classes; k++)
                if (col[k * p->d] > max || isnan(col[k * p->d]))
                    max = col[k * p->d];
            /* all -inf: leave unshifted so the result is NaN, as the math gives */
            double shift = isinf(max) ? 0.0 : max;
            double sum = 0.0;
            for (int64_t k = 0; k < p->classes; k++)
                sum += exp(col[k * p->d] - shift);
            double log_sum = log(sum);
            for (int64_t k = 0; k < p->classes; k++)
                col[k * p->d] = col[k * p->d] - shift - log_sum;
        }
    }
}

static ogi_status softmax_cross_entropy_loss(op_ctx *c)
{
    loss_problem p;
    ogi_status st = loss_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    int64_t numel = tensor_numel(p.input);
    double *logp = loss_load(p.input, numel);
    if (logp == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for the input");
    loss_log_softmax(&p, logp);
    st = loss_finish(c, &p, logp);
    if (st == OGI_OK && op_output_used(c, 1)) {
        const ogi_tensor *x = p.input;
        st = op_alloc(c, 1, x->dtype, x->rank, x->dims);
        if (st == OGI_OK)
            for (int64_t i = 0; i < numel; i++)
                dtype_set_f64(c->out[1]->data, x->dtype, i, logp[i]);
    }
    free(logp);
    return st;
}

const op_kernel op_kernels_loss[] = {
    {"", "NegativeLogLikelihoodLoss", 12, nll_loss},
    {"", "SoftmaxCrossEntropyLoss", 12, softmax_cross_entropy_loss},
    {NULL, NULL, 0, NULL},
};
