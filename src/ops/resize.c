/* Resize (opset 10 to 19) and the deprecated Upsample, as the ONNX reference
 * defines them: each output coordinate maps back to an input coordinate
 * (coordinate_transformation_mode), and the output is a weighted sum of
 * neighbouring inputs whose weights depend only on the distance along each
 * axis. So every axis gets a table of taps (input index, weight) per output
 * index; nearest mode gathers one input per output for any dtype, linear and
 * cubic apply the tables axis after axis in float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

typedef enum resize_mode {
    RESIZE_NEAREST,
    RESIZE_LINEAR,
    RESIZE_CUBIC,
} resize_mode;

typedef enum resize_coord {
    RESIZE_HALF_PIXEL,
    RESIZE_HALF_PIXEL_SYMMETRIC,
    RESIZE_PYTORCH_HALF_PIXEL,
    RESIZE_ALIGN_CORNERS,
    RESIZE_ASYMMETRIC,
    RESIZE_TF_HALF_PIXEL_FOR_NN,
    RESIZE_TF_CROP_AND_RESIZE,
} resize_coord;

typedef enum resize_rounding {
    RESIZE_ROUND_PREFER_FLOOR,
    RESIZE_ROUND_PREFER_CEIL,
    RESIZE_FLOOR,
    RESIZE_CEIL,
    RESIZE_LEGACY, /* opset < 11: floor when upsampling, ceil when downsampling */
} resize_rounding;

typedef struct resize_params {
    resize_mode mode;
    resize_coord coord;
    resize_rounding rounding;
    double cubic_a;
    bool exclude_outside;
    bool antialias;
    double extrapolation;
    int rank;
    int64_t in[OGI_MAX_RANK];
    int64_t out[OGI_MAX_RANK];
    double scale[OGI_MAX_RANK];
    double roi_start[OGI_MAX_RANK], roi_len[OGI_MAX_RANK]; /* tf_crop_and_resize */
} resize_params;

/* The taps of one axis: output index o reads inputs idx[o * n + t] (clamped
 * into the axis) with weights w[o * n + t], or is the extrapolation value
 * when outside[o]. */
typedef struct resize_axis {
    int64_t n;
    int64_t *idx;
    float *w;
    bool *outside;
    bool identity; /* output o is input o: the axis can be skipped */
} resize_axis;

/* ---- coefficients ------------------------------------------------------------ */

/* Weights of the taps base and base + 1 for an input coordinate base + ratio
 * (ratio in (0, 1]; 1 when the coordinate is a whole number). */
static void resize_nearest_coeffs(const resize_params *p, int a, double ratio, double *c)
{
    bool second;
    if (ratio == 1.0) {
        second = true;
    } else {
        switch (p->rounding) {
        case RESIZE_ROUND_PREFER_CEIL:
            second = ratio >= 0.5;
            break;
        case RESIZE_FLOOR:
            second = false;
            break;
        case RESIZE_CEIL:
            second = true;
            break;
        case RESIZE_LEGACY:
            second = p->scale[a] < 1.0;
            break;
        default:
            second = ratio > 0.5;
            break;
        }
    }
    c[0] = second ? 0.0 : 1.0;
    c[1] = second ? 1.0 : 0.0;
}

static double resize_cubic(double x, double a)
{
    x = fabs(x);
    if (x <= 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

/* The taps of linear and cubic modes: n = 2 - 2 * start of them, offsets
 * start .. start + n - 1 from the base index. Antialias stretches the kernel
 * by 1 / scale when downsampling, so more inputs contribute. */
static double resize_kernel_scale(const resize_params *p, int a)
{
    return p->antialias && p->scale[a] < 1.0 ? p->scale[a] : 1.0;
}

static int64_t resize_window_start(const resize_params *p, int a)
{
    if (p->mode == RESIZE_NEAREST)
        return 0;
    double support = p->mode == RESIZE_CUBIC ? 2.0 : 1.0;
    return (int64_t)floor(-support / resize_kernel_scale(p, a)) + 1;
}

/* Linear (triangle) and cubic (Keys, parameter cubic_coeff_a) weights, renormalised
 * to sum 1 when antialiasing. */
static void resize_smooth_coeffs(const resize_params *p, int a, double ratio, int64_t start,
                                 int64_t n, double *c)
{
    double s = resize_kernel_scale(p, a), sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double arg = s * ((double)(start + j) - ratio);
        c[j] = p->mode == RESIZE_CUBIC ? resize_cubic(arg, p->cubic_a) : fmax(0.0, 1.0 - fabs(arg));
        sum += c[j];
    }
    if (p->antialias)
        for (int64_t j = 0; j < n; j++)
            c[j] /= sum;
}

/* ---- coordinates ------------------------------------------------------------- */

/* The input coordinate of output index o along axis a; sets *outside when
 * tf_crop_and_resize maps it off the image. */
static double resize_source_coord(const resize_params *p, int a, int64_t o, bool *outside)
{
    double x = (double)o, in = (double)p->in[a], scale = p->scale[a];
    double out_w = scale * in; /* fractional with scales, as the reference has it */
    *outside = false;
    switch (p->coord) {
    case RESIZE_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)p->out[a] / out_w;
        double offset = in / 2.0 * (1.0 - adjustment);
        return offset + (x + 0.5) / scale - 0.5;
    }
    case RESIZE_PYTORCH_HALF_PIXEL:
        return out_w == 1.0 ? -0.5 : (x + 0.5) / scale - 0.5;
    case RESIZE_ALIGN_CORNERS:
        return out_w == 1.0 ? 0.0 : x * (in - 1.0) / (out_w - 1.0);
    case RESIZE_ASYMMETRIC:
        return x / scale;
    case RESIZE_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / scale;
    case RESIZE_TF_CROP_AND_RESIZE: {
        double v = out_w == 1.0 ? p->roi_len[a] * (in - 1.0) / 2.0
                                : x * p->roi_len[a] * (in - 1.0) / (out_w - 1.0);
        v += p->roi_start[a] * (in - 1.0);
        *outside = v < 0.0 || v > in - 1.0;
        return v;
    }
    default:
        return (x + 0.5) / scale - 0.5;
    }
}

/* Fills the taps of output index o. */
static void resize_taps_at(const resize_params *p, int a, int64_t o, resize_axis *ax, double *c)
{
    int64_t n = ax->n, in = p->in[a], *idx = ax->idx + o * n;
    float *w = ax->w + o * n;
    double x = resize_source_coord(p, a, o, &ax->outside[o]);
    double fl = floor(x);
    int64_t base = (int64_t)fl - (x == fl ? 1 : 0); /* ratio in (0, 1] */
    int64_t start = resize_window_start(p, a);
    if (p->mode == RESIZE_NEAREST)
        resize_nearest_coeffs(p, a, x - (double)base, c);
    else
        resize_smooth_coeffs(p, a, x - (double)base, start, n, c);
    /* The reference takes the n nearest positions of the edge-padded axis
     * [-n/2, in + n/2): keep the window inside it. */
    int64_t lo = base + start, pad = n / 2;
    if (lo < -pad)
        lo = -pad;
    if (lo + n > in + pad)
        lo = in + pad - n;
    /* Nearest picks one tap; excluding it would leave nothing. */
    bool exclude = p->exclude_outside && p->mode != RESIZE_NEAREST;
    double sum = 0.0;
    for (int64_t t = 0; t < n; t++) {
        int64_t i = lo + t;
        if (exclude && (i < 0 || i >= in))
            c[t] = 0.0;
        sum += c[t];
        idx[t] = i < 0 ? 0 : i >= in ? in - 1 : i;
    }
    for (int64_t t = 0; t < n; t++)
        w[t] = (float)(exclude ? c[t] / sum : c[t]);
}

static void resize_axis_free(resize_axis *ax)
{
    free(ax->idx);
    free(ax->w);
    free(ax->outside);
}

static ogi_status resize_axis_build(const op_ctx *c, const resize_params *p, int a, resize_axis *ax)
{
    memset(ax, 0, sizeof(*ax));
    ax->n = 2 - 2 * resize_window_start(p, a);
    int64_t out = p->out[a], n = ax->n;
    ax->idx = malloc((size_t)(out * n + 1) * sizeof(int64_t));
    ax->w = malloc((size_t)(out * n + 1) * sizeof(float));
    ax->outside = malloc((size_t)(out + 1) * sizeof(bool));
    double *coeffs = malloc((size_t)n * sizeof(double));
    if (!ax->idx || !ax->w || !ax->outside || !coeffs) {
        free(coeffs);
        resize_axis_free(ax);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for the taps of axis %d", a);
    }
    ax->identity = out == p->in[a];
    for (int64_t o = 0; o < out; o++) {
        resize_taps_at(p, a, o, ax, coeffs);
        for (int64_t t = 0; t < n && ax->identity; t++) {
            float w = ax->w[o * n + t];
            ax->identity = !ax->outside[o] && (w == 0.0f || (w == 1.0f && ax->idx[o * n + t] == o));
        }
    }
    free(coeffs);
    return OGI_OK;
}

/* ---- nearest: a gather of whole elements ----------------------------------- */

/* For nearest mode, the single tap each output reads (weight 1). */
static int64_t resize_nearest_pick(const resize_axis *ax, int64_t o)
{
    for (int64_t t = 0; t < ax->n; t++)
        if (ax->w[o * ax->n + t] != 0.0f)
            return ax->idx[o * ax->n + t];
    return ax->idx[o * ax->n];
}

static ogi_status resize_nearest(const op_ctx *c, const resize_params *p, resize_axis *axes)
{
    const ogi_tensor *x = c->in[0];
    ogi_tensor *y = c->out[0];
    int rank = p->rank, last = rank - 1;
    size_t es = (size_t)dtype_size(x->dtype);
    char fill[16];
    dtype_set_f64(fill, x->dtype, 0, p->extrapolation);
    int64_t strides[OGI_MAX_RANK];
    tensor_strides(rank, p->in, strides);
    int64_t *last_off = malloc((size_t)(p->out[last] + 1) * sizeof(int64_t));
    if (last_off == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for resize offsets");
    for (int64_t o = 0; o < p->out[last]; o++)
        last_off[o] = resize_nearest_pick(&axes[last], o);
    int64_t rows = tensor_numel(y) / p->out[last];
    char *dst = y->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = 0;
        bool outside = false;
        for (int d = last - 1; d >= 0; d--) {
            int64_t o = rem % p->out[d];
            rem /= p->out[d];
            outside = outside || axes[d].outside[o];
            off += resize_nearest_pick(&axes[d], o) * strides[d];
        }
        const char *src = (const char *)x->data + (size_t)off * es;
        for (int64_t o = 0; o < p->out[last]; o++, dst += es) {
            bool out_o = outside || axes[last].outside[o];
            memcpy(dst, out_o ? fill : src + (size_t)last_off[o] * es, es);
        }
    }
    free(last_off);
    return OGI_OK;
}

/* ---- linear and cubic: separable passes in float32 -------------------------- */

static float resize_get_f32(const void *src, ogi_dtype dt, int64_t i)
{
    switch (dt) {
    case OGI_FLOAT64:
        return (float)((const double *)src)[i];
    case OGI_FLOAT16:
        return dtype_f16_to_f32(((const uint16_t *)src)[i]);
    case OGI_BFLOAT16:
        return dtype_bf16_to_f32(((const uint16_t *)src)[i]);
    default:
        return ((const float *)src)[i];
    }
}

static void resize_set_f32(void *dst, ogi_dtype dt, int64_t i, float v)
{
    switch (dt) {
    case OGI_FLOAT64:
        ((double *)dst)[i] = v;
        break;
    case OGI_FLOAT16:
        ((uint16_t *)dst)[i] = dtype_f32_to_f16(v);
        break;
    case OGI_BFLOAT16:
        ((uint16_t *)dst)[i] = dtype_f32_to_bf16(v);
        break;
    default:
        ((float *)dst)[i] = v;
        break;
    }
}

/* One pass along axis a: src (outer x in x inner) -> dst (outer x out x
 * inner); outputs mapped off the image take the extrapolation value. */
static void resize_pass(const resize_axis *ax, float extrapolation, int64_t outer, int64_t in,
                        int64_t out, int64_t inner, const float *src, float *dst)
{
    for (int64_t b = 0; b < outer; b++) {
        const float *sb = src + b * in * inner;
        for (int64_t o = 0; o < out; o++) {
            float *row = dst + (b * out + o) * inner;
            float fill = ax->outside[o] ? extrapolation : 0.0f;
            for (int64_t i = 0; i < inner; i++)
                row[i] = fill;
            if (ax->outside[o])
                continue;
            for (int64_t t = 0; t < ax->n; t++) {
                float w = ax->w[o * ax->n + t];
                if (w == 0.0f)
                    continue;
                const float *sr = sb + ax->idx[o * ax->n + t] * inner;
                for (int64_t i = 0; i < inner; i++)
                    row[i] += w * sr[i];
            }
        }
    }
}

static ogi_status resize_interpolate(const op_ctx *c, const resize_params *p, resize_axis *axes)
{
    const ogi_tensor *x = c->in[0];
    ogi_tensor *y = c->out[0];
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, p->in, sizeof(dims));
    int64_t n = tensor_numel(x);
    float *cur = malloc((size_t)(n + 1) * sizeof(float));
    if (cur == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for resize");
    for (int64_t i = 0; i < n; i++)
        cur[i] = resize_get_f32(x->data, x->dtype, i);
    for (int a = p->rank - 1; a >= 0; a--) {
        if (axes[a].identity)
            continue;
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < a; d++)
            outer *= dims[d];
        for (int d = a + 1; d < p->rank; d++)
            inner *= dims[d];
        float *next = malloc((size_t)(outer * p->out[a] * inner + 1) * sizeof(float));
        if (next == NULL) {
            free(cur);
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "no memory for resize");
        }
        resize_pass(&axes[a], (float)p->extrapolation, outer, dims[a], p->out[a], inner, cur, next);
        free(cur);
        cur = next;
        dims[a] = p->out[a];
    }
    int64_t n_out = tensor_numel(y);
    for (int64_t i = 0; i < n_out; i++)
        resize_set_f32(y->data, y->dtype, i, cur[i]);
    free(cur);
    return OGI_OK;
}

/* ---- running ----------------------------------------------------------------- */

static bool resize_is_float(ogi_dtype dt)
{
    return dt == OGI_FLOAT32 || dt == OGI_FLOAT64 || dt == OGI_FLOAT16 || dt == OGI_BFLOAT16;
}

/* Allocates the output (p->out) and computes it. */
static ogi_status resize_execute(op_ctx *c, const resize_params *p)
{
    const ogi_tensor *x = c->in[0];
    if (dtype_size(x->dtype) == 0 || x->dtype == OGI_STRING)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: dtype %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (p->mode != RESIZE_NEAREST && !resize_is_float(x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0: %s with mode linear or cubic",
                        ogi_dtype_name(x->dtype));
    if (p->rank == 0)
        return op_alloc_copy(c, 0, x);
    ogi_status st = op_alloc(c, 0, x->dtype, p->rank, p->out);
    if (st != OGI_OK || tensor_numel(c->out[0]) == 0)
        return st;
    resize_axis axes[OGI_MAX_RANK];
    int built = 0;
    for (; built < p->rank && st == OGI_OK; built++)
        st = resize_axis_build(c, p, built, &axes[built]);
    if (st == OGI_OK)
        st =
            p->mode == RESIZE_NEAREST ? resize_nearest(c, p, axes) : resize_interpolate(c, p, axes);
    for (int a = 0; a < built; a++)
        resize_axis_free(&axes[a]);
    return st;
}

/* Output sizes from per-axis scales: floor(in * scale). */
static ogi_status resize_sizes_from_scales(const op_ctx *c, resize_params *p)
{
    for (int a = 0; a < p->rank; a++) {
        if (!(p->scale[a] > 0.0) || !isfinite(p->scale[a]))
            return op_error(c, OGI_ERR_RUNTIME, "scale %g of axis %d must be positive", p->scale[a],
                            a);
        double out = floor(p->scale[a] * (double)p->in[a]);
        if (out > 1e15)
            return op_error(c, OGI_ERR_RUNTIME, "axis %d: output size too large", a);
        p->out[a] = (int64_t)out;
    }
    return OGI_OK;
}

static void resize_params_init(const op_ctx *c, resize_params *p)
{
    const ogi_tensor *x = c->in[0];
    memset(p, 0, sizeof(*p));
    p->rank = x->rank;
    for (int a = 0; a < p->rank; a++) {
        p->in[a] = p->out[a] = x->dims[a];
        p->scale[a] = 1.0;
        p->roi_len[a] = 1.0;
    }
    p->cubic_a = -0.75;
}

/* ---- Upsample and Resize-10 -------------------------------------------------- */

/* Asymmetric coordinates; nearest floors when upsampling and ceils when
 * downsampling, as runtimes did before nearest_mode existed. */
static ogi_status resize_legacy(op_ctx *c, const double *scales, int64_t n_scales)
{
    resize_params p;
    resize_params_init(c, &p);
    const char *mode = op_attr_string(c, "mode", "nearest");
    if (strcmp(mode, "nearest") == 0)
        p.mode = RESIZE_NEAREST;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0)
        p.mode = RESIZE_LINEAR;
    else
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute mode='%s' is not valid", mode);
    if (n_scales != p.rank)
        return op_error(c, OGI_ERR_RUNTIME, "scales: expected %d values, got %lld", p.rank,
                        (long long)n_scales);
    p.coord = RESIZE_ASYMMETRIC;
    p.rounding = RESIZE_LEGACY;
    memcpy(p.scale, scales, (size_t)p.rank * sizeof(double));
    ogi_status st = resize_sizes_from_scales(c, &p);
    return st != OGI_OK ? st : resize_execute(c, &p);
}

static ogi_status resize_read_floats(const op_ctx *c, int i, double *vals, int64_t *n)
{
    const ogi_tensor *t = c->in[i];
    if (!resize_is_float(t->dtype))
        return op_error(c, OGI_ERR_RUNTIME, "input %d: expected a float tensor, got %s", i,
                        ogi_dtype_name(t->dtype));
    *n = tensor_numel(t);
    if (*n > 2 * OGI_MAX_RANK)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: too many values", i);
    for (int64_t k = 0; k < *n; k++)
        vals[k] = dtype_get_f64(t->data, t->dtype, k);
    return OGI_OK;
}

static ogi_status resize_legacy_input_run(op_ctx *c)
{
    double scales[2 * OGI_MAX_RANK];
    int64_t n;
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK ||
        (st = resize_read_floats(c, 1, scales, &n)) != OGI_OK)
        return st;
    return resize_legacy(c, scales, n);
}

static ogi_status resize_upsample7_run(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const float *f;
    int64_t n;
    if (!op_attr_floats(c, "scales", &f, &n))
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute scales is required");
    double scales[OGI_MAX_RANK];
    for (int64_t i = 0; i < n && i < OGI_MAX_RANK; i++)
        scales[i] = f[i];
    return resize_legacy(c, scales, n);
}

/* ---- Resize 11+ --------------------------------------------------------------- */

static ogi_status resize_parse_mode(const op_ctx *c, resize_params *p)
{
    const char *mode = op_attr_string(c, "mode", "nearest");
    const char *coord = op_attr_string(c, "coordinate_transformation_mode", "half_pixel");
    const char *rounding = op_attr_string(c, "nearest_mode", "round_prefer_floor");
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const roundings[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil"};
    int m = -1, k = -1, r = -1;
    for (int i = 0; i < 3; i++)
        m = strcmp(mode, modes[i]) == 0 ? i : m;
    for (int i = 0; i < 7; i++)
        k = strcmp(coord, coords[i]) == 0 ? i : k;
    for (int i = 0; i < 4; i++)
        r = strcmp(rounding, roundings[i]) == 0 ? i : r;
    if (m < 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute mode='%s' is not valid", mode);
    if (k < 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute coordinate_transformation_mode='%s' is not valid", coord);
    if (r < 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute nearest_mode='%s' is not valid",
                        rounding);
    p->mode = (resize_mode)m;
    p->coord = (resize_coord)k;
    p->rounding = (resize_rounding)r;
    p->cubic_a = op_attr_float(c, "cubic_coeff_a", -0.75f);
    p->exclude_outside = op_attr_int(c, "exclude_outside", 0) != 0;
    p->extrapolation = op_attr_float(c, "extrapolation_value", 0.0f);
    p->antialias = p->mode != RESIZE_NEAREST && op_attr_int(c, "antialias", 0) != 0;
    return OGI_OK;
}

/* The axes attribute (opset 18+): which axes scales, sizes and roi list. */
static ogi_status resize_parse_axes(const op_ctx *c, int rank, int *axes, int *n_axes)
{
    const int64_t *a;
    int64_t n;
    if (!op_attr_ints(c, "axes", &a, &n)) {
        for (int i = 0; i < rank; i++)
            axes[i] = i;
        *n_axes = rank;
        return OGI_OK;
    }
    if (n > rank)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute axes: %lld values for rank %d",
                        (long long)n, rank);
    bool seen[OGI_MAX_RANK] = {false};
    for (int64_t i = 0; i < n; i++) {
        ogi_status st = op_normalize_axis(c, a[i], rank, &axes[i]);
        if (st != OGI_OK)
            return st;
        if (seen[axes[i]])
            return op_error(c, OGI_ERR_INVALID_MODEL, "attribute axes: axis %lld repeated",
                            (long long)a[i]);
        seen[axes[i]] = true;
    }
    *n_axes = (int)n;
    return OGI_OK;
}

static ogi_status resize_parse_roi(const op_ctx *c, resize_params *p, const int *axes, int n_axes)
{
    if (p->coord != RESIZE_TF_CROP_AND_RESIZE)
        return OGI_OK;
    if (!op_has_input(c, 1) || tensor_numel(c->in[1]) == 0)
        return op_error(c, OGI_ERR_RUNTIME, "tf_crop_and_resize needs input 1 (roi)");
    double roi[2 * OGI_MAX_RANK];
    int64_t n;
    ogi_status st = resize_read_floats(c, 1, roi, &n);
    if (st != OGI_OK)
        return st;
    if (n != 2 * n_axes)
        return op_error(c, OGI_ERR_RUNTIME, "input 1: expected %d roi values, got %lld", 2 * n_axes,
                        (long long)n);
    bool single = c->in[1]->dtype == OGI_FLOAT32; /* the reference subtracts in float32 */
    for (int i = 0; i < n_axes; i++) {
        p->roi_start[axes[i]] = roi[i];
        p->roi_len[axes[i]] =
            single ? (double)((float)roi[n_axes + i] - (float)roi[i]) : roi[n_axes + i] - roi[i];
    }
    return OGI_OK;
}

/* Output sizes and scales from input 3 (sizes), honouring
 * keep_aspect_ratio_policy: one scale for all listed axes, the smallest
 * (not_larger) or largest (not_smaller), output rounded half up. */
static ogi_status resize_parse_sizes(const op_ctx *c, resize_params *p, const int *axes, int n_axes)
{
    int64_t sizes[OGI_MAX_RANK], n;
    ogi_status st = op_read_ints(c, 3, sizes, OGI_MAX_RANK, &n);
    if (st != OGI_OK)
        return st;
    if (n != n_axes)
        return op_error(c, OGI_ERR_RUNTIME, "input 3: expected %d sizes, got %lld", n_axes,
                        (long long)n);
    const char *policy = op_attr_string(c, "keep_aspect_ratio_policy", "stretch");
    bool larger = strcmp(policy, "not_smaller") == 0, smaller = strcmp(policy, "not_larger") == 0;
    if (!larger && !smaller && strcmp(policy, "stretch") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute keep_aspect_ratio_policy='%s' is not valid", policy);
    double common = 0.0;
    for (int i = 0; i < n_axes; i++) {
        int a = axes[i];
        if (sizes[i] < 0 || (p->in[a] == 0 && sizes[i] != 0))
            return op_error(c, OGI_ERR_RUNTIME, "input 3: size %lld invalid for axis %d",
                            (long long)sizes[i], a);
        p->out[a] = sizes[i];
        p->scale[a] = p->in[a] ? (double)sizes[i] / (double)p->in[a] : 1.0;
        if (i == 0 || (larger && p->scale[a] > common) || (smaller && p->scale[a] < common))
            common = p->scale[a];
    }
    if (!larger && !smaller)
        return OGI_OK;
    for (int i = 0; i < n_axes; i++) {
        int a = axes[i];
        p->scale[a] = common;
        p->out[a] = (int64_t)(common * (double)p->in[a] + 0.5);
    }
    return OGI_OK;
}

/* Modes the reference and the spec define differently, left unimplemented. */
static ogi_status resize_check_supported(const op_ctx *c, const resize_params *p)
{
    if (p->coord != RESIZE_PYTORCH_HALF_PIXEL)
        return OGI_OK;
    bool plain = p->mode == RESIZE_NEAREST || (p->mode == RESIZE_LINEAR && !p->antialias);
    for (int a = 0; a < p->rank; a++) {
        double out_w = p->scale[a] * (double)p->in[a];
        if (p->out[a] == 1 && (out_w != 1.0 || !plain))
            return op_error(c, OGI_ERR_UNSUPPORTED,
                            "pytorch_half_pixel with an output length of 1 on axis %d", a);
    }
    return OGI_OK;
}

static ogi_status resize_run(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    resize_params p;
    resize_params_init(c, &p);
    int axes[OGI_MAX_RANK], n_axes;
    if ((st = resize_parse_mode(c, &p)) != OGI_OK ||
        (st = resize_parse_axes(c, p.rank, axes, &n_axes)) != OGI_OK ||
        (st = resize_parse_roi(c, &p, axes, n_axes)) != OGI_OK)
        return st;
    bool has_scales = op_has_input(c, 2) && tensor_numel(c->in[2]) > 0;
    bool has_sizes = op_has_input(c, 3) && tensor_numel(c->in[3]) > 0;
    if (has_scales == has_sizes)
        return op_error(c, OGI_ERR_INVALID_MODEL, "exactly one of scales and sizes is required");
    if (has_sizes) {
        st = resize_parse_sizes(c, &p, axes, n_axes);
    } else {
        double scales[2 * OGI_MAX_RANK];
        int64_t n;
        if ((st = resize_read_floats(c, 2, scales, &n)) != OGI_OK)
            return st;
        if (n != n_axes)
            return op_error(c, OGI_ERR_RUNTIME, "input 2: expected %d scales, got %lld", n_axes,
                            (long long)n);
        for (int i = 0; i < n_axes; i++)
            p.scale[axes[i]] = scales[i];
        st = resize_sizes_from_scales(c, &p);
    }
    if (st != OGI_OK || (st = resize_check_supported(c, &p)) != OGI_OK)
        return st;
    return resize_execute(c, &p);
}

const op_kernel op_kernels_resize[] = {
    {"", "Upsample", 7, resize_upsample7_run},
    {"", "Upsample", 9, resize_legacy_input_run},
    {"", "Resize", 10, resize_legacy_input_run},
    {"", "Resize", 11, resize_run},
    {NULL, NULL, 0, NULL},
};
