/* Recognises FlexAttention subgraphs that a plain attention kernel computes
 * (see flex_attention.h). Each subgraph is interpreted symbolically, node by
 * node in topological order: every value gets a symbol saying what it is (a
 * constant, the scores' shape, an index plane affine in q_idx and kv_idx, a
 * causal mask, the scores under a flex_plan, ...) or UNKNOWN. A subgraph
 * matches when its output's symbol is the scores (or probabilities) under a
 * plan. Only ops whose every case is understood are accepted, and dtypes must
 * agree as the op's own type check would demand, so a match means the
 * subgraph computes exactly what the plan says. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "ops/flex_attention.h"

typedef enum flex_kind {
    FLEX_UNKNOWN = 0,
    FLEX_CONST,  /* t */
    FLEX_SHAPE,  /* Shape(scores): [batch, heads, q_len, kv_len] */
    FLEX_DIM,    /* scalar dims[axis] of the scores */
    FLEX_RANGE,  /* 1-D 0 .. dims[axis] - 1 */
    FLEX_INDEX,  /* the affine a, laid out to broadcast over the score plane */
    FLEX_MASK,   /* a >= 0, broadcasting over the score plane */
    FLEX_SCORES, /* the scores under plan */
    FLEX_TANH,   /* tanh(plan.mul * scores) */
    FLEX_PROBS,  /* plan.prob_mul * probabilities */
} flex_kind;

typedef struct flex_sym {
    flex_kind kind;
    ogi_dtype dtype;
    int axis;            /* FLEX_DIM, FLEX_RANGE: 2 (queries) or 3 (keys) */
    flex_affine a;       /* FLEX_INDEX, FLEX_MASK */
    const ogi_tensor *t; /* FLEX_CONST */
    flex_plan plan;      /* FLEX_SCORES, FLEX_TANH, FLEX_PROBS */
} flex_sym;

flex_plan flex_plan_identity(void)
{
    flex_plan p = {.mul = 1.0, .prob_mul = 1.0};
    return p;
}

/* ---- reading constants and attributes --------------------------------------- */

/* The one value of a constant of at most rank 4 (so that it broadcasts over
 * the scores without raising their rank), when finite. */
static bool flex_scalar(const flex_sym *s, double *v)
{
    if (s->kind != FLEX_CONST || s->t->rank > 4 || tensor_numel(s->t) != 1 || s->t->data == NULL)
        return false;
    if (!dtype_is_float(s->t->dtype) && !dtype_is_integer(s->t->dtype))
        return false;
    *v = dtype_get_f64(s->t->data, s->t->dtype, 0);
    return isfinite(*v);
}

/* A rank-0 int64 constant. */
static bool flex_int_scalar(const flex_sym *s, int64_t *v)
{
    if (s->kind != FLEX_CONST || s->t->rank != 0 || s->t->dtype != OGI_INT64 || s->t->data == NULL)
        return false;
    *v = ((const int64_t *)s->t->data)[0];
    return true;
}

/* The int64 values of a 1-D constant of at most 4 entries. */
static int flex_int_list(const flex_sym *s, int64_t *vals)
{
    if (s->kind != FLEX_CONST || s->t->rank != 1 || s->t->dtype != OGI_INT64 || s->t->data == NULL)
        return -1;
    int64_t n = s->t->dims[0];
    if (n < 1 || n > 4)
        return -1;
    memcpy(vals, s->t->data, (size_t)n * sizeof(int64_t));
    return (int)n;
}

/* ---- symbols ----------------------------------------------------------------- */

static bool flex_is_scores_shaped(const flex_sym *s)
{
    return s->kind == FLEX_SCORES || s->kind == FLEX_TANH || s->kind == FLEX_PROBS;
}

/* s as an affine index plane: an index, the key range (1-D, so it lies
 * along the last axis), or a scalar constant. */
static bool flex_as_affine(const flex_sym *s, flex_affine *a)
{
    double v;
    if (s->kind == FLEX_INDEX) {
        *a = s->a;
        return true;
    }
    if (s->kind == FLEX_RANGE && s->axis == 3) {
        *a = (flex_affine){0, 1, 0};
        return true;
    }
    if (flex_scalar(s, &v)) {
        *a = (flex_affine){0, 0, v};
        return true;
    }
    return false;
}

static flex_affine flex_affine_combine(flex_affine x, double wx, flex_affine y, double wy)
{
    flex_affine r = {wx * x.w_q + wy * y.w_q, wx * x.w_k + wy * y.w_k, wx * x.c + wy * y.c};
    return r;
}

static flex_sym flex_index(ogi_dtype dtype, flex_affine a)
{
    flex_sym s = {.kind = FLEX_INDEX, .dtype = dtype, .a = a};
    return s;
}

/* The 1-D range along `axis` reshaped or unsqueezed to `rank` dims with its
 * elements at dim `pos`: an index when that puts them on the scores' axis. */
static flex_sym flex_placed_range(const flex_sym *range, int rank, int pos)
{
    flex_sym unknown = {0};
    if (rank < 1 || rank > 4 || pos < 0 || pos >= rank || rank - pos != 4 - range->axis)
        return unknown;
    flex_affine a = range->axis == 2 ? (flex_affine){1, 0, 0} : (flex_affine){0, 1, 0};
    return flex_index(range->dtype, a);
}

/* Reshape(range, shape): shape all ones but one -1. */
static flex_sym flex_reshape(const flex_sym *x, const flex_sym *shape)
{
    flex_sym unknown = {0};
    int64_t dims[4];
    int n = flex_int_list(shape, dims);
    if (x->kind != FLEX_RANGE || n < 0)
        return unknown;
    int pos = -1;
    for (int d = 0; d < n; d++) {
        if (dims[d] == -1 && pos < 0)
            pos = d;
        else if (dims[d] != 1)
            return unknown;
    }
    return flex_placed_range(x, n, pos);
}

/* Unsqueeze(range, axes) with axes from input 1 (opset 13) or the attribute. */
static flex_sym flex_unsqueeze(const graph_node *n, const flex_sym *x, const flex_sym *axes_in)
{
    flex_sym unknown = {0};
    int64_t axes[4];
    int n_axes = -1;
    if (axes_in != NULL) {
        n_axes = flex_int_list(axes_in, axes);
    } else {
        const onnx_attr *attr = graph_node_attr(n, "axes");
        if (attr != NULL && attr->type == ONNX_ATTR_INTS && attr->n >= 1 && attr->n <= 3) {
            n_axes = (int)attr->n;
            memcpy(axes, attr->ints, (size_t)n_axes * sizeof(int64_t));
        }
    }
    if (x->kind != FLEX_RANGE || n_axes < 1 || n_axes > 3)
        return unknown;
    int rank = n_axes + 1;
    bool taken[4] = {false};
    for (int i = 0; i < n_axes; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank || taken[a])
            return unknown;
        taken[a] = true;
    }
    int pos = 0;
    while (taken[pos])
        pos++;
    return flex_placed_range(x, rank, pos);
}

/* x >= y, x > y, x <= y, x < y on index planes, as one affine >= 0. */
static flex_sym flex_compare(const char *op, const flex_sym *x, const flex_sym *y)
{
    flex_sym unknown = {0};
    flex_affine ax, ay;
    if (!flex_as_affine(x, &ax) || !flex_as_affine(y, &ay) || x->dtype != y->dtype)
        return unknown;
    if (x->kind == FLEX_CONST && y->kind == FLEX_CONST)
        return unknown;
    bool strict = strcmp(op, "Greater") == 0 || strcmp(op, "Less") == 0;
    bool greater = strcmp(op, "Greater") == 0 || strcmp(op, "GreaterOrEqual") == 0;
    flex_affine d =
        greater ? flex_affine_combine(ax, 1, ay, -1) : flex_affine_combine(ay, 1, ax, -1);
    if (strict) {
        /* d > 0 is d - 1 >= 0 only over the integers */
        if (!dtype_is_integer(x->dtype))
            return unknown;
        d.c -= 1;
    }
    flex_sym s = {.kind = FLEX_MASK, .dtype = OGI_BOOL, .a = d};
    return s;
}

/* The causal mask: w * (q_idx - kv_idx) >= 0 with w > 0. */
static bool flex_is_causal(const flex_sym *m)
{
    return m->kind == FLEX_MASK && m->a.w_q > 0 && m->a.w_k == -m->a.w_q && m->a.c == 0;
}

static bool flex_affine_is_zero(flex_affine a)
{
    return a.w_q == 0 && a.w_k == 0 && a.c == 0;
}

/* Add / Sub: index planes combine; the scores take a bias. */
static flex_sym flex_add(bool sub, const flex_sym *x, const flex_sym *y)
{
    flex_sym unknown = {0};
    flex_affine ax, ay;
    if (x->dtype != y->dtype)
        return unknown;
    if (x->kind == FLEX_SCORES && flex_as_affine(y, &ay)) {
        flex_sym s = *x;
        s.plan.bias = flex_affine_combine(s.plan.bias, 1, ay, sub ? -1 : 1);
        return s;
    }
    if (!sub && y->kind == FLEX_SCORES && flex_as_affine(x, &ax)) {
        flex_sym s = *y;
        s.plan.bias = flex_affine_combine(s.plan.bias, 1, ax, 1);
        return s;
    }
    if (x->kind == FLEX_CONST && y->kind == FLEX_CONST)
        return unknown;
    if (flex_as_affine(x, &ax) && flex_as_affine(y, &ay))
        return flex_index(x->dtype, flex_affine_combine(ax, 1, ay, sub ? -1 : 1));
    return unknown;
}

/* x * c (div: x / c) for a scalar constant c. */
static flex_sym flex_scale(const flex_sym *x, const flex_sym *cs, bool div)
{
    flex_sym unknown = {0};
    double c;
    if (x->dtype != cs->dtype || !flex_scalar(cs, &c) || (div && c == 0))
        return unknown;
    if (div && dtype_is_integer(x->dtype))
        return unknown; /* integer division truncates */
    double f = div ? 1.0 / c : c;
    flex_sym s = *x;
    flex_affine a;
    switch (x->kind) {
    case FLEX_SCORES:
        if (x->plan.cap > 0 || x->plan.causal)
            return unknown;
        s.plan.mul *= f;
        s.plan.bias = flex_affine_combine(x->plan.bias, f, x->plan.bias, 0);
        return s;
    case FLEX_TANH:
        /* cap * tanh(m x) = cap * tanh((m cap) x / cap) */
        if (div || c <= 0)
            return unknown;
        s.kind = FLEX_SCORES;
        s.plan.cap = c;
        s.plan.mul = x->plan.mul * c;
        return s;
    case FLEX_PROBS:
        s.plan.prob_mul *= f;
        return s;
    default:
        if (x->kind == FLEX_CONST || !flex_as_affine(x, &a))
            return unknown;
        return flex_index(x->dtype, flex_affine_combine(a, f, a, 0));
    }
}

/* Where(causal mask, scores, -inf). */
static flex_sym flex_where(const flex_sym *cond, const flex_sym *x, const flex_sym *y)
{
    flex_sym unknown = {0};
    if (!flex_is_causal(cond) || x->kind != FLEX_SCORES || y->kind != FLEX_CONST)
        return unknown;
    if (y->dtype != x->dtype || y->t->rank > 4 || tensor_numel(y->t) != 1 || y->t->data == NULL)
        return unknown;
    /* -inf, or the lowest finite value, which exp() turns into 0 just the
     * same: every causal row keeps key 0 */
    double v = dtype_get_f64(y->t->data, y->t->dtype, 0);
    if (!(v <= -FLT_MAX))
        return unknown;
    flex_sym s = *x;
    s.plan.causal = true;
    return s;
}

/* Cast keeps what a value is when nothing is rounded away. */
static flex_sym flex_cast(const graph_node *n, const flex_sym *x)
{
    flex_sym unknown = {0};
    const onnx_attr *to = graph_node_attr(n, "to");
    if (to == NULL || to->type != ONNX_ATTR_INT || !dtype_is_valid((int)to->i))
        return unknown;
    ogi_dtype dst = (ogi_dtype)to->i;
    flex_sym s = *x;
    s.dtype = dst;
    flex_affine a;
    if (x->kind == FLEX_INDEX || (x->kind == FLEX_RANGE && x->axis == 3)) {
        if (!flex_as_affine(x, &a))
            return unknown;
        /* indices are exact in any float type; an integer cast of a float
         * plane would truncate */
        if (dst != OGI_FLOAT32 && dst != OGI_FLOAT64 &&
            !(dtype_is_integer(dst) && dtype_is_integer(x->dtype) && dst == OGI_INT64))
            return unknown;
        return flex_index(dst, a);
    }
    if (x->kind == FLEX_RANGE || x->kind == FLEX_DIM)
        return dst == x->dtype ? s : unknown;
    if (flex_is_scores_shaped(x) || x->kind == FLEX_MASK)
        return dst == x->dtype ? s : unknown;
    return unknown;
}

static flex_sym flex_gather(const graph_node *n, const flex_sym *x, const flex_sym *idx)
{
    flex_sym unknown = {0};
    const onnx_attr *axis = graph_node_attr(n, "axis");
    int64_t i;
    if (x->kind != FLEX_SHAPE || (axis != NULL && axis->i != 0) || !flex_int_scalar(idx, &i))
        return unknown;
    if (i < 0)
        i += 4;
    if (i != 2 && i != 3)
        return unknown;
    flex_sym s = {.kind = FLEX_DIM, .dtype = OGI_INT64, .axis = (int)i};
    return s;
}

static flex_sym flex_range(const flex_sym *start, const flex_sym *limit, const flex_sym *delta)
{
    flex_sym unknown = {0};
    int64_t s0, d;
    if (limit->kind != FLEX_DIM || !flex_int_scalar(start, &s0) || !flex_int_scalar(delta, &d))
        return unknown;
    if (s0 != 0 || d != 1)
        return unknown;
    flex_sym s = {.kind = FLEX_RANGE, .dtype = OGI_INT64, .axis = limit->axis};
    return s;
}

static flex_sym flex_shape(const graph_node *n, const flex_sym *x)
{
    flex_sym unknown = {0};
    const onnx_attr *start = graph_node_attr(n, "start");
    if (!flex_is_scores_shaped(x) || graph_node_attr(n, "end") != NULL ||
        (start != NULL && start->i != 0))
        return unknown;
    flex_sym s = {.kind = FLEX_SHAPE, .dtype = OGI_INT64};
    return s;
}

/* ---- one node ----------------------------------------------------------------- */

static flex_sym flex_node(const graph_node *n, const flex_sym *syms)
{
    flex_sym unknown = {0};
    const char *op = n->proto->op_type;
    const flex_sym *in[3];
    if (n->proto->domain[0] != '\0' || n->n_inputs > 3 || n->n_outputs != 1 || n->n_subgraphs > 0)
        return unknown;
    for (int i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] >= 0 ? &syms[n->inputs[i]] : NULL;
    if (strcmp(op, "Constant") == 0) {
        const onnx_attr *v = graph_node_attr(n, "value");
        if (n->n_inputs != 0 || v == NULL || v->type != ONNX_ATTR_TENSOR || v->t == NULL)
            return unknown;
        flex_sym s = {.kind = FLEX_CONST, .dtype = v->t->tensor.dtype, .t = &v->t->tensor};
        return s;
    }
    for (int i = 0; i < n->n_inputs; i++)
        if (in[i] == NULL || in[i]->kind == FLEX_UNKNOWN)
            return unknown;
    int nin = n->n_inputs;
    if (strcmp(op, "Identity") == 0 && nin == 1)
        return *in[0];
    if (strcmp(op, "Shape") == 0 && nin == 1)
        return flex_shape(n, in[0]);
    if (strcmp(op, "Gather") == 0 && nin == 2)
        return flex_gather(n, in[0], in[1]);
    if (strcmp(op, "Range") == 0 && nin == 3)
        return flex_range(in[0], in[1], in[2]);
    if (strcmp(op, "Reshape") == 0 && nin == 2 && graph_node_attr(n, "allowzero") == NULL)
        return flex_reshape(in[0], in[1]);
    if (strcmp(op, "Unsqueeze") == 0 && (nin == 1 || nin == 2))
        return flex_unsqueeze(n, in[0], nin == 2 ? in[1] : NULL);
    if (strcmp(op, "Cast") == 0 && nin == 1)
        return flex_cast(n, in[0]);
    if ((strcmp(op, "Add") == 0 || strcmp(op, "Sub") == 0) && nin == 2)
        return flex_add(op[0] == 'S', in[0], in[1]);
    if (strcmp(op, "Mul") == 0 && nin == 2) {
        flex_sym s = flex_scale(in[0], in[1], false);
        return s.kind != FLEX_UNKNOWN ? s : flex_scale(in[1], in[0], false);
    }
    if (strcmp(op, "Div") == 0 && nin == 2)
        return flex_scale(in[0], in[1], true);
    if (strcmp(op, "Neg") == 0 && nin == 1 && in[0]->kind == FLEX_INDEX) {
        flex_affine a = in[0]->a;
        return flex_index(in[0]->dtype, flex_affine_combine(a, -1, a, 0));
    }
    if (strcmp(op, "Tanh") == 0 && nin == 1 && in[0]->kind == FLEX_SCORES) {
        const flex_plan *p = &in[0]->plan;
        if (p->cap > 0 || p->causal || !flex_affine_is_zero(p->bias))
            return unknown;
        flex_sym s = *in[0];
        s.kind = FLEX_TANH;
        return s;
    }
    if ((strcmp(op, "GreaterOrEqual") == 0 || strcmp(op, "Greater") == 0 ||
         strcmp(op, "LessOrEqual") == 0 || strcmp(op, "Less") == 0) &&
        nin == 2)
        return flex_compare(op, in[0], in[1]);
    if (strcmp(op, "Where") == 0 && nin == 3)
        return flex_where(in[0], in[1], in[2]);
    return unknown;
}

/* Interprets g from `start` (its one input); *out is its one output's symbol. */
static bool flex_interpret(const graph *g, flex_sym start, flex_sym *out)
{
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return false;
    flex_sym *syms = calloc((size_t)g->n_values, sizeof(*syms));
    if (syms == NULL)
        return false;
    for (int v = 0; v < g->n_values; v++) {
        const graph_value *x = &g->values[v];
        if (x->kind == VALUE_CONST && x->constant != NULL) {
            syms[v].kind = FLEX_CONST;
            syms[v].dtype = x->constant->dtype;
            syms[v].t = x->constant;
        }
    }
    syms[g->inputs[0]] = start;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        flex_sym s = flex_node(n, syms);
        for (int o = 0; o < n->n_outputs; o++)
            if (n->outputs[o] >= 0)
                syms[n->outputs[o]] = s;
    }
    *out = syms[g->outputs[0]];
    free(syms);
    return true;
}

bool flex_attention_match(const graph *score_mod, const graph *mask_mod, const graph *prob_mod,
                          ogi_dtype scores_dtype, flex_plan *plan)
{
    flex_sym scores = {.kind = FLEX_SCORES, .dtype = scores_dtype, .plan = flex_plan_identity()};
    const graph *score_graphs[2] = {score_mod, mask_mod};
    for (int k = 0; k < 2; k++) {
        if (score_graphs[k] == NULL)
            continue;
        flex_sym out;
        if (!flex_interpret(score_graphs[k], scores, &out) || out.kind != FLEX_SCORES ||
            out.dtype != scores_dtype)
            return false;
        scores = out;
    }
    *plan = scores.plan;
    if (prob_mod != NULL) {
        flex_sym probs = {.kind = FLEX_PROBS, .dtype = scores_dtype, .plan = flex_plan_identity()};
        flex_sym out;
        if (!flex_interpret(prob_mod, probs, &out) || out.kind != FLEX_PROBS ||
            out.dtype != scores_dtype)
            return false;
        plan->prob_mul = out.plan.prob_mul;
    }
    return true;
}
