/* Optimizer update rules of the ai.onnx.preview.training domain: Momentum,
 * Adagrad and Adam. Each takes a learning rate R (scalar), an update count T
 * (int64 scalar) and n groups of same-shaped float tensors (X..., G...,
 * then the optimizer's state), and returns the updated X... followed by the
 * updated state. Values compute in double and round once on store.
 *
 * Bernoulli, RandomUniformLike and RandomNormalLike are not here: their
 * conformance outputs come from one particular generator's stream, which
 * the spec leaves open, so no implementation can be checked against them. */
#include <math.h>
#include <string.h>

#include "ops/families.h"

#define TRAIN_DOMAIN "ai.onnx.preview.training"
#define TRAIN_MAX_STATE 2 /* state tensors per group beyond X and G (Adam: V, H) */

/* One group's element i: x, g and the state, updated in place. */
typedef struct train_elem {
    double x, g, s[TRAIN_MAX_STATE];
} train_elem;

/* R, T and the attributes, read once per node. */
typedef struct train_params {
    double r;  /* learning rate */
    int64_t t; /* update count */
    double alpha, beta, epsilon, decay, norm, norm_post;
    bool nesterov;
} train_params;

typedef void (*train_rule)(const train_params *p, train_elem *e);

/* ---- the rules ------------------------------------------------------------- */

/* G' = norm * X + G; V = alpha * V + beta' * G' (beta' = 1 on the first
 * update, T = 0); X -= R * V (standard) or R * (G' + alpha * V) (nesterov). */
static void train_momentum_rule(const train_params *p, train_elem *e)
{
    double g = p->norm * e->x + e->g;
    double v = p->alpha * e->s[0] + (p->t > 0 ? p->beta : 1.0) * g;
    e->x -= p->r * (p->nesterov ? g + p->alpha * v : v);
    e->s[0] = v;
}

/* r = R / (1 + T * decay); G' = norm * X + G; H += G'^2;
 * X -= r * G' / (sqrt(H) + epsilon). */
static void train_adagrad_rule(const train_params *p, train_elem *e)
{
    double r = p->r / (1.0 + (double)p->t * p->decay);
    double g = p->norm * e->x + e->g;
    double h = e->s[0] + g * g;
    e->x -= r * g / (sqrt(h) + p->epsilon);
    e->s[0] = h;
}

/* G' = norm * X + G; V = alpha V + (1 - alpha) G'; H = beta H + (1 - beta) G'^2;
 * r = R * sqrt(1 - beta^T) / (1 - alpha^T) when T > 0, else R;
 * X = (1 - norm_post) * (X - r * V / (sqrt(H) + epsilon)). */
static void train_adam_rule(const train_params *p, train_elem *e)
{
    double g = p->norm * e->x + e->g;
    double v = p->alpha * e->s[0] + (1.0 - p->alpha) * g;
    double h = p->beta * e->s[1] + (1.0 - p->beta) * g * g;
    double r = p->r;
    if (p->t > 0)
        r = r * sqrt(1.0 - pow(p->beta, (double)p->t)) / (1.0 - pow(p->alpha, (double)p->t));
    e->x = (1.0 - p->norm_post) * (e->x - r * v / (sqrt(h) + p->epsilon));
    e->s[0] = v;
    e->s[1] = h;
}

/* ---- the shared driver ----------------------------------------------------- */

static bool train_is_float(ogi_dtype dt)
{
    return dt == OGI_FLOAT32 || dt == OGI_FLOAT64;
}

/* Reads R and T (inputs 0 and 1) and checks the group count. */
static ogi_status train_read_step(op_ctx *c, int n_state, train_params *st, int64_t *groups)
{
    int per_group = 2 + n_state;
    if (c->n_in < 2 + per_group || (c->n_in - 2) % per_group != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "expected R, T and groups of %d tensors, got %d inputs", per_group,
                        c->n_in);
    *groups = (c->n_in - 2) / per_group;
    for (int i = 0; i < c->n_in; i++) {
        ogi_status s = op_require_input(c, i);
        if (s != OGI_OK)
            return s;
    }
    if (!train_is_float(c->in[0]->dtype) || tensor_numel(c->in[0]) != 1)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0 (R): expected a float or double scalar");
    if (c->in[1]->dtype != OGI_INT64 || tensor_numel(c->in[1]) != 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 1 (T): expected an int64 scalar");
    ogi_status s = op_read_scalar_f64(c, 0, &st->r);
    if (s == OGI_OK)
        s = op_read_scalar_i64(c, 1, &st->t);
    return s;
}

/* Checks that group k's tensors (X, G, state...) share X's shape and dtype. */
static ogi_status train_check_group(const op_ctx *c, int64_t groups, int n_state, int64_t k)
{
    const ogi_tensor *x = c->in[2 + k];
    if (!train_is_float(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", (int)(2 + k),
                        ogi_dtype_name(x->dtype));
    for (int j = 1; j < 2 + n_state; j++) {
        int i = (int)(2 + j * groups + k);
        const ogi_tensor *t = c->in[i];
        if (t->dtype != x->dtype)
            return op_error(c, OGI_ERR_INVALID_MODEL, "input %d: dtype %s differs from input %d's",
                            i, ogi_dtype_name(t->dtype), (int)(2 + k));
        if (!tensor_same_shape(t, x)) {
            char a[128], b[128];
            return op_error(c, OGI_ERR_RUNTIME, "input %d: shape %s differs from input %d's %s", i,
                            tensor_shape_str(t->rank, t->dims, a, sizeof(a)), (int)(2 + k),
                            tensor_shape_str(x->rank, x->dims, b, sizeof(b)));
        }
    }
    return OGI_OK;
}

/* Updates group k: outputs are X_new for every group, then each state kind
 * for every group (output j * groups + k). */
static ogi_status train_update_group(op_ctx *c, int64_t groups, int n_state, int64_t k,
                                     const train_params *st, train_rule rule)
{
    const ogi_tensor *x = c->in[2 + k];
    ogi_tensor *outs[1 + TRAIN_MAX_STATE] = {NULL};
    for (int j = 0; j <= n_state; j++) {
        int o = (int)(j * groups + k);
        if (!op_output_used(c, o))
            continue;
        ogi_status s = op_alloc(c, o, x->dtype, x->rank, x->dims);
        if (s != OGI_OK)
            return s;
        outs[j] = c->out[o];
    }
    const ogi_tensor *g = c->in[2 + groups + k];
    for (int64_t i = 0; i < tensor_numel(x); i++) {
        train_elem e = {
            dtype_get_f64(x->data, x->dtype, i), dtype_get_f64(g->data, g->dtype, i), {0.0, 0.0}};
        for (int j = 0; j < n_state; j++) {
            const ogi_tensor *t = c->in[2 + (2 + j) * groups + k];
            e.s[j] = dtype_get_f64(t->data, t->dtype, i);
        }
        rule(st, &e);
        for (int j = 0; j <= n_state; j++)
            if (outs[j] != NULL)
                dtype_set_f64(outs[j]->data, x->dtype, i, j == 0 ? e.x : e.s[j - 1]);
    }
    return OGI_OK;
}

static ogi_status train_run(op_ctx *c, int n_state, train_params *st, train_rule rule)
{
    int64_t groups;
    ogi_status s = train_read_step(c, n_state, st, &groups);
    if (s != OGI_OK)
        return s;
    if (c->n_out > (1 + n_state) * groups)
        return op_error(c, OGI_ERR_INVALID_MODEL, "expected at most %lld outputs, got %d",
                        (long long)((1 + n_state) * groups), c->n_out);
    for (int64_t k = 0; k < groups && s == OGI_OK; k++)
        s = train_check_group(c, groups, n_state, k);
    for (int64_t k = 0; k < groups && s == OGI_OK; k++)
        s = train_update_group(c, groups, n_state, k, st, rule);
    return s;
}

/* ---- kernels --------------------------------------------------------------- */

static ogi_status train_momentum(op_ctx *c)
{
    static const char *const required[] = {"alpha", "beta", "mode", "norm_coefficient"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (op_attr(c, required[i]) == NULL)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s is required", required[i]);
    const char *mode = op_attr_string(c, "mode", "");
    if (strcmp(mode, "standard") != 0 && strcmp(mode, "nesterov") != 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute mode='%s' is not supported", mode);
    train_params p = {.alpha = op_attr_float(c, "alpha", 0.0f),
                      .beta = op_attr_float(c, "beta", 0.0f),
                      .norm = op_attr_float(c, "norm_coefficient", 0.0f),
                      .nesterov = strcmp(mode, "nesterov") == 0};
    return train_run(c, 1, &p, train_momentum_rule);
}

static ogi_status train_adagrad(op_ctx *c)
{
    train_params p = {.decay = op_attr_float(c, "decay_factor", 0.0f),
                      .epsilon = op_attr_float(c, "epsilon", 1e-6f),
                      .norm = op_attr_float(c, "norm_coefficient", 0.0f)};
    return train_run(c, 1, &p, train_adagrad_rule);
}

static ogi_status train_adam(op_ctx *c)
{
    train_params p = {.alpha = op_attr_float(c, "alpha", 0.9f),
                      .beta = op_attr_float(c, "beta", 0.999f),
                      .epsilon = op_attr_float(c, "epsilon", 1e-6f),
                      .norm = op_attr_float(c, "norm_coefficient", 0.0f),
                      .norm_post = op_attr_float(c, "norm_coefficient_post", 0.0f)};
    return train_run(c, 2, &p, train_adam_rule);
}

const op_kernel op_kernels_training[] = {
    {TRAIN_DOMAIN, "Momentum", 1, train_momentum},
    {TRAIN_DOMAIN, "Adagrad", 1, train_adagrad},
    {TRAIN_DOMAIN, "Adam", 1, train_adam},
    {NULL, NULL, 0, NULL},
};
