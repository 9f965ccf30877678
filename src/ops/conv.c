/* Convolutions: Conv, ConvTranspose and ConvInteger over N x C x D1 x ... x Dn
 * tensors (row-major), weights M x C/group x k1 x ... x kn for Conv and
 * C x M/group x k1 x ... x kn for ConvTranspose. Float types compute in
 * float32: im2col + cblas_sgemm, with a plain loop beside it that also serves
 * the depthwise case (one input channel per group), where a GEMM has nothing
 * to gain. */
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

#define CONV_MAX_SPATIAL (OGI_MAX_RANK - 2)

typedef enum conv_auto_pad {
    CONV_PAD_NOTSET,
    CONV_PAD_VALID,
    CONV_PAD_SAME_UPPER,
    CONV_PAD_SAME_LOWER,
} conv_auto_pad;

/* The shapes of one convolution. For Conv `in` is the image and `out` the
 * result; ConvTranspose runs the same geometry backwards (its input is the
 * Conv's output), so there `out` is the small side and `in` the large one. */
typedef struct conv_geom {
    int nsp; /* spatial rank */
    int64_t batch, group;
    int64_t in_ch, out_ch;         /* C and M */
    int64_t in[CONV_MAX_SPATIAL];  /* the image side */
    int64_t out[CONV_MAX_SPATIAL]; /* the window-count side */
    int64_t kernel[CONV_MAX_SPATIAL];
    int64_t stride[CONV_MAX_SPATIAL];
    int64_t dilation[CONV_MAX_SPATIAL];
    int64_t pad_begin[CONV_MAX_SPATIAL];
    int64_t pad_end[CONV_MAX_SPATIAL];
    int64_t in_size, out_size, kernel_size; /* products of the above */
} conv_geom;

/* ---- float conversion ------------------------------------------------------ */

static bool conv_is_float(ogi_dtype dt)
{
    return dt == OGI_FLOAT32 || dt == OGI_FLOAT64 || dt == OGI_FLOAT16 || dt == OGI_BFLOAT16;
}

static void conv_to_f32(const void *src, ogi_dtype dt, int64_t n, float *dst)
{
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case OGI_FLOAT64:
            dst[i] = (float)((const double *)src)[i];
            break;
        case OGI_FLOAT16:
            dst[i] = dtype_f16_to_f32(((const uint16_t *)src)[i]);
            break;
        case OGI_BFLOAT16:
            dst[i] = dtype_bf16_to_f32(((const uint16_t *)src)[i]);
            break;
        default:
            dst[i] = ((const float *)src)[i];
            break;
        }
    }
}

static void conv_from_f32(const float *src, ogi_dtype dt, int64_t n, void *dst)
{
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case OGI_FLOAT64:
            ((double *)dst)[i] = src[i];
            break;
        case OGI_FLOAT16:
            ((uint16_t *)dst)[i] = dtype_f32_to_f16(src[i]);
            break;
        case OGI_BFLOAT16:
            ((uint16_t *)dst)[i] = dtype_f32_to_bf16(src[i]);
            break;
        default:
            ((float *)dst)[i] = src[i];
            break;
        }
    }
}

/* A float32 view of a tensor: its own data when it is float32, else a
 * converted copy in `owned`. */
typedef struct conv_f32 {
    const float *p;
    float *owned;
} conv_f32;

static ogi_status conv_view_f32(const op_ctx *c, const ogi_tensor *t, conv_f32 *v)
{
    v->owned = NULL;
    v->p = t->data;
    if (t->dtype == OGI_FLOAT32)
        return OGI_OK;
    int64_t n = tensor_numel(t);
    v->owned = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (v->owned == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for a float32 copy of an input");
    conv_to_f32(t->data, t->dtype, n, v->owned);
    v->p = v->owned;
    return OGI_OK;
}

/* ---- attributes and shapes -------------------------------------------------- */

static ogi_status conv_read_auto_pad(const op_ctx *c, conv_auto_pad *out)
{
    const char *s = op_attr_string(c, "auto_pad", "NOTSET");
    if (strcmp(s, "NOTSET") == 0 || s[0] == '\0')
        *out = CONV_PAD_NOTSET;
    else if (strcmp(s, "VALID") == 0)
        *out = CONV_PAD_VALID;
    else if (strcmp(s, "SAME_UPPER") == 0)
        *out = CONV_PAD_SAME_UPPER;
    else if (strcmp(s, "SAME_LOWER") == 0)
        *out = CONV_PAD_SAME_LOWER;
    else
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute auto_pad='%s' is not valid", s);
    return OGI_OK;
}

static int64_t conv_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Checks X (N x C x D...) and W (rank of X) and reads the attributes common
 * to Conv and ConvTranspose: group, kernel_shape, strides, dilations, pads.
 * Weight dims: w_out x w_in/group... for Conv, C x M/group for ConvTranspose. */
static ogi_status conv_geom_common(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *w,
                                   bool transpose, conv_geom *g)
{
    if (x->rank < 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 3 (N x C x D...), got %d",
                        x->rank);
    if (w->rank != x->rank)
        return op_error(c, OGI_ERR_RUNTIME, "input 1: expected rank %d like input 0, got %d",
                        x->rank, w->rank);
    memset(g, 0, sizeof(*g));
    g->nsp = x->rank - 2;
    g->batch = x->dims[0];
    g->group = op_attr_int(c, "group", 1);
    if (g->group < 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute group=%lld must be positive",
                        (long long)g->group);
    int64_t c_in = x->dims[1];
    if (c_in % g->group != 0)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: %lld channels not divisible by group %lld",
                        (long long)c_in, (long long)g->group);
    if (transpose) {
        if (w->dims[0] != c_in)
            return op_error(c, OGI_ERR_RUNTIME, "input 1: dim 0 is %lld, expected %lld channels",
                            (long long)w->dims[0], (long long)c_in);
        g->in_ch = w->dims[1] * g->group; /* output channels */
        g->out_ch = c_in;
    } else {
        if (w->dims[1] * g->group != c_in)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input 1: dim 1 is %lld, expected %lld channels / group %lld",
                            (long long)w->dims[1], (long long)c_in, (long long)g->group);
        if (w->dims[0] % g->group != 0)
            return op_error(c, OGI_ERR_RUNTIME, "input 1: %lld filters not divisible by group %lld",
                            (long long)w->dims[0], (long long)g->group);
        g->in_ch = c_in;
        g->out_ch = w->dims[0];
    }
    ogi_status st = op_attr_ints_exact(c, "kernel_shape", g->nsp, 0, 0, g->kernel);
    if (st != OGI_OK)
        return st;
    g->kernel_size = 1;
    for (int d = 0; d < g->nsp; d++) {
        if (op_attr(c, "kernel_shape") != NULL && g->kernel[d] != w->dims[d + 2])
            return op_error(c, OGI_ERR_RUNTIME, "attribute kernel_shape does not match input 1");
        g->kernel[d] = w->dims[d + 2];
        g->kernel_size *= g->kernel[d];
    }
    int64_t pads[2 * CONV_MAX_SPATIAL];
    if ((st = op_attr_ints_exact(c, "strides", g->nsp, 1, 1, g->stride)) != OGI_OK ||
        (st = op_attr_ints_exact(c, "dilations", g->nsp, 1, 1, g->dilation)) != OGI_OK ||
        (st = op_attr_ints_exact(c, "pads", 2 * g->nsp, 0, 0, pads)) != OGI_OK)
        return st;
    for (int d = 0; d < g->nsp; d++) {
        g->pad_begin[d] = pads[d];
        g->pad_end[d] = pads[d + g->nsp];
    }
    return OGI_OK;
}

static int64_t conv_effective_kernel(const conv_geom *g, int d)
{
    return (g->kernel[d] - 1) * g->dilation[d] + 1;
}

static ogi_status conv_finish_sizes(const op_ctx *c, conv_geom *g)
{
    g->in_size = 1;
    g->out_size = 1;
    for (int d = 0; d < g->nsp; d++) {
        if (g->out[d] < 0 || g->in[d] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "spatial dim %d: the output size is negative", d);
        g->in_size *= g->in[d];
        g->out_size *= g->out[d];
    }
    return OGI_OK;
}

/* Conv output size per spatial dim: floor((in + pads - effective kernel) /
 * stride) + 1, with SAME_* padding chosen so that out = ceil(in / stride). */
static ogi_status conv_geom_forward(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *w,
                                    conv_geom *g)
{
    ogi_status st = conv_geom_common(c, x, w, false, g);
    conv_auto_pad ap;
    if (st != OGI_OK || (st = conv_read_auto_pad(c, &ap)) != OGI_OK)
        return st;
    for (int d = 0; d < g->nsp; d++) {
        int64_t in = x->dims[d + 2], ek = conv_effective_kernel(g, d);
        g->in[d] = in;
        if (ap == CONV_PAD_SAME_UPPER || ap == CONV_PAD_SAME_LOWER) {
            int64_t out = (in + g->stride[d] - 1) / g->stride[d];
            int64_t total = (out - 1) * g->stride[d] + ek - in;
            if (total < 0)
                total = 0;
            g->pad_begin[d] = ap == CONV_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            g->pad_end[d] = total - g->pad_begin[d];
        } else if (ap == CONV_PAD_VALID) {
            g->pad_begin[d] = g->pad_end[d] = 0;
        }
        int64_t span = in + g->pad_begin[d] + g->pad_end[d] - ek;
        if (span < 0)
            return op_error(c, OGI_ERR_RUNTIME,
                            "spatial dim %d: padded input %lld is smaller than the kernel %lld", d,
                            (long long)(in + g->pad_begin[d] + g->pad_end[d]), (long long)ek);
        g->out[d] = span / g->stride[d] + 1;
    }
    return conv_finish_sizes(c, g);
}

/* ---- im2col + GEMM ---------------------------------------------------------- */

/* Offsets of every kernel tap: koff[t * nsp + d] = k_d * dilation_d. */
static ogi_status conv_kernel_offsets(const op_ctx *c, const conv_geom *g, int64_t **out)
{
    int64_t *koff = malloc((size_t)(g->kernel_size * g->nsp + 1) * sizeof(int64_t));
    if (koff == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for kernel offsets");
    for (int64_t t = 0; t < g->kernel_size; t++) {
        int64_t rem = t;
        for (int d = g->nsp - 1; d >= 0; d--) {
            koff[t * g->nsp + d] = (rem % g->kernel[d]) * g->dilation[d];
            rem /= g->kernel[d];
        }
    }
    *out = koff;
    return OGI_OK;
}

typedef struct conv_job {
    const conv_geom *g;
    const int64_t *koff;
    const float *x, *w, *bias;
    float *y, *col;
    int64_t cg, mg; /* channels per group on the image and window sides */
    /* im2col of the current group's image channels, for output lines
     * [line0, line1) (a line: all positions along the last spatial dim) */
    const float *src;
    int64_t line0, line1;
} conv_job;

/* The col buffer holds at most this many floats: large images are lowered
 * a block of output lines at a time. */
#ifndef CONV_COL_BLOCK
#define CONV_COL_BLOCK (1 << 23)
#endif

/* One im2col row: image channel xc seen through kernel tap t, for the
 * window positions of lines [line0, line1) (zero where the tap falls in the
 * padding). */
static void conv_im2col_row(const conv_job *j, const float *xc, int64_t t, float *dst)
{
    const conv_geom *g = j->g;
    int last = g->nsp - 1;
    const int64_t *kk = j->koff + t * g->nsp;
    int64_t n_last = g->out[last], base_last = kk[last] - g->pad_begin[last];
    for (int64_t line = j->line0; line < j->line1; line++) {
        int64_t rem = line, off = 0, scale = g->in[last];
        bool inside = true;
        for (int d = last - 1; d >= 0; d--) {
            int64_t pos = (rem % g->out[d]) * g->stride[d] + kk[d] - g->pad_begin[d];
            rem /= g->out[d];
            inside = inside && pos >= 0 && pos < g->in[d];
            off += pos * scale;
            scale *= g->in[d];
        }
        float *row = dst + (line - j->line0) * n_last;
        if (!inside) {
            memset(row, 0, (size_t)n_last * sizeof(float));
            continue;
        }
        for (int64_t i = 0; i < n_last; i++) {
            int64_t pos = i * g->stride[last] + base_last;
            row[i] = pos >= 0 && pos < g->in[last] ? xc[off + pos] : 0.0f;
        }
    }
}

static void conv_im2col_range(void *arg, int64_t begin, int64_t end)
{
    const conv_job *j = arg;
    const conv_geom *g = j->g;
    int64_t cols = (j->line1 - j->line0) * g->out[g->nsp - 1];
    for (int64_t r = begin; r < end; r++) {
        int64_t ci = r / g->kernel_size, t = r % g->kernel_size;
        conv_im2col_row(j, j->src + ci * g->in_size, t, j->col + r * cols);
    }
}

static bool conv_is_pointwise(const conv_geom *g)
{
    for (int d = 0; d < g->nsp; d++)
        if (g->kernel[d] != 1 || g->stride[d] != 1 || g->pad_begin[d] != 0 || g->pad_end[d] != 0)
            return false;
    return true;
}

/* Output lines per im2col block. */
static int64_t conv_block_lines(const conv_geom *g, int64_t depth)
{
    int64_t n_last = g->out[g->nsp - 1], lines = n_last ? g->out_size / n_last : 0;
    int64_t per_line = depth * n_last;
    int64_t block = per_line > 0 ? CONV_COL_BLOCK / per_line : lines;
    return block < 1 ? 1 : block < lines ? block : lines;
}

/* One image of a Conv: for each group, Y_g (mg x out) = W_g (mg x cg*K) *
 * col (cg*K x out), where col is the im2col matrix of the group's channels,
 * formed a block of output lines at a time. */
static void conv_forward_gemm(conv_job *j, threadpool *pool, const float *x, float *y)
{
    const conv_geom *g = j->g;
    int64_t depth = j->cg * g->kernel_size, n_last = g->out[g->nsp - 1];
    int64_t lines = n_last ? g->out_size / n_last : 0, block = conv_block_lines(g, depth);
    for (int64_t grp = 0; grp < g->group; grp++) {
        const float *xg = x + grp * j->cg * g->in_size;
        const float *wg = j->w + grp * j->mg * depth;
        float *yg = y + grp * j->mg * g->out_size;
        if (depth == 0) {
            memset(yg, 0, (size_t)(j->mg * g->out_size) * sizeof(float));
            continue;
        }
        if (conv_is_pointwise(g)) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)j->mg,
                        (blasint)g->out_size, (blasint)depth, 1.0f, wg, (blasint)depth, xg,
                        (blasint)g->out_size, 0.0f, yg, (blasint)g->out_size);
            continue;
        }
        j->src = xg;
        for (j->line0 = 0; j->line0 < lines; j->line0 = j->line1) {
            j->line1 = j->line0 + block < lines ? j->line0 + block : lines;
            int64_t cols = (j->line1 - j->line0) * n_last;
            threadpool_parallel_for(pool, depth, 16, conv_im2col_range, j);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)j->mg, (blasint)cols,
                        (blasint)depth, 1.0f, wg, (blasint)depth, j->col, (blasint)cols, 0.0f,
                        yg + j->line0 * n_last, (blasint)g->out_size);
        }
    }
}

/* ---- the plain loop --------------------------------------------------------- */

/* y[m, o] = sum over ci in m's group and taps t of w[m, ci, t] *
 * x[ci, o * stride + t * dilation - pad_begin], for one output channel. */
static void conv_forward_channel(const conv_job *j, const float *x, int64_t m, float *ym)
{
    const conv_geom *g = j->g;
    int nsp = g->nsp;
    int64_t grp = m / j->mg;
    for (int64_t o = 0; o < g->out_size; o++) {
        int64_t base[CONV_MAX_SPATIAL] = {0}, rem = o;
        for (int d = nsp - 1; d >= 0; d--) {
            base[d] = (rem % g->out[d]) * g->stride[d] - g->pad_begin[d];
            rem /= g->out[d];
        }
        float acc = 0.0f;
        for (int64_t t = 0; t < g->kernel_size; t++) {
            const int64_t *kk = j->koff + t * nsp;
            int64_t off = 0;
            bool inside = true;
            for (int d = 0; d < nsp && inside; d++) {
                int64_t pos = base[d] + kk[d];
                inside = pos >= 0 && pos < g->in[d];
                off = off * g->in[d] + pos;
            }
            if (!inside)
                continue;
            for (int64_t ci = 0; ci < j->cg; ci++)
                acc += j->w[(m * j->cg + ci) * g->kernel_size + t] *
                       x[(grp * j->cg + ci) * g->in_size + off];
        }
        ym[o] = acc;
    }
}

static void conv_forward_direct_range(void *arg, int64_t begin, int64_t end)
{
    const conv_job *j = arg;
    const conv_geom *g = j->g;
    for (int64_t r = begin; r < end; r++) {
        int64_t n = r / g->out_ch, m = r % g->out_ch;
        conv_forward_channel(j, j->x + n * g->in_ch * g->in_size, m,
                             j->y + (n * g->out_ch + m) * g->out_size);
    }
}

/* ---- Conv ------------------------------------------------------------------- */

static ogi_status conv_check_float_inputs(const op_ctx *c, int n_required)
{
    for (int i = 0; i < 3; i++) {
        if (i < n_required) {
            ogi_status st = op_require_input(c, i);
            if (st != OGI_OK)
                return st;
        }
        if (!op_has_input(c, i))
            continue;
        if (!conv_is_float(c->in[i]->dtype))
            return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                            ogi_dtype_name(c->in[i]->dtype));
        if (c->in[i]->dtype != c->in[0]->dtype)
            return op_error(c, OGI_ERR_RUNTIME, "input %d: dtype %s differs from input 0 (%s)", i,
                            ogi_dtype_name(c->in[i]->dtype), ogi_dtype_name(c->in[0]->dtype));
    }
    return OGI_OK;
}

static ogi_status conv_check_bias(const op_ctx *c, int64_t channels)
{
    if (!op_has_input(c, 2))
        return OGI_OK;
    const ogi_tensor *b = c->in[2];
    if (b->rank != 1 || b->dims[0] != channels)
        return op_error(c, OGI_ERR_RUNTIME, "input 2: expected bias of shape [%lld]",
                        (long long)channels);
    return OGI_OK;
}

static bool conv_fits_blas(const conv_geom *g, int64_t mg, int64_t cg)
{
    return g->out_size <= INT_MAX && g->in_size <= INT_MAX && mg * g->kernel_size <= INT_MAX &&
           cg * g->kernel_size <= INT_MAX;
}

static void conv_add_bias(const conv_geom *g, int64_t channels, int64_t spatial, const float *bias,
                          float *y)
{
    if (bias == NULL)
        return;
    for (int64_t n = 0; n < g->batch; n++)
        for (int64_t m = 0; m < channels; m++) {
            float *row = y + (n * channels + m) * spatial;
            for (int64_t i = 0; i < spatial; i++)
                row[i] += bias[m];
        }
}

/* Runs the Conv of j (x, w, y set) over the whole batch. */
static ogi_status conv_forward(const op_ctx *c, conv_job *j)
{
    const conv_geom *g = j->g;
    if (j->cg == 1 || !conv_fits_blas(g, j->mg, j->cg)) {
        threadpool_parallel_for(c->pool, g->batch * g->out_ch, 1, conv_forward_direct_range, j);
        return OGI_OK;
    }
    int64_t depth = j->cg * g->kernel_size;
    int64_t col_n =
        conv_is_pointwise(g) ? 1 : depth * conv_block_lines(g, depth) * g->out[g->nsp - 1];
    j->col = malloc((size_t)(col_n > 0 ? col_n : 1) * sizeof(float));
    if (j->col == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for the im2col buffer (%lld floats)",
                        (long long)col_n);
    for (int64_t n = 0; n < g->batch; n++)
        conv_forward_gemm(j, c->pool, j->x + n * g->in_ch * g->in_size,
                          j->y + n * g->out_ch * g->out_size);
    free(j->col);
    j->col = NULL;
    return OGI_OK;
}

/* Converts the inputs, runs `fn` into a float32 output buffer and stores it
 * in output 0 (already allocated). */
typedef ogi_status (*conv_compute_fn)(const op_ctx *c, conv_job *j);

static ogi_status conv_run_float(op_ctx *c, conv_job *j, int64_t out_channels, conv_compute_fn fn)
{
    ogi_tensor *y = c->out[0];
    int64_t y_n = tensor_numel(y);
    conv_f32 x = {0}, w = {0}, b = {0};
    int64_t *koff = NULL;
    float *yf = y->dtype == OGI_FLOAT32 ? y->data : malloc((size_t)(y_n + 1) * sizeof(float));
    ogi_status st = yf ? OGI_OK : op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for output");
    if (st == OGI_OK)
        st = conv_view_f32(c, c->in[0], &x);
    if (st == OGI_OK)
        st = conv_view_f32(c, c->in[1], &w);
    if (st == OGI_OK && op_has_input(c, 2))
        st = conv_view_f32(c, c->in[2], &b);
    if (st == OGI_OK)
        st = conv_kernel_offsets(c, j->g, &koff);
    if (st == OGI_OK) {
        j->koff = koff;
        j->x = x.p;
        j->w = w.p;
        j->bias = b.p;
        j->y = yf;
        st = fn(c, j);
    }
    if (st == OGI_OK) {
        int64_t planes = j->g->batch * out_channels;
        int64_t spatial = planes > 0 ? y_n / planes : 0;
        conv_add_bias(j->g, out_channels, spatial, j->bias, yf);
        if (y->dtype != OGI_FLOAT32)
            conv_from_f32(yf, y->dtype, y_n, y->data);
    }
    free(koff);
    free(x.owned);
    free(w.owned);
    free(b.owned);
    if (yf != y->data)
        free(yf);
    return st;
}

static ogi_status conv_run(op_ctx *c)
{
    ogi_status st = conv_check_float_inputs(c, 2);
    if (st != OGI_OK)
        return st;
    conv_geom g;
    if ((st = conv_geom_forward(c, c->in[0], c->in[1], &g)) != OGI_OK ||
        (st = conv_check_bias(c, g.out_ch)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK] = {g.batch, g.out_ch};
    memcpy(dims + 2, g.out, (size_t)g.nsp * sizeof(int64_t));
    if ((st = op_alloc(c, 0, c->in[0]->dtype, g.nsp + 2, dims)) != OGI_OK)
        return st;
    conv_job j = {.g = &g, .cg = g.in_ch / g.group, .mg = g.out_ch / g.group};
    return conv_run_float(c, &j, g.out_ch, conv_forward);
}

/* ---- ConvTranspose ---------------------------------------------------------- */

/* Scatters one column matrix row (kernel tap t; one value per window
 * position of lines [line0, line1)) into the output image ym: the adjoint of
 * im2col. */
static void conv_col2im_row(const conv_job *j, const float *src, int64_t t, float *ym)
{
    const conv_geom *g = j->g;
    int nsp = g->nsp;
    const int64_t *kk = j->koff + t * nsp;
    int64_t n_last = g->out[nsp - 1], first = j->line0 * n_last, end = j->line1 * n_last;
    for (int64_t o = first; o < end; o++) {
        int64_t rem = o, off = 0, scale = 1;
        bool inside = true;
        for (int d = nsp - 1; d >= 0 && inside; d--) {
            int64_t pos = (rem % g->out[d]) * g->stride[d] + kk[d] - g->pad_begin[d];
            rem /= g->out[d];
            inside = pos >= 0 && pos < g->in[d];
            off += pos * scale;
            scale *= g->in[d];
        }
        if (inside)
            ym[off] += src[o - first];
    }
}

/* One image of a ConvTranspose: y[m] = sum over ci in m's group and taps t
 * of col2im(w[ci, m, t] * x[ci]). */
typedef struct conv_t_image {
    const conv_job *j;
    const float *x; /* input channels x window positions */
    float *y;       /* output channels x image size, zeroed */
} conv_t_image;

/* GEMM path: the col matrix (per output channel K rows x the block's window
 * positions) holds W_g^T X_g; scatter each output channel's rows. */
static void conv_transpose_scatter_range(void *arg, int64_t begin, int64_t end)
{
    const conv_t_image *im = arg;
    const conv_job *j = im->j;
    const conv_geom *g = j->g;
    int64_t cols = (j->line1 - j->line0) * g->out[g->nsp - 1];
    for (int64_t m = begin; m < end; m++) {
        const float *rows = j->col + m * g->kernel_size * cols;
        for (int64_t t = 0; t < g->kernel_size; t++)
            conv_col2im_row(j, rows + t * cols, t, im->y + m * g->in_size);
    }
}

/* The plain loop over all window positions: forms each col row in `row`. */
static void conv_transpose_channel(const conv_t_image *im, int64_t m, float *row)
{
    const conv_job *j = im->j;
    const conv_geom *g = j->g;
    int64_t grp = m / j->mg, ml = m % j->mg;
    for (int64_t t = 0; t < g->kernel_size; t++) {
        memset(row, 0, (size_t)g->out_size * sizeof(float));
        for (int64_t ci = 0; ci < j->cg; ci++) {
            float wv = j->w[((grp * j->cg + ci) * j->mg + ml) * g->kernel_size + t];
            const float *xc = im->x + (grp * j->cg + ci) * g->out_size;
            for (int64_t o = 0; o < g->out_size; o++)
                row[o] += wv * xc[o];
        }
        conv_col2im_row(j, row, t, im->y + m * g->in_size);
    }
}

/* GEMM path for window lines [line0, line1). */
static void conv_transpose_gemm(const op_ctx *c, const conv_t_image *im)
{
    const conv_job *j = im->j;
    const conv_geom *g = j->g;
    int64_t rows = j->mg * g->kernel_size, n_last = g->out[g->nsp - 1];
    int64_t cols = (j->line1 - j->line0) * n_last;
    for (int64_t grp = 0; grp < g->group; grp++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)rows, (blasint)cols,
                    (blasint)j->cg, 1.0f, j->w + grp * j->cg * rows, (blasint)rows,
                    im->x + grp * j->cg * g->out_size + j->line0 * n_last, (blasint)g->out_size,
                    0.0f, j->col + grp * rows * cols, (blasint)cols);
    threadpool_parallel_for(c->pool, g->in_ch, 1, conv_transpose_scatter_range, (void *)im);
}

static ogi_status conv_transpose(const op_ctx *c, conv_job *j)
{
    const conv_geom *g = j->g;
    bool use_gemm = j->cg > 1 && conv_fits_blas(g, j->mg, j->cg);
    int64_t n_last = g->out[g->nsp - 1], lines = n_last ? g->out_size / n_last : 0;
    int64_t block = use_gemm ? conv_block_lines(g, g->in_ch * g->kernel_size) : lines;
    int64_t n = use_gemm ? g->in_ch * g->kernel_size * block * n_last : g->out_size;
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (buf == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for ConvTranspose columns");
    memset(j->y, 0, (size_t)(g->batch * g->in_ch * g->in_size) * sizeof(float));
    j->col = use_gemm ? buf : NULL;
    for (int64_t b = 0; b < g->batch; b++) {
        conv_t_image im = {j, j->x + b * g->out_ch * g->out_size, j->y + b * g->in_ch * g->in_size};
        for (j->line0 = 0; use_gemm && j->line0 < lines; j->line0 = j->line1) {
            j->line1 = j->line0 + block < lines ? j->line0 + block : lines;
            conv_transpose_gemm(c, &im);
        }
        j->line0 = 0;
        j->line1 = lines;
        for (int64_t m = 0; !use_gemm && m < g->in_ch; m++)
            conv_transpose_channel(&im, m, buf);
    }
    j->col = NULL;
    free(buf);
    return OGI_OK;
}

/* Pads of a ConvTranspose given its output size: total = natural - target,
 * split as the ONNX reference does (floor division; SAME_UPPER puts the
 * smaller half first). */
static void conv_transpose_split(conv_auto_pad ap, int64_t total, int64_t *begin, int64_t *end)
{
    int64_t half = conv_floor_div(total, 2);
    *begin = ap == CONV_PAD_SAME_UPPER ? half : total - half;
    *end = total - *begin;
}

/* Output size per spatial dim: stride * (in - 1) + output_padding +
 * effective kernel - pads, or output_shape / in * stride with the pads
 * derived from it. */
static ogi_status conv_geom_transpose(const op_ctx *c, const ogi_tensor *x, const ogi_tensor *w,
                                      conv_geom *g)
{
    ogi_status st = conv_geom_common(c, x, w, true, g);
    conv_auto_pad ap;
    int64_t out_pad[CONV_MAX_SPATIAL], shape[CONV_MAX_SPATIAL];
    if (st != OGI_OK || (st = conv_read_auto_pad(c, &ap)) != OGI_OK ||
        (st = op_attr_ints_exact(c, "output_padding", g->nsp, 0, 0, out_pad)) != OGI_OK)
        return st;
    const int64_t *os;
    int64_t n_os;
    bool has_shape = op_attr_ints(c, "output_shape", &os, &n_os);
    if (has_shape && n_os != g->nsp && n_os != g->nsp + 2)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute output_shape: expected %d values",
                        g->nsp);
    bool explicit_pads = op_attr(c, "pads") != NULL;
    for (int d = 0; d < g->nsp; d++) {
        int64_t in = x->dims[d + 2];
        g->out[d] = in;
        if (out_pad[d] >= g->stride[d] && out_pad[d] >= g->dilation[d])
            return op_error(c, OGI_ERR_INVALID_MODEL,
                            "attribute output_padding: %lld must be below stride or dilation",
                            (long long)out_pad[d]);
        int64_t natural = g->stride[d] * (in - 1) + out_pad[d] + conv_effective_kernel(g, d);
        if (has_shape)
            shape[d] = os[n_os - g->nsp + d];
        if (ap == CONV_PAD_SAME_UPPER || ap == CONV_PAD_SAME_LOWER) {
            int64_t target = has_shape ? shape[d] : in * g->stride[d];
            conv_transpose_split(ap, natural - target, &g->pad_begin[d], &g->pad_end[d]);
        } else if (has_shape) {
            /* The spec splits the excess around the image, the reference
             * trims the end only; both agree when it is 0 or -1. */
            int64_t total = natural - shape[d];
            if (explicit_pads && (g->pad_begin[d] != 0 || g->pad_end[d] != 0))
                return op_error(c, OGI_ERR_UNSUPPORTED, "output_shape together with pads");
            if (total != 0 && total != -1)
                return op_error(c, OGI_ERR_UNSUPPORTED,
                                "output_shape %lld differs from the natural size %lld by more "
                                "than one with auto_pad NOTSET",
                                (long long)shape[d], (long long)natural);
            g->pad_begin[d] = 0;
            g->pad_end[d] = total;
        } else if (ap == CONV_PAD_VALID) {
            g->pad_begin[d] = g->pad_end[d] = 0;
        }
        g->in[d] = natural - g->pad_begin[d] - g->pad_end[d];
        if (g->in[d] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "spatial dim %d: output size %lld is negative", d,
                            (long long)g->in[d]);
    }
    return conv_finish_sizes(c, g);
}

static ogi_status conv_transpose_run(op_ctx *c)
{
    ogi_status st = conv_check_float_inputs(c, 2);
    if (st != OGI_OK)
        return st;
    conv_geom g;
    if ((st = conv_geom_transpose(c, c->in[0], c->in[1], &g)) != OGI_OK ||
        (st = conv_check_bias(c, g.in_ch)) != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK] = {g.batch, g.in_ch};
    memcpy(dims + 2, g.in, (size_t)g.nsp * sizeof(int64_t));
    if ((st = op_alloc(c, 0, c->in[0]->dtype, g.nsp + 2, dims)) != OGI_OK)
        return st;
    /* cg: input channels per group; mg: output channels per group. */
    conv_job j = {.g = &g, .cg = g.out_ch / g.group, .mg = g.in_ch / g.group};
    return conv_run_float(c, &j, g.in_ch, conv_transpose);
}

/* ---- ConvInteger ------------------------------------------------------------ */

/* Reads a zero point: a scalar, or (w only) one per output channel. */
static ogi_status conv_read_zero_points(const op_ctx *c, int i, ogi_dtype dt, int64_t per_channel,
                                        int32_t *zp)
{
    for (int64_t m = 0; m < per_channel; m++)
        zp[m] = 0;
    if (!op_has_input(c, i))
        return OGI_OK;
    const ogi_tensor *t = c->in[i];
    int64_t n = tensor_numel(t);
    if (t->dtype != dt)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected %s like its data, got %s", i,
                        ogi_dtype_name(dt), ogi_dtype_name(t->dtype));
    if (n != 1 && n != per_channel)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected a scalar or %lld zero points", i,
                        (long long)per_channel);
    for (int64_t m = 0; m < per_channel; m++)
        zp[m] = (int32_t)dtype_get_i64(t->data, dt, n == 1 ? 0 : m);
    return OGI_OK;
}

static int32_t conv_int_at(const ogi_tensor *t, int64_t i)
{
    return t->dtype == OGI_UINT8 ? ((const uint8_t *)t->data)[i] : ((const int8_t *)t->data)[i];
}

/* y[n, m, o] = sum (x - x_zero) * (w - w_zero[m]) over the window's taps
 * that fall inside the image (padding stands for x_zero and adds nothing). */
static void conv_integer_compute(const conv_geom *g, const int64_t *koff, const ogi_tensor *x,
                                 const ogi_tensor *w, int32_t xzp, const int32_t *wzp, int32_t *y)
{
    int64_t cg = g->in_ch / g->group, mg = g->out_ch / g->group;
    for (int64_t n = 0; n < g->batch; n++)
        for (int64_t m = 0; m < g->out_ch; m++)
            for (int64_t o = 0; o < g->out_size; o++) {
                int64_t base[CONV_MAX_SPATIAL] = {0}, rem = o;
                for (int d = g->nsp - 1; d >= 0; d--) {
                    base[d] = (rem % g->out[d]) * g->stride[d] - g->pad_begin[d];
                    rem /= g->out[d];
                }
                int64_t acc = 0;
                for (int64_t t = 0; t < g->kernel_size; t++) {
                    int64_t off = 0;
                    bool inside = true;
                    for (int d = 0; d < g->nsp && inside; d++) {
                        int64_t pos = base[d] + koff[t * g->nsp + d];
                        inside = pos >= 0 && pos < g->in[d];
                        off = off * g->in[d] + pos;
                    }
                    for (int64_t ci = 0; ci < cg && inside; ci++) {
                        int64_t xc = (n * g->in_ch + m / mg * cg + ci) * g->in_size;
                        int32_t xv = conv_int_at(x, xc + off) - xzp;
                        int32_t wv = conv_int_at(w, (m * cg + ci) * g->kernel_size + t) - wzp[m];
                        acc += (int64_t)xv * wv;
                    }
                }
                y[(n * g->out_ch + m) * g->out_size + o] = (int32_t)acc;
            }
}

static ogi_status conv_integer_run(op_ctx *c)
{
    ogi_status st;
    for (int i = 0; i < 2; i++) {
        if ((st = op_require_input(c, i)) != OGI_OK)
            return st;
        ogi_dtype dt = c->in[i]->dtype;
        if (dt != OGI_UINT8 && dt != OGI_INT8)
            return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: dtype %s is not supported", i,
                            ogi_dtype_name(dt));
    }
    conv_geom g;
    if ((st = conv_geom_forward(c, c->in[0], c->in[1], &g)) != OGI_OK)
        return st;
    int32_t xzp, *wzp = malloc((size_t)(g.out_ch > 0 ? g.out_ch : 1) * sizeof(int32_t));
    int64_t *koff = NULL;
    if (wzp == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for zero points");
    if ((st = conv_read_zero_points(c, 2, c->in[0]->dtype, 1, &xzp)) == OGI_OK &&
        (st = conv_read_zero_points(c, 3, c->in[1]->dtype, g.out_ch, wzp)) == OGI_OK &&
        (st = conv_kernel_offsets(c, &g, &koff)) == OGI_OK) {
        int64_t dims[OGI_MAX_RANK] = {g.batch, g.out_ch};
        memcpy(dims + 2, g.out, (size_t)g.nsp * sizeof(int64_t));
        st = op_alloc(c, 0, OGI_INT32, g.nsp + 2, dims);
        if (st == OGI_OK)
            conv_integer_compute(&g, koff, c->in[0], c->in[1], xzp, wzp, c->out[0]->data);
    }
    free(koff);
    free(wzp);
    return st;
}

const op_kernel op_kernels_conv[] = {
    {"", "Conv", 1, conv_run},
    {"", "ConvTranspose", 1, conv_transpose_run},
    {"", "ConvInteger", 10, conv_integer_run},
    {NULL, NULL, 0, NULL},
};
