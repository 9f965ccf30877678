/* CausalConvWithState (opset 27): the stateful causal depthwise 1-D
 * convolution of Mamba / Gated DeltaNet blocks (see causal_conv.h). Inputs:
 * input [B, C, L], weight [C, 1, K], bias [C] (optional), past_state [B, C,
 * K-1] (zeros when omitted); attribute activation "none" (default), "silu" or
 * its alias "swish". Outputs: output [B, C, L] and present_state [B, C, K-1],
 * the last K-1 columns of past_state followed by input. float16 is computed
 * in float32. The fast path slides the kernel over one channel's row with
 * contiguous multiply-adds (vectorised by the compiler, one body per
 * instruction set), and the decode step (L = 1) shifts the state in place. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "ops/causal_conv.h"
#include "ops/families.h"

#if defined(__x86_64__) || defined(__i386__)
#define CC_X86 1
#endif

#define CC_INLINE static inline __attribute__((always_inline))

static float cc_silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* ---- the reference ---------------------------------------------------------- */

/* One (batch, channel) row: xp = state then x, explicitly. */
static void cc_reference_row(const causal_conv_params *p, const causal_conv_data *d, int64_t row,
                             float *xp)
{
    const int64_t K = p->kernel, L = p->seq_len, ch = row % p->channels;
    float *state = d->state + row * (K - 1);
    const float *x = d->x + row * L, *w = d->weight + ch * K;
    float *y = d->y + row * L;
    for (int64_t j = 0; j < K - 1; j++)
        xp[j] = state[j];
    for (int64_t t = 0; t < L; t++)
        xp[K - 1 + t] = x[t];
    for (int64_t t = 0; t < L; t++) {
        float acc = d->bias ? d->bias[ch] : 0.0f;
        for (int64_t j = 0; j < K; j++)
            acc += w[j] * xp[t + j];
        y[t] = p->silu ? cc_silu(acc) : acc;
    }
    for (int64_t j = 0; j < K - 1; j++)
        state[j] = xp[L + j];
}

/* ---- the fast path ---------------------------------------------------------- */

/* One row: y = bias + sum_j w_j * xp[j .. j + L), the head of xp read from
 * the state and the rest from x directly. */
CC_INLINE void cc_fast_row_body(const causal_conv_params *p, const causal_conv_data *d, int64_t row)
{
    const int64_t K = p->kernel, L = p->seq_len, ch = row % p->channels;
    float *state = d->state + row * (K - 1);
    const float *x = d->x + row * L, *w = d->weight + ch * K;
    float *restrict y = d->y + row * L;
    const float b = d->bias ? d->bias[ch] : 0.0f;
    if (L == 1) {
        /* decode: one dot product, then the state shifts left by one */
        float acc = b + w[K - 1] * x[0];
        for (int64_t j = 0; j < K - 1; j++)
            acc += w[j] * state[j];
        y[0] = p->silu ? cc_silu(acc) : acc;
        if (K > 1) {
            memmove(state, state + 1, sizeof(float) * (size_t)(K - 2));
            state[K - 2] = x[0];
        }
        return;
    }
    for (int64_t t = 0; t < L; t++)
        y[t] = b;
    /* tap j reads xp[t + j]: the state for t + j < K - 1, x[t + j - (K - 1)] after */
    for (int64_t j = 0; j < K; j++) {
        const float wj = w[j];
        const int64_t lag = K - 1 - j; /* y[t] += wj * x[t - lag] */
        const int64_t head = lag < L ? lag : L;
        for (int64_t t = 0; t < head; t++)
            y[t] += wj * state[t + j];
        for (int64_t t = head; t < L; t++)
            y[t] += wj * x[t - lag];
    }
    if (p->silu)
        for (int64_t t = 0; t < L; t++)
            y[t] = cc_silu(y[t]);
    /* new state: the last K-1 of (state, x) */
    if (K > 1) {
        const int64_t keep = K - 1 > L ? K - 1 - L : 0; /* old state columns still kept */
        memmove(state, state + (K - 1 - keep), sizeof(float) * (size_t)keep);
        memcpy(state + keep, x + L - (K - 1 - keep), sizeof(float) * (size_t)(K - 1 - keep));
    }
}

static void cc_fast_rows_generic(const causal_conv_params *p, const causal_conv_data *d,
                                 int64_t begin, int64_t end)
{
    for (int64_t r = begin; r < end; r++)
        cc_fast_row_body(p, d, r);
}

#ifdef CC_X86
__attribute__((target("avx2,fma"))) static void cc_fast_rows_avx2(const causal_conv_params *p,
                                                                  const causal_conv_data *d,
                                                                  int64_t begin, int64_t end)
{
    for (int64_t r = begin; r < end; r++)
        cc_fast_row_body(p, d, r);
}

__attribute__((target("avx512f"))) static void cc_fast_rows_avx512(const causal_conv_params *p,
                                                                   const causal_conv_data *d,
                                                                   int64_t begin, int64_t end)
{
    for (int64_t r = begin; r < end; r++)
        cc_fast_row_body(p, d, r);
}
#endif

typedef void (*cc_rows_fn)(const causal_conv_params *, const causal_conv_data *, int64_t, int64_t);

typedef struct cc_job {
    const causal_conv_params *p;
    const causal_conv_data *d;
    cc_rows_fn rows; /* NULL: the reference */
    int failed;
} cc_job;

static void cc_range(void *arg, int64_t begin, int64_t end)
{
    cc_job *job = arg;
    if (job->rows != NULL) {
        job->rows(job->p, job->d, begin, end);
        return;
    }
    float *xp = malloc(sizeof(float) * (size_t)(job->p->kernel - 1 + job->p->seq_len + 1));
    if (xp == NULL) {
        __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t r = begin; r < end; r++)
        cc_reference_row(job->p, job->d, r, xp);
    free(xp);
}

static cc_rows_fn cc_pick_rows(void)
{
#ifdef CC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return cc_fast_rows_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return cc_fast_rows_avx2;
#endif
    return cc_fast_rows_generic;
}

ogi_status causal_conv_run(threadpool *pool, const causal_conv_params *p, const causal_conv_data *d,
                           bool reference)
{
    cc_job job = {p, d, reference ? NULL : cc_pick_rows(), 0};
    const int64_t rows = p->batch * p->channels;
    /* about 16K multiply-adds per task */
    int64_t per = 16384 / (p->kernel * (p->seq_len > 0 ? p->seq_len : 1) + 1);
    threadpool_parallel_for(pool, rows, per > 1 ? per : 1, cc_range, &job);
    return job.failed ? ogi_error(OGI_ERR_OUT_OF_MEMORY, "CausalConvWithState: out of memory")
                      : OGI_OK;
}

/* ---- the op ----------------------------------------------------------------- */

static ogi_status cc_read_params(const op_ctx *c, causal_conv_params *p)
{
    ogi_status st;
    char s[128];
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0], *w = c->in[1];
    if (x->dtype != OGI_FLOAT32 && x->dtype != OGI_FLOAT16)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0 (input): type %s is not supported",
                        ogi_dtype_name(x->dtype));
    const char *act = op_attr_string(c, "activation", "none");
    if (strcmp(act, "none") != 0 && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute activation='%s' is not none, silu or swish", act);
    p->silu = strcmp(act, "none") != 0;
    if (x->rank != 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0 (input): expected rank 3 [B, C, L], got %s",
                        tensor_shape_str(x->rank, x->dims, s, sizeof(s)));
    p->batch = x->dims[0];
    p->channels = x->dims[1];
    p->seq_len = x->dims[2];
    if (w->dtype != x->dtype || w->rank != 3 || w->dims[0] != p->channels || w->dims[1] != 1 ||
        w->dims[2] < 1)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 1 (weight): expected %s [%lld, 1, K >= 1], got %s %s",
                        ogi_dtype_name(x->dtype), (long long)p->channels, ogi_dtype_name(w->dtype),
                        tensor_shape_str(w->rank, w->dims, s, sizeof(s)));
    p->kernel = w->dims[2];
    if (op_has_input(c, 2)) {
        const ogi_tensor *b = c->in[2];
        if (b->dtype != x->dtype || b->rank != 1 || b->dims[0] != p->channels)
            return op_error(c, OGI_ERR_RUNTIME, "input 2 (bias): expected %s [%lld], got %s %s",
                            ogi_dtype_name(x->dtype), (long long)p->channels,
                            ogi_dtype_name(b->dtype),
                            tensor_shape_str(b->rank, b->dims, s, sizeof(s)));
    }
    if (op_has_input(c, 3)) {
        const ogi_tensor *ps = c->in[3];
        if (ps->dtype != x->dtype || ps->rank != 3 || ps->dims[0] != p->batch ||
            ps->dims[1] != p->channels || ps->dims[2] != p->kernel - 1)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 3 (past_state): expected %s [%lld, %lld, %lld], got %s %s",
                            ogi_dtype_name(x->dtype), (long long)p->batch, (long long)p->channels,
                            (long long)(p->kernel - 1), ogi_dtype_name(ps->dtype),
                            tensor_shape_str(ps->rank, ps->dims, s, sizeof(s)));
    }
    return OGI_OK;
}

static ogi_status cc_run_f16(op_ctx *c, const causal_conv_params *p)
{
    const int64_t sdims[3] = {p->batch, p->channels, p->kernel - 1};
    const int64_t n_state = sdims[0] * sdims[1] * sdims[2], n_y = tensor_numel(c->in[0]);
    bool oom = false;
    float *x = tensor_f16_widen(c->in[0], &oom), *w = tensor_f16_widen(c->in[1], &oom);
    float *b = tensor_f16_widen(op_has_input(c, 2) ? c->in[2] : NULL, &oom);
    float *state = op_has_input(c, 3) ? tensor_f16_widen(c->in[3], &oom)
                                      : calloc((size_t)(n_state > 0 ? n_state : 1), sizeof(float));
    float *y = malloc(sizeof(float) * (size_t)(n_y > 0 ? n_y : 1));
    ogi_status st = OGI_OK;
    if (oom || state == NULL || y == NULL)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for float32 copies");
    if (st == OGI_OK) {
        const causal_conv_data d = {x, w, b, state, y};
        st = causal_conv_run(c->pool, p, &d, false);
    }
    if (st == OGI_OK)
        st = op_alloc(c, 1, OGI_FLOAT16, 3, sdims);
    if (st == OGI_OK) {
        tensor_f16_narrow(y, n_y, c->out[0]->data);
        tensor_f16_narrow(state, n_state, c->out[1]->data);
    }
    free(x);
    free(w);
    free(b);
    free(state);
    free(y);
    return st;
}

static ogi_status causal_conv_op(op_ctx *c)
{
    causal_conv_params p;
    ogi_status st = cc_read_params(c, &p);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if ((st = op_alloc(c, 0, x->dtype, 3, x->dims)) != OGI_OK)
        return st;
    if (x->dtype == OGI_FLOAT16)
        return cc_run_f16(c, &p);
    const int64_t sdims[3] = {p.batch, p.channels, p.kernel - 1};
    if (op_has_input(c, 3)) {
        st = op_alloc_inplace(c, 1, 3); /* the state shifts where it lies */
    } else {
        st = op_alloc(c, 1, OGI_FLOAT32, 3, sdims);
        if (st == OGI_OK && c->out[1]->nbytes > 0)
            memset(c->out[1]->data, 0, c->out[1]->nbytes);
    }
    if (st != OGI_OK)
        return st;
    const causal_conv_data d = {x->data, c->in[1]->data, op_has_input(c, 2) ? c->in[2]->data : NULL,
                                c->out[1]->data, c->out[0]->data};
    return causal_conv_run(c->pool, &p, &d, false);
}

const op_kernel op_kernels_causal_conv[] = {
    {"", "CausalConvWithState", 27, causal_conv_op},
    {NULL, NULL, 0, NULL},
};
