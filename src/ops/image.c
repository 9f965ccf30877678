/* Image ops: GridSample (opsets 16 and 20), AffineGrid (20), RoiAlign (10
 * and 16), NonMaxSuppression (10) and Col2Im (18). Each follows the ONNX
 * reference implementation (itself modelled on PyTorch and ONNX Runtime)
 * down to its corner cases, and computes in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

/* ---- GridSample ------------------------------------------------------------ */

typedef enum gs_mode {
    GS_NEAREST,
    GS_LINEAR,
    GS_CUBIC,
} gs_mode;

typedef enum gs_padding {
    GS_ZEROS,
    GS_BORDER,
    GS_REFLECTION,
} gs_padding;

#define GS_MAX_TAPS 4       /* taps per spatial dim: 1, 2 or 4 */
#define GS_MAX_COMBOS 65536 /* taps over all dims */

typedef struct gs_problem {
    const ogi_tensor *x, *grid;
    int r; /* spatial dims */
    int64_t n, channels;
    int64_t points;  /* output points per (n, c) */
    int64_t spatial; /* input pixels per (n, c) */
    gs_mode mode;
    gs_padding padding;
    bool align_corners;
    int taps;       /* per dim */
    int64_t combos; /* taps ^ r */
} gs_problem;

/* One spatial dim's taps for an output point: element offsets (stride
 * applied) and weights; valid[i] false where zeros padding reads 0. */
typedef struct gs_axis {
    int64_t offset[GS_MAX_TAPS];
    double weight[GS_MAX_TAPS];
    bool valid[GS_MAX_TAPS];
} gs_axis;

static ogi_status gs_read_mode(const op_ctx *c, gs_problem *p)
{
    const char *mode = op_attr_string(c, "mode", c->opset >= 20 ? "linear" : "bilinear");
    const char *pad = op_attr_string(c, "padding_mode", "zeros");
    if (strcmp(mode, "nearest") == 0)
        p->mode = GS_NEAREST;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0)
        p->mode = GS_LINEAR;
    else if (strcmp(mode, "cubic") == 0 || strcmp(mode, "bicubic") == 0)
        p->mode = GS_CUBIC;
    else
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute mode='%s' is not supported", mode);
    if (strcmp(pad, "zeros") == 0)
        p->padding = GS_ZEROS;
    else if (strcmp(pad, "border") == 0)
        p->padding = GS_BORDER;
    else if (strcmp(pad, "reflection") == 0)
        p->padding = GS_REFLECTION;
    else
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute padding_mode='%s' is not supported",
                        pad);
    p->align_corners = op_attr_int(c, "align_corners", 0) != 0;
    p->taps = p->mode == GS_NEAREST ? 1 : p->mode == GS_LINEAR ? 2 : 4;
    return OGI_OK;
}

static ogi_status gs_check_shapes(const op_ctx *c, const gs_problem *p)
{
    const ogi_tensor *x = p->x, *g = p->grid;
    char xs[128], gs[128];
    bool ok = g->rank == x->rank && g->dims[0] == x->dims[0] && g->dims[g->rank - 1] == p->r;
    if (!ok)
        return op_error(c, OGI_ERR_RUNTIME, "grid shape %s does not fit X shape %s",
                        tensor_shape_str(g->rank, g->dims, gs, sizeof(gs)),
                        tensor_shape_str(x->rank, x->dims, xs, sizeof(xs)));
    return OGI_OK;
}

static ogi_status gs_problem_init(const op_ctx *c, gs_problem *p)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    memset(p, 0, sizeof(*p));
    p->x = c->in[0];
    p->grid = c->in[1];
    if (!dtype_is_float(p->x->dtype))
        return op_error(c, OGI_ERR_UNSUPPORTED, "X of type %s is not supported",
                        ogi_dtype_name(p->x->dtype));
    if (!dtype_is_float(p->grid->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "grid: expected a float type, got %s",
                        ogi_dtype_name(p->grid->dtype));
    if (p->x->rank < 3 || (c->opset < 20 && p->x->rank != 4))
        return op_error(c, OGI_ERR_RUNTIME, "X: rank %d is not supported at opset %d", p->x->rank,
                        c->opset);
    p->r = p->x->rank - 2;
    if ((st = gs_check_shapes(c, p)) != OGI_OK || (st = gs_read_mode(c, p)) != OGI_OK)
        return st;
    p->combos = 1;
    for (int d = 0; d < p->r; d++) {
        p->combos *= p->taps;
        if (p->combos > GS_MAX_COMBOS)
            return op_error(c, OGI_ERR_UNSUPPORTED, "%d spatial dims are too many for this mode",
                            p->r);
    }
    p->n = p->x->dims[0];
    p->channels = p->x->dims[1];
    p->points = tensor_shape_numel(p->r, p->grid->dims + 1);
    p->spatial = tensor_shape_numel(p->r, p->x->dims + 2);
    return OGI_OK;
}

/* Reflects x into [lo, hi] by folding at the borders as often as needed. */
static double gs_reflect(double x, double lo, double hi)
{
    double range = hi - lo;
    if (range <= 0.0)
        return lo;
    double r = x;
    if (x < lo) {
        double dx = lo - x, folds = floor(dx / range), rest = dx - folds * range;
        r = fmod(folds, 2.0) == 0.0 ? lo + rest : hi - rest;
    } else if (x > hi) {
        double dx = x - hi, folds = floor(dx / range), rest = dx - folds * range;
        r = fmod(folds, 2.0) == 0.0 ? hi - rest : lo + rest;
    }
    /* rounding can leave a huge x's remainder slightly off */
    return r < lo ? lo : r > hi ? hi : r;
}

/* Keys' cubic convolution weights (alpha -0.75) for fraction t in [0, 1). */
static void gs_cubic_weights(double t, double *w)
{
    const double a = -0.75;
    double t1 = t + 1.0, u = 1.0 - t, u1 = 2.0 - t;
    w[0] = ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a;
    w[1] = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    w[2] = ((a + 2.0) * u - (a + 3.0)) * u * u + 1.0;
    w[3] = ((a * u1 - 5.0 * a) * u1 + 8.0 * a) * u1 - 4.0 * a;
}

/* Where tap index i of a dim of length len reads, or false (zeros padding)
 * when it reads nothing. */
static bool gs_tap_index(const gs_problem *p, int64_t i, int64_t len, double lo, double hi,
                         int64_t *out)
{
    if (p->padding == GS_REFLECTION)
        i = (int64_t)gs_reflect((double)i, lo, hi);
    if (p->padding != GS_ZEROS)
        i = i < 0 ? 0 : i >= len ? len - 1 : i;
    *out = i;
    return i >= 0 && i < len;
}

/* The taps of one spatial dim of length len (stride elements apart) for
 * normalized coordinate v; false when v is not finite. */
static bool gs_axis_taps(const gs_problem *p, double v, int64_t len, int64_t stride, gs_axis *a)
{
    double lo = p->align_corners ? 0.0 : -0.5;
    double hi = p->align_corners ? (double)len - 1.0 : (double)len - 0.5;
    /* the reference keeps coordinates in float32 */
    double x = (float)(p->align_corners ? (v + 1.0) / 2.0 * (double)(len - 1)
                                        : ((v + 1.0) * (double)len - 1.0) / 2.0);
    if (p->mode == GS_NEAREST)
        x = nearbyint(x); /* halves to even, as the reference's np.rint */
    if (x < lo || x > hi) {
        if (p->padding == GS_BORDER)
            x = x < 0.0 ? 0.0 : (double)len - 1.0;
        else if (p->padding == GS_REFLECTION)
            x = (float)gs_reflect(x, lo, hi);
    }
    if (!isfinite(x))
        return false;
    for (int k = 0; k < GS_MAX_TAPS; k++)
        a->valid[k] = false;
    if (x < -8.0 || x > (double)len + 8.0)
        return true; /* zeros padding, every tap outside */
    double base = p->mode == GS_NEAREST ? trunc(x) : floor(x);
    double t = x - base, w[GS_MAX_TAPS] = {1.0, 0.0, 0.0, 0.0};
    int64_t first = (int64_t)base;
    if (p->mode == GS_LINEAR) {
        w[0] = 1.0 - t;
        w[1] = t;
    } else if (p->mode == GS_CUBIC) {
        gs_cubic_weights(t, w);
        first -= 1;
    }
    for (int k = 0; k < p->taps; k++) {
        int64_t i;
        a->valid[k] = gs_tap_index(p, first + k, len, lo, hi, &i);
        a->offset[k] = i * stride;
        a->weight[k] = w[k];
    }
    return true;
}

/* Expands the per-dim taps into n_combo (offset, weight) pairs. */
static int64_t gs_combine(const gs_problem *p, const gs_axis *axes, int64_t *off, double *w)
{
    int64_t count = 0;
    int digit[OGI_MAX_RANK] = {0};
    for (int64_t k = 0; k < p->combos; k++) {
        int64_t o = 0;
        double wt = 1.0;
        bool valid = true;
        for (int d = 0; d < p->r && valid; d++) {
            valid = axes[d].valid[digit[d]];
            o += axes[d].offset[digit[d]];
            wt *= axes[d].weight[digit[d]];
        }
        if (valid) {
            off[count] = o;
            w[count++] = wt;
        }
        for (int d = p->r - 1; d >= 0; d--) {
            if (++digit[d] < p->taps)
                break;
            digit[d] = 0;
        }
    }
    return count;
}

/* Samples every channel of batch entry b at output point q. */
static ogi_status gs_point(const op_ctx *c, const gs_problem *p, int64_t b, int64_t q, int64_t *off,
                           double *w)
{
    const ogi_tensor *x = p->x, *g = p->grid;
    ogi_tensor *y = c->out[0];
    gs_axis axes[OGI_MAX_RANK];
    int64_t stride = 1;
    for (int d = p->r - 1; d >= 0; d--) {
        int64_t len = x->dims[2 + d];
        /* grid's last dim lists coordinates innermost dim first (x, y, z) */
        double v = dtype_get_f64(g->data, g->dtype, (b * p->points + q) * p->r + (p->r - 1 - d));
        if (!gs_axis_taps(p, v, len, stride, &axes[d]))
            return op_error(c, OGI_ERR_RUNTIME, "grid value %g gives no finite coordinate", v);
        stride *= len;
    }
    int64_t count = gs_combine(p, axes, off, w);
    for (int64_t ch = 0; ch < p->channels; ch++) {
        int64_t base = (b * p->channels + ch) * p->spatial;
        double sum = 0.0;
        for (int64_t k = 0; k < count; k++)
            sum += w[k] * dtype_get_f64(x->data, x->dtype, base + off[k]);
        dtype_set_f64(y->data, y->dtype, (b * p->channels + ch) * p->points + q, sum);
    }
    return OGI_OK;
}

static ogi_status grid_sample(op_ctx *c)
{
    gs_problem p;
    ogi_status st = gs_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK];
    dims[0] = p.n;
    dims[1] = p.channels;
    memcpy(dims + 2, p.grid->dims + 1, sizeof(int64_t) * (size_t)p.r);
    if ((st = op_alloc(c, 0, p.x->dtype, p.x->rank, dims)) != OGI_OK)
        return st;
    if (tensor_numel(c->out[0]) == 0)
        return OGI_OK;
    if (p.spatial == 0)
        return op_error(c, OGI_ERR_RUNTIME, "X has an empty spatial dim");
    int64_t *off = malloc((size_t)p.combos * sizeof(int64_t));
    double *w = malloc((size_t)p.combos * sizeof(double));
    if (off == NULL || w == NULL)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld taps", (long long)p.combos);
    for (int64_t b = 0; st == OGI_OK && b < p.n; b++)
        for (int64_t q = 0; st == OGI_OK && q < p.points; q++)
            st = gs_point(c, &p, b, q, off, w);
    free(off);
    free(w);
    return st;
}

/* ---- AffineGrid ------------------------------------------------------------ */

/* Normalized coordinate of pixel i of len: pixel centres spaced over
 * (-1, 1), or from -1 to 1 exactly with align_corners. */
static double affine_base(int64_t i, int64_t len, bool align_corners)
{
    if (align_corners)
        return -1.0 + 2.0 * (double)i / (double)(len - 1);
    return (2.0 * (double)i + 1.0) / (double)len - 1.0;
}

static ogi_status affine_check(const op_ctx *c, const ogi_tensor *theta, const int64_t *size,
                               int64_t n_size, bool align_corners)
{
    if (!dtype_is_float(theta->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "theta: expected a float type, got %s",
                        ogi_dtype_name(theta->dtype));
    int r = (int)n_size - 2; /* 2 or 3 spatial dims */
    if ((n_size != 4 && n_size != 5) || theta->rank != 3 || theta->dims[1] != r ||
        theta->dims[2] != r + 1 || theta->dims[0] != size[0])
        return op_error(c, OGI_ERR_RUNTIME,
                        "theta must be [N, 2, 3] with size [N, C, H, W] or [N, 3, 4] with "
                        "size [N, C, D, H, W]");
    for (int64_t i = 0; i < n_size; i++) {
        if (size[i] < 0)
            return op_error(c, OGI_ERR_RUNTIME, "size[%lld] = %lld is negative", (long long)i,
                            (long long)size[i]);
        /* PyTorch and the ONNX reference disagree on a lone aligned pixel */
        if (i >= 2 && size[i] == 1 && align_corners)
            return op_error(c, OGI_ERR_UNSUPPORTED,
                            "align_corners=1 with a spatial size of 1 is not supported");
    }
    return OGI_OK;
}

/* grid[n, (d,) h, w] = theta[n] . (x_w, y_h, (z_d,) 1). */
static ogi_status affine_grid(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    int64_t size[5], n_size;
    if (st != OGI_OK || (st = op_read_ints(c, 1, size, 5, &n_size)) != OGI_OK)
        return st;
    const ogi_tensor *theta = c->in[0];
    bool align = op_attr_int(c, "align_corners", 0) != 0;
    if ((st = affine_check(c, theta, size, n_size, align)) != OGI_OK)
        return st;
    int r = (int)n_size - 2;
    int64_t depth = r == 3 ? size[2] : 1, height = size[n_size - 2], width = size[n_size - 1];
    int64_t dims[5] = {size[0]};
    for (int d = 0; d < r; d++)
        dims[1 + d] = size[2 + d];
    dims[1 + r] = r;
    if ((st = op_alloc(c, 0, theta->dtype, r + 2, dims)) != OGI_OK)
        return st;
    ogi_tensor *y = c->out[0];
    int64_t at = 0;
    for (int64_t n = 0; n < size[0]; n++) {
        double th[12];
        for (int i = 0; i < r * (r + 1); i++)
            th[i] = dtype_get_f64(theta->data, theta->dtype, n * r * (r + 1) + i);
        for (int64_t d = 0; d < depth; d++) {
            for (int64_t h = 0; h < height; h++) {
                for (int64_t w = 0; w < width; w++) {
                    double base[4] = {affine_base(w, width, align), affine_base(h, height, align),
                                      r == 3 ? affine_base(d, depth, align) : 1.0, 1.0};
                    for (int k = 0; k < r; k++) {
                        double v = 0.0;
                        for (int j = 0; j <= r; j++)
                            v += th[k * (r + 1) + j] * base[j];
                        dtype_set_f64(y->data, y->dtype, at++, v);
                    }
                }
            }
        }
    }
    return OGI_OK;
}

/* ---- RoiAlign -------------------------------------------------------------- */

typedef struct roi_problem {
    const ogi_tensor *x, *rois, *batch_indices;
    int64_t num_rois, channels, height, width, out_h, out_w;
    int64_t sampling_ratio;
    double spatial_scale;
    bool max_mode, half_pixel;
} roi_problem;

/* One bilinear sample: four pixel offsets and their weights. */
typedef struct roi_sample {
    int64_t pos[4];
    double w[4];
} roi_sample;

static ogi_status roi_read_attrs(const op_ctx *c, roi_problem *p)
{
    const char *mode = op_attr_string(c, "mode", "avg");
    const char *ctm = op_attr_string(c, "coordinate_transformation_mode",
                                     c->opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute mode='%s' is not avg or max", mode);
    if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "attribute coordinate_transformation_mode='%s' is not supported", ctm);
    p->max_mode = strcmp(mode, "max") == 0;
    p->half_pixel = strcmp(ctm, "half_pixel") == 0;
    p->out_h = op_attr_int(c, "output_height", 1);
    p->out_w = op_attr_int(c, "output_width", 1);
    p->sampling_ratio = op_attr_int(c, "sampling_ratio", 0);
    p->spatial_scale = op_attr_float(c, "spatial_scale", 1.0f);
    if (p->out_h < 1 || p->out_w < 1 || p->sampling_ratio < 0 || p->sampling_ratio > 1 << 12)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "output_height %lld, output_width %lld, sampling_ratio %lld out of range",
                        (long long)p->out_h, (long long)p->out_w, (long long)p->sampling_ratio);
    return OGI_OK;
}

static ogi_status roi_problem_init(const op_ctx *c, roi_problem *p)
{
    ogi_status st;
    for (int i = 0; i < 3; i++)
        if ((st = op_require_input(c, i)) != OGI_OK)
            return st;
    memset(p, 0, sizeof(*p));
    const ogi_tensor *x = p->x = c->in[0], *rois = p->rois = c->in[1];
    const ogi_tensor *bi = p->batch_indices = c->in[2];
    if (!dtype_is_float(x->dtype) || rois->dtype != x->dtype)
        return op_error(c, OGI_ERR_INVALID_MODEL, "X and rois must share a float type");
    if (bi->dtype != OGI_INT64 && bi->dtype != OGI_INT32)
        return op_error(c, OGI_ERR_INVALID_MODEL, "batch_indices: expected int64, got %s",
                        ogi_dtype_name(bi->dtype));
    if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 || bi->rank != 1 ||
        bi->dims[0] != rois->dims[0])
        return op_error(c, OGI_ERR_RUNTIME,
                        "expected X [N, C, H, W], rois [R, 4] and batch_indices [R]");
    p->num_rois = rois->dims[0];
    p->channels = x->dims[1];
    p->height = x->dims[2];
    p->width = x->dims[3];
    return roi_read_attrs(c, p);
}

/* The bilinear sample at (y, x), as the reference computes it: points more
 * than one pixel outside read nothing, the rest clamp to the edge. */
static void roi_bilinear(const roi_problem *p, double y, double x, roi_sample *s)
{
    int64_t h = p->height, w = p->width;
    memset(s, 0, sizeof(*s));
    if (!(y >= -1.0 && y <= (double)h && x >= -1.0 && x <= (double)w))
        return;
    y = y < 0.0 ? 0.0 : y;
    x = x < 0.0 ? 0.0 : x;
    int64_t y_lo = (int64_t)y, x_lo = (int64_t)x, y_hi, x_hi;
    if (y_lo >= h - 1) {
        y_hi = y_lo = h - 1;
        y = (double)y_lo;
    } else {
        y_hi = y_lo + 1;
    }
    if (x_lo >= w - 1) {
        x_hi = x_lo = w - 1;
        x = (double)x_lo;
    } else {
        x_hi = x_lo + 1;
    }
    double ly = y - (double)y_lo, lx = x - (double)x_lo, hy = 1.0 - ly, hx = 1.0 - lx;
    s->pos[0] = y_lo * w + x_lo;
    s->pos[1] = y_lo * w + x_hi;
    s->pos[2] = y_hi * w + x_lo;
    s->pos[3] = y_hi * w + x_hi;
    s->w[0] = hy * hx;
    s->w[1] = hy * lx;
    s->w[2] = ly * hx;
    s->w[3] = ly * lx;
}

/* Pools the samples of one bin over plane (an H x W channel). Max mode
 * takes the largest weighted corner, as the reference and ONNX Runtime do. */
static double roi_pool(const roi_problem *p, const roi_sample *s, int64_t count, int64_t divisor,
                       int64_t plane)
{
    const ogi_tensor *x = p->x;
    double out = 0.0;
    for (int64_t k = 0; k < count; k++) {
        double v[4];
        for (int j = 0; j < 4; j++)
            v[j] = s[k].w[j] * dtype_get_f64(x->data, x->dtype, plane + s[k].pos[j]);
        if (p->max_mode) {
            double m = fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
            out = k == 0 ? m : fmax(out, m);
        } else {
            out += v[0] + v[1] + v[2] + v[3];
        }
    }
    return p->max_mode ? out : out / (double)divisor;
}

typedef struct roi_box {
    double start_h, start_w, bin_h, bin_w;
    int64_t grid_h, grid_w; /* samples per bin along each axis (may be <= 0) */
    int64_t batch;
} roi_box;

static ogi_status roi_box_init(const op_ctx *c, const roi_problem *p, int64_t r, roi_box *b)
{
    double v[4], offset = p->half_pixel ? 0.5 : 0.0;
    for (int i = 0; i < 4; i++)
        v[i] = dtype_get_f64(p->rois->data, p->rois->dtype, r * 4 + i) * p->spatial_scale - offset;
    b->batch = dtype_get_i64(p->batch_indices->data, p->batch_indices->dtype, r);
    if (b->batch < 0 || b->batch >= p->x->dims[0])
        return op_error(c, OGI_ERR_RUNTIME, "batch_indices[%lld] = %lld out of range [0, %lld)",
                        (long long)r, (long long)b->batch, (long long)p->x->dims[0]);
    double roi_w = v[2] - v[0], roi_h = v[3] - v[1];
    if (!isfinite(roi_w) || !isfinite(roi_h))
        return op_error(c, OGI_ERR_RUNTIME, "roi %lld has a non-finite coordinate", (long long)r);
    if (!p->half_pixel) { /* malformed rois become 1x1 */
        roi_w = fmax(roi_w, 1.0);
        roi_h = fmax(roi_h, 1.0);
    }
    b->start_w = v[0];
    b->start_h = v[1];
    b->bin_h = roi_h / (double)p->out_h;
    b->bin_w = roi_w / (double)p->out_w;
    double gh = p->sampling_ratio > 0 ? (double)p->sampling_ratio : ceil(roi_h / (double)p->out_h);
    double gw = p->sampling_ratio > 0 ? (double)p->sampling_ratio : ceil(roi_w / (double)p->out_w);
    if (!(fabs(gh) <= 4096.0 && fabs(gw) <= 4096.0))
        return op_error(c, OGI_ERR_UNSUPPORTED, "roi %lld needs too many samples per bin",
                        (long long)r);
    b->grid_h = (int64_t)gh;
    b->grid_w = (int64_t)gw;
    return OGI_OK;
}

/* Fills the output of roi r; s has room for grid_h * grid_w samples. */
static void roi_forward(const roi_problem *p, const roi_box *b, int64_t r, roi_sample *s,
                        ogi_tensor *y)
{
    int64_t divisor = b->grid_h * b->grid_w > 1 ? b->grid_h * b->grid_w : 1;
    for (int64_t ph = 0; ph < p->out_h; ph++) {
        for (int64_t pw = 0; pw < p->out_w; pw++) {
            int64_t count = 0;
            for (int64_t iy = 0; iy < b->grid_h; iy++) {
                double yy = b->start_h + (double)ph * b->bin_h +
                            ((double)iy + 0.5) * b->bin_h / (double)b->grid_h;
                for (int64_t ix = 0; ix < b->grid_w; ix++) {
                    double xx = b->start_w + (double)pw * b->bin_w +
                                ((double)ix + 0.5) * b->bin_w / (double)b->grid_w;
                    roi_bilinear(p, yy, xx, &s[count++]);
                }
            }
            for (int64_t ch = 0; ch < p->channels; ch++) {
                int64_t plane = (b->batch * p->channels + ch) * p->height * p->width;
                int64_t at = ((r * p->channels + ch) * p->out_h + ph) * p->out_w + pw;
                dtype_set_f64(y->data, y->dtype, at, roi_pool(p, s, count, divisor, plane));
            }
        }
    }
}

static ogi_status roi_align(op_ctx *c)
{
    roi_problem p;
    ogi_status st = roi_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    int64_t dims[4] = {p.num_rois, p.channels, p.out_h, p.out_w};
    if ((st = op_alloc(c, 0, p.x->dtype, 4, dims)) != OGI_OK)
        return st;
    if (tensor_numel(c->out[0]) == 0)
        return OGI_OK;
    if (p.height == 0 || p.width == 0)
        return op_error(c, OGI_ERR_RUNTIME, "X has an empty spatial dim");
    for (int64_t r = 0; r < p.num_rois; r++) {
        roi_box b;
        if ((st = roi_box_init(c, &p, r, &b)) != OGI_OK)
            return st;
        int64_t samples = b.grid_h > 0 && b.grid_w > 0 ? b.grid_h * b.grid_w : 1;
        roi_sample *s = malloc((size_t)samples * sizeof(roi_sample));
        if (s == NULL)
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld samples",
                            (long long)samples);
        roi_forward(&p, &b, r, s, c->out[0]);
        free(s);
    }
    return OGI_OK;
}

/* ---- NonMaxSuppression ----------------------------------------------------- */

/* A box as the reference sees it: corner boxes have their coordinates
 * ordered, centre boxes are taken as given. */
typedef struct nms_box {
    double x_min, x_max, y_min, y_max;
} nms_box;

typedef struct nms_candidate {
    double score;
    int64_t index;
} nms_candidate;

/* Highest score first, ties to the lower index; NaN scores last. */
static int nms_compare(const void *a, const void *b)
{
    const nms_candidate *x = a, *y = b;
    if (isnan(x->score) != isnan(y->score))
        return isnan(x->score) ? 1 : -1;
    if (x->score != y->score && !isnan(x->score))
        return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool nms_suppresses(const nms_box *a, const nms_box *b, double iou_threshold)
{
    double ix_min = fmax(a->x_min, b->x_min), ix_max = fmin(a->x_max, b->x_max);
    if (ix_max <= ix_min)
        return false;
    double iy_min = fmax(a->y_min, b->y_min), iy_max = fmin(a->y_max, b->y_max);
    if (iy_max <= iy_min)
        return false;
    double inter = (ix_max - ix_min) * (iy_max - iy_min);
    double area_a = (a->x_max - a->x_min) * (a->y_max - a->y_min);
    double area_b = (b->x_max - b->x_min) * (b->y_max - b->y_min);
    double uni = area_a + area_b - inter;
    if (inter <= 0.0 || area_a <= 0.0 || area_b <= 0.0 || uni <= 0.0)
        return false;
    return inter / uni > iou_threshold;
}

typedef struct nms_problem {
    const ogi_tensor *boxes, *scores;
    int64_t batches, classes, count;
    int64_t max_out;
    double iou_threshold, score_threshold;
    bool has_score_threshold, center_point_box;
} nms_problem;

/* Reads optional scalar input i; an omitted or empty input keeps *v. */
static ogi_status nms_optional_f64(const op_ctx *c, int i, double *v, bool *present)
{
    *present = op_has_input(c, i) && tensor_numel(c->in[i]) > 0;
    return *present ? op_read_scalar_f64(c, i, v) : OGI_OK;
}

static ogi_status nms_problem_init(const op_ctx *c, nms_problem *p)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK || (st = op_require_input(c, 1)) != OGI_OK)
        return st;
    memset(p, 0, sizeof(*p));
    const ogi_tensor *bx = p->boxes = c->in[0], *sc = p->scores = c->in[1];
    if (!dtype_is_float(bx->dtype) || !dtype_is_float(sc->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "boxes and scores must be float tensors");
    if (bx->rank != 3 || bx->dims[2] != 4 || sc->rank != 3 || sc->dims[0] != bx->dims[0] ||
        sc->dims[2] != bx->dims[1])
        return op_error(c, OGI_ERR_RUNTIME,
                        "expected boxes [B, N, 4] and scores [B, C, N] with matching B and N");
    p->batches = bx->dims[0];
    p->count = bx->dims[1];
    p->classes = sc->dims[1];
    int64_t cpb = op_attr_int(c, "center_point_box", 0);
    if (cpb != 0 && cpb != 1)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute center_point_box=%lld is not 0 or 1",
                        (long long)cpb);
    p->center_point_box = cpb == 1;
    bool present;
    if (op_has_input(c, 2) && tensor_numel(c->in[2]) > 0 &&
        (st = op_read_scalar_i64(c, 2, &p->max_out)) != OGI_OK)
        return st;
    p->max_out = p->max_out < 0 ? 0 : p->max_out;
    if ((st = nms_optional_f64(c, 3, &p->iou_threshold, &present)) != OGI_OK)
        return st;
    return nms_optional_f64(c, 4, &p->score_threshold, &p->has_score_threshold);
}

static void nms_load_boxes(const nms_problem *p, int64_t b, nms_box *out)
{
    const ogi_tensor *t = p->boxes;
    for (int64_t i = 0; i < p->count; i++) {
        double v[4];
        for (int k = 0; k < 4; k++)
            v[k] = dtype_get_f64(t->data, t->dtype, (b * p->count + i) * 4 + k);
        nms_box *o = &out[i];
        if (p->center_point_box) { /* [x_center, y_center, width, height] */
            o->x_min = v[0] - v[2] / 2.0;
            o->x_max = v[0] + v[2] / 2.0;
            o->y_min = v[1] - v[3] / 2.0;
            o->y_max = v[1] + v[3] / 2.0;
        } else { /* [y1, x1, y2, x2], either corner first */
            o->y_min = fmin(v[0], v[2]);
            o->y_max = fmax(v[0], v[2]);
            o->x_min = fmin(v[1], v[3]);
            o->x_max = fmax(v[1], v[3]);
        }
    }
}

/* Selects boxes of (b, cls) into sel (box indices); returns how many. */
static int64_t nms_select(const nms_problem *p, int64_t b, int64_t cls, const nms_box *boxes,
                          nms_candidate *cand, int64_t *sel)
{
    const ogi_tensor *s = p->scores;
    int64_t n = 0, picked = 0;
    for (int64_t i = 0; i < p->count; i++) {
        double v = dtype_get_f64(s->data, s->dtype, (b * p->classes + cls) * p->count + i);
        if (p->has_score_threshold && !(v > p->score_threshold))
            continue;
        cand[n].score = v;
        cand[n++].index = i;
    }
    qsort(cand, (size_t)n, sizeof(*cand), nms_compare);
    for (int64_t k = 0; k < n && picked < p->max_out; k++) {
        bool keep = true;
        for (int64_t j = 0; j < picked && keep; j++)
            keep = !nms_suppresses(&boxes[cand[k].index], &boxes[sel[j]], p->iou_threshold);
        if (keep)
            sel[picked++] = cand[k].index;
    }
    return picked;
}

/* Appends (b, cls, index) triples to *out, growing it as needed. */
static bool nms_append(int64_t **out, int64_t *len, int64_t *cap, int64_t b, int64_t cls,
                       const int64_t *sel, int64_t n)
{
    if (*len + n > *cap) {
        int64_t cap2 = (*cap + n) * 2;
        int64_t *grown = realloc(*out, (size_t)cap2 * 3 * sizeof(int64_t));
        if (grown == NULL)
            return false;
        *out = grown;
        *cap = cap2;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t *row = *out + (*len + i) * 3;
        row[0] = b;
        row[1] = cls;
        row[2] = sel[i];
    }
    *len += n;
    return true;
}

static ogi_status nms_run(op_ctx *c, const nms_problem *p, nms_box *boxes, nms_candidate *cand,
                          int64_t *sel)
{
    int64_t *found = NULL, len = 0, cap = 0;
    for (int64_t b = 0; b < p->batches; b++) {
        nms_load_boxes(p, b, boxes);
        for (int64_t cls = 0; cls < p->classes; cls++) {
            int64_t n = nms_select(p, b, cls, boxes, cand, sel);
            if (!nms_append(&found, &len, &cap, b, cls, sel, n)) {
                free(found);
                return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for selected boxes");
            }
        }
    }
    int64_t dims[2] = {len, 3};
    ogi_status st = op_alloc(c, 0, OGI_INT64, 2, dims);
    if (st == OGI_OK && len > 0)
        memcpy(c->out[0]->data, found, (size_t)len * 3 * sizeof(int64_t));
    free(found);
    return st;
}

static ogi_status non_max_suppression(op_ctx *c)
{
    nms_problem p;
    ogi_status st = nms_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    size_t n = (size_t)(p.count > 0 ? p.count : 1);
    nms_box *boxes = malloc(n * sizeof(nms_box));
    nms_candidate *cand = malloc(n * sizeof(nms_candidate));
    int64_t *sel = malloc(n * sizeof(int64_t));
    if (boxes == NULL || cand == NULL || sel == NULL)
        st = op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld boxes", (long long)p.count);
    else
        st = nms_run(c, &p, boxes, cand, sel);
    free(boxes);
    free(cand);
    free(sel);
    return st;
}

/* ---- Col2Im ---------------------------------------------------------------- */

typedef struct col2im_problem {
    const ogi_tensor *x;
    int r;
    int64_t image[OGI_MAX_RANK], block[OGI_MAX_RANK];
    int64_t dilation[OGI_MAX_RANK], stride[OGI_MAX_RANK], pad_begin[OGI_MAX_RANK];
    int64_t n_blocks[OGI_MAX_RANK];
    int64_t batch, channels, kernel, blocks, pixels;
} col2im_problem;

/* Copies an optional ints attribute of count values (def when absent). */
static ogi_status col2im_attr(const op_ctx *c, const char *name, int64_t count, int64_t def,
                              int64_t *out)
{
    const int64_t *v;
    int64_t n;
    if (!op_attr_ints(c, name, &v, &n)) {
        for (int64_t i = 0; i < count; i++)
            out[i] = def;
        return OGI_OK;
    }
    if (n != count)
        return op_error(c, OGI_ERR_INVALID_MODEL, "attribute %s: expected %lld values, got %lld",
                        name, (long long)count, (long long)n);
    memcpy(out, v, (size_t)count * sizeof(int64_t));
    return OGI_OK;
}

static ogi_status col2im_read_shapes(const op_ctx *c, col2im_problem *p, int64_t *pads)
{
    int64_t n_image, n_block;
    ogi_status st;
    if ((st = op_read_ints(c, 1, p->image, OGI_MAX_RANK - 2, &n_image)) != OGI_OK ||
        (st = op_read_ints(c, 2, p->block, OGI_MAX_RANK - 2, &n_block)) != OGI_OK)
        return st;
    if (n_image != n_block || n_image < 1)
        return op_error(c, OGI_ERR_RUNTIME, "image_shape (%lld) and block_shape (%lld) differ",
                        (long long)n_image, (long long)n_block);
    p->r = (int)n_image;
    if ((st = col2im_attr(c, "dilations", p->r, 1, p->dilation)) != OGI_OK ||
        (st = col2im_attr(c, "strides", p->r, 1, p->stride)) != OGI_OK ||
        (st = col2im_attr(c, "pads", 2 * p->r, 0, pads)) != OGI_OK)
        return st;
    return OGI_OK;
}

/* Shape values stay below 2^31 so spans and offsets cannot overflow. */
static bool col2im_in_range(int64_t v, int64_t min)
{
    return v >= min && v <= INT32_MAX;
}

static ogi_status col2im_problem_init(const op_ctx *c, col2im_problem *p)
{
    ogi_status st = op_require_input(c, 0);
    int64_t pads[2 * OGI_MAX_RANK];
    if (st != OGI_OK)
        return st;
    memset(p, 0, sizeof(*p));
    const ogi_tensor *x = p->x = c->in[0];
    if (dtype_size(x->dtype) == 0 || !(dtype_is_float(x->dtype) || dtype_is_integer(x->dtype)))
        return op_error(c, OGI_ERR_UNSUPPORTED, "input 0 of type %s is not supported",
                        ogi_dtype_name(x->dtype));
    if (x->rank != 3)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank 3 [N, C*K, L], got %d",
                        x->rank);
    if ((st = col2im_read_shapes(c, p, pads)) != OGI_OK)
        return st;
    for (int d = 0; d < p->r; d++) {
        if (!col2im_in_range(p->image[d], 1) || !col2im_in_range(p->block[d], 1) ||
            !col2im_in_range(p->dilation[d], 1) || !col2im_in_range(p->stride[d], 1) ||
            !col2im_in_range(pads[d], 0) || !col2im_in_range(pads[d + p->r], 0))
            return op_error(c, OGI_ERR_RUNTIME,
                            "dim %d: image, block, dilation, stride must be "
                            "positive and pads non-negative",
                            d);
        p->pad_begin[d] = pads[d];
        int64_t span = p->dilation[d] * (p->block[d] - 1) + 1;
        if (p->image[d] + pads[d] + pads[d + p->r] < span)
            return op_error(c, OGI_ERR_RUNTIME, "dim %d: block larger than the padded image", d);
        p->n_blocks[d] = (p->image[d] + pads[d] + pads[d + p->r] - span) / p->stride[d] + 1;
    }
    p->kernel = tensor_shape_numel(p->r, p->block);
    p->blocks = tensor_shape_numel(p->r, p->n_blocks);
    p->pixels = tensor_shape_numel(p->r, p->image);
    if (p->kernel < 0 || p->blocks < 0 || p->pixels < 0)
        return op_error(c, OGI_ERR_RUNTIME, "image or block shape too large");
    if (x->dims[1] % p->kernel != 0 || x->dims[2] != p->blocks)
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 0: dim 1 (%lld) must divide by %lld and dim 2 (%lld) equal %lld "
                        "blocks",
                        (long long)x->dims[1], (long long)p->kernel, (long long)x->dims[2],
                        (long long)p->blocks);
    p->batch = x->dims[0];
    p->channels = x->dims[1] / p->kernel;
    return OGI_OK;
}

/* Image offset of block position blk with kernel position k, or -1 when it
 * falls in the padding. Both are flat row-major indices. */
static int64_t col2im_target(const col2im_problem *p, int64_t k, int64_t blk)
{
    int64_t offset = 0, scale = 1;
    for (int d = p->r - 1; d >= 0; d--) {
        int64_t kd = k % p->block[d], bd = blk % p->n_blocks[d];
        k /= p->block[d];
        blk /= p->n_blocks[d];
        int64_t i = bd * p->stride[d] - p->pad_begin[d] + kd * p->dilation[d];
        if (i < 0 || i >= p->image[d])
            return -1;
        offset += i * scale;
        scale *= p->image[d];
    }
    return offset;
}

/* Sums each column entry into its image pixel: out[n, c, pixel]. */
static void col2im_accumulate(const col2im_problem *p, double *acc)
{
    const ogi_tensor *x = p->x;
    for (int64_t k = 0; k < p->kernel; k++) {
        for (int64_t blk = 0; blk < p->blocks; blk++) {
            int64_t to = col2im_target(p, k, blk);
            if (to < 0)
                continue;
            for (int64_t n = 0; n < p->batch; n++) {
                for (int64_t ch = 0; ch < p->channels; ch++) {
                    int64_t from = ((n * p->channels + ch) * p->kernel + k) * p->blocks + blk;
                    acc[(n * p->channels + ch) * p->pixels + to] +=
                        dtype_get_f64(x->data, x->dtype, from);
                }
            }
        }
    }
}

static ogi_status col2im(op_ctx *c)
{
    col2im_problem p;
    ogi_status st = col2im_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    int64_t dims[OGI_MAX_RANK] = {p.batch, p.channels};
    memcpy(dims + 2, p.image, (size_t)p.r * sizeof(int64_t));
    if ((st = op_alloc(c, 0, p.x->dtype, p.r + 2, dims)) != OGI_OK)
        return st;
    int64_t numel = tensor_numel(c->out[0]);
    double *acc = calloc((size_t)(numel > 0 ? numel : 1), sizeof(double));
    if (acc == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld pixels",
                        (long long)numel);
    col2im_accumulate(&p, acc);
    for (int64_t i = 0; i < numel; i++)
        dtype_set_f64(c->out[0]->data, p.x->dtype, i, acc[i]);
    free(acc);
    return OGI_OK;
}

const op_kernel op_kernels_image[] = {
    {"", "GridSample", 16, grid_sample}, {"", "AffineGrid", 20, affine_grid},
    {"", "RoiAlign", 10, roi_align},     {"", "NonMaxSuppression", 10, non_max_suppression},
    {"", "Col2Im", 18, col2im},          {NULL, NULL, 0, NULL},
};
