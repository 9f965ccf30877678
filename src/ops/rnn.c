/* Recurrent layers (RNN, GRU, LSTM), SwiGLU and DeformConv.
 *
 * Everything computes in double whatever the element type (float16 and
 * bfloat16 round once, on store). The recurrent ops widen X and one
 * direction's weights, compute X @ W^T for every step as one GEMM before the
 * loop, and at each step add H_{t-1} @ R^T (a GEMM over the batch) before the
 * cell's gate math. Internally X is [seq, batch, input]; layout 1 only
 * changes how X, the initial states and the outputs are indexed. A batch
 * entry past its sequence_lens keeps its state and writes zeros to Y; the
 * reverse direction walks each entry from its own last step. */
#include <cblas.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

/* Products below this many multiply-adds run the plain loop: a BLAS call
 * costs more than it saves. */
#define RNN_BLAS_MIN_WORK 32768

#define RNN_MAX_ACTS 3

/* ---- shared helpers -------------------------------------------------------- */

static bool rnn_is_float(ogi_dtype dt)
{
    return dt == OGI_FLOAT32 || dt == OGI_FLOAT64 || dt == OGI_FLOAT16 || dt == OGI_BFLOAT16;
}

/* a * b, or -1 when either is negative or the product overflows. */
static int64_t rnn_mul(int64_t a, int64_t b)
{
    if (a < 0 || b < 0 || (a != 0 && b > INT64_MAX / a))
        return -1;
    return a * b;
}

/* A zeroed buffer of n doubles (n < 0: an overflowed size), or NULL. */
static double *rnn_alloc_f64(int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(double) - 1)
        return NULL;
    return calloc((size_t)n + 1, sizeof(double));
}

/* y[m, n] (rows ldy apart) = a[m, k] @ op(b), where op(b) is b[n, k]^T when
 * trans_b and b[k, n] otherwise; with accumulate y keeps its old value and
 * adds the product. */
static void rnn_gemm(int64_t m, int64_t n, int64_t k, const double *a, const double *b,
                     bool trans_b, double *y, int64_t ldy, bool accumulate)
{
    if (m == 0 || n == 0)
        return;
    bool fits = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && ldy <= INT_MAX;
    if (k > 0 && fits && (double)m * (double)n * (double)k >= RNN_BLAS_MIN_WORK) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (blasint)m,
                    (blasint)n, (blasint)k, 1.0, a, (blasint)k, b, (blasint)(trans_b ? k : n),
                    accumulate ? 1.0 : 0.0, y, (blasint)ldy);
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++)
                acc += a[i * k + p] * (trans_b ? b[j * k + p] : b[p * n + j]);
            y[i * ldy + j] = accumulate ? y[i * ldy + j] + acc : acc;
        }
    }
}

/* Checks that input i (present) has the given shape and X's dtype. */
static ogi_status rnn_check_input(const op_ctx *c, int i, int rank, const int64_t *dims)
{
    const ogi_tensor *t = c->in[i];
    bool same = t->rank == rank;
    for (int d = 0; same && d < rank; d++)
        same = t->dims[d] == dims[d];
    if (!same) {
        char want[128], got[128];
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected shape %s, got %s", i,
                        tensor_shape_str(rank, dims, want, sizeof(want)),
                        tensor_shape_str(t->rank, t->dims, got, sizeof(got)));
    }
    if (t->dtype != c->in[0]->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d: dtype %s differs from input 0's %s", i,
                        ogi_dtype_name(t->dtype), ogi_dtype_name(c->in[0]->dtype));
    return OGI_OK;
}

/* ---- activations ----------------------------------------------------------- */

typedef enum rnn_act_kind {
    RNN_ACT_RELU,
    RNN_ACT_TANH,
    RNN_ACT_SIGMOID,
    RNN_ACT_AFFINE,
    RNN_ACT_LEAKY_RELU,
    RNN_ACT_THRESHOLDED_RELU,
    RNN_ACT_SCALED_TANH,
    RNN_ACT_HARD_SIGMOID,
    RNN_ACT_ELU,
    RNN_ACT_SOFTSIGN,
    RNN_ACT_SOFTPLUS,
} rnn_act_kind;

typedef struct rnn_act {
    rnn_act_kind kind;
    double alpha, beta;
} rnn_act;

/* The functions the recurrent ops accept, which of alpha and beta each
 * takes, and their defaults (those of the ONNX operator of that name). */
typedef struct rnn_act_info {
    const char *name;
    rnn_act_kind kind;
    bool takes_alpha, takes_beta;
    double alpha, beta;
} rnn_act_info;

static const rnn_act_info rnn_act_table[] = {
    {"Relu", RNN_ACT_RELU, false, false, 0.0, 0.0},
    {"Tanh", RNN_ACT_TANH, false, false, 0.0, 0.0},
    {"Sigmoid", RNN_ACT_SIGMOID, false, false, 0.0, 0.0},
    {"Affine", RNN_ACT_AFFINE, true, true, 1.0, 0.0},
    {"LeakyRelu", RNN_ACT_LEAKY_RELU, true, false, 0.01, 0.0},
    {"ThresholdedRelu", RNN_ACT_THRESHOLDED_RELU, true, false, 1.0, 0.0},
    {"ScaledTanh", RNN_ACT_SCALED_TANH, true, true, 1.0, 1.0},
    {"HardSigmoid", RNN_ACT_HARD_SIGMOID, true, true, 0.2, 0.5},
    {"Elu", RNN_ACT_ELU, true, false, 1.0, 0.0},
    {"Softsign", RNN_ACT_SOFTSIGN, false, false, 0.0, 0.0},
    {"Softplus", RNN_ACT_SOFTPLUS, false, false, 0.0, 0.0},
};

/* Activation names compare without case, as exporters vary. */
static const rnn_act_info *rnn_act_find(const char *name)
{
    for (size_t i = 0; i < sizeof(rnn_act_table) / sizeof(rnn_act_table[0]); i++) {
        const char *a = rnn_act_table[i].name, *b = name;
        while (*a && tolower((unsigned char)*a) == tolower((unsigned char)*b)) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return &rnn_act_table[i];
    }
    return NULL;
}

static double rnn_act_apply(const rnn_act *a, double x)
{
    switch (a->kind) {
    case RNN_ACT_RELU:
        return x > 0.0 ? x : 0.0;
    case RNN_ACT_TANH:
        return tanh(x);
    case RNN_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case RNN_ACT_AFFINE:
        return a->alpha * x + a->beta;
    case RNN_ACT_LEAKY_RELU:
        return x < 0.0 ? a->alpha * x : x;
    case RNN_ACT_THRESHOLDED_RELU:
        return x > a->alpha ? x : 0.0;
    case RNN_ACT_SCALED_TANH:
        return a->alpha * tanh(a->beta * x);
    case RNN_ACT_HARD_SIGMOID: {
        double v = a->alpha * x + a->beta;
        return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
    }
    case RNN_ACT_ELU:
        return x < 0.0 ? a->alpha * expm1(x) : x;
    case RNN_ACT_SOFTSIGN:
        return x / (1.0 + fabs(x));
    case RNN_ACT_SOFTPLUS:
        return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    return x;
}

/* Reads the activations attribute (n_per functions per direction; one list
 * for a bidirectional layer serves both directions) into act. The alpha and
 * beta lists are consumed in order by the functions that take them; when
 * they run out, the defaults apply. */
static ogi_status rnn_read_activations(const op_ctx *c, const char *const *defaults, int n_per,
                                       int dirs, rnn_act act[2][RNN_MAX_ACTS])
{
    const onnx_attr *a = op_attr(c, "activations");
    int n = n_per * dirs;
    if (a != NULL && (a->type != ONNX_ATTR_STRINGS || !(a->n == n || (dirs == 2 && a->n == n_per))))
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute activations: expected %d names, got %lld", n,
                        (long long)(a->type == ONNX_ATTR_STRINGS ? a->n : 0));
    const float *alphas, *betas;
    int64_t n_alpha, n_beta, next_alpha = 0, next_beta = 0;
    op_attr_floats(c, "activation_alpha", &alphas, &n_alpha);
    op_attr_floats(c, "activation_beta", &betas, &n_beta);
    for (int k = 0; k < n; k++) {
        const char *name = a != NULL ? a->strings[k % a->n] : defaults[k % n_per];
        const rnn_act_info *info = rnn_act_find(name);
        if (info == NULL)
            return op_error(c, OGI_ERR_UNSUPPORTED, "activation '%s' is not supported", name);
        rnn_act *dst = &act[k / n_per][k % n_per];
        *dst = (rnn_act){info->kind, info->alpha, info->beta};
        if (info->takes_alpha && next_alpha < n_alpha)
            dst->alpha = alphas[next_alpha++];
        if (info->takes_beta && next_beta < n_beta)
            dst->beta = betas[next_beta++];
    }
    return OGI_OK;
}

/* ---- the recurrent layer --------------------------------------------------- */

typedef enum rnn_cell { RNN_CELL_RNN = 0, RNN_CELL_GRU = 1, RNN_CELL_LSTM = 2 } rnn_cell;

/* Inputs and outputs by position. */
enum { RNN_IN_X, RNN_IN_W, RNN_IN_R, RNN_IN_B, RNN_IN_LENS, RNN_IN_H0, RNN_IN_C0, RNN_IN_P };
enum { RNN_OUT_Y, RNN_OUT_H, RNN_OUT_C };

/* What does not change between directions. */
typedef struct rnn_layer {
    rnn_cell cell;
    int gates; /* weight blocks per direction: 1 (RNN), 3 (GRU: z r h), 4 (LSTM: i o f c) */
    int dirs;
    bool reverse; /* direction "reverse" (one direction) */
    int layout;
    int64_t seq, batch, input, hidden;
    bool has_clip;
    double clip;
    bool linear_before_reset; /* GRU */
    bool input_forget;        /* LSTM */
    rnn_act act[2][RNN_MAX_ACTS];
    int64_t *lens; /* [batch]: steps of each entry */
    double *x;     /* [seq, batch, input] */
} rnn_layer;

/* One direction's weights and state. */
typedef struct rnn_dir {
    double *w;       /* [gates * hidden, input] */
    double *r;       /* [gates * hidden, hidden] */
    double *bias_x;  /* [gates * hidden]: added to X @ W^T (Wb + Rb, but GRU's Rbh
                        when linear_before_reset) */
    double *bias_r;  /* [gates * hidden]: Rb as read */
    double *bias_rh; /* [hidden]: GRU's Rbh, applied inside the reset */
    double *p;       /* [3 * hidden]: LSTM peepholes i, o, f */
    double *xw;      /* [seq * batch, gates * hidden] */
    double *hr;      /* [batch, gates * hidden]: H_{t-1} @ R^T, then gate values */
    double *h;       /* [batch, hidden] */
    double *cst;     /* [batch, hidden]: LSTM cell state */
    double *rh;      /* [batch, hidden]: GRU r (.) H_{t-1} */
    double *block;   /* owns all of the above */
} rnn_dir;

static double rnn_clip(const rnn_layer *L, double x)
{
    if (!L->has_clip)
        return x;
    return x > L->clip ? L->clip : x < -L->clip ? -L->clip : x;
}

/* The time index entry b processes at step s, or -1 once its sequence ended. */
static int64_t rnn_time(const rnn_layer *L, bool reverse, int64_t b, int64_t s)
{
    if (s >= L->lens[b])
        return -1;
    return reverse ? L->lens[b] - 1 - s : s;
}

/* Element offsets of Y[t, d, b, :] and of Y_h / Y_c / initial_h[d, b, :]. */
static int64_t rnn_y_offset(const rnn_layer *L, int64_t t, int d, int64_t b)
{
    if (L->layout == 0)
        return ((t * L->dirs + d) * L->batch + b) * L->hidden;
    return ((b * L->seq + t) * L->dirs + d) * L->hidden;
}

static int64_t rnn_state_offset(const rnn_layer *L, int d, int64_t b)
{
    return (L->layout == 0 ? d * L->batch + b : b * L->dirs + d) * L->hidden;
}

static ogi_status rnn_read_direction(op_ctx *c, rnn_layer *L)
{
    const char *dir = op_attr_string(c, "direction", "forward");
    L->dirs = 1;
    if (strcmp(dir, "bidirectional") == 0)
        L->dirs = 2;
    else if (strcmp(dir, "reverse") == 0)
        L->reverse = true;
    else if (strcmp(dir, "forward") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute direction: unknown value '%s'", dir);
    return OGI_OK;
}

/* Reads X's shape and the hidden size, and checks every weight input. */
static ogi_status rnn_read_shapes(op_ctx *c, rnn_layer *L)
{
    const ogi_tensor *x = c->in[RNN_IN_X], *r = c->in[RNN_IN_R];
    if (x->rank != 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank 3, got %d", x->rank);
    L->seq = x->dims[L->layout == 0 ? 0 : 1];
    L->batch = x->dims[L->layout == 0 ? 1 : 0];
    L->input = x->dims[2];
    if (r->rank != 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 2: expected rank 3, got %d", r->rank);
    L->hidden = r->dims[2];
    const onnx_attr *hs = op_attr(c, "hidden_size");
    if (hs != NULL && op_attr_int(c, "hidden_size", 0) != L->hidden)
        return op_error(c, OGI_ERR_RUNTIME,
                        "attribute hidden_size %lld does not match input 2 (%lld)",
                        (long long)op_attr_int(c, "hidden_size", 0), (long long)L->hidden);
    int64_t gh = rnn_mul(L->gates, L->hidden), D = L->dirs, H = L->hidden;
    if (gh < 0 || gh > INT64_MAX / 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 2: hidden size %lld is too large", (long long)H);
    const int64_t w_dims[3] = {D, gh, L->input}, r_dims[3] = {D, gh, H};
    ogi_status st = rnn_check_input(c, RNN_IN_W, 3, w_dims);
    if (st == OGI_OK)
        st = rnn_check_input(c, RNN_IN_R, 3, r_dims);
    const int64_t b_dims[2] = {D, 2 * gh}, p_dims[2] = {D, 3 * H};
    if (st == OGI_OK && op_has_input(c, RNN_IN_B))
        st = rnn_check_input(c, RNN_IN_B, 2, b_dims);
    const int64_t s_dims[3] = {L->layout == 0 ? D : L->batch, L->layout == 0 ? L->batch : D, H};
    if (st == OGI_OK && op_has_input(c, RNN_IN_H0))
        st = rnn_check_input(c, RNN_IN_H0, 3, s_dims);
    if (L->cell != RNN_CELL_LSTM)
        return st;
    if (st == OGI_OK && op_has_input(c, RNN_IN_C0))
        st = rnn_check_input(c, RNN_IN_C0, 3, s_dims);
    if (st == OGI_OK && op_has_input(c, RNN_IN_P))
        st = rnn_check_input(c, RNN_IN_P, 2, p_dims);
    return st;
}

static ogi_status rnn_read_attrs(op_ctx *c, rnn_layer *L)
{
    static const char *const defaults[3][RNN_MAX_ACTS] = {
        {"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
    static const int gates[3] = {1, 3, 4}, n_acts[3] = {1, 2, 3};
    L->gates = gates[L->cell];
    ogi_status st = rnn_read_direction(c, L);
    if (st != OGI_OK)
        return st;
    int64_t layout = op_attr_int(c, "layout", 0);
    if (layout != 0 && layout != 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute layout: expected 0 or 1, got %lld",
                        (long long)layout);
    L->layout = (int)layout;
    if (op_attr(c, "clip") != NULL) {
        L->has_clip = true;
        L->clip = op_attr_float(c, "clip", 0.0f);
        if (!(L->clip >= 0.0))
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute clip: expected >= 0, got %g",
                            L->clip);
    }
    L->linear_before_reset = op_attr_int(c, "linear_before_reset", 0) != 0;
    L->input_forget = op_attr_int(c, "input_forget", 0) != 0;
    return rnn_read_activations(c, defaults[L->cell], n_acts[L->cell], L->dirs, L->act);
}

/* L->lens from sequence_lens (each in [0, seq]), or seq for every entry. */
static ogi_status rnn_read_lens(op_ctx *c, rnn_layer *L)
{
    if ((uint64_t)L->batch < SIZE_MAX / sizeof(int64_t))
        L->lens = malloc((size_t)(L->batch + 1) * sizeof(int64_t));
    if (L->lens == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if (!op_has_input(c, RNN_IN_LENS)) {
        for (int64_t b = 0; b < L->batch; b++)
            L->lens[b] = L->seq;
        return OGI_OK;
    }
    const ogi_tensor *t = c->in[RNN_IN_LENS];
    if (t->dtype != OGI_INT32 && t->dtype != OGI_INT64)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 4: expected int32, got %s",
                        ogi_dtype_name(t->dtype));
    if (t->rank != 1 || t->dims[0] != L->batch)
        return op_error(c, OGI_ERR_RUNTIME, "input 4: expected shape [%lld]", (long long)L->batch);
    for (int64_t b = 0; b < L->batch; b++) {
        L->lens[b] = dtype_get_i64(t->data, t->dtype, b);
        if (L->lens[b] < 0 || L->lens[b] > L->seq)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 4: sequence length %lld of entry %lld is outside [0, %lld]",
                            (long long)L->lens[b], (long long)b, (long long)L->seq);
    }
    return OGI_OK;
}

/* L->x = X as [seq, batch, input] in double. */
static ogi_status rnn_read_x(op_ctx *c, rnn_layer *L)
{
    const ogi_tensor *x = c->in[RNN_IN_X];
    L->x = rnn_alloc_f64(tensor_numel(x));
    if (L->x == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if (L->layout == 0) {
        tensor_load_f64(x, 0, tensor_numel(x), L->x);
        return OGI_OK;
    }
    for (int64_t t = 0; t < L->seq; t++)
        for (int64_t b = 0; b < L->batch; b++)
            tensor_load_f64(x, (b * L->seq + t) * L->input, L->input,
                            L->x + (t * L->batch + b) * L->input);
    return OGI_OK;
}

static ogi_status rnn_layer_init(op_ctx *c, rnn_cell cell, rnn_layer *L)
{
    L->cell = cell;
    for (int i = RNN_IN_X; i <= RNN_IN_R; i++) {
        ogi_status st = op_require_input(c, i);
        if (st != OGI_OK)
            return st;
    }
    if (!rnn_is_float(c->in[RNN_IN_X]->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(c->in[RNN_IN_X]->dtype));
    ogi_status st = rnn_read_attrs(c, L);
    if (st == OGI_OK)
        st = rnn_read_shapes(c, L);
    if (st == OGI_OK)
        st = rnn_read_lens(c, L);
    if (st == OGI_OK)
        st = rnn_read_x(c, L);
    return st;
}

/* Carves one direction's buffers out of one block. */
static ogi_status rnn_dir_alloc(op_ctx *c, const rnn_layer *L, rnn_dir *D)
{
    int64_t H = L->hidden, gh = L->gates * H;
    enum { N_PARTS = 11 };
    int64_t sizes[N_PARTS] = {
        rnn_mul(gh, L->input),
        rnn_mul(gh, H),
        gh,
        gh,
        H,
        3 * H,
        rnn_mul(rnn_mul(L->seq, L->batch), gh),
        rnn_mul(L->batch, gh),
        rnn_mul(L->batch, H),
        rnn_mul(L->batch, H),
        rnn_mul(L->batch, H),
    };
    int64_t total = 0;
    for (int i = 0; i < N_PARTS; i++)
        total = sizes[i] < 0 || total > INT64_MAX - sizes[i] ? -1 : total + sizes[i];
    D->block = rnn_alloc_f64(total);
    if (D->block == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
    double **parts[N_PARTS] = {&D->w,  &D->r,  &D->bias_x, &D->bias_r, &D->bias_rh, &D->p,
                               &D->xw, &D->hr, &D->h,      &D->cst,    &D->rh};
    double *next = D->block;
    for (int i = 0; i < N_PARTS; i++) {
        *parts[i] = next;
        next += sizes[i];
    }
    return OGI_OK;
}

/* Loads direction d's weights, biases, peepholes and initial state. */
static void rnn_dir_load(const op_ctx *c, const rnn_layer *L, int d, rnn_dir *D)
{
    int64_t H = L->hidden, gh = L->gates * H;
    tensor_load_f64(c->in[RNN_IN_W], d * gh * L->input, gh * L->input, D->w);
    tensor_load_f64(c->in[RNN_IN_R], d * gh * H, gh * H, D->r);
    if (op_has_input(c, RNN_IN_B)) {
        const ogi_tensor *b = c->in[RNN_IN_B];
        tensor_load_f64(b, d * 2 * gh, gh, D->bias_x);
        double *rb = D->bias_r;
        tensor_load_f64(b, d * 2 * gh + gh, gh, rb);
        bool split_rh = L->cell == RNN_CELL_GRU && L->linear_before_reset;
        for (int64_t j = 0; j < gh; j++)
            if (!split_rh || j < 2 * H)
                D->bias_x[j] += rb[j];
        if (split_rh)
            memcpy(D->bias_rh, rb + 2 * H, (size_t)H * sizeof(double));
    }
    if (L->cell == RNN_CELL_LSTM && op_has_input(c, RNN_IN_P))
        tensor_load_f64(c->in[RNN_IN_P], d * 3 * H, 3 * H, D->p);
    for (int64_t b = 0; b < L->batch; b++) {
        if (op_has_input(c, RNN_IN_H0))
            tensor_load_f64(c->in[RNN_IN_H0], rnn_state_offset(L, d, b), H, D->h + b * H);
        if (L->cell == RNN_CELL_LSTM && op_has_input(c, RNN_IN_C0))
            tensor_load_f64(c->in[RNN_IN_C0], rnn_state_offset(L, d, b), H, D->cst + b * H);
    }
}

/* Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb) for entry b at time t. */
static void rnn_cell_rnn(const rnn_layer *L, rnn_dir *D, const rnn_act *act, int64_t t, int64_t b)
{
    int64_t H = L->hidden;
    const double *xw = D->xw + (t * L->batch + b) * H, *hr = D->hr + b * H;
    double *h = D->h + b * H;
    for (int64_t j = 0; j < H; j++)
        h[j] = rnn_act_apply(&act[0], rnn_clip(L, xw[j] + hr[j]));
}

/* it = f(. + Pi (.) Ct-1), ft = f(. + Pf (.) Ct-1) (or 1 - it with
 * input_forget), ct = g(.), Ct = ft (.) Ct-1 + it (.) ct,
 * ot = f(. + Po (.) Ct), Ht = ot (.) h(Ct); gate blocks i, o, f, c. */
static void rnn_cell_lstm(const rnn_layer *L, rnn_dir *D, const rnn_act *act, int64_t t, int64_t b)
{
    int64_t H = L->hidden;
    const double *xw = D->xw + (t * L->batch + b) * 4 * H, *hr = D->hr + b * 4 * H, *p = D->p;
    double *h = D->h + b * H, *cst = D->cst + b * H;
    for (int64_t j = 0; j < H; j++) {
        double c_prev = cst[j];
        double i = rnn_act_apply(&act[0], rnn_clip(L, xw[j] + hr[j] + p[j] * c_prev));
        double f = L->input_forget
                       ? 1.0 - i
                       : rnn_act_apply(&act[0], rnn_clip(L, xw[2 * H + j] + hr[2 * H + j] +
                                                                p[2 * H + j] * c_prev));
        double g = rnn_act_apply(&act[1], rnn_clip(L, xw[3 * H + j] + hr[3 * H + j]));
        double c_new = f * c_prev + i * g;
        double o = rnn_act_apply(&act[0], rnn_clip(L, xw[H + j] + hr[H + j] + p[H + j] * c_new));
        cst[j] = c_new;
        h[j] = o * rnn_act_apply(&act[2], c_new);
    }
}

/* GRU, first half: zt = f(.) and rt = f(.) replace their pre-activations in
 * hr; without linear_before_reset rh = rt (.) Ht-1 feeds the next product. */
static void rnn_gru_gates(const rnn_layer *L, rnn_dir *D, const rnn_act *act, int64_t t, int64_t b)
{
    int64_t H = L->hidden;
    const double *xw = D->xw + (t * L->batch + b) * 3 * H, *h = D->h + b * H;
    double *hr = D->hr + b * 3 * H, *rh = D->rh + b * H;
    for (int64_t j = 0; j < H; j++) {
        hr[j] = rnn_act_apply(&act[0], rnn_clip(L, xw[j] + hr[j]));
        hr[H + j] = rnn_act_apply(&act[0], rnn_clip(L, xw[H + j] + hr[H + j]));
        rh[j] = hr[H + j] * h[j];
    }
}

/* GRU, second half: ht = g(Xt Wh^T + (rt (.) Ht-1) Rh^T + Rbh + Wbh), or with
 * linear_before_reset g(Xt Wh^T + rt (.) (Ht-1 Rh^T + Rbh) + Wbh);
 * Ht = (1 - zt) (.) ht + zt (.) Ht-1. */
static void rnn_gru_output(const rnn_layer *L, rnn_dir *D, const rnn_act *act, int64_t t, int64_t b)
{
    int64_t H = L->hidden;
    const double *xw = D->xw + (t * L->batch + b) * 3 * H, *hr = D->hr + b * 3 * H;
    double *h = D->h + b * H;
    for (int64_t j = 0; j < H; j++) {
        double z = hr[j], r = hr[H + j], pre = xw[2 * H + j];
        pre += L->linear_before_reset ? r * (hr[2 * H + j] + D->bias_rh[j]) : hr[2 * H + j];
        double cand = rnn_act_apply(&act[1], rnn_clip(L, pre));
        h[j] = (1.0 - z) * cand + z * h[j];
    }
}

static void rnn_gru_step(const rnn_layer *L, rnn_dir *D, const rnn_act *act, bool reverse,
                         int64_t s)
{
    int64_t H = L->hidden;
    for (int64_t b = 0; b < L->batch; b++) {
        int64_t t = rnn_time(L, reverse, b, s);
        if (t >= 0)
            rnn_gru_gates(L, D, act, t, b);
    }
    if (!L->linear_before_reset)
        rnn_gemm(L->batch, H, H, D->rh, D->r + 2 * H * H, true, D->hr + 2 * H, 3 * H, false);
    for (int64_t b = 0; b < L->batch; b++) {
        int64_t t = rnn_time(L, reverse, b, s);
        if (t >= 0)
            rnn_gru_output(L, D, act, t, b);
    }
}

/* One step s over the batch: hr = H_{t-1} @ R^T, then each live entry's cell. */
static void rnn_step(const rnn_layer *L, rnn_dir *D, const rnn_act *act, bool reverse, int64_t s)
{
    int64_t H = L->hidden, gh = L->gates * H;
    /* without linear_before_reset GRU's third block multiplies rt (.) Ht-1 */
    int64_t n = L->cell == RNN_CELL_GRU && !L->linear_before_reset ? 2 * H : gh;
    rnn_gemm(L->batch, n, H, D->h, D->r, true, D->hr, gh, false);
    if (L->cell == RNN_CELL_GRU) {
        rnn_gru_step(L, D, act, reverse, s);
        return;
    }
    for (int64_t b = 0; b < L->batch; b++) {
        int64_t t = rnn_time(L, reverse, b, s);
        if (t < 0)
            continue;
        if (L->cell == RNN_CELL_LSTM)
            rnn_cell_lstm(L, D, act, t, b);
        else
            rnn_cell_rnn(L, D, act, t, b);
    }
}

static int64_t rnn_max_len(const rnn_layer *L)
{
    int64_t m = 0;
    for (int64_t b = 0; b < L->batch; b++)
        m = L->lens[b] > m ? L->lens[b] : m;
    return m;
}

/* Runs direction d over the whole sequence, writing Y (zeroed beforehand),
 * Y_h and Y_c where used. */
static ogi_status rnn_run_direction(op_ctx *c, const rnn_layer *L, int d)
{
    rnn_dir D = {0};
    ogi_status st = rnn_dir_alloc(c, L, &D);
    if (st != OGI_OK)
        return st;
    rnn_dir_load(c, L, d, &D);
    int64_t H = L->hidden, gh = L->gates * H, rows = L->seq * L->batch;
    rnn_gemm(rows, gh, L->input, L->x, D.w, true, D.xw, gh, false);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < gh; j++)
            D.xw[i * gh + j] += D.bias_x[j];
    bool reverse = L->reverse || d == 1;
    ogi_tensor *y = op_output_used(c, RNN_OUT_Y) ? c->out[RNN_OUT_Y] : NULL;
    int64_t steps = rnn_max_len(L);
    for (int64_t s = 0; s < steps; s++) {
        rnn_step(L, &D, L->act[d], reverse, s);
        for (int64_t b = 0; y != NULL && b < L->batch; b++) {
            int64_t t = rnn_time(L, reverse, b, s);
            if (t >= 0)
                tensor_store_f64(y, rnn_y_offset(L, t, d, b), H, D.h + b * H);
        }
    }
    for (int64_t b = 0; b < L->batch; b++) {
        if (op_output_used(c, RNN_OUT_H))
            tensor_store_f64(c->out[RNN_OUT_H], rnn_state_offset(L, d, b), H, D.h + b * H);
        if (L->cell == RNN_CELL_LSTM && op_output_used(c, RNN_OUT_C))
            tensor_store_f64(c->out[RNN_OUT_C], rnn_state_offset(L, d, b), H, D.cst + b * H);
    }
    free(D.block);
    return OGI_OK;
}

static ogi_status rnn_alloc_outputs(op_ctx *c, const rnn_layer *L)
{
    ogi_dtype dt = c->in[RNN_IN_X]->dtype;
    int64_t D = L->dirs, H = L->hidden;
    if (op_output_used(c, RNN_OUT_Y)) {
        int64_t dims0[4] = {L->seq, D, L->batch, H}, dims1[4] = {L->batch, L->seq, D, H};
        ogi_status st = op_alloc(c, RNN_OUT_Y, dt, 4, L->layout == 0 ? dims0 : dims1);
        if (st != OGI_OK)
            return st;
        memset(c->out[RNN_OUT_Y]->data, 0, c->out[RNN_OUT_Y]->nbytes);
    }
    int64_t sdims0[3] = {D, L->batch, H}, sdims1[3] = {L->batch, D, H};
    for (int o = RNN_OUT_H; o <= RNN_OUT_C; o++) {
        if (o == RNN_OUT_C && L->cell != RNN_CELL_LSTM)
            break;
        if (!op_output_used(c, o))
            continue;
        ogi_status st = op_alloc(c, o, dt, 3, L->layout == 0 ? sdims0 : sdims1);
        if (st != OGI_OK)
            return st;
    }
    return OGI_OK;
}

static ogi_status rnn_run(op_ctx *c, rnn_cell cell)
{
    rnn_layer L = {0};
    ogi_status st = rnn_layer_init(c, cell, &L);
    if (st == OGI_OK)
        st = rnn_alloc_outputs(c, &L);
    for (int d = 0; st == OGI_OK && d < L.dirs; d++)
        st = rnn_run_direction(c, &L, d);
    free(L.lens);
    free(L.x);
    return st;
}

static ogi_status rnn_plain(op_ctx *c)
{
    return rnn_run(c, RNN_CELL_RNN);
}

static ogi_status rnn_gru(op_ctx *c)
{
    return rnn_run(c, RNN_CELL_GRU);
}

static ogi_status rnn_lstm(op_ctx *c)
{
    return rnn_run(c, RNN_CELL_LSTM);
}

/* ---- SwiGLU ---------------------------------------------------------------- */

/* Y = A * sigmoid(alpha * A) * B element-wise; A and B of one shape. */
typedef struct swiglu_job {
    const ogi_tensor *a, *b;
    ogi_tensor *y;
    double alpha;
} swiglu_job;

#define SWIGLU_BLOCK 256
#define SWIGLU_MIN_CHUNK 16384

static void swiglu_range(void *arg, int64_t begin, int64_t end)
{
    const swiglu_job *j = arg;
    double a[SWIGLU_BLOCK], b[SWIGLU_BLOCK];
    for (int64_t start = begin; start < end; start += SWIGLU_BLOCK) {
        int64_t n = end - start < SWIGLU_BLOCK ? end - start : SWIGLU_BLOCK;
        tensor_load_f64(j->a, start, n, a);
        tensor_load_f64(j->b, start, n, b);
        for (int64_t k = 0; k < n; k++)
            a[k] = a[k] / (1.0 + exp(-j->alpha * a[k])) * b[k];
        tensor_store_f64(j->y, start, n, a);
    }
}

static ogi_status swiglu_run(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st == OGI_OK)
        st = op_require_input(c, 1);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *a = c->in[0], *b = c->in[1];
    if (!rnn_is_float(a->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(a->dtype));
    if (b->dtype != a->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 1: dtype %s differs from input 0's %s",
                        ogi_dtype_name(b->dtype), ogi_dtype_name(a->dtype));
    if (!tensor_same_shape(a, b)) {
        char sa[128], sb[128];
        return op_error(c, OGI_ERR_RUNTIME, "inputs 0 and 1 differ in shape: %s and %s",
                        tensor_shape_str(a->rank, a->dims, sa, sizeof(sa)),
                        tensor_shape_str(b->rank, b->dims, sb, sizeof(sb)));
    }
    if ((st = op_alloc(c, 0, a->dtype, a->rank, a->dims)) != OGI_OK)
        return st;
    swiglu_job job = {a, b, c->out[0], op_attr_float(c, "alpha", 1.0f)};
    threadpool_parallel_for(c->pool, tensor_numel(a), SWIGLU_MIN_CHUNK, swiglu_range, &job);
    return OGI_OK;
}

/* ---- DeformConv ------------------------------------------------------------ */

/* Deformable convolution, N x C x D1 x ... x Dn. Each kernel tap k of output
 * position p samples X at p * stride - pad_begin + k * dilation + offset
 * (multilinear interpolation, zero outside the image), scaled by the mask;
 * the samples form an im2col matrix [C * K, P] that multiplies the weights
 * group by group. offset is [N, offset_group * K * n, out...] (the n
 * coordinates of each tap together), mask [N, offset_group * K, out...]. */

#define DEFORM_MAX_SPATIAL (OGI_MAX_RANK - 2)

typedef struct deform_geom {
    int nsp;
    int64_t batch, in_ch, out_ch, group, offset_group;
    int64_t in[DEFORM_MAX_SPATIAL], out[DEFORM_MAX_SPATIAL], kernel[DEFORM_MAX_SPATIAL];
    int64_t stride[DEFORM_MAX_SPATIAL], dilation[DEFORM_MAX_SPATIAL];
    int64_t pad_begin[DEFORM_MAX_SPATIAL], pad_end[DEFORM_MAX_SPATIAL];
    int64_t in_size, out_size, kernel_size;
} deform_geom;

enum { DEFORM_IN_X, DEFORM_IN_W, DEFORM_IN_OFFSET, DEFORM_IN_B, DEFORM_IN_MASK };

/* Reads an ints attribute of count values, each in [lo, INT32_MAX] (which
 * keeps the shape arithmetic far from overflow); absent: every value is def. */
static ogi_status deform_read_ints(const op_ctx *c, const char *name, int count, int64_t lo,
                                   int64_t def, int64_t *out)
{
    const int64_t *v;
    int64_t n;
    if (!op_attr_ints(c, name, &v, &n)) {
        for (int i = 0; i < count; i++)
            out[i] = def;
        return OGI_OK;
    }
    if (n != count)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s: expected %d values, got %lld",
                        name, count, (long long)n);
    for (int i = 0; i < count; i++) {
        if (v[i] < lo || v[i] > INT32_MAX)
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s: value %lld is out of range",
                            name, (long long)v[i]);
        out[i] = v[i];
    }
    return OGI_OK;
}

static ogi_status deform_read_attrs(const op_ctx *c, deform_geom *g)
{
    int n = g->nsp;
    int64_t pads[2 * DEFORM_MAX_SPATIAL];
    ogi_status st = deform_read_ints(c, "strides", n, 1, 1, g->stride);
    if (st == OGI_OK)
        st = deform_read_ints(c, "dilations", n, 1, 1, g->dilation);
    if (st == OGI_OK)
        st = deform_read_ints(c, "pads", 2 * n, 0, 0, pads);
    if (st == OGI_OK)
        st = deform_read_ints(c, "kernel_shape", n, 0, 0, g->kernel);
    if (st != OGI_OK)
        return st;
    for (int i = 0; i < n; i++) {
        g->pad_begin[i] = pads[i];
        g->pad_end[i] = pads[n + i];
    }
    g->group = op_attr_int(c, "group", 1);
    g->offset_group = op_attr_int(c, "offset_group", 1);
    if (g->group < 1 || g->offset_group < 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attributes group and offset_group must be >= 1");
    return OGI_OK;
}

/* Checks X and W against the attributes; fills channels, kernel, output. */
static ogi_status deform_read_image(const op_ctx *c, deform_geom *g)
{
    const ogi_tensor *x = c->in[DEFORM_IN_X], *w = c->in[DEFORM_IN_W];
    g->batch = x->dims[0];
    g->in_ch = x->dims[1];
    g->out_ch = w->dims[0];
    if (w->rank != x->rank)
        return op_error(c, OGI_ERR_RUNTIME, "input 1: expected rank %d, got %d", x->rank, w->rank);
    if (g->in_ch % g->group != 0 || w->dims[1] * g->group != g->in_ch || g->out_ch % g->group)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 1: %lld x %lld channels do not fit %lld input channels in %lld "
                        "groups",
                        (long long)w->dims[0], (long long)w->dims[1], (long long)g->in_ch,
                        (long long)g->group);
    if (g->in_ch % g->offset_group != 0)
        return op_error(c, OGI_ERR_RUNTIME,
                        "%lld input channels do not split into %lld offset "
                        "groups",
                        (long long)g->in_ch, (long long)g->offset_group);
    g->in_size = g->kernel_size = g->out_size = 1;
    bool kernel_given = op_attr(c, "kernel_shape") != NULL;
    for (int i = 0; i < g->nsp; i++) {
        if (kernel_given && g->kernel[i] != w->dims[2 + i])
            return op_error(c, OGI_ERR_RUNTIME, "attribute kernel_shape does not match input 1");
        g->kernel[i] = w->dims[2 + i];
        g->in[i] = x->dims[2 + i];
        int64_t span = (g->kernel[i] - 1) * g->dilation[i] + 1;
        int64_t room = g->in[i] + g->pad_begin[i] + g->pad_end[i] - span;
        if (g->kernel[i] < 1 || room < 0)
            return op_error(c, OGI_ERR_RUNTIME, "kernel does not fit the padded input on axis %d",
                            2 + i);
        g->out[i] = room / g->stride[i] + 1;
        g->in_size *= g->in[i];
        g->kernel_size *= g->kernel[i];
        g->out_size = rnn_mul(g->out_size, g->out[i]);
    }
    if (g->out_size < 0)
        return op_error(c, OGI_ERR_RUNTIME, "the output shape overflows");
    return OGI_OK;
}

/* Checks that input i has shape [N, per_position, out...]. */
static ogi_status deform_check_map(const op_ctx *c, const deform_geom *g, int i,
                                   int64_t per_position)
{
    int64_t dims[OGI_MAX_RANK] = {g->batch, per_position};
    for (int s = 0; s < g->nsp; s++)
        dims[2 + s] = g->out[s];
    return rnn_check_input(c, i, g->nsp + 2, dims);
}

static ogi_status deform_init(op_ctx *c, deform_geom *g)
{
    for (int i = DEFORM_IN_X; i <= DEFORM_IN_OFFSET; i++) {
        ogi_status st = op_require_input(c, i);
        if (st != OGI_OK)
            return st;
    }
    const ogi_tensor *x = c->in[DEFORM_IN_X];
    if (!rnn_is_float(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (x->rank < 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 3, got %d", x->rank);
    g->nsp = x->rank - 2;
    ogi_status st = deform_read_attrs(c, g);
    if (st == OGI_OK)
        st = deform_read_image(c, g);
    if (st == OGI_OK && c->in[DEFORM_IN_W]->dtype != x->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 1: dtype differs from input 0's");
    int64_t taps = rnn_mul(g->offset_group, g->kernel_size);
    if (st == OGI_OK)
        st = deform_check_map(c, g, DEFORM_IN_OFFSET, rnn_mul(taps, g->nsp));
    if (st == OGI_OK && op_has_input(c, DEFORM_IN_MASK))
        st = deform_check_map(c, g, DEFORM_IN_MASK, taps);
    const int64_t b_dims[1] = {g->out_ch};
    if (st == OGI_OK && op_has_input(c, DEFORM_IN_B))
        st = rnn_check_input(c, DEFORM_IN_B, 1, b_dims);
    return st;
}

/* X sampled at pos (one image plane) by multilinear interpolation; points
 * outside the image read 0. */
static double deform_sample(const deform_geom *g, const double *plane, const double *pos)
{
    int64_t lo[DEFORM_MAX_SPATIAL];
    double frac[DEFORM_MAX_SPATIAL];
    for (int i = 0; i < g->nsp; i++) {
        double f = floor(pos[i]);
        if (isnan(f))
            return NAN;
        if (f < -1.0 || f > (double)(g->in[i] - 1))
            return 0.0; /* both neighbours lie outside */
        lo[i] = (int64_t)f;
        frac[i] = pos[i] - f;
    }
    double sum = 0.0;
    for (unsigned corner = 0; corner < (1u << g->nsp); corner++) {
        double weight = 1.0;
        int64_t idx = 0;
        bool inside = true;
        for (int i = 0; i < g->nsp && inside; i++) {
            unsigned up = (corner >> i) & 1u;
            int64_t q = lo[i] + up;
            inside = q >= 0 && q < g->in[i];
            weight *= up ? frac[i] : 1.0 - frac[i];
            idx = idx * g->in[i] + q;
        }
        if (inside)
            sum += weight * plane[idx];
    }
    return sum;
}

/* Splits a row-major flat index into coordinates over dims. */
static void deform_unflatten(int n, const int64_t *dims, int64_t flat, int64_t *coord)
{
    for (int i = n - 1; i >= 0; i--) {
        coord[i] = flat % dims[i];
        flat /= dims[i];
    }
}

/* col[c * K + k, p] for image nb: X's channel c sampled at tap k of p. */
static void deform_columns(const deform_geom *g, const double *x, const double *offset,
                           const double *mask, int64_t nb, double *col)
{
    int64_t K = g->kernel_size, P = g->out_size, ch_per_og = g->in_ch / g->offset_group;
    int64_t kc[DEFORM_MAX_SPATIAL], pc[DEFORM_MAX_SPATIAL];
    double pos[DEFORM_MAX_SPATIAL];
    for (int64_t og = 0; og < g->offset_group; og++) {
        for (int64_t k = 0; k < K; k++) {
            deform_unflatten(g->nsp, g->kernel, k, kc);
            int64_t tap = og * K + k;
            const double *off = offset + (nb * g->offset_group * K + tap) * g->nsp * P;
            const double *m = mask ? mask + (nb * g->offset_group * K + tap) * P : NULL;
            for (int64_t p = 0; p < P; p++) {
                deform_unflatten(g->nsp, g->out, p, pc);
                for (int i = 0; i < g->nsp; i++)
                    pos[i] =
                        (double)(pc[i] * g->stride[i] - g->pad_begin[i] + kc[i] * g->dilation[i]) +
                        off[i * P + p];
                double scale = m ? m[p] : 1.0;
                for (int64_t ch = og * ch_per_og; ch < (og + 1) * ch_per_og; ch++) {
                    const double *plane = x + (nb * g->in_ch + ch) * g->in_size;
                    col[(ch * K + k) * P + p] = scale * deform_sample(g, plane, pos);
                }
            }
        }
    }
}

/* The float inputs of DeformConv widened to double (absent ones NULL). */
typedef struct deform_data {
    double *x, *w, *offset, *bias, *mask, *col, *y;
} deform_data;

static void deform_data_free(deform_data *d)
{
    free(d->x);
    free(d->w);
    free(d->offset);
    free(d->bias);
    free(d->mask);
    free(d->col);
    free(d->y);
}

static double *deform_widen_input(const op_ctx *c, int i)
{
    if (!op_has_input(c, i))
        return NULL;
    double *d = rnn_alloc_f64(tensor_numel(c->in[i]));
    if (d != NULL)
        tensor_load_f64(c->in[i], 0, tensor_numel(c->in[i]), d);
    return d;
}

static ogi_status deform_load(const op_ctx *c, const deform_geom *g, deform_data *d)
{
    d->x = deform_widen_input(c, DEFORM_IN_X);
    d->w = deform_widen_input(c, DEFORM_IN_W);
    d->offset = deform_widen_input(c, DEFORM_IN_OFFSET);
    d->bias = deform_widen_input(c, DEFORM_IN_B);
    d->mask = deform_widen_input(c, DEFORM_IN_MASK);
    d->col = rnn_alloc_f64(rnn_mul(rnn_mul(g->in_ch, g->kernel_size), g->out_size));
    d->y = rnn_alloc_f64(rnn_mul(g->out_ch, g->out_size));
    bool ok = d->x && d->w && d->offset && d->col && d->y &&
              (d->bias || !op_has_input(c, DEFORM_IN_B)) &&
              (d->mask || !op_has_input(c, DEFORM_IN_MASK));
    return ok ? OGI_OK : op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
}

/* Y[nb] = per group, W_g [M/g, C/g * K] @ col_g [C/g * K, P], plus bias. */
static void deform_image(const deform_geom *g, deform_data *d, int64_t nb, ogi_tensor *y)
{
    int64_t K = g->kernel_size, P = g->out_size;
    int64_t cg = g->in_ch / g->group, mg = g->out_ch / g->group, depth = cg * K;
    deform_columns(g, d->x, d->offset, d->mask, nb, d->col);
    for (int64_t gi = 0; gi < g->group; gi++)
        rnn_gemm(mg, P, depth, d->w + gi * mg * depth, d->col + gi * depth * P, false,
                 d->y + gi * mg * P, P, false);
    for (int64_t m = 0; d->bias != NULL && m < g->out_ch; m++)
        for (int64_t p = 0; p < P; p++)
            d->y[m * P + p] += d->bias[m];
    tensor_store_f64(y, nb * g->out_ch * P, g->out_ch * P, d->y);
}

static ogi_status deform_conv(op_ctx *c)
{
    deform_geom g = {0};
    ogi_status st = deform_init(c, &g);
    if (st != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK] = {g.batch, g.out_ch};
    for (int i = 0; i < g.nsp; i++)
        dims[2 + i] = g.out[i];
    if ((st = op_alloc(c, 0, c->in[0]->dtype, g.nsp + 2, dims)) != OGI_OK)
        return st;
    deform_data d = {0};
    st = deform_load(c, &g, &d);
    for (int64_t nb = 0; st == OGI_OK && nb < g.batch; nb++)
        deform_image(&g, &d, nb, c->out[0]);
    deform_data_free(&d);
    return st;
}

const op_kernel op_kernels_rnn[] = {
    {"", "RNN", 1, rnn_plain},           {"", "GRU", 1, rnn_gru},
    {"", "LSTM", 1, rnn_lstm},           {"", "SwiGLU", 28, swiglu_run},
    {"", "DeformConv", 19, deform_conv}, {NULL, NULL, 0, NULL},
};
